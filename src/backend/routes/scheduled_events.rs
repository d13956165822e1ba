//! Guild scheduled events and their subscribers, with GUILD_SCHEDULED_EVENT_* dispatches.
use axum::extract::State;
use axum::routing::{get, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, ok_list, set_image, ApiResult};
use crate::backend::error::{ApiError, Unknown, Validator};
use crate::backend::extract::{Auth, Body, Ids, InGuild, Reason, Q};
use crate::backend::model::{channel_type, ScheduledEvent};
use crate::backend::render;
use crate::backend::services::events::{
    interested_users, load, normalise_rule, rendered, require_manage, UsersQuery,
};
use crate::backend::services::patch::{self, set_if_present};
use crate::backend::snowflake::{iso8601_from_ms, now_ms, parse_iso8601_ms, Snowflake};
use crate::backend::state::{changes, AppState};
use crate::{backend::events::Dispatch, gateway::intents};

/// Entity types.
const STAGE_INSTANCE: u8 = 1;
const EXTERNAL: u8 = 3;
/// Statuses.
const SCHEDULED: u8 = 1;
const ACTIVE: u8 = 2;
const COMPLETED: u8 = 3;
const CANCELED: u8 = 4;
/// Audit log actions.
const EVENT_CREATE: u16 = 100;
const EVENT_UPDATE: u16 = 101;
const EVENT_DELETE: u16 = 102;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/guilds/{guild_id}/scheduled-events",
            get(list_events).post(create_event),
        )
        .route(
            "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}",
            get(get_event).patch(edit_event).delete(delete_event),
        )
        .route(
            "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/users",
            get(list_users),
        )
        .route(
            "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/users/@me",
            put(subscribe).delete(unsubscribe),
        )
}

fn render_event(
    state: &AppState,
    event: &ScheduledEvent,
    with_count: bool,
) -> Result<Value, ApiError> {
    let mut out = json!({
        "id": event.id,
        "guild_id": event.guild_id,
        "channel_id": event.channel_id,
        "creator_id": event.creator_id,
        "creator": render::user_by_id(&state.store, event.creator_id)?,
        "name": event.name,
        "description": event.description,
        "scheduled_start_time": event.scheduled_start_time,
        "scheduled_end_time": event.scheduled_end_time,
        "privacy_level": event.privacy_level,
        "status": event.status,
        "entity_type": event.entity_type,
        "entity_id": null,
        "entity_metadata": event.entity_metadata,
        "image": event.image,
        "recurrence_rule": event.recurrence_rule,
        "guild_scheduled_event_exceptions": rendered(state, event.id)?,
    });
    if with_count {
        out["user_count"] = json!(state.store.scheduled_event_users.ids(event.id)?.len());
    }
    Ok(out)
}

#[derive(Deserialize)]
struct CountQuery {
    #[serde(default)]
    with_user_count: bool,
}

async fn list_events(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Q(query): Q<CountQuery>,
    _: InGuild,
) -> ApiResult {
    let events = state.store.scheduled_events.values(guild_id)?;
    ok_list(events.iter(), |e| {
        render_event(&state, e, query.with_user_count)
    })
}

async fn get_event(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, event_id)): Ids<(Snowflake, Snowflake)>,
    Q(query): Q<CountQuery>,
    _: InGuild,
) -> ApiResult {
    let event = load(&state, guild_id, event_id)?;
    Ok(ok(render_event(&state, &event, query.with_user_count)?))
}

#[derive(Deserialize, Default)]
struct EventBody {
    #[serde(default, deserialize_with = "patch::present")]
    channel_id: Option<Option<Snowflake>>,
    #[serde(default, deserialize_with = "patch::present")]
    entity_metadata: Option<Option<Value>>,
    name: Option<String>,
    privacy_level: Option<u8>,
    scheduled_start_time: Option<String>,
    #[serde(default, deserialize_with = "patch::present")]
    scheduled_end_time: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    description: Option<Option<String>>,
    entity_type: Option<u8>,
    status: Option<u8>,
    #[serde(default, deserialize_with = "patch::present")]
    image: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    recurrence_rule: Option<Option<Value>>,
}

/// Applies a body to an event and checks the result as a whole (Discord's rules: voice and
/// stage events need a channel of that kind; external ones a location and an end time).
fn apply(
    state: &AppState,
    event: &mut ScheduledEvent,
    body: EventBody,
    creating: bool,
) -> Result<(), ApiError> {
    if let Some(rule) = &body.recurrence_rule {
        event.recurrence_rule = rule.as_ref().map(normalise_rule).transpose()?;
    }
    let start_ms = check_event_body(event, &body, creating)?;
    set_if_present(&mut event.name, body.name);
    set_if_present(&mut event.description, body.description);
    set_if_present(&mut event.entity_type, body.entity_type);
    set_if_present(&mut event.privacy_level, body.privacy_level);
    // Stored in Discord's own rendering of timestamps.
    if let Some(ms) = start_ms {
        event.scheduled_start_time = iso8601_from_ms(ms);
    }
    if let Some(end) = body.scheduled_end_time {
        event.scheduled_end_time = end
            .as_deref()
            .and_then(parse_iso8601_ms)
            .map(iso8601_from_ms);
    }
    set_if_present(&mut event.channel_id, body.channel_id);
    set_if_present(&mut event.entity_metadata, body.entity_metadata);
    set_if_present(&mut event.status, body.status);
    set_image(&state.store, &mut event.image, body.image, "image")?;
    check_event_result(state, event)
}

/// The checks of an event body on its own (50035 with every failing field); answers the start
/// time in milliseconds when one is given and parses.
fn check_event_body(
    event: &ScheduledEvent,
    body: &EventBody,
    creating: bool,
) -> Result<Option<u64>, ApiError> {
    let mut checks = Validator::default();
    checks.length("name", body.name.as_deref(), 1, 100);
    if let Some(Some(description)) = &body.description {
        checks.length("description", Some(description), 0, 1000);
    }
    if creating {
        checks.required("name", body.name.as_ref());
        checks.required("scheduled_start_time", body.scheduled_start_time.as_ref());
        checks.required("entity_type", body.entity_type.as_ref());
        checks.required("privacy_level", body.privacy_level.as_ref());
    }
    if body.privacy_level.is_some_and(|p| p != 2) {
        checks.add(
            "privacy_level",
            "BASE_TYPE_CHOICES",
            "Value must be one of {2}.",
        );
    }
    if body
        .entity_type
        .is_some_and(|t| !(STAGE_INSTANCE..=EXTERNAL).contains(&t))
    {
        checks.add(
            "entity_type",
            "BASE_TYPE_CHOICES",
            "Value must be one of {1, 2, 3}.",
        );
    }
    let start = body
        .scheduled_start_time
        .as_deref()
        .map(|t| (t, parse_iso8601_ms(t)));
    if let Some((_, None)) = start {
        checks.add(
            "scheduled_start_time",
            "DATE_TIME_TYPE_PARSE",
            "Could not parse the date.",
        );
    }
    if let Some((_, Some(ms))) = start {
        if ms < now_ms() {
            checks.add(
                "scheduled_start_time",
                "GUILD_SCHEDULED_EVENT_SCHEDULED_START_TIME_IN_PAST",
                "Cannot schedule event in the past.",
            );
        }
    }
    if let Some(Some(end)) = &body.scheduled_end_time {
        if parse_iso8601_ms(end).is_none() {
            checks.add(
                "scheduled_end_time",
                "DATE_TIME_TYPE_PARSE",
                "Could not parse the date.",
            );
        }
    }
    if let Some(status) = body.status {
        let allowed = match (event.status, status) {
            (from, to) if from == to => true,
            (SCHEDULED, ACTIVE | CANCELED) => true,
            (ACTIVE, COMPLETED) => true,
            _ => false,
        };
        if creating || !allowed {
            checks.add(
                "status",
                "GUILD_SCHEDULED_EVENT_INVALID_STATUS_TRANSITION",
                "Invalid status transition for this event.",
            );
        }
    }
    if !creating && matches!(event.status, COMPLETED | CANCELED) {
        checks.add(
            "status",
            "GUILD_SCHEDULED_EVENT_INVALID_STATUS_TRANSITION",
            "Cannot edit a finished event.",
        );
    }
    checks.finish()?;
    Ok(start.and_then(|(_, ms)| ms))
}

/// Cross-field rules on an event after the body is applied: external events lose their
/// channel and need a location and an end; others lose their metadata and need a channel of
/// their kind in the guild; the end never precedes the start.
fn check_event_result(state: &AppState, event: &mut ScheduledEvent) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    match event.entity_type {
        EXTERNAL => {
            event.channel_id = None;
            let location = event
                .entity_metadata
                .as_ref()
                .and_then(|m| m.get("location"))
                .and_then(Value::as_str);
            match location {
                None => checks.add(
                    "entity_metadata.location",
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                ),
                Some(text) => checks.length("entity_metadata.location", Some(text), 1, 100),
            }
            if event.scheduled_end_time.is_none() {
                checks.add(
                    "scheduled_end_time",
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                );
            }
        }
        kind => {
            event.entity_metadata = None;
            let wanted = if kind == STAGE_INSTANCE {
                channel_type::GUILD_STAGE_VOICE
            } else {
                channel_type::GUILD_VOICE
            };
            match event.channel_id {
                None => checks.add("channel_id", "BASE_TYPE_REQUIRED", "This field is required"),
                Some(channel_id) => {
                    let fits = state
                        .store
                        .channel(channel_id)?
                        .is_some_and(|c| c.guild_id == Some(event.guild_id) && c.kind == wanted);
                    if !fits {
                        checks.add(
                            "channel_id",
                            "GUILD_SCHEDULED_EVENT_CHANNEL_TYPE_INVALID",
                            "The channel is not a channel of the event's entity type in this guild.",
                        );
                    }
                }
            }
        }
    }
    if let (Some(end), Some(start)) = (
        event
            .scheduled_end_time
            .as_deref()
            .and_then(parse_iso8601_ms),
        parse_iso8601_ms(&event.scheduled_start_time),
    ) {
        if end < start {
            checks.add(
                "scheduled_end_time",
                "GUILD_SCHEDULED_EVENT_END_BEFORE_START",
                "The end must come after the start.",
            );
        }
    }
    checks.finish()
}

fn publish(state: &AppState, name: &'static str, guild_id: Snowflake, data: Value) {
    state.publish(Dispatch::guild(
        name,
        guild_id,
        intents::GUILD_SCHEDULED_EVENTS,
        data,
    ));
}

fn event_diff(
    old: &ScheduledEvent,
    new: &ScheduledEvent,
) -> Vec<crate::backend::model::AuditChange> {
    changes(vec![
        ("name", json!(old.name), json!(new.name)),
        (
            "description",
            json!(old.description),
            json!(new.description),
        ),
        ("status", json!(old.status), json!(new.status)),
        (
            "entity_type",
            json!(old.entity_type),
            json!(new.entity_type),
        ),
        ("channel_id", json!(old.channel_id), json!(new.channel_id)),
    ])
}

async fn create_event(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<0, Body<EventBody>>,
) -> ApiResult {
    require_manage(&access, None)?;
    if state.store.scheduled_events.count(guild_id) >= 100 {
        return Err(ApiError::bad_request(
            30038,
            "Maximum number of guild scheduled events reached (100)",
        ));
    }
    let mut event = ScheduledEvent {
        id: state.store.next_id(),
        guild_id,
        channel_id: None,
        creator_id: auth.id(),
        name: String::new(),
        description: None,
        scheduled_start_time: String::new(),
        scheduled_end_time: None,
        privacy_level: 2,
        status: SCHEDULED,
        entity_type: EXTERNAL,
        entity_metadata: None,
        image: None,
        recurrence_rule: None,
    };
    let blank = event.clone();
    apply(&state, &mut event, body, true)?;
    state
        .store
        .scheduled_events
        .put((guild_id, event.id), &event)?;
    state.audit(
        guild_id,
        auth.id(),
        EVENT_CREATE,
        Some(event.id),
        event_diff(&blank, &event),
        None,
        reason,
    )?;
    let data = render_event(&state, &event, false)?;
    publish(
        &state,
        "GUILD_SCHEDULED_EVENT_CREATE",
        guild_id,
        data.clone(),
    );
    Ok(ok(data))
}

async fn edit_event(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, event_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<0, Body<EventBody>>,
) -> ApiResult {
    let (old, event) = {
        let _guard = state.store.lock();
        let mut event = load(&state, guild_id, event_id)?;
        require_manage(&access, Some(event.creator_id))?;
        let old = event.clone();
        apply(&state, &mut event, body, false)?;
        state
            .store
            .scheduled_events
            .put((guild_id, event_id), &event)?;
        (old, event)
    };
    state.audit(
        guild_id,
        auth.id(),
        EVENT_UPDATE,
        Some(event_id),
        event_diff(&old, &event),
        None,
        reason,
    )?;
    let data = render_event(&state, &event, false)?;
    publish(
        &state,
        "GUILD_SCHEDULED_EVENT_UPDATE",
        guild_id,
        data.clone(),
    );
    Ok(ok(data))
}

async fn delete_event(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, event_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let event = load(&state, guild_id, event_id)?;
    require_manage(&access, Some(event.creator_id))?;
    let data = render_event(&state, &event, false)?;
    state.store.scheduled_events.remove((guild_id, event_id))?;
    state
        .store
        .scheduled_event_users
        .remove_prefix_all(event_id)?;
    state.audit(
        guild_id,
        auth.id(),
        EVENT_DELETE,
        Some(event_id),
        event_diff(&event, &event),
        None,
        reason,
    )?;
    publish(&state, "GUILD_SCHEDULED_EVENT_DELETE", guild_id, data);
    Ok(no_content())
}

async fn list_users(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, event_id)): Ids<(Snowflake, Snowflake)>,
    Q(query): Q<UsersQuery>,
    _: InGuild,
) -> ApiResult {
    Ok(ok(interested_users(&state, guild_id, event_id, &query)?))
}

/// Marks the caller interested (a user route: the client's "Interested" button).
async fn subscribe(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, event_id)): Ids<(Snowflake, Snowflake)>,
    _: InGuild,
) -> ApiResult {
    let event = load(&state, guild_id, event_id)?;
    if matches!(event.status, COMPLETED | CANCELED) {
        return Err(ApiError::bad_request(
            180000,
            "Cannot subscribe to a finished event",
        ));
    }
    let key = (event_id, auth.id());
    let _guard = state.store.lock();
    if !state.store.scheduled_event_users.contains(key)? {
        state.store.scheduled_event_users.insert(key)?;
        publish(
            &state,
            "GUILD_SCHEDULED_EVENT_USER_ADD",
            guild_id,
            json!({"guild_scheduled_event_id": event_id, "user_id": auth.id(), "guild_id": guild_id}),
        );
    }
    Ok(ok(json!({
        "guild_scheduled_event_id": event_id,
        "user_id": auth.id(),
        "response": 1,
    })))
}

async fn unsubscribe(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, event_id)): Ids<(Snowflake, Snowflake)>,
    _: InGuild,
) -> ApiResult {
    load(&state, guild_id, event_id)?;
    let key = (event_id, auth.id());
    let _guard = state.store.lock();
    if !state.store.scheduled_event_users.contains(key)? {
        return Err(ApiError::NotFound(Unknown::ScheduledEventUser));
    }
    state.store.scheduled_event_users.remove(key)?;
    publish(
        &state,
        "GUILD_SCHEDULED_EVENT_USER_REMOVE",
        guild_id,
        json!({"guild_scheduled_event_id": event_id, "user_id": auth.id(), "guild_id": guild_id}),
    );
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use crate::backend::routes::test_support::{alice_and_bob_guild, call, state_with};
    use serde_json::json;

    use crate::gateway::intents;

    #[tokio::test]
    async fn events_and_stages_publish_their_dispatches() {
        let state = state_with(&alice_and_bob_guild("stage", 13));
        let mut bus = state.bus.subscribe();
        let (status, event) = call(
            &state,
            "POST",
            "/guilds/100/scheduled-events",
            "alice",
            json!({"name": "Talk", "privacy_level": 2, "entity_type": 1, "channel_id": "110",
                   "scheduled_start_time": "2030-01-01T00:00:00Z"}),
        )
        .await;
        assert_eq!(status, 200, "{event}");
        let id = event["id"].as_str().unwrap().to_string();
        let base = format!("/guilds/100/scheduled-events/{id}");
        call(
            &state,
            "PUT",
            &format!("{base}/users/@me"),
            "bob",
            json!({}),
        )
        .await;
        call(
            &state,
            "DELETE",
            &format!("{base}/users/@me"),
            "bob",
            json!({}),
        )
        .await;
        call(&state, "PATCH", &base, "alice", json!({"status": 2})).await;
        let (status, _) = call(
            &state,
            "POST",
            "/stage-instances",
            "alice",
            json!({"channel_id": "110", "topic": "Live", "guild_scheduled_event_id": id}),
        )
        .await;
        assert_eq!(status, 200);
        call(
            &state,
            "PATCH",
            "/stage-instances/110",
            "alice",
            json!({"topic": "Still live"}),
        )
        .await;
        call(&state, "DELETE", "/stage-instances/110", "alice", json!({})).await;
        call(&state, "DELETE", &base, "alice", json!({})).await;
        let mut seen = Vec::new();
        while let Ok(event) = bus.try_recv() {
            if event.name == "GUILD_AUDIT_LOG_ENTRY_CREATE" {
                continue;
            }
            if event.name.starts_with("GUILD_SCHEDULED_EVENT") {
                assert_eq!(event.intents, intents::GUILD_SCHEDULED_EVENTS);
            }
            seen.push(event.name);
        }
        assert_eq!(
            seen,
            vec![
                "GUILD_SCHEDULED_EVENT_CREATE",
                "GUILD_SCHEDULED_EVENT_USER_ADD",
                "GUILD_SCHEDULED_EVENT_USER_REMOVE",
                "GUILD_SCHEDULED_EVENT_UPDATE",
                "STAGE_INSTANCE_CREATE",
                "STAGE_INSTANCE_UPDATE",
                "STAGE_INSTANCE_DELETE",
                "GUILD_SCHEDULED_EVENT_DELETE",
            ]
        );
    }
}
