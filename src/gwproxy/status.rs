//! Shard status for operators: `/health`, `/shard-count` and Prometheus `/metrics`.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;

use super::clients::{Hub, HubStats};
use super::nats_stats::NatsStats;
use crate::gateway::client::ClientState;

/// What operators see about the shards run here.
#[derive(Debug)]
pub struct ShardBoard {
    total: u32,
    range: std::ops::Range<u32>,
    inner: Mutex<BoardInner>,
}

#[derive(Debug, Default)]
struct BoardInner {
    states: BTreeMap<u32, ClientState>,
    events: BTreeMap<u32, BTreeMap<String, u64>>,
    identifies: BTreeMap<u32, u64>,
    latencies: BTreeMap<u32, std::time::Duration>,
}

impl ShardBoard {
    /// A board for `shard_ids` of a bot with `total` shards, all disconnected.
    pub fn new(shard_ids: std::ops::Range<u32>, total: u32) -> Self {
        let range = shard_ids.clone();
        let states = shard_ids
            .map(|id| (id, ClientState::Disconnected))
            .collect();
        ShardBoard {
            total,
            range,
            inner: Mutex::new(BoardInner {
                states,
                events: BTreeMap::new(),
                identifies: BTreeMap::new(),
                latencies: BTreeMap::new(),
            }),
        }
    }

    /// Records a shard's new session state.
    pub fn set_state(&self, shard_id: u32, state: ClientState) {
        self.inner.lock().states.insert(shard_id, state);
    }

    /// Counts one dispatch of type `event` on `shard_id`.
    pub fn count_event(&self, shard_id: u32, event: &str) {
        let mut inner = self.inner.lock();
        let events = inner.events.entry(shard_id).or_default();
        // Looked up by `&str` first: no allocation for an event name seen before.
        match events.get_mut(event) {
            Some(count) => *count += 1,
            None => {
                events.insert(event.to_owned(), 1);
            }
        }
    }

    /// Records the latest heartbeat round trip of `shard_id`.
    pub fn set_latency(&self, shard_id: u32, latency: std::time::Duration) {
        self.inner.lock().latencies.insert(shard_id, latency);
    }

    /// Counts one IDENTIFY sent upstream by `shard_id`.
    pub fn count_identify(&self, shard_id: u32) {
        *self.inner.lock().identifies.entry(shard_id).or_default() += 1;
    }

    /// Whether every shard has a live session.
    pub fn all_ready(&self) -> bool {
        self.inner
            .lock()
            .states
            .values()
            .all(|state| *state == ClientState::Active)
    }

    /// The Prometheus text exposition of the board.
    pub fn metrics(&self) -> String {
        let inner = self.inner.lock();
        let mut out = String::new();
        out.push_str("# HELP gateway_shards Shards of the bot (IDENTIFY shard[1]).\n");
        out.push_str("# TYPE gateway_shards gauge\n");
        let _ = writeln!(out, "gateway_shards {}", self.total);
        out.push_str(
            "# HELP gateway_process_shard_range Shard ids this process runs (inclusive).\n",
        );
        out.push_str("# TYPE gateway_process_shard_range gauge\n");
        let _ = writeln!(
            out,
            "gateway_process_shard_range{{bound=\"first\"}} {}\ngateway_process_shard_range{{bound=\"last\"}} {}",
            self.range.start,
            self.range.end.saturating_sub(1)
        );
        out.push_str("# HELP gateway_shard_ready Whether the shard's upstream session is live.\n");
        out.push_str("# TYPE gateway_shard_ready gauge\n");
        for (id, state) in &inner.states {
            let ready = u8::from(*state == ClientState::Active);
            let _ = writeln!(
                out,
                "gateway_shard_ready{{shard=\"{id}\",state=\"{state:?}\"}} {ready}"
            );
        }
        out.push_str(
            "# HELP gateway_shard_identifies_total IDENTIFYs sent upstream (not RESUMEs).\n",
        );
        out.push_str("# TYPE gateway_shard_identifies_total counter\n");
        for id in inner.states.keys() {
            let count = inner.identifies.get(id).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "gateway_shard_identifies_total{{shard=\"{id}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP gateway_shard_latency_seconds Last heartbeat to ACK round trip upstream.\n",
        );
        out.push_str("# TYPE gateway_shard_latency_seconds gauge\n");
        for (id, latency) in &inner.latencies {
            let _ = writeln!(
                out,
                "gateway_shard_latency_seconds{{shard=\"{id}\"}} {:.6}",
                latency.as_secs_f64()
            );
        }
        out.push_str("# HELP gateway_events_total Dispatches received from upstream.\n");
        out.push_str("# TYPE gateway_events_total counter\n");
        let counts = inner
            .events
            .iter()
            .flat_map(|(id, events)| events.iter().map(move |(event, count)| (id, event, count)));
        for (id, event, count) in counts {
            let event = event.replace(['"', '\\', '\n'], "_");
            let _ = writeln!(
                out,
                "gateway_events_total{{shard=\"{id}\",event_type=\"{event}\"}} {count}"
            );
        }
        out
    }
}

/// The operator routes on the proxy's port; `nats` is present when NATS is configured.
pub fn router(board: Arc<ShardBoard>, hub: Arc<Hub>, nats: Option<Arc<NatsStats>>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/shard-count", get(shard_count))
        .route("/metrics", get(metrics))
        .with_state((board, hub, nats))
}

type Shared = (Arc<ShardBoard>, Arc<Hub>, Option<Arc<NatsStats>>);

async fn health(State((board, _, nats)): State<Shared>) -> impl IntoResponse {
    if !board.all_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "shards not ready")
    } else if nats.is_some_and(|nats| !nats.is_connected()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "NATS disconnected (clients are served; dispatches are buffered)",
        )
    } else {
        (StatusCode::OK, "OK")
    }
}

async fn shard_count(State((board, _, _)): State<Shared>) -> impl IntoResponse {
    board.total.to_string()
}

async fn metrics(State((board, hub, nats)): State<Shared>) -> impl IntoResponse {
    let mut text = board.metrics() + &hub_metrics(hub.stats());
    if let Some(nats) = nats {
        text.push_str(&nats.metrics());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// The Prometheus text for the client side.
pub fn hub_metrics(stats: HubStats) -> String {
    let mut out = String::new();
    for (name, help, value) in [
        (
            "gateway_clients_connected",
            "Client sessions with a live connection.",
            stats.connected,
        ),
        (
            "gateway_clients_detached",
            "Client sessions waiting for a RESUME.",
            stats.detached,
        ),
        (
            "gateway_replay_buffer_events",
            "Events held in client replay buffers.",
            stats.replay_events,
        ),
        (
            "gateway_cache_guilds",
            "Guilds in the shard caches.",
            stats.cached_guilds,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_show_shard_states_and_event_counts() {
        let board = ShardBoard::new(2..4, 4);
        assert!(!board.all_ready());
        board.set_state(2, ClientState::Active);
        board.count_event(2, "MESSAGE_CREATE");
        board.count_event(2, "MESSAGE_CREATE");
        let text = board.metrics();
        assert!(text.contains("gateway_shards 4\n"));
        assert!(text.contains("gateway_process_shard_range{bound=\"first\"} 2\n"));
        assert!(text.contains("gateway_process_shard_range{bound=\"last\"} 3\n"));
        assert!(text.contains("gateway_shard_ready{shard=\"2\",state=\"Active\"} 1\n"));
        assert!(text.contains("gateway_shard_ready{shard=\"3\",state=\"Disconnected\"} 0\n"));
        assert!(
            text.contains("gateway_events_total{shard=\"2\",event_type=\"MESSAGE_CREATE\"} 2\n")
        );
        board.set_latency(2, std::time::Duration::from_micros(1500));
        assert!(board
            .metrics()
            .contains("gateway_shard_latency_seconds{shard=\"2\"} 0.001500\n"));
        board.set_state(3, ClientState::Active);
        assert!(board.all_ready());
    }
}
