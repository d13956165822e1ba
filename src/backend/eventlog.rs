//! The test-control event log (`serve --control`): every dispatch sent to each gateway session
//! and every REST call with its answer, in one ring buffer numbered by a cursor, with a
//! long-poll wait for the first entry matching a filter.
//!
//! Bounded: at most `capacity` entries, bodies above [`BODY_LIMIT`] bytes reduced to their
//! top-level scalar fields. Secrets never enter it: every field a token or password is kept
//! under (the recorder's [`crate::store::redact::is_secret_key`]) reads `[redacted]`.
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;

use super::snowflake::{now_ms, Snowflake};

/// Bodies (dispatch data, REST request and answer) larger than this, serialized, are reduced.
pub(crate) const BODY_LIMIT: usize = 16 * 1024;

/// What replaces a secret.
const REDACTED: &str = "[redacted]";

/// One dispatch as a session was sent it.
#[derive(Debug, Clone)]
pub(crate) struct DispatchRecord<'a> {
    pub session_id: &'a str,
    pub user_id: Snowflake,
    pub seq: u64,
    pub name: &'a str,
    pub data: &'a Value,
    /// Sent again on a RESUME (it was logged when first sent, too).
    pub replayed: bool,
}

/// One REST call and its answer.
#[derive(Debug, Clone)]
pub(crate) struct RestRecord {
    pub method: String,
    /// The route template, without the `/api/vN` prefix (`/channels/{channel_id}/messages`).
    pub route: String,
    /// The path parameters (secret ones redacted).
    pub params: Map<String, Value>,
    pub caller_id: Option<Snowflake>,
    pub status: u16,
    pub request: Option<Value>,
    pub response: Option<Value>,
}

/// What a query or a wait looks for.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct Filter {
    /// The dispatch name (`MESSAGE_CREATE`), or `REST` for REST calls.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Field values the entry must have: `channel_id`, `guild_id`, `author_id`, `user_id`,
    /// `session_id`, `route`, `method`, `status`, or any dotted path into the entry
    /// (`data.content`, `response.id`). Values compare as text (`"1"` matches `1`).
    #[serde(rename = "match", default)]
    pub fields: Map<String, Value>,
}

impl Filter {
    /// Whether `entry` passes.
    pub(crate) fn matches(&self, entry: &Value) -> bool {
        if let Some(kind) = &self.kind {
            if entry.get("type").and_then(Value::as_str) != Some(kind.as_str()) {
                return false;
            }
        }
        self.fields
            .iter()
            .all(|(key, wanted)| candidates(entry, key).iter().any(|v| same(v, wanted)))
    }
}

/// The values an entry offers for a match key (several places for the shortcut keys).
fn candidates<'a>(entry: &'a Value, key: &str) -> Vec<&'a Value> {
    let paths: &[&str] = match key {
        "channel_id" => &[
            "data.channel_id",
            "params.channel_id",
            "response.channel_id",
        ],
        "guild_id" => &["data.guild_id", "params.guild_id", "response.guild_id"],
        "author_id" => &[
            "data.author.id",
            "data.user.id",
            "data.member.user.id",
            "data.user_id",
            "caller_id",
        ],
        "message_id" => &["data.message_id", "data.id", "params.message_id"],
        "user_id" => &["user_id", "caller_id"],
        _ => &[],
    };
    let mut out: Vec<&Value> = paths.iter().filter_map(|p| at_path(entry, p)).collect();
    if out.is_empty() {
        out.extend(at_path(entry, key));
    }
    out
}

fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, part| match v {
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(part),
    })
}

/// Equality with text and numbers interchangeable (ids are strings on the wire).
fn same(found: &Value, wanted: &Value) -> bool {
    if found == wanted {
        return true;
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    matches!((text(found), text(wanted)), (Some(a), Some(b)) if a == b)
}

/// Replaces every secret-named field's value in place.
pub(crate) fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if crate::store::redact::is_secret_key(key) && !field.is_null() {
                    *field = Value::String(REDACTED.into());
                } else {
                    redact(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// A body as the log keeps it: redacted, and reduced to its top-level scalars when large.
pub(crate) fn bounded(value: &Value) -> Value {
    let mut value = value.clone();
    redact(&mut value);
    let size = serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(0);
    if size <= BODY_LIMIT {
        return value;
    }
    let mut kept = Map::new();
    let mut sizes = Map::new();
    if let Value::Object(map) = &value {
        for (key, field) in map {
            match field {
                Value::String(s) if s.len() > 256 => {
                    sizes.insert(key.clone(), json!(s.len()));
                }
                Value::Array(items) => {
                    sizes.insert(key.clone(), json!(items.len()));
                }
                Value::Object(object) => {
                    sizes.insert(key.clone(), json!(object.len()));
                }
                _ => {
                    kept.insert(key.clone(), field.clone());
                }
            }
        }
    }
    kept.insert("_truncated".into(), json!(size));
    kept.insert("_sizes".into(), Value::Object(sizes));
    Value::Object(kept)
}

struct Ring {
    entries: VecDeque<Arc<Value>>,
    /// Cursor of the next entry (the first is 1).
    next: u64,
}

/// The ring buffer of entries.
pub struct EventLog {
    ring: Mutex<Ring>,
    capacity: usize,
    arrived: Notify,
}

/// A page of entries and where to continue.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Page {
    pub events: Vec<Value>,
    /// Pass as `since` to get what comes after this page.
    pub cursor: u64,
    /// The oldest cursor still held (older entries were overwritten).
    pub oldest: u64,
}

impl EventLog {
    /// An empty log holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        EventLog {
            ring: Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity.min(4096)),
                next: 1,
            }),
            capacity: capacity.max(1),
            arrived: Notify::new(),
        }
    }

    /// The cursor of the last entry written (0 when none).
    pub(crate) fn cursor(&self) -> u64 {
        self.ring.lock().next - 1
    }

    fn push(&self, mut entry: Map<String, Value>) {
        {
            let mut ring = self.ring.lock();
            let cursor = ring.next;
            ring.next += 1;
            entry.insert("cursor".into(), json!(cursor));
            entry.insert("at_ms".into(), json!(now_ms()));
            if ring.entries.len() >= self.capacity {
                ring.entries.pop_front();
            }
            ring.entries.push_back(Arc::new(Value::Object(entry)));
        }
        self.arrived.notify_waiters();
    }

    /// Logs a dispatch a session was sent.
    pub(crate) fn dispatch(&self, record: DispatchRecord<'_>) {
        let mut entry = Map::new();
        entry.insert("kind".into(), json!("dispatch"));
        entry.insert("type".into(), json!(record.name));
        entry.insert("session_id".into(), json!(record.session_id));
        entry.insert("user_id".into(), json!(record.user_id));
        entry.insert("seq".into(), json!(record.seq));
        entry.insert("data".into(), bounded(record.data));
        if record.replayed {
            entry.insert("replayed".into(), json!(true));
        }
        self.push(entry);
    }

    /// Logs a REST call and its answer.
    pub(crate) fn rest(&self, record: RestRecord) {
        let mut params = Value::Object(record.params);
        redact(&mut params);
        let mut entry = Map::new();
        entry.insert("kind".into(), json!("rest"));
        entry.insert("type".into(), json!("REST"));
        entry.insert("method".into(), json!(record.method));
        entry.insert("route".into(), json!(record.route));
        entry.insert("params".into(), params);
        entry.insert("caller_id".into(), json!(record.caller_id));
        entry.insert("status".into(), json!(record.status));
        entry.insert(
            "request".into(),
            record.request.as_ref().map_or(Value::Null, bounded),
        );
        entry.insert(
            "response".into(),
            record.response.as_ref().map_or(Value::Null, bounded),
        );
        self.push(entry);
    }

    /// Logs a change of state no dispatch carries (an interaction that failed its deadline).
    pub(crate) fn state_change(&self, name: &str, data: Value) {
        self.mark("state", name, data);
    }

    /// Logs a control action (a reset, a clock change) so a reader can tell phases apart.
    pub(crate) fn note(&self, name: &str, data: Value) {
        self.mark("control", name, data);
    }

    /// An entry of `kind` named `name` with `data`.
    fn mark(&self, kind: &str, name: &str, data: Value) {
        let mut entry = Map::new();
        entry.insert("kind".into(), json!(kind));
        entry.insert("type".into(), json!(name));
        entry.insert("data".into(), data);
        self.push(entry);
    }

    /// Entries after `since` passing `filter`, at most `limit`.
    pub(crate) fn since(&self, since: u64, filter: &Filter, limit: usize) -> Page {
        let ring = self.ring.lock();
        let oldest = ring.next - ring.entries.len() as u64;
        let skip = since.saturating_sub(oldest.saturating_sub(1)) as usize;
        let mut cursor = since.max(oldest.saturating_sub(1));
        let mut events = Vec::new();
        for entry in ring.entries.iter().skip(skip) {
            cursor = entry
                .get("cursor")
                .and_then(Value::as_u64)
                .unwrap_or(cursor);
            if filter.matches(entry) {
                events.push(Value::clone(entry));
                if events.len() >= limit {
                    break;
                }
            }
        }
        Page {
            events,
            cursor,
            oldest,
        }
    }

    /// The first entry after `since` passing `filter`, waiting up to `timeout` for it.
    pub(crate) async fn wait(
        &self,
        since: u64,
        filter: &Filter,
        timeout: Duration,
    ) -> Result<Value, u64> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut from = since;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let page = self.since(from, filter, 1);
            if let Some(entry) = page.events.into_iter().next() {
                return Ok(entry);
            }
            from = page.cursor;
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(self.cursor());
            }
        }
    }

    /// Drops every entry (the cursor keeps counting).
    pub(crate) fn clear(&self) {
        self.ring.lock().entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(kind: &str, fields: Value) -> Filter {
        Filter {
            kind: Some(kind.into()),
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn the_ring_forgets_the_oldest_and_cursors_keep_counting() {
        let log = EventLog::new(3);
        for n in 0..5 {
            log.note("X", json!({"n": n}));
        }
        let page = log.since(0, &Filter::default(), 100);
        assert_eq!(page.oldest, 3);
        assert_eq!(page.events.len(), 3);
        assert_eq!(page.events[0]["cursor"], 3);
        assert_eq!(page.cursor, 5);
        assert!(log.since(5, &Filter::default(), 100).events.is_empty());
        assert_eq!(log.since(4, &Filter::default(), 100).events.len(), 1);
    }

    #[test]
    fn filters_match_shortcuts_and_paths_with_ids_as_text() {
        let log = EventLog::new(10);
        let data = json!({"channel_id": "5", "author": {"id": "7"}, "content": "hi"});
        log.dispatch(DispatchRecord {
            replayed: false,
            session_id: "s",
            user_id: Snowflake(9),
            seq: 1,
            name: "MESSAGE_CREATE",
            data: &data,
        });
        let hit = |f: Filter| !log.since(0, &f, 10).events.is_empty();
        assert!(hit(filter("MESSAGE_CREATE", json!({"channel_id": 5}))));
        assert!(hit(filter("MESSAGE_CREATE", json!({"author_id": "7"}))));
        assert!(hit(filter("MESSAGE_CREATE", json!({"data.content": "hi"}))));
        assert!(hit(filter("MESSAGE_CREATE", json!({"user_id": "9"}))));
        assert!(!hit(filter("MESSAGE_CREATE", json!({"channel_id": "6"}))));
        assert!(!hit(filter("MESSAGE_UPDATE", json!({}))));
    }

    #[test]
    fn secrets_are_redacted_and_big_bodies_reduced() {
        let mut value = json!({"token": "abc", "nested": [{"access_token": "x"}], "id": "1"});
        redact(&mut value);
        assert_eq!(value["token"], REDACTED);
        assert_eq!(value["nested"][0]["access_token"], REDACTED);
        let big = json!({"id": "1", "content": "x".repeat(BODY_LIMIT + 1), "n": 3});
        let out = bounded(&big);
        assert_eq!(out["id"], "1");
        assert_eq!(out["n"], 3);
        assert!(out.get("content").is_none());
        assert_eq!(out["_sizes"]["content"], BODY_LIMIT + 1);
        assert!(out["_truncated"].as_u64().unwrap() > BODY_LIMIT as u64);
    }

    #[tokio::test]
    async fn wait_returns_a_later_entry_or_times_out() {
        let log = Arc::new(EventLog::new(10));
        let writer = log.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            writer.note("LATE", json!({}));
        });
        let found = log
            .wait(0, &filter("LATE", json!({})), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(found["type"], "LATE");
        let missed = log
            .wait(0, &filter("NEVER", json!({})), Duration::from_millis(30))
            .await;
        assert_eq!(missed.unwrap_err(), 1);
    }
}
