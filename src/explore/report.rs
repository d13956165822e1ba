//! Text and JSON views of recordings for `recordings list|show|stats` and `routes`.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::catalog::Catalog;
use super::search::Query;
use crate::store::route::route_template;
use crate::store::{BodyRecord, Exchange, Frame, GatewaySession, Header, Store, StoreError};

/// `2026-11-22T00:40:01.123456Z` from µs since the epoch.
pub(crate) fn time_text(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| us.to_string())
}

fn body_json(body: &BodyRecord) -> Value {
    let mut out = json!({
        "wire_size": body.wire_size,
        "encoding": body.encoding,
        "truncated": body.truncated,
    });
    match std::str::from_utf8(&body.data) {
        Ok(text) => out["text"] = json!(text),
        Err(_) => {
            out["base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&body.data))
        }
    }
    if let Some(err) = &body.decode_error {
        out["decode_error"] = json!(err);
    }
    out
}

fn headers_json(headers: &[Header]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|h| json!([h.name, h.value_str()]))
            .collect(),
    )
}

/// One exchange as JSON (bodies as text, or base64 when not UTF-8).
pub(crate) fn exchange_json(exchange: &Exchange) -> Value {
    json!({
        "id": exchange.id,
        "kind": "rest",
        "started_at": time_text(exchange.started_at_us),
        "wait_ms": exchange.wait_us.map(|w| w as f64 / 1000.0),
        "duration_ms": exchange.duration_us as f64 / 1000.0,
        "client_addr": exchange.client_addr,
        "upstream_addr": exchange.upstream_addr,
        "source": exchange.source,
        "method": exchange.method,
        "url": exchange.url(),
        "route": route_template(exchange.path()),
        "http_version": exchange.http_version,
        "request": {"headers": headers_json(&exchange.request_headers), "body": body_json(&exchange.request_body)},
        "response": exchange.response.as_ref().map(|res| json!({
            "status": res.status,
            "headers": headers_json(&res.headers),
            "body": body_json(&res.body),
        })),
        "error": exchange.error,
        "redactions": exchange.redactions,
        "rewritten": !exchange.rewrites.is_empty(),
        "rewrites": exchange.rewrites.iter().map(|r| json!({"kind": r.kind, "from": r.from, "to": r.to})).collect::<Vec<_>>(),
    })
}

/// One gateway session with its frames as JSON.
pub(crate) fn session_json(session: &GatewaySession, frames: &[Frame]) -> Value {
    json!({
        "id": session.id,
        "kind": "gateway",
        "started_at": time_text(session.started_at_us),
        "ended_at": session.ended_at_us.map(time_text),
        "client_addr": session.client_addr,
        "upstream_addr": session.upstream_addr,
        "url": session.url,
        "version": session.version,
        "encoding": session.encoding,
        "compress": session.compress,
        "status": session.status,
        "closes": session.closes.iter().map(|c| json!({"from": c.direction.har_type(), "code": c.code, "reason": c.reason})).collect::<Vec<_>>(),
        "error": session.error,
        "redactions": session.redactions,
        "rewritten": !session.rewrites.is_empty(),
        "rewrites": session.rewrites.iter().map(|r| json!({"kind": r.kind, "from": r.from, "to": r.to})).collect::<Vec<_>>(),
        "frames": frames.iter().map(|f| json!({
            "direction": f.direction.har_type(),
            "seq": f.seq,
            "at": time_text(f.at_us),
            "kind": format!("{:?}", f.kind).to_ascii_lowercase(),
            "raw_size": f.raw_size,
            "op": f.op,
            "t": f.t,
            "s": f.s,
            "payload": f.payload.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()),
            "decode_error": f.decode_error,
            "redacted": f.redacted,
        })).collect::<Vec<_>>(),
    })
}

/// `recordings list` rows: exchanges and gateway sessions matching `query` in time order, the
/// last `limit`.
pub(crate) fn list(
    store: &Store,
    limit: Option<usize>,
    as_json: bool,
    query: &Query,
) -> Result<String, StoreError> {
    let mut rows: Vec<(i64, String, Value)> = Vec::new();
    for exchange in store.exchanges() {
        let e = exchange?;
        if query.exchange_hits(&e).is_empty() {
            continue;
        }
        let status = e.status().map_or("-".to_string(), |s| s.to_string());
        let mut note = e
            .error
            .as_deref()
            .map(|err| format!("  ! {err}"))
            .unwrap_or_default();
        if !e.rewrites.is_empty() {
            note.push_str("  (rewritten)");
        }
        let line = format!(
            "{:>8}  {}  {:<6} {:>6} {:>9.1}  {}{}",
            e.id,
            time_text(e.started_at_us),
            e.method,
            status,
            e.duration_us as f64 / 1000.0,
            e.url(),
            note
        );
        let value = json!({"kind": "rest", "id": e.id, "started_at": time_text(e.started_at_us), "method": e.method,
            "status": e.status(), "duration_ms": e.duration_us as f64 / 1000.0, "url": e.url(), "error": e.error, "rewritten": !e.rewrites.is_empty()});
        rows.push((e.started_at_us, line, value));
    }
    for session in store.sessions() {
        let s = session?;
        if !query.session_matches(store, &s)? {
            continue;
        }
        let duration = s
            .ended_at_us
            .map(|end| (end - s.started_at_us) as f64 / 1000.0);
        let close = s
            .closes
            .first()
            .and_then(|c| c.code)
            .map(|c| format!(", closed {c}"))
            .unwrap_or_default();
        let line = format!(
            "{:>8}  {}  {:<6} {:>6} {:>9}  {}  ({} sent, {} received{close}){}{}",
            format!("gw:{}", s.id),
            time_text(s.started_at_us),
            "WS",
            s.status.map_or("-".into(), |c| c.to_string()),
            duration.map_or("open".into(), |d| format!("{d:.1}")),
            s.url,
            s.frames_sent,
            s.frames_received,
            s.error
                .as_deref()
                .map(|e| format!("  ! {e}"))
                .unwrap_or_default(),
            if s.rewrites.is_empty() {
                ""
            } else {
                "  (rewritten)"
            }
        );
        let value = json!({"kind": "gateway", "id": s.id, "started_at": time_text(s.started_at_us), "url": s.url,
            "status": s.status, "frames_sent": s.frames_sent, "frames_received": s.frames_received, "error": s.error,
            "rewritten": !s.rewrites.is_empty()});
        rows.push((s.started_at_us, line, value));
    }
    rows.sort_by_key(|(at, _, _)| *at);
    let skip = limit.map_or(0, |n| rows.len().saturating_sub(n));
    let mut out = String::new();
    if !as_json {
        let _ = writeln!(
            out,
            "{:>8}  {:<27}  {:<6} {:>6} {:>9}  URL",
            "ID", "TIME", "METHOD", "STATUS", "MS"
        );
    }
    for (_, line, value) in rows.into_iter().skip(skip) {
        if as_json {
            let _ = writeln!(out, "{value}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    Ok(out)
}

fn show_body(out: &mut String, body: &BodyRecord) {
    if body.data.is_empty() {
        return;
    }
    let note = match (&body.encoding, body.truncated) {
        (Some(enc), true) => format!(
            " (decoded from {enc}, {} bytes on the wire, cut)",
            body.wire_size
        ),
        (Some(enc), false) => format!(
            " (decoded from {enc}, {} bytes on the wire)",
            body.wire_size
        ),
        (None, true) => format!(" ({} bytes on the wire, cut)", body.wire_size),
        (None, false) => String::new(),
    };
    let _ = writeln!(out, "--- body{note}");
    match serde_json::from_slice::<Value>(&body.data) {
        Ok(value) => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Err(_) => match std::str::from_utf8(&body.data) {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
            }
            Err(_) => {
                let _ = writeln!(out, "<{} bytes of binary>", body.data.len());
            }
        },
    }
}

/// `recordings show ID` as text.
pub(crate) fn exchange_text(e: &Exchange) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "exchange {}  {}  {:.1} ms  from {}  via {}",
        e.id,
        time_text(e.started_at_us),
        e.duration_us as f64 / 1000.0,
        e.client_addr,
        e.upstream_addr.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "route {}  answered by {}",
        route_template(e.path()),
        e.source
    );
    if let Some(err) = &e.error {
        let _ = writeln!(out, "error: {err}");
    }
    if !e.redactions.is_empty() {
        let _ = writeln!(out, "redacted: {}", e.redactions.join(", "));
    }
    if !e.rewrites.is_empty() {
        let _ = writeln!(
            out,
            "REWRITTEN by serve's identity rules (what the client saw is below):"
        );
        for r in &e.rewrites {
            let _ = writeln!(out, "  {}: {} -> {}", r.kind, r.from, r.to);
        }
    }
    let _ = writeln!(out, "\n> {} {} {}", e.method, e.url(), e.http_version);
    for h in &e.request_headers {
        let _ = writeln!(out, "> {}: {}", h.name, h.value_str());
    }
    show_body(&mut out, &e.request_body);
    if let Some(res) = &e.response {
        let _ = writeln!(out, "\n< {}", res.status);
        for h in &res.headers {
            let _ = writeln!(out, "< {}: {}", h.name, h.value_str());
        }
        show_body(&mut out, &res.body);
    }
    out
}

/// `recordings show gw:ID` as text.
pub(crate) fn session_text(s: &GatewaySession, frames: &[Frame]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "gateway session {}  {}  {}",
        s.id,
        time_text(s.started_at_us),
        s.url
    );
    let _ = writeln!(
        out,
        "encoding {}  compress {}  from {}  via {}",
        s.encoding.as_deref().unwrap_or("json"),
        s.compress.as_deref().unwrap_or("none"),
        s.client_addr,
        s.upstream_addr.as_deref().unwrap_or("-")
    );
    for c in &s.closes {
        let _ = writeln!(
            out,
            "close from {}: {} {}",
            c.direction.har_type(),
            c.code.map_or("-".into(), |c| c.to_string()),
            c.reason
        );
    }
    if let Some(err) = &s.error {
        let _ = writeln!(out, "error: {err}");
    }
    if !s.rewrites.is_empty() {
        let _ = writeln!(
            out,
            "REWRITTEN by serve's identity rules (the frames below are as each side sent them):"
        );
        for r in &s.rewrites {
            let _ = writeln!(out, "  {}: {} -> {}", r.kind, r.from, r.to);
        }
    }
    for f in frames {
        let arrow = if f.direction.har_type() == "send" {
            ">"
        } else {
            "<"
        };
        let what = match (&f.payload, &f.decode_error) {
            (Some(p), _) => p.clone(),
            (None, Some(err)) => format!("<undecoded: {err}>"),
            (None, None) => format!("<{:?}, {} bytes>", f.kind, f.raw_size),
        };
        let _ = writeln!(
            out,
            "{arrow} {}  op={} t={} s={}  {what}",
            time_text(f.at_us),
            f.op.map_or("-".into(), |o| o.to_string()),
            f.t.as_deref().unwrap_or("-"),
            f.s.map_or("-".into(), |s| s.to_string())
        );
    }
    out
}

/// `recordings stats`.
pub(crate) fn stats(store: &Store, as_json: bool) -> Result<String, StoreError> {
    let stats = store.stats()?;
    let mut by_host: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors = 0u64;
    let mut first = None::<i64>;
    let mut last = None::<i64>;
    for e in store.exchanges() {
        let e = e?;
        *by_host.entry(e.host.clone()).or_default() += 1;
        let class = e
            .status()
            .map_or("none".into(), |s| format!("{}xx", s / 100));
        *by_class.entry(class).or_default() += 1;
        errors += u64::from(e.error.is_some());
        first = Some(first.map_or(e.started_at_us, |f| f.min(e.started_at_us)));
        last = Some(last.map_or(e.started_at_us, |l| l.max(e.started_at_us)));
    }
    if as_json {
        return Ok(json!({
            "exchanges": stats.exchanges, "gateway_sessions": stats.sessions, "gateway_frames": stats.frames,
            "disk_bytes": stats.disk_bytes, "errors": errors, "by_host": by_host, "by_status": by_class,
            "first": first.map(time_text), "last": last.map(time_text),
        })
        .to_string()
            + "\n");
    }
    let mut out = String::new();
    let _ = writeln!(out, "recordings: {}", store.path().display());
    let _ = writeln!(
        out,
        "exchanges: {}  ({} with errors)",
        stats.exchanges, errors
    );
    let _ = writeln!(
        out,
        "gateway sessions: {}  frames: {}",
        stats.sessions, stats.frames
    );
    let _ = writeln!(
        out,
        "on disk: {:.1} MiB",
        stats.disk_bytes as f64 / (1024.0 * 1024.0)
    );
    if let (Some(first), Some(last)) = (first, last) {
        let _ = writeln!(out, "from {} to {}", time_text(first), time_text(last));
    }
    for (host, n) in &by_host {
        let _ = writeln!(out, "  {n:>8}  {host}");
    }
    for (class, n) in &by_class {
        let _ = writeln!(out, "  {n:>8}  {class}");
    }
    Ok(out)
}

/// `routes` as a table.
pub(crate) fn catalog_text(catalog: &Catalog) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<7} {:>6}  {:<16} {:<20} {:<20} {:<5} ROUTE",
        "METHOD", "COUNT", "STATUSES", "FIRST", "LAST", "DOC"
    );
    for r in &catalog.routes {
        let statuses = r
            .statuses
            .keys()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let doc = match (&r.documented_as, catalog.spec_checked) {
            (Some(_), _) => "yes",
            (None, true) => "NO",
            (None, false) => "?",
        };
        let short = |us: i64| time_text(us).chars().take(19).collect::<String>();
        let _ = writeln!(
            out,
            "{:<7} {:>6}  {:<16} {:<20} {:<20} {:<5} {}{}",
            r.method,
            r.count,
            statuses,
            short(r.first_seen_us),
            short(r.last_seen_us),
            doc,
            r.host,
            r.template
        );
    }
    let g = &catalog.gateway;
    if g.sessions > 0 {
        let _ = writeln!(out, "\ngateway: {} sessions", g.sessions);
        let ops = |m: &BTreeMap<u8, u64>| {
            m.iter()
                .map(|(op, n)| format!("op {op}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "  sent:     {}", ops(&g.sent_ops));
        let _ = writeln!(out, "  received: {}", ops(&g.received_ops));
        for (t, n) in &g.dispatches {
            let _ = writeln!(out, "  {n:>8}  {t}");
        }
    }
    out
}
