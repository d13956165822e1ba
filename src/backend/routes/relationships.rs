//! Relationships (`/users/@me/relationships`: friends, requests, blocks, nicknames) and notes
//! (`/users/@me/notes`).
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{no_content, ok, ApiResult};
use crate::backend::error::{not_found, ApiError, Validator};
use crate::backend::extract::{Auth, Body, Ids};
use crate::backend::services::relationships as service;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/@me/relationships", get(list).post(request_by_name))
        .route(
            "/users/@me/relationships/{user_id}",
            axum::routing::put(put_relationship)
                .patch(patch_relationship)
                .delete(delete_relationship),
        )
        .route("/users/@me/notes", get(all_notes))
        .route("/users/@me/notes/{user_id}", get(get_note).put(put_note))
}

fn users_only(auth: &Auth) -> Result<(), ApiError> {
    if auth.user.bot {
        return Err(ApiError::forbidden(20001, "Bots cannot use this endpoint"));
    }
    Ok(())
}

async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult {
    users_only(&auth)?;
    Ok(ok(Value::Array(service::list(&state, auth.id())?)))
}

#[derive(Deserialize)]
struct ByName {
    username: Option<String>,
}

async fn request_by_name(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<ByName>,
) -> ApiResult {
    users_only(&auth)?;
    let mut checks = Validator::default();
    checks.required("username", body.username.as_ref());
    checks.finish()?;
    let username = body.username.unwrap_or_default();
    let target = service::user_by_username(&state, &username)?
        .ok_or_else(|| ApiError::bad_request(80004, "No users with DiscordTag exist"))?;
    service::request_friend(&state, &auth.user, target.id)?;
    state.store.flush_async().await?;
    Ok(no_content())
}

#[derive(Deserialize, Default)]
struct PutRelationship {
    #[serde(rename = "type")]
    kind: Option<i64>,
}

async fn put_relationship(
    State(state): State<AppState>,
    auth: Auth,
    Ids(user_id): Ids<Snowflake>,
    Body(body): Body<PutRelationship>,
) -> ApiResult {
    users_only(&auth)?;
    match body.kind.unwrap_or(-1) {
        -1 | 1 | 4 => service::request_friend(&state, &auth.user, user_id)?,
        2 => service::block(&state, &auth.user, user_id)?,
        _ => {
            return Err(ApiError::invalid_field(
                "type",
                "BASE_TYPE_CHOICES",
                "Value must be one of (1, 2, 4).",
            ))
        }
    }
    state.store.flush_async().await?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct PatchRelationship {
    nickname: Option<String>,
}

async fn patch_relationship(
    State(state): State<AppState>,
    auth: Auth,
    Ids(user_id): Ids<Snowflake>,
    Body(body): Body<PatchRelationship>,
) -> ApiResult {
    users_only(&auth)?;
    let mut checks = Validator::default();
    if body.nickname.as_deref().is_some_and(|n| !n.is_empty()) {
        checks.length("nickname", body.nickname.as_deref(), 1, 32);
    }
    checks.finish()?;
    if !service::are_friends(&state, auth.id(), user_id)?
        && !state
            .store
            .account
            .relationships
            .contains((auth.id(), user_id))?
    {
        return Err(ApiError::bad_request(
            80006,
            "You need to be friends in order to make this change.",
        ));
    }
    service::set_nickname(&state, auth.id(), user_id, body.nickname)?;
    state.store.flush_async().await?;
    Ok(no_content())
}

async fn delete_relationship(
    State(state): State<AppState>,
    auth: Auth,
    Ids(user_id): Ids<Snowflake>,
) -> ApiResult {
    users_only(&auth)?;
    service::remove(&state, auth.id(), user_id)?;
    state.store.flush_async().await?;
    Ok(no_content())
}

async fn all_notes(State(state): State<AppState>, auth: Auth) -> ApiResult {
    users_only(&auth)?;
    let mut out = Map::new();
    for (target, note) in state.store.account.notes.values_by_last_id(auth.id())? {
        out.insert(target.to_string(), json!(note));
    }
    Ok(ok(Value::Object(out)))
}

async fn get_note(
    State(state): State<AppState>,
    auth: Auth,
    Ids(user_id): Ids<Snowflake>,
) -> ApiResult {
    users_only(&auth)?;
    let note = state
        .store
        .account
        .notes
        .get((auth.id(), user_id))?
        .ok_or_else(|| not_found(10013, "Unknown User"))?;
    Ok(ok(
        json!({"user_id": auth.id(), "note_user_id": user_id, "note": note}),
    ))
}

#[derive(Deserialize)]
struct PutNote {
    note: Option<String>,
}

async fn put_note(
    State(state): State<AppState>,
    auth: Auth,
    Ids(user_id): Ids<Snowflake>,
    Body(body): Body<PutNote>,
) -> ApiResult {
    users_only(&auth)?;
    let note = body.note.unwrap_or_default();
    let mut checks = Validator::default();
    checks.length("note", Some(&note), 0, 256);
    checks.finish()?;
    service::set_note(&state, auth.id(), user_id, &note)?;
    state.store.flush_async().await?;
    Ok(no_content())
}
