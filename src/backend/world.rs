//! Seeding: fixture files (validated whole, with JSON paths in errors, before anything is
//! written) and the demo world created on an empty data directory.
use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use super::accounts::{self, NewUser};
use super::model::*;
use super::permissions::bits;
use super::services::guilds::{insert_guild, normalise_channel_name};
use super::snowflake::{now_ms, parse_iso8601_ms, Snowflake};
use super::store::{key2, Store, StoreError};

/// Why a fixture was refused (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read fixture {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("fixture {file}: at {path}: {reason}")]
    Invalid {
        file: String,
        path: String,
        reason: String,
    },
    #[error("writing the fixture failed: {0}")]
    Store(#[from] StoreError),
}

/// A fixture file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub users: Vec<FixtureUser>,
    #[serde(default)]
    pub guilds: Vec<FixtureGuild>,
    /// Direct-message channels between two users.
    #[serde(default)]
    pub dms: Vec<FixtureDm>,
}

/// A DM channel between two users of the fixture.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureDm {
    #[serde(default)]
    pub id: Option<Snowflake>,
    /// Exactly two user ids.
    pub recipients: Vec<Snowflake>,
    #[serde(default)]
    pub messages: Vec<FixtureMessage>,
}

/// A user (or bot) in a fixture.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureUser {
    pub id: Snowflake,
    pub username: String,
    #[serde(default)]
    pub global_name: Option<String>,
    #[serde(default)]
    pub discriminator: Option<String>,
    #[serde(default)]
    pub avatar: Option<String>,
    #[serde(default)]
    pub bot: bool,
    #[serde(default)]
    pub system: bool,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub verified: Option<bool>,
    #[serde(default)]
    pub mfa_enabled: bool,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub flags: u64,
    #[serde(default)]
    pub public_flags: u64,
    #[serde(default)]
    pub premium_type: u8,
    #[serde(default)]
    pub application: Option<FixtureApplication>,
}

/// A bot's application settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureApplication {
    #[serde(default)]
    pub flags: Option<u64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub owner_id: Option<Snowflake>,
    /// Global application commands, each in Discord's create-command shape.
    #[serde(default)]
    pub commands: Vec<serde_json::Value>,
}

/// A permission value: Discord sends strings, people write numbers; both are fine.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum PermissionValue {
    Text(String),
    Number(u64),
}

impl PermissionValue {
    fn bits(&self) -> Option<u64> {
        match self {
            PermissionValue::Text(text) => text.parse().ok(),
            PermissionValue::Number(n) => Some(*n),
        }
    }
}

/// A guild in a fixture.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureGuild {
    pub id: Snowflake,
    pub name: String,
    pub owner_id: Snowflake,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub verification_level: u8,
    #[serde(default)]
    pub preferred_locale: Option<String>,
    #[serde(default)]
    pub system_channel_id: Option<Snowflake>,
    #[serde(default)]
    pub rules_channel_id: Option<Snowflake>,
    #[serde(default)]
    pub roles: Vec<FixtureRole>,
    #[serde(default)]
    pub channels: Vec<FixtureChannel>,
    #[serde(default)]
    pub members: Vec<FixtureMember>,
    #[serde(default)]
    pub emojis: Vec<FixtureEmoji>,
    #[serde(default)]
    pub threads: Vec<FixtureThread>,
    #[serde(default)]
    pub webhooks: Vec<FixtureWebhook>,
    #[serde(default)]
    pub bans: Vec<FixtureBan>,
    #[serde(default)]
    pub invites: Vec<FixtureInvite>,
    /// Guild application commands: Discord's create-command shape plus `application_id`.
    #[serde(default)]
    pub commands: Vec<serde_json::Value>,
}

/// A thread under a text, announcement or forum channel of the guild.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureThread {
    pub id: Snowflake,
    pub parent_id: Snowflake,
    pub name: String,
    /// 11 public (default; 10 under an announcement channel) or 12 private.
    #[serde(rename = "type", default)]
    pub kind: Option<u8>,
    /// Defaults to the guild owner.
    #[serde(default)]
    pub owner_id: Option<Snowflake>,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub auto_archive_duration: Option<u32>,
    #[serde(default)]
    pub rate_limit_per_user: Option<u32>,
    /// Thread members besides the owner (who is always one).
    #[serde(default)]
    pub members: Vec<Snowflake>,
    #[serde(default)]
    pub messages: Vec<FixtureMessage>,
}

/// A channel webhook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureWebhook {
    pub id: Snowflake,
    pub channel_id: Snowflake,
    pub name: String,
    /// Generated when absent.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub avatar: Option<String>,
    /// Defaults to the guild owner.
    #[serde(default)]
    pub creator_id: Option<Snowflake>,
}

/// A ban of a fixture user (who then is not a member).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureBan {
    pub user_id: Snowflake,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An invite to a channel of the guild.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureInvite {
    pub code: String,
    pub channel_id: Snowflake,
    /// Defaults to the guild owner.
    #[serde(default)]
    pub inviter_id: Option<Snowflake>,
    /// Seconds; Discord's default is 86400 (0 = never expires).
    #[serde(default)]
    pub max_age: Option<u32>,
    #[serde(default)]
    pub max_uses: u32,
    #[serde(default)]
    pub temporary: bool,
    #[serde(default)]
    pub uses: u32,
}

/// A role in a fixture guild.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureRole {
    pub id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub permissions: Option<PermissionValue>,
    #[serde(default)]
    pub color: u32,
    #[serde(default)]
    pub hoist: bool,
    #[serde(default)]
    pub mentionable: bool,
    #[serde(default)]
    pub position: Option<i64>,
}

/// A channel in a fixture guild.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureChannel {
    pub id: Snowflake,
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: u8,
    #[serde(default)]
    pub parent_id: Option<Snowflake>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub position: Option<i64>,
    #[serde(default)]
    pub nsfw: bool,
    #[serde(default)]
    pub rate_limit_per_user: Option<u32>,
    #[serde(default)]
    pub bitrate: Option<u32>,
    #[serde(default)]
    pub user_limit: Option<u32>,
    #[serde(default)]
    pub permission_overwrites: Vec<FixtureOverwrite>,
    #[serde(default)]
    pub messages: Vec<FixtureMessage>,
}

/// A permission overwrite in a fixture channel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureOverwrite {
    pub id: Snowflake,
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub allow: Option<PermissionValue>,
    #[serde(default)]
    pub deny: Option<PermissionValue>,
}

/// A message pre-seeded in a fixture channel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureMessage {
    #[serde(default)]
    pub id: Option<Snowflake>,
    pub author_id: Snowflake,
    pub content: String,
    #[serde(default)]
    pub pinned: bool,
}

/// A member of a fixture guild.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureMember {
    pub user_id: Snowflake,
    #[serde(default)]
    pub roles: Vec<Snowflake>,
    #[serde(default)]
    pub nick: Option<String>,
    #[serde(default)]
    pub joined_at: Option<String>,
    #[serde(default)]
    pub deaf: bool,
    #[serde(default)]
    pub mute: bool,
}

/// A custom emoji of a fixture guild.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureEmoji {
    pub id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub animated: bool,
}

/// Everything a fixture will write, built and checked before any write.
#[derive(Default)]
struct Plan {
    users: Vec<(User, Credentials)>,
    applications: Vec<Application>,
    guilds: Vec<(Guild, u64)>,
    roles: Vec<(Snowflake, Role)>,
    channels: Vec<Channel>,
    members: Vec<(Snowflake, Member)>,
    messages: Vec<Message>,
    pins: Vec<(Snowflake, Snowflake)>,
    emojis: Vec<(Snowflake, Emoji)>,
    dms: Vec<(Channel, Snowflake, Snowflake)>,
    thread_members: Vec<super::store::ThreadMember>,
    webhooks: Vec<Webhook>,
    bans: Vec<(Snowflake, Ban)>,
    invites: Vec<Invite>,
    commands: Vec<ApplicationCommand>,
}

/// Reads, validates and applies a fixture file; nothing is written if anything is wrong.
pub fn load_fixture_file(store: &Store, path: &Path) -> Result<FixtureSummary, FixtureError> {
    let text = std::fs::read(path).map_err(|source| FixtureError::Read {
        path: path.display().to_string(),
        source,
    })?;
    load_fixture_bytes(store, &text, &path.display().to_string())
}

/// What a fixture created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureSummary {
    pub users: usize,
    pub guilds: usize,
    pub channels: usize,
}

/// Validates and applies fixture JSON (`file` names it in errors).
pub fn load_fixture_bytes(
    store: &Store,
    bytes: &[u8],
    file: &str,
) -> Result<FixtureSummary, FixtureError> {
    let invalid = |path: String, reason: String| FixtureError::Invalid {
        file: file.to_string(),
        path,
        reason,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let fixture: Fixture = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        invalid(
            if path == "." {
                "$".into()
            } else {
                format!("$.{path}")
            },
            err.inner().to_string(),
        )
    })?;
    let plan = plan(&fixture).map_err(|(path, reason)| invalid(path, reason))?;
    let summary = FixtureSummary {
        users: plan.users.len(),
        guilds: plan.guilds.len(),
        channels: plan.channels.len(),
    };
    write(store, plan)?;
    Ok(summary)
}

type PlanError = (String, String);

fn plan(fixture: &Fixture) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let mut user_ids = HashSet::new();
    let mut tokens = HashSet::new();
    let mut emails = HashSet::new();
    let mut users_by_id: HashMap<Snowflake, &FixtureUser> = HashMap::new();
    for (index, spec) in fixture.users.iter().enumerate() {
        let at = |field: &str| format!("$.users[{index}].{field}");
        if spec.id.0 == 0 {
            return Err((at("id"), "must be a non-zero snowflake".into()));
        }
        if !user_ids.insert(spec.id) {
            return Err((at("id"), format!("duplicate user id {}", spec.id)));
        }
        let length = spec.username.chars().count();
        if !(2..=32).contains(&length) {
            return Err((at("username"), "must be between 2 and 32 characters".into()));
        }
        if let Some(token) = &spec.token {
            if token.trim().is_empty() || token.contains(char::is_whitespace) {
                return Err((
                    at("token"),
                    "must be non-empty and contain no spaces".into(),
                ));
            }
            if !tokens.insert(token.clone()) {
                return Err((at("token"), "the same token is given to two users".into()));
            }
        }
        if let Some(email) = &spec.email {
            if !email.contains('@') {
                return Err((at("email"), "is not an email address".into()));
            }
            if !emails.insert(email.to_lowercase()) {
                return Err((at("email"), "the same email is given to two users".into()));
            }
        }
        if spec.application.is_some() && !spec.bot {
            return Err((
                at("application"),
                "only bots have an application here (set \"bot\": true)".into(),
            ));
        }
        if spec.password.is_some() && spec.email.is_none() {
            return Err((
                at("password"),
                "a password needs an email to log in with".into(),
            ));
        }
        users_by_id.insert(spec.id, spec);
    }
    for spec in &fixture.users {
        let (mut user, credentials) = accounts::build_user(NewUser {
            id: spec.id,
            username: spec.username.clone(),
            global_name: spec.global_name.clone(),
            bot: spec.bot,
            token: spec.token.clone(),
            email: spec.email.clone(),
            password: spec.password.clone(),
        });
        if let Some(d) = &spec.discriminator {
            user.discriminator = d.clone();
        }
        user.avatar = spec.avatar.clone();
        user.system = spec.system;
        user.verified = spec.verified.unwrap_or(true);
        user.mfa_enabled = spec.mfa_enabled;
        if let Some(locale) = &spec.locale {
            user.locale = locale.clone();
        }
        user.flags = spec.flags;
        user.public_flags = spec.public_flags;
        user.premium_type = spec.premium_type;
        plan.users.push((user, credentials));
    }
    let mut all_ids: HashSet<Snowflake> = HashSet::new();
    for (g, spec) in fixture.guilds.iter().enumerate() {
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
        guild.icon = spec.icon.clone();
        guild.description = spec.description.clone();
        guild.features = spec.features.clone();
        guild.verification_level = spec.verification_level;
        if let Some(locale) = &spec.preferred_locale {
            guild.preferred_locale = locale.clone();
        }
        // Roles (@everyone = guild id, created with Discord's default permissions if absent).
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
        // Members (the owner is always one).
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
        // Channels.
        let categories: HashSet<Snowflake> = spec
            .channels
            .iter()
            .filter(|c| c.kind == channel_type::GUILD_CATEGORY)
            .map(|c| c.id)
            .collect();
        for (c, channel) in spec.channels.iter().enumerate() {
            let at = |field: &str| format!("$.guilds[{g}].channels[{c}].{field}");
            if !all_ids.insert(channel.id) {
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
            let mut overwrites = Vec::new();
            for (o, overwrite) in channel.permission_overwrites.iter().enumerate() {
                let at = |field: &str| {
                    format!("$.guilds[{g}].channels[{c}].permission_overwrites[{o}].{field}")
                };
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
            stored.permission_overwrites = Some(overwrites);
            if !channel.messages.is_empty() && !channel_type::is_textual(channel.kind) {
                return Err((
                    format!("$.guilds[{g}].channels[{c}].messages[0].content"),
                    "this channel type holds no messages".into(),
                ));
            }
            plan_messages(
                &mut plan,
                &format!("$.guilds[{g}].channels[{c}]"),
                (channel.id, Some(spec.id)),
                &channel.messages,
                &|author| member_ids.contains(&author),
                &users_by_id,
                &role_ids,
            )?;
            plan.channels.push(stored);
        }
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
        plan_guild_extras(
            &mut plan,
            g,
            spec,
            &GuildFacts {
                members: &member_ids,
                roles: &role_ids,
                users: &users_by_id,
            },
            &mut all_ids,
        )?;
        plan.guilds.push((guild, everyone_permissions));
    }
    plan_dms(&mut plan, fixture, &users_by_id, &mut all_ids)?;
    // Bots get an application with their id; its owner is the first human (or the bot).
    let first_human = fixture.users.iter().find(|u| !u.bot).map(|u| u.id);
    for (index, spec) in fixture.users.iter().enumerate() {
        if !spec.bot {
            continue;
        }
        let settings = spec.application.as_ref();
        let owner = settings
            .and_then(|a| a.owner_id)
            .or(first_human)
            .unwrap_or(spec.id);
        if !users_by_id.contains_key(&owner) {
            return Err((
                format!("$.users[{index}].application.owner_id"),
                format!("no user with id {owner} in $.users"),
            ));
        }
        let user = &plan
            .users
            .iter()
            .find(|(u, _)| u.id == spec.id)
            .map(|(u, _)| u.clone())
            .unwrap_or_else(|| User::new(spec.id, &spec.username, true));
        let mut app = accounts::bot_application(user, owner, settings.and_then(|a| a.flags));
        if let Some(name) = settings.and_then(|a| a.name.clone()) {
            app.name = name;
        }
        if let Some(description) = settings.and_then(|a| a.description.clone()) {
            app.description = description;
        }
        for (k, body) in settings
            .map(|a| a.commands.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let command = plan_command(
                &format!("$.users[{index}].application.commands[{k}]"),
                body,
                app.id,
                None,
                &plan.commands,
                &mut all_ids,
            )?;
            plan.commands.push(command);
        }
        plan.applications.push(app);
    }
    Ok(plan)
}

/// What a guild's other parts are checked against.
struct GuildFacts<'a> {
    members: &'a HashSet<Snowflake>,
    roles: &'a HashSet<Snowflake>,
    users: &'a HashMap<Snowflake, &'a FixtureUser>,
}

/// A time-based snowflake for things a fixture leaves without an id (unique per `salt`).
fn fixture_id(salt: usize) -> Snowflake {
    Snowflake(((now_ms() - super::snowflake::DISCORD_EPOCH_MS) << 22) | (salt as u64 & 0x3F_FFFF))
}

/// Checks and plans the messages of one channel (`at` names it in errors).
fn plan_messages(
    plan: &mut Plan,
    at: &str,
    (channel_id, guild_id): (Snowflake, Option<Snowflake>),
    messages: &[FixtureMessage],
    may_post: &dyn Fn(Snowflake) -> bool,
    users: &HashMap<Snowflake, &FixtureUser>,
    role_ids: &HashSet<Snowflake>,
) -> Result<(), PlanError> {
    for (i, message) in messages.iter().enumerate() {
        let at = |field: &str| format!("{at}.messages[{i}].{field}");
        if !may_post(message.author_id) {
            return Err((
                at("author_id"),
                match guild_id {
                    Some(_) => format!("{} is not a member of this guild", message.author_id),
                    None => format!("{} is not a recipient of this DM", message.author_id),
                },
            ));
        }
        if message.content.chars().count() > 2000 {
            return Err((at("content"), "must be 2000 or fewer characters".into()));
        }
        if message.content.trim().is_empty() {
            return Err((at("content"), "must not be empty".into()));
        }
        let id = message
            .id
            .unwrap_or_else(|| fixture_id(plan.messages.len()));
        let parsed = super::routes::messages::parse_mentions(&message.content);
        plan.messages.push(Message {
            id,
            channel_id,
            guild_id,
            author_id: message.author_id,
            webhook: None,
            kind: 0,
            content: message.content.clone(),
            edited_timestamp: None,
            tts: false,
            mention_everyone: false,
            mentions: parsed
                .users
                .into_iter()
                .filter(|u| users.contains_key(u))
                .collect(),
            mention_roles: parsed
                .roles
                .into_iter()
                .filter(|r| guild_id.is_some() && role_ids.contains(r))
                .collect(),
            attachments: vec![],
            embeds: vec![],
            components: vec![],
            sticker_items: vec![],
            nonce: None,
            pinned: message.pinned,
            flags: 0,
            message_reference: None,
            thread_id: None,
            application_id: None,
            poll: None,
        });
        if message.pinned {
            plan.pins.push((channel_id, id));
        }
    }
    Ok(())
}

/// Threads, webhooks, bans, invites and guild commands of guild number `g`.
fn plan_guild_extras(
    plan: &mut Plan,
    g: usize,
    spec: &FixtureGuild,
    facts: &GuildFacts<'_>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    let channel_kind = |id: Snowflake| spec.channels.iter().find(|c| c.id == id).map(|c| c.kind);
    let member_or_owner = |id: Option<Snowflake>, at: String| -> Result<Snowflake, PlanError> {
        let id = id.unwrap_or(spec.owner_id);
        if facts.members.contains(&id) {
            Ok(id)
        } else {
            Err((at, format!("{id} is not a member of this guild")))
        }
    };
    for (t, thread) in spec.threads.iter().enumerate() {
        let at = |field: &str| format!("$.guilds[{g}].threads[{t}].{field}");
        if !all_ids.insert(thread.id) {
            return Err((at("id"), format!("duplicate id {}", thread.id)));
        }
        let parent_kind = channel_kind(thread.parent_id).ok_or_else(|| {
            (
                at("parent_id"),
                format!("no channel with id {} in this guild", thread.parent_id),
            )
        })?;
        let kind = match (parent_kind, thread.kind) {
            (channel_type::GUILD_ANNOUNCEMENT, None | Some(channel_type::ANNOUNCEMENT_THREAD)) => {
                channel_type::ANNOUNCEMENT_THREAD
            }
            (channel_type::GUILD_TEXT, None | Some(channel_type::PUBLIC_THREAD)) => {
                channel_type::PUBLIC_THREAD
            }
            (channel_type::GUILD_TEXT, Some(channel_type::PRIVATE_THREAD)) => {
                channel_type::PRIVATE_THREAD
            }
            (
                channel_type::GUILD_FORUM | channel_type::GUILD_MEDIA,
                None | Some(channel_type::PUBLIC_THREAD),
            ) => channel_type::PUBLIC_THREAD,
            (channel_type::GUILD_TEXT | channel_type::GUILD_ANNOUNCEMENT, Some(other))
            | (channel_type::GUILD_FORUM | channel_type::GUILD_MEDIA, Some(other)) => {
                return Err((
                    at("type"),
                    format!("{other} is not a thread type this parent can hold (announcement channels: 10; text: 11 or 12; forum and media: 11)"),
                ));
            }
            (other, _) => {
                return Err((
                    at("parent_id"),
                    format!("channel type {other} holds no threads (use a text, announcement or forum channel)"),
                ));
            }
        };
        let length = thread.name.chars().count();
        if thread.name.trim().is_empty() || length > 100 {
            return Err((at("name"), "must be between 1 and 100 characters".into()));
        }
        if let Some(duration) = thread.auto_archive_duration {
            if ![60, 1440, 4320, 10080].contains(&duration) {
                return Err((
                    at("auto_archive_duration"),
                    "must be one of 60, 1440, 4320, 10080".into(),
                ));
            }
        }
        let owner = member_or_owner(thread.owner_id, at("owner_id"))?;
        let parent = Channel::new_in_guild(thread.parent_id, spec.id, parent_kind, "parent");
        let mut stored = super::services::channels::new_thread(
            &parent,
            thread.id,
            kind,
            &thread.name,
            thread.auto_archive_duration,
            owner,
        );
        if let Some(limit) = thread.rate_limit_per_user {
            stored.rate_limit_per_user = Some(limit);
        }
        if let Some(meta) = stored.thread_metadata.as_mut() {
            meta.archived = thread.archived;
            meta.locked = thread.locked;
        }
        let mut members = vec![owner];
        for (m, user_id) in thread.members.iter().enumerate() {
            if !facts.members.contains(user_id) {
                return Err((
                    format!("$.guilds[{g}].threads[{t}].members[{m}]"),
                    format!("{user_id} is not a member of this guild"),
                ));
            }
            if !members.contains(user_id) {
                members.push(*user_id);
            }
        }
        let joined = super::snowflake::iso8601_from_ms(now_ms());
        for user_id in &members {
            plan.thread_members.push(super::store::ThreadMember {
                thread_id: thread.id,
                user_id: *user_id,
                join_timestamp: joined.clone(),
                flags: 0,
            });
        }
        plan_messages(
            plan,
            &format!("$.guilds[{g}].threads[{t}]"),
            (thread.id, Some(spec.id)),
            &thread.messages,
            &|author| facts.members.contains(&author),
            facts.users,
            facts.roles,
        )?;
        plan.channels.push(stored);
    }
    for (w, hook) in spec.webhooks.iter().enumerate() {
        let at = |field: &str| format!("$.guilds[{g}].webhooks[{w}].{field}");
        if !all_ids.insert(hook.id) {
            return Err((at("id"), format!("duplicate id {}", hook.id)));
        }
        match channel_kind(hook.channel_id) {
            Some(
                channel_type::GUILD_TEXT
                | channel_type::GUILD_ANNOUNCEMENT
                | channel_type::GUILD_VOICE
                | channel_type::GUILD_STAGE_VOICE
                | channel_type::GUILD_FORUM
                | channel_type::GUILD_MEDIA,
            ) => {}
            Some(other) => {
                return Err((
                    at("channel_id"),
                    format!("channel type {other} cannot have webhooks"),
                ))
            }
            None => {
                return Err((
                    at("channel_id"),
                    format!("no channel with id {} in this guild", hook.channel_id),
                ))
            }
        }
        let length = hook.name.chars().count();
        let lower = hook.name.to_lowercase();
        if !(1..=80).contains(&length) || lower.contains("clyde") || lower.contains("discord") {
            return Err((
                at("name"),
                "must be 1 to 80 characters and contain neither \"clyde\" nor \"discord\"".into(),
            ));
        }
        if let Some(token) = &hook.token {
            if token.is_empty()
                || !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err((at("token"), "must be letters, digits, '-' or '_'".into()));
            }
        }
        plan.webhooks.push(Webhook {
            id: hook.id,
            kind: 1,
            guild_id: spec.id,
            channel_id: hook.channel_id,
            creator_id: Some(member_or_owner(hook.creator_id, at("creator_id"))?),
            name: hook.name.clone(),
            avatar: hook.avatar.clone(),
            token: hook
                .token
                .clone()
                .unwrap_or_else(|| accounts::generate_token(hook.id).replace('.', "")),
            application_id: None,
        });
    }
    let mut banned = HashSet::new();
    for (b, ban) in spec.bans.iter().enumerate() {
        let at = |field: &str| format!("$.guilds[{g}].bans[{b}].{field}");
        if !facts.users.contains_key(&ban.user_id) {
            return Err((
                at("user_id"),
                format!("no user with id {} in $.users", ban.user_id),
            ));
        }
        if ban.user_id == spec.owner_id {
            return Err((at("user_id"), "the guild owner cannot be banned".into()));
        }
        if facts.members.contains(&ban.user_id) {
            return Err((
                at("user_id"),
                format!(
                    "{} is a member of this guild; banned users are not members",
                    ban.user_id
                ),
            ));
        }
        if !banned.insert(ban.user_id) {
            return Err((at("user_id"), "banned twice".into()));
        }
        if ban.reason.as_ref().is_some_and(|r| r.chars().count() > 512) {
            return Err((at("reason"), "must be 512 or fewer characters".into()));
        }
        plan.bans.push((
            spec.id,
            Ban {
                user_id: ban.user_id,
                reason: ban.reason.clone(),
            },
        ));
    }
    for (i, invite) in spec.invites.iter().enumerate() {
        let at = |field: &str| format!("$.guilds[{g}].invites[{i}].{field}");
        let valid_code = (2..=32).contains(&invite.code.len())
            && invite
                .code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid_code {
            return Err((at("code"), "must be 2 to 32 letters, digits or '-'".into()));
        }
        if plan.invites.iter().any(|other| other.code == invite.code) {
            return Err((
                at("code"),
                format!("invite code {:?} is used twice", invite.code),
            ));
        }
        match channel_kind(invite.channel_id) {
            Some(channel_type::GUILD_CATEGORY) => {
                return Err((
                    at("channel_id"),
                    "invites cannot point at a category".into(),
                ))
            }
            Some(_) => {}
            None => {
                return Err((
                    at("channel_id"),
                    format!("no channel with id {} in this guild", invite.channel_id),
                ))
            }
        }
        let max_age = invite.max_age.unwrap_or(86_400);
        if max_age > 604_800 {
            return Err((at("max_age"), "must be between 0 and 604800 seconds".into()));
        }
        if invite.max_uses > 100 {
            return Err((at("max_uses"), "must be between 0 and 100".into()));
        }
        if invite.max_uses > 0 && invite.uses > invite.max_uses {
            return Err((at("uses"), "must not exceed max_uses".into()));
        }
        plan.invites.push(Invite {
            code: invite.code.clone(),
            guild_id: spec.id,
            channel_id: invite.channel_id,
            inviter_id: Some(member_or_owner(invite.inviter_id, at("inviter_id"))?),
            max_age,
            max_uses: invite.max_uses,
            temporary: invite.temporary,
            uses: invite.uses,
            created_at_ms: now_ms(),
        });
    }
    for (k, body) in spec.commands.iter().enumerate() {
        let at = format!("$.guilds[{g}].commands[{k}]");
        let application_id = match body.get("application_id") {
            Some(value) => serde_json::from_value::<Snowflake>(value.clone()).map_err(|_| {
                (
                    format!("{at}.application_id"),
                    "must be a snowflake".to_string(),
                )
            })?,
            None => {
                return Err((
                    format!("{at}.application_id"),
                    "is required (the id of a bot user in $.users)".into(),
                ))
            }
        };
        let is_bot = facts.users.get(&application_id).is_some_and(|u| u.bot);
        if !is_bot {
            return Err((
                format!("{at}.application_id"),
                format!("no bot with id {application_id} in $.users"),
            ));
        }
        if !facts.members.contains(&application_id) {
            return Err((
                format!("{at}.application_id"),
                format!("bot {application_id} is not a member of this guild"),
            ));
        }
        let mut definition = body.clone();
        if let Some(map) = definition.as_object_mut() {
            map.remove("application_id");
        }
        let command = plan_command(
            &at,
            &definition,
            application_id,
            Some(spec.id),
            &plan.commands,
            all_ids,
        )?;
        plan.commands.push(command);
    }
    Ok(())
}

/// Validates one command definition as Discord's create-command route does.
fn plan_command(
    at: &str,
    body: &serde_json::Value,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
    planned: &[ApplicationCommand],
    all_ids: &mut HashSet<Snowflake>,
) -> Result<ApplicationCommand, PlanError> {
    let mut definition = body.clone();
    let given_id = match definition.as_object_mut().and_then(|m| m.remove("id")) {
        Some(value) => Some(
            serde_json::from_value::<Snowflake>(value)
                .map_err(|_| (format!("{at}.id"), "must be a snowflake".to_string()))?,
        ),
        None => None,
    };
    let mut checks = super::error::Validator::default();
    let command = super::services::commands::build_command(
        &mut checks,
        "",
        &definition,
        application_id,
        guild_id,
    );
    if let Err(super::error::ApiError::InvalidForm(errors)) = checks.finish() {
        let (path, message) = errors.first().unwrap_or_default();
        let path = if path.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{path}")
        };
        return Err((path, message));
    }
    let Some(mut command) = command else {
        return Err((at.to_string(), "is not a command definition".into()));
    };
    let clash = planned.iter().any(|other| {
        other.application_id == application_id
            && other.guild_id == guild_id
            && other.name == command.name
            && other.kind == command.kind
    });
    if clash {
        return Err((
            format!("{at}.name"),
            format!(
                "a command named {:?} of this type is already defined here",
                command.name
            ),
        ));
    }
    let id = given_id.unwrap_or_else(|| fixture_id(0x20_0000 + planned.len()));
    if !all_ids.insert(id) {
        return Err((format!("{at}.id"), format!("duplicate id {id}")));
    }
    command.id = id;
    command.version = id;
    Ok(command)
}

/// DM channels between two users, with their messages.
fn plan_dms(
    plan: &mut Plan,
    fixture: &Fixture,
    users: &HashMap<Snowflake, &FixtureUser>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    let mut pairs = HashSet::new();
    for (d, dm) in fixture.dms.iter().enumerate() {
        let at = |field: &str| format!("$.dms[{d}].{field}");
        let [a, b] = dm.recipients.as_slice() else {
            return Err((at("recipients"), "must list exactly two user ids".into()));
        };
        for (r, id) in [a, b].into_iter().enumerate() {
            if !users.contains_key(id) {
                return Err((
                    format!("$.dms[{d}].recipients[{r}]"),
                    format!("no user with id {id} in $.users"),
                ));
            }
        }
        if a == b {
            return Err((at("recipients"), "a DM needs two different users".into()));
        }
        if users.get(a).is_some_and(|u| u.bot) && users.get(b).is_some_and(|u| u.bot) {
            return Err((
                at("recipients"),
                "bots cannot DM each other (Discord: 50007)".into(),
            ));
        }
        if !pairs.insert((*a.min(b), *a.max(b))) {
            return Err((
                at("recipients"),
                "these two users already have a DM in $.dms".into(),
            ));
        }
        let id = dm.id.unwrap_or_else(|| fixture_id(0x30_0000 + d));
        if !all_ids.insert(id) {
            return Err((at("id"), format!("duplicate id {id}")));
        }
        let mut channel = Channel::new(id, channel_type::DM);
        channel.recipient_ids = Some(vec![*a, *b]);
        plan_messages(
            plan,
            &format!("$.dms[{d}]"),
            (id, None),
            &dm.messages,
            &|author| author == *a || author == *b,
            users,
            &HashSet::new(),
        )?;
        plan.dms.push((channel, *a, *b));
    }
    Ok(())
}

fn write(store: &Store, plan: Plan) -> Result<(), StoreError> {
    let _guard = store.lock();
    for (user, credentials) in &plan.users {
        store.put_user(user, credentials)?;
    }
    for app in &plan.applications {
        store.applications.put(app.id.be(), app)?;
    }
    for (guild, everyone) in &plan.guilds {
        // Re-applying a fixture resets the @everyone permissions it names.
        store.roles.remove(key2(guild.id, guild.id))?;
        insert_guild(store, guild, *everyone)?;
    }
    for (guild_id, role) in &plan.roles {
        store.roles.put(key2(*guild_id, role.id), role)?;
    }
    for (guild_id, member) in &plan.members {
        store.put_member(*guild_id, member)?;
    }
    for channel in &plan.channels {
        store.put_channel(channel)?;
    }
    for message in &plan.messages {
        store.put_message(message)?;
    }
    for (channel_id, message_id) in &plan.pins {
        store
            .pins
            .put(key2(*channel_id, *message_id), &message_id.timestamp_ms())?;
    }
    for (guild_id, emoji) in &plan.emojis {
        store.emojis.put(key2(*guild_id, emoji.id), emoji)?;
        store.emoji_guild.put(emoji.id.be(), *guild_id)?;
    }
    for (channel, a, b) in &plan.dms {
        store.put_channel(channel)?;
        store.put_dm(*a, *b, channel.id)?;
    }
    for member in &plan.thread_members {
        store
            .thread_members
            .put(key2(member.thread_id, member.user_id), member)?;
    }
    for hook in &plan.webhooks {
        store.webhooks.put(hook.id.be(), hook)?;
    }
    for (guild_id, ban) in &plan.bans {
        store.bans.put(key2(*guild_id, ban.user_id), ban)?;
    }
    for invite in &plan.invites {
        store.invites.put(invite.code.as_bytes(), invite)?;
    }
    for command in &plan.commands {
        store.commands.put(
            super::store::key3(
                command.application_id,
                super::services::commands::scope_key(command.guild_id),
                command.id,
            ),
            command,
        )?;
    }
    store.flush()?;
    Ok(())
}

/// Creates the demo world: a guild with categories, text and voice channels, a user and a bot.
pub fn create_demo_world(store: &Store) -> Result<(), StoreError> {
    let user_id = store.next_id();
    let bot_id = store.next_id();
    let guild_id = store.next_id();
    let (text_category, general, bot_testing, voice_category, voice, bots_role) = (
        store.next_id(),
        store.next_id(),
        store.next_id(),
        store.next_id(),
        store.next_id(),
        store.next_id(),
    );
    let (user, _) = accounts::create_user(
        store,
        NewUser {
            id: user_id,
            username: "demo".into(),
            global_name: Some("Demo User".into()),
            bot: false,
            token: None,
            email: Some("demo@example.com".into()),
            password: Some("demo-password".into()),
        },
    )?;
    let (bot, _) = accounts::create_user(
        store,
        NewUser {
            id: bot_id,
            username: "demobot".into(),
            global_name: None,
            bot: true,
            token: None,
            email: None,
            password: None,
        },
    )?;
    let app = accounts::bot_application(&bot, user.id, None);
    store.applications.put(app.id.be(), &app)?;
    let mut guild = Guild::new(guild_id, "Demo Guild", user.id);
    guild.system_channel_id = Some(general);
    insert_guild(store, &guild, bits::EVERYONE_DEFAULT)?;
    let role = Role {
        id: bots_role,
        name: "Bots".into(),
        color: 0x5865F2,
        colors: RoleColors {
            primary_color: 0x5865F2,
            ..Default::default()
        },
        hoist: true,
        icon: None,
        unicode_emoji: None,
        position: 1,
        permissions: (bits::EVERYONE_DEFAULT
            | bits::MANAGE_MESSAGES
            | bits::MANAGE_CHANNELS
            | bits::MANAGE_ROLES
            | bits::KICK_MEMBERS
            | bits::BAN_MEMBERS
            | bits::MANAGE_WEBHOOKS
            | bits::VIEW_AUDIT_LOG
            | bits::MANAGE_THREADS)
            .to_string(),
        managed: false,
        mentionable: false,
        flags: 0,
        tags: None,
    };
    store.roles.put(key2(guild_id, role.id), &role)?;
    let mut bot_member = Member::new(bot.id, now_ms());
    bot_member.roles = vec![bots_role];
    store.put_member(guild_id, &bot_member)?;
    let mut channels = vec![
        Channel::new_in_guild(
            text_category,
            guild_id,
            channel_type::GUILD_CATEGORY,
            "Text Channels",
        ),
        Channel::new_in_guild(general, guild_id, channel_type::GUILD_TEXT, "general"),
        Channel::new_in_guild(
            bot_testing,
            guild_id,
            channel_type::GUILD_TEXT,
            "bot-testing",
        ),
        Channel::new_in_guild(
            voice_category,
            guild_id,
            channel_type::GUILD_CATEGORY,
            "Voice Channels",
        ),
        Channel::new_in_guild(voice, guild_id, channel_type::GUILD_VOICE, "General"),
    ];
    channels[1].parent_id = Some(text_category);
    channels[2].parent_id = Some(text_category);
    channels[2].position = Some(1);
    channels[3].position = Some(1);
    channels[4].parent_id = Some(voice_category);
    channels[1].topic = Some("Say hi to demobot".into());
    for channel in &channels {
        store.put_channel(channel)?;
    }
    store.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"users": [
       {"id": "100000000000000001", "username": "alice", "token": "alice-token",
        "email": "alice@example.com", "password": "hunter2"},
       {"id": "100000000000000002", "username": "pingbot", "bot": true,
        "token": "MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0"}],
     "guilds": [
       {"id": "200000000000000001", "name": "Test Guild", "owner_id": "100000000000000001",
        "roles": [{"id": "200000000000000002", "name": "Mods", "permissions": "8"}],
        "channels": [{"id": "200000000000000010", "name": "Text", "type": 4},
                     {"id": "200000000000000011", "name": "general", "type": 0,
                      "parent_id": "200000000000000010"}],
        "members": [{"user_id": "100000000000000001", "roles": ["200000000000000002"]},
                    {"user_id": "100000000000000002"}]}]}"#;

    #[test]
    fn the_issue_example_loads_with_defaults() {
        let store = Store::temporary().unwrap();
        let summary = load_fixture_bytes(&store, EXAMPLE.as_bytes(), "example.json").unwrap();
        assert_eq!(
            summary,
            FixtureSummary {
                users: 2,
                guilds: 1,
                channels: 2
            }
        );
        let guild = Snowflake(200000000000000001);
        let everyone = store.role(guild, guild).unwrap().unwrap();
        assert_eq!(everyone.name, "@everyone");
        assert_eq!(everyone.permission_bits(), bits::EVERYONE_DEFAULT);
        let bot = store
            .user_by_token("MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0")
            .unwrap()
            .unwrap();
        assert!(bot.bot);
        let app = store.applications.get(bot.id.be()).unwrap().unwrap();
        assert_eq!(app.owner_id, Snowflake(100000000000000001));
        assert_eq!(
            app.allowed_privileged_intents(),
            crate::backend::events::intents::PRIVILEGED
        );
        assert_eq!(store.member_count(guild), 2);
        let general = store
            .channel(Snowflake(200000000000000011))
            .unwrap()
            .unwrap();
        assert_eq!(general.parent_id, Some(Snowflake(200000000000000010)));
        assert!(
            accounts::check_login(&store, "alice@example.com", "hunter2")
                .unwrap()
                .is_some()
        );
    }

    fn error_of(json: &str) -> (String, String) {
        let store = Store::temporary().unwrap();
        match load_fixture_bytes(&store, json.as_bytes(), "f.json") {
            Err(FixtureError::Invalid { path, reason, .. }) => {
                assert!(store.is_empty(), "nothing may be written");
                (path, reason)
            }
            other => panic!("expected an invalid fixture, got {other:?}"),
        }
    }

    #[test]
    fn bad_fixtures_name_the_json_path_and_write_nothing() {
        let unknown_role =
            EXAMPLE.replace(r#""roles": ["200000000000000002"]"#, r#""roles": ["999"]"#);
        let (path, reason) = error_of(&unknown_role);
        assert_eq!(path, "$.guilds[0].members[0].roles[0]");
        assert!(reason.contains("no role"), "{reason}");

        let bad_type = EXAMPLE.replace(r#""type": 4}"#, r#""type": "four"}"#);
        let (path, _) = error_of(&bad_type);
        assert_eq!(path, "$.guilds[0].channels[0].type");

        let bad_owner =
            EXAMPLE.replace(r#""owner_id": "100000000000000001""#, r#""owner_id": "5""#);
        assert_eq!(error_of(&bad_owner).0, "$.guilds[0].owner_id");

        let typo = EXAMPLE.replace(r#""username": "alice""#, r#""usernme": "alice""#);
        assert_eq!(error_of(&typo).0, "$.users[0].usernme");

        let bad_parent = EXAMPLE.replace(
            r#""parent_id": "200000000000000010""#,
            r#""parent_id": "200000000000000011""#,
        );
        assert_eq!(error_of(&bad_parent).0, "$.guilds[0].channels[1].parent_id");
    }

    #[test]
    fn application_flags_restrict_privileged_intents() {
        let restricted = EXAMPLE.replace(
            r#""bot": true,"#,
            r#""bot": true, "application": {"flags": 32768},"#,
        );
        let store = Store::temporary().unwrap();
        load_fixture_bytes(&store, restricted.as_bytes(), "f.json").unwrap();
        let app = store
            .applications
            .get(Snowflake(100000000000000002).be())
            .unwrap()
            .unwrap();
        assert_eq!(
            app.allowed_privileged_intents(),
            crate::backend::events::intents::GUILD_MEMBERS
        );
    }

    #[test]
    fn the_demo_world_has_a_guild_a_user_and_a_bot() {
        let store = Store::temporary().unwrap();
        create_demo_world(&store).unwrap();
        let bots: Vec<User> = store
            .users
            .values(b"")
            .unwrap()
            .into_iter()
            .filter(|u| u.bot)
            .collect();
        assert_eq!(bots.len(), 1);
        let guild_id = store.guild_ids_of(bots[0].id).unwrap()[0];
        let kinds: Vec<u8> = store
            .guild_channel_list(guild_id)
            .unwrap()
            .iter()
            .map(|c| c.kind)
            .collect();
        assert!(kinds.contains(&channel_type::GUILD_CATEGORY));
        assert!(kinds.contains(&channel_type::GUILD_TEXT));
        assert!(kinds.contains(&channel_type::GUILD_VOICE));
    }
}
