//! `serve`'s API listener: hyper with the listener limits (a deadline for each request head,
//! which also closes idle keep-alive connections, and a cap on connections open at once), in
//! place of `axum::serve`, which has neither. Upgrades (the gateway) pass through.
use std::future::Future;
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::listen::hyper_errors::ServiceCalls;
use crate::listen::{Accepted, Limits, Listener};

/// How long open requests get to finish once `shutdown` completes.
const DRAIN: Duration = Duration::from_secs(5);
/// Request targets longer than this get 414 with Discord's JSON.
const MAX_URI_BYTES: usize = 8 * 1024;
/// Request heads with more header bytes (names and values) than this, or more headers than
/// [`MAX_HEADERS`], get 431 with Discord's JSON.
const MAX_HEADER_BYTES: usize = 32 * 1024;
/// See [`MAX_HEADER_BYTES`].
const MAX_HEADERS: usize = 100;
/// What hyper itself reads of a head before it gives up with a bare 431 (no body can be sent
/// for a head that was never read whole): far above the limits above, so those answer in
/// Discord's JSON first.
const HYPER_HEAD_BUFFER: usize = 1024 * 1024;
/// Headers hyper parses at most (the same reasoning as [`HYPER_HEAD_BUFFER`]).
const HYPER_MAX_HEADERS: usize = 1000;

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish.
pub(crate) async fn serve_api(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    limits.apply(&mut builder);
    builder
        .http1()
        .max_buf_size(HYPER_HEAD_BUFFER)
        .max_headers(HYPER_MAX_HEADERS);
    let at = Listener {
        name: "API",
        server: &builder,
        max_connections: limits.max_connections,
        first_byte: limits.head_deadline(),
        drain: DRAIN,
    };
    // Handlers that care who is calling (the loopback-only control API) read the peer, which
    // `logged` puts on every request.
    at.run(listener, shutdown, |accepted: Accepted| {
        TowerToHyperService::new(logged(app.clone(), accepted.peer, accepted.calls))
    })
    .await;
}

/// `app` with an access line (`-v`) for each request `peer` sends, each noted on `calls`.
fn logged(
    app: axum::Router,
    peer: std::net::SocketAddr,
    calls: ServiceCalls,
) -> impl tower::Service<
    http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone {
    tower::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
        calls.note();
        let app = app.clone();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        async move {
            let pending = crate::pipeline::access::Pending::begin(
                request.method(),
                request.uri().path(),
                request.headers(),
                None,
            );
            let response = tower::ServiceExt::oneshot(app, request).await;
            if let (Some(pending), Ok(response)) = (pending, &response) {
                pending.finish(
                    response.status(),
                    "backend",
                    response.extensions(),
                    Some(peer),
                );
            }
            response
        }
    })
}

/// Refuses, in Discord's JSON and at once, a request whose target is too long (414), whose
/// head is too big (431), or whose declared `Content-Length` is above `max_body` (413, without
/// waiting for or reading a body that may never come).
pub(crate) async fn refuse_oversized(
    axum::extract::State(max_body): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok());
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if uri_bytes > MAX_URI_BYTES {
        return refusal(http::StatusCode::URI_TOO_LONG, "414: URI Too Long", 0);
    }
    if header_bytes > MAX_HEADER_BYTES || headers.len() > MAX_HEADERS {
        return refusal(
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "431: Request Header Fields Too Large",
            0,
        );
    }
    if declared.is_some_and(|length| length > max_body as u64) {
        // Answered now; whatever body the client does send is read and dropped (for at most
        // DRAIN_OVERSIZED), so a client still sending gets to read the answer instead of a reset.
        let body = request.into_body();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(DRAIN_OVERSIZED, discard(body)).await;
        });
        let mut response = refusal(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "Request entity too large",
            40005,
        );
        response.headers_mut().remove(http::header::CONNECTION);
        return response;
    }
    next.run(request).await
}

/// How long the body of a refused oversized request is read and dropped.
const DRAIN_OVERSIZED: Duration = Duration::from_secs(30);

async fn discard(mut body: axum::body::Body) {
    use http_body_util::BodyExt as _;
    while let Some(Ok(_)) = body.frame().await {}
}

/// Discord's error JSON with `Connection: close` (an unread body makes the connection unusable
/// for a next request).
fn refusal(status: http::StatusCode, message: &str, code: u32) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut response = (
        status,
        axum::Json(serde_json::json!({"message": message, "code": code})),
    )
        .into_response();
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}
