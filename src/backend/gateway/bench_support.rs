//! Entry points for `benches/user_gateway.rs` (not an API): worlds built through the fixture
//! loader into a temporary store, and the user-gateway work measured on them — user READY,
//! bot READY + GUILD_CREATEs for comparison, a member-list SYNC, a presence change fanned out
//! to subscribed sessions.
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::lists::Lists;
use super::member_list::GuildSubscription;
use super::registry::{Link, Presence, Registry};
use super::user_ready::{self, ReadyContext, UserReadyInfo};
use super::{builders, Inner};
use crate::backend::events::{Dispatch, EventBus};
use crate::backend::model::User;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{AppState, Config};
use crate::backend::store::Store;
use crate::gateway::capabilities::Capabilities;
use crate::gateway::wire::Prepared;

/// Why a bench world could not be built.
#[derive(Debug, thiserror::Error)]
#[error("bench world: {0}")]
pub struct BenchError(String);

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError(e.to_string())
}

/// A fixture with `guilds` guilds of `channels` text channels each, all sharing `members`
/// users; user 1 (token `viewer`) is in every guild.
fn fixture(guilds: usize, channels: usize, members: usize) -> Value {
    let users: Vec<Value> = (1..=members)
        .map(|i| {
            let mut user =
                json!({"id": (1_000_000 + i).to_string(), "username": format!("user{i}")});
            if i == 1 {
                user["token"] = json!("viewer");
            }
            user
        })
        .collect();
    let guilds: Vec<Value> = (1..=guilds)
        .map(|g| {
            let base = 10_000_000 * g as u64;
            json!({
                "id": base.to_string(),
                "name": format!("guild {g}"),
                "owner_id": "1000001",
                "roles": [{"id": (base + 1).to_string(), "name": "Staff", "hoist": true, "permissions": "8"}],
                "channels": (0..channels).map(|c| json!({"id": (base + 100 + c as u64).to_string(),
                    "name": format!("channel-{c}"), "type": 0})).collect::<Vec<_>>(),
                "members": (1..=members).map(|i| {
                    let mut m = json!({"user_id": (1_000_000 + i).to_string()});
                    if i % 20 == 0 { m["roles"] = json!([(base + 1).to_string()]); }
                    m
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"users": users, "guilds": guilds})
}

pub(super) fn inner_for(store: Store) -> Arc<Inner> {
    let state = AppState::new(store, Config::default());
    let config = super::GatewayConfig::default();
    Arc::new(Inner {
        registry: Registry::new(config.limits),
        state,
        config,
        lists: Lists::default(),
        calls: Default::default(),
        ready_guilds: Default::default(),
        pacing: Default::default(),
        barriers: Default::default(),
        shutting_down: std::sync::atomic::AtomicBool::new(false),
    })
}

/// A user in many guilds, for READY sizes and times.
pub struct ReadyWorld {
    inner: Arc<Inner>,
    user: User,
    bot_user: User,
    guild_ids: Vec<Snowflake>,
}

impl ReadyWorld {
    /// Builds the world (slow: every row goes through the fixture loader).
    pub fn new(guilds: usize, channels: usize, members: usize) -> Result<ReadyWorld, BenchError> {
        let store = Store::temporary().map_err(err)?;
        let bytes = fixture(guilds, channels, members).to_string();
        crate::backend::world::load_fixture_bytes(&store, bytes.as_bytes(), "bench")
            .map_err(err)?;
        let user = store
            .user(Snowflake(1_000_001))
            .map_err(err)?
            .ok_or_else(|| err("no viewer"))?;
        let mut bot_user = user.clone();
        bot_user.bot = true;
        let guild_ids = store.guild_ids_of(user.id).map_err(err)?;
        Ok(ReadyWorld {
            inner: inner_for(store),
            user,
            bot_user,
            guild_ids,
        })
    }

    /// Serialized bytes of user READY (and READY_SUPPLEMENTAL) for `capabilities`.
    pub fn user_ready_bytes(&self, capabilities: u64) -> Result<usize, BenchError> {
        let versions = std::collections::HashMap::new();
        let info = UserReadyInfo {
            version: 9,
            user: &self.user,
            session_id: "bench",
            resume_gateway_url: "ws://127.0.0.1",
            guild_ids: &self.guild_ids,
            capabilities: Capabilities(capabilities),
            sessions: json!([]),
            guild_versions: &versions,
        };
        let built = user_ready::build(&ReadyContext {
            store: &self.inner.state.store,
            registry: &self.inner.registry,
            guilds: &self.inner.ready_guilds,
            info: &info,
        })
        .map_err(err)?;
        let mut bytes = built.ready.len();
        if let Some(supplemental) = &built.supplemental {
            bytes += serde_json::to_vec(supplemental).map_err(err)?.len();
        }
        Ok(bytes)
    }

    /// Forgets the rendered guilds, so the next READY renders every guild again (a cold
    /// cache, as after a restart or a change to every guild).
    pub fn forget_rendered(&self) {
        self.inner.ready_guilds.clear();
    }

    /// Serialized bytes of the same data as a bot gets it: READY plus one GUILD_CREATE per
    /// guild (with every member, as for a bot holding GUILD_MEMBERS).
    pub fn bot_bytes(&self) -> Result<usize, BenchError> {
        let store = &self.inner.state.store;
        let ready = builders::ready(
            store,
            &builders::ReadyInfo {
                version: 10,
                user: &self.bot_user,
                application: None,
                session_id: "bench",
                resume_gateway_url: "ws://127.0.0.1",
                shard: None,
                guild_ids: &self.guild_ids,
            },
        )
        .map_err(err)?;
        let mut bytes = serde_json::to_vec(&ready).map_err(err)?.len();
        for guild_id in &self.guild_ids {
            let guild = store
                .guild(*guild_id)
                .map_err(err)?
                .ok_or_else(|| err("no guild"))?;
            let create = builders::guild_create(
                store,
                &self.inner.registry,
                &guild,
                &self.bot_user,
                None,
                builders::DEFAULT_LARGE_THRESHOLD,
            )
            .map_err(err)?;
            bytes += serde_json::to_vec(&create).map_err(err)?.len();
        }
        Ok(bytes)
    }
}

/// One big guild with subscribed sessions, for member lists.
pub struct ListWorld {
    inner: Arc<Inner>,
    guild_id: Snowflake,
    channel: crate::backend::model::Channel,
    receivers: Vec<mpsc::Receiver<Arc<Prepared>>>,
    bus: EventBus,
    toggle: bool,
    /// The first member row of `[0, 99]`: its presence changes (every session holds that row).
    shown: String,
}

impl ListWorld {
    /// A guild of `members` members with `sessions` sessions following its `everyone` list.
    pub fn new(members: usize, sessions: usize) -> Result<ListWorld, BenchError> {
        let store = Store::temporary().map_err(err)?;
        let bytes = fixture(1, 1, members).to_string();
        crate::backend::world::load_fixture_bytes(&store, bytes.as_bytes(), "bench")
            .map_err(err)?;
        let guild_id = Snowflake(10_000_000);
        let channel = store
            .channel(Snowflake(10_000_100))
            .map_err(err)?
            .ok_or_else(|| err("no channel"))?;
        let inner = inner_for(store);
        // Every tenth member online.
        for i in (1..=members).step_by(10) {
            inner.registry.set_presence(
                Snowflake(1_000_000 + i as u64),
                Some(Presence {
                    status: "online".into(),
                    activities: Vec::new(),
                    client_status: None,
                }),
            );
        }
        let (list_id, first_page) = inner
            .lists
            .sync(&inner.state, &inner.registry, &channel, &[(0, 99)])
            .map_err(err)?;
        // Rows are ordered by name, not id: the member whose presence changes is one the
        // sessions' range `[0, 99]` shows (sessions are sent only their ranges' changes).
        let shown = first_page["ops"][0]["items"]
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .find_map(|item| item["member"]["user"]["id"].as_str())
            })
            .ok_or_else(|| err("the first page lists no member"))?
            .to_string();
        let mut receivers = Vec::with_capacity(sessions);
        for s in 0..sessions {
            let record = inner
                .registry
                .create(Snowflake(1_000_001 + s as u64), None, None);
            let (events, rx) = mpsc::channel(4);
            let (control, _) = mpsc::unbounded_channel();
            let mut record = record.lock();
            record.attach(Link {
                conn_id: s as u64,
                events,
                control,
            });
            let mut sub = GuildSubscription::default();
            sub.channels
                .insert(channel.id, (list_id.clone(), vec![(0, 99)]));
            record.subscriptions.guilds.insert(guild_id, sub);
            receivers.push(rx);
        }
        Ok(ListWorld {
            inner,
            guild_id,
            channel,
            receivers,
            bus: EventBus::new(16),
            toggle: false,
            shown,
        })
    }

    /// GUILD_MEMBER_LIST_UPDATE with the SYNC of `[0, 99]`, serialized; its bytes.
    pub fn sync_first_page(&self) -> Result<usize, BenchError> {
        let (_, payload) = self
            .inner
            .lists
            .sync(
                &self.inner.state,
                &self.inner.registry,
                &self.channel,
                &[(0, 99)],
            )
            .map_err(err)?;
        Ok(serde_json::to_vec(&payload).map_err(err)?.len())
    }

    /// One member's presence flips (online / idle): the list update is built once and
    /// delivered to every subscribed session; returns the deliveries.
    pub fn presence_change(&mut self) -> usize {
        self.toggle = !self.toggle;
        let status = if self.toggle { "idle" } else { "online" };
        let event = self.bus.publish(Dispatch::guild(
            "PRESENCE_UPDATE",
            self.guild_id,
            0,
            json!({"user": {"id": self.shown}, "status": status, "activities": [],
                   "guild_id": self.guild_id}),
        ));
        self.inner.lists.on_event(&self.inner, &event);
        let mut delivered = 0;
        for rx in &mut self.receivers {
            while rx.try_recv().is_ok() {
                delivered += 1;
            }
        }
        delivered
    }
}
