//! Channel following: `POST /channels/{id}/followers` ties an announcement channel to a
//! channel-follower webhook (type 2) in another channel, and crossposting a message delivers
//! a copy there (flag IS_CROSSPOST, a reference to the original), as Discord does.
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ok, ApiResult};
use crate::backend::error::{ApiError, Validator};
use crate::backend::extra::ChannelFollower;
use crate::backend::extract::{Auth, Body, Ids, InChannel, Reason};
use crate::backend::model::{audit_action, channel_type, Webhook};
use crate::backend::permissions::bits;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{changes, AppState};
use crate::{backend::events::Dispatch, gateway::intents};

/// Channel-follower webhooks.
const FOLLOWER_WEBHOOK: u8 = 2;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/channels/{channel_id}/followers", post(follow))
}

#[derive(Deserialize)]
struct FollowBody {
    webhook_channel_id: Option<Snowflake>,
}

fn wrong_type() -> ApiError {
    ApiError::bad_request(50024, "Cannot execute action on this channel type")
}

async fn follow(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InChannel(source, Body(body)): InChannel<0, Body<FollowBody>>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("webhook_channel_id", body.webhook_channel_id.as_ref());
    checks.finish()?;
    if source.channel.kind != channel_type::GUILD_ANNOUNCEMENT {
        return Err(wrong_type());
    }
    let source_guild = source.guild.as_ref().ok_or_else(wrong_type)?.guild.clone();
    let target_id = body.webhook_channel_id.unwrap_or_default();
    let target = state.channel_access(target_id, &auth.user)?;
    if target.channel.kind != channel_type::GUILD_TEXT {
        return Err(wrong_type());
    }
    target.require(bits::MANAGE_WEBHOOKS)?;
    let target_guild = target.guild_id().ok_or_else(wrong_type)?;
    let id = state.store.next_id();
    let name: String = format!(
        "{} #{}",
        source_guild.name,
        source.channel.name.clone().unwrap_or_default()
    )
    .chars()
    .take(80)
    .collect();
    let hook = Webhook {
        id,
        kind: FOLLOWER_WEBHOOK,
        guild_id: target_guild,
        channel_id: target_id,
        creator_id: Some(auth.id()),
        name,
        avatar: source_guild.icon.clone(),
        // Never handed out: follower webhooks cannot be executed.
        token: crate::backend::accounts::generate_token(id).replace('.', ""),
        application_id: None,
    };
    state.store.webhooks.put(id, &hook)?;
    state.store.extra.channel_followers.put(
        (channel_id, id),
        &ChannelFollower {
            webhook_id: id,
            source_channel_id: channel_id,
            source_guild_id: source_guild.id,
            target_channel_id: target_id,
        },
    )?;
    state.audit(
        target_guild,
        auth.id(),
        audit_action::WEBHOOK_CREATE,
        Some(id),
        changes(vec![
            ("name", Value::Null, json!(hook.name)),
            ("channel_id", Value::Null, json!(target_id)),
            ("type", Value::Null, json!(FOLLOWER_WEBHOOK)),
        ]),
        None,
        reason,
    )?;
    state.publish(Dispatch::channel(
        "WEBHOOKS_UPDATE",
        target_guild,
        target_id,
        intents::GUILD_WEBHOOKS,
        json!({"guild_id": target_guild, "channel_id": target_id}),
    ));
    Ok(ok(json!({"channel_id": channel_id, "webhook_id": id})))
}
