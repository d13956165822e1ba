//! One gateway connection: decodes client frames, drives its `ServerSession`, answers IDENTIFY
//! and RESUME from the store and the session registry, runs client commands (op 3, 4, 8) and
//! sends the events the dispatcher queues for it.
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::builders::{self, has_intent, on_shard, MemberRequest, ReadyInfo};
use super::registry::{Control, Link, Presence, SessionRecord, VoiceState};
use super::route_barriers::RouteBarriers;
use super::Inner;
use crate::backend::events::Dispatch;
use crate::backend::model::{channel_type, User};
use crate::backend::snowflake::Snowflake;
use crate::backend::store::StoreError;
use crate::gateway::close::CloseCode;
use crate::gateway::codec::{self, Encoding};
use crate::gateway::decoder::{ConnectionParams, ParamsError};
use crate::gateway::etf::DecodeOptions;
use crate::gateway::events::{PresenceUpdate, RequestGuildMembers, VoiceStateUpdate};
use crate::gateway::intents;
use crate::gateway::server::{
    IdentifyInfo, IdentifyVerdict, IntentsPolicy, ResumeInfo, ResumeVerdict, ServerAction,
    ServerSession, ServerState, ShardInfo,
};
use crate::gateway::wire::{Framer, Prepared};
use crate::gateway::{GatewayPayload, OpCode};

mod user_commands;

pub(super) use user_commands::refresh_presence;

/// Gateway versions served.
const VERSIONS: std::ops::RangeInclusive<u8> = 6..=10;
/// Events sent per flush when a queue has several waiting.
const BATCH: usize = 64;

/// Checks the URL query: a version outside 6–10 is 4012, a bad encoding or compression 4002.
fn parse_params(query: &str) -> Result<(ConnectionParams, u8), CloseCode> {
    let params = ConnectionParams::from_query(query).map_err(|e| match e {
        ParamsError::BadVersion(_) => CloseCode::InvalidApiVersion,
        _ => CloseCode::DecodeError,
    })?;
    let version = params.version.unwrap_or(10);
    if !VERSIONS.contains(&version) {
        return Err(CloseCode::InvalidApiVersion);
    }
    Ok((params, version))
}

fn close_message(code: CloseCode) -> Message {
    Message::Close(Some(CloseFrame {
        code: WsCloseCode::from(code.code()),
        reason: code.description().into(),
    }))
}

/// The connection query for the log: only the parameters that say how to talk (`v`,
/// `encoding`, `compress`).
fn redacted_query(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            matches!(name, "v" | "encoding" | "compress")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Adds `_trace` to HELLO as Discord does.
fn with_trace(payload: &mut GatewayPayload) -> &GatewayPayload {
    if payload.op == OpCode::Hello {
        if let Some(d) = payload.d.as_object_mut() {
            d.entry("_trace")
                .or_insert_with(|| json!(["[\"discord-mitm-gateway\",{\"micros\":0.0}]"]));
        }
    }
    payload
}

/// What woke the connection up.
enum Wake {
    Control(Option<Control>),
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Event(Option<Arc<Prepared>>),
    Tick,
}

/// How the connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Still running.
    Open,
    /// Ended; keep the session for a RESUME or not.
    Closed { keep: bool },
}

struct Connection {
    inner: Arc<Inner>,
    conn_id: u64,
    control: mpsc::UnboundedSender<Control>,
    framer: Framer,
    version: u8,
    advertised_url: String,
    session: ServerSession,
    record: Option<Arc<Mutex<SessionRecord>>>,
    events: Option<mpsc::Receiver<Arc<Prepared>>>,
    user: Option<User>,
    large_threshold: u64,
    /// VOICE_SERVER_UPDATEs to send once this session's own VOICE_STATE_UPDATE for that guild
    /// has gone out (Discord's order).
    voice_servers: Vec<(Snowflake, Arc<Prepared>)>,
    end: End,
    /// Who ended the connection (`client`, `server`, `dropped`) and the close code, for the
    /// access log.
    closed: (&'static str, Option<u16>),
    /// The client sent a frame over the size limit; its remainder is drained before closing.
    oversized: bool,
}

/// The access log's target (`-v`): gateway sessions opened, identified, resumed and closed.
const ACCESS: &str = "discord_mitm::access";

async fn next_event(events: &mut Option<mpsc::Receiver<Arc<Prepared>>>) -> Option<Arc<Prepared>> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// Serves one WebSocket until it closes.
pub(super) async fn run<S>(
    inner: Arc<Inner>,
    mut ws: WebSocketStream<S>,
    query: &str,
    advertised_url: String,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (params, version) = match parse_params(query) {
        Ok(parsed) => parsed,
        Err(code) => {
            tracing::info!(target: ACCESS, close_code = code.code(), "gateway refused (bad query)");
            let _ = ws.send(close_message(code)).await;
            return;
        }
    };
    let framer = match Framer::with_zlib_history(
        &params,
        inner.config.zlib_level,
        inner.config.zlib_history,
    ) {
        Ok(framer) => framer,
        Err(e) => {
            tracing::warn!("gateway compression unavailable: {e}");
            let _ = ws.send(close_message(CloseCode::UnknownError)).await;
            return;
        }
    };
    let (control, mut control_rx) = mpsc::unbounded_channel();
    let conn_id = inner.registry.connect(control.clone());
    tracing::info!(target: ACCESS, conn = conn_id, version, query = %redacted_query(query), "gateway open");
    if inner
        .shutting_down
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        let _ = control.send(Control::Reconnect);
    }
    let (session, actions) = ServerSession::new(inner.config.session.clone(), Instant::now());
    let mut conn = Connection {
        inner: inner.clone(),
        conn_id,
        control,
        framer,
        version,
        advertised_url,
        session,
        record: None,
        events: None,
        user: None,
        large_threshold: builders::DEFAULT_LARGE_THRESHOLD,
        voice_servers: Vec::new(),
        end: End::Open,
        closed: ("dropped", None),
        oversized: false,
    };
    conn.perform(&mut ws, actions).await;
    while conn.end == End::Open {
        let deadline = conn
            .session
            .poll_at()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let wake = tokio::select! {
            biased;
            control = control_rx.recv() => Wake::Control(control),
            frame = ws.next() => Wake::Frame(frame),
            event = next_event(&mut conn.events) => Wake::Event(event),
            _ = tokio::time::sleep_until(deadline) => Wake::Tick,
        };
        let now = Instant::now();
        match wake {
            Wake::Control(Some(Control::Reconnect)) => {
                let actions = conn.session.request_reconnect(now);
                conn.perform(&mut ws, actions).await;
            }
            Wake::Control(Some(Control::Kick(code))) => {
                let actions = conn.session.close(code);
                conn.perform(&mut ws, actions).await;
            }
            Wake::Control(None) => {}
            Wake::Frame(frame) => conn.on_frame(&mut ws, frame, now).await,
            Wake::Event(Some(event)) => conn.on_events(&mut ws, event).await,
            Wake::Event(None) => conn.events = None,
            Wake::Tick => {
                let actions = conn.session.on_tick(now);
                conn.perform(&mut ws, actions).await;
            }
        }
    }
    conn.finish();
    // Sink::close flushes the Close reply tungstenite queued when the client closed first (RFC 6455
    // 5.5.1; serenity waits for it). WebSocketStream::close would try to send a second Close, fail
    // with "sending after closing" and drop the reply.
    let _ = tokio::time::timeout(Duration::from_secs(1), SinkExt::close(&mut ws)).await;
    if conn.oversized {
        crate::listen::drain_unread(ws.get_mut()).await;
    }
}

impl Connection {
    fn limits(&self) -> super::registry::Limits {
        self.inner.registry.limits
    }

    async fn send<S>(&mut self, ws: &mut WebSocketStream<S>, message: Message, flush: bool) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let timeout = self.inner.config.send_timeout;
        let sent = if flush {
            tokio::time::timeout(timeout, ws.send(message)).await
        } else {
            tokio::time::timeout(timeout, ws.feed(message)).await
        };
        if !matches!(sent, Ok(Ok(()))) {
            // The client is gone or stalled: it may come back and RESUME.
            self.session.on_client_closed(None);
            self.end = End::Closed { keep: true };
            self.closed = ("dropped", None);
            return false;
        }
        true
    }

    /// Performs the session's actions, answering verdicts (which may add more).
    async fn perform<S>(&mut self, ws: &mut WebSocketStream<S>, actions: Vec<ServerAction>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut queue: std::collections::VecDeque<ServerAction> = actions.into();
        while let Some(action) = queue.pop_front() {
            if self.end != End::Open {
                return;
            }
            match action {
                ServerAction::Send(mut payload) => {
                    match self.framer.payload(with_trace(&mut payload)) {
                        Ok(message) => {
                            self.send(ws, message, true).await;
                        }
                        Err(e) => tracing::error!("cannot encode gateway payload: {e}"),
                    }
                }
                ServerAction::Close(code) => {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), ws.send(close_message(code)))
                            .await;
                    self.end = End::Closed {
                        keep: code.can_resume(),
                    };
                    self.closed = ("server", Some(code.code()));
                }
                ServerAction::ValidateIdentify(info) => {
                    queue.extend(self.on_identify(ws, *info).await);
                }
                ServerAction::ValidateResume(info) => {
                    queue.extend(self.on_resume(ws, info).await);
                }
                ServerAction::Command(payload) => {
                    queue.extend(self.on_command(ws, &payload).await);
                }
            }
        }
    }

    async fn on_frame<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        now: Instant,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (bytes, encoding) = match frame {
            Some(Ok(Message::Text(text))) => (text.as_bytes().to_vec(), Encoding::Json),
            Some(Ok(Message::Binary(bytes))) => (bytes.to_vec(), self.framer.encoding()),
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code));
                let keep = self.session.on_client_closed(code);
                self.end = End::Closed { keep };
                self.closed = ("client", code);
                return;
            }
            Some(Ok(_)) => return,
            Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(e))) => {
                // Over the WebSocket limit (1 MiB): Discord closes such payloads with 4002 like
                // any other payload it cannot take.
                tracing::debug!("oversized gateway frame: {e}");
                self.oversized = true;
                let actions = self.session.on_undecodable(now);
                self.perform(ws, actions).await;
                return;
            }
            Some(Err(_)) | None => {
                let keep = self.session.on_client_closed(None);
                self.end = End::Closed { keep };
                return;
            }
        };
        let actions = match codec::decode_payload(&bytes, encoding, &DecodeOptions::CLIENT_STRICT) {
            Ok(payload) => self.session.on_payload(&payload, bytes.len(), now),
            Err(e) => {
                tracing::debug!("undecodable gateway frame: {e}");
                self.session.on_undecodable(now)
            }
        };
        self.perform(ws, actions).await;
    }

    /// Sends queued events, several per flush when more are waiting.
    async fn on_events<S>(&mut self, ws: &mut WebSocketStream<S>, first: Arc<Prepared>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut batch = vec![first];
        if let Some(events) = &mut self.events {
            while batch.len() < BATCH {
                match events.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
        }
        let last = batch.len() - 1;
        for (i, event) in batch.into_iter().enumerate() {
            let voice_server = self.voice_server_after(&event);
            if !self
                .send_dispatch(ws, event, i == last && voice_server.is_none())
                .await
            {
                return;
            }
            if let Some(voice_server) = voice_server {
                if !self.send_dispatch(ws, voice_server, i == last).await {
                    return;
                }
            }
        }
    }

    /// The VOICE_SERVER_UPDATE due after `event`, if it is this session's own voice state.
    fn voice_server_after(&mut self, event: &Prepared) -> Option<Arc<Prepared>> {
        if event.name != "VOICE_STATE_UPDATE" || self.voice_servers.is_empty() {
            return None;
        }
        let data = event.value()?;
        let session_id = self.record.as_ref().map(|r| r.lock().id.clone())?;
        if data.get("session_id").and_then(Value::as_str) != Some(session_id.as_str()) {
            return None;
        }
        let guild_id = data
            .get("guild_id")
            .and_then(Value::as_str)
            .and_then(Snowflake::parse)?;
        let at = self
            .voice_servers
            .iter()
            .position(|(g, _)| *g == guild_id)?;
        Some(self.voice_servers.remove(at).1)
    }

    /// `host:port` of VOICE_SERVER_UPDATE: the configured one, or the gateway's own host.
    fn voice_endpoint(&self) -> String {
        if let Some(endpoint) = &self.inner.config.voice_endpoint {
            return endpoint.clone();
        }
        let url = &self.advertised_url;
        let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        rest.split(['/', '?']).next().unwrap_or(rest).to_string()
    }

    /// Adds a dispatch this session is sent to the control API's event log (with `--control`).
    fn log_dispatch(&self, event: &Prepared, seq: u64, replayed: bool) {
        let (Some(hub), Some(record)) = (&self.inner.state.control, &self.record) else {
            return;
        };
        // Replayed events were compacted to their bytes after their first send, and a user
        // READY is built as JSON bytes: both are read back for the log.
        let Some(data) = event.value_or_decoded() else {
            return;
        };
        let (session_id, user_id) = {
            let record = record.lock();
            (record.id.clone(), record.user_id)
        };
        hub.log.dispatch(crate::backend::eventlog::DispatchRecord {
            session_id: &session_id,
            user_id,
            seq,
            name: &event.name,
            data: &data,
            replayed,
        });
    }

    /// Numbers, records and sends one dispatch.
    async fn send_dispatch<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        event: Arc<Prepared>,
        flush: bool,
    ) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let Ok(seq) = self.session.next_seq() else {
            return false;
        };
        let message = match self.framer.dispatch(&event, seq) {
            Ok(message) => message,
            Err(e) => {
                tracing::error!(event = %event.name, "cannot encode dispatch: {e}");
                return false;
            }
        };
        self.log_dispatch(&event, seq, false);
        if let Some(record) = &self.record {
            // An event only this session holds (READY, GUILD_CREATE, chunks) is kept as bytes.
            let event = if Arc::strong_count(&event) == 1 {
                event.compact(self.framer.encoding()).unwrap_or(event)
            } else {
                event
            };
            let limits = self.limits();
            record.lock().sent(seq, event, &limits);
        }
        self.send(ws, message, flush).await
    }

    /// Attaches this connection to `record`; returns what waited for it.
    fn attach(&mut self, record: &Arc<Mutex<SessionRecord>>) -> Vec<Arc<Prepared>> {
        let (events, rx) = mpsc::channel(self.inner.config.queue_capacity);
        self.events = Some(rx);
        self.record = Some(record.clone());
        record.lock().attach(Link {
            conn_id: self.conn_id,
            events,
            control: self.control.clone(),
        })
    }

    /// The user a gateway token belongs to (bots may send it with or without "Bot ").
    fn user_for_token(&self, token: &str) -> Option<User> {
        let token = token.strip_prefix("Bot ").unwrap_or(token).trim();
        self.inner.state.store.user_by_token(token).ok().flatten()
    }

    /// Checks IDENTIFY; on success the session's intents.
    fn check_identify(&self, info: &IdentifyInfo, user: &User) -> Result<Option<u64>, CloseCode> {
        if !user.bot {
            return Ok(None);
        }
        let allowed = builders::application_of(&self.inner.state.store, user)
            .ok()
            .flatten()
            .map_or(intents::PRIVILEGED, |app| app.allowed_privileged_intents());
        let intents = match info.intents {
            Some(intents) => intents,
            // Before v8 intents were optional: everything not privileged, plus what is allowed.
            None if self.version < 8 => (intents::ALL & !intents::PRIVILEGED) | allowed,
            None => return Err(CloseCode::InvalidIntents),
        };
        let policy = IntentsPolicy {
            valid: intents::ALL,
            privileged_allowed: allowed,
        };
        match policy.check(Some(intents)) {
            Some(code) => Err(code),
            None => Ok(Some(intents)),
        }
    }

    /// Answers IDENTIFY: checks it, starts the session and sends READY, the GUILD_CREATEs and
    /// whatever waited for the session.
    async fn on_identify<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        info: IdentifyInfo,
    ) -> Vec<ServerAction>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let now = Instant::now();
        let (user, session_intents, guild_ids) = match self.admit_identify(&info, now) {
            Ok(admitted) => admitted,
            Err(verdict) => return self.session.complete_identify(verdict, now),
        };
        // Events published before this IDENTIFY (a write whose REST call already answered) are
        // routed before the session exists: READY shows their effect and they are not sent
        // again after it, however far behind the dispatcher is.
        if !RouteBarriers::wait_routed(&self.inner, Duration::from_secs(2)).await {
            tracing::warn!(
                conn = self.conn_id,
                "IDENTIFY went ahead before the dispatcher caught up"
            );
        }
        let now = Instant::now();
        let mut actions = self.session.complete_identify(IdentifyVerdict::Accept, now);
        if self.session.state() != ServerState::Active {
            return actions;
        }
        let (session_id, waiting) = self.start_session(&info, &user, session_intents);
        if !user.bot {
            let mut own = match self.build_user_ready(&user, &session_id, &guild_ids, &info) {
                Ok(own) => own,
                Err(e) => {
                    tracing::error!("cannot build user READY: {e}");
                    actions.extend(self.session.close(CloseCode::UnknownError));
                    return actions;
                }
            };
            own.extend(waiting);
            self.send_dispatches(ws, own).await;
            return actions;
        }
        let ready = match self.build_ready(&user, &session_id, info.shard, &guild_ids) {
            Ok(ready) => ready,
            Err(e) => {
                tracing::error!("cannot build READY: {e}");
                actions.extend(self.session.close(CloseCode::UnknownError));
                return actions;
            }
        };
        let mut own = vec![Prepared::new("READY", ready)];
        own.extend(self.guild_creates(&user, &guild_ids, session_intents));
        own.extend(waiting);
        self.send_dispatches(ws, own).await;
        actions
    }

    /// Whether IDENTIFY may start a session: its user, the session's intents and the guilds on
    /// its shard, or the verdict that refuses it (a close code, or op 9 for a bot identifying
    /// faster than its `max_concurrency` allows when pacing is on).
    fn admit_identify(
        &self,
        info: &IdentifyInfo,
        now: Instant,
    ) -> Result<(User, Option<u64>, Vec<Snowflake>), IdentifyVerdict> {
        let user = self
            .user_for_token(&info.token)
            .ok_or(IdentifyVerdict::Close(CloseCode::AuthenticationFailed))?;
        let shard = info.shard.map_or(0, |s| s.id);
        if self.inner.config.identify_pacing
            && user.bot
            && !self.inner.pacing.admit(user.id.0, shard, now)
        {
            return Err(IdentifyVerdict::InvalidSession);
        }
        let session_intents = self
            .check_identify(info, &user)
            .map_err(IdentifyVerdict::Close)?;
        let guild_ids: Vec<Snowflake> = self
            .inner
            .state
            .store
            .guild_ids_of(user.id)
            .unwrap_or_default()
            .into_iter()
            .filter(|id| on_shard(*id, info.shard))
            .collect();
        if user.bot && guild_ids.len() > self.inner.config.max_guilds_per_shard {
            return Err(IdentifyVerdict::Close(CloseCode::ShardingRequired));
        }
        Ok((user, session_intents, guild_ids))
    }

    /// Applies IDENTIFY's options, registers the session and attaches to it, and sets the
    /// user's presence; returns the session id and what waited for the session.
    fn start_session(
        &mut self,
        info: &IdentifyInfo,
        user: &User,
        session_intents: Option<u64>,
    ) -> (String, Vec<Arc<Prepared>>) {
        if info.compress {
            self.framer.enable_payload_compression();
        }
        self.large_threshold = info
            .large_threshold
            .unwrap_or(builders::DEFAULT_LARGE_THRESHOLD)
            .clamp(50, 250);
        let record = self
            .inner
            .registry
            .create(user.id, session_intents, info.shard);
        let session_id = record.lock().id.clone();
        let waiting = self.attach(&record);
        self.user = Some(user.clone());
        tracing::info!(
            target: ACCESS,
            conn = self.conn_id,
            caller = %user.id,
            bot = user.bot,
            shard = %info.shard.map_or_else(|| "-".to_string(), |s| format!("{}/{}", s.id, s.count)),
            "gateway identify"
        );
        if !user.bot {
            self.start_user_session(info, user, &record);
            return (session_id, waiting);
        }
        if let Some(presence) = &info.presence {
            self.update_presence(user, presence);
        } else {
            self.set_presence(user, "online", Vec::new());
        }
        (session_id, waiting)
    }

    /// The READY payload of a new session.
    fn build_ready(
        &self,
        user: &User,
        session_id: &str,
        shard: Option<ShardInfo>,
        guild_ids: &[Snowflake],
    ) -> Result<Value, StoreError> {
        let store = &self.inner.state.store;
        let application = if user.bot {
            builders::application_of(store, user).ok().flatten()
        } else {
            None
        };
        builders::ready(
            store,
            &ReadyInfo {
                version: self.version,
                user,
                application: application.as_ref(),
                session_id,
                resume_gateway_url: &self.advertised_url,
                shard,
                guild_ids,
            },
        )
    }

    /// A GUILD_CREATE for each of the session's guilds that can be built.
    fn guild_creates(
        &self,
        user: &User,
        guild_ids: &[Snowflake],
        session_intents: Option<u64>,
    ) -> Vec<Arc<Prepared>> {
        let store = &self.inner.state.store;
        let mut own = Vec::new();
        for guild_id in guild_ids {
            let guild = match store.guild(*guild_id) {
                Ok(Some(guild)) => guild,
                _ => continue,
            };
            match builders::guild_create(
                store,
                &self.inner.registry,
                &guild,
                user,
                session_intents,
                self.large_threshold,
            ) {
                Ok(payload) => own.push(Prepared::new("GUILD_CREATE", payload)),
                Err(e) => tracing::error!(guild = %guild_id, "cannot build GUILD_CREATE: {e}"),
            }
        }
        own
    }

    /// Sends the session's own dispatches in order, flushing after the last; stops at the first
    /// that cannot be sent.
    async fn send_dispatches<S>(&mut self, ws: &mut WebSocketStream<S>, own: Vec<Arc<Prepared>>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let last = own.len().saturating_sub(1);
        for (i, event) in own.into_iter().enumerate() {
            if !self.send_dispatch(ws, event, i == last).await {
                break;
            }
        }
    }

    async fn on_resume<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        info: ResumeInfo,
    ) -> Vec<ServerAction>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let invalid = ResumeVerdict::InvalidSession { resumable: false };
        let user = self.user_for_token(&info.token);
        let record = self.inner.registry.get(&info.session_id);
        let (Some(user), Some(record)) = (user, record) else {
            return self.session.complete_resume(invalid, Instant::now());
        };
        // A connection still holding the session (a zombie) is closed first.
        for _ in 0..50 {
            let notify = {
                let record = record.lock();
                if record.free() {
                    break;
                }
                record.kick()
            };
            let _ = tokio::time::timeout(Duration::from_millis(100), notify.notified()).await;
        }
        // "Missed" means everything published before this RESUME: a write whose REST call
        // already answered may still be on its way through the dispatcher.
        if !RouteBarriers::wait_routed(&self.inner, Duration::from_secs(2)).await {
            tracing::warn!(
                conn = self.conn_id,
                "RESUME went ahead before the dispatcher caught up"
            );
        }
        let now = Instant::now();
        let (replay, waiting) = {
            let locked = record.lock();
            let limits = self.limits();
            if locked.user_id != user.id || !locked.free() || !locked.resumable(now, &limits) {
                drop(locked);
                return self.session.complete_resume(invalid, now);
            }
            let Some(replay) = locked.replay_after(info.seq.unwrap_or(0)) else {
                drop(locked);
                return self.session.complete_resume(invalid, now);
            };
            let last_seq = locked.last_seq;
            drop(locked);
            let actions = self
                .session
                .complete_resume(ResumeVerdict::Accept { last_seq }, now);
            if self.session.state() != ServerState::Active {
                return actions;
            }
            (replay, self.attach(&record))
        };
        self.user = Some(user.clone());
        tracing::info!(target: ACCESS, conn = self.conn_id, caller = %user.id, "gateway resume");
        self.large_threshold = builders::DEFAULT_LARGE_THRESHOLD;
        if !user.bot {
            user_commands::refresh_presence(&self.inner, user.id);
        } else if self.inner.registry.presence(user.id).is_none() {
            self.set_presence(&user, "online", Vec::new());
        }
        for (seq, event) in replay {
            let check = GatewayPayload::dispatch(event.name.clone(), seq, Value::Null);
            if self.session.replay(check).is_err() {
                continue;
            }
            let Ok(message) = self.framer.dispatch(&event, seq) else {
                continue;
            };
            if !self.send(ws, message, false).await {
                return Vec::new();
            }
            self.log_dispatch(&event, seq, true);
        }
        let mut own = waiting;
        own.push(Prepared::new(
            "RESUMED",
            json!({"_trace": ["discord-mitm-gateway"]}),
        ));
        self.send_dispatches(ws, own).await;
        Vec::new()
    }

    async fn on_command<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        payload: &GatewayPayload,
    ) -> Vec<ServerAction>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let Some(user) = self.user.clone() else {
            return Vec::new();
        };
        if let Some(actions) = self.on_user_command(ws, &user, payload).await {
            return actions;
        }
        match payload.op {
            OpCode::PresenceUpdate => {
                if payload.view::<PresenceUpdate>().is_err() {
                    return self.session.close(CloseCode::UnknownOpcode);
                }
                self.update_presence(&user, &payload.d);
                Vec::new()
            }
            OpCode::VoiceStateUpdate => match payload.view::<VoiceStateUpdate>() {
                Ok(update) => {
                    self.update_voice(&user, &update);
                    Vec::new()
                }
                Err(_) => self.session.close(CloseCode::UnknownOpcode),
            },
            OpCode::RequestGuildMembers => match payload.view::<RequestGuildMembers>() {
                Ok(request) => {
                    self.request_members(ws, &user, &request).await;
                    Vec::new()
                }
                Err(_) => self.session.close(CloseCode::UnknownOpcode),
            },
            other => {
                tracing::debug!(op = other.code(), "gateway command ignored");
                Vec::new()
            }
        }
    }

    /// Op 3 (or IDENTIFY's presence): store it and tell the user's guilds.
    fn update_presence(&self, user: &User, d: &Value) {
        apply_presence(&self.inner, user.id, d);
    }

    fn set_presence(&self, user: &User, status: &str, activities: Vec<Value>) {
        set_presence(&self.inner, user.id, status, activities);
    }

    /// Op 4: store the voice state and dispatch VOICE_STATE_UPDATE to the guild; a join or a
    /// move also gets this session a VOICE_SERVER_UPDATE.
    fn update_voice(&mut self, user: &User, update: &VoiceStateUpdate) {
        let Some(guild_id) = update.guild_id.map(Snowflake) else {
            return;
        };
        let store = &self.inner.state.store;
        if !matches!(store.member(guild_id, user.id), Ok(Some(_))) {
            return;
        }
        let session_id = self
            .record
            .as_ref()
            .map(|r| r.lock().id.clone())
            .unwrap_or_default();
        let channel = update.channel_id.map(Snowflake).and_then(|id| {
            store.channel(id).ok().flatten().filter(|c| {
                c.guild_id == Some(guild_id)
                    && matches!(
                        c.kind,
                        channel_type::GUILD_VOICE | channel_type::GUILD_STAGE_VOICE
                    )
            })
        });
        if update.channel_id.is_some() && channel.is_none() {
            return;
        }
        let previous = self.inner.registry.voice_state(guild_id, user.id);
        let channel_id = channel.as_ref().map_or(Snowflake(0), |c| c.id);
        // Stage audiences join suppressed; staying in the same channel keeps stage standing.
        let (suppress, request_to_speak_timestamp) = match &previous {
            Some(p) if p.channel_id == channel_id => {
                (p.suppress, p.request_to_speak_timestamp.clone())
            }
            _ => (
                channel
                    .as_ref()
                    .is_some_and(|c| c.kind == channel_type::GUILD_STAGE_VOICE),
                None,
            ),
        };
        let state = VoiceState {
            guild_id,
            channel_id,
            user_id: user.id,
            session_id,
            self_mute: update.self_mute,
            self_deaf: update.self_deaf,
            suppress,
            request_to_speak_timestamp,
        };
        let Ok(mut data) = builders::voice_state(store, &state, true) else {
            return;
        };
        if channel.is_none() {
            data["channel_id"] = Value::Null;
        }
        let joined = channel.is_some() && previous.is_none_or(|p| p.channel_id != state.channel_id);
        self.inner
            .registry
            .set_voice(guild_id, user.id, channel.map(|_| state));
        if joined {
            // A new voice connection needs its server: Discord sends VOICE_SERVER_UPDATE to
            // the session that asked, after that session's own VOICE_STATE_UPDATE.
            let server = Prepared::new(
                "VOICE_SERVER_UPDATE",
                json!({
                    "token": builders::random_hex(8),
                    "guild_id": guild_id,
                    "endpoint": self.voice_endpoint(),
                }),
            );
            self.voice_servers.retain(|(g, _)| *g != guild_id);
            let session_intents = self.record.as_ref().and_then(|r| r.lock().intents);
            if has_intent(session_intents, intents::GUILD_VOICE_STATES) {
                self.voice_servers.push((guild_id, server));
            } else if let Some(record) = &self.record {
                // Its own voice state will not reach it: the server update goes out at once.
                let limits = self.limits();
                record.lock().offer(&server, &limits);
            }
        }
        self.inner.state.publish(Dispatch::guild(
            "VOICE_STATE_UPDATE",
            guild_id,
            intents::GUILD_VOICE_STATES,
            data,
        ));
    }

    /// Op 8: GUILD_MEMBERS_CHUNK dispatches for each requested guild the user is in.
    async fn request_members<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        user: &User,
        request: &RequestGuildMembers,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let session_intents = self.record.as_ref().and_then(|r| r.lock().intents);
        let shard = self.record.as_ref().and_then(|r| r.lock().shard);
        let presences = request.presences.unwrap_or(false)
            && has_intent(session_intents, intents::GUILD_PRESENCES);
        let member_request = MemberRequest {
            query: request.query.as_deref(),
            limit: request.limit.unwrap_or(0),
            user_ids: &request.user_ids,
            presences,
            nonce: request.nonce.as_deref(),
        };
        let store = &self.inner.state.store;
        let mut chunks = Vec::new();
        for guild_id in request.guild_id.iter().map(|id| Snowflake(*id)) {
            if !on_shard(guild_id, shard) || !matches!(store.member(guild_id, user.id), Ok(Some(_)))
            {
                continue;
            }
            match builders::member_chunks(store, &self.inner.registry, guild_id, &member_request) {
                Ok(found) => chunks.extend(found),
                Err(e) => tracing::error!("cannot build member chunks: {e}"),
            }
        }
        let count = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            if !self
                .send_dispatch(
                    ws,
                    Prepared::new("GUILD_MEMBERS_CHUNK", chunk),
                    i + 1 == count,
                )
                .await
            {
                return;
            }
        }
    }

    /// Hands the session back to the registry (or ends it) when the connection is over.
    fn finish(&mut self) {
        let keep = matches!(self.end, End::Closed { keep: true });
        let (by, code) = self.closed;
        tracing::info!(
            target: ACCESS,
            conn = self.conn_id,
            caller = %self.user.as_ref().map_or_else(|| "-".to_string(), |u| u.id.to_string()),
            close_code = %code.map_or_else(|| "-".to_string(), |c| c.to_string()),
            closed_by = %by,
            resumable = keep,
            "gateway close"
        );
        if let Some(record) = self.record.take() {
            let mut locked = record.lock();
            let mut unsent = Vec::new();
            if let Some(events) = &mut self.events {
                events.close();
                while let Ok(event) = events.try_recv() {
                    unsent.push(event);
                }
            }
            let mine = locked.detach(self.conn_id, unsent);
            if mine && !keep {
                locked.end();
                let id = locked.id.clone();
                drop(locked);
                self.inner.registry.remove(&id);
            }
        }
        self.inner.registry.disconnect(self.conn_id);
        if let Some(user) = self.user.as_ref().filter(|u| !u.bot) {
            if !keep {
                user_commands::refresh_presence(&self.inner, user.id);
            }
            return;
        }
        if let Some(user) = &self.user {
            if !keep
                && !self.inner.registry.user_has_sessions(user.id, "")
                && self.inner.registry.set_presence(user.id, None)
            {
                publish_presence(&self.inner, user.id, None);
            }
        }
    }
}

/// Applies an op 3 payload (`{status, activities}`) as `user_id`'s presence (a session's op 3,
/// or the test-control API acting as the user).
pub(super) fn apply_presence(inner: &Inner, user_id: Snowflake, d: &Value) {
    let Ok(update) = serde_json::from_value::<PresenceUpdate>(d.clone()) else {
        return;
    };
    let status = match update.status.as_str() {
        "online" | "idle" | "dnd" | "invisible" | "offline" => update.status.clone(),
        _ => "online".to_string(),
    };
    set_presence(inner, user_id, &status, update.activities);
}

fn set_presence(inner: &Inner, user_id: Snowflake, status: &str, activities: Vec<Value>) {
    // Invisible users look offline to everyone else.
    let visible = match status {
        "invisible" | "offline" => None,
        status => Some(Presence {
            status: status.to_string(),
            activities,
            client_status: None,
        }),
    };
    if !inner.registry.set_presence(user_id, visible.clone()) {
        return;
    }
    publish_presence(inner, user_id, visible.as_ref());
}

/// PRESENCE_UPDATE to every guild the user is in (`None`: offline).
fn publish_presence(inner: &Inner, user_id: Snowflake, presence: Option<&Presence>) {
    let offline = Presence {
        status: "offline".to_string(),
        activities: Vec::new(),
        client_status: None,
    };
    let presence = presence.unwrap_or(&offline);
    for guild_id in inner.state.store.guild_ids_of(user_id).unwrap_or_default() {
        inner.state.publish(Dispatch::guild(
            "PRESENCE_UPDATE",
            guild_id,
            intents::GUILD_PRESENCES,
            builders::presence(user_id, Some(guild_id), presence),
        ));
    }
    let friends = super::user_ready::friend_ids(&inner.state.store, user_id);
    if !friends.is_empty() {
        inner.state.publish(Dispatch::users(
            "PRESENCE_UPDATE",
            friends,
            0,
            builders::presence(user_id, None, presence),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_six_to_ten_are_served_and_others_closed_with_4012() {
        for v in 6..=10 {
            assert_eq!(parse_params(&format!("v={v}&encoding=json")).unwrap().1, v);
        }
        assert_eq!(parse_params("encoding=json").unwrap().1, 10);
        for bad in ["v=5", "v=11", "v=abc", "v=-1"] {
            assert_eq!(
                parse_params(bad).unwrap_err(),
                CloseCode::InvalidApiVersion,
                "{bad}"
            );
        }
        assert_eq!(
            parse_params("v=10&encoding=xml").unwrap_err(),
            CloseCode::DecodeError
        );
        assert_eq!(
            parse_params("v=10&compress=gzip").unwrap_err(),
            CloseCode::DecodeError
        );
        let (params, _) = parse_params("v=9&encoding=etf&compress=zstd-stream").unwrap();
        assert_eq!(params.encoding, Encoding::Etf);
    }
}
