//! What the official client keeps per account, beside the entities bots see: relationships,
//! read states, notification settings per guild, notes, MFA and the settings versions. These
//! are the store types the user REST routes write and the user gateway (READY, its events)
//! reads. Each type serializes to Discord's wire shape (userdoccers' tables), so a route or
//! READY renders it with `serde_json::to_value` and adds only what lives elsewhere (a
//! relationship's `user` object).
use serde::{Deserialize, Serialize};

use super::snowflake::Snowflake;

/// Relationship types (userdoccers `relationships.mdx`).
// The whole vocabulary of the wire, including values no route produces yet.
#[allow(dead_code)]
pub(crate) mod relationship_type {
    /// Friends both ways.
    pub(crate) const FRIEND: u8 = 1;
    /// The owner blocked the other user.
    pub(crate) const BLOCKED: u8 = 2;
    /// The other user sent the owner a friend request.
    pub(crate) const INCOMING_REQUEST: u8 = 3;
    /// The owner sent the other user a friend request.
    pub(crate) const OUTGOING_REQUEST: u8 = 4;
    /// A user the owner talks to often (affinity), not a friend.
    pub(crate) const IMPLICIT: u8 = 5;
}

/// One side of a relationship, stored under `(owner, other user)`. Both sides are stored: a
/// friend request is OUTGOING_REQUEST under the sender and INCOMING_REQUEST under the target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Relationship {
    /// The other user's id (the wire's `id` and `user_id`).
    pub id: Snowflake,
    /// One of [`relationship_type`].
    #[serde(rename = "type")]
    pub kind: u8,
    /// The owner's private nickname for the other user.
    #[serde(default)]
    pub nickname: Option<String>,
    /// When the relationship reached its current type (ISO 8601).
    pub since: String,
    /// An incoming request Discord classified as spam.
    #[serde(default)]
    pub is_spam_request: bool,
    /// An incoming request from someone with no mutual guild or friend.
    #[serde(default)]
    pub stranger_request: bool,
    /// The owner ignores this user.
    #[serde(default)]
    pub user_ignored: bool,
}

/// Read-state types (userdoccers `read-state.mdx`).
// The whole vocabulary of the wire, including values no route produces yet.
#[allow(dead_code)]
pub(crate) mod read_state_type {
    /// A channel's messages (`last_message_id`, `mention_count`).
    pub(crate) const CHANNEL: u8 = 0;
    /// A guild's scheduled events.
    pub(crate) const GUILD_EVENT: u8 = 1;
    /// The notification centre.
    pub(crate) const NOTIFICATION_CENTER: u8 = 2;
    /// A guild's home.
    pub(crate) const GUILD_HOME: u8 = 3;
    /// A guild's onboarding questions.
    pub(crate) const GUILD_ONBOARDING_QUESTION: u8 = 4;
    /// Message requests.
    pub(crate) const MESSAGE_REQUESTS: u8 = 5;
}

/// A user's read state of one resource, stored under `(user, read_state_type, resource id)`.
/// Channel read states use `last_message_id`/`mention_count`; the others use
/// `last_acked_id`/`badge_count` (the wire omits the pair that does not apply).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub(crate) struct ReadState {
    /// The channel, guild or user id the state is for.
    pub id: Snowflake,
    /// One of [`read_state_type`].
    #[serde(default)]
    pub read_state_type: u8,
    /// The last acknowledged message (channel read states).
    #[serde(default)]
    pub last_message_id: Option<Snowflake>,
    /// The last acknowledged entity (other read states).
    #[serde(default)]
    pub last_acked_id: Option<Snowflake>,
    /// Unread mentions since the last ack (channel read states).
    #[serde(default)]
    pub mention_count: u32,
    /// Unread badges since the last ack (other read states).
    #[serde(default)]
    pub badge_count: u32,
    /// When the last acknowledged pin was pinned (ISO 8601).
    #[serde(default)]
    pub last_pin_timestamp: Option<String>,
    /// Read-state flags (IS_GUILD_CHANNEL 1, IS_THREAD 2, IS_MENTION_LOW_IMPORTANCE 4).
    #[serde(default)]
    pub flags: u32,
    /// Days since the Discord epoch when the resource was last viewed.
    #[serde(default)]
    pub last_viewed: Option<u32>,
}

/// A temporary mute's end (`mute_config`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub(crate) struct MuteConfig {
    /// When the mute ends (ISO 8601); none: until unmuted.
    #[serde(default)]
    pub end_time: Option<String>,
    /// The window the user picked, in seconds (-1: until unmuted).
    #[serde(default)]
    pub selected_time_window: i64,
}

/// A channel's override inside [`UserGuildSettings`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub(crate) struct ChannelOverride {
    /// The channel.
    pub channel_id: Snowflake,
    /// Muted.
    #[serde(default)]
    pub muted: bool,
    /// When the mute ends.
    #[serde(default)]
    pub mute_config: Option<MuteConfig>,
    /// 0 all messages, 1 only mentions, 2 nothing, 3 inherit from the guild.
    #[serde(default = "inherit_notifications")]
    pub message_notifications: u8,
    /// Collapsed in the channel list.
    #[serde(default)]
    pub collapsed: bool,
    /// Channel override flags.
    #[serde(default)]
    pub flags: u64,
}

fn inherit_notifications() -> u8 {
    3
}

/// A user's notification settings for one guild (or for DMs), stored under `(user, guild id or
/// 0)`; the wire's `guild_id` is null for DMs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct UserGuildSettings {
    /// The guild; none for the DM settings (`/users/@me/guilds/@me/settings`).
    pub guild_id: Option<Snowflake>,
    /// Muted.
    #[serde(default)]
    pub muted: bool,
    /// When the mute ends.
    #[serde(default)]
    pub mute_config: Option<MuteConfig>,
    /// 0 all messages, 1 only mentions, 2 nothing, 3 the guild's default.
    #[serde(default = "inherit_notifications")]
    pub message_notifications: u8,
    /// @everyone and @here do not notify.
    #[serde(default)]
    pub suppress_everyone: bool,
    /// Role mentions do not notify.
    #[serde(default)]
    pub suppress_roles: bool,
    /// Push notifications on mobile.
    #[serde(default = "yes")]
    pub mobile_push: bool,
    /// Muted channels hidden.
    #[serde(default)]
    pub hide_muted_channels: bool,
    /// 0 default, 1 disabled, 2 enabled.
    #[serde(default)]
    pub notify_highlights: u8,
    /// Scheduled events do not badge.
    #[serde(default)]
    pub mute_scheduled_events: bool,
    /// User guild settings flags.
    #[serde(default)]
    pub flags: u64,
    /// Per-channel overrides.
    #[serde(default)]
    pub channel_overrides: Vec<ChannelOverride>,
    /// Bumped on every change (READY's versioned shape and the update event carry it).
    #[serde(default)]
    pub version: u64,
}

fn yes() -> bool {
    true
}

impl Default for UserGuildSettings {
    /// Discord's defaults, the same as a stored row with every field missing (notifications
    /// inherit from the guild, mobile push on).
    fn default() -> Self {
        UserGuildSettings {
            guild_id: None,
            muted: false,
            mute_config: None,
            message_notifications: inherit_notifications(),
            suppress_everyone: false,
            suppress_roles: false,
            mobile_push: true,
            hide_muted_channels: false,
            notify_highlights: 0,
            mute_scheduled_events: false,
            flags: 0,
            channel_overrides: Vec::new(),
            version: 0,
        }
    }
}

/// A user's second factor, stored by user id. Present only once TOTP is enabled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub(crate) struct MfaState {
    /// The TOTP secret, base32 (RFC 4648, no padding) as authenticator apps take it.
    pub totp_secret: String,
    /// One-time backup codes.
    #[serde(default)]
    pub backup_codes: Vec<BackupCode>,
    /// The user's verified phone number (E.164), where SMS codes would go.
    #[serde(default)]
    pub phone: Option<String>,
    /// SMS codes are a second factor too (needs TOTP and a phone, as on Discord).
    #[serde(default)]
    pub sms_enabled: bool,
    /// The code an SMS "carries": set by the fixture or the control API, or drawn when the
    /// first one is asked for. No SMS is ever sent.
    #[serde(default)]
    pub sms_code: Option<String>,
}

/// A registered WebAuthn authenticator (a security key or passkey), stored under
/// `(user, id)`. Only ES256 (P-256) keys are registered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct WebauthnKey {
    /// The authenticator's id (a snowflake, as Discord's).
    pub id: Snowflake,
    /// Whose key it is.
    pub user_id: Snowflake,
    /// The name the user gave it (1-32 characters).
    pub name: String,
    /// The credential id the authenticator chose, base64url without padding.
    pub credential_id: String,
    /// The P-256 public key, uncompressed SEC1 (`04 || x || y`), base64url without padding.
    pub public_key: String,
    /// The signature counter last seen (0 for authenticators that keep none).
    #[serde(default)]
    pub sign_count: u32,
    /// When it last finished a login (ms since the Unix epoch), if ever.
    #[serde(default)]
    pub last_used_ms: Option<u64>,
}

/// One MFA backup code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct BackupCode {
    /// The eight characters the user types.
    pub code: String,
    /// Used already (a used code no longer logs in).
    #[serde(default)]
    pub consumed: bool,
}

/// Settings-proto kinds, the `{type}` of `/users/@me/settings-proto/{type}`.
// The whole vocabulary of the wire, including values no route produces yet.
#[allow(dead_code)]
pub(crate) mod settings_proto_type {
    /// PreloadedUserSettings.
    pub(crate) const PRELOADED: u8 = 1;
    /// FrecencyUserSettings.
    pub(crate) const FRECENCY: u8 = 2;
    /// TestSettings.
    pub(crate) const TEST: u8 = 3;
}

/// Per-user version counters of the versioned READY shapes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub(crate) struct AccountVersions {
    /// Bumped on every read-state change (`read_state.version`).
    #[serde(default)]
    pub read_state: u64,
    /// Bumped on every user-guild-settings change (`user_guild_settings.version`).
    #[serde(default)]
    pub user_guild_settings: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_shapes_match_userdoccers_field_names() {
        let relationship = Relationship {
            id: Snowflake(7),
            kind: relationship_type::FRIEND,
            nickname: None,
            since: "2026-01-01T00:00:00.000000+00:00".into(),
            is_spam_request: false,
            stranger_request: false,
            user_ignored: false,
        };
        let value = serde_json::to_value(&relationship).unwrap();
        assert_eq!(value["id"], json!("7"));
        assert_eq!(value["type"], json!(1));
        let settings: UserGuildSettings =
            serde_json::from_value(json!({"guild_id": null})).unwrap();
        assert_eq!(settings.message_notifications, 3);
        assert!(settings.mobile_push);
        let state: ReadState = serde_json::from_value(json!({"id": "9"})).unwrap();
        assert_eq!(state.read_state_type, read_state_type::CHANNEL);
        assert_eq!(state.mention_count, 0);
    }
}
