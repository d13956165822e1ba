//! The first link of `serve`'s chain: the reimplemented backend, called in-process (no socket),
//! for Discord's API hosts and for the attachments it handed out on Discord's CDN hosts; gateway
//! upgrades go to the in-process gateway, relayed through the recorder's taps when recording.
use std::convert::Infallible;

use axum::Router;
use bytes::Bytes;
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tower::ServiceExt;

use super::websocket::{is_upgrade, relay, relay_config};
use super::{
    buffer_body, discord_error, empty_body, full_body, Answer, BufferError, Outcome, PipeBody,
    RequestContext, Responder, Source,
};
use crate::backend::error::Unrouted;
use crate::backend::gateway::Gateway;
use crate::backend::services::common::{PROXIED_CDN_ORIGIN, PROXIED_GATEWAY_URL};
use crate::store::recorder::CapturedSession;
use crate::store::Recorder;

/// Hosts whose `/api/**` the backend answers.
pub const API_HOSTS: &[&str] = &[
    "discord.com",
    "discordapp.com",
    "canary.discord.com",
    "ptb.discord.com",
];
/// Discord's CDN hosts: `/attachments/**` there reaches the backend (which declines the ones it
/// did not hand out).
pub const CDN_HOSTS: &[&str] = &["cdn.discordapp.com", "media.discordapp.net"];
/// The origin of attachment URLs handed to clients behind the proxy.
pub const ADVERTISED_CDN: &str = "https://cdn.discordapp.com";
/// Host whose WebSocket upgrades the in-process gateway answers.
pub const GATEWAY_HOST: &str = "gateway.discord.gg";
/// The gateway URL advertised to clients behind the proxy (they keep talking to "Discord").
pub const ADVERTISED_GATEWAY: &str = "wss://gateway.discord.gg";

/// Answers what the backend implements; declines the rest (unchanged, body intact).
pub struct BackendResponder {
    routers: Vec<Router>,
    gateway: Gateway,
    max_body: usize,
    recorder: Option<Recorder>,
}

impl BackendResponder {
    /// `routers` are tried in order until one has a route (unrouted requests are answered
    /// with [`Unrouted`] marked); requests larger than `max_body` get 413.
    pub fn new(routers: Vec<Router>, gateway: Gateway, max_body: usize) -> Self {
        BackendResponder {
            routers,
            gateway,
            max_body,
            recorder: None,
        }
    }

    /// Records the gateway sessions it serves into `recorder` (like `record` records upstream's).
    pub fn recording(mut self, recorder: Option<Recorder>) -> Self {
        self.recorder = recorder;
        self
    }

    fn gateway_upgrade(&self, ctx: &RequestContext, mut req: Request<PipeBody>) -> Answer {
        let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
            return answer(
                discord_error(StatusCode::BAD_REQUEST, "400: Bad Request", 0),
                Source::Backend,
            );
        };
        let query = req.uri().query().unwrap_or("").to_string();
        let session = self.recorder.as_ref().map(|recorder| {
            let path_and_query = req
                .uri()
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_string();
            let id = recorder.session_start(CapturedSession {
                started_at_us: ctx.arrived_at_us,
                client_addr: ctx.client_addr.to_string(),
                // Nothing upstream: the in-process gateway answered.
                upstream_addr: None,
                scheme: if ctx.scheme == "https" { "wss" } else { "ws" }.to_string(),
                host: ctx.authority(),
                path_and_query,
                request_headers: req.headers().clone(),
                status: Some(StatusCode::SWITCHING_PROTOCOLS.as_u16()),
                error: None,
            });
            (recorder.clone(), id)
        });
        let on_upgrade = hyper::upgrade::on(&mut req);
        let gateway = self.gateway.clone();
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => TokioIo::new(upgraded),
                Err(err) => {
                    tracing::info!("gateway upgrade through the proxy failed: {err}");
                    if let Some((recorder, id)) = &session {
                        recorder.session_end(*id, Some(format!("client upgrade failed: {err}")));
                    }
                    return;
                }
            };
            let Some(session) = session else {
                gateway
                    .serve_upgraded(upgraded, &query, ADVERTISED_GATEWAY.into())
                    .await;
                return;
            };
            // Recording: the gateway serves one end of an in-memory pipe and the relay taps
            // every message between it and the client, exactly as for upstream's gateway.
            let (ours, gateways) = tokio::io::duplex(64 * 1024);
            let served = tokio::spawn(async move {
                gateway
                    .serve_upgraded(gateways, &query, ADVERTISED_GATEWAY.into())
                    .await
            });
            let config = relay_config();
            let client =
                WebSocketStream::from_raw_socket(upgraded, Role::Server, Some(config)).await;
            let backend = WebSocketStream::from_raw_socket(ours, Role::Client, Some(config)).await;
            let error = relay(client, backend, Some(&session), None).await;
            let (recorder, id) = &session;
            recorder.session_end(*id, error);
            // The pipe's end is dropped with the relay, so the gateway sees it close and ends.
            let _ = served.await;
        });
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_ACCEPT, derive_accept_key(key.as_bytes()))
            .body(empty_body());
        match response {
            Ok(response) => Answer {
                response,
                source: Source::Backend,
                upstream_addr: None,
                error: None,
                // Not an exchange: recorded (when recording) as a gateway session instead.
                record: false,
                rewrites: Vec::new(),
            },
            Err(err) => Answer {
                response: discord_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500: Internal Server Error",
                    0,
                ),
                source: Source::Proxy,
                upstream_addr: None,
                error: Some(err.to_string()),
                record: true,
                rewrites: Vec::new(),
            },
        }
    }
}

/// Whether the backend is asked at all: an API path on a Discord API host, or an attachment
/// path on a Discord CDN host.
pub fn is_backend_request(host: &str, path: &str) -> bool {
    (API_HOSTS.contains(&host) && (path == "/api" || path.starts_with("/api/")))
        || (CDN_HOSTS.contains(&host) && CDN_PREFIXES.iter().any(|p| path.starts_with(p)))
}

/// CDN paths the backend may hold (attachments and uploaded images); what it does not hold it
/// answers as unrouted, and the chain goes on.
const CDN_PREFIXES: &[&str] = &[
    "/attachments/",
    "/avatars/",
    "/banners/",
    "/icons/",
    "/splashes/",
    "/discovery-splashes/",
    "/role-icons/",
    "/app-icons/",
    "/guild-events/",
    "/emojis/",
    "/embed/avatars/",
    "/stickers/",
    "/channel-icons/",
    // Group DM icons (`/channels/{id}/icons/…`), role icons (`/roles/{id}/icons/…`) and
    // members' own avatars and banners (`/guilds/{g}/users/{u}/avatars|banners/…`).
    "/channels/",
    "/roles/",
    "/guilds/",
];

/// The answer for a request body that could not be buffered (too large, or it failed).
pub(crate) fn body_error(err: BufferError) -> Answer {
    let response = match err {
        BufferError::TooLarge(_) => discord_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request entity too large",
            40005,
        ),
        BufferError::Failed(_) => discord_error(StatusCode::BAD_REQUEST, "400: Bad Request", 0),
    };
    Answer {
        response,
        source: Source::Proxy,
        upstream_addr: None,
        error: Some(format!("request {err}")),
        record: true,
        rewrites: Vec::new(),
    }
}

fn answer(response: Response<PipeBody>, source: Source) -> Answer {
    Answer {
        response,
        source,
        upstream_addr: None,
        error: None,
        record: true,
        rewrites: Vec::new(),
    }
}

impl Responder for BackendResponder {
    async fn respond(&self, ctx: &RequestContext, req: Request<PipeBody>) -> Outcome {
        if ctx.host == GATEWAY_HOST && is_upgrade(&req) {
            return Outcome::Answered(self.gateway_upgrade(ctx, req));
        }
        if !is_backend_request(&ctx.host, req.uri().path()) {
            return Outcome::Declined(req);
        }
        // Buffered so the request can go on down the chain if the backend has no route.
        let (parts, body) = req.into_parts();
        let bytes: Bytes = match buffer_body(body, self.max_body).await {
            Ok(bytes) => bytes,
            Err(err) => return Outcome::Answered(body_error(err)),
        };
        for router in &self.routers {
            let mut backend_req =
                Request::from_parts(parts.clone(), axum::body::Body::from(bytes.clone()));
            let headers = backend_req.headers_mut();
            headers.insert(
                http::header::HOST,
                http::HeaderValue::from_str(&ctx.authority())
                    .unwrap_or_else(|_| http::HeaderValue::from_static("discord.com")),
            );
            // URLs the backend hands out must be Discord's, reached through the proxy again;
            // set here (a client's own copies replaced) so no client can pick them.
            headers.insert(
                PROXIED_CDN_ORIGIN,
                http::HeaderValue::from_static(ADVERTISED_CDN),
            );
            headers.insert(
                PROXIED_GATEWAY_URL,
                http::HeaderValue::from_static(ADVERTISED_GATEWAY),
            );
            let result: Result<Response<axum::body::Body>, Infallible> =
                router.clone().oneshot(backend_req).await;
            let response = match result {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<Unrouted>().is_some() {
                continue;
            }
            // Backend answers are built whole; buffering keeps the pipeline's body `Sync`.
            let (parts, body) = response.into_parts();
            return match axum::body::to_bytes(body, usize::MAX).await {
                Ok(bytes) => Outcome::Answered(answer(
                    Response::from_parts(parts, full_body(bytes)),
                    Source::Backend,
                )),
                Err(err) => Outcome::Answered(Answer {
                    response: discord_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "500: Internal Server Error",
                        0,
                    ),
                    source: Source::Proxy,
                    upstream_addr: None,
                    error: Some(format!("backend body: {err}")),
                    record: true,
                    rewrites: Vec::new(),
                }),
            };
        }
        Outcome::Declined(Request::from_parts(parts, full_body(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_api_paths_and_cdn_attachments_and_images_reach_the_backend() {
        assert!(is_backend_request("discord.com", "/api/v10/users/@me"));
        assert!(is_backend_request("discordapp.com", "/api"));
        assert!(!is_backend_request("discord.com", "/app"));
        assert!(!is_backend_request("discord.com", "/apiary"));
        assert!(!is_backend_request("cdn.discordapp.com", "/api/v9/x"));
        assert!(is_backend_request(
            "cdn.discordapp.com",
            "/attachments/1/2/a.png"
        ));
        assert!(is_backend_request(
            "media.discordapp.net",
            "/attachments/1/2/a.png"
        ));
        // Uploaded images are the backend's too (issue #16); what it does not hold it
        // answers as unrouted and the chain goes on.
        assert!(is_backend_request("cdn.discordapp.com", "/avatars/1/a.png"));
        for path in [
            "/stickers/1.png",
            "/channel-icons/1/a.png",
            "/guilds/1/users/2/avatars/a.png",
        ] {
            assert!(is_backend_request("media.discordapp.net", path), "{path}");
        }
        assert!(!is_backend_request(
            "cdn.discordapp.com",
            "/app-assets/1/a.png"
        ));
        assert!(!is_backend_request("discord.com", "/attachments/1/2/a.png"));
    }
}
