//! Gateway capabilities: the bit field the official client sends in IDENTIFY to opt into
//! payload changes (userdoccers, "Gateway Capabilities"). Bots send none.

/// Drop `notes` from READY.
pub const LAZY_USER_NOTES: u64 = 1 << 0;
/// No member/presence syncing for implicit relationships.
pub const NO_AFFINE_USER_IDS: u64 = 1 << 1;
/// `read_state` is a versioned object.
pub const VERSIONED_READ_STATES: u64 = 1 << 2;
/// `user_guild_settings` is a versioned object.
pub const VERSIONED_USER_GUILD_SETTINGS: u64 = 1 << 3;
/// User objects move to `users`; members merge into `merged_members`.
pub const DEDUPE_USER_OBJECTS: u64 = 1 << 4;
/// READY is split into READY and READY_SUPPLEMENTAL (needs DEDUPE_USER_OBJECTS).
pub const PRIORITIZED_READY_PAYLOAD: u64 = 1 << 5;
/// `guild_experiments` populations are arrays.
pub const MULTIPLE_GUILD_EXPERIMENT_POPULATIONS: u64 = 1 << 6;
/// Read states of non-channel resources are included.
pub const NON_CHANNEL_READ_STATES: u64 = 1 << 7;
/// READY may carry a refreshed `auth_token`.
pub const AUTH_TOKEN_REFRESH: u64 = 1 << 8;
/// `user_settings_proto` replaces `user_settings`.
pub const USER_SETTINGS_PROTO: u64 = 1 << 9;
/// Guilds use the client-state-v2 shape (`properties`, `data_mode`, ...).
pub const CLIENT_STATE_V2: u64 = 1 << 10;
/// Passive guild updates (v1).
pub const PASSIVE_GUILD_UPDATE: u64 = 1 << 11;
/// Pre-existing calls are connected automatically.
pub const AUTO_CALL_CONNECT: u64 = 1 << 12;
/// Reaction events are debounced.
pub const DEBOUNCE_MESSAGE_REACTIONS: u64 = 1 << 13;
/// Passive guild updates (v2).
pub const PASSIVE_GUILD_UPDATE_V2: u64 = 1 << 14;
/// Channels the user cannot view are obfuscated.
pub const CHANNEL_OBFUSCATION: u64 = 1 << 15;
/// READY carries `lobbies`.
pub const AUTO_LOBBY_CONNECT: u64 = 1 << 16;

/// A session's capabilities, with the documented dependencies applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(pub u64);

impl Capabilities {
    /// Whether `bit` is in effect (PRIORITIZED_READY_PAYLOAD only with DEDUPE_USER_OBJECTS).
    pub fn has(self, bit: u64) -> bool {
        if bit == PRIORITIZED_READY_PAYLOAD && self.0 & DEDUPE_USER_OBJECTS == 0 {
            return false;
        }
        self.0 & bit == bit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_clients_set_and_the_dependency_rule() {
        let caps = Capabilities(16381);
        for bit in [
            LAZY_USER_NOTES,
            VERSIONED_READ_STATES,
            DEDUPE_USER_OBJECTS,
            PRIORITIZED_READY_PAYLOAD,
            USER_SETTINGS_PROTO,
            CLIENT_STATE_V2,
            DEBOUNCE_MESSAGE_REACTIONS,
        ] {
            assert!(caps.has(bit), "{bit}");
        }
        assert!(!caps.has(NO_AFFINE_USER_IDS));
        assert!(!Capabilities(PRIORITIZED_READY_PAYLOAD).has(PRIORITIZED_READY_PAYLOAD));
    }
}
