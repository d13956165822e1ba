//! Recurring scheduled events: the recurrence rule's validation, and exceptions — one
//! occurrence moved or canceled — with their dispatches and the occurrence's subscriber list.
use axum::extract::State;
use axum::routing::{get, patch as patch_route, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::scheduled_events::{list_users, load, require_manage, UsersQuery};
use super::{no_content, ok, ApiResult};
use crate::backend::error::not_found;
use crate::backend::error::{ApiError, Validator};
use crate::backend::events::{intents, Dispatch};
use crate::backend::extra::EventException;
use crate::backend::extract::{Auth, Body, Ids, Q};
use crate::backend::model::ScheduledEvent;
use crate::backend::services::common::patch;
use crate::backend::snowflake::{iso8601_from_ms, parse_iso8601_ms, Snowflake};
use crate::backend::state::AppState;
use crate::backend::store::key2;

const DAY_MS: u64 = 24 * 3_600_000;
/// Recurrence frequencies: yearly, monthly, weekly, daily.
const YEARLY: u64 = 0;
const MONTHLY: u64 = 1;
const WEEKLY: u64 = 2;
const DAILY: u64 = 3;

/// Routes of this family.
pub fn routes() -> Router<AppState> {
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

/// Validates a recurrence rule (`start`, `frequency`, `interval`, optional `end`, weekday and
/// month lists, `count`) and returns it with every field present.
pub fn normalise_rule(rule: &Value) -> Result<Value, ApiError> {
    let mut checks = Validator::default();
    let path = |field: &str| format!("recurrence_rule.{field}");
    let Some(object) = rule.as_object() else {
        return Err(ApiError::invalid_field(
            "recurrence_rule",
            "MODEL_TYPE_CONVERT",
            "Only dictionaries may be used in a ModelType",
        ));
    };
    let start = object.get("start").and_then(Value::as_str);
    if start.and_then(parse_iso8601_ms).is_none() {
        checks.add(
            &path("start"),
            "DATE_TIME_TYPE_PARSE",
            "Could not parse the timestamp. Should be ISO8601.",
        );
    }
    let frequency = object.get("frequency").and_then(Value::as_u64);
    if frequency.is_none_or(|f| f > DAILY) {
        checks.add(
            &path("frequency"),
            "BASE_TYPE_CHOICES",
            "Value must be one of {0, 1, 2, 3}.",
        );
    }
    let interval = object.get("interval").and_then(Value::as_u64).unwrap_or(1);
    if interval == 0 || interval > 2 || (interval == 2 && frequency != Some(WEEKLY)) {
        // Discord allows every other week, and otherwise every single period.
        checks.add(
            &path("interval"),
            "GUILD_SCHEDULED_EVENT_RECURRENCE_INTERVAL_INVALID",
            "Interval must be 1, or 2 for a weekly rule.",
        );
    }
    if let Some(end) = object.get("end").filter(|v| !v.is_null()) {
        if end.as_str().and_then(parse_iso8601_ms).is_none() {
            checks.add(
                &path("end"),
                "DATE_TIME_TYPE_PARSE",
                "Could not parse the timestamp. Should be ISO8601.",
            );
        }
    }
    checks.finish()?;
    let field = |name: &str| object.get(name).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "start": start,
        "end": field("end"),
        "frequency": frequency,
        "interval": interval,
        "by_weekday": field("by_weekday"),
        "by_n_weekday": field("by_n_weekday"),
        "by_month": field("by_month"),
        "by_month_day": field("by_month_day"),
        "by_year_day": field("by_year_day"),
        "count": field("count"),
    }))
}

/// Whether `at` (ms) is an occurrence of the rule: at or after its start, before its end, at
/// the start's time of day, and for weekly/daily rules a whole number of periods on (weekday
/// and month lists are not expanded: any day at the right time counts for those).
fn is_occurrence(rule: &Value, at: u64) -> bool {
    let Some(start) = rule["start"].as_str().and_then(parse_iso8601_ms) else {
        return false;
    };
    if at < start
        || rule["end"]
            .as_str()
            .and_then(parse_iso8601_ms)
            .is_some_and(|end| at > end)
    {
        return false;
    }
    let offset = at - start;
    let interval = rule["interval"].as_u64().unwrap_or(1).max(1);
    let listed = ["by_weekday", "by_n_weekday", "by_month_day", "by_year_day"]
        .iter()
        .any(|f| !rule[*f].is_null());
    match rule["frequency"].as_u64() {
        Some(WEEKLY) if !listed => offset % (7 * DAY_MS * interval) == 0,
        Some(DAILY) if !listed => offset % (DAY_MS * interval) == 0,
        Some(WEEKLY | DAILY | MONTHLY | YEARLY) => offset % DAY_MS == 0,
        _ => false,
    }
}

/// Discord documents no code for a missing exception: a plain 404.
fn unknown_exception() -> ApiError {
    not_found(0, "404: Not Found")
}

/// An event's exceptions, in occurrence order.
pub fn rendered(state: &AppState, event_id: Snowflake) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store
        .extra
        .event_exceptions
        .values(event_id.be())?
        .iter()
        .map(|e| json!(e))
        .collect())
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
    auth: Auth,
    Ids((guild_id, event_id)): Ids<(Snowflake, Snowflake)>,
    Body(body): Body<ExceptionBody>,
) -> ApiResult {
    let access = state.guild_access(guild_id, auth.id())?;
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
    let key = key2(event_id, id);
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
    auth: Auth,
    Ids((guild_id, event_id, exception_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
    Body(body): Body<ExceptionBody>,
) -> ApiResult {
    let access = state.guild_access(guild_id, auth.id())?;
    let event = load(&state, guild_id, event_id)?;
    require_manage(&access, Some(event.creator_id))?;
    let key = key2(event_id, exception_id);
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
    auth: Auth,
    Ids((guild_id, event_id, exception_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
) -> ApiResult {
    let access = state.guild_access(guild_id, auth.id())?;
    let event = load(&state, guild_id, event_id)?;
    require_manage(&access, Some(event.creator_id))?;
    let exception = state
        .store
        .extra
        .event_exceptions
        .remove(key2(event_id, exception_id))?
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
    auth: Auth,
    Ids((guild_id, event_id, exception_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
    query: Q<UsersQuery>,
) -> ApiResult {
    state.guild_access(guild_id, auth.id())?;
    let event = load(&state, guild_id, event_id)?;
    let known = state
        .store
        .extra
        .event_exceptions
        .contains(key2(event_id, exception_id))?
        || event
            .recurrence_rule
            .as_ref()
            .is_some_and(|rule| is_occurrence(rule, exception_id.timestamp_ms()));
    if !known {
        return Err(unknown_exception());
    }
    list_users(State(state), auth, Ids((guild_id, event_id)), query).await
}
