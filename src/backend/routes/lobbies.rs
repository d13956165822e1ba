//! Lobbies (Discord Social SDK), managed server-side with an application's bot token: create,
//! read, edit and delete lobbies of the application, manage their members one by one or in
//! bulk, and exchange lobby messages (members read and post with their own token too).
//! Members leave and link a guild channel with their own token (standing in for the SDK's
//! OAuth2 bearer token). Not served: `PUT /lobbies` (create-or-join by secret needs a bearer
//! token's application), lobby invites and moderation metadata.
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{created, no_content, ok, ApiResult};
use crate::backend::error::not_found;
use crate::backend::error::{ApiError, Unknown, Validator};
use crate::backend::extra::{Lobby, LobbyMember};
use crate::backend::extract::{Auth, Body, Ids, Q};
use crate::backend::render;
use crate::backend::services::common::limit;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

const MAX_MEMBERS: usize = 25;
/// Message type of a lobby message (a plain message).
const DEFAULT_MESSAGE: u8 = 0;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/lobbies", post(create_lobby))
        .route(
            "/lobbies/{lobby_id}",
            get(get_lobby).patch(edit_lobby).delete(delete_lobby),
        )
        .route("/lobbies/{lobby_id}/members/bulk", post(bulk_members))
        .route("/lobbies/{lobby_id}/members/@me", delete(leave))
        .route("/lobbies/{lobby_id}/channel-linking", patch(link_channel))
        .route(
            "/lobbies/{lobby_id}/members/{user_id}",
            put(put_member).delete(remove_member),
        )
        .route(
            "/lobbies/{lobby_id}/messages",
            get(list_messages).post(send_message),
        )
}

fn unknown_lobby() -> ApiError {
    not_found(10031, "Unknown lobby")
}

fn render_lobby(state: &AppState, lobby: &Lobby) -> Result<Value, ApiError> {
    let mut out = json!({
        "id": lobby.id,
        "application_id": lobby.application_id,
        "metadata": lobby.metadata,
        "members": lobby.members,
        "flags": 0,
    });
    if let Some(channel) = lobby
        .linked_channel_id
        .map(|id| state.store.channel(id))
        .transpose()?
        .flatten()
    {
        out["linked_channel"] = render::channel(&state.store, &channel)?;
    }
    Ok(out)
}

/// The calling bot's application id (lobbies are managed with the application's bot token).
fn caller_application(state: &AppState, auth: &Auth) -> Result<Snowflake, ApiError> {
    if !auth.user.bot {
        return Err(ApiError::Unauthorized);
    }
    Ok(state
        .store
        .applications
        .get(auth.id())?
        .ok_or(ApiError::NotFound(Unknown::Application))?
        .id)
}

/// An authenticated call on a lobby route: the state, the caller and the path ids `T`, in the
/// order separate extractors answer (401 first, then the path's 50035).
struct LobbyCall<T = Snowflake>(AppState, Auth, T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for LobbyCall<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        let Ids(ids) = Ids::<T>::from_request_parts(parts, state).await?;
        Ok(LobbyCall(state.clone(), auth, ids))
    }
}

/// Stores `lobby` and renders it.
fn save_lobby(state: &AppState, lobby: &Lobby) -> Result<Value, ApiError> {
    state.store.extra.lobbies.put(lobby.id, lobby)?;
    render_lobby(state, lobby)
}

/// Removes `user_id` from `lobby` (nothing when absent) and stores it; the caller holds the
/// store lock since it loaded the lobby.
fn remove_from_lobby(state: &AppState, mut lobby: Lobby, user_id: Snowflake) -> ApiResult {
    lobby.members.retain(|m| m.id != user_id);
    state.store.extra.lobbies.put(lobby.id, &lobby)?;
    Ok(no_content())
}

/// A lobby of the caller's application (other applications' lobbies do not exist for it).
fn own_lobby(state: &AppState, auth: &Auth, lobby_id: Snowflake) -> Result<Lobby, ApiError> {
    let application_id = caller_application(state, auth)?;
    visible_lobby(state, lobby_id, |lobby| {
        lobby.application_id == application_id
    })
}

/// The lobby `lobby_id` when `visible` says the caller may see it (10031 unknown otherwise).
fn visible_lobby(
    state: &AppState,
    lobby_id: Snowflake,
    visible: impl Fn(&Lobby) -> bool,
) -> Result<Lobby, ApiError> {
    state
        .store
        .extra
        .lobbies
        .get(lobby_id)?
        .filter(|lobby| visible(lobby))
        .ok_or_else(unknown_lobby)
}

/// Checks a metadata dictionary: string values, at most 1000 characters in all.
fn check_metadata(checks: &mut Validator, path: &str, value: &Value) -> Option<Map<String, Value>> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let total: usize = map
                .iter()
                .map(|(k, v)| k.chars().count() + v.as_str().map_or(0, |s| s.chars().count()))
                .sum();
            if map.values().any(|v| !v.is_string()) {
                checks.add(path, "BASE_TYPE_STRING", "Metadata values must be strings.");
            } else if total > 1000 {
                checks.add(
                    path,
                    "BASE_TYPE_MAX_LENGTH",
                    "Metadata must be 1000 or fewer characters in all.",
                );
            }
            Some(map.clone())
        }
        _ => {
            checks.add(
                path,
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            );
            None
        }
    }
}

/// A member description in a request body (`id` required unless `fixed_id` names it).
fn parse_member(
    state: &AppState,
    checks: &mut Validator,
    path: &str,
    body: &Value,
    fixed_id: Option<Snowflake>,
    current: Option<&LobbyMember>,
) -> Result<Option<LobbyMember>, ApiError> {
    let id = fixed_id.or_else(|| match &body["id"] {
        Value::String(s) => Snowflake::parse(s),
        Value::Number(n) => n.as_u64().map(Snowflake),
        _ => None,
    });
    let Some(id) = id else {
        checks.add(
            &format!("{path}id"),
            "BASE_TYPE_REQUIRED",
            "This field is required",
        );
        return Ok(None);
    };
    if state.store.user(id)?.is_none() {
        return Err(ApiError::NotFound(Unknown::User));
    }
    let mut member = current.cloned().unwrap_or(LobbyMember {
        id,
        metadata: None,
        flags: 0,
        additional_name: None,
    });
    if let Some(metadata) = body.get("metadata") {
        member.metadata = check_metadata(checks, &format!("{path}metadata"), metadata);
    }
    match body.get("flags") {
        None | Some(Value::Null) => {}
        Some(flags) => match flags.as_u64() {
            Some(f) if f <= 1 => member.flags = f as u32,
            _ => checks.add(
                &format!("{path}flags"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {0, 1}.",
            ),
        },
    }
    match body.get("additional_name") {
        None => {}
        Some(Value::Null) => member.additional_name = None,
        Some(Value::String(name)) if (1..=80).contains(&name.chars().count()) => {
            member.additional_name = Some(name.clone())
        }
        Some(_) => checks.add(
            &format!("{path}additional_name"),
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 80 in length.",
        ),
    }
    Ok(Some(member))
}

/// A `members` list (at most 25, no repeats).
fn parse_members(
    state: &AppState,
    checks: &mut Validator,
    value: &Value,
    current: &[LobbyMember],
) -> Result<Vec<LobbyMember>, ApiError> {
    let Some(items) = value.as_array() else {
        checks.add("members", "BASE_TYPE_ARRAY", "Must be an array.");
        return Ok(Vec::new());
    };
    if items.len() > MAX_MEMBERS {
        checks.add(
            "members",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_MEMBERS} or fewer in length."),
        );
    }
    let mut members: Vec<LobbyMember> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let existing = item["id"]
            .as_str()
            .and_then(Snowflake::parse)
            .and_then(|id| current.iter().find(|m| m.id == id));
        if let Some(member) = parse_member(
            state,
            checks,
            &format!("members.{index}."),
            item,
            None,
            existing,
        )? {
            members.retain(|m| m.id != member.id);
            members.push(member);
        }
    }
    Ok(members)
}

fn idle_timeout(checks: &mut Validator, body: &Value) -> Option<u32> {
    let value = body.get("idle_timeout_seconds").filter(|v| !v.is_null())?;
    match value.as_u64() {
        Some(n) if (5..=604_800).contains(&n) => Some(n as u32),
        _ => {
            checks.add(
                "idle_timeout_seconds",
                "NUMBER_TYPE_OUT_OF_RANGE",
                "int value should be between 5 and 604800.",
            );
            None
        }
    }
}

async fn create_lobby(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<Value>,
) -> ApiResult {
    let application_id = caller_application(&state, &auth)?;
    let mut checks = Validator::default();
    let metadata = body
        .get("metadata")
        .and_then(|m| check_metadata(&mut checks, "metadata", m));
    let members = match body.get("members").filter(|m| !m.is_null()) {
        Some(list) => parse_members(&state, &mut checks, list, &[])?,
        None => Vec::new(),
    };
    let idle_timeout_seconds = idle_timeout(&mut checks, &body);
    checks.finish()?;
    let lobby = Lobby {
        id: state.store.next_id(),
        application_id,
        metadata,
        members,
        idle_timeout_seconds,
        linked_channel_id: None,
    };
    Ok(created(save_lobby(&state, &lobby)?))
}

async fn get_lobby(LobbyCall(state, auth, lobby_id): LobbyCall) -> ApiResult {
    Ok(ok(render_lobby(
        &state,
        &own_lobby(&state, &auth, lobby_id)?,
    )?))
}

async fn edit_lobby(
    LobbyCall(state, auth, lobby_id): LobbyCall,
    Body(body): Body<Value>,
) -> ApiResult {
    let _guard = state.store.lock();
    let mut lobby = own_lobby(&state, &auth, lobby_id)?;
    let mut checks = Validator::default();
    if let Some(metadata) = body.get("metadata") {
        lobby.metadata = check_metadata(&mut checks, "metadata", metadata);
    }
    if let Some(list) = body.get("members").filter(|m| !m.is_null()) {
        // Replaces the member list: members not named are removed.
        lobby.members = parse_members(&state, &mut checks, list, &lobby.members)?;
    }
    if let Some(timeout) = idle_timeout(&mut checks, &body) {
        lobby.idle_timeout_seconds = Some(timeout);
    }
    checks.finish()?;
    Ok(ok(save_lobby(&state, &lobby)?))
}

/// Deleting is idempotent for the application's own (or already gone) lobbies.
async fn delete_lobby(LobbyCall(state, auth, lobby_id): LobbyCall) -> ApiResult {
    match own_lobby(&state, &auth, lobby_id) {
        Ok(lobby) => {
            state.store.extra.lobbies.remove(lobby.id)?;
            state.store.extra.lobby_messages.remove_prefix(lobby.id)?;
            Ok(no_content())
        }
        Err(ApiError::Coded { code: 10031, .. }) => Ok(no_content()),
        Err(other) => Err(other),
    }
}

async fn put_member(
    LobbyCall(state, auth, (lobby_id, user_id)): LobbyCall<(Snowflake, Snowflake)>,
    Body(body): Body<Value>,
) -> ApiResult {
    let _guard = state.store.lock();
    let mut lobby = own_lobby(&state, &auth, lobby_id)?;
    let current = lobby.members.iter().find(|m| m.id == user_id).cloned();
    if current.is_none() && lobby.members.len() >= MAX_MEMBERS {
        return Err(ApiError::bad_request(
            30001,
            "Maximum number of lobby members reached",
        ));
    }
    let mut checks = Validator::default();
    let member = parse_member(
        &state,
        &mut checks,
        "",
        &body,
        Some(user_id),
        current.as_ref(),
    )?;
    checks.finish()?;
    let member = member.ok_or(ApiError::NotFound(Unknown::User))?;
    lobby.members.retain(|m| m.id != user_id);
    lobby.members.push(member.clone());
    state.store.extra.lobbies.put(lobby.id, &lobby)?;
    Ok(ok(json!(member)))
}

async fn remove_member(
    LobbyCall(state, auth, (lobby_id, user_id)): LobbyCall<(Snowflake, Snowflake)>,
) -> ApiResult {
    let _guard = state.store.lock();
    let lobby = own_lobby(&state, &auth, lobby_id)?;
    remove_from_lobby(&state, lobby, user_id)
}

async fn bulk_members(
    LobbyCall(state, auth, lobby_id): LobbyCall,
    Body(body): Body<Value>,
) -> ApiResult {
    let _guard = state.store.lock();
    let mut lobby = own_lobby(&state, &auth, lobby_id)?;
    let Some(items) = body
        .as_array()
        .filter(|a| (1..=MAX_MEMBERS).contains(&a.len()))
    else {
        return Err(ApiError::invalid_field(
            "",
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be an array of 1 to {MAX_MEMBERS} members."),
        ));
    };
    let mut checks = Validator::default();
    let mut upserted = Vec::new();
    let mut members = lobby.members.clone();
    for (index, item) in items.iter().enumerate() {
        let existing = item["id"]
            .as_str()
            .and_then(Snowflake::parse)
            .and_then(|id| members.iter().find(|m| m.id == id))
            .cloned();
        let path = format!("{index}.");
        let Some(member) = parse_member(&state, &mut checks, &path, item, None, existing.as_ref())?
        else {
            continue;
        };
        members.retain(|m| m.id != member.id);
        if item["remove_member"].as_bool() != Some(true) {
            members.push(member.clone());
            upserted.push(member);
        }
    }
    if members.len() > MAX_MEMBERS {
        checks.add(
            "",
            "BASE_TYPE_MAX_LENGTH",
            format!("A lobby holds at most {MAX_MEMBERS} members."),
        );
    }
    checks.finish()?;
    lobby.members = members;
    state.store.extra.lobbies.put(lobby.id, &lobby)?;
    Ok(ok(json!(upserted)))
}

/// The lobby for a message route: its application's bot, or a member with their own token.
fn lobby_for_messages(
    state: &AppState,
    auth: &Auth,
    lobby_id: Snowflake,
) -> Result<Lobby, ApiError> {
    visible_lobby(state, lobby_id, |lobby| {
        let is_app = auth.user.bot && auth.id() == lobby.application_id;
        is_app || lobby.members.iter().any(|m| m.id == auth.id())
    })
}

#[derive(Deserialize)]
struct MessagesQuery {
    limit: Option<i64>,
}

async fn list_messages(
    LobbyCall(state, auth, lobby_id): LobbyCall,
    Q(query): Q<MessagesQuery>,
) -> ApiResult {
    let lobby = lobby_for_messages(&state, &auth, lobby_id)?;
    let limit = limit(query.limit, 50, 200)?;
    let mut messages = state.store.extra.lobby_messages.values(lobby.id)?;
    messages.reverse();
    messages.truncate(limit);
    Ok(ok(Value::Array(messages)))
}

async fn send_message(
    LobbyCall(state, auth, lobby_id): LobbyCall,
    Body(body): Body<Value>,
) -> ApiResult {
    let lobby = lobby_for_messages(&state, &auth, lobby_id)?;
    let mut checks = Validator::default();
    let content = body["content"].as_str();
    checks.required("content", content.as_ref());
    checks.length("content", content, 1, 2000);
    let metadata = body
        .get("metadata")
        .and_then(|m| check_metadata(&mut checks, "metadata", m));
    checks.finish()?;
    let id = state.store.next_id();
    let mut message = json!({
        "id": id,
        "type": DEFAULT_MESSAGE,
        "content": content.unwrap_or_default(),
        "lobby_id": lobby.id,
        "channel_id": lobby.id,
        "author": render::user(&auth.user),
        "flags": 0,
        "application_id": lobby.application_id,
    });
    if let Some(metadata) = metadata {
        message["metadata"] = Value::Object(metadata);
    }
    state
        .store
        .extra
        .lobby_messages
        .put((lobby.id, id), &message)?;
    Ok(created(message))
}

/// `DELETE /lobbies/{id}/members/@me`: the caller leaves (safe to repeat).
async fn leave(LobbyCall(state, auth, lobby_id): LobbyCall) -> ApiResult {
    let _guard = state.store.lock();
    let lobby = lobby_for_messages(&state, &auth, lobby_id)?;
    remove_from_lobby(&state, lobby, auth.id())
}

/// Lobby member flag: may link a channel.
const CAN_LINK_LOBBY: u32 = 1;

/// `PATCH /lobbies/{id}/channel-linking`: links a guild text channel (or with no
/// `channel_id`, unlinks). The application's bot or a member flagged CanLinkLobby, who must
/// also be able to manage the channel.
async fn link_channel(
    LobbyCall(state, auth, lobby_id): LobbyCall,
    Body(body): Body<Value>,
) -> ApiResult {
    let _guard = state.store.lock();
    let mut lobby = lobby_for_messages(&state, &auth, lobby_id)?;
    let is_app = auth.user.bot && auth.id() == lobby.application_id;
    let may_link = lobby
        .members
        .iter()
        .any(|m| m.id == auth.id() && m.flags & CAN_LINK_LOBBY != 0);
    if !is_app && !may_link {
        return Err(ApiError::MissingPermissions);
    }
    let channel_id = match &body["channel_id"] {
        Value::Null => None,
        Value::String(s) => Some(Snowflake::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "channel_id",
                "NUMBER_TYPE_COERCE",
                "Value is not snowflake.",
            )
        })?),
        _ => {
            return Err(ApiError::invalid_field(
                "channel_id",
                "NUMBER_TYPE_COERCE",
                "Value is not snowflake.",
            ))
        }
    };
    if let Some(channel_id) = channel_id {
        let access = state.channel_access(channel_id, &auth.user)?;
        if access.guild.is_none()
            || access.channel.kind != crate::backend::model::channel_type::GUILD_TEXT
        {
            return Err(ApiError::bad_request(
                50024,
                "Cannot execute action on this channel type",
            ));
        }
        access.require(crate::backend::permissions::bits::MANAGE_CHANNELS)?;
    }
    lobby.linked_channel_id = channel_id;
    Ok(ok(save_lobby(&state, &lobby)?))
}
