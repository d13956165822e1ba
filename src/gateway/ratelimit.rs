//! Gateway rate limits as pure bookkeeping over caller-supplied instants: the 120-per-60-s
//! payload limit (both sides) and the identify-concurrency buckets.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Payloads a connection may send per [`GATEWAY_RATE_PERIOD`].
pub const GATEWAY_RATE_LIMIT: u32 = 120;
/// The gateway's rate-limit period.
pub const GATEWAY_RATE_PERIOD: Duration = Duration::from_secs(60);
/// The period in which a `max_concurrency` bucket allows one IDENTIFY.
pub const IDENTIFY_PERIOD: Duration = Duration::from_secs(5);

/// How payloads are counted against the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Windows of one period back to back, the first starting at the first payload; the count
    /// resets when a window ends. Lenient: up to twice the limit can pass around a boundary.
    Fixed,
    /// A log of send times: no span of one period ever holds more than the limit. Strict.
    Sliding,
}

/// Counts payloads against "`limit` per `period`".
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limit: u32,
    period: Duration,
    kind: WindowKind,
    window_start: Option<Instant>,
    window_count: u32,
    log: VecDeque<Instant>,
}

impl RateLimiter {
    /// A limiter allowing `limit` payloads per `period`, counted as `kind` says.
    pub fn new(limit: u32, period: Duration, kind: WindowKind) -> Self {
        RateLimiter {
            limit,
            period,
            kind,
            window_start: None,
            window_count: 0,
            log: VecDeque::new(),
        }
    }

    /// The most payloads allowed per period.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Payloads that may still be sent at `now`.
    pub fn available(&mut self, now: Instant) -> u32 {
        self.expire(now);
        self.limit.saturating_sub(self.used())
    }

    /// Counts one payload if the limit allows it at `now`; returns whether it was allowed.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        self.expire(now);
        if self.used() >= self.limit {
            return false;
        }
        self.record(now);
        true
    }

    /// Counts one payload whether or not the limit allows it; returns whether it was within it.
    pub fn acquire_anyway(&mut self, now: Instant) -> bool {
        self.expire(now);
        let within = self.used() < self.limit;
        self.record(now);
        within
    }

    /// When the next payload may be sent: `now` if one may be sent already.
    pub fn next_permit_at(&mut self, now: Instant) -> Instant {
        self.expire(now);
        if self.used() < self.limit {
            return now;
        }
        match self.kind {
            WindowKind::Fixed => self.window_start.map_or(now, |start| start + self.period),
            WindowKind::Sliding => {
                // Below the limit again once the oldest `len - limit + 1` entries expired.
                let index = self.log.len().saturating_sub(self.limit as usize);
                self.log.get(index).map_or(now, |sent| *sent + self.period)
            }
        }
    }

    fn used(&self) -> u32 {
        match self.kind {
            WindowKind::Fixed => self.window_count,
            WindowKind::Sliding => u32::try_from(self.log.len()).unwrap_or(u32::MAX),
        }
    }

    fn record(&mut self, now: Instant) {
        match self.kind {
            WindowKind::Fixed => {
                if self.window_start.is_none() {
                    self.window_start = Some(now);
                }
                self.window_count = self.window_count.saturating_add(1);
            }
            WindowKind::Sliding => self.log.push_back(now),
        }
    }

    fn expire(&mut self, now: Instant) {
        match self.kind {
            WindowKind::Fixed => {
                if let Some(start) = self.window_start {
                    if now.saturating_duration_since(start) >= self.period {
                        self.window_start = None;
                        self.window_count = 0;
                    }
                }
            }
            WindowKind::Sliding => {
                while let Some(sent) = self.log.front() {
                    if now.saturating_duration_since(*sent) >= self.period {
                        self.log.pop_front();
                    } else {
                        break;
                    }
                }
            }
        }
    }
}

/// Identify concurrency as Discord enforces it: shards fall into buckets by
/// `shard_id % max_concurrency`, and each bucket may IDENTIFY once per 5 seconds.
/// One instance is shared by all shards of one bot (one application token).
#[derive(Debug, Clone)]
pub struct IdentifyLimiter {
    max_concurrency: u32,
    period: Duration,
    last_identify: HashMap<u32, Instant>,
}

impl IdentifyLimiter {
    /// A limiter for an application whose `max_concurrency` (from GET /gateway/bot) is given;
    /// 0 is treated as 1.
    pub fn new(max_concurrency: u32) -> Self {
        IdentifyLimiter {
            max_concurrency: max_concurrency.max(1),
            period: IDENTIFY_PERIOD,
            last_identify: HashMap::new(),
        }
    }

    /// The bucket (rate-limit key) of `shard_id`.
    pub fn bucket_key(&self, shard_id: u32) -> u32 {
        shard_id % self.max_concurrency
    }

    /// Takes the bucket of `shard_id` if it is free at `now`; otherwise says when it frees up.
    pub fn try_acquire(&mut self, shard_id: u32, now: Instant) -> Result<(), Instant> {
        let key = self.bucket_key(shard_id);
        if let Some(last) = self.last_identify.get(&key) {
            let free_at = *last + self.period;
            if now < free_at {
                return Err(free_at);
            }
        }
        self.last_identify.insert(key, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_period_ever_holds_more_than_the_limit_in_a_sliding_window(
            limit in 1u32..10,
            gaps in proptest::collection::vec(0u64..30_000, 1..200),
        ) {
            let t0 = Instant::now();
            let period = Duration::from_secs(60);
            let mut limiter = RateLimiter::new(limit, period, WindowKind::Sliding);
            let mut accepted: Vec<Instant> = Vec::new();
            let mut now = t0;
            for gap in gaps {
                now += Duration::from_millis(gap);
                let permit_at = limiter.next_permit_at(now);
                let allowed = limiter.try_acquire(now);
                prop_assert_eq!(allowed, permit_at == now);
                if allowed {
                    accepted.push(now);
                    let in_period = accepted.iter().filter(|t| now.duration_since(**t) < period).count();
                    prop_assert!(in_period <= limit as usize);
                } else {
                    // Waiting until the promised instant always works.
                    let mut probe = limiter.clone();
                    prop_assert!(probe.try_acquire(permit_at));
                }
            }
        }

        #[test]
        fn a_fixed_window_allows_the_limit_per_window(
            limit in 1u32..10,
            gaps in proptest::collection::vec(0u64..30_000, 1..200),
        ) {
            let t0 = Instant::now();
            let period = Duration::from_secs(60);
            let mut limiter = RateLimiter::new(limit, period, WindowKind::Fixed);
            let mut window: Option<(Instant, u32)> = None;
            let mut now = t0;
            for gap in gaps {
                now += Duration::from_millis(gap);
                if window.is_some_and(|(start, _)| now.duration_since(start) >= period) {
                    window = None;
                }
                let expected = window.is_none_or(|(_, count)| count < limit);
                prop_assert_eq!(limiter.try_acquire(now), expected);
                if expected {
                    let (start, count) = window.unwrap_or((now, 0));
                    window = Some((start, count + 1));
                }
            }
        }
    }

    #[test]
    fn fixed_window_resets_after_the_period() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(3, Duration::from_secs(60), WindowKind::Fixed);
        assert!(limiter.try_acquire(t0));
        assert!(limiter.try_acquire(t0 + Duration::from_secs(10)));
        assert!(limiter.try_acquire(t0 + Duration::from_secs(59)));
        assert!(!limiter.try_acquire(t0 + Duration::from_secs(59)));
        assert_eq!(
            limiter.next_permit_at(t0 + Duration::from_secs(59)),
            t0 + Duration::from_secs(60)
        );
        assert!(limiter.try_acquire(t0 + Duration::from_secs(60)));
        assert_eq!(limiter.available(t0 + Duration::from_secs(61)), 2);
    }

    #[test]
    fn sliding_window_frees_permits_one_by_one() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(3, Duration::from_secs(60), WindowKind::Sliding);
        for s in [0, 10, 20] {
            assert!(limiter.try_acquire(t0 + Duration::from_secs(s)));
        }
        assert!(!limiter.try_acquire(t0 + Duration::from_secs(59)));
        assert_eq!(
            limiter.next_permit_at(t0 + Duration::from_secs(59)),
            t0 + Duration::from_secs(60)
        );
        assert!(limiter.try_acquire(t0 + Duration::from_secs(60)));
        assert!(!limiter.try_acquire(t0 + Duration::from_secs(65)));
        assert_eq!(
            limiter.next_permit_at(t0 + Duration::from_secs(65)),
            t0 + Duration::from_secs(70)
        );
    }

    #[test]
    fn acquire_anyway_reports_overflow() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(1, Duration::from_secs(60), WindowKind::Sliding);
        assert!(limiter.acquire_anyway(t0));
        assert!(!limiter.acquire_anyway(t0));
        assert_eq!(limiter.available(t0), 0);
    }

    #[test]
    fn identify_buckets_are_shard_id_mod_max_concurrency() {
        let t0 = Instant::now();
        let mut limiter = IdentifyLimiter::new(16);
        assert_eq!(limiter.bucket_key(17), 1);
        for shard in 0..16 {
            assert_eq!(limiter.try_acquire(shard, t0), Ok(()));
        }
        assert_eq!(limiter.try_acquire(16, t0), Err(t0 + IDENTIFY_PERIOD));
        assert_eq!(limiter.try_acquire(16, t0 + IDENTIFY_PERIOD), Ok(()));
        assert_eq!(IdentifyLimiter::new(0).bucket_key(5), 0);
    }
}
