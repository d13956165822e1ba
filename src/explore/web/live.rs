//! Live updates: a watcher notices new writes to the store and sends summaries of new
//! exchanges and new or changed gateway sessions to every subscriber (the page's event stream).
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::store::route::route_template;
use crate::store::{Exchange, GatewaySession, Store};

/// How often the watcher looks at the store's write counter (an atomic load when this
/// process holds the database).
const POLL_LOCAL: Duration = Duration::from_millis(20);
/// The same through another process's live API (one loopback request per poll).
const POLL_REMOTE: Duration = Duration::from_millis(100);
/// Events a slow subscriber may fall behind by before it misses some (it is told to reload).
const BACKLOG: usize = 1024;

/// One row of the exchange and session lists.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ItemSummary {
    /// A REST exchange.
    Rest {
        /// Exchange id.
        id: u64,
        /// Start, µs since the epoch.
        started_at_us: i64,
        /// Method.
        method: String,
        /// Host.
        host: String,
        /// Path and query.
        path: String,
        /// Route template.
        route: String,
        /// Response status.
        status: Option<u16>,
        /// What answered (upstream, backend, recordings…).
        source: String,
        /// Duration in ms.
        duration_ms: f64,
        /// Why it failed, if it did.
        error: Option<String>,
    },
    /// A gateway session.
    Gateway {
        /// Session id.
        id: u64,
        /// Start, µs since the epoch.
        started_at_us: i64,
        /// End, when it ended.
        ended_at_us: Option<i64>,
        /// The WebSocket URL.
        url: String,
        /// `json` or `etf`.
        encoding: Option<String>,
        /// Compression.
        compress: Option<String>,
        /// Upgrade status.
        status: Option<u16>,
        /// Frames recorded so far, both directions.
        frames: u64,
        /// Why it failed, if it did.
        error: Option<String>,
    },
}

impl ItemSummary {
    /// The row of an exchange.
    pub fn of_exchange(e: &Exchange) -> ItemSummary {
        ItemSummary::Rest {
            id: e.id,
            started_at_us: e.started_at_us,
            method: e.method.clone(),
            host: e.host.clone(),
            path: e.path_and_query.clone(),
            route: route_template(e.path()),
            status: e.status(),
            source: e.source.clone(),
            duration_ms: e.duration_us as f64 / 1000.0,
            error: e.error.clone(),
        }
    }

    /// The row of a gateway session.
    pub fn of_session(s: &GatewaySession) -> ItemSummary {
        ItemSummary::Gateway {
            id: s.id,
            started_at_us: s.started_at_us,
            ended_at_us: s.ended_at_us,
            url: s.url.clone(),
            encoding: s.encoding.clone(),
            compress: s.compress.clone(),
            status: s.status,
            frames: s.frames_sent + s.frames_received,
            error: s.error.clone(),
        }
    }
}

/// One event of the stream: its SSE name and JSON data.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    /// `exchange`, `session` or `change`.
    pub name: &'static str,
    /// The JSON data.
    pub data: Arc<str>,
}

/// Fans live events out to subscribers.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<LiveEvent>,
}

impl Hub {
    /// Starts the watcher of `store` (inside a tokio runtime; it stops when every clone of the
    /// hub is gone).
    pub fn start(store: Arc<Store>) -> Hub {
        let (tx, _) = broadcast::channel(BACKLOG);
        let hub = Hub { tx };
        let weak = hub.tx.downgrade();
        tokio::spawn(watch(store, weak));
        hub
    }

    /// A new subscriber.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }
}

/// What the watcher has already announced.
#[derive(Default)]
struct Seen {
    writes: u64,
    next_exchange: u64,
    next_session: u64,
    open_sessions: BTreeSet<u64>,
    /// The last announced state of each open session, to announce only changes.
    open_rows: std::collections::BTreeMap<u64, ItemSummary>,
}

async fn watch(store: Arc<Store>, tx: broadcast::WeakSender<LiveEvent>) {
    let poll = if store.is_remote() {
        POLL_REMOTE
    } else {
        POLL_LOCAL
    };
    let start = Arc::clone(&store);
    let Ok(mut seen) = tokio::task::spawn_blocking(move || initial(&start)).await else {
        return;
    };
    loop {
        tokio::time::sleep(poll).await;
        let Some(tx) = tx.upgrade() else { return };
        let store = Arc::clone(&store);
        let result = tokio::task::spawn_blocking(move || {
            let events = step(&store, &mut seen);
            (seen, events)
        })
        .await;
        let Ok((next_seen, events)) = result else {
            return;
        };
        seen = next_seen;
        for event in events {
            let _ = tx.send(event);
        }
    }
}

fn initial(store: &Store) -> Seen {
    let mut seen = Seen {
        writes: store.write_count(),
        next_exchange: store.next_exchange_id(),
        ..Seen::default()
    };
    for session in store.sessions().flatten() {
        seen.next_session = session.id + 1;
        if session.ended_at_us.is_none() {
            seen.open_sessions.insert(session.id);
            seen.open_rows
                .insert(session.id, ItemSummary::of_session(&session));
        }
    }
    seen
}

/// One look at the store: the events for what changed since `seen`.
fn step(store: &Store, seen: &mut Seen) -> Vec<LiveEvent> {
    let writes = store.write_count();
    if writes == seen.writes {
        return Vec::new();
    }
    seen.writes = writes;
    let mut events = Vec::new();
    let mut push = |name: &'static str, row: &ItemSummary| {
        if let Ok(data) = serde_json::to_string(row) {
            events.push(LiveEvent {
                name,
                data: data.into(),
            });
        }
    };
    for exchange in store.exchanges_from(seen.next_exchange).flatten() {
        seen.next_exchange = exchange.id + 1;
        push("exchange", &ItemSummary::of_exchange(&exchange));
    }
    let mut check: Vec<u64> = seen.open_sessions.iter().copied().collect();
    for session in store.sessions_from(seen.next_session).flatten() {
        seen.next_session = session.id + 1;
        check.push(session.id);
    }
    for id in check {
        let Ok(Some(session)) = store.session(id) else {
            continue;
        };
        let row = ItemSummary::of_session(&session);
        if seen.open_rows.get(&id) != Some(&row) {
            push("session", &row);
        }
        if session.ended_at_us.is_none() {
            seen.open_sessions.insert(id);
            seen.open_rows.insert(id, row);
        } else {
            seen.open_sessions.remove(&id);
            seen.open_rows.remove(&id);
        }
    }
    events.push(LiveEvent {
        name: "change",
        data: format!("{{\"writes\":{writes}}}").into(),
    });
    events
}
