//! The user's settings: `/users/@me/settings-proto/{type}` (base64 protobufs), the legacy
//! `/users/@me/settings`, and notification settings per guild
//! (`/users/@me/guilds/{id}/settings`, `@me` for DMs, and the bulk form).
use axum::extract::{Path, State};
use axum::routing::{get, patch};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{ok, ApiResult};
use crate::backend::error::{ApiError, Unknown};
use crate::backend::extract::{Auth, Body};
use crate::backend::services::settings as service;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/users/@me/settings-proto/{kind}",
            get(get_proto).patch(patch_proto),
        )
        .route("/users/@me/settings", get(get_legacy).patch(patch_legacy))
        .route(
            "/users/@me/guilds/{guild_id}/settings",
            patch(patch_guild_settings),
        )
        .route(
            "/users/@me/guilds/settings",
            patch(patch_many_guild_settings),
        )
}

fn users_only(auth: &Auth) -> Result<(), ApiError> {
    if auth.user.bot {
        return Err(ApiError::forbidden(20001, "Bots cannot use this endpoint"));
    }
    Ok(())
}

/// The `{type}` of a settings-proto path: 1 or 2.
fn proto_kind(kind: &str) -> Result<u8, ApiError> {
    let kind: u8 = kind
        .parse()
        .map_err(|_| ApiError::invalid_field("type", "NUMBER_TYPE_COERCE", "Value is not int."))?;
    service::check_proto_kind(kind)?;
    Ok(kind)
}

async fn get_proto(
    State(state): State<AppState>,
    auth: Auth,
    Path(kind): Path<String>,
) -> ApiResult {
    users_only(&auth)?;
    let kind = proto_kind(&kind)?;
    let bytes = service::proto_bytes(&state, auth.id(), kind)?;
    Ok(ok(json!({"settings": STANDARD.encode(bytes)})))
}

#[derive(Deserialize)]
struct ProtoPatch {
    settings: Option<String>,
    required_data_version: Option<u32>,
}

async fn patch_proto(
    State(state): State<AppState>,
    auth: Auth,
    Path(kind): Path<String>,
    Body(body): Body<ProtoPatch>,
) -> ApiResult {
    users_only(&auth)?;
    let kind = proto_kind(&kind)?;
    let Some(settings) = body.settings else {
        return Err(ApiError::invalid_field(
            "settings",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    };
    if settings.len() > 5_242_880 {
        return Err(ApiError::invalid_field(
            "settings",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 5242880 or fewer in length.",
        ));
    }
    let write = service::patch_proto(
        &state,
        &auth.user,
        kind,
        &settings,
        body.required_data_version,
    )?;
    state.store.flush_async().await?;
    let mut answer = json!({"settings": STANDARD.encode(&write.bytes)});
    if write.out_of_date {
        answer["out_of_date"] = json!(true);
    }
    Ok(ok(answer))
}

async fn get_legacy(State(state): State<AppState>, auth: Auth) -> ApiResult {
    users_only(&auth)?;
    Ok(ok(service::legacy_settings(&state, &auth.user)?))
}

async fn patch_legacy(
    State(state): State<AppState>,
    auth: Auth,
    Body(changes): Body<Map<String, Value>>,
) -> ApiResult {
    users_only(&auth)?;
    let settings = service::patch_legacy(&state, &auth.user, changes)?;
    state.store.flush_async().await?;
    Ok(ok(settings))
}

/// The guild of a `/users/@me/guilds/{id}/settings` path (`@me`: the DM settings); 10004 when
/// the caller is not in it.
fn settings_guild(
    state: &AppState,
    user_id: Snowflake,
    guild: &str,
) -> Result<Option<Snowflake>, ApiError> {
    if guild == "@me" {
        return Ok(None);
    }
    let guild_id = Snowflake::parse(guild).ok_or(ApiError::NotFound(Unknown::Guild))?;
    if state.store.member(guild_id, user_id)?.is_none() {
        return Err(ApiError::NotFound(Unknown::Guild));
    }
    Ok(Some(guild_id))
}

async fn patch_guild_settings(
    State(state): State<AppState>,
    auth: Auth,
    Path(guild): Path<String>,
    Body(changes): Body<Map<String, Value>>,
) -> ApiResult {
    users_only(&auth)?;
    let guild = settings_guild(&state, auth.id(), &guild)?;
    let settings = service::patch_guild_settings(&state, auth.id(), guild, &changes)?;
    state.store.flush_async().await?;
    Ok(ok(serde_json::to_value(settings).unwrap_or(Value::Null)))
}

#[derive(Deserialize)]
struct ManyGuildSettings {
    guilds: Map<String, Value>,
}

async fn patch_many_guild_settings(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<ManyGuildSettings>,
) -> ApiResult {
    users_only(&auth)?;
    let mut out = Vec::new();
    for (guild, changes) in &body.guilds {
        let guild = settings_guild(&state, auth.id(), guild)?;
        let changes = changes.as_object().cloned().unwrap_or_default();
        let settings = service::patch_guild_settings(&state, auth.id(), guild, &changes)?;
        out.push(serde_json::to_value(settings).unwrap_or(Value::Null));
    }
    state.store.flush_async().await?;
    Ok(ok(Value::Array(out)))
}
