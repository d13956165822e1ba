//! Discord's IDENTIFY pacing for bots, when `serve` is asked to enforce it: shards fall into
//! buckets by `shard_id % max_concurrency` and each bucket of one bot may IDENTIFY once per
//! 5 s; a faster IDENTIFY is answered with op 9 (not resumable), as Discord does.
use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

use crate::gateway::ratelimit::IdentifyLimiter;

/// `max_concurrency` `serve` announces in GET /gateway/bot.
pub(crate) const MAX_CONCURRENCY: u32 = 1;

/// The identify buckets of every bot.
#[derive(Debug, Default)]
pub(crate) struct IdentifyPacing {
    bots: Mutex<HashMap<u64, IdentifyLimiter>>,
}

impl IdentifyPacing {
    /// Whether bot `user_id` may IDENTIFY shard `shard_id` at `now` (taking its bucket if so).
    pub(crate) fn admit(&self, user_id: u64, shard_id: u32, now: Instant) -> bool {
        let admitted = self
            .bots
            .lock()
            .entry(user_id)
            .or_insert_with(|| IdentifyLimiter::new(MAX_CONCURRENCY))
            .try_acquire(shard_id, now)
            .is_ok();
        if admitted {
            tracing::info!(user_id, shard_id, "bot IDENTIFY admitted");
        } else {
            tracing::warn!(
                user_id,
                shard_id,
                "bot IDENTIFY too fast for its bucket: op 9"
            );
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_identify_per_bucket_per_five_seconds_per_bot() {
        let pacing = IdentifyPacing::default();
        let t0 = Instant::now();
        assert!(pacing.admit(1, 0, t0));
        assert!(!pacing.admit(1, 1, t0 + Duration::from_secs(4)));
        assert!(pacing.admit(2, 0, t0));
        assert!(pacing.admit(1, 1, t0 + Duration::from_secs(5)));
    }
}
