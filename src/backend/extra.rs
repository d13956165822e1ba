//! Records and sled tables of the route families added after the first cut of `serve`:
//! guild stickers, soundboard sounds, guild templates, welcome screens, onboarding,
//! application emojis, entitlements and role connections. Kept apart from `model`/`store` so
//! those stay small; every record serializes as JSON like the rest of the entity store.
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::model::Emoji;
use super::snowflake::Snowflake;
use super::store::{Lookup, StoreError, Table};

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

/// The tables; opened with the rest of the store.
#[derive(Clone)]
pub struct ExtraTables {
    /// Guild stickers under `key2(guild, sticker)`; `sticker_guild` maps sticker → guild.
    pub stickers: Table<Sticker>,
    pub sticker_guild: Lookup,
    /// Soundboard sounds under `key2(guild, sound)`.
    pub sounds: Table<SoundboardSound>,
    /// Templates by code; `guild_template` maps guild → the template's creation id.
    pub templates: Table<GuildTemplate>,
    /// Welcome screens and onboarding by guild id.
    pub welcome_screens: Table<WelcomeScreen>,
    pub onboarding: Table<Onboarding>,
    /// Application emojis under `key2(application, emoji)`.
    pub app_emojis: Table<Emoji>,
    /// Entitlements under `key2(application, entitlement)`.
    pub entitlements: Table<Entitlement>,
    /// Role-connection metadata records by application id.
    pub role_connection_metadata: Table<Vec<Value>>,
    /// A user's role connection under `key2(application, user)`.
    pub role_connections: Table<Value>,
    /// Followers under `key2(source channel, webhook)`.
    pub channel_followers: Table<ChannelFollower>,
    /// Exceptions of recurring scheduled events under `key2(event, exception)`.
    pub event_exceptions: Table<super::routes::event_exceptions::EventException>,
    /// Target users of restricted invites, by invite code.
    pub invite_targets: Table<super::routes::invite_targets::InviteTargets>,
    /// Lobbies by id, and their messages under `key2(lobby, message)`.
    pub lobbies: Table<super::routes::lobbies::Lobby>,
    pub lobby_messages: Table<Value>,
    /// A guild's raid-protection pauses (`incidents_data`) by guild id.
    pub guild_incidents: Table<Value>,
    /// Voice channel statuses by channel id (absent: none set).
    pub voice_statuses: Table<String>,
    /// Poll votes under `key2(channel, message)`.
    pub poll_votes: Table<super::poll::PollVotes>,
    /// Polls not yet finalised, under `key2(channel, message)` (for the finaliser).
    pub open_polls: Table<super::poll::OpenPoll>,
}

impl ExtraTables {
    /// Opens (creating if needed) every table in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(ExtraTables {
            stickers: Table::open_tree(db, "stickers")?,
            sticker_guild: Lookup::open_tree(db, "sticker_guild")?,
            sounds: Table::open_tree(db, "soundboard_sounds")?,
            templates: Table::open_tree(db, "guild_templates")?,
            welcome_screens: Table::open_tree(db, "welcome_screens")?,
            onboarding: Table::open_tree(db, "onboarding")?,
            app_emojis: Table::open_tree(db, "application_emojis")?,
            entitlements: Table::open_tree(db, "entitlements")?,
            role_connection_metadata: Table::open_tree(db, "role_connection_metadata")?,
            role_connections: Table::open_tree(db, "role_connections")?,
            channel_followers: Table::open_tree(db, "channel_followers")?,
            poll_votes: Table::open_tree(db, "poll_votes")?,
            voice_statuses: Table::open_tree(db, "voice_statuses")?,
            guild_incidents: Table::open_tree(db, "guild_incidents")?,
            lobbies: Table::open_tree(db, "lobbies")?,
            invite_targets: Table::open_tree(db, "invite_targets")?,
            lobby_messages: Table::open_tree(db, "lobby_messages")?,
            event_exceptions: Table::open_tree(db, "scheduled_event_exceptions")?,
            open_polls: Table::open_tree(db, "open_polls")?,
        })
    }
}

fn yes() -> bool {
    true
}

/// A 404 with one of the Discord codes `error::Unknown` does not list (10060 Unknown Sticker...).
pub fn not_found(code: u32, message: &str) -> ApiError {
    ApiError::Coded {
        status: axum::http::StatusCode::NOT_FOUND,
        code,
        message: message.to_string(),
    }
}

/// Discord's codes for the unknown entities of these families.
pub mod unknown {
    pub const STICKER: (u32, &str) = (10060, "Unknown Sticker");
    pub const STICKER_PACK: (u32, &str) = (10061, "Unknown Sticker Pack");
    pub const GUILD_TEMPLATE: (u32, &str) = (10057, "Unknown Guild Template");
    pub const SOUNDBOARD_SOUND: (u32, &str) = (10097, "Unknown Soundboard Sound");
    pub const ENTITLEMENT: (u32, &str) = (10029, "Unknown Entitlement");
    pub const WELCOME_SCREEN: (u32, &str) = (10069, "Unknown Guild Welcome Screen");
}

/// `not_found` for one of the `unknown` pairs.
pub fn unknown((code, message): (u32, &str)) -> ApiError {
    not_found(code, message)
}
