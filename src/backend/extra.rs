//! Records and sled tables of the route families added after the first cut of `serve`:
//! guild stickers, soundboard sounds, guild templates, welcome screens, onboarding,
//! application emojis, entitlements and role connections. Kept apart from `model`/`store` so
//! those stay small; every record serializes as JSON like the rest of the entity store.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::snowflake::Snowflake;

/// A guild sticker (standard stickers come from the built-in catalog, not the store).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sticker {
    pub id: Snowflake,
    pub guild_id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub tags: String,
    pub format_type: u8,
    #[serde(default = "yes")]
    pub available: bool,
    pub creator_id: Snowflake,
}

/// A guild soundboard sound.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SoundboardSound {
    pub id: Snowflake,
    pub guild_id: Snowflake,
    pub name: String,
    pub volume: f64,
    #[serde(default)]
    pub emoji_id: Option<Snowflake>,
    #[serde(default)]
    pub emoji_name: Option<String>,
    #[serde(default = "yes")]
    pub available: bool,
    pub creator_id: Snowflake,
}

/// A guild template: a snapshot of a guild's settings, roles and channels behind a code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GuildTemplate {
    pub code: String,
    pub guild_id: Snowflake,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub usage_count: u32,
    pub creator_id: Snowflake,
    pub created_at: String,
    pub updated_at: String,
    /// `serialized_source_guild`, taken at creation or the last sync.
    pub snapshot: Value,
}

/// A guild's welcome screen (stored once set; absent means never configured).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WelcomeScreen {
    pub enabled: bool,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub welcome_channels: Vec<WelcomeChannel>,
}

/// One channel shown on a welcome screen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WelcomeChannel {
    pub channel_id: Snowflake,
    pub description: String,
    #[serde(default)]
    pub emoji_id: Option<Snowflake>,
    #[serde(default)]
    pub emoji_name: Option<String>,
}

/// A guild's onboarding flow (prompts are stored normalised, in their response shape).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Onboarding {
    pub prompts: Vec<Value>,
    pub default_channel_ids: Vec<Snowflake>,
    pub enabled: bool,
    pub mode: u8,
}

/// An entitlement of a user or guild to an application's SKU.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entitlement {
    pub id: Snowflake,
    pub sku_id: Snowflake,
    pub application_id: Snowflake,
    #[serde(default)]
    pub user_id: Option<Snowflake>,
    #[serde(default)]
    pub guild_id: Option<Snowflake>,
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default)]
    pub consumed: bool,
}

/// An announcement channel followed into another channel through a webhook (type 2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChannelFollower {
    pub webhook_id: Snowflake,
    pub source_channel_id: Snowflake,
    pub source_guild_id: Snowflake,
    pub target_channel_id: Snowflake,
}

/// One changed occurrence of a recurring event; its id is the snowflake of the occurrence's
/// original start time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventException {
    pub event_id: Snowflake,
    pub event_exception_id: Snowflake,
    #[serde(default)]
    pub scheduled_start_time: Option<String>,
    #[serde(default)]
    pub scheduled_end_time: Option<String>,
    #[serde(default)]
    pub is_canceled: bool,
}

/// The users an invite is restricted to, and when that list was processed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InviteTargets {
    pub user_ids: Vec<Snowflake>,
    pub created_at_ms: u64,
    pub completed_at_ms: u64,
}

/// A lobby of an application.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lobby {
    pub id: Snowflake,
    pub application_id: Snowflake,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub members: Vec<LobbyMember>,
    #[serde(default)]
    pub idle_timeout_seconds: Option<u32>,
    /// The guild text channel linked to the lobby.
    #[serde(default)]
    pub linked_channel_id: Option<Snowflake>,
}

/// A member of a lobby.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LobbyMember {
    pub id: Snowflake,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub flags: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_name: Option<String>,
}

fn yes() -> bool {
    true
}
