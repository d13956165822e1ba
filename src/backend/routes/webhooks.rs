//! Incoming webhooks: create/list (channel, guild), get/edit/delete by id or by token,
//! execute (`?wait=true` returns the message), and the webhook's own messages.
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, ok_list, set_image, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::extract::{Auth, Body, Ids, InGuild, InGuildChannel, Payload, Reason, Q};
use crate::backend::model::{audit_action, channel_type, Interaction, Webhook};
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::images::store_image;
use crate::backend::services::interactions;
use crate::backend::services::messages::{
    apply_edit, post_as_webhook, remove_message, CreateMessage, EditMessage,
};
use crate::backend::services::patch::{self, set_if_present};
use crate::backend::services::webhooks::{
    load, load_with_token, publish_webhooks_update, target_channel, webhook_access,
};
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{changes, AppState, ChannelAccess};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{channel_id}/webhooks",
            get(channel_webhooks).post(create_webhook),
        )
        .route("/guilds/{guild_id}/webhooks", get(guild_webhooks))
        .route(
            "/webhooks/{webhook_id}",
            get(get_webhook).patch(patch_webhook).delete(delete_webhook),
        )
        .route(
            "/webhooks/{webhook_id}/{webhook_token}",
            get(get_with_token)
                .patch(patch_with_token)
                .delete(delete_with_token)
                .post(execute),
        )
        .route(
            "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
            get(original_get)
                .patch(original_edit)
                .delete(original_delete),
        )
        .route(
            "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
            get(get_webhook_message)
                .patch(edit_webhook_message)
                .delete(delete_webhook_message),
        )
}

fn check_name(checks: &mut Validator, name: Option<&str>) {
    checks.length("name", name, 1, 80);
    if let Some(name) = name {
        let lower = name.to_lowercase();
        if lower.contains("clyde") || lower.contains("discord") {
            checks.add(
                "name",
                "USERNAME_INVALID_CONTAINS",
                "Username cannot contain \"clyde\" or \"discord\"",
            );
        }
    }
}

#[derive(Deserialize)]
struct WebhookBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "patch::present")]
    avatar: Option<Option<String>>,
    channel_id: Option<Snowflake>,
}

async fn create_webhook(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuildChannel((access, guild_id), Body(body)): InGuildChannel<0, Body<WebhookBody>>,
) -> ApiResult {
    if !matches!(
        access.channel.kind,
        channel_type::GUILD_TEXT
            | channel_type::GUILD_ANNOUNCEMENT
            | channel_type::GUILD_VOICE
            | channel_type::GUILD_FORUM
            | channel_type::GUILD_MEDIA
            | channel_type::GUILD_STAGE_VOICE
    ) {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    }
    access.require(bits::MANAGE_WEBHOOKS)?;
    let mut checks = Validator::default();
    checks.required("name", body.name.as_ref());
    check_name(&mut checks, body.name.as_deref());
    checks.finish()?;
    let id = state.store.next_id();
    let hook = Webhook {
        id,
        kind: 1,
        guild_id,
        channel_id,
        creator_id: Some(auth.id()),
        name: body.name.unwrap_or_default(),
        avatar: body
            .avatar
            .flatten()
            .map(|d| store_image(&state.store, &d, "avatar"))
            .transpose()?,
        token: crate::backend::accounts::generate_token(id).replace('.', ""),
        application_id: None,
    };
    state.store.webhooks.put(id, &hook)?;
    state.audit(
        guild_id,
        auth.id(),
        audit_action::WEBHOOK_CREATE,
        Some(id),
        changes(vec![
            ("name", Value::Null, json!(hook.name)),
            ("channel_id", Value::Null, json!(channel_id)),
            ("type", Value::Null, json!(1)),
        ]),
        None,
        reason,
    )?;
    publish_webhooks_update(&state, &hook);
    Ok(ok(render::webhook(&state.store, &hook, true)?))
}

fn all_webhooks(state: &AppState) -> Result<Vec<Webhook>, ApiError> {
    Ok(state.store.webhooks.all()?)
}

async fn channel_webhooks(
    State(state): State<AppState>,
    _: Auth,
    Ids(channel_id): Ids<Snowflake>,
    _: InGuildChannel<{ bits::MANAGE_WEBHOOKS }>,
) -> ApiResult {
    ok_list(
        all_webhooks(&state)?
            .iter()
            .filter(|h| h.channel_id == channel_id),
        |h| render::webhook(&state.store, h, true),
    )
}

async fn guild_webhooks(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    _: InGuild<{ bits::MANAGE_WEBHOOKS }>,
) -> ApiResult {
    ok_list(
        all_webhooks(&state)?
            .iter()
            .filter(|h| h.guild_id == guild_id),
        |h| render::webhook(&state.store, h, true),
    )
}

fn manage_access(state: &AppState, auth: &Auth, hook: &Webhook) -> Result<ChannelAccess, ApiError> {
    let access =
        state.channel_access_requiring(hook.channel_id, &auth.user, bits::MANAGE_WEBHOOKS)?;
    Ok(access)
}

async fn get_webhook(
    State(state): State<AppState>,
    auth: Auth,
    Ids(id): Ids<Snowflake>,
) -> ApiResult {
    let hook = load(&state, id)?;
    manage_access(&state, &auth, &hook)?;
    Ok(ok(render::webhook(&state.store, &hook, true)?))
}

async fn get_with_token(
    State(state): State<AppState>,
    Ids((id, token)): Ids<(Snowflake, String)>,
) -> ApiResult {
    let hook = load_with_token(&state, id, &token)?;
    let mut out = render::webhook(&state.store, &hook, true)?;
    if let Some(object) = out.as_object_mut() {
        object.remove("user");
    }
    Ok(ok(out))
}

fn apply_patch(
    state: &AppState,
    mut hook: Webhook,
    body: WebhookBody,
    allow_channel: bool,
) -> Result<Webhook, ApiError> {
    let mut checks = Validator::default();
    check_name(&mut checks, body.name.as_deref());
    checks.finish()?;
    set_if_present(&mut hook.name, body.name);
    set_image(&state.store, &mut hook.avatar, body.avatar, "avatar")?;
    if let Some(channel_id) = body.channel_id {
        if !allow_channel {
            return Err(ApiError::invalid_field(
                "channel_id",
                "BASE_TYPE_INVALID",
                "Cannot change the channel with a webhook token",
            ));
        }
        let valid = state
            .store
            .channel(channel_id)?
            .is_some_and(|c| c.guild_id == Some(hook.guild_id));
        if !valid {
            return Err(ApiError::invalid_field(
                "channel_id",
                "CHANNEL_INVALID",
                "Invalid channel",
            ));
        }
        hook.channel_id = channel_id;
    }
    state.store.webhooks.put(hook.id, &hook)?;
    publish_webhooks_update(state, &hook);
    Ok(hook)
}

async fn patch_webhook(
    State(state): State<AppState>,
    auth: Auth,
    Ids(id): Ids<Snowflake>,
    Reason(reason): Reason,
    Body(body): Body<WebhookBody>,
) -> ApiResult {
    let hook = load(&state, id)?;
    manage_access(&state, &auth, &hook)?;
    if let Some(target) = body.channel_id {
        state.channel_access_requiring(target, &auth.user, bits::MANAGE_WEBHOOKS)?;
    }
    let old_name = hook.name.clone();
    let hook = apply_patch(&state, hook, body, true)?;
    state.audit(
        hook.guild_id,
        auth.id(),
        audit_action::WEBHOOK_UPDATE,
        Some(id),
        changes(vec![("name", json!(old_name), json!(hook.name))]),
        None,
        reason,
    )?;
    Ok(ok(render::webhook(&state.store, &hook, true)?))
}

async fn patch_with_token(
    State(state): State<AppState>,
    Ids((id, token)): Ids<(Snowflake, String)>,
    Body(body): Body<WebhookBody>,
) -> ApiResult {
    let hook = load_with_token(&state, id, &token)?;
    let hook = apply_patch(&state, hook, body, false)?;
    Ok(ok(render::webhook(&state.store, &hook, false)?))
}

async fn delete_webhook(
    State(state): State<AppState>,
    auth: Auth,
    Ids(id): Ids<Snowflake>,
    Reason(reason): Reason,
) -> ApiResult {
    let hook = load(&state, id)?;
    manage_access(&state, &auth, &hook)?;
    state.store.webhooks.remove(id)?;
    state.audit(
        hook.guild_id,
        auth.id(),
        audit_action::WEBHOOK_DELETE,
        Some(id),
        changes(vec![("name", json!(hook.name), Value::Null)]),
        None,
        reason,
    )?;
    publish_webhooks_update(&state, &hook);
    Ok(no_content())
}

async fn delete_with_token(
    State(state): State<AppState>,
    Ids((id, token)): Ids<(Snowflake, String)>,
) -> ApiResult {
    let hook = load_with_token(&state, id, &token)?;
    state.store.webhooks.remove(id)?;
    publish_webhooks_update(&state, &hook);
    Ok(no_content())
}

#[derive(Deserialize)]
struct ExecuteQuery {
    #[serde(default)]
    wait: bool,
    thread_id: Option<Snowflake>,
}

async fn execute(
    State(state): State<AppState>,
    Ids((id, token)): Ids<(Snowflake, String)>,
    Q(query): Q<ExecuteQuery>,
    headers: axum::http::HeaderMap,
    Payload { body, files }: Payload<CreateMessage>,
) -> ApiResult {
    if let Some(interaction) = interactions::for_webhook(&state, id, &token)? {
        return Ok(ok(interactions::create_followup(
            &state,
            interaction,
            body,
            &files,
        )?));
    }
    let hook = load_with_token(&state, id, &token)?;
    let channel_id = target_channel(&state, &hook, query.thread_id)?;
    let mut checks = Validator::default();
    checks.length("username", body.username.as_deref(), 1, 80);
    checks.finish()?;
    let username = body.username.clone().unwrap_or_else(|| hook.name.clone());
    let origin = crate::backend::services::common::origin(&headers);
    let rendered = post_as_webhook(&state, &hook, channel_id, username, body, &files, &origin)?;
    if query.wait {
        Ok(ok(rendered))
    } else {
        Ok(no_content())
    }
}

fn webhook_message(
    state: &AppState,
    hook: &Webhook,
    message_id: Snowflake,
) -> Result<(ChannelAccess, crate::backend::model::Message), ApiError> {
    let mut channels = vec![hook.channel_id];
    for channel in state.store.guild_channel_list(hook.guild_id)? {
        if channel.parent_id == Some(hook.channel_id) && channel_type::is_thread(channel.kind) {
            channels.push(channel.id);
        }
    }
    for channel_id in channels {
        if let Some(message) = state.store.message(channel_id, message_id)? {
            if message
                .webhook
                .as_ref()
                .is_some_and(|w| w.webhook_id == hook.id)
            {
                return Ok((webhook_access(state, hook, channel_id)?, message));
            }
        }
    }
    Err(ApiError::NotFound(Unknown::Message))
}

async fn get_webhook_message(
    State(state): State<AppState>,
    Ids((id, token, message_id)): Ids<(Snowflake, String, Snowflake)>,
) -> ApiResult {
    if let Some(interaction) = interactions::for_webhook(&state, id, &token)? {
        return Ok(ok(interactions::get_message(
            &state,
            &interaction,
            Some(message_id),
        )?));
    }
    let hook = load_with_token(&state, id, &token)?;
    let (_, message) = webhook_message(&state, &hook, message_id)?;
    Ok(ok(render::message(&state.store, &message, None)?))
}

async fn edit_webhook_message(
    State(state): State<AppState>,
    Ids((id, token, message_id)): Ids<(Snowflake, String, Snowflake)>,
    Body(body): Body<EditMessage>,
) -> ApiResult {
    if let Some(interaction) = interactions::for_webhook(&state, id, &token)? {
        return Ok(ok(interactions::edit_message(
            &state,
            &interaction,
            Some(message_id),
            body,
        )?));
    }
    let hook = load_with_token(&state, id, &token)?;
    let (access, _) = webhook_message(&state, &hook, message_id)?;
    Ok(ok(apply_edit(&state, &access, message_id, body, hook.id)?))
}

async fn delete_webhook_message(
    State(state): State<AppState>,
    Ids((id, token, message_id)): Ids<(Snowflake, String, Snowflake)>,
) -> ApiResult {
    if let Some(interaction) = interactions::for_webhook(&state, id, &token)? {
        interactions::delete_message(&state, &interaction, Some(message_id))?;
        return Ok(no_content());
    }
    let hook = load_with_token(&state, id, &token)?;
    let (access, message) = webhook_message(&state, &hook, message_id)?;
    remove_message(&state, &access, &message)?;
    Ok(no_content())
}

fn interaction_from_path(
    state: &AppState,
    application_id: Snowflake,
    token: &str,
) -> Result<Interaction, ApiError> {
    interactions::for_webhook(state, application_id, token).or_unknown(Unknown::Webhook)
}

async fn original_get(
    State(state): State<AppState>,
    Ids((application_id, token)): Ids<(Snowflake, String)>,
) -> ApiResult {
    let interaction = interaction_from_path(&state, application_id, &token)?;
    Ok(ok(interactions::get_message(
        &state,
        &interaction,
        interaction.original_message_id,
    )?))
}

async fn original_edit(
    State(state): State<AppState>,
    Ids((application_id, token)): Ids<(Snowflake, String)>,
    Body(body): Body<EditMessage>,
) -> ApiResult {
    let interaction = interaction_from_path(&state, application_id, &token)?;
    Ok(ok(interactions::edit_message(
        &state,
        &interaction,
        interaction.original_message_id,
        body,
    )?))
}

async fn original_delete(
    State(state): State<AppState>,
    Ids((application_id, token)): Ids<(Snowflake, String)>,
) -> ApiResult {
    let interaction = interaction_from_path(&state, application_id, &token)?;
    interactions::delete_message(&state, &interaction, interaction.original_message_id)?;
    Ok(no_content())
}
