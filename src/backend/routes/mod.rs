//! The HTTP surface: one router per resource family, composed under `/api` and `/api/v6..v10`.
use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde_json::Value;

use super::error::{json_response, unrouted, ApiError};
use super::ratelimit;
use super::state::AppState;

pub(crate) mod applications;
pub(crate) mod auth;
pub(crate) mod automod;
pub(crate) mod cdn;
pub(crate) mod channels;
pub(crate) mod client;
pub(crate) mod client_startup;
pub(crate) mod commands;
pub(crate) mod compat;
pub(crate) mod control;
pub(crate) mod coverage;
pub(crate) mod encoded_paths;
pub(crate) mod event_counts;
pub(crate) mod event_exceptions;
pub(crate) mod followers;
pub(crate) mod group_dms;
pub(crate) mod guild_settings;
pub(crate) mod guilds;
pub(crate) mod incidents;
pub(crate) mod integrations;
pub(crate) mod interactions;
pub(crate) mod invite_targets;
pub(crate) mod invites;
pub(crate) mod lobbies;
pub(crate) mod members;
pub(crate) mod messages;
pub(crate) mod oauth2;
pub(crate) mod polls;
pub(crate) mod read_states;
pub(crate) mod relationships;
pub(crate) mod roles;
pub(crate) mod scheduled_events;
pub(crate) mod search;
pub(crate) mod soundboard;
pub(crate) mod stage_instances;
pub(crate) mod stickers;
pub(crate) mod subscriptions;
pub(crate) mod templates;
#[cfg(test)]
mod test_support;
pub(crate) mod user_settings;
pub(crate) mod users;
pub(crate) mod voice_channels;
pub(crate) mod voice_states;
pub(crate) mod webhook_compat;
pub(crate) mod webhooks;

/// The API version a request came in under (bare `/api`: Discord's defaults, v9 for user tokens
/// and v6 for bots and the rest; see [`compat::unversioned`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApiVersion(pub u8);

/// Every REST route, relative to an API prefix (`/users/@me`, `/channels/{channel_id}`...).
pub(crate) fn api_routes(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .merge(users::routes())
        .merge(auth::routes())
        .merge(client_startup::routes())
        .merge(user_settings::routes())
        .merge(read_states::routes())
        .merge(relationships::routes())
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
        .merge(event_counts::routes())
        .merge(control::routes());
    // With `serve --control`, every REST call and its answer go to the event log.
    let routes = if state.control.is_some() {
        routes.route_layer(middleware::from_fn_with_state(state.clone(), log_call))
    } else {
        routes
    };
    // No limiter layer at all when limits are off (benchmarks, trusted local use).
    let routes = if state.limiter.enabled() {
        routes.route_layer(middleware::from_fn_with_state(state.clone(), rate_limit))
    } else {
        routes
    };
    stamped(routes, state)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.max_body_bytes,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(unmatched_call)
}

/// What the router learnt about a request it routed, left in the response's extensions for the
/// access log (`-v`): the route template it matched and the caller's user id.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    /// `/api/v10/channels/{channel_id}/messages`: never ids or tokens.
    pub(crate) template: String,
    /// The authenticated caller, when the request carried a valid token.
    pub(crate) caller: Option<u64>,
}

/// `routes` with [`stamp_route`] when access lines are written (`-v`); as they are otherwise,
/// so a server without them pays nothing per request.
fn stamped(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    if tracing::enabled!(target: "discord_mitm::access", tracing::Level::INFO) {
        routes.route_layer(middleware::from_fn_with_state(state.clone(), stamp_route))
    } else {
        routes
    }
}

/// Middleware: stamps [`Routed`] on the answer, only while access lines are written.
async fn stamp_route(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: middleware::Next,
) -> Response {
    if !tracing::enabled!(target: "discord_mitm::access", tracing::Level::INFO) {
        return next.run(request).await;
    }
    let template = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string());
    let caller = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| super::extract::authenticate(&state, value).ok())
        .map(|user| user.id.0);
    let mut response = next.run(request).await;
    if let Some(template) = template {
        response
            .extensions_mut()
            .insert(Routed { template, caller });
    }
    response
}

/// Middleware (`serve --control` only): logs the call, its route template, caller and answer
/// in the control API's event log. The control routes themselves are not logged.
async fn log_call(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: middleware::Next,
) -> Response {
    let Some(hub) = state.control.clone() else {
        return next.run(request).await;
    };
    let template = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| unversioned_template(p.as_str()).to_string())
        .unwrap_or_default();
    if template.starts_with("/_mitm/") && template != "/_mitm/interactions" {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let params = match axum::extract::RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => params
            .iter()
            .map(|(key, value)| (key.to_string(), Value::String(value.to_string())))
            .collect(),
        Err(_) => serde_json::Map::new(),
    };
    let caller_id = caller_of(&state, &parts.headers);
    let method = parts.method.to_string();
    let is_json = |headers: &axum::http::HeaderMap| {
        headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    };
    let request_json = is_json(&parts.headers);
    let Ok(bytes) = axum::body::to_bytes(body, state.config.max_body_bytes).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let request_body = logged_body(request_json, &bytes);
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    hub.log.rest(super::eventlog::RestRecord {
        method,
        route: template,
        params,
        caller_id,
        status: parts.status.as_u16(),
        request: request_body,
        response: logged_body(is_json(&parts.headers), &bytes),
    });
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The fallback for paths no route serves: 404 (or, through `serve --listen`, the next source),
/// and with `serve --control` an event-log entry, so a test sees the calls its bot made to
/// routes the backend does not have. The path is logged with its secrets redacted (webhook and
/// interaction tokens, secret query parameters), as the recorder stores it.
async fn unmatched_call(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
) -> Response {
    if let Some(hub) = state.control.as_ref() {
        let target = request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path(), |p| p.as_str());
        let path = crate::store::redact::url(target, "request", &mut Vec::new());
        hub.log.rest(super::eventlog::RestRecord {
            method: request.method().to_string(),
            route: unversioned_template(&path).to_string(),
            params: serde_json::Map::new(),
            caller_id: caller_of(&state, request.headers()),
            status: StatusCode::NOT_FOUND.as_u16(),
            request: None,
            response: Some(serde_json::json!({"message": "404: Not Found", "code": 0})),
        });
    }
    unrouted()
}

/// `/api/v10/channels/{channel_id}` → `/channels/{channel_id}`.
fn unversioned_template(template: &str) -> &str {
    let Some(rest) = template.strip_prefix("/api") else {
        return template;
    };
    match rest.strip_prefix("/v") {
        Some(versioned) => versioned.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    }
}

/// The user a request's `Authorization` token belongs to.
fn caller_of(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Option<super::snowflake::Snowflake> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value.strip_prefix("Bot ").unwrap_or(value).trim();
    state.store.tokens.get(token).ok().flatten()
}

/// A body as the event log keeps it: JSON parsed, anything else by its size.
fn logged_body(json: bool, bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    if json {
        if let Ok(value) = serde_json::from_slice(bytes) {
            return Some(value);
        }
    }
    Some(serde_json::json!({"_bytes": bytes.len()}))
}

/// Middleware: applies the rate limits and adds their headers to every routed answer.
async fn rate_limit(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: middleware::Next,
) -> Response {
    if !state.limiter.enabled() {
        return next.run(request).await;
    }
    let template = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let Some(decision) = state.limiter.check_request(
        request.method().as_str(),
        &template,
        request.uri().path(),
        request.headers(),
        std::time::Instant::now(),
    ) else {
        return next.run(request).await;
    };
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        ratelimit::too_many_requests(&decision)
    };
    ratelimit::stamp(response.headers_mut(), decision);
    response
}

/// The backend's whole HTTP router (`/api`, `/api/v6` … `/api/v10`), ready to serve or to be
/// called in-process by the MITM pipeline. The gateway mounts its WebSocket routes beside it.
pub(crate) fn router(state: AppState) -> Router {
    let api = api_routes(&state);
    // The CDN's routes first, so their layer does not wrap the API's (which has its own).
    let root = Router::new()
        .route(
            "/attachments/{channel_id}/{attachment_id}/{filename}",
            axum::routing::get(serve_attachment),
        )
        .merge(cdn::routes());
    let mut root = stamped(root, &state).nest(
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
        // The control API also answers without an API prefix (`/_mitm/reset`).
        .merge(control::routes())
        .fallback(unmatched_call)
        .with_state(state);
    // Routing sees `%40original` as `@original`, as Discord does (discord.js sends the former).
    Router::new().fallback_service(tower::ServiceExt::map_request(
        root,
        encoded_paths::decode_literal_escapes,
    ))
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
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
    let not_ours = unrouted;
    let (Some(channel_id), Some(attachment_id)) = (
        super::snowflake::Snowflake::parse(&channel_id),
        super::snowflake::Snowflake::parse(&attachment_id),
    ) else {
        return not_ours();
    };
    match state.store.attachments.get((channel_id, attachment_id)) {
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
pub(crate) fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
}

/// 200 with a JSON array of `items`, each rendered by `render` (the first failure answers).
pub(crate) fn ok_list<T, E: Into<ApiError>>(
    items: impl IntoIterator<Item = T>,
    render: impl FnMut(T) -> Result<Value, E>,
) -> ApiResult {
    let out = items
        .into_iter()
        .map(render)
        .collect::<Result<Vec<_>, E>>()
        .map_err(Into::into)?;
    Ok(ok(Value::Array(out)))
}

/// A PATCH body's image field onto `field`: absent keeps it, `null` clears it, a data URL is
/// checked, stored for the CDN and kept as its hash (50035 at `name` when it is not an image).
pub(crate) fn set_image(
    store: &crate::backend::store::Store,
    field: &mut Option<String>,
    value: Option<Option<String>>,
    name: &str,
) -> Result<(), ApiError> {
    if let Some(value) = value {
        *field = value
            .map(|data| crate::backend::services::images::store_image(store, &data, name))
            .transpose()?;
    }
    Ok(())
}

/// 201 with a JSON body.
pub(crate) fn created(body: Value) -> Response {
    json_response(StatusCode::CREATED, &body)
}

/// 204 with no body.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Handlers' result type.
pub(crate) type ApiResult = Result<Response, ApiError>;

#[cfg(test)]
mod event_tests;
