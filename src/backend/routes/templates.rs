//! Guild templates: create (one per guild), list, read by code, sync, edit, delete. The
//! snapshot (`serialized_source_guild`) renumbers roles and channels with placeholder ids as
//! Discord does (@everyone is role 0), and `is_dirty` tells whether the guild changed since.
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

use super::{ok, ApiResult};
use crate::backend::error::unknown;
use crate::backend::error::{ApiError, Validator};
use crate::backend::extra::GuildTemplate;
use crate::backend::extract::{Auth, Body, Ids, InGuild};
use crate::backend::model::{Channel, Guild, Role};
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::patch::set_if_present;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, Snowflake};
use crate::backend::state::AppState;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/guilds/templates/{code}", get(get_by_code))
        .route(
            "/guilds/{guild_id}/templates",
            get(list_templates).post(create_template),
        )
        .route(
            "/guilds/{guild_id}/templates/{code}",
            put(sync_template)
                .patch(edit_template)
                .delete(delete_template),
        )
}

/// A 12-character template code of letters and digits.
fn template_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    crate::backend::clock::random_string(ALPHABET, 12)
}

/// The guild as a template snapshot: roles numbered from 0 (@everyone) by position, channels
/// from 1 by position, every reference rewritten to those placeholders.
pub(crate) fn snapshot(guild: &Guild, roles: &[Role], channels: &[Channel]) -> Value {
    let mut roles: Vec<&Role> = roles.iter().collect();
    roles.sort_by_key(|r| (r.id != guild.id, r.position, r.id));
    let role_ids: HashMap<Snowflake, usize> =
        roles.iter().enumerate().map(|(n, r)| (r.id, n)).collect();
    let mut channels: Vec<&Channel> = channels
        .iter()
        .filter(|c| {
            !crate::backend::model::channel_type::is_thread(c.kind)
                && c.kind != crate::backend::model::channel_type::GUILD_DIRECTORY
        })
        .collect();
    channels.sort_by_key(|c| (c.parent_id.is_some(), c.position.unwrap_or(0), c.id));
    let channel_ids: HashMap<Snowflake, usize> = channels
        .iter()
        .enumerate()
        .map(|(n, c)| (c.id, n + 1))
        .collect();
    let placeholder = |id: Option<Snowflake>| -> Value {
        id.and_then(|id| channel_ids.get(&id))
            .map_or(Value::Null, |n| json!(n.to_string()))
    };
    let roles_out: Vec<Value> = roles
        .iter()
        .map(|role| {
            json!({
                "id": role_ids[&role.id],
                "name": role.name,
                "permissions": role.permissions,
                "color": role.color,
                "colors": {
                    "primary_color": role.colors.primary_color,
                    "secondary_color": role.colors.secondary_color,
                    "tertiary_color": role.colors.tertiary_color,
                },
                "hoist": role.hoist,
                "mentionable": role.mentionable,
                "icon": role.icon,
                "unicode_emoji": role.unicode_emoji,
            })
        })
        .collect();
    let channels_out: Vec<Value> = channels
        .iter()
        .map(|channel| {
            // Member overwrites do not survive into a template, only role ones.
            let overwrites: Vec<Value> = channel
                .permission_overwrites
                .iter()
                .flatten()
                .filter(|o| o.kind == 0)
                .filter_map(|o| {
                    role_ids.get(&o.id).map(|n| {
                        json!({"id": n.to_string(), "type": 0, "allow": o.allow, "deny": o.deny})
                    })
                })
                .collect();
            json!({
                "id": channel_ids[&channel.id],
                "type": template_kind(channel.kind),
                "name": channel.name,
                "position": channel.position,
                "topic": channel.topic,
                "bitrate": channel.bitrate.unwrap_or(64_000),
                "user_limit": channel.user_limit.unwrap_or(0),
                "nsfw": channel.nsfw.unwrap_or(false),
                "rate_limit_per_user": channel.rate_limit_per_user.unwrap_or(0),
                "parent_id": placeholder(channel.parent_id),
                "default_auto_archive_duration": channel.default_auto_archive_duration,
                "permission_overwrites": overwrites,
                "available_tags": channel.available_tags,
                "template": "",
                "default_reaction_emoji": channel.default_reaction_emoji,
                "default_thread_rate_limit_per_user": channel.default_thread_rate_limit_per_user,
                "default_sort_order": channel.default_sort_order,
                "default_forum_layout": channel.default_forum_layout,
                "default_tag_setting": null,
                "theme_color": null,
            })
        })
        .collect();
    json!({
        "name": guild.name,
        "description": guild.description,
        "region": null,
        "verification_level": guild.verification_level,
        "default_message_notifications": guild.default_message_notifications,
        "explicit_content_filter": guild.explicit_content_filter,
        "preferred_locale": guild.preferred_locale,
        "afk_channel_id": placeholder(guild.afk_channel_id),
        "afk_timeout": guild.afk_timeout,
        "system_channel_id": placeholder(guild.system_channel_id),
        "system_channel_flags": guild.system_channel_flags,
        "icon_hash": guild.icon,
        "roles": roles_out,
        "channels": channels_out,
    })
}

/// Templates only carry text, voice, category and forum channels: community-only types fall
/// back to their plain counterparts (announcement → text, stage → voice, media → forum).
fn template_kind(kind: u8) -> u8 {
    use crate::backend::model::channel_type::*;
    match kind {
        GUILD_ANNOUNCEMENT => GUILD_TEXT,
        GUILD_STAGE_VOICE => GUILD_VOICE,
        GUILD_MEDIA => GUILD_FORUM,
        other => other,
    }
}

fn current_snapshot(state: &AppState, guild: &Guild) -> Result<Value, ApiError> {
    Ok(snapshot(
        guild,
        &state.store.guild_roles(guild.id)?,
        &state.store.guild_channel_list(guild.id)?,
    ))
}

fn render_template(state: &AppState, template: &GuildTemplate) -> Result<Value, ApiError> {
    let dirty = match state.store.guild(template.guild_id)? {
        Some(guild) => current_snapshot(state, &guild)? != template.snapshot,
        None => false,
    };
    Ok(json!({
        "code": template.code,
        "name": template.name,
        "description": template.description,
        "usage_count": template.usage_count,
        "creator_id": template.creator_id,
        "creator": render::user_by_id(&state.store, template.creator_id)?,
        "created_at": template.created_at,
        "updated_at": template.updated_at,
        "source_guild_id": template.guild_id,
        "serialized_source_guild": template.snapshot,
        "is_dirty": if dirty { Value::Bool(true) } else { Value::Null },
    }))
}

fn guild_templates(state: &AppState, guild_id: Snowflake) -> Result<Vec<GuildTemplate>, ApiError> {
    // Templates are few (one per guild), so a scan is fine.
    Ok(state
        .store
        .extra
        .templates
        .all()?
        .into_iter()
        .filter(|t| t.guild_id == guild_id)
        .collect())
}

fn load(state: &AppState, guild_id: Snowflake, code: &str) -> Result<GuildTemplate, ApiError> {
    state
        .store
        .extra
        .templates
        .get(code)?
        .filter(|t| t.guild_id == guild_id)
        .ok_or(unknown(unknown::GUILD_TEMPLATE))
}

async fn get_by_code(
    State(state): State<AppState>,
    _auth: Auth,
    Path(code): Path<String>,
) -> ApiResult {
    let template = state
        .store
        .extra
        .templates
        .get(&code)?
        .ok_or(unknown(unknown::GUILD_TEMPLATE))?;
    // A deleted guild's template goes with it.
    if state.store.guild(template.guild_id)?.is_none() {
        state.store.extra.templates.remove(&code)?;
        return Err(unknown(unknown::GUILD_TEMPLATE));
    }
    Ok(ok(render_template(&state, &template)?))
}

async fn list_templates(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    _: InGuild<{ bits::MANAGE_GUILD }>,
) -> ApiResult {
    let out = guild_templates(&state, guild_id)?
        .iter()
        .map(|t| render_template(&state, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(Value::Array(out)))
}

#[derive(Deserialize)]
struct TemplateBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::backend::services::patch::present")]
    description: Option<Option<String>>,
}

fn check_body(checks: &mut Validator, body: &TemplateBody) {
    checks.length("name", body.name.as_deref(), 1, 100);
    checks.length(
        "description",
        body.description.clone().flatten().as_deref(),
        0,
        120,
    );
}

async fn create_template(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, Body(body)): InGuild<{ bits::MANAGE_GUILD }, Body<TemplateBody>>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("name", body.name.as_ref());
    check_body(&mut checks, &body);
    checks.finish()?;
    let template = {
        let _guard = state.store.lock();
        if !guild_templates(&state, guild_id)?.is_empty() {
            return Err(ApiError::bad_request(30031, "Guild already has a template"));
        }
        let now = iso8601_from_ms(now_ms());
        let template = GuildTemplate {
            code: template_code(),
            guild_id,
            name: body.name.unwrap_or_default(),
            description: body.description.flatten(),
            usage_count: 0,
            creator_id: auth.id(),
            created_at: now.clone(),
            updated_at: now,
            snapshot: current_snapshot(&state, &access.guild)?,
        };
        state.store.extra.templates.put(&template.code, &template)?;
        template
    };
    Ok(ok(render_template(&state, &template)?))
}

/// Changes the guild's template `code` under the store lock, stores it and answers with it.
fn update_template(
    state: &AppState,
    guild_id: Snowflake,
    code: &str,
    change: impl FnOnce(&mut GuildTemplate) -> Result<(), ApiError>,
) -> ApiResult {
    let template = {
        let _guard = state.store.lock();
        let mut template = load(state, guild_id, code)?;
        change(&mut template)?;
        state.store.extra.templates.put(code, &template)?;
        template
    };
    Ok(ok(render_template(state, &template)?))
}

async fn sync_template(
    State(state): State<AppState>,
    _: Auth,
    Path((_, code)): Path<(String, String)>,
    InGuild(access, _): InGuild<{ bits::MANAGE_GUILD }>,
) -> ApiResult {
    update_template(&state, access.guild.id, &code, |template| {
        template.snapshot = current_snapshot(&state, &access.guild)?;
        template.updated_at = iso8601_from_ms(now_ms());
        Ok(())
    })
}

async fn edit_template(
    State(state): State<AppState>,
    _: Auth,
    Path((_, code)): Path<(String, String)>,
    InGuild(access, Body(body)): InGuild<{ bits::MANAGE_GUILD }, Body<TemplateBody>>,
) -> ApiResult {
    let mut checks = Validator::default();
    check_body(&mut checks, &body);
    checks.finish()?;
    update_template(&state, access.guild.id, &code, |template| {
        set_if_present(&mut template.name, body.name);
        set_if_present(&mut template.description, body.description);
        Ok(())
    })
}

async fn delete_template(
    State(state): State<AppState>,
    _: Auth,
    Path((_, code)): Path<(String, String)>,
    InGuild(access, _): InGuild<{ bits::MANAGE_GUILD }>,
) -> ApiResult {
    let guild_id = access.guild.id;
    let template = load(&state, guild_id, &code)?;
    let out = render_template(&state, &template)?;
    state.store.extra.templates.remove(&code)?;
    Ok(ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::model::Overwrite;

    #[test]
    fn snapshots_use_placeholder_ids() {
        let guild_id = Snowflake(10);
        let guild = Guild::new(guild_id, "g", Snowflake(1));
        let everyone = Role {
            id: guild_id,
            name: "@everyone".into(),
            color: 0,
            colors: Default::default(),
            hoist: false,
            icon: None,
            unicode_emoji: None,
            position: 0,
            permissions: "1024".into(),
            managed: false,
            mentionable: false,
            flags: 0,
            tags: None,
        };
        let mods = Role {
            id: Snowflake(11),
            name: "Mods".into(),
            position: 1,
            ..everyone.clone()
        };
        let category = Channel::new_in_guild(Snowflake(20), guild_id, 4, "Text");
        let mut text = Channel::new_in_guild(Snowflake(21), guild_id, 0, "general");
        text.parent_id = Some(category.id);
        text.permission_overwrites = Some(vec![
            Overwrite {
                id: mods.id,
                kind: 0,
                allow: "2048".into(),
                deny: "0".into(),
            },
            Overwrite {
                id: Snowflake(99),
                kind: 1,
                allow: "0".into(),
                deny: "0".into(),
            },
        ]);
        let out = snapshot(&guild, &[mods, everyone], &[text, category]);
        assert_eq!(out["roles"][0]["id"], 0);
        assert_eq!(out["roles"][0]["name"], "@everyone");
        assert_eq!(out["roles"][1]["id"], 1);
        assert_eq!(out["channels"][0]["id"], 1);
        assert_eq!(out["channels"][1]["parent_id"], "1");
        let overwrites = out["channels"][1]["permission_overwrites"]
            .as_array()
            .unwrap();
        assert_eq!(overwrites.len(), 1, "member overwrites are dropped");
        assert_eq!(overwrites[0]["id"], "1");
    }
}
