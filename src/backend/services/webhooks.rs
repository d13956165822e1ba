//! Webhooks: loading by id or token, the access they post with, WEBHOOKS_UPDATE.
use serde_json::json;

use crate::backend::error::{ApiError, Unknown};
use crate::backend::model::{channel_type, Member, Webhook};
use crate::backend::permissions::{bits, GuildContext};
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::{AppState, ChannelAccess, GuildAccess};
use crate::{backend::events::Dispatch, gateway::intents};

/// Tells the guild that a channel's webhooks changed (WEBHOOKS_UPDATE).
pub(crate) fn publish_webhooks_update(state: &AppState, hook: &Webhook) {
    state.publish(Dispatch::channel(
        "WEBHOOKS_UPDATE",
        hook.guild_id,
        hook.channel_id,
        intents::GUILD_WEBHOOKS,
        json!({"guild_id": hook.guild_id, "channel_id": hook.channel_id}),
    ));
}

/// Where a webhook execution posts: the webhook's channel, or `thread_id` if it is a thread of
/// that channel (10003 otherwise).
pub(crate) fn target_channel(
    state: &AppState,
    hook: &Webhook,
    thread_id: Option<Snowflake>,
) -> Result<Snowflake, ApiError> {
    let Some(thread_id) = thread_id else {
        return Ok(hook.channel_id);
    };
    let thread = state
        .store
        .channel(thread_id)?
        .filter(|t| t.parent_id == Some(hook.channel_id) && channel_type::is_thread(t.kind));
    Ok(thread.ok_or(ApiError::NotFound(Unknown::Channel))?.id)
}

/// The webhook `id` (10015 if unknown).
pub(crate) fn load(state: &AppState, id: Snowflake) -> Result<Webhook, ApiError> {
    state
        .store
        .webhooks
        .get(id)?
        .ok_or(ApiError::NotFound(Unknown::Webhook))
}

/// The webhook `id` if `token` is its token (10015 unknown, 50027 wrong token).
pub(crate) fn load_with_token(
    state: &AppState,
    id: Snowflake,
    token: &str,
) -> Result<Webhook, ApiError> {
    let hook = load(state, id)?;
    if hook.token != token {
        return Err(ApiError::Coded {
            status: axum::http::StatusCode::UNAUTHORIZED,
            code: 50027,
            message: "Invalid Webhook Token".into(),
        });
    }
    Ok(hook)
}

/// The access a webhook posts with in `channel_id` (its guild's @everyone plus posting rights).
pub(crate) fn webhook_access(
    state: &AppState,
    hook: &Webhook,
    channel_id: Snowflake,
) -> Result<ChannelAccess, ApiError> {
    let channel = state
        .store
        .channel(channel_id)?
        .ok_or(ApiError::NotFound(Unknown::Channel))?;
    let guild = state
        .store
        .guild(hook.guild_id)?
        .ok_or(ApiError::NotFound(Unknown::Guild))?;
    let roles = state.store.guild_roles(hook.guild_id)?;
    let member = Member::new(hook.id, now_ms());
    let ctx = GuildContext {
        guild_id: guild.id,
        owner_id: guild.owner_id,
        roles: &roles,
    };
    let overwrites = channel.permission_overwrites.clone().unwrap_or_default();
    let everyone = ctx.channel_permissions(&member, &overwrites, now_ms());
    let permissions = everyone
        | bits::VIEW_CHANNEL
        | bits::SEND_MESSAGES
        | bits::EMBED_LINKS
        | bits::ATTACH_FILES
        | bits::READ_MESSAGE_HISTORY;
    Ok(ChannelAccess {
        channel,
        guild: Some(GuildAccess {
            guild,
            roles,
            member,
        }),
        permissions,
    })
}
