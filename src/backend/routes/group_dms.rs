//! Group DM recipients: adding someone to a DM turns it into a new group DM (201), adding to a
//! group DM is a 204; removing (the owner removes others, anyone removes themself). The work
//! and the events are in `services::group_dms`. Dismissing the blocked-user warning of a group
//! DM (`POST /channels/{id}/blocked-user-warning-dismissal`, a 200 with no body).
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{post, put};
use axum::Router;
use serde::Deserialize;

use super::{created, no_content, ApiResult};
use crate::backend::extract::{Auth, Body, Ids, InChannel};
use crate::backend::services::group_dms::{self as service, Added};
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{channel_id}/recipients/{user_id}",
            put(add_recipient).delete(remove_recipient),
        )
        .route(
            "/channels/{channel_id}/blocked-user-warning-dismissal",
            post(dismiss_blocked_warning),
        )
}

/// 200 with no body, as Discord answers; CHANNEL_UPDATE to the caller's sessions.
async fn dismiss_blocked_warning(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    InChannel(_, _): InChannel,
) -> ApiResult {
    service::dismiss_blocked_warning(&state, auth.id(), channel_id)?;
    state.store.flush_async().await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct AddBody {
    access_token: Option<String>,
    nick: Option<String>,
}

async fn add_recipient(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, user_id)): Ids<(Snowflake, Snowflake)>,
    InChannel(_, _): InChannel<0, Body<AddBody>>,
) -> ApiResult {
    match service::add_recipient(&state, &auth.user, channel_id, user_id)? {
        Added::NewGroup(group) => Ok(created(group)),
        Added::Joined => Ok(no_content()),
    }
}

async fn remove_recipient(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, user_id)): Ids<(Snowflake, Snowflake)>,
    InChannel(_, _): InChannel,
) -> ApiResult {
    service::remove_recipient(&state, auth.id(), channel_id, user_id, false)?;
    Ok(no_content())
}
