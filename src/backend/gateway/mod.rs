//! The backend's gateway server: WebSocket connections driven by the sans-I/O
//! [`crate::gateway::server::ServerSession`], sessions that survive disconnects for RESUME,
//! and a dispatcher that routes every event bus event to the sessions that should see it.
//!
//! Entry points for other modules:
//! - [`Gateway::start`]`(state, config)` — starts the dispatcher (needs a Tokio runtime);
//! - [`Gateway::router`] — axum routes upgrading `/`, `/gateway` and `/gateway/`;
//! - [`Gateway::serve_upgraded`] / [`Gateway::serve_websocket`] — run one connection on an
//!   already-upgraded stream (the MITM pipeline hands `wss://gateway.discord.gg` here);
//! - [`Gateway::shutdown`] — op 7 RECONNECT to every connection, then wait for them to go.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::backend::state::AppState;
use crate::gateway::handshake::Handshake;
use crate::gateway::server::ServerConfig;

pub(crate) mod bench_support;
pub(crate) mod builders;
mod calls;
mod connection;
mod dispatcher;
mod pacing;

mod lists;
pub(crate) mod member_list;
mod ready_channels;
mod ready_guilds;
pub(crate) mod registry;
mod route_barriers;
pub(crate) mod sessions;
mod user_filter;
mod user_ready;
#[cfg(test)]
mod user_tests;

use registry::{Control, Limits, Registry};

/// Settings of the gateway server.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Per-connection session tunables (heartbeat interval 41250 ms, rate limits...).
    pub session: ServerConfig,
    /// Events queued per connection before it counts as unable to keep up (closed resumable).
    pub queue_capacity: usize,
    /// Replay buffer, pending bound and resume window of each session.
    pub limits: Limits,
    /// zlib level of `zlib-stream` connections.
    pub zlib_level: u32,
    /// zlib-stream with a compressor per connection (history across messages: smaller
    /// output, ~250 KiB more per session, deflate per session in fan-out) instead of each
    /// message deflated once for every session.
    pub zlib_history: bool,
    /// Whether bots' IDENTIFYs are paced as Discord does (one per `max_concurrency` bucket per
    /// 5 s; faster ones get op 9).
    pub identify_pacing: bool,
    /// Guilds one shard may hold before IDENTIFY is refused with 4011.
    pub max_guilds_per_shard: usize,
    /// A send that takes longer than this ends the connection (resumable).
    pub send_timeout: Duration,
    /// `endpoint` of VOICE_SERVER_UPDATE (`host:port`); `None`: the host the client used for
    /// the gateway. No voice server runs there: libraries get what they wait for, no media.
    pub voice_endpoint: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            session: ServerConfig::default(),
            queue_capacity: 1024,
            limits: Limits {
                replay: 1000,
                pending: 10_000,
                resume_window: Duration::from_secs(180),
            },
            // Per-session messages (READY, GUILD_CREATE...) are deflated per session: level 1
            // is ~3x cheaper than 6 for gateway-sized JSON at a slightly lower ratio.
            zlib_level: 1,
            zlib_history: false,
            identify_pacing: false,
            max_guilds_per_shard: 2500,
            send_timeout: Duration::from_secs(15),
            voice_endpoint: None,
        }
    }
}

pub(crate) struct Inner {
    state: AppState,
    config: GatewayConfig,
    registry: Registry,
    pacing: pacing::IdentifyPacing,

    /// The official client's live member lists.
    lists: lists::Lists,
    /// Calls in private channels.
    calls: calls::Calls,
    /// User READY's rendered guilds and their versions.
    ready_guilds: ready_guilds::ReadyGuilds,
    /// RESUMEs waiting for the dispatcher to catch up with the bus.
    barriers: route_barriers::RouteBarriers,
    shutting_down: AtomicBool,
}

/// The running gateway; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl Gateway {
    /// Starts the gateway over `state`'s store and event bus.
    pub fn start(state: AppState, config: GatewayConfig) -> Gateway {
        let events = state.bus.subscribe();
        let inner = Arc::new(Inner {
            registry: Registry::new(config.limits).sharing_voice(state.voice.clone()),
            state,
            config,
            pacing: pacing::IdentifyPacing::default(),

            lists: Default::default(),
            calls: Default::default(),
            ready_guilds: Default::default(),
            barriers: Default::default(),
            shutting_down: AtomicBool::new(false),
        });
        // A write's event drops the READY renderings it may change while it is published,
        // so a READY built once the REST call answered shows the write.
        let observer = Arc::downgrade(&inner);
        inner
            .state
            .bus
            .observe(Arc::new(move |event: &crate::backend::events::Event| {
                let Some(inner) = observer.upgrade() else {
                    return false;
                };
                if event.name == crate::backend::events::WORLD_RESET {
                    inner.ready_guilds.clear();
                } else {
                    inner
                        .ready_guilds
                        .on_event(event.name, dispatcher::routing_guild(event));
                }
                true
            }));
        restore_sessions(&inner);
        tokio::spawn(dispatcher::run(inner.clone(), events));
        let reaper = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let Some(inner) = reaper.upgrade() else {
                    return;
                };
                let gone = inner.registry.reap(Instant::now());
                if !gone.is_empty() {
                    tracing::debug!(gone = gone.len(), "expired gateway sessions dropped");
                }
                // A user's session that expired (no RESUME in time after a dropped connection
                // or a missed heartbeat) leaves its other sessions and its presence.
                let mut users: Vec<_> = gone.into_iter().flatten().collect();
                users.sort_unstable();
                users.dedup();
                for user_id in users {
                    connection::refresh_presence(&inner, user_id);
                }
            }
        });
        Gateway { inner }
    }

    /// Routes upgrading `/`, `/gateway` and `/gateway/` to the gateway; other requests to
    /// those paths get the backend's 404.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", any(upgrade))
            .route("/gateway", any(upgrade))
            .route("/gateway/", any(upgrade))
            .with_state(self.clone())
    }

    /// Serves one connection on a stream whose HTTP upgrade already happened. `query` is the
    /// request's query (`v=10&encoding=json&compress=zlib-stream`); `advertised_url` becomes
    /// READY's `resume_gateway_url`.
    pub async fn serve_upgraded<S>(&self, io: S, query: &str, advertised_url: String)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(websocket_config())).await;
        self.serve_websocket(ws, query, advertised_url).await;
    }

    /// Serves one connection on an established server-side WebSocket.
    pub async fn serve_websocket<S>(
        &self,
        ws: WebSocketStream<S>,
        query: &str,
        advertised_url: String,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        connection::run(self.inner.clone(), ws, query, advertised_url).await;
    }

    /// Sends op 7 RECONNECT to every connection and waits (up to `grace`) for them to close.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.inner.registry.broadcast(Control::Reconnect);
        let deadline = tokio::time::Instant::now() + grace;
        while self.inner.registry.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        save_sessions(&self.inner).await;
    }

    /// Open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.inner.registry.connection_count()
    }

    /// Sessions, live or waiting for a RESUME.
    pub fn session_count(&self) -> usize {
        self.inner.registry.session_count()
    }
}

/// Where a clean shutdown leaves the gateway's sessions for the next process.
const SAVED_SESSIONS: &str = "gateway_sessions";

/// Keeps every session that has not ended, so clients told op 7 RECONNECT at shutdown can
/// RESUME on the next process (a `kill -9` saves nothing: those clients identify again).
async fn save_sessions(inner: &Inner) {
    let saved = inner.registry.save();
    let count = saved.len();
    let written = serde_json::to_value(saved)
        .map_err(|e| e.to_string())
        .and_then(|value| {
            inner
                .state
                .store
                .meta
                .put(SAVED_SESSIONS, &value)
                .map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => {
            if let Err(e) = inner.state.store.flush_async().await {
                tracing::warn!("gateway sessions not saved for RESUME: {e}");
            } else if count > 0 {
                tracing::info!(count, "gateway sessions saved for RESUME after the restart");
            }
        }
        Err(e) => tracing::warn!("gateway sessions not saved for RESUME: {e}"),
    }
}

/// Takes back the sessions a clean shutdown saved (once: the record is removed).
fn restore_sessions(inner: &Inner) {
    let saved = match inner.state.store.meta.remove(SAVED_SESSIONS) {
        Ok(Some(value)) => value,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("saved gateway sessions unreadable: {e}");
            return;
        }
    };
    match serde_json::from_value::<Vec<registry::SavedSession>>(saved) {
        Ok(sessions) => {
            let count = inner.registry.restore(sessions, Instant::now());
            if count > 0 {
                tracing::info!(count, "gateway sessions from the last run are resumable");
            }
        }
        Err(e) => tracing::warn!("saved gateway sessions skipped (unreadable: {e})"),
    }
}

/// Small buffers: an idle session must stay cheap (thousands are held at once).
fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

async fn upgrade(State(gateway): State<Gateway>, mut request: Request) -> Response {
    let accepted = match Handshake::of(request.headers()) {
        Handshake::NotWebSocket => return crate::backend::error::no_route_handler(request).await,
        Handshake::UnsupportedVersion(status, headers) => {
            return (status, headers).into_response();
        }
        Handshake::Accept(status, headers) => (status, headers),
    };
    let query = request.uri().query().unwrap_or("").to_string();
    let advertised =
        crate::backend::services::common::gateway_url(&gateway.inner.state, request.headers());
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                gateway
                    .serve_upgraded(hyper_util::rt::TokioIo::new(upgraded), &query, advertised)
                    .await
            }
            Err(e) => tracing::debug!("gateway upgrade failed: {e}"),
        }
    });
    accepted.into_response()
}
