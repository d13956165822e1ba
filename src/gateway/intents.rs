//! Gateway intents: the bits as Discord numbers them, and the MESSAGE_CONTENT rule shared by the
//! backend's gateway and the gateway proxy: a guild message reaches a session
//! [`without_content`] when the session [`lacks_message_content`] and its user neither wrote
//! the message nor is mentioned in it ([`keeps_content`]). DMs keep their content.
use serde_json::Value;

/// Guilds, their roles, channels, threads and stage instances.
pub const GUILDS: u64 = 1 << 0;
/// Member additions, updates and removals (privileged).
pub const GUILD_MEMBERS: u64 = 1 << 1;
/// Bans and audit log entries.
pub const GUILD_MODERATION: u64 = 1 << 2;
/// Emojis, stickers and soundboard sounds.
pub const GUILD_EXPRESSIONS: u64 = 1 << 3;
/// Integrations.
pub const GUILD_INTEGRATIONS: u64 = 1 << 4;
/// Webhook changes.
pub const GUILD_WEBHOOKS: u64 = 1 << 5;
/// Invite creation and deletion.
pub const GUILD_INVITES: u64 = 1 << 6;
/// Voice states and voice channel effects.
pub const GUILD_VOICE_STATES: u64 = 1 << 7;
/// Presences (privileged).
pub const GUILD_PRESENCES: u64 = 1 << 8;
/// Messages in guild channels.
pub const GUILD_MESSAGES: u64 = 1 << 9;
/// Reactions in guild channels.
pub const GUILD_MESSAGE_REACTIONS: u64 = 1 << 10;
/// Typing in guild channels.
pub const GUILD_MESSAGE_TYPING: u64 = 1 << 11;
/// Messages in DMs.
pub const DIRECT_MESSAGES: u64 = 1 << 12;
/// Reactions in DMs.
pub const DIRECT_MESSAGE_REACTIONS: u64 = 1 << 13;
/// Typing in DMs.
pub const DIRECT_MESSAGE_TYPING: u64 = 1 << 14;
/// Message content, embeds, attachments, components and polls (privileged).
pub const MESSAGE_CONTENT: u64 = 1 << 15;
/// Scheduled events and their subscribers.
pub const GUILD_SCHEDULED_EVENTS: u64 = 1 << 16;
/// Auto moderation rules.
pub const AUTO_MODERATION_CONFIGURATION: u64 = 1 << 20;
/// Auto moderation actions.
pub const AUTO_MODERATION_EXECUTION: u64 = 1 << 21;
/// Poll votes in guild channels.
pub const GUILD_MESSAGE_POLLS: u64 = 1 << 24;
/// Poll votes in DMs.
pub const DIRECT_MESSAGE_POLLS: u64 = 1 << 25;
/// Intents a bot must be allowed (by application flags) to identify with.
pub const PRIVILEGED: u64 = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT;
/// Every defined intent bit.
pub const ALL: u64 = GUILDS
    | GUILD_MEMBERS
    | GUILD_MODERATION
    | GUILD_EXPRESSIONS
    | GUILD_INTEGRATIONS
    | GUILD_WEBHOOKS
    | GUILD_INVITES
    | GUILD_VOICE_STATES
    | GUILD_PRESENCES
    | GUILD_MESSAGES
    | GUILD_MESSAGE_REACTIONS
    | GUILD_MESSAGE_TYPING
    | DIRECT_MESSAGES
    | DIRECT_MESSAGE_REACTIONS
    | DIRECT_MESSAGE_TYPING
    | MESSAGE_CONTENT
    | GUILD_SCHEDULED_EVENTS
    | AUTO_MODERATION_CONFIGURATION
    | AUTO_MODERATION_EXECUTION
    | GUILD_MESSAGE_POLLS
    | DIRECT_MESSAGE_POLLS;

/// Whether a session that identified with `intents` lacks MESSAGE_CONTENT (user accounts, which
/// identify without intents, never do).
pub fn lacks_message_content(intents: Option<u64>) -> bool {
    intents.is_some_and(|bits| bits & MESSAGE_CONTENT == 0)
}

/// Whether the user `is_user` recognises (by id) wrote `message` or is mentioned in it: that
/// user keeps the content even without MESSAGE_CONTENT.
pub fn keeps_content(message: &Value, is_user: impl Fn(&str) -> bool) -> bool {
    let author = message
        .get("author")
        .and_then(|a| a.get("id"))
        .and_then(Value::as_str);
    author.is_some_and(&is_user)
        || message
            .get("mentions")
            .and_then(Value::as_array)
            .is_some_and(|m| {
                m.iter()
                    .filter_map(|u| u.get("id").and_then(Value::as_str))
                    .any(&is_user)
            })
}

/// `message` with content, embeds, attachments, components and poll emptied, as Discord sends
/// it to a session without MESSAGE_CONTENT.
pub fn without_content(message: &Value) -> Value {
    let mut message = message.clone();
    if let Some(object) = message.as_object_mut() {
        if object.contains_key("content") {
            object.insert("content".into(), Value::String(String::new()));
        }
        for key in ["embeds", "attachments", "components"] {
            if object.contains_key(key) {
                object.insert(key.into(), Value::Array(Vec::new()));
            }
        }
        object.remove("poll");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn authors_and_mentioned_users_keep_content_and_user_accounts_lack_nothing() {
        let message = json!({"author": {"id": "1"}, "mentions": [{"id": "2"}], "content": "x"});
        let is = |me: &'static str| move |id: &str| id == me;
        assert!(keeps_content(&message, is("1")));
        assert!(keeps_content(&message, is("2")));
        assert!(!keeps_content(&message, is("3")));
        assert!(lacks_message_content(Some(GUILDS)));
        assert!(!lacks_message_content(Some(GUILDS | MESSAGE_CONTENT)));
        assert!(!lacks_message_content(None));
    }

    #[test]
    fn all_is_every_documented_bit() {
        assert_eq!(ALL, 53_608_447);
        assert_eq!(ALL & PRIVILEGED, PRIVILEGED);
    }
}
