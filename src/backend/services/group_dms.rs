//! Group DMs: creating one (`POST /users/@me/channels` with several recipients: the creator
//! owns it, everyone invited must be their friend, at most ten people in all), editing its
//! name, icon and owner (`PATCH /channels/{id}`), adding and removing people and leaving
//! (`DELETE /channels/{id}`). Each participant gets their own view in CHANNEL_CREATE/UPDATE,
//! CHANNEL_RECIPIENT_ADD/REMOVE go to the others, and the changes leave the system messages
//! Discord writes (RECIPIENT_ADD 1, RECIPIENT_REMOVE 2, CHANNEL_NAME_CHANGE 4,
//! CHANNEL_ICON_CHANGE 5). A user account adds only its friends (50007 otherwise, as when
//! creating the group). Each participant's copy in the gateway events and the DM list carries
//! `blocked_user_warning_dismissed`, which `POST /channels/{id}/blocked-user-warning-dismissal`
//! sets (the client warns about blocked users in the group until then).
use serde_json::{json, Value};

use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::events::Dispatch;
use crate::backend::model::{channel_type, Channel, Message, User};
use crate::backend::render;
use crate::backend::services::channels::strip_self_from_recipients;
use crate::backend::services::relationships::{are_friends, blocked_either_way};
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;
use crate::gateway::intents;

/// Most people a group DM holds, its owner included.
const MAX_PARTICIPANTS: usize = 10;

/// System message types a group DM's changes leave.
mod system {
    /// Someone was added.
    pub(super) const RECIPIENT_ADD: u8 = 1;
    /// Someone was removed or left.
    pub(super) const RECIPIENT_REMOVE: u8 = 2;
    /// The group was renamed (content: the new name, empty when it was removed).
    pub(super) const CHANNEL_NAME_CHANGE: u8 = 4;
    /// The group's icon changed.
    pub(super) const CHANNEL_ICON_CHANGE: u8 = 5;
}

/// The group DM (or DM) as `viewer` sees it: the others as `recipients`, group fields set.
pub(crate) fn view(
    state: &AppState,
    channel: &Channel,
    viewer: Snowflake,
) -> Result<Value, ApiError> {
    let mut out = render::channel(&state.store, channel)?;
    strip_self_from_recipients(&mut out, viewer);
    if channel.kind == channel_type::GROUP_DM {
        out["name"] = json!(channel.name);
        out["icon"] = json!(channel.icon);
        out["owner_id"] = json!(channel.owner_id);
        out["last_pin_timestamp"] = Value::Null;
    }
    Ok(out)
}

/// Adds `blocked_user_warning_dismissed` to `viewer`'s copy of a group DM (the field the
/// gateway events and the DM list carry).
pub(crate) fn add_warning_flag(
    state: &AppState,
    out: &mut Value,
    channel: &Channel,
    viewer: Snowflake,
) -> Result<(), ApiError> {
    if channel.kind == channel_type::GROUP_DM {
        let dismissed = state
            .store
            .account
            .blocked_warning_dismissed
            .contains((viewer, channel.id))?;
        out["blocked_user_warning_dismissed"] = json!(dismissed);
    }
    Ok(())
}

/// `viewer`'s copy of `channel` for a gateway event: [`view`] with the warning flag.
fn event_view(state: &AppState, channel: &Channel, viewer: Snowflake) -> Result<Value, ApiError> {
    let mut out = view(state, channel, viewer)?;
    add_warning_flag(state, &mut out, channel, viewer)?;
    Ok(out)
}

/// Sends each of `users` their own view of `channel` under `name`.
pub(crate) fn publish_to_each(
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
            event_view(state, channel, *user)?,
        ));
    }
    Ok(())
}

/// `POST /channels/{id}/blocked-user-warning-dismissal`: `user` acknowledged the blocked users
/// in the group DM; CHANNEL_UPDATE with the flag set to their sessions. 50024 on any other
/// channel type.
pub(crate) fn dismiss_blocked_warning(
    state: &AppState,
    user: Snowflake,
    channel_id: Snowflake,
) -> Result<(), ApiError> {
    let channel = state
        .store
        .channel(channel_id)
        .or_unknown(Unknown::Channel)?;
    if channel.kind != channel_type::GROUP_DM {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    }
    state
        .store
        .account
        .blocked_warning_dismissed
        .insert((user, channel_id))?;
    publish_to_each(state, "CHANNEL_UPDATE", &channel, &[user])
}

/// A user account adds only its friends to a group DM (50007 otherwise).
fn check_friend(state: &AppState, actor: &User, added: Snowflake) -> Result<(), ApiError> {
    if !actor.bot && !are_friends(state, actor.id, added)? {
        return Err(cannot_message());
    }
    Ok(())
}

/// 50007, Discord's answer when either side blocked the other (or a bot is involved).
fn cannot_message() -> ApiError {
    ApiError::forbidden(50007, "Cannot send messages to this user")
}

/// Writes a system message of `kind` by `author` into the group DM and sends MESSAGE_CREATE
/// to everyone in it.
fn system_message(
    state: &AppState,
    channel: &Channel,
    author: Snowflake,
    kind: u8,
    content: String,
    mentions: Vec<Snowflake>,
) -> Result<(), ApiError> {
    let message = Message {
        kind,
        content,
        mentions,
        ..Message::new(state.store.next_id(), channel.id, None, author)
    };
    state.store.put_message(&message)?;
    let mut data = render::message(&state.store, &message, None)?;
    data["channel_type"] = json!(channel.kind);
    state.publish(
        Dispatch::for_channel(
            "MESSAGE_CREATE",
            channel,
            intents::GUILD_MESSAGES,
            intents::DIRECT_MESSAGES,
            data,
        )
        .with_message_content(),
    );
    Ok(())
}

/// Creates a group DM owned by `owner` with `recipients` (duplicates and the owner ignored);
/// the owner's view of it.
pub(crate) fn create(
    state: &AppState,
    owner: &User,
    recipients: &[Snowflake],
    name: Option<String>,
    icon: Option<String>,
) -> Result<Value, ApiError> {
    if owner.bot {
        return Err(ApiError::forbidden(
            50007,
            "Cannot send messages to this user",
        ));
    }
    let mut others: Vec<Snowflake> = Vec::new();
    for id in recipients {
        if *id != owner.id && !others.contains(id) {
            others.push(*id);
        }
    }
    if others.len() + 1 > MAX_PARTICIPANTS {
        return Err(ApiError::bad_request(
            30004,
            "Maximum number of recipients reached (10)",
        ));
    }
    for id in &others {
        let user = state
            .store
            .user(*id)?
            .ok_or(ApiError::NotFound(Unknown::User))?;
        if user.bot || !are_friends(state, owner.id, *id)? {
            return Err(ApiError::forbidden(
                50007,
                "Cannot send messages to this user",
            ));
        }
    }
    let icon = icon
        .map(|data| crate::backend::services::images::store_image(&state.store, &data, "icon"))
        .transpose()?;
    let mut participants = vec![owner.id];
    participants.extend(others);
    let channel = {
        let _guard = state.store.lock();
        let mut channel = Channel::new(state.store.next_id(), channel_type::GROUP_DM);
        channel.recipient_ids = Some(participants.clone());
        channel.owner_id = Some(owner.id);
        channel.name = name.filter(|n| !n.is_empty());
        channel.icon = icon;
        state.store.put_channel(&channel)?;
        for user in &participants {
            state.store.user_dms.insert((*user, channel.id))?;
        }
        channel
    };
    publish_to_each(state, "CHANNEL_CREATE", &channel, &participants)?;
    view(state, &channel, owner.id)
}

/// A group DM edit (`PATCH /channels/{id}` on a group DM).
#[derive(Debug, Default)]
pub(crate) struct GroupEdit {
    /// New name; empty removes the custom name.
    pub name: Option<String>,
    /// New icon as a data URI, or `Some(None)` to remove it.
    pub icon: Option<Option<String>>,
    /// The recipient who becomes the owner (the owner alone may hand it over).
    pub owner: Option<Snowflake>,
}

/// Applies `edit` by `actor` (anyone in the group renames it or changes its icon, the owner
/// alone hands ownership to another participant): CHANNEL_UPDATE to each participant, the
/// name and icon system messages; the actor's view.
pub(crate) fn edit(
    state: &AppState,
    actor: Snowflake,
    channel_id: Snowflake,
    edit: GroupEdit,
) -> Result<Value, ApiError> {
    let mut checks = Validator::default();
    if edit.name.as_deref().is_some_and(|n| !n.is_empty()) {
        checks.length("name", edit.name.as_deref(), 1, 100);
    }
    checks.finish()?;
    let icon = match edit.icon {
        Some(Some(data)) => Some(Some(crate::backend::services::images::store_image(
            &state.store,
            &data,
            "icon",
        )?)),
        other => other.map(|_| None),
    };
    let (old, channel) = {
        let _guard = state.store.lock();
        let mut channel = state
            .store
            .channel(channel_id)
            .or_unknown(Unknown::Channel)?;
        let old = channel.clone();
        if let Some(owner) = edit.owner {
            if channel.owner_id != Some(actor) {
                return Err(ApiError::MissingPermissions);
            }
            if !channel
                .recipient_ids
                .as_ref()
                .is_some_and(|r| r.contains(&owner))
            {
                return Err(ApiError::invalid_field(
                    "owner",
                    "CHANNEL_RECIPIENT_INVALID",
                    "The new owner must be in the group DM.",
                ));
            }
            channel.owner_id = Some(owner);
        }
        if let Some(name) = edit.name {
            channel.name = Some(name).filter(|n| !n.is_empty());
        }
        if let Some(icon) = icon {
            channel.icon = icon;
        }
        state.store.put_channel(&channel)?;
        (old, channel)
    };
    let participants = channel.recipient_ids.clone().unwrap_or_default();
    publish_to_each(state, "CHANNEL_UPDATE", &channel, &participants)?;
    if old.name != channel.name {
        let content = channel.name.clone().unwrap_or_default();
        system_message(
            state,
            &channel,
            actor,
            system::CHANNEL_NAME_CHANGE,
            content,
            vec![],
        )?;
    }
    if old.icon != channel.icon {
        system_message(
            state,
            &channel,
            actor,
            system::CHANNEL_ICON_CHANGE,
            String::new(),
            vec![],
        )?;
    }
    view(state, &channel, actor)
}

/// What adding someone to a private channel made.
pub(crate) enum Added {
    /// A 1:1 DM became this new group DM (the actor's view; 201).
    NewGroup(Value),
    /// Added to the group DM, or already in it (204).
    Joined,
}

/// Adds `user_id` to the DM or group DM `channel_id` by `actor`: on a DM, a new group DM with
/// the three of them; on a group DM, the new participant joins (CHANNEL_CREATE to them,
/// CHANNEL_RECIPIENT_ADD and the RECIPIENT_ADD message to the others). 50007 when a bot is
/// involved or either side blocked the other, 30004 past ten people.
pub(crate) fn add_recipient(
    state: &AppState,
    actor: &User,
    channel_id: Snowflake,
    user_id: Snowflake,
) -> Result<Added, ApiError> {
    let added = state.store.user(user_id).or_unknown(Unknown::User)?;
    if blocked_either_way(state, actor.id, user_id)? {
        return Err(cannot_message());
    }
    let _guard = state.store.lock();
    let mut channel = state
        .store
        .channel(channel_id)
        .or_unknown(Unknown::Channel)?;
    let mut recipients = channel.recipient_ids.clone().unwrap_or_default();
    match channel.kind {
        channel_type::DM => {
            if actor.bot || added.bot {
                return Err(cannot_message());
            }
            if recipients.contains(&user_id) {
                return Err(ApiError::bad_request(50033, "Invalid Recipient(s)"));
            }
            check_friend(state, actor, user_id)?;
            // Adding someone to a 1:1 DM starts a new group DM with all three.
            recipients.push(user_id);
            let mut group = Channel::new(state.store.next_id(), channel_type::GROUP_DM);
            group.recipient_ids = Some(recipients.clone());
            group.owner_id = Some(actor.id);
            state.store.put_channel(&group)?;
            for user in &recipients {
                state.store.user_dms.insert((*user, group.id))?;
            }
            for user in &recipients {
                let mut data = event_view(state, &group, *user)?;
                data["origin_channel_id"] = json!(channel.id);
                state.publish(Dispatch::users("CHANNEL_CREATE", vec![*user], 0, data));
            }
            Ok(Added::NewGroup(view(state, &group, actor.id)?))
        }
        channel_type::GROUP_DM => {
            if recipients.contains(&user_id) {
                return Ok(Added::Joined);
            }
            check_friend(state, actor, user_id)?;
            if recipients.len() >= MAX_PARTICIPANTS {
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
            publish_to_each(state, "CHANNEL_CREATE", &channel, &[user_id])?;
            let mention = vec![user_id];
            system_message(
                state,
                &channel,
                actor.id,
                system::RECIPIENT_ADD,
                String::new(),
                mention,
            )?;
            Ok(Added::Joined)
        }
        _ => Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        )),
    }
}

/// Removes `user_id` from the group DM `channel_id` (the owner removes others, anyone removes
/// themself, which is leaving): CHANNEL_RECIPIENT_REMOVE and, unless `silent`, the
/// RECIPIENT_REMOVE message to those left, CHANNEL_DELETE to the one who goes. An owner who
/// leaves hands the group to the next participant; the last one out deletes it. The removed
/// user's last view of the channel.
pub(crate) fn remove_recipient(
    state: &AppState,
    actor: Snowflake,
    channel_id: Snowflake,
    user_id: Snowflake,
    silent: bool,
) -> Result<Value, ApiError> {
    let guard = state.store.lock();
    let mut channel = state
        .store
        .channel(channel_id)
        .or_unknown(Unknown::Channel)?;
    if channel.kind != channel_type::GROUP_DM {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    }
    if user_id != actor && channel.owner_id != Some(actor) {
        return Err(ApiError::MissingPermissions);
    }
    let mut recipients = channel.recipient_ids.clone().unwrap_or_default();
    if !recipients.contains(&user_id) {
        return Err(ApiError::NotFound(Unknown::User));
    }
    let removed = state.store.user(user_id).or_unknown(Unknown::User)?;
    recipients.retain(|id| *id != user_id);
    state.store.user_dms.remove((user_id, channel.id))?;
    let farewell = view(state, &channel, user_id)?;
    if recipients.is_empty() {
        state.store.channels.remove(channel.id)?;
        state.store.purge_channel(channel.id)?;
        drop(guard);
    } else {
        let handed_over = channel.owner_id == Some(user_id);
        if handed_over {
            channel.owner_id = recipients.first().copied();
        }
        channel.recipient_ids = Some(recipients.clone());
        state.store.put_channel(&channel)?;
        drop(guard);
        let mut audience = recipients.clone();
        audience.push(user_id);
        state.publish(Dispatch::users(
            "CHANNEL_RECIPIENT_REMOVE",
            audience,
            0,
            json!({"channel_id": channel.id, "user": render::user(&removed)}),
        ));
        if handed_over {
            publish_to_each(state, "CHANNEL_UPDATE", &channel, &recipients)?;
        }
        if !silent {
            let mention = vec![user_id];
            system_message(
                state,
                &channel,
                actor,
                system::RECIPIENT_REMOVE,
                String::new(),
                mention,
            )?;
        }
    }
    state.publish(Dispatch::users(
        "CHANNEL_DELETE",
        vec![user_id],
        0,
        farewell.clone(),
    ));
    Ok(farewell)
}
