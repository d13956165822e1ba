//! Acks: `/channels/{id}/messages/{id}/ack`, `/read-states/ack-bulk`, `/guilds/{id}/ack` and
//! `/channels/{id}/pins/ack`; the recent-mentions inbox, `/users/@me/mentions` (and removing
//! one from it, `DELETE /users/@me/mentions/{message_id}`).
use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::{no_content, ok, ApiResult};
use crate::backend::error::ApiError;
use crate::backend::extract::{Auth, Body, Ids, InChannel, InGuild, Q};
use crate::backend::services::read_states as service;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;
use crate::backend::user_state::read_state_type;

/// Most read states one bulk ack may carry (Discord's limit).
const BULK_LIMIT: usize = 100;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{channel_id}/messages/{message_id}/ack",
            post(ack_message),
        )
        .route("/channels/{channel_id}/pins/ack", post(ack_pins))
        .route("/read-states/ack-bulk", post(ack_bulk))
        .route("/guilds/{guild_id}/ack", post(ack_guild))
        .route("/users/@me/mentions", get(recent_mentions))
        .route("/users/@me/mentions/{message_id}", delete(delete_mention))
}

/// `DELETE /users/@me/mentions/{message_id}`: 204, the message leaves the inbox for good;
/// RECENT_MENTION_DELETE to the caller's sessions. 10008 when it is not in the inbox.
async fn delete_mention(
    State(state): State<AppState>,
    auth: Auth,
    Ids(message_id): Ids<Snowflake>,
) -> ApiResult {
    users_only(&auth)?;
    service::delete_recent_mention(&state, &auth.user, message_id)?;
    state.store.flush_async().await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct MentionsQuery {
    before: Option<Snowflake>,
    limit: Option<i64>,
    guild_id: Option<Snowflake>,
    roles: Option<bool>,
    everyone: Option<bool>,
}

/// `GET /users/@me/mentions`: the past week's mentions of the caller, newest first (25 by
/// default, at most 100), without messages from users they blocked.
async fn recent_mentions(
    State(state): State<AppState>,
    auth: Auth,
    Q(query): Q<MentionsQuery>,
) -> ApiResult {
    users_only(&auth)?;
    let query = service::MentionQuery {
        before: query.before,
        limit: crate::backend::services::common::limit(query.limit, 25, 100)?,
        guild_id: query.guild_id,
        roles: query.roles.unwrap_or(true),
        everyone: query.everyone.unwrap_or(true),
    };
    let messages = service::recent_mentions(&state, &auth.user, &query)?;
    super::ok_list(messages, |m| {
        crate::backend::render::message(&state.store, &m, None)
    })
}

fn users_only(auth: &Auth) -> Result<(), ApiError> {
    if auth.user.bot {
        return Err(ApiError::forbidden(20001, "Bots cannot use this endpoint"));
    }
    Ok(())
}

#[derive(Deserialize, Default)]
struct Ack {
    #[serde(default)]
    manual: bool,
    mention_count: Option<u32>,
}

async fn ack_message(
    State(state): State<AppState>,
    auth: Auth,
    Ids((_, message_id)): Ids<(Snowflake, Snowflake)>,
    InChannel(access, Body(body)): InChannel<0, Body<Ack>>,
) -> ApiResult {
    users_only(&auth)?;
    service::ack_message(
        &state,
        auth.id(),
        &access.channel,
        message_id,
        body.manual,
        body.mention_count,
    )?;
    Ok(ok(json!({"token": null})))
}

async fn ack_pins(
    State(state): State<AppState>,
    auth: Auth,
    InChannel(access, _): InChannel,
) -> ApiResult {
    users_only(&auth)?;
    service::ack_pins(&state, auth.id(), &access.channel)?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct BulkEntry {
    channel_id: Snowflake,
    message_id: Snowflake,
    #[serde(default)]
    read_state_type: u8,
}

#[derive(Deserialize)]
struct Bulk {
    read_states: Vec<BulkEntry>,
}

async fn ack_bulk(State(state): State<AppState>, auth: Auth, Body(body): Body<Bulk>) -> ApiResult {
    users_only(&auth)?;
    if body.read_states.len() > BULK_LIMIT {
        return Err(ApiError::invalid_field(
            "read_states",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {BULK_LIMIT} or fewer in length."),
        ));
    }
    for entry in &body.read_states {
        if entry.read_state_type == read_state_type::CHANNEL {
            let channel = state.channel_access(entry.channel_id, &auth.user)?.channel;
            service::ack_message(&state, auth.id(), &channel, entry.message_id, false, None)?;
        } else {
            service::ack_other(
                &state,
                auth.id(),
                entry.read_state_type,
                entry.channel_id,
                entry.message_id,
            )?;
        }
    }
    Ok(no_content())
}

/// Marks every channel of the guild the caller can see read up to its last message.
async fn ack_guild(
    State(state): State<AppState>,
    auth: Auth,
    InGuild(access, _): InGuild,
) -> ApiResult {
    users_only(&auth)?;
    for channel in state.store.guild_channel_list(access.guild.id)? {
        let Some(last) = state.store.last_message_id(channel.id)? else {
            continue;
        };
        if state.channel_access(channel.id, &auth.user).is_ok() {
            service::ack_message(&state, auth.id(), &channel, last, false, None)?;
        }
    }
    Ok(no_content())
}
