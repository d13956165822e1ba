//! Channels: get, edit, delete, permission overwrites, typing, invites, threads and thread members.
use axum::extract::State;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, ok_list, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::extract::{Auth, Body, Ids, InChannel, InThread, Reason, Q};
use crate::backend::model::*;
use crate::backend::params::number_text;
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::channels::{
    apply_channel_body, new_thread, publish_channel_event, ChannelBody,
};
use crate::backend::services::common::limit;
use crate::backend::services::group_dms::{self, GroupEdit};
use crate::backend::snowflake::{iso8601_from_ms, now_ms, parse_iso8601_ms, Snowflake};
use crate::backend::state::{changes, AppState, ChannelAccess};
use crate::backend::store::ThreadMember;
use crate::{backend::events::Dispatch, gateway::intents};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{channel_id}",
            get(get_channel).patch(patch_channel).delete(delete_channel),
        )
        .route(
            "/channels/{channel_id}/permissions/{overwrite_id}",
            put(put_overwrite).delete(delete_overwrite),
        )
        .route("/channels/{channel_id}/typing", post(typing))
        .route(
            "/channels/{channel_id}/invites",
            get(list_invites).post(create_invite),
        )
        .route("/channels/{channel_id}/threads", post(create_thread))
        .route(
            "/channels/{channel_id}/messages/{message_id}/threads",
            post(thread_from_message),
        )
        .route(
            "/channels/{channel_id}/thread-members",
            get(list_thread_members),
        )
        .route(
            "/channels/{channel_id}/thread-members/@me",
            put(join_thread).delete(leave_thread),
        )
        .route(
            "/channels/{channel_id}/thread-members/{user_id}",
            get(get_thread_member)
                .put(add_thread_member)
                .delete(remove_thread_member),
        )
        .route(
            "/channels/{channel_id}/threads/archived/public",
            get(archived_public),
        )
        .route(
            "/channels/{channel_id}/threads/archived/private",
            get(archived_private),
        )
        .route(
            "/channels/{channel_id}/users/@me/threads/archived/private",
            get(archived_joined_private),
        )
}

fn render_for(state: &AppState, channel: &Channel, viewer: Snowflake) -> Result<Value, ApiError> {
    group_dms::view(state, channel, viewer)
}

async fn get_channel(
    State(state): State<AppState>,
    auth: Auth,
    Ids(_): Ids<Snowflake>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    Ok(ok(render_for(&state, &access.channel, auth.id())?))
}

async fn patch_channel(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InChannel(access, Body(body)): InChannel<0, Body<ChannelBody>>,
) -> ApiResult {
    if access.channel.kind == channel_type::GROUP_DM {
        let edit = GroupEdit {
            name: body.name,
            icon: body.icon,
            owner: body.owner,
        };
        return Ok(ok(group_dms::edit(&state, auth.id(), channel_id, edit)?));
    }
    let Some(guild) = access.guild.clone() else {
        return Err(ApiError::forbidden(
            50003,
            "Cannot execute action on a DM channel",
        ));
    };
    let is_thread = channel_type::is_thread(access.channel.kind);
    if is_thread {
        let own = access.channel.owner_id == Some(auth.id());
        if !own {
            access.require(bits::MANAGE_THREADS)?;
        }
        if body.locked.is_some() {
            access.require(bits::MANAGE_THREADS)?;
        }
    } else {
        access.require(bits::MANAGE_CHANNELS)?;
    }
    if let Some(kind) = body.kind {
        let allowed = kind == access.channel.kind
            || matches!(
                (access.channel.kind, kind),
                (channel_type::GUILD_TEXT, channel_type::GUILD_ANNOUNCEMENT)
                    | (channel_type::GUILD_ANNOUNCEMENT, channel_type::GUILD_TEXT)
            );
        if !allowed {
            return Err(ApiError::invalid_field(
                "type",
                "CHANNEL_TYPE_INVALID",
                "Cannot change the channel to that type.",
            ));
        }
    }
    let (old, channel) = {
        let _guard = state.store.lock();
        let mut channel = state
            .store
            .channel(channel_id)
            .or_unknown(Unknown::Channel)?;
        let old = channel.clone();
        if let Some(kind) = body.kind {
            channel.kind = kind;
        }
        apply_channel_body(&state.store, &guild, &mut channel, body)?;
        state.store.put_channel(&channel)?;
        (old, channel)
    };
    let action = if is_thread {
        audit_action::THREAD_UPDATE
    } else {
        audit_action::CHANNEL_UPDATE
    };
    if let Some(guild_id) = channel.guild_id {
        state.audit(
            guild_id,
            auth.id(),
            action,
            Some(channel_id),
            changes(vec![
                ("name", json!(old.name), json!(channel.name)),
                ("topic", json!(old.topic), json!(channel.topic)),
                ("nsfw", json!(old.nsfw), json!(channel.nsfw)),
                (
                    "rate_limit_per_user",
                    json!(old.rate_limit_per_user),
                    json!(channel.rate_limit_per_user),
                ),
                ("position", json!(old.position), json!(channel.position)),
                ("parent_id", json!(old.parent_id), json!(channel.parent_id)),
            ]),
            None,
            reason,
        )?;
    }
    let data = render::channel(&state.store, &channel)?;
    publish_channel_event(
        &state,
        if is_thread {
            "THREAD_UPDATE"
        } else {
            "CHANNEL_UPDATE"
        },
        &channel,
        data.clone(),
    );
    Ok(ok(data))
}

#[derive(Deserialize)]
struct DeleteQuery {
    /// Leave a group DM without the RECIPIENT_REMOVE system message.
    silent: Option<bool>,
}

async fn delete_channel(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Reason(reason): Reason,
    Q(query): Q<DeleteQuery>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    let channel = access.channel.clone();
    if channel.kind == channel_type::GROUP_DM {
        // Closing a group DM is leaving it.
        let silent = query.silent.unwrap_or(false);
        let farewell =
            group_dms::remove_recipient(&state, auth.id(), channel_id, auth.id(), silent)?;
        return Ok(ok(farewell));
    }
    let Some(guild_id) = channel.guild_id else {
        // Closing a DM leaves it in place, as on Discord.
        return Ok(ok(render_for(&state, &channel, auth.id())?));
    };
    let is_thread = channel_type::is_thread(channel.kind);
    access.require(if is_thread {
        bits::MANAGE_THREADS
    } else {
        bits::MANAGE_CHANNELS
    })?;
    let data = render::channel(&state.store, &channel)?;
    let mut orphans = Vec::new();
    {
        let _guard = state.store.lock();
        state.store.purge_channel(channel_id)?;
        state.store.channels.remove(channel_id)?;
        state.store.guild_channels.remove((guild_id, channel_id))?;
        for mut other in state.store.guild_channel_list(guild_id)? {
            if other.parent_id == Some(channel_id) {
                if channel_type::is_thread(other.kind) {
                    state.store.purge_channel(other.id)?;
                    state.store.channels.remove(other.id)?;
                    state.store.guild_channels.remove((guild_id, other.id))?;
                } else {
                    other.parent_id = None;
                    state.store.put_channel(&other)?;
                    orphans.push(other);
                }
            }
        }
    }
    let action = if is_thread {
        audit_action::THREAD_DELETE
    } else {
        audit_action::CHANNEL_DELETE
    };
    state.audit(
        guild_id,
        auth.id(),
        action,
        Some(channel_id),
        changes(vec![("name", json!(channel.name), Value::Null)]),
        None,
        reason,
    )?;
    if is_thread {
        state.publish(Dispatch::channel("THREAD_DELETE", guild_id, channel_id, intents::GUILDS,
            json!({"id": channel_id, "guild_id": guild_id, "parent_id": channel.parent_id, "type": channel.kind})));
    } else {
        publish_channel_event(&state, "CHANNEL_DELETE", &channel, data.clone());
    }
    for other in orphans {
        publish_channel_update(&state, &other)?;
    }
    Ok(ok(data))
}

#[derive(Deserialize)]
struct OverwriteBody {
    #[serde(rename = "type")]
    kind: Option<u8>,
    allow: Option<String>,
    deny: Option<String>,
}

fn guild_channel(access: &ChannelAccess) -> Result<(), ApiError> {
    if access.guild.is_none() {
        return Err(ApiError::forbidden(
            50003,
            "Cannot execute action on a DM channel",
        ));
    }
    if channel_type::is_thread(access.channel.kind) {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    }
    Ok(())
}

async fn put_overwrite(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, overwrite_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InChannel(access, Body(body)): InChannel<0, Body<OverwriteBody>>,
) -> ApiResult {
    guild_channel(&access)?;
    let guild = access.guild.clone().ok_or(ApiError::MissingAccess)?;
    let mut checks = Validator::default();
    checks.required("type", body.kind.as_ref());
    checks.range("type", body.kind.map(i64::from), 0, 1);
    let allow = body.allow.as_deref().unwrap_or("0").parse::<u64>();
    let deny = body.deny.as_deref().unwrap_or("0").parse::<u64>();
    if allow.is_err() {
        checks.add("allow", "BASE_TYPE_INVALID", "Invalid permission value");
    }
    if deny.is_err() {
        checks.add("deny", "BASE_TYPE_INVALID", "Invalid permission value");
    }
    checks.finish()?;
    let (allow, deny) = (allow.unwrap_or(0), deny.unwrap_or(0));
    // MANAGE_ROLES in the channel, and only for permissions the caller holds there.
    let mine = access.permissions;
    if guild.permissions() & bits::ADMINISTRATOR == 0 {
        if mine & bits::MANAGE_ROLES == 0 && guild.permissions() & bits::MANAGE_ROLES == 0 {
            return Err(ApiError::MissingPermissions);
        }
        if (allow | deny) & !mine != 0 {
            return Err(ApiError::MissingPermissions);
        }
    }
    let kind = body.kind.unwrap_or(0);
    let valid_target = if kind == 0 {
        guild.roles.iter().any(|r| r.id == overwrite_id)
    } else {
        state.store.member(guild.guild.id, overwrite_id)?.is_some()
    };
    if !valid_target {
        return Err(ApiError::NotFound(if kind == 0 {
            Unknown::Role
        } else {
            Unknown::Member
        }));
    }
    let mut existed = false;
    let channel = change_overwrites(&state, channel_id, |overwrites| {
        existed = overwrites.iter().any(|o| o.id == overwrite_id);
        overwrites.retain(|o| o.id != overwrite_id);
        overwrites.push(Overwrite {
            id: overwrite_id,
            kind,
            allow: allow.to_string(),
            deny: deny.to_string(),
        });
        true
    })?;
    let Some(channel) = channel else {
        return Ok(no_content());
    };
    let action = if existed {
        audit_action::CHANNEL_OVERWRITE_UPDATE
    } else {
        audit_action::CHANNEL_OVERWRITE_CREATE
    };
    state.audit(
        guild.guild.id,
        auth.id(),
        action,
        Some(channel_id),
        changes(vec![
            ("allow", Value::Null, json!(allow.to_string())),
            ("deny", Value::Null, json!(deny.to_string())),
        ]),
        Some(json!({"id": overwrite_id, "type": kind.to_string()})),
        reason,
    )?;
    publish_channel_update(&state, &channel)?;
    Ok(no_content())
}

/// Changes a channel's permission overwrites under the store lock and stores the channel;
/// `change` answers whether anything changed (if not, nothing is stored and `None` answers).
fn change_overwrites(
    state: &AppState,
    channel_id: Snowflake,
    change: impl FnOnce(&mut Vec<Overwrite>) -> bool,
) -> Result<Option<Channel>, ApiError> {
    let _guard = state.store.lock();
    let mut channel = state
        .store
        .channel(channel_id)
        .or_unknown(Unknown::Channel)?;
    if !change(channel.permission_overwrites.get_or_insert_with(Vec::new)) {
        return Ok(None);
    }
    state.store.put_channel(&channel)?;
    Ok(Some(channel))
}

/// Renders `channel` and publishes CHANNEL_UPDATE for it.
fn publish_channel_update(state: &AppState, channel: &Channel) -> Result<(), ApiError> {
    let data = render::channel(&state.store, channel)?;
    publish_channel_event(state, "CHANNEL_UPDATE", channel, data);
    Ok(())
}

async fn delete_overwrite(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, overwrite_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InChannel(access, _): InChannel,
) -> ApiResult {
    guild_channel(&access)?;
    let guild = access.guild.clone().ok_or(ApiError::MissingAccess)?;
    if guild.permissions() & bits::ADMINISTRATOR == 0
        && access.permissions & bits::MANAGE_ROLES == 0
    {
        return Err(ApiError::MissingPermissions);
    }
    let channel = change_overwrites(&state, channel_id, |overwrites| {
        let before = overwrites.len();
        overwrites.retain(|o| o.id != overwrite_id);
        overwrites.len() != before
    })?;
    let Some(channel) = channel else {
        return Ok(no_content());
    };
    state.audit(
        guild.guild.id,
        auth.id(),
        audit_action::CHANNEL_OVERWRITE_DELETE,
        Some(channel_id),
        vec![],
        Some(json!({"id": overwrite_id})),
        reason,
    )?;
    publish_channel_update(&state, &channel)?;
    Ok(no_content())
}

async fn typing(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    InChannel(access, _): InChannel<{ bits::SEND_MESSAGES }>,
) -> ApiResult {
    let mut data = json!({
        "channel_id": channel_id,
        "user_id": auth.id(),
        "timestamp": now_ms() / 1000,
    });
    if let Some(guild) = &access.guild {
        data["guild_id"] = json!(guild.guild.id);
        data["member"] = render::member(&state.store, &guild.member)?;
    }
    state.publish(Dispatch::for_channel(
        "TYPING_START",
        &access.channel,
        intents::GUILD_MESSAGE_TYPING,
        intents::DIRECT_MESSAGE_TYPING,
        data,
    ));
    Ok(no_content())
}

async fn list_invites(
    State(state): State<AppState>,
    _: Auth,
    Ids(channel_id): Ids<Snowflake>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    guild_channel(&access)?;
    access.require(bits::MANAGE_CHANNELS)?;
    let mut out = Vec::new();
    let guild_id = access.guild_id().unwrap_or_default();
    for invite in state.store.invites.all()? {
        if invite.channel_id == channel_id && invite.guild_id == guild_id {
            out.push(render::invite(&state.store, &invite, false, true)?);
        }
    }
    Ok(ok(Value::Array(out)))
}

#[derive(Deserialize)]
struct CreateInvite {
    max_age: Option<i64>,
    max_uses: Option<i64>,
    temporary: Option<bool>,
    unique: Option<bool>,
}

async fn create_invite(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InChannel(access, Body(body)): InChannel<0, Body<CreateInvite>>,
) -> ApiResult {
    guild_channel(&access)?;
    access.require(bits::CREATE_INSTANT_INVITE)?;
    let mut checks = Validator::default();
    checks.range("max_age", body.max_age, 0, 604_800);
    checks.range("max_uses", body.max_uses, 0, 100);
    checks.finish()?;
    let guild_id = access.guild_id().unwrap_or_default();
    let max_age = body.max_age.unwrap_or(86_400) as u32;
    let max_uses = body.max_uses.unwrap_or(0) as u32;
    let temporary = body.temporary.unwrap_or(false);
    if body.unique != Some(true) {
        // Discord hands back an equivalent existing invite unless `unique` is set.
        for invite in state.store.invites.all()? {
            if invite.channel_id == channel_id
                && invite.inviter_id == Some(auth.id())
                && invite.max_age == max_age
                && invite.max_uses == max_uses
                && invite.temporary == temporary
                && !invite.expired(now_ms())
            {
                return Ok(ok(render::invite(&state.store, &invite, false, true)?));
            }
        }
    }
    let invite = Invite {
        code: crate::backend::services::common::invite_code(),
        guild_id,
        channel_id,
        inviter_id: Some(auth.id()),
        max_age,
        max_uses,
        temporary,
        uses: 0,
        created_at_ms: now_ms(),
    };
    state.store.invites.put(&invite.code, &invite)?;
    state.audit(
        guild_id,
        auth.id(),
        audit_action::INVITE_CREATE,
        None,
        changes(vec![
            ("code", Value::Null, json!(invite.code)),
            ("channel_id", Value::Null, json!(channel_id)),
            ("max_uses", Value::Null, json!(max_uses)),
            ("max_age", Value::Null, json!(max_age)),
        ]),
        None,
        reason,
    )?;
    state.publish(
        Dispatch::channel(
            "INVITE_CREATE",
            guild_id,
            channel_id,
            intents::GUILD_INVITES,
            json!({
                "channel_id": channel_id,
                "code": invite.code,
                "created_at": iso8601_from_ms(invite.created_at_ms),
                "guild_id": guild_id,
                "inviter": render::user(&auth.user),
                "max_age": max_age,
                "max_uses": max_uses,
                "temporary": temporary,
                "uses": 0,
                "type": 0,
            }),
        )
        .requiring(bits::MANAGE_CHANNELS),
    );
    Ok(ok(render::invite(&state.store, &invite, false, true)?))
}

// ---- threads ----

/// Adds a user to a thread and publishes THREAD_MEMBERS_UPDATE.
pub(crate) fn add_to_thread(
    state: &AppState,
    thread: &Channel,
    user_id: Snowflake,
) -> Result<bool, ApiError> {
    let key = (thread.id, user_id);
    if state.store.thread_members.contains(key)? {
        return Ok(false);
    }
    let member = ThreadMember {
        thread_id: thread.id,
        user_id,
        join_timestamp: iso8601_from_ms(now_ms()),
        flags: 0,
    };
    state.store.thread_members.put(key, &member)?;
    let guild_id = thread.guild_id.unwrap_or_default();
    let mut added = render::thread_member(&member);
    if let Some(guild_member) = state.store.member(guild_id, user_id)? {
        added["member"] = render::member(&state.store, &guild_member)?;
    }
    state.publish(Dispatch::channel(
        "THREAD_MEMBERS_UPDATE",
        guild_id,
        thread.id,
        intents::GUILD_MEMBERS | intents::GUILDS,
        json!({
            "id": thread.id,
            "guild_id": guild_id,
            "member_count": state.store.thread_members.count(thread.id).min(50),
            "added_members": [added],
        }),
    ));
    state.publish(Dispatch::users(
        "THREAD_MEMBER_UPDATE",
        vec![user_id],
        intents::GUILDS,
        {
            let mut v = render::thread_member(&member);
            v["guild_id"] = json!(guild_id);
            v
        },
    ));
    Ok(true)
}

fn remove_from_thread(
    state: &AppState,
    thread: &Channel,
    user_id: Snowflake,
) -> Result<(), ApiError> {
    if state
        .store
        .thread_members
        .remove((thread.id, user_id))?
        .is_none()
    {
        return Ok(());
    }
    let guild_id = thread.guild_id.unwrap_or_default();
    state.publish(Dispatch::guild_and_users(
        "THREAD_MEMBERS_UPDATE",
        guild_id,
        vec![user_id],
        intents::GUILD_MEMBERS | intents::GUILDS,
        json!({
            "id": thread.id,
            "guild_id": guild_id,
            "member_count": state.store.thread_members.count(thread.id).min(50),
            "removed_member_ids": [user_id],
        }),
    ));
    Ok(())
}

#[derive(Deserialize)]
struct CreateThread {
    name: Option<String>,
    auto_archive_duration: Option<u32>,
    #[serde(rename = "type")]
    kind: Option<u8>,
    invitable: Option<bool>,
    rate_limit_per_user: Option<u32>,
    message: Option<crate::backend::services::messages::CreateMessage>,
    applied_tags: Option<Vec<Snowflake>>,
}

fn check_thread_body(name: Option<&str>, auto_archive: Option<u32>) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    checks.required("name", name.as_ref());
    checks.length("name", name, 1, 100);
    if let Some(duration) = auto_archive {
        if ![60, 1440, 4320, 10080].contains(&duration) {
            checks.add(
                "auto_archive_duration",
                "BASE_TYPE_CHOICES",
                "Value must be one of {60, 1440, 4320, 10080}.",
            );
        }
    }
    checks.finish()
}

fn publish_thread_create(state: &AppState, thread: &Channel) -> Result<Value, ApiError> {
    let mut data = render::channel(&state.store, thread)?;
    let guild_id = thread.guild_id.unwrap_or_default();
    let mut event = data.clone();
    event["newly_created"] = json!(true);
    state.publish(Dispatch::channel(
        "THREAD_CREATE",
        guild_id,
        thread.id,
        intents::GUILDS,
        event,
    ));
    if let Some(member) = state
        .store
        .thread_members
        .get((thread.id, thread.owner_id.unwrap_or_default()))?
    {
        data["member"] = render::thread_member(&member);
    }
    Ok(data)
}

async fn create_thread(
    State(state): State<AppState>,
    auth: Auth,
    Ids(_): Ids<Snowflake>,
    InChannel(access, Body(body)): InChannel<0, Body<CreateThread>>,
) -> ApiResult {
    guild_channel(&access)?;
    let parent = access.channel.clone();
    let is_forum = matches!(
        parent.kind,
        channel_type::GUILD_FORUM | channel_type::GUILD_MEDIA
    );
    if !is_forum
        && !matches!(
            parent.kind,
            channel_type::GUILD_TEXT | channel_type::GUILD_ANNOUNCEMENT
        )
    {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    }
    check_thread_body(body.name.as_deref(), body.auto_archive_duration)?;
    let kind = if is_forum {
        channel_type::PUBLIC_THREAD
    } else if parent.kind == channel_type::GUILD_ANNOUNCEMENT {
        channel_type::ANNOUNCEMENT_THREAD
    } else {
        body.kind.unwrap_or(channel_type::PRIVATE_THREAD)
    };
    if !channel_type::is_thread(kind) {
        return Err(ApiError::invalid_field(
            "type",
            "BASE_TYPE_CHOICES",
            "Value must be one of {10, 11, 12}.",
        ));
    }
    if is_forum {
        access.require(bits::SEND_MESSAGES)?;
        if body.message.is_none() {
            return Err(ApiError::invalid_field(
                "message",
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ));
        }
    } else if kind == channel_type::PRIVATE_THREAD {
        access.require(bits::CREATE_PRIVATE_THREADS)?;
    } else {
        access.require(bits::CREATE_PUBLIC_THREADS)?;
    }
    let id = state.store.next_id();
    let mut thread = new_thread(
        &parent,
        id,
        kind,
        body.name.as_deref().unwrap_or_default(),
        body.auto_archive_duration,
        auth.id(),
    );
    if let Some(meta) = thread.thread_metadata.as_mut() {
        if let Some(invitable) = body.invitable {
            if kind == channel_type::PRIVATE_THREAD {
                meta.invitable = Some(invitable);
            }
        }
    }
    thread.rate_limit_per_user = body.rate_limit_per_user.or(Some(0));
    if is_forum {
        thread.applied_tags = Some(body.applied_tags.unwrap_or_default());
    }
    state.store.put_channel(&thread)?;
    add_to_thread(&state, &thread, auth.id())?;
    let mut data = publish_thread_create(&state, &thread)?;
    if let Some(message) = body.message {
        // A forum post's first message has the thread's id.
        let thread_access = state.channel_access(thread.id, &auth.user)?;
        let starter = crate::backend::services::messages::create_message_in(
            &state,
            &auth.user,
            &thread_access,
            message,
            Some(thread.id),
        )?;
        data["message"] = starter;
    }
    if let Some(guild_id) = thread.guild_id {
        state.audit(
            guild_id,
            auth.id(),
            audit_action::THREAD_CREATE,
            Some(thread.id),
            changes(vec![("name", Value::Null, json!(thread.name))]),
            None,
            None,
        )?;
    }
    Ok(created(data))
}

#[derive(Deserialize)]
struct ThreadFromMessage {
    name: Option<String>,
    auto_archive_duration: Option<u32>,
    rate_limit_per_user: Option<u32>,
}

async fn thread_from_message(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
    InChannel(access, Body(body)): InChannel<0, Body<ThreadFromMessage>>,
) -> ApiResult {
    guild_channel(&access)?;
    let parent = access.channel.clone();
    if !matches!(
        parent.kind,
        channel_type::GUILD_TEXT | channel_type::GUILD_ANNOUNCEMENT
    ) {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    }
    access.require(bits::CREATE_PUBLIC_THREADS | bits::READ_MESSAGE_HISTORY)?;
    check_thread_body(body.name.as_deref(), body.auto_archive_duration)?;
    let thread = {
        let _guard = state.store.lock();
        let mut message = state
            .store
            .message(channel_id, message_id)
            .or_unknown(Unknown::Message)?;
        if message.thread_id.is_some() {
            return Err(ApiError::bad_request(
                160004,
                "A thread has already been created for this message",
            ));
        }
        let kind = if parent.kind == channel_type::GUILD_ANNOUNCEMENT {
            channel_type::ANNOUNCEMENT_THREAD
        } else {
            channel_type::PUBLIC_THREAD
        };
        let mut thread = new_thread(
            &parent,
            message_id,
            kind,
            body.name.as_deref().unwrap_or_default(),
            body.auto_archive_duration,
            auth.id(),
        );
        thread.rate_limit_per_user = body.rate_limit_per_user.or(Some(0));
        state.store.put_channel(&thread)?;
        message.thread_id = Some(thread.id);
        state.store.put_message(&message)?;
        thread
    };
    add_to_thread(&state, &thread, auth.id())?;
    let data = publish_thread_create(&state, &thread)?;
    if let Some(message) = state.store.message(channel_id, message_id)? {
        let guild_id = parent.guild_id.unwrap_or_default();
        let mut update = render::message(&state.store, &message, None)?;
        update["guild_id"] = json!(guild_id);
        update["channel_type"] = json!(parent.kind);
        state.publish(
            Dispatch::channel(
                "MESSAGE_UPDATE",
                guild_id,
                channel_id,
                intents::GUILD_MESSAGES,
                update,
            )
            .with_message_content(),
        );
    }
    Ok(created(data))
}

#[derive(Deserialize)]
struct WithMember {
    #[serde(default)]
    with_member: bool,
    limit: Option<i64>,
    after: Option<Snowflake>,
}

fn thread_member_value(
    state: &AppState,
    tm: &ThreadMember,
    guild_id: Snowflake,
    with_member: bool,
) -> Result<Value, ApiError> {
    let mut value = render::thread_member(tm);
    if with_member {
        if let Some(member) = state.store.member(guild_id, tm.user_id)? {
            value["member"] = render::member(&state.store, &member)?;
        }
    }
    Ok(value)
}

async fn list_thread_members(
    State(state): State<AppState>,
    _: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Q(query): Q<WithMember>,
    InThread(access, _): InThread,
) -> ApiResult {
    let limit = limit(query.limit, 100, 100)?;
    let guild_id = access.guild_id().unwrap_or_default();
    let after = query.after.unwrap_or_default();
    let members = state.store.thread_members.range(
        (channel_id, Snowflake(after.0.saturating_add(1))),
        (channel_id, Snowflake(u64::MAX)),
        false,
        limit,
    )?;
    ok_list(members.iter(), |m| {
        thread_member_value(&state, m, guild_id, query.with_member)
    })
}

async fn get_thread_member(
    State(state): State<AppState>,
    _: Auth,
    Ids((channel_id, user_id)): Ids<(Snowflake, Snowflake)>,
    Q(query): Q<WithMember>,
    InThread(access, _): InThread,
) -> ApiResult {
    let member = state
        .store
        .thread_members
        .get((channel_id, user_id))
        .or_unknown(Unknown::Member)?;
    Ok(ok(thread_member_value(
        &state,
        &member,
        access.guild_id().unwrap_or_default(),
        query.with_member,
    )?))
}

fn ensure_open(access: &ChannelAccess) -> Result<(), ApiError> {
    if access
        .channel
        .thread_metadata
        .as_ref()
        .is_some_and(|m| m.archived || m.locked)
        && access.permissions & bits::MANAGE_THREADS == 0
    {
        return Err(ApiError::bad_request(50083, "Thread is archived"));
    }
    Ok(())
}

async fn join_thread(
    State(state): State<AppState>,
    auth: Auth,
    Ids(_): Ids<Snowflake>,
    InThread(access, _): InThread,
) -> ApiResult {
    ensure_open(&access)?;
    add_to_thread(&state, &access.channel, auth.id())?;
    Ok(no_content())
}

async fn leave_thread(
    State(state): State<AppState>,
    auth: Auth,
    Ids(_): Ids<Snowflake>,
    InThread(access, _): InThread,
) -> ApiResult {
    remove_from_thread(&state, &access.channel, auth.id())?;
    Ok(no_content())
}

async fn add_thread_member(
    State(state): State<AppState>,
    auth: Auth,
    Ids((_, user_id)): Ids<(Snowflake, Snowflake)>,
    InThread(access, _): InThread,
) -> ApiResult {
    ensure_open(&access)?;
    access.require(bits::SEND_MESSAGES)?;
    if access.channel.kind == channel_type::PRIVATE_THREAD
        && access
            .channel
            .thread_metadata
            .as_ref()
            .and_then(|m| m.invitable)
            == Some(false)
        && access.permissions & bits::MANAGE_THREADS == 0
        && access.channel.owner_id != Some(auth.id())
    {
        return Err(ApiError::MissingPermissions);
    }
    let guild_id = access.guild_id().unwrap_or_default();
    state
        .store
        .member(guild_id, user_id)
        .or_unknown(Unknown::Member)?;
    add_to_thread(&state, &access.channel, user_id)?;
    Ok(no_content())
}

async fn remove_thread_member(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, user_id)): Ids<(Snowflake, Snowflake)>,
    InThread(access, _): InThread,
) -> ApiResult {
    ensure_open(&access)?;
    let owner_of_private = access.channel.kind == channel_type::PRIVATE_THREAD
        && access.channel.owner_id == Some(auth.id());
    if user_id != auth.id() && !owner_of_private {
        access.require(bits::MANAGE_THREADS)?;
    }
    state
        .store
        .thread_members
        .get((channel_id, user_id))
        .or_unknown(Unknown::Member)?;
    remove_from_thread(&state, &access.channel, user_id)?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct ArchivedQuery {
    before: Option<String>,
    limit: Option<i64>,
}

fn archived(
    state: &AppState,
    auth: &Auth,
    parent: &ChannelAccess,
    query: ArchivedQuery,
    filter: impl Fn(&Channel) -> Result<bool, ApiError>,
) -> ApiResult {
    let limit = limit(query.limit, 50, 100)?;
    let before_ms = match query.before.as_deref() {
        Some(text) => Some(
            parse_iso8601_ms(text)
                .or_else(|| Snowflake::parse(number_text(text)).map(|s| s.timestamp_ms()))
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "before",
                        "DATE_TIME_TYPE_PARSE",
                        "Could not parse the timestamp.",
                    )
                })?,
        ),
        None => None,
    };
    let guild_id = parent.guild_id().unwrap_or_default();
    let mut threads: Vec<(u64, Channel)> = Vec::new();
    for channel in state.store.guild_channel_list(guild_id)? {
        let Some(meta) = channel.thread_metadata.as_ref() else {
            continue;
        };
        if channel.parent_id != Some(parent.channel.id) || !meta.archived || !filter(&channel)? {
            continue;
        }
        let at = parse_iso8601_ms(&meta.archive_timestamp).unwrap_or(0);
        if before_ms.is_none_or(|b| at < b) {
            threads.push((at, channel));
        }
    }
    threads.sort_by_key(|t| std::cmp::Reverse(t.0));
    let has_more = threads.len() > limit;
    threads.truncate(limit);
    let mut members = Vec::new();
    for (_, thread) in &threads {
        if let Some(member) = state.store.thread_members.get((thread.id, auth.id()))? {
            members.push(render::thread_member(&member));
        }
    }
    let threads = threads
        .iter()
        .map(|(_, c)| render::channel(&state.store, c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(
        json!({"threads": threads, "members": members, "has_more": has_more}),
    ))
}

async fn archived_public(
    State(state): State<AppState>,
    auth: Auth,
    Ids(_): Ids<Snowflake>,
    Q(query): Q<ArchivedQuery>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    guild_channel(&access)?;
    access.require(bits::READ_MESSAGE_HISTORY)?;
    archived(&state, &auth, &access, query, |c| {
        Ok(c.kind != channel_type::PRIVATE_THREAD)
    })
}

async fn archived_private(
    State(state): State<AppState>,
    auth: Auth,
    Ids(_): Ids<Snowflake>,
    Q(query): Q<ArchivedQuery>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    guild_channel(&access)?;
    access.require(bits::READ_MESSAGE_HISTORY | bits::MANAGE_THREADS)?;
    archived(&state, &auth, &access, query, |c| {
        Ok(c.kind == channel_type::PRIVATE_THREAD)
    })
}

async fn archived_joined_private(
    State(state): State<AppState>,
    auth: Auth,
    Ids(_): Ids<Snowflake>,
    Q(query): Q<ArchivedQuery>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    guild_channel(&access)?;
    access.require(bits::READ_MESSAGE_HISTORY)?;
    let me = auth.id();
    let store = state.store.clone();
    archived(&state, &auth, &access, query, move |c| {
        Ok(c.kind == channel_type::PRIVATE_THREAD && store.thread_members.contains((c.id, me))?)
    })
}
