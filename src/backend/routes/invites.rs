//! Invites: get (with counts), accept as a user, delete, and the guild's invite list.
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ok, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown};
use crate::backend::extract::{Auth, Ids, InGuild, MaybeAuth, Reason, Q};
use crate::backend::model::{audit_action, Member};
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::{changes, AppState};
use crate::{backend::events::Dispatch, gateway::intents};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/invites/{code}",
            get(get_invite).post(accept_invite).delete(delete_invite),
        )
        .route("/guilds/{guild_id}/invites", get(guild_invites))
}

#[derive(Deserialize)]
struct InviteQuery {
    #[serde(default)]
    with_counts: bool,
    #[serde(default)]
    with_expiration: bool,
}

fn live_invite(state: &AppState, code: &str) -> Result<crate::backend::model::Invite, ApiError> {
    let invite = state.store.invites.get(code).or_unknown(Unknown::Invite)?;
    if invite.expired(now_ms()) {
        return Err(ApiError::NotFound(Unknown::Invite));
    }
    Ok(invite)
}

async fn get_invite(
    State(state): State<AppState>,
    MaybeAuth(_caller): MaybeAuth,
    Ids(code): Ids<String>,
    Q(query): Q<InviteQuery>,
) -> ApiResult {
    let invite = live_invite(&state, &code)?;
    let _ = query.with_expiration;
    Ok(ok(render::invite(
        &state.store,
        &invite,
        query.with_counts,
        false,
    )?))
}

async fn accept_invite(
    State(state): State<AppState>,
    auth: Auth,
    Ids(code): Ids<String>,
) -> ApiResult {
    if auth.user.bot {
        return Err(ApiError::forbidden(20001, "Bots cannot use this endpoint"));
    }
    let invite = live_invite(&state, &code)?;
    // Invites restricted to target users do not exist for anyone else.
    if !super::invite_targets::may_accept(&state, &code, auth.id())? {
        return Err(ApiError::NotFound(Unknown::Invite));
    }
    let guild_id = invite.guild_id;
    if state.store.bans.contains((guild_id, auth.id()))? {
        return Err(ApiError::forbidden(
            40007,
            "The user is banned from this guild.",
        ));
    }
    if super::incidents::active_pauses(&state, guild_id)?
        .0
        .is_some()
        && state.store.member(guild_id, auth.id())?.is_none()
    {
        return Err(ApiError::forbidden(
            40006,
            "Invites are currently paused for this server.",
        ));
    }
    let mut joined = false;
    {
        let _guard = state.store.lock();
        if state.store.member(guild_id, auth.id())?.is_none() {
            let member = Member::new(auth.id(), now_ms());
            state.store.put_member(guild_id, &member)?;
            let mut used = invite.clone();
            used.uses += 1;
            state.store.invites.put(&code, &used)?;
            joined = true;
        }
    }
    if joined {
        if let Some(member) = state.store.member(guild_id, auth.id())? {
            crate::backend::services::members::publish_member_added(
                &state,
                guild_id,
                &member,
                Some(auth.id()),
            )?;
        }
        let fresh = state.store.invites.get(&code)?.unwrap_or(invite.clone());
        if fresh.max_uses > 0 && fresh.uses >= fresh.max_uses {
            state.store.invites.remove(&code)?;
            publish_invite_delete(&state, &fresh.code, guild_id, fresh.channel_id);
        }
    }
    let mut out = render::invite(&state.store, &invite, false, false)?;
    out["new_member"] = json!(joined);
    Ok(ok(out))
}

fn publish_invite_delete(state: &AppState, code: &str, guild_id: Snowflake, channel_id: Snowflake) {
    state.publish(
        Dispatch::channel(
            "INVITE_DELETE",
            guild_id,
            channel_id,
            intents::GUILD_INVITES,
            json!({"channel_id": channel_id, "guild_id": guild_id, "code": code}),
        )
        .requiring(bits::MANAGE_CHANNELS),
    );
}

async fn delete_invite(
    State(state): State<AppState>,
    auth: Auth,
    Ids(code): Ids<String>,
    Reason(reason): Reason,
) -> ApiResult {
    let invite = state.store.invites.get(&code).or_unknown(Unknown::Invite)?;
    let access = state.channel_access(invite.channel_id, &auth.user)?;
    let guild = access.guild.as_ref().ok_or(ApiError::MissingAccess)?;
    if access.permissions & bits::MANAGE_CHANNELS == 0
        && guild.permissions() & bits::MANAGE_GUILD == 0
    {
        return Err(ApiError::MissingPermissions);
    }
    state.store.invites.remove(&code)?;
    state.audit(
        invite.guild_id,
        auth.id(),
        audit_action::INVITE_DELETE,
        None,
        changes(vec![
            ("code", json!(invite.code), Value::Null),
            ("channel_id", json!(invite.channel_id), Value::Null),
        ]),
        None,
        reason,
    )?;
    publish_invite_delete(&state, &invite.code, invite.guild_id, invite.channel_id);
    Ok(ok(render::invite(&state.store, &invite, false, true)?))
}

async fn guild_invites(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    _: InGuild<{ bits::MANAGE_GUILD }>,
) -> ApiResult {
    let mut out = Vec::new();
    for invite in state.store.invites.all()? {
        if invite.guild_id == guild_id && !invite.expired(now_ms()) {
            out.push(render::invite(&state.store, &invite, false, true)?);
        }
    }
    Ok(ok(Value::Array(out)))
}
