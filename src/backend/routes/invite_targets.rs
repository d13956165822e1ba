//! Invites restricted to target users: upload the allowed users as a CSV, read them back, and
//! the (immediately completed) processing job's status. A restricted invite is unknown to
//! everyone else when they try to accept it.
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::{no_content, ok, ApiResult};
use crate::backend::error::{ApiError, Unknown, Validator};
use crate::backend::extra::InviteTargets;
use crate::backend::extract::{Auth, Ids, Payload};
use crate::backend::model::Invite;
use crate::backend::permissions::bits;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, Snowflake};
use crate::backend::state::AppState;

/// Job status: the upload was processed completely.
const COMPLETED: u8 = 2;
/// Job status: no job ever ran for this invite.
const UNSPECIFIED: u8 = 0;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/invites/{code}/target-users",
            get(get_targets).put(put_targets),
        )
        .route("/invites/{code}/target-users/job-status", get(job_status))
}

/// Whether `user_id` may accept the invite `code` (unrestricted invites: everyone).
pub(crate) fn may_accept(
    state: &AppState,
    code: &str,
    user_id: Snowflake,
) -> Result<bool, ApiError> {
    Ok(state
        .store
        .extra
        .invite_targets
        .get(code)?
        .is_none_or(|targets| targets.user_ids.contains(&user_id)))
}

fn live_invite(state: &AppState, code: &str) -> Result<Invite, ApiError> {
    state
        .store
        .invites
        .get(code)?
        .filter(|invite| !invite.expired(now_ms()))
        .ok_or(ApiError::NotFound(Unknown::Invite))
}

/// The invite, if the caller created it or holds one of `permissions` in its guild.
fn managed_invite(
    state: &AppState,
    auth: &Auth,
    code: &str,
    permissions: u64,
) -> Result<Invite, ApiError> {
    let invite = live_invite(state, code)?;
    if invite.inviter_id != Some(auth.id()) {
        let access = state.guild_access(invite.guild_id, auth.id())?;
        if access.permissions() & (permissions | bits::ADMINISTRATOR) == 0 {
            return Err(ApiError::MissingPermissions);
        }
    }
    Ok(invite)
}

/// User ids of a CSV with one column (an optional `user_id` header line); every bad line is
/// reported under `target_users_file`.
fn parse_csv(text: &str) -> Result<Vec<Snowflake>, ApiError> {
    let mut checks = Validator::default();
    let mut ids = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let value = line.trim().trim_matches('"');
        if value.is_empty() || (index == 0 && value.eq_ignore_ascii_case("user_id")) {
            continue;
        }
        match Snowflake::parse(value) {
            Some(id) if !ids.contains(&id) => ids.push(id),
            Some(_) => {}
            None => checks.add(
                "target_users_file",
                "INVALID_USER_ID",
                format!("Line {}: invalid user ID format", index + 1),
            ),
        }
    }
    checks.finish()?;
    if ids.is_empty() {
        return Err(ApiError::invalid_field(
            "target_users_file",
            "BASE_TYPE_REQUIRED",
            "The file lists no user IDs.",
        ));
    }
    Ok(ids)
}

async fn put_targets(
    State(state): State<AppState>,
    auth: Auth,
    Ids(code): Ids<String>,
    Payload { files, .. }: Payload<Value>,
) -> ApiResult {
    managed_invite(&state, &auth, &code, bits::MANAGE_GUILD)?;
    let file = files
        .iter()
        .find(|f| f.field == "target_users_file")
        .ok_or_else(|| {
            ApiError::invalid_field(
                "target_users_file",
                "BASE_TYPE_REQUIRED",
                "This field is required",
            )
        })?;
    let text = std::str::from_utf8(&file.data).map_err(|_| {
        ApiError::invalid_field(
            "target_users_file",
            "FILE_TYPE_INVALID",
            "The file is not UTF-8 text.",
        )
    })?;
    let user_ids = parse_csv(text)?;
    let now = now_ms();
    state.store.extra.invite_targets.put(
        &code,
        &InviteTargets {
            user_ids,
            created_at_ms: now,
            completed_at_ms: now,
        },
    )?;
    Ok(no_content())
}

async fn get_targets(
    State(state): State<AppState>,
    auth: Auth,
    Ids(code): Ids<String>,
) -> ApiResult {
    managed_invite(
        &state,
        &auth,
        &code,
        bits::MANAGE_GUILD | bits::VIEW_AUDIT_LOG,
    )?;
    let targets = state.store.extra.invite_targets.get(&code)?;
    let mut csv = String::from("user_id\n");
    for id in targets.iter().flat_map(|t| &t.user_ids) {
        csv.push_str(&format!("{id}\n"));
    }
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/csv")], csv).into_response())
}

async fn job_status(
    State(state): State<AppState>,
    auth: Auth,
    Ids(code): Ids<String>,
) -> ApiResult {
    managed_invite(&state, &auth, &code, bits::MANAGE_GUILD)?;
    let answer = match state.store.extra.invite_targets.get(&code)? {
        Some(targets) => json!({
            "status": COMPLETED,
            "total_users": targets.user_ids.len(),
            "processed_users": targets.user_ids.len(),
            "created_at": iso8601_from_ms(targets.created_at_ms),
            "completed_at": iso8601_from_ms(targets.completed_at_ms),
            "error_message": null,
        }),
        None => json!({
            "status": UNSPECIFIED,
            "total_users": 0,
            "processed_users": 0,
            "created_at": null,
            "completed_at": null,
            "error_message": null,
        }),
    };
    Ok(ok(answer))
}
