//! Gateway close codes (1000/1001 and 4000–4016) with their meaning and what a client should do next.
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A WebSocket close code as the Discord gateway uses it. Codes Discord does not define are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: normal closure; a client sending it ends its session.
    Normal,
    /// 1001: going away; a client sending it ends its session.
    GoingAway,
    /// 4000: the gateway does not know what went wrong.
    UnknownError,
    /// 4001: an opcode the gateway does not accept, or a bad `d` for an opcode.
    UnknownOpcode,
    /// 4002: a payload that could not be decoded, or one over 4096 bytes.
    DecodeError,
    /// 4003: a payload sent before IDENTIFY or RESUME.
    NotAuthenticated,
    /// 4004: the token in IDENTIFY is not valid.
    AuthenticationFailed,
    /// 4005: a second IDENTIFY on an identified connection.
    AlreadyAuthenticated,
    /// 4006: retired "session no longer valid" (never "invalid seq", which is 4007).
    SessionNoLongerValid,
    /// 4007: the `seq` sent in RESUME was not valid.
    InvalidSeq,
    /// 4008: more than 120 payloads in 60 seconds.
    RateLimited,
    /// 4009: the session timed out (a heartbeat or the handshake came too late).
    SessionTimedOut,
    /// 4010: the `shard` sent in IDENTIFY is not valid.
    InvalidShard,
    /// 4011: the session would hold too many guilds; the bot must shard.
    ShardingRequired,
    /// 4012: the gateway `v` query parameter is not a supported version.
    InvalidApiVersion,
    /// 4013: the intents bit field is not valid.
    InvalidIntents,
    /// 4014: the intents include privileged intents the application may not use.
    DisallowedIntents,
    /// 4015: a user account has too many gateway sessions open.
    TooManySessions,
    /// 4016: a console connection request was cancelled; the session is not needed.
    ConnectionRequestCanceled,
    /// Any other code, kept with its number.
    Other(u16),
}

/// What a client should do after the connection closed with a given code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseDisposition {
    /// Reconnect to `resume_gateway_url` and RESUME the session.
    Resume,
    /// The session is gone: reconnect to the gateway URL and IDENTIFY again.
    NewSession,
    /// Reconnecting with the same configuration would fail the same way: stop and report.
    Fatal,
    /// The session is no longer needed and this is not an error: stop quietly.
    Finished,
}

impl CloseCode {
    /// Every code this crate knows, in numeric order.
    pub const KNOWN: [CloseCode; 19] = [
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::UnknownError,
        CloseCode::UnknownOpcode,
        CloseCode::DecodeError,
        CloseCode::NotAuthenticated,
        CloseCode::AuthenticationFailed,
        CloseCode::AlreadyAuthenticated,
        CloseCode::SessionNoLongerValid,
        CloseCode::InvalidSeq,
        CloseCode::RateLimited,
        CloseCode::SessionTimedOut,
        CloseCode::InvalidShard,
        CloseCode::ShardingRequired,
        CloseCode::InvalidApiVersion,
        CloseCode::InvalidIntents,
        CloseCode::DisallowedIntents,
        CloseCode::TooManySessions,
        CloseCode::ConnectionRequestCanceled,
    ];

    /// Maps a wire number to a close code; unknown numbers are kept as `Other`.
    pub const fn from_u16(code: u16) -> CloseCode {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::GoingAway,
            4000 => CloseCode::UnknownError,
            4001 => CloseCode::UnknownOpcode,
            4002 => CloseCode::DecodeError,
            4003 => CloseCode::NotAuthenticated,
            4004 => CloseCode::AuthenticationFailed,
            4005 => CloseCode::AlreadyAuthenticated,
            4006 => CloseCode::SessionNoLongerValid,
            4007 => CloseCode::InvalidSeq,
            4008 => CloseCode::RateLimited,
            4009 => CloseCode::SessionTimedOut,
            4010 => CloseCode::InvalidShard,
            4011 => CloseCode::ShardingRequired,
            4012 => CloseCode::InvalidApiVersion,
            4013 => CloseCode::InvalidIntents,
            4014 => CloseCode::DisallowedIntents,
            4015 => CloseCode::TooManySessions,
            4016 => CloseCode::ConnectionRequestCanceled,
            other => CloseCode::Other(other),
        }
    }

    /// The number sent in the WebSocket close frame.
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::UnknownError => 4000,
            CloseCode::UnknownOpcode => 4001,
            CloseCode::DecodeError => 4002,
            CloseCode::NotAuthenticated => 4003,
            CloseCode::AuthenticationFailed => 4004,
            CloseCode::AlreadyAuthenticated => 4005,
            CloseCode::SessionNoLongerValid => 4006,
            CloseCode::InvalidSeq => 4007,
            CloseCode::RateLimited => 4008,
            CloseCode::SessionTimedOut => 4009,
            CloseCode::InvalidShard => 4010,
            CloseCode::ShardingRequired => 4011,
            CloseCode::InvalidApiVersion => 4012,
            CloseCode::InvalidIntents => 4013,
            CloseCode::DisallowedIntents => 4014,
            CloseCode::TooManySessions => 4015,
            CloseCode::ConnectionRequestCanceled => 4016,
            CloseCode::Other(code) => code,
        }
    }

    /// Short name, as in Discord's close-code table (e.g. "Invalid seq").
    pub const fn description(self) -> &'static str {
        match self {
            CloseCode::Normal => "Normal closure",
            CloseCode::GoingAway => "Going away",
            CloseCode::UnknownError => "Unknown error",
            CloseCode::UnknownOpcode => "Unknown opcode",
            CloseCode::DecodeError => "Decode error",
            CloseCode::NotAuthenticated => "Not authenticated",
            CloseCode::AuthenticationFailed => "Authentication failed",
            CloseCode::AlreadyAuthenticated => "Already authenticated",
            CloseCode::SessionNoLongerValid => "Session no longer valid",
            CloseCode::InvalidSeq => "Invalid seq",
            CloseCode::RateLimited => "Rate limited",
            CloseCode::SessionTimedOut => "Session timed out",
            CloseCode::InvalidShard => "Invalid shard",
            CloseCode::ShardingRequired => "Sharding required",
            CloseCode::InvalidApiVersion => "Invalid API version",
            CloseCode::InvalidIntents => "Invalid intent(s)",
            CloseCode::DisallowedIntents => "Disallowed intent(s)",
            CloseCode::TooManySessions => "Too many sessions",
            CloseCode::ConnectionRequestCanceled => "Connection request canceled",
            CloseCode::Other(_) => "Unknown close code",
        }
    }

    /// One sentence on what happened and what to do about it.
    pub const fn explanation(self) -> &'static str {
        match self {
            CloseCode::Normal | CloseCode::GoingAway => {
                "the connection was closed on purpose; the session ended, so IDENTIFY again"
            }
            CloseCode::UnknownError => "the gateway hit an error it cannot name; reconnect and resume",
            CloseCode::UnknownOpcode => {
                "an opcode the gateway does not accept, or a payload not valid for its opcode, was sent"
            }
            CloseCode::DecodeError => {
                "a payload could not be decoded or was larger than 4096 bytes"
            }
            CloseCode::NotAuthenticated => {
                "a payload was sent before IDENTIFY or RESUME, or the session was invalidated"
            }
            CloseCode::AuthenticationFailed => "the token sent in IDENTIFY is not valid",
            CloseCode::AlreadyAuthenticated => "IDENTIFY was sent more than once",
            CloseCode::SessionNoLongerValid => {
                "the session is no longer valid (retired code); start a new session"
            }
            CloseCode::InvalidSeq => {
                "the sequence number sent in RESUME was not valid; start a new session"
            }
            CloseCode::RateLimited => "payloads were sent faster than 120 per 60 seconds",
            CloseCode::SessionTimedOut => "the session timed out; start a new session",
            CloseCode::InvalidShard => "the shard sent in IDENTIFY is not valid",
            CloseCode::ShardingRequired => {
                "the session would handle too many guilds; the connection must be sharded"
            }
            CloseCode::InvalidApiVersion => "the gateway version requested is not valid",
            CloseCode::InvalidIntents => {
                "the intents sent are not a valid bit field of gateway intents"
            }
            CloseCode::DisallowedIntents => {
                "the intents include privileged intents that are not enabled or approved for this application"
            }
            CloseCode::TooManySessions => {
                "the user account has more gateway sessions open than allowed"
            }
            CloseCode::ConnectionRequestCanceled => {
                "the console connection request was cancelled; the session is not needed"
            }
            CloseCode::Other(_) => "a close code Discord does not document; reconnect and resume",
        }
    }

    /// What a client should do after receiving this code.
    ///
    /// Fatal: 4004 and 4010–4014 (retrying with the same token, shard or intents fails again).
    /// New session: 1000/1001 (the session was ended on purpose), 4006, 4007 and 4009 (Discord's
    /// own explanation for these says "start a new session"), and 4015.
    /// Finished: 4016. Everything else, including undocumented codes and a connection that
    /// dropped without any close frame, is resumable, as the gateway docs prescribe.
    pub const fn disposition(self) -> CloseDisposition {
        match self {
            CloseCode::AuthenticationFailed
            | CloseCode::InvalidShard
            | CloseCode::ShardingRequired
            | CloseCode::InvalidApiVersion
            | CloseCode::InvalidIntents
            | CloseCode::DisallowedIntents => CloseDisposition::Fatal,
            CloseCode::Normal
            | CloseCode::GoingAway
            | CloseCode::SessionNoLongerValid
            | CloseCode::InvalidSeq
            | CloseCode::SessionTimedOut
            | CloseCode::TooManySessions => CloseDisposition::NewSession,
            CloseCode::ConnectionRequestCanceled => CloseDisposition::Finished,
            CloseCode::UnknownError
            | CloseCode::UnknownOpcode
            | CloseCode::DecodeError
            | CloseCode::NotAuthenticated
            | CloseCode::AlreadyAuthenticated
            | CloseCode::RateLimited
            | CloseCode::Other(_) => CloseDisposition::Resume,
        }
    }

    /// Whether reconnecting with the same configuration cannot succeed (4004, 4010–4014).
    pub const fn is_fatal(self) -> bool {
        matches!(self.disposition(), CloseDisposition::Fatal)
    }

    /// Whether a client may reconnect at all (everything but fatal codes and 4016).
    pub const fn can_reconnect(self) -> bool {
        matches!(
            self.disposition(),
            CloseDisposition::Resume | CloseDisposition::NewSession
        )
    }

    /// Whether the session survives this close and can be resumed.
    pub const fn can_resume(self) -> bool {
        matches!(self.disposition(), CloseDisposition::Resume)
    }

    /// Whether a client closing with this code keeps its session open for a later RESUME
    /// (any code but 1000 and 1001, per Discord's "initiating a disconnect").
    pub const fn keeps_session_when_sent_by_client(self) -> bool {
        !matches!(self, CloseCode::Normal | CloseCode::GoingAway)
    }

    /// Whether Discord documents this code for the main gateway.
    pub const fn is_known(self) -> bool {
        !matches!(self, CloseCode::Other(_))
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode::from_u16(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.code()
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.code(),
            self.description(),
            self.explanation()
        )
    }
}

impl Serialize for CloseCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.code())
    }
}

impl<'de> Deserialize<'de> for CloseCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u16::deserialize(deserializer).map(CloseCode::from_u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips_through_u16() {
        for code in CloseCode::KNOWN {
            assert_eq!(CloseCode::from_u16(code.code()), code);
            assert!(code.is_known());
        }
        assert_eq!(CloseCode::from_u16(4999), CloseCode::Other(4999));
        assert_eq!(u16::from(CloseCode::Other(4999)), 4999);
    }

    #[test]
    fn serializes_as_the_number() {
        assert_eq!(
            serde_json::to_string(&CloseCode::InvalidSeq).expect("json"),
            "4007"
        );
        let parsed: CloseCode = serde_json::from_str("4321").expect("json");
        assert_eq!(parsed, CloseCode::Other(4321));
    }

    #[test]
    fn display_names_the_number_and_meaning() {
        assert_eq!(
            CloseCode::InvalidSeq.to_string(),
            "4007 Invalid seq: the sequence number sent in RESUME was not valid; start a new session"
        );
        assert!(CloseCode::Other(4321)
            .to_string()
            .starts_with("4321 Unknown close code"));
    }
}
