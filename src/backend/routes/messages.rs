//! Messages: create (replies, nonces, embeds, allowed_mentions, parsed mentions), list, get,
//! edit, delete, bulk delete, crosspost, pins (both the legacy and the paginated routes) and
//! every reaction route.
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, ok_list, ApiResult};
use crate::backend::error::{json_bytes_response, ApiError, OrUnknown, Unknown, Validator};
use crate::backend::extract::{Auth, Body, Ids, InChannel, InGuildChannel, Payload, Reason, Q};
use crate::backend::model::*;
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::common::limit;
use crate::backend::services::messages::{
    apply_edit, deliver_crosspost, load_message, post_message_with, remove_message, CreateMessage,
    EditMessage, NewMessage, Poster,
};
use crate::backend::services::publish::{publish_message, EPHEMERAL};
use crate::backend::snowflake::{iso8601_from_ms, now_ms, Snowflake};
use crate::backend::state::{AppState, ChannelAccess};
use crate::backend::store::ReactionEntry;
use crate::{backend::events::Dispatch, gateway::intents};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    let router = Router::new()
        .route(
            "/channels/{channel_id}/messages",
            get(list_messages).post(create_message),
        )
        .route(
            "/channels/{channel_id}/messages/bulk-delete",
            post(bulk_delete),
        )
        .route("/channels/{channel_id}/messages/pins", get(list_pins_paged))
        .route("/channels/{channel_id}/pins", get(list_pins_legacy))
        .route(
            "/channels/{channel_id}/messages/{message_id}",
            get(get_message).patch(edit_message).delete(delete_message),
        )
        .route(
            "/channels/{channel_id}/messages/{message_id}/crosspost",
            post(crosspost),
        )
        .route(
            "/channels/{channel_id}/messages/{message_id}/reactions",
            axum::routing::delete(remove_all_reactions),
        )
        .route(
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}",
            get(list_reactors).delete(remove_emoji_reactions),
        )
        .route(
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            put(add_own_reaction).delete(remove_own_reaction),
        )
        .route(
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}",
            axum::routing::delete(remove_user_reaction),
        );
    // The pin routes and their older spelling.
    [
        "/channels/{channel_id}/messages/pins/{message_id}",
        "/channels/{channel_id}/pins/{message_id}",
    ]
    .into_iter()
    .fold(router, |router, path| {
        router.route(path, put(pin_or_unpin).delete(pin_or_unpin))
    })
}

async fn create_message(
    State(state): State<AppState>,
    auth: Auth,
    Ids(_): Ids<Snowflake>,
    headers: axum::http::HeaderMap,
    version: Option<axum::Extension<super::ApiVersion>>,
    InChannel(access, Payload { mut body, files }): InChannel<0, Payload<CreateMessage>>,
) -> ApiResult {
    // API v10 dropped the singular `embed` (deprecated in v9 for `embeds`): it is ignored there.
    if version.is_some_and(|axum::Extension(v)| v.0 >= 10) {
        body.embed = None;
    }
    if access.guild.is_none() {
        let others: Vec<Snowflake> = access
            .channel
            .recipient_ids
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|id| *id != auth.id())
            .collect();
        for other in others {
            let bots = auth.user.bot && state.store.user(other)?.is_some_and(|u| u.bot);
            // A 1:1 DM where either side blocked the other takes no messages (group DMs do,
            // and the client hides them).
            let blocked = access.channel.kind == channel_type::DM
                && crate::backend::services::relationships::blocked_either_way(
                    &state,
                    auth.id(),
                    other,
                )?;
            if bots || blocked {
                return Err(ApiError::forbidden(
                    50007,
                    "Cannot send messages to this user",
                ));
            }
        }
    }
    let origin = crate::backend::services::common::origin(&headers);
    let poster = Poster {
        user: &auth.user,
        webhook: None,
    };
    let request = NewMessage {
        uploads: &files,
        origin: &origin,
        ..NewMessage::new(poster, &access, body)
    };
    let (bytes, _) = post_message_with(&state, request, serde_json::to_vec)?;
    let bytes = bytes.map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_bytes_response(StatusCode::OK, bytes))
}

#[derive(Deserialize)]
struct ListQuery {
    before: Option<Snowflake>,
    after: Option<Snowflake>,
    around: Option<Snowflake>,
    limit: Option<i64>,
}

async fn list_messages(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Q(query): Q<ListQuery>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    let limit = limit(query.limit, 50, 100)?;
    if access.permissions & bits::READ_MESSAGE_HISTORY == 0 {
        return Ok(ok(json!([])));
    }
    let store = &state.store;
    let low = Snowflake(0);
    let high = Snowflake(u64::MAX);
    let messages: Vec<Message> = if let Some(around) = query.around {
        let before_count = limit / 2;
        let mut older = history(&state, channel_id, (low, around), true, before_count)?;
        let newer = history(
            &state,
            channel_id,
            (around, high),
            false,
            limit - before_count,
        )?;
        let mut out: Vec<Message> = newer.into_iter().rev().collect();
        out.append(&mut older);
        out
    } else if let Some(after) = query.after {
        let from = Snowflake(after.0.saturating_add(1));
        let mut out = history(&state, channel_id, (from, high), false, limit)?;
        out.reverse();
        out
    } else {
        let end = query.before.unwrap_or(high);
        history(&state, channel_id, (low, end), true, limit)?
    };
    ok_list(messages.iter(), |m| {
        render::message(store, m, Some(auth.id()))
    })
}

/// Up to `limit` messages of the channel with ids in `[from, to)`, newest first when
/// `descending`, skipping ephemeral interaction responses (they are not channel history).
fn history(
    state: &AppState,
    channel_id: Snowflake,
    (mut from, mut to): (Snowflake, Snowflake),
    descending: bool,
    limit: usize,
) -> Result<Vec<Message>, ApiError> {
    let mut out = Vec::new();
    loop {
        let batch =
            state
                .store
                .messages
                .range((channel_id, from), (channel_id, to), descending, limit)?;
        let exhausted = batch.len() < limit;
        for message in batch {
            if descending {
                to = message.id;
            } else {
                from = Snowflake(message.id.0.saturating_add(1));
            }
            if message.flags & EPHEMERAL == 0 {
                out.push(message);
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
        if exhausted || limit == 0 {
            return Ok(out);
        }
    }
}

async fn get_message(
    State(state): State<AppState>,
    auth: Auth,
    Ids((_, message_id)): Ids<(Snowflake, Snowflake)>,
    InChannel(access, _): InChannel<{ bits::READ_MESSAGE_HISTORY }>,
) -> ApiResult {
    let message = load_message(&state, &access, message_id)?;
    Ok(ok(render::message(
        &state.store,
        &message,
        Some(auth.id()),
    )?))
}

async fn edit_message(
    State(state): State<AppState>,
    auth: Auth,
    Ids((_, message_id)): Ids<(Snowflake, Snowflake)>,
    InChannel(access, Body(body)): InChannel<0, Body<EditMessage>>,
) -> ApiResult {
    let message = load_message(&state, &access, message_id)?;
    let own = message.author_id == auth.id() && message.webhook.is_none();
    let only_flags = body.content.is_none()
        && body.embeds.is_none()
        && body.components.is_none()
        && body.attachments.is_none();
    if message.poll.is_some() && !only_flags {
        return Err(ApiError::bad_request(520003, "Cannot edit a poll message"));
    }
    if !own {
        if !only_flags {
            return Err(ApiError::forbidden(
                50005,
                "Cannot edit a message authored by another user",
            ));
        }
        access.require(bits::MANAGE_MESSAGES)?;
    }
    Ok(ok(apply_edit(
        &state,
        &access,
        message_id,
        body,
        auth.id(),
    )?))
}

async fn delete_message(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InChannel(access, _): InChannel,
) -> ApiResult {
    let message = load_message(&state, &access, message_id)?;
    let own = message.author_id == auth.id() && message.webhook.is_none();
    if !own {
        if access.guild.is_none() {
            return Err(ApiError::forbidden(
                50003,
                "Cannot execute action on a DM channel",
            ));
        }
        access.require(bits::MANAGE_MESSAGES)?;
    }
    remove_message(&state, &access, &message)?;
    if let (false, Some(guild_id)) = (own, access.guild_id()) {
        state.audit(
            guild_id,
            auth.id(),
            audit_action::MESSAGE_DELETE,
            Some(message.author_id),
            vec![],
            Some(json!({"channel_id": channel_id, "count": "1"})),
            reason,
        )?;
    }
    Ok(no_content())
}

#[derive(Deserialize)]
struct BulkDelete {
    messages: Option<Vec<Snowflake>>,
}

async fn bulk_delete(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuildChannel((_, guild_id), Body(body)): InGuildChannel<
        { bits::MANAGE_MESSAGES },
        Body<BulkDelete>,
    >,
) -> ApiResult {
    let ids = body.messages.unwrap_or_default();
    let mut checks = Validator::default();
    if ids.len() < 2 || ids.len() > 100 {
        checks.add(
            "messages",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 2 and 100 in length.",
        );
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != ids.len() {
        checks.add(
            "messages",
            "BASE_TYPE_DUPLICATES",
            "Duplicate values are not allowed.",
        );
    }
    checks.finish()?;
    let cutoff = now_ms().saturating_sub(14 * 86_400_000);
    if ids.iter().any(|id| id.timestamp_ms() < cutoff) {
        return Err(ApiError::bad_request(
            50034,
            "You can only bulk delete messages that are under 14 days old.",
        ));
    }
    let mut deleted = Vec::new();
    for id in ids {
        if let Some(message) = state.store.message(channel_id, id)? {
            state.store.messages.remove((channel_id, id))?;
            state.store.reactions.remove((channel_id, id))?;
            state.store.pins.remove((channel_id, id))?;
            deleted.push(message.id);
        }
    }
    state.audit(
        guild_id,
        auth.id(),
        audit_action::MESSAGE_BULK_DELETE,
        Some(channel_id),
        vec![],
        Some(json!({"count": deleted.len().to_string()})),
        reason,
    )?;
    state.publish(Dispatch::channel(
        "MESSAGE_DELETE_BULK",
        guild_id,
        channel_id,
        intents::GUILD_MESSAGES,
        json!({"ids": deleted, "channel_id": channel_id, "guild_id": guild_id}),
    ));
    Ok(no_content())
}

async fn crosspost(
    State(state): State<AppState>,
    auth: Auth,
    Ids((_, message_id)): Ids<(Snowflake, Snowflake)>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    if access.channel.kind != channel_type::GUILD_ANNOUNCEMENT {
        return Err(ApiError::bad_request(
            50068,
            "Invalid message type for operation",
        ));
    }
    let message = load_message(&state, &access, message_id)?;
    access.require(if message.author_id == auth.id() {
        bits::SEND_MESSAGES
    } else {
        bits::MANAGE_MESSAGES
    })?;
    if message.flags & 1 != 0 {
        return Err(ApiError::bad_request(
            40033,
            "This message has already been crossposted.",
        ));
    }
    let message = {
        let _guard = state.store.lock();
        let mut message = load_message(&state, &access, message_id)?;
        message.flags |= 1;
        state.store.put_message(&message)?;
        message
    };
    let rendered = render::message(&state.store, &message, Some(auth.id()))?;
    publish_message(
        &state,
        "MESSAGE_UPDATE",
        &access,
        &message,
        rendered.clone(),
    )?;
    deliver_crosspost(&state, &message)?;
    Ok(ok(rendered))
}

// ---- pins ----

fn require_pin_permission(access: &ChannelAccess) -> Result<(), ApiError> {
    if access.guild.is_none()
        || access.permissions & (bits::MANAGE_MESSAGES | bits::PIN_MESSAGES) != 0
    {
        Ok(())
    } else {
        Err(ApiError::MissingPermissions)
    }
}

fn publish_pins_update(state: &AppState, access: &ChannelAccess) -> Result<(), ApiError> {
    let last = state
        .store
        .pins
        .values(access.channel.id)?
        .into_iter()
        .max()
        .map(iso8601_from_ms);
    let data = json!({"channel_id": access.channel.id, "last_pin_timestamp": last});
    state.publish(Dispatch::for_channel(
        "CHANNEL_PINS_UPDATE",
        &access.channel,
        intents::GUILDS,
        intents::DIRECT_MESSAGES,
        data,
    ));
    Ok(())
}

/// PUT pins the message, DELETE unpins it.
async fn pin_or_unpin(
    State(state): State<AppState>,
    auth: Auth,
    method: Method,
    Ids((_, message_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InChannel(access, _): InChannel,
) -> ApiResult {
    let pinned = method == Method::PUT;
    set_pinned(&state, &auth, &access, message_id, pinned, reason)
}

/// Pins or unpins a message (nothing to do if it already is): MESSAGE_UPDATE,
/// CHANNEL_PINS_UPDATE, the pin notice (type 6) when pinning, and the audit entry.
fn set_pinned(
    state: &AppState,
    auth: &Auth,
    access: &ChannelAccess,
    message_id: Snowflake,
    pinned: bool,
    reason: Option<String>,
) -> ApiResult {
    let channel_id = access.channel.id;
    require_pin_permission(access)?;
    let message = {
        let _guard = state.store.lock();
        let mut message = load_message(state, access, message_id)?;
        if message.pinned == pinned {
            return Ok(no_content());
        }
        if pinned && state.store.pins.count(channel_id) >= 50 {
            return Err(ApiError::bad_request(
                30003,
                "Maximum number of pins reached (50)",
            ));
        }
        message.pinned = pinned;
        state.store.put_message(&message)?;
        let key = (channel_id, message_id);
        if pinned {
            state.store.pins.put(key, &now_ms())?;
        } else {
            state.store.pins.remove(key)?;
        }
        message
    };
    let rendered = render::message(&state.store, &message, None)?;
    publish_message(state, "MESSAGE_UPDATE", access, &message, rendered)?;
    publish_pins_update(state, access)?;
    if pinned {
        // Discord announces pins with a system message (type 6) referencing the pinned one.
        let notice = Message {
            kind: 6,
            message_reference: Some(MessageReference::to(&message)),
            ..Message::new(
                state.store.next_id(),
                channel_id,
                access.guild_id(),
                auth.id(),
            )
        };
        state.store.put_message(&notice)?;
        let rendered = render::message(&state.store, &notice, None)?;
        publish_message(state, "MESSAGE_CREATE", access, &notice, rendered)?;
    }
    if let Some(guild_id) = access.guild_id() {
        state.audit(
            guild_id,
            auth.id(),
            if pinned {
                audit_action::MESSAGE_PIN
            } else {
                audit_action::MESSAGE_UNPIN
            },
            Some(message.author_id),
            vec![],
            Some(json!({"channel_id": channel_id, "message_id": message_id})),
            reason,
        )?;
    }
    Ok(no_content())
}

/// Pinned messages, newest pin first: (pinned_at ms, message).
fn pinned(state: &AppState, channel_id: Snowflake) -> Result<Vec<(u64, Message)>, ApiError> {
    let mut out = Vec::new();
    for message in state.store.messages.values(channel_id)? {
        if message.pinned {
            let at = state
                .store
                .pins
                .get((channel_id, message.id))?
                .unwrap_or_else(|| message.id.timestamp_ms());
            out.push((at, message));
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.0));
    Ok(out)
}

async fn list_pins_legacy(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    if access.permissions & bits::READ_MESSAGE_HISTORY == 0 {
        return Ok(ok(json!([])));
    }
    ok_list(pinned(&state, channel_id)?.iter(), |(_, m)| {
        render::message(&state.store, m, Some(auth.id()))
    })
}

#[derive(Deserialize)]
struct PinsQuery {
    before: Option<String>,
    limit: Option<i64>,
}

async fn list_pins_paged(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Q(query): Q<PinsQuery>,
    _: InChannel<{ bits::READ_MESSAGE_HISTORY }>,
) -> ApiResult {
    let limit = limit(query.limit, 50, 50)?;
    let before = match query.before.as_deref() {
        Some(text) => Some(
            crate::backend::snowflake::parse_iso8601_ms(text).ok_or_else(|| {
                ApiError::invalid_field(
                    "before",
                    "DATE_TIME_TYPE_PARSE",
                    "Could not parse the timestamp.",
                )
            })?,
        ),
        None => None,
    };
    let all: Vec<(u64, Message)> = pinned(&state, channel_id)?
        .into_iter()
        .filter(|(at, _)| before.is_none_or(|b| *at < b))
        .collect();
    let has_more = all.len() > limit;
    let items = all
        .iter()
        .take(limit)
        .map(|(at, m)| Ok(json!({"pinned_at": iso8601_from_ms(*at), "message": render::message(&state.store, m, Some(auth.id()))?})))
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(ok(json!({"items": items, "has_more": has_more})))
}

// ---- reactions ----

/// An emoji named in a reaction path: unicode, or `name:id` for custom emojis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EmojiRef {
    pub id: Option<Snowflake>,
    pub name: String,
    pub animated: bool,
}

/// Parses and checks the `{emoji}` path segment (10014 when unknown).
pub(crate) fn parse_emoji(
    state: &AppState,
    text: &str,
) -> Result<(EmojiRef, Option<Snowflake>), ApiError> {
    let text = text.trim();
    if let Some((name, id)) = text.rsplit_once(':') {
        let id = Snowflake::parse(id).ok_or(ApiError::NotFound(Unknown::Emoji))?;
        let guild_id = state.store.emoji_guild.get(id).or_unknown(Unknown::Emoji)?;
        let emoji = state
            .store
            .emojis
            .get((guild_id, id))
            .or_unknown(Unknown::Emoji)?;
        let _ = name;
        return Ok((
            EmojiRef {
                id: Some(id),
                name: emoji.name,
                animated: emoji.animated,
            },
            Some(guild_id),
        ));
    }
    // Unicode emoji: must contain something beyond plain ASCII, as real emoji do.
    if text.is_empty() || text.is_ascii() || text.chars().count() > 16 {
        return Err(ApiError::NotFound(Unknown::Emoji));
    }
    Ok((
        EmojiRef {
            id: None,
            name: text.to_string(),
            animated: false,
        },
        None,
    ))
}

fn same_emoji(entry: &ReactionEntry, emoji: &EmojiRef) -> bool {
    match emoji.id {
        Some(id) => entry.emoji_id == Some(id),
        None => entry.emoji_id.is_none() && entry.emoji_name == emoji.name,
    }
}

fn reaction_dispatch(access: &ChannelAccess, name: &'static str, data: Value) -> Dispatch {
    Dispatch::for_channel(
        name,
        &access.channel,
        intents::GUILD_MESSAGE_REACTIONS,
        intents::DIRECT_MESSAGE_REACTIONS,
        data,
    )
}

fn emoji_value(emoji: &EmojiRef) -> Value {
    match emoji.id {
        Some(id) => json!({"id": id, "name": emoji.name, "animated": emoji.animated}),
        None => json!({"id": null, "name": emoji.name}),
    }
}

async fn add_own_reaction(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id, emoji)): Ids<(Snowflake, Snowflake, String)>,
    InChannel(access, _): InChannel<{ bits::READ_MESSAGE_HISTORY }>,
) -> ApiResult {
    let (emoji, emoji_guild) = parse_emoji(&state, &emoji)?;
    if emoji_guild.is_some() && emoji_guild != access.guild_id() {
        access.require(bits::USE_EXTERNAL_EMOJIS)?;
    }
    let message = {
        let _guard = state.store.lock();
        let message = load_message(&state, &access, message_id)?;
        let key = (channel_id, message_id);
        let mut entries = state.store.reactions.get(key)?.unwrap_or_default();
        match entries.iter_mut().find(|e| same_emoji(e, &emoji)) {
            Some(entry) => {
                if entry.user_ids.contains(&auth.id()) {
                    return Ok(no_content());
                }
                entry.user_ids.push(auth.id());
            }
            None => {
                access.require(bits::ADD_REACTIONS)?;
                if entries.len() >= 20 {
                    return Err(ApiError::bad_request(
                        30010,
                        "Maximum number of reactions reached (20)",
                    ));
                }
                entries.push(ReactionEntry {
                    emoji_id: emoji.id,
                    emoji_name: emoji.name.clone(),
                    animated: emoji.animated,
                    user_ids: vec![auth.id()],
                });
            }
        }
        state.store.reactions.put(key, &entries)?;
        message
    };
    let mut data = json!({
        "user_id": auth.id(),
        "channel_id": channel_id,
        "message_id": message_id,
        "emoji": emoji_value(&emoji),
        "message_author_id": message.author_id,
        "burst": false,
        "burst_colors": [],
        "type": 0,
    });
    if let Some(guild) = &access.guild {
        data["member"] = render::member(&state.store, &guild.member)?;
    }
    state.publish(reaction_dispatch(&access, "MESSAGE_REACTION_ADD", data));
    Ok(no_content())
}

fn remove_reaction(
    state: &AppState,
    access: &ChannelAccess,
    message_id: Snowflake,
    emoji: &EmojiRef,
    user_id: Snowflake,
) -> ApiResult {
    {
        let _guard = state.store.lock();
        load_message(state, access, message_id)?;
        let key = (access.channel.id, message_id);
        let mut entries = state.store.reactions.get(key)?.unwrap_or_default();
        let Some(entry) = entries.iter_mut().find(|e| same_emoji(e, emoji)) else {
            return Ok(no_content());
        };
        let before = entry.user_ids.len();
        entry.user_ids.retain(|u| *u != user_id);
        if entry.user_ids.len() == before {
            return Ok(no_content());
        }
        entries.retain(|e| !e.user_ids.is_empty());
        state.store.reactions.put(key, &entries)?;
    }
    let data = json!({
        "user_id": user_id,
        "channel_id": access.channel.id,
        "message_id": message_id,
        "emoji": emoji_value(emoji),
        "burst": false,
        "type": 0,
    });
    state.publish(reaction_dispatch(access, "MESSAGE_REACTION_REMOVE", data));
    Ok(no_content())
}

async fn remove_own_reaction(
    State(state): State<AppState>,
    auth: Auth,
    Ids((_, message_id, emoji)): Ids<(Snowflake, Snowflake, String)>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    let (emoji, _) = parse_emoji(&state, &emoji)?;
    remove_reaction(&state, &access, message_id, &emoji, auth.id())
}

async fn remove_user_reaction(
    State(state): State<AppState>,
    auth: Auth,
    Ids((_, message_id, emoji, user_id)): Ids<(Snowflake, Snowflake, String, Snowflake)>,
    InChannel(access, _): InChannel,
) -> ApiResult {
    if user_id != auth.id() {
        if access.guild.is_none() {
            return Err(ApiError::forbidden(
                50003,
                "Cannot execute action on a DM channel",
            ));
        }
        access.require(bits::MANAGE_MESSAGES)?;
    }
    let (emoji, _) = parse_emoji(&state, &emoji)?;
    remove_reaction(&state, &access, message_id, &emoji, user_id)
}

#[derive(Deserialize)]
struct ReactorsQuery {
    after: Option<Snowflake>,
    limit: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<u8>,
}

async fn list_reactors(
    State(state): State<AppState>,
    _: Auth,
    Ids((channel_id, message_id, emoji)): Ids<(Snowflake, Snowflake, String)>,
    Q(query): Q<ReactorsQuery>,
    InChannel(access, _): InChannel<{ bits::READ_MESSAGE_HISTORY }>,
) -> ApiResult {
    let limit = limit(query.limit, 25, 100)?;
    let (emoji, _) = parse_emoji(&state, &emoji)?;
    load_message(&state, &access, message_id)?;
    if query.kind == Some(1) {
        return Ok(ok(json!([])));
    }
    let entries = state
        .store
        .reactions
        .get((channel_id, message_id))?
        .unwrap_or_default();
    let mut users: Vec<Snowflake> = entries
        .iter()
        .find(|e| same_emoji(e, &emoji))
        .map(|e| e.user_ids.clone())
        .unwrap_or_default();
    users.sort();
    ok_list(
        users
            .into_iter()
            .filter(|id| query.after.is_none_or(|a| *id > a))
            .take(limit),
        |id| render::user_by_id(&state.store, id),
    )
}

async fn remove_all_reactions(
    State(state): State<AppState>,
    _: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
    InGuildChannel((access, _), _): InGuildChannel<{ bits::MANAGE_MESSAGES }>,
) -> ApiResult {
    load_message(&state, &access, message_id)?;
    state.store.reactions.remove((channel_id, message_id))?;
    state.publish(reaction_dispatch(
        &access,
        "MESSAGE_REACTION_REMOVE_ALL",
        json!({"channel_id": channel_id, "message_id": message_id}),
    ));
    Ok(no_content())
}

async fn remove_emoji_reactions(
    State(state): State<AppState>,
    _: Auth,
    Ids((channel_id, message_id, emoji)): Ids<(Snowflake, Snowflake, String)>,
    InGuildChannel((access, _), _): InGuildChannel<{ bits::MANAGE_MESSAGES }>,
) -> ApiResult {
    let (emoji, _) = parse_emoji(&state, &emoji)?;
    {
        let _guard = state.store.lock();
        load_message(&state, &access, message_id)?;
        let key = (channel_id, message_id);
        let mut entries = state.store.reactions.get(key)?.unwrap_or_default();
        entries.retain(|e| !same_emoji(e, &emoji));
        state.store.reactions.put(key, &entries)?;
    }
    state.publish(reaction_dispatch(
        &access,
        "MESSAGE_REACTION_REMOVE_EMOJI",
        json!({"channel_id": channel_id, "message_id": message_id, "emoji": emoji_value(&emoji)}),
    ));
    Ok(no_content())
}
