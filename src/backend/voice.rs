//! Live voice states: set by gateway op 4 and by the REST voice-state routes (stage
//! suppression, requests to speak), read by GUILD_CREATE and `GET …/voice-states/…`. Shared
//! between the HTTP side and the gateway; not persisted (a restart disconnects everyone, as
//! Discord's voice connections would be).
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::render;
use super::snowflake::Snowflake;
use super::store::{Store, StoreError};

/// One user's voice connection in a guild.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VoiceState {
    pub guild_id: Snowflake,
    pub channel_id: Snowflake,
    pub user_id: Snowflake,
    pub session_id: String,
    pub self_mute: bool,
    pub self_deaf: bool,
    /// Kept from speaking (stage audience members are, until a moderator invites them up).
    pub suppress: bool,
    /// When the user asked to speak on a stage (ISO 8601).
    pub request_to_speak_timestamp: Option<String>,
}

/// Every live voice state, by (guild, user); cheap to clone (one shared map).
#[derive(Debug, Clone, Default)]
pub struct VoiceStates(Arc<Mutex<HashMap<(Snowflake, Snowflake), VoiceState>>>);

impl VoiceStates {
    /// Stores (or with `None`, removes) a user's voice state in a guild.
    pub fn set(&self, guild_id: Snowflake, user_id: Snowflake, state: Option<VoiceState>) {
        let mut map = self.0.lock();
        match state {
            Some(state) => {
                map.insert((guild_id, user_id), state);
            }
            None => {
                map.remove(&(guild_id, user_id));
            }
        }
    }

    /// Forgets every voice state (a reset of the world).
    pub fn clear(&self) {
        self.0.lock().clear();
    }

    /// A user's voice state in a guild.
    pub fn get(&self, guild_id: Snowflake, user_id: Snowflake) -> Option<VoiceState> {
        self.0.lock().get(&(guild_id, user_id)).cloned()
    }

    /// Changes a user's voice state in place; returns the new state (None: not connected).
    pub fn update(
        &self,
        guild_id: Snowflake,
        user_id: Snowflake,
        change: impl FnOnce(&mut VoiceState),
    ) -> Option<VoiceState> {
        let mut map = self.0.lock();
        let state = map.get_mut(&(guild_id, user_id))?;
        change(state);
        Some(state.clone())
    }

    /// The voice states of a guild, by user id.
    pub fn in_guild(&self, guild_id: Snowflake) -> Vec<VoiceState> {
        let mut states: Vec<VoiceState> = self
            .0
            .lock()
            .values()
            .filter(|v| v.guild_id == guild_id)
            .cloned()
            .collect();
        states.sort_by_key(|v| v.user_id);
        states
    }
}

/// A voice state object; `with_guild_id` adds `guild_id` and the member (REST answers and
/// VOICE_STATE_UPDATE carry them, GUILD_CREATE's list does not).
pub(crate) fn render(
    store: &Store,
    state: &VoiceState,
    with_guild_id: bool,
) -> Result<Value, StoreError> {
    let mut out = json!({
        "channel_id": state.channel_id,
        "user_id": state.user_id,
        "session_id": state.session_id,
        "deaf": false,
        "mute": false,
        "self_deaf": state.self_deaf,
        "self_mute": state.self_mute,
        "self_video": false,
        "self_stream": false,
        "suppress": state.suppress,
        "request_to_speak_timestamp": state.request_to_speak_timestamp,
    });
    if with_guild_id {
        out["guild_id"] = json!(state.guild_id);
        if let Some(member) = store.member(state.guild_id, state.user_id)? {
            out["member"] = render::member(store, &member)?;
        }
    }
    Ok(out)
}
