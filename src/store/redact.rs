//! Redaction of secrets before anything is written. Every replacement says it is one
//! (`[redacted by discord-mitm …]`), and tokens keep a short fingerprint so a reader can tell
//! whether two exchanges used the same token without learning it.
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::records::Header;

/// Text every redacted value starts with.
pub const MARK: &str = "[redacted by discord-mitm";

/// Replacement for a secret, with an 8-hex-digit fingerprint of it.
pub fn fingerprinted(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    format!("{MARK} sha256:{}]", hex::encode(&digest[..4]))
}

/// Replacement for a password: no fingerprint, since a short hash of a weak password helps guessing.
pub fn bare() -> String {
    format!("{MARK}]")
}

/// Whether a JSON / form / query key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "token" | "password" | "new_password" | "old_password" | "client_secret" | "secret"
    ) || key.ends_with("_token")
}

/// Whether a query-string or form key names a secret: the JSON ones ([`is_secret_key`]) plus
/// OAuth2's `code` and the remote-auth `ticket`, which in a JSON body are ordinary fields.
pub fn is_secret_param(key: &str) -> bool {
    is_secret_key(key) || key.eq_ignore_ascii_case("code") || key.eq_ignore_ascii_case("ticket")
}

fn is_password_key(key: &str) -> bool {
    key.to_ascii_lowercase().contains("password")
}

fn replacement_for(key: &str, secret: &str) -> String {
    if is_password_key(key) {
        bare()
    } else {
        fingerprinted(secret.as_bytes())
    }
}

/// Redacts secret headers in place; returns the names of the headers touched.
pub fn headers(headers: &mut [Header], side: &str, redactions: &mut Vec<String>) {
    for header in headers.iter_mut() {
        if let Some(value) = header_value(&header.name, &header.value) {
            header.value = value.into_bytes();
            note(redactions, side, &header.name);
        }
    }
}

/// The redacted value of header `name` (lower case), when it is a secret one.
pub fn header_value(name: &str, value: &[u8]) -> Option<String> {
    match name {
        "authorization" | "proxy-authorization" | "x-super-token" => Some(authorization(value)),
        "cookie" => Some(cookie(value)),
        "set-cookie" => Some(set_cookie(value)),
        _ => None,
    }
}

/// Adds `{side}.header.{name}` to `redactions` once.
pub fn note(redactions: &mut Vec<String>, side: &str, name: &str) {
    if !redactions.iter().any(|label| {
        label
            .strip_prefix(side)
            .and_then(|l| l.strip_prefix(".header."))
            == Some(name)
    }) {
        redactions.push(format!("{side}.header.{name}"));
    }
}

/// `Bot abc.def` → `Bot [redacted … sha256:…]`; the scheme stays visible.
fn authorization(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    match text.split_once(' ') {
        Some((scheme, secret)) if matches!(scheme, "Bot" | "Bearer" | "Basic") => {
            format!("{scheme} {}", fingerprinted(secret.as_bytes()))
        }
        _ => fingerprinted(value),
    }
}

/// `a=1; b=2` → names kept, values replaced.
fn cookie(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .split(';')
        .map(|pair| match pair.trim().split_once('=') {
            Some((name, secret)) => format!("{name}={}", fingerprinted(secret.as_bytes())),
            None => fingerprinted(pair.trim().as_bytes()),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `name=value; Path=/` → the value replaced, attributes kept.
fn set_cookie(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let (first, attributes) = text.split_once(';').unwrap_or((&text, ""));
    let first = match first.split_once('=') {
        Some((name, secret)) => format!("{name}={}", fingerprinted(secret.trim().as_bytes())),
        None => fingerprinted(first.as_bytes()),
    };
    if attributes.is_empty() {
        first
    } else {
        format!("{first};{attributes}")
    }
}

/// Redacts secret query parameters of `path?query`; returns the new string.
pub fn query(path_and_query: &str, side: &str, redactions: &mut Vec<String>) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let mut touched = false;
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value))
                if is_secret_param(key)
                    && !value.is_empty()
                    && !value.starts_with("%5Bredacted") =>
            {
                touched = true;
                let label = format!("{side}.query.{key}");
                if !redactions.contains(&label) {
                    redactions.push(label);
                }
                format!(
                    "{key}={}",
                    percent_encode_mark(&replacement_for(key, value))
                )
            }
            _ => pair.to_string(),
        })
        .collect();
    if touched {
        format!("{path}?{}", pairs.join("&"))
    } else {
        path_and_query.to_string()
    }
}

/// Path segments that are secrets: the token after `webhooks/{id}/` (webhook tokens, and
/// interaction tokens in followup URLs) and after `interactions/{id}/`.
const TOKEN_PARENTS: [(&str, &str); 2] = [
    ("webhooks", "webhook_token"),
    ("interactions", "interaction_token"),
];

/// Whether `path_and_query` may hold a secret [`url`] would redact: one cheap scan, so the
/// common case (no query, no webhook or interaction path) costs no allocation.
pub fn url_may_hold_secret(path_and_query: &str) -> bool {
    path_and_query.contains('?')
        || TOKEN_PARENTS
            .iter()
            .any(|(parent, _)| path_and_query.contains(parent))
}

/// Redacts the secrets of a request target: webhook and interaction tokens in the path
/// (`/webhooks/1/[redacted …]`, so its route template stays `{webhook_token}`) and secret
/// query parameters ([`query`]). Returns the new string.
pub fn url(path_and_query: &str, side: &str, redactions: &mut Vec<String>) -> String {
    let (path, query_part) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let path = path_tokens(path, side, redactions);
    match query_part {
        Some(query_text) => query(&format!("{path}?{query_text}"), side, redactions),
        None => path,
    }
}

fn path_tokens(path: &str, side: &str, redactions: &mut Vec<String>) -> String {
    let mut segments: Vec<String> = path.split('/').map(str::to_string).collect();
    let mut touched = false;
    for index in 2..segments.len() {
        let Some((_, name)) = TOKEN_PARENTS
            .iter()
            .find(|(parent, _)| segments[index - 2] == *parent)
        else {
            continue;
        };
        let id = &segments[index - 1];
        let segment = &segments[index];
        let is_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
        let is_token = !segment.is_empty()
            && !segment.starts_with('@')
            && !segment.bytes().all(|b| b.is_ascii_digit())
            && !segment.starts_with("%5Bredacted");
        if is_id && is_token {
            segments[index] = percent_encode_mark(&fingerprinted(segment.as_bytes()));
            let label = format!("{side}.path.{name}");
            if !redactions.contains(&label) {
                redactions.push(label);
            }
            touched = true;
        }
    }
    if touched {
        segments.join("/")
    } else {
        path.to_string()
    }
}

fn percent_encode_mark(mark: &str) -> String {
    mark.replace('[', "%5B")
        .replace(']', "%5D")
        .replace(' ', "%20")
        .replace(':', "%3A")
}

/// Redacts secret fields anywhere in a JSON value; returns the JSON paths touched.
pub fn json_value(value: &mut Value, path: &str, redactions: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                let here = format!("{path}.{key}");
                if is_secret_key(key) {
                    match field {
                        Value::String(secret) if !secret.starts_with(MARK) => {
                            *field = Value::String(replacement_for(key, secret));
                            redactions.push(here);
                        }
                        Value::Null | Value::String(_) => {}
                        other => {
                            let text = other.to_string();
                            *other = Value::String(replacement_for(key, &text));
                            redactions.push(here);
                        }
                    }
                } else {
                    json_value(field, &here, redactions);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                json_value(item, &format!("{path}[{index}]"), redactions);
            }
        }
        _ => {}
    }
}

/// Cheap pre-check before parsing: could any key of this JSON be a secret one? Every secret
/// key ends in `token`, `password` or `secret` in any case ([`is_secret_key`]), so a string
/// ending that way must be there, unless an escape (`\u0074oken`) hides it.
fn may_hold_secret_key(data: &[u8]) -> bool {
    const ENDINGS: [&[u8]; 3] = [b"token", b"password", b"secret"];
    // Most strings end in none of the endings' last letters: one compare rules them out.
    let secret_before = |quote: usize| {
        let before = &data[..quote];
        matches!(before.last(), Some(b'n' | b'N' | b'd' | b'D' | b't' | b'T'))
            && ENDINGS.iter().any(|ending| {
                before.len() >= ending.len()
                    && before[before.len() - ending.len()..].eq_ignore_ascii_case(ending)
            })
    };
    if data.len() <= 1024 {
        // Typical REST bodies: one plain pass costs less than starting SIMD searches.
        let mut previous = 0u8;
        for (at, &byte) in data.iter().enumerate() {
            if (byte == b'u' && previous == b'\\') || (byte == b'"' && secret_before(at)) {
                return true;
            }
            previous = byte;
        }
        return false;
    }
    memchr::memchr_iter(b'\\', data).any(|at| data.get(at + 1) == Some(&b'u'))
        || memchr::memchr_iter(b'"', data).any(secret_before)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn contains_ignore_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Redacts a body according to its content type. Returns the new body when anything changed.
pub fn body(
    content_type: Option<&str>,
    data: &[u8],
    side: &str,
    redactions: &mut Vec<String>,
) -> Option<Vec<u8>> {
    if data.is_empty() {
        return None;
    }
    let content_type = content_type.unwrap_or("");
    if starts_with_ignore_case(content_type, "application/x-www-form-urlencoded") {
        let text = std::str::from_utf8(data).ok()?;
        let before = redactions.len();
        let redacted = query(&format!("?{text}"), &format!("{side}.body"), redactions);
        return (redactions.len() > before).then(|| redacted.as_bytes()[1..].to_vec());
    }
    if let Some(boundary) = super::multipart::boundary(content_type) {
        return multipart_body(boundary, data, side, redactions);
    }
    let looks_json = contains_ignore_case(content_type, "json")
        || matches!(
            data.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{') | Some(b'[')
        );
    if !looks_json || !may_hold_secret_key(data) {
        return None;
    }
    let mut value: Value = serde_json::from_slice(data).ok()?;
    let before = redactions.len();
    json_value(&mut value, &format!("{side}.body"), redactions);
    if redactions.len() == before {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

/// Redacts a multipart body: form fields named like secrets, and secrets inside JSON parts
/// (`payload_json`). File parts are left alone.
fn multipart_body(
    boundary: &str,
    data: &[u8],
    side: &str,
    redactions: &mut Vec<String>,
) -> Option<Vec<u8>> {
    let parts = super::multipart::parse(boundary, data)?;
    let mut replaced: Vec<Option<Vec<u8>>> = vec![None; parts.len()];
    for (index, part) in parts.iter().enumerate() {
        if part.filename.is_some() {
            continue;
        }
        let here = format!("{side}.body.{}", part.name);
        if is_secret_param(&part.name) && !part.data.is_empty() {
            let secret = String::from_utf8_lossy(part.data);
            replaced[index] = Some(replacement_for(&part.name, &secret).into_bytes());
            if !redactions.contains(&here) {
                redactions.push(here);
            }
        } else if (part.name == "payload_json" || part.content_type.contains("json"))
            && may_hold_secret_key(part.data)
        {
            let Ok(mut value) = serde_json::from_slice::<Value>(part.data) else {
                continue;
            };
            let before = redactions.len();
            json_value(&mut value, &here, redactions);
            if redactions.len() > before {
                replaced[index] = serde_json::to_vec(&value).ok();
            }
        }
    }
    if replaced.iter().all(Option::is_none) {
        return None;
    }
    Some(super::multipart::rebuild(boundary, &parts, |index| {
        replaced.get_mut(index).and_then(Option::take)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_keeps_scheme_and_fingerprint() {
        let mut hs = vec![
            Header {
                name: "authorization".into(),
                value: b"Bot MTIz.secret.token".to_vec(),
            },
            Header {
                name: "set-cookie".into(),
                value: b"__dcfduid=abc123; Path=/; HttpOnly".to_vec(),
            },
            Header {
                name: "content-type".into(),
                value: b"application/json".to_vec(),
            },
        ];
        let mut marks = Vec::new();
        headers(&mut hs, "request", &mut marks);
        let auth = hs[0].value_str();
        assert!(
            auth.starts_with("Bot [redacted by discord-mitm sha256:"),
            "{auth}"
        );
        assert!(!auth.contains("secret"));
        let cookie = hs[1].value_str();
        assert!(cookie.starts_with("__dcfduid=[redacted"), "{cookie}");
        assert!(cookie.ends_with("; Path=/; HttpOnly"), "{cookie}");
        assert_eq!(hs[2].value, b"application/json");
        assert_eq!(
            marks,
            vec!["request.header.authorization", "request.header.set-cookie"]
        );
        // Same secret, same fingerprint: a reader can correlate.
        assert_eq!(authorization(b"Bot MTIz.secret.token"), hs[0].value_str());
    }

    #[test]
    fn json_fields_and_nested_tokens() {
        let mut marks = Vec::new();
        let out = body(
            Some("application/json"),
            br#"{"login":"a@b.c","password":"hunter2","nested":[{"refresh_token":"r"}],"token":null}"#,
            "request",
            &mut marks,
        )
        .unwrap();
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["password"], "[redacted by discord-mitm]");
        assert!(value["nested"][0]["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with(MARK));
        assert_eq!(value["login"], "a@b.c");
        assert_eq!(
            marks,
            vec![
                "request.body.password",
                "request.body.nested[0].refresh_token"
            ]
        );
        // Nothing secret: the body is left as it was.
        assert!(body(
            Some("application/json"),
            br#"{"content":"hi"}"#,
            "request",
            &mut marks
        )
        .is_none());
    }

    #[test]
    fn secret_keys_in_any_case_or_escaped_are_redacted() {
        for raw in [
            &br#"{"Token":"s3cr3t"}"#[..],
            br#"{"ACCESS_TOKEN" : "s3cr3t"}"#,
            br#"{"Client_Secret":"s3cr3t"}"#,
            br#"{"\u0074oken":"s3cr3t"}"#,
            br#"{"toke\u006e":"s3cr3t"}"#,
            br#"{"New_Password":"s3cr3t"}"#,
        ]
        .into_iter()
        .flat_map(|raw| {
            // Small bodies are checked in one plain pass, large ones with SIMD searches.
            let padded = format!(
                r#"{{"pad":"{}",{}"#,
                "x".repeat(2000),
                String::from_utf8_lossy(&raw[1..])
            );
            [raw.to_vec(), padded.into_bytes()]
        }) {
            let raw = raw.as_slice();
            let mut marks = Vec::new();
            let out = body(Some("application/json"), raw, "request", &mut marks)
                .unwrap_or_else(|| panic!("{} kept its secret", String::from_utf8_lossy(raw)));
            assert!(
                !String::from_utf8_lossy(&out).contains("s3cr3t"),
                "{}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(marks.len(), 1);
        }
    }

    #[test]
    fn query_and_form_tokens() {
        let mut marks = Vec::new();
        let q = query("/api/v9/oauth2?token=abc&x=1", "request", &mut marks);
        assert!(q.starts_with("/api/v9/oauth2?token=%5Bredacted"), "{q}");
        assert!(q.ends_with("&x=1"));
        let form = body(
            Some("application/x-www-form-urlencoded"),
            b"grant_type=refresh_token&refresh_token=zzz&client_secret=s",
            "request",
            &mut marks,
        )
        .unwrap();
        let form = String::from_utf8(form).unwrap();
        assert!(form.starts_with("grant_type=refresh_token&refresh_token=%5Bredacted"));
        assert!(!form.contains("zzz") && !form.contains("=s"));
    }

    #[test]
    fn oauth2_code_and_ticket_in_queries_and_forms() {
        let mut marks = Vec::new();
        let q = query(
            "/api/oauth2/authorize?code=c0de&ticket=t1ck&state=s",
            "request",
            &mut marks,
        );
        assert!(!q.contains("c0de") && !q.contains("t1ck"), "{q}");
        assert!(q.ends_with("&state=s"), "{q}");
        // In JSON a `code` is an error code or an invite code, not a secret.
        assert!(body(
            Some("application/json"),
            br#"{"code":10008}"#,
            "response",
            &mut marks
        )
        .is_none());
    }

    #[test]
    fn webhook_and_interaction_tokens_in_paths() {
        let mut marks = Vec::new();
        let cases = [
            "/api/v10/webhooks/123/whtok-SECRET?wait=true",
            "/api/v10/webhooks/123/whtok-SECRET/messages/@original",
            "/api/v10/interactions/456/itok-SECRET/callback",
            "/api/webhooks/123/whtok-SECRET/slack",
        ];
        for case in cases {
            let out = url(case, "request", &mut marks);
            assert!(!out.contains("SECRET"), "{out}");
            assert!(url_may_hold_secret(case));
            let template = super::super::route::route_template(&out);
            assert!(
                template.contains("{webhook_token}") || template.contains("{interaction_token}"),
                "{template}"
            );
            // Redacting twice changes nothing.
            assert_eq!(url(&out, "request", &mut marks), out);
        }
        assert_eq!(
            marks,
            vec![
                "request.path.webhook_token",
                "request.path.interaction_token"
            ]
        );
        // Ids, `@original` and ordinary paths stay.
        for plain in [
            "/api/v10/webhooks/123",
            "/api/v10/channels/1/webhooks",
            "/api/v10/applications/1/commands",
        ] {
            assert_eq!(url(plain, "request", &mut marks), plain);
        }
    }

    #[test]
    fn multipart_fields_and_payload_json() {
        let form = b"--b1\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{\"content\":\"hi\",\"token\":\"SECRET-A\"}\r\n--b1\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nSECRET-B\r\n--b1\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"token.txt\"\r\n\r\nfile bytes\r\n--b1--\r\n";
        let mut marks = Vec::new();
        let out = body(
            Some("multipart/form-data; boundary=b1"),
            form,
            "request",
            &mut marks,
        )
        .unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            !text.contains("SECRET-A") && !text.contains("SECRET-B"),
            "{text}"
        );
        assert!(text.contains("file bytes") && text.contains("\"content\":\"hi\""));
        assert_eq!(
            marks,
            ["request.body.payload_json.token", "request.body.password"]
        );
        let parts = crate::store::multipart::parse("b1", &out).unwrap();
        assert_eq!(parts.len(), 3);
        let mut none = Vec::new();
        assert!(body(
            Some("multipart/form-data; boundary=b1"),
            b"--b1\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nhello\r\n--b1--\r\n",
            "request",
            &mut none
        )
        .is_none());
    }
}
