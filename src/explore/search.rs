//! `recordings search` and the filters of `recordings list`: full text over URLs, headers,
//! bodies and decoded gateway frames, narrowed by route, event, time range and JSON path
//! conditions (`d.guilds[*].id=123`). Hits name the exchange (`42`) or frame
//! (`gw:3:receive:7`) they were found in.
use serde::Serialize;
use serde_json::Value;

use super::gateway::frame_id;
use super::range::{rfc3339, TimeRange};
use crate::store::route::route_template;
use crate::store::{BodyRecord, Exchange, Frame, GatewaySession, Header, Store, StoreError};

/// Characters of context on each side of a hit's match.
const CONTEXT: usize = 40;

/// A JSON path condition that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("bad JSON path condition `{term}`: {reason} (write PATH=VALUE, PATH~TEXT or PATH, e.g. d.guilds[*].id=1234)")]
pub struct BadPath {
    term: String,
    reason: &'static str,
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    Any,
}

/// `PATH=VALUE` (equal), `PATH~TEXT` (contains, any case) or `PATH` (present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathCondition {
    steps: Vec<Step>,
    op: Option<(bool, String)>,
}

impl PathCondition {
    /// Parses one condition.
    pub fn parse(term: &str) -> Result<PathCondition, BadPath> {
        let bad = |reason| BadPath {
            term: term.to_string(),
            reason,
        };
        let (path, op) = match term.find(['=', '~']) {
            Some(at) => {
                let equal = term.as_bytes()[at] == b'=';
                (&term[..at], Some((equal, term[at + 1..].to_string())))
            }
            None => (term, None),
        };
        let mut steps = Vec::new();
        for segment in path.split('.') {
            let (name, mut rest) = match segment.find('[') {
                Some(at) => (&segment[..at], &segment[at..]),
                None => (segment, ""),
            };
            if !name.is_empty() {
                steps.push(Step::Key(name.to_string()));
            } else if rest.is_empty() {
                return Err(bad("empty path segment"));
            }
            while let Some(inner) = rest.strip_prefix('[') {
                let Some(close) = inner.find(']') else {
                    return Err(bad("unclosed ["));
                };
                let index = &inner[..close];
                steps.push(if index == "*" {
                    Step::Any
                } else {
                    Step::Index(index.parse().map_err(|_| bad("[N] or [*] expected"))?)
                });
                rest = &inner[close + 1..];
            }
            if !rest.is_empty() {
                return Err(bad("text after ]"));
            }
        }
        Ok(PathCondition { steps, op })
    }

    /// Whether some value at the path in `value` satisfies the condition.
    pub fn matches(&self, value: &Value) -> bool {
        let mut found = Vec::new();
        collect(value, &self.steps, &mut found);
        found.iter().any(|v| match &self.op {
            None => true,
            Some((equal, want)) => {
                let have = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if *equal {
                    have == *want
                } else {
                    have.to_lowercase().contains(&want.to_lowercase())
                }
            }
        })
    }
}

fn collect<'a>(value: &'a Value, steps: &[Step], out: &mut Vec<&'a Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(value);
        return;
    };
    match (step, value) {
        (Step::Key(key), Value::Object(map)) => {
            if let Some(v) = map.get(key) {
                collect(v, rest, out);
            }
        }
        (Step::Index(i), Value::Array(items)) => {
            if let Some(v) = items.get(*i) {
                collect(v, rest, out);
            }
        }
        (Step::Any, Value::Array(items)) => {
            for v in items {
                collect(v, rest, out);
            }
        }
        (Step::Any, Value::Object(map)) => {
            for v in map.values() {
                collect(v, rest, out);
            }
        }
        _ => {}
    }
}

/// What to look for; every part given must hold.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Text anywhere (any case).
    pub text: Option<String>,
    /// Route templates containing this (REST only when given).
    pub route: Option<String>,
    /// Dispatch event name (or opcode number) of frames (gateway only when given).
    pub event: Option<String>,
    /// Time range.
    pub range: TimeRange,
    /// JSON path conditions, on bodies and frame payloads.
    pub paths: Vec<PathCondition>,
}

/// One place a query matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// `42` for an exchange, `gw:3:receive:7` for a frame.
    pub id: String,
    /// `rest` or `gateway`.
    pub kind: &'static str,
    /// When, RFC 3339.
    pub at: String,
    /// What it is: `GET https://…` or `receive op 0 MESSAGE_CREATE`.
    pub summary: String,
    /// Where the text was found (`url`, `request.header.x-foo`, `response.body`, `payload`);
    /// `match` when no text was asked for.
    pub place: String,
    /// The text around the match.
    pub snippet: String,
}

/// A query that does not parse: a bad time or a bad JSON path condition.
#[derive(Debug, thiserror::Error)]
pub enum BadQuery {
    /// `--since`/`--until`.
    #[error(transparent)]
    Time(#[from] super::range::BadTime),
    /// `--where`.
    #[error(transparent)]
    Path(#[from] BadPath),
}

impl Query {
    /// The query of `recordings search` (and the explorer's `/api/v1/search`): `text`
    /// (ignored when empty), `--route`, `--event`, `--since/--until` and `--where` terms.
    pub fn parse(
        text: Option<String>,
        route: Option<String>,
        event: Option<String>,
        since: Option<&str>,
        until: Option<&str>,
        paths: &[String],
    ) -> Result<Query, BadQuery> {
        let nonempty = |v: Option<String>| v.filter(|t| !t.trim().is_empty());
        Ok(Query {
            text: nonempty(text),
            route: nonempty(route),
            event: nonempty(event),
            range: TimeRange::parse(
                since.filter(|t| !t.trim().is_empty()),
                until.filter(|t| !t.trim().is_empty()),
            )?,
            paths: paths
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| PathCondition::parse(p.trim()))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether this query looks at REST exchanges at all.
    fn wants_rest(&self) -> bool {
        self.event.is_none()
    }

    /// Whether this query looks at gateway frames at all.
    fn wants_gateway(&self) -> bool {
        self.route.is_none()
    }

    /// The hits in one exchange (empty when it does not match).
    pub fn exchange_hits(&self, e: &Exchange) -> Vec<Hit> {
        if !self.wants_rest() || !self.range.contains(e.started_at_us) {
            return Vec::new();
        }
        if let Some(route) = &self.route {
            if !contains_ci(&route_template(e.path()), route) {
                return Vec::new();
            }
        }
        if !self.paths.is_empty() {
            let bodies: Vec<Value> = std::iter::once(&e.request_body)
                .chain(e.response.as_ref().map(|r| &r.body))
                .filter_map(|b| serde_json::from_slice(&b.data).ok())
                .collect();
            if !self
                .paths
                .iter()
                .all(|p| bodies.iter().any(|b| p.matches(b)))
            {
                return Vec::new();
            }
        }
        let summary = format!("{} {}", e.method, e.url());
        let hit = |place: String, snippet: String| Hit {
            id: e.id.to_string(),
            kind: "rest",
            at: rfc3339(e.started_at_us),
            summary: summary.clone(),
            place,
            snippet,
        };
        let Some(text) = &self.text else {
            return vec![hit("match".into(), String::new())];
        };
        let mut hits = Vec::new();
        if let Some(snippet) = find(&e.url(), text) {
            hits.push(hit("url".into(), snippet));
        }
        let mut sides: Vec<(&str, &[Header], &BodyRecord)> =
            vec![("request", &e.request_headers, &e.request_body)];
        if let Some(response) = &e.response {
            sides.push(("response", &response.headers, &response.body));
        }
        for (side, headers, body) in sides {
            for header in headers {
                if let Some(snippet) = find(&header.value_str(), text) {
                    hits.push(hit(format!("{side}.header.{}", header.name), snippet));
                }
            }
            if let Some(snippet) = find(&String::from_utf8_lossy(&body.data), text) {
                hits.push(hit(format!("{side}.body"), snippet));
            }
        }
        hits
    }

    /// The hit in one frame, if it matches.
    pub fn frame_hit(&self, frame: &Frame) -> Option<Hit> {
        if !self.wants_gateway() || !self.range.contains(frame.at_us) {
            return None;
        }
        if let Some(event) = &self.event {
            let by_name = frame
                .t
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(event));
            let by_op = frame.op.is_some_and(|op| op.to_string() == *event);
            if !by_name && !by_op {
                return None;
            }
        }
        let payload = frame.payload.as_deref()?;
        if !self.paths.is_empty() {
            let value: Value = serde_json::from_str(payload).ok()?;
            if !self.paths.iter().all(|p| p.matches(&value)) {
                return None;
            }
        }
        let (place, snippet) = match &self.text {
            Some(text) => ("payload".to_string(), find(payload, text)?),
            None => ("match".to_string(), String::new()),
        };
        Some(Hit {
            id: frame_id(frame),
            kind: "gateway",
            at: rfc3339(frame.at_us),
            summary: format!(
                "{} op {}{}",
                frame.direction.har_type(),
                frame.op.map_or("?".into(), |op| op.to_string()),
                frame
                    .t
                    .as_deref()
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default()
            ),
            place,
            snippet,
        })
    }

    /// Whether a gateway session is listed: started in range, and when frame conditions are
    /// given, one of its frames matches them.
    pub fn session_matches(
        &self,
        store: &Store,
        session: &GatewaySession,
    ) -> Result<bool, StoreError> {
        if !self.wants_gateway() || !self.range.contains(session.started_at_us) {
            return Ok(false);
        }
        if self.text.is_none() && self.event.is_none() && self.paths.is_empty() {
            return Ok(true);
        }
        let unbounded = Query {
            range: TimeRange::default(),
            ..self.clone()
        };
        Ok(store
            .frames(session.id)?
            .iter()
            .any(|f| unbounded.frame_hit(f).is_some()))
    }
}

/// Runs a query over a whole store; `on_hit` hears each hit in time order per kind (exchanges
/// first, then frames session by session). Returns the number of hits.
pub fn search(
    store: &Store,
    query: &Query,
    mut on_hit: impl FnMut(Hit),
) -> Result<u64, StoreError> {
    let mut count = 0;
    if query.wants_rest() {
        for exchange in store.exchanges() {
            for hit in query.exchange_hits(&exchange?) {
                count += 1;
                on_hit(hit);
            }
        }
    }
    if query.wants_gateway() {
        for session in store.sessions() {
            let session = session?;
            for frame in store.frames(session.id)? {
                if let Some(hit) = query.frame_hit(&frame) {
                    count += 1;
                    on_hit(hit);
                }
            }
        }
    }
    Ok(count)
}

fn contains_ci(have: &str, want: &str) -> bool {
    have.to_lowercase().contains(&want.to_lowercase())
}

/// The text around the first case-insensitive occurrence of `needle`, if any.
fn find(haystack: &str, needle: &str) -> Option<String> {
    if needle.is_empty() {
        return None;
    }
    let lower = haystack.to_lowercase();
    // Lower-casing may change byte lengths; search the lowered text and map back by chars.
    let at = lower.find(&needle.to_lowercase())?;
    let chars_before = lower[..at].chars().count();
    let needle_chars = needle.chars().count();
    let chars: Vec<char> = haystack.chars().collect();
    let start = chars_before.saturating_sub(CONTEXT).min(chars.len());
    let end = (chars_before + needle_chars + CONTEXT).min(chars.len());
    let mut snippet: String = chars[start..end].iter().collect();
    snippet = snippet.replace(['\n', '\r'], " ");
    if start > 0 {
        snippet.insert(0, '…');
    }
    if end < chars.len() {
        snippet.push('…');
    }
    Some(snippet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_paths_with_wildcards_indexes_and_ops() {
        let value = json!({"op": 0, "d": {"guilds": [{"id": "111"}, {"id": "222", "name": "Planted Name"}]}});
        let yes = |term: &str| PathCondition::parse(term).unwrap().matches(&value);
        assert!(yes("d.guilds[*].id=222"));
        assert!(!yes("d.guilds[*].id=333"));
        assert!(yes("d.guilds[0].id=111"));
        assert!(!yes("d.guilds[0].id=222"));
        assert!(yes("d.guilds[*].name~planted"));
        assert!(yes("op=0"));
        assert!(yes("d.guilds"));
        assert!(!yes("d.channels"));
        for bad in ["d.guilds[x].id=1", "d.guilds[0", "a..b", "d.g[0]x"] {
            assert!(PathCondition::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn snippets_keep_context_and_any_case() {
        let text = format!("{}NEEDLE{}", "a".repeat(100), "b".repeat(100));
        let snippet = find(&text, "needle").unwrap();
        assert!(snippet.starts_with('…') && snippet.ends_with('…'));
        assert!(snippet.contains("NEEDLE"));
        assert_eq!(
            find("İstanbul needle", "NEEDLE").unwrap(),
            "İstanbul needle"
        );
        assert!(find("nothing", "needle").is_none());
    }
}
