//! The CDN paths the backend owns (`cdn.discordapp.com` / `media.discordapp.net` through the
//! pipeline, or the root of `--api`): uploaded avatars, banners, guild icons, splashes, role
//! icons, application icons, event covers, group DM icons, guild member avatars and banners and
//! emojis, rendered at `?size=` in the extension's format; stickers as uploaded;
//! `/embed/avatars/{n}.png` defaults. Anything not held here is answered as unrouted,
//! so the pipeline passes real Discord's images on down its chain.
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::backend::error::unrouted;
use crate::backend::services::images::{self, RenderError};
use crate::backend::state::AppState;

/// Routes of this family (mounted at the root, beside `/attachments`).
pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new()
        .route("/emojis/{file}", get(emoji))
        .route("/embed/avatars/{file}", get(default_avatar));
    for kind in [
        "avatars",
        "banners",
        "icons",
        "splashes",
        "discovery-splashes",
        "role-icons",
        "app-icons",
        "guild-events",
    ] {
        router = router.route(&format!("/{kind}/{{owner_id}}/{{file}}"), get(by_hash));
    }
    router
        // Group DM icons, under both spellings clients use.
        .route("/channel-icons/{owner_id}/{file}", get(by_hash))
        .route("/channels/{owner_id}/icons/{file}", get(by_hash))
        .route("/roles/{owner_id}/icons/{file}", get(by_hash))
        .route(
            "/guilds/{guild_id}/users/{user_id}/avatars/{file}",
            get(member_image),
        )
        .route(
            "/guilds/{guild_id}/users/{user_id}/banners/{file}",
            get(member_image),
        )
        .route("/stickers/{file}", get(sticker))
}

#[derive(Deserialize)]
struct SizeQuery {
    size: Option<String>,
}

/// `{stem}.{ext}` of a CDN file name.
fn split(file: &str) -> Option<(&str, &str)> {
    file.rsplit_once('.')
        .filter(|(stem, ext)| !stem.is_empty() && !ext.is_empty())
}

fn answer(bytes: &[u8], ext: &str, size: Option<String>) -> Response {
    let size = match size.map(|s| s.parse::<u32>()) {
        None => None,
        Some(Ok(size)) => Some(size),
        Some(Err(_)) => return (StatusCode::BAD_REQUEST, "invalid size").into_response(),
    };
    match images::render(bytes, ext, size) {
        Ok(rendered) => (
            [
                (header::CONTENT_TYPE, rendered.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000"),
            ],
            rendered.bytes,
        )
            .into_response(),
        Err(RenderError::Size) => (StatusCode::BAD_REQUEST, "invalid size").into_response(),
        Err(RenderError::Format) => unrouted(),
        Err(RenderError::Decode(err)) => {
            tracing::error!("stored image does not render: {err}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn by_hash(
    State(state): State<AppState>,
    Path((_owner, file)): Path<(String, String)>,
    Query(query): Query<SizeQuery>,
) -> Response {
    stored_by_hash(&state, &file, query.size)
}

/// A guild member's own avatar or banner (`/guilds/{g}/users/{u}/avatars|banners/{hash}.ext`).
async fn member_image(
    State(state): State<AppState>,
    Path((_guild, _user, file)): Path<(String, String, String)>,
    Query(query): Query<SizeQuery>,
) -> Response {
    stored_by_hash(&state, &file, query.size)
}

/// The image stored under the hash `file` names, rendered at `size` in its extension's format.
fn stored_by_hash(state: &AppState, file: &str, size: Option<String>) -> Response {
    let Some((hash, ext)) = split(file) else {
        return unrouted();
    };
    match state.store.account.images.get(hash) {
        Ok(Some(bytes)) => answer(&bytes, ext, size),
        _ => unrouted(),
    }
}

/// A sticker's file as uploaded (`/stickers/{id}.png|gif|json`): PNG and APNG stickers as
/// `.png`, GIF ones as `.gif`, Lottie ones as `.json`; `size` is ignored, as on Discord.
async fn sticker(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some((id, ext)) = split(&file) else {
        return unrouted();
    };
    if crate::backend::snowflake::Snowflake::parse(id).is_none() {
        return unrouted();
    }
    let Ok(Some(bytes)) = state.store.account.images.get(&format!("stickers/{id}")) else {
        return unrouted();
    };
    let content_type = match ext {
        "png" if bytes.starts_with(b"\x89PNG") => "image/png",
        "gif" if bytes.starts_with(b"GIF8") => "image/gif",
        "json" if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') => {
            "application/json"
        }
        _ => return unrouted(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000"),
        ],
        bytes,
    )
        .into_response()
}

async fn emoji(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(query): Query<SizeQuery>,
) -> Response {
    let Some((id, ext)) = split(&file) else {
        return unrouted();
    };
    if crate::backend::snowflake::Snowflake::parse(id).is_none() {
        return unrouted();
    }
    match state.store.account.images.get(&format!("emojis/{id}")) {
        Ok(Some(bytes)) => answer(&bytes, ext, query.size),
        _ => unrouted(),
    }
}

async fn default_avatar(Path(file): Path<String>, Query(query): Query<SizeQuery>) -> Response {
    let Some((n, ext)) = split(&file) else {
        return unrouted();
    };
    let Ok(n) = n.parse::<u8>() else {
        return unrouted();
    };
    if n > 5 {
        return unrouted();
    }
    match images::default_avatar(n) {
        Ok(bytes) => answer(&bytes, ext, query.size),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
