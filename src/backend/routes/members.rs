//! Members: list, search, get, add, modify (nick, roles, voice, timeout), kick, role add/remove.
use axum::extract::State;
use axum::http::Method;
use axum::routing::{get, patch, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, ok_list, set_image, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::extract::{Auth, Body, Ids, InGuild, Reason, Q};
use crate::backend::model::{audit_action, Member};
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::common::limit;
use crate::backend::services::members::{
    publish_member_added, publish_member_removed, publish_member_update,
};
use crate::backend::services::patch as patch_field;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, parse_iso8601_ms, Snowflake};
use crate::backend::state::{changes, AppState, GuildAccess};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/guilds/{guild_id}/members", get(list_members))
        .route("/guilds/{guild_id}/members/search", get(search_members))
        .route("/guilds/{guild_id}/members/@me", patch(patch_me))
        .route(
            "/guilds/{guild_id}/members/{user_id}",
            get(get_member)
                .put(add_member)
                .patch(patch_member)
                .delete(kick),
        )
        .route(
            "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
            put(add_or_remove_role).delete(add_or_remove_role),
        )
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    after: Option<Snowflake>,
}

async fn list_members(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Q(query): Q<ListQuery>,
    _: InGuild,
) -> ApiResult {
    // Bots need the GUILD_MEMBERS privileged intent enabled to list members (else 50001).
    if auth.user.bot {
        let allowed = state
            .store
            .applications
            .get(auth.id())?
            .map_or(0, |app| app.allowed_privileged_intents());
        if allowed & crate::gateway::intents::GUILD_MEMBERS == 0 {
            return Err(ApiError::MissingAccess);
        }
    }
    let limit = limit(query.limit, 1, 1000)?;
    let after = query.after.unwrap_or(Snowflake(0));
    let members = state.store.members.range(
        (guild_id, Snowflake(after.0.saturating_add(1))),
        (guild_id, Snowflake(u64::MAX)),
        false,
        limit,
    )?;
    ok_list(members.iter(), |m| render::member(&state.store, m))
}

#[derive(Deserialize)]
struct SearchQuery {
    query: Option<String>,
    limit: Option<i64>,
}

async fn search_members(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Q(query): Q<SearchQuery>,
    _: InGuild,
) -> ApiResult {
    let Some(needle) = query.query else {
        return Err(ApiError::invalid_field(
            "query",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    };
    let limit = limit(query.limit, 1, 1000)?;
    let needle = needle.to_lowercase();
    let mut out = Vec::new();
    for member in state.store.members.values(guild_id)? {
        if out.len() >= limit {
            break;
        }
        let Some(user) = state.store.user(member.user_id)? else {
            continue;
        };
        let names = [
            Some(&user.username),
            user.global_name.as_ref(),
            member.nick.as_ref(),
        ];
        if names
            .iter()
            .flatten()
            .any(|n| n.to_lowercase().starts_with(&needle))
        {
            out.push(render::member(&state.store, &member)?);
        }
    }
    Ok(ok(Value::Array(out)))
}

async fn get_member(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, user_id)): Ids<(Snowflake, Snowflake)>,
    _: InGuild,
) -> ApiResult {
    let member = state
        .store
        .member(guild_id, user_id)
        .or_unknown(Unknown::Member)?;
    Ok(ok(render::member(&state.store, &member)?))
}

#[derive(Deserialize)]
struct AddMember {
    access_token: Option<String>,
    nick: Option<String>,
    roles: Option<Vec<Snowflake>>,
    mute: Option<bool>,
    deaf: Option<bool>,
}

async fn add_member(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, user_id)): Ids<(Snowflake, Snowflake)>,
    InGuild(access, Body(body)): InGuild<{ bits::CREATE_INSTANT_INVITE }, Body<AddMember>>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("access_token", body.access_token.as_ref());
    checks.length("nick", body.nick.as_deref(), 1, 32);
    checks.finish()?;
    if body.nick.is_some() {
        access.require(bits::MANAGE_NICKNAMES)?;
    }
    if body.roles.is_some() || body.mute.is_some() || body.deaf.is_some() {
        access.require(bits::MANAGE_ROLES)?;
    }
    state.store.user(user_id).or_unknown(Unknown::User)?;
    if state.store.member(guild_id, user_id)?.is_some() {
        return Ok(no_content());
    }
    if state.store.bans.contains((guild_id, user_id))? {
        return Err(ApiError::forbidden(
            40007,
            "The user is banned from this guild.",
        ));
    }
    let mut member = Member::new(user_id, now_ms());
    member.nick = body.nick;
    member.roles = body.roles.unwrap_or_default();
    member.roles.retain(|r| {
        access
            .roles
            .iter()
            .any(|role| role.id == *r && role.id != guild_id)
    });
    member.mute = body.mute.unwrap_or(false);
    member.deaf = body.deaf.unwrap_or(false);
    state.store.put_member(guild_id, &member)?;
    publish_member_added(&state, guild_id, &member, Some(auth.id()))?;
    Ok(created(render::member(&state.store, &member)?))
}

#[derive(Deserialize)]
struct PatchMember {
    #[serde(default, deserialize_with = "patch_field::present")]
    nick: Option<Option<String>>,
    roles: Option<Vec<Snowflake>>,
    mute: Option<bool>,
    deaf: Option<bool>,
    #[serde(default, deserialize_with = "patch_field::present")]
    channel_id: Option<Option<Snowflake>>,
    #[serde(default, deserialize_with = "patch_field::present")]
    communication_disabled_until: Option<Option<String>>,
    flags: Option<u64>,
}

async fn patch_member(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, user_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<0, Body<PatchMember>>,
) -> ApiResult {
    let timeout_ms = validate_patch_member(&access, &body)?;
    let (old, member) = {
        let _guard = state.store.lock();
        let mut member = state
            .store
            .member(guild_id, user_id)
            .or_unknown(Unknown::Member)?;
        let old = member.clone();
        let is_self = user_id == auth.id();
        apply_patch_member(&access, &mut member, body, is_self, timeout_ms)?;
        state.store.put_member(guild_id, &member)?;
        (old, member)
    };
    let action = if old.roles != member.roles {
        audit_action::MEMBER_ROLE_UPDATE
    } else {
        audit_action::MEMBER_UPDATE
    };
    state.audit(
        guild_id,
        auth.id(),
        action,
        Some(user_id),
        changes(vec![
            ("nick", json!(old.nick), json!(member.nick)),
            ("mute", json!(old.mute), json!(member.mute)),
            ("deaf", json!(old.deaf), json!(member.deaf)),
            (
                "communication_disabled_until",
                json!(old.communication_disabled_until),
                json!(member.communication_disabled_until),
            ),
            ("roles", json!(old.roles), json!(member.roles)),
        ]),
        None,
        reason,
    )?;
    publish_member_update(&state, guild_id, &member, Some(auth.id()))?;
    Ok(ok(render::member(&state.store, &member)?))
}

/// The field checks of a member PATCH (50035 with every failing field); answers the timeout's
/// end in milliseconds when one is given and valid.
fn validate_patch_member(
    access: &GuildAccess,
    body: &PatchMember,
) -> Result<Option<u64>, ApiError> {
    let mut checks = Validator::default();
    if let Some(Some(nick)) = &body.nick {
        checks.length("nick", Some(nick), 1, 32);
    }
    let timeout_ms = match &body.communication_disabled_until {
        Some(Some(text)) => match parse_iso8601_ms(text) {
            Some(ms) if ms > now_ms() + 28 * 86_400_000 => {
                checks.add(
                    "communication_disabled_until",
                    "BASE_TYPE_BAD_TIME",
                    "Timeout must be within 28 days.",
                );
                None
            }
            Some(ms) => Some(ms),
            None => {
                checks.add(
                    "communication_disabled_until",
                    "DATE_TIME_TYPE_PARSE",
                    "Could not parse the timestamp.",
                );
                None
            }
        },
        _ => None,
    };
    if let Some(roles) = &body.roles {
        for (index, role) in roles.iter().enumerate() {
            if !access.roles.iter().any(|r| r.id == *role) {
                checks.add(&format!("roles.{index}"), "ROLE_INVALID", "Invalid role");
            }
        }
    }
    checks.finish()?;
    Ok(timeout_ms)
}

/// Applies a member PATCH field by field, each after the permission it needs (50013).
fn apply_patch_member(
    access: &GuildAccess,
    member: &mut Member,
    body: PatchMember,
    is_self: bool,
    timeout_ms: Option<u64>,
) -> Result<(), ApiError> {
    if let Some(nick) = body.nick {
        if is_self {
            if access.permissions() & (bits::CHANGE_NICKNAME | bits::MANAGE_NICKNAMES) == 0 {
                return Err(ApiError::MissingPermissions);
            }
        } else {
            access.require(bits::MANAGE_NICKNAMES)?;
            access.require_outranks(member)?;
        }
        member.nick = nick.filter(|n| !n.is_empty());
    }
    if let Some(roles) = body.roles {
        member.roles = checked_roles(access, member, roles)?;
    }
    if let Some(mute) = body.mute {
        access.require(bits::MUTE_MEMBERS)?;
        member.mute = mute;
    }
    if let Some(deaf) = body.deaf {
        access.require(bits::DEAFEN_MEMBERS)?;
        member.deaf = deaf;
    }
    if body.channel_id.is_some() {
        access.require(bits::MOVE_MEMBERS)?;
    }
    if let Some(until) = body.communication_disabled_until {
        access.require(bits::MODERATE_MEMBERS)?;
        if !is_self {
            access.require_outranks(member)?;
        }
        let target = access.ctx().base_permissions(member);
        if until.is_some() && target & bits::ADMINISTRATOR != 0 {
            return Err(ApiError::MissingPermissions);
        }
        member.communication_disabled_until = until.and(timeout_ms).map(iso8601_from_ms);
    }
    if let Some(flags) = body.flags {
        // Discord: MANAGE_GUILD, MANAGE_ROLES, or MODERATE + KICK + BAN members.
        let mine = access.permissions();
        let moderator = bits::MODERATE_MEMBERS | bits::KICK_MEMBERS | bits::BAN_MEMBERS;
        if mine & (bits::MANAGE_GUILD | bits::MANAGE_ROLES) == 0 && mine & moderator != moderator {
            return Err(ApiError::MissingPermissions);
        }
        member.flags = flags;
    }
    Ok(())
}

/// A member's new role list: MANAGE_ROLES, and every role added or removed below the caller's
/// top role (owners excepted); @everyone and repeats dropped.
fn checked_roles(
    access: &GuildAccess,
    member: &Member,
    mut roles: Vec<Snowflake>,
) -> Result<Vec<Snowflake>, ApiError> {
    access.require(bits::MANAGE_ROLES)?;
    let top = access.highest_position();
    let changed = roles
        .iter()
        .filter(|r| !member.roles.contains(r))
        .chain(member.roles.iter().filter(|r| !roles.contains(r)));
    for role_id in changed {
        let position = access
            .roles
            .iter()
            .find(|r| r.id == *role_id)
            .map_or(0, |r| r.position);
        if !access.is_owner() && position >= top {
            return Err(ApiError::MissingPermissions);
        }
    }
    let guild_id = access.guild.id;
    roles.retain(|r| *r != guild_id);
    roles.dedup();
    Ok(roles)
}

#[derive(Deserialize)]
struct PatchMe {
    #[serde(default, deserialize_with = "patch_field::present")]
    nick: Option<Option<String>>,
    /// The member's own guild avatar (a data URI; `null` removes it).
    #[serde(default, deserialize_with = "patch_field::present")]
    avatar: Option<Option<String>>,
    /// The member's own guild banner (a data URI; `null` removes it).
    #[serde(default, deserialize_with = "patch_field::present")]
    banner: Option<Option<String>>,
}

async fn patch_me(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, Body(body)): InGuild<0, Body<PatchMe>>,
) -> ApiResult {
    if body.nick.is_some()
        && access.permissions() & (bits::CHANGE_NICKNAME | bits::MANAGE_NICKNAMES) == 0
    {
        return Err(ApiError::MissingPermissions);
    }
    let mut checks = Validator::default();
    if let Some(Some(nick)) = &body.nick {
        checks.length("nick", Some(nick), 1, 32);
    }
    checks.finish()?;
    let member = {
        let _guard = state.store.lock();
        let mut member = state
            .store
            .member(guild_id, auth.id())?
            .ok_or(ApiError::MissingAccess)?;
        if let Some(nick) = body.nick {
            member.nick = nick.filter(|n| !n.is_empty());
        }
        set_image(&state.store, &mut member.avatar, body.avatar, "avatar")?;
        set_image(&state.store, &mut member.banner, body.banner, "banner")?;
        state.store.put_member(guild_id, &member)?;
        member
    };
    publish_member_update(&state, guild_id, &member, Some(auth.id()))?;
    Ok(ok(render::member(&state.store, &member)?))
}

async fn kick(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, user_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, _): InGuild<{ bits::KICK_MEMBERS }>,
) -> ApiResult {
    let member = state
        .store
        .member(guild_id, user_id)
        .or_unknown(Unknown::Member)?;
    access.require_outranks(&member)?;
    let user = state.store.user(user_id).or_unknown(Unknown::User)?;
    state.store.remove_member(guild_id, user_id)?;
    state.audit(
        guild_id,
        auth.id(),
        audit_action::MEMBER_KICK,
        Some(user_id),
        vec![],
        None,
        reason,
    )?;
    publish_member_removed(&state, guild_id, &user, Some(auth.id()))?;
    Ok(no_content())
}

fn change_role(
    state: AppState,
    auth: Auth,
    (guild_id, user_id, role_id): (Snowflake, Snowflake, Snowflake),
    reason: Option<String>,
    add: bool,
    access: GuildAccess,
) -> ApiResult {
    let role = access
        .roles
        .iter()
        .find(|r| r.id == role_id)
        .ok_or(ApiError::NotFound(Unknown::Role))?;
    access.require_above(role.position)?;
    let member = {
        let _guard = state.store.lock();
        let mut member = state
            .store
            .member(guild_id, user_id)
            .or_unknown(Unknown::Member)?;
        let had = member.roles.contains(&role_id);
        if add == had || role_id == guild_id {
            return Ok(no_content());
        }
        if add {
            member.roles.push(role_id);
        } else {
            member.roles.retain(|r| *r != role_id);
        }
        state.store.put_member(guild_id, &member)?;
        member
    };
    let key = if add { "$add" } else { "$remove" };
    state.audit(
        guild_id,
        auth.id(),
        audit_action::MEMBER_ROLE_UPDATE,
        Some(user_id),
        changes(vec![(
            key,
            Value::Null,
            json!([{"id": role.id, "name": role.name}]),
        )]),
        None,
        reason,
    )?;
    publish_member_update(&state, guild_id, &member, Some(auth.id()))?;
    Ok(no_content())
}

/// PUT gives the member the role, DELETE takes it away.
async fn add_or_remove_role(
    State(state): State<AppState>,
    auth: Auth,
    method: Method,
    Ids(ids): Ids<(Snowflake, Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, _): InGuild<{ bits::MANAGE_ROLES }>,
) -> ApiResult {
    let add = method == Method::PUT;
    change_role(state, auth, ids, reason, add, access)
}
