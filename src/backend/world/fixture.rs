//! The fixture file's shape: what `serve --fixture` reads, field by field.
use schemars::JsonSchema;
use serde::Deserialize;

use crate::backend::snowflake::Snowflake;

#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "discord-mitm fixture",
    description = "The world `discord-mitm serve --fixture FILE` starts with: users and bots, guilds, DMs and the official client's account state. Ids are snowflakes (strings of digits or integers); whatever is left out takes Discord's defaults."
)]
pub(super) struct Fixture {
    /// The JSON Schema this file follows, for editors; `serve` ignores it.
    #[serde(rename = "$schema", default)]
    pub _schema: Option<String>,
    #[serde(default)]
    pub users: Vec<FixtureUser>,
    #[serde(default)]
    pub guilds: Vec<FixtureGuild>,
    /// Direct-message channels between two users.
    #[serde(default)]
    pub dms: Vec<FixtureDm>,
    /// Group DMs: an owner and up to nine others.
    #[serde(default)]
    pub group_dms: Vec<FixtureGroupDm>,
    /// Friends, blocks and requests between users.
    #[serde(default)]
    pub relationships: Vec<super::account_fixture::FixtureRelationship>,
    /// Notes users keep on each other.
    #[serde(default)]
    pub notes: Vec<super::account_fixture::FixtureNote>,
    /// How far users have read channels.
    #[serde(default)]
    pub read_states: Vec<super::account_fixture::FixtureReadState>,
}

/// A DM channel between two users of the fixture.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureDm {
    #[serde(default)]
    pub id: Option<Snowflake>,
    /// Exactly two user ids.
    pub recipients: Vec<Snowflake>,
    #[serde(default)]
    pub messages: Vec<FixtureMessage>,
}

/// A group DM between users of the fixture.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureGroupDm {
    #[serde(default)]
    pub id: Option<Snowflake>,
    /// The group's name (Discord shows the recipients' names when it has none).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
    /// Who owns the group; one of `recipients`.
    pub owner_id: Snowflake,
    /// Everyone in the group, the owner included: 2 to 10 user ids.
    pub recipients: Vec<Snowflake>,
    #[serde(default)]
    pub messages: Vec<FixtureMessage>,
}

/// A user (or bot) in a fixture.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureUser {
    pub id: Snowflake,
    pub username: String,
    #[serde(default)]
    pub global_name: Option<String>,
    #[serde(default)]
    pub discriminator: Option<String>,
    /// The avatar: an image file (path relative to this fixture file), a data URI, or the
    /// hash of an image real Discord serves.
    #[serde(default)]
    pub avatar: Option<String>,
    /// The profile banner, given like `avatar`.
    #[serde(default)]
    pub banner: Option<String>,
    #[serde(default)]
    pub bot: bool,
    #[serde(default)]
    pub system: bool,
    #[serde(default)]
    pub token: Option<String>,
    /// A real Discord credential forwarded requests of this user carry (`serve --listen`);
    /// kept in memory only, never written to the data directory or a recording.
    #[serde(default)]
    pub upstream_token: Option<String>,
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
    /// TOTP secret and backup codes: the user logs in with MFA.
    #[serde(default)]
    pub mfa: Option<super::account_fixture::FixtureMfa>,
    /// Legacy settings (`/users/@me/settings` keys), mirrored into the settings proto.
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
}

/// A bot's application settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureApplication {
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
#[derive(Debug, Deserialize, Clone, JsonSchema)]
#[serde(untagged)]
pub(super) enum PermissionValue {
    Text(String),
    Number(u64),
}

impl PermissionValue {
    pub(super) fn bits(&self) -> Option<u64> {
        match self {
            PermissionValue::Text(text) => text.parse().ok(),
            PermissionValue::Number(n) => Some(*n),
        }
    }
}

/// A guild in a fixture.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureGuild {
    pub id: Snowflake,
    pub name: String,
    pub owner_id: Snowflake,
    /// The icon: an image file (path relative to this fixture file), a data URI, or the hash
    /// of an image real Discord serves.
    #[serde(default)]
    pub icon: Option<String>,
    /// The banner, given like `icon`.
    #[serde(default)]
    pub banner: Option<String>,
    /// The invite splash, given like `icon`.
    #[serde(default)]
    pub splash: Option<String>,
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
    /// Custom stickers of the guild.
    #[serde(default)]
    pub stickers: Vec<FixtureSticker>,
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureThread {
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
    /// Tags of a forum or media parent (their ids, from its `available_tags`), at most 5.
    #[serde(default)]
    pub applied_tags: Vec<Snowflake>,
    #[serde(default)]
    pub messages: Vec<FixtureMessage>,
}

/// A channel webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureWebhook {
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureBan {
    pub user_id: Snowflake,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An invite to a channel of the guild.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureInvite {
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureRole {
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureChannel {
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
    /// A forum or media channel's tags (`{"id", "name", "moderated", "emoji_id",
    /// "emoji_name"}`), at most 20.
    #[serde(default)]
    pub available_tags: Vec<FixtureForumTag>,
    #[serde(default)]
    pub messages: Vec<FixtureMessage>,
}

/// A tag a forum or media channel offers its posts.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureForumTag {
    pub id: Snowflake,
    pub name: String,
    /// Only members who may manage threads can apply it.
    #[serde(default)]
    pub moderated: bool,
    #[serde(default)]
    pub emoji_id: Option<Snowflake>,
    #[serde(default)]
    pub emoji_name: Option<String>,
}

/// A permission overwrite in a fixture channel.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureOverwrite {
    pub id: Snowflake,
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub allow: Option<PermissionValue>,
    #[serde(default)]
    pub deny: Option<PermissionValue>,
}

/// A message pre-seeded in a fixture channel.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureMessage {
    #[serde(default)]
    pub id: Option<Snowflake>,
    /// Who wrote it; a webhook message's author is its `webhook` instead.
    #[serde(default)]
    pub author_id: Option<Snowflake>,
    /// Discord's message type: 0 (default) or 19 (reply) for what people write; a system
    /// message's type otherwise (7 member joined, 6 pinned, 18 thread created, …), whose
    /// content may be empty.
    #[serde(rename = "type", default)]
    pub kind: u8,
    /// Posted by a webhook of the guild's channel (guild channels only): the author as the
    /// message shows it.
    #[serde(default)]
    pub webhook: Option<FixtureWebhookAuthor>,
    /// May be empty when the message carries attachments, embeds or stickers.
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub pinned: bool,
    /// When it was last edited (ISO 8601); its creation time is its id's.
    #[serde(default)]
    pub edited_timestamp: Option<String>,
    /// Attachment objects as Discord sends them (metadata only: the files are not served).
    #[serde(default)]
    pub attachments: Vec<serde_json::Value>,
    /// Embed objects as Discord sends them.
    #[serde(default)]
    pub embeds: Vec<serde_json::Value>,
    /// Sticker items (`{"id", "name", "format_type"}`).
    #[serde(default)]
    pub sticker_items: Vec<serde_json::Value>,
}

/// The author a webhook message shows.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureWebhookAuthor {
    /// The webhook's id (the message's `webhook_id` and its author's id).
    pub id: Snowflake,
    pub username: String,
    #[serde(default)]
    pub avatar: Option<String>,
}

/// A member of a fixture guild.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureMember {
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureEmoji {
    pub id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub animated: bool,
}

/// A custom sticker of a fixture guild.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FixtureSticker {
    pub id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Autocomplete tags (Discord: the related emoji's name).
    #[serde(default)]
    pub tags: String,
    /// 1 PNG (default), 2 APNG, 3 Lottie, 4 GIF.
    #[serde(default = "png")]
    pub format_type: u8,
}

fn png() -> u8 {
    1
}
