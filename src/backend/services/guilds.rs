//! Guild creation and the GUILD_CREATE payload: what guild routes, fixtures (`world`) and the
//! gateway's READY/GUILD_CREATE builders share.
use serde_json::{json, Value};

use crate::backend::model::*;
use crate::backend::render;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::store::{Store, StoreError};

/// Stores a new guild with its @everyone role and owner member (no channels).
pub(crate) fn insert_guild(
    store: &Store,
    guild: &Guild,
    everyone_permissions: u64,
) -> Result<(), StoreError> {
    store.guilds.put(guild.id, guild)?;
    if store.role(guild.id, guild.id)?.is_none() {
        let everyone = Role {
            id: guild.id,
            name: "@everyone".into(),
            color: 0,
            colors: RoleColors::default(),
            hoist: false,
            icon: None,
            unicode_emoji: None,
            position: 0,
            permissions: everyone_permissions.to_string(),
            managed: false,
            mentionable: false,
            flags: 0,
            tags: None,
        };
        store.roles.put((guild.id, guild.id), &everyone)?;
    }
    if store.member(guild.id, guild.owner_id)?.is_none() {
        store.put_member(guild.id, &Member::new(guild.owner_id, now_ms()))?;
    }
    Ok(())
}

/// The full GUILD_CREATE payload for a guild (members, channels, threads, empty presences).
pub(crate) fn guild_create_payload(
    store: &Store,
    guild: &Guild,
    viewer: Snowflake,
) -> Result<Value, StoreError> {
    let mut payload = render::guild(store, guild, false)?;
    let members: Vec<Member> = store.members.values(guild.id)?;
    let channels = store.guild_channel_list(guild.id)?;
    let (threads, channels): (Vec<_>, Vec<_>) = channels
        .into_iter()
        .partition(|c| channel_type::is_thread(c.kind));
    let joined_at = members
        .iter()
        .find(|m| m.user_id == viewer)
        .map(|m| m.joined_at.clone());
    payload["joined_at"] = json!(joined_at);
    payload["large"] = json!(members.len() > 250);
    payload["unavailable"] = json!(false);
    payload["member_count"] = json!(members.len());
    payload["members"] = Value::Array(
        members
            .iter()
            .map(|m| render::member(store, m))
            .collect::<Result<_, _>>()?,
    );
    payload["channels"] = Value::Array(
        channels
            .iter()
            .map(|c| render::channel(store, c))
            .collect::<Result<_, _>>()?,
    );
    payload["threads"] = Value::Array(
        threads
            .iter()
            .filter(|t| t.thread_metadata.as_ref().is_none_or(|m| !m.archived))
            .map(|c| render::channel(store, c))
            .collect::<Result<_, _>>()?,
    );
    for key in [
        "presences",
        "voice_states",
        "stage_instances",
        "guild_scheduled_events",
        "soundboard_sounds",
    ] {
        payload[key] = json!([]);
    }
    Ok(payload)
}

/// A text channel's name as Discord normalises it (lowercase, dashes for spaces).
pub(crate) fn normalise_channel_name(kind: u8, name: &str) -> String {
    if matches!(
        kind,
        channel_type::GUILD_TEXT | channel_type::GUILD_ANNOUNCEMENT | channel_type::GUILD_FORUM
    ) {
        name.trim()
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("-")
    } else {
        name.trim().to_string()
    }
}
