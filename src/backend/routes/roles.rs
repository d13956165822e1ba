//! Roles: list, create, positions, get, edit, delete — with Discord's hierarchy rules.
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::{no_content, ok, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::extract::{Auth, Body, Ids, InGuild, Reason};
use crate::backend::model::{audit_action, Role, RoleColors};
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::patch;
use crate::backend::services::patch::set_if_present;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{changes, AppState, GuildAccess};
use crate::{backend::events::Dispatch, gateway::intents};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/guilds/{guild_id}/roles",
            get(list_roles).post(create_role).patch(role_positions),
        )
        .route(
            "/guilds/{guild_id}/roles/{role_id}",
            get(get_role).patch(patch_role).delete(delete_role),
        )
}

async fn list_roles(InGuild(access, _): InGuild) -> ApiResult {
    Ok(ok(render::roles(access.roles)))
}

async fn get_role(
    _: Auth,
    Ids((_, role_id)): Ids<(Snowflake, Snowflake)>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let role = access
        .roles
        .iter()
        .find(|r| r.id == role_id)
        .ok_or(ApiError::NotFound(Unknown::Role))?;
    Ok(ok(render::role(role)))
}

#[derive(Deserialize, Default)]
struct RoleBody {
    name: Option<String>,
    permissions: Option<String>,
    color: Option<u32>,
    colors: Option<RoleColors>,
    hoist: Option<bool>,
    #[serde(default, deserialize_with = "patch::present")]
    icon: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch::present")]
    unicode_emoji: Option<Option<String>>,
    mentionable: Option<bool>,
}

/// Applies a role body; permission bits the caller lacks cannot be granted.
fn apply(
    store: &crate::backend::store::Store,
    access: &GuildAccess,
    role: &mut Role,
    body: RoleBody,
) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    checks.length("name", body.name.as_deref(), 1, 100);
    let permissions = match body.permissions.as_deref() {
        Some(text) => match text.parse::<u64>() {
            Ok(value) => Some(value),
            Err(_) => {
                checks.add(
                    "permissions",
                    "BASE_TYPE_INVALID",
                    "Invalid permission value",
                );
                None
            }
        },
        None => None,
    };
    if let Some(color) = body.color {
        if color > 0xFF_FFFF {
            checks.add(
                "color",
                "NUMBER_TYPE_MAX",
                "int value should be less than or equal to 16777215.",
            );
        }
    }
    checks.finish()?;
    if let Some(permissions) = permissions {
        let mine = access.permissions();
        if mine & bits::ADMINISTRATOR == 0 && permissions & !mine & !role.permission_bits() != 0 {
            return Err(ApiError::MissingPermissions);
        }
        role.permissions = permissions.to_string();
    }
    set_if_present(&mut role.name, body.name);
    if let Some(colors) = body.colors {
        role.color = colors.primary_color;
        role.colors = colors;
    }
    if let Some(color) = body.color {
        role.color = color;
        role.colors.primary_color = color;
    }
    set_if_present(&mut role.hoist, body.hoist);
    if let Some(icon) = body.icon {
        role.icon = icon
            .map(|data| crate::backend::services::images::store_role_icon(store, &data))
            .transpose()?;
    }
    set_if_present(&mut role.unicode_emoji, body.unicode_emoji);
    set_if_present(&mut role.mentionable, body.mentionable);
    Ok(())
}

fn role_diff(old: &Role, new: &Role) -> Vec<crate::backend::model::AuditChange> {
    changes(vec![
        ("name", json!(old.name), json!(new.name)),
        (
            "permissions",
            json!(old.permissions),
            json!(new.permissions),
        ),
        ("color", json!(old.color), json!(new.color)),
        ("hoist", json!(old.hoist), json!(new.hoist)),
        (
            "mentionable",
            json!(old.mentionable),
            json!(new.mentionable),
        ),
    ])
}

async fn create_role(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<{ bits::MANAGE_ROLES }, Body<RoleBody>>,
) -> ApiResult {
    if access.roles.len() >= 250 {
        return Err(ApiError::bad_request(
            30005,
            "Maximum number of guild roles reached (250)",
        ));
    }
    let id = state.store.next_id();
    let mut role = Role {
        id,
        name: "new role".into(),
        color: 0,
        colors: RoleColors::default(),
        hoist: false,
        icon: None,
        unicode_emoji: None,
        position: 1,
        permissions: access
            .roles
            .iter()
            .find(|r| r.id == guild_id)
            .map_or_else(|| "0".to_string(), |r| r.permissions.clone()),
        managed: false,
        mentionable: false,
        flags: 0,
        tags: None,
    };
    apply(&state.store, &access, &mut role, body)?;
    {
        // New roles go in at position 1, pushing the others up, as on Discord.
        let _guard = state.store.lock();
        for mut other in state.store.guild_roles(guild_id)? {
            if other.id != guild_id && other.position >= 1 {
                other.position += 1;
                state.store.roles.put((guild_id, other.id), &other)?;
            }
        }
        state.store.roles.put((guild_id, id), &role)?;
    }
    let blank = Role {
        name: String::new(),
        permissions: "0".into(),
        ..role.clone()
    };
    state.audit(
        guild_id,
        auth.id(),
        audit_action::ROLE_CREATE,
        Some(id),
        role_diff(&blank, &role),
        None,
        reason,
    )?;
    let data = render::role(&role);
    state.publish(Dispatch::guild(
        "GUILD_ROLE_CREATE",
        guild_id,
        intents::GUILDS,
        json!({"guild_id": guild_id, "role": data}),
    ));
    Ok(ok(data))
}

async fn patch_role(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, role_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<{ bits::MANAGE_ROLES }, Body<RoleBody>>,
) -> ApiResult {
    let (old, role) = {
        let _guard = state.store.lock();
        let mut role = state
            .store
            .role(guild_id, role_id)
            .or_unknown(Unknown::Role)?;
        access.require_above(role.position)?;
        let old = role.clone();
        apply(&state.store, &access, &mut role, body)?;
        state.store.roles.put((guild_id, role_id), &role)?;
        (old, role)
    };
    state.audit(
        guild_id,
        auth.id(),
        audit_action::ROLE_UPDATE,
        Some(role_id),
        role_diff(&old, &role),
        None,
        reason,
    )?;
    let data = render::role(&role);
    state.publish(Dispatch::guild(
        "GUILD_ROLE_UPDATE",
        guild_id,
        intents::GUILDS,
        json!({"guild_id": guild_id, "role": data}),
    ));
    Ok(ok(data))
}

async fn delete_role(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, role_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, _): InGuild<{ bits::MANAGE_ROLES }>,
) -> ApiResult {
    if role_id == guild_id {
        return Err(ApiError::invalid_field(
            "role_id",
            "BASE_TYPE_INVALID",
            "Cannot delete the @everyone role",
        ));
    }
    let role = state
        .store
        .role(guild_id, role_id)
        .or_unknown(Unknown::Role)?;
    access.require_above(role.position)?;
    let mut touched = Vec::new();
    {
        let _guard = state.store.lock();
        state.store.roles.remove((guild_id, role_id))?;
        for mut member in state.store.members.values(guild_id)? {
            if member.roles.contains(&role_id) {
                member.roles.retain(|r| *r != role_id);
                state.store.put_member(guild_id, &member)?;
                touched.push(member);
            }
        }
    }
    state.audit(
        guild_id,
        auth.id(),
        audit_action::ROLE_DELETE,
        Some(role_id),
        role_diff(
            &role,
            &Role {
                name: String::new(),
                permissions: "0".into(),
                color: 0,
                hoist: false,
                mentionable: false,
                ..role.clone()
            },
        ),
        None,
        reason,
    )?;
    state.publish(Dispatch::guild(
        "GUILD_ROLE_DELETE",
        guild_id,
        intents::GUILDS,
        json!({"guild_id": guild_id, "role_id": role_id}),
    ));
    for member in touched {
        crate::backend::services::members::publish_member_update(
            &state,
            guild_id,
            &member,
            Some(auth.id()),
        )?;
    }
    Ok(no_content())
}

#[derive(Deserialize)]
struct RolePosition {
    id: Snowflake,
    position: Option<i64>,
}

async fn role_positions(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, Body(body)): InGuild<{ bits::MANAGE_ROLES }, Body<Vec<RolePosition>>>,
) -> ApiResult {
    let mut updated = Vec::new();
    {
        let _guard = state.store.lock();
        for (index, entry) in body.iter().enumerate() {
            let Some(position) = entry.position else {
                continue;
            };
            let mut role = state.store.role(guild_id, entry.id)?.ok_or_else(|| {
                ApiError::invalid_field(&format!("{index}.id"), "ROLE_INVALID", "Invalid role")
            })?;
            if role.id == guild_id {
                continue;
            }
            access.require_above(role.position)?;
            access.require_above(position)?;
            role.position = position.max(1);
            state.store.roles.put((guild_id, role.id), &role)?;
            updated.push(role);
        }
    }
    for role in &updated {
        state.publish(Dispatch::guild(
            "GUILD_ROLE_UPDATE",
            guild_id,
            intents::GUILDS,
            json!({"guild_id": guild_id, "role": render::role(role)}),
        ));
    }
    let roles: Vec<Role> = state.store.guild_roles(guild_id)?;
    Ok(ok(render::roles(roles)))
}
