//! Interactions: a test hook that invokes a command as a user (INTERACTION_CREATE), the
//! callback route (types 1, 4–9), and the interaction webhook (the `@original` and followup
//! messages, under `/webhooks/{application_id}/{token}`, are served by `webhooks.rs`).
//!
//! `POST /_mitm/interactions` is not a Discord route: real interactions are made by the Discord
//! client. Authenticated as the invoking user, it takes `{"application_id", "channel_id",
//! "type": 2|3|4|5, "name" | "command_id", "command_type", "options", "target_id"}` (commands,
//! autocomplete), `{"type": 3, "message_id", "custom_id", "component_type", "values"}`
//! (component clicks) or `{"type": 5, "custom_id", "components"}` (submitting a modal the
//! application opened for this user), publishes INTERACTION_CREATE to the application's bot
//! and answers the interaction payload, token included. With `?wait=true` it answers instead,
//! once the bot has answered or the 3-second deadline has passed, what
//! `GET /_mitm/interactions/{id}` answers: the interaction's status
//! (`pending`/`responded`/`deferred`/`failed`) and the messages answering it.
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::events::Dispatch;
use crate::backend::extract::{Auth, Body, Ids, Q};
use crate::backend::model::{Application, ApplicationCommand, Interaction, User};
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::interactions::*;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::{AppState, ChannelAccess};

/// Routes of this family (the webhook half lives under `webhooks.rs`'s paths).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_mitm/interactions", post(invoke))
        .route("/_mitm/interactions/{interaction_id}", get(inspect))
        .route(
            "/interactions/{interaction_id}/{interaction_token}/callback",
            post(callback),
        )
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
    components: Option<Vec<Value>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InvokeQuery {
    wait: bool,
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
        let commands = state.store.commands.values((app.id, scope))?;
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
    Q(query): Q<InvokeQuery>,
    Body(body): Body<InvokeBody>,
) -> ApiResult {
    if auth.user.bot {
        return Err(ApiError::forbidden(20001, "Bots cannot use this endpoint"));
    }
    let app = state.application(body.application_id)?;
    let access = state.channel_access(body.channel_id, &auth.user)?;
    let guild_id = access.guild_id();
    if let Some(guild_id) = guild_id {
        if state.store.member(guild_id, app.bot_id)?.is_none() {
            return Err(ApiError::MissingAccess);
        }
    }
    let kind = body.kind.unwrap_or(APPLICATION_COMMAND);
    let mut opener_id = None;
    let (data, message_id) = match kind {
        APPLICATION_COMMAND | AUTOCOMPLETE => {
            (command_data(&state, &app, &access, &body, kind)?, None)
        }
        MESSAGE_COMPONENT => {
            let (data, message_id) = component_data(&state, &app, &body)?;
            (data, Some(message_id))
        }
        MODAL_SUBMIT => {
            let (data, opener) = modal_data(&state, &app, auth.id(), &body)?;
            opener_id = Some(opener.id);
            (data, opener.message_id)
        }
        _ => {
            return Err(ApiError::invalid_field(
                "type",
                "BASE_TYPE_CHOICES",
                "Value must be one of {2, 3, 4, 5}.",
            ))
        }
    };
    let id = state.store.next_id();
    let mut secret = [0u8; 24];
    crate::backend::clock::fill_random(&mut secret);
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
        created_ms: now_ms(),
        response_data: None,
        opener_id,
    };
    state.store.interactions.put(id, &interaction)?;
    state.store.interaction_tokens.put(&token, id)?;
    if kind != AUTOCOMPLETE {
        watch_deadline(&state, id);
    }
    let data = payload(&state, &interaction, &app, &auth.user, &access)?;
    state.publish(Dispatch::users(
        "INTERACTION_CREATE",
        vec![app.bot_id],
        0,
        data.clone(),
    ));
    if !query.wait {
        return Ok(ok(data));
    }
    let answered = wait_for_answer(&state, id).await?;
    Ok(ok(describe(&state, &answered)?))
}

/// With `serve --control`: logs `INTERACTION_FAILED` in the event log once the interaction's
/// 3 seconds are over unanswered — on the backend's clock, so a test that moves the clock
/// (`POST /_mitm/clock`) sees it at once, and one that does not sees it after 3 real seconds.
/// This is what the invoking user sees ("This interaction failed"); a test can wait for it.
/// The watch ends when the interaction is answered or gone (a reset), and after the token's
/// 15 minutes of real time at most (a frozen clock nobody moves cannot hold it forever).
fn watch_deadline(state: &AppState, id: Snowflake) {
    let Some(hub) = state.control.clone() else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        let give_up = Instant::now() + Duration::from_millis(TOKEN_LIFETIME_MS);
        while Instant::now() < give_up {
            let Ok(Some(current)) = state.store.interactions.get(id) else {
                return;
            };
            match status(&current) {
                Status::Pending => {}
                Status::Failed => {
                    hub.log.state_change(
                        "INTERACTION_FAILED",
                        json!({
                            "id": current.id,
                            "application_id": current.application_id,
                            "type": current.kind,
                            "user_id": current.user_id,
                            "channel_id": current.channel_id,
                            "guild_id": current.guild_id,
                            "deadline_ms": created_ms(&current) + RESPONSE_DEADLINE_MS,
                        }),
                    );
                    return;
                }
                Status::Responded | Status::Deferred => return,
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
}

/// Polls the interaction until the bot has answered it or its 3 seconds are over (bounded in
/// real time too, so a stopped test clock cannot hold the hook forever).
async fn wait_for_answer(state: &AppState, id: Snowflake) -> Result<Interaction, ApiError> {
    let give_up = Instant::now() + Duration::from_millis(RESPONSE_DEADLINE_MS + 500);
    loop {
        let current = state
            .store
            .interactions
            .get(id)?
            .ok_or(ApiError::NotFound(Unknown::Interaction))?;
        if status(&current) != Status::Pending || Instant::now() >= give_up {
            return Ok(current);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `GET /_mitm/interactions/{id}` (not a Discord route): the interaction's status and answer,
/// for its invoker or the application's bot.
async fn inspect(
    State(state): State<AppState>,
    auth: Auth,
    Ids(interaction_id): Ids<Snowflake>,
) -> ApiResult {
    let interaction = state
        .store
        .interactions
        .get(interaction_id)?
        .ok_or(ApiError::NotFound(Unknown::Interaction))?;
    let app = state.application(interaction.application_id)?;
    if auth.id() != interaction.user_id && auth.id() != app.bot_id {
        return Err(ApiError::NotFound(Unknown::Interaction));
    }
    Ok(ok(describe(&state, &interaction)?))
}

/// The `data` of a modal submit, and the interaction that opened it: the application must
/// have opened a modal of that `custom_id` for this user (callback 9) within
/// the interaction token's lifetime.
fn modal_data(
    state: &AppState,
    app: &Application,
    user_id: Snowflake,
    body: &InvokeBody,
) -> Result<(Value, Interaction), ApiError> {
    let mut checks = Validator::default();
    checks.required("custom_id", body.custom_id.as_ref());
    checks.length("custom_id", body.custom_id.as_deref(), 1, 100);
    checks.required("components", body.components.as_ref());
    checks.finish()?;
    let opener = state
        .store
        .interactions
        .all()?
        .into_iter()
        .filter(|i| {
            i.application_id == app.id
                && i.user_id == user_id
                && i.response_type == Some(MODAL)
                && !expired(i)
                && i.response_data
                    .as_ref()
                    .and_then(|d| d["custom_id"].as_str())
                    == body.custom_id.as_deref()
        })
        .max_by_key(|i| i.id)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "custom_id",
                "INTERACTION_MODAL_NOT_OPEN",
                "The application opened no modal with this custom_id for this user",
            )
        })?;
    let data = json!({"custom_id": body.custom_id, "components": body.components});
    Ok((data, opener))
}

/// The `data` of a command or autocomplete interaction: the command found and allowed for the
/// invoker, its options (checked for commands) and, for user and message commands, the target.
fn command_data(
    state: &AppState,
    app: &Application,
    access: &ChannelAccess,
    body: &InvokeBody,
    kind: u8,
) -> Result<Value, ApiError> {
    let guild_id = access.guild_id();
    if guild_id.is_some() {
        access.require(bits::USE_APPLICATION_COMMANDS)?;
    }
    let command = find_command(state, app, guild_id, body)?;
    if let (Some(required), Some(_)) = (&command.default_member_permissions, guild_id) {
        let required = required.parse::<u64>().unwrap_or(0);
        let admin = access.permissions & bits::ADMINISTRATOR != 0;
        // "0" hides the command from everyone but administrators.
        if !admin && (required == 0 || access.permissions & required != required) {
            return Err(ApiError::MissingPermissions);
        }
    }
    let mut checks = Validator::default();
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
                let user = state.store.user(target).or_unknown(Unknown::User)?;
                data["target_id"] = json!(target);
                data["resolved"] = json!({"users": {target.to_string(): render::user(&user)}});
                if let Some(member) = guild_id
                    .map(|g| state.store.member(g, target))
                    .transpose()?
                    .flatten()
                {
                    // Resolved members leave out `user` (it is under `users`).
                    let mut member = render::member(&state.store, &member)?;
                    if let Some(object) = member.as_object_mut() {
                        object.remove("user");
                    }
                    data["resolved"]["members"] = json!({target.to_string(): member});
                }
            }
            Some(target) => {
                let message = state
                    .store
                    .message(body.channel_id, target)
                    .or_unknown(Unknown::Message)?;
                data["target_id"] = json!(target);
                data["resolved"] = json!({"messages": {target.to_string():
                    render::message(&state.store, &message, None)?}});
            }
        }
    }
    checks.finish()?;
    Ok(data)
}

/// The `data` and message of a component click: only on the application's own messages.
fn component_data(
    state: &AppState,
    app: &Application,
    body: &InvokeBody,
) -> Result<(Value, Snowflake), ApiError> {
    let mut checks = Validator::default();
    checks.required("message_id", body.message_id.as_ref());
    checks.required("custom_id", body.custom_id.as_ref());
    checks.length("custom_id", body.custom_id.as_deref(), 1, 100);
    checks.finish()?;
    let message_id = body.message_id.unwrap_or_default();
    let message = state
        .store
        .message(body.channel_id, message_id)
        .or_unknown(Unknown::Message)?;
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
    Ok((data, message_id))
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
            .get(interaction_id)?
            .filter(|i| i.token == token && !expired(i))
            .ok_or(ApiError::NotFound(Unknown::Interaction))?;
        if interaction.response_type.is_some() {
            return Err(ApiError::bad_request(
                40060,
                "Interaction has already been acknowledged.",
            ));
        }
        if status(&interaction) == Status::Failed {
            // Past the 3 seconds the user was shown "This interaction failed".
            return Err(ApiError::NotFound(Unknown::Interaction));
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
        state.store.interactions.put(claimed.id, &claimed)?;
        claimed
    };
    let message = match respond(&state, &mut interaction, body.kind, body.data) {
        Ok(message) => message,
        Err(err) => {
            // A refused answer leaves the interaction unanswered, as on Discord.
            interaction.response_type = None;
            interaction.original_message_id = None;
            state.store.interactions.put(interaction.id, &interaction)?;
            return Err(err);
        }
    };
    state.store.interactions.put(interaction.id, &interaction)?;
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::backend::events::Audience;
    use crate::backend::routes::test_support::{call, state_with, GUILD_WITH_BOT};
    use crate::backend::snowflake::Snowflake;

    #[tokio::test]
    async fn invocation_and_answers_are_dispatched() {
        let state = state_with(GUILD_WITH_BOT);
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

        // Ephemeral followups reach no bot: only the invoker.
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
        let event = events.try_recv().unwrap();
        assert_eq!(event.name, "MESSAGE_CREATE");
        assert_eq!(event.audience, Audience::Users(vec![Snowflake(11)]));
    }

    /// Ages a stored interaction by `ms` on the backend's clock.
    fn age(state: &crate::backend::state::AppState, id: &str, ms: u64) {
        let id = Snowflake::parse(id).unwrap();
        let mut stored = state.store.interactions.get(id).unwrap().unwrap();
        stored.created_ms -= ms;
        state.store.interactions.put(id, &stored).unwrap();
    }

    #[tokio::test]
    async fn missed_deadlines_fail_and_old_tokens_expire() {
        let state = state_with(GUILD_WITH_BOT);
        let command = json!({"name": "ping", "description": "p"});
        call(
            &state,
            "POST",
            "/applications/12/commands",
            "Bot bot",
            command,
        )
        .await;
        let invoke = json!({"application_id": "12", "channel_id": "110", "name": "ping"});
        let (_, late) = call(
            &state,
            "POST",
            "/_mitm/interactions",
            "alice",
            invoke.clone(),
        )
        .await;
        let (id, token) = (
            late["id"].as_str().unwrap(),
            late["token"].as_str().unwrap(),
        );
        let inspect = format!("/_mitm/interactions/{id}");
        let (status, pending) = call(&state, "GET", &inspect, "alice", json!(null)).await;
        assert_eq!((status, pending["status"].as_str()), (200, Some("pending")));
        age(&state, id, 3_001);
        let (_, failed) = call(&state, "GET", &inspect, "Bot bot", json!(null)).await;
        assert_eq!(failed["status"], "failed");
        let callback = format!("/interactions/{id}/{token}/callback");
        let answer = json!({"type": 4, "data": {"content": "too late"}});
        let (status, body) = call(&state, "POST", &callback, "", answer).await;
        assert_eq!((status, body["code"].as_i64()), (404, Some(10062)));

        let (_, answered) = call(&state, "POST", "/_mitm/interactions", "alice", invoke).await;
        let (id, token) = (
            answered["id"].as_str().unwrap(),
            answered["token"].as_str().unwrap(),
        );
        let callback = format!("/interactions/{id}/{token}/callback");
        let answer = json!({"type": 5});
        assert_eq!(call(&state, "POST", &callback, "", answer).await.0, 204);
        let (_, deferred) = call(
            &state,
            "GET",
            &format!("/_mitm/interactions/{id}"),
            "alice",
            json!(null),
        )
        .await;
        assert_eq!(deferred["status"], "deferred");
        age(&state, id, 15 * 60 * 1000 + 1);
        let hook = format!("/webhooks/12/{token}");
        let (status, body) = call(&state, "POST", &hook, "", json!({"content": "x"})).await;
        assert_eq!((status, body["code"].as_i64()), (401, Some(50027)));
    }
}
