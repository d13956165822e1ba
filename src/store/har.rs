//! HAR 1.2 export (what Chrome DevTools and mitmproxy open), written entry by entry so large
//! recordings do not need to fit in memory. Gateway sessions become WebSocket entries with
//! `_webSocketMessages`, as Chrome writes them.
use std::io::Write;

use base64::Engine;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::filter::Filter;
use super::records::{BodyRecord, Exchange, Frame, FrameKind, GatewaySession, Header};
use super::{Store, StoreError};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum HarError {
    /// Reading the recordings failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the HAR file failed.
    #[error("writing the HAR file: {0}")]
    Io(#[from] std::io::Error),
}

/// What was exported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HarSummary {
    /// REST entries written.
    pub exchanges: u64,
    /// WebSocket entries written.
    pub sessions: u64,
}

/// Writes every exchange and gateway session matching `filter` to `out` as HAR 1.2, in time
/// order; `progress` is called after each entry with (done, total).
pub fn export(
    store: &Store,
    filter: &Filter,
    out: &mut impl Write,
    mut progress: impl FnMut(u64, u64),
) -> Result<HarSummary, HarError> {
    let stats = store.stats()?;
    let total = stats.exchanges + stats.sessions;
    write!(
        out,
        "{{\"log\":{{\"version\":\"1.2\",\"creator\":{{\"name\":\"discord-mitm\",\"version\":\"{}\"}},\"pages\":[],\"entries\":[",
        env!("CARGO_PKG_VERSION")
    )?;
    let mut summary = HarSummary::default();
    let mut first = true;
    let mut done = 0;
    let mut exchanges = store.exchanges().peekable();
    let mut sessions = store.sessions().peekable();
    loop {
        // Merge both (each already in start order) by start time.
        let take_exchange = match (exchanges.peek(), sessions.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(Ok(e)), Some(Ok(s))) => e.started_at_us <= s.started_at_us,
            (Some(Err(_)), _) => true,
            (_, Some(Err(_))) => false,
        };
        let entry = if take_exchange {
            let exchange = exchanges.next().expect("peeked")?;
            if !filter.matches_exchange(&exchange) {
                done += 1;
                continue;
            }
            summary.exchanges += 1;
            exchange_entry(&exchange)
        } else {
            let session = sessions.next().expect("peeked")?;
            if !filter.matches_session(&session) {
                done += 1;
                continue;
            }
            summary.sessions += 1;
            let frames = store.frames(session.id)?;
            session_entry(&session, &frames)
        };
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(&mut *out, &entry).map_err(std::io::Error::other)?;
        done += 1;
        progress(done, total);
    }
    out.write_all(b"]}}\n")?;
    out.flush()?;
    Ok(summary)
}

fn iso_time(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

fn headers(list: &[Header]) -> Value {
    Value::Array(
        list.iter()
            .map(|h| json!({"name": h.name, "value": h.value_str()}))
            .collect(),
    )
}

fn header<'a>(list: &'a [Header], name: &str) -> Option<std::borrow::Cow<'a, str>> {
    list.iter().find(|h| h.name == name).map(Header::value_str)
}

fn query_string(path_and_query: &str) -> Value {
    let Some((_, query)) = path_and_query.split_once('?') else {
        return json!([]);
    };
    Value::Array(
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                json!({"name": name, "value": value})
            })
            .collect(),
    )
}

fn ip_only(addr: &str) -> String {
    addr.parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| addr.to_string())
}

/// HAR `content`/`postData` text: UTF-8 as is, anything else base64.
fn body_text(body: &BodyRecord) -> (String, Option<&'static str>) {
    match std::str::from_utf8(&body.data) {
        Ok(text) => (text.to_string(), None),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&body.data),
            Some("base64"),
        ),
    }
}

fn exchange_entry(exchange: &Exchange) -> Value {
    let request_type = header(&exchange.request_headers, "content-type").map(|c| c.to_string());
    let mut request = json!({
        "method": exchange.method,
        "url": exchange.url(),
        "httpVersion": exchange.http_version,
        "cookies": [],
        "headers": headers(&exchange.request_headers),
        "queryString": query_string(&exchange.path_and_query),
        "headersSize": -1,
        "bodySize": exchange.request_body.wire_size,
    });
    if !exchange.request_body.data.is_empty() {
        let (text, _) = body_text(&exchange.request_body);
        request["postData"] = json!({
            "mimeType": request_type.unwrap_or_default(),
            "text": text,
        });
    }
    let response = match &exchange.response {
        Some(res) => {
            let (text, encoding) = body_text(&res.body);
            let mut content = json!({
                "size": res.body.data.len(),
                "mimeType": header(&res.headers, "content-type").unwrap_or_default(),
                "text": text,
            });
            if let Some(encoding) = encoding {
                content["encoding"] = json!(encoding);
            }
            let saved = res.body.data.len() as i64 - res.body.wire_size as i64;
            if res.body.encoding.is_some() && saved > 0 {
                content["compression"] = json!(saved);
            }
            json!({
                "status": res.status,
                "statusText": http::StatusCode::from_u16(res.status).ok().and_then(|s| s.canonical_reason()).unwrap_or(""),
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": headers(&res.headers),
                "content": content,
                "redirectURL": header(&res.headers, "location").unwrap_or_default(),
                "headersSize": -1,
                "bodySize": res.body.wire_size,
            })
        }
        None => json!({
            "status": 0, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [],
            "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1, "bodySize": -1,
        }),
    };
    let total_ms = exchange.duration_us as f64 / 1000.0;
    let wait_ms = exchange.wait_us.map_or(total_ms, |w| w as f64 / 1000.0);
    let mut entry = json!({
        "startedDateTime": iso_time(exchange.started_at_us),
        "time": total_ms,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": wait_ms, "receive": (total_ms - wait_ms).max(0.0)},
        "_discordMitm": extension(exchange.id, &exchange.source, exchange.error.as_deref(), &exchange.redactions),
    });
    if let Some(addr) = &exchange.upstream_addr {
        entry["serverIPAddress"] = json!(ip_only(addr));
    }
    entry
}

fn extension(id: u64, source: &str, error: Option<&str>, redactions: &[String]) -> Value {
    let mut ext = Map::new();
    ext.insert("id".into(), json!(id));
    ext.insert("source".into(), json!(source));
    if let Some(error) = error {
        ext.insert("error".into(), json!(error));
    }
    if !redactions.is_empty() {
        ext.insert("redactions".into(), json!(redactions));
    }
    Value::Object(ext)
}

fn session_entry(session: &GatewaySession, frames: &[Frame]) -> Value {
    let messages: Vec<Value> = frames
        .iter()
        .filter_map(|frame| {
            let (opcode, data) = match (&frame.payload, frame.kind) {
                (Some(payload), _) => (1, payload.clone()),
                (None, FrameKind::Text | FrameKind::Binary) => match &frame.raw {
                    Some(raw) => (2, base64::engine::general_purpose::STANDARD.encode(raw)),
                    // Part of a compressed message: its payload sits on the frame that completed it.
                    None => return None,
                },
                (None, _) => return None,
            };
            Some(json!({
                "type": frame.direction.har_type(),
                "time": frame.at_us as f64 / 1_000_000.0,
                "opcode": opcode,
                "data": data,
            }))
        })
        .collect();
    let ended = session
        .ended_at_us
        .unwrap_or_else(|| frames.last().map_or(session.started_at_us, |f| f.at_us));
    let mut ext = extension(
        session.id,
        "upstream",
        session.error.as_deref(),
        &session.redactions,
    );
    ext["closes"] = json!(session
        .closes
        .iter()
        .map(|c| json!({"from": c.direction.har_type(), "code": c.code, "reason": c.reason}))
        .collect::<Vec<_>>());
    let mut entry = json!({
        "startedDateTime": iso_time(session.started_at_us),
        "time": (ended - session.started_at_us).max(0) as f64 / 1000.0,
        "_resourceType": "websocket",
        "request": {
            "method": "GET",
            "url": session.url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": headers(&session.request_headers),
            "queryString": query_string(session.url.split_once("://").map_or("", |(_, rest)| rest)),
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": session.status.unwrap_or(0),
            "statusText": if session.status == Some(101) { "Switching Protocols" } else { "" },
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": ""},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": 0,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
        "_webSocketMessages": messages,
        "_discordMitm": ext,
    });
    if let Some(addr) = &session.upstream_addr {
        entry["serverIPAddress"] = json!(ip_only(addr));
    }
    entry
}
