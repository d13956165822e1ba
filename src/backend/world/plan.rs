//! The fixture plan: every record a fixture will write, built and checked (with the JSON path
//! of the first problem) before anything touches the store.
use std::collections::{HashMap, HashSet};

use super::fixture::*;
use crate::backend::model::*;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::store::ThreadMember;

/// Everything a fixture will write, built and checked before any write.
#[derive(Default)]
pub(super) struct Plan {
    pub(super) users: Vec<(User, Credentials)>,
    pub(super) applications: Vec<Application>,
    pub(super) guilds: Vec<(Guild, u64)>,
    pub(super) roles: Vec<(Snowflake, Role)>,
    pub(super) channels: Vec<Channel>,
    pub(super) members: Vec<(Snowflake, Member)>,
    pub(super) messages: Vec<Message>,
    pub(super) pins: Vec<(Snowflake, Snowflake)>,
    pub(super) emojis: Vec<(Snowflake, Emoji)>,
    pub(super) stickers: Vec<crate::backend::extra::Sticker>,
    pub(super) dms: Vec<(Channel, Snowflake, Snowflake)>,
    /// Group DMs and everyone in each.
    pub(super) group_dms: Vec<(Channel, Vec<Snowflake>)>,
    pub(super) thread_members: Vec<ThreadMember>,
    pub(super) webhooks: Vec<Webhook>,
    pub(super) bans: Vec<(Snowflake, Ban)>,
    pub(super) invites: Vec<Invite>,
    pub(super) commands: Vec<ApplicationCommand>,
    pub(super) account: super::account::AccountPlan,
    /// Image bytes the fixture's files and data URIs carry, by content hash (for the CDN).
    pub(super) images: Vec<(String, Vec<u8>)>,
}

pub(super) type PlanError = (String, String);

/// One guild of the fixture, and what its other parts are checked against.
pub(super) struct GuildFacts<'a> {
    pub(super) index: usize,
    pub(super) spec: &'a FixtureGuild,
    pub(super) members: &'a HashSet<Snowflake>,
    pub(super) roles: &'a HashSet<Snowflake>,
    pub(super) users: &'a HashMap<Snowflake, &'a FixtureUser>,
}

impl GuildFacts<'_> {
    /// The type of the guild's channel `id`, if it has one.
    pub(super) fn channel_kind(&self, id: Snowflake) -> Option<u8> {
        self.spec
            .channels
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.kind)
    }

    /// `id` (the owner when absent) if that user is a member (else an error at `at`).
    pub(super) fn member_or_owner(
        &self,
        id: Option<Snowflake>,
        at: String,
    ) -> Result<Snowflake, PlanError> {
        let id = id.unwrap_or(self.spec.owner_id);
        if self.members.contains(&id) {
            Ok(id)
        } else {
            Err((at, format!("{id} is not a member of this guild")))
        }
    }
}

/// A time-based snowflake for things a fixture leaves without an id (unique per `salt`).
pub(super) fn fixture_id(salt: usize) -> Snowflake {
    Snowflake(
        ((now_ms() - crate::backend::snowflake::DISCORD_EPOCH_MS) << 22)
            | (salt as u64 & 0x3F_FFFF),
    )
}

/// Checks and plans the messages of one channel (`at` names it in errors).
pub(super) fn plan_messages(
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
        let author_id = message_author(message, guild_id.is_some(), may_post, &at)?;
        if !MESSAGE_TYPES.contains(&message.kind) {
            return Err((
                at("type"),
                format!("{} is not a Discord message type", message.kind),
            ));
        }
        if message.content.chars().count() > 2000 {
            return Err((at("content"), "must be 2000 or fewer characters".into()));
        }
        let carries_more = !message.attachments.is_empty()
            || !message.embeds.is_empty()
            || !message.sticker_items.is_empty()
            || !USER_MESSAGE_TYPES.contains(&message.kind);
        if message.content.trim().is_empty() && !carries_more {
            return Err((
                at("content"),
                "must not be empty (unless the message has attachments, embeds or sticker_items, or is a system message)"
                    .into(),
            ));
        }
        if let Some(edited) = &message.edited_timestamp {
            if crate::backend::snowflake::parse_iso8601_ms(edited).is_none() {
                return Err((
                    at("edited_timestamp"),
                    "is not an ISO 8601 timestamp".into(),
                ));
            }
        }
        for (list, field) in [
            (&message.attachments, "attachments"),
            (&message.embeds, "embeds"),
            (&message.sticker_items, "sticker_items"),
        ] {
            if let Some(k) = list.iter().position(|v| !v.is_object()) {
                return Err((format!("{}[{k}]", at(field)), "must be an object".into()));
            }
        }
        let id = message
            .id
            .unwrap_or_else(|| fixture_id(plan.messages.len()));
        let parsed = crate::backend::services::messages::parse_mentions(&message.content);
        plan.messages.push(Message {
            content: message.content.clone(),
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
            pinned: message.pinned,
            edited_timestamp: message.edited_timestamp.clone(),
            attachments: message.attachments.clone(),
            embeds: message.embeds.clone(),
            sticker_items: message.sticker_items.clone(),
            kind: message.kind,
            webhook: message.webhook.as_ref().map(|hook| WebhookAuthor {
                webhook_id: hook.id,
                username: hook.username.clone(),
                avatar: hook.avatar.clone(),
                interaction_metadata: None,
            }),
            ..Message::new(id, channel_id, guild_id, author_id)
        });
        if message.pinned {
            plan.pins.push((channel_id, id));
        }
    }
    Ok(())
}

/// Message types people write (default, reply, slash and context-menu command answers,
/// a thread's starter message).
pub(super) const USER_MESSAGE_TYPES: [u8; 5] = [0, 19, 20, 21, 23];

/// Every message type Discord documents (system messages included).
pub(super) const MESSAGE_TYPES: [u8; 38] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32, 36, 37, 38, 39, 44, 46,
];

/// Who a fixture message is by: its webhook (guild channels only) or `author_id`, who must
/// be allowed to post there.
fn message_author(
    message: &FixtureMessage,
    in_guild: bool,
    may_post: &dyn Fn(Snowflake) -> bool,
    at: &dyn Fn(&str) -> String,
) -> Result<Snowflake, PlanError> {
    if let Some(hook) = &message.webhook {
        if !in_guild {
            return Err((at("webhook"), "webhooks post in guild channels only".into()));
        }
        if message.author_id.is_some_and(|author| author != hook.id) {
            return Err((
                at("author_id"),
                "must be the webhook's id (or left out) on a webhook message".into(),
            ));
        }
        return Ok(hook.id);
    }
    let Some(author_id) = message.author_id else {
        return Err((
            at("author_id"),
            "is required (unless the message has a webhook)".into(),
        ));
    };
    if !may_post(author_id) {
        return Err((
            at("author_id"),
            if in_guild {
                format!("no user with id {author_id} in $.users")
            } else {
                format!("{author_id} is not a recipient of this DM")
            },
        ));
    }
    Ok(author_id)
}

/// Validates one command definition as Discord's create-command route does.
pub(super) fn plan_command(
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
    let mut checks = crate::backend::error::Validator::default();
    let command = crate::backend::services::commands::build_command(
        &mut checks,
        "",
        &definition,
        application_id,
        guild_id,
    );
    if let Err(crate::backend::error::ApiError::InvalidForm(errors)) = checks.finish() {
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
