//! The HTTP surface: one router per resource family, composed under `/api` and `/api/v6..v10`.
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde_json::Value;

use super::error::{json_response, ApiError};
use super::ratelimit;
use super::state::AppState;

pub mod applications;
pub mod automod;
pub mod channels;
pub mod client;
pub mod commands;
pub mod compat;
pub mod encoded_paths;
pub mod event_counts;
pub mod event_exceptions;
pub mod followers;
pub mod group_dms;
pub mod guild_settings;
pub mod guilds;
pub mod incidents;
pub mod integrations;
pub mod interactions;
pub mod invite_targets;
pub mod invites;
pub mod lobbies;
pub mod members;
pub mod messages;
pub mod oauth2;
pub mod polls;
pub mod roles;
pub mod scheduled_events;
pub mod search;
pub mod soundboard;
pub mod stage_instances;
pub mod stickers;
pub mod subscriptions;
pub mod templates;
#[cfg(test)]
mod test_support;
pub mod users;
pub mod voice_channels;
pub mod voice_states;
pub mod webhook_compat;
pub mod webhooks;

/// The API version a request came in under (bare `/api`: Discord's defaults, v9 for user tokens
/// and v6 for bots and the rest; see [`compat::unversioned`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion(pub u8);

/// Marks answers produced by the no-route fallback (used by the coverage report).
#[derive(Debug, Clone, Copy)]
pub struct Unrouted;

/// Every REST route, relative to an API prefix (`/users/@me`, `/channels/{channel_id}`...).
pub fn api_routes(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .merge(users::routes())
        .merge(guilds::routes())
        .merge(roles::routes())
        .merge(members::routes())
        .merge(channels::routes())
        .merge(messages::routes())
        .merge(polls::routes())
        .merge(invite_targets::routes())
        .merge(lobbies::routes())
        .merge(event_exceptions::routes())
        .merge(subscriptions::routes())
        .merge(incidents::routes())
        .merge(voice_channels::routes())
        .merge(search::routes())
        .merge(webhook_compat::routes())
        .merge(integrations::routes())
        .merge(oauth2::routes())
        .merge(voice_states::routes())
        .merge(invites::routes())
        .merge(webhooks::routes())
        .merge(commands::routes())
        .merge(interactions::routes())
        .merge(scheduled_events::routes())
        .merge(stage_instances::routes())
        .merge(automod::routes())
        .merge(stickers::routes())
        .merge(soundboard::routes())
        .merge(templates::routes())
        .merge(guild_settings::routes())
        .merge(applications::routes())
        .merge(followers::routes())
        .merge(group_dms::routes())
        .merge(event_counts::routes());
    // No limiter layer at all when limits are off (benchmarks, trusted local use).
    let routes = if state.limiter.enabled() {
        routes.route_layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::layer,
        ))
    } else {
        routes
    };
    routes
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.max_body_bytes,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_route_handler)
}

/// The backend's whole HTTP router (`/api`, `/api/v6` … `/api/v10`), ready to serve or to be
/// called in-process by the MITM pipeline. The gateway mounts its WebSocket routes beside it.
pub fn router(state: AppState) -> Router {
    let api = api_routes(&state);
    let mut root = Router::new().nest(
        "/api",
        api.clone().layer(middleware::from_fn(compat::unversioned)),
    );
    for version in 6..=10u8 {
        let mut versioned = api.clone().layer(Extension(ApiVersion(version)));
        if version <= 7 {
            versioned = versioned.layer(middleware::from_fn(compat::legacy_shapes));
        }
        root = root.nest(&format!("/api/v{version}"), versioned);
    }
    let root = root
        .route(
            "/attachments/{channel_id}/{attachment_id}/{filename}",
            axum::routing::get(serve_attachment),
        )
        .fallback(no_route_handler)
        .with_state(state);
    // Routing sees `%40original` as `@original`, as Discord does (discord.js sends the former).
    Router::new().fallback_service(tower::ServiceExt::map_request(
        root,
        encoded_paths::decode_literal_escapes,
    ))
}

/// The answer for paths no route serves (also mounted explicitly where a path would otherwise
/// be captured by a parameter, e.g. `messages/@original`).
pub async fn no_route_handler(_request: Request) -> Response {
    let mut response = ApiError::NoRoute.into_response();
    response.extensions_mut().insert(Unrouted);
    response
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

/// Header the MITM pipeline sets on requests it hands the backend in-process: the origin that
/// clients behind the proxy fetch attachments from (`https://cdn.discordapp.com`).
pub const PROXIED_CDN_ORIGIN: &str = "x-discord-mitm-cdn-origin";

/// Header the MITM pipeline sets on requests it hands the backend in-process: the gateway URL
/// advertised to clients behind the proxy (`wss://gateway.discord.gg`), unless `--gateway-url`.
pub const PROXIED_GATEWAY_URL: &str = "x-discord-mitm-gateway-url";

/// `http://<Host the client used>`, the origin attachment URLs point at (behind the proxy, the
/// [`PROXIED_CDN_ORIGIN`] header's value).
pub fn origin(headers: &axum::http::HeaderMap) -> String {
    if let Some(proxied) = headers
        .get(PROXIED_CDN_ORIGIN)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.starts_with("https://") || h.starts_with("http://"))
    {
        return proxied.to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("127.0.0.1:3000");
    format!("http://{host}")
}

/// Serves an uploaded attachment (the CDN's role), with a content type guessed from its name.
async fn serve_attachment(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path((channel_id, attachment_id, filename)): axum::extract::Path<(
        String,
        String,
        String,
    )>,
) -> Response {
    // Marked unrouted so the MITM pipeline passes attachments it does not hold (real Discord's)
    // on down its chain; direct clients see the same 404 either way.
    let not_ours = || {
        let mut response = ApiError::NoRoute.into_response();
        response.extensions_mut().insert(Unrouted);
        response
    };
    let (Some(channel_id), Some(attachment_id)) = (
        super::snowflake::Snowflake::parse(&channel_id),
        super::snowflake::Snowflake::parse(&attachment_id),
    ) else {
        return not_ours();
    };
    match state
        .store
        .attachments
        .get(super::store::key2(channel_id, attachment_id))
    {
        Ok(Some(bytes)) => {
            let kind = match filename
                .rsplit('.')
                .next()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("png") => "image/png",
                Some("jpg" | "jpeg") => "image/jpeg",
                Some("gif") => "image/gif",
                Some("webp") => "image/webp",
                Some("txt" | "log") => "text/plain; charset=utf-8",
                Some("json") => "application/json",
                _ => "application/octet-stream",
            };
            ([(axum::http::header::CONTENT_TYPE, kind)], bytes).into_response()
        }
        Ok(None) => not_ours(),
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// 200 with a JSON body.
pub fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
}

/// 201 with a JSON body.
pub fn created(body: Value) -> Response {
    json_response(StatusCode::CREATED, &body)
}

/// 204 with no body.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Handlers' result type.
pub type ApiResult = Result<Response, ApiError>;

/// Turns a data URI image into the hash Discord would store (we keep no image bytes).
pub fn image_hash(data: &str, path: &str) -> Result<String, ApiError> {
    let valid = data.starts_with("data:image/") && data.contains(";base64,");
    if !valid {
        return Err(ApiError::invalid_field(
            path,
            "IMAGE_INVALID",
            "Invalid image data",
        ));
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data.as_bytes());
    let hash = hex::encode(&digest[..16]);
    Ok(if data.starts_with("data:image/gif") {
        format!("a_{hash}")
    } else {
        hash
    })
}

pub mod patching;

/// `Option<Option<T>>` for PATCH bodies: absent (keep) vs `null` (clear) vs a value.
pub mod patch {
    use serde::{Deserialize, Deserializer};

    /// Deserializes a present field (even `null`) as `Some(...)`.
    pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

/// Clamps a `limit` query parameter like Discord (out of range → 50035).
pub fn limit(value: Option<i64>, default: i64, max: i64) -> Result<usize, ApiError> {
    let value = value.unwrap_or(default);
    if value < 1 || value > max {
        return Err(ApiError::invalid_field(
            "limit",
            "NUMBER_TYPE_MAX",
            format!("int value should be less than or equal to {max}."),
        ));
    }
    Ok(value as usize)
}

#[cfg(test)]
mod event_tests;
