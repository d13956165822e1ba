//! Interactions as messages: the callback's effects (response messages, deferrals, updates),
//! followups, and the `@original`/followup messages reached through the interaction webhook.
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::messages::{
    allows_user, apply_edit, normalise_embeds, parse_mentions, remove_message, store_uploads,
    validate_embeds, CreateMessage, EditMessage,
};
use super::publish::publish_message;
use crate::backend::error::{ApiError, Unknown, Validator};
use crate::backend::extract::Upload;
use crate::backend::model::{Interaction, Message, WebhookAuthor};
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::{AppState, ChannelAccess};

/// Interaction types.
pub(crate) const PING: u8 = 1;
pub(crate) const APPLICATION_COMMAND: u8 = 2;
pub(crate) const MESSAGE_COMPONENT: u8 = 3;
pub(crate) const AUTOCOMPLETE: u8 = 4;
pub(crate) const MODAL_SUBMIT: u8 = 5;
/// Callback types.
pub(crate) const PONG: u8 = 1;
pub(crate) const CHANNEL_MESSAGE: u8 = 4;
pub(crate) const DEFERRED_CHANNEL_MESSAGE: u8 = 5;
pub(crate) const DEFERRED_UPDATE_MESSAGE: u8 = 6;
pub(crate) const UPDATE_MESSAGE: u8 = 7;
pub(crate) const AUTOCOMPLETE_RESULT: u8 = 8;
pub(crate) const MODAL: u8 = 9;
/// Message flags.
pub(crate) use super::publish::EPHEMERAL;
pub(crate) const LOADING: u64 = 1 << 7;
/// How long an interaction token stays valid (Discord: 15 minutes).
pub(crate) const TOKEN_LIFETIME_MS: u64 = 15 * 60 * 1000;

/// How long the application has for its initial response (Discord: 3 seconds); past it the
/// user sees "This interaction failed" and the callback answers 10062.
pub(crate) const RESPONSE_DEADLINE_MS: u64 = 3000;

/// When the interaction was created (Unix ms, on the backend's clock).
pub(crate) fn created_ms(interaction: &Interaction) -> u64 {
    if interaction.created_ms == 0 {
        interaction.id.timestamp_ms()
    } else {
        interaction.created_ms
    }
}

/// Whether the interaction's token has outlived its 15 minutes.
pub(crate) fn expired(interaction: &Interaction) -> bool {
    now_ms().saturating_sub(created_ms(interaction)) > TOKEN_LIFETIME_MS
}

/// Where an interaction stands, as the invoking user's client shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Not answered yet, and the 3 seconds are not over.
    Pending,
    /// Answered with a message, an update, autocomplete choices or a modal.
    Responded,
    /// Answered with a deferral (callback 5 or 6); the answer follows by webhook.
    Deferred,
    /// Not answered within 3 seconds: the user sees "This interaction failed".
    Failed,
}

impl Status {
    /// The name `GET /_mitm/interactions/{id}` answers.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Responded => "responded",
            Status::Deferred => "deferred",
            Status::Failed => "failed",
        }
    }
}

/// The interaction's status now.
pub(crate) fn status(interaction: &Interaction) -> Status {
    match interaction.response_type {
        Some(DEFERRED_CHANNEL_MESSAGE | DEFERRED_UPDATE_MESSAGE) => Status::Deferred,
        Some(_) => Status::Responded,
        None if now_ms().saturating_sub(created_ms(interaction)) > RESPONSE_DEADLINE_MS => {
            Status::Failed
        }
        None => Status::Pending,
    }
}

/// What a test sees of an interaction: its status, deadlines, and the messages answering it
/// (the `@original` response and the followups, as stored now).
pub(crate) fn describe(state: &AppState, interaction: &Interaction) -> Result<Value, ApiError> {
    let render_stored = |id: Snowflake| -> Result<Option<Value>, ApiError> {
        match state.store.message(interaction.channel_id, id)? {
            Some(message) => Ok(Some(render_response(state, interaction, &message)?)),
            None => Ok(None),
        }
    };
    let original = match interaction.original_message_id {
        Some(id) => render_stored(id)?,
        None => None,
    };
    let mut followups = Vec::new();
    for id in &interaction.followup_ids {
        if let Some(message) = render_stored(*id)? {
            followups.push(message);
        }
    }
    let created = created_ms(interaction);
    Ok(json!({
        "id": interaction.id,
        "application_id": interaction.application_id,
        "type": interaction.kind,
        "token": interaction.token,
        "guild_id": interaction.guild_id,
        "channel_id": interaction.channel_id,
        "user_id": interaction.user_id,
        "message_id": interaction.message_id,
        "data": interaction.data,
        "status": status(interaction).as_str(),
        "response_type": interaction.response_type,
        "response_data": interaction.response_data,
        "original": original,
        "followups": followups,
        "created_ms": created,
        "deadline_ms": created + RESPONSE_DEADLINE_MS,
        "token_expires_ms": created + TOKEN_LIFETIME_MS,
    }))
}

/// The interaction a `/webhooks/{application_id}/{token}` path names, if the token is an
/// interaction token of that application. An expired token answers 50027.
pub(crate) fn for_webhook(
    state: &AppState,
    application_id: Snowflake,
    token: &str,
) -> Result<Option<Interaction>, ApiError> {
    let Some(id) = state.store.interaction_tokens.get(token)? else {
        return Ok(None);
    };
    let Some(interaction) = state.store.interactions.get(id)? else {
        return Ok(None);
    };
    if interaction.application_id != application_id || interaction.token != token {
        return Ok(None);
    }
    if expired(&interaction) {
        return Err(ApiError::Coded {
            status: StatusCode::UNAUTHORIZED,
            code: 50027,
            message: "Invalid Webhook Token".into(),
        });
    }
    Ok(Some(interaction))
}

/// The channel as an interaction response sees it: the invoking user's guild standing, with
/// the webhook-like right to post whatever the channel's overwrites say.
fn response_access(state: &AppState, interaction: &Interaction) -> Result<ChannelAccess, ApiError> {
    let channel = state
        .store
        .channel(interaction.channel_id)?
        .ok_or(ApiError::NotFound(Unknown::Channel))?;
    let guild = match interaction.guild_id {
        Some(guild_id) => Some(state.guild_access(guild_id, interaction.user_id)?),
        None => None,
    };
    Ok(ChannelAccess {
        channel,
        guild,
        permissions: bits::VIEW_CHANNEL
            | bits::SEND_MESSAGES
            | bits::EMBED_LINKS
            | bits::ATTACH_FILES
            | bits::READ_MESSAGE_HISTORY,
    })
}

/// The message type of responses: CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND, or DEFAULT.
fn response_kind(interaction: &Interaction) -> u8 {
    match (interaction.kind, interaction.data["type"].as_u64()) {
        (APPLICATION_COMMAND, Some(1)) => 20,
        (APPLICATION_COMMAND, Some(_)) => 23,
        _ => 0,
    }
}

/// A response message's `interaction_metadata`.
fn metadata(state: &AppState, interaction: &Interaction) -> Result<Value, ApiError> {
    let user = render::user_by_id(&state.store, interaction.user_id)?;
    let owners = match interaction.guild_id {
        Some(guild_id) => json!({"0": guild_id}),
        None => json!({"1": interaction.user_id}),
    };
    let mut out = json!({
        "id": interaction.id,
        "type": interaction.kind,
        "user": user,
        "authorizing_integration_owners": owners,
    });
    match interaction.kind {
        APPLICATION_COMMAND => {
            let target = interaction.data["target_id"]
                .as_str()
                .and_then(Snowflake::parse);
            match (interaction.data["type"].as_u64(), target) {
                (Some(2), Some(user_id)) => {
                    out["target_user"] = render::user_by_id(&state.store, user_id)?;
                }
                (Some(3), Some(message_id)) => out["target_message_id"] = json!(message_id),
                _ => {}
            }
        }
        MESSAGE_COMPONENT => out["interacted_message_id"] = json!(interaction.message_id),
        MODAL_SUBMIT => {
            let opener = interaction
                .opener_id
                .map(|id| state.store.interactions.get(id))
                .transpose()?
                .flatten();
            if let Some(opener) = opener.filter(|o| o.kind != MODAL_SUBMIT) {
                out["triggering_interaction_metadata"] = metadata(state, &opener)?;
            }
        }
        _ => {}
    }
    if interaction.original_message_id.is_some() {
        out["original_response_message_id"] = json!(interaction.original_message_id);
    }
    Ok(out)
}

pub(crate) fn render_response(
    state: &AppState,
    interaction: &Interaction,
    message: &Message,
) -> Result<Value, ApiError> {
    let mut rendered = render::message(&state.store, message, None)?;
    if message.kind != 0 || interaction.original_message_id != Some(message.id) {
        let mut metadata = metadata(state, interaction)?;
        if interaction.original_message_id == Some(message.id) {
            // Only followups name the original response.
            if let Some(object) = metadata.as_object_mut() {
                object.remove("original_response_message_id");
            }
        }
        rendered["interaction_metadata"] = metadata;
    }
    Ok(rendered)
}

/// Checks a response or followup body; answers its content, embeds and components.
fn validate_response(
    body: &CreateMessage,
    uploads: &[Upload],
    loading: bool,
    data_path: &str,
) -> Result<(String, Vec<Value>, Vec<Value>), ApiError> {
    let path = |field: &str| format!("{data_path}{field}");
    let mut checks = Validator::default();
    checks.length(&path("content"), body.content.as_deref(), 0, 2000);
    let embeds = body.embeds.clone().unwrap_or_default();
    let mut embed_checks = Validator::default();
    validate_embeds(&mut embed_checks, &embeds);
    if let Err(ApiError::InvalidForm(_)) = embed_checks.finish() {
        checks.add(&path("embeds"), "EMBED_INVALID", "Invalid embed");
    }
    if let Some(components) = &body.components {
        if components.len() > 5 {
            checks.add(
                &path("components"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 5 or fewer in length.",
            );
        }
    }
    checks.finish()?;
    let content = body.content.clone().unwrap_or_default();
    let components = body.components.clone().unwrap_or_default();
    if !loading
        && content.is_empty()
        && embeds.is_empty()
        && components.is_empty()
        && uploads.is_empty()
    {
        return Err(ApiError::bad_request(50006, "Cannot send an empty message"));
    }
    Ok((content, embeds, components))
}

/// Creates a message on behalf of the application (a response or a followup). Ephemeral
/// messages are stored but dispatched only to the invoking user, as on Discord. With
/// `replaces` (a deferred response still loading), the message takes its place: same id, its
/// ephemeral flag, published as MESSAGE_UPDATE.
fn create_response_message(
    state: &AppState,
    interaction: &Interaction,
    body: CreateMessage,
    uploads: &[Upload],
    (loading, replaces): (bool, Option<&Message>),
    data_path: &str,
) -> Result<(Value, Message), ApiError> {
    let app = state.application(interaction.application_id)?;
    let bot = state
        .store
        .user(app.bot_id)?
        .ok_or(ApiError::NotFound(Unknown::User))?;
    let access = response_access(state, interaction)?;
    let (content, embeds, components) = validate_response(&body, uploads, loading, data_path)?;
    let allowed = body.allowed_mentions.as_ref();
    let mut mentions = Vec::new();
    for id in parse_mentions(&content).users {
        if allows_user(allowed, &id) && state.store.user(id)?.is_some() {
            mentions.push(id);
        }
    }
    let mut flags = body.flags.unwrap_or(0) & (4 | EPHEMERAL | 4096);
    if loading {
        flags |= LOADING;
    }
    let id = match replaces {
        Some(original) => {
            flags = (flags & !EPHEMERAL) | (original.flags & EPHEMERAL);
            original.id
        }
        None => state.store.next_id(),
    };
    let message = Message {
        webhook: Some(WebhookAuthor {
            webhook_id: app.id,
            username: bot.username.clone(),
            avatar: bot.avatar.clone(),
            interaction_metadata: Some(metadata(state, interaction)?),
        }),
        kind: response_kind(interaction),
        content,
        tts: body.tts,
        mentions,
        attachments: store_uploads(
            state,
            interaction.channel_id,
            uploads,
            body.attachments.as_deref().unwrap_or_default(),
            "",
        )?,
        embeds: normalise_embeds(embeds),
        components,
        flags,
        application_id: Some(app.id),
        ..Message::new(id, interaction.channel_id, interaction.guild_id, bot.id)
    };
    state.store.put_message(&message)?;
    let rendered = render_response(state, interaction, &message)?;
    let event = if replaces.is_some() {
        "MESSAGE_UPDATE"
    } else {
        "MESSAGE_CREATE"
    };
    // Ephemeral responses reach only the invoker's sessions (publish_message routes them).
    publish_message(state, event, &access, &message, rendered.clone())?;
    Ok((rendered, message))
}

fn load_interaction_message(
    state: &AppState,
    interaction: &Interaction,
    message_id: Option<Snowflake>,
) -> Result<Message, ApiError> {
    let allowed = |id: Snowflake| {
        interaction.original_message_id == Some(id) || interaction.followup_ids.contains(&id)
    };
    message_id
        .filter(|id| allowed(*id))
        .map(|id| state.store.message(interaction.channel_id, id))
        .transpose()?
        .flatten()
        .ok_or(ApiError::NotFound(Unknown::Message))
}

/// The `@original` response or a followup (`GET /webhooks/{application_id}/{token}/messages/…`).
pub(crate) fn get_message(
    state: &AppState,
    interaction: &Interaction,
    message_id: Option<Snowflake>,
) -> Result<Value, ApiError> {
    let message = load_interaction_message(state, interaction, message_id)?;
    render_response(state, interaction, &message)
}

/// `PATCH …/messages/@original` or a followup: edits it; a deferred response stops loading.
pub(crate) fn edit_message(
    state: &AppState,
    interaction: &Interaction,
    message_id: Option<Snowflake>,
    body: EditMessage,
) -> Result<Value, ApiError> {
    let mut message = load_interaction_message(state, interaction, message_id)?;
    if message.flags & LOADING != 0 {
        message.flags &= !LOADING;
        state.store.put_message(&message)?;
    }
    let access = response_access(state, interaction)?;
    let mut rendered = apply_edit(state, &access, message.id, body, interaction.application_id)?;
    rendered["interaction_metadata"] = metadata(state, interaction)?;
    Ok(rendered)
}

/// `DELETE …/messages/@original` or a followup.
pub(crate) fn delete_message(
    state: &AppState,
    interaction: &Interaction,
    message_id: Option<Snowflake>,
) -> Result<(), ApiError> {
    let message = load_interaction_message(state, interaction, message_id)?;
    let access = response_access(state, interaction)?;
    remove_message(state, &access, &message)
}

/// `POST /webhooks/{application_id}/{token}`: a followup message (only once answered).
pub(crate) fn create_followup(
    state: &AppState,
    interaction: Interaction,
    body: CreateMessage,
    uploads: &[Upload],
) -> Result<Value, ApiError> {
    if interaction.response_type.is_none() {
        return Err(ApiError::NotFound(Unknown::Webhook));
    }
    // The first followup after a deferred message (callback 5) is the response: it replaces
    // the loading message (10008 if the user deleted it).
    if interaction.response_type == Some(DEFERRED_CHANNEL_MESSAGE) {
        let original =
            load_interaction_message(state, &interaction, interaction.original_message_id)?;
        if original.flags & LOADING != 0 {
            let replaces = Some(&original);
            let (rendered, _) =
                create_response_message(state, &interaction, body, uploads, (false, replaces), "")?;
            return Ok(rendered);
        }
    }
    let (rendered, stored) =
        create_response_message(state, &interaction, body, uploads, (false, None), "")?;
    let _guard = state.store.lock();
    let mut current = state
        .store
        .interactions
        .get(interaction.id)?
        .unwrap_or(interaction);
    current.followup_ids.push(stored.id);
    state.store.interactions.put(current.id, &current)?;
    Ok(rendered)
}

/// Carries out one callback; returns the message it created or updated, if any.
pub(crate) fn respond(
    state: &AppState,
    interaction: &mut Interaction,
    kind: u8,
    data: Option<Value>,
) -> Result<Option<(Value, Message)>, ApiError> {
    let mut message = None;
    match kind {
        CHANNEL_MESSAGE => {
            let (rendered, stored) = create_response_message(
                state,
                interaction,
                message_body(data)?,
                &[],
                (false, None),
                "data.",
            )?;
            interaction.original_message_id = Some(stored.id);
            message = Some((rendered, stored));
        }
        DEFERRED_CHANNEL_MESSAGE => {
            let flags = data
                .as_ref()
                .and_then(|d| d.get("flags"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let deferred = CreateMessage {
                flags: Some(flags & EPHEMERAL),
                ..CreateMessage::default()
            };
            let (rendered, stored) =
                create_response_message(state, interaction, deferred, &[], (true, None), "data.")?;
            interaction.original_message_id = Some(stored.id);
            message = Some((rendered, stored));
        }
        UPDATE_MESSAGE => {
            let edit: EditMessage = serde_json::from_value(data.unwrap_or_else(|| json!({})))
                .map_err(|e| ApiError::invalid_field("data", "BASE_TYPE_INVALID", e.to_string()))?;
            let message_id = interaction
                .message_id
                .ok_or(ApiError::NotFound(Unknown::Message))?;
            let access = response_access(state, interaction)?;
            let rendered =
                apply_edit(state, &access, message_id, edit, interaction.application_id)?;
            interaction.original_message_id = Some(message_id);
            if let Some(stored) = state.store.message(interaction.channel_id, message_id)? {
                message = Some((rendered, stored));
            }
        }
        DEFERRED_UPDATE_MESSAGE => {
            interaction.original_message_id = interaction.message_id;
        }
        AUTOCOMPLETE_RESULT => {
            let data = data.unwrap_or(Value::Null);
            check_autocomplete(&data)?;
            interaction.response_data = Some(data);
        }
        MODAL => {
            let data = data.unwrap_or(Value::Null);
            check_modal(&data)?;
            interaction.response_data = Some(data);
        }
        _ => {}
    }
    Ok(message)
}

fn message_body(data: Option<Value>) -> Result<CreateMessage, ApiError> {
    let data = data.unwrap_or_else(|| json!({}));
    serde_json::from_value(data)
        .map_err(|e| ApiError::invalid_field("data", "BASE_TYPE_INVALID", e.to_string()))
}

fn check_autocomplete(data: &Value) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    match data.get("choices").and_then(Value::as_array) {
        None => checks.required("data.choices", None::<&()>),
        Some(choices) if choices.len() > 25 => checks.add(
            "data.choices",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        ),
        Some(choices) => {
            for (index, choice) in choices.iter().enumerate() {
                let name = choice.get("name").and_then(Value::as_str);
                checks.required(&format!("data.choices.{index}.name"), name.as_ref());
                checks.length(&format!("data.choices.{index}.name"), name, 1, 100);
                let value = choice.get("value");
                if !value.is_some_and(|v| v.is_string() || v.is_number()) {
                    checks.add(
                        &format!("data.choices.{index}.value"),
                        "BASE_TYPE_REQUIRED",
                        "A string or number value is required",
                    );
                }
            }
        }
    }
    checks.finish()
}

fn check_modal(data: &Value) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    let custom_id = data.get("custom_id").and_then(Value::as_str);
    checks.required("data.custom_id", custom_id.as_ref());
    checks.length("data.custom_id", custom_id, 1, 100);
    let title = data.get("title").and_then(Value::as_str);
    checks.required("data.title", title.as_ref());
    checks.length("data.title", title, 1, 45);
    match data.get("components").and_then(Value::as_array) {
        None => checks.required("data.components", None::<&()>),
        Some(list) if list.is_empty() || list.len() > 5 => checks.add(
            "data.components",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 5 in length.",
        ),
        Some(_) => {}
    }
    checks.finish()
}
