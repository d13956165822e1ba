//! WebSocket upgrades (the gateway): dialed upstream through our own client, answered to the
//! client ourselves, and relayed frame by frame with every frame tapped for the recorder.
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::header::{CONNECTION, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::gateway_identity::RelayedIdentity;
use super::identity::Identity;
use super::{discord_error, empty_body, Answer, PipeBody, RequestContext, Source};
use crate::gateway::compress::TransportCompression;
use crate::store::recorder::CapturedSession;
use crate::store::{Direction, FrameKind, Recorder};
use crate::upstream::{Upstream, UpstreamStream};

/// How long the other direction may take to finish after one side closed.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Whether `req` asks for a WebSocket upgrade.
pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.method() == http::Method::GET
        && req
            .headers()
            .get(UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && req.headers().contains_key(SEC_WEBSOCKET_KEY)
}

/// Relays gateway connections and taps their frames.
pub struct WebSocketRelay {
    recorder: Option<Recorder>,
    config: WebSocketConfig,
    identity: Option<Arc<Identity>>,
}

impl WebSocketRelay {
    /// A relay recording into `recorder` (if any).
    pub fn new(recorder: Option<Recorder>) -> Self {
        WebSocketRelay {
            recorder,
            config: relay_config(),
            identity: None,
        }
    }

    /// Applies `serve`'s identity rules to relayed sessions: IDENTIFY and RESUME carry the
    /// upstream token, and the real account's id reads as the local user's (see
    /// [`super::gateway_identity`]).
    pub fn with_identity(mut self, identity: Arc<Identity>) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Connects upstream, answers the client's upgrade, and starts relaying.
    pub async fn upgrade(
        &self,
        upstream: &Upstream,
        ctx: &RequestContext,
        mut req: Request<PipeBody>,
    ) -> Answer {
        let scheme = if ctx.scheme == "https" { "wss" } else { "ws" };
        let path_and_query = req
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        let url = format!("{scheme}://{}{}", ctx.authority(), path_and_query);
        let Some(client_key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
            return fail(
                StatusCode::BAD_REQUEST,
                "400: Bad Request",
                "no Sec-WebSocket-Key".into(),
            );
        };
        let upstream_req = match upstream_request(ctx, &req, &url) {
            Ok(r) => r,
            Err(err) => return fail(StatusCode::BAD_REQUEST, "400: Bad Request", err.to_string()),
        };
        let connected = match upstream.websocket(upstream_req, self.config).await {
            Ok(connected) => connected,
            Err(err) => {
                // Logged and answered without the URL's path and query (a token can be there),
                // with the reason and the hint in the body as a REST 502 has them.
                let reason = err.reason();
                let hint = err.hint();
                tracing::warn!(
                    "gateway upstream failed, answering 502: {reason}{}",
                    hint.as_deref()
                        .map(|h| format!("; {h}"))
                        .unwrap_or_default()
                );
                return Answer {
                    response: super::bad_gateway(&reason, hint.as_deref()),
                    source: Source::Proxy,
                    upstream_addr: None,
                    error: Some(err.to_string()),
                    record: true,
                    rewrites: Vec::new(),
                };
            }
        };
        let response = match client_response(&client_key, &connected.response) {
            Ok(r) => r,
            Err(err) => return fail(StatusCode::BAD_GATEWAY, "502: Bad Gateway", err.to_string()),
        };
        let session = self.recorder.as_ref().map(|recorder| {
            let id = recorder.session_start(CapturedSession {
                started_at_us: ctx.arrived_at_us,
                client_addr: ctx.client_addr.to_string(),
                upstream_addr: Some(connected.peer.to_string()),
                scheme: scheme.to_string(),
                host: ctx.authority(),
                path_and_query: path_and_query.clone(),
                request_headers: req.headers().clone(),
                status: Some(connected.response.status().as_u16()),
                error: None,
            });
            (recorder.clone(), id)
        });
        let upstream_peer = connected.peer;
        let on_upgrade = hyper::upgrade::on(&mut req);
        let query = path_and_query
            .split_once('?')
            .map_or("", |(_, query)| query);
        let etf = query.split('&').any(|pair| pair == "encoding=etf");
        let compression = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("compress="))
            .and_then(TransportCompression::from_query_value)
            .unwrap_or_default();
        tokio::spawn(relay_once_upgraded(
            on_upgrade,
            Upgraded {
                upstream: connected.socket,
                config: self.config,
                session,
                upstream_peer,
                identity: self
                    .identity
                    .clone()
                    .map(|identity| (identity, etf, compression)),
            },
        ));
        Answer {
            response,
            source: Source::Upstream,
            upstream_addr: Some(upstream_peer),
            error: None,
            record: false,
            rewrites: Vec::new(),
        }
    }
}

/// The upgrade request sent upstream to `url`: the client's headers minus the host, proxy
/// headers and extensions (we relay frames, so no compression is negotiated through us).
fn upstream_request(
    ctx: &RequestContext,
    req: &Request<PipeBody>,
    url: &str,
) -> Result<Request<()>, http::Error> {
    let mut builder = Request::builder().method("GET").uri(url);
    for (name, value) in req.headers() {
        let skip = name == HOST
            || name == "sec-websocket-extensions"
            || name.as_str().starts_with("proxy-");
        if !skip {
            builder = builder.header(name, value);
        }
    }
    builder.header(HOST, ctx.authority()).body(())
}

/// The 101 the client gets for `client_key`, carrying upstream's other response headers.
fn client_response(
    client_key: &http::HeaderValue,
    upstream_response: &Response<Option<Vec<u8>>>,
) -> Result<Response<PipeBody>, http::Error> {
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, "websocket")
        .header(
            SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(client_key.as_bytes()),
        );
    for (name, value) in upstream_response.headers() {
        let ours = name == CONNECTION || name == UPGRADE || name == SEC_WEBSOCKET_ACCEPT;
        if !ours && name != "alt-svc" && name != "sec-websocket-extensions" {
            response = response.header(name, value);
        }
    }
    response.body(empty_body())
}

/// An upgraded connection's upstream side and what relaying it needs.
struct Upgraded {
    upstream: WebSocketStream<UpstreamStream>,
    config: WebSocketConfig,
    session: Option<(Recorder, u64)>,
    upstream_peer: std::net::SocketAddr,
    /// The identity rules, whether the session speaks ETF, and its transport compression.
    identity: Option<(Arc<Identity>, bool, TransportCompression)>,
}

/// Waits for the client's side of the upgrade, then relays it with `upstream` until both end,
/// closing the recorded session with the reason it ended.
async fn relay_once_upgraded(on_upgrade: hyper::upgrade::OnUpgrade, upgraded: Upgraded) {
    let Upgraded {
        upstream,
        config,
        session,
        upstream_peer,
        identity,
    } = upgraded;
    let client = match on_upgrade.await {
        Ok(upgraded) => {
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await
        }
        Err(err) => {
            if let Some((recorder, id)) = &session {
                recorder.session_end(*id, Some(format!("client upgrade failed: {err}")));
            }
            return;
        }
    };
    let rules = match identity
        .map(|(identity, etf, compression)| RelayedIdentity::new(identity, etf, compression))
    {
        Some(Ok(rules)) => Some(rules),
        Some(Err(err)) => {
            if let Some((recorder, id)) = &session {
                recorder.session_end(*id, Some(err.to_string()));
            }
            tracing::warn!(%upstream_peer, "gateway session not relayed: {err}");
            return;
        }
        None => None,
    };
    let error = relay(client, upstream, session.as_ref(), rules.as_ref()).await;
    if let Some(reason) = &error {
        tracing::info!(%upstream_peer, "gateway session ended: {reason}");
    }
    if let Some((recorder, id)) = &session {
        recorder.session_end(*id, error);
    }
}

fn fail(status: StatusCode, message: &str, error: String) -> Answer {
    Answer {
        response: discord_error(status, message, 0),
        source: Source::Proxy,
        upstream_addr: None,
        error: Some(error),
        record: true,
        rewrites: Vec::new(),
    }
}

/// WebSocket limits of both sides of a relay.
pub(crate) fn relay_config() -> WebSocketConfig {
    // READY for a big account is megabytes; Discord's own limit on client frames is far lower.
    WebSocketConfig::default()
        .max_message_size(Some(128 << 20))
        .max_frame_size(Some(64 << 20))
}

/// Relays until both sides are done, tapping every message into `session` (as its sender
/// sent it) and applying the identity `rules` to both directions; returns the first error seen.
pub(crate) async fn relay<C, U>(
    client: WebSocketStream<C>,
    upstream: WebSocketStream<U>,
    session: Option<&(Recorder, u64)>,
    rules: Option<&RelayedIdentity>,
) -> Option<String>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut client_sink, mut client_stream) = client.split();
    let (mut upstream_sink, mut upstream_stream) = upstream.split();
    let up = pump(
        &mut client_stream,
        &mut upstream_sink,
        Direction::ClientToServer,
        session,
        rules,
    );
    let down = pump(
        &mut upstream_stream,
        &mut client_sink,
        Direction::ServerToClient,
        session,
        rules,
    );
    tokio::pin!(up, down);
    let (first, second) = tokio::select! {
        err = &mut up => (err, tokio::time::timeout(CLOSE_GRACE, &mut down).await.ok().flatten()),
        err = &mut down => (err, tokio::time::timeout(CLOSE_GRACE, &mut up).await.ok().flatten()),
    };
    first.or(second)
}

/// Forwards one direction, tapping each message; returns an error description if it failed.
async fn pump<S, K>(
    stream: &mut S,
    sink: &mut K,
    direction: Direction,
    session: Option<&(Recorder, u64)>,
    rules: Option<&RelayedIdentity>,
) -> Option<String>
where
    S: futures::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
    K: futures::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    let side = match direction {
        Direction::ClientToServer => "client",
        Direction::ServerToClient => "upstream",
    };
    loop {
        let message = match stream.next().await {
            None => return None,
            Some(Ok(message)) => message,
            Some(Err(err)) => {
                let _ = sink.close().await;
                return match err {
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                        None
                    }
                    other => Some(format!("{side} connection: {other}")),
                };
            }
        };
        if let Some((recorder, id)) = session {
            tap(recorder, *id, direction, &message);
        }
        let closing = matches!(message, Message::Close(_));
        if let Message::Frame(_) = message {
            continue;
        }
        let message = match rules {
            Some(rules) => {
                let relayed = match direction {
                    Direction::ClientToServer => Ok(rules.client_message(message)),
                    Direction::ServerToClient => rules.server_message(message),
                };
                let (message, rewrite) = match relayed {
                    Ok(relayed) => relayed,
                    Err(err) => {
                        let _ = sink.close().await;
                        return Some(err.to_string());
                    }
                };
                if let (Some(rewrite), Some((recorder, id))) = (rewrite, session) {
                    recorder.session_rewrite(*id, rewrite);
                }
                match message {
                    Some(message) => message,
                    // Part of a compressed message: it goes on once whole.
                    None => continue,
                }
            }
            None => message,
        };
        match sink.send(message).await {
            Ok(()) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return None
            }
            Err(err) => return Some(format!("forwarding to the other side: {err}")),
        }
        if closing {
            let _ = sink.close().await;
        }
    }
}

fn tap(recorder: &Recorder, session_id: u64, direction: Direction, message: &Message) {
    let (kind, data, close) = match message {
        Message::Text(text) => (
            FrameKind::Text,
            Bytes::copy_from_slice(text.as_bytes()),
            None,
        ),
        Message::Binary(data) => (FrameKind::Binary, data.clone(), None),
        Message::Ping(data) => (FrameKind::Ping, data.clone(), None),
        Message::Pong(data) => (FrameKind::Pong, data.clone(), None),
        Message::Close(frame) => {
            let close = frame
                .as_ref()
                .map(|CloseFrame { code, reason }| (Some(u16::from(*code)), reason.to_string()))
                .unwrap_or((None, String::new()));
            (FrameKind::Close, Bytes::new(), Some(close))
        }
        Message::Frame(_) => return,
    };
    recorder.frame(session_id, direction, kind, data, close);
}
