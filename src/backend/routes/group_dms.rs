//! Group DM recipients: adding someone to a DM turns it into a new group DM (201), adding to a
//! group DM is a 204; removing (the owner removes others, anyone removes themself) with
//! CHANNEL_RECIPIENT_ADD/REMOVE, CHANNEL_CREATE/DELETE for the one who joins or leaves (user
//! events: sent regardless of intents, like the DM CHANNEL_CREATE).
use axum::extract::State;
use axum::routing::put;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown};
use crate::backend::events::Dispatch;
use crate::backend::extract::{Auth, Body, Ids, InChannel};
use crate::backend::model::{channel_type, Channel};
use crate::backend::render;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Most people a group DM holds.
const MAX_RECIPIENTS: usize = 10;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/channels/{channel_id}/recipients/{user_id}",
        put(add_recipient).delete(remove_recipient),
    )
}

/// The channel as `viewer` sees it (others as `recipients`), with group DM fields always set.
fn render_for(state: &AppState, channel: &Channel, viewer: Snowflake) -> Result<Value, ApiError> {
    let mut out = render::channel(&state.store, channel)?;
    crate::backend::services::channels::strip_self_from_recipients(&mut out, viewer);
    if channel.kind == channel_type::GROUP_DM {
        out["name"] = json!(channel.name);
        out["icon"] = json!(channel.icon);
        out["last_pin_timestamp"] = Value::Null;
    }
    Ok(out)
}

/// Sends each participant their own view of `channel` under `name`.
fn publish_channel_to_each(
    state: &AppState,
    name: &'static str,
    channel: &Channel,
    users: &[Snowflake],
) -> Result<(), ApiError> {
    for user in users {
        state.publish(Dispatch::users(
            name,
            vec![*user],
            0,
            render_for(state, channel, *user)?,
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct AddBody {
    access_token: Option<String>,
    nick: Option<String>,
}

async fn add_recipient(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, user_id)): Ids<(Snowflake, Snowflake)>,
    InChannel(access, _): InChannel<0, Body<AddBody>>,
) -> ApiResult {
    let added = state.store.user(user_id).or_unknown(Unknown::User)?;
    let _guard = state.store.lock();
    let mut channel = state
        .store
        .channel(channel_id)
        .or_unknown(Unknown::Channel)?;
    let mut recipients = channel.recipient_ids.clone().unwrap_or_default();
    match access.channel.kind {
        channel_type::DM => {
            if auth.user.bot || added.bot {
                return Err(ApiError::forbidden(
                    50007,
                    "Cannot send messages to this user",
                ));
            }
            if recipients.contains(&user_id) {
                return Err(ApiError::bad_request(50033, "Invalid Recipient(s)"));
            }
            // Adding someone to a 1:1 DM starts a new group DM with all three.
            recipients.push(user_id);
            let mut group = Channel::new(state.store.next_id(), channel_type::GROUP_DM);
            group.recipient_ids = Some(recipients.clone());
            group.owner_id = Some(auth.id());
            state.store.put_channel(&group)?;
            for user in &recipients {
                state.store.user_dms.insert((*user, group.id))?;
            }
            publish_channel_to_each(&state, "CHANNEL_CREATE", &group, &recipients)?;
            Ok(created(render_for(&state, &group, auth.id())?))
        }
        channel_type::GROUP_DM => {
            if recipients.contains(&user_id) {
                return Ok(no_content());
            }
            if recipients.len() >= MAX_RECIPIENTS {
                return Err(ApiError::bad_request(
                    30004,
                    "Maximum number of recipients reached (10)",
                ));
            }
            let before = recipients.clone();
            recipients.push(user_id);
            channel.recipient_ids = Some(recipients);
            state.store.put_channel(&channel)?;
            state.store.user_dms.insert((user_id, channel.id))?;
            state.publish(Dispatch::users(
                "CHANNEL_RECIPIENT_ADD",
                before,
                0,
                json!({"channel_id": channel.id, "user": render::user(&added)}),
            ));
            publish_channel_to_each(&state, "CHANNEL_CREATE", &channel, &[user_id])?;
            Ok(no_content())
        }
        _ => Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        )),
    }
}

async fn remove_recipient(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, user_id)): Ids<(Snowflake, Snowflake)>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    if access.channel.kind != channel_type::GROUP_DM {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    }
    let _guard = state.store.lock();
    let mut channel = state
        .store
        .channel(channel_id)
        .or_unknown(Unknown::Channel)?;
    if user_id != auth.id() && channel.owner_id != Some(auth.id()) {
        return Err(ApiError::MissingPermissions);
    }
    let mut recipients = channel.recipient_ids.clone().unwrap_or_default();
    if !recipients.contains(&user_id) {
        return Err(ApiError::NotFound(Unknown::User));
    }
    let removed = state.store.user(user_id).or_unknown(Unknown::User)?;
    recipients.retain(|id| *id != user_id);
    state.store.user_dms.remove((user_id, channel.id))?;
    let farewell = render_for(&state, &channel, user_id)?;
    if recipients.is_empty() {
        state.store.channels.remove(channel.id)?;
        state.store.purge_channel(channel.id)?;
    } else {
        if channel.owner_id == Some(user_id) {
            channel.owner_id = recipients.first().copied();
        }
        channel.recipient_ids = Some(recipients.clone());
        state.store.put_channel(&channel)?;
        let mut audience = recipients;
        audience.push(user_id);
        state.publish(Dispatch::users(
            "CHANNEL_RECIPIENT_REMOVE",
            audience,
            0,
            json!({"channel_id": channel.id, "user": render::user(&removed)}),
        ));
    }
    state.publish(Dispatch::users(
        "CHANNEL_DELETE",
        vec![user_id],
        0,
        farewell,
    ));
    Ok(no_content())
}
