//! The access log: one INFO line per answered request under the target `discord_mitm::access`
//! (`-v`), the same for `serve`'s API listener, `serve --listen` and `record`: method, route
//! template (never the raw path, which can hold ids and webhook or interaction tokens), status,
//! latency, who answered, the caller's user id (never a token) and the client's address.
use std::net::SocketAddr;
use std::time::Instant;

use base64::Engine as _;
use http::{Extensions, HeaderMap, Method, StatusCode};

use crate::backend::routes::Routed;
use crate::store::route::route_template;

/// The tracing target of access lines (requests and gateway sessions).
pub const TARGET: &str = "discord_mitm::access";

/// Whether access lines are written (so nothing is prepared for them otherwise).
pub fn enabled() -> bool {
    tracing::enabled!(target: "discord_mitm::access", tracing::Level::INFO)
}

/// What is kept of a request until its answer is logged.
#[derive(Debug)]
pub struct Pending {
    method: Method,
    /// The path only (no query); templated when the line is written.
    path: String,
    host: String,
    /// The user id the token's first segment names, when it does.
    token_user: Option<u64>,
    started: Instant,
}

impl Pending {
    /// Starts timing a request; `None` when access lines are off.
    pub fn begin(
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        host: Option<&str>,
    ) -> Option<Pending> {
        if !enabled() {
            return None;
        }
        let host = host
            .or_else(|| headers.get(http::header::HOST)?.to_str().ok())
            .unwrap_or("-");
        Some(Pending {
            method: method.clone(),
            path: path.to_string(),
            host: host.to_string(),
            token_user: headers
                .get(http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(user_id_of_token),
            started: Instant::now(),
        })
    }

    /// Writes the line: `answered` holds what the backend learnt (its route template, the
    /// caller) when it answered.
    pub fn finish(
        self,
        status: StatusCode,
        source: &str,
        answered: &Extensions,
        client: Option<SocketAddr>,
    ) {
        let routed = answered.get::<Routed>();
        let route = match routed {
            Some(routed) => routed.template.clone(),
            None => route_template(&self.path),
        };
        let caller = routed
            .and_then(|r| r.caller)
            .or(self.token_user)
            .map_or_else(|| "-".to_string(), |id| id.to_string());
        let latency_ms = (self.started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
        tracing::info!(
            target: "discord_mitm::access",
            method = %self.method,
            route = %route,
            status = status.as_u16(),
            latency_ms,
            source = %source,
            caller = %caller,
            host = %self.host,
            client = %client.map_or_else(|| "-".to_string(), |a| a.to_string()),
            "answered"
        );
    }
}

/// The user id a Discord-shaped token names in its first segment (base64 of the id), if it is
/// one; nothing else of the token is kept.
fn user_id_of_token(header: &str) -> Option<u64> {
    let token = header
        .strip_prefix("Bot ")
        .or_else(|| header.strip_prefix("Bearer "))
        .unwrap_or(header)
        .trim();
    let first = token.split('.').next()?;
    if first.len() < 8 || first.len() > 40 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(first.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(first))
        .ok()?;
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_user_and_nothing_else_is_read() {
        assert_eq!(
            user_id_of_token("Bot MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0"),
            Some(100000000000000002)
        );
        assert_eq!(
            user_id_of_token("MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0"),
            Some(100000000000000002)
        );
        assert_eq!(user_id_of_token("alice-token"), None);
        assert_eq!(user_id_of_token("Bot c2VjcmV0c2VjcmV0.x.y"), None);
        assert_eq!(user_id_of_token(""), None);
    }
}
