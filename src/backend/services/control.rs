//! Operations of the test-control API (`serve --control`): putting the world back to a
//! snapshot, moving the clock, and the few acts of a user that have no REST route of their own
//! (joining a guild without an invite, a presence). Everything a user does through REST, the
//! control routes do by calling the REST routes themselves.
use std::time::Instant;

use serde_json::{json, Value};

use crate::backend::clock;
use crate::backend::control::{Baseline, ControlHub};
use crate::backend::error::{ApiError, Unknown};
use crate::backend::events::Dispatch;
use crate::backend::model::Member;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::AppState;
use crate::backend::store::Snapshot;

/// The control hub, or the 404 every control route answers without `--control`.
pub(crate) fn hub(state: &AppState) -> Result<&ControlHub, ApiError> {
    state.control.as_deref().ok_or(ApiError::NoRoute)
}

/// Takes the store's current content (and in deterministic mode the clock and random stream)
/// as the world resets go back to.
pub(crate) fn take_baseline(state: &AppState) -> Result<(), ApiError> {
    let hub = hub(state)?;
    hub.set_baseline(Baseline {
        snapshot: state.store.snapshot()?,
        clock: clock::checkpoint(),
    });
    Ok(())
}

/// What a reset did.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ResetOutcome {
    /// The event log's cursor at the reset (wait for what comes after it).
    pub cursor: u64,
    /// Store entries written.
    pub entries: usize,
    /// How long the store restore took, in microseconds.
    pub took_us: u64,
}

/// Puts the deterministic clock and random stream back where the baseline took them (nothing
/// outside deterministic mode).
pub(crate) fn rewind_clock(state: &AppState) -> Result<(), ApiError> {
    if let Some(baseline) = hub(state)?.baseline() {
        clock::restore(&baseline.clock);
    }
    Ok(())
}

/// Replaces the world with `snapshot`: the store, the live state kept beside it (slowmode,
/// rate-limit buckets, voice states, presences), the id generator in deterministic mode; then
/// ends every gateway session (close 4000, RESUME refused with op 9) so each client identifies
/// again and sees the new world.
pub(crate) fn restore_world(
    state: &AppState,
    snapshot: &Snapshot,
    clear_log: bool,
) -> Result<ResetOutcome, ApiError> {
    let hub = hub(state)?;
    let started = Instant::now();
    state.store.restore(snapshot)?;
    let ids = &state.store.ids;
    // Deterministic mode hands out the same ids again; otherwise ids only ever grow.
    if clock::seeded() || ids.position() < snapshot.id_position() {
        ids.rewind(snapshot.id_position());
    }
    state.slowmode.lock().clear();
    state.limiter.clear();
    state.voice.clear();
    let took_us = started.elapsed().as_micros() as u64;
    super::polls::resume_finalisers(state)?;
    state.publish(Dispatch::world_reset());
    if clear_log {
        hub.log.clear();
    }
    hub.log.note(
        "RESET",
        json!({"entries": snapshot.len(), "took_us": took_us}),
    );
    Ok(ResetOutcome {
        cursor: hub.log.cursor(),
        entries: snapshot.len(),
        took_us,
    })
}

/// A clock change asked for by `POST /_mitm/clock`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct ClockChange {
    /// Move forward this many ms.
    pub advance_ms: Option<u64>,
    /// Jump to this Unix time in ms.
    pub set_ms: Option<u64>,
    /// Freeze (only the control API moves it) or let it run.
    pub frozen: Option<bool>,
}

/// Applies `change`, then ends what the new time has expired (polls); returns the clock.
pub(crate) fn change_clock(state: &AppState, change: &ClockChange) -> Result<Value, ApiError> {
    let hub = hub(state)?;
    if let Some(frozen) = change.frozen {
        clock::freeze(frozen);
    }
    if let Some(at) = change.set_ms {
        clock::set(at);
    }
    if let Some(ms) = change.advance_ms {
        clock::advance(ms);
    }
    let polls_ended = super::polls::finalise_due(state)?;
    let now = clock::state();
    hub.log
        .note("CLOCK", json!({"now_ms": now.now_ms, "frozen": now.frozen}));
    let mut out = json!(now);
    out["polls_ended"] = json!(polls_ended);
    Ok(out)
}

/// `user_id` joins `guild_id` as a user joining from the guild's page does (no invite):
/// GUILD_MEMBER_ADD to the guild, GUILD_CREATE to the newcomer. Returns whether they joined
/// (false: already a member).
pub(crate) fn join_guild(
    state: &AppState,
    guild_id: Snowflake,
    user_id: Snowflake,
) -> Result<bool, ApiError> {
    let store = &state.store;
    if store.guild(guild_id)?.is_none() {
        return Err(ApiError::NotFound(Unknown::Guild));
    }
    if store.bans.contains((guild_id, user_id))? {
        return Err(ApiError::forbidden(
            40007,
            "The user is banned from this guild.",
        ));
    }
    let member = {
        let _guard = store.lock();
        if store.member(guild_id, user_id)?.is_some() {
            return Ok(false);
        }
        let member = Member::new(user_id, now_ms());
        store.put_member(guild_id, &member)?;
        member
    };
    super::members::publish_member_added(state, guild_id, &member, Some(user_id))?;
    Ok(true)
}

/// Sets `user_id`'s presence as its gateway op 3 would (`{status, activities}`).
pub(crate) fn set_presence(state: &AppState, user_id: Snowflake, presence: Value) {
    state.publish(Dispatch::set_presence(user_id, presence));
}
