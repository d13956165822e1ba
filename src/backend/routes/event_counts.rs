//! `GET /guilds/{guild_id}/scheduled-events/{event_id}/users/counts`: how many members are
//! interested in an event. This backend has no recurrence exceptions, so the per-exception
//! counts are always empty (requested exception ids are still validated).
use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::{ok, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown};
use crate::backend::extract::{Auth, Ids, InGuild};
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Most exception ids one request may ask about.
const MAX_EXCEPTION_IDS: usize = 10;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/users/counts",
        get(user_counts),
    )
}

async fn user_counts(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, event_id)): Ids<(Snowflake, Snowflake)>,
    RawQuery(query): RawQuery,
    _: InGuild,
) -> ApiResult {
    state
        .store
        .scheduled_events
        .get((guild_id, event_id))
        .or_unknown(Unknown::ScheduledEvent)?;
    let requested: Vec<String> = form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .filter(|(key, _)| {
            key == "guild_scheduled_event_exception_ids"
                || key == "guild_scheduled_event_exception_ids[]"
        })
        .map(|(_, value)| value.into_owned())
        .collect();
    if requested.len() > MAX_EXCEPTION_IDS {
        return Err(ApiError::invalid_field(
            "guild_scheduled_event_exception_ids",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_EXCEPTION_IDS} or fewer in length."),
        ));
    }
    for (n, id) in requested.iter().enumerate() {
        if Snowflake::parse(id).is_none() {
            return Err(ApiError::invalid_field(
                &format!("guild_scheduled_event_exception_ids.{n}"),
                "NUMBER_TYPE_COERCE",
                format!("Value \"{id}\" is not snowflake."),
            ));
        }
    }
    let count = state.store.scheduled_event_users.ids(event_id)?.len();
    Ok(ok(json!({
        "guild_scheduled_event_count": count,
        "guild_scheduled_event_exception_counts": {},
    })))
}
