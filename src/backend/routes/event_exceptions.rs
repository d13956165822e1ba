//! Recurring scheduled events: the recurrence rule's validation, and exceptions — one
//! occurrence moved or canceled — with their dispatches and the occurrence's subscriber list.
use axum::extract::State;
use axum::routing::{get, patch as patch_route, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::{no_content, ok, ApiResult};
use crate::backend::error::not_found;
use crate::backend::error::{ApiError, Validator};
use crate::backend::extra::EventException;
use crate::backend::extract::{Auth, Body, Ids, InGuild, Q};
use crate::backend::model::ScheduledEvent;
use crate::backend::services::events::{
    interested_users, is_occurrence, load, require_manage, UsersQuery,
};
use crate::backend::services::patch;
use crate::backend::snowflake::{iso8601_from_ms, parse_iso8601_ms, Snowflake};
use crate::backend::state::AppState;
use crate::{backend::events::Dispatch, gateway::intents};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/exceptions",
            post(create),
        )
        .route(
            "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/exceptions/{exception_id}",
            patch_route(edit).delete(remove),
        )
        .route(
            "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/{guild_scheduled_event_exception_id}/users",
            get(occurrence_users),
        )
}

/// Discord documents no code for a missing exception: a plain 404.
fn unknown_exception() -> ApiError {
    not_found(0, "404: Not Found")
}

fn publish(
    state: &AppState,
    name: &'static str,
    event: &ScheduledEvent,
    exception: &EventException,
) {
    let mut data = json!(exception);
    data["guild_id"] = json!(event.guild_id);
    state.publish(Dispatch::guild(
        name,
        event.guild_id,
        intents::GUILD_SCHEDULED_EVENTS,
        data,
    ));
}

#[derive(Deserialize)]
struct ExceptionBody {
    original_scheduled_start_time: Option<String>,
    #[serde(default, deserialize_with = "patch::present")]
    scheduled_start_time: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    scheduled_end_time: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    is_canceled: Option<Option<bool>>,
}

/// Applies a body's overrides (times must parse, the end after the start).
fn apply(exception: &mut EventException, body: &ExceptionBody) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    for (field, value) in [
        ("scheduled_start_time", &body.scheduled_start_time),
        ("scheduled_end_time", &body.scheduled_end_time),
    ] {
        if let Some(Some(text)) = value {
            if parse_iso8601_ms(text).is_none() {
                checks.add(
                    field,
                    "DATE_TIME_TYPE_PARSE",
                    "Could not parse the timestamp. Should be ISO8601.",
                );
            }
        }
    }
    checks.finish()?;
    let canonical =
        |t: &Option<String>| t.as_deref().and_then(parse_iso8601_ms).map(iso8601_from_ms);
    if let Some(start) = &body.scheduled_start_time {
        exception.scheduled_start_time = canonical(start);
    }
    if let Some(end) = &body.scheduled_end_time {
        exception.scheduled_end_time = canonical(end);
    }
    if let Some(canceled) = body.is_canceled {
        exception.is_canceled = canceled.unwrap_or(false);
    }
    let start = exception
        .scheduled_start_time
        .as_deref()
        .and_then(parse_iso8601_ms);
    let end = exception
        .scheduled_end_time
        .as_deref()
        .and_then(parse_iso8601_ms);
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            return Err(ApiError::invalid_field(
                "scheduled_end_time",
                "GUILD_SCHEDULED_EVENT_END_BEFORE_START",
                "The end must come after the start.",
            ));
        }
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, event_id)): Ids<(Snowflake, Snowflake)>,
    InGuild(access, Body(body)): InGuild<0, Body<ExceptionBody>>,
) -> ApiResult {
    let event = load(&state, guild_id, event_id)?;
    require_manage(&access, Some(event.creator_id))?;
    let Some(rule) = &event.recurrence_rule else {
        return Err(ApiError::invalid_field(
            "original_scheduled_start_time",
            "GUILD_SCHEDULED_EVENT_NOT_RECURRING",
            "This event does not repeat.",
        ));
    };
    let original = body
        .original_scheduled_start_time
        .as_deref()
        .and_then(parse_iso8601_ms);
    let Some(original) = original.filter(|at| is_occurrence(rule, *at)) else {
        return Err(ApiError::invalid_field(
            "original_scheduled_start_time",
            "GUILD_SCHEDULED_EVENT_OCCURRENCE_INVALID",
            "Not an occurrence of this event.",
        ));
    };
    let id = Snowflake::from_timestamp_ms(original);
    let key = (event_id, id);
    let mut exception = EventException {
        event_id,
        event_exception_id: id,
        scheduled_start_time: None,
        scheduled_end_time: None,
        is_canceled: false,
    };
    apply(&mut exception, &body)?;
    {
        let _guard = state.store.lock();
        if state.store.extra.event_exceptions.contains(key)? {
            return Err(ApiError::invalid_field(
                "original_scheduled_start_time",
                "GUILD_SCHEDULED_EVENT_EXCEPTION_EXISTS",
                "This occurrence already has an exception.",
            ));
        }
        state.store.extra.event_exceptions.put(key, &exception)?;
    }
    publish(
        &state,
        "GUILD_SCHEDULED_EVENT_EXCEPTION_CREATE",
        &event,
        &exception,
    );
    Ok(ok(json!(exception)))
}

async fn edit(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, event_id, exception_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
    InGuild(access, Body(body)): InGuild<0, Body<ExceptionBody>>,
) -> ApiResult {
    let event = load(&state, guild_id, event_id)?;
    require_manage(&access, Some(event.creator_id))?;
    let key = (event_id, exception_id);
    let exception = {
        let _guard = state.store.lock();
        let mut exception = state
            .store
            .extra
            .event_exceptions
            .get(key)?
            .ok_or_else(unknown_exception)?;
        apply(&mut exception, &body)?;
        state.store.extra.event_exceptions.put(key, &exception)?;
        exception
    };
    publish(
        &state,
        "GUILD_SCHEDULED_EVENT_EXCEPTION_UPDATE",
        &event,
        &exception,
    );
    Ok(ok(json!(exception)))
}

async fn remove(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, event_id, exception_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let event = load(&state, guild_id, event_id)?;
    require_manage(&access, Some(event.creator_id))?;
    let exception = state
        .store
        .extra
        .event_exceptions
        .remove((event_id, exception_id))?
        .ok_or_else(unknown_exception)?;
    publish(
        &state,
        "GUILD_SCHEDULED_EVENT_EXCEPTION_DELETE",
        &event,
        &exception,
    );
    Ok(no_content())
}

/// Who is interested in one occurrence: the event's subscribers (subscriptions are kept per
/// event, not per occurrence), after checking the occurrence exists.
async fn occurrence_users(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, event_id, exception_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
    Q(query): Q<UsersQuery>,
    _: InGuild,
) -> ApiResult {
    let event = load(&state, guild_id, event_id)?;
    let known = state
        .store
        .extra
        .event_exceptions
        .contains((event_id, exception_id))?
        || event
            .recurrence_rule
            .as_ref()
            .is_some_and(|rule| is_occurrence(rule, exception_id.timestamp_ms()));
    if !known {
        return Err(unknown_exception());
    }
    Ok(ok(interested_users(&state, guild_id, event_id, &query)?))
}
