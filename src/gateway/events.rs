//! Typed views of the payloads the backend and recorder look into. Every struct keeps the fields
//! it does not name in `extra`, so a payload read through a view and written back is unchanged.
//!
//! Snowflakes are `u64` here and strings on the wire; integers (as ETF carries them) are accepted.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Serde helpers for snowflakes: `u64` in Rust, a decimal string on the wire (integers accepted).
pub mod snowflake {
    use serde::{de, Deserializer, Serializer};

    /// Writes a snowflake as a decimal string.
    pub fn serialize<S: Serializer>(id: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(id)
    }

    /// Reads a snowflake from a decimal string or an unsigned integer.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(SnowflakeVisitor)
    }

    pub(super) struct SnowflakeVisitor;

    impl de::Visitor<'_> for SnowflakeVisitor {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a snowflake (a decimal string or an unsigned integer)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("snowflake {v} is negative")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.parse()
                .map_err(|_| E::custom(format!("snowflake {v:?} is not a decimal u64")))
        }
    }

    /// `Option<u64>` snowflakes; null or absent is `None`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes a present snowflake as a string, an absent one as null.
        pub fn serialize<S: Serializer>(
            id: &Option<u64>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match id {
                Some(id) => serializer.collect_str(id),
                None => serializer.serialize_none(),
            }
        }

        /// Reads null, a decimal string or an unsigned integer.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<u64>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] u64);
            Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(id)| id))
        }
    }

    /// One snowflake or a list of them (REQUEST_GUILD_MEMBERS accepts both), as a `Vec<u64>`.
    pub mod one_or_many {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(#[serde(with = "super")] u64),
            Many(Vec<Wrapped>),
        }

        #[derive(Deserialize, Serialize)]
        struct Wrapped(#[serde(with = "super")] u64);

        /// Writes one id as a string, several as a list of strings.
        pub fn serialize<S: Serializer>(ids: &[u64], serializer: S) -> Result<S::Ok, S::Error> {
            match ids {
                [one] => serializer.collect_str(one),
                many => many
                    .iter()
                    .map(|&id| Wrapped(id))
                    .collect::<Vec<_>>()
                    .serialize(serializer),
            }
        }

        /// Reads one id or a list of ids.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<u64>, D::Error> {
            Ok(match OneOrMany::deserialize(deserializer)? {
                OneOrMany::One(id) => vec![id],
                OneOrMany::Many(ids) => ids.into_iter().map(|Wrapped(id)| id).collect(),
            })
        }
    }
}

/// Op 10 HELLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Milliseconds between heartbeats.
    pub heartbeat_interval: u64,
    /// Fields this type does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Op 2 IDENTIFY, as bots and the official client send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identify {
    /// Bot or user token.
    pub token: String,
    /// Connection properties (`os`, `browser`, `device`, and many more from the official client).
    #[serde(default)]
    pub properties: Map<String, Value>,
    /// Payload compression: the server may send zlib-compressed binary frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<bool>,
    /// Member count above which a guild is sent without offline members (50-250).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_threshold: Option<u64>,
    /// `[shard_id, num_shards]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<[u32; 2]>,
    /// Initial presence (an op 3 payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<Value>,
    /// Bot intents bitfield (absent for user accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intents: Option<u64>,
    /// Official client capabilities bitfield.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<u64>,
    /// Fields this type does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Op 6 RESUME.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    /// Token of the session being resumed.
    pub token: String,
    /// Id of the session being resumed.
    pub session_id: String,
    /// Last sequence number received (the official client may send null).
    pub seq: Option<u64>,
    /// Fields this type does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Op 8 REQUEST_GUILD_MEMBERS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestGuildMembers {
    /// One guild (bots) or several (official client).
    #[serde(with = "snowflake::one_or_many")]
    pub guild_id: Vec<u64>,
    /// Username prefix to match (empty string: all members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Most members to send (0: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Whether to include presences of the matched members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presences: Option<bool>,
    /// Members to fetch by id.
    #[serde(
        default,
        with = "snowflake::one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub user_ids: Vec<u64>,
    /// Echoed back in GUILD_MEMBERS_CHUNK to pair chunks with this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Fields this type does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Op 3 PRESENCE_UPDATE (sent by clients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceUpdate {
    /// Unix ms since the client went idle, or null.
    #[serde(default)]
    pub since: Option<u64>,
    /// Activities the user is doing (raw).
    #[serde(default)]
    pub activities: Vec<Value>,
    /// `online`, `dnd`, `idle`, `invisible` or `offline`.
    pub status: String,
    /// Whether the client is AFK.
    #[serde(default)]
    pub afk: bool,
    /// Fields this type does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Op 4 VOICE_STATE_UPDATE (sent by clients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceStateUpdate {
    /// The guild, or null for private calls.
    #[serde(default, with = "snowflake::option")]
    pub guild_id: Option<u64>,
    /// The channel to join, or null to leave.
    #[serde(default, with = "snowflake::option")]
    pub channel_id: Option<u64>,
    /// Whether the user muted themselves.
    #[serde(default)]
    pub self_mute: bool,
    /// Whether the user deafened themselves.
    #[serde(default)]
    pub self_deaf: bool,
    /// Fields this type does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The user object as far as the backend needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    #[serde(with = "snowflake")]
    pub id: u64,
    /// Username.
    pub username: String,
    /// Four-digit tag (`"0"` for migrated usernames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discriminator: Option<String>,
    /// Whether the user is a bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<bool>,
    /// Fields this type does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Dispatch READY.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    /// Gateway API version.
    pub v: u8,
    /// The connected user.
    pub user: User,
    /// Guilds: unavailable stubs for bots, full objects for the official client.
    #[serde(default)]
    pub guilds: Vec<Value>,
    /// Id to RESUME this session with.
    pub session_id: String,
    /// Gateway URL to RESUME on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_gateway_url: Option<String>,
    /// `[shard_id, num_shards]` of this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<[u32; 2]>,
    /// The bot's application (`id`, `flags`; raw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Value>,
    /// Fields this type does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Dispatch GUILD_CREATE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuildCreate {
    /// Guild id.
    #[serde(with = "snowflake")]
    pub id: u64,
    /// Guild name (absent on unavailable stubs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the guild is in an outage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<bool>,
    /// Total members in the guild.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u64>,
    /// Channels in the guild (raw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<Value>>,
    /// Members sent with the guild (raw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Value>>,
    /// Fields this type does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Dispatch MESSAGE_CREATE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageCreate {
    /// Message id.
    #[serde(with = "snowflake")]
    pub id: u64,
    /// Channel the message was sent in.
    #[serde(with = "snowflake")]
    pub channel_id: u64,
    /// Guild of the channel (absent for DMs).
    #[serde(
        default,
        with = "snowflake::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub guild_id: Option<u64>,
    /// Who sent the message.
    pub author: User,
    /// Message text (empty without the MESSAGE_CONTENT intent).
    #[serde(default)]
    pub content: String,
    /// When the message was sent (ISO 8601).
    pub timestamp: String,
    /// Fields this type does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{GatewayPayload, OpCode};
    use serde_json::json;

    /// Reading through a view and writing back must not change the payload.
    fn round_trips<T: serde::de::DeserializeOwned + Serialize>(d: Value) -> T {
        let view: T = serde_json::from_value(d.clone()).unwrap();
        assert_eq!(serde_json::to_value(&view).unwrap(), d);
        view
    }

    #[test]
    fn identify_keeps_unknown_fields() {
        let d = json!({"token": "t", "properties": {"os": "linux", "browser": "Discord Client", "client_build_number": 1},
            "compress": true, "capabilities": 16381, "client_state": {"guild_versions": {}}, "intents": 513});
        let identify: Identify = round_trips(d);
        assert_eq!(identify.compress, Some(true));
        assert_eq!(
            identify.extra["client_state"],
            json!({"guild_versions": {}})
        );
    }

    #[test]
    fn snowflakes_are_u64_and_strings_on_the_wire() {
        let d = json!({"id": "175928847299117063", "channel_id": "2", "guild_id": "3",
            "author": {"id": "4", "username": "a", "global_name": "A"}, "content": "hi",
            "timestamp": "2026-01-01T00:00:00+00:00", "nonce": "n"});
        let message: MessageCreate = round_trips(d);
        assert_eq!(message.id, 175928847299117063);
        assert_eq!(message.author.extra["global_name"], json!("A"));
        // ETF carries snowflakes as integers; the view takes them too.
        let from_etf: MessageCreate = serde_json::from_value(json!({"id": 5u64, "channel_id": 6, "author": {"id": 7, "username": "b"}, "timestamp": "x"})).unwrap();
        assert_eq!(
            (from_etf.id, from_etf.channel_id, from_etf.guild_id),
            (5, 6, None)
        );
        let err = serde_json::from_value::<MessageCreate>(json!({"id": "-1", "channel_id": "1", "author": {"id": "1", "username": "a"}, "timestamp": "x"})).unwrap_err();
        assert!(err.to_string().contains("not a decimal u64"), "{err}");
    }

    #[test]
    fn request_guild_members_takes_one_or_many() {
        let one: RequestGuildMembers =
            round_trips(json!({"guild_id": "1", "query": "", "limit": 0}));
        assert_eq!(one.guild_id, vec![1]);
        let many: RequestGuildMembers =
            round_trips(json!({"guild_id": ["1", "2"], "user_ids": ["3", "4"], "presences": true}));
        assert_eq!((many.guild_id, many.user_ids), (vec![1, 2], vec![3, 4]));
    }

    #[test]
    fn other_views_round_trip() {
        let hello: Hello =
            round_trips(json!({"heartbeat_interval": 41250, "_trace": ["gateway-prd"]}));
        assert_eq!(hello.heartbeat_interval, 41250);
        let resume: Resume = round_trips(json!({"token": "t", "session_id": "s", "seq": null}));
        assert_eq!(resume.seq, None);
        let presence: PresenceUpdate = round_trips(
            json!({"since": null, "activities": [], "status": "online", "afk": false, "broadcast": null}),
        );
        assert_eq!(presence.status, "online");
        let voice: VoiceStateUpdate = round_trips(
            json!({"guild_id": null, "channel_id": "9", "self_mute": false, "self_deaf": true, "self_video": false}),
        );
        assert_eq!((voice.guild_id, voice.channel_id), (None, Some(9)));
        let ready: Ready = round_trips(
            json!({"v": 10, "user": {"id": "1", "username": "bot", "bot": true}, "guilds": [{"id": "2", "unavailable": true}],
            "session_id": "abc", "resume_gateway_url": "wss://gateway-us-east1-b.discord.gg", "shard": [0, 1], "application": {"id": "1"}, "user_settings_proto": "x"}),
        );
        assert_eq!(
            ready.resume_gateway_url.as_deref(),
            Some("wss://gateway-us-east1-b.discord.gg")
        );
        let guild: GuildCreate = round_trips(
            json!({"id": "2", "name": "g", "unavailable": false, "member_count": 3, "channels": [], "roles": []}),
        );
        assert_eq!(guild.id, 2);
        let payload = GatewayPayload::new(OpCode::Hello, json!({"heartbeat_interval": 1}));
        assert_eq!(payload.view::<Hello>().unwrap().heartbeat_interval, 1);
        assert!(GatewayPayload::new(OpCode::Hello, json!({}))
            .view::<Hello>()
            .is_err());
    }
}
