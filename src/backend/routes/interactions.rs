//! Interactions: a test hook that invokes a command as a user (INTERACTION_CREATE), the
//! callback route (types 1, 4–9), and the interaction webhook (`@original` and followups,
//! reached through `/webhooks/{application_id}/{token}`, which `webhooks.rs` hands over here).
//!
//! `POST /_mitm/interactions` is not a Discord route: real interactions are made by the Discord
//! client. Authenticated as the invoking user, it takes `{"application_id", "channel_id",
//! "type": 2|3|4, "name" | "command_id", "command_type", "options", "target_id"}` (commands,
//! autocomplete) or `{"type": 3, "message_id", "custom_id", "component_type", "values"}`
//! (component clicks), publishes INTERACTION_CREATE to the application's bot and answers the
//! interaction payload, token included.
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::messages::{
    apply_edit, normalise_embeds, parse_mentions, publish_message, remove_message, store_uploads,
    validate_embeds, CreateMessage, EditMessage,
};
use super::{no_content, ok, ApiResult};
use crate::backend::error::{json_response, ApiError, Unknown, Validator};
use crate::backend::events::Dispatch;
use crate::backend::extract::{Auth, Body, Ids, Upload, Q};
use crate::backend::model::{
    Application, ApplicationCommand, Interaction, Message, User, WebhookAuthor,
};
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::{AppState, ChannelAccess};

/// Interaction types.
const PING: u8 = 1;
const APPLICATION_COMMAND: u8 = 2;
const MESSAGE_COMPONENT: u8 = 3;
const AUTOCOMPLETE: u8 = 4;
const MODAL_SUBMIT: u8 = 5;
/// Callback types.
const PONG: u8 = 1;
const CHANNEL_MESSAGE: u8 = 4;
const DEFERRED_CHANNEL_MESSAGE: u8 = 5;
const DEFERRED_UPDATE_MESSAGE: u8 = 6;
const UPDATE_MESSAGE: u8 = 7;
const AUTOCOMPLETE_RESULT: u8 = 8;
const MODAL: u8 = 9;
/// Message flags.
const EPHEMERAL: u64 = 1 << 6;
const LOADING: u64 = 1 << 7;
/// How long an interaction token stays valid (Discord: 15 minutes).
const TOKEN_LIFETIME_MS: u64 = 15 * 60 * 1000;

/// Routes of this family (the webhook half lives under `webhooks.rs`'s paths).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_mitm/interactions", post(invoke))
        .route(
            "/interactions/{interaction_id}/{interaction_token}/callback",
            post(callback),
        )
}

fn application(state: &AppState, id: Snowflake) -> Result<Application, ApiError> {
    state
        .store
        .applications
        .get(id.be())?
        .ok_or(ApiError::NotFound(Unknown::Application))
}

fn expired(interaction: &Interaction) -> bool {
    now_ms().saturating_sub(interaction.id.timestamp_ms()) > TOKEN_LIFETIME_MS
}

/// The interaction a `/webhooks/{application_id}/{token}` path names, if the token is an
/// interaction token of that application. An expired token answers 50027.
pub fn for_webhook(
    state: &AppState,
    application_id: Snowflake,
    token: &str,
) -> Result<Option<Interaction>, ApiError> {
    let Some(id) = state.store.interaction_tokens.get(token.as_bytes())? else {
        return Ok(None);
    };
    let Some(interaction) = state.store.interactions.get(id.be())? else {
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

#[derive(Deserialize)]
struct InvokeBody {
    application_id: Snowflake,
    channel_id: Snowflake,
    #[serde(rename = "type")]
    kind: Option<u8>,
    command_id: Option<Snowflake>,
    name: Option<String>,
    command_type: Option<u8>,
    options: Option<Vec<Value>>,
    target_id: Option<Snowflake>,
    message_id: Option<Snowflake>,
    custom_id: Option<String>,
    component_type: Option<u8>,
    values: Option<Vec<String>>,
}

/// Finds the command a user invokes: by id or by name (and type), guild commands first.
fn find_command(
    state: &AppState,
    app: &Application,
    guild_id: Option<Snowflake>,
    body: &InvokeBody,
) -> Result<ApplicationCommand, ApiError> {
    let mut scopes = Vec::new();
    if let Some(guild_id) = guild_id {
        scopes.push(guild_id);
    }
    scopes.push(Snowflake::default());
    for scope in scopes {
        let commands = state
            .store
            .commands
            .values(crate::backend::store::key2(app.id, scope))?;
        let found = commands.into_iter().find(|c| match body.command_id {
            Some(id) => c.id == id,
            None => {
                Some(c.name.as_str()) == body.name.as_deref()
                    && c.kind == body.command_type.unwrap_or(1)
            }
        });
        if let Some(command) = found {
            return Ok(command);
        }
    }
    Err(ApiError::NotFound(Unknown::ApplicationCommand))
}

/// Checks invoked options against the command's top-level definition.
fn check_options(checks: &mut Validator, command: &ApplicationCommand, given: &[Value]) {
    for (index, option) in given.iter().enumerate() {
        let name = option.get("name").and_then(Value::as_str);
        let defined = command.options.iter().find(|o| o["name"].as_str() == name);
        match defined {
            None => checks.add(
                &format!("options.{index}.name"),
                "APPLICATION_COMMAND_OPTION_UNKNOWN",
                "The command has no option of this name",
            ),
            Some(defined) => {
                if option.get("type").is_some_and(|t| *t != defined["type"]) {
                    checks.add(
                        &format!("options.{index}.type"),
                        "APPLICATION_COMMAND_OPTION_TYPE_INVALID",
                        "Option type does not match the command",
                    );
                }
            }
        }
    }
    let nested = command
        .options
        .iter()
        .any(|o| matches!(o["type"].as_u64(), Some(1 | 2)));
    if !nested {
        for defined in &command.options {
            let required = defined["required"].as_bool().unwrap_or(false);
            let present = given.iter().any(|o| o.get("name") == defined.get("name"));
            if required && !present {
                checks.add(
                    "options",
                    "APPLICATION_COMMAND_OPTION_REQUIRED",
                    format!(
                        "Required option {} is missing",
                        defined["name"].as_str().unwrap_or_default()
                    ),
                );
            }
        }
    }
}

/// The INTERACTION_CREATE payload (and the hook's answer).
fn payload(
    state: &AppState,
    interaction: &Interaction,
    app: &Application,
    invoker: &User,
    access: &ChannelAccess,
) -> Result<Value, ApiError> {
    let store = &state.store;
    let channel = render::channel(store, &access.channel)?;
    let bot_permissions = match (interaction.guild_id, store.user(app.bot_id)?) {
        (Some(_), Some(bot)) => state
            .channel_access(interaction.channel_id, &bot)
            .map(|a| a.permissions)
            .unwrap_or(0),
        _ => crate::backend::state::DM_PERMISSIONS,
    };
    let mut out = json!({
        "id": interaction.id,
        "application_id": interaction.application_id,
        "type": interaction.kind,
        "data": interaction.data,
        "channel_id": interaction.channel_id,
        "channel": channel,
        "token": interaction.token,
        "version": 1,
        "locale": "en-US",
        "app_permissions": bot_permissions.to_string(),
        "entitlements": [],
        "attachment_size_limit": 10_485_760,
    });
    match interaction.guild_id {
        Some(guild_id) => {
            let member = store
                .member(guild_id, invoker.id)?
                .ok_or(ApiError::MissingAccess)?;
            let mut member = render::member(store, &member)?;
            member["permissions"] = json!(access.permissions.to_string());
            out["guild_id"] = json!(guild_id);
            out["guild_locale"] = json!("en-US");
            out["guild"] = json!({"id": guild_id, "locale": "en-US", "features": []});
            out["member"] = member;
            out["context"] = json!(0);
            out["authorizing_integration_owners"] = json!({"0": guild_id});
        }
        None => {
            out["user"] = render::user(invoker);
            let with_bot = access
                .channel
                .recipient_ids
                .as_ref()
                .is_some_and(|r| r.contains(&app.bot_id));
            out["context"] = json!(if with_bot { 1 } else { 2 });
            out["authorizing_integration_owners"] = json!({"1": invoker.id});
        }
    }
    if let Some(message_id) = interaction.message_id {
        if let Some(message) = store.message(interaction.channel_id, message_id)? {
            out["message"] = render::message(store, &message, None)?;
        }
    }
    Ok(out)
}

async fn invoke(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<InvokeBody>,
) -> ApiResult {
    if auth.user.bot {
        return Err(ApiError::forbidden(20001, "Bots cannot use this endpoint"));
    }
    let app = application(&state, body.application_id)?;
    let access = state.channel_access(body.channel_id, &auth.user)?;
    let guild_id = access.guild_id();
    if let Some(guild_id) = guild_id {
        if state.store.member(guild_id, app.bot_id)?.is_none() {
            return Err(ApiError::MissingAccess);
        }
    }
    let kind = body.kind.unwrap_or(APPLICATION_COMMAND);
    let mut checks = Validator::default();
    let (data, message_id) = match kind {
        APPLICATION_COMMAND | AUTOCOMPLETE => {
            if guild_id.is_some() {
                access.require(bits::USE_APPLICATION_COMMANDS)?;
            }
            let command = find_command(&state, &app, guild_id, &body)?;
            if let (Some(required), Some(_)) = (&command.default_member_permissions, guild_id) {
                let required = required.parse::<u64>().unwrap_or(0);
                let admin = access.permissions & bits::ADMINISTRATOR != 0;
                // "0" hides the command from everyone but administrators.
                if !admin && (required == 0 || access.permissions & required != required) {
                    return Err(ApiError::MissingPermissions);
                }
            }
            let options = body.options.clone().unwrap_or_default();
            if kind == APPLICATION_COMMAND {
                check_options(&mut checks, &command, &options);
            }
            let mut data = json!({"id": command.id, "name": command.name, "type": command.kind});
            if !options.is_empty() {
                data["options"] = Value::Array(options);
            }
            if let Some(guild_id) = command.guild_id {
                data["guild_id"] = json!(guild_id);
            }
            if command.kind != 1 {
                // User and message commands carry their target, resolved.
                match body.target_id {
                    None => checks.required("target_id", None::<&()>),
                    Some(target) if command.kind == 2 => {
                        let user = state
                            .store
                            .user(target)?
                            .ok_or(ApiError::NotFound(Unknown::User))?;
                        data["target_id"] = json!(target);
                        data["resolved"] =
                            json!({"users": {target.to_string(): render::user(&user)}});
                    }
                    Some(target) => {
                        let message = state
                            .store
                            .message(body.channel_id, target)?
                            .ok_or(ApiError::NotFound(Unknown::Message))?;
                        data["target_id"] = json!(target);
                        data["resolved"] = json!({"messages": {target.to_string():
                            render::message(&state.store, &message, None)?}});
                    }
                }
            }
            (data, None)
        }
        MESSAGE_COMPONENT => {
            checks.required("message_id", body.message_id.as_ref());
            checks.required("custom_id", body.custom_id.as_ref());
            checks.length("custom_id", body.custom_id.as_deref(), 1, 100);
            checks.finish()?;
            checks = Validator::default();
            let message_id = body.message_id.unwrap_or_default();
            let message = state
                .store
                .message(body.channel_id, message_id)?
                .ok_or(ApiError::NotFound(Unknown::Message))?;
            let from_app = message.application_id == Some(app.id)
                || message.author_id == app.bot_id
                || message
                    .webhook
                    .as_ref()
                    .is_some_and(|w| w.webhook_id == app.id);
            if !from_app {
                return Err(ApiError::invalid_field(
                    "message_id",
                    "INTERACTION_MESSAGE_NOT_FROM_APPLICATION",
                    "Components can only be used on the application's own messages",
                ));
            }
            let mut data = json!({
                "custom_id": body.custom_id,
                "component_type": body.component_type.unwrap_or(2),
            });
            if let Some(values) = &body.values {
                data["values"] = json!(values);
            }
            (data, Some(message_id))
        }
        _ => {
            return Err(ApiError::invalid_field(
                "type",
                "BASE_TYPE_CHOICES",
                "Value must be one of {2, 3, 4}.",
            ))
        }
    };
    checks.finish()?;
    let id = state.store.next_id();
    let secret: [u8; 24] = rand::random();
    let token = format!("aW50ZXJhY3Rpb246{id}:{}", hex::encode(secret));
    let interaction = Interaction {
        id,
        application_id: app.id,
        kind,
        token: token.clone(),
        guild_id,
        channel_id: body.channel_id,
        user_id: auth.id(),
        data,
        message_id,
        response_type: None,
        original_message_id: None,
        followup_ids: Vec::new(),
    };
    state.store.interactions.put(id.be(), &interaction)?;
    state.store.interaction_tokens.put(token.as_bytes(), id)?;
    let data = payload(&state, &interaction, &app, &auth.user, &access)?;
    state.publish(Dispatch::users(
        "INTERACTION_CREATE",
        vec![app.bot_id],
        0,
        data.clone(),
    ));
    Ok(ok(data))
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
    if let Some(message_id) = interaction.message_id {
        out["interacted_message_id"] = json!(message_id);
    }
    if interaction.original_message_id.is_some() {
        out["original_response_message_id"] = json!(interaction.original_message_id);
    }
    Ok(out)
}

fn render_response(
    state: &AppState,
    interaction: &Interaction,
    message: &Message,
) -> Result<Value, ApiError> {
    let mut rendered = render::message(&state.store, message, None)?;
    if message.kind != 0 || interaction.original_message_id != Some(message.id) {
        rendered["interaction_metadata"] = metadata(state, interaction)?;
    }
    Ok(rendered)
}

/// Creates a message on behalf of the application (a response or a followup). Ephemeral
/// messages are stored but dispatched to no bot, as on Discord.
fn create_response_message(
    state: &AppState,
    interaction: &Interaction,
    body: CreateMessage,
    uploads: &[Upload],
    loading: bool,
    data_path: &str,
) -> Result<(Value, Message), ApiError> {
    let app = application(state, interaction.application_id)?;
    let bot = state
        .store
        .user(app.bot_id)?
        .ok_or(ApiError::NotFound(Unknown::User))?;
    let access = response_access(state, interaction)?;
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
    let parse_users = body.allowed_mentions.as_ref().is_none_or(|a| {
        a.parse
            .as_ref()
            .is_some_and(|p| p.iter().any(|x| x == "users"))
    });
    let allowed_users = body
        .allowed_mentions
        .as_ref()
        .and_then(|a| a.users.clone())
        .unwrap_or_default();
    let mut mentions = Vec::new();
    for id in parse_mentions(&content).users {
        if (parse_users || allowed_users.contains(&id)) && state.store.user(id)?.is_some() {
            mentions.push(id);
        }
    }
    let mut flags = body.flags.unwrap_or(0) & (4 | EPHEMERAL | 4096);
    if loading {
        flags |= LOADING;
    }
    let id = state.store.next_id();
    let message = Message {
        id,
        channel_id: interaction.channel_id,
        guild_id: interaction.guild_id,
        author_id: bot.id,
        webhook: Some(WebhookAuthor {
            webhook_id: app.id,
            username: bot.username.clone(),
            avatar: bot.avatar.clone(),
            interaction_metadata: Some(metadata(state, interaction)?),
        }),
        kind: response_kind(interaction),
        content,
        edited_timestamp: None,
        tts: body.tts,
        mention_everyone: false,
        mentions,
        mention_roles: Vec::new(),
        attachments: store_uploads(
            state,
            interaction.channel_id,
            uploads,
            body.attachments.as_deref().unwrap_or_default(),
            "",
        )?,
        embeds: normalise_embeds(embeds),
        components,
        sticker_items: Vec::new(),
        nonce: None,
        pinned: false,
        flags,
        message_reference: None,
        thread_id: None,
        application_id: Some(app.id),
        poll: None,
    };
    state.store.put_message(&message)?;
    let rendered = render_response(state, interaction, &message)?;
    if flags & EPHEMERAL == 0 {
        publish_message(state, "MESSAGE_CREATE", &access, &message, rendered.clone())?;
    }
    Ok((rendered, message))
}

#[derive(Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    with_response: bool,
}

#[derive(Deserialize)]
struct CallbackBody {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    data: Option<Value>,
}

/// Which callback types an interaction type accepts.
fn callback_allowed(interaction_kind: u8, callback: u8) -> bool {
    match callback {
        PONG => interaction_kind == PING,
        CHANNEL_MESSAGE | DEFERRED_CHANNEL_MESSAGE => matches!(
            interaction_kind,
            APPLICATION_COMMAND | MESSAGE_COMPONENT | MODAL_SUBMIT
        ),
        DEFERRED_UPDATE_MESSAGE | UPDATE_MESSAGE => {
            matches!(interaction_kind, MESSAGE_COMPONENT | MODAL_SUBMIT)
        }
        AUTOCOMPLETE_RESULT => interaction_kind == AUTOCOMPLETE,
        MODAL => matches!(interaction_kind, APPLICATION_COMMAND | MESSAGE_COMPONENT),
        _ => false,
    }
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

async fn callback(
    State(state): State<AppState>,
    Ids((interaction_id, token)): Ids<(Snowflake, String)>,
    Q(query): Q<CallbackQuery>,
    Body(body): Body<CallbackBody>,
) -> ApiResult {
    // Claim the interaction under the lock, answer outside it (answers take the lock too).
    let mut interaction = {
        let _guard = state.store.lock();
        let interaction = state
            .store
            .interactions
            .get(interaction_id.be())?
            .filter(|i| i.token == token && !expired(i))
            .ok_or(ApiError::NotFound(Unknown::Interaction))?;
        if interaction.response_type.is_some() {
            return Err(ApiError::bad_request(
                40060,
                "Interaction has already been acknowledged.",
            ));
        }
        if !(1..=9).contains(&body.kind) || body.kind == 2 || body.kind == 3 {
            return Err(ApiError::invalid_field(
                "type",
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}.",
            ));
        }
        if !callback_allowed(interaction.kind, body.kind) {
            return Err(ApiError::invalid_field(
                "type",
                "INTERACTION_RESPONSE_TYPE_INVALID",
                "This response type is not valid for this interaction",
            ));
        }
        let mut claimed = interaction;
        claimed.response_type = Some(body.kind);
        state.store.interactions.put(claimed.id.be(), &claimed)?;
        claimed
    };
    let message = match respond(&state, &mut interaction, body.kind, body.data) {
        Ok(message) => message,
        Err(err) => {
            // A refused answer leaves the interaction unanswered, as on Discord.
            interaction.response_type = None;
            interaction.original_message_id = None;
            state
                .store
                .interactions
                .put(interaction.id.be(), &interaction)?;
            return Err(err);
        }
    };
    state
        .store
        .interactions
        .put(interaction.id.be(), &interaction)?;
    if !query.with_response {
        return Ok(no_content());
    }
    let mut summary = json!({"id": interaction.id, "type": interaction.kind});
    let mut resource = json!({"type": body.kind});
    if let Some((rendered, stored)) = message {
        summary["response_message_id"] = json!(stored.id);
        summary["response_message_loading"] = json!(stored.flags & LOADING != 0);
        summary["response_message_ephemeral"] = json!(stored.flags & EPHEMERAL != 0);
        resource["message"] = rendered;
    }
    Ok(ok(json!({"interaction": summary, "resource": resource})))
}

/// Carries out one callback; returns the message it created or updated, if any.
fn respond(
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
                false,
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
                create_response_message(state, interaction, deferred, &[], true, "data.")?;
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
        AUTOCOMPLETE_RESULT => check_autocomplete(&data.unwrap_or(Value::Null))?,
        MODAL => check_modal(&data.unwrap_or(Value::Null))?,
        _ => {}
    }
    Ok(message)
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

fn interaction_from_path(
    state: &AppState,
    application_id: Snowflake,
    token: &str,
) -> Result<Interaction, ApiError> {
    for_webhook(state, application_id, token)?.ok_or(ApiError::NotFound(Unknown::Webhook))
}

/// `GET /webhooks/{application_id}/{token}/messages/@original` (or a followup's id).
pub fn get_message(
    state: &AppState,
    interaction: &Interaction,
    message_id: Option<Snowflake>,
) -> ApiResult {
    let message = load_interaction_message(state, interaction, message_id)?;
    Ok(ok(render_response(state, interaction, &message)?))
}

/// `PATCH …/messages/@original` or a followup: edits it; a deferred response stops loading.
pub fn edit_message(
    state: &AppState,
    interaction: &Interaction,
    message_id: Option<Snowflake>,
    body: EditMessage,
) -> ApiResult {
    let mut message = load_interaction_message(state, interaction, message_id)?;
    if message.flags & LOADING != 0 {
        message.flags &= !LOADING;
        state.store.put_message(&message)?;
    }
    let access = response_access(state, interaction)?;
    let mut rendered = apply_edit(state, &access, message.id, body, interaction.application_id)?;
    rendered["interaction_metadata"] = metadata(state, interaction)?;
    Ok(ok(rendered))
}

/// `DELETE …/messages/@original` or a followup.
pub fn delete_message(
    state: &AppState,
    interaction: &Interaction,
    message_id: Option<Snowflake>,
) -> ApiResult {
    let message = load_interaction_message(state, interaction, message_id)?;
    let access = response_access(state, interaction)?;
    remove_message(state, &access, &message)?;
    Ok(no_content())
}

/// `POST /webhooks/{application_id}/{token}`: a followup message (only once answered).
pub fn create_followup(
    state: &AppState,
    interaction: Interaction,
    body: CreateMessage,
    uploads: &[Upload],
) -> ApiResult {
    if interaction.response_type.is_none() {
        return Err(ApiError::NotFound(Unknown::Webhook));
    }
    let (rendered, stored) =
        create_response_message(state, &interaction, body, uploads, false, "")?;
    let _guard = state.store.lock();
    let mut current = state
        .store
        .interactions
        .get(interaction.id.be())?
        .unwrap_or(interaction);
    current.followup_ids.push(stored.id);
    state.store.interactions.put(current.id.be(), &current)?;
    Ok(json_response(StatusCode::OK, &rendered))
}

pub(crate) async fn original_get(
    State(state): State<AppState>,
    Ids((application_id, token)): Ids<(Snowflake, String)>,
) -> ApiResult {
    let interaction = interaction_from_path(&state, application_id, &token)?;
    get_message(&state, &interaction, interaction.original_message_id)
}

pub(crate) async fn original_edit(
    State(state): State<AppState>,
    Ids((application_id, token)): Ids<(Snowflake, String)>,
    Body(body): Body<EditMessage>,
) -> ApiResult {
    let interaction = interaction_from_path(&state, application_id, &token)?;
    edit_message(&state, &interaction, interaction.original_message_id, body)
}

pub(crate) async fn original_delete(
    State(state): State<AppState>,
    Ids((application_id, token)): Ids<(Snowflake, String)>,
) -> ApiResult {
    let interaction = interaction_from_path(&state, application_id, &token)?;
    delete_message(&state, &interaction, interaction.original_message_id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::backend::events::Audience;
    use crate::backend::routes::test_support::call;
    use crate::backend::snowflake::Snowflake;
    use crate::backend::state::{AppState, Config};
    use crate::backend::store::Store;
    use crate::backend::world::load_fixture_bytes;

    const FIXTURE: &str = r#"{"users": [
      {"id": "11", "username": "alice", "token": "alice"},
      {"id": "12", "username": "pingbot", "bot": true, "token": "bot"}],
     "guilds": [{"id": "100", "name": "Guild", "owner_id": "11",
       "channels": [{"id": "110", "name": "general", "type": 0}],
       "members": [{"user_id": "11"}, {"user_id": "12"}]}]}"#;

    #[tokio::test]
    async fn invocation_and_answers_are_dispatched() {
        let store = Store::temporary().unwrap();
        load_fixture_bytes(&store, FIXTURE.as_bytes(), "fixture").unwrap();
        let state = AppState::new(store, Config::default());
        let (status, _) = call(
            &state,
            "POST",
            "/applications/12/commands",
            "Bot bot",
            json!({"name": "ping", "description": "p"}),
        )
        .await;
        assert_eq!(status, 201);
        let mut events = state.bus.subscribe();
        let (status, interaction) = call(
            &state,
            "POST",
            "/_mitm/interactions",
            "alice",
            json!({"application_id": "12", "channel_id": "110", "name": "ping"}),
        )
        .await;
        assert_eq!(status, 200, "{interaction}");
        let event = events.try_recv().unwrap();
        assert_eq!(event.name, "INTERACTION_CREATE");
        assert_eq!(event.audience, Audience::Users(vec![Snowflake(12)]));
        assert_eq!(event.data, interaction);

        let path = format!(
            "/interactions/{}/{}/callback",
            interaction["id"].as_str().unwrap(),
            interaction["token"].as_str().unwrap()
        );
        let (status, body) = call(
            &state,
            "POST",
            &path,
            "",
            json!({"type": 4, "data": {"content": "pong"}}),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        let event = events.try_recv().unwrap();
        assert_eq!(event.name, "MESSAGE_CREATE");
        assert_eq!(event.data["content"], "pong");
        assert_eq!(event.data["type"], 20);
        assert_eq!(event.data["interaction_metadata"]["user"]["id"], "11");

        // Ephemeral followups reach no bot.
        let hook = format!("/webhooks/12/{}", interaction["token"].as_str().unwrap());
        let (status, body) = call(
            &state,
            "POST",
            &hook,
            "",
            json!({"content": "psst", "flags": 64}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(events.try_recv().is_err());
    }
}
