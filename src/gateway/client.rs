//! Client-side gateway session: the state machine of one shard talking to a Discord gateway
//! (the gateway proxy's upstream shards; a model of what a recorded client does).
//!
//! Driving it: [`ClientSession::new`] returns a [`ClientAction::Connect`]; open that WebSocket
//! (adding the usual `?v=..&encoding=..&compress=..` query) and call
//! [`ClientSession::on_connected`] or [`ClientSession::on_connect_failed`]. Feed every decoded
//! server payload to [`ClientSession::on_payload`], report the server closing the socket (or
//! the socket dying) with [`ClientSession::on_closed`], and call [`ClientSession::on_tick`] at
//! [`ClientSession::poll_at`]. On [`ClientAction::RequestIdentify`] ask the identify queue of
//! the bot (e.g. [`super::ratelimit::IdentifyLimiter`]) and call
//! [`ClientSession::identify_permitted`] once the bucket is free. After a
//! [`ClientAction::Close`] close that socket and report nothing more from it.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::backoff::{Backoff, JitterRng};
use super::close::{CloseCode, CloseDisposition};
use super::payload::{GatewayPayload, OpCode};
use super::ratelimit::{RateLimiter, WindowKind, GATEWAY_RATE_LIMIT, GATEWAY_RATE_PERIOD};
use super::server::ShardInfo;

/// The code this client closes with when it wants to RESUME afterwards (anything but 1000/1001
/// keeps the session alive on Discord's side).
pub const RESUMABLE_CLOSE: CloseCode = CloseCode::UnknownError;

/// Tunables and identity of one shard.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The token sent in IDENTIFY and RESUME, as Discord expects it there (no "Bot " prefix).
    pub token: String,
    /// The gateway URL from GET /gateway(/bot), used for new sessions.
    pub gateway_url: String,
    /// Gateway intents; `None` leaves the field out (user accounts).
    pub intents: Option<u64>,
    /// `[shard_id, num_shards]`; `None` leaves the field out.
    pub shard: Option<ShardInfo>,
    /// `max_concurrency` from GET /gateway/bot (identify bucket = shard_id % max_concurrency).
    pub max_concurrency: u32,
    /// IDENTIFY `properties`.
    pub properties: Map<String, Value>,
    /// IDENTIFY `presence`.
    pub presence: Option<Value>,
    /// IDENTIFY `large_threshold`.
    pub large_threshold: Option<u64>,
    /// IDENTIFY `compress` (per-payload zlib).
    pub compress: bool,
    /// Further IDENTIFY fields (e.g. the official client's `capabilities`, `client_state`).
    pub identify_extra: Map<String, Value>,
    /// Reconnect backoff after consecutive failures.
    pub backoff: Backoff,
    /// How long to wait for HELLO after the socket opened.
    pub hello_timeout: Duration,
    /// The wait before identifying again after op 9 `d: false` (drawn uniformly).
    pub invalid_session_delay: (Duration, Duration),
    /// Whether commands go through the 120-per-60-s limiter (heartbeats always have room).
    pub rate_limit_commands: bool,
    /// Seed of the jitter source; use a random one in production.
    pub jitter_seed: u64,
}

impl ClientConfig {
    /// A configuration with Discord's usual defaults for `token` against `gateway_url`.
    pub fn new(token: impl Into<String>, gateway_url: impl Into<String>) -> Self {
        let mut properties = Map::new();
        properties.insert("os".into(), Value::from(std::env::consts::OS));
        properties.insert("browser".into(), Value::from("discord-mitm"));
        properties.insert("device".into(), Value::from("discord-mitm"));
        ClientConfig {
            token: token.into(),
            gateway_url: gateway_url.into(),
            intents: Some(0),
            shard: None,
            max_concurrency: 1,
            properties,
            presence: None,
            large_threshold: None,
            compress: false,
            identify_extra: Map::new(),
            backoff: Backoff::default(),
            hello_timeout: Duration::from_secs(20),
            invalid_session_delay: (Duration::from_secs(1), Duration::from_secs(5)),
            rate_limit_commands: true,
            jitter_seed: 0x5eed,
        }
    }
}

/// What a session needs to be resumed, possibly by another process (it serializes for that).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResumeState {
    /// `session_id` from READY.
    pub session_id: String,
    /// The last dispatch sequence number received.
    pub seq: Option<u64>,
    /// `resume_gateway_url` from READY, if the gateway sent one.
    pub resume_url: Option<String>,
}

/// Where a client-side session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// No socket; waiting until the reconnect time.
    Disconnected,
    /// Asked the owner to open a socket.
    Connecting,
    /// Socket open; waiting for HELLO.
    AwaitingHello,
    /// HELLO received; waiting for the owner's permission to IDENTIFY.
    AwaitingIdentifyPermission,
    /// IDENTIFY sent; waiting for READY.
    Identifying,
    /// RESUME sent; waiting for RESUMED.
    Resuming,
    /// READY or RESUMED received.
    Active,
    /// Shut down by the owner or by a close meaning "no longer needed".
    Stopped,
    /// Closed with a fatal code; reconnecting would fail the same way.
    Fatal,
}

impl ClientState {
    fn has_socket(self) -> bool {
        matches!(
            self,
            ClientState::AwaitingHello
                | ClientState::AwaitingIdentifyPermission
                | ClientState::Identifying
                | ClientState::Resuming
                | ClientState::Active
        )
    }
}

/// What the owner must do.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientAction {
    /// Open a WebSocket to `url` (with the same query as the first connection).
    Connect {
        /// `resume_gateway_url` when resuming, the configured gateway URL otherwise.
        url: String,
        /// Whether the session will be resumed on this connection.
        resume: bool,
    },
    /// Send this payload.
    Send(GatewayPayload),
    /// Close the socket with this code and stop reading from it.
    Close(CloseCode),
    /// Ask the bot's identify queue for permission; then call `identify_permitted`.
    RequestIdentify {
        /// This shard's id (0 without sharding).
        shard_id: u32,
        /// `shard_id % max_concurrency`.
        bucket_key: u32,
    },
    /// The gateway closed the session with a fatal code: the configuration (token, shard,
    /// intents, version) is wrong. The session stops; surface this to the user.
    Fatal(CloseCode),
    /// The gateway said the session is no longer needed; the session stops.
    Finished(CloseCode),
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientSessionError {
    /// The session was shut down or ended fatally.
    #[error("the gateway session has stopped ({0:?})")]
    Stopped(ClientState),
}

/// One client-side gateway session (one shard), across reconnects.
#[derive(Debug, Clone)]
pub struct ClientSession {
    config: ClientConfig,
    state: ClientState,
    rng: JitterRng,
    attempts: u32,
    session_id: Option<String>,
    resume_url: Option<String>,
    seq: Option<u64>,
    reconnect_at: Option<Instant>,
    hello_deadline: Option<Instant>,
    heartbeat_interval: Option<Duration>,
    next_heartbeat_at: Option<Instant>,
    awaiting_ack: bool,
    last_heartbeat_at: Option<Instant>,
    latency: Option<Duration>,
    limiter: Option<RateLimiter>,
    queue: VecDeque<GatewayPayload>,
    queue_retry_at: Option<Instant>,
    stop_code: Option<CloseCode>,
}

impl ClientSession {
    /// A new session; the actions hold the first connect.
    pub fn new(config: ClientConfig, now: Instant) -> (Self, Vec<ClientAction>) {
        Self::start(config, None, now)
    }

    /// A session that resumes `resume` (e.g. saved by a previous process) on its first connect.
    pub fn with_session(
        config: ClientConfig,
        resume: ResumeState,
        now: Instant,
    ) -> (Self, Vec<ClientAction>) {
        Self::start(config, Some(resume), now)
    }

    fn start(
        config: ClientConfig,
        resume: Option<ResumeState>,
        now: Instant,
    ) -> (Self, Vec<ClientAction>) {
        let (session_id, seq, resume_url) = match resume {
            Some(resume) => (Some(resume.session_id), resume.seq, resume.resume_url),
            None => (None, None, None),
        };
        let mut session = ClientSession {
            rng: JitterRng::new(config.jitter_seed),
            config,
            state: ClientState::Disconnected,
            attempts: 0,
            session_id,
            resume_url,
            seq,
            reconnect_at: None,
            hello_deadline: None,
            heartbeat_interval: None,
            next_heartbeat_at: None,
            awaiting_ack: false,
            last_heartbeat_at: None,
            latency: None,
            limiter: None,
            queue: VecDeque::new(),
            queue_retry_at: None,
            stop_code: None,
        };
        let mut actions = Vec::new();
        session.schedule_reconnect(Duration::ZERO, now, &mut actions);
        (session, actions)
    }

    /// Where the session is.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// What a later RESUME needs, while there is a session to resume.
    pub fn resume_state(&self) -> Option<ResumeState> {
        self.session_id.as_ref().map(|session_id| ResumeState {
            session_id: session_id.clone(),
            seq: self.seq,
            resume_url: self.resume_url.clone(),
        })
    }

    /// The last dispatch sequence number received.
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// The heartbeat interval from the current connection's HELLO.
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        self.heartbeat_interval
    }

    /// Time between the last heartbeat and its ACK.
    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// Consecutive failed connection attempts since the last READY/RESUMED.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Commands waiting for the session to become active or for the rate limit.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The close code that stopped the session, if it stopped because of one.
    pub fn stop_code(&self) -> Option<CloseCode> {
        self.stop_code
    }

    /// When [`ClientSession::on_tick`] must next be called; `None` when nothing is scheduled.
    pub fn poll_at(&self) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        let mut consider = |candidate: Option<Instant>| {
            if let Some(candidate) = candidate {
                at = Some(at.map_or(candidate, |at| at.min(candidate)));
            }
        };
        match self.state {
            ClientState::Disconnected => consider(self.reconnect_at),
            ClientState::AwaitingHello => consider(self.hello_deadline),
            _ => {}
        }
        if self.state.has_socket() {
            consider(self.next_heartbeat_at);
        }
        if self.state == ClientState::Active && !self.queue.is_empty() {
            consider(self.queue_retry_at);
        }
        at
    }

    /// The socket asked for by [`ClientAction::Connect`] is open.
    pub fn on_connected(&mut self, now: Instant) -> Vec<ClientAction> {
        match self.state {
            ClientState::Connecting => {
                self.state = ClientState::AwaitingHello;
                self.hello_deadline = Some(now + self.config.hello_timeout);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The socket asked for by [`ClientAction::Connect`] could not be opened.
    pub fn on_connect_failed(&mut self, now: Instant) -> Vec<ClientAction> {
        if self.state != ClientState::Connecting {
            return Vec::new();
        }
        // The resume URL may be what failed; the main gateway can resume too.
        self.resume_url = None;
        let mut actions = Vec::new();
        self.reconnect_with_backoff(now, &mut actions);
        actions
    }

    /// The gateway closed the socket with `code`, or it died without a close frame (`None`).
    pub fn on_closed(&mut self, code: Option<u16>, now: Instant) -> Vec<ClientAction> {
        if self.state == ClientState::Connecting {
            return self.on_connect_failed(now);
        }
        if !self.state.has_socket() {
            return Vec::new();
        }
        let code = code.map(CloseCode::from_u16);
        let disposition = code.map_or(CloseDisposition::Resume, CloseCode::disposition);
        let mut actions = Vec::new();
        match (disposition, code) {
            (CloseDisposition::Fatal, Some(code)) => {
                tracing::error!(%code, "gateway closed the session fatally; not reconnecting");
                self.stop(ClientState::Fatal, Some(code));
                actions.push(ClientAction::Fatal(code));
            }
            (CloseDisposition::Finished, Some(code)) => {
                tracing::info!(%code, "gateway session no longer needed");
                self.stop(ClientState::Stopped, Some(code));
                actions.push(ClientAction::Finished(code));
            }
            (CloseDisposition::NewSession, _) => {
                tracing::info!(?code, "gateway session ended; identifying again");
                self.forget_session();
                self.reconnect_with_backoff(now, &mut actions);
            }
            _ => {
                tracing::info!(?code, "gateway connection closed; resuming");
                self.reconnect_with_backoff(now, &mut actions);
            }
        }
        actions
    }

    /// The owner's identify queue let this shard IDENTIFY now.
    pub fn identify_permitted(&mut self, now: Instant) -> Vec<ClientAction> {
        if self.state != ClientState::AwaitingIdentifyPermission {
            return Vec::new();
        }
        self.state = ClientState::Identifying;
        let identify = self.identify_payload();
        if let Some(limiter) = &mut self.limiter {
            limiter.acquire_anyway(now);
        }
        vec![ClientAction::Send(identify)]
    }

    /// Queues a command (presence update, request guild members, ...); it is sent once the
    /// session is active and the rate limit allows.
    pub fn send(
        &mut self,
        payload: GatewayPayload,
        now: Instant,
    ) -> Result<Vec<ClientAction>, ClientSessionError> {
        if matches!(self.state, ClientState::Stopped | ClientState::Fatal) {
            return Err(ClientSessionError::Stopped(self.state));
        }
        self.queue.push_back(payload);
        let mut actions = Vec::new();
        self.flush_queue(now, &mut actions);
        Ok(actions)
    }

    /// Ends the session for good: closes with 1000, which makes Discord drop the session.
    pub fn shutdown(&mut self, _now: Instant) -> Vec<ClientAction> {
        self.stop_with_close(CloseCode::Normal)
    }

    /// Closes without ending the session (code 4000); [`ClientSession::resume_state`] can then
    /// be handed to [`ClientSession::with_session`] later, e.g. by a restarted process.
    pub fn disconnect_resumable(&mut self, _now: Instant) -> Vec<ClientAction> {
        self.stop_with_close(RESUMABLE_CLOSE)
    }

    /// Fires the timers that are due at `now`: reconnect, HELLO timeout, heartbeat (and zombie
    /// detection), queued commands.
    pub fn on_tick(&mut self, now: Instant) -> Vec<ClientAction> {
        let mut actions = Vec::new();
        match self.state {
            ClientState::Disconnected => {
                if self.reconnect_at.is_some_and(|at| now >= at) {
                    self.connect(&mut actions);
                }
                return actions;
            }
            ClientState::AwaitingHello if self.hello_deadline.is_some_and(|at| now >= at) => {
                tracing::info!("no HELLO from the gateway in time; reconnecting");
                actions.push(ClientAction::Close(RESUMABLE_CLOSE));
                self.reconnect_with_backoff(now, &mut actions);
                return actions;
            }
            state if !state.has_socket() => return actions,
            _ => {}
        }
        if let (Some(due), Some(interval)) = (self.next_heartbeat_at, self.heartbeat_interval) {
            if now >= due {
                if self.awaiting_ack {
                    // No ACK since the last heartbeat: the connection is failed or "zombied".
                    tracing::info!("no heartbeat ACK; connection zombied, reconnecting to resume");
                    actions.push(ClientAction::Close(RESUMABLE_CLOSE));
                    self.reconnect_with_backoff(now, &mut actions);
                    return actions;
                }
                actions.push(self.heartbeat(now));
                let next = due + interval;
                self.next_heartbeat_at = Some(if next > now { next } else { now + interval });
            }
        }
        self.flush_queue(now, &mut actions);
        actions
    }

    /// A decoded payload from the gateway.
    pub fn on_payload(&mut self, payload: &GatewayPayload, now: Instant) -> Vec<ClientAction> {
        if !self.state.has_socket() {
            return Vec::new();
        }
        let mut actions = Vec::new();
        match payload.op {
            OpCode::Hello => self.on_hello(&payload.d, now, &mut actions),
            OpCode::Heartbeat => {
                // The gateway wants a heartbeat now; the next regular one comes an interval later.
                actions.push(self.heartbeat(now));
                if let Some(interval) = self.heartbeat_interval {
                    self.next_heartbeat_at = Some(now + interval);
                }
            }
            OpCode::HeartbeatAck if self.awaiting_ack => {
                self.awaiting_ack = false;
                self.latency = self
                    .last_heartbeat_at
                    .map(|sent| now.saturating_duration_since(sent));
            }
            OpCode::Dispatch => self.on_dispatch(payload, now, &mut actions),
            OpCode::Reconnect => {
                tracing::info!("gateway asked to reconnect; resuming");
                actions.push(ClientAction::Close(RESUMABLE_CLOSE));
                self.reconnect_with_backoff(now, &mut actions);
            }
            OpCode::InvalidSession => {
                if payload.d.as_bool() == Some(true) && self.session_id.is_some() {
                    tracing::info!("gateway invalidated the session (resumable); resuming");
                    actions.push(ClientAction::Close(RESUMABLE_CLOSE));
                    self.reconnect_with_backoff(now, &mut actions);
                } else {
                    tracing::info!("gateway invalidated the session; identifying again");
                    actions.push(ClientAction::Close(CloseCode::Normal));
                    self.forget_session();
                    let (low, high) = self.config.invalid_session_delay;
                    let wait = self.rng.between(low, high);
                    let backoff = self.next_backoff();
                    self.attempts = self.attempts.saturating_add(1);
                    self.schedule_reconnect(wait.max(backoff), now, &mut actions);
                }
            }
            _ => {}
        }
        actions
    }

    fn on_hello(&mut self, d: &Value, now: Instant, actions: &mut Vec<ClientAction>) {
        if self.state != ClientState::AwaitingHello {
            return;
        }
        let interval = d
            .get("heartbeat_interval")
            .and_then(Value::as_u64)
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let Some(interval) = interval else {
            tracing::warn!("HELLO without a usable heartbeat_interval; reconnecting");
            actions.push(ClientAction::Close(RESUMABLE_CLOSE));
            self.reconnect_with_backoff(now, actions);
            return;
        };
        self.hello_deadline = None;
        self.heartbeat_interval = Some(interval);
        // The first heartbeat comes after interval * jitter, jitter in [0, 1).
        self.next_heartbeat_at = Some(now + interval.mul_f64(self.rng.next_unit()));
        self.awaiting_ack = false;
        self.limiter = Some(self.command_limiter(interval));
        if let Some(session_id) = self.session_id.clone() {
            self.state = ClientState::Resuming;
            let resume = GatewayPayload::new(
                OpCode::Resume,
                json!({
                    "token": self.config.token,
                    "session_id": session_id,
                    "seq": self.seq,
                }),
            );
            if let Some(limiter) = &mut self.limiter {
                limiter.acquire_anyway(now);
            }
            actions.push(ClientAction::Send(resume));
        } else {
            self.state = ClientState::AwaitingIdentifyPermission;
            let shard_id = self.config.shard.map_or(0, |shard| shard.id);
            actions.push(ClientAction::RequestIdentify {
                shard_id,
                bucket_key: shard_id % self.config.max_concurrency.max(1),
            });
        }
    }

    fn on_dispatch(
        &mut self,
        payload: &GatewayPayload,
        now: Instant,
        actions: &mut Vec<ClientAction>,
    ) {
        if let Some(s) = payload.s {
            self.seq = Some(s);
        }
        match payload.t.as_deref() {
            Some("READY") => {
                match payload.d.get("session_id").and_then(Value::as_str) {
                    Some(session_id) => self.session_id = Some(session_id.to_owned()),
                    None => {
                        tracing::warn!("READY without session_id; this session cannot be resumed")
                    }
                }
                self.resume_url = payload
                    .d
                    .get("resume_gateway_url")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.become_active(now, actions);
            }
            Some("RESUMED") => self.become_active(now, actions),
            _ => {}
        }
    }

    fn become_active(&mut self, now: Instant, actions: &mut Vec<ClientAction>) {
        self.state = ClientState::Active;
        self.attempts = 0;
        self.flush_queue(now, actions);
    }

    fn flush_queue(&mut self, now: Instant, actions: &mut Vec<ClientAction>) {
        if self.state != ClientState::Active {
            return;
        }
        self.queue_retry_at = None;
        while let Some(payload) = self.queue.front() {
            if self.config.rate_limit_commands {
                if let Some(limiter) = &mut self.limiter {
                    if !limiter.try_acquire(now) {
                        self.queue_retry_at = Some(limiter.next_permit_at(now));
                        break;
                    }
                }
            }
            actions.push(ClientAction::Send(payload.clone()));
            self.queue.pop_front();
        }
    }

    /// A limiter for commands that leaves room for every heartbeat of a period, plus one for a
    /// heartbeat the gateway requests.
    fn command_limiter(&self, interval: Duration) -> RateLimiter {
        let period_ms = GATEWAY_RATE_PERIOD.as_millis();
        let interval_ms = interval.as_millis().max(1);
        let heartbeats = u32::try_from(period_ms.div_ceil(interval_ms)).unwrap_or(u32::MAX);
        let commands = GATEWAY_RATE_LIMIT
            .saturating_sub(heartbeats.saturating_add(1))
            .max(1);
        RateLimiter::new(commands, GATEWAY_RATE_PERIOD, WindowKind::Sliding)
    }

    fn heartbeat(&mut self, now: Instant) -> ClientAction {
        self.awaiting_ack = true;
        self.last_heartbeat_at = Some(now);
        let seq = self.seq.map_or(Value::Null, Value::from);
        ClientAction::Send(GatewayPayload::new(OpCode::Heartbeat, seq))
    }

    fn identify_payload(&self) -> GatewayPayload {
        let mut d = Map::new();
        d.insert("token".into(), Value::from(self.config.token.clone()));
        d.insert(
            "properties".into(),
            Value::Object(self.config.properties.clone()),
        );
        if let Some(intents) = self.config.intents {
            d.insert("intents".into(), Value::from(intents));
        }
        if let Some(shard) = self.config.shard {
            d.insert("shard".into(), json!([shard.id, shard.count]));
        }
        d.insert("compress".into(), Value::Bool(self.config.compress));
        if let Some(threshold) = self.config.large_threshold {
            d.insert("large_threshold".into(), Value::from(threshold));
        }
        if let Some(presence) = &self.config.presence {
            d.insert("presence".into(), presence.clone());
        }
        for (key, value) in &self.config.identify_extra {
            d.insert(key.clone(), value.clone());
        }
        GatewayPayload::new(OpCode::Identify, Value::Object(d))
    }

    fn next_backoff(&mut self) -> Duration {
        let unit = self.rng.next_unit();
        self.config.backoff.delay(self.attempts, unit)
    }

    /// Reconnects after a delay that grows with consecutive failures (none after a healthy
    /// session, so a routine reconnect is immediate).
    fn reconnect_with_backoff(&mut self, now: Instant, actions: &mut Vec<ClientAction>) {
        let delay = self.next_backoff();
        self.attempts = self.attempts.saturating_add(1);
        self.schedule_reconnect(delay, now, actions);
    }

    fn schedule_reconnect(
        &mut self,
        delay: Duration,
        now: Instant,
        actions: &mut Vec<ClientAction>,
    ) {
        self.drop_connection();
        if delay.is_zero() {
            self.connect(actions);
        } else {
            self.state = ClientState::Disconnected;
            self.reconnect_at = Some(now + delay);
        }
    }

    fn connect(&mut self, actions: &mut Vec<ClientAction>) {
        self.state = ClientState::Connecting;
        self.reconnect_at = None;
        let resume = self.session_id.is_some();
        let url = match (&self.resume_url, resume) {
            (Some(url), true) => url.clone(),
            _ => self.config.gateway_url.clone(),
        };
        actions.push(ClientAction::Connect { url, resume });
    }

    fn drop_connection(&mut self) {
        self.hello_deadline = None;
        self.heartbeat_interval = None;
        self.next_heartbeat_at = None;
        self.awaiting_ack = false;
        self.limiter = None;
    }

    fn forget_session(&mut self) {
        self.session_id = None;
        self.resume_url = None;
        self.seq = None;
    }

    fn stop(&mut self, state: ClientState, code: Option<CloseCode>) {
        self.drop_connection();
        self.reconnect_at = None;
        self.queue.clear();
        self.state = state;
        self.stop_code = code;
    }

    fn stop_with_close(&mut self, code: CloseCode) -> Vec<ClientAction> {
        let had_socket = self.state.has_socket() || self.state == ClientState::Connecting;
        if matches!(self.state, ClientState::Stopped | ClientState::Fatal) {
            return Vec::new();
        }
        if code == CloseCode::Normal {
            self.forget_session();
        }
        self.stop(ClientState::Stopped, None);
        if had_socket {
            vec![ClientAction::Close(code)]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
