//! Publishing dispatches to JetStream: per publish lane (one NATS connection each; a shard
//! always publishes on the same lane, so its dispatches stay in order) a bounded queue the
//! relay feeds (waiting for room while NATS is up, dropping and counting while it is down) and
//! a task that keeps at most its share of `max_in_flight` publishes awaiting their ack and
//! retries failed ones in order with the same `Nats-Msg-Id`; and a writer that checkpoints each
//! shard's highest fully acked sequence number.
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use async_nats::Subject;

use super::nats::{event_subject, Checkpoint, Nats, PublishLane};
use super::nats_stats::NatsStats;

/// Pause before retrying after a failed publish.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// How long a stopping proxy keeps trying to publish what is still buffered.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// How often changed shard checkpoints are written to the KV bucket.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// Most publish lanes (connections) one process opens.
pub const MAX_PUBLISH_LANES: usize = 4;
/// Subjects remembered per lane (event names come from upstream, so the cache is bounded).
const SUBJECT_CACHE: usize = 1024;

/// One dispatch on its way to the stream.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The shard it arrived on.
    pub shard_id: u32,
    /// Its upstream sequence number.
    pub seq: u64,
    /// The upstream session it belongs to.
    pub session: Arc<str>,
    /// The event name (`t`).
    pub event: String,
    /// The guild it concerns, if any.
    pub guild_id: Option<String>,
    /// READY's `resume_gateway_url` (READY only).
    pub resume_url: Option<String>,
    /// The event's `d` as JSON.
    pub payload: Bytes,
    /// When the relay received it (publish latency is measured from here).
    pub received: Instant,
}

impl Outgoing {
    /// The deduplication id: the same event of the same upstream session always gets it.
    pub fn message_id(&self) -> String {
        format!("{}:{}", self.session, self.seq)
    }

    fn message(&self) -> PublishMessage {
        let mut message = PublishMessage::build()
            .payload(self.payload.clone())
            .message_id(self.message_id())
            .header("Discord-Shard", self.shard_id.to_string())
            .header("Discord-Seq", self.seq.to_string())
            .header("Discord-Session-Id", self.session.as_ref())
            .header("Discord-Event", self.event.as_str());
        if let Some(guild_id) = &self.guild_id {
            message = message.header("Discord-Guild-Id", guild_id.as_str());
        }
        message
    }
}

/// One lane's queue as the relay sees it.
#[derive(Clone)]
struct LaneQueue {
    tx: mpsc::Sender<Outgoing>,
    connected: watch::Receiver<bool>,
}

/// Where the relay hands dispatches to the publishers.
#[derive(Clone)]
pub struct PublishHandle {
    lanes: Arc<[LaneQueue]>,
    stats: Arc<NatsStats>,
}

impl PublishHandle {
    /// Queues `outgoing` on its shard's lane. With the queue full this waits while that lane's
    /// connection is up (backpressure up to the shard sockets) and drops, counting it, while
    /// it is down.
    pub async fn submit(&self, outgoing: Outgoing) {
        let Some(lane) = self
            .lanes
            .get(outgoing.shard_id as usize % self.lanes.len().max(1))
        else {
            self.stats.count_dropped(false);
            return;
        };
        match lane.tx.try_send(outgoing) {
            Ok(()) => self.stats.count_buffered(),
            Err(mpsc::error::TrySendError::Full(outgoing)) => {
                let mut connected = lane.connected.clone();
                if !*connected.borrow_and_update() {
                    self.stats.count_dropped(false);
                    return;
                }
                tokio::select! {
                    sent = lane.tx.send(outgoing) => match sent {
                        Ok(()) => self.stats.count_buffered(),
                        Err(_) => self.stats.count_dropped(false),
                    },
                    _ = connected.wait_for(|up| !*up) => self.stats.count_dropped(false),
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.stats.count_dropped(false),
        }
    }
}

/// Per-shard ack progress of the current upstream session.
#[derive(Debug, Clone)]
struct Progress {
    checkpoint: Checkpoint,
    failed: BTreeSet<u64>,
    highest_acked: u64,
    dirty: bool,
}

/// The shards' checkpoints, shared by the publisher (writes) and the checkpoint writer.
#[derive(Debug, Default)]
pub struct Checkpoints {
    shards: Mutex<HashMap<u32, Progress>>,
}

impl Checkpoints {
    /// Starts from the checkpoints the shards resume with.
    pub fn new(initial: HashMap<u32, Checkpoint>) -> Checkpoints {
        let shards = initial
            .into_iter()
            .map(|(shard_id, checkpoint)| {
                let highest_acked = checkpoint.seq;
                (
                    shard_id,
                    Progress {
                        checkpoint,
                        failed: BTreeSet::new(),
                        highest_acked,
                        dirty: false,
                    },
                )
            })
            .collect();
        Checkpoints {
            shards: Mutex::new(shards),
        }
    }

    /// The publish of `outgoing` failed; the shard's checkpoint stays below it until a retry
    /// is acked.
    fn failed(&self, outgoing: &Outgoing) {
        if let Some(progress) = self.shards.lock().get_mut(&outgoing.shard_id) {
            if *progress.checkpoint.session_id == *outgoing.session {
                progress.failed.insert(outgoing.seq);
            }
        }
    }

    /// JetStream acked `outgoing`.
    fn acked(&self, outgoing: &Outgoing, stream_seq: u64) {
        let mut shards = self.shards.lock();
        let same_session = shards
            .get(&outgoing.shard_id)
            .map(|progress| *progress.checkpoint.session_id == *outgoing.session);
        let progress = match same_session {
            Some(true) => match shards.get_mut(&outgoing.shard_id) {
                Some(progress) => progress,
                None => return,
            },
            // A new upstream session starts with READY; acks of an older session are stale.
            Some(false) | None if outgoing.event == "READY" || same_session.is_none() => shards
                .entry(outgoing.shard_id)
                .insert_entry(Progress {
                    checkpoint: Checkpoint {
                        session_id: outgoing.session.to_string(),
                        seq: 0,
                        resume_url: outgoing.resume_url.clone(),
                        ready_stream_seq: (outgoing.event == "READY").then_some(stream_seq),
                    },
                    failed: BTreeSet::new(),
                    highest_acked: 0,
                    dirty: true,
                })
                .into_mut(),
            Some(false) | None => return,
        };
        progress.failed.remove(&outgoing.seq);
        progress.highest_acked = progress.highest_acked.max(outgoing.seq);
        let through = match progress.failed.first() {
            Some(first_failed) => progress.highest_acked.min(first_failed.saturating_sub(1)),
            None => progress.highest_acked,
        };
        if through > progress.checkpoint.seq {
            progress.checkpoint.seq = through;
            progress.dirty = true;
        }
    }

    /// The checkpoints changed since the last call.
    fn take_dirty(&self) -> Vec<(u32, Checkpoint)> {
        let mut shards = self.shards.lock();
        shards
            .iter_mut()
            .filter(|(_, progress)| progress.dirty)
            .map(|(shard_id, progress)| {
                progress.dirty = false;
                (*shard_id, progress.checkpoint.clone())
            })
            .collect()
    }

    /// Marks a checkpoint whose write failed as changed again.
    fn redo(&self, shard_id: u32) {
        if let Some(progress) = self.shards.lock().get_mut(&shard_id) {
            progress.dirty = true;
        }
    }

    /// The current checkpoint of `shard_id`.
    pub fn get(&self, shard_id: u32) -> Option<Checkpoint> {
        self.shards
            .lock()
            .get(&shard_id)
            .map(|progress| progress.checkpoint.clone())
    }
}

/// What an ack says: whether the id was already stored, and the stream sequence number.
type AckResult = Result<(bool, u64), PublishError>;
type AckFuture = Pin<Box<dyn Future<Output = (Outgoing, AckResult)> + Send>>;

/// One lane's publishing task state.
struct Publisher {
    lane: PublishLane,
    subject_prefix: String,
    subjects: HashMap<u32, HashMap<String, Subject>>,
    subjects_cached: usize,
    max_in_flight: usize,
    stats: Arc<NatsStats>,
    checkpoints: Arc<Checkpoints>,
    in_flight: FuturesOrdered<AckFuture>,
    retry: VecDeque<Outgoing>,
    retry_at: Instant,
}

/// Starts one publisher per lane and the checkpoint writer; they end once every
/// [`PublishHandle`] is dropped and what was buffered is published (or [`DRAIN_DEADLINE`]
/// passed). The buffer and the in-flight window are shared out between the lanes.
pub fn spawn(
    nats: &Nats,
    lanes: Vec<PublishLane>,
    checkpoints: Arc<Checkpoints>,
) -> (PublishHandle, JoinHandle<()>) {
    let count = lanes.len().max(1);
    let buffer = (nats.config.buffer / count).max(1);
    let max_in_flight = (nats.config.max_in_flight / count).max(1);
    let mut queues = Vec::with_capacity(count);
    let mut publishers = Vec::with_capacity(count);
    for lane in lanes {
        let (tx, rx) = mpsc::channel(buffer);
        queues.push(LaneQueue {
            tx,
            connected: lane.connected.clone(),
        });
        let publisher = Publisher {
            lane,
            subject_prefix: nats.config.subject_prefix.clone(),
            subjects: HashMap::new(),
            subjects_cached: 0,
            max_in_flight,
            stats: nats.stats.clone(),
            checkpoints: checkpoints.clone(),
            in_flight: FuturesOrdered::new(),
            retry: VecDeque::new(),
            retry_at: Instant::now(),
        };
        publishers.push(tokio::spawn(publisher.run(rx)));
    }
    let handle = PublishHandle {
        lanes: queues.into(),
        stats: nats.stats.clone(),
    };
    let (done_tx, done_rx) = watch::channel(false);
    let writer = tokio::spawn(write_checkpoints(nats.clone(), checkpoints, done_rx));
    let task = tokio::spawn(async move {
        for publisher in publishers {
            let _ = publisher.await;
        }
        let _ = done_tx.send(true);
        let _ = writer.await;
    });
    (handle, task)
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::Receiver<Outgoing>) {
        let max_in_flight = self.max_in_flight;
        let mut connected = self.lane.connected.clone();
        let mut drain_until: Option<Instant> = None;
        loop {
            if drain_until.is_some() && self.retry.is_empty() && self.in_flight.is_empty() {
                return;
            }
            let room = self.in_flight.len() < max_in_flight;
            let retry_due = room && !self.retry.is_empty();
            let take_new = room && self.retry.is_empty() && drain_until.is_none();
            let deadline =
                drain_until.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                Some((outgoing, result)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.on_ack(outgoing, result);
                }
                _ = wait_retry(self.retry_at, &mut connected), if retry_due => {
                    if let Some(outgoing) = self.retry.pop_front() {
                        self.stats.count_redelivered();
                        self.send(outgoing).await;
                    }
                }
                received = rx.recv(), if take_new => match received {
                    Some(outgoing) => {
                        self.stats.count_published();
                        self.send(outgoing).await;
                        // Fill the window from what is already queued without re-polling.
                        while self.in_flight.len() < max_in_flight && self.retry.is_empty() {
                            match rx.try_recv() {
                                Ok(outgoing) => {
                                    self.stats.count_published();
                                    self.send(outgoing).await;
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    None => drain_until = Some(Instant::now() + DRAIN_DEADLINE),
                },
                () = tokio::time::sleep_until(deadline.into()), if drain_until.is_some() => {
                    let left = self.retry.len() + self.in_flight.len();
                    tracing::warn!(left, "NATS did not take every buffered dispatch before stopping");
                    for _ in 0..left {
                        self.stats.count_dropped(true);
                    }
                    return;
                }
            }
        }
    }

    /// Sends one publish; its ack joins the in-flight window (a failed send goes to retry).
    async fn send(&mut self, outgoing: Outgoing) {
        let subject = self.subject(outgoing.shard_id, &outgoing.event);
        match self
            .lane
            .jetstream
            .send_publish(subject, outgoing.message())
            .await
        {
            Ok(ack) => self.in_flight.push_back(Box::pin(async move {
                let result = ack.await.map(|ack| (ack.duplicate, ack.sequence));
                (outgoing, result)
            })),
            Err(err) => self.failed(outgoing, &err),
        }
    }

    /// The subject of `event` on `shard_id`, built once per pair (up to [`SUBJECT_CACHE`]).
    fn subject(&mut self, shard_id: u32, event: &str) -> Subject {
        if let Some(subject) = self.subjects.get(&shard_id).and_then(|s| s.get(event)) {
            return subject.clone();
        }
        let subject = Subject::from(event_subject(&self.subject_prefix, shard_id, event));
        if self.subjects_cached < SUBJECT_CACHE {
            self.subjects_cached += 1;
            self.subjects
                .entry(shard_id)
                .or_default()
                .insert(event.to_owned(), subject.clone());
        }
        subject
    }

    fn on_ack(&mut self, outgoing: Outgoing, result: AckResult) {
        match result {
            Ok((duplicate, stream_seq)) => {
                self.stats
                    .count_acked(duplicate, outgoing.received.elapsed());
                self.checkpoints.acked(&outgoing, stream_seq);
            }
            Err(err) => self.failed(outgoing, &err),
        }
    }

    fn failed(&mut self, outgoing: Outgoing, err: &PublishError) {
        tracing::debug!(shard_id = outgoing.shard_id, seq = outgoing.seq, %err, "publish failed; will retry");
        self.stats.count_failed();
        self.checkpoints.failed(&outgoing);
        self.retry.push_back(outgoing);
        self.retry_at = Instant::now() + RETRY_BACKOFF;
    }
}

/// Resolves once the retry backoff has passed and the client is connected.
async fn wait_retry(at: Instant, connected: &mut watch::Receiver<bool>) {
    tokio::time::sleep_until(at.into()).await;
    let _ = connected.wait_for(|up| *up).await;
}

/// Writes changed checkpoints every [`CHECKPOINT_INTERVAL`] until `done`, then once more.
async fn write_checkpoints(
    nats: Nats,
    checkpoints: Arc<Checkpoints>,
    mut done: watch::Receiver<bool>,
) {
    loop {
        let finished = tokio::select! {
            () = tokio::time::sleep(CHECKPOINT_INTERVAL) => false,
            _ = done.wait_for(|done| *done) => true,
        };
        for (shard_id, checkpoint) in checkpoints.take_dirty() {
            let Ok(value) = serde_json::to_vec(&checkpoint) else {
                continue;
            };
            let key = Nats::checkpoint_key(shard_id);
            if let Err(err) = nats.shards_kv.put(key.as_str(), value.into()).await {
                tracing::debug!(shard_id, %err, "checkpoint not written; will retry");
                checkpoints.redo(shard_id);
            }
        }
        if finished {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(session: &str, seq: u64, event: &str) -> Outgoing {
        Outgoing {
            shard_id: 0,
            seq,
            session: Arc::from(session),
            event: event.to_owned(),
            guild_id: None,
            resume_url: None,
            payload: Bytes::new(),
            received: Instant::now(),
        }
    }

    #[test]
    fn checkpoints_stop_below_the_first_failed_publish() {
        let checkpoints = Checkpoints::default();
        checkpoints.acked(&outgoing("a", 1, "READY"), 10);
        assert_eq!(checkpoints.get(0).unwrap().ready_stream_seq, Some(10));
        checkpoints.acked(&outgoing("a", 2, "X"), 0);
        checkpoints.failed(&outgoing("a", 3, "X"));
        checkpoints.acked(&outgoing("a", 4, "X"), 0);
        assert_eq!(checkpoints.get(0).unwrap().seq, 2);
        checkpoints.acked(&outgoing("a", 3, "X"), 0);
        assert_eq!(checkpoints.get(0).unwrap().seq, 4);
        assert_eq!(checkpoints.take_dirty().len(), 1);
        assert!(checkpoints.take_dirty().is_empty());
        // A stale ack of an old session changes nothing; a new READY starts over.
        checkpoints.acked(&outgoing("b", 9, "X"), 0);
        assert_eq!(checkpoints.get(0).unwrap().session_id, "a");
        checkpoints.acked(&outgoing("b", 1, "READY"), 0);
        assert_eq!(checkpoints.get(0).unwrap().session_id, "b");
        assert_eq!(outgoing("b", 7, "X").message_id(), "b:7");
    }
}
