//! Small shared helpers of the services and routes: the origins and gateway URL advertised to
//! clients, image hashes, invite codes and the PATCH-body field marker.
use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::backend::error::ApiError;
use crate::backend::state::AppState;

/// Header the MITM pipeline sets on requests it hands the backend in-process: the origin that
/// clients behind the proxy fetch attachments from (`https://cdn.discordapp.com`).
pub(crate) const PROXIED_CDN_ORIGIN: &str = "x-discord-mitm-cdn-origin";

/// Header the MITM pipeline sets on requests it hands the backend in-process: the gateway URL
/// advertised to clients behind the proxy (`wss://gateway.discord.gg`), unless `--gateway-url`.
pub(crate) const PROXIED_GATEWAY_URL: &str = "x-discord-mitm-gateway-url";

/// `http://<Host the client used>`, the origin attachment URLs point at (behind the proxy, the
/// [`PROXIED_CDN_ORIGIN`] header's value).
pub(crate) fn origin(headers: &HeaderMap) -> String {
    proxied_or_host(headers, PROXIED_CDN_ORIGIN, "https://", "http://")
}

/// The WebSocket URL advertised to clients: the override, else the MITM pipeline's (clients
/// behind the proxy), else `ws://<Host they used>`.
pub(crate) fn gateway_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.gateway_url {
        return url.clone();
    }
    proxied_or_host(headers, PROXIED_GATEWAY_URL, "wss://", "ws://")
}

/// The URL in the `proxied` header when it uses one of the two schemes, else
/// `<plain>://<Host the client used>`.
fn proxied_or_host(headers: &HeaderMap, proxied: &str, secure: &str, plain: &str) -> String {
    if let Some(url) = headers
        .get(proxied)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.starts_with(secure) || h.starts_with(plain))
    {
        return url.to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("127.0.0.1:3000");
    format!("{plain}{host}")
}

/// The one voice region this backend advertises.
pub(crate) fn voice_region_list() -> Value {
    json!([{"id": "local", "name": "Local", "optimal": true, "deprecated": false, "custom": false}])
}

/// A random invite code like Discord's (8 characters of letters and digits).
pub(crate) fn invite_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    crate::backend::clock::random_string(ALPHABET, 8)
}

/// Clamps a `limit` query parameter like Discord (out of range → 50035).
pub(crate) fn limit(value: Option<i64>, default: i64, max: i64) -> Result<usize, ApiError> {
    let value = value.unwrap_or(default);
    if value < 1 || value > max {
        return Err(ApiError::invalid_field(
            "limit",
            "NUMBER_TYPE_MAX",
            format!("int value should be less than or equal to {max}."),
        ));
    }
    Ok(value as usize)
}
