//! The live web explorer: a JSON API over a recordings [`Store`] (the route catalog, exchanges,
//! gateway sessions and their decoded frames, search and diff, OpenAPI, AsyncAPI and HAR
//! downloads), a server-sent event stream of what gets recorded, the store endpoints readers
//! use while another process holds the database ([`crate::store::remote`]), and the page
//! itself, compiled into the binary.
//!
//! Every request needs the access token (`Authorization: Bearer`, or the cookie the page gets
//! from `/?token=…`) and a loopback `Host`, so neither other local users nor web pages that
//! rebind a name to 127.0.0.1 can read the recordings. Reads never write.
mod api;
mod live;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::store::Store;

pub use live::{Hub, ItemSummary};

/// The cookie the page carries the token in.
const COOKIE: &str = "discord_mitm_explore";

/// What every handler shares.
#[derive(Clone)]
pub struct Explorer {
    store: Arc<Store>,
    token: Arc<str>,
    hub: Hub,
    cache: Arc<api::Cache>,
    /// Another recordings database to diff against (`explore --compare DIR`).
    compare: Option<Arc<Store>>,
}

impl Explorer {
    /// An explorer of `store`, guarded by `token`; starts the watcher that feeds live updates
    /// (call inside a tokio runtime).
    pub fn new(store: Arc<Store>, token: String) -> Explorer {
        let hub = Hub::start(Arc::clone(&store));
        Explorer {
            store,
            token: token.into(),
            hub,
            cache: Arc::default(),
            compare: None,
        }
    }

    /// The same explorer, with `other` as the second side its diff view can pick
    /// (`/api/v1/diff?b=compare`).
    pub fn with_compare(mut self, other: Arc<Store>) -> Explorer {
        self.compare = Some(other);
        self
    }

    /// The live hub (new exchanges and sessions as they are recorded).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The router: page, JSON API, event stream and store endpoints.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/app.js", get(|| asset("text/javascript", APP_JS)))
            .route("/app.css", get(|| asset("text/css", APP_CSS)))
            .merge(api::routes())
            .layer(axum::middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self.clone())
    }
}

/// A fresh random access token (hex of 32 random bytes).
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

/// Whether the `Host` header names a loopback address or `localhost` (or is absent, as with
/// HTTP/1.0 tools).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The token a request carries (bearer header or cookie).
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Constant-time comparison of tokens.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Refuses requests without the token or with a foreign `Host`; turns `/?token=T` into the
/// cookie and a redirect to `/`.
async fn guard(State(explorer): State<Explorer>, request: Request, next: Next) -> Response {
    if !loopback_host(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            "the explorer answers loopback names only\n",
        )
            .into_response();
    }
    let query_token = request.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    if let Some(token) = query_token {
        if request.uri().path() == "/" && same_token(&token, &explorer.token) {
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
            return (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, "/".to_string()),
                    (header::SET_COOKIE, cookie),
                ],
            )
                .into_response();
        }
    }
    match presented_token(request.headers()) {
        Some(token) if same_token(token, &explorer.token) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "open the explorer with the address discord-mitm printed (it ends in ?token=…)\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_tokens() {
        let mut headers = HeaderMap::new();
        assert!(loopback_host(&headers));
        for (host, ok) in [
            ("127.0.0.1:8080", true),
            ("localhost", true),
            ("[::1]:80", true),
            ("evil.example:8080", false),
            ("10.0.0.1", false),
        ] {
            headers.insert(header::HOST, host.parse().unwrap());
            assert_eq!(loopback_host(&headers), ok, "{host}");
        }
        headers.insert(
            header::COOKIE,
            "a=b; discord_mitm_explore=xyz".parse().unwrap(),
        );
        assert_eq!(presented_token(&headers), Some("xyz"));
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(presented_token(&headers), Some("abc"));
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("a", "ab"));
        assert_eq!(new_token().len(), 64);
    }
}
