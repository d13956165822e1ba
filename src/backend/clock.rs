//! The backend's notion of "now" and of randomness, both controllable for tests.
//!
//! Every expiry the backend decides (invites, polls, member timeouts, interaction tokens,
//! slowmode) reads [`now_ms`] (re-exported as `snowflake::now_ms`). By default it is the system
//! clock; the test-control API (`serve --control`) can move it (`advance`, `set`) and
//! `serve --seed N` freezes it at [`SEEDED_START_MS`] so that only the control API moves it.
//! Ids, session ids and issued tokens draw from [`fill_random`]: the OS generator, or with a
//! seed a deterministic ChaCha stream. Protocol timing (gateway heartbeats, resume windows,
//! rate-limit windows) stays on the real monotonic clock: bots sleep in real time.
//!
//! The state is process-wide (one `serve` per process).
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// Where a seeded run's frozen clock starts: 2026-01-01T00:00:00Z.
pub(crate) const SEEDED_START_MS: u64 = 1_767_225_600_000;

/// Offset added to the system clock, in ms (may be negative).
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);
/// When frozen, the time the clock shows.
static FROZEN_AT_MS: AtomicU64 = AtomicU64::new(0);
static FROZEN: AtomicBool = AtomicBool::new(false);
/// The seeded generator, when `serve --seed` asked for one.
static SEEDED: Mutex<Option<StdRng>> = Mutex::new(None);

/// The system clock in ms since the Unix epoch.
fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, as the backend sees them.
pub(crate) fn now_ms() -> u64 {
    if FROZEN.load(Ordering::Acquire) {
        return FROZEN_AT_MS.load(Ordering::Acquire);
    }
    let offset = OFFSET_MS.load(Ordering::Relaxed);
    system_ms().saturating_add_signed(offset)
}

/// What the clock is doing (for `GET /_mitm/clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ClockState {
    /// The backend's now, ms since the Unix epoch.
    pub now_ms: u64,
    /// Whether only the control API moves it.
    pub frozen: bool,
    /// Difference from the system clock (when not frozen).
    pub offset_ms: i64,
}

/// The clock's current state.
pub(crate) fn state() -> ClockState {
    ClockState {
        now_ms: now_ms(),
        frozen: FROZEN.load(Ordering::Acquire),
        offset_ms: OFFSET_MS.load(Ordering::Relaxed),
    }
}

/// Moves the clock forward by `ms` (frozen or not).
pub(crate) fn advance(ms: u64) {
    if FROZEN.load(Ordering::Acquire) {
        let _ = FROZEN_AT_MS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |at| {
            Some(at.saturating_add(ms))
        });
    } else {
        let step = i64::try_from(ms).unwrap_or(i64::MAX);
        let _ = OFFSET_MS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |offset| {
            Some(offset.saturating_add(step))
        });
    }
}

/// Sets the clock to `unix_ms` (frozen: stays there; running: keeps running from there).
pub(crate) fn set(unix_ms: u64) {
    if FROZEN.load(Ordering::Acquire) {
        FROZEN_AT_MS.store(unix_ms, Ordering::Release);
    } else {
        let offset = i128::from(unix_ms) - i128::from(system_ms());
        let offset = i64::try_from(offset).unwrap_or(0);
        OFFSET_MS.store(offset, Ordering::Release);
    }
}

/// Freezes the clock where it is now, or lets it run again from where it shows.
pub(crate) fn freeze(frozen: bool) {
    if frozen == FROZEN.load(Ordering::Acquire) {
        return;
    }
    let at = now_ms();
    if frozen {
        FROZEN_AT_MS.store(at, Ordering::Release);
        FROZEN.store(true, Ordering::Release);
    } else {
        FROZEN.store(false, Ordering::Release);
        set(at);
    }
}

/// Deterministic mode: the clock frozen at [`SEEDED_START_MS`] and randomness from `seed`.
pub(crate) fn seed(seed: u64) {
    FROZEN_AT_MS.store(SEEDED_START_MS, Ordering::Release);
    FROZEN.store(true, Ordering::Release);
    OFFSET_MS.store(0, Ordering::Release);
    *SEEDED.lock() = Some(StdRng::seed_from_u64(seed));
}

/// Whether `serve --seed` is in effect.
pub(crate) fn seeded() -> bool {
    SEEDED.lock().is_some()
}

/// Everything deterministic mode must put back on a reset (clock and random stream).
#[derive(Debug, Clone)]
pub struct Checkpoint {
    frozen_at_ms: u64,
    rng: Option<StdRng>,
}

/// The clock and random stream as they are now.
pub(crate) fn checkpoint() -> Checkpoint {
    Checkpoint {
        frozen_at_ms: FROZEN_AT_MS.load(Ordering::Acquire),
        rng: SEEDED.lock().clone(),
    }
}

/// Puts the clock (when frozen) and the seeded random stream back to `checkpoint`.
pub(crate) fn restore(checkpoint: &Checkpoint) {
    if checkpoint.rng.is_some() {
        *SEEDED.lock() = checkpoint.rng.clone();
        FROZEN_AT_MS.store(checkpoint.frozen_at_ms, Ordering::Release);
        FROZEN.store(true, Ordering::Release);
    }
}

/// Fills `bytes` with random bytes: the OS generator, or the seeded stream in deterministic mode.
pub(crate) fn fill_random(bytes: &mut [u8]) {
    let mut seeded = SEEDED.lock();
    match seeded.as_mut() {
        Some(rng) => rng.fill_bytes(bytes),
        None => {
            drop(seeded);
            rand::rng().fill_bytes(bytes);
        }
    }
}

/// A random index below `bound` (0 when `bound` is 0), from the same source as [`fill_random`].
pub(crate) fn random_below(bound: usize) -> usize {
    if bound == 0 {
        return 0;
    }
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    // Modulo bias is below 2^-50 for the alphabets used here.
    (u64::from_le_bytes(bytes) % bound as u64) as usize
}

/// `length` characters drawn from `alphabet` (invite codes, backup codes...).
pub(crate) fn random_string(alphabet: &[u8], length: usize) -> String {
    if alphabet.is_empty() {
        return String::new();
    }
    (0..length)
        .map(|_| char::from(alphabet[random_below(alphabet.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_strings_use_the_alphabet() {
        let text = random_string(b"ab", 64);
        assert_eq!(text.len(), 64);
        assert!(text.bytes().all(|b| b == b'a' || b == b'b'));
        assert_eq!(random_below(0), 0);
    }
}
