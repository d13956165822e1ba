//! API v6/v7 answer shapes where they differ in ways libraries notice: permission fields were
//! integers then (with the string in `permissions_new`), and overwrite `type` was "role"/"member";
//! and which version an unversioned `/api` request gets.
use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value};

/// Legacy permission integers kept the low 31 bits (the rest only exists in `*_new`).
const LEGACY_MASK: u64 = 0x7FFF_FFFF;

/// Middleware for the bare `/api` prefix. Discord routes an unversioned request to its default
/// version, which is v9 for the client (user accounts) and v6 for everyone else (bots, OAuth2
/// bearers, unauthenticated calls), as discord-userdoccers documents: so user tokens get the
/// modern shapes and the rest the v6 ones.
pub(crate) async fn unversioned(mut request: Request, next: Next) -> Response {
    let version = default_version(request.headers());
    request.extensions_mut().insert(super::ApiVersion(version));
    if version <= 7 {
        legacy_shapes(request, next).await
    } else {
        next.run(request).await
    }
}

/// The version Discord gives an unversioned request: 9 for a user token, 6 otherwise.
pub(crate) fn default_version(headers: &axum::http::HeaderMap) -> u8 {
    let user_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .is_some_and(|v| !v.is_empty() && !v.starts_with("Bot ") && !v.starts_with("Bearer "));
    if user_token {
        9
    } else {
        6
    }
}

/// Middleware mounted on `/api/v6` and `/api/v7` (and bare `/api` for non-users).
pub(crate) async fn legacy_shapes(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    to_legacy(&mut value);
    let out = serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

fn legacy_bits(map: &mut Map<String, Value>, key: &str) {
    if let Some(Value::String(text)) = map.get(key) {
        let bits: u64 = text.parse().unwrap_or(0);
        let text = text.clone();
        map.insert(format!("{key}_new"), Value::String(text));
        map.insert(key.to_string(), Value::from(bits & LEGACY_MASK));
    }
}

/// Rewrites roles, partial guilds and overwrites anywhere in an answer to their v6 shapes.
pub(crate) fn to_legacy(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let is_role = map.contains_key("managed") && map.contains_key("position");
            let is_partial_guild = map.get("owner").is_some_and(Value::is_boolean);
            if is_role || is_partial_guild {
                legacy_bits(map, "permissions");
            }
            let is_overwrite = map.len() == 4
                && ["id", "type", "allow", "deny"]
                    .iter()
                    .all(|k| map.contains_key(*k));
            if is_overwrite {
                if let Some(kind) = map.get("type").and_then(Value::as_u64) {
                    let name = if kind == 0 { "role" } else { "member" };
                    map.insert("type".into(), Value::String(name.into()));
                }
                legacy_bits(map, "allow");
                legacy_bits(map, "deny");
            }
            for child in map.values_mut() {
                to_legacy(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_legacy),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unversioned_requests_get_v9_for_users_and_v6_for_the_rest() {
        let with = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            default_version(&headers)
        };
        assert_eq!(with("mfa.user-token"), 9);
        assert_eq!(with("Bot MTAw.x.y"), 6);
        assert_eq!(with("Bearer abc"), 6);
        assert_eq!(default_version(&axum::http::HeaderMap::new()), 6);
    }

    #[test]
    fn roles_and_overwrites_take_their_v6_shapes() {
        let mut value = json!({
            "roles": [{"id": "1", "name": "r", "position": 0, "managed": false,
                       "permissions": "2248473465835073"}],
            "permission_overwrites": [{"id": "1", "type": 0, "allow": "1024", "deny": "0"}],
            "content": "untouched"
        });
        to_legacy(&mut value);
        assert_eq!(
            value["roles"][0]["permissions"],
            2248473465835073u64 & LEGACY_MASK
        );
        assert_eq!(value["roles"][0]["permissions_new"], "2248473465835073");
        let overwrite = &value["permission_overwrites"][0];
        assert_eq!(overwrite["type"], "role");
        assert_eq!(overwrite["allow"], 1024);
        assert_eq!(overwrite["allow_new"], "1024");
        assert_eq!(value["content"], "untouched");
    }
}
