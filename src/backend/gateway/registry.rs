//! Gateway sessions that outlive their connections (for RESUME), with what each has been sent
//! (the replay buffer) and what arrived while it was away (pending), plus the live state the
//! gateway owns: presences and voice states.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, Notify};

use crate::backend::snowflake::Snowflake;
use crate::gateway::close::CloseCode;
use crate::gateway::server::ShardInfo;
use crate::gateway::wire::Prepared;

/// What a connection can be told from outside its own socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Send op 7 RECONNECT (the server is shutting down).
    Reconnect,
    /// Close with this code and leave the session resumable (it fell behind, or a RESUME on
    /// another connection took it over).
    Kick(CloseCode),
}

/// The live connection a session is attached to.
#[derive(Debug)]
pub(crate) struct Link {
    pub conn_id: u64,
    pub events: mpsc::Sender<Arc<Prepared>>,
    pub control: mpsc::UnboundedSender<Control>,
}

/// Why an event could not be handed to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Queued on the live connection.
    Sent,
    /// Kept for the session's RESUME.
    Pending,
    /// The session fell too far behind while detached and was dropped.
    Dropped,
}

/// One gateway session (READY's `session_id`).
#[derive(Debug)]
pub(crate) struct SessionRecord {
    pub id: String,
    pub user_id: Snowflake,
    /// `None` for user accounts (they receive everything they can see).
    pub intents: Option<u64>,
    pub shard: Option<ShardInfo>,
    /// What a user (not bot) session adds: capabilities, client info, status, activities.
    pub user_session: Option<super::sessions::UserSession>,
    /// Member-list subscriptions of the official client (op 14 / op 37).
    pub subscriptions: super::member_list::Subscriptions,
    link: Option<Link>,
    /// Connection that still has to hand back its queue before another may attach.
    owed_drain: Option<u64>,
    /// Events for the session not yet numbered (it was away, or its queue overflowed).
    pending: VecDeque<Arc<Prepared>>,
    /// Numbered dispatches sent, newest last, for replay.
    replay: VecDeque<(u64, Arc<Prepared>)>,
    /// Highest sequence number sent.
    pub last_seq: u64,
    detached_at: Option<Instant>,
    dead: bool,
    detached: Arc<Notify>,
}

/// Limits of the session store.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Numbered dispatches kept per session for replay.
    pub replay: usize,
    /// Events kept for a detached (or overflowing) session before it is dropped.
    pub pending: usize,
    /// How long a detached session stays resumable.
    pub resume_window: Duration,
}

impl SessionRecord {
    /// Whether the session is live on a connection.
    pub(crate) fn is_attached(&self) -> bool {
        self.link.is_some()
    }

    /// Hands an event to the session: its connection's queue, or pending while it is away.
    /// A full queue detaches the connection (kicked with a resumable 4000): the event and
    /// everything after it wait for the RESUME, nothing is lost.
    pub(crate) fn offer(&mut self, event: &Arc<Prepared>, limits: &Limits) -> Offer {
        if self.dead {
            return Offer::Dropped;
        }
        if let Some(link) = &self.link {
            match link.events.try_send(event.clone()) {
                Ok(()) => return Offer::Sent,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(session = %self.id, "gateway session cannot keep up; closing it resumable");
                    let _ = link.control.send(Control::Kick(CloseCode::UnknownError));
                    self.link = None;
                    self.detached_at = Some(Instant::now());
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.link = None;
                    self.detached_at = Some(Instant::now());
                }
            }
        }
        if self.pending.len() >= limits.pending {
            self.dead = true;
            self.pending.clear();
            return Offer::Dropped;
        }
        self.pending.push_back(event.clone());
        Offer::Pending
    }

    /// Records dispatch `seq` as sent.
    pub(crate) fn sent(&mut self, seq: u64, event: Arc<Prepared>, limits: &Limits) {
        self.last_seq = self.last_seq.max(seq);
        self.replay.push_back((seq, event));
        while self.replay.len() > limits.replay {
            self.replay.pop_front();
        }
    }

    /// The dispatches after `client_seq`, or `None` if some were already forgotten.
    pub(crate) fn replay_after(&self, client_seq: u64) -> Option<Vec<(u64, Arc<Prepared>)>> {
        let oldest_kept = self.replay.front().map_or(self.last_seq + 1, |(s, _)| *s);
        if client_seq + 1 < oldest_kept {
            return None;
        }
        Some(
            self.replay
                .iter()
                .filter(|(seq, _)| *seq > client_seq)
                .cloned()
                .collect(),
        )
    }

    /// Attaches connection `link` and returns what arrived while the session was away.
    pub(crate) fn attach(&mut self, link: Link) -> Vec<Arc<Prepared>> {
        self.owed_drain = Some(link.conn_id);
        self.link = Some(link);
        self.detached_at = None;
        self.pending.drain(..).collect()
    }

    /// Connection `conn_id` ended; `unsent` is what was still queued for it (oldest first).
    /// Returns whether the session was this connection's.
    pub(crate) fn detach(&mut self, conn_id: u64, unsent: Vec<Arc<Prepared>>) -> bool {
        if self.owed_drain != Some(conn_id) {
            return false;
        }
        if self.link.as_ref().is_some_and(|l| l.conn_id == conn_id) {
            self.link = None;
        }
        self.owed_drain = None;
        for event in unsent.into_iter().rev() {
            self.pending.push_front(event);
        }
        self.detached_at.get_or_insert_with(Instant::now);
        self.detached.notify_waiters();
        true
    }

    /// Whether another connection may attach now (the previous one handed everything back).
    pub(crate) fn free(&self) -> bool {
        self.owed_drain.is_none()
    }

    /// Asks the attached connection (if any) to close so a RESUME can take the session over.
    pub(crate) fn kick(&self) -> Arc<Notify> {
        if let Some(link) = &self.link {
            let _ = link.control.send(Control::Kick(CloseCode::UnknownError));
        }
        self.detached.clone()
    }

    /// Ends the session for good (events were lost): its connection is closed and a RESUME
    /// gets op 9 `false`.
    pub(crate) fn kill(&mut self) {
        self.dead = true;
        self.pending.clear();
        if let Some(link) = self.link.take() {
            let _ = link.control.send(Control::Kick(CloseCode::UnknownError));
        }
    }

    /// Ends the session because its token was revoked: its connection closes with 4004.
    pub(crate) fn revoke(&mut self) {
        self.dead = true;
        self.pending.clear();
        if let Some(link) = self.link.take() {
            let _ = link
                .control
                .send(Control::Kick(CloseCode::AuthenticationFailed));
        }
    }

    /// Marks the session ended by its client (1000/1001) or a fatal close.
    pub(crate) fn end(&mut self) {
        self.dead = true;
        self.pending.clear();
    }

    /// Whether the session may still be resumed at `now`.
    pub(crate) fn resumable(&self, now: Instant, limits: &Limits) -> bool {
        !self.dead
            && self
                .detached_at
                .is_none_or(|at| now.duration_since(at) <= limits.resume_window)
    }
}

pub(crate) use super::sessions::Presence;

pub(crate) use crate::backend::voice::VoiceState;

/// Every session, connection and piece of live state of the gateway.
pub(crate) struct Registry {
    pub limits: Limits,
    sessions: RwLock<HashMap<String, Arc<Mutex<SessionRecord>>>>,
    connections: Mutex<HashMap<u64, mpsc::UnboundedSender<Control>>>,
    next_conn: AtomicU64,
    presences: Mutex<HashMap<Snowflake, Presence>>,
    voice: crate::backend::voice::VoiceStates,
}

impl Registry {
    /// An empty registry.
    pub(crate) fn new(limits: Limits) -> Registry {
        Registry {
            limits,
            sessions: RwLock::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            presences: Mutex::new(HashMap::new()),
            voice: Default::default(),
        }
    }

    /// This registry, keeping voice states in `voice` (the HTTP side's shared map).
    pub(crate) fn sharing_voice(mut self, voice: crate::backend::voice::VoiceStates) -> Registry {
        self.voice = voice;
        self
    }

    /// Registers a new connection; returns its id.
    pub(crate) fn connect(&self, control: mpsc::UnboundedSender<Control>) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.connections.lock().insert(id, control);
        id
    }

    /// Forgets a connection.
    pub(crate) fn disconnect(&self, conn_id: u64) {
        self.connections.lock().remove(&conn_id);
    }

    /// Open connections.
    pub(crate) fn connection_count(&self) -> usize {
        self.connections.lock().len()
    }

    /// Sends `control` to every open connection.
    pub(crate) fn broadcast(&self, control: Control) {
        for sender in self.connections.lock().values() {
            let _ = sender.send(control);
        }
    }

    /// Creates a session record.
    pub(crate) fn create(
        &self,
        user_id: Snowflake,
        intents: Option<u64>,
        shard: Option<ShardInfo>,
    ) -> Arc<Mutex<SessionRecord>> {
        let id = session_id();
        let record = Arc::new(Mutex::new(SessionRecord {
            id: id.clone(),
            user_id,
            intents,
            shard,
            user_session: None,
            subscriptions: Default::default(),
            link: None,
            owed_drain: None,
            pending: VecDeque::new(),
            replay: VecDeque::new(),
            last_seq: 0,
            detached_at: None,
            dead: false,
            detached: Arc::new(Notify::new()),
        }));
        self.sessions.write().insert(id, record.clone());
        record
    }

    /// The session with `id`.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Mutex<SessionRecord>>> {
        self.sessions.read().get(id).cloned()
    }

    /// Drops a session (it ended for good).
    pub(crate) fn remove(&self, id: &str) {
        self.sessions.write().remove(id);
    }

    /// A snapshot of every session.
    pub(crate) fn all(&self) -> Vec<Arc<Mutex<SessionRecord>>> {
        self.sessions.read().values().cloned().collect()
    }

    /// Number of sessions (attached or resumable).
    pub(crate) fn session_count(&self) -> usize {
        self.sessions.read().len()
    }

    /// Drops sessions detached for longer than the resume window (or dropped for lag).
    /// Returns the user of each dropped user session (`None` for bot sessions).
    pub(crate) fn reap(&self, now: Instant) -> Vec<Option<Snowflake>> {
        let mut sessions = self.sessions.write();
        let mut gone = Vec::new();
        sessions.retain(|_, record| {
            let record = record.lock();
            let keep =
                record.is_attached() || !record.free() || record.resumable(now, &self.limits);
            if !keep {
                gone.push(record.user_session.is_some().then_some(record.user_id));
            }
            keep
        });
        gone
    }

    /// The user (not bot) sessions of `user_id` that are live or resumable at `now`, oldest
    /// first.
    pub(crate) fn user_sessions(
        &self,
        user_id: Snowflake,
        now: Instant,
    ) -> Vec<(String, super::sessions::UserSession)> {
        let mut out: Vec<(String, super::sessions::UserSession)> = self
            .sessions
            .read()
            .values()
            .filter_map(|r| {
                let r = r.lock();
                if r.user_id != user_id || !(r.is_attached() || r.resumable(now, &self.limits)) {
                    return None;
                }
                r.user_session.clone().map(|s| (r.id.clone(), s))
            })
            .collect();
        out.sort_by_key(|(_, s)| s.changed);
        out
    }

    /// Whether `user_id` still has a session other than `except`.
    pub(crate) fn user_has_sessions(&self, user_id: Snowflake, except: &str) -> bool {
        self.sessions.read().values().any(|r| {
            let r = r.lock();
            r.user_id == user_id && r.id != except
        })
    }

    /// Sets (or with `None`, clears) a user's presence; returns whether it changed.
    pub(crate) fn set_presence(&self, user_id: Snowflake, presence: Option<Presence>) -> bool {
        let mut presences = self.presences.lock();
        match presence {
            Some(presence) => presences.insert(user_id, presence.clone()) != Some(presence),
            None => presences.remove(&user_id).is_some(),
        }
    }

    /// Forgets every presence and voice state (a reset of the world).
    pub(crate) fn forget_live_state(&self) {
        self.presences.lock().clear();
        self.voice.clear();
    }

    /// A user's presence, if online.
    pub(crate) fn presence(&self, user_id: Snowflake) -> Option<Presence> {
        self.presences.lock().get(&user_id).cloned()
    }

    /// Stores (or with no channel, removes) a voice state.
    pub(crate) fn set_voice(
        &self,
        guild_id: Snowflake,
        user_id: Snowflake,
        state: Option<VoiceState>,
    ) {
        self.voice.set(guild_id, user_id, state);
    }

    /// A user's voice state in a guild.
    pub(crate) fn voice_state(
        &self,
        guild_id: Snowflake,
        user_id: Snowflake,
    ) -> Option<VoiceState> {
        self.voice.get(guild_id, user_id)
    }

    /// Voice states in a guild.
    pub(crate) fn voice_states(&self, guild_id: Snowflake) -> Vec<VoiceState> {
        self.voice.in_guild(guild_id)
    }
}

/// A session as a clean restart keeps it (JSON in the store's meta table): enough for the
/// client's RESUME on the next process to pick up where op 7 left it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedSession {
    id: String,
    user_id: Snowflake,
    intents: Option<u64>,
    shard: Option<(u32, u32)>,
    user_session: Option<SavedUserSession>,
    last_seq: u64,
    /// Numbered dispatches sent: `(seq, event name, d)`.
    replay: Vec<(u64, String, Box<serde_json::value::RawValue>)>,
    /// Dispatches not yet sent: `(event name, d)`.
    pending: Vec<(String, Box<serde_json::value::RawValue>)>,
}

/// [`super::sessions::UserSession`] in saved form.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SavedUserSession {
    capabilities: u64,
    client: String,
    os: String,
    status: String,
    activities: Vec<serde_json::Value>,
    changed: u64,
    #[serde(default)]
    by_intents: bool,
}

/// The static vocabulary `UserSession` holds (`unknown` for anything else).
fn known(word: &str, vocabulary: &[&'static str]) -> &'static str {
    vocabulary
        .iter()
        .copied()
        .find(|known| *known == word)
        .unwrap_or("unknown")
}

fn raw(event: &Prepared) -> Option<Box<serde_json::value::RawValue>> {
    let bytes = event.data(crate::gateway::codec::Encoding::Json).ok()?;
    let text = std::str::from_utf8(bytes).ok()?;
    serde_json::value::RawValue::from_string(text.to_string()).ok()
}

impl SessionRecord {
    /// This session for a clean restart, unless it has ended.
    fn saved(&self) -> Option<SavedSession> {
        if self.dead {
            return None;
        }
        let user_session = self.user_session.as_ref().map(|u| SavedUserSession {
            capabilities: u.capabilities.0,
            client: u.client.to_string(),
            os: u.os.to_string(),
            status: u.status.clone(),
            activities: u.activities.clone(),
            changed: u.changed,
            by_intents: u.by_intents,
        });
        Some(SavedSession {
            id: self.id.clone(),
            user_id: self.user_id,
            intents: self.intents,
            shard: self.shard.map(|s| (s.id, s.count)),
            user_session,
            last_seq: self.last_seq,
            replay: self
                .replay
                .iter()
                .filter_map(|(seq, event)| Some((*seq, event.name.clone(), raw(event)?)))
                .collect(),
            pending: self
                .pending
                .iter()
                .filter_map(|event| Some((event.name.clone(), raw(event)?)))
                .collect(),
        })
    }
}

impl Registry {
    /// Every session that has not ended, for a clean restart.
    pub(crate) fn save(&self) -> Vec<SavedSession> {
        self.sessions
            .read()
            .values()
            .filter_map(|record| record.lock().saved())
            .collect()
    }

    /// Takes back sessions saved by the previous process, detached from `now`: their clients
    /// have the resume window to RESUME.
    pub(crate) fn restore(&self, saved: Vec<SavedSession>, now: Instant) -> usize {
        let mut sessions = self.sessions.write();
        let mut restored = 0;
        for s in saved {
            let user_session = s.user_session.map(|u| super::sessions::UserSession {
                capabilities: crate::gateway::capabilities::Capabilities(u.capabilities),
                client: known(&u.client, &["desktop", "web", "mobile"]),
                os: known(
                    &u.os,
                    &[
                        "windows",
                        "osx",
                        "linux",
                        "android",
                        "ios",
                        "playstation",
                        "xbox",
                    ],
                ),
                status: u.status,
                activities: u.activities,
                changed: u.changed,
                by_intents: u.by_intents,
            });
            let record = SessionRecord {
                id: s.id.clone(),
                user_id: s.user_id,
                intents: s.intents,
                shard: s.shard.map(|(id, count)| ShardInfo { id, count }),
                user_session,
                subscriptions: Default::default(),
                link: None,
                owed_drain: None,
                pending: s
                    .pending
                    .into_iter()
                    .map(|(name, d)| Prepared::from_json(name, d.get().as_bytes().to_vec()))
                    .collect(),
                replay: s
                    .replay
                    .into_iter()
                    .map(|(seq, name, d)| {
                        (seq, Prepared::from_json(name, d.get().as_bytes().to_vec()))
                    })
                    .collect(),
                last_seq: s.last_seq,
                detached_at: Some(now),
                dead: false,
                detached: Arc::new(Notify::new()),
            };
            sessions.insert(s.id, Arc::new(Mutex::new(record)));
            restored += 1;
        }
        restored
    }
}

/// A random 32-hex-digit session id, like Discord's.
fn session_id() -> String {
    let mut bytes = [0u8; 16];
    crate::backend::clock::fill_random(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> Limits {
        Limits {
            replay: 3,
            pending: 2,
            resume_window: Duration::from_secs(60),
        }
    }

    fn link(
        conn_id: u64,
        capacity: usize,
    ) -> (
        Link,
        mpsc::Receiver<Arc<Prepared>>,
        mpsc::UnboundedReceiver<Control>,
    ) {
        let (events, rx) = mpsc::channel(capacity);
        let (control, control_rx) = mpsc::unbounded_channel();
        (
            Link {
                conn_id,
                events,
                control,
            },
            rx,
            control_rx,
        )
    }

    #[test]
    fn a_full_queue_kicks_the_connection_and_keeps_every_event_in_order() {
        let registry = Registry::new(limits());
        let record = registry.create(Snowflake(1), Some(1), None);
        let mut record = record.lock();
        let (link, mut rx, mut control) = link(7, 1);
        assert!(record.attach(link).is_empty());
        let events: Vec<_> = (0..3).map(|i| Prepared::new("E", json!(i))).collect();
        assert_eq!(record.offer(&events[0], &registry.limits), Offer::Sent);
        assert_eq!(record.offer(&events[1], &registry.limits), Offer::Pending);
        assert_eq!(
            control.try_recv(),
            Ok(Control::Kick(CloseCode::UnknownError))
        );
        assert_eq!(record.offer(&events[2], &registry.limits), Offer::Pending);
        // Nobody else may attach until the kicked connection hands its queue back.
        assert!(!record.free());
        let unsent = vec![rx.try_recv().unwrap()];
        assert!(record.detach(7, unsent));
        let (link, _rx, _control) = self::link(8, 4);
        let missed: Vec<_> = record
            .attach(link)
            .iter()
            .map(|e| e.value().cloned())
            .collect();
        assert_eq!(missed, vec![Some(json!(0)), Some(json!(1)), Some(json!(2))]);
    }

    #[test]
    fn a_detached_session_that_falls_too_far_behind_is_dropped() {
        let registry = Registry::new(limits());
        let record = registry.create(Snowflake(1), Some(1), None);
        let mut record = record.lock();
        let event = Prepared::new("E", json!(null));
        assert_eq!(record.offer(&event, &registry.limits), Offer::Pending);
        assert_eq!(record.offer(&event, &registry.limits), Offer::Pending);
        assert_eq!(record.offer(&event, &registry.limits), Offer::Dropped);
        assert!(!record.resumable(Instant::now(), &registry.limits));
    }

    #[test]
    fn replay_refuses_when_the_buffer_forgot_what_the_client_missed() {
        let registry = Registry::new(limits());
        let record = registry.create(Snowflake(1), Some(1), None);
        let mut record = record.lock();
        for seq in 1..=5 {
            record.sent(seq, Prepared::new("E", json!(seq)), &registry.limits);
        }
        assert_eq!(record.last_seq, 5);
        let after_3: Vec<u64> = record
            .replay_after(3)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(after_3, vec![4, 5]);
        assert!(record.replay_after(2).is_some());
        assert!(record.replay_after(1).is_none());
        assert_eq!(record.replay_after(5).unwrap().len(), 0);
    }
}
