//! Percent-encoded path characters that may appear literally are routed as if they did:
//! `@discordjs/rest` requests `…/messages/%40original`, which Discord treats as `@original`.
use axum::extract::Request;
use axum::http::uri::{PathAndQuery, Uri};

/// Rewrites `%XX` escapes of characters allowed literally in a path segment (RFC 3986
/// unreserved, sub-delims, `:` and `@`) to those characters before routing. Escapes of `/`, `%`,
/// `?`, `#`, spaces and non-ASCII bytes stay, for the extractors to decode inside one segment.
pub(crate) fn decode_literal_escapes(mut request: Request) -> Request {
    let path = request.uri().path();
    if !path.contains('%') {
        return request;
    }
    let decoded = decode_path(path);
    if decoded == path {
        return request;
    }
    let rebuilt = match request.uri().query() {
        Some(query) => format!("{decoded}?{query}"),
        None => decoded,
    };
    let Ok(path_and_query) = rebuilt.parse::<PathAndQuery>() else {
        return request;
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}

fn literal_in_path(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte)
}

fn decode_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                if literal_in_path(byte) {
                    out.push(char::from(byte));
                    i += 3;
                    continue;
                }
            }
        }
        // Copy one whole UTF-8 character (paths from `Uri` are ASCII, but stay safe).
        let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&path[i..i + ch_len]);
        i += ch_len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_of_literal_path_characters_are_decoded() {
        assert_eq!(
            decode_path("/api/v10/webhooks/1/t/messages/%40original"),
            "/api/v10/webhooks/1/t/messages/@original"
        );
        assert_eq!(decode_path("/a/%7euser/%3A%2b"), "/a/~user/:+");
    }

    #[test]
    fn escapes_that_change_meaning_or_are_not_ascii_stay() {
        let reaction = "/channels/1/messages/2/reactions/%F0%9F%91%8D/@me";
        assert_eq!(decode_path(reaction), reaction);
        assert_eq!(
            decode_path("/a%2Fb/%25/%3F/%23/%20"),
            "/a%2Fb/%25/%3F/%23/%20"
        );
        assert_eq!(decode_path("/trailing%4"), "/trailing%4");
        assert_eq!(decode_path("/bad%zz"), "/bad%zz");
        assert_eq!(decode_path("/end%"), "/end%");
    }

    #[test]
    fn the_query_is_kept() {
        let request = Request::builder()
            .uri("/api/v10/webhooks/1/t/messages/%40original?thread_id=5&x=%40")
            .body(axum::body::Body::empty())
            .unwrap();
        let request = decode_literal_escapes(request);
        assert_eq!(
            request.uri(),
            "/api/v10/webhooks/1/t/messages/@original?thread_id=5&x=%40"
        );
    }
}
