//! Durable acknowledgements for `serve`: with `--durability durable` (the default) a mutating
//! REST request that succeeded is answered only once its writes are on disk. One layer around
//! the backend's router does it for every route; the store's group commit
//! ([`Store::durable`]) makes one flush cover every request that finished meanwhile.
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::backend::store::Store;

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Durability {
    /// After it is on disk (group commit): nothing acknowledged is lost to a crash.
    #[default]
    Durable,
    /// At once; the store writes out within about half a second (a crash may lose that much).
    Relaxed,
}

impl Durability {
    /// The banner line for the relaxed mode (nothing for the default).
    pub(crate) fn banner_line(self) -> Option<&'static str> {
        match self {
            Durability::Durable => None,
            Durability::Relaxed => Some(
                "  durability: relaxed (--durability relaxed): writes are acknowledged before they \
                 reach disk; a crash can lose the last ~500 ms",
            ),
        }
    }
}

/// The backend's router, with durable acknowledgements unless `durability` is relaxed, an
/// immediate 413 for a declared body above `--max-body`, and, when `public_url` is given (the
/// API listener; the proxy sets its own CDN origin), attachment URLs built from it and never
/// from the request's `Host`.
pub(crate) fn backend_router(
    state: crate::backend::AppState,
    durability: Durability,
    public_url: Option<String>,
) -> axum::Router {
    let store = state.store.clone();
    let max_body = state.config.max_body_bytes;
    let router = crate::backend::router(state);
    let router = match durability {
        Durability::Relaxed => router,
        Durability::Durable => router.layer(axum::middleware::from_fn_with_state(
            store,
            acknowledge_durably,
        )),
    };
    let router = match public_url.and_then(|url| http::HeaderValue::from_str(&url).ok()) {
        Some(url) => router.layer(axum::middleware::from_fn_with_state(url, public_origin)),
        None => router,
    };
    router.layer(axum::middleware::from_fn_with_state(
        max_body,
        super::listener::refuse_oversized,
    ))
}

/// Attachment URLs point at `--public-url`: whatever `Host` (or origin header) the client sent.
async fn public_origin(
    State(url): State<http::HeaderValue>,
    mut request: Request,
    next: Next,
) -> Response {
    request
        .headers_mut()
        .insert(crate::backend::services::common::PROXIED_CDN_ORIGIN, url);
    next.run(request).await
}

async fn acknowledge_durably(State(store): State<Store>, request: Request, next: Next) -> Response {
    let mutating = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if mutating && store.write_halted() {
        // Nothing more can be stored: refused before it changes anything.
        return write_failed();
    }
    let response = next.run(request).await;
    let status = response.status();
    if !mutating || !(status.is_success() || status.is_redirection()) {
        return response;
    }
    match store.durable().await {
        Ok(()) => response,
        // Said once, by the store, when it halted.
        Err(_) if store.write_halted() => write_failed(),
        Err(err) => {
            tracing::error!("a write could not be made durable, answering 500: {err}");
            write_failed()
        }
    }
}

/// Discord's 500 for a write that was not stored.
fn write_failed() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({"message": "500: Internal Server Error", "code": 0})),
    )
        .into_response()
}
