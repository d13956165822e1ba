//! The event bus: every REST mutation publishes the gateway dispatch(es) Discord would send.
//!
//! The gateway subscribes with [`EventBus::subscribe`] and gets every [`Event`] in publication
//! order (`Event::id` is strictly increasing). Each event says who may see it ([`Audience`]) and
//! which intent(s) a session needs ([`Event::intents`]); the gateway applies channel permission
//! checks (for `Audience::Guild` events with a `channel_id`), the MESSAGE_CONTENT rule
//! (`Event::carries_message_content`), shard routing and sequence numbers itself.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::broadcast;

use super::model::Channel;
use super::snowflake::Snowflake;

/// Who an event is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Members of a guild. With `channel_id`, only those who can VIEW_CHANNEL it; with
    /// `required_permission`, only those who also hold that permission (e.g. VIEW_AUDIT_LOG).
    Guild {
        guild_id: Snowflake,
        channel_id: Option<Snowflake>,
        required_permission: u64,
    },
    /// Exactly these users (DMs, USER_UPDATE, the GUILD_CREATE a joiner receives...).
    Users(Vec<Snowflake>),
    /// Members of a guild plus these users (e.g. GUILD_MEMBER_REMOVE also reaches the removed).
    GuildAndUsers {
        guild_id: Snowflake,
        users: Vec<Snowflake>,
    },
}

/// One gateway dispatch (op 0) waiting to be routed.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the bus, strictly increasing from 1 (for ordering and replay).
    pub id: u64,
    /// Dispatch name (`t`), e.g. `MESSAGE_CREATE`.
    pub name: &'static str,
    /// Dispatch payload (`d`), in v10 shape.
    pub data: Value,
    /// Who may receive it.
    pub audience: Audience,
    /// A session receives it if it has ANY of these intents; 0 = always sent.
    pub intents: u64,
    /// True for message events whose content/embeds/attachments/components must be emptied for
    /// sessions without MESSAGE_CONTENT (unless the message mentions the session's user or is a
    /// DM to it — Discord's exceptions).
    pub carries_message_content: bool,
    /// Who did what the event tells (a moderator changing someone's roles, a user joining):
    /// userdoccers' "Guild Subscriptions" sends every action a user does on themselves or on
    /// other members to that user's sessions, whatever it subscribed to.
    pub actor: Option<Snowflake>,
}

impl Event {
    /// The guild this event concerns, if any (for shard routing: `(guild_id >> 22) % shards`).
    pub fn guild_id(&self) -> Option<Snowflake> {
        match &self.audience {
            Audience::Guild { guild_id, .. } | Audience::GuildAndUsers { guild_id, .. } => {
                Some(*guild_id)
            }
            Audience::Users(_) => None,
        }
    }
}

/// The name of the internal event [`Dispatch::sessions_revoked`] publishes.
pub(crate) const SESSIONS_REVOKED: &str = "_SESSIONS_REVOKED";

/// The name of the internal event [`Dispatch::world_reset`] publishes.
pub(crate) const WORLD_RESET: &str = "_WORLD_RESET";

/// The name of the internal event [`Dispatch::route_barrier`] publishes.
pub(crate) const ROUTE_BARRIER: &str = "_ROUTE_BARRIER";

/// The name of the internal event [`Dispatch::set_presence`] publishes.
pub(crate) const SET_PRESENCE: &str = "_SET_PRESENCE";

/// A new event before it is given its bus id.
#[derive(Debug, Clone)]
pub struct Dispatch {
    name: &'static str,
    data: Value,
    audience: Audience,
    intents: u64,
    carries_message_content: bool,
    actor: Option<Snowflake>,
}

impl Dispatch {
    /// An event for `audience`, its message content (if any) sent to every session.
    fn to(name: &'static str, audience: Audience, intents: u64, data: Value) -> Self {
        Dispatch {
            name,
            data,
            audience,
            intents,
            carries_message_content: false,
            actor: None,
        }
    }

    /// An event for a guild's members (only those who can see `channel_id`, when given).
    fn in_guild(
        name: &'static str,
        guild_id: Snowflake,
        channel_id: Option<Snowflake>,
        intents: u64,
        data: Value,
    ) -> Self {
        let audience = Audience::Guild {
            guild_id,
            channel_id,
            required_permission: 0,
        };
        Dispatch::to(name, audience, intents, data)
    }

    /// An event for everyone in a guild holding `intents`.
    pub fn guild(name: &'static str, guild_id: Snowflake, intents: u64, data: Value) -> Self {
        Dispatch::in_guild(name, guild_id, None, intents, data)
    }

    /// An event for members of a guild who can see `channel_id`.
    pub fn channel(
        name: &'static str,
        guild_id: Snowflake,
        channel_id: Snowflake,
        intents: u64,
        data: Value,
    ) -> Self {
        Dispatch::in_guild(name, guild_id, Some(channel_id), intents, data)
    }

    /// An event about a channel, for whoever Discord sends it to: in a guild channel the
    /// members who can see it (with `guild_intents`; `guild_id` is added to an object payload),
    /// in a DM or group DM its recipients (with `dm_intents`).
    pub fn for_channel(
        name: &'static str,
        channel: &Channel,
        guild_intents: u64,
        dm_intents: u64,
        mut data: Value,
    ) -> Self {
        match channel.guild_id {
            Some(guild_id) => {
                if let Some(object) = data.as_object_mut() {
                    object.insert("guild_id".into(), Value::String(guild_id.to_string()));
                }
                Dispatch::channel(name, guild_id, channel.id, guild_intents, data)
            }
            None => Dispatch::users(
                name,
                channel.recipient_ids.clone().unwrap_or_default(),
                dm_intents,
                data,
            ),
        }
    }

    /// Not a dispatch: tells the gateway to close every session of `user_id` with 4004 (its
    /// token was revoked by a logout or a token change); no client ever receives it by name.
    pub fn sessions_revoked(user_id: Snowflake) -> Self {
        Dispatch::to(
            SESSIONS_REVOKED,
            Audience::Users(vec![user_id]),
            0,
            Value::Null,
        )
    }

    /// Not a dispatch: the world was reset under the gateway (test control). Every session is
    /// ended and its connection closed with 4000, so a RESUME gets op 9 `false` and the client
    /// identifies again into the new world; live presences and voice states are forgotten.
    pub fn world_reset() -> Self {
        Dispatch::to(WORLD_RESET, Audience::Users(Vec::new()), 0, Value::Null)
    }

    /// Not a dispatch: marks a point in the bus. Once the gateway has routed it, every event
    /// published before it has been offered to the sessions; `key` says which waiter it frees.
    pub fn route_barrier(key: u64) -> Self {
        Dispatch::to(
            ROUTE_BARRIER,
            Audience::Users(Vec::new()),
            0,
            Value::from(key),
        )
    }

    /// Not a dispatch: sets `user_id`'s presence as its gateway op 3 would (test control acting
    /// as a user); the gateway publishes the PRESENCE_UPDATEs. `data` is op 3's `d`.
    pub fn set_presence(user_id: Snowflake, data: Value) -> Self {
        Dispatch::to(SET_PRESENCE, Audience::Users(vec![user_id]), 0, data)
    }

    /// An event for specific users.
    pub fn users(name: &'static str, users: Vec<Snowflake>, intents: u64, data: Value) -> Self {
        Dispatch::to(name, Audience::Users(users), intents, data)
    }

    /// An event for a guild's members plus extra users.
    pub fn guild_and_users(
        name: &'static str,
        guild_id: Snowflake,
        users: Vec<Snowflake>,
        intents: u64,
        data: Value,
    ) -> Self {
        Dispatch::to(
            name,
            Audience::GuildAndUsers { guild_id, users },
            intents,
            data,
        )
    }

    /// Restricts a guild event to members holding `permission`.
    pub fn requiring(mut self, permission: u64) -> Self {
        if let Audience::Guild {
            required_permission,
            ..
        } = &mut self.audience
        {
            *required_permission = permission;
        }
        self
    }

    /// Names who did it (see [`Event::actor`]).
    pub fn by(mut self, actor: Option<Snowflake>) -> Self {
        self.actor = actor;
        self
    }

    /// Marks a message event subject to the MESSAGE_CONTENT rule.
    pub fn with_message_content(mut self) -> Self {
        self.carries_message_content = true;
        self
    }
}

/// A cheap-to-clone handle on the bus. Publishing with no subscriber is fine (events drop).
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
    next_id: Arc<AtomicU64>,
    observers: Arc<RwLock<Vec<Observer>>>,
}

/// Called with every event as it is published, before [`EventBus::publish`] returns; `false`
/// unregisters it (its owner is gone).
pub(crate) type Observer = Arc<dyn Fn(&Event) -> bool + Send + Sync>;

impl EventBus {
    /// A bus that buffers up to `capacity` events per slow subscriber before it lags.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(16));
        EventBus {
            sender,
            next_id: Arc::new(AtomicU64::new(1)),
            observers: Arc::default(),
        }
    }

    /// Calls `observer` with every event published from now on, synchronously, before
    /// `publish` returns (for caches that must never outlive the write an event reports: the
    /// REST call that made the write answers only after its events were published).
    pub(crate) fn observe(&self, observer: Observer) {
        self.observers.write().push(observer);
    }

    /// Publishes one event; returns it (with its id) for callers that want to log it.
    pub fn publish(&self, dispatch: Dispatch) -> Arc<Event> {
        let event = Arc::new(Event {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            name: dispatch.name,
            data: dispatch.data,
            audience: dispatch.audience,
            intents: dispatch.intents,
            carries_message_content: dispatch.carries_message_content,
            actor: dispatch.actor,
        });
        let gone: Vec<Observer> = self
            .observers
            .read()
            .iter()
            .filter(|observe| !observe(&event))
            .cloned()
            .collect();
        if !gone.is_empty() {
            self.observers
                .write()
                .retain(|kept| !gone.iter().any(|g| Arc::ptr_eq(g, kept)));
        }
        let _ = self.sender.send(event.clone());
        event
    }

    /// Every event published from now on, in order. A receiver that falls more than the
    /// capacity behind gets `RecvError::Lagged` and should resynchronise its sessions.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::intents;
    use serde_json::json;

    #[tokio::test]
    async fn subscribers_see_events_in_order_with_increasing_ids() {
        let bus = EventBus::new(16);
        let mut receiver = bus.subscribe();
        bus.publish(Dispatch::guild(
            "GUILD_UPDATE",
            Snowflake(1),
            intents::GUILDS,
            json!({}),
        ));
        bus.publish(
            Dispatch::channel(
                "MESSAGE_CREATE",
                Snowflake(1),
                Snowflake(2),
                intents::GUILD_MESSAGES,
                json!({"content": "hi"}),
            )
            .with_message_content(),
        );
        let first = receiver.recv().await.unwrap();
        let second = receiver.recv().await.unwrap();
        assert_eq!(first.name, "GUILD_UPDATE");
        assert_eq!(second.name, "MESSAGE_CREATE");
        assert!(second.id > first.id);
        assert!(second.carries_message_content);
        assert_eq!(second.guild_id(), Some(Snowflake(1)));
    }
}
