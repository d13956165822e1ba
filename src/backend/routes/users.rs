//! Users, DMs, sign-in, applications and gateway discovery.
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, set_image, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::events::Dispatch;
use crate::backend::extract::{Auth, Body, Ids, InGuild, Q};
use crate::backend::model::{channel_type, Channel};
use crate::backend::render;
use crate::backend::services::channels::strip_self_from_recipients;
use crate::backend::services::common::{gateway_url, limit, voice_region_list};
use crate::backend::services::patch::{self, set_if_present};
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/@me", get(get_me).patch(patch_me))
        .route("/users/@me/guilds", get(my_guilds))
        .route(
            "/users/@me/guilds/{guild_id}",
            axum::routing::delete(leave_guild),
        )
        .route("/users/@me/guilds/{guild_id}/member", get(my_member))
        .route("/users/@me/channels", get(my_dms).post(open_dm))
        .route("/users/@me/connections", get(connections))
        .route("/users/{user_id}", get(get_user))
        .route(
            "/applications/@me",
            get(get_my_application).patch(patch_my_application),
        )
        .route(
            "/applications/{application_id}",
            get(get_application).patch(patch_application_by_id),
        )
        .route("/oauth2/applications/@me", get(get_my_application))
        .route("/gateway", get(gateway))
        .route("/gateway/bot", get(gateway_bot))
        .route("/voice/regions", get(voice_regions))
}

async fn get_me(auth: Auth) -> ApiResult {
    Ok(crate::backend::error::json_bytes_response(
        axum::http::StatusCode::OK,
        render::user_private_json(&auth.user),
    ))
}

#[derive(Deserialize)]
struct PatchMe {
    username: Option<String>,
    #[serde(default, deserialize_with = "patch::present")]
    global_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    avatar: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    banner: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    accent_color: Option<Option<u32>>,
}

async fn patch_me(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<PatchMe>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.length("username", body.username.as_deref(), 2, 32);
    if let Some(Some(name)) = &body.global_name {
        checks.length("global_name", Some(name), 1, 32);
    }
    checks.finish()?;
    let user = {
        let _guard = state.store.lock();
        let mut user = state.store.user(auth.id())?.ok_or(ApiError::Unauthorized)?;
        set_if_present(&mut user.username, body.username);
        set_if_present(&mut user.global_name, body.global_name);
        set_image(&state.store, &mut user.avatar, body.avatar, "avatar")?;
        set_image(&state.store, &mut user.banner, body.banner, "banner")?;
        set_if_present(&mut user.accent_color, body.accent_color);
        state.store.users.put(user.id, &user)?;
        user
    };
    let data = render::user_private(&user);
    state.publish(Dispatch::users(
        "USER_UPDATE",
        vec![user.id],
        0,
        data.clone(),
    ));
    Ok(ok(data))
}

async fn get_user(
    State(state): State<AppState>,
    _auth: Auth,
    Ids(user_id): Ids<Snowflake>,
) -> ApiResult {
    let user = state.store.user(user_id).or_unknown(Unknown::User)?;
    Ok(ok(render::user(&user)))
}

#[derive(Deserialize)]
struct GuildListQuery {
    before: Option<Snowflake>,
    after: Option<Snowflake>,
    limit: Option<i64>,
    #[serde(default)]
    with_counts: bool,
}

async fn my_guilds(
    State(state): State<AppState>,
    auth: Auth,
    Q(query): Q<GuildListQuery>,
) -> ApiResult {
    let limit = limit(query.limit, 200, 200)?;
    let mut out = Vec::new();
    let ids = state.store.guild_ids_of(auth.id())?;
    let selected: Vec<Snowflake> = match (query.before, query.after) {
        (Some(before), _) => {
            let mut before_ids: Vec<_> = ids.into_iter().filter(|id| *id < before).collect();
            let skip = before_ids.len().saturating_sub(limit);
            before_ids.drain(..skip);
            before_ids
        }
        (None, after) => ids
            .into_iter()
            .filter(|id| after.is_none_or(|a| *id > a))
            .take(limit)
            .collect(),
    };
    for guild_id in selected {
        let access = match state.guild_access(guild_id, auth.id()) {
            Ok(access) => access,
            Err(_) => continue,
        };
        let guild = &access.guild;
        let mut entry = json!({
            "id": guild.id,
            "name": guild.name,
            "icon": guild.icon,
            "banner": guild.banner,
            "owner": access.is_owner(),
            "permissions": access.permissions().to_string(),
            "features": guild.features,
        });
        if query.with_counts {
            entry["approximate_member_count"] = json!(state.store.member_count(guild.id));
            entry["approximate_presence_count"] = json!(0);
        }
        out.push(entry);
    }
    Ok(ok(Value::Array(out)))
}

async fn leave_guild(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
) -> ApiResult {
    let guild = state.store.guild(guild_id).or_unknown(Unknown::Guild)?;
    if guild.owner_id == auth.id() {
        return Err(ApiError::bad_request(50055, "Invalid Guild"));
    }
    let removed = state.store.remove_member(guild_id, auth.id())?;
    if removed.is_none() {
        return Err(ApiError::NotFound(Unknown::Guild));
    }
    crate::backend::services::members::publish_member_removed(
        &state,
        guild_id,
        &auth.user,
        Some(auth.id()),
    )?;
    Ok(no_content())
}

async fn my_member(
    State(state): State<AppState>,
    _: Auth,
    Ids(_): Ids<Snowflake>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    Ok(ok(render::member(&state.store, &access.member)?))
}

async fn my_dms(State(state): State<AppState>, auth: Auth) -> ApiResult {
    let mut out = Vec::new();
    for channel_id in state.store.user_dms.ids(auth.id())? {
        if let Some(channel) = state.store.channel(channel_id)? {
            // As on Discord, each participant sees the others as `recipients`.
            let mut rendered = render::channel(&state.store, &channel)?;
            strip_self_from_recipients(&mut rendered, auth.id());
            crate::backend::services::group_dms::add_warning_flag(
                &state,
                &mut rendered,
                &channel,
                auth.id(),
            )?;
            out.push(rendered);
        }
    }
    Ok(ok(Value::Array(out)))
}

#[derive(Deserialize)]
struct OpenDm {
    recipient_id: Option<Snowflake>,
    recipients: Option<Vec<Snowflake>>,
    name: Option<String>,
    icon: Option<String>,
}

async fn open_dm(State(state): State<AppState>, auth: Auth, Body(body): Body<OpenDm>) -> ApiResult {
    let recipient_id = match (body.recipient_id, body.recipients.as_deref()) {
        (Some(id), _) => id,
        (None, Some([id])) => *id,
        (None, Some(ids)) if ids.len() != 1 && !auth.user.bot => {
            let group = crate::backend::services::group_dms::create(
                &state, &auth.user, ids, body.name, body.icon,
            )?;
            return Ok(ok(group));
        }
        _ => {
            return Err(ApiError::invalid_field(
                "recipient_id",
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ))
        }
    };
    let recipient = state.store.user(recipient_id).or_unknown(Unknown::User)?;
    if recipient.bot && auth.user.bot {
        return Err(ApiError::forbidden(
            50007,
            "Cannot send messages to this user",
        ));
    }
    let _guard = state.store.lock();
    let channel = match state.store.dm_between(auth.id(), recipient_id)? {
        Some(existing) => state.store.channel(existing)?,
        None => None,
    };
    let created = channel.is_none();
    let channel = match channel {
        Some(channel) => channel,
        None => {
            let mut channel = Channel::new(state.store.next_id(), channel_type::DM);
            // Stored with both participants; each viewer sees the other one as `recipients`.
            channel.recipient_ids = Some(vec![auth.id(), recipient_id]);
            state.store.put_channel(&channel)?;
            state.store.put_dm(auth.id(), recipient_id, channel.id)?;
            channel
        }
    };
    let mut rendered = render::channel(&state.store, &channel)?;
    strip_self_from_recipients(&mut rendered, auth.id());
    // A user's client learns of a DM it opened through CHANNEL_CREATE; bots get none for DMs.
    if created && !auth.user.bot {
        state.publish(crate::backend::events::Dispatch::users(
            "CHANNEL_CREATE",
            vec![auth.id()],
            0,
            rendered.clone(),
        ));
    }
    Ok(ok(rendered))
}

async fn connections(_auth: Auth) -> ApiResult {
    Ok(ok(json!([])))
}

async fn get_my_application(State(state): State<AppState>, auth: Auth) -> ApiResult {
    let app = state
        .store
        .applications
        .get(auth.id())
        .or_unknown(Unknown::Application)?;
    Ok(ok(render::application(&state.store, &app)?))
}

#[derive(Deserialize)]
struct PatchApplication {
    description: Option<String>,
    flags: Option<u64>,
    #[serde(default, deserialize_with = "patch::present")]
    icon: Option<Option<String>>,
}

async fn patch_my_application(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<PatchApplication>,
) -> ApiResult {
    patch_application(&state, auth.id(), body)
}

/// `PATCH /applications/{id}`: for the application's owner or its own bot.
async fn patch_application_by_id(
    State(state): State<AppState>,
    auth: Auth,
    Ids(application_id): Ids<Snowflake>,
    Body(body): Body<PatchApplication>,
) -> ApiResult {
    let app = state
        .store
        .applications
        .get(application_id)
        .or_unknown(Unknown::Application)?;
    if auth.id() != app.owner_id && auth.id() != app.bot_id {
        return Err(ApiError::MissingAccess);
    }
    patch_application(&state, application_id, body)
}

fn patch_application(
    state: &AppState,
    application_id: Snowflake,
    body: PatchApplication,
) -> ApiResult {
    let _guard = state.store.lock();
    let mut app = state
        .store
        .applications
        .get(application_id)
        .or_unknown(Unknown::Application)?;
    let mut checks = Validator::default();
    checks.length("description", body.description.as_deref(), 0, 400);
    checks.finish()?;
    set_if_present(&mut app.description, body.description);
    if let Some(flags) = body.flags {
        // Only the "limited" intent toggles are user-editable, as on Discord.
        use crate::backend::model::app_flags::*;
        let editable = GATEWAY_PRESENCE_LIMITED
            | GATEWAY_GUILD_MEMBERS_LIMITED
            | GATEWAY_MESSAGE_CONTENT_LIMITED;
        if flags & !editable & !app.flags != 0 {
            return Err(ApiError::invalid_field(
                "flags",
                "BASE_TYPE_INVALID",
                "Invalid flags",
            ));
        }
        app.flags = (app.flags & !editable) | (flags & editable);
    }
    set_image(&state.store, &mut app.icon, body.icon, "icon")?;
    state.store.applications.put(app.id, &app)?;
    Ok(ok(render::application(&state.store, &app)?))
}

async fn get_application(
    State(state): State<AppState>,
    _auth: Auth,
    Ids(application_id): Ids<Snowflake>,
) -> ApiResult {
    let app = state
        .store
        .applications
        .get(application_id)
        .or_unknown(Unknown::Application)?;
    Ok(ok(render::application(&state.store, &app)?))
}

async fn gateway(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    Ok(ok(json!({"url": gateway_url(&state, &headers)})))
}

async fn gateway_bot(State(state): State<AppState>, headers: HeaderMap, auth: Auth) -> ApiResult {
    if !auth.user.bot {
        return Err(ApiError::Unauthorized);
    }
    Ok(ok(json!({
        "url": gateway_url(&state, &headers),
        "shards": state.config.recommended_shards,
        "session_start_limit": {
            "total": 1000,
            "remaining": 1000,
            "reset_after": 86_400_000,
            "max_concurrency": 1,
        },
    })))
}

async fn voice_regions(_auth: Auth) -> ApiResult {
    Ok(ok(voice_region_list()))
}
