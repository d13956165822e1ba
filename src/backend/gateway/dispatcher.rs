//! Routes every event the REST side publishes to the sessions that should see it: audience
//! (guild membership, channel VIEW_CHANNEL, required permissions, listed users), shard
//! (`(guild_id >> 22) % num_shards`, guild-less events on shard 0), intents, and the
//! MESSAGE_CONTENT rule. Sessions number what they receive themselves.
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::builders::{has_intent, on_shard};
use super::registry::Offer;
use super::user_filter;
use super::Inner;
use crate::backend::events::{
    Audience, Event, ROUTE_BARRIER, SESSIONS_REVOKED, SET_PRESENCE, WORLD_RESET,
};
use crate::backend::snowflake::Snowflake;
use crate::gateway::intents;
use crate::gateway::wire::Prepared;

/// Runs until the bus closes.
pub(super) async fn run(inner: Arc<Inner>, mut events: broadcast::Receiver<Arc<Event>>) {
    loop {
        match events.recv().await {
            Ok(event) => {
                // READY's rendered guilds were dropped as the event was published (see
                // `Gateway::start`), before the REST call that wrote it answered.
                route(&inner, &event);
                inner.lists.on_event(&inner, &event);
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                // Events are gone for everyone: no session may pretend to be complete.
                tracing::error!(
                    missed,
                    "gateway dispatcher fell behind the event bus; invalidating every session"
                );
                for record in inner.registry.all() {
                    record.lock().kill();
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The guild an event concerns for shard routing (guild-less events go to shard 0).
pub(super) fn routing_guild(event: &Event) -> Option<Snowflake> {
    event.guild_id().or_else(|| {
        let data = &event.data;
        let id = match event.name {
            "GUILD_CREATE" | "GUILD_UPDATE" | "GUILD_DELETE" => data.get("id"),
            _ => data.get("guild_id"),
        };
        id.and_then(Value::as_str).and_then(Snowflake::parse)
    })
}

/// Whether `user_id` keeps a message's content without MESSAGE_CONTENT: its author, someone
/// it mentions, or a participant of the DM it was sent in.
fn content_exempt(event: &Event, user_id: Snowflake) -> bool {
    matches!(event.audience, Audience::Users(_))
        || intents::keeps_content(&event.data, |id| Snowflake::parse(id) == Some(user_id))
}

/// Whether `user_id` is in the event's audience.
fn in_audience(inner: &Inner, event: &Event, user_id: Snowflake) -> bool {
    let state = &inner.state;
    let member_of =
        |guild_id: Snowflake| matches!(state.store.member(guild_id, user_id), Ok(Some(_)));
    match &event.audience {
        Audience::Users(users) => users.contains(&user_id),
        Audience::GuildAndUsers { guild_id, users } => {
            users.contains(&user_id) || member_of(*guild_id)
        }
        Audience::Guild {
            guild_id,
            channel_id,
            required_permission,
        } => {
            if *required_permission != 0 {
                let Ok(access) = state.guild_access(*guild_id, user_id) else {
                    return false;
                };
                if access.permissions() & required_permission != *required_permission {
                    return false;
                }
            }
            match channel_id {
                Some(channel_id) => {
                    let Ok(Some(user)) = state.store.user(user_id) else {
                        return false;
                    };
                    match state.channel_access(*channel_id, &user) {
                        Ok(_) => true,
                        // The channel itself is gone (a delete): membership decides.
                        Err(crate::backend::error::ApiError::NotFound(_)) => member_of(*guild_id),
                        Err(_) => false,
                    }
                }
                None => member_of(*guild_id),
            }
        }
    }
}

/// The user whose own presence an event is (a session is not told its own presence).
fn presence_subject(event: &Event) -> Option<Snowflake> {
    (event.name == "PRESENCE_UPDATE")
        .then(|| {
            event
                .data
                .get("user")?
                .get("id")?
                .as_str()
                .and_then(Snowflake::parse)
        })
        .flatten()
}

/// Whether a session with `session_intents` gets `event` as far as intents go.
fn wants(event: &Event, session_intents: Option<u64>, user_id: Snowflake) -> bool {
    if event.intents == 0 || has_intent(session_intents, event.intents) {
        return true;
    }
    // Discord sends a bot its own member updates without GUILD_MEMBERS.
    event.name == "GUILD_MEMBER_UPDATE"
        && matches!(&event.audience, Audience::GuildAndUsers { users, .. } if users.contains(&user_id))
}

/// Hands one event to every session that should see it.
pub(super) fn route(inner: &Inner, event: &Event) {
    if event.name == ROUTE_BARRIER {
        inner.barriers.reached(event);
        return;
    }
    if event.name == WORLD_RESET {
        for record in inner.registry.all() {
            let id = {
                let mut record = record.lock();
                record.kill();
                record.id.clone()
            };
            inner.registry.remove(&id);
        }
        inner.registry.forget_live_state();
        inner.lists.clear();
        inner.calls.clear();
        inner.ready_guilds.clear();
        return;
    }
    if event.name == SET_PRESENCE {
        if let Audience::Users(users) = &event.audience {
            for user_id in users {
                super::connection::apply_presence(inner, *user_id, &event.data);
            }
        }
        return;
    }
    if event.name == SESSIONS_REVOKED {
        if let Audience::Users(users) = &event.audience {
            for record in inner.registry.all() {
                let mut record = record.lock();
                if users.contains(&record.user_id) {
                    record.revoke();
                }
            }
        }
        return;
    }
    let guild = routing_guild(event);
    let full = Prepared::new(event.name, event.data.clone());
    let mut stripped: Option<Arc<Prepared>> = None;
    let mut audience_of: HashMap<Snowflake, bool> = HashMap::new();
    let limits = inner.registry.limits;
    let own_presence = presence_subject(event);
    for record in inner.registry.all() {
        let (user_id, session_intents, shard, subscribed) = {
            let record = record.lock();
            // User sessions that sent intents get events by those, as bots do.
            let filtered = record.user_session.as_ref().filter(|s| !s.by_intents);
            let subscribed = filtered.is_none_or(|session| {
                user_filter::wants(
                    &inner.state.store,
                    event,
                    &user_filter::Viewer {
                        user_id: record.user_id,
                        capabilities: session.capabilities,
                        subscriptions: &record.subscriptions,
                    },
                )
            });
            (record.user_id, record.intents, record.shard, subscribed)
        };
        let shard_ok = match guild {
            Some(guild) => on_shard(guild, shard),
            None => shard.is_none_or(|s| s.id == 0),
        };
        if !shard_ok
            || !subscribed
            || !wants(event, session_intents, user_id)
            || own_presence == Some(user_id)
        {
            continue;
        }
        let visible = *audience_of
            .entry(user_id)
            .or_insert_with(|| in_audience(inner, event, user_id));
        if !visible {
            continue;
        }
        let payload = if event.carries_message_content
            && intents::lacks_message_content(session_intents)
            && !content_exempt(event, user_id)
        {
            stripped
                .get_or_insert_with(|| {
                    Prepared::new(event.name, intents::without_content(&event.data))
                })
                .clone()
        } else {
            full.clone()
        };
        if record.lock().offer(&payload, &limits) == Offer::Dropped {
            let id = record.lock().id.clone();
            tracing::warn!(session = %id, "gateway session dropped: too many events while away");
            inner.registry.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::events::{Dispatch, EventBus};
    use crate::backend::gateway::route_barriers::RouteBarriers;
    use crate::backend::store::Store;
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn a_route_barrier_is_reached_only_once_the_dispatcher_has_routed_it() {
        let inner = super::super::bench_support::inner_for(Store::temporary().unwrap());
        // No dispatcher yet: the barrier times out and leaves no waiter behind.
        assert!(!RouteBarriers::wait_routed(&inner, Duration::from_millis(50)).await);
        assert!(inner.barriers.is_idle());
        tokio::spawn(run(inner.clone(), inner.state.bus.subscribe()));
        for _ in 0..3 {
            assert!(RouteBarriers::wait_routed(&inner, Duration::from_secs(5)).await);
        }
        assert!(inner.barriers.is_idle());
    }

    #[test]
    fn message_content_is_emptied_like_discord_does() {
        let data = json!({"content": "secret", "embeds": [{"title": "x"}], "attachments": [{}],
                          "components": [{}], "poll": {}, "id": "1"});
        let out = intents::without_content(&data);
        assert_eq!(
            out,
            json!({"content": "", "embeds": [], "attachments": [], "components": [], "id": "1"})
        );
    }

    #[test]
    fn authors_mentions_and_dms_keep_content() {
        let bus = EventBus::new(16);
        let data = json!({"author": {"id": "5"}, "mentions": [{"id": "6"}], "content": "hi"});
        let guild = bus.publish(Dispatch::channel(
            "MESSAGE_CREATE",
            Snowflake(1),
            Snowflake(2),
            intents::GUILD_MESSAGES,
            data.clone(),
        ));
        assert!(content_exempt(&guild, Snowflake(5)));
        assert!(content_exempt(&guild, Snowflake(6)));
        assert!(!content_exempt(&guild, Snowflake(7)));
        let dm = bus.publish(Dispatch::users(
            "MESSAGE_CREATE",
            vec![Snowflake(7)],
            intents::DIRECT_MESSAGES,
            data,
        ));
        assert!(content_exempt(&dm, Snowflake(7)));
    }

    #[test]
    fn guild_less_events_route_by_the_guild_in_their_data() {
        let bus = EventBus::new(16);
        let create = bus.publish(Dispatch::users(
            "GUILD_CREATE",
            vec![Snowflake(7)],
            intents::GUILDS,
            json!({"id": "4194304"}),
        ));
        assert_eq!(routing_guild(&create), Some(Snowflake(4_194_304)));
        let user = bus.publish(Dispatch::users(
            "USER_UPDATE",
            vec![Snowflake(7)],
            0,
            json!({"id": "7"}),
        ));
        assert_eq!(routing_guild(&user), None);
    }

    #[test]
    fn own_member_updates_bypass_the_members_intent() {
        let bus = EventBus::new(16);
        let update = bus.publish(Dispatch::guild_and_users(
            "GUILD_MEMBER_UPDATE",
            Snowflake(1),
            vec![Snowflake(9)],
            intents::GUILD_MEMBERS,
            json!({}),
        ));
        assert!(wants(&update, Some(intents::GUILDS), Snowflake(9)));
        assert!(!wants(&update, Some(intents::GUILDS), Snowflake(8)));
        assert!(wants(&update, None, Snowflake(8)));
    }
}
