//! The test-control hub (`serve --control`): the control token, the event log, and the world a
//! reset goes back to. Held by [`super::state::SharedState::control`] (absent without
//! `--control`); the routes are `routes/control.rs`, the operations `services/control.rs`.
use std::sync::Arc;

use parking_lot::Mutex;

use super::clock::Checkpoint;
use super::eventlog::EventLog;
use super::store::Snapshot;

/// Settings of the control API.
#[derive(Clone)]
pub struct ControlSettings {
    /// What `Authorization: Control <token>` must carry.
    pub token: String,
    /// Entries the event log keeps (`--control-log-size`).
    pub log_capacity: usize,
}

impl std::fmt::Debug for ControlSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlSettings")
            .field("token", &"[redacted]")
            .field("log_capacity", &self.log_capacity)
            .finish()
    }
}

/// The world a reset restores: the store's content, and in deterministic mode the clock and
/// random stream as they were when it was taken.
pub struct Baseline {
    pub snapshot: Snapshot,
    pub clock: Checkpoint,
}

/// The control API's shared state.
pub struct ControlHub {
    token: String,
    /// Every dispatch and REST call since start (bounded).
    pub log: EventLog,
    baseline: Mutex<Option<Arc<Baseline>>>,
    /// Serializes resets.
    pub reset_lock: tokio::sync::Mutex<()>,
    /// The backend's router, for the REST calls made as a user (built on first use; it holds
    /// the state, so it lives as long as the process).
    pub router: std::sync::OnceLock<axum::Router>,
}

impl ControlHub {
    /// A hub with `settings` and no baseline yet.
    pub fn new(settings: &ControlSettings) -> Self {
        ControlHub {
            token: settings.token.clone(),
            log: EventLog::new(settings.log_capacity),
            baseline: Mutex::new(None),
            reset_lock: tokio::sync::Mutex::new(()),
            router: std::sync::OnceLock::new(),
        }
    }

    /// Whether `given` is the control token (compared in constant time).
    pub fn token_matches(&self, given: &str) -> bool {
        let (a, b) = (self.token.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Sets the world a reset goes back to.
    pub fn set_baseline(&self, baseline: Baseline) {
        *self.baseline.lock() = Some(Arc::new(baseline));
    }

    /// The world a reset goes back to, if one was taken.
    pub fn baseline(&self) -> Option<Arc<Baseline>> {
        self.baseline.lock().clone()
    }
}
