//! One upstream shard on a real socket: the I/O around the gateway core's [`ClientSession`]
//! (which owns heartbeats, zombie detection, resume, backoff and the send limit).
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::gateway::client::{ClientAction, ClientConfig, ClientSession, ClientState, ResumeState};
use crate::gateway::close::CloseCode;
use crate::gateway::codec::{decode_payload, encode_payload, Encoding};
use crate::gateway::etf::DecodeOptions;
use crate::gateway::GatewayPayload;
use crate::upstream::{Upstream, UpstreamStream};

use super::nats_identify::IdentifyGate;

/// The gateway API version the proxy speaks upstream.
pub const UPSTREAM_GATEWAY_VERSION: u8 = 10;

/// A dispatch as upstream sent it: its data stays JSON text until something needs the value
/// (publishing to NATS never does; the cache and connected clients do).
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// Event name (`t`).
    pub name: String,
    /// Sequence number (`s`).
    pub seq: Option<u64>,
    /// `d` exactly as upstream wrote it (one JSON value).
    pub raw: Bytes,
    value: Option<Value>,
}

impl Dispatch {
    /// A dispatch of `name` whose data is the JSON text `raw` (`value`: already parsed).
    pub fn new(name: String, seq: Option<u64>, raw: Bytes, value: Option<Value>) -> Dispatch {
        Dispatch {
            name,
            seq,
            raw,
            value,
        }
    }

    /// The data as a value, parsed on first use (`null` if it is not JSON).
    pub fn value(&mut self) -> &Value {
        self.value
            .get_or_insert_with(|| serde_json::from_slice(&self.raw).unwrap_or(Value::Null))
    }

    /// Top-level string field `field` of the data, without building the whole value.
    pub fn str_field(&self, field: &str) -> Option<String> {
        if let Some(value) = &self.value {
            return value.get(field).and_then(Value::as_str).map(str::to_owned);
        }
        let mut de = serde_json::Deserializer::from_slice(&self.raw);
        serde::Deserializer::deserialize_map(&mut de, FieldSeek(field))
            .ok()
            .flatten()
    }

    /// The whole payload (op 0).
    pub fn into_payload(mut self) -> GatewayPayload {
        self.value();
        GatewayPayload {
            op: crate::gateway::OpCode::Dispatch,
            d: self.value.unwrap_or(Value::Null),
            s: self.seq,
            t: Some(self.name),
        }
    }
}

/// Finds one top-level string field of a JSON object, skipping everything else.
struct FieldSeek<'f>(&'f str);

impl<'de> serde::de::Visitor<'de> for FieldSeek<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if found.is_none() && key == self.0 {
                found = map.next_value::<Value>()?.as_str().map(str::to_owned);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// An upstream message's envelope with `d` left as JSON text.
#[derive(Deserialize)]
struct Envelope<'a> {
    op: u64,
    #[serde(borrow)]
    d: Option<&'a RawValue>,
    s: Option<u64>,
    #[serde(borrow)]
    t: Option<Cow<'a, str>>,
}

/// What a shard reports to whoever relays its events.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardEvent {
    /// A dispatch (op 0) from upstream, in upstream's order.
    Dispatch {
        /// The shard it arrived on.
        shard_id: u32,
        /// The dispatch as upstream sent it.
        dispatch: Dispatch,
    },
    /// An IDENTIFY was sent upstream (a RESUME was not possible).
    Identified {
        /// The shard.
        shard_id: u32,
    },
    /// A heartbeat was ACKed: the round trip it took.
    Latency {
        /// The shard.
        shard_id: u32,
        /// Heartbeat sent → ACK received.
        latency: Duration,
    },
    /// The session state changed (e.g. Active after READY/RESUMED).
    State {
        /// The shard.
        shard_id: u32,
        /// Its new state.
        state: ClientState,
    },
}

/// How a shard ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardEnd {
    /// Stopped on request; the session can be resumed with this state (if it ever had one).
    Stopped(Option<ResumeState>),
    /// Upstream refused the configuration (4004 token, 4010/4011 shards, 4013/4014 intents...).
    Fatal(CloseCode),
    /// Upstream ended the session for good.
    Finished(CloseCode),
}

/// Everything one shard task needs.
pub struct ShardTask {
    /// Upstream client (TLS, `--resolve`, `--upstream-ca`).
    pub upstream: Upstream,
    /// Identity and tunables; `shard` must be set.
    pub config: ClientConfig,
    /// A persisted session to RESUME instead of identifying.
    pub resume: Option<ResumeState>,
    /// The bot-wide identify pacing (`max_concurrency` buckets; shared across processes
    /// through NATS when configured).
    pub identify: Arc<IdentifyGate>,
    /// Where dispatches and state changes go.
    pub events: mpsc::Sender<ShardEvent>,
    /// Commands from clients (op 3, op 4, op 8) to send within the send limit.
    pub commands: mpsc::UnboundedReceiver<GatewayPayload>,
    /// Becomes true when the proxy shuts down (the shard then closes resumably).
    pub shutdown: watch::Receiver<bool>,
}

type Socket = WebSocketStream<UpstreamStream>;

/// Closes the upstream socket with `code`, giving the close handshake two seconds.
async fn close_upstream(mut ws: Socket, code: CloseCode) {
    let frame = CloseFrame {
        code: WsCloseCode::from(code.code()),
        reason: "".into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(Some(frame))).await;
}

impl ShardTask {
    /// Runs the shard until shutdown or a fatal/final close.
    pub async fn run(mut self) -> ShardEnd {
        let shard_id = self.config.shard.map(|s| s.id).unwrap_or(0);
        let now = Instant::now();
        let (mut session, actions) = match self.resume.take() {
            Some(state) => ClientSession::with_session(self.config.clone(), state, now),
            None => ClientSession::new(self.config.clone(), now),
        };
        let mut socket: Option<Socket> = None;
        let mut pending = std::collections::VecDeque::from(actions);
        let mut last_state = session.state();
        loop {
            while let Some(action) = pending.pop_front() {
                let more = match action {
                    ClientAction::Connect { url, resume } => {
                        tracing::info!(shard_id, %url, resume, "connecting upstream");
                        match self.connect(&url).await {
                            Ok(ws) => {
                                socket = Some(ws);
                                session.on_connected(Instant::now())
                            }
                            Err(err) => {
                                tracing::warn!(shard_id, %err, "upstream connect failed");
                                session.on_connect_failed(Instant::now())
                            }
                        }
                    }
                    ClientAction::Send(payload) => {
                        if self.send_upstream(&mut socket, &payload, shard_id).await {
                            Vec::new()
                        } else {
                            socket = None;
                            session.on_closed(None, Instant::now())
                        }
                    }
                    ClientAction::Close(code) => {
                        if let Some(ws) = socket.take() {
                            close_upstream(ws, code).await;
                        }
                        Vec::new()
                    }
                    ClientAction::RequestIdentify { shard_id, .. } => {
                        self.wait_identify_turn(shard_id).await;
                        session.identify_permitted(Instant::now())
                    }
                    ClientAction::Fatal(code) => {
                        tracing::error!(
                            shard_id,
                            code = code.code(),
                            "upstream refused the shard: {}",
                            code.explanation()
                        );
                        return ShardEnd::Fatal(code);
                    }
                    ClientAction::Finished(code) => return ShardEnd::Finished(code),
                };
                pending.extend(more);
            }
            // Reported after every step: READY/RESUMED change the state without any action.
            self.report_state(shard_id, &mut last_state, session.state())
                .await;
            if *self.shutdown.borrow() {
                let state = session.resume_state();
                pending.extend(session.disconnect_resumable(Instant::now()));
                for action in pending.drain(..) {
                    if let (ClientAction::Close(code), Some(ws)) = (action, socket.take()) {
                        close_upstream(ws, code).await;
                    }
                }
                return ShardEnd::Stopped(state);
            }
            let deadline = session
                .poll_at()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
            let actions = tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => session.on_tick(Instant::now()),
                changed = self.shutdown.changed() => {
                    if changed.is_err() {
                        // The owner is gone: treat like a shutdown request.
                        return ShardEnd::Stopped(session.resume_state());
                    }
                    Vec::new()
                }
                Some(command) = self.commands.recv() => {
                    session.send(command, Instant::now()).unwrap_or_default()
                }
                message = next_message(&mut socket) => match message {
                    Incoming::Payload(bytes) => self.on_upstream_payload(&mut session, bytes, shard_id).await,
                    Incoming::Closed(code) => {
                        socket = None;
                        tracing::info!(shard_id, ?code, "upstream closed");
                        session.on_closed(code, Instant::now())
                    }
                    Incoming::Ignore => Vec::new(),
                },
            };
            pending.extend(actions);
        }
    }

    /// Tells the board when the session's state differs from the last one reported.
    async fn report_state(&self, shard_id: u32, last: &mut ClientState, now: ClientState) {
        if now != *last {
            *last = now;
            tracing::debug!(shard_id, state = ?now, "shard state changed");
            let _ = self
                .events
                .send(ShardEvent::State {
                    shard_id,
                    state: now,
                })
                .await;
        }
    }

    /// Sends one payload upstream (counting IDENTIFYs on the board); false when there is no
    /// socket or the write failed.
    async fn send_upstream(
        &self,
        socket: &mut Option<Socket>,
        payload: &GatewayPayload,
        shard_id: u32,
    ) -> bool {
        if payload.op == crate::gateway::OpCode::Identify {
            let _ = self.events.send(ShardEvent::Identified { shard_id }).await;
        }
        match (socket, encode_payload(payload, Encoding::Json)) {
            (Some(ws), Ok(bytes)) => {
                let text = String::from_utf8(bytes).unwrap_or_default();
                ws.send(Message::text(text)).await.is_ok()
            }
            _ => false,
        }
    }

    /// Waits until the bot-wide identify pacing lets `shard_id` IDENTIFY.
    async fn wait_identify_turn(&self, shard_id: u32) {
        self.identify.wait_turn(shard_id).await;
    }

    /// Feeds one upstream payload to the session; reports heartbeat latency and hands
    /// dispatches on to the relay.
    async fn on_upstream_payload(
        &self,
        session: &mut ClientSession,
        bytes: Bytes,
        shard_id: u32,
    ) -> Vec<ClientAction> {
        if let Some(dispatch) = split_dispatch(&bytes) {
            return self.on_dispatch(session, dispatch, shard_id).await;
        }
        match decode_payload(&bytes, Encoding::Json, &DecodeOptions::default()) {
            Ok(payload) => {
                let actions = session.on_payload(&payload, Instant::now());
                if payload.op == crate::gateway::OpCode::HeartbeatAck {
                    if let Some(latency) = session.latency() {
                        let _ = self
                            .events
                            .send(ShardEvent::Latency { shard_id, latency })
                            .await;
                    }
                }
                if let (Some((name, _)), Ok(raw)) =
                    (payload.as_dispatch(), serde_json::to_vec(&payload.d))
                {
                    let dispatch = Dispatch::new(
                        name.to_owned(),
                        payload.s,
                        raw.into(),
                        Some(payload.d.clone()),
                    );
                    let _ = self
                        .events
                        .send(ShardEvent::Dispatch { shard_id, dispatch })
                        .await;
                }
                actions
            }
            Err(err) => {
                tracing::warn!(shard_id, %err, "undecodable upstream payload");
                Vec::new()
            }
        }
    }

    /// Feeds one dispatch to the session (which reads `d` only of READY) and hands it on.
    async fn on_dispatch(
        &self,
        session: &mut ClientSession,
        mut dispatch: Dispatch,
        shard_id: u32,
    ) -> Vec<ClientAction> {
        let needs_data = matches!(dispatch.name.as_str(), "READY" | "RESUMED");
        let mut payload = GatewayPayload {
            op: crate::gateway::OpCode::Dispatch,
            d: if needs_data {
                dispatch.value().clone()
            } else {
                Value::Null
            },
            s: dispatch.seq,
            t: Some(std::mem::take(&mut dispatch.name)),
        };
        let actions = session.on_payload(&payload, Instant::now());
        dispatch.name = payload.t.take().unwrap_or_default();
        let _ = self
            .events
            .send(ShardEvent::Dispatch { shard_id, dispatch })
            .await;
        actions
    }

    async fn connect(&self, url: &str) -> Result<Socket, String> {
        let full = gateway_url_with_query(url);
        let request = http::Request::builder()
            .uri(&full)
            .header("host", host_header(&full)?)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header(
                "sec-websocket-key",
                tokio_tungstenite::tungstenite::handshake::client::generate_key(),
            )
            .body(())
            .map_err(|err| err.to_string())?;
        let mut ws_config = WebSocketConfig::default();
        ws_config.max_message_size = Some(256 << 20);
        self.upstream
            .websocket(request, ws_config)
            .await
            .map(|connected| connected.socket)
            .map_err(|err| err.to_string())
    }
}

enum Incoming {
    Payload(Bytes),
    Closed(Option<u16>),
    Ignore,
}

async fn next_message(socket: &mut Option<Socket>) -> Incoming {
    let Some(ws) = socket else {
        return std::future::pending().await;
    };
    match ws.next().await {
        Some(Ok(Message::Text(text))) => Incoming::Payload(text.into()),
        Some(Ok(Message::Binary(bytes))) => Incoming::Payload(bytes),
        Some(Ok(Message::Close(frame))) => Incoming::Closed(frame.map(|f| u16::from(f.code))),
        Some(Ok(_)) => Incoming::Ignore,
        Some(Err(_)) | None => Incoming::Closed(None),
    }
}

/// A dispatch (a JSON object with op 0, an event name and data) split into its parts without
/// parsing the data; anything else is left to the full decoder.
fn split_dispatch(bytes: &Bytes) -> Option<Dispatch> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).ok()?;
    let (0, Some(name), Some(d)) = (envelope.op, envelope.t, envelope.d) else {
        return None;
    };
    // `d` borrows from `bytes`: share that part of the buffer.
    let start = (d.get().as_ptr() as usize).checked_sub(bytes.as_ptr() as usize)?;
    let end = start.checked_add(d.get().len())?;
    let raw = (end <= bytes.len()).then(|| bytes.slice(start..end))?;
    Some(Dispatch::new(name.into_owned(), envelope.s, raw, None))
}

/// `url` with the query this proxy connects with (JSON, uncompressed, our version), keeping
/// any path the URL had.
pub fn gateway_url_with_query(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let base = if base.contains("://") && base.matches('/').count() < 3 {
        format!("{base}/")
    } else {
        base.to_owned()
    };
    format!("{base}?v={UPSTREAM_GATEWAY_VERSION}&encoding=json")
}

fn host_header(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|err| format!("bad gateway URL {url}: {err}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("gateway URL {url} has no host"))?;
    Ok(authority.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_url_gets_our_query_and_keeps_its_path() {
        assert_eq!(
            gateway_url_with_query("wss://gateway.discord.gg"),
            "wss://gateway.discord.gg/?v=10&encoding=json"
        );
        assert_eq!(
            gateway_url_with_query("ws://127.0.0.1:9000/gw?v=9&encoding=etf"),
            "ws://127.0.0.1:9000/gw?v=10&encoding=json"
        );
        assert_eq!(
            host_header("ws://127.0.0.1:9000/gw").unwrap(),
            "127.0.0.1:9000"
        );
        assert!(host_header("/relative").is_err());
    }
}
