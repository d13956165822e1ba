//! Stage instances: open, read, edit and close a stage, with STAGE_INSTANCE_* dispatches.
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::extract::{Auth, Body, Ids, InChannel, Reason};
use crate::backend::model::{channel_type, StageInstance};
use crate::backend::permissions::bits;
use crate::backend::services::patch::set_if_present;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{changes, AppState, ChannelAccess};
use crate::{backend::events::Dispatch, gateway::intents};

/// What a stage moderator holds in the stage channel.
const STAGE_MODERATOR: u64 = bits::MANAGE_CHANNELS | bits::MUTE_MEMBERS | bits::MOVE_MEMBERS;
/// Audit log actions.
const STAGE_CREATE: u16 = 83;
const STAGE_UPDATE: u16 = 84;
const STAGE_DELETE: u16 = 85;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/stage-instances", post(create_stage))
        .route(
            "/stage-instances/{channel_id}",
            get(get_stage).patch(edit_stage).delete(delete_stage),
        )
}

fn render_stage(stage: &StageInstance) -> Value {
    json!({
        "id": stage.id,
        "guild_id": stage.guild_id,
        "channel_id": stage.channel_id,
        "topic": stage.topic,
        "privacy_level": stage.privacy_level,
        "discoverable_disabled": true,
        "guild_scheduled_event_id": stage.guild_scheduled_event_id,
    })
}

/// A stage moderator's access to a stage channel: 50024 for any other channel type (checked
/// before the permissions, as on Discord), then 50013 without [`STAGE_MODERATOR`].
fn moderate_stage(access: &ChannelAccess) -> Result<(), ApiError> {
    if access.channel.kind != channel_type::GUILD_STAGE_VOICE {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    }
    access.require(STAGE_MODERATOR)
}

fn load(state: &AppState, channel_id: Snowflake) -> Result<StageInstance, ApiError> {
    state
        .store
        .stage_instances
        .get(channel_id)
        .or_unknown(Unknown::StageInstance)
}

fn publish(state: &AppState, name: &'static str, stage: &StageInstance, data: Value) {
    state.publish(Dispatch::guild(name, stage.guild_id, intents::GUILDS, data));
}

#[derive(Deserialize)]
struct CreateBody {
    channel_id: Option<Snowflake>,
    topic: Option<String>,
    privacy_level: Option<u8>,
    #[serde(default)]
    send_start_notification: bool,
    guild_scheduled_event_id: Option<Snowflake>,
}

fn check_topic_and_privacy(checks: &mut Validator, topic: Option<&str>, privacy: Option<u8>) {
    checks.length("topic", topic, 1, 120);
    if privacy.is_some_and(|p| p != 2) {
        checks.add(
            "privacy_level",
            "BASE_TYPE_CHOICES",
            "Value must be one of {2}.",
        );
    }
}

async fn create_stage(
    State(state): State<AppState>,
    auth: Auth,
    Reason(reason): Reason,
    Body(body): Body<CreateBody>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("channel_id", body.channel_id.as_ref());
    checks.required("topic", body.topic.as_ref());
    check_topic_and_privacy(&mut checks, body.topic.as_deref(), body.privacy_level);
    checks.finish()?;
    let channel_id = body.channel_id.unwrap_or_default();
    let access = state.channel_access(channel_id, &auth.user)?;
    moderate_stage(&access)?;
    if body.send_start_notification {
        access.require(bits::MENTION_EVERYONE)?;
    }
    let guild_id = access
        .guild_id()
        .ok_or(ApiError::NotFound(Unknown::Channel))?;
    if let Some(event_id) = body.guild_scheduled_event_id {
        if state
            .store
            .scheduled_events
            .get((guild_id, event_id))?
            .is_none()
        {
            return Err(ApiError::NotFound(Unknown::ScheduledEvent));
        }
    }
    let stage = {
        let _guard = state.store.lock();
        if state.store.stage_instances.contains(channel_id)? {
            return Err(ApiError::bad_request(150006, "Stage already open"));
        }
        let stage = StageInstance {
            id: state.store.next_id(),
            guild_id,
            channel_id,
            topic: body.topic.unwrap_or_default(),
            privacy_level: body.privacy_level.unwrap_or(2),
            guild_scheduled_event_id: body.guild_scheduled_event_id,
        };
        state.store.stage_instances.put(channel_id, &stage)?;
        stage
    };
    state.audit(
        guild_id,
        auth.id(),
        STAGE_CREATE,
        Some(stage.id),
        changes(vec![("topic", Value::Null, json!(stage.topic))]),
        Some(json!({"channel_id": channel_id})),
        reason,
    )?;
    let data = render_stage(&stage);
    publish(&state, "STAGE_INSTANCE_CREATE", &stage, data.clone());
    Ok(ok(data))
}

async fn get_stage(
    State(state): State<AppState>,
    _: Auth,
    Ids(channel_id): Ids<Snowflake>,
    _: InChannel,
) -> ApiResult {
    Ok(ok(render_stage(&load(&state, channel_id)?)))
}

#[derive(Deserialize)]
struct EditBody {
    topic: Option<String>,
    privacy_level: Option<u8>,
}

async fn edit_stage(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InChannel(access, Body(body)): InChannel<0, Body<EditBody>>,
) -> ApiResult {
    moderate_stage(&access)?;
    let mut checks = Validator::default();
    check_topic_and_privacy(&mut checks, body.topic.as_deref(), body.privacy_level);
    checks.finish()?;
    let (old, stage) = {
        let _guard = state.store.lock();
        let mut stage = load(&state, channel_id)?;
        let old = stage.clone();
        set_if_present(&mut stage.topic, body.topic);
        set_if_present(&mut stage.privacy_level, body.privacy_level);
        state.store.stage_instances.put(channel_id, &stage)?;
        (old, stage)
    };
    state.audit(
        stage.guild_id,
        auth.id(),
        STAGE_UPDATE,
        Some(stage.id),
        changes(vec![("topic", json!(old.topic), json!(stage.topic))]),
        Some(json!({"channel_id": channel_id})),
        reason,
    )?;
    let data = render_stage(&stage);
    publish(&state, "STAGE_INSTANCE_UPDATE", &stage, data.clone());
    Ok(ok(data))
}

async fn delete_stage(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InChannel(access, _): InChannel,
) -> ApiResult {
    moderate_stage(&access)?;
    let stage = state
        .store
        .stage_instances
        .remove(channel_id)
        .or_unknown(Unknown::StageInstance)?;
    state.audit(
        stage.guild_id,
        auth.id(),
        STAGE_DELETE,
        Some(stage.id),
        changes(vec![("topic", json!(stage.topic), Value::Null)]),
        Some(json!({"channel_id": channel_id})),
        reason,
    )?;
    publish(
        &state,
        "STAGE_INSTANCE_DELETE",
        &stage,
        render_stage(&stage),
    );
    Ok(no_content())
}
