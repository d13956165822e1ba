//! SKU subscriptions, as the calling application sees them: each user subscription
//! entitlement (type 8) of one of its SKUs stands for one subscription whose current period
//! is the entitlement's validity (30 days from its start when open-ended).
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::applications::entitlements_of;
use super::{ok, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown};
use crate::backend::extra::Entitlement;
use crate::backend::extract::{Auth, Ids, Q};
use crate::backend::services::common::limit;
use crate::backend::snowflake::{iso8601_from_ms, parse_iso8601_ms, Snowflake};
use crate::backend::state::AppState;

/// Entitlement type of a subscription.
const APPLICATION_SUBSCRIPTION: u8 = 8;
const PERIOD_MS: u64 = 30 * 24 * 3_600_000;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/skus/{sku_id}/subscriptions", get(list))
        .route(
            "/skus/{sku_id}/subscriptions/{subscription_id}",
            get(get_one),
        )
}

/// Discord documents no "Unknown Subscription" code: a plain 404 like its other bare misses.
fn unknown_subscription() -> ApiError {
    crate::backend::error::not_found(0, "404: Not Found")
}

/// The caller's application (bots only: subscriptions are read with the app's bot token).
fn caller_application(state: &AppState, auth: &Auth) -> Result<Snowflake, ApiError> {
    if !auth.user.bot {
        return Err(ApiError::MissingAccess);
    }
    let app = state
        .store
        .applications
        .get(auth.id())
        .or_unknown(Unknown::Application)?;
    Ok(app.id)
}

/// The application's subscription entitlements for `sku_id`, oldest first.
fn subscriptions(
    state: &AppState,
    application_id: Snowflake,
    sku_id: Snowflake,
) -> Result<Vec<Entitlement>, ApiError> {
    let mut found: Vec<Entitlement> = entitlements_of(state, application_id)?
        .filter(|e| e.kind == APPLICATION_SUBSCRIPTION && e.sku_id == sku_id && e.user_id.is_some())
        .collect();
    found.sort_by_key(|e| e.id);
    Ok(found)
}

fn render(entitlement: &Entitlement) -> Value {
    let start = entitlement
        .starts_at
        .as_deref()
        .and_then(parse_iso8601_ms)
        .unwrap_or_else(|| entitlement.id.timestamp_ms());
    let end = entitlement
        .ends_at
        .as_deref()
        .and_then(parse_iso8601_ms)
        .unwrap_or(start + PERIOD_MS);
    // 0 active, 2 inactive (the entitlement was deleted: the subscription ended).
    let status = if entitlement.deleted { 2 } else { 0 };
    json!({
        "id": entitlement.id,
        "user_id": entitlement.user_id,
        "sku_ids": [entitlement.sku_id],
        "entitlement_ids": [entitlement.id],
        "renewal_sku_ids": if entitlement.deleted { Value::Null } else { json!([entitlement.sku_id]) },
        "current_period_start": iso8601_from_ms(start),
        "current_period_end": iso8601_from_ms(end),
        "status": status,
        "canceled_at": if entitlement.deleted { json!(iso8601_from_ms(end.min(crate::backend::snowflake::now_ms()))) } else { Value::Null },
    })
}

#[derive(Deserialize)]
struct ListQuery {
    before: Option<Snowflake>,
    after: Option<Snowflake>,
    limit: Option<i64>,
    user_id: Option<Snowflake>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Ids(sku_id): Ids<Snowflake>,
    Q(query): Q<ListQuery>,
) -> ApiResult {
    let application_id = caller_application(&state, &auth)?;
    let limit = limit(query.limit, 50, 100)?;
    let Some(user_id) = query.user_id else {
        return Err(ApiError::invalid_field(
            "user_id",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    };
    let mut found: Vec<Entitlement> = subscriptions(&state, application_id, sku_id)?
        .into_iter()
        .filter(|e| e.user_id == Some(user_id))
        .filter(|e| query.after.is_none_or(|after| e.id > after))
        .filter(|e| query.before.is_none_or(|before| e.id < before))
        .collect();
    // `before` pages backwards: the newest ones before it.
    if query.before.is_some() && query.after.is_none() {
        let skip = found.len().saturating_sub(limit);
        found.drain(..skip);
    }
    Ok(ok(Value::Array(
        found.iter().take(limit).map(render).collect(),
    )))
}

#[derive(Deserialize)]
struct GetQuery {
    user_id: Option<Snowflake>,
}

async fn get_one(
    State(state): State<AppState>,
    auth: Auth,
    Ids((sku_id, subscription_id)): Ids<(Snowflake, Snowflake)>,
    Q(query): Q<GetQuery>,
) -> ApiResult {
    let application_id = caller_application(&state, &auth)?;
    let found = subscriptions(&state, application_id, sku_id)?
        .into_iter()
        .find(|e| e.id == subscription_id && query.user_id.is_none_or(|u| e.user_id == Some(u)))
        .ok_or_else(unknown_subscription)?;
    Ok(ok(render(&found)))
}
