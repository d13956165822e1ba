//! Server-side gateway session: the state machine a gateway server (our `serve` backend, the
//! gateway proxy's client side) runs per connection. It decides, the owner does the I/O.
//!
//! Driving it: create it with [`ServerSession::new`] when the WebSocket is open and perform the
//! returned actions (HELLO); feed every decoded client payload to [`ServerSession::on_payload`]
//! (or [`ServerSession::on_undecodable`] when decoding failed); call [`ServerSession::on_tick`]
//! at [`ServerSession::poll_at`]; answer [`ServerAction::ValidateIdentify`] /
//! [`ServerAction::ValidateResume`] with [`ServerSession::complete_identify`] /
//! [`ServerSession::complete_resume`]; send events through [`ServerSession::dispatch`], which
//! numbers them. After a [`ServerAction::Close`] the socket must be closed with that code and
//! the session emits nothing more.
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::close::CloseCode;
use super::intents;
use super::payload::{GatewayPayload, OpCode};
use super::ratelimit::{RateLimiter, WindowKind, GATEWAY_RATE_LIMIT, GATEWAY_RATE_PERIOD};

/// Discord's usual heartbeat interval.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(41_250);
/// Largest client payload Discord accepts, in bytes.
pub const MAX_CLIENT_PAYLOAD_BYTES: usize = 4096;
/// The official client's "QoS heartbeat", a heartbeat whose `d` is `{seq, qos}`.
const QOS_HEARTBEAT_OPCODE: u8 = 40;

/// Tunables of a server-side session.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `heartbeat_interval` sent in HELLO.
    pub heartbeat_interval: Duration,
    /// Slack after the interval before a missing heartbeat closes the connection with 4009.
    pub heartbeat_grace: Duration,
    /// Time the client has after HELLO to send IDENTIFY or RESUME before 4009.
    pub handshake_timeout: Duration,
    /// Largest accepted client payload in bytes (larger: 4002).
    pub max_payload_bytes: usize,
    /// Client payloads allowed per `rate_period` (more: 4008). Heartbeats count too.
    pub rate_limit: u32,
    /// The rate-limit period.
    pub rate_period: Duration,
    /// How the rate limit counts. Default [`WindowKind::Fixed`]: Discord documents
    /// "120 per 60 seconds" without a window shape and client libraries are built for a
    /// resetting window (discord.py) or a stricter sliding log (twilight); a fixed window
    /// accepts both, and still closes a client that bursts past 120 inside one window.
    pub rate_window: WindowKind,
    /// After an op 7 RECONNECT, how long the client has to close before we close with 4000.
    pub reconnect_close_delay: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            heartbeat_grace: Duration::from_secs(10),
            handshake_timeout: DEFAULT_HEARTBEAT_INTERVAL,
            max_payload_bytes: MAX_CLIENT_PAYLOAD_BYTES,
            rate_limit: GATEWAY_RATE_LIMIT,
            rate_period: GATEWAY_RATE_PERIOD,
            rate_window: WindowKind::Fixed,
            reconnect_close_delay: Duration::from_secs(5),
        }
    }
}

/// Where a server-side session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// HELLO sent; waiting for IDENTIFY or RESUME.
    AwaitingHandshake,
    /// IDENTIFY received; waiting for the owner's verdict.
    IdentifyPending,
    /// RESUME received; waiting for the owner's verdict.
    ResumePending,
    /// Identified or resumed: dispatches flow.
    Active,
    /// Closed; nothing more is emitted.
    Closed,
}

/// What the owner must do.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerAction {
    /// Send this payload to the client.
    Send(GatewayPayload),
    /// Close the WebSocket with this code. The session is over; keep it for a later RESUME only
    /// if `code.can_resume()`.
    Close(CloseCode),
    /// Check this IDENTIFY (token, shard, intents) and answer with `complete_identify`.
    ValidateIdentify(Box<IdentifyInfo>),
    /// Check this RESUME (token, session, seq) and answer with `complete_resume`.
    ValidateResume(ResumeInfo),
    /// A client command for the backend (presence update, request guild members, voice state,
    /// the official client's subscriptions, ...). Sent only once the session is active.
    Command(GatewayPayload),
}

/// `[shard_id, num_shards]` from IDENTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    /// This connection's shard.
    pub id: u32,
    /// How many shards the bot runs.
    pub count: u32,
}

/// What the client sent in IDENTIFY.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentifyInfo {
    /// The token, exactly as sent (may carry a "Bot " prefix).
    pub token: String,
    /// Gateway intents; user accounts send none.
    pub intents: Option<u64>,
    /// The shard, if the client shards.
    pub shard: Option<ShardInfo>,
    /// Connection properties (`os`, `browser`, `device`, ...).
    pub properties: Map<String, Value>,
    /// Whether the client asked for per-payload zlib compression.
    pub compress: bool,
    /// Member count above which a guild counts as large.
    pub large_threshold: Option<u64>,
    /// Initial presence.
    pub presence: Option<Value>,
    /// Every other field (e.g. the official client's `capabilities` and `client_state`).
    pub extra: Map<String, Value>,
}

/// What the client sent in RESUME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeInfo {
    /// The token, exactly as sent.
    pub token: String,
    /// The session to resume.
    pub session_id: String,
    /// The last sequence number the client received (`null` when it received none).
    pub seq: Option<u64>,
}

/// The owner's answer to an IDENTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifyVerdict {
    /// Start the session; the owner then dispatches READY.
    Accept,
    /// Send op 9 `d: false` (e.g. identify concurrency exceeded); the client may IDENTIFY again.
    InvalidSession,
    /// Close with this code: 4004 bad token, 4010/4011 shard, 4012 version, 4013/4014 intents.
    Close(CloseCode),
}

/// The owner's answer to a RESUME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeVerdict {
    /// The session exists and has sent dispatches up to `last_seq`. The owner then replays what
    /// came after the client's `seq` with [`ServerSession::replay`] and dispatches RESUMED.
    /// A client `seq` beyond `last_seq` closes the connection with 4007.
    Accept {
        /// The highest sequence number the session has sent.
        last_seq: u64,
    },
    /// Send op 9 with this `d`; the client may IDENTIFY (or RESUME) again.
    InvalidSession {
        /// Whether the client may retry the RESUME.
        resumable: bool,
    },
    /// Close with this code (e.g. 4007 for a sequence the session never had, 4004 bad token).
    Close(CloseCode),
}

/// Why a payload could not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ServerSessionError {
    /// Dispatches flow only after IDENTIFY or RESUME was accepted.
    #[error("the session is not active yet (state {0:?})")]
    NotActive(ServerState),
    /// The connection was closed.
    #[error("the session is closed")]
    Closed,
    /// A replayed payload must be a dispatch numbered at or below the session's sequence.
    #[error("replayed payload has sequence {got:?}, the session is at {current}")]
    BadReplay {
        /// The replayed payload's `s`.
        got: Option<u64>,
        /// The session's sequence counter.
        current: u64,
    },
}

/// The intents check a backend runs on IDENTIFY: bits outside `valid` are 4013, privileged bits
/// outside `privileged_allowed` are 4014.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntentsPolicy {
    /// Bits a client may send at all.
    pub valid: u64,
    /// Privileged bits this application may use.
    pub privileged_allowed: u64,
}

impl Default for IntentsPolicy {
    fn default() -> Self {
        IntentsPolicy {
            valid: intents::ALL,
            privileged_allowed: intents::PRIVILEGED,
        }
    }
}

impl IntentsPolicy {
    /// The close code `intents` deserves, if any (`None` intents are fine: user accounts).
    pub fn check(&self, intents: Option<u64>) -> Option<CloseCode> {
        let intents = intents?;
        if intents & !self.valid != 0 {
            Some(CloseCode::InvalidIntents)
        } else if intents & intents::PRIVILEGED & !self.privileged_allowed != 0 {
            Some(CloseCode::DisallowedIntents)
        } else {
            None
        }
    }
}

/// One server-side gateway connection.
#[derive(Debug, Clone)]
pub struct ServerSession {
    config: ServerConfig,
    state: ServerState,
    seq: u64,
    heartbeat_deadline: Instant,
    handshake_deadline: Instant,
    reconnect_close_at: Option<Instant>,
    rate: RateLimiter,
    identify: Option<IdentifyInfo>,
    resume: Option<ResumeInfo>,
    client_seq: Option<u64>,
    close_code: Option<CloseCode>,
}

impl ServerSession {
    /// A session for a freshly opened connection; the actions hold the HELLO to send.
    pub fn new(config: ServerConfig, now: Instant) -> (Self, Vec<ServerAction>) {
        let hello = GatewayPayload::new(
            OpCode::Hello,
            json!({ "heartbeat_interval": duration_millis(config.heartbeat_interval) }),
        );
        let session = ServerSession {
            heartbeat_deadline: now + config.heartbeat_interval + config.heartbeat_grace,
            handshake_deadline: now + config.handshake_timeout,
            reconnect_close_at: None,
            rate: RateLimiter::new(config.rate_limit, config.rate_period, config.rate_window),
            state: ServerState::AwaitingHandshake,
            seq: 0,
            identify: None,
            resume: None,
            client_seq: None,
            close_code: None,
            config,
        };
        (session, vec![ServerAction::Send(hello)])
    }

    /// Where the session is.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// What the client sent in IDENTIFY, once it did (kept after the owner accepted it).
    pub fn identify(&self) -> Option<&IdentifyInfo> {
        self.identify.as_ref()
    }

    /// What the client sent in RESUME, once it did.
    pub fn resume(&self) -> Option<&ResumeInfo> {
        self.resume.as_ref()
    }

    /// The sequence number of the last dispatch sent (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The last sequence number the client said it received (RESUME `seq`, heartbeat `d`).
    pub fn client_seq(&self) -> Option<u64> {
        self.client_seq
    }

    /// The code the connection closed with, once closed.
    pub fn close_code(&self) -> Option<CloseCode> {
        self.close_code
    }

    /// When [`ServerSession::on_tick`] must next be called; `None` once closed.
    pub fn poll_at(&self) -> Option<Instant> {
        if self.state == ServerState::Closed {
            return None;
        }
        let mut at = self.heartbeat_deadline;
        if self.state == ServerState::AwaitingHandshake {
            at = at.min(self.handshake_deadline);
        }
        if let Some(close_at) = self.reconnect_close_at {
            at = at.min(close_at);
        }
        Some(at)
    }

    /// Fires the deadlines that passed by `now`.
    pub fn on_tick(&mut self, now: Instant) -> Vec<ServerAction> {
        if self.state == ServerState::Closed {
            return Vec::new();
        }
        if now >= self.heartbeat_deadline {
            return self.close(CloseCode::SessionTimedOut);
        }
        if self.state == ServerState::AwaitingHandshake && now >= self.handshake_deadline {
            return self.close(CloseCode::SessionTimedOut);
        }
        if self.reconnect_close_at.is_some_and(|at| now >= at) {
            return self.close(CloseCode::UnknownError);
        }
        Vec::new()
    }

    /// A client frame that could not be decoded (bad JSON/ETF, bad compression): 4002.
    pub fn on_undecodable(&mut self, _now: Instant) -> Vec<ServerAction> {
        if self.state == ServerState::Closed {
            return Vec::new();
        }
        self.close(CloseCode::DecodeError)
    }

    /// A decoded client payload; `wire_len` is the frame's size in bytes as received.
    pub fn on_payload(
        &mut self,
        payload: &GatewayPayload,
        wire_len: usize,
        now: Instant,
    ) -> Vec<ServerAction> {
        if self.state == ServerState::Closed {
            return Vec::new();
        }
        if !self.rate.try_acquire(now) {
            return self.close(CloseCode::RateLimited);
        }
        if wire_len > self.config.max_payload_bytes {
            return self.close(CloseCode::DecodeError);
        }
        let code = payload.op.code();
        if code == QOS_HEARTBEAT_OPCODE {
            return match &payload.d {
                Value::Object(d) => self.on_heartbeat(d.get("seq").unwrap_or(&Value::Null), now),
                _ => self.close(CloseCode::UnknownOpcode),
            };
        }
        match payload.op {
            OpCode::Heartbeat => self.on_heartbeat(&payload.d, now),
            OpCode::Identify => self.on_identify(&payload.d),
            OpCode::Resume => self.on_resume(&payload.d),
            // Server-to-client opcodes and numbers nobody defined are not commands.
            OpCode::Dispatch
            | OpCode::Reconnect
            | OpCode::InvalidSession
            | OpCode::Hello
            | OpCode::HeartbeatAck
            | OpCode::Unknown(_) => self.close(CloseCode::UnknownOpcode),
            _ => {
                if self.state == ServerState::Active {
                    vec![ServerAction::Command(payload.clone())]
                } else {
                    self.close(CloseCode::NotAuthenticated)
                }
            }
        }
    }

    /// The owner's verdict on the pending IDENTIFY; ignored in any other state.
    pub fn complete_identify(
        &mut self,
        verdict: IdentifyVerdict,
        now: Instant,
    ) -> Vec<ServerAction> {
        if self.state != ServerState::IdentifyPending {
            return Vec::new();
        }
        match verdict {
            IdentifyVerdict::Accept => {
                self.state = ServerState::Active;
                Vec::new()
            }
            IdentifyVerdict::InvalidSession => {
                self.identify = None;
                self.invalid_session(false, now)
            }
            IdentifyVerdict::Close(code) => self.close(code),
        }
    }

    /// The owner's verdict on the pending RESUME; ignored in any other state.
    pub fn complete_resume(&mut self, verdict: ResumeVerdict, now: Instant) -> Vec<ServerAction> {
        if self.state != ServerState::ResumePending {
            return Vec::new();
        }
        match verdict {
            ResumeVerdict::Accept { last_seq } => {
                let client_seq = self.resume.as_ref().and_then(|resume| resume.seq);
                if client_seq.is_some_and(|seq| seq > last_seq) {
                    return self.close(CloseCode::InvalidSeq);
                }
                self.seq = last_seq;
                self.state = ServerState::Active;
                Vec::new()
            }
            ResumeVerdict::InvalidSession { resumable } => {
                self.resume = None;
                self.invalid_session(resumable, now)
            }
            ResumeVerdict::Close(code) => self.close(code),
        }
    }

    /// Numbers and returns a dispatch of `event` to send.
    pub fn dispatch(
        &mut self,
        event: impl Into<String>,
        d: Value,
    ) -> Result<GatewayPayload, ServerSessionError> {
        match self.state {
            ServerState::Active => {
                self.seq += 1;
                Ok(GatewayPayload::dispatch(event, self.seq, d))
            }
            ServerState::Closed => Err(ServerSessionError::Closed),
            other => Err(ServerSessionError::NotActive(other)),
        }
    }

    /// Numbers a dispatch the owner encodes itself (one event encoded once for many sessions)
    /// and returns its sequence number.
    pub fn next_seq(&mut self) -> Result<u64, ServerSessionError> {
        match self.state {
            ServerState::Active => {
                self.seq += 1;
                Ok(self.seq)
            }
            ServerState::Closed => Err(ServerSessionError::Closed),
            other => Err(ServerSessionError::NotActive(other)),
        }
    }

    /// Checks a dispatch replayed after RESUME (it keeps its original `s`) and returns it.
    pub fn replay(&self, payload: GatewayPayload) -> Result<GatewayPayload, ServerSessionError> {
        match self.state {
            ServerState::Active => {}
            ServerState::Closed => return Err(ServerSessionError::Closed),
            other => return Err(ServerSessionError::NotActive(other)),
        }
        match payload.s {
            Some(s) if payload.op == OpCode::Dispatch && s >= 1 && s <= self.seq => Ok(payload),
            got => Err(ServerSessionError::BadReplay {
                got,
                current: self.seq,
            }),
        }
    }

    /// Asks the client for an immediate heartbeat (op 1).
    pub fn request_heartbeat(&mut self) -> Vec<ServerAction> {
        if self.state == ServerState::Closed {
            return Vec::new();
        }
        vec![ServerAction::Send(GatewayPayload::new(
            OpCode::Heartbeat,
            self.seq_value(),
        ))]
    }

    /// Tells the client to reconnect and resume (op 7); closes with 4000 if it has not closed
    /// within `reconnect_close_delay`.
    pub fn request_reconnect(&mut self, now: Instant) -> Vec<ServerAction> {
        if self.state == ServerState::Closed {
            return Vec::new();
        }
        self.reconnect_close_at = Some(now + self.config.reconnect_close_delay);
        vec![ServerAction::Send(GatewayPayload::new(
            OpCode::Reconnect,
            Value::Null,
        ))]
    }

    /// Invalidates the session (op 9 with `d: resumable`); the client may IDENTIFY or RESUME again.
    pub fn invalidate_session(&mut self, resumable: bool, now: Instant) -> Vec<ServerAction> {
        if self.state == ServerState::Closed {
            return Vec::new();
        }
        self.identify = None;
        self.resume = None;
        self.invalid_session(resumable, now)
    }

    /// Closes the connection with `code`.
    pub fn close(&mut self, code: CloseCode) -> Vec<ServerAction> {
        if self.state == ServerState::Closed {
            return Vec::new();
        }
        tracing::debug!(%code, "closing gateway session");
        self.state = ServerState::Closed;
        self.close_code = Some(code);
        vec![ServerAction::Close(code)]
    }

    /// The client closed the connection (`code` from its close frame, `None` without one).
    /// Returns whether the session may be kept for a RESUME: it was established and the client
    /// did not end it with 1000/1001.
    pub fn on_client_closed(&mut self, code: Option<u16>) -> bool {
        let was_active = self.state == ServerState::Active;
        if self.state != ServerState::Closed {
            self.state = ServerState::Closed;
            self.close_code = code.map(CloseCode::from_u16);
        }
        was_active
            && code.is_none_or(|code| CloseCode::from_u16(code).keeps_session_when_sent_by_client())
    }

    fn seq_value(&self) -> Value {
        if self.seq == 0 {
            Value::Null
        } else {
            Value::from(self.seq)
        }
    }

    fn invalid_session(&mut self, resumable: bool, now: Instant) -> Vec<ServerAction> {
        self.state = ServerState::AwaitingHandshake;
        self.handshake_deadline = now + self.config.handshake_timeout;
        vec![ServerAction::Send(GatewayPayload::new(
            OpCode::InvalidSession,
            Value::Bool(resumable),
        ))]
    }

    fn on_heartbeat(&mut self, seq: &Value, now: Instant) -> Vec<ServerAction> {
        let seq = match seq {
            Value::Null => None,
            value => match value.as_u64() {
                Some(seq) => Some(seq),
                None => return self.close(CloseCode::UnknownOpcode),
            },
        };
        if seq.is_some() {
            self.client_seq = seq;
        }
        self.heartbeat_deadline =
            now + self.config.heartbeat_interval + self.config.heartbeat_grace;
        vec![ServerAction::Send(GatewayPayload::new(
            OpCode::HeartbeatAck,
            Value::Null,
        ))]
    }

    fn on_identify(&mut self, d: &Value) -> Vec<ServerAction> {
        if self.state != ServerState::AwaitingHandshake {
            return self.close(CloseCode::AlreadyAuthenticated);
        }
        match parse_identify(d) {
            Ok(info) => {
                self.identify = Some(info.clone());
                self.state = ServerState::IdentifyPending;
                vec![ServerAction::ValidateIdentify(Box::new(info))]
            }
            Err(code) => self.close(code),
        }
    }

    fn on_resume(&mut self, d: &Value) -> Vec<ServerAction> {
        if self.state != ServerState::AwaitingHandshake {
            return self.close(CloseCode::AlreadyAuthenticated);
        }
        match parse_resume(d) {
            Some(info) => {
                self.client_seq = info.seq;
                self.resume = Some(info.clone());
                self.state = ServerState::ResumePending;
                vec![ServerAction::ValidateResume(info)]
            }
            None => self.close(CloseCode::UnknownOpcode),
        }
    }
}

fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Reads IDENTIFY's `d`; a malformed field gives the close code it deserves.
fn parse_identify(d: &Value) -> Result<IdentifyInfo, CloseCode> {
    let Value::Object(fields) = d else {
        return Err(CloseCode::UnknownOpcode);
    };
    let mut extra = fields.clone();
    let token = match extra.remove("token") {
        Some(Value::String(token)) if !token.is_empty() => token,
        _ => return Err(CloseCode::AuthenticationFailed),
    };
    let intents = match extra.remove("intents") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().ok_or(CloseCode::InvalidIntents)?),
    };
    let shard = match extra.remove("shard") {
        None | Some(Value::Null) => None,
        Some(value) => Some(parse_shard(&value).ok_or(CloseCode::InvalidShard)?),
    };
    let properties = match extra.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(properties)) => properties,
        Some(_) => return Err(CloseCode::UnknownOpcode),
    };
    let compress = match extra.remove("compress") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(compress)) => compress,
        Some(_) => return Err(CloseCode::UnknownOpcode),
    };
    let large_threshold = match extra.remove("large_threshold") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().ok_or(CloseCode::UnknownOpcode)?),
    };
    let presence = match extra.remove("presence") {
        None | Some(Value::Null) => None,
        Some(presence @ Value::Object(_)) => Some(presence),
        Some(_) => return Err(CloseCode::UnknownOpcode),
    };
    Ok(IdentifyInfo {
        token,
        intents,
        shard,
        properties,
        compress,
        large_threshold,
        presence,
        extra,
    })
}

fn parse_shard(value: &Value) -> Option<ShardInfo> {
    let pair = value.as_array()?;
    let [id, count] = pair.as_slice() else {
        return None;
    };
    let id = u32::try_from(id.as_u64()?).ok()?;
    let count = u32::try_from(count.as_u64()?).ok()?;
    (count >= 1 && id < count).then_some(ShardInfo { id, count })
}

fn parse_resume(d: &Value) -> Option<ResumeInfo> {
    let token = d.get("token")?.as_str()?.to_owned();
    let session_id = d.get("session_id")?.as_str()?.to_owned();
    let seq = match d.get("seq") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64()?),
    };
    Some(ResumeInfo {
        token,
        session_id,
        seq,
    })
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
