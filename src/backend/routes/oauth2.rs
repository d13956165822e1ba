//! OAuth2 information routes a bot token may call: the current authorization
//! (`/oauth2/@me`), OpenID Connect userinfo, and the ID-token signing keys.
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::{ok, ApiResult};
use crate::backend::error::ApiError;
use crate::backend::extract::Auth;
use crate::backend::render;
use crate::backend::snowflake::{iso8601_from_ms, now_ms};
use crate::backend::state::AppState;

/// Scopes a bot token stands for.
const BOT_SCOPES: [&str; 2] = ["bot", "applications.commands"];

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth2/@me", get(current_authorization))
        .route("/oauth2/userinfo", get(userinfo))
        .route("/oauth2/keys", get(keys))
}

/// The application and scopes behind the caller's token. Only application (bot) tokens are
/// OAuth2 authorizations; a user's session token is not, and gets 401 as on Discord.
async fn current_authorization(State(state): State<AppState>, auth: Auth) -> ApiResult {
    if !auth.user.bot {
        return Err(ApiError::Unauthorized);
    }
    let app = state.application(auth.id())?;
    // Bot tokens do not expire; Discord still reports a date, a week out like its grants.
    let expires = iso8601_from_ms(now_ms() + 7 * 24 * 3_600_000);
    Ok(ok(json!({
        "application": render::application(&state.store, &app)?,
        "scopes": BOT_SCOPES,
        "expires": expires,
        "user": render::user(&auth.user),
    })))
}

/// OpenID Connect userinfo for the token's user (`sub` is the user id).
async fn userinfo(auth: Auth) -> ApiResult {
    let user = &auth.user;
    let mut info = json!({
        "sub": user.id.to_string(),
        "preferred_username": user.username,
        "nickname": user.global_name,
        "locale": user.locale,
        "email": user.email,
        "email_verified": user.verified,
    });
    if let Some(avatar) = &user.avatar {
        let extension = if avatar.starts_with("a_") {
            "gif"
        } else {
            "png"
        };
        info["picture"] = json!(format!(
            "https://cdn.discordapp.com/avatars/{}/{avatar}.{extension}",
            user.id
        ));
    }
    Ok(ok(info))
}

/// The JSON Web Key Set that signs OpenID ID tokens. This backend issues no ID tokens, so the
/// set is truthfully empty (verifiers then reject any token claiming to come from it).
async fn keys() -> ApiResult {
    Ok(ok(json!({ "keys": [] })))
}
