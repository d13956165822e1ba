//! Reconnect backoff (exponential, capped, full jitter) and a seeded jitter source.
use std::time::Duration;

/// Exponential backoff: the ceiling doubles per failed attempt up to `cap`; the delay is a
/// uniformly random share of the ceiling ("full jitter"), so many shards do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling after the first failure.
    pub base: Duration,
    /// Largest ceiling, however many failures came before.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Largest delay before retry number `attempt` (0 = first try: no wait):
    /// `min(cap, base * 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .map_or(self.cap, |ceiling| ceiling.min(self.cap))
    }

    /// The delay before retry `attempt`, given `unit` drawn uniformly from [0, 1).
    /// Always within `[0, ceiling(attempt)]`, hence within `[0, cap]`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.ceiling(attempt).mul_f64(unit)
    }
}

/// A small deterministic random source (splitmix64) for jitter; seed it from the OS in
/// production and with a constant in tests.
#[derive(Debug, Clone)]
pub struct JitterRng {
    state: u64,
}

impl JitterRng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        JitterRng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value uniformly drawn from [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        // 53 random bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A duration uniformly drawn from `[low, high]`.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        if high <= low {
            return low;
        }
        low + (high - low).mul_f64(self.next_unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ceiling_is_monotone_until_the_cap_and_delay_stays_within_it(
            base_ms in 1u64..10_000,
            cap_ms in 1u64..600_000,
            seed in any::<u64>(),
        ) {
            let backoff = Backoff {
                base: Duration::from_millis(base_ms),
                cap: Duration::from_millis(cap_ms),
            };
            let mut rng = JitterRng::new(seed);
            let mut previous = Duration::ZERO;
            let mut reached_cap = false;
            for attempt in 0..80u32 {
                let ceiling = backoff.ceiling(attempt);
                prop_assert!(ceiling >= previous, "ceiling fell at attempt {}", attempt);
                prop_assert!(ceiling <= backoff.cap);
                if reached_cap {
                    prop_assert_eq!(ceiling, backoff.cap);
                }
                // Genuinely exponential: each step doubles until the cap.
                if attempt >= 2 && !reached_cap && ceiling < backoff.cap {
                    prop_assert_eq!(ceiling, previous * 2);
                }
                reached_cap = ceiling == backoff.cap;
                let delay = backoff.delay(attempt, rng.next_unit());
                prop_assert!(delay <= ceiling && delay <= backoff.cap);
                previous = ceiling;
            }
            prop_assert!(reached_cap, "the cap is reached within 80 attempts");
        }

        #[test]
        fn between_stays_in_range(seed in any::<u64>(), low in 0u64..10_000, span in 0u64..10_000) {
            let mut rng = JitterRng::new(seed);
            let (low, high) = (Duration::from_millis(low), Duration::from_millis(low + span));
            let drawn = rng.between(low, high);
            prop_assert!(drawn >= low && drawn <= high);
        }
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let backoff = Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(10),
        };
        let ceilings: Vec<u64> = (0..8)
            .map(|n| backoff.ceiling(n).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, [0, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn delay_is_a_share_of_the_ceiling() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(2));
        assert_eq!(backoff.delay(3, f64::NAN), Duration::ZERO);
        assert_eq!(backoff.delay(3, 7.0), Duration::from_secs(4));
    }

    #[test]
    fn rng_units_stay_in_range_and_differ() {
        let mut rng = JitterRng::new(7);
        let draws: Vec<f64> = (0..1000).map(|_| rng.next_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.4..0.6).contains(&mean), "mean {mean}");
    }
}
