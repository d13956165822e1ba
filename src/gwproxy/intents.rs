//! Per-client intents: a shard receives what the proxy's `intents` ask for; each client gets
//! only the dispatches its own IDENTIFY intents cover, with message content emptied without
//! MESSAGE_CONTENT — as Discord would have sent them to that client.
use serde_json::Value;

use crate::gateway::intents::*;

/// The intent a client needs to receive dispatch `event` with data `d` (`None`: always sent).
/// `bot_id` is the bot's user id (its own member updates need no intent).
pub fn required(event: &str, d: &Value, bot_id: Option<&str>) -> Option<u64> {
    let in_guild = d.get("guild_id").is_some_and(|id| !id.is_null());
    let pick = |guild, direct| Some(if in_guild { guild } else { direct });
    match event {
        "GUILD_CREATE"
        | "GUILD_UPDATE"
        | "GUILD_DELETE"
        | "GUILD_ROLE_CREATE"
        | "GUILD_ROLE_UPDATE"
        | "GUILD_ROLE_DELETE"
        | "CHANNEL_CREATE"
        | "CHANNEL_UPDATE"
        | "CHANNEL_DELETE"
        | "THREAD_CREATE"
        | "THREAD_UPDATE"
        | "THREAD_DELETE"
        | "THREAD_LIST_SYNC"
        | "THREAD_MEMBER_UPDATE"
        | "STAGE_INSTANCE_CREATE"
        | "STAGE_INSTANCE_UPDATE"
        | "STAGE_INSTANCE_DELETE" => Some(GUILDS),
        "CHANNEL_PINS_UPDATE" => pick(GUILDS, DIRECT_MESSAGES),
        "GUILD_MEMBER_UPDATE" => {
            let subject = d
                .get("user")
                .and_then(|u| u.get("id"))
                .and_then(Value::as_str);
            // Discord tells a bot about its own member changes without GUILD_MEMBERS.
            if subject.is_some() && subject == bot_id {
                None
            } else {
                Some(GUILD_MEMBERS)
            }
        }
        "GUILD_MEMBER_ADD" | "GUILD_MEMBER_REMOVE" | "THREAD_MEMBERS_UPDATE" => Some(GUILD_MEMBERS),
        "GUILD_AUDIT_LOG_ENTRY_CREATE" | "GUILD_BAN_ADD" | "GUILD_BAN_REMOVE" => {
            Some(GUILD_MODERATION)
        }
        "GUILD_EMOJIS_UPDATE"
        | "GUILD_STICKERS_UPDATE"
        | "GUILD_SOUNDBOARD_SOUND_CREATE"
        | "GUILD_SOUNDBOARD_SOUND_UPDATE"
        | "GUILD_SOUNDBOARD_SOUND_DELETE"
        | "GUILD_SOUNDBOARD_SOUNDS_UPDATE" => Some(GUILD_EXPRESSIONS),
        "GUILD_INTEGRATIONS_UPDATE"
        | "INTEGRATION_CREATE"
        | "INTEGRATION_UPDATE"
        | "INTEGRATION_DELETE" => Some(GUILD_INTEGRATIONS),
        "WEBHOOKS_UPDATE" => Some(GUILD_WEBHOOKS),
        "INVITE_CREATE" | "INVITE_DELETE" => Some(GUILD_INVITES),
        "VOICE_STATE_UPDATE" | "VOICE_CHANNEL_EFFECT_SEND" => Some(GUILD_VOICE_STATES),
        "PRESENCE_UPDATE" => Some(GUILD_PRESENCES),
        "MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE" | "MESSAGE_DELETE_BULK" => {
            pick(GUILD_MESSAGES, DIRECT_MESSAGES)
        }
        "MESSAGE_REACTION_ADD"
        | "MESSAGE_REACTION_REMOVE"
        | "MESSAGE_REACTION_REMOVE_ALL"
        | "MESSAGE_REACTION_REMOVE_EMOJI" => {
            pick(GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGE_REACTIONS)
        }
        "TYPING_START" => pick(GUILD_MESSAGE_TYPING, DIRECT_MESSAGE_TYPING),
        "GUILD_SCHEDULED_EVENT_CREATE"
        | "GUILD_SCHEDULED_EVENT_UPDATE"
        | "GUILD_SCHEDULED_EVENT_DELETE"
        | "GUILD_SCHEDULED_EVENT_USER_ADD"
        | "GUILD_SCHEDULED_EVENT_USER_REMOVE" => Some(GUILD_SCHEDULED_EVENTS),
        "AUTO_MODERATION_RULE_CREATE"
        | "AUTO_MODERATION_RULE_UPDATE"
        | "AUTO_MODERATION_RULE_DELETE" => Some(AUTO_MODERATION_CONFIGURATION),
        "AUTO_MODERATION_ACTION_EXECUTION" => Some(AUTO_MODERATION_EXECUTION),
        "MESSAGE_POLL_VOTE_ADD" | "MESSAGE_POLL_VOTE_REMOVE" => {
            pick(GUILD_MESSAGE_POLLS, DIRECT_MESSAGE_POLLS)
        }
        _ => None,
    }
}

/// Whether a client that identified with `intents` receives `event`.
pub fn wants(intents: Option<u64>, event: &str, d: &Value, bot_id: Option<&str>) -> bool {
    match (intents, required(event, d, bot_id)) {
        (Some(intents), Some(needed)) => intents & needed == needed,
        _ => true,
    }
}

/// Whether a client with `intents` must get `event` with its message content emptied: a guild
/// message, no MESSAGE_CONTENT, not written by the bot and not mentioning it.
pub fn strips_content(intents: Option<u64>, event: &str, d: &Value, bot_id: Option<&str>) -> bool {
    matches!(event, "MESSAGE_CREATE" | "MESSAGE_UPDATE")
        && lacks_message_content(intents)
        && !d.get("guild_id").is_none_or(Value::is_null)
        && !bot_id.is_some_and(|bot_id| keeps_content(d, |id| id == bot_id))
}

/// Whether [`guild_for`] can change anything for a client with `intents`.
pub fn may_trim_guilds(intents: Option<u64>) -> bool {
    intents
        .is_some_and(|i| i & (GUILD_MEMBERS | GUILD_PRESENCES) != GUILD_MEMBERS | GUILD_PRESENCES)
}

/// A cached guild as a client with `intents` gets it in GUILD_CREATE: presences only with
/// GUILD_PRESENCES; without GUILD_MEMBERS only the bot's own member (as Discord sends).
pub fn guild_for(intents: Option<u64>, guild: &Value, bot_id: Option<&str>) -> Option<Value> {
    let intents = intents?;
    let strip_presences = intents & GUILD_PRESENCES == 0
        && guild
            .get("presences")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
    let strip_members = intents & GUILD_MEMBERS == 0
        && guild
            .get("members")
            .and_then(Value::as_array)
            .is_some_and(|members| {
                members.iter().any(|m| {
                    m.get("user")
                        .and_then(|u| u.get("id"))
                        .and_then(Value::as_str)
                        != bot_id
                })
            });
    if !(strip_presences || strip_members) {
        return None;
    }
    let mut guild = guild.clone();
    if let Some(object) = guild.as_object_mut() {
        if strip_presences {
            object.insert("presences".into(), Value::Array(Vec::new()));
        }
        if strip_members {
            if let Some(Value::Array(members)) = object.get_mut("members") {
                members.retain(|m| {
                    bot_id.is_some()
                        && m.get("user")
                            .and_then(|u| u.get("id"))
                            .and_then(Value::as_str)
                            == bot_id
                });
            }
        }
    }
    Some(guild)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guild_and_direct_events_need_their_own_intents() {
        let guild_message = json!({"guild_id": "1", "content": "x"});
        let dm = json!({"channel_id": "2", "content": "x"});
        assert_eq!(
            required("MESSAGE_CREATE", &guild_message, None),
            Some(GUILD_MESSAGES)
        );
        assert_eq!(required("MESSAGE_CREATE", &dm, None), Some(DIRECT_MESSAGES));
        assert_eq!(
            required("TYPING_START", &guild_message, None),
            Some(GUILD_MESSAGE_TYPING)
        );
        assert_eq!(required("GUILD_MEMBERS_CHUNK", &dm, None), None);
        assert_eq!(required("INTERACTION_CREATE", &dm, None), None);
        assert!(wants(Some(GUILDS), "CHANNEL_CREATE", &guild_message, None));
        assert!(!wants(Some(GUILDS), "MESSAGE_CREATE", &guild_message, None));
        assert!(wants(None, "MESSAGE_CREATE", &guild_message, None));
    }

    #[test]
    fn own_member_updates_need_no_members_intent() {
        let own = json!({"guild_id": "1", "user": {"id": "9"}});
        let other = json!({"guild_id": "1", "user": {"id": "8"}});
        assert!(wants(Some(GUILDS), "GUILD_MEMBER_UPDATE", &own, Some("9")));
        assert!(!wants(
            Some(GUILDS),
            "GUILD_MEMBER_UPDATE",
            &other,
            Some("9")
        ));
    }

    #[test]
    fn content_is_emptied_unless_intent_author_mention_or_dm() {
        let message = json!({"guild_id": "1", "author": {"id": "5"}, "content": "hi",
            "embeds": [{"title": "t"}], "mentions": [], "poll": {}});
        let no_content = Some(GUILD_MESSAGES);
        assert!(strips_content(
            no_content,
            "MESSAGE_CREATE",
            &message,
            Some("9")
        ));
        assert!(!strips_content(
            Some(GUILD_MESSAGES | MESSAGE_CONTENT),
            "MESSAGE_CREATE",
            &message,
            Some("9")
        ));
        let mention = json!({"guild_id": "1", "author": {"id": "5"}, "mentions": [{"id": "9"}]});
        assert!(!strips_content(
            no_content,
            "MESSAGE_CREATE",
            &mention,
            Some("9")
        ));
        let own = json!({"guild_id": "1", "author": {"id": "9"}});
        assert!(!strips_content(
            no_content,
            "MESSAGE_CREATE",
            &own,
            Some("9")
        ));
        let dm = json!({"author": {"id": "5"}, "content": "hi"});
        assert!(!strips_content(
            no_content,
            "MESSAGE_CREATE",
            &dm,
            Some("9")
        ));
        let stripped = without_content(&message);
        assert_eq!(stripped["content"], "");
        assert_eq!(stripped["embeds"], json!([]));
        assert!(stripped.get("poll").is_none());
    }

    #[test]
    fn guild_create_drops_presences_and_other_members_without_their_intents() {
        let guild = json!({"id": "1", "presences": [{"user": {"id": "5"}}],
            "members": [{"user": {"id": "9"}}, {"user": {"id": "5"}}]});
        let trimmed = guild_for(Some(GUILDS), &guild, Some("9")).unwrap();
        assert_eq!(trimmed["presences"], json!([]));
        assert_eq!(trimmed["members"], json!([{"user": {"id": "9"}}]));
        let all = GUILDS | GUILD_MEMBERS | GUILD_PRESENCES;
        assert!(guild_for(Some(all), &guild, Some("9")).is_none());
        assert!(guild_for(None, &guild, Some("9")).is_none());
    }
}
