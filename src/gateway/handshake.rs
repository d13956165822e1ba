//! The server side of a gateway's WebSocket handshake (RFC 6455 §4.2): which requests are
//! upgrades, the version check, and the headers of the answer. No I/O: the caller answers and
//! performs the upgrade.
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};

/// How a gateway answers a request for it.
#[derive(Debug)]
pub enum Handshake {
    /// Not a WebSocket upgrade (no `Upgrade: websocket` with `Connection: upgrade`, or no key).
    NotWebSocket,
    /// A WebSocket version other than 13: answer 426 with these headers and do not upgrade.
    UnsupportedVersion(StatusCode, HeaderMap),
    /// Answer 101 with these headers, then take over the connection.
    Accept(StatusCode, HeaderMap),
}

impl Handshake {
    /// Reads the handshake off a request's headers.
    pub fn of(headers: &HeaderMap) -> Handshake {
        let wants_websocket = header_has(headers, header::UPGRADE, "websocket")
            && header_has(headers, header::CONNECTION, "upgrade");
        let key = headers.get(header::SEC_WEBSOCKET_KEY);
        let (true, Some(key)) = (wants_websocket, key) else {
            return Handshake::NotWebSocket;
        };
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            let mut answer = HeaderMap::new();
            answer.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return Handshake::UnsupportedVersion(StatusCode::UPGRADE_REQUIRED, answer);
        }
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut answer = HeaderMap::new();
        answer.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        answer.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            answer.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        Handshake::Accept(StatusCode::SWITCHING_PROTOCOLS, answer)
    }
}

/// Whether header `name` lists `token` (comma-separated, case-insensitive).
fn header_has(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn upgrades_are_recognised_version_checked_and_accepted() {
        assert!(matches!(
            Handshake::of(&headers(&[("upgrade", "websocket")])),
            Handshake::NotWebSocket
        ));
        let old = headers(&[
            ("upgrade", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "8"),
        ]);
        assert!(matches!(
            Handshake::of(&old),
            Handshake::UnsupportedVersion(StatusCode::UPGRADE_REQUIRED, ref h)
                if h.get("sec-websocket-version").is_some_and(|v| v == "13")
        ));
        let good = headers(&[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ]);
        let Handshake::Accept(status, answer) = Handshake::of(&good) else {
            panic!("not accepted");
        };
        assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS);
        // RFC 6455's worked example.
        assert_eq!(
            answer.get("sec-websocket-accept").map(|v| v.as_bytes()),
            Some(&b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="[..])
        );
    }
}
