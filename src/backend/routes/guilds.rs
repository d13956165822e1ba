//! Guilds: create/get/patch/delete, preview, channel listing/creation/positions, bans, emojis,
//! audit log, active threads, regions.
use std::collections::HashMap;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, ok_list, set_image, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::extract::{Auth, Body, Ids, InGuild, Reason, Q};
use crate::backend::model::*;
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::channels::{apply_channel_body, ChannelBody};
use crate::backend::services::common::limit;
use crate::backend::services::guilds::{
    guild_create_payload, insert_guild, normalise_channel_name,
};
use crate::backend::services::images::store_image;
use crate::backend::services::patch::{self, set_if_present};
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::{changes, AppState, GuildAccess};
use crate::backend::store::Store;
use crate::{backend::events::Dispatch, gateway::intents};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/guilds", post(create_guild))
        .route(
            "/guilds/{guild_id}",
            get(get_guild).patch(patch_guild).delete(delete_guild),
        )
        .route("/guilds/{guild_id}/preview", get(preview))
        .route(
            "/guilds/{guild_id}/channels",
            get(list_channels)
                .post(create_channel)
                .patch(channel_positions),
        )
        .route("/guilds/{guild_id}/bans", get(list_bans))
        .route(
            "/guilds/{guild_id}/bans/{user_id}",
            get(get_ban).put(put_ban).delete(delete_ban),
        )
        .route("/guilds/{guild_id}/audit-logs", get(audit_log))
        .route(
            "/guilds/{guild_id}/emojis",
            get(list_emojis).post(create_emoji),
        )
        .route(
            "/guilds/{guild_id}/emojis/{emoji_id}",
            get(get_emoji).patch(patch_emoji).delete(delete_emoji),
        )
        .route("/guilds/{guild_id}/threads/active", get(active_threads))
        .route("/guilds/{guild_id}/regions", get(regions))
        .route("/guilds/{guild_id}/bulk-ban", post(bulk_ban))
        .route("/guilds/{guild_id}/vanity-url", get(vanity_url))
}

#[derive(Deserialize)]
struct CreateGuildRole {
    id: Option<Snowflake>,
    name: Option<String>,
    permissions: Option<String>,
    color: Option<u32>,
    hoist: Option<bool>,
    mentionable: Option<bool>,
}

#[derive(Deserialize)]
struct CreateGuildChannel {
    id: Option<Snowflake>,
    name: String,
    #[serde(rename = "type", default)]
    kind: u8,
    parent_id: Option<Snowflake>,
    topic: Option<String>,
}

#[derive(Deserialize)]
struct CreateGuild {
    name: Option<String>,
    icon: Option<String>,
    verification_level: Option<u8>,
    default_message_notifications: Option<u8>,
    explicit_content_filter: Option<u8>,
    roles: Option<Vec<CreateGuildRole>>,
    channels: Option<Vec<CreateGuildChannel>>,
    afk_channel_id: Option<Snowflake>,
    afk_timeout: Option<u32>,
    system_channel_id: Option<Snowflake>,
}

async fn create_guild(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<CreateGuild>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("name", body.name.as_ref());
    checks.length("name", body.name.as_deref(), 2, 100);
    checks.finish()?;
    if auth.user.bot && state.store.guild_ids_of(auth.id())?.len() >= 10 {
        return Err(ApiError::bad_request(
            30001,
            "Maximum number of guilds reached (10)",
        ));
    }
    let store = &state.store;
    let id = store.next_id();
    let mut guild = Guild::new(
        id,
        body.name.as_deref().unwrap_or_default().trim(),
        auth.id(),
    );
    guild.icon = body
        .icon
        .map(|d| store_image(&state.store, &d, "icon"))
        .transpose()?;
    guild.verification_level = body.verification_level.unwrap_or(0);
    guild.default_message_notifications = body.default_message_notifications.unwrap_or(0);
    guild.explicit_content_filter = body.explicit_content_filter.unwrap_or(0);
    guild.afk_timeout = body.afk_timeout.unwrap_or(300);
    // Placeholder ids in the body map to real ones; the first role is @everyone.
    let mut ids: HashMap<Snowflake, Snowflake> = HashMap::new();
    let (everyone_permissions, extra_roles) =
        build_create_roles(store, id, body.roles.unwrap_or_default(), &mut ids)?;
    let channels = match body.channels {
        Some(specs) if !specs.is_empty() => build_create_channels(store, id, specs, &mut ids)?,
        _ => {
            let channels = default_guild_channels(store, id);
            guild.system_channel_id = Some(channels[1].id);
            channels
        }
    };
    if let Some(system) = body.system_channel_id {
        guild.system_channel_id = ids.get(&system).copied();
    }
    if let Some(afk) = body.afk_channel_id {
        guild.afk_channel_id = ids.get(&afk).copied();
    }
    insert_guild(store, &guild, everyone_permissions)?;
    for role in &extra_roles {
        store.roles.put((id, role.id), role)?;
    }
    for channel in &channels {
        store.put_channel(channel)?;
    }
    store.flush_async().await?;
    state.publish(Dispatch::users(
        "GUILD_CREATE",
        vec![auth.id()],
        intents::GUILDS,
        guild_create_payload(store, &guild, auth.id())?,
    ));
    Ok(created(render::guild(store, &guild, false)?))
}

/// The roles of a guild-create body: the first one's permissions are @everyone's (its
/// placeholder id maps to the guild id), the others become new roles. Returns @everyone's
/// permissions and the new roles; placeholder ids are recorded in `ids`.
fn build_create_roles(
    store: &Store,
    guild_id: Snowflake,
    specs: Vec<CreateGuildRole>,
    ids: &mut HashMap<Snowflake, Snowflake>,
) -> Result<(u64, Vec<Role>), ApiError> {
    let mut everyone_permissions = bits::EVERYONE_DEFAULT;
    let mut extra_roles = Vec::new();
    for (index, spec) in specs.into_iter().enumerate() {
        let permissions = spec
            .permissions
            .as_deref()
            .map(|p| {
                p.parse::<u64>().map_err(|_| {
                    ApiError::invalid_field(
                        &format!("roles.{index}.permissions"),
                        "BASE_TYPE_INVALID",
                        "Invalid permissions",
                    )
                })
            })
            .transpose()?;
        if index == 0 {
            everyone_permissions = permissions.unwrap_or(everyone_permissions);
            if let Some(placeholder) = spec.id {
                ids.insert(placeholder, guild_id);
            }
            continue;
        }
        let role_id = store.next_id();
        if let Some(placeholder) = spec.id {
            ids.insert(placeholder, role_id);
        }
        extra_roles.push(Role {
            id: role_id,
            name: spec.name.unwrap_or_else(|| "new role".into()),
            color: spec.color.unwrap_or(0),
            colors: RoleColors {
                primary_color: spec.color.unwrap_or(0),
                ..Default::default()
            },
            hoist: spec.hoist.unwrap_or(false),
            icon: None,
            unicode_emoji: None,
            position: index as i64,
            permissions: permissions.unwrap_or(0).to_string(),
            managed: false,
            mentionable: spec.mentionable.unwrap_or(false),
            flags: 0,
            tags: None,
        });
    }
    Ok((everyone_permissions, extra_roles))
}

/// The channels of a guild-create body, in order; every placeholder id gets its real id first
/// so `parent_id` may name a later channel.
fn build_create_channels(
    store: &Store,
    guild_id: Snowflake,
    specs: Vec<CreateGuildChannel>,
    ids: &mut HashMap<Snowflake, Snowflake>,
) -> Result<Vec<Channel>, ApiError> {
    for spec in &specs {
        let channel_id = store.next_id();
        if let Some(placeholder) = spec.id {
            ids.insert(placeholder, channel_id);
        }
    }
    let mut channels = Vec::new();
    for (index, spec) in specs.into_iter().enumerate() {
        if !channel_type::is_guild_creatable(spec.kind) {
            return Err(ApiError::invalid_field(
                &format!("channels.{index}.type"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {0, 2, 4, 5, 13, 15, 16}.",
            ));
        }
        let channel_id = match spec.id {
            Some(placeholder) => ids[&placeholder],
            None => store.next_id(),
        };
        let mut channel = Channel::new_in_guild(
            channel_id,
            guild_id,
            spec.kind,
            &normalise_channel_name(spec.kind, &spec.name),
        );
        channel.position = Some(index as i64);
        channel.parent_id = spec.parent_id.and_then(|p| ids.get(&p).copied());
        channel.topic = spec.topic;
        channels.push(channel);
    }
    Ok(channels)
}

/// A new guild's channels when the body names none: a text and a voice category, each with
/// one channel; `general` (index 1) is the system channel.
fn default_guild_channels(store: &Store, guild_id: Snowflake) -> Vec<Channel> {
    let categories = [store.next_id(), store.next_id()];
    let layout = [
        ("Text Channels", channel_type::GUILD_TEXT, "general"),
        ("Voice Channels", channel_type::GUILD_VOICE, "General"),
    ];
    let mut channels = Vec::new();
    for (index, (category_id, (category_name, kind, name))) in
        categories.into_iter().zip(layout).enumerate()
    {
        let mut category = Channel::new_in_guild(
            category_id,
            guild_id,
            channel_type::GUILD_CATEGORY,
            category_name,
        );
        category.position = Some(index as i64);
        let mut child = Channel::new_in_guild(store.next_id(), guild_id, kind, name);
        child.parent_id = Some(category_id);
        channels.extend([category, child]);
    }
    channels
}

#[derive(Deserialize)]
struct WithCounts {
    #[serde(default)]
    with_counts: bool,
}

async fn get_guild(
    State(state): State<AppState>,
    _: Auth,
    Ids(_): Ids<Snowflake>,
    Q(query): Q<WithCounts>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    Ok(ok(render::guild(
        &state.store,
        &access.guild,
        query.with_counts,
    )?))
}

async fn preview(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
) -> ApiResult {
    let guild = state.store.guild(guild_id).or_unknown(Unknown::Guild)?;
    if state.store.member(guild_id, auth.id())?.is_none()
        && !guild.features.iter().any(|f| f == "DISCOVERABLE")
    {
        return Err(ApiError::NotFound(Unknown::Guild));
    }
    Ok(ok(render::guild_preview(&state.store, &guild)?))
}

#[derive(Deserialize)]
struct PatchGuild {
    name: Option<String>,
    verification_level: Option<u8>,
    default_message_notifications: Option<u8>,
    explicit_content_filter: Option<u8>,
    #[serde(default, deserialize_with = "patch::present")]
    afk_channel_id: Option<Option<Snowflake>>,
    afk_timeout: Option<u32>,
    #[serde(default, deserialize_with = "patch::present")]
    icon: Option<Option<String>>,
    owner_id: Option<Snowflake>,
    #[serde(default, deserialize_with = "patch::present")]
    splash: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    banner: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    system_channel_id: Option<Option<Snowflake>>,
    system_channel_flags: Option<u64>,
    #[serde(default, deserialize_with = "patch::present")]
    rules_channel_id: Option<Option<Snowflake>>,
    #[serde(default, deserialize_with = "patch::present")]
    public_updates_channel_id: Option<Option<Snowflake>>,
    #[serde(default, deserialize_with = "patch::present")]
    safety_alerts_channel_id: Option<Option<Snowflake>>,
    preferred_locale: Option<String>,
    features: Option<Vec<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    description: Option<Option<String>>,
    premium_progress_bar_enabled: Option<bool>,
}

fn check_guild_channel(
    store: &Store,
    guild_id: Snowflake,
    field: &str,
    id: Option<Snowflake>,
    checks: &mut Validator,
) -> Result<(), ApiError> {
    if let Some(id) = id {
        let belongs = store
            .channel(id)?
            .is_some_and(|c| c.guild_id == Some(guild_id));
        if !belongs {
            checks.add(field, "CHANNEL_INVALID", "Invalid channel");
        }
    }
    Ok(())
}

async fn patch_guild(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<{ bits::MANAGE_GUILD }, Body<PatchGuild>>,
) -> ApiResult {
    let store = &state.store;
    validate_patch_guild(store, guild_id, &access, &body)?;
    let (old, guild) = {
        let _guard = store.lock();
        let mut guild = store.guild(guild_id).or_unknown(Unknown::Guild)?;
        let old = guild.clone();
        apply_patch_guild(store, &mut guild, body)?;
        store.guilds.put(guild_id, &guild)?;
        (old, guild)
    };
    let before = serde_json::to_value(&old).unwrap_or_default();
    let after = serde_json::to_value(&guild).unwrap_or_default();
    let diff = before
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .map(|(key, old)| (key.as_str(), old.clone(), after[key].clone()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    state.audit(
        guild_id,
        auth.id(),
        audit_action::GUILD_UPDATE,
        Some(guild_id),
        changes(diff),
        None,
        reason,
    )?;
    let data = render::guild(store, &guild, false)?;
    state.publish(Dispatch::guild(
        "GUILD_UPDATE",
        guild_id,
        intents::GUILDS,
        data.clone(),
    ));
    Ok(ok(data))
}

/// The field checks of a guild PATCH (50035 with every failing field); transferring ownership
/// is for the owner alone (50013).
fn validate_patch_guild(
    store: &Store,
    guild_id: Snowflake,
    access: &GuildAccess,
    body: &PatchGuild,
) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    checks.length("name", body.name.as_deref(), 2, 100);
    checks.range(
        "verification_level",
        body.verification_level.map(i64::from),
        0,
        4,
    );
    checks.range(
        "default_message_notifications",
        body.default_message_notifications.map(i64::from),
        0,
        1,
    );
    checks.range(
        "explicit_content_filter",
        body.explicit_content_filter.map(i64::from),
        0,
        2,
    );
    if let Some(timeout) = body.afk_timeout {
        if ![60, 300, 900, 1800, 3600].contains(&timeout) {
            checks.add(
                "afk_timeout",
                "BASE_TYPE_CHOICES",
                "Value must be one of {60, 300, 900, 1800, 3600}.",
            );
        }
    }
    for (field, value) in [
        ("afk_channel_id", body.afk_channel_id.flatten()),
        ("system_channel_id", body.system_channel_id.flatten()),
        ("rules_channel_id", body.rules_channel_id.flatten()),
        (
            "public_updates_channel_id",
            body.public_updates_channel_id.flatten(),
        ),
        (
            "safety_alerts_channel_id",
            body.safety_alerts_channel_id.flatten(),
        ),
    ] {
        check_guild_channel(store, guild_id, field, value, &mut checks)?;
    }
    if let Some(owner) = body.owner_id {
        if !access.is_owner() {
            return Err(ApiError::MissingPermissions);
        }
        if store.member(guild_id, owner)?.is_none() {
            checks.add("owner_id", "GUILD_OWNER_INVALID", "Unknown member");
        }
    }
    checks.finish()
}

/// Copies the fields a guild PATCH carries onto `guild` (images are hashed; 50035 if bad).
fn apply_patch_guild(
    store: &crate::backend::store::Store,
    guild: &mut Guild,
    body: PatchGuild,
) -> Result<(), ApiError> {
    set_if_present(&mut guild.name, body.name.map(|v| v.trim().to_string()));
    set_if_present(&mut guild.verification_level, body.verification_level);
    set_if_present(
        &mut guild.default_message_notifications,
        body.default_message_notifications,
    );
    set_if_present(
        &mut guild.explicit_content_filter,
        body.explicit_content_filter,
    );
    set_if_present(&mut guild.afk_channel_id, body.afk_channel_id);
    set_if_present(&mut guild.afk_timeout, body.afk_timeout);
    set_image(store, &mut guild.icon, body.icon, "icon")?;
    set_image(store, &mut guild.splash, body.splash, "splash")?;
    set_image(store, &mut guild.banner, body.banner, "banner")?;
    set_if_present(&mut guild.owner_id, body.owner_id);
    set_if_present(&mut guild.system_channel_id, body.system_channel_id);
    set_if_present(&mut guild.system_channel_flags, body.system_channel_flags);
    set_if_present(&mut guild.rules_channel_id, body.rules_channel_id);
    set_if_present(
        &mut guild.public_updates_channel_id,
        body.public_updates_channel_id,
    );
    set_if_present(
        &mut guild.safety_alerts_channel_id,
        body.safety_alerts_channel_id,
    );
    set_if_present(&mut guild.preferred_locale, body.preferred_locale);
    set_if_present(&mut guild.features, body.features);
    set_if_present(&mut guild.description, body.description);
    set_if_present(
        &mut guild.premium_progress_bar_enabled,
        body.premium_progress_bar_enabled,
    );
    Ok(())
}

async fn delete_guild(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    if !access.is_owner() {
        return Err(ApiError::MissingPermissions);
    }
    let store = &state.store;
    let members: Vec<Snowflake> = store
        .members
        .values(guild_id)?
        .iter()
        .map(|m| m.user_id)
        .collect();
    {
        let _guard = store.lock();
        for channel in store.guild_channel_list(guild_id)? {
            store.purge_channel(channel.id)?;
            store.channels.remove(channel.id)?;
        }
        for user_id in &members {
            store.remove_member(guild_id, *user_id)?;
        }
        store.guild_channels.remove_prefix_all(guild_id)?;
        store.roles.remove_prefix(guild_id)?;
        store.bans.remove_prefix(guild_id)?;
        for emoji in store.emojis.values(guild_id)? {
            store.emoji_guild.remove(emoji.id)?;
        }
        store.emojis.remove_prefix(guild_id)?;
        store.audit.remove_prefix(guild_id)?;
        store.guilds.remove(guild_id)?;
    }
    store.flush_async().await?;
    state.publish(Dispatch::users(
        "GUILD_DELETE",
        members,
        intents::GUILDS,
        json!({"id": guild_id}),
    ));
    Ok(no_content())
}

async fn list_channels(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let mut out = Vec::new();
    for channel in state.store.guild_channel_list(guild_id)? {
        if channel_type::is_thread(channel.kind) {
            continue;
        }
        if state.permissions_in(&access, &channel)? & bits::VIEW_CHANNEL != 0 {
            out.push(render::channel(&state.store, &channel)?);
        }
    }
    Ok(ok(Value::Array(out)))
}

async fn create_channel(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<{ bits::MANAGE_CHANNELS }, Body<ChannelBody>>,
) -> ApiResult {
    let kind = body.kind.unwrap_or(channel_type::GUILD_TEXT);
    let mut checks = Validator::default();
    checks.required("name", body.name.as_ref());
    if !channel_type::is_guild_creatable(kind) {
        checks.add(
            "type",
            "BASE_TYPE_CHOICES",
            "Value must be one of {0, 2, 4, 5, 13, 15, 16}.",
        );
    }
    checks.finish()?;
    let store = &state.store;
    let name = body.name.clone().unwrap_or_default();
    let mut channel = Channel::new_in_guild(
        store.next_id(),
        guild_id,
        kind,
        &normalise_channel_name(kind, &name),
    );
    channel.position = Some(
        store
            .guild_channel_list(guild_id)?
            .iter()
            .filter(|c| c.kind == kind)
            .filter_map(|c| c.position)
            .max()
            .map_or(0, |p| p + 1),
    );
    apply_channel_body(store, &access, &mut channel, body)?;
    store.put_channel(&channel)?;
    let data = render::channel(store, &channel)?;
    state.audit(
        guild_id,
        auth.id(),
        audit_action::CHANNEL_CREATE,
        Some(channel.id),
        changes(vec![
            ("name", Value::Null, json!(channel.name)),
            ("type", Value::Null, json!(channel.kind)),
        ]),
        None,
        reason,
    )?;
    state.publish(Dispatch::channel(
        "CHANNEL_CREATE",
        guild_id,
        channel.id,
        intents::GUILDS,
        data.clone(),
    ));
    Ok(created(data))
}

#[derive(Deserialize)]
struct Position {
    id: Snowflake,
    position: Option<i64>,
    lock_permissions: Option<bool>,
    #[serde(default, deserialize_with = "patch::present")]
    parent_id: Option<Option<Snowflake>>,
}

async fn channel_positions(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(_, Body(body)): InGuild<{ bits::MANAGE_CHANNELS }, Body<Vec<Position>>>,
) -> ApiResult {
    let store = &state.store;
    let mut updated = Vec::new();
    {
        let _guard = store.lock();
        for (index, entry) in body.iter().enumerate() {
            let mut channel = store
                .channel(entry.id)?
                .filter(|c| c.guild_id == Some(guild_id))
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        &format!("{index}.id"),
                        "CHANNEL_INVALID",
                        "Invalid channel",
                    )
                })?;
            if let Some(position) = entry.position {
                channel.position = Some(position);
            }
            if let Some(parent) = entry.parent_id {
                if let Some(parent_id) = parent {
                    let valid = store.channel(parent_id)?.is_some_and(|p| {
                        p.guild_id == Some(guild_id) && p.kind == channel_type::GUILD_CATEGORY
                    });
                    if !valid {
                        return Err(ApiError::invalid_field(
                            &format!("{index}.parent_id"),
                            "CHANNEL_PARENT_INVALID",
                            "Invalid parent channel",
                        ));
                    }
                    if entry.lock_permissions == Some(true) {
                        channel.permission_overwrites = store
                            .channel(parent_id)?
                            .and_then(|p| p.permission_overwrites);
                    }
                }
                channel.parent_id = parent;
            }
            store.put_channel(&channel)?;
            updated.push(channel);
        }
    }
    for channel in updated {
        let data = render::channel(store, &channel)?;
        state.publish(Dispatch::channel(
            "CHANNEL_UPDATE",
            guild_id,
            channel.id,
            intents::GUILDS,
            data,
        ));
    }
    Ok(no_content())
}

#[derive(Deserialize)]
struct Paging {
    limit: Option<i64>,
    before: Option<Snowflake>,
    after: Option<Snowflake>,
}

async fn list_bans(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Q(query): Q<Paging>,
    _: InGuild<{ bits::BAN_MEMBERS }>,
) -> ApiResult {
    let limit = limit(query.limit, 1000, 1000)?;
    let bans = state.store.bans.values(guild_id)?;
    let selected: Vec<&Ban> = match query.before {
        Some(before) => {
            let earlier: Vec<&Ban> = bans.iter().filter(|b| b.user_id < before).collect();
            let skip = earlier.len().saturating_sub(limit);
            earlier.into_iter().skip(skip).collect()
        }
        None => bans
            .iter()
            .filter(|b| query.after.is_none_or(|a| b.user_id > a))
            .take(limit)
            .collect(),
    };
    ok_list(selected, |b| render::ban(&state.store, b))
}

async fn get_ban(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, user_id)): Ids<(Snowflake, Snowflake)>,
    _: InGuild<{ bits::BAN_MEMBERS }>,
) -> ApiResult {
    let ban = state
        .store
        .bans
        .get((guild_id, user_id))
        .or_unknown(Unknown::Ban)?;
    Ok(ok(render::ban(&state.store, &ban)?))
}

#[derive(Deserialize)]
struct BanBody {
    delete_message_seconds: Option<i64>,
    delete_message_days: Option<i64>,
}

async fn put_ban(
    State(state): State<AppState>,
    auth: Auth,
    Ids((_, user_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<{ bits::BAN_MEMBERS }, Body<BanBody>>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.range(
        "delete_message_seconds",
        body.delete_message_seconds,
        0,
        604_800,
    );
    checks.range("delete_message_days", body.delete_message_days, 0, 7);
    checks.finish()?;
    let seconds = body
        .delete_message_seconds
        .or(body.delete_message_days.map(|d| d * 86_400))
        .unwrap_or(0);
    ban_user(&state, &access, auth.id(), user_id, seconds, reason)?;
    Ok(no_content())
}

/// Bans one user (hierarchy-checked), deleting their recent messages and removing them.
fn ban_user(
    state: &AppState,
    access: &GuildAccess,
    actor: Snowflake,
    user_id: Snowflake,
    seconds: i64,
    reason: Option<String>,
) -> Result<(), ApiError> {
    let guild_id = access.guild.id;
    let store = &state.store;
    let user = store.user(user_id).or_unknown(Unknown::User)?;
    if let Some(target) = store.member(guild_id, user_id)? {
        access.require_outranks(&target)?;
    }
    if user_id == access.guild.owner_id {
        return Err(ApiError::MissingPermissions);
    }
    let ban = Ban {
        user_id,
        reason: reason.clone(),
    };
    store.bans.put((guild_id, user_id), &ban)?;
    if seconds > 0 {
        let cutoff = Snowflake::from_timestamp_ms(now_ms().saturating_sub(seconds as u64 * 1000));
        for channel in store.guild_channel_list(guild_id)? {
            let doomed: Vec<Message> = store
                .messages
                .range(
                    (channel.id, cutoff),
                    (channel.id, Snowflake(u64::MAX)),
                    false,
                    usize::MAX,
                )?
                .into_iter()
                .filter(|m| m.author_id == user_id && m.webhook.is_none())
                .collect();
            if doomed.is_empty() {
                continue;
            }
            for message in &doomed {
                store.messages.remove((channel.id, message.id))?;
            }
            state.publish(Dispatch::channel("MESSAGE_DELETE_BULK", guild_id, channel.id, intents::GUILD_MESSAGES,
                json!({"ids": doomed.iter().map(|m| m.id).collect::<Vec<_>>(), "channel_id": channel.id, "guild_id": guild_id})));
        }
    }
    if store.remove_member(guild_id, user_id)?.is_some() {
        crate::backend::services::members::publish_member_removed(
            state,
            guild_id,
            &user,
            Some(actor),
        )?;
    }
    state.audit(
        guild_id,
        actor,
        audit_action::MEMBER_BAN_ADD,
        Some(user_id),
        vec![],
        None,
        reason,
    )?;
    state.publish(Dispatch::guild(
        "GUILD_BAN_ADD",
        guild_id,
        intents::GUILD_MODERATION,
        json!({"guild_id": guild_id, "user": render::user(&user)}),
    ));
    Ok(())
}

#[derive(Deserialize)]
struct BulkBan {
    user_ids: Option<Vec<Snowflake>>,
    delete_message_seconds: Option<i64>,
}

async fn bulk_ban(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<{ bits::BAN_MEMBERS | bits::MANAGE_GUILD }, Body<BulkBan>>,
) -> ApiResult {
    let mut checks = Validator::default();
    let user_ids = body.user_ids.unwrap_or_default();
    if user_ids.is_empty() || user_ids.len() > 200 {
        checks.add(
            "user_ids",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 200 in length.",
        );
    }
    checks.range(
        "delete_message_seconds",
        body.delete_message_seconds,
        0,
        604_800,
    );
    checks.finish()?;
    let (mut banned, mut failed) = (Vec::new(), Vec::new());
    for user_id in user_ids {
        let already = state.store.bans.contains((guild_id, user_id))?;
        match (
            already,
            ban_user(
                &state,
                &access,
                auth.id(),
                user_id,
                body.delete_message_seconds.unwrap_or(0),
                reason.clone(),
            ),
        ) {
            (false, Ok(())) => banned.push(user_id),
            (_, Err(ApiError::Internal(detail))) => return Err(ApiError::Internal(detail)),
            _ => failed.push(user_id),
        }
    }
    if banned.is_empty() {
        return Err(ApiError::bad_request(500000, "Failed to ban users"));
    }
    Ok(ok(json!({"banned_users": banned, "failed_users": failed})))
}

async fn vanity_url(
    State(state): State<AppState>,
    _: Auth,
    Ids(_): Ids<Snowflake>,
    InGuild(access, _): InGuild<{ bits::MANAGE_GUILD }>,
) -> ApiResult {
    let uses = match &access.guild.vanity_url_code {
        Some(code) => state.store.invites.get(code)?.map_or(0, |i| i.uses),
        None => 0,
    };
    Ok(ok(
        json!({"code": access.guild.vanity_url_code, "uses": uses}),
    ))
}

async fn delete_ban(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, user_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    _: InGuild<{ bits::BAN_MEMBERS }>,
) -> ApiResult {
    state
        .store
        .bans
        .remove((guild_id, user_id))
        .or_unknown(Unknown::Ban)?;
    state.audit(
        guild_id,
        auth.id(),
        audit_action::MEMBER_BAN_REMOVE,
        Some(user_id),
        vec![],
        None,
        reason,
    )?;
    state.publish(Dispatch::guild(
        "GUILD_BAN_REMOVE",
        guild_id,
        intents::GUILD_MODERATION,
        json!({"guild_id": guild_id, "user": render::user_by_id(&state.store, user_id)?}),
    ));
    Ok(no_content())
}

#[derive(Deserialize)]
struct AuditQuery {
    user_id: Option<Snowflake>,
    action_type: Option<u16>,
    before: Option<Snowflake>,
    after: Option<Snowflake>,
    limit: Option<i64>,
}

async fn audit_log(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Q(query): Q<AuditQuery>,
    _: InGuild<{ bits::VIEW_AUDIT_LOG }>,
) -> ApiResult {
    let limit = limit(query.limit, 50, 100)?;
    let store = &state.store;
    let matches = |e: &AuditLogEntry| {
        query.user_id.is_none_or(|u| e.user_id == Some(u))
            && query.action_type.is_none_or(|a| e.action_type == a)
    };
    let entries: Vec<AuditLogEntry> = match query.after {
        Some(after) if query.before.is_none() => store
            .audit
            .range(
                (guild_id, Snowflake(after.0.saturating_add(1))),
                (guild_id, Snowflake(u64::MAX)),
                false,
                usize::MAX,
            )?
            .into_iter()
            .filter(matches)
            .take(limit)
            .collect(),
        _ => {
            let end = query.before.unwrap_or(Snowflake(u64::MAX));
            store
                .audit
                .range((guild_id, Snowflake(0)), (guild_id, end), true, usize::MAX)?
                .into_iter()
                .filter(matches)
                .take(limit)
                .collect()
        }
    };
    let mut user_ids: Vec<Snowflake> = entries.iter().filter_map(|e| e.user_id).collect();
    user_ids.extend(
        entries
            .iter()
            .filter(|e| (20..=28).contains(&e.action_type))
            .filter_map(|e| e.target_id),
    );
    user_ids.sort();
    user_ids.dedup();
    let users = user_ids
        .iter()
        .map(|id| render::user_by_id(store, *id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut webhook_ids: Vec<Snowflake> = entries
        .iter()
        .filter(|e| (50..=52).contains(&e.action_type))
        .filter_map(|e| e.target_id)
        .collect();
    webhook_ids.dedup();
    let mut webhooks = Vec::new();
    for id in webhook_ids {
        if let Some(hook) = store.webhooks.get(id)? {
            webhooks.push(render::webhook(store, &hook, false)?);
        }
    }
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Some(object) = v.as_object_mut() {
                object.remove("guild_id");
                object.entry("target_id").or_insert(Value::Null);
            }
            v
        })
        .collect();
    Ok(ok(json!({
        "audit_log_entries": entries,
        "users": users,
        "webhooks": webhooks,
        "integrations": [],
        "threads": [],
        "application_commands": [],
        "auto_moderation_rules": [],
        "guild_scheduled_events": [],
    })))
}

async fn list_emojis(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    _: InGuild,
) -> ApiResult {
    ok_list(state.store.emojis.values(guild_id)?.iter(), |e| {
        render::emoji(&state.store, e)
    })
}

async fn get_emoji(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, emoji_id)): Ids<(Snowflake, Snowflake)>,
    _: InGuild,
) -> ApiResult {
    let emoji = state
        .store
        .emojis
        .get((guild_id, emoji_id))
        .or_unknown(Unknown::Emoji)?;
    Ok(ok(render::emoji(&state.store, &emoji)?))
}

#[derive(Deserialize)]
struct EmojiBody {
    name: Option<String>,
    image: Option<String>,
    roles: Option<Vec<Snowflake>>,
}

fn check_emoji_name(checks: &mut Validator, name: Option<&str>) {
    checks.length("name", name, 2, 32);
    if let Some(name) = name {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            checks.add(
                "name",
                "STRING_TYPE_REGEX",
                "String value did not match validation regex.",
            );
        }
    }
}

fn publish_emojis(state: &AppState, guild_id: Snowflake) -> Result<(), ApiError> {
    let emojis = state
        .store
        .emojis
        .values(guild_id)?
        .iter()
        .map(|e| render::emoji(&state.store, e))
        .collect::<Result<Vec<_>, _>>()?;
    state.publish(Dispatch::guild(
        "GUILD_EMOJIS_UPDATE",
        guild_id,
        intents::GUILD_EXPRESSIONS,
        json!({"guild_id": guild_id, "emojis": emojis}),
    ));
    Ok(())
}

async fn create_emoji(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<0, Body<EmojiBody>>,
) -> ApiResult {
    if access.permissions() & (bits::CREATE_GUILD_EXPRESSIONS | bits::MANAGE_GUILD_EXPRESSIONS) == 0
    {
        return Err(ApiError::MissingPermissions);
    }
    let mut checks = Validator::default();
    checks.required("name", body.name.as_ref());
    checks.required("image", body.image.as_ref());
    check_emoji_name(&mut checks, body.name.as_deref());
    checks.finish()?;
    let image = body.image.unwrap_or_default();
    let image_key = crate::backend::services::images::store_emoji_image(&state.store, &image)?;
    if state.store.emojis.count(guild_id) >= 50 {
        return Err(ApiError::bad_request(
            30008,
            "Maximum number of emojis reached (50)",
        ));
    }
    let emoji = Emoji {
        id: state.store.next_id(),
        name: body.name.unwrap_or_default(),
        roles: body.roles.unwrap_or_default(),
        creator_id: Some(auth.id()),
        require_colons: true,
        managed: false,
        animated: image.starts_with("data:image/gif"),
        available: true,
    };
    state.store.emojis.put((guild_id, emoji.id), &emoji)?;
    state.store.emoji_guild.put(emoji.id, guild_id)?;
    crate::backend::services::images::link_by_id(&state.store, "emojis", emoji.id.0, &image_key)?;
    state.audit(
        guild_id,
        auth.id(),
        audit_action::EMOJI_CREATE,
        Some(emoji.id),
        changes(vec![("name", Value::Null, json!(emoji.name))]),
        None,
        reason,
    )?;
    publish_emojis(&state, guild_id)?;
    Ok(created(render::emoji(&state.store, &emoji)?))
}

async fn patch_emoji(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, emoji_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<0, Body<EmojiBody>>,
) -> ApiResult {
    let mut emoji = state
        .store
        .emojis
        .get((guild_id, emoji_id))
        .or_unknown(Unknown::Emoji)?;
    let own = emoji.creator_id == Some(auth.id())
        && access.permissions() & bits::CREATE_GUILD_EXPRESSIONS != 0;
    if !own {
        access.require(bits::MANAGE_GUILD_EXPRESSIONS)?;
    }
    let mut checks = Validator::default();
    check_emoji_name(&mut checks, body.name.as_deref());
    checks.finish()?;
    let old_name = emoji.name.clone();
    if let Some(name) = body.name {
        emoji.name = name;
    }
    if let Some(roles) = body.roles {
        emoji.roles = roles;
    }
    state.store.emojis.put((guild_id, emoji_id), &emoji)?;
    state.audit(
        guild_id,
        auth.id(),
        audit_action::EMOJI_UPDATE,
        Some(emoji_id),
        changes(vec![("name", json!(old_name), json!(emoji.name))]),
        None,
        reason,
    )?;
    publish_emojis(&state, guild_id)?;
    Ok(ok(render::emoji(&state.store, &emoji)?))
}

async fn delete_emoji(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, emoji_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let emoji = state
        .store
        .emojis
        .get((guild_id, emoji_id))
        .or_unknown(Unknown::Emoji)?;
    let own = emoji.creator_id == Some(auth.id())
        && access.permissions() & bits::CREATE_GUILD_EXPRESSIONS != 0;
    if !own {
        access.require(bits::MANAGE_GUILD_EXPRESSIONS)?;
    }
    state.store.emojis.remove((guild_id, emoji_id))?;
    state.store.emoji_guild.remove(emoji_id)?;
    state.audit(
        guild_id,
        auth.id(),
        audit_action::EMOJI_DELETE,
        Some(emoji_id),
        changes(vec![("name", json!(emoji.name), Value::Null)]),
        None,
        reason,
    )?;
    publish_emojis(&state, guild_id)?;
    Ok(no_content())
}

async fn active_threads(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let store = &state.store;
    let mut threads = Vec::new();
    let mut members = Vec::new();
    for channel in store.guild_channel_list(guild_id)? {
        if !channel_type::is_thread(channel.kind)
            || channel.thread_metadata.as_ref().is_some_and(|m| m.archived)
        {
            continue;
        }
        if state.permissions_in(&access, &channel)? & bits::VIEW_CHANNEL == 0 {
            continue;
        }
        if let Some(member) = store.thread_members.get((channel.id, auth.id()))? {
            members.push(render::thread_member(&member));
        }
        threads.push(render::channel(store, &channel)?);
    }
    Ok(ok(
        json!({"threads": threads, "members": members, "has_more": false}),
    ))
}

async fn regions(_: Auth, Ids(_): Ids<Snowflake>, _: InGuild) -> ApiResult {
    Ok(ok(crate::backend::services::common::voice_region_list()))
}
