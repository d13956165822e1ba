//! The account parts of the fixture file (relationships, notes, read states, a user's MFA);
//! `account.rs` checks and writes them.
use schemars::JsonSchema;
use serde::Deserialize;

use crate::backend::snowflake::Snowflake;
use crate::backend::user_state::relationship_type as kind;

/// A relationship between two fixture users: `type` 1 friends (both sides), 2 `user_id`
/// blocks `other_id`, 4 `user_id` sent `other_id` a friend request (3 on the other side).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixtureRelationship {
    pub(crate) user_id: Snowflake,
    pub(crate) other_id: Snowflake,
    #[serde(rename = "type", default = "friend")]
    pub(crate) kind: u8,
    #[serde(default)]
    pub(crate) nickname: Option<String>,
}

fn friend() -> u8 {
    kind::FRIEND
}

/// A note `user_id` keeps on `target_id`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixtureNote {
    pub(crate) user_id: Snowflake,
    pub(crate) target_id: Snowflake,
    pub(crate) note: String,
}

/// How far `user_id` has read `channel_id`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixtureReadState {
    pub(crate) user_id: Snowflake,
    pub(crate) channel_id: Snowflake,
    pub(crate) last_message_id: Snowflake,
    #[serde(default)]
    pub(crate) mention_count: u32,
}

/// A user's second factor in a fixture.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FixtureMfa {
    /// Base32 TOTP secret.
    pub(crate) totp_secret: String,
    #[serde(default)]
    pub(crate) backup_codes: Vec<String>,
    /// The user's verified phone number: SMS codes become a second factor too.
    #[serde(default)]
    pub(crate) phone: Option<String>,
    /// The code `POST /auth/mfa/sms/send` "sends" (no SMS is sent); drawn at random when
    /// left out, and readable or settable through the control API (`POST /_mitm/sms`).
    #[serde(default)]
    pub(crate) sms_code: Option<String>,
}
