//! The test-control API (`serve --control`), under `/_mitm/` (no Discord route lives there),
//! reachable at `/api/_mitm/…` and `/api/v{n}/_mitm/…` like every route. Off by default (404);
//! every call needs `Authorization: Control <token>` (the token the banner prints) and a
//! loopback peer.
//!
//! - `GET  /_mitm/control` — status: the event log's cursor, the clock, the fixture's users;
//! - `POST /_mitm/reset {fixture?, clear_log?}` — back to the loaded world (or another fixture
//!   file), every gateway session closed with 4000 and refused on RESUME;
//! - `POST /_mitm/act {as, action, …}` — act as a fixture user (id or username) through the REST
//!   routes themselves (see [`act`]);
//! - `GET  /_mitm/events?since=&type=&limit=&<field>=…` — the event log since a cursor;
//! - `POST /_mitm/events/wait {type, match, since, timeout_ms}` — the first matching entry after
//!   `since`, or 408 `{"timeout": true, "cursor"}`;
//! - `GET|POST /_mitm/clock {advance_ms | set_ms | frozen}` — the backend's clock;
//! - `POST /_mitm/sms {as, code?}` — the code a user's MFA SMS carries (a new random one
//!   without `code`): no SMS is ever sent, so tests read or pin it here.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::ok;
use crate::backend::control::ControlHub;
use crate::backend::error::{json_response, unrouted, ApiError, Unknown};
use crate::backend::eventlog::Filter;
use crate::backend::model::User;
use crate::backend::services::control as service;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;
use crate::backend::store::Store;

/// Routes of the control API.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_mitm/control", get(status))
        .route("/_mitm/reset", post(reset))
        .route("/_mitm/act", post(act))
        .route("/_mitm/events", get(events))
        .route("/_mitm/events/wait", post(wait))
        .route("/_mitm/clock", get(clock).post(change_clock))
        .route("/_mitm/sms", post(sms_code))
}

/// The control hub of an allowed caller: `--control` on, a loopback peer, the control token.
pub(crate) struct Controller(Arc<ControlHub>);

impl FromRequestParts<AppState> for Controller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(hub) = state.control.clone() else {
            return Err(unrouted());
        };
        let loopback = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
        if !loopback {
            return Err(refusal(
                StatusCode::FORBIDDEN,
                "the control API answers loopback clients only",
            ));
        }
        let given = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Control "))
            .unwrap_or("");
        if !hub.token_matches(given.trim()) {
            return Err(refusal(
                StatusCode::UNAUTHORIZED,
                "needs Authorization: Control <token> (printed in serve's banner)",
            ));
        }
        Ok(Controller(hub))
    }
}

fn refusal(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({"message": message, "code": 0}))
}

/// A control call's failure: a refusal of the control API's own, or a Discord-style error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("{message}")]
    Refused { status: StatusCode, message: String },
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        match self {
            ControlError::Refused { status, message } => refusal(status, &message),
            ControlError::Api(error) => error.into_response(),
        }
    }
}

fn failure(status: StatusCode, message: impl std::fmt::Display) -> ControlError {
    ControlError::Refused {
        status,
        message: message.to_string(),
    }
}

async fn status(State(state): State<AppState>, Controller(hub): Controller) -> Response {
    let users = match state.store.users.all() {
        Ok(users) => users,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let users: Vec<Value> = users
        .iter()
        .map(|u| json!({"id": u.id, "username": u.username, "bot": u.bot}))
        .collect();
    ok(json!({
        "enabled": true,
        "cursor": hub.log.cursor(),
        "clock": crate::backend::clock::state(),
        "seeded": crate::backend::clock::seeded(),
        "users": users,
    }))
}

#[derive(Debug, Default, Deserialize)]
struct ResetBody {
    /// Another fixture file to load instead of the one `serve` started with.
    fixture: Option<std::path::PathBuf>,
    /// Empty the event log too (its cursor keeps counting).
    #[serde(default)]
    clear_log: bool,
}

async fn reset(
    State(state): State<AppState>,
    Controller(hub): Controller,
    body: axum::body::Bytes,
) -> Response {
    let body: ResetBody = if body.iter().all(u8::is_ascii_whitespace) {
        ResetBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(e) => {
                return failure(StatusCode::BAD_REQUEST, format!("reset body: {e}")).into_response()
            }
        }
    };
    let _serial = hub.reset_lock.lock().await;
    let started = std::time::Instant::now();
    let outcome = match &body.fixture {
        None => reset_to_baseline(&state, &hub, body.clear_log),
        Some(path) => reset_to_fixture(&state, path, body.clear_log),
    };
    match outcome {
        Ok(mut out) => {
            out["took_ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
            ok(out)
        }
        Err(error) => error.into_response(),
    }
}

fn reset_to_baseline(
    state: &AppState,
    hub: &ControlHub,
    clear_log: bool,
) -> Result<Value, ControlError> {
    let Some(baseline) = hub.baseline() else {
        return Err(failure(
            StatusCode::CONFLICT,
            "no world to reset to yet (serve is still starting)",
        ));
    };
    service::rewind_clock(state).map_err(ControlError::from)?;
    let outcome =
        service::restore_world(state, &baseline.snapshot, clear_log).map_err(ControlError::from)?;
    Ok(json!(outcome))
}

fn reset_to_fixture(
    state: &AppState,
    path: &std::path::Path,
    clear_log: bool,
) -> Result<Value, ControlError> {
    service::rewind_clock(state).map_err(ControlError::from)?;
    let scratch = Store::temporary().map_err(|e| ControlError::from(ApiError::from(e)))?;
    if crate::backend::clock::seeded() {
        // The same ids on every reset to this fixture: from where the baseline's ended.
        let start = service::hub(state)
            .ok()
            .and_then(|hub| hub.baseline())
            .map_or(0, |baseline| baseline.snapshot.id_position());
        scratch.ids.rewind(start);
    }
    crate::backend::world::load_fixture_file(&scratch, path)
        .map_err(|e| failure(StatusCode::BAD_REQUEST, e))?;
    let snapshot = scratch
        .snapshot()
        .map_err(|e| ControlError::from(ApiError::from(e)))?;
    let outcome =
        service::restore_world(state, &snapshot, clear_log).map_err(ControlError::from)?;
    Ok(json!(outcome))
}

#[derive(Debug, Deserialize)]
struct ActBody {
    /// The user acting: an id, or a username.
    #[serde(rename = "as")]
    who: Value,
    action: String,
    #[serde(flatten)]
    args: Map<String, Value>,
}

/// Acts as a fixture user. Every action but `join_guild` without an invite and `presence` is
/// the REST call the user's client would make, made through the backend's own router with the
/// user's token (same validation, side effects and dispatches; logged like any REST call):
///
/// | action | fields | REST call |
/// | --- | --- | --- |
/// | `send_message` | `channel_id`, message fields | `POST /channels/{channel_id}/messages` |
/// | `edit_message` | `channel_id`, `message_id`, fields | `PATCH …/messages/{message_id}` |
/// | `delete_message` | `channel_id`, `message_id` | `DELETE …/messages/{message_id}` |
/// | `react` / `unreact` | `channel_id`, `message_id`, `emoji` | `PUT`/`DELETE …/reactions/{emoji}/@me` |
/// | `typing` | `channel_id` | `POST /channels/{channel_id}/typing` |
/// | `join_guild` | `invite` | `POST /invites/{invite}` |
/// | `join_guild` | `guild_id` | (no route: joins as from the guild's page) |
/// | `leave_guild` | `guild_id` | `DELETE /users/@me/guilds/{guild_id}` |
/// | `presence` | `status`, `activities` | (gateway op 3) |
/// | `invoke_command` | `channel_id`, `name`, `options`, … | `POST /_mitm/interactions` type 2 |
/// | `autocomplete` | as `invoke_command` | type 4 |
/// | `click_component` | `channel_id`, `message_id`, `custom_id`, `values` | type 3 |
/// | `submit_modal` | `channel_id`, `custom_id`, `components` | type 5 |
/// | `rest` | `method`, `path`, `body` | any route |
async fn act(
    State(state): State<AppState>,
    Controller(hub): Controller,
    body: axum::body::Bytes,
) -> Response {
    let body: ActBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return failure(StatusCode::BAD_REQUEST, format!("act body: {e}")).into_response()
        }
    };
    let user = match find_user(&state.store, &body.who) {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    let call = match plan_action(&state, &user, &body.action, body.args) {
        Ok(Planned::Rest(call)) => call,
        Ok(Planned::Done(answer)) => {
            return ok(json!({"status": 200, "body": answer, "cursor": hub.log.cursor()}))
        }
        Err(error) => return error.into_response(),
    };
    let router = hub
        .router
        .get_or_init(|| super::router(state.clone()))
        .clone();
    let (status, answer) = match call_as(router, &state.store, &user, call).await {
        Ok(answer) => answer,
        Err(error) => return error.into_response(),
    };
    ok(json!({"status": status, "body": answer, "cursor": hub.log.cursor()}))
}

/// A fixture user by id (string or number) or username.
fn find_user(store: &Store, who: &Value) -> Result<User, ControlError> {
    let text = match who {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                "`as` must be an id or a username",
            ))
        }
    };
    if let Some(id) = Snowflake::parse(&text) {
        if let Ok(Some(user)) = store.user(id) {
            return Ok(user);
        }
    }
    let users = store
        .users
        .all()
        .map_err(|e| ControlError::from(ApiError::from(e)))?;
    users
        .into_iter()
        .find(|u| u.username.eq_ignore_ascii_case(&text))
        .ok_or_else(|| failure(StatusCode::NOT_FOUND, format!("no user {text:?}")))
}

/// One REST call to make as the user.
struct RestCall {
    method: Method,
    /// Relative to `/api/v10`.
    path: String,
    body: Option<Value>,
}

/// What an action comes down to.
enum Planned {
    Rest(RestCall),
    /// Done without a REST route (its answer).
    Done(Value),
}

fn field(args: &Map<String, Value>, name: &str) -> Result<String, ControlError> {
    match args.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(failure(
            StatusCode::BAD_REQUEST,
            format!("this action needs `{name}`"),
        )),
    }
}

fn rest(method: Method, path: String, body: Option<Value>) -> Result<Planned, ControlError> {
    Ok(Planned::Rest(RestCall { method, path, body }))
}

fn plan_action(
    state: &AppState,
    user: &User,
    action: &str,
    mut args: Map<String, Value>,
) -> Result<Planned, ControlError> {
    let message_path = |args: &Map<String, Value>| -> Result<String, ControlError> {
        Ok(format!(
            "/channels/{}/messages/{}",
            field(args, "channel_id")?,
            field(args, "message_id")?
        ))
    };
    match action {
        "send_message" => {
            let channel = field(&args, "channel_id")?;
            args.remove("channel_id");
            rest(
                Method::POST,
                format!("/channels/{channel}/messages"),
                Some(Value::Object(args)),
            )
        }
        "edit_message" => {
            let path = message_path(&args)?;
            args.remove("channel_id");
            args.remove("message_id");
            rest(Method::PATCH, path, Some(Value::Object(args)))
        }
        "delete_message" => rest(Method::DELETE, message_path(&args)?, None),
        "react" | "unreact" => {
            let emoji = percent_encode(&field(&args, "emoji")?);
            let path = format!("{}/reactions/{emoji}/@me", message_path(&args)?);
            let method = if action == "react" {
                Method::PUT
            } else {
                Method::DELETE
            };
            rest(method, path, None)
        }
        "typing" => rest(
            Method::POST,
            format!("/channels/{}/typing", field(&args, "channel_id")?),
            None,
        ),
        "leave_guild" => rest(
            Method::DELETE,
            format!("/users/@me/guilds/{}", field(&args, "guild_id")?),
            None,
        ),
        "join_guild" => plan_join(state, user, &args),
        "presence" => {
            service::set_presence(state, user.id, Value::Object(args));
            Ok(Planned::Done(Value::Null))
        }
        "invoke_command" | "autocomplete" | "click_component" | "submit_modal" => {
            plan_interaction(state, user, action, args)
        }
        "rest" => plan_raw(args),
        other => Err(failure(
            StatusCode::BAD_REQUEST,
            format!("unknown action {other:?}"),
        )),
    }
}

fn plan_join(
    state: &AppState,
    user: &User,
    args: &Map<String, Value>,
) -> Result<Planned, ControlError> {
    if args.contains_key("invite") {
        let code = percent_encode(&field(args, "invite")?);
        return rest(Method::POST, format!("/invites/{code}"), Some(json!({})));
    }
    let guild_id = Snowflake::parse(&field(args, "guild_id")?)
        .ok_or_else(|| failure(StatusCode::BAD_REQUEST, "`guild_id` is not an id"))?;
    let joined = service::join_guild(state, guild_id, user.id).map_err(ControlError::from)?;
    Ok(Planned::Done(json!({"new_member": joined})))
}

fn plan_raw(args: Map<String, Value>) -> Result<Planned, ControlError> {
    let method = field(&args, "method")?
        .to_ascii_uppercase()
        .parse::<Method>()
        .map_err(|_| failure(StatusCode::BAD_REQUEST, "`method` is not an HTTP method"))?;
    let path = field(&args, "path")?;
    if !path.starts_with('/') || path.starts_with("/_mitm/control") {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            "`path` is a REST path relative to /api/v10, starting with /",
        ));
    }
    rest(method, path, args.get("body").cloned())
}

/// The interaction a user makes, as `POST /_mitm/interactions` takes it.
fn plan_interaction(
    state: &AppState,
    user: &User,
    action: &str,
    mut args: Map<String, Value>,
) -> Result<Planned, ControlError> {
    let kind = match action {
        "invoke_command" => 2,
        "click_component" => 3,
        "autocomplete" => 4,
        _ => 5,
    };
    args.insert("type".into(), json!(kind));
    if !args.contains_key("application_id") {
        if let Some(app) = infer_application(state, user, kind, &args) {
            args.insert("application_id".into(), json!(app));
        }
    }
    rest(
        Method::POST,
        "/_mitm/interactions".into(),
        Some(Value::Object(args)),
    )
}

/// The application an interaction is for, when the caller did not say: the one with a command
/// of that name; the author of the clicked message; for a modal, the application of the user's
/// latest interaction in the channel.
fn infer_application(
    state: &AppState,
    user: &User,
    kind: u8,
    args: &Map<String, Value>,
) -> Option<Snowflake> {
    let store = &state.store;
    let id = |name: &str| {
        args.get(name)
            .and_then(Value::as_str)
            .and_then(Snowflake::parse)
    };
    match kind {
        2 | 4 => {
            let name = args.get("name")?.as_str()?;
            let commands = store.commands.all().ok()?;
            commands
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.application_id)
        }
        3 => {
            let message = store.message(id("channel_id")?, id("message_id")?).ok()??;
            message.application_id.or(Some(message.author_id))
        }
        _ => {
            let channel = id("channel_id");
            let interactions = store.interactions.all().ok()?;
            interactions
                .iter()
                .filter(|i| i.user_id == user.id && channel.is_none_or(|c| c == i.channel_id))
                .max_by_key(|i| i.id)
                .map(|i| i.application_id)
        }
    }
}

/// `%XX` for every byte outside RFC 3986's unreserved set (emoji, invite codes).
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Makes `call` as `user` through the backend's router; returns the status and JSON answer.
async fn call_as(
    router: Router,
    store: &Store,
    user: &User,
    call: RestCall,
) -> Result<(u16, Value), ControlError> {
    use tower::ServiceExt as _;
    let credentials = store
        .credentials
        .get(user.id)
        .map_err(|e| ControlError::from(ApiError::from(e)))?
        .ok_or(ControlError::Api(ApiError::NotFound(Unknown::Token)))?;
    let authorization = if user.bot {
        format!("Bot {}", credentials.token)
    } else {
        credentials.token
    };
    let body = match &call.body {
        Some(body) => axum::body::Body::from(serde_json::to_vec(body).unwrap_or_default()),
        None => axum::body::Body::empty(),
    };
    let mut request = Request::new(body);
    *request.method_mut() = call.method;
    *request.uri_mut() = format!("/api/v10{}", call.path)
        .parse()
        .map_err(|_| failure(StatusCode::BAD_REQUEST, "not a valid path"))?;
    let headers = request.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&authorization) {
        headers.insert(http::header::AUTHORIZATION, value);
    }
    if call.body.is_some() {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let response = router
        .oneshot(request)
        .await
        .map_err(|e| failure(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .map_err(|e| failure(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let answer = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Ok((status, answer))
}

async fn events(Controller(hub): Controller, request: Request) -> Response {
    let query = request.uri().query().unwrap_or("");
    let mut since = 0;
    let mut limit = 1000;
    let mut filter = Filter::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "since" => match value.parse() {
                Ok(n) => since = n,
                Err(_) => {
                    return failure(StatusCode::BAD_REQUEST, "`since` is a cursor").into_response()
                }
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) => limit = n.clamp(1, 10_000),
                Err(_) => {
                    return failure(StatusCode::BAD_REQUEST, "`limit` is a number").into_response()
                }
            },
            "type" => filter.kind = Some(value.into_owned()),
            _ => {
                filter
                    .fields
                    .insert(key.into_owned(), Value::String(value.into_owned()));
            }
        }
    }
    ok(json!(hub.log.since(since, &filter, limit)))
}

#[derive(Debug, Deserialize)]
struct WaitBody {
    #[serde(flatten)]
    filter: Filter,
    /// Only entries after this cursor (default: every entry still held).
    #[serde(default)]
    since: u64,
    /// How long to wait (default 5000 ms, at most 10 minutes).
    #[serde(default = "default_wait_ms")]
    timeout_ms: u64,
}

fn default_wait_ms() -> u64 {
    5000
}

async fn wait(Controller(hub): Controller, body: axum::body::Bytes) -> Response {
    let body: WaitBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return failure(StatusCode::BAD_REQUEST, format!("wait body: {e}")).into_response()
        }
    };
    let timeout = Duration::from_millis(body.timeout_ms.min(600_000));
    match hub.log.wait(body.since, &body.filter, timeout).await {
        Ok(entry) => {
            let cursor = entry.get("cursor").cloned();
            ok(json!({"event": entry, "cursor": cursor}))
        }
        Err(cursor) => json_response(
            StatusCode::REQUEST_TIMEOUT,
            &json!({"timeout": true, "cursor": cursor,
                    "message": "no matching event before the timeout"}),
        ),
    }
}

async fn clock(Controller(_hub): Controller) -> Response {
    ok(json!(crate::backend::clock::state()))
}

async fn change_clock(
    State(state): State<AppState>,
    Controller(_hub): Controller,
    body: axum::body::Bytes,
) -> Response {
    let change: service::ClockChange = match serde_json::from_slice(&body) {
        Ok(change) => change,
        Err(e) => {
            return failure(StatusCode::BAD_REQUEST, format!("clock body: {e}")).into_response()
        }
    };
    match service::change_clock(&state, &change) {
        Ok(out) => ok(out),
        Err(error) => error.into_response(),
    }
}

#[derive(Deserialize)]
struct SmsBody {
    /// The user: id or username.
    #[serde(rename = "as")]
    who: Value,
    /// The code to set; a random six-digit one when left out.
    code: Option<String>,
}

/// Sets the code the user's MFA SMS carries; `{code, phone}`.
async fn sms_code(
    State(state): State<AppState>,
    Controller(_hub): Controller,
    body: axum::body::Bytes,
) -> Response {
    let body: SmsBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return failure(StatusCode::BAD_REQUEST, format!("sms body: {e}")).into_response()
        }
    };
    let user = match find_user(&state.store, &body.who) {
        Ok(user) => user,
        Err(error) => return error.into_response(),
    };
    match crate::backend::services::auth::set_sms_code(&state, user.id, body.code) {
        Ok((code, phone)) => ok(json!({"code": code, "phone": phone})),
        Err(error) => error.into_response(),
    }
}
