//! What a user (not bot) session receives beyond the audience rules, as userdoccers' "Guild
//! Subscriptions" describes (for sessions that identified without `intents`, as the official
//! client does; user-account libraries that send intents get events by those, as before):
//! - the settings event its capabilities ask for: USER_SETTINGS_PROTO_UPDATE under
//!   USER_SETTINGS_PROTO, the legacy USER_SETTINGS_UPDATE otherwise (never both);
//! - TYPING_START in a guild only once it subscribed to the guild with `typing`;
//! - other members' GUILD_MEMBER_ADD / UPDATE / REMOVE only with `member_updates` or for the
//!   users listed in `members` (its own always, and those of members it acted on: the roles
//!   it gave, the nickname it set, the member it kicked);
//! - THREAD_* events of threads it is not in only with `threads`;
//! - embedded-activity events only with `activities`;
//! - in large guilds (over 250 members) it has not subscribed to with `typing`: no messages,
//!   reactions or presences, except messages that concern it (its own, mentioning it,
//!   @everyone, one of its roles).
use serde_json::Value;

use super::member_list::{GuildSubscription, Subscriptions};
use crate::backend::events::Event;
use crate::backend::snowflake::Snowflake;
use crate::backend::store::Store;
use crate::gateway::capabilities::{self as caps, Capabilities};

/// Members above which a guild is large for user sessions (userdoccers: `large_threshold`
/// defaults to 250 for users).
pub(crate) const LARGE: usize = 250;

/// Events that stop in large guilds without a `typing` subscription.
const NON_STATEFUL: [&str; 9] = [
    "MESSAGE_CREATE",
    "MESSAGE_UPDATE",
    "MESSAGE_DELETE",
    "MESSAGE_DELETE_BULK",
    "MESSAGE_REACTION_ADD",
    "MESSAGE_REACTION_REMOVE",
    "MESSAGE_REACTION_REMOVE_ALL",
    "MESSAGE_REACTION_REMOVE_EMOJI",
    "PRESENCE_UPDATE",
];

/// The session an event is weighed for.
pub(crate) struct Viewer<'a> {
    /// Its user.
    pub user_id: Snowflake,
    /// What IDENTIFY asked for.
    pub capabilities: Capabilities,
    /// Its op 14 / op 37 subscriptions.
    pub subscriptions: &'a Subscriptions,
}

fn id_at(value: &Value, key: &str) -> Option<Snowflake> {
    value
        .get(key)
        .and_then(Value::as_str)
        .and_then(Snowflake::parse)
}

/// Whether the user session `viewer` gets `event` (already in its audience).
pub(crate) fn wants(store: &Store, event: &Event, viewer: &Viewer<'_>) -> bool {
    match event.name {
        "USER_SETTINGS_UPDATE" => return !viewer.capabilities.has(caps::USER_SETTINGS_PROTO),
        "USER_SETTINGS_PROTO_UPDATE" => return viewer.capabilities.has(caps::USER_SETTINGS_PROTO),
        _ => {}
    }
    let Some(guild_id) = event.guild_id() else {
        return true;
    };
    let subscription = viewer.subscriptions.guilds.get(&guild_id);
    let flag = |get: fn(&GuildSubscription) -> bool| subscription.is_some_and(get);
    let data = &event.data;
    match event.name {
        "TYPING_START" => flag(|s| s.typing),
        "GUILD_MEMBER_ADD" | "GUILD_MEMBER_UPDATE" | "GUILD_MEMBER_REMOVE" => {
            let subject = data.get("user").and_then(|u| id_at(u, "id"));
            // Its own actions on itself or on other members always reach it.
            subject == Some(viewer.user_id)
                || event.actor == Some(viewer.user_id)
                || flag(|s| s.member_updates)
                || subject.is_some_and(|id| subscription.is_some_and(|s| s.members.contains(&id)))
        }
        "THREAD_CREATE" | "THREAD_UPDATE" | "THREAD_DELETE" | "THREAD_MEMBERS_UPDATE" => {
            flag(|s| s.threads) || in_thread(store, data, viewer.user_id)
        }
        name if name.starts_with("EMBEDDED_ACTIVITY") => flag(|s| s.activities),
        name if NON_STATEFUL.contains(&name) && store.member_count(guild_id) > LARGE => {
            flag(|s| s.typing) || concerns(store, guild_id, data, viewer.user_id)
        }
        _ => true,
    }
}

/// Whether `user_id` is in the thread a THREAD_* event is about (or the event adds or removes
/// it).
fn in_thread(store: &Store, data: &Value, user_id: Snowflake) -> bool {
    let listed = |key: &str, pick: fn(&Value) -> Option<Snowflake>| {
        data.get(key)
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|v| pick(v) == Some(user_id)))
    };
    if listed("added_members", |m| id_at(m, "user_id"))
        || listed("removed_member_ids", |v| {
            v.as_str().and_then(Snowflake::parse)
        })
    {
        return true;
    }
    id_at(data, "id")
        .is_some_and(|thread| matches!(store.thread_members.get((thread, user_id)), Ok(Some(_))))
}

/// Whether a message event is forced through to `user_id`: it wrote the message, or the
/// message mentions it, everyone, or one of its roles.
fn concerns(store: &Store, guild_id: Snowflake, data: &Value, user_id: Snowflake) -> bool {
    if data.get("author").and_then(|a| id_at(a, "id")) == Some(user_id)
        || data.get("mention_everyone").and_then(Value::as_bool) == Some(true)
    {
        return true;
    }
    let ids = |key: &str| -> Vec<Snowflake> {
        data.get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| {
                        v.as_str()
                            .and_then(Snowflake::parse)
                            .or_else(|| id_at(v, "id"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    if ids("mentions").contains(&user_id) {
        return true;
    }
    let roles = ids("mention_roles");
    !roles.is_empty()
        && matches!(store.member(guild_id, user_id), Ok(Some(m)) if m.roles.iter().any(|r| roles.contains(r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::events::{Dispatch, EventBus};
    use serde_json::json;

    #[test]
    fn settings_events_follow_the_proto_capability() {
        let store = Store::temporary().unwrap();
        let bus = EventBus::new(16);
        let subscriptions = Subscriptions::default();
        let viewer = |capabilities| Viewer {
            user_id: Snowflake(1),
            capabilities: Capabilities(capabilities),
            subscriptions: &subscriptions,
        };
        let legacy = bus.publish(Dispatch::users(
            "USER_SETTINGS_UPDATE",
            vec![Snowflake(1)],
            0,
            json!({}),
        ));
        let proto = bus.publish(Dispatch::users(
            "USER_SETTINGS_PROTO_UPDATE",
            vec![Snowflake(1)],
            0,
            json!({}),
        ));
        assert!(wants(&store, &legacy, &viewer(0)));
        assert!(!wants(&store, &proto, &viewer(0)));
        assert!(!wants(&store, &legacy, &viewer(caps::USER_SETTINGS_PROTO)));
        assert!(wants(&store, &proto, &viewer(caps::USER_SETTINGS_PROTO)));
    }

    #[test]
    fn guild_events_follow_the_subscription_flags() {
        let store = Store::temporary().unwrap();
        let bus = EventBus::new(16);
        let guild = Snowflake(5);
        let mut subscriptions = Subscriptions::default();
        let typing = bus.publish(Dispatch::guild(
            "TYPING_START",
            guild,
            0,
            json!({"user_id": "2"}),
        ));
        let member = |id: &str| {
            bus.publish(Dispatch::guild(
                "GUILD_MEMBER_UPDATE",
                guild,
                0,
                json!({"user": {"id": id}}),
            ))
        };
        let thread = bus.publish(Dispatch::guild(
            "THREAD_UPDATE",
            guild,
            0,
            json!({"id": "9"}),
        ));
        let check = |subscriptions: &Subscriptions, event: &Event| {
            wants(
                &store,
                event,
                &Viewer {
                    user_id: Snowflake(1),
                    capabilities: Capabilities(16381),
                    subscriptions,
                },
            )
        };
        assert!(!check(&subscriptions, &typing));
        assert!(check(&subscriptions, &member("1")));
        assert!(!check(&subscriptions, &member("2")));
        assert!(!check(&subscriptions, &thread));
        let sub = subscriptions.guilds.entry(guild).or_default();
        sub.members.push(Snowflake(3));
        assert!(check(&subscriptions, &member("3")));
        assert!(!check(&subscriptions, &member("2")));
        let sub = subscriptions.guilds.entry(guild).or_default();
        sub.typing = true;
        sub.member_updates = true;
        sub.threads = true;
        assert!(check(&subscriptions, &typing));
        assert!(check(&subscriptions, &member("2")));
        assert!(check(&subscriptions, &thread));
    }

    #[test]
    fn a_users_own_actions_on_other_members_reach_it() {
        let store = Store::temporary().unwrap();
        let bus = EventBus::new(16);
        let guild = Snowflake(5);
        let subscriptions = Subscriptions::default();
        let viewer = Viewer {
            user_id: Snowflake(1),
            capabilities: Capabilities(16381),
            subscriptions: &subscriptions,
        };
        for name in [
            "GUILD_MEMBER_ADD",
            "GUILD_MEMBER_UPDATE",
            "GUILD_MEMBER_REMOVE",
        ] {
            let about_2 = |actor| {
                bus.publish(Dispatch::guild(name, guild, 0, json!({"user": {"id": "2"}})).by(actor))
            };
            // Member 2 changed by someone else, or by nobody named: not without member_updates.
            assert!(
                !wants(&store, &about_2(Some(Snowflake(3))), &viewer),
                "{name}"
            );
            assert!(!wants(&store, &about_2(None), &viewer), "{name}");
            // Member 2 changed by the viewer (its roles, its nickname, a kick): always.
            assert!(
                wants(&store, &about_2(Some(Snowflake(1))), &viewer),
                "{name}"
            );
        }
    }
}
