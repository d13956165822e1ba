//! Read states: what each user has read (acks) and how many unread mentions wait in each
//! channel, counted from the stored messages (user, role and @everyone mentions after the last
//! ack; messages from users the reader blocked never count), the recent-mentions inbox (which
//! leaves blocked users' messages out too). MESSAGE_ACK and CHANNEL_PINS_ACK go to the user's
//! sessions.
use serde_json::json;

use crate::backend::error::{ApiError, Unknown};
use crate::backend::events::Dispatch;
use crate::backend::model::{Channel, Message, User};
use crate::backend::permissions::bits;
use crate::backend::services::relationships::has_blocked;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, Snowflake};
use crate::backend::state::AppState;
use crate::backend::user_state::{read_state_type, ReadState};

/// Most messages scanned when counting the mentions after an ack.
const MENTION_SCAN: usize = 10_000;
/// Most messages scanned per channel for the recent-mentions inbox.
const RECENT_SCAN: usize = 2_000;
/// How far back the recent-mentions inbox reaches (Discord's seven days).
const RECENT_WINDOW_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The filters of `GET /users/@me/mentions`.
#[derive(Debug, Clone)]
pub(crate) struct MentionQuery {
    /// Only messages before this one.
    pub before: Option<Snowflake>,
    /// At most this many (1-100).
    pub limit: usize,
    /// Only this guild's channels (DMs left out).
    pub guild_id: Option<Snowflake>,
    /// Role mentions count.
    pub roles: bool,
    /// @everyone and @here count.
    pub everyone: bool,
}

/// The channels the inbox looks at: the user's DMs and their guilds' channels (or one guild's).
fn inbox_channels(
    state: &AppState,
    user: &User,
    guild_id: Option<Snowflake>,
) -> Result<Vec<Snowflake>, ApiError> {
    let (mut channels, guilds) = match guild_id {
        Some(guild_id) => (Vec::new(), vec![guild_id]),
        None => (
            state.store.user_dms.ids(user.id)?,
            state.store.guild_ids_of(user.id)?,
        ),
    };
    for guild_id in guilds {
        channels.extend(
            state
                .store
                .guild_channel_list(guild_id)?
                .iter()
                .map(|c| c.id),
        );
    }
    Ok(channels)
}

/// Messages of the past seven days that mention `user` in channels they can read, newest
/// first. Messages by users `user` blocked are left out, as Discord leaves them out of the
/// inbox.
pub(crate) fn recent_mentions(
    state: &AppState,
    user: &User,
    query: &MentionQuery,
) -> Result<Vec<Message>, ApiError> {
    let floor = Snowflake::from_timestamp_ms(now_ms().saturating_sub(RECENT_WINDOW_MS));
    let ceiling = query.before.unwrap_or(Snowflake(u64::MAX));
    let mut found = Vec::new();
    for channel_id in inbox_channels(state, user, query.guild_id)? {
        let Ok(access) = state.channel_access(channel_id, user) else {
            continue;
        };
        if access.permissions & bits::READ_MESSAGE_HISTORY == 0 {
            continue;
        }
        let roles = match &access.guild {
            Some(guild) => guild.member.roles.clone(),
            None => Vec::new(),
        };
        let messages = state.store.messages.range(
            (channel_id, floor),
            (channel_id, ceiling),
            true,
            RECENT_SCAN,
        )?;
        for message in messages {
            let hit = message.author_id != user.id
                && (message.mentions.contains(&user.id)
                    || (query.everyone && message.mention_everyone)
                    || (query.roles && message.mention_roles.iter().any(|r| roles.contains(r))));
            if hit
                && !has_blocked(state, user.id, message.author_id)?
                && !state
                    .store
                    .account
                    .mentions_deleted
                    .contains((user.id, message.id))?
            {
                found.push(message);
            }
        }
    }
    found.sort_by_key(|m| std::cmp::Reverse(m.id));
    found.truncate(query.limit);
    Ok(found)
}

/// Removes `message_id` from `user`'s recent-mentions inbox (`DELETE /users/@me/mentions/{id}`)
/// for good; RECENT_MENTION_DELETE to their sessions. 10008 when the message is not in the
/// inbox (not a mention of theirs from the past week, or removed already).
pub(crate) fn delete_recent_mention(
    state: &AppState,
    user: &User,
    message_id: Snowflake,
) -> Result<(), ApiError> {
    let query = MentionQuery {
        before: Some(Snowflake(message_id.0.saturating_add(1))),
        limit: 2,
        guild_id: None,
        roles: true,
        everyone: true,
    };
    let inbox = recent_mentions(state, user, &query)?;
    if !inbox.iter().any(|m| m.id == message_id) {
        return Err(ApiError::NotFound(Unknown::Message));
    }
    state
        .store
        .account
        .mentions_deleted
        .insert((user.id, message_id))?;
    state.publish(Dispatch::users(
        "RECENT_MENTION_DELETE",
        vec![user.id],
        0,
        json!({"message_id": message_id}),
    ));
    Ok(())
}

/// Whether `message` mentions `user_id` (directly, by one of `roles`, or @everyone/@here).
fn mentions(message: &Message, user_id: Snowflake, roles: &[Snowflake]) -> bool {
    message.author_id != user_id
        && (message.mention_everyone
            || message.mentions.contains(&user_id)
            || message.mention_roles.iter().any(|r| roles.contains(r)))
}

/// Unread mentions of `user_id` in `channel` after `after` (exclusive).
pub(crate) fn mention_count(
    state: &AppState,
    user_id: Snowflake,
    channel: &Channel,
    after: Snowflake,
) -> Result<u32, ApiError> {
    let roles = match channel.guild_id {
        Some(guild_id) => state
            .store
            .member(guild_id, user_id)?
            .map(|m| m.roles)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let start = Snowflake(after.0.saturating_add(1));
    let messages = state.store.messages.range(
        (channel.id, start),
        (channel.id, Snowflake(u64::MAX)),
        false,
        MENTION_SCAN,
    )?;
    let blocked = |author: Snowflake| {
        crate::backend::services::relationships::has_blocked(state, user_id, author)
            .unwrap_or(false)
    };
    let count = messages
        .iter()
        .filter(|m| mentions(m, user_id, &roles) && !blocked(m.author_id))
        .count();
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

fn bump_version(state: &AppState, user_id: Snowflake) -> Result<u64, ApiError> {
    Ok(state
        .store
        .account
        .bump_version(user_id, |versions| &mut versions.read_state)?)
}

/// The key of a read state.
fn read_state_key(
    user_id: Snowflake,
    kind: u8,
    resource: Snowflake,
) -> (Snowflake, Snowflake, Snowflake) {
    (user_id, Snowflake(u64::from(kind)), resource)
}

/// The stored read state of `resource`, or a fresh one (call under the store's lock).
fn stored_read_state(
    state: &AppState,
    user_id: Snowflake,
    kind: u8,
    resource: Snowflake,
) -> Result<ReadState, ApiError> {
    let key = read_state_key(user_id, kind, resource);
    Ok(state
        .store
        .account
        .read_states
        .get(key)?
        .unwrap_or(ReadState {
            id: resource,
            read_state_type: kind,
            ..ReadState::default()
        }))
}

/// Acknowledges `message_id` in `channel` for `user_id`. `mention_count` (with `manual`) sets
/// the count as the client asks; otherwise it is counted. Sends MESSAGE_ACK; returns the state.
pub(crate) fn ack_message(
    state: &AppState,
    user_id: Snowflake,
    channel: &Channel,
    message_id: Snowflake,
    manual: bool,
    mention_count_override: Option<u32>,
) -> Result<ReadState, ApiError> {
    let (read_state, version) = {
        let _guard = state.store.lock();
        let key = read_state_key(user_id, read_state_type::CHANNEL, channel.id);
        let mut read_state =
            stored_read_state(state, user_id, read_state_type::CHANNEL, channel.id)?;
        read_state.last_message_id = Some(message_id);
        read_state.mention_count = match mention_count_override {
            Some(count) if manual => count,
            _ => mention_count(state, user_id, channel, message_id)?,
        };
        read_state.flags = u32::from(channel.guild_id.is_some());
        read_state.last_viewed = Some(days_since_epoch());
        state.store.account.read_states.put(key, &read_state)?;
        (read_state, bump_version(state, user_id)?)
    };
    let mut data = json!({
        "channel_id": channel.id,
        "message_id": message_id,
        "ack_type": read_state_type::CHANNEL,
        "mention_count": read_state.mention_count,
        "flags": read_state.flags,
        "last_viewed": read_state.last_viewed,
        "version": version,
    });
    if manual {
        data["manual"] = json!(true);
    }
    state.publish(Dispatch::users("MESSAGE_ACK", vec![user_id], 0, data));
    Ok(read_state)
}

/// Days since the Discord epoch (2015), a read state's `last_viewed`.
fn days_since_epoch() -> u32 {
    let ms = now_ms().saturating_sub(crate::backend::snowflake::DISCORD_EPOCH_MS);
    u32::try_from(ms / 86_400_000).unwrap_or(u32::MAX)
}

/// Acknowledges a non-channel read state (guild home, events...) at `entity_id`.
pub(crate) fn ack_other(
    state: &AppState,
    user_id: Snowflake,
    kind: u8,
    resource: Snowflake,
    entity_id: Snowflake,
) -> Result<(), ApiError> {
    let version = {
        let _guard = state.store.lock();
        let key = read_state_key(user_id, kind, resource);
        let mut read_state = stored_read_state(state, user_id, kind, resource)?;
        read_state.last_acked_id = Some(entity_id);
        read_state.badge_count = 0;
        state.store.account.read_states.put(key, &read_state)?;
        bump_version(state, user_id)?
    };
    state.publish(Dispatch::users(
        "MESSAGE_ACK",
        vec![user_id],
        0,
        json!({"channel_id": resource, "message_id": entity_id, "ack_type": kind, "version": version}),
    ));
    Ok(())
}

/// Marks the channel's pins read up to now (CHANNEL_PINS_ACK).
pub(crate) fn ack_pins(
    state: &AppState,
    user_id: Snowflake,
    channel: &Channel,
) -> Result<(), ApiError> {
    let timestamp = iso8601_from_ms(now_ms());
    let version = {
        let _guard = state.store.lock();
        let key = read_state_key(user_id, read_state_type::CHANNEL, channel.id);
        let mut read_state =
            stored_read_state(state, user_id, read_state_type::CHANNEL, channel.id)?;
        read_state.last_pin_timestamp = Some(timestamp.clone());
        state.store.account.read_states.put(key, &read_state)?;
        bump_version(state, user_id)?
    };
    state.publish(Dispatch::users(
        "CHANNEL_PINS_ACK",
        vec![user_id],
        0,
        json!({"channel_id": channel.id, "timestamp": timestamp, "version": version}),
    ));
    Ok(())
}

/// Every read state of `user_id` with channel mention counts recomputed from the stored
/// messages (what READY's `read_state.entries` carries).
// The user gateway's READY (#15) calls this once both branches are merged.
#[allow(dead_code)]
pub(crate) fn read_states_for(
    state: &AppState,
    user_id: Snowflake,
) -> Result<Vec<ReadState>, ApiError> {
    let mut out = state.store.account.read_states.values(user_id)?;
    for read_state in &mut out {
        if read_state.read_state_type != read_state_type::CHANNEL {
            continue;
        }
        if let (Some(last), Some(channel)) = (
            read_state.last_message_id,
            state.store.channel(read_state.id)?,
        ) {
            read_state.mention_count = mention_count(state, user_id, &channel, last)?;
        }
    }
    Ok(out)
}
