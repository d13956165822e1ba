//! The gateway envelope `{op, d, s, t}` and opcodes, known or not.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A gateway opcode. Opcodes this crate does not know are kept as `Unknown(n)`, never an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    Dispatch,
    Heartbeat,
    Identify,
    PresenceUpdate,
    VoiceStateUpdate,
    VoiceServerPing,
    Resume,
    Reconnect,
    RequestGuildMembers,
    InvalidSession,
    Hello,
    HeartbeatAck,
    /// Official client: join a call in a private channel.
    CallConnect,
    /// Official client: subscribe to guild events, member list ranges and typing (op 14).
    GuildSubscriptions,
    /// Official client: connect to a lobby.
    LobbyConnect,
    /// Official client: request soundboard sounds (also documented for bots).
    RequestSoundboardSounds,
    /// Official client: request the last messages of channels.
    RequestLastMessages,
    /// Official client: bulk guild subscriptions (replaces 14 in new clients).
    GuildSubscriptionsBulk,
    /// Official client: request channel info (e.g. voice status).
    RequestChannelInfo,
    /// Official client: request channel statuses.
    RequestChannelStatuses,
    /// Official client: request channel member counts.
    RequestChannelMemberCount,
    /// Any opcode not listed above, kept with its number.
    Unknown(u8),
}

impl OpCode {
    /// The numeric opcode as sent on the wire.
    pub fn code(self) -> u8 {
        match self {
            OpCode::Dispatch => 0,
            OpCode::Heartbeat => 1,
            OpCode::Identify => 2,
            OpCode::PresenceUpdate => 3,
            OpCode::VoiceStateUpdate => 4,
            OpCode::VoiceServerPing => 5,
            OpCode::Resume => 6,
            OpCode::Reconnect => 7,
            OpCode::RequestGuildMembers => 8,
            OpCode::InvalidSession => 9,
            OpCode::Hello => 10,
            OpCode::HeartbeatAck => 11,
            OpCode::CallConnect => 13,
            OpCode::GuildSubscriptions => 14,
            OpCode::LobbyConnect => 12,
            OpCode::RequestSoundboardSounds => 31,
            OpCode::RequestLastMessages => 34,
            OpCode::GuildSubscriptionsBulk => 37,
            OpCode::RequestChannelInfo => 43,
            OpCode::RequestChannelStatuses => 36,
            OpCode::RequestChannelMemberCount => 40,
            OpCode::Unknown(n) => n,
        }
    }

    /// Maps a wire number to an opcode; unknown numbers are kept.
    pub fn from_code(code: u8) -> OpCode {
        match code {
            0 => OpCode::Dispatch,
            1 => OpCode::Heartbeat,
            2 => OpCode::Identify,
            3 => OpCode::PresenceUpdate,
            4 => OpCode::VoiceStateUpdate,
            5 => OpCode::VoiceServerPing,
            6 => OpCode::Resume,
            7 => OpCode::Reconnect,
            8 => OpCode::RequestGuildMembers,
            9 => OpCode::InvalidSession,
            10 => OpCode::Hello,
            11 => OpCode::HeartbeatAck,
            12 => OpCode::LobbyConnect,
            13 => OpCode::CallConnect,
            14 => OpCode::GuildSubscriptions,
            31 => OpCode::RequestSoundboardSounds,
            34 => OpCode::RequestLastMessages,
            36 => OpCode::RequestChannelStatuses,
            37 => OpCode::GuildSubscriptionsBulk,
            40 => OpCode::RequestChannelMemberCount,
            43 => OpCode::RequestChannelInfo,
            n => OpCode::Unknown(n),
        }
    }

    /// Whether this opcode is one the public bot gateway documents (0–11, 31).
    pub fn is_bot_opcode(self) -> bool {
        matches!(self.code(), 0..=4 | 6..=11 | 31)
    }
}

impl Serialize for OpCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for OpCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u8::deserialize(deserializer).map(OpCode::from_code)
    }
}

/// One gateway payload. `d` stays raw JSON so unknown fields survive a round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayPayload {
    pub op: OpCode,
    #[serde(default)]
    pub d: Value,
    #[serde(default)]
    pub s: Option<u64>,
    #[serde(default)]
    pub t: Option<String>,
}

impl GatewayPayload {
    /// A payload of `op` carrying `d`, with no sequence and no event name.
    pub fn new(op: OpCode, d: Value) -> Self {
        GatewayPayload {
            op,
            d,
            s: None,
            t: None,
        }
    }

    /// A dispatch (op 0) of event `name` with sequence `seq`.
    pub fn dispatch(name: impl Into<String>, seq: u64, d: Value) -> Self {
        GatewayPayload {
            op: OpCode::Dispatch,
            d,
            s: Some(seq),
            t: Some(name.into()),
        }
    }
}
