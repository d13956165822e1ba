//! A fixture guild planned: the guild, its roles, members, channels (with overwrites and
//! messages) and emojis; the rest follows in `guild_extras`.
use std::collections::{HashMap, HashSet};

use super::fixture::*;
use super::guild_extras::plan_guild_extras;
use super::plan::*;
use crate::backend::model::*;
use crate::backend::permissions::bits;
use crate::backend::services::guilds::normalise_channel_name;
use crate::backend::snowflake::{now_ms, parse_iso8601_ms, Snowflake};

/// Guild number `g`: the guild, its roles, members, channels, emojis and the rest.
pub(super) fn plan_guild(
    plan: &mut Plan,
    g: usize,
    spec: &FixtureGuild,
    users_by_id: &HashMap<Snowflake, &FixtureUser>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    let at = |field: &str| format!("$.guilds[{g}].{field}");
    if !all_ids.insert(spec.id) {
        return Err((at("id"), format!("duplicate id {}", spec.id)));
    }
    let length = spec.name.chars().count();
    if !(2..=100).contains(&length) {
        return Err((at("name"), "must be between 2 and 100 characters".into()));
    }
    if !users_by_id.contains_key(&spec.owner_id) {
        return Err((
            at("owner_id"),
            format!("no user with id {} in $.users", spec.owner_id),
        ));
    }
    let mut guild = Guild::new(spec.id, &spec.name, spec.owner_id);
    guild.description = spec.description.clone();
    guild.features = spec.features.clone();
    guild.verification_level = spec.verification_level;
    if let Some(locale) = &spec.preferred_locale {
        guild.preferred_locale = locale.clone();
    }
    let (role_ids, everyone_permissions) = plan_roles(plan, g, spec, all_ids)?;
    let member_ids = plan_members(plan, g, spec, users_by_id, &role_ids)?;
    let facts = GuildFacts {
        index: g,
        spec,
        members: &member_ids,
        roles: &role_ids,
        users: users_by_id,
    };
    plan_channels(plan, &facts, all_ids)?;
    for (check, id) in [
        ("system_channel_id", spec.system_channel_id),
        ("rules_channel_id", spec.rules_channel_id),
    ] {
        if let Some(id) = id {
            if !spec.channels.iter().any(|c| c.id == id) {
                return Err((at(check), format!("no channel with id {id} in this guild")));
            }
        }
    }
    guild.system_channel_id = spec.system_channel_id;
    guild.rules_channel_id = spec.rules_channel_id;
    plan_emojis(plan, g, spec, all_ids)?;
    plan_stickers(plan, g, spec, all_ids)?;
    plan_guild_extras(plan, &facts, all_ids)?;
    plan.guilds.push((guild, everyone_permissions));
    Ok(())
}

/// The guild's roles (@everyone = guild id, created with Discord's default permissions if
/// absent): their ids, and @everyone's permissions.
fn plan_roles(
    plan: &mut Plan,
    g: usize,
    spec: &FixtureGuild,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(HashSet<Snowflake>, u64), PlanError> {
    let mut role_ids = HashSet::new();
    let mut everyone_permissions = bits::EVERYONE_DEFAULT;
    for (r, role) in spec.roles.iter().enumerate() {
        let at = |field: &str| format!("$.guilds[{g}].roles[{r}].{field}");
        let permissions = match &role.permissions {
            Some(value) => value.bits().ok_or_else(|| {
                (
                    at("permissions"),
                    "must be a decimal permission integer (as a string or a number)".into(),
                )
            })?,
            None => 0,
        };
        if role.id == spec.id {
            everyone_permissions = if role.permissions.is_some() {
                permissions
            } else {
                everyone_permissions
            };
            role_ids.insert(role.id);
            continue;
        }
        if !all_ids.insert(role.id) {
            return Err((at("id"), format!("duplicate id {}", role.id)));
        }
        role_ids.insert(role.id);
        plan.roles.push((
            spec.id,
            Role {
                id: role.id,
                name: role.name.clone(),
                color: role.color,
                colors: RoleColors {
                    primary_color: role.color,
                    ..Default::default()
                },
                hoist: role.hoist,
                icon: None,
                unicode_emoji: None,
                position: role.position.unwrap_or(r as i64 + 1),
                permissions: permissions.to_string(),
                managed: false,
                mentionable: role.mentionable,
                flags: 0,
                tags: None,
            },
        ));
    }
    role_ids.insert(spec.id);
    Ok((role_ids, everyone_permissions))
}

/// The guild's members (the owner is always one): their user ids.
fn plan_members(
    plan: &mut Plan,
    g: usize,
    spec: &FixtureGuild,
    users_by_id: &HashMap<Snowflake, &FixtureUser>,
    role_ids: &HashSet<Snowflake>,
) -> Result<HashSet<Snowflake>, PlanError> {
    let mut member_ids = HashSet::new();
    for (m, member) in spec.members.iter().enumerate() {
        let at = |field: &str| format!("$.guilds[{g}].members[{m}].{field}");
        if !users_by_id.contains_key(&member.user_id) {
            return Err((
                at("user_id"),
                format!("no user with id {} in $.users", member.user_id),
            ));
        }
        if !member_ids.insert(member.user_id) {
            return Err((at("user_id"), "listed twice".into()));
        }
        for (i, role) in member.roles.iter().enumerate() {
            if !role_ids.contains(role) {
                return Err((
                    format!("$.guilds[{g}].members[{m}].roles[{i}]"),
                    format!("no role with id {role} in this guild"),
                ));
            }
        }
        let joined = match &member.joined_at {
            Some(text) => parse_iso8601_ms(text)
                .ok_or_else(|| (at("joined_at"), "is not an ISO 8601 timestamp".into()))?,
            None => now_ms(),
        };
        let mut stored = Member::new(member.user_id, joined);
        stored.roles = member
            .roles
            .iter()
            .copied()
            .filter(|r| *r != spec.id)
            .collect();
        stored.nick = member.nick.clone();
        stored.deaf = member.deaf;
        stored.mute = member.mute;
        plan.members.push((spec.id, stored));
    }
    if !member_ids.contains(&spec.owner_id) {
        plan.members
            .push((spec.id, Member::new(spec.owner_id, now_ms())));
        member_ids.insert(spec.owner_id);
    }
    Ok(member_ids)
}

/// The guild's channels with their overwrites and messages.
fn plan_channels(
    plan: &mut Plan,
    facts: &GuildFacts<'_>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    let (g, spec) = (facts.index, facts.spec);
    let (role_ids, users_by_id) = (facts.roles, facts.users);
    let categories: HashSet<Snowflake> = spec
        .channels
        .iter()
        .filter(|c| c.kind == channel_type::GUILD_CATEGORY)
        .map(|c| c.id)
        .collect();
    for (c, channel) in spec.channels.iter().enumerate() {
        let at = |field: &str| format!("$.guilds[{g}].channels[{c}].{field}");
        // A guild's original #general has the guild's id (Discord's guilds from before 2017).
        if channel.id != spec.id && !all_ids.insert(channel.id) {
            return Err((at("id"), format!("duplicate id {}", channel.id)));
        }
        if !channel_type::is_guild_creatable(channel.kind) {
            return Err((
                at("type"),
                format!(
                    "{} is not a guild channel type (0, 2, 4, 5, 13, 15, 16)",
                    channel.kind
                ),
            ));
        }
        if channel.name.trim().is_empty() || channel.name.chars().count() > 100 {
            return Err((at("name"), "must be between 1 and 100 characters".into()));
        }
        if let Some(parent) = channel.parent_id {
            if !categories.contains(&parent) || channel.kind == channel_type::GUILD_CATEGORY {
                return Err((
                    at("parent_id"),
                    format!("{parent} is not a category (type 4) of this guild"),
                ));
            }
        }
        let mut stored = Channel::new_in_guild(
            channel.id,
            spec.id,
            channel.kind,
            &normalise_channel_name(channel.kind, &channel.name),
        );
        stored.parent_id = channel.parent_id;
        stored.topic = channel.topic.clone();
        stored.position = Some(channel.position.unwrap_or(c as i64));
        if stored.nsfw.is_some() {
            stored.nsfw = Some(channel.nsfw);
        }
        if let Some(v) = channel.rate_limit_per_user {
            stored.rate_limit_per_user = Some(v);
        }
        if let Some(v) = channel.bitrate {
            stored.bitrate = Some(v);
        }
        if let Some(v) = channel.user_limit {
            stored.user_limit = Some(v);
        }
        stored.permission_overwrites = Some(plan_overwrites(facts, c, channel)?);
        if let Some(tags) = super::forum_tags::available_tags(channel, &at)? {
            stored.available_tags = Some(tags);
        }
        if !channel.messages.is_empty() && !channel_type::is_textual(channel.kind) {
            return Err((
                format!("$.guilds[{g}].channels[{c}].messages[0].content"),
                "this channel type holds no messages".into(),
            ));
        }
        plan_messages(
            plan,
            &format!("$.guilds[{g}].channels[{c}]"),
            (channel.id, Some(spec.id)),
            &channel.messages,
            // Authors who are no longer members (recorded worlds) keep their messages.
            &|author| users_by_id.contains_key(&author),
            users_by_id,
            role_ids,
        )?;
        plan.channels.push(stored);
    }
    Ok(())
}

/// The permission overwrites of channel number `c` (targets must be the guild's roles and
/// members).
fn plan_overwrites(
    facts: &GuildFacts<'_>,
    c: usize,
    channel: &FixtureChannel,
) -> Result<Vec<Overwrite>, PlanError> {
    let g = facts.index;
    let (member_ids, role_ids) = (facts.members, facts.roles);
    let mut overwrites = Vec::new();
    for (o, overwrite) in channel.permission_overwrites.iter().enumerate() {
        let at =
            |field: &str| format!("$.guilds[{g}].channels[{c}].permission_overwrites[{o}].{field}");
        let target_ok = match overwrite.kind {
            0 => role_ids.contains(&overwrite.id),
            1 => member_ids.contains(&overwrite.id),
            _ => return Err((at("type"), "must be 0 (role) or 1 (member)".into())),
        };
        if !target_ok {
            return Err((
                at("id"),
                format!(
                    "no {} with id {} in this guild",
                    if overwrite.kind == 0 {
                        "role"
                    } else {
                        "member"
                    },
                    overwrite.id
                ),
            ));
        }
        let allow = overwrite
            .allow
            .as_ref()
            .map(|v| {
                v.bits().ok_or_else(|| {
                    (
                        at("allow"),
                        "must be a decimal permission integer".to_string(),
                    )
                })
            })
            .transpose()?
            .unwrap_or(0);
        let deny = overwrite
            .deny
            .as_ref()
            .map(|v| {
                v.bits().ok_or_else(|| {
                    (
                        at("deny"),
                        "must be a decimal permission integer".to_string(),
                    )
                })
            })
            .transpose()?
            .unwrap_or(0);
        overwrites.push(Overwrite {
            id: overwrite.id,
            kind: overwrite.kind,
            allow: allow.to_string(),
            deny: deny.to_string(),
        });
    }
    Ok(overwrites)
}

/// The guild's custom emojis.
fn plan_emojis(
    plan: &mut Plan,
    g: usize,
    spec: &FixtureGuild,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    for (e, emoji) in spec.emojis.iter().enumerate() {
        if !all_ids.insert(emoji.id) {
            return Err((
                format!("$.guilds[{g}].emojis[{e}].id"),
                format!("duplicate id {}", emoji.id),
            ));
        }
        plan.emojis.push((
            spec.id,
            Emoji {
                id: emoji.id,
                name: emoji.name.clone(),
                roles: vec![],
                creator_id: Some(spec.owner_id),
                require_colons: true,
                managed: false,
                animated: emoji.animated,
                available: true,
            },
        ));
    }
    Ok(())
}

/// The guild's custom stickers.
fn plan_stickers(
    plan: &mut Plan,
    g: usize,
    spec: &FixtureGuild,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    for (k, sticker) in spec.stickers.iter().enumerate() {
        let at = |field: &str| format!("$.guilds[{g}].stickers[{k}].{field}");
        if !all_ids.insert(sticker.id) {
            return Err((at("id"), format!("duplicate id {}", sticker.id)));
        }
        if !(2..=30).contains(&sticker.name.chars().count()) {
            return Err((at("name"), "must be between 2 and 30 characters".into()));
        }
        if !(1..=4).contains(&sticker.format_type) {
            return Err((
                at("format_type"),
                "must be 1 (PNG), 2 (APNG), 3 (Lottie) or 4 (GIF)".into(),
            ));
        }
        plan.stickers.push(crate::backend::extra::Sticker {
            id: sticker.id,
            guild_id: spec.id,
            name: sticker.name.clone(),
            description: sticker.description.clone().filter(|d| !d.is_empty()),
            tags: sticker.tags.clone(),
            format_type: sticker.format_type,
            available: true,
            creator_id: spec.owner_id,
        });
    }
    Ok(())
}
