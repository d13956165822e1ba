//! Creating, editing and removing messages: validation, mentions, embeds, uploads, nonces,
//! replies and crossposts. Message routes, webhook execution, interaction responses, thread
//! starters and fixtures all create messages through here.
use serde::Deserialize;
use serde_json::{json, Value};

use super::patch;
use super::polls;
use super::publish::{message_dispatch, publish_message, EPHEMERAL};
use super::webhooks::webhook_access;
use crate::backend::error::{ApiError, Unknown, Validator};
use crate::backend::extract::Upload;
use crate::backend::model::*;
use crate::backend::permissions::bits;
use crate::backend::poll::Poll;
use crate::backend::render;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, Snowflake};
use crate::backend::state::{AppState, ChannelAccess};

/// Message flag of a crosspost delivered to a follower (IS_CROSSPOST).
const IS_CROSSPOST: u64 = 1 << 1;

/// `allowed_mentions` of a message body.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct AllowedMentions {
    pub parse: Option<Vec<String>>,
    pub users: Option<Vec<Snowflake>>,
    pub roles: Option<Vec<Snowflake>>,
    pub replied_user: Option<bool>,
}

impl AllowedMentions {
    /// Whether `parse` lists `kind` ("users", "roles" or "everyone").
    pub(crate) fn parses(&self, kind: &str) -> bool {
        self.parse.iter().flatten().any(|p| p == kind)
    }
}

/// Whether a mention of user `id` may ping (without `allowed_mentions`, every mention may).
pub(crate) fn allows_user(allowed: Option<&AllowedMentions>, id: &Snowflake) -> bool {
    allowed.is_none_or(|a| a.parses("users") || a.users.as_ref().is_some_and(|u| u.contains(id)))
}

/// Whether a mention of role `id` may ping (without `allowed_mentions`, every mention may).
fn allows_role(allowed: Option<&AllowedMentions>, id: &Snowflake) -> bool {
    allowed.is_none_or(|a| a.parses("roles") || a.roles.as_ref().is_some_and(|r| r.contains(id)))
}

/// `message_reference` of a message body.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ReferenceBody {
    #[serde(rename = "type", default)]
    pub kind: u8,
    pub message_id: Option<Snowflake>,
    pub channel_id: Option<Snowflake>,
    // Read for its type only (a wrong type is 50035, as on Discord); nothing uses it yet.
    #[allow(dead_code)]
    pub guild_id: Option<Snowflake>,
    pub fail_if_not_exists: Option<bool>,
}

/// Body of message creation (also webhook execution and forum posts).
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct CreateMessage {
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
    // Read for its type only (a wrong type is 50035, as on Discord); nothing uses it yet.
    #[allow(dead_code)]
    pub avatar_url: Option<String>,
    // Read for its type only (a wrong type is 50035, as on Discord); nothing uses it yet.
    #[allow(dead_code)]
    pub thread_name: Option<String>,
}

/// Mentions found in message content.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ParsedMentions {
    pub users: Vec<Snowflake>,
    pub roles: Vec<Snowflake>,
    pub everyone: bool,
}

/// Finds `<@id>`, `<@!id>`, `<@&id>`, `@everyone` and `@here` in content.
pub(crate) fn parse_mentions(content: &str) -> ParsedMentions {
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

pub(crate) fn validate_embeds(checks: &mut Validator, embeds: &[Value]) {
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
pub(crate) fn normalise_embeds(embeds: Vec<Value>) -> Vec<Value> {
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
pub(crate) struct Poster<'a> {
    /// The account (for a webhook, a stand-in user carrying the webhook's id and name).
    pub user: &'a User,
    /// The webhook's display, when a webhook posts.
    pub webhook: Option<WebhookAuthor>,
}

impl Poster<'_> {
    /// The message's `author_id`: the webhook's id, else the user's.
    fn author_id(&self) -> Snowflake {
        self.webhook.as_ref().map_or(self.user.id, |w| w.webhook_id)
    }
}

/// One message to post: who posts it, where, the request body and the files it carries.
pub(crate) struct NewMessage<'a> {
    /// Who posts it.
    pub poster: Poster<'a>,
    /// The channel, with the poster's standing in it.
    pub access: &'a ChannelAccess,
    /// The request body.
    pub body: CreateMessage,
    /// The id to give the message (a thread's starter shares the thread's id), else a fresh one.
    pub forced_id: Option<Snowflake>,
    /// Uploaded files, described by `body.attachments[].id` = their `files[N]` index.
    pub uploads: &'a [Upload],
    /// Scheme and host that attachment URLs start with.
    pub origin: &'a str,
}

impl<'a> NewMessage<'a> {
    /// A message from `poster` in `access`'s channel, with a fresh id and no uploads.
    pub(crate) fn new(poster: Poster<'a>, access: &'a ChannelAccess, body: CreateMessage) -> Self {
        Self {
            poster,
            access,
            body,
            forced_id: None,
            uploads: &[],
            origin: "",
        }
    }
}

/// Creates a message as `user` in a channel they can access; returns its rendered form.
pub(crate) fn create_message_in(
    state: &AppState,
    user: &User,
    access: &ChannelAccess,
    body: CreateMessage,
    forced_id: Option<Snowflake>,
) -> Result<Value, ApiError> {
    let poster = Poster {
        user,
        webhook: None,
    };
    let request = NewMessage {
        forced_id,
        ..NewMessage::new(poster, access, body)
    };
    Ok(post_message(state, request)?.0)
}

/// Posts `body` as webhook `hook`, shown as `username`, in `channel_id` (its channel or one of
/// its threads); returns the rendered message.
pub(crate) fn post_as_webhook(
    state: &AppState,
    hook: &Webhook,
    channel_id: Snowflake,
    username: String,
    body: CreateMessage,
    uploads: &[Upload],
    origin: &str,
) -> Result<Value, ApiError> {
    let access = webhook_access(state, hook, channel_id)?;
    let user = User::new(hook.id, &username, true);
    let poster = Poster {
        user: &user,
        webhook: Some(WebhookAuthor {
            webhook_id: hook.id,
            username,
            avatar: hook.avatar.clone(),
            interaction_metadata: None,
        }),
    };
    let request = NewMessage {
        uploads,
        origin,
        ..NewMessage::new(poster, &access, body)
    };
    Ok(post_message(state, request)?.0)
}

/// Validates, stores and publishes a new message; returns (rendered, stored).
pub(crate) fn post_message(
    state: &AppState,
    request: NewMessage<'_>,
) -> Result<(Value, Message), ApiError> {
    post_message_with(state, request, Value::clone)
}

/// [`post_message`], with the caller's answer made from the rendered message by `answer`
/// before that value moves into the MESSAGE_CREATE event (the REST route serializes it there
/// instead of copying the whole tree).
///
/// The phases: validate the body alone, load what the store knows (a repeated nonce, the reply
/// target, the mentioned users), build the message in memory, write it, publish it.
pub(crate) fn post_message_with<T>(
    state: &AppState,
    mut request: NewMessage<'_>,
    answer: impl FnOnce(&Value) -> T,
) -> Result<(T, Message), ApiError> {
    let checked = validate(&mut request)?;
    let loaded = match load(state, &request, &checked)? {
        Loaded::Repeated(existing) => {
            let viewer = Some(request.poster.user.id);
            let rendered = render::message(&state.store, &existing, viewer)?;
            return Ok((answer(&rendered), *existing));
        }
        Loaded::Fresh(loaded) => loaded,
    };
    let (access, uploads, viewer) = (request.access, request.uploads, request.poster.user.id);
    let built = build(state, request, checked, loaded);
    write(state, access, uploads, &built)?;
    let Built { message, .. } = built;
    let rendered = render::new_message(&state.store, &message, Some(viewer))?;
    let answered = answer(&rendered);
    publish_message(state, "MESSAGE_CREATE", access, &message, rendered)?;
    Ok((answered, message))
}

/// What validation makes of a body: the text, embeds and poll to store.
struct Checked {
    content: String,
    mentioned: ParsedMentions,
    embeds: Vec<Value>,
    poll: Option<Box<Poll>>,
}

/// The checks that need only the body and the poster's standing (no store read).
fn validate(request: &mut NewMessage<'_>) -> Result<Checked, ApiError> {
    let access = request.access;
    let by_webhook = request.poster.webhook.is_some();
    let body = &mut request.body;
    let channel = &access.channel;
    if !channel_type::is_textual(channel.kind) {
        return Err(ApiError::bad_request(
            50008,
            "Cannot send messages in a non-text channel",
        ));
    }
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
    let mut embeds = body.embeds.take().unwrap_or_default();
    if let Some(embed) = body.embed.take() {
        embeds.push(embed);
    }
    let mut checks = Validator::default();
    checks.length("content", body.content.as_deref(), 0, 2000);
    validate_embeds(&mut checks, &embeds);
    if let Some(nonce) = &body.nonce {
        check_nonce(&mut checks, nonce);
    }
    if let Some(allowed) = &body.allowed_mentions {
        check_allowed_mentions(&mut checks, allowed);
    }
    checks.finish()?;
    let poll = match &body.poll {
        Some(poll) if !poll.is_null() => Some(Box::new(polls::parse_request(poll, now_ms())?)),
        _ => None,
    };
    let content = body.content.take().unwrap_or_default();
    let has_payload = !content.is_empty()
        || !embeds.is_empty()
        || body.sticker_ids.as_ref().is_some_and(|s| !s.is_empty())
        || body.components.as_ref().is_some_and(|c| !c.is_empty())
        || body.attachments.as_ref().is_some_and(|a| !a.is_empty())
        || poll.is_some()
        || !request.uploads.is_empty();
    if !has_payload {
        return Err(ApiError::bad_request(50006, "Cannot send an empty message"));
    }
    if !embeds.is_empty() && !by_webhook {
        access.require(bits::EMBED_LINKS)?;
    }
    if !request.uploads.is_empty() && !by_webhook {
        access.require(bits::ATTACH_FILES)?;
    }
    if poll.is_some() && !by_webhook && access.guild.is_some() {
        access.require(bits::SEND_POLLS)?;
    }
    Ok(Checked {
        mentioned: parse_mentions(&content),
        content,
        embeds,
        poll,
    })
}

/// A nonce is a string of at most 25 characters or an integer.
fn check_nonce(checks: &mut Validator, nonce: &Value) {
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

/// `parse` names known kinds, and never a kind whose ids are also listed.
fn check_allowed_mentions(checks: &mut Validator, allowed: &AllowedMentions) {
    for (index, item) in allowed.parse.iter().flatten().enumerate() {
        if !matches!(item.as_str(), "users" | "roles" | "everyone") {
            checks.add(
                &format!("allowed_mentions.parse.{index}"),
                "BASE_TYPE_CHOICES",
                "Value must be one of ('roles', 'users', 'everyone').",
            );
        }
    }
    let listed = |ids: &Option<Vec<Snowflake>>| ids.as_ref().is_some_and(|ids| !ids.is_empty());
    if allowed.parses("users") && listed(&allowed.users) {
        checks.add(
            "allowed_mentions",
            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
            "parse:[\"users\"] and users: [ids] are mutually exclusive.",
        );
    }
    if allowed.parses("roles") && listed(&allowed.roles) {
        checks.add(
            "allowed_mentions",
            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
            "parse:[\"roles\"] and roles: [ids] are mutually exclusive.",
        );
    }
}

/// What the store says before a message is built.
enum Loaded {
    /// `enforce_nonce` found the same nonce from the same author within minutes: the original.
    Repeated(Box<Message>),
    /// A new message.
    Fresh(Found),
}

/// The stored things a new message refers to.
struct Found {
    /// The `nonces` table key of the message's nonce: channel, author, nonce text.
    nonce_index: Option<(Snowflake, Snowflake, String)>,
    /// The reply target, if the message answers one.
    reply: Option<Reply>,
    /// Mentioned users that `allowed_mentions` lets through and that exist.
    users: Vec<Snowflake>,
}

/// The message a new one replies to (or forwards).
struct Reply {
    reference: MessageReference,
    kind: u8,
    /// Its author, unless a webhook wrote it (they cannot be pinged).
    author: Option<Snowflake>,
}

/// The store reads of a new message: a repeated nonce, the reply target, mentioned users.
fn load(state: &AppState, request: &NewMessage<'_>, checked: &Checked) -> Result<Loaded, ApiError> {
    let store = &state.store;
    let body = &request.body;
    let channel = &request.access.channel;
    let nonce_index = body
        .nonce
        .as_ref()
        .and_then(nonce_key)
        .map(|n| (channel.id, request.poster.author_id(), n));
    if let (true, Some((channel_id, author_id, nonce))) = (body.enforce_nonce, &nonce_index) {
        if let Some(existing_id) = store.nonces.get((*channel_id, *author_id, nonce))? {
            if now_ms().saturating_sub(existing_id.timestamp_ms()) < 5 * 60 * 1000 {
                if let Some(existing) = store.message(channel.id, existing_id)? {
                    return Ok(Loaded::Repeated(Box::new(existing)));
                }
            }
        }
    }
    let reply = match &body.message_reference {
        Some(reference) => load_reply(state, request, reference)?,
        None => None,
    };
    let allowed = body.allowed_mentions.as_ref();
    let mut users = Vec::new();
    for id in &checked.mentioned.users {
        if allows_user(allowed, id) && store.user(*id)?.is_some() {
            users.push(*id);
        }
    }
    Ok(Loaded::Fresh(Found {
        nonce_index,
        reply,
        users,
    }))
}

/// The message `reference` points at (same channel, or any channel for a forward); unknown
/// targets fail unless `fail_if_not_exists` is false.
fn load_reply(
    state: &AppState,
    request: &NewMessage<'_>,
    reference: &ReferenceBody,
) -> Result<Option<Reply>, ApiError> {
    let channel_id = request.access.channel.id;
    let target_channel = reference.channel_id.unwrap_or(channel_id);
    let target = match reference.message_id {
        Some(message_id) if target_channel == channel_id || reference.kind == 1 => {
            state.store.message(target_channel, message_id)?
        }
        _ => None,
    };
    match target {
        Some(target) => {
            if request.poster.webhook.is_none() {
                request.access.require(bits::READ_MESSAGE_HISTORY)?;
            }
            Ok(Some(Reply {
                reference: MessageReference {
                    kind: reference.kind,
                    ..MessageReference::to(&target)
                },
                kind: if reference.kind == 1 { 0 } else { 19 },
                author: target.webhook.is_none().then_some(target.author_id),
            }))
        }
        None if reference.fail_if_not_exists == Some(false) => Ok(None),
        None => Err(ApiError::invalid_field(
            "message_reference",
            "REPLIES_UNKNOWN_MESSAGE",
            "Unknown message",
        )),
    }
}

/// A message ready to write, with the ids of its uploads and its nonce's index key.
struct Built {
    message: Message,
    upload_ids: Vec<Snowflake>,
    nonce_index: Option<(Snowflake, Snowflake, String)>,
}

/// The message as it will be stored: mentions filtered by `allowed_mentions` and permissions,
/// the flags a sender may set, attachments described (no store access but fresh ids).
fn build(state: &AppState, request: NewMessage<'_>, checked: Checked, found: Found) -> Built {
    let NewMessage {
        poster,
        access,
        body,
        forced_id,
        uploads,
        origin,
    } = request;
    let by_webhook = poster.webhook.is_some();
    let allowed = body.allowed_mentions.as_ref();
    let mut mentions = found.users;
    let replied_user_allowed = allowed.is_none_or(|a| a.replied_user.unwrap_or(false));
    if let Some(author) = found.reply.as_ref().and_then(|r| r.author) {
        if replied_user_allowed && !mentions.contains(&author) {
            mentions.push(author);
        }
    }
    let can_everyone = access.permissions & bits::MENTION_EVERYONE != 0;
    let mut mention_roles = Vec::new();
    if let Some(guild) = &access.guild {
        for id in checked
            .mentioned
            .roles
            .iter()
            .filter(|id| allows_role(allowed, id))
        {
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
    let channel = &access.channel;
    let mention_everyone = checked.mentioned.everyone
        && allowed.is_none_or(|a| a.parses("everyone"))
        && can_everyone
        && channel.guild_id.is_some();
    let tts = body.tts && (by_webhook || access.permissions & bits::SEND_TTS_MESSAGES != 0);
    // Only SUPPRESS_EMBEDS (4) and SUPPRESS_NOTIFICATIONS (4096) may be set by senders.
    let flags = body.flags.unwrap_or(0) & (4 | 4096);
    let author_id = poster.author_id();
    let id = forced_id.unwrap_or_else(|| state.store.next_id());
    let described = body.attachments.as_deref().unwrap_or_default();
    let (attachments, upload_ids) = describe_uploads(state, channel.id, uploads, described, origin);
    let (kind, message_reference) = match found.reply {
        Some(reply) => (reply.kind, Some(reply.reference)),
        None => (0, None),
    };
    let message = Message {
        webhook: poster.webhook,
        kind,
        content: checked.content,
        tts,
        mention_everyone,
        mentions,
        mention_roles,
        attachments,
        embeds: normalise_embeds(checked.embeds),
        components: body.components.unwrap_or_default(),
        nonce: body.nonce.filter(|n| !n.is_null()),
        flags,
        message_reference,
        poll: checked.poll,
        ..Message::new(id, channel.id, channel.guild_id, author_id)
    };
    Built {
        message,
        upload_ids,
        nonce_index: found.nonce_index,
    }
}

/// The one write phase: the poster's slowmode slot, the upload bytes, the message, its poll,
/// its nonce.
fn write(
    state: &AppState,
    access: &ChannelAccess,
    uploads: &[Upload],
    built: &Built,
) -> Result<(), ApiError> {
    let message = &built.message;
    if message.webhook.is_none() {
        state.check_slowmode(access, message.author_id)?;
    }
    write_uploads(state, message.channel_id, uploads, &built.upload_ids)?;
    state.store.put_message(message)?;
    polls::opened(state, message)?;
    if let Some((channel_id, author_id, nonce)) = &built.nonce_index {
        state
            .store
            .nonces
            .put((*channel_id, *author_id, nonce), message.id)?;
    }
    Ok(())
}

/// Stores uploaded files and returns their attachment objects (`attachments[].id` in the JSON
/// payload matches `files[N]` and may carry a filename or description).
pub(crate) fn store_uploads(
    state: &AppState,
    channel_id: Snowflake,
    uploads: &[Upload],
    described: &[Value],
    origin: &str,
) -> Result<Vec<Value>, ApiError> {
    let (attachments, ids) = describe_uploads(state, channel_id, uploads, described, origin);
    write_uploads(state, channel_id, uploads, &ids)?;
    Ok(attachments)
}

/// The attachment objects of `uploads` (fresh ids, names from `described` or the upload),
/// with the ids in upload order.
fn describe_uploads(
    state: &AppState,
    channel_id: Snowflake,
    uploads: &[Upload],
    described: &[Value],
    origin: &str,
) -> (Vec<Value>, Vec<Snowflake>) {
    let mut attachments = Vec::with_capacity(uploads.len());
    let mut ids = Vec::with_capacity(uploads.len());
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
        attachments.push(attachment);
        ids.push(id);
    }
    (attachments, ids)
}

/// Stores the bytes of `uploads` under the attachment ids `describe_uploads` gave them.
fn write_uploads(
    state: &AppState,
    channel_id: Snowflake,
    uploads: &[Upload],
    ids: &[Snowflake],
) -> Result<(), ApiError> {
    for (upload, id) in uploads.iter().zip(ids) {
        state
            .store
            .attachments
            .put((channel_id, *id), &upload.data)?;
    }
    Ok(())
}

/// The message `message_id` of the accessed channel (10008 if unknown). Ephemeral interaction
/// responses are not channel messages: only the interaction webhook reaches them.
pub(crate) fn load_message(
    state: &AppState,
    access: &ChannelAccess,
    message_id: Snowflake,
) -> Result<Message, ApiError> {
    load_stored(state, access, message_id)?
        .filter(|m| m.flags & EPHEMERAL == 0)
        .ok_or(ApiError::NotFound(Unknown::Message))
}

/// The stored message `message_id` of the accessed channel, ephemeral or not.
fn load_stored(
    state: &AppState,
    access: &ChannelAccess,
    message_id: Snowflake,
) -> Result<Option<Message>, ApiError> {
    Ok(state.store.message(access.channel.id, message_id)?)
}

/// Body of message edits.
#[derive(Deserialize)]
pub(crate) struct EditMessage {
    #[serde(default, deserialize_with = "patch::present")]
    pub content: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    pub embeds: Option<Option<Vec<Value>>>,
    pub flags: Option<u64>,
    // Read for its type only (a wrong type is 50035, as on Discord); nothing uses it yet.
    #[allow(dead_code)]
    pub allowed_mentions: Option<AllowedMentions>,
    #[serde(default, deserialize_with = "patch::present")]
    pub components: Option<Option<Vec<Value>>>,
    #[serde(default, deserialize_with = "patch::present")]
    pub attachments: Option<Option<Vec<Value>>>,
}

/// Applies an edit (author already checked), stores it and publishes MESSAGE_UPDATE.
pub(crate) fn apply_edit(
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
        let mut message =
            load_stored(state, access, message_id)?.ok_or(ApiError::NotFound(Unknown::Message))?;
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

/// Deletes a stored message and publishes MESSAGE_DELETE.
pub(crate) fn remove_message(
    state: &AppState,
    access: &ChannelAccess,
    message: &Message,
) -> Result<(), ApiError> {
    state
        .store
        .messages
        .remove((message.channel_id, message.id))?;
    state
        .store
        .reactions
        .remove((message.channel_id, message.id))?;
    state.store.pins.remove((message.channel_id, message.id))?;
    polls::forget(state, message)?;
    let data = json!({"id": message.id, "channel_id": message.channel_id});
    state.publish(message_dispatch("MESSAGE_DELETE", access, message, data));
    Ok(())
}

/// Delivers a crossposted message to every channel following its channel (followers whose
/// webhook was deleted are dropped). Called by the crosspost route.
pub(crate) fn deliver_crosspost(state: &AppState, original: &Message) -> Result<(), ApiError> {
    let followers = state
        .store
        .extra
        .channel_followers
        .values(original.channel_id)?;
    for follower in followers {
        let Some(hook) = state.store.webhooks.get(follower.webhook_id)? else {
            state
                .store
                .extra
                .channel_followers
                .remove((follower.source_channel_id, follower.webhook_id))?;
            continue;
        };
        let access = webhook_access(state, &hook, hook.channel_id)?;
        // Crossposts do not ping anyone in the following server: no mentions are copied.
        let copy = Message {
            webhook: Some(WebhookAuthor {
                webhook_id: hook.id,
                username: hook.name.clone(),
                avatar: hook.avatar.clone(),
                interaction_metadata: None,
            }),
            content: original.content.clone(),
            attachments: original.attachments.clone(),
            embeds: original.embeds.clone(),
            flags: IS_CROSSPOST,
            message_reference: Some(MessageReference {
                kind: 0,
                message_id: Some(original.id),
                channel_id: Some(follower.source_channel_id),
                guild_id: Some(follower.source_guild_id),
            }),
            ..Message::new(
                state.store.next_id(),
                hook.channel_id,
                Some(hook.guild_id),
                hook.id,
            )
        };
        state.store.put_message(&copy)?;
        let rendered = render::message(&state.store, &copy, None)?;
        publish_message(state, "MESSAGE_CREATE", &access, &copy, rendered)?;
    }
    Ok(())
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
