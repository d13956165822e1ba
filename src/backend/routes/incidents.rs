//! A guild's security actions: pausing invites and DMs for a while (raid protection). The
//! pauses show as the guild's `incidents_data` and take effect on invite use.
use axum::extract::State;
use axum::routing::put;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ok, ApiResult};
use crate::backend::error::{ApiError, Validator};
use crate::backend::extract::{Auth, Body, Ids, InGuild};
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::patch;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, parse_iso8601_ms, Snowflake};
use crate::backend::state::AppState;
use crate::{backend::events::Dispatch, gateway::intents};

/// Longest a pause may last: 24 hours.
const MAX_PAUSE_MS: u64 = 24 * 3_600_000;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/guilds/{guild_id}/incident-actions", put(set_actions))
}

#[derive(Deserialize)]
struct ActionsBody {
    #[serde(default, deserialize_with = "patch::present")]
    invites_disabled_until: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    dms_disabled_until: Option<Option<String>>,
}

/// A pause's end: absent or null clears it; otherwise a time within the next 24 hours.
fn until(checks: &mut Validator, field: &str, value: Option<Option<String>>) -> Option<u64> {
    let text = value.flatten()?;
    let now = now_ms();
    match parse_iso8601_ms(&text) {
        None => checks.add(
            field,
            "DATE_TIME_TYPE_PARSE",
            "Could not parse the timestamp. Should be ISO8601.",
        ),
        Some(at) if at <= now || at > now + MAX_PAUSE_MS + 60_000 => checks.add(
            field,
            "DATE_TIME_TYPE_OUT_OF_RANGE",
            "Must be a time within the next 24 hours.",
        ),
        Some(at) => return Some(at),
    }
    None
}

/// The active pauses of a guild (expired ones read as none): (invites, dms) until, in ms.
pub(crate) fn active_pauses(
    state: &AppState,
    guild_id: Snowflake,
) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let data = state.store.extra.guild_incidents.get(guild_id)?;
    let now = now_ms();
    let field = |name: &str| {
        data.as_ref()
            .and_then(|d| d[name].as_str())
            .and_then(parse_iso8601_ms)
            .filter(|at| *at > now)
    };
    Ok((field("invites_disabled_until"), field("dms_disabled_until")))
}

/// `PUT /guilds/{id}/incident-actions` (MANAGE_GUILD): replaces both pauses; GUILD_UPDATE.
async fn set_actions(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, Body(body)): InGuild<{ bits::MANAGE_GUILD }, Body<ActionsBody>>,
) -> ApiResult {
    let mut checks = Validator::default();
    let invites = until(
        &mut checks,
        "invites_disabled_until",
        body.invites_disabled_until,
    );
    let dms = until(&mut checks, "dms_disabled_until", body.dms_disabled_until);
    checks.finish()?;
    let answer = json!({
        "invites_disabled_until": invites.map(iso8601_from_ms),
        "dms_disabled_until": dms.map(iso8601_from_ms),
    });
    let table = &state.store.extra.guild_incidents;
    if invites.is_none() && dms.is_none() {
        table.remove(guild_id)?;
    } else {
        let mut stored = answer.clone();
        stored["dm_spam_detected_at"] = Value::Null;
        stored["raid_detected_at"] = Value::Null;
        table.put(guild_id, &stored)?;
    }
    let data = render::guild(&state.store, &access.guild, false)?;
    state.publish(Dispatch::guild(
        "GUILD_UPDATE",
        guild_id,
        intents::GUILDS,
        data,
    ));
    Ok(ok(answer))
}
