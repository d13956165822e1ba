//! IDENTIFY pacing shared by every process of a bot. Each `max_concurrency` bucket
//! (`shard_id % max_concurrency`) is one key in a KV bucket whose entries expire after
//! [`SLOT_TTL`]; a process may IDENTIFY a shard only after creating its bucket's key, and
//! creating fails while another process's entry is still there. Without NATS the in-process
//! [`IdentifyLimiter`] alone paces, as before.
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, CreateErrorKind};
use tokio::sync::Mutex;

use crate::gateway::ratelimit::IdentifyLimiter;

use super::nats::IDENTIFY_SLOT_TTL as SLOT_TTL;
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
}

impl IdentifyGate {
    /// Pacing shared through `nats`'s identify bucket when there is NATS, else in-process only.
    pub fn new(
        max_concurrency: u32,
        nats: Option<&super::nats::Nats>,
        process: &str,
    ) -> Arc<IdentifyGate> {
        match nats {
            Some(nats) => IdentifyGate::shared(
                max_concurrency,
                nats.identify_kv.clone(),
                process.to_owned(),
            ),
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

    /// Pacing shared through KV bucket `store` (created with a `max_age` of [`SLOT_TTL`]);
    /// `owner` names this process in the slot's value.
    pub fn shared(max_concurrency: u32, store: kv::Store, owner: String) -> Arc<IdentifyGate> {
        Arc::new(IdentifyGate {
            local: Mutex::new(IdentifyLimiter::new(max_concurrency)),
            max_concurrency: max_concurrency.max(1),
            shared: Some(SharedSlots { store, owner }),
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
                Ok(_) => return,
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
