//! IDENTIFY pacing shared by every process of a bot. Each `max_concurrency` bucket
//! (`shard_id % max_concurrency`) is one key in a KV bucket whose entries expire after
//! [`SLOT_TTL`]; a process may IDENTIFY a shard only after creating its bucket's key, and
//! creating fails while another process's entry is still there. The `session_start_limit`
//! budget is one more key (in the checkpoint bucket) that every IDENTIFY decrements with a
//! compare-and-set. Without NATS the in-process [`IdentifyLimiter`] alone paces, as before.
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, CreateErrorKind};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::plan::SessionStartLimit;

use crate::gateway::ratelimit::IdentifyLimiter;

use super::nats::IDENTIFY_SLOT_TTL as SLOT_TTL;
/// The budget's key in the checkpoint bucket.
pub const BUDGET_KEY: &str = "session-start-budget";
/// Discord's session start period after a reset.
pub const BUDGET_PERIOD_MS: u64 = 86_400_000;
/// Pause between attempts while the KV bucket cannot be reached.
pub const UNREACHABLE_RETRY: Duration = Duration::from_secs(1);

/// Decides when a shard may IDENTIFY upstream.
pub struct IdentifyGate {
    local: Mutex<IdentifyLimiter>,
    max_concurrency: u32,
    shared: Option<SharedSlots>,
}

/// The KV side of the gate.
struct SharedSlots {
    store: kv::Store,
    owner: String,
    budget: kv::Store,
    limit: SessionStartLimit,
}

/// The bot's IDENTIFYs left until `reset_at_ms` (Unix milliseconds), shared by all processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// IDENTIFYs left.
    pub remaining: u32,
    /// When Discord resets the count to `total`.
    pub reset_at_ms: u64,
}

impl Budget {
    /// The budget at `now_ms` given the stored one (or none) and GET /gateway/bot's `limit`.
    pub fn current(stored: Option<Budget>, limit: SessionStartLimit, now_ms: u64) -> Budget {
        match stored {
            Some(budget) if now_ms < budget.reset_at_ms => budget,
            // Reset since: a full period's budget.
            Some(_) => Budget {
                remaining: limit.total,
                reset_at_ms: now_ms + BUDGET_PERIOD_MS,
            },
            None => Budget {
                remaining: limit.remaining,
                reset_at_ms: now_ms + limit.reset_after,
            },
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl IdentifyGate {
    /// Pacing shared through `nats`'s identify bucket when there is NATS, else in-process only.
    pub fn new(
        limit: SessionStartLimit,
        nats: Option<&super::nats::Nats>,
        process: &str,
    ) -> Arc<IdentifyGate> {
        let max_concurrency = limit.max_concurrency;
        match nats {
            Some(nats) => Arc::new(IdentifyGate {
                local: Mutex::new(IdentifyLimiter::new(max_concurrency)),
                max_concurrency: max_concurrency.max(1),
                shared: Some(SharedSlots {
                    store: nats.identify_kv.clone(),
                    owner: process.to_owned(),
                    budget: nats.shards_kv.clone(),
                    limit,
                }),
            }),
            None => IdentifyGate::local(max_concurrency),
        }
    }

    /// Pacing inside this process only.
    pub fn local(max_concurrency: u32) -> Arc<IdentifyGate> {
        Arc::new(IdentifyGate {
            local: Mutex::new(IdentifyLimiter::new(max_concurrency)),
            max_concurrency: max_concurrency.max(1),
            shared: None,
        })
    }

    /// The KV key of `shard_id`'s bucket.
    pub fn slot_key(&self, shard_id: u32) -> String {
        format!("bucket-{}", shard_id % self.max_concurrency)
    }

    /// Waits until `shard_id` may IDENTIFY: its bucket is free here and, with NATS, in every
    /// other process. While the KV bucket cannot be reached the shard keeps waiting (pacing is
    /// never given up for liveness).
    pub async fn wait_turn(&self, shard_id: u32) {
        loop {
            let next = self
                .local
                .lock()
                .await
                .try_acquire(shard_id, Instant::now());
            match next {
                Ok(()) => break,
                Err(at) => tokio::time::sleep_until(at.into()).await,
            }
        }
        let Some(shared) = &self.shared else {
            return;
        };
        let key = self.slot_key(shard_id);
        let value = format!("{} shard {shard_id}", shared.owner);
        loop {
            match shared
                .store
                .create(key.as_str(), value.clone().into())
                .await
            {
                Ok(_) => break,
                Err(err) if err.kind() == CreateErrorKind::AlreadyExists => {
                    let wait = self.slot_free_in(shared, &key).await;
                    tracing::debug!(shard_id, ?wait, "identify bucket taken by another process");
                    tokio::time::sleep(wait).await;
                }
                Err(err) => {
                    tracing::warn!(shard_id, %err, "identify bucket unreachable; waiting for NATS");
                    tokio::time::sleep(UNREACHABLE_RETRY).await;
                }
            }
        }
        self.take_session_start(shared).await;
    }

    /// Takes one IDENTIFY from the shared `session_start_limit` budget, waiting for the reset
    /// when it is spent.
    async fn take_session_start(&self, shared: &SharedSlots) {
        loop {
            let now_ms = unix_ms();
            let entry = match shared.budget.entry(BUDGET_KEY).await {
                Ok(entry) => entry.filter(|entry| entry.operation == kv::Operation::Put),
                Err(err) => {
                    tracing::warn!(%err, "session start budget unreachable; waiting for NATS");
                    tokio::time::sleep(UNREACHABLE_RETRY).await;
                    continue;
                }
            };
            let stored = entry
                .as_ref()
                .and_then(|entry| serde_json::from_slice::<Budget>(&entry.value).ok());
            let budget = Budget::current(stored, shared.limit, now_ms);
            if budget.remaining == 0 {
                let wait = Duration::from_millis(budget.reset_at_ms.saturating_sub(now_ms));
                tracing::error!(
                    ?wait,
                    "session_start_limit spent by the bot's processes; waiting for the reset"
                );
                tokio::time::sleep(wait.clamp(UNREACHABLE_RETRY, Duration::from_secs(60))).await;
                continue;
            }
            let next = Budget {
                remaining: budget.remaining - 1,
                ..budget
            };
            let Ok(value) = serde_json::to_vec(&next) else {
                return;
            };
            let written = match &entry {
                Some(entry) => shared
                    .budget
                    .update(BUDGET_KEY, value.into(), entry.revision)
                    .await
                    .is_ok(),
                None => shared.budget.create(BUDGET_KEY, value.into()).await.is_ok(),
            };
            // Another process wrote in between: read again.
            if written {
                return;
            }
        }
    }

    /// How long until the slot at `key` expires (at least 20 ms, at most [`SLOT_TTL`]).
    async fn slot_free_in(&self, shared: &SharedSlots, key: &str) -> Duration {
        let floor = Duration::from_millis(20);
        match shared.store.entry(key).await {
            Ok(Some(entry)) => {
                let created_ns = entry.created.unix_timestamp_nanos();
                let now_ns = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i128)
                    .unwrap_or(created_ns);
                let age = Duration::from_nanos(u64::try_from(now_ns - created_ns).unwrap_or(0));
                SLOT_TTL.saturating_sub(age).clamp(floor, SLOT_TTL)
            }
            _ => floor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_starts_from_discords_answer_and_refills_after_the_reset() {
        let limit = SessionStartLimit {
            total: 1000,
            remaining: 7,
            reset_after: 500,
            max_concurrency: 1,
        };
        let fresh = Budget::current(None, limit, 100);
        assert_eq!(
            fresh,
            Budget {
                remaining: 7,
                reset_at_ms: 600
            }
        );
        let spent = Budget {
            remaining: 0,
            ..fresh
        };
        assert_eq!(Budget::current(Some(spent), limit, 599), spent);
        assert_eq!(
            Budget::current(Some(spent), limit, 600),
            Budget {
                remaining: 1000,
                reset_at_ms: 600 + BUDGET_PERIOD_MS
            }
        );
    }
}
