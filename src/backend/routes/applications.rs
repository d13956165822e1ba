//! What an application owns besides commands: application emojis, entitlements (list, get,
//! test entitlements, consume; ENTITLEMENT_* to the app's bot), role-connection metadata, and
//! each user's role connection for an application.
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{created, no_content, ok, ApiResult};
use crate::backend::error::unknown;
use crate::backend::error::{ApiError, Unknown, Validator};
use crate::backend::events::Dispatch;
use crate::backend::extra::Entitlement;
use crate::backend::extract::{Auth, Body, Ids, OwnApplication, Q};
use crate::backend::model::{Application, Emoji};
use crate::backend::render;
use crate::backend::snowflake::{now_ms, parse_iso8601_ms, Snowflake};
use crate::backend::state::AppState;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/applications/{application_id}/emojis",
            get(list_emojis).post(create_emoji),
        )
        .route(
            "/applications/{application_id}/emojis/{emoji_id}",
            get(get_emoji).patch(edit_emoji).delete(delete_emoji),
        )
        .route(
            "/applications/{application_id}/entitlements",
            get(list_entitlements).post(create_test_entitlement),
        )
        .route(
            "/applications/{application_id}/entitlements/{entitlement_id}",
            get(get_entitlement).delete(delete_test_entitlement),
        )
        .route(
            "/applications/{application_id}/entitlements/{entitlement_id}/consume",
            post(consume_entitlement),
        )
        .route(
            "/users/@me/applications/{application_id}/entitlements",
            get(my_entitlements),
        )
        .route(
            "/applications/{application_id}/role-connections/metadata",
            get(get_metadata).put(put_metadata),
        )
        .route(
            "/users/@me/applications/{application_id}/role-connection",
            get(get_role_connection)
                .put(put_role_connection)
                .delete(delete_role_connection),
        )
}

// ---- application emojis ----

/// Most emojis one application may own.
const MAX_APP_EMOJIS: usize = 2000;

async fn list_emojis(
    State(state): State<AppState>,
    _: Auth,
    Ids(application_id): Ids<Snowflake>,
    _: OwnApplication,
) -> ApiResult {
    let items = state
        .store
        .extra
        .app_emojis
        .values(application_id)?
        .iter()
        .map(|e| render::emoji(&state.store, e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(json!({ "items": items })))
}

fn load_emoji(
    state: &AppState,
    application_id: Snowflake,
    emoji_id: Snowflake,
) -> Result<Emoji, ApiError> {
    state
        .store
        .extra
        .app_emojis
        .get((application_id, emoji_id))?
        .ok_or(ApiError::NotFound(Unknown::Emoji))
}

async fn get_emoji(
    State(state): State<AppState>,
    _: Auth,
    Ids((application_id, emoji_id)): Ids<(Snowflake, Snowflake)>,
    _: OwnApplication,
) -> ApiResult {
    let emoji = load_emoji(&state, application_id, emoji_id)?;
    Ok(ok(render::emoji(&state.store, &emoji)?))
}

#[derive(Deserialize)]
struct EmojiBody {
    name: Option<String>,
    image: Option<String>,
}

fn check_emoji_name(checks: &mut Validator, name: Option<&str>) {
    checks.length("name", name, 2, 32);
    if name.is_some_and(|n| !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
        checks.add(
            "name",
            "STRING_TYPE_REGEX",
            "String value did not match validation regex.",
        );
    }
}

/// 50035 when another emoji of the application already has `name` (names are unique per app).
fn check_unique_name(
    state: &AppState,
    application_id: Snowflake,
    name: &str,
    except: Option<Snowflake>,
) -> Result<(), ApiError> {
    let taken = state
        .store
        .extra
        .app_emojis
        .values(application_id)?
        .iter()
        .any(|e| e.name == name && Some(e.id) != except);
    if taken {
        return Err(ApiError::invalid_field(
            "name",
            "APPLICATION_EMOJI_NAME_ALREADY_TAKEN",
            "Application emoji names must be unique.",
        ));
    }
    Ok(())
}

async fn create_emoji(
    State(state): State<AppState>,
    auth: Auth,
    Ids(application_id): Ids<Snowflake>,
    OwnApplication(_, Body(body)): OwnApplication<Body<EmojiBody>>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("name", body.name.as_ref());
    checks.required("image", body.image.as_ref());
    check_emoji_name(&mut checks, body.name.as_deref());
    checks.finish()?;
    let image = body.image.unwrap_or_default();
    let image_key = crate::backend::services::images::store_emoji_image(&state.store, &image)?;
    let name = body.name.unwrap_or_default();
    let emoji = {
        let _guard = state.store.lock();
        check_unique_name(&state, application_id, &name, None)?;
        if state.store.extra.app_emojis.count(application_id) >= MAX_APP_EMOJIS {
            return Err(ApiError::bad_request(
                30008,
                "Maximum number of emojis reached (2000)",
            ));
        }
        let emoji = Emoji {
            id: state.store.next_id(),
            name,
            roles: Vec::new(),
            creator_id: Some(auth.id()),
            require_colons: true,
            managed: false,
            animated: image.starts_with("data:image/gif"),
            available: true,
        };
        state
            .store
            .extra
            .app_emojis
            .put((application_id, emoji.id), &emoji)?;
        crate::backend::services::images::link_by_id(
            &state.store,
            "emojis",
            emoji.id.0,
            &image_key,
        )?;
        emoji
    };
    Ok(created(render::emoji(&state.store, &emoji)?))
}

async fn edit_emoji(
    State(state): State<AppState>,
    _: Auth,
    Ids((application_id, emoji_id)): Ids<(Snowflake, Snowflake)>,
    OwnApplication(_, Body(body)): OwnApplication<Body<EmojiBody>>,
) -> ApiResult {
    let mut checks = Validator::default();
    check_emoji_name(&mut checks, body.name.as_deref());
    checks.finish()?;
    let emoji = {
        let _guard = state.store.lock();
        let mut emoji = load_emoji(&state, application_id, emoji_id)?;
        if let Some(name) = body.name {
            check_unique_name(&state, application_id, &name, Some(emoji_id))?;
            emoji.name = name;
        }
        state
            .store
            .extra
            .app_emojis
            .put((application_id, emoji_id), &emoji)?;
        emoji
    };
    Ok(ok(render::emoji(&state.store, &emoji)?))
}

async fn delete_emoji(
    State(state): State<AppState>,
    _: Auth,
    Ids((application_id, emoji_id)): Ids<(Snowflake, Snowflake)>,
    _: OwnApplication,
) -> ApiResult {
    state
        .store
        .extra
        .app_emojis
        .remove((application_id, emoji_id))?
        .ok_or(ApiError::NotFound(Unknown::Emoji))?;
    Ok(no_content())
}

// ---- entitlements ----

/// Entitlement types this backend creates.
const APPLICATION_SUBSCRIPTION: u8 = 8;

fn render_entitlement(entitlement: &Entitlement) -> Value {
    let mut out = json!({
        "id": entitlement.id,
        "sku_id": entitlement.sku_id,
        "application_id": entitlement.application_id,
        "type": entitlement.kind,
        "deleted": entitlement.deleted,
        "starts_at": entitlement.starts_at,
        "ends_at": entitlement.ends_at,
        "consumed": entitlement.consumed,
    });
    // Guild entitlements carry no user_id on Discord either.
    if let Some(user_id) = entitlement.user_id {
        out["user_id"] = json!(user_id);
    }
    if let Some(guild_id) = entitlement.guild_id {
        out["guild_id"] = json!(guild_id);
    }
    out
}

/// The bot receives ENTITLEMENT_* dispatches (no intent needed).
fn publish_entitlement(state: &AppState, app: &Application, name: &'static str, e: &Entitlement) {
    state.publish(Dispatch::users(
        name,
        vec![app.bot_id],
        0,
        render_entitlement(e),
    ));
}

fn load_entitlement(
    state: &AppState,
    application_id: Snowflake,
    entitlement_id: Snowflake,
) -> Result<Entitlement, ApiError> {
    state
        .store
        .extra
        .entitlements
        .get((application_id, entitlement_id))?
        .ok_or(unknown(unknown::ENTITLEMENT))
}

/// Whether an entitlement has ended by `now` (test entitlements never end).
fn ended(entitlement: &Entitlement, now: u64) -> bool {
    entitlement
        .ends_at
        .as_deref()
        .and_then(parse_iso8601_ms)
        .is_some_and(|end| end <= now)
}

/// A comma-separated list of snowflakes from a query string (50035 at `field` if malformed).
fn snowflake_list(text: Option<&str>, field: &str) -> Result<Vec<Snowflake>, ApiError> {
    text.unwrap_or("")
        .split(',')
        .filter(|part| !part.is_empty())
        .enumerate()
        .map(|(n, part)| {
            Snowflake::parse(part.trim()).ok_or_else(|| {
                ApiError::invalid_field(
                    &format!("{field}.{n}"),
                    "NUMBER_TYPE_COERCE",
                    format!("Value \"{part}\" is not snowflake."),
                )
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct ListQuery {
    user_id: Option<Snowflake>,
    sku_ids: Option<String>,
    guild_id: Option<Snowflake>,
    before: Option<Snowflake>,
    after: Option<Snowflake>,
    limit: Option<i64>,
    exclude_ended: Option<bool>,
    exclude_deleted: Option<bool>,
}

async fn list_entitlements(
    State(state): State<AppState>,
    _: Auth,
    Ids(application_id): Ids<Snowflake>,
    Q(query): Q<ListQuery>,
    _: OwnApplication,
) -> ApiResult {
    let limit = crate::backend::services::common::limit(query.limit, 100, 100)?;
    let skus = snowflake_list(query.sku_ids.as_deref(), "sku_ids")?;
    let now = now_ms();
    let mut found: Vec<Entitlement> = entitlements_of(&state, application_id)?
        .filter(|e| query.user_id.is_none_or(|u| e.user_id == Some(u)))
        .filter(|e| query.guild_id.is_none_or(|g| e.guild_id == Some(g)))
        .filter(|e| skus.is_empty() || skus.contains(&e.sku_id))
        .filter(|e| query.before.is_none_or(|b| e.id < b))
        .filter(|e| query.after.is_none_or(|a| e.id > a))
        .filter(|e| !(query.exclude_deleted.unwrap_or(true) && e.deleted))
        .filter(|e| !(query.exclude_ended.unwrap_or(false) && ended(e, now)))
        .collect();
    // Like other paginated lists: `before` pages backwards from the newest, `after` forwards.
    if query.after.is_none() {
        found.reverse();
    }
    found.truncate(limit);
    Ok(ok(Value::Array(
        found.iter().map(render_entitlement).collect(),
    )))
}

async fn get_entitlement(
    State(state): State<AppState>,
    _: Auth,
    Ids((application_id, entitlement_id)): Ids<(Snowflake, Snowflake)>,
    _: OwnApplication,
) -> ApiResult {
    Ok(ok(render_entitlement(&load_entitlement(
        &state,
        application_id,
        entitlement_id,
    )?)))
}

#[derive(Deserialize)]
struct CreateEntitlementBody {
    sku_id: Option<Snowflake>,
    owner_id: Option<Snowflake>,
    owner_type: Option<u8>,
}

async fn create_test_entitlement(
    State(state): State<AppState>,
    _: Auth,
    Ids(application_id): Ids<Snowflake>,
    OwnApplication(app, Body(body)): OwnApplication<Body<CreateEntitlementBody>>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("sku_id", body.sku_id.as_ref());
    checks.required("owner_id", body.owner_id.as_ref());
    checks.required("owner_type", body.owner_type.as_ref());
    if body.owner_type.is_some_and(|t| !(1..=2).contains(&t)) {
        checks.add(
            "owner_type",
            "BASE_TYPE_CHOICES",
            "Value must be one of {1, 2}.",
        );
    }
    checks.finish()?;
    let owner_id = body.owner_id.unwrap_or_default();
    let (user_id, guild_id) = if body.owner_type == Some(1) {
        state
            .store
            .guild(owner_id)?
            .ok_or(ApiError::NotFound(Unknown::Guild))?;
        (None, Some(owner_id))
    } else {
        state
            .store
            .user(owner_id)?
            .ok_or(ApiError::NotFound(Unknown::User))?;
        (Some(owner_id), None)
    };
    let entitlement = Entitlement {
        id: state.store.next_id(),
        sku_id: body.sku_id.unwrap_or_default(),
        application_id,
        user_id,
        guild_id,
        kind: APPLICATION_SUBSCRIPTION,
        deleted: false,
        starts_at: None,
        ends_at: None,
        consumed: false,
    };
    state
        .store
        .extra
        .entitlements
        .put((application_id, entitlement.id), &entitlement)?;
    publish_entitlement(&state, &app, "ENTITLEMENT_CREATE", &entitlement);
    Ok(ok(render_entitlement(&entitlement)))
}

async fn delete_test_entitlement(
    State(state): State<AppState>,
    _: Auth,
    Ids((application_id, entitlement_id)): Ids<(Snowflake, Snowflake)>,
    OwnApplication(app, _): OwnApplication,
) -> ApiResult {
    let entitlement = {
        let _guard = state.store.lock();
        let mut entitlement = load_entitlement(&state, application_id, entitlement_id)?;
        if entitlement.deleted {
            return Err(unknown(unknown::ENTITLEMENT));
        }
        entitlement.deleted = true;
        state
            .store
            .extra
            .entitlements
            .put((application_id, entitlement_id), &entitlement)?;
        entitlement
    };
    publish_entitlement(&state, &app, "ENTITLEMENT_DELETE", &entitlement);
    Ok(no_content())
}

async fn consume_entitlement(
    State(state): State<AppState>,
    _: Auth,
    Ids((application_id, entitlement_id)): Ids<(Snowflake, Snowflake)>,
    OwnApplication(app, _): OwnApplication,
) -> ApiResult {
    let entitlement = {
        let _guard = state.store.lock();
        let mut entitlement = load_entitlement(&state, application_id, entitlement_id)?;
        if entitlement.deleted {
            return Err(unknown(unknown::ENTITLEMENT));
        }
        if entitlement.consumed {
            return Err(ApiError::bad_request(
                40074,
                "This entitlement has already been consumed",
            ));
        }
        entitlement.consumed = true;
        state
            .store
            .extra
            .entitlements
            .put((application_id, entitlement_id), &entitlement)?;
        entitlement
    };
    publish_entitlement(&state, &app, "ENTITLEMENT_UPDATE", &entitlement);
    Ok(no_content())
}

#[derive(Deserialize)]
struct MyQuery {
    sku_ids: Option<String>,
    exclude_consumed: Option<bool>,
}

async fn my_entitlements(
    State(state): State<AppState>,
    auth: Auth,
    Ids(application_id): Ids<Snowflake>,
    Q(query): Q<MyQuery>,
) -> ApiResult {
    state.application(application_id)?;
    let skus = snowflake_list(query.sku_ids.as_deref(), "sku_ids")?;
    let found: Vec<Value> = state
        .store
        .extra
        .entitlements
        .values(application_id)?
        .iter()
        .filter(|e| e.user_id == Some(auth.id()) && !e.deleted)
        .filter(|e| skus.is_empty() || skus.contains(&e.sku_id))
        .filter(|e| !(query.exclude_consumed.unwrap_or(true) && e.consumed))
        .map(render_entitlement)
        .collect();
    Ok(ok(Value::Array(found)))
}

// ---- role connections ----

/// Most metadata records an application may declare.
const MAX_METADATA: usize = 5;

async fn get_metadata(
    State(state): State<AppState>,
    _: Auth,
    Ids(application_id): Ids<Snowflake>,
    _: OwnApplication,
) -> ApiResult {
    let records = state
        .store
        .extra
        .role_connection_metadata
        .get(application_id)?
        .unwrap_or_default();
    Ok(ok(Value::Array(records)))
}

#[derive(Deserialize)]
struct MetadataBody {
    #[serde(rename = "type")]
    kind: Option<u8>,
    key: Option<String>,
    name: Option<String>,
    #[serde(default)]
    name_localizations: Option<Map<String, Value>>,
    description: Option<String>,
    #[serde(default)]
    description_localizations: Option<Map<String, Value>>,
}

async fn put_metadata(
    State(state): State<AppState>,
    _: Auth,
    Ids(application_id): Ids<Snowflake>,
    OwnApplication(_, Body(records)): OwnApplication<Body<Vec<MetadataBody>>>,
) -> ApiResult {
    let mut checks = Validator::default();
    if records.len() > MAX_METADATA {
        checks.add(
            "",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_METADATA} or fewer in length."),
        );
    }
    let mut out = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for (n, record) in records.into_iter().enumerate() {
        let at = |field: &str| format!("{n}.{field}");
        checks.required(&at("type"), record.kind.as_ref());
        checks.required(&at("key"), record.key.as_ref());
        checks.required(&at("name"), record.name.as_ref());
        checks.required(&at("description"), record.description.as_ref());
        if record.kind.is_some_and(|k| !(1..=8).contains(&k)) {
            checks.add(
                &at("type"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2, 3, 4, 5, 6, 7, 8}.",
            );
        }
        checks.length(&at("key"), record.key.as_deref(), 1, 50);
        if let Some(key) = &record.key {
            if !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                checks.add(
                    &at("key"),
                    "STRING_TYPE_REGEX",
                    "String value did not match validation regex.",
                );
            }
            if !keys.insert(key.clone()) {
                checks.add(&at("key"), "DUPLICATE_KEY", "Keys must be unique.");
            }
        }
        checks.length(&at("name"), record.name.as_deref(), 1, 100);
        checks.length(&at("description"), record.description.as_deref(), 1, 200);
        out.push(json!({
            "type": record.kind,
            "key": record.key,
            "name": record.name,
            "name_localizations": record.name_localizations,
            "description": record.description,
            "description_localizations": record.description_localizations,
        }));
    }
    checks.finish()?;
    state
        .store
        .extra
        .role_connection_metadata
        .put(application_id, &out)?;
    Ok(ok(Value::Array(out)))
}

fn empty_connection() -> Value {
    json!({"platform_name": null, "platform_username": null, "metadata": {}})
}

/// A role connection as sent: an unset platform name is left out (the spec types it as a
/// plain string).
fn render_connection(mut connection: Value) -> Value {
    if let Some(fields) = connection.as_object_mut() {
        if fields.get("platform_name").is_some_and(Value::is_null) {
            fields.remove("platform_name");
        }
    }
    connection
}

/// Users only: a bot has no role connections (20001).
fn human(auth: &Auth) -> Result<(), ApiError> {
    if auth.user.bot {
        return Err(ApiError::forbidden(20001, "Bots cannot use this endpoint"));
    }
    Ok(())
}

async fn get_role_connection(
    State(state): State<AppState>,
    auth: Auth,
    Ids(application_id): Ids<Snowflake>,
) -> ApiResult {
    human(&auth)?;
    state.application(application_id)?;
    let connection = state
        .store
        .extra
        .role_connections
        .get((application_id, auth.id()))?
        .unwrap_or_else(empty_connection);
    Ok(ok(render_connection(connection)))
}

#[derive(Deserialize)]
struct ConnectionBody {
    #[serde(default, deserialize_with = "crate::backend::services::patch::present")]
    platform_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::backend::services::patch::present")]
    platform_username: Option<Option<String>>,
    metadata: Option<Map<String, Value>>,
}

async fn put_role_connection(
    State(state): State<AppState>,
    auth: Auth,
    Ids(application_id): Ids<Snowflake>,
    Body(body): Body<ConnectionBody>,
) -> ApiResult {
    human(&auth)?;
    state.application(application_id)?;
    let declared = state
        .store
        .extra
        .role_connection_metadata
        .get(application_id)?
        .unwrap_or_default();
    let mut checks = Validator::default();
    checks.length(
        "platform_name",
        body.platform_name.clone().flatten().as_deref(),
        0,
        50,
    );
    checks.length(
        "platform_username",
        body.platform_username.clone().flatten().as_deref(),
        0,
        100,
    );
    let mut metadata = Map::new();
    for (key, value) in body.metadata.clone().unwrap_or_default() {
        if !declared.iter().any(|r| r["key"] == key.as_str()) {
            checks.add(
                &format!("metadata.{key}"),
                "APPLICATION_ROLE_CONNECTION_METADATA_KEY_INVALID",
                "This key is not declared in the application's role connection metadata.",
            );
            continue;
        }
        // Values are sent and stored as strings (numbers, dates and booleans alike).
        let text = match &value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => (if *flag { "1" } else { "0" }).to_string(),
            _ => {
                checks.add(
                    &format!("metadata.{key}"),
                    "BASE_TYPE_INVALID",
                    "Value must be a string.",
                );
                continue;
            }
        };
        checks.length(&format!("metadata.{key}"), Some(&text), 0, 100);
        metadata.insert(key, Value::String(text));
    }
    checks.finish()?;
    let connection = {
        let _guard = state.store.lock();
        let key = (application_id, auth.id());
        let mut connection = state
            .store
            .extra
            .role_connections
            .get(key)?
            .unwrap_or_else(empty_connection);
        if let Some(name) = body.platform_name {
            connection["platform_name"] = json!(name);
        }
        if let Some(username) = body.platform_username {
            connection["platform_username"] = json!(username);
        }
        if body.metadata.is_some() {
            connection["metadata"] = Value::Object(metadata);
        }
        state.store.extra.role_connections.put(key, &connection)?;
        connection
    };
    Ok(ok(render_connection(connection)))
}

async fn delete_role_connection(
    State(state): State<AppState>,
    auth: Auth,
    Ids(application_id): Ids<Snowflake>,
) -> ApiResult {
    human(&auth)?;
    state.application(application_id)?;
    state
        .store
        .extra
        .role_connections
        .remove((application_id, auth.id()))?;
    Ok(no_content())
}

/// Every entitlement of an application, in store order.
pub(super) fn entitlements_of(
    state: &AppState,
    application_id: Snowflake,
) -> Result<impl Iterator<Item = Entitlement>, ApiError> {
    Ok(state
        .store
        .extra
        .entitlements
        .values(application_id)?
        .into_iter())
}
