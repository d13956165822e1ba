//! Stored entities. Each serializes as (close to) its Discord v10 wire shape; wire-only fields
//! that depend on other entities (a message's author, a member's user) are added by `render`.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::snowflake::Snowflake;

fn is_false(value: &bool) -> bool {
    !*value
}

/// A user account (human or bot). Secrets (token, password) live in `Credentials`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: Snowflake,
    pub username: String,
    #[serde(default = "zero_discriminator")]
    pub discriminator: String,
    #[serde(default)]
    pub global_name: Option<String>,
    #[serde(default)]
    pub avatar: Option<String>,
    #[serde(default)]
    pub banner: Option<String>,
    #[serde(default)]
    pub accent_color: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub bot: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub system: bool,
    #[serde(default)]
    pub mfa_enabled: bool,
    #[serde(default = "default_locale")]
    pub locale: String,
    #[serde(default)]
    pub verified: bool,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub flags: u64,
    #[serde(default)]
    pub premium_type: u8,
    #[serde(default)]
    pub public_flags: u64,
    #[serde(default, skip_serializing_if = "Map::is_empty", flatten)]
    pub extra: Map<String, Value>,
}

fn zero_discriminator() -> String {
    "0".to_string()
}

fn default_locale() -> String {
    "en-US".to_string()
}

impl User {
    /// A new account with Discord's defaults.
    pub fn new(id: Snowflake, username: &str, bot: bool) -> Self {
        User {
            id,
            username: username.to_string(),
            discriminator: zero_discriminator(),
            global_name: None,
            avatar: None,
            banner: None,
            accent_color: None,
            bot,
            system: false,
            mfa_enabled: false,
            locale: default_locale(),
            verified: true,
            email: None,
            flags: 0,
            premium_type: 0,
            public_flags: 0,
            extra: Map::new(),
        }
    }
}

/// How a user signs in: a token (both) and, for humans, email + salted password hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Credentials {
    pub user_id: Snowflake,
    pub token: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub password_salt: Option<String>,
    #[serde(default)]
    pub password_hash: Option<String>,
}

/// A bot's application (its id equals the bot user's id, as for bots Discord creates).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Application {
    pub id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default = "yes")]
    pub bot_public: bool,
    #[serde(default)]
    pub bot_require_code_grant: bool,
    #[serde(default)]
    pub flags: u64,
    pub owner_id: Snowflake,
    pub bot_id: Snowflake,
    #[serde(default)]
    pub verify_key: String,
    #[serde(default)]
    pub privileged_intents_explicit: bool,
}

fn yes() -> bool {
    true
}

/// Application flags that allow privileged intents (the "limited" variants are for small bots).
pub(crate) mod app_flags {
    pub(crate) const GATEWAY_PRESENCE: u64 = 1 << 12;
    pub(crate) const GATEWAY_PRESENCE_LIMITED: u64 = 1 << 13;
    pub(crate) const GATEWAY_GUILD_MEMBERS: u64 = 1 << 14;
    pub(crate) const GATEWAY_GUILD_MEMBERS_LIMITED: u64 = 1 << 15;
    pub(crate) const GATEWAY_MESSAGE_CONTENT: u64 = 1 << 18;
    pub(crate) const GATEWAY_MESSAGE_CONTENT_LIMITED: u64 = 1 << 19;
    /// What a fixture bot gets by default: a bot in under 100 servers with every toggle on.
    pub(crate) const ALL_LIMITED: u64 =
        GATEWAY_PRESENCE_LIMITED | GATEWAY_GUILD_MEMBERS_LIMITED | GATEWAY_MESSAGE_CONTENT_LIMITED;
}

impl Application {
    /// Privileged gateway intents (GUILD_PRESENCES, GUILD_MEMBERS, MESSAGE_CONTENT) this
    /// application may identify with, derived from its flags as Discord does.
    pub fn allowed_privileged_intents(&self) -> u64 {
        use crate::gateway::intents;
        let mut allowed = 0;
        if self.flags & (app_flags::GATEWAY_PRESENCE | app_flags::GATEWAY_PRESENCE_LIMITED) != 0 {
            allowed |= intents::GUILD_PRESENCES;
        }
        if self.flags
            & (app_flags::GATEWAY_GUILD_MEMBERS | app_flags::GATEWAY_GUILD_MEMBERS_LIMITED)
            != 0
        {
            allowed |= intents::GUILD_MEMBERS;
        }
        if self.flags
            & (app_flags::GATEWAY_MESSAGE_CONTENT | app_flags::GATEWAY_MESSAGE_CONTENT_LIMITED)
            != 0
        {
            allowed |= intents::MESSAGE_CONTENT;
        }
        allowed
    }
}

/// A guild's own settings; roles, channels, members and emojis are stored separately.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Guild {
    pub id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub splash: Option<String>,
    #[serde(default)]
    pub discovery_splash: Option<String>,
    #[serde(default)]
    pub banner: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub owner_id: Snowflake,
    #[serde(default)]
    pub afk_channel_id: Option<Snowflake>,
    #[serde(default = "default_afk_timeout")]
    pub afk_timeout: u32,
    #[serde(default)]
    pub verification_level: u8,
    #[serde(default)]
    pub default_message_notifications: u8,
    #[serde(default)]
    pub explicit_content_filter: u8,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub mfa_level: u8,
    #[serde(default)]
    pub system_channel_id: Option<Snowflake>,
    #[serde(default)]
    pub system_channel_flags: u64,
    #[serde(default)]
    pub rules_channel_id: Option<Snowflake>,
    #[serde(default)]
    pub public_updates_channel_id: Option<Snowflake>,
    #[serde(default)]
    pub safety_alerts_channel_id: Option<Snowflake>,
    #[serde(default)]
    pub vanity_url_code: Option<String>,
    #[serde(default)]
    pub premium_tier: u8,
    #[serde(default)]
    pub premium_subscription_count: u32,
    #[serde(default = "default_locale")]
    pub preferred_locale: String,
    #[serde(default)]
    pub nsfw_level: u8,
    #[serde(default)]
    pub premium_progress_bar_enabled: bool,
    #[serde(default)]
    pub widget_enabled: bool,
    #[serde(default)]
    pub widget_channel_id: Option<Snowflake>,
    #[serde(default)]
    pub application_id: Option<Snowflake>,
    #[serde(default = "default_max_members")]
    pub max_members: u32,
    #[serde(default = "default_max_video")]
    pub max_video_channel_users: u32,
}

fn default_afk_timeout() -> u32 {
    300
}
fn default_max_members() -> u32 {
    500_000
}
fn default_max_video() -> u32 {
    25
}

impl Guild {
    /// A new guild with Discord's defaults.
    pub fn new(id: Snowflake, name: &str, owner_id: Snowflake) -> Self {
        Guild {
            id,
            name: name.to_string(),
            icon: None,
            splash: None,
            discovery_splash: None,
            banner: None,
            description: None,
            owner_id,
            afk_channel_id: None,
            afk_timeout: default_afk_timeout(),
            verification_level: 0,
            default_message_notifications: 0,
            explicit_content_filter: 0,
            features: Vec::new(),
            mfa_level: 0,
            system_channel_id: None,
            system_channel_flags: 0,
            rules_channel_id: None,
            public_updates_channel_id: None,
            safety_alerts_channel_id: None,
            vanity_url_code: None,
            premium_tier: 0,
            premium_subscription_count: 0,
            preferred_locale: default_locale(),
            nsfw_level: 0,
            premium_progress_bar_enabled: false,
            widget_enabled: false,
            widget_channel_id: None,
            application_id: None,
            max_members: default_max_members(),
            max_video_channel_users: default_max_video(),
        }
    }
}

/// A role's colours (Discord's newer gradient-capable shape, mirrored from `color`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RoleColors {
    pub primary_color: u32,
    pub secondary_color: Option<u32>,
    pub tertiary_color: Option<u32>,
}

/// A guild role; `permissions` is a decimal string on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Role {
    pub id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub color: u32,
    #[serde(default)]
    pub colors: RoleColors,
    #[serde(default)]
    pub hoist: bool,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub unicode_emoji: Option<String>,
    #[serde(default)]
    pub position: i64,
    #[serde(default = "zero_string")]
    pub permissions: String,
    #[serde(default)]
    pub managed: bool,
    #[serde(default)]
    pub mentionable: bool,
    #[serde(default)]
    pub flags: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Value>,
}

fn zero_string() -> String {
    "0".to_string()
}

impl Role {
    /// The role's permission bits (0 if the stored string is somehow not a number).
    pub fn permission_bits(&self) -> u64 {
        self.permissions.parse().unwrap_or(0)
    }
}

/// A permission overwrite on a channel: type 0 = role, 1 = member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Overwrite {
    pub id: Snowflake,
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default = "zero_string")]
    pub allow: String,
    #[serde(default = "zero_string")]
    pub deny: String,
}

impl Overwrite {
    /// (allow, deny) bits.
    pub fn bits(&self) -> (u64, u64) {
        (
            self.allow.parse().unwrap_or(0),
            self.deny.parse().unwrap_or(0),
        )
    }
}

/// Channel types, as numbered by Discord.
pub(crate) mod channel_type {
    pub(crate) const GUILD_TEXT: u8 = 0;
    pub(crate) const DM: u8 = 1;
    pub(crate) const GUILD_VOICE: u8 = 2;
    pub(crate) const GROUP_DM: u8 = 3;
    pub(crate) const GUILD_CATEGORY: u8 = 4;
    pub(crate) const GUILD_ANNOUNCEMENT: u8 = 5;
    pub(crate) const ANNOUNCEMENT_THREAD: u8 = 10;
    pub(crate) const PUBLIC_THREAD: u8 = 11;
    pub(crate) const PRIVATE_THREAD: u8 = 12;
    pub(crate) const GUILD_STAGE_VOICE: u8 = 13;
    pub(crate) const GUILD_DIRECTORY: u8 = 14;
    pub(crate) const GUILD_FORUM: u8 = 15;
    pub(crate) const GUILD_MEDIA: u8 = 16;

    /// Thread channel types.
    pub(crate) fn is_thread(kind: u8) -> bool {
        matches!(kind, ANNOUNCEMENT_THREAD | PUBLIC_THREAD | PRIVATE_THREAD)
    }

    /// Types that carry messages directly.
    pub(crate) fn is_textual(kind: u8) -> bool {
        matches!(
            kind,
            GUILD_TEXT | DM | GROUP_DM | GUILD_ANNOUNCEMENT | GUILD_VOICE | GUILD_STAGE_VOICE
        ) || is_thread(kind)
    }

    /// Types a guild may hold (as opposed to DMs).
    pub(crate) fn is_guild_creatable(kind: u8) -> bool {
        matches!(
            kind,
            GUILD_TEXT
                | GUILD_VOICE
                | GUILD_CATEGORY
                | GUILD_ANNOUNCEMENT
                | GUILD_STAGE_VOICE
                | GUILD_FORUM
                | GUILD_MEDIA
        )
    }
}

/// Thread-only metadata.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThreadMetadata {
    pub archived: bool,
    pub auto_archive_duration: u32,
    pub archive_timestamp: String,
    pub locked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_timestamp: Option<String>,
}

/// A channel of any type; fields a type does not use stay `None` and are not sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Channel {
    pub id: Snowflake,
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_overwrites: Option<Vec<Overwrite>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsfw: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_user: Option<u32>,
    /// DM participants (ids; rendered as user objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_ids: Option<Vec<Snowflake>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtc_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_quality_mode: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_message_sent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_metadata: Option<ThreadMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_auto_archive_duration: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_thread_rate_limit_per_user: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_tags: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_tags: Option<Vec<Snowflake>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_reaction_emoji: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_sort_order: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_forum_layout: Option<u8>,
    #[serde(default)]
    pub flags: u64,
}

impl Channel {
    /// A bare channel of `kind` with every optional field unset.
    pub fn new(id: Snowflake, kind: u8) -> Self {
        Channel {
            id,
            kind,
            guild_id: None,
            position: None,
            permission_overwrites: None,
            name: None,
            topic: None,
            nsfw: None,
            bitrate: None,
            user_limit: None,
            rate_limit_per_user: None,
            recipient_ids: None,
            icon: None,
            owner_id: None,
            parent_id: None,
            rtc_region: None,
            video_quality_mode: None,
            message_count: None,
            member_count: None,
            total_message_sent: None,
            thread_metadata: None,
            default_auto_archive_duration: None,
            default_thread_rate_limit_per_user: None,
            available_tags: None,
            applied_tags: None,
            default_reaction_emoji: None,
            default_sort_order: None,
            default_forum_layout: None,
            flags: 0,
        }
    }

    /// A guild channel of `kind` with the per-type defaults Discord fills in.
    pub fn new_in_guild(id: Snowflake, guild_id: Snowflake, kind: u8, name: &str) -> Self {
        use channel_type::*;
        let mut channel = Channel::new(id, kind);
        channel.guild_id = Some(guild_id);
        channel.name = Some(name.to_string());
        channel.position = Some(0);
        channel.permission_overwrites = Some(Vec::new());
        match kind {
            GUILD_VOICE | GUILD_STAGE_VOICE => {
                channel.bitrate = Some(64_000);
                channel.user_limit = Some(0);
                channel.rate_limit_per_user = Some(0);
                channel.nsfw = Some(false);
            }
            GUILD_CATEGORY => {}
            GUILD_FORUM | GUILD_MEDIA => {
                channel.nsfw = Some(false);
                channel.rate_limit_per_user = Some(0);
                channel.available_tags = Some(Vec::new());
                channel.default_sort_order = None;
                channel.default_forum_layout = Some(0);
                channel.default_thread_rate_limit_per_user = Some(0);
            }
            _ => {
                channel.nsfw = Some(false);
                channel.rate_limit_per_user = Some(0);
            }
        }
        channel
    }
}

/// A guild member (the user object is added when rendering).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub user_id: Snowflake,
    #[serde(default)]
    pub nick: Option<String>,
    #[serde(default)]
    pub avatar: Option<String>,
    #[serde(default)]
    pub banner: Option<String>,
    #[serde(default)]
    pub roles: Vec<Snowflake>,
    pub joined_at: String,
    #[serde(default)]
    pub premium_since: Option<String>,
    #[serde(default)]
    pub deaf: bool,
    #[serde(default)]
    pub mute: bool,
    #[serde(default)]
    pub flags: u64,
    #[serde(default)]
    pub pending: bool,
    #[serde(default)]
    pub communication_disabled_until: Option<String>,
}

impl Member {
    /// A member who joined at `joined_at_ms` with no roles.
    pub fn new(user_id: Snowflake, joined_at_ms: u64) -> Self {
        Member {
            user_id,
            nick: None,
            avatar: None,
            banner: None,
            roles: Vec::new(),
            joined_at: super::snowflake::iso8601_from_ms(joined_at_ms),
            premium_since: None,
            deaf: false,
            mute: false,
            flags: 0,
            pending: false,
            communication_disabled_until: None,
        }
    }

    /// Unix ms until which the member is timed out, if in the future of `now_ms`.
    pub fn timed_out_until(&self, now_ms: u64) -> Option<u64> {
        let until =
            super::snowflake::parse_iso8601_ms(self.communication_disabled_until.as_deref()?)?;
        (until > now_ms).then_some(until)
    }
}

/// A reply/forward pointer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageReference {
    #[serde(default, rename = "type")]
    pub kind: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<Snowflake>,
}

impl MessageReference {
    /// A plain reply-type (0) reference to `message`.
    pub fn to(message: &Message) -> Self {
        Self {
            kind: 0,
            message_id: Some(message.id),
            channel_id: Some(message.channel_id),
            guild_id: message.guild_id,
        }
    }
}

/// Who wrote a message: a user account, or a webhook with its own display name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookAuthor {
    pub webhook_id: Snowflake,
    pub username: String,
    #[serde(default)]
    pub avatar: Option<String>,
    /// For an interaction's response or followup: its `interaction_metadata` as of creation
    /// (such messages are authored by the bot user, not by a webhook pseudo-user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interaction_metadata: Option<serde_json::Value>,
}

/// A message. Author, mentions and reactions are resolved when rendering.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub id: Snowflake,
    pub channel_id: Snowflake,
    #[serde(default)]
    pub guild_id: Option<Snowflake>,
    pub author_id: Snowflake,
    #[serde(default)]
    pub webhook: Option<WebhookAuthor>,
    #[serde(rename = "type", default)]
    pub kind: u8,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub edited_timestamp: Option<String>,
    #[serde(default)]
    pub tts: bool,
    #[serde(default)]
    pub mention_everyone: bool,
    #[serde(default)]
    pub mentions: Vec<Snowflake>,
    #[serde(default)]
    pub mention_roles: Vec<Snowflake>,
    #[serde(default)]
    pub attachments: Vec<Value>,
    #[serde(default)]
    pub embeds: Vec<Value>,
    #[serde(default)]
    pub components: Vec<Value>,
    #[serde(default)]
    pub sticker_items: Vec<Value>,
    #[serde(default)]
    pub nonce: Option<Value>,
    #[serde(default)]
    pub pinned: bool,
    #[serde(default)]
    pub flags: u64,
    #[serde(default)]
    pub message_reference: Option<MessageReference>,
    #[serde(default)]
    pub thread_id: Option<Snowflake>,
    #[serde(default)]
    pub application_id: Option<Snowflake>,
    /// The poll this message carries (its votes live in `extra.poll_votes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<Box<super::poll::Poll>>,
}

impl Message {
    /// An empty default message (type 0, no content) by `author_id` in a channel; callers set
    /// the fields they need with struct update syntax.
    pub fn new(
        id: Snowflake,
        channel_id: Snowflake,
        guild_id: Option<Snowflake>,
        author_id: Snowflake,
    ) -> Self {
        Self {
            id,
            channel_id,
            guild_id,
            author_id,
            webhook: None,
            kind: 0,
            content: String::new(),
            edited_timestamp: None,
            tts: false,
            mention_everyone: false,
            mentions: Vec::new(),
            mention_roles: Vec::new(),
            attachments: Vec::new(),
            embeds: Vec::new(),
            components: Vec::new(),
            sticker_items: Vec::new(),
            nonce: None,
            pinned: false,
            flags: 0,
            message_reference: None,
            thread_id: None,
            application_id: None,
            poll: None,
        }
    }
}

/// A guild ban.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ban {
    pub user_id: Snowflake,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An invite to a guild channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Invite {
    pub code: String,
    pub guild_id: Snowflake,
    pub channel_id: Snowflake,
    #[serde(default)]
    pub inviter_id: Option<Snowflake>,
    pub max_age: u32,
    pub max_uses: u32,
    pub temporary: bool,
    pub uses: u32,
    pub created_at_ms: u64,
}

impl Invite {
    /// Whether the invite can no longer be used at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        (self.max_age > 0 && now_ms > self.created_at_ms + u64::from(self.max_age) * 1000)
            || (self.max_uses > 0 && self.uses >= self.max_uses)
    }
}

/// A custom guild emoji.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Emoji {
    pub id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub roles: Vec<Snowflake>,
    #[serde(default)]
    pub creator_id: Option<Snowflake>,
    #[serde(default = "yes")]
    pub require_colons: bool,
    #[serde(default)]
    pub managed: bool,
    #[serde(default)]
    pub animated: bool,
    #[serde(default = "yes")]
    pub available: bool,
}

/// An incoming webhook on a guild channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Webhook {
    pub id: Snowflake,
    #[serde(rename = "type")]
    pub kind: u8,
    pub guild_id: Snowflake,
    pub channel_id: Snowflake,
    #[serde(default)]
    pub creator_id: Option<Snowflake>,
    pub name: String,
    #[serde(default)]
    pub avatar: Option<String>,
    pub token: String,
    #[serde(default)]
    pub application_id: Option<Snowflake>,
}

/// One change in an audit log entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditChange {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_value: Option<Value>,
}

/// An audit log entry (action types numbered as Discord's).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditLogEntry {
    pub id: Snowflake,
    pub guild_id: Snowflake,
    pub user_id: Option<Snowflake>,
    pub target_id: Option<Snowflake>,
    pub action_type: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AuditChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Audit log action types this backend records.
pub(crate) mod audit_action {
    pub(crate) const GUILD_UPDATE: u16 = 1;
    pub(crate) const CHANNEL_CREATE: u16 = 10;
    pub(crate) const CHANNEL_UPDATE: u16 = 11;
    pub(crate) const CHANNEL_DELETE: u16 = 12;
    pub(crate) const CHANNEL_OVERWRITE_CREATE: u16 = 13;
    pub(crate) const CHANNEL_OVERWRITE_UPDATE: u16 = 14;
    pub(crate) const CHANNEL_OVERWRITE_DELETE: u16 = 15;
    pub(crate) const MEMBER_KICK: u16 = 20;
    pub(crate) const MEMBER_BAN_ADD: u16 = 22;
    pub(crate) const MEMBER_BAN_REMOVE: u16 = 23;
    pub(crate) const MEMBER_UPDATE: u16 = 24;
    pub(crate) const MEMBER_ROLE_UPDATE: u16 = 25;
    pub(crate) const ROLE_CREATE: u16 = 30;
    pub(crate) const ROLE_UPDATE: u16 = 31;
    pub(crate) const ROLE_DELETE: u16 = 32;
    pub(crate) const INVITE_CREATE: u16 = 40;
    pub(crate) const INVITE_DELETE: u16 = 42;
    pub(crate) const WEBHOOK_CREATE: u16 = 50;
    pub(crate) const WEBHOOK_UPDATE: u16 = 51;
    pub(crate) const WEBHOOK_DELETE: u16 = 52;
    pub(crate) const EMOJI_CREATE: u16 = 60;
    pub(crate) const EMOJI_UPDATE: u16 = 61;
    pub(crate) const EMOJI_DELETE: u16 = 62;
    pub(crate) const MESSAGE_DELETE: u16 = 72;
    pub(crate) const MESSAGE_BULK_DELETE: u16 = 73;
    pub(crate) const MESSAGE_PIN: u16 = 74;
    pub(crate) const MESSAGE_UNPIN: u16 = 75;
    pub(crate) const THREAD_CREATE: u16 = 110;
    pub(crate) const THREAD_UPDATE: u16 = 111;
    pub(crate) const THREAD_DELETE: u16 = 112;
}

/// An application command (slash, user or message command), global or for one guild.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApplicationCommand {
    pub id: Snowflake,
    pub application_id: Snowflake,
    #[serde(default)]
    pub guild_id: Option<Snowflake>,
    #[serde(rename = "type")]
    pub kind: u8,
    pub name: String,
    #[serde(default)]
    pub name_localizations: Option<Map<String, Value>>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub description_localizations: Option<Map<String, Value>>,
    /// Options already validated and normalised to the response shape.
    #[serde(default)]
    pub options: Vec<Value>,
    #[serde(default)]
    pub default_member_permissions: Option<String>,
    #[serde(default)]
    pub dm_permission: Option<bool>,
    #[serde(default)]
    pub nsfw: bool,
    #[serde(default)]
    pub integration_types: Vec<u8>,
    #[serde(default)]
    pub contexts: Option<Vec<u8>>,
    /// Changes on every edit (a snowflake, as on Discord).
    pub version: Snowflake,
}

/// One entry of a command's permission overwrites in a guild.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandPermission {
    pub id: Snowflake,
    #[serde(rename = "type")]
    pub kind: u8,
    pub permission: bool,
}

/// A command's (or, with the application's id, every command's) permissions in one guild.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandPermissions {
    pub id: Snowflake,
    pub application_id: Snowflake,
    pub guild_id: Snowflake,
    pub permissions: Vec<CommandPermission>,
}

/// An interaction (a command invocation, component click or autocomplete request) and the
/// state of its response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Interaction {
    pub id: Snowflake,
    pub application_id: Snowflake,
    #[serde(rename = "type")]
    pub kind: u8,
    pub token: String,
    #[serde(default)]
    pub guild_id: Option<Snowflake>,
    pub channel_id: Snowflake,
    pub user_id: Snowflake,
    /// The interaction's `data` as sent in INTERACTION_CREATE.
    #[serde(default)]
    pub data: Value,
    /// The message a component lives on (component interactions).
    #[serde(default)]
    pub message_id: Option<Snowflake>,
    /// The callback type used to answer, once answered.
    #[serde(default)]
    pub response_type: Option<u8>,
    /// The message created by the callback (`@original`).
    #[serde(default)]
    pub original_message_id: Option<Snowflake>,
    /// Messages sent through the followup webhook.
    #[serde(default)]
    pub followup_ids: Vec<Snowflake>,
    /// When it was created (Unix ms, from the backend's clock); 0 in rows stored before this
    /// field existed, which then fall back to the id's timestamp.
    #[serde(default)]
    pub created_ms: u64,
    /// The callback's `data` for answers that leave no message (autocomplete choices, a modal).
    #[serde(default)]
    pub response_data: Option<Value>,
    /// For a modal submit: the interaction that opened the modal.
    #[serde(default)]
    pub opener_id: Option<Snowflake>,
}

/// A guild scheduled event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScheduledEvent {
    pub id: Snowflake,
    pub guild_id: Snowflake,
    #[serde(default)]
    pub channel_id: Option<Snowflake>,
    pub creator_id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub scheduled_start_time: String,
    #[serde(default)]
    pub scheduled_end_time: Option<String>,
    pub privacy_level: u8,
    pub status: u8,
    pub entity_type: u8,
    #[serde(default)]
    pub entity_metadata: Option<Value>,
    #[serde(default)]
    pub image: Option<String>,
    /// How the event repeats (stored normalised; see `routes::event_exceptions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence_rule: Option<Value>,
}

/// A live stage in a stage channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageInstance {
    pub id: Snowflake,
    pub guild_id: Snowflake,
    pub channel_id: Snowflake,
    pub topic: String,
    pub privacy_level: u8,
    #[serde(default)]
    pub guild_scheduled_event_id: Option<Snowflake>,
}

/// An auto-moderation rule; trigger metadata and actions are stored normalised.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AutoModRule {
    pub id: Snowflake,
    pub guild_id: Snowflake,
    pub creator_id: Snowflake,
    pub name: String,
    pub event_type: u8,
    pub trigger_type: u8,
    pub trigger_metadata: Value,
    pub actions: Vec<Value>,
    pub enabled: bool,
    #[serde(default)]
    pub exempt_roles: Vec<Snowflake>,
    #[serde(default)]
    pub exempt_channels: Vec<Snowflake>,
}
