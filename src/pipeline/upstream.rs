//! The last link of the chain: forward to real Discord through the one upstream client.
use std::sync::Arc;

use http::header::HOST;
use http::{Request, StatusCode, Uri};
use http_body_util::BodyExt;

use super::websocket::{self, WebSocketRelay};
use super::{
    discord_error, Answer, Outcome, PipeBody, RequestContext, Responder, Source, HOP_BY_HOP,
};
use crate::upstream::{Upstream, UpstreamAddr, UpstreamError};

/// Forwards every request (and WebSocket upgrade) upstream.
pub struct UpstreamResponder {
    upstream: Upstream,
    relay: Arc<WebSocketRelay>,
    unreachable_is_not_found: bool,
}

impl UpstreamResponder {
    /// Forwards through `upstream`; gateway sessions are tapped by `relay`.
    pub fn new(upstream: Upstream, relay: Arc<WebSocketRelay>) -> Self {
        UpstreamResponder {
            upstream,
            relay,
            unreachable_is_not_found: false,
        }
    }

    /// As the last link of `serve`'s chain: when upstream cannot be reached at all (no DNS, no
    /// route, refused), the chain ends in Discord's 404 (source `none`) instead of a 502.
    pub fn ending_the_chain(mut self) -> Self {
        self.unreachable_is_not_found = true;
        self
    }

    async fn forward(&self, ctx: &RequestContext, req: Request<PipeBody>) -> Answer {
        let (mut parts, body) = req.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        let uri: Uri =
            match format!("{}://{}{}", ctx.scheme, ctx.authority(), path_and_query).parse() {
                Ok(uri) => uri,
                Err(err) => {
                    return Answer {
                        response: discord_error(StatusCode::BAD_REQUEST, "400: Bad Request", 0),
                        source: Source::Proxy,
                        upstream_addr: None,
                        error: Some(format!("cannot build upstream URL: {err}")),
                        record: true,
                    }
                }
            };
        parts.uri = uri;
        parts.version = http::Version::HTTP_11;
        for name in HOP_BY_HOP {
            parts.headers.remove(*name);
        }
        if !parts.headers.contains_key(HOST) {
            if let Ok(value) = ctx.authority().parse() {
                parts.headers.insert(HOST, value);
            }
        }
        match self
            .upstream
            .request(Request::from_parts(parts, body))
            .await
        {
            Ok(response) => {
                let upstream_addr = response.extensions().get::<UpstreamAddr>().map(|a| a.0);
                let response = response.map(|body| body.map_err(Into::into).boxed());
                Answer {
                    response,
                    source: Source::Upstream,
                    upstream_addr,
                    error: None,
                    record: true,
                }
            }
            Err(err) if self.unreachable_is_not_found && is_unreachable(&err) => {
                tracing::info!(host = %ctx.host, "upstream unreachable, answering 404: {err}");
                Answer {
                    response: discord_error(StatusCode::NOT_FOUND, "404: Not Found", 0),
                    source: Source::None,
                    upstream_addr: None,
                    error: Some(err.to_string()),
                    record: true,
                }
            }
            Err(err) => {
                let reason = err.reason();
                let hint = err.hint();
                tracing::warn!(
                    host = %ctx.host,
                    client = %ctx.client_addr,
                    "upstream failed, answering 502: {reason}{}",
                    hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default()
                );
                Answer {
                    response: bad_gateway(&reason, hint.as_deref()),
                    source: Source::Proxy,
                    upstream_addr: None,
                    error: Some(err.to_string()),
                    record: true,
                }
            }
        }
    }
}

/// Field of a 502's JSON body that says what to do about the failure.
pub const HINT_FIELD: &str = "discord_mitm_hint";

/// The 502 for an upstream failure: Discord's error shape, the reason in `message`, and what to
/// do about it in [`HINT_FIELD`].
fn bad_gateway(reason: &str, hint: Option<&str>) -> http::Response<PipeBody> {
    let mut body = serde_json::json!({
        "message": format!("502: Bad Gateway ({reason})"),
        "code": 0,
    });
    if let Some(hint) = hint {
        body[HINT_FIELD] = serde_json::Value::from(hint);
    }
    let mut response = http::Response::new(super::full_body(bytes::Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Errors meaning nobody could be reached (as opposed to upstream failing mid-answer).
fn is_unreachable(err: &UpstreamError) -> bool {
    matches!(
        err,
        UpstreamError::Resolve { .. }
            | UpstreamError::Connect { .. }
            | UpstreamError::ConnectTimeout { .. }
            // A Discord host resolving back to this proxy: there is no upstream to reach.
            | UpstreamError::Loop { .. }
    )
}

impl Responder for UpstreamResponder {
    async fn respond(&self, ctx: &RequestContext, req: Request<PipeBody>) -> Outcome {
        if websocket::is_upgrade(&req) {
            return Outcome::Answered(self.relay.upgrade(&self.upstream, ctx, req).await);
        }
        Outcome::Answered(self.forward(ctx, req).await)
    }
}
