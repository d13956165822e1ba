//! Scheduled events as data: loading one, who may manage it, its interested users, and the
//! recurrence rules and exceptions of recurring events; shared by the scheduled-event and
//! event-exception routes.
use serde::Deserialize;
use serde_json::{json, Value};

use super::common::limit;
use crate::backend::error::{ApiError, Unknown, Validator};
use crate::backend::model::ScheduledEvent;
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::snowflake::{parse_iso8601_ms, Snowflake};
use crate::backend::state::{AppState, GuildAccess};

const DAY_MS: u64 = 24 * 3_600_000;
/// Recurrence frequencies: yearly, monthly, weekly, daily.
const YEARLY: u64 = 0;
const MONTHLY: u64 = 1;
const WEEKLY: u64 = 2;
const DAILY: u64 = 3;

/// A guild's scheduled event (10070 when unknown).
pub(crate) fn load(
    state: &AppState,
    guild_id: Snowflake,
    event_id: Snowflake,
) -> Result<ScheduledEvent, ApiError> {
    state
        .store
        .scheduled_events
        .get((guild_id, event_id))?
        .ok_or(ApiError::NotFound(Unknown::ScheduledEvent))
}

/// MANAGE_EVENTS, or CREATE_EVENTS for events the caller created.
pub(crate) fn require_manage(
    access: &GuildAccess,
    creator: Option<Snowflake>,
) -> Result<(), ApiError> {
    let permissions = access.permissions();
    let own = creator.is_none_or(|c| c == access.member.user_id);
    if permissions & bits::MANAGE_EVENTS != 0 || (own && permissions & bits::CREATE_EVENTS != 0) {
        Ok(())
    } else {
        Err(ApiError::MissingPermissions)
    }
}

/// The page of `interested_users` a request asks for.
#[derive(Deserialize)]
pub(crate) struct UsersQuery {
    pub limit: Option<i64>,
    #[serde(default)]
    pub with_member: bool,
    pub before: Option<Snowflake>,
    pub after: Option<Snowflake>,
}

/// The users interested in an event (a page of them, with their members when asked), in the
/// shape of `GET …/scheduled-events/{id}/users`.
pub(crate) fn interested_users(
    state: &AppState,
    guild_id: Snowflake,
    event_id: Snowflake,
    query: &UsersQuery,
) -> Result<Value, ApiError> {
    load(state, guild_id, event_id)?;
    let limit = limit(query.limit, 100, 100)?;
    let mut ids = state.store.scheduled_event_users.ids(event_id)?;
    if let Some(before) = query.before {
        ids.retain(|id| *id < before);
        let skip = ids.len().saturating_sub(limit);
        ids.drain(..skip);
    } else {
        if let Some(after) = query.after {
            ids.retain(|id| *id > after);
        }
        ids.truncate(limit);
    }
    let mut out = Vec::new();
    for user_id in ids {
        let mut entry = json!({
            "guild_scheduled_event_id": event_id,
            "user_id": user_id,
            "user": render::user_by_id(&state.store, user_id)?,
            "response": 1,
        });
        if query.with_member {
            if let Some(member) = state.store.member(guild_id, user_id)? {
                entry["member"] = render::member(&state.store, &member)?;
            }
        }
        out.push(entry);
    }
    Ok(Value::Array(out))
}

/// Validates a recurrence rule (`start`, `frequency`, `interval`, optional `end`, weekday and
/// month lists, `count`) and returns it with every field present.
pub(crate) fn normalise_rule(rule: &Value) -> Result<Value, ApiError> {
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
pub(crate) fn is_occurrence(rule: &Value, at: u64) -> bool {
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

/// An event's exceptions, in occurrence order.
pub(crate) fn rendered(state: &AppState, event_id: Snowflake) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store
        .extra
        .event_exceptions
        .values(event_id)?
        .iter()
        .map(|e| json!(e))
        .collect())
}
