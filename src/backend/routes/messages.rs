//! Messages: create (replies, nonces, embeds, allowed_mentions, parsed mentions), list, get,
//! edit, delete, bulk delete, crosspost, pins (both the legacy and the paginated routes) and
//! every reaction route.
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, ApiResult};
use crate::backend::error::{json_bytes_response, ApiError, Unknown, Validator};
use crate::backend::events::{intents, Dispatch};
use crate::backend::extract::{Auth, Body, Ids, Payload, Reason, Upload, Q};
use crate::backend::model::*;
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::common::{limit, patch};
use crate::backend::snowflake::{iso8601_from_ms, now_ms, Snowflake};
use crate::backend::state::{AppState, ChannelAccess};
use crate::backend::store::{key2, ReactionEntry};

/// Routes of this family.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{channel_id}/messages",
            get(list_messages).post(create_message),
        )
        .route(
            "/channels/{channel_id}/messages/bulk-delete",
            post(bulk_delete),
        )
        .route("/channels/{channel_id}/messages/pins", get(list_pins_paged))
        .route(
            "/channels/{channel_id}/messages/pins/{message_id}",
            put(pin).delete(unpin),
        )
        .route("/channels/{channel_id}/pins", get(list_pins_legacy))
        .route(
            "/channels/{channel_id}/pins/{message_id}",
            put(pin).delete(unpin),
        )
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
        )
}

/// `allowed_mentions` of a message body.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct AllowedMentions {
    pub parse: Option<Vec<String>>,
    pub users: Option<Vec<Snowflake>>,
    pub roles: Option<Vec<Snowflake>>,
    pub replied_user: Option<bool>,
}

/// `message_reference` of a message body.
#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceBody {
    #[serde(rename = "type", default)]
    pub kind: u8,
    pub message_id: Option<Snowflake>,
    pub channel_id: Option<Snowflake>,
    pub guild_id: Option<Snowflake>,
    pub fail_if_not_exists: Option<bool>,
}

/// Body of message creation (also webhook execution and forum posts).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct CreateMessage {
    pub content: Option<String>,
    pub nonce: Option<Value>,
    #[serde(default)]
    pub tts: bool,
    pub embeds: Option<Vec<Value>>,
    pub embed: Option<Value>,
    pub allowed_mentions: Option<AllowedMentions>,
    pub message_reference: Option<ReferenceBody>,
    pub components: Option<Vec<Value>>,
    pub sticker_ids: Option<Vec<Snowflake>>,
    pub attachments: Option<Vec<Value>>,
    pub flags: Option<u64>,
    #[serde(default)]
    pub enforce_nonce: bool,
    pub poll: Option<Value>,
    // Webhook-only fields.
    pub username: Option<String>,
    pub avatar_url: Option<String>,
    pub thread_name: Option<String>,
}

/// Mentions found in message content.
#[derive(Debug, Default, PartialEq)]
pub struct ParsedMentions {
    pub users: Vec<Snowflake>,
    pub roles: Vec<Snowflake>,
    pub everyone: bool,
}

/// Finds `<@id>`, `<@!id>`, `<@&id>`, `@everyone` and `@here` in content.
pub fn parse_mentions(content: &str) -> ParsedMentions {
    let mut found = ParsedMentions {
        everyone: content.contains("@everyone") || content.contains("@here"),
        ..Default::default()
    };
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let (is_role, body) = match rest.as_bytes().first() {
            Some(b'&') => (true, &rest[1..]),
            Some(b'!') => (false, &rest[1..]),
            _ => (false, rest),
        };
        let Some(end) = body.find('>') else { break };
        if let Some(id) = Snowflake::parse(&body[..end]) {
            let list = if is_role {
                &mut found.roles
            } else {
                &mut found.users
            };
            if !list.contains(&id) {
                list.push(id);
            }
        }
    }
    found
}

pub fn validate_embeds(checks: &mut Validator, embeds: &[Value]) {
    if embeds.len() > 10 {
        checks.add(
            "embeds",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.",
        );
    }
    let mut total = 0usize;
    for (index, embed) in embeds.iter().enumerate() {
        if !embed.is_object() {
            checks.add(
                &format!("embeds.{index}"),
                "MODEL_TYPE_CONVERT",
                "Only dictionaries may be used in a ModelType",
            );
            continue;
        }
        let mut text = |path: &str, value: &Value, max: usize| {
            if let Some(s) = value.as_str() {
                let len = s.chars().count();
                total += len;
                if len > max {
                    checks.add(
                        &format!("embeds.{index}.{path}"),
                        "BASE_TYPE_MAX_LENGTH",
                        format!("Must be {max} or fewer in length."),
                    );
                }
            }
        };
        text("title", &embed["title"], 256);
        text("description", &embed["description"], 4096);
        text("footer.text", &embed["footer"]["text"], 2048);
        text("author.name", &embed["author"]["name"], 256);
        if let Some(fields) = embed["fields"].as_array() {
            for (f, field) in fields.iter().enumerate() {
                text(&format!("fields.{f}.name"), &field["name"], 256);
                text(&format!("fields.{f}.value"), &field["value"], 1024);
            }
            if fields.len() > 25 {
                checks.add(
                    &format!("embeds.{index}.fields"),
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 25 or fewer in length.",
                );
            }
        }
    }
    if total > 6000 {
        checks.add(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        );
    }
}

/// Normalises embeds as Discord stores them (type "rich" by default).
pub fn normalise_embeds(embeds: Vec<Value>) -> Vec<Value> {
    embeds
        .into_iter()
        .map(|mut embed| {
            if let Some(object) = embed.as_object_mut() {
                object.entry("type").or_insert(json!("rich"));
                for key in ["color"] {
                    if object.get(key).is_some_and(Value::is_null) {
                        object.remove(key);
                    }
                }
            }
            embed
        })
        .collect()
}

fn nonce_key(nonce: &Value) -> Option<String> {
    match nonce {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Who is posting: a user account, or a webhook with its display name.
pub struct Poster<'a> {
    pub user: &'a User,
    pub webhook: Option<WebhookAuthor>,
}

/// Creates a message as `user` in a channel they can access; returns its rendered form.
pub async fn create_message_in(
    state: &AppState,
    user: &User,
    access: &ChannelAccess,
    body: CreateMessage,
    forced_id: Option<Snowflake>,
) -> Result<Value, ApiError> {
    let (value, _) = post_message(
        state,
        Poster {
            user,
            webhook: None,
        },
        access,
        body,
        forced_id,
        &[],
        "",
    )?;
    Ok(value)
}

/// Validates, stores and publishes a new message; returns (rendered, stored).
pub fn post_message(
    state: &AppState,
    poster: Poster<'_>,
    access: &ChannelAccess,
    body: CreateMessage,
    forced_id: Option<Snowflake>,
    uploads: &[Upload],
    origin: &str,
) -> Result<(Value, Message), ApiError> {
    post_message_with(
        state,
        poster,
        access,
        body,
        forced_id,
        uploads,
        origin,
        Value::clone,
    )
}

/// [`post_message`], with the caller's answer made from the rendered message by `answer`
/// before that value moves into the MESSAGE_CREATE event (the REST route serializes it there
/// instead of copying the whole tree).
#[allow(clippy::too_many_arguments)]
pub fn post_message_with<T>(
    state: &AppState,
    poster: Poster<'_>,
    access: &ChannelAccess,
    body: CreateMessage,
    forced_id: Option<Snowflake>,
    uploads: &[Upload],
    origin: &str,
    answer: impl FnOnce(&Value) -> T,
) -> Result<(T, Message), ApiError> {
    let channel = &access.channel;
    if !channel_type::is_textual(channel.kind) {
        return Err(ApiError::bad_request(
            50008,
            "Cannot send messages in a non-text channel",
        ));
    }
    let by_webhook = poster.webhook.is_some();
    if !by_webhook {
        access.require(bits::SEND_MESSAGES)?;
    }
    if channel
        .thread_metadata
        .as_ref()
        .is_some_and(|m| m.locked || m.archived)
        && access.permissions & bits::MANAGE_THREADS == 0
    {
        return Err(ApiError::bad_request(50083, "Thread is archived"));
    }
    let mut embeds = body.embeds.clone().unwrap_or_default();
    if let Some(embed) = body.embed.clone() {
        embeds.push(embed);
    }
    let mut checks = Validator::default();
    checks.length("content", body.content.as_deref(), 0, 2000);
    validate_embeds(&mut checks, &embeds);
    if let Some(nonce) = &body.nonce {
        match nonce {
            Value::String(s) if s.chars().count() > 25 => checks.add(
                "nonce",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ),
            Value::String(_) | Value::Number(_) | Value::Null => {}
            _ => checks.add(
                "nonce",
                "BASE_TYPE_INVALID",
                "Nonce must be a string or an integer.",
            ),
        }
    }
    if let Some(allowed) = &body.allowed_mentions {
        for (index, item) in allowed.parse.iter().flatten().enumerate() {
            if !matches!(item.as_str(), "users" | "roles" | "everyone") {
                checks.add(
                    &format!("allowed_mentions.parse.{index}"),
                    "BASE_TYPE_CHOICES",
                    "Value must be one of ('roles', 'users', 'everyone').",
                );
            }
        }
        let parse = allowed.parse.clone().unwrap_or_default();
        if parse.iter().any(|p| p == "users")
            && allowed.users.as_ref().is_some_and(|u| !u.is_empty())
        {
            checks.add(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                "parse:[\"users\"] and users: [ids] are mutually exclusive.",
            );
        }
        if parse.iter().any(|p| p == "roles")
            && allowed.roles.as_ref().is_some_and(|r| !r.is_empty())
        {
            checks.add(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                "parse:[\"roles\"] and roles: [ids] are mutually exclusive.",
            );
        }
    }
    checks.finish()?;
    let poll = match &body.poll {
        Some(poll) if !poll.is_null() => Some(Box::new(crate::backend::poll::parse_request(
            poll,
            now_ms(),
        )?)),
        _ => None,
    };
    let content = body.content.clone().unwrap_or_default();
    let has_payload = !content.is_empty()
        || !embeds.is_empty()
        || body.sticker_ids.as_ref().is_some_and(|s| !s.is_empty())
        || body.components.as_ref().is_some_and(|c| !c.is_empty())
        || body.attachments.as_ref().is_some_and(|a| !a.is_empty())
        || poll.is_some()
        || !uploads.is_empty();
    if !has_payload {
        return Err(ApiError::bad_request(50006, "Cannot send an empty message"));
    }
    if !embeds.is_empty() && !by_webhook {
        access.require(bits::EMBED_LINKS)?;
    }
    if !uploads.is_empty() && !by_webhook {
        access.require(bits::ATTACH_FILES)?;
    }
    if poll.is_some() && !by_webhook && access.guild.is_some() {
        access.require(bits::SEND_POLLS)?;
    }
    let store = &state.store;
    let author_id = poster
        .webhook
        .as_ref()
        .map_or(poster.user.id, |w| w.webhook_id);
    // enforce_nonce: the same nonce from the same author within minutes returns the original.
    let nonce_index = body.nonce.as_ref().and_then(nonce_key).map(|n| {
        let mut key = key2(channel.id, author_id).to_vec();
        key.extend_from_slice(n.as_bytes());
        key
    });
    if body.enforce_nonce {
        if let Some(key) = &nonce_index {
            if let Some(existing_id) = store.nonces.get(key)? {
                if now_ms().saturating_sub(existing_id.timestamp_ms()) < 5 * 60 * 1000 {
                    if let Some(existing) = store.message(channel.id, existing_id)? {
                        let rendered = render::message(store, &existing, Some(poster.user.id))?;
                        return Ok((answer(&rendered), existing));
                    }
                }
            }
        }
    }
    // Reply target.
    let mut reference = None;
    let mut kind = 0u8;
    let mut replied_author = None;
    if let Some(reply) = &body.message_reference {
        let target_channel = reply.channel_id.unwrap_or(channel.id);
        let target = match reply.message_id {
            Some(message_id) if target_channel == channel.id || reply.kind == 1 => {
                store.message(target_channel, message_id)?
            }
            _ => None,
        };
        match target {
            Some(target) => {
                if !by_webhook {
                    access.require(bits::READ_MESSAGE_HISTORY)?;
                }
                kind = if reply.kind == 1 { 0 } else { 19 };
                replied_author = (target.webhook.is_none()).then_some(target.author_id);
                reference = Some(MessageReference {
                    kind: reply.kind,
                    message_id: Some(target.id),
                    channel_id: Some(target.channel_id),
                    guild_id: target.guild_id,
                });
            }
            None if reply.fail_if_not_exists == Some(false) => {}
            None => {
                return Err(ApiError::invalid_field(
                    "message_reference",
                    "REPLIES_UNKNOWN_MESSAGE",
                    "Unknown message",
                ));
            }
        }
    }
    // Mentions, filtered by allowed_mentions and permissions.
    let parsed = parse_mentions(&content);
    let allowed = body.allowed_mentions.clone();
    let parse: Vec<String> = match &allowed {
        Some(a) => a.parse.clone().unwrap_or_default(),
        None => vec!["users".into(), "roles".into(), "everyone".into()],
    };
    let allow_users = |id: &Snowflake| {
        parse.iter().any(|p| p == "users")
            || allowed
                .as_ref()
                .and_then(|a| a.users.as_ref())
                .is_some_and(|u| u.contains(id))
    };
    let allow_roles = |id: &Snowflake| {
        parse.iter().any(|p| p == "roles")
            || allowed
                .as_ref()
                .and_then(|a| a.roles.as_ref())
                .is_some_and(|r| r.contains(id))
    };
    let mut mentions = Vec::new();
    for id in parsed.users.iter().filter(|id| allow_users(id)) {
        if store.user(*id)?.is_some() {
            mentions.push(*id);
        }
    }
    let replied_user_allowed = allowed
        .as_ref()
        .is_none_or(|a| a.replied_user.unwrap_or(false));
    if let Some(author) = replied_author {
        if replied_user_allowed && !mentions.contains(&author) {
            mentions.push(author);
        }
    }
    let can_everyone = access.permissions & bits::MENTION_EVERYONE != 0;
    let mut mention_roles = Vec::new();
    if let Some(guild) = &access.guild {
        for id in parsed.roles.iter().filter(|id| allow_roles(id)) {
            if let Some(role) = guild
                .roles
                .iter()
                .find(|r| r.id == *id && r.id != guild.guild.id)
            {
                if role.mentionable || can_everyone {
                    mention_roles.push(role.id);
                }
            }
        }
    }
    let mention_everyone = parsed.everyone
        && parse.iter().any(|p| p == "everyone")
        && can_everyone
        && channel.guild_id.is_some();
    let tts = body.tts && (by_webhook || access.permissions & bits::SEND_TTS_MESSAGES != 0);
    // Only SUPPRESS_EMBEDS (4) and SUPPRESS_NOTIFICATIONS (4096) may be set by senders.
    let flags = body.flags.unwrap_or(0) & (4 | 4096);
    if !by_webhook {
        state.check_slowmode(access, poster.user.id)?;
    }
    let message = Message {
        id: forced_id.unwrap_or_else(|| store.next_id()),
        channel_id: channel.id,
        guild_id: channel.guild_id,
        author_id,
        webhook: poster.webhook,
        kind,
        content,
        edited_timestamp: None,
        tts,
        mention_everyone,
        mentions,
        mention_roles,
        attachments: store_uploads(
            state,
            channel.id,
            uploads,
            body.attachments.as_deref().unwrap_or_default(),
            origin,
        )?,
        embeds: normalise_embeds(embeds),
        components: body.components.unwrap_or_default(),
        sticker_items: Vec::new(),
        nonce: body.nonce.filter(|n| !n.is_null()),
        pinned: false,
        flags,
        message_reference: reference,
        thread_id: None,
        application_id: None,
        poll,
    };
    store.put_message(&message)?;
    super::polls::opened(state, &message)?;
    if let Some(key) = nonce_index {
        store.nonces.put(key, message.id)?;
    }
    let rendered = render::new_message(store, &message, Some(poster.user.id))?;
    let answered = answer(&rendered);
    publish_message(state, "MESSAGE_CREATE", access, &message, rendered)?;
    Ok((answered, message))
}

/// Stores uploaded files and returns their attachment objects (`attachments[].id` in the JSON
/// payload matches `files[N]` and may carry a filename or description).
pub fn store_uploads(
    state: &AppState,
    channel_id: Snowflake,
    uploads: &[Upload],
    described: &[Value],
    origin: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for upload in uploads {
        let id = state.store.next_id();
        let meta = upload.index().and_then(|n| {
            described.iter().find(|a| {
                a["id"].as_u64() == Some(n) || a["id"].as_str() == Some(n.to_string().as_str())
            })
        });
        let filename = meta
            .and_then(|m| m["filename"].as_str())
            .unwrap_or(&upload.filename)
            .replace(['/', '\\', '?', '#'], "_");
        state
            .store
            .attachments
            .put(key2(channel_id, id), &upload.data)?;
        let url = format!("{origin}/attachments/{channel_id}/{id}/{filename}");
        let mut attachment = json!({
            "id": id,
            "filename": filename,
            "size": upload.data.len(),
            "url": url,
            "proxy_url": url,
            "content_type": upload.content_type,
        });
        if let Some(description) = meta.and_then(|m| m["description"].as_str()) {
            attachment["description"] = json!(description);
        }
        out.push(attachment);
    }
    Ok(out)
}

/// Publishes MESSAGE_CREATE/UPDATE with the gateway-only fields (channel_type, guild_id, member,
/// mention members).
pub fn publish_message(
    state: &AppState,
    name: &'static str,
    access: &ChannelAccess,
    message: &Message,
    mut data: Value,
) -> Result<(), ApiError> {
    // discord.js needs it to handle a DM whose channel it has not cached (type 1, not text).
    data["channel_type"] = json!(access.channel.kind);
    if let Some(guild) = &access.guild {
        let guild_id = guild.guild.id;
        data["guild_id"] = json!(guild_id);
        if message.webhook.is_none() {
            if let Some(member) = state.store.member(guild_id, message.author_id)? {
                data["member"] = render::member_partial(&member);
            }
        }
        if let Some(mentions) = data["mentions"].as_array_mut() {
            for mention in mentions {
                let id = mention["id"].as_str().and_then(Snowflake::parse);
                if let Some(member) = id
                    .map(|id| state.store.member(guild_id, id))
                    .transpose()?
                    .flatten()
                {
                    mention["member"] = render::member_partial(&member);
                }
            }
        }
    }
    state.publish(
        Dispatch::for_channel(
            name,
            &access.channel,
            intents::GUILD_MESSAGES,
            intents::DIRECT_MESSAGES,
            data,
        )
        .with_message_content(),
    );
    Ok(())
}

async fn create_message(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    headers: axum::http::HeaderMap,
    version: Option<axum::Extension<super::ApiVersion>>,
    Payload { mut body, files }: Payload<CreateMessage>,
) -> ApiResult {
    // API v10 dropped the singular `embed` (deprecated in v9 for `embeds`): it is ignored there.
    if version.is_some_and(|axum::Extension(v)| v.0 >= 10) {
        body.embed = None;
    }
    let access = state.channel_access(channel_id, &auth.user)?;
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
            if auth.user.bot && state.store.user(other)?.is_some_and(|u| u.bot) {
                return Err(ApiError::forbidden(
                    50007,
                    "Cannot send messages to this user",
                ));
            }
        }
    }
    let origin = crate::backend::services::common::origin(&headers);
    let (bytes, _) = post_message_with(
        &state,
        Poster {
            user: &auth.user,
            webhook: None,
        },
        &access,
        body,
        None,
        &files,
        &origin,
        serde_json::to_vec,
    )?;
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
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
    let limit = limit(query.limit, 50, 100)?;
    if access.permissions & bits::READ_MESSAGE_HISTORY == 0 {
        return Ok(ok(json!([])));
    }
    let store = &state.store;
    let low = key2(channel_id, Snowflake(0));
    let high = key2(channel_id, Snowflake(u64::MAX));
    let messages: Vec<Message> = if let Some(around) = query.around {
        let before_count = limit / 2;
        let mut older =
            store
                .messages
                .range(&low, &key2(channel_id, around), true, before_count)?;
        let newer = store.messages.range(
            &key2(channel_id, around),
            &high,
            false,
            limit - before_count,
        )?;
        let mut out: Vec<Message> = newer.into_iter().rev().collect();
        out.append(&mut older);
        out
    } else if let Some(after) = query.after {
        let mut out = store.messages.range(
            &key2(channel_id, Snowflake(after.0.saturating_add(1))),
            &high,
            false,
            limit,
        )?;
        out.reverse();
        out
    } else {
        let end = query.before.map_or(high, |b| key2(channel_id, b));
        store.messages.range(&low, &end, true, limit)?
    };
    let out = messages
        .iter()
        .map(|m| render::message(store, m, Some(auth.id())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(Value::Array(out)))
}

fn load_message(
    state: &AppState,
    access: &ChannelAccess,
    message_id: Snowflake,
) -> Result<Message, ApiError> {
    state
        .store
        .message(access.channel.id, message_id)?
        .ok_or(ApiError::NotFound(Unknown::Message))
}

async fn get_message(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
) -> ApiResult {
    let access =
        state.channel_access_requiring(channel_id, &auth.user, bits::READ_MESSAGE_HISTORY)?;
    let message = load_message(&state, &access, message_id)?;
    Ok(ok(render::message(
        &state.store,
        &message,
        Some(auth.id()),
    )?))
}

/// Body of message edits.
#[derive(Deserialize)]
pub struct EditMessage {
    #[serde(default, deserialize_with = "patch::present")]
    pub content: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    pub embeds: Option<Option<Vec<Value>>>,
    pub flags: Option<u64>,
    pub allowed_mentions: Option<AllowedMentions>,
    #[serde(default, deserialize_with = "patch::present")]
    pub components: Option<Option<Vec<Value>>>,
    #[serde(default, deserialize_with = "patch::present")]
    pub attachments: Option<Option<Vec<Value>>>,
}

/// Applies an edit (author already checked), stores it and publishes MESSAGE_UPDATE.
pub fn apply_edit(
    state: &AppState,
    access: &ChannelAccess,
    message_id: Snowflake,
    body: EditMessage,
    viewer: Snowflake,
) -> Result<Value, ApiError> {
    let mut checks = Validator::default();
    if let Some(Some(content)) = &body.content {
        checks.length("content", Some(content), 0, 2000);
    }
    if let Some(Some(embeds)) = &body.embeds {
        validate_embeds(&mut checks, embeds);
    }
    checks.finish()?;
    let message = {
        let _guard = state.store.lock();
        let mut message = load_message(state, access, message_id)?;
        if let Some(content) = body.content {
            let content = content.unwrap_or_default();
            let parsed = parse_mentions(&content);
            message.mentions = parsed
                .users
                .into_iter()
                .filter(|id| state.store.user(*id).ok().flatten().is_some())
                .collect();
            message.content = content;
        }
        if let Some(embeds) = body.embeds {
            message.embeds = normalise_embeds(embeds.unwrap_or_default());
        }
        if let Some(components) = body.components {
            message.components = components.unwrap_or_default();
        }
        if let Some(attachments) = body.attachments {
            let keep: Vec<Value> = attachments.unwrap_or_default();
            message
                .attachments
                .retain(|a| keep.iter().any(|k| k["id"] == a["id"]));
        }
        if let Some(flags) = body.flags {
            message.flags = (message.flags & !4) | (flags & 4);
        }
        if message.content.is_empty()
            && message.embeds.is_empty()
            && message.attachments.is_empty()
            && message.components.is_empty()
            && message.poll.is_none()
            && message.kind == 0
        {
            return Err(ApiError::bad_request(50006, "Cannot send an empty message"));
        }
        message.edited_timestamp = Some(iso8601_from_ms(now_ms()));
        state.store.put_message(&message)?;
        message
    };
    let rendered = render::message(&state.store, &message, Some(viewer))?;
    publish_message(state, "MESSAGE_UPDATE", access, &message, rendered.clone())?;
    Ok(rendered)
}

async fn edit_message(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
    Body(body): Body<EditMessage>,
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
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

/// Deletes a stored message and publishes MESSAGE_DELETE.
pub fn remove_message(
    state: &AppState,
    access: &ChannelAccess,
    message: &Message,
) -> Result<(), ApiError> {
    state
        .store
        .messages
        .remove(key2(message.channel_id, message.id))?;
    state
        .store
        .reactions
        .remove(key2(message.channel_id, message.id))?;
    state
        .store
        .pins
        .remove(key2(message.channel_id, message.id))?;
    super::polls::forget(state, message)?;
    let data = json!({"id": message.id, "channel_id": message.channel_id});
    state.publish(Dispatch::for_channel(
        "MESSAGE_DELETE",
        &access.channel,
        intents::GUILD_MESSAGES,
        intents::DIRECT_MESSAGES,
        data,
    ));
    Ok(())
}

async fn delete_message(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
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
    Body(body): Body<BulkDelete>,
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
    let Some(guild_id) = access.guild_id() else {
        return Err(ApiError::forbidden(
            50003,
            "Cannot execute action on a DM channel",
        ));
    };
    access.require(bits::MANAGE_MESSAGES)?;
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
            state.store.messages.remove(key2(channel_id, id))?;
            state.store.reactions.remove(key2(channel_id, id))?;
            state.store.pins.remove(key2(channel_id, id))?;
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
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
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
    super::followers::deliver_crosspost(&state, &message)?;
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
        .values(access.channel.id.be())?
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

async fn pin(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
    require_pin_permission(&access)?;
    let message = {
        let _guard = state.store.lock();
        let mut message = load_message(&state, &access, message_id)?;
        if message.pinned {
            return Ok(no_content());
        }
        if state.store.pins.count(channel_id.be()) >= 50 {
            return Err(ApiError::bad_request(
                30003,
                "Maximum number of pins reached (50)",
            ));
        }
        message.pinned = true;
        state.store.put_message(&message)?;
        state
            .store
            .pins
            .put(key2(channel_id, message_id), &now_ms())?;
        message
    };
    let rendered = render::message(&state.store, &message, None)?;
    publish_message(&state, "MESSAGE_UPDATE", &access, &message, rendered)?;
    publish_pins_update(&state, &access)?;
    // Discord announces pins with a system message (type 6) referencing the pinned one.
    let notice = Message {
        id: state.store.next_id(),
        channel_id,
        guild_id: access.guild_id(),
        author_id: auth.id(),
        webhook: None,
        kind: 6,
        content: String::new(),
        edited_timestamp: None,
        tts: false,
        mention_everyone: false,
        mentions: vec![],
        mention_roles: vec![],
        attachments: vec![],
        embeds: vec![],
        components: vec![],
        sticker_items: vec![],
        nonce: None,
        pinned: false,
        flags: 0,
        message_reference: Some(MessageReference {
            kind: 0,
            message_id: Some(message_id),
            channel_id: Some(channel_id),
            guild_id: access.guild_id(),
        }),
        thread_id: None,
        application_id: None,
        poll: None,
    };
    state.store.put_message(&notice)?;
    let rendered = render::message(&state.store, &notice, None)?;
    publish_message(&state, "MESSAGE_CREATE", &access, &notice, rendered)?;
    if let Some(guild_id) = access.guild_id() {
        state.audit(
            guild_id,
            auth.id(),
            audit_action::MESSAGE_PIN,
            Some(message.author_id),
            vec![],
            Some(json!({"channel_id": channel_id, "message_id": message_id})),
            reason,
        )?;
    }
    Ok(no_content())
}

async fn unpin(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
    require_pin_permission(&access)?;
    let message = {
        let _guard = state.store.lock();
        let mut message = load_message(&state, &access, message_id)?;
        if !message.pinned {
            return Ok(no_content());
        }
        message.pinned = false;
        state.store.put_message(&message)?;
        state.store.pins.remove(key2(channel_id, message_id))?;
        message
    };
    let rendered = render::message(&state.store, &message, None)?;
    publish_message(&state, "MESSAGE_UPDATE", &access, &message, rendered)?;
    publish_pins_update(&state, &access)?;
    if let Some(guild_id) = access.guild_id() {
        state.audit(
            guild_id,
            auth.id(),
            audit_action::MESSAGE_UNPIN,
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
    for message in state.store.messages.values(channel_id.be())? {
        if message.pinned {
            let at = state
                .store
                .pins
                .get(key2(channel_id, message.id))?
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
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
    if access.permissions & bits::READ_MESSAGE_HISTORY == 0 {
        return Ok(ok(json!([])));
    }
    let out = pinned(&state, channel_id)?
        .iter()
        .map(|(_, m)| render::message(&state.store, m, Some(auth.id())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(Value::Array(out)))
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
) -> ApiResult {
    state.channel_access_requiring(channel_id, &auth.user, bits::READ_MESSAGE_HISTORY)?;
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
pub struct EmojiRef {
    pub id: Option<Snowflake>,
    pub name: String,
    pub animated: bool,
}

/// Parses and checks the `{emoji}` path segment (10014 when unknown).
pub fn parse_emoji(
    state: &AppState,
    text: &str,
) -> Result<(EmojiRef, Option<Snowflake>), ApiError> {
    let text = text.trim();
    if let Some((name, id)) = text.rsplit_once(':') {
        let id = Snowflake::parse(id).ok_or(ApiError::NotFound(Unknown::Emoji))?;
        let guild_id = state
            .store
            .emoji_guild
            .get(id.be())?
            .ok_or(ApiError::NotFound(Unknown::Emoji))?;
        let emoji = state
            .store
            .emojis
            .get(key2(guild_id, id))?
            .ok_or(ApiError::NotFound(Unknown::Emoji))?;
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
) -> ApiResult {
    let access =
        state.channel_access_requiring(channel_id, &auth.user, bits::READ_MESSAGE_HISTORY)?;
    let (emoji, emoji_guild) = parse_emoji(&state, &emoji)?;
    if emoji_guild.is_some() && emoji_guild != access.guild_id() {
        access.require(bits::USE_EXTERNAL_EMOJIS)?;
    }
    let message = {
        let _guard = state.store.lock();
        let message = load_message(&state, &access, message_id)?;
        let key = key2(channel_id, message_id);
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
        let key = key2(access.channel.id, message_id);
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
    Ids((channel_id, message_id, emoji)): Ids<(Snowflake, Snowflake, String)>,
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
    let (emoji, _) = parse_emoji(&state, &emoji)?;
    remove_reaction(&state, &access, message_id, &emoji, auth.id())
}

async fn remove_user_reaction(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id, emoji, user_id)): Ids<(Snowflake, Snowflake, String, Snowflake)>,
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
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
    auth: Auth,
    Ids((channel_id, message_id, emoji)): Ids<(Snowflake, Snowflake, String)>,
    Q(query): Q<ReactorsQuery>,
) -> ApiResult {
    let access =
        state.channel_access_requiring(channel_id, &auth.user, bits::READ_MESSAGE_HISTORY)?;
    let limit = limit(query.limit, 25, 100)?;
    let (emoji, _) = parse_emoji(&state, &emoji)?;
    load_message(&state, &access, message_id)?;
    if query.kind == Some(1) {
        return Ok(ok(json!([])));
    }
    let entries = state
        .store
        .reactions
        .get(key2(channel_id, message_id))?
        .unwrap_or_default();
    let mut users: Vec<Snowflake> = entries
        .iter()
        .find(|e| same_emoji(e, &emoji))
        .map(|e| e.user_ids.clone())
        .unwrap_or_default();
    users.sort();
    let out = users
        .into_iter()
        .filter(|id| query.after.is_none_or(|a| *id > a))
        .take(limit)
        .map(|id| render::user_by_id(&state.store, id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(Value::Array(out)))
}

async fn remove_all_reactions(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
    if access.guild.is_none() {
        return Err(ApiError::forbidden(
            50003,
            "Cannot execute action on a DM channel",
        ));
    }
    access.require(bits::MANAGE_MESSAGES)?;
    load_message(&state, &access, message_id)?;
    state.store.reactions.remove(key2(channel_id, message_id))?;
    state.publish(reaction_dispatch(
        &access,
        "MESSAGE_REACTION_REMOVE_ALL",
        json!({"channel_id": channel_id, "message_id": message_id}),
    ));
    Ok(no_content())
}

async fn remove_emoji_reactions(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id, emoji)): Ids<(Snowflake, Snowflake, String)>,
) -> ApiResult {
    let access = state.channel_access(channel_id, &auth.user)?;
    if access.guild.is_none() {
        return Err(ApiError::forbidden(
            50003,
            "Cannot execute action on a DM channel",
        ));
    }
    access.require(bits::MANAGE_MESSAGES)?;
    let (emoji, _) = parse_emoji(&state, &emoji)?;
    {
        let _guard = state.store.lock();
        load_message(&state, &access, message_id)?;
        let key = key2(channel_id, message_id);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_parsed_from_content() {
        let parsed = parse_mentions("hi <@1> and <@!2>, <@&3> @here <@1> <@x> <#4>");
        assert_eq!(parsed.users, vec![Snowflake(1), Snowflake(2)]);
        assert_eq!(parsed.roles, vec![Snowflake(3)]);
        assert!(parsed.everyone);
        assert_eq!(parse_mentions("plain"), ParsedMentions::default());
    }
}
