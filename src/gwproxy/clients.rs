//! The client side: bots connect here as if to Discord. Each connection runs the gateway
//! core's [`ServerSession`]; this module answers IDENTIFY/RESUME from the shard caches and
//! keeps one numbered replay buffer per client session so a RESUME gets exactly what it missed.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::cache::ShardCache;
use super::config::Config;
use super::intents;
use super::persist::{SavedClient, SavedEvent};
use super::plan::ShardPlan;
use crate::gateway::close::CloseCode;
use crate::gateway::codec::{self, Encoding};
use crate::gateway::decoder::{ConnectionParams, ParamsError};
use crate::gateway::etf::DecodeOptions;
use crate::gateway::handshake::Handshake;
use crate::gateway::intents::without_content;
use crate::gateway::server::{
    IdentifyInfo, IdentifyVerdict, ResumeInfo, ResumeVerdict, ServerAction, ServerConfig,
    ServerSession, ServerState,
};
use crate::gateway::wire::{Framer, Prepared};
use crate::gateway::{GatewayPayload, OpCode};

/// Numbered dispatches kept per client session for RESUME.
pub const REPLAY_CAPACITY: usize = 4096;
/// zlib level for zlib-stream clients: fast, not small, like serve's default (level 6 costs
/// about three times the CPU per delivery for a few percent of size on gateway JSON).
pub const ZLIB_LEVEL: u32 = 1;
/// The close code for a client that fell behind: resumable by every library.
pub const BACKPRESSURE_CLOSE: CloseCode = CloseCode::UnknownError;
/// The close code clients get when the proxy shuts down: resumable, so they come back and
/// RESUME against the restarted proxy.
pub const SHUTDOWN_CLOSE: CloseCode = CloseCode::UnknownError;

/// How long a client the hub closed for falling behind may take to drain what was already
/// written before its socket is dropped without a close frame.
pub const KICKED_WRITE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A numbered event on its way to one client.
pub type Numbered = (u64, Arc<Prepared>);

struct Link {
    conn_id: u64,
    events: mpsc::Sender<Numbered>,
    kick: mpsc::UnboundedSender<CloseCode>,
}

/// One client session (the `session_id` a client got in our READY).
struct ClientRecord {
    shard_id: u32,
    /// IDENTIFY intents (`None`: the client sent none and gets all the shard receives).
    intents: Option<u64>,
    last_seq: u64,
    replay: VecDeque<Numbered>,
    /// Oldest sequence number no longer in `replay` (0: nothing dropped yet).
    dropped_through: u64,
    link: Option<Link>,
}

impl ClientRecord {
    fn push(&mut self, event: Arc<Prepared>) -> Numbered {
        self.last_seq += 1;
        let numbered = (self.last_seq, event);
        self.replay.push_back(numbered.clone());
        if self.replay.len() > REPLAY_CAPACITY {
            if let Some((seq, _)) = self.replay.pop_front() {
                self.dropped_through = seq;
            }
        }
        numbered
    }
}

/// A client session attached to a connection by IDENTIFY or RESUME.
pub struct Attached {
    /// The session id (READY's, or the resumed one).
    pub session_id: String,
    /// The session's highest sequence number.
    pub last_seq: u64,
    /// What to send first, numbered: READY + guilds, or the missed events + RESUMED.
    pub first: Vec<Numbered>,
    /// Live events for this connection (capacity `backpressure`).
    pub events: mpsc::Receiver<Numbered>,
    /// Close requests from the hub (fell behind; taken over by another connection).
    pub kicks: mpsc::UnboundedReceiver<CloseCode>,
}

/// Where a GUILD_MEMBERS_CHUNK nonce goes back to.
struct NonceRoute {
    session_id: String,
    original: Value,
}

/// State shared by every connection and the shard relay.
pub struct Hub {
    config: Arc<Config>,
    plan: ShardPlan,
    caches: HashMap<u32, Mutex<ShardCache>>,
    sessions: Mutex<HashMap<String, ClientRecord>>,
    nonces: Mutex<HashMap<String, NonceRoute>>,
    commands: HashMap<u32, mpsc::UnboundedSender<GatewayPayload>>,
    next_id: AtomicU64,
    open: Arc<AtomicU64>,
}

/// Counts one open client connection while alive.
struct OpenConnection(Arc<AtomicU64>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Client sessions with a live connection.
    pub connected: usize,
    /// Client sessions waiting for a RESUME.
    pub detached: usize,
    /// Events held in all replay buffers.
    pub replay_events: usize,
    /// Guilds in all shard caches.
    pub cached_guilds: usize,
}

impl Hub {
    /// A hub for `plan`'s shards with `caches` (fresh or restored) and each shard's command queue.
    pub fn new(
        config: Arc<Config>,
        plan: ShardPlan,
        caches: HashMap<u32, ShardCache>,
        commands: HashMap<u32, mpsc::UnboundedSender<GatewayPayload>>,
    ) -> Arc<Hub> {
        Arc::new(Hub {
            config,
            plan,
            caches: caches
                .into_iter()
                .map(|(id, cache)| (id, Mutex::new(cache)))
                .collect(),
            sessions: Mutex::new(HashMap::new()),
            nonces: Mutex::new(HashMap::new()),
            commands,
            next_id: AtomicU64::new(1),
            open: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Snapshots of every shard cache, for persisting.
    pub fn cache_snapshots(&self) -> HashMap<u32, Value> {
        self.caches
            .iter()
            .map(|(id, cache)| (*id, cache.lock().snapshot()))
            .collect()
    }

    /// Current counters.
    pub fn stats(&self) -> HubStats {
        let sessions = self.sessions.lock();
        let connected = sessions.values().filter(|r| r.link.is_some()).count();
        HubStats {
            connected,
            detached: sessions.len() - connected,
            replay_events: sessions.values().map(|r| r.replay.len()).sum(),
            cached_guilds: self.caches.values().map(|c| c.lock().guild_count()).sum(),
        }
    }

    /// Whether [`Hub::relay`] has anything to do with `event` on `shard_id`: the shard's cache
    /// keeps it, it starts or resumes the upstream session, or a client session is on the shard.
    pub fn needs(&self, shard_id: u32, event: &str) -> bool {
        matches!(event, "READY" | "RESUMED" | "GUILD_MEMBERS_CHUNK")
            || (self.caches.contains_key(&shard_id) && ShardCache::uses(event))
            || self
                .sessions
                .lock()
                .values()
                .any(|record| record.shard_id == shard_id)
    }

    /// Applies an upstream dispatch to the shard's cache and hands it to that shard's client
    /// sessions (GUILD_MEMBERS_CHUNK with a proxy nonce only to the session that asked).
    pub fn relay(&self, shard_id: u32, payload: GatewayPayload) {
        let Some((name, _)) = payload.as_dispatch() else {
            return;
        };
        let name = name.to_owned();
        let mut d = payload.d;
        let mut bot_id = None;
        if let Some(cache) = self.caches.get(&shard_id) {
            let mut cache = cache.lock();
            cache.apply(&name, &d);
            bot_id = cache.bot_id().map(str::to_owned);
        }
        if name == "READY" {
            // A new upstream session: whatever happened in between is gone, so no client
            // session on this shard can resume losslessly any more.
            self.invalidate_shard(shard_id);
            return;
        }
        if name == "RESUMED" {
            // The shard's own session event; clients get crafted ones.
            return;
        }
        let mut only: Option<String> = None;
        if name == "GUILD_MEMBERS_CHUNK" {
            if let Some(nonce) = d.get("nonce").and_then(Value::as_str).map(str::to_owned) {
                let last = d.get("chunk_index").and_then(Value::as_u64).map(|i| i + 1)
                    >= d.get("chunk_count").and_then(Value::as_u64);
                let mut nonces = self.nonces.lock();
                let route = if last {
                    nonces.remove(&nonce)
                } else {
                    nonces.get(&nonce).map(|r| NonceRoute {
                        session_id: r.session_id.clone(),
                        original: r.original.clone(),
                    })
                };
                if let Some(route) = route {
                    if let Some(object) = d.as_object_mut() {
                        object.insert("nonce".into(), route.original);
                    }
                    only = Some(route.session_id);
                }
            }
        }
        let bot_id = bot_id.as_deref();
        let mut stripped: Option<Arc<Prepared>> = None;
        let event = Prepared::new(name.clone(), d);
        let d = event.value().unwrap_or(&Value::Null);
        let mut sessions = self.sessions.lock();
        let mut dropped = Vec::new();
        for (session_id, record) in sessions.iter_mut() {
            if record.shard_id != shard_id
                || only.as_ref().is_some_and(|only| only != session_id)
                || !intents::wants(record.intents, &name, d, bot_id)
            {
                continue;
            }
            let event = if intents::strips_content(record.intents, &name, d, bot_id) {
                stripped
                    .get_or_insert_with(|| Prepared::new(name.clone(), without_content(d)))
                    .clone()
            } else {
                event.clone()
            };
            let numbered = record.push(event);
            match &record.link {
                // Full or gone: the event stays in the replay buffer; close the client
                // resumably so it comes back for it.
                Some(link) if link.events.try_send(numbered).is_err() => {
                    let _ = link.kick.send(BACKPRESSURE_CLOSE);
                    record.link = None;
                }
                Some(_) => {}
                None if record.dropped_through > 0 => dropped.push(session_id.clone()),
                None => {}
            }
        }
        // A detached session whose missed events no longer fit can never resume losslessly.
        for session_id in dropped {
            sessions.remove(&session_id);
        }
    }

    /// Ends every client session of `shard_id`; connected clients are closed and their
    /// RESUME will be answered with op 9, so they identify afresh.
    fn invalidate_shard(&self, shard_id: u32) {
        let mut sessions = self.sessions.lock();
        sessions.retain(|session_id, record| {
            if record.shard_id != shard_id {
                return true;
            }
            tracing::info!(
                session_id,
                shard_id,
                "upstream session renewed; client session ended"
            );
            if let Some(link) = &record.link {
                let _ = link.kick.send(CloseCode::SessionTimedOut);
            }
            false
        });
    }

    /// Closes every connected client with `code`, keeping the sessions for a RESUME.
    pub fn close_all(&self, code: CloseCode) {
        for record in self.sessions.lock().values_mut() {
            if let Some(link) = record.link.take() {
                let _ = link.kick.send(code);
            }
        }
    }

    /// Every client session with its replay buffer, for persisting.
    pub fn client_snapshots(&self) -> Vec<SavedClient> {
        let sessions = self.sessions.lock();
        let mut saved = Vec::with_capacity(sessions.len());
        'sessions: for (session_id, record) in sessions.iter() {
            let mut events = Vec::with_capacity(record.replay.len());
            for (seq, event) in &record.replay {
                let d = match event.value() {
                    Some(d) => d.clone(),
                    None => match event
                        .data(Encoding::Json)
                        .ok()
                        .and_then(|bytes| serde_json::from_slice(bytes).ok())
                    {
                        Some(d) => d,
                        None => {
                            tracing::warn!(
                                session_id,
                                "client session not saved: an event cannot be encoded"
                            );
                            continue 'sessions;
                        }
                    },
                };
                events.push(SavedEvent {
                    s: *seq,
                    t: event.name.clone(),
                    d,
                });
            }
            saved.push(SavedClient {
                session_id: session_id.clone(),
                shard_id: record.shard_id,
                intents: record.intents,
                last_seq: record.last_seq,
                dropped_through: record.dropped_through,
                events,
            });
        }
        saved
    }

    /// Restores saved client sessions (detached, waiting for a RESUME) of the shards run here;
    /// returns how many were restored.
    pub fn restore_clients(&self, saved: Vec<SavedClient>) -> usize {
        let mut sessions = self.sessions.lock();
        let mut restored = 0;
        for client in saved {
            if !self.caches.contains_key(&client.shard_id) {
                continue;
            }
            let replay = client
                .events
                .into_iter()
                .map(|event| (event.s, Prepared::new(event.t, event.d)))
                .collect();
            sessions.insert(
                client.session_id,
                ClientRecord {
                    shard_id: client.shard_id,
                    intents: client.intents,
                    last_seq: client.last_seq,
                    replay,
                    dropped_through: client.dropped_through,
                    link: None,
                },
            );
            restored += 1;
        }
        restored
    }

    fn new_session_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{:016x}", rand::random::<u64>(), n)
    }

    fn check_token(&self, token: &str) -> bool {
        if !self.config.validate_token {
            return true;
        }
        let token = token.trim();
        let bare = token
            .strip_prefix("Bot ")
            .or_else(|| token.strip_prefix("bot "))
            .unwrap_or(token);
        bare == self.config.bare_token()
    }

    fn link(
        &self,
        conn_id: u64,
    ) -> (
        Link,
        mpsc::Receiver<Numbered>,
        mpsc::UnboundedReceiver<CloseCode>,
    ) {
        let (events, events_rx) = mpsc::channel(self.config.backpressure);
        let (kick, kicks) = mpsc::unbounded_channel();
        (
            Link {
                conn_id,
                events,
                kick,
            },
            events_rx,
            kicks,
        )
    }

    /// Client WebSocket connections currently open (any state).
    pub fn open_connections(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    fn count_open(&self) -> OpenConnection {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.open.clone())
    }

    /// A fresh connection id.
    pub fn connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Decides an IDENTIFY on connection `conn_id`. On acceptance the new session's first
    /// events (READY, then GUILD_CREATE/GUILD_DELETE per cached guild) are numbered and buffered.
    pub fn identify(&self, info: &IdentifyInfo, conn_id: u64) -> Result<Attached, IdentifyVerdict> {
        if !self.check_token(&info.token) {
            return Err(IdentifyVerdict::Close(CloseCode::AuthenticationFailed));
        }
        let (shard_id, count) = match info.shard {
            Some(shard) => (shard.id, shard.count),
            None => (0, 1),
        };
        if count != self.plan.total {
            return Err(IdentifyVerdict::Close(CloseCode::ShardingRequired));
        }
        if !self.plan.serves(shard_id, count) {
            return Err(IdentifyVerdict::Close(CloseCode::InvalidShard));
        }
        let cache = self
            .caches
            .get(&shard_id)
            .ok_or(IdentifyVerdict::Close(CloseCode::InvalidShard))?;
        let mut cache = cache.lock();
        // No upstream session yet: the client retries, as after Discord's own op 9.
        let mut ready = cache.ready.clone().ok_or(IdentifyVerdict::InvalidSession)?;
        let session_id = self.new_session_id();
        let guild_stubs: Vec<Value> = cache
            .guild_ids()
            .into_iter()
            .map(|id| json!({"id": id, "unavailable": true}))
            .collect();
        if let Some(object) = ready.as_object_mut() {
            object.insert("session_id".into(), json!(session_id));
            object.insert("resume_gateway_url".into(), json!(self.config.resume_url()));
            object.insert("guilds".into(), Value::Array(guild_stubs));
            object.insert("shard".into(), json!([shard_id, count]));
        }
        let (link, events, kicks) = self.link(conn_id);
        let mut record = ClientRecord {
            shard_id,
            intents: info.intents,
            last_seq: 0,
            replay: VecDeque::new(),
            dropped_through: 0,
            link: Some(link),
        };
        let mut first = vec![record.push(Prepared::new("READY", ready))];
        let bot_id = cache.bot_id().map(str::to_owned);
        let may_trim = intents::may_trim_guilds(info.intents);
        for id in cache.guild_ids() {
            // Clients whose intents see less get their own copy; the rest share one.
            let trimmed = may_trim
                .then(|| cache.guild(&id))
                .flatten()
                .and_then(|guild| {
                    let available = guild.get("unavailable").and_then(Value::as_bool) != Some(true);
                    available
                        .then(|| intents::guild_for(info.intents, &guild, bot_id.as_deref()))
                        .flatten()
                });
            let event = match trimmed {
                Some(guild) => Prepared::new("GUILD_CREATE", guild),
                None => match cache.guild_event(&id) {
                    Some(event) => event,
                    None => continue,
                },
            };
            first.push(record.push(event));
        }
        let last_seq = record.last_seq;
        // Registered while the cache is locked: no live event can slip between these.
        self.sessions.lock().insert(session_id.clone(), record);
        drop(cache);
        Ok(Attached {
            session_id,
            last_seq,
            first,
            events,
            kicks,
        })
    }

    /// Decides a RESUME on connection `conn_id`. On acceptance `first` holds the events after
    /// the client's `seq` and RESUMED; an older connection of the session is closed.
    pub fn resume(&self, info: &ResumeInfo, conn_id: u64) -> Result<Attached, ResumeVerdict> {
        if !self.check_token(&info.token) {
            return Err(ResumeVerdict::Close(CloseCode::AuthenticationFailed));
        }
        let mut sessions = self.sessions.lock();
        let record = sessions
            .get_mut(&info.session_id)
            .ok_or(ResumeVerdict::InvalidSession { resumable: false })?;
        let from = info.seq.unwrap_or(0);
        if from < record.dropped_through {
            sessions.remove(&info.session_id);
            return Err(ResumeVerdict::InvalidSession { resumable: false });
        }
        if from > record.last_seq {
            return Err(ResumeVerdict::Close(CloseCode::InvalidSeq));
        }
        let missed: Vec<Numbered> = record
            .replay
            .iter()
            .filter(|(seq, event)| *seq > from && event.name != "READY")
            .cloned()
            .collect();
        let (link, events, kicks) = self.link(conn_id);
        if let Some(old) = record.link.replace(link) {
            let _ = old.kick.send(CloseCode::SessionTimedOut);
        }
        let resumed = record.push(Prepared::new("RESUMED", json!({})));
        let mut first = missed;
        first.push(resumed);
        Ok(Attached {
            session_id: info.session_id.clone(),
            last_seq: record.last_seq,
            first,
            events,
            kicks,
        })
    }

    /// Connection `conn_id` of `session_id` ended; keep the session for a RESUME or not.
    pub fn detach(&self, session_id: &str, conn_id: u64, keep: bool) {
        let mut sessions = self.sessions.lock();
        let Some(record) = sessions.get_mut(session_id) else {
            return;
        };
        if record
            .link
            .as_ref()
            .is_some_and(|link| link.conn_id == conn_id)
        {
            record.link = None;
        }
        if !keep && record.link.is_none() {
            sessions.remove(session_id);
        }
    }

    /// Queues a worker's command on `shard_id` as it is (op 8's own nonce comes back in the
    /// chunks); false when the shard does not run here.
    pub fn shard_command(&self, shard_id: u32, payload: GatewayPayload) -> bool {
        self.commands
            .get(&shard_id)
            .is_some_and(|commands| commands.send(payload).is_ok())
    }

    /// Cached guild `guild_id` of `shard_id` as a GUILD_CREATE object.
    pub fn cached_guild(&self, shard_id: u32, guild_id: &str) -> Option<Value> {
        self.caches.get(&shard_id)?.lock().guild(guild_id)
    }

    /// Sends a client command to its shard (op 8 gets a proxy nonce routing the chunks back).
    pub fn command(&self, session_id: &str, mut payload: GatewayPayload) {
        let Some(shard_id) = self.sessions.lock().get(session_id).map(|r| r.shard_id) else {
            return;
        };
        if payload.op == OpCode::RequestGuildMembers {
            let nonce = format!("p{}", self.next_id.fetch_add(1, Ordering::Relaxed));
            let original = payload.d.get("nonce").cloned().unwrap_or(Value::Null);
            if let Some(object) = payload.d.as_object_mut() {
                object.insert("nonce".into(), json!(nonce));
            }
            self.nonces.lock().insert(
                nonce,
                NonceRoute {
                    session_id: session_id.to_owned(),
                    original,
                },
            );
        }
        if let Some(commands) = self.commands.get(&shard_id) {
            let _ = commands.send(payload);
        }
    }
}

fn close_message(code: CloseCode) -> Message {
    Message::Close(Some(CloseFrame {
        code: WsCloseCode::from(code.code()),
        reason: code.description().into(),
    }))
}

/// Serves one client WebSocket until it closes.
// One loop over the server session's actions, the hub's events and kicks and the socket: the
// arms share the session, framer and queue, so it reads best whole.
#[allow(clippy::too_many_lines)]
pub async fn serve_client<S>(hub: Arc<Hub>, mut ws: WebSocketStream<S>, query: &str)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let _open = hub.count_open();
    let params = match ConnectionParams::from_query(query) {
        Ok(params) => params,
        Err(err) => {
            let code = match err {
                ParamsError::BadVersion(_) => CloseCode::InvalidApiVersion,
                _ => CloseCode::DecodeError,
            };
            let _ = ws.send(close_message(code)).await;
            return;
        }
    };
    let mut framer = match Framer::new(&params, ZLIB_LEVEL) {
        Ok(framer) => framer,
        Err(err) => {
            tracing::warn!(%err, "cannot set up compression for a client");
            let _ = ws.send(close_message(CloseCode::UnknownError)).await;
            return;
        }
    };
    let encoding = params.encoding;
    let conn_id = hub.connection_id();
    let mut kick_rx: Option<mpsc::UnboundedReceiver<CloseCode>> = None;
    let (mut session, actions) = ServerSession::new(ServerConfig::default(), Instant::now());
    let mut events_rx: Option<mpsc::Receiver<Numbered>> = None;
    let mut session_id: Option<String> = None;
    let mut pending: VecDeque<ServerAction> = actions.into();
    let mut out: Vec<Message> = Vec::new();
    let mut oversized = false;
    loop {
        while let Some(action) = pending.pop_front() {
            match action {
                ServerAction::Send(mut payload) => match framer.payload(with_trace(&mut payload)) {
                    Ok(message) => out.push(message),
                    Err(err) => tracing::warn!(%err, "cannot frame a payload"),
                },
                ServerAction::Close(code) => {
                    out.push(close_message(code));
                    for message in out.drain(..) {
                        let _ = ws.feed(message).await;
                    }
                    let _ = ws.flush().await;
                    if oversized {
                        crate::listen::drain_unread(ws.get_mut()).await;
                    }
                    if let Some(id) = &session_id {
                        hub.detach(id, conn_id, code.can_resume());
                    }
                    return;
                }
                ServerAction::ValidateIdentify(info) => {
                    if info.compress {
                        framer.enable_payload_compression();
                    }
                    match hub.identify(&info, conn_id) {
                        Ok(attached) => {
                            pending.extend(
                                session.complete_identify(IdentifyVerdict::Accept, Instant::now()),
                            );
                            for (seq, event) in &attached.first {
                                // Keep the core's counter in step with ours.
                                let _ = session.next_seq();
                                push_dispatch(&mut framer, &mut out, event, *seq);
                            }
                            session_id = Some(attached.session_id);
                            events_rx = Some(attached.events);
                            kick_rx = Some(attached.kicks);
                        }
                        Err(verdict) => {
                            pending.extend(session.complete_identify(verdict, Instant::now()))
                        }
                    }
                }
                ServerAction::ValidateResume(info) => match hub.resume(&info, conn_id) {
                    Ok(attached) => {
                        pending.extend(session.complete_resume(
                            ResumeVerdict::Accept {
                                last_seq: attached.last_seq,
                            },
                            Instant::now(),
                        ));
                        for (seq, event) in &attached.first {
                            push_dispatch(&mut framer, &mut out, event, *seq);
                        }
                        session_id = Some(attached.session_id);
                        events_rx = Some(attached.events);
                        kick_rx = Some(attached.kicks);
                    }
                    Err(verdict) => {
                        pending.extend(session.complete_resume(verdict, Instant::now()))
                    }
                },
                ServerAction::Command(payload) => {
                    if let Some(id) = &session_id {
                        if matches!(
                            payload.op,
                            OpCode::PresenceUpdate
                                | OpCode::VoiceStateUpdate
                                | OpCode::RequestGuildMembers
                        ) {
                            hub.command(id, payload);
                        }
                    }
                }
            }
        }
        if !out.is_empty() {
            // A client that stopped reading blocks this write; when the hub gives up on it
            // meanwhile, it gets a grace period to drain before the socket is dropped.
            let mut kicked = None;
            let written = {
                let write = async {
                    for message in out.drain(..) {
                        ws.feed(message).await?;
                    }
                    ws.flush().await
                };
                tokio::pin!(write);
                tokio::select! {
                    result = &mut write => result.is_ok(),
                    Some(code) = next_kick(&mut kick_rx) => {
                        kicked = Some(code);
                        matches!(
                            tokio::time::timeout(KICKED_WRITE_GRACE, &mut write).await,
                            Ok(Ok(()))
                        )
                    }
                }
            };
            if !written {
                out.clear();
                let keep = session.on_client_closed(None);
                if let Some(id) = &session_id {
                    hub.detach(id, conn_id, keep);
                }
                return;
            }
            if let Some(code) = kicked {
                pending.extend(session.close(code));
                continue;
            }
        }
        let deadline = session
            .poll_at()
            .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {
                pending.extend(session.on_tick(Instant::now()));
            }
            Some(code) = next_kick(&mut kick_rx) => {
                pending.extend(session.close(code));
            }
            Some((seq, event)) = next_event(&mut events_rx) => {
                if session.state() == ServerState::Active {
                    push_dispatch(&mut framer, &mut out, &event, seq);
                    // Send what else is queued in the same flush.
                    if let Some(rx) = &mut events_rx {
                        while out.len() < 64 {
                            match rx.try_recv() {
                                Ok((seq, event)) => push_dispatch(&mut framer, &mut out, &event, seq),
                                Err(_) => break,
                            }
                        }
                    }
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    pending.extend(on_client_bytes(&mut session, text.as_bytes(), encoding));
                }
                Some(Ok(Message::Binary(bytes))) => {
                    pending.extend(on_client_bytes(&mut session, &bytes, encoding));
                }
                Some(Ok(Message::Close(frame))) => {
                    let keep = session.on_client_closed(frame.map(|f| u16::from(f.code)));
                    if let Some(id) = &session_id {
                        hub.detach(id, conn_id, keep);
                    }
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(err))) => {
                    // Over the frame limit (1 MiB): closed with 4002 like any payload the
                    // gateway cannot take, whatever its size.
                    tracing::debug!("oversized gateway frame from a client: {err}");
                    oversized = true;
                    pending.extend(session.on_undecodable(Instant::now()));
                }
                Some(Err(_)) | None => {
                    let keep = session.on_client_closed(None);
                    if let Some(id) = &session_id {
                        hub.detach(id, conn_id, keep);
                    }
                    return;
                }
            },
        }
    }
}

/// Adds `_trace` to HELLO as Discord does.
fn with_trace(payload: &mut GatewayPayload) -> &GatewayPayload {
    if payload.op == OpCode::Hello {
        if let Some(d) = payload.d.as_object_mut() {
            d.entry("_trace")
                .or_insert_with(|| json!(["[\"discord-mitm-gateway-proxy\",{\"micros\":0.0}]"]));
        }
    }
    payload
}

fn on_client_bytes(
    session: &mut ServerSession,
    bytes: &[u8],
    encoding: Encoding,
) -> Vec<ServerAction> {
    let now = Instant::now();
    match codec::decode_payload(bytes, encoding, &DecodeOptions::CLIENT_STRICT) {
        Ok(payload) => session.on_payload(&payload, bytes.len(), now),
        Err(_) => session.on_undecodable(now),
    }
}

fn push_dispatch(framer: &mut Framer, out: &mut Vec<Message>, event: &Prepared, seq: u64) {
    match framer.dispatch(event, seq) {
        Ok(message) => out.push(message),
        Err(err) => tracing::warn!(%err, event = %event.name, "cannot frame a dispatch"),
    }
}

async fn next_event(events: &mut Option<mpsc::Receiver<Numbered>>) -> Option<Numbered> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// Routes upgrading `/` (any query) to a client gateway connection.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new().route("/", any(upgrade)).with_state(hub)
}

async fn upgrade(State(hub): State<Arc<Hub>>, mut request: Request) -> Response {
    let accepted = match Handshake::of(request.headers()) {
        Handshake::NotWebSocket => {
            return (
                StatusCode::BAD_REQUEST,
                "this is a gateway: connect with a WebSocket\n",
            )
                .into_response()
        }
        Handshake::UnsupportedVersion(status, headers) => {
            return (status, headers).into_response();
        }
        Handshake::Accept(status, headers) => (status, headers),
    };
    let query = request.uri().query().unwrap_or("").to_string();
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = hyper_util::rt::TokioIo::new(upgraded);
                let ws =
                    WebSocketStream::from_raw_socket(io, Role::Server, Some(websocket_config()))
                        .await;
                serve_client(hub, ws, &query).await;
            }
            Err(err) => tracing::debug!("client upgrade failed: {err}"),
        }
    });
    accepted.into_response()
}

fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

async fn next_kick(kicks: &mut Option<mpsc::UnboundedReceiver<CloseCode>>) -> Option<CloseCode> {
    match kicks {
        Some(kicks) => kicks.recv().await,
        None => std::future::pending().await,
    }
}
