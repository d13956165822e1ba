//! gateway-proxy past one process, on NATS JetStream: every dispatch published once to a
//! stream (publish acks, bounded in flight, `Nats-Msg-Id` dedup), IDENTIFY pacing shared
//! through a KV bucket, shard checkpoints for RESUME after a crash, and request/reply subjects
//! for worker commands and cache queries.
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::cache::ShardCache;
use super::config::NatsConfig;
pub use super::nats_stats::NatsStats;
use crate::gateway::client::ResumeState;

/// How long the stream keeps dispatches (workers that fall further behind lose the oldest).
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The stream's duplicate window: a republished `Nats-Msg-Id` within it is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long a bucket's identify slot stays taken: Discord's 5 s per bucket, plus a margin for
/// the time between taking the slot and the IDENTIFY reaching Discord.
pub const IDENTIFY_SLOT_TTL: Duration = Duration::from_millis(5_250);
/// How long a publish or a KV call may wait for the server.
pub const NATS_TIMEOUT: Duration = Duration::from_secs(5);

/// Why NATS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The server could not be reached.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The configured URL.
        url: String,
        /// What the client said.
        reason: String,
    },
    /// The stream or a KV bucket could not be created or opened.
    #[error("JetStream {what}: {reason} (is the server started with -js?)")]
    JetStream {
        /// Which stream or bucket.
        what: String,
        /// What the server said.
        reason: String,
    },
    /// A subscription for the RPC subjects failed.
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// What the client said.
        reason: String,
    },
}

/// A shard's upstream session as last checkpointed: RESUMEing from it replays at most what the
/// stream already holds (and dedup ids drop those).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Upstream `session_id`.
    pub session_id: String,
    /// Highest sequence number whose dispatch (and every one before it) JetStream acked.
    pub seq: u64,
    /// `resume_gateway_url` from READY.
    pub resume_url: Option<String>,
    /// Stream sequence number of the session's READY (where a cache rebuild starts).
    #[serde(default)]
    pub ready_stream_seq: Option<u64>,
}

impl Checkpoint {
    /// The session to RESUME with.
    pub fn resume_state(&self) -> ResumeState {
        ResumeState {
            session_id: self.session_id.clone(),
            seq: Some(self.seq),
            resume_url: self.resume_url.clone(),
        }
    }
}

/// A live NATS connection with the stream and buckets the proxy uses.
#[derive(Clone)]
pub struct Nats {
    /// The core client (RPC subscriptions).
    pub client: async_nats::Client,
    /// JetStream context for publishing.
    pub jetstream: jetstream::Context,
    /// KV bucket of identify slots (entries expire after the identify period).
    pub identify_kv: kv::Store,
    /// KV bucket of shard checkpoints.
    pub shards_kv: kv::Store,
    /// The configuration.
    pub config: NatsConfig,
    /// Counters for `/metrics` and `/health`.
    pub stats: Arc<NatsStats>,
    /// Whether the client is connected right now.
    pub connected: watch::Receiver<bool>,
    /// The client name the connections announce.
    pub process_name: String,
}

/// One connection dispatches are published on (JetStream handles one connection's messages in
/// order, so a process publishes on several to spread the server's work).
#[derive(Clone)]
pub struct PublishLane {
    /// JetStream context on the lane's connection.
    pub jetstream: jetstream::Context,
    /// Whether the lane's connection is up right now.
    pub connected: watch::Receiver<bool>,
}

/// Opens one client connection; its connected state goes to the returned watch (and to
/// `stats` when given: the main connection's state is the one `/health` reports).
async fn open_client(
    config: &NatsConfig,
    name: &str,
    stats: Option<Arc<NatsStats>>,
) -> Result<(async_nats::Client, watch::Receiver<bool>), NatsError> {
    let (up_tx, connected) = watch::channel(false);
    let up_tx = Arc::new(up_tx);
    let initial_tx = up_tx.clone();
    let callback_stats = stats.clone();
    let options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(NATS_TIMEOUT)
        .request_timeout(Some(NATS_TIMEOUT))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(1000))
        })
        .event_callback(move |event| {
            let up_tx = up_tx.clone();
            let stats = callback_stats.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!("NATS connected");
                        if let Some(stats) = &stats {
                            stats.set_connected(true);
                        }
                        let _ = up_tx.send(true);
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!("NATS disconnected; dispatches are buffered");
                        if let Some(stats) = &stats {
                            stats.set_connected(false);
                        }
                        let _ = up_tx.send(false);
                    }
                    other => tracing::debug!(%other, "NATS event"),
                }
            }
        });
    let urls: Vec<&str> = config.url.split(',').map(str::trim).collect();
    let client = options
        .connect(urls.as_slice())
        .await
        .map_err(|err| NatsError::Connect {
            url: config.url.clone(),
            reason: err.to_string(),
        })?;
    // The callback may not have run yet for the first connection.
    if let Some(stats) = &stats {
        stats.set_connected(true);
    }
    initial_tx.send_replace(true);
    Ok((client, connected))
}

/// A JetStream context publishing with at most `in_flight` unacked publishes on `client`.
fn publish_context(client: async_nats::Client, in_flight: usize) -> jetstream::Context {
    jetstream::context::ContextBuilder::new()
        .timeout(NATS_TIMEOUT)
        .max_ack_inflight(in_flight.saturating_mul(2).max(1))
        .backpressure_on_inflight(true)
        .build(client)
}

/// Connects, then creates (or opens) the stream and the two KV buckets.
pub async fn connect(config: &NatsConfig, process_name: &str) -> Result<Nats, NatsError> {
    let stats = Arc::new(NatsStats::default());
    let (client, connected) = open_client(config, process_name, Some(stats.clone())).await?;
    let jetstream = publish_context(client.clone(), config.max_in_flight);
    ensure_stream(&jetstream, config).await?;
    let identify_kv = ensure_bucket(
        &jetstream,
        &format!("{}-identify", config.stream),
        IDENTIFY_SLOT_TTL,
    )
    .await?;
    let shards_kv = ensure_bucket(
        &jetstream,
        &format!("{}-shards", config.stream),
        Duration::ZERO,
    )
    .await?;
    Ok(Nats {
        client,
        jetstream,
        identify_kv,
        shards_kv,
        config: config.clone(),
        stats,
        connected,
        process_name: process_name.to_owned(),
    })
}

/// Creates the dispatch stream (`<prefix>.*.*`, file storage, limits retention) unless it exists.
async fn ensure_stream(
    jetstream: &jetstream::Context,
    config: &NatsConfig,
) -> Result<(), NatsError> {
    let wanted = stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{}.*.*", config.subject_prefix)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: STREAM_MAX_AGE,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    jetstream
        .get_or_create_stream(wanted)
        .await
        .map(|_| ())
        .map_err(|err| NatsError::JetStream {
            what: format!("stream {}", config.stream),
            reason: err.to_string(),
        })
}

/// Opens KV bucket `name`, creating it (file storage, one value per key, `max_age`) if missing.
/// The bucket's stream is created here with the KV layout (`KV_<name>` on `$KV.<name>.>`):
/// the client's own bucket creation first asks for account details that nats-server 2.9
/// answers in a shape the client cannot read.
async fn ensure_bucket(
    jetstream: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, NatsError> {
    let failed = |err: &dyn std::fmt::Display| NatsError::JetStream {
        what: format!("KV bucket {name}"),
        reason: err.to_string(),
    };
    if let Ok(store) = jetstream.get_key_value(name).await {
        return Ok(store);
    }
    let created = jetstream
        .get_or_create_stream(stream::Config {
            name: format!("KV_{name}"),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        })
        .await;
    if let Err(err) = created {
        return Err(failed(&err));
    }
    jetstream
        .get_key_value(name)
        .await
        .map_err(|err| failed(&err))
}

impl Nats {
    /// `count` publish lanes: the main connection first, then one more connection each; each
    /// lane may have `max_in_flight / count` publishes awaiting acks.
    pub async fn publish_lanes(&self, count: usize) -> Result<Vec<PublishLane>, NatsError> {
        let count = count.max(1);
        let in_flight = (self.config.max_in_flight / count).max(1);
        let mut lanes = Vec::with_capacity(count);
        for index in 0..count {
            let (client, connected) = if index == 0 {
                (self.client.clone(), self.connected.clone())
            } else {
                let name = format!("{}-publish-{index}", self.process_name);
                open_client(&self.config, &name, None).await?
            };
            lanes.push(PublishLane {
                jetstream: publish_context(client, in_flight),
                connected,
            });
        }
        Ok(lanes)
    }

    /// The checkpoint KV key of `shard_id`.
    pub fn checkpoint_key(shard_id: u32) -> String {
        format!("shard-{shard_id}")
    }

    /// The last checkpoint of `shard_id`, if any (unreadable ones are ignored with a warning).
    pub async fn checkpoint(&self, shard_id: u32) -> Option<Checkpoint> {
        let key = Nats::checkpoint_key(shard_id);
        match self.shards_kv.get(key.as_str()).await {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(checkpoint) => Some(checkpoint),
                Err(err) => {
                    tracing::warn!(shard_id, %err, "unreadable shard checkpoint ignored");
                    None
                }
            },
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(shard_id, %err, "cannot read the shard checkpoint");
                None
            }
        }
    }

    /// Rebuilds `cache` of `shard_id` from the stream: the events of the checkpoint's session
    /// from its READY through the checkpoint (a crashed process saved no cache, and RESUME
    /// sends no GUILD_CREATE). Returns how many events were applied.
    pub async fn rebuild_cache(
        &self,
        shard_id: u32,
        checkpoint: &Checkpoint,
        cache: &mut ShardCache,
    ) -> Result<usize, NatsError> {
        let failed = |err: &dyn std::fmt::Display| NatsError::JetStream {
            what: format!("stream {} (cache of shard {shard_id})", self.config.stream),
            reason: err.to_string(),
        };
        let Some(start_sequence) = checkpoint.ready_stream_seq else {
            return Ok(0);
        };
        let stream = self
            .jetstream
            .get_stream(self.config.stream.as_str())
            .await
            .map_err(|err| failed(&err))?;
        let reader = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: format!("{}.{shard_id}.*", self.config.subject_prefix),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|err| failed(&err))?;
        let mut messages = reader.messages().await.map_err(|err| failed(&err))?;
        let mut applied = 0;
        while let Ok(Some(Ok(message))) = tokio::time::timeout(NATS_TIMEOUT, messages.next()).await
        {
            let header = |name: &str| {
                message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get(name))
                    .map(|value| value.as_str().to_owned())
            };
            let seq: u64 = header("Discord-Seq")
                .and_then(|seq| seq.parse().ok())
                .unwrap_or(0);
            if header("Discord-Session-Id").as_deref() == Some(checkpoint.session_id.as_str())
                && seq <= checkpoint.seq
            {
                if let (Some(event), Ok(d)) = (
                    header("Discord-Event"),
                    serde_json::from_slice::<serde_json::Value>(&message.payload),
                ) {
                    cache.apply(&event, &d);
                    applied += 1;
                }
            }
            let pending = message.info().map(|info| info.pending).unwrap_or(0);
            if seq >= checkpoint.seq || pending == 0 {
                break;
            }
        }
        Ok(applied)
    }

    /// The dispatch subject of `event` on `shard_id`.
    pub fn subject(&self, shard_id: u32, event: &str) -> String {
        event_subject(&self.config.subject_prefix, shard_id, event)
    }
}

/// `<prefix>.<shard>.<EVENT_NAME>`, with anything but letters, digits, `_` and `-` in the event
/// name replaced by `_` (so an odd name can never add or widen a subject token).
pub fn event_subject(prefix: &str, shard_id: u32, event: &str) -> String {
    let name: String = if event.is_empty() {
        "_".to_owned()
    } else {
        event
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{prefix}.{shard_id}.{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_subjects_stay_three_tokens() {
        assert_eq!(
            event_subject("discord", 3, "MESSAGE_CREATE"),
            "discord.3.MESSAGE_CREATE"
        );
        assert_eq!(event_subject("d", 0, "A.B *>"), "d.0.A_B___");
        assert_eq!(event_subject("d", 0, ""), "d.0._");
    }
}
