//! The parts of a fixture guild planned after its channels: threads, webhooks, bans, invites
//! and guild commands.
use std::collections::HashSet;

use super::fixture::FixtureThread;
use super::plan::{plan_command, plan_messages, GuildFacts, Plan, PlanError};
use crate::backend::accounts;
use crate::backend::model::*;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::store::ThreadMember;

/// Threads, webhooks, bans, invites and guild commands of one guild.
pub(super) fn plan_guild_extras(
    plan: &mut Plan,
    facts: &GuildFacts<'_>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    plan_threads(plan, facts, all_ids)?;
    plan_webhooks(plan, facts, all_ids)?;
    plan_bans(plan, facts)?;
    plan_invites(plan, facts)?;
    plan_guild_commands(plan, facts, all_ids)
}

/// The guild's threads (with their members and messages).
fn plan_threads(
    plan: &mut Plan,
    facts: &GuildFacts<'_>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    for (t, thread) in facts.spec.threads.iter().enumerate() {
        if !all_ids.insert(thread.id) {
            return Err((
                format!("$.guilds[{}].threads[{t}].id", facts.index),
                format!("duplicate id {}", thread.id),
            ));
        }
        plan_thread(plan, facts, t, thread)?;
    }
    Ok(())
}

/// Thread `t` of the guild: checked against its parent, stored with its members and messages.
fn plan_thread(
    plan: &mut Plan,
    facts: &GuildFacts<'_>,
    t: usize,
    thread: &FixtureThread,
) -> Result<(), PlanError> {
    let spec = facts.spec;
    let path = format!("$.guilds[{}].threads[{t}]", facts.index);
    let at = |field: &str| format!("{path}.{field}");
    let parent_kind = facts.channel_kind(thread.parent_id).ok_or_else(|| {
        (
            at("parent_id"),
            format!("no channel with id {} in this guild", thread.parent_id),
        )
    })?;
    let kind = thread_kind(&at, parent_kind, thread.kind)?;
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
    let owner = facts.member_or_owner(thread.owner_id, at("owner_id"))?;
    let parent = Channel::new_in_guild(thread.parent_id, spec.id, parent_kind, "parent");
    let mut stored = crate::backend::services::channels::new_thread(
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
    let parent_spec = spec.channels.iter().find(|c| c.id == thread.parent_id);
    if let Some(tags) = super::forum_tags::applied_tags(thread, parent_spec, &at)? {
        stored.applied_tags = Some(tags);
    }
    if let Some(meta) = stored.thread_metadata.as_mut() {
        meta.archived = thread.archived;
        meta.locked = thread.locked;
    }
    let members = thread_members(facts, &path, thread, owner)?;
    let joined = crate::backend::snowflake::iso8601_from_ms(now_ms());
    for user_id in &members {
        plan.thread_members.push(ThreadMember {
            thread_id: thread.id,
            user_id: *user_id,
            join_timestamp: joined.clone(),
            flags: 0,
        });
    }
    plan_messages(
        plan,
        &path,
        (thread.id, Some(spec.id)),
        &thread.messages,
        &|author| facts.users.contains_key(&author),
        facts.users,
        facts.roles,
    )?;
    plan.channels.push(stored);
    Ok(())
}

/// The type of a thread under a parent of `parent_kind` (`requested`, or the parent's default).
fn thread_kind(
    at: &dyn Fn(&str) -> String,
    parent_kind: u8,
    requested: Option<u8>,
) -> Result<u8, PlanError> {
    let kind = match (parent_kind, requested) {
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
    Ok(kind)
}

/// A thread's members: its owner first, then the listed guild members (each once).
fn thread_members(
    facts: &GuildFacts<'_>,
    path: &str,
    thread: &FixtureThread,
    owner: Snowflake,
) -> Result<Vec<Snowflake>, PlanError> {
    let mut members = vec![owner];
    for (m, user_id) in thread.members.iter().enumerate() {
        if !facts.members.contains(user_id) {
            return Err((
                format!("{path}.members[{m}]"),
                format!("{user_id} is not a member of this guild"),
            ));
        }
        if !members.contains(user_id) {
            members.push(*user_id);
        }
    }
    Ok(members)
}

/// The guild's webhooks.
fn plan_webhooks(
    plan: &mut Plan,
    facts: &GuildFacts<'_>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    let (g, spec) = (facts.index, facts.spec);
    for (w, hook) in spec.webhooks.iter().enumerate() {
        let at = |field: &str| format!("$.guilds[{g}].webhooks[{w}].{field}");
        if !all_ids.insert(hook.id) {
            return Err((at("id"), format!("duplicate id {}", hook.id)));
        }
        match facts.channel_kind(hook.channel_id) {
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
            creator_id: Some(facts.member_or_owner(hook.creator_id, at("creator_id"))?),
            name: hook.name.clone(),
            avatar: hook.avatar.clone(),
            token: hook
                .token
                .clone()
                .unwrap_or_else(|| accounts::generate_token(hook.id).replace('.', "")),
            application_id: None,
        });
    }
    Ok(())
}

/// The guild's bans (of users who are not members).
fn plan_bans(plan: &mut Plan, facts: &GuildFacts<'_>) -> Result<(), PlanError> {
    let (g, spec) = (facts.index, facts.spec);
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
    Ok(())
}

/// The guild's invites.
fn plan_invites(plan: &mut Plan, facts: &GuildFacts<'_>) -> Result<(), PlanError> {
    let (g, spec) = (facts.index, facts.spec);
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
        match facts.channel_kind(invite.channel_id) {
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
            inviter_id: Some(facts.member_or_owner(invite.inviter_id, at("inviter_id"))?),
            max_age,
            max_uses: invite.max_uses,
            temporary: invite.temporary,
            uses: invite.uses,
            created_at_ms: now_ms(),
        });
    }
    Ok(())
}

/// The guild's application commands (each names its bot).
fn plan_guild_commands(
    plan: &mut Plan,
    facts: &GuildFacts<'_>,
    all_ids: &mut HashSet<Snowflake>,
) -> Result<(), PlanError> {
    let (g, spec) = (facts.index, facts.spec);
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
