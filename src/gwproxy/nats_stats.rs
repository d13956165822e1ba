//! Counters of the NATS side for `/metrics` and `/health`.
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the publish latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
];

/// What the NATS side did, as atomics (read by `/metrics`, written by the publisher).
#[derive(Debug, Default)]
pub struct NatsStats {
    connected: AtomicBool,
    published: AtomicU64,
    acked: AtomicU64,
    duplicates: AtomicU64,
    redelivered: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    buffered: AtomicU64,
    commands: AtomicU64,
    cache_queries: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatsCounts {
    /// Publishes sent (first tries).
    pub published: u64,
    /// Publishes JetStream acked (duplicates included).
    pub acked: u64,
    /// Acks that said the message id was already stored (a replay after RESUME or a retry).
    pub duplicates: u64,
    /// Publishes sent again after a failed or missing ack.
    pub redelivered: u64,
    /// Dispatches dropped because the buffer was full while NATS was down.
    pub dropped: u64,
    /// Publishes whose ack failed (each is retried).
    pub failed: u64,
    /// Dispatches waiting for NATS (queued, in flight or to retry).
    pub buffered: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl NatsStats {
    /// Records whether the client is connected.
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    /// Whether the client is connected.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// One dispatch entered the buffer.
    pub fn count_buffered(&self) {
        add(&self.buffered, 1);
    }

    /// One first publish was sent.
    pub fn count_published(&self) {
        add(&self.published, 1);
    }

    /// One retry was sent.
    pub fn count_redelivered(&self) {
        add(&self.redelivered, 1);
    }

    /// One ack arrived after `latency` since the dispatch reached the relay.
    pub fn count_acked(&self, duplicate: bool, latency: Duration) {
        add(&self.acked, 1);
        if duplicate {
            add(&self.duplicates, 1);
        }
        self.buffered.fetch_sub(1, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                add(bucket, 1);
            }
        }
        add(&self.latency_count, 1);
        add(
            &self.latency_sum_micros,
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        );
    }

    /// One publish failed and will be retried.
    pub fn count_failed(&self) {
        add(&self.failed, 1);
    }

    /// One dispatch was dropped (buffer full while NATS was down, or shutting down).
    pub fn count_dropped(&self, was_buffered: bool) {
        add(&self.dropped, 1);
        if was_buffered {
            self.buffered.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// One worker command was accepted.
    pub fn count_command(&self) {
        add(&self.commands, 1);
    }

    /// One cache query was answered.
    pub fn count_cache_query(&self) {
        add(&self.cache_queries, 1);
    }

    /// The counters now.
    pub fn counts(&self) -> NatsCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        NatsCounts {
            published: load(&self.published),
            acked: load(&self.acked),
            duplicates: load(&self.duplicates),
            redelivered: load(&self.redelivered),
            dropped: load(&self.dropped),
            failed: load(&self.failed),
            buffered: load(&self.buffered),
        }
    }

    /// The Prometheus text of the NATS side.
    pub fn metrics(&self) -> String {
        let counts = self.counts();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::new();
        for (name, kind, help, value) in [
            (
                "gateway_nats_connected",
                "gauge",
                "Whether the NATS client is connected.",
                u64::from(self.is_connected()),
            ),
            (
                "gateway_nats_published_total",
                "counter",
                "Dispatches published to JetStream (first tries).",
                counts.published,
            ),
            (
                "gateway_nats_acked_total",
                "counter",
                "Publishes JetStream acknowledged.",
                counts.acked,
            ),
            (
                "gateway_nats_duplicates_total",
                "counter",
                "Acks for a message id already stored (replays, retries).",
                counts.duplicates,
            ),
            (
                "gateway_nats_redelivered_total",
                "counter",
                "Publishes sent again after a failed ack.",
                counts.redelivered,
            ),
            (
                "gateway_nats_failed_total",
                "counter",
                "Publishes whose ack failed.",
                counts.failed,
            ),
            (
                "gateway_nats_dropped_total",
                "counter",
                "Dispatches dropped: buffer full while NATS was down.",
                counts.dropped,
            ),
            (
                "gateway_nats_buffered",
                "gauge",
                "Dispatches waiting for NATS (queued, in flight, to retry).",
                counts.buffered,
            ),
            (
                "gateway_nats_commands_total",
                "counter",
                "Worker commands accepted.",
                load(&self.commands),
            ),
            (
                "gateway_nats_cache_queries_total",
                "counter",
                "Cache queries answered.",
                load(&self.cache_queries),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let name = "gateway_nats_publish_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Dispatch reaching the relay to its JetStream ack.\n# TYPE {name} histogram"
        );
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", load(bucket));
        }
        let count = load(&self.latency_count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = load(&self.latency_sum_micros) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum:.6}\n{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_count_acks_drops_and_latency_buckets() {
        let stats = NatsStats::default();
        stats.set_connected(true);
        stats.count_buffered();
        stats.count_published();
        stats.count_acked(false, Duration::from_micros(300));
        stats.count_buffered();
        stats.count_dropped(true);
        let text = stats.metrics();
        assert!(text.contains("gateway_nats_connected 1\n"), "{text}");
        assert!(text.contains("gateway_nats_acked_total 1\n"));
        assert!(text.contains("gateway_nats_dropped_total 1\n"));
        assert!(text.contains("gateway_nats_buffered 0\n"));
        assert!(text.contains("gateway_nats_publish_latency_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("gateway_nats_publish_latency_seconds_bucket{le=\"0.00025\"} 0\n"));
        assert!(text.contains("gateway_nats_publish_latency_seconds_count 1\n"));
    }
}
