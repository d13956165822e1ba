//! The gateway envelope `{op, d, s, t}` and opcodes, known or not.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Declares the opcode enum, its wire numbers and names from one table so they cannot drift apart.
macro_rules! opcodes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal; )*) => {
        /// A gateway opcode. Opcodes this crate does not know are kept as `Unknown(n)`, never an error.
        ///
        /// Numbers 12 and up are the official client's, as discord-userdoccers lists them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OpCode {
            $( $(#[$doc])* $variant, )*
            /// Any opcode not listed above, kept with its number.
            Unknown(u8),
        }

        impl OpCode {
            /// The numeric opcode as sent on the wire.
            pub fn code(self) -> u8 {
                match self {
                    $( OpCode::$variant => $code, )*
                    OpCode::Unknown(n) => n,
                }
            }

            /// Maps a wire number to an opcode; unknown numbers are kept.
            pub fn from_code(code: u8) -> OpCode {
                match code {
                    $( $code => OpCode::$variant, )*
                    n => OpCode::Unknown(n),
                }
            }

            /// The opcode's name as the docs spell it (`"Heartbeat ACK"`), or `None` when unknown.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( OpCode::$variant => Some($name), )*
                    OpCode::Unknown(_) => None,
                }
            }
        }
    };
}

opcodes! {
    /// Server: an event was dispatched.
    Dispatch = 0, "Dispatch";
    /// Both: keep the connection alive.
    Heartbeat = 1, "Heartbeat";
    /// Client: start a new session.
    Identify = 2, "Identify";
    /// Client: update the presence.
    PresenceUpdate = 3, "Presence Update";
    /// Client: join, leave or move between voice channels.
    VoiceStateUpdate = 4, "Voice State Update";
    /// Official client: ping the voice servers.
    VoiceServerPing = 5, "Voice Server Ping";
    /// Client: resume a disconnected session.
    Resume = 6, "Resume";
    /// Server: reconnect and resume.
    Reconnect = 7, "Reconnect";
    /// Client: request guild members.
    RequestGuildMembers = 8, "Request Guild Members";
    /// Server: the session was invalidated.
    InvalidSession = 9, "Invalid Session";
    /// Server: first payload, carries `heartbeat_interval`.
    Hello = 10, "Hello";
    /// Server: a heartbeat was received.
    HeartbeatAck = 11, "Heartbeat ACK";
    /// Official client (retired): request all members and presences of guilds.
    GuildSync = 12, "Guild Sync";
    /// Official client: request a private channel's call data.
    CallConnect = 13, "Call Connect";
    /// Official client: subscribe to guild events, member list ranges and typing (deprecated by 37).
    GuildSubscriptions = 14, "Guild Subscriptions";
    /// Official client (retired): join a lobby.
    LobbyConnect = 15, "Lobby Connect";
    /// Official client (retired): leave a lobby.
    LobbyDisconnect = 16, "Lobby Disconnect";
    /// Official client: update the voice state in a lobby.
    LobbyVoiceStates = 17, "Lobby Voice States";
    /// Official client: create a stream.
    StreamCreate = 18, "Stream Create";
    /// Official client: end a stream.
    StreamDelete = 19, "Stream Delete";
    /// Official client: watch a stream.
    StreamWatch = 20, "Stream Watch";
    /// Official client: ping a stream's voice server.
    StreamPing = 21, "Stream Ping";
    /// Official client: pause or resume a stream.
    StreamSetPaused = 22, "Stream Set Paused";
    /// Official client (retired): LFG lobby subscriptions.
    LfgSubscriptions = 23, "LFG Subscriptions";
    /// Official client (retired): request guild application commands.
    RequestGuildApplicationCommands = 24, "Request Guild Application Commands";
    /// Official client (retired): launch an embedded activity.
    EmbeddedActivityCreate = 25, "Embedded Activity Create";
    /// Official client (retired): stop an embedded activity.
    EmbeddedActivityDelete = 26, "Embedded Activity Delete";
    /// Official client (retired): update an embedded activity.
    EmbeddedActivityUpdate = 27, "Embedded Activity Update";
    /// Official client: request forum channel unread counts.
    RequestForumUnreads = 28, "Request Forum Unreads";
    /// Official client: send a message to another gateway session.
    RemoteCommand = 29, "Remote Command";
    /// Official client: request deleted entity ids not matching a hash.
    RequestDeletedEntityIds = 30, "Request Deleted Entity IDs";
    /// Client (bots too): request soundboard sounds of guilds.
    RequestSoundboardSounds = 31, "Request Soundboard Sounds";
    /// Official client (deprecated): create an RTC speed test.
    SpeedTestCreate = 32, "Speed Test Create";
    /// Official client (deprecated): delete an RTC speed test.
    SpeedTestDelete = 33, "Speed Test Delete";
    /// Official client: request the last messages of a guild's channels.
    RequestLastMessages = 34, "Request Last Messages";
    /// Official client: request recently joined guild members.
    SearchRecentMembers = 35, "Search Recent Members";
    /// Official client (deprecated by 43): request voice channel statuses.
    RequestChannelStatuses = 36, "Request Channel Statuses";
    /// Official client: subscriptions for several guilds at once (replaces 14).
    GuildSubscriptionsBulk = 37, "Guild Subscriptions Bulk";
    /// Official client: resynchronize accessible guild channels.
    GuildChannelsResync = 38, "Guild Channels Resync";
    /// Official client: request a channel's member and online counts.
    RequestChannelMemberCount = 39, "Request Channel Member Count";
    /// Official client: heartbeat carrying QoS metrics.
    QosHeartbeat = 40, "QoS Heartbeat";
    /// Official client: track the time spent in the session.
    UpdateTimeSpentSessionId = 41, "Update Time Spent Session ID";
    /// Official client: ping a lobby's voice server.
    LobbyVoiceServerPing = 42, "Lobby Voice Server Ping";
    /// Official client: request extra voice channel fields of a guild.
    RequestChannelInfo = 43, "Request Channel Info";
}

impl OpCode {
    /// Whether this opcode is one the public bot gateway documents (0–4, 6–11, 31).
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayPayload {
    /// Opcode.
    pub op: OpCode,
    /// Event data, raw.
    pub d: Value,
    /// Sequence number (dispatches only).
    pub s: Option<u64>,
    /// Event name (dispatches only).
    pub t: Option<String>,
}

/// Reads only JSON objects (serde's derive would also take `[op, d, s, t]` arrays), requires `op`,
/// defaults `d`/`s`/`t` to null and ignores other envelope fields.
impl<'de> Deserialize<'de> for GatewayPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> serde::de::Visitor<'de> for PayloadVisitor {
    type Value = GatewayPayload;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a gateway payload object {op, d, s, t}")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<GatewayPayload, A::Error> {
        use serde::de::Error;
        let (mut op, mut d, mut s, mut t) = (None, None, None, None);
        while let Some(key) = map.next_key::<EnvelopeField>()? {
            match key {
                EnvelopeField::Op if op.is_some() => return Err(A::Error::duplicate_field("op")),
                EnvelopeField::Op => op = Some(map.next_value::<OpCode>()?),
                EnvelopeField::D if d.is_some() => return Err(A::Error::duplicate_field("d")),
                EnvelopeField::D => d = Some(map.next_value::<Value>()?),
                EnvelopeField::S if s.is_some() => return Err(A::Error::duplicate_field("s")),
                EnvelopeField::S => s = Some(map.next_value::<Option<u64>>()?),
                EnvelopeField::T if t.is_some() => return Err(A::Error::duplicate_field("t")),
                EnvelopeField::T => t = Some(map.next_value::<Option<String>>()?),
                EnvelopeField::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(GatewayPayload {
            op: op.ok_or_else(|| A::Error::missing_field("op"))?,
            d: d.unwrap_or(Value::Null),
            s: s.flatten(),
            t: t.flatten(),
        })
    }
}

enum EnvelopeField {
    Op,
    D,
    S,
    T,
    Other,
}

impl<'de> Deserialize<'de> for EnvelopeField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl serde::de::Visitor<'_> for FieldVisitor {
            type Value = EnvelopeField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EnvelopeField, E> {
                Ok(match v {
                    "op" => EnvelopeField::Op,
                    "d" => EnvelopeField::D,
                    "s" => EnvelopeField::S,
                    "t" => EnvelopeField::T,
                    _ => EnvelopeField::Other,
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
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

impl GatewayPayload {
    /// The event name and raw data when this is a dispatch (op 0) with a name.
    pub fn as_dispatch(&self) -> Option<(&str, &Value)> {
        match (self.op, &self.t) {
            (OpCode::Dispatch, Some(name)) => Some((name.as_str(), &self.d)),
            _ => None,
        }
    }

    /// Reads `d` as a typed view (see [`crate::gateway::events`]); unknown fields land in `extra`.
    pub fn view<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn opcodes_match_userdoccers_numbers() {
        let table = [
            (12, OpCode::GuildSync, "Guild Sync"),
            (13, OpCode::CallConnect, "Call Connect"),
            (14, OpCode::GuildSubscriptions, "Guild Subscriptions"),
            (
                31,
                OpCode::RequestSoundboardSounds,
                "Request Soundboard Sounds",
            ),
            (34, OpCode::RequestLastMessages, "Request Last Messages"),
            (
                36,
                OpCode::RequestChannelStatuses,
                "Request Channel Statuses",
            ),
            (
                37,
                OpCode::GuildSubscriptionsBulk,
                "Guild Subscriptions Bulk",
            ),
            (
                39,
                OpCode::RequestChannelMemberCount,
                "Request Channel Member Count",
            ),
            (40, OpCode::QosHeartbeat, "QoS Heartbeat"),
            (
                41,
                OpCode::UpdateTimeSpentSessionId,
                "Update Time Spent Session ID",
            ),
            (43, OpCode::RequestChannelInfo, "Request Channel Info"),
        ];
        for (code, op, name) in table {
            assert_eq!(OpCode::from_code(code), op);
            assert_eq!(op.code(), code);
            assert_eq!(op.name(), Some(name));
        }
    }

    #[test]
    fn every_number_round_trips_and_unknowns_are_kept() {
        for code in 0..=u8::MAX {
            assert_eq!(OpCode::from_code(code).code(), code);
        }
        assert_eq!(OpCode::from_code(44), OpCode::Unknown(44));
        assert_eq!(OpCode::Unknown(200).name(), None);
        let payload: GatewayPayload = serde_json::from_str(r#"{"op":250,"d":{"x":1}}"#).unwrap();
        assert_eq!(payload.op, OpCode::Unknown(250));
        assert_eq!(serde_json::to_value(&payload).unwrap()["op"], json!(250));
        assert!(
            OpCode::Heartbeat.is_bot_opcode() && !OpCode::GuildSubscriptionsBulk.is_bot_opcode()
        );
    }

    #[test]
    fn dispatch_accessors() {
        let payload = GatewayPayload::dispatch("TYPING_START", 5, json!({"channel_id": "1"}));
        assert_eq!(
            payload.as_dispatch(),
            Some(("TYPING_START", &json!({"channel_id": "1"})))
        );
        assert_eq!(
            GatewayPayload::new(OpCode::Heartbeat, json!(5)).as_dispatch(),
            None
        );
        let envelope = GatewayPayload::from_value(
            json!({"op": 0, "d": {}, "s": null, "t": "READY", "extra": 1}),
        )
        .unwrap();
        assert_eq!(envelope.t.as_deref(), Some("READY"));
        assert!(GatewayPayload::from_value(json!({"op": 300})).is_err());
        assert!(GatewayPayload::from_value(json!([1, null, null, null])).is_err());
        assert!(serde_json::from_str::<GatewayPayload>(r#"{"op":1,"op":2}"#).is_err());
        assert!(serde_json::from_str::<GatewayPayload>(r#"{"d":1}"#)
            .unwrap_err()
            .to_string()
            .contains("missing field `op`"));
    }
}
