//! Per-shard state cache built from upstream dispatches: what a new client's READY and
//! GUILD_CREATEs are crafted from. Guilds are kept as the JSON objects Discord sent, with the
//! parts `cache` switches off stripped, and kept current by the update events.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::config::CacheConfig;
use crate::gateway::wire::Prepared;

/// One shard's cached state.
#[derive(Debug, Clone, Default)]
pub struct ShardCache {
    /// Upstream's READY `d` (user, application, shard...), if the shard got one.
    pub ready: Option<Value>,
    /// Guilds by id: full GUILD_CREATE objects, or `{id, unavailable: true}`.
    guilds: BTreeMap<String, CachedGuild>,
    /// Each guild's GUILD_CREATE (or GUILD_DELETE) as sent to clients, encoded once and shared
    /// by every client's replay buffer until the guild changes.
    wire: HashMap<String, Arc<Prepared>>,
    config: CacheConfig,
}

/// A guild list: each element's key and its JSON text, in upstream's order.
type CompactList = Vec<(String, Box<str>)>;

/// One cached guild. List elements (members, channels, ...) are kept as compact JSON text:
/// a JSON tree costs several times its text, and 100,000 members must fit in little memory.
#[derive(Debug, Clone, Default)]
struct CachedGuild {
    /// Everything but the list fields.
    fields: Map<String, Value>,
    /// List fields in upstream's order: element key and its JSON.
    lists: Vec<(&'static str, CompactList)>,
}

impl CachedGuild {
    fn stub(id: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("id".into(), Value::String(id.to_owned()));
        fields.insert("unavailable".into(), Value::Bool(true));
        CachedGuild {
            fields,
            lists: Vec::new(),
        }
    }

    fn from_map(mut map: Map<String, Value>) -> Self {
        let mut lists = Vec::new();
        for field in LIST_FIELDS {
            if !matches!(map.get(*field), Some(Value::Array(_))) {
                continue;
            }
            if let Some(Value::Array(items)) = map.remove(*field) {
                lists.push((*field, compact_list(field, &items)));
            }
        }
        CachedGuild { fields: map, lists }
    }

    fn unavailable(&self) -> bool {
        self.fields.get("unavailable").and_then(Value::as_bool) == Some(true)
    }

    fn list_mut(&mut self, field: &'static str) -> &mut CompactList {
        let index = match self.lists.iter().position(|(name, _)| *name == field) {
            Some(index) => index,
            None => {
                self.lists.push((field, Vec::new()));
                self.lists.len() - 1
            }
        };
        &mut self.lists[index].1
    }

    /// The guild as GUILD_CREATE JSON text, spliced from the cached texts: building a tree
    /// first would cost ~10x the text for every guild a client is sent.
    fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(&self.fields).unwrap_or_else(|_| b"{}".to_vec());
        out.pop(); // the closing brace
        for (field, items) in &self.lists {
            if out.len() > 1 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(b"\":[");
            for (n, (_, json)) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(json.as_bytes());
            }
            out.push(b']');
        }
        out.push(b'}');
        out
    }

    fn to_value(&self) -> Value {
        let mut map = self.fields.clone();
        for (field, items) in &self.lists {
            let items = items
                .iter()
                .filter_map(|(_, json)| serde_json::from_str(json).ok())
                .collect();
            map.insert((*field).to_owned(), Value::Array(items));
        }
        Value::Object(map)
    }
}

/// `items` as (key, compact JSON); elements without a key are keyed by position.
fn compact_list(field: &str, items: &[Value]) -> CompactList {
    items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let key = element_key(field, item).unwrap_or_else(|| format!("#{n}"));
            (key, item.to_string().into_boxed_str())
        })
        .collect()
}

/// The `&'static` name of list field `field`.
fn list_field(field: &str) -> Option<&'static str> {
    LIST_FIELDS.iter().copied().find(|f| *f == field)
}

/// Guild fields holding arrays of objects with an `id`, and which switch keeps them.
fn list_enabled(config: &CacheConfig, field: &str) -> bool {
    match field {
        "channels" | "threads" => config.channels,
        "roles" => config.roles,
        "emojis" => config.emojis,
        "stickers" => config.stickers,
        "members" => config.members || config.current_member,
        "presences" => config.presences,
        "voice_states" => config.voice_states,
        "stage_instances" => config.stage_instances,
        "guild_scheduled_events" => config.scheduled_events,
        _ => true,
    }
}

const LIST_FIELDS: &[&str] = &[
    "channels",
    "threads",
    "roles",
    "emojis",
    "stickers",
    "members",
    "presences",
    "voice_states",
    "stage_instances",
    "guild_scheduled_events",
];

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// The key identifying an element of a guild list (members and presences by user id,
/// voice states by user id, everything else by `id`).
fn element_key(field: &str, element: &Value) -> Option<String> {
    match field {
        "members" | "presences" | "voice_states" => element
            .get("user")
            .and_then(|user| str_field(user, "id"))
            .or_else(|| str_field(element, "user_id"))
            .map(str::to_owned),
        _ => str_field(element, "id").map(str::to_owned),
    }
}

impl ShardCache {
    /// An empty cache keeping what `config` enables.
    pub fn new(config: CacheConfig) -> Self {
        ShardCache {
            ready: None,
            guilds: BTreeMap::new(),
            wire: HashMap::new(),
            config,
        }
    }

    /// Guilds cached, available or not.
    pub fn guild_count(&self) -> usize {
        self.guilds.len()
    }

    /// One cached guild as a GUILD_CREATE object (or the unavailable stub).
    pub fn guild(&self, id: &str) -> Option<Value> {
        self.guilds.get(id).map(CachedGuild::to_value)
    }

    /// The bot's user id, from upstream's READY.
    pub fn bot_id(&self) -> Option<&str> {
        self.ready
            .as_ref()
            .and_then(|ready| ready.get("user"))
            .and_then(|user| str_field(user, "id"))
    }

    /// Strips what the configuration does not keep from a GUILD_CREATE object.
    fn trim_guild(&self, guild: &mut Map<String, Value>) {
        let bot_id = self.bot_id().map(str::to_owned);
        for field in LIST_FIELDS {
            if !list_enabled(&self.config, field) {
                guild.insert((*field).to_owned(), Value::Array(Vec::new()));
            } else if *field == "members" && !self.config.members {
                if let Some(Value::Array(members)) = guild.get_mut("members") {
                    members.retain(|member| {
                        bot_id.is_some() && element_key("members", member) == bot_id
                    });
                }
            }
        }
    }

    /// The dispatch a client gets for cached guild `id`: GUILD_CREATE with the cached state,
    /// or GUILD_DELETE `unavailable` for a guild upstream has not sent yet.
    pub fn guild_event(&mut self, id: &str) -> Option<Arc<Prepared>> {
        if let Some(event) = self.wire.get(id) {
            return Some(event.clone());
        }
        let guild = self.guilds.get(id)?;
        let name = if guild.unavailable() {
            "GUILD_DELETE"
        } else {
            "GUILD_CREATE"
        };
        // Kept as JSON bytes: a fraction of the tree's size (ETF clients transcode from it).
        let event = Prepared::from_json(name, guild.to_json());
        self.wire.insert(id.to_owned(), event.clone());
        Some(event)
    }

    /// Cached guild ids in order.
    pub fn guild_ids(&self) -> Vec<String> {
        self.guilds.keys().cloned().collect()
    }

    /// Applies one upstream dispatch. Returns whether the cache changed.
    pub fn apply(&mut self, event: &str, d: &Value) -> bool {
        let changed = self.apply_to_state(event, d);
        if changed {
            let guild_id = match event {
                "GUILD_CREATE" | "GUILD_UPDATE" | "GUILD_DELETE" => str_field(d, "id"),
                _ => str_field(d, "guild_id"),
            };
            match guild_id {
                Some(id) if event != "READY" => {
                    self.wire.remove(id);
                }
                _ => self.wire.clear(),
            }
        }
        changed
    }

    /// Whether [`ShardCache::apply`] can change anything for `event` (the events
    /// `apply_to_state` handles); other dispatches pass through without being parsed.
    pub fn uses(event: &str) -> bool {
        matches!(
            event,
            "READY"
                | "GUILD_CREATE"
                | "GUILD_UPDATE"
                | "GUILD_DELETE"
                | "CHANNEL_CREATE"
                | "CHANNEL_UPDATE"
                | "CHANNEL_DELETE"
                | "THREAD_CREATE"
                | "THREAD_UPDATE"
                | "THREAD_DELETE"
                | "GUILD_ROLE_CREATE"
                | "GUILD_ROLE_UPDATE"
                | "GUILD_ROLE_DELETE"
                | "GUILD_MEMBER_ADD"
                | "GUILD_MEMBER_UPDATE"
                | "GUILD_MEMBER_REMOVE"
                | "PRESENCE_UPDATE"
                | "VOICE_STATE_UPDATE"
                | "STAGE_INSTANCE_CREATE"
                | "STAGE_INSTANCE_UPDATE"
                | "STAGE_INSTANCE_DELETE"
                | "GUILD_SCHEDULED_EVENT_CREATE"
                | "GUILD_SCHEDULED_EVENT_UPDATE"
                | "GUILD_SCHEDULED_EVENT_DELETE"
                | "GUILD_EMOJIS_UPDATE"
                | "GUILD_STICKERS_UPDATE"
        )
    }

    fn apply_to_state(&mut self, event: &str, d: &Value) -> bool {
        match event {
            "READY" => {
                let mut ready = d.clone();
                self.guilds.clear();
                if let Some(guilds) = ready.get("guilds").and_then(Value::as_array) {
                    for guild in guilds {
                        if let Some(id) = str_field(guild, "id") {
                            self.guilds.insert(id.to_owned(), CachedGuild::stub(id));
                        }
                    }
                }
                if let Some(object) = ready.as_object_mut() {
                    object.insert("guilds".into(), Value::Array(Vec::new()));
                }
                self.ready = Some(ready);
                true
            }
            "GUILD_CREATE" => {
                let (Some(id), Some(object)) = (str_field(d, "id"), d.as_object()) else {
                    return false;
                };
                let mut guild = object.clone();
                self.trim_guild(&mut guild);
                self.guilds
                    .insert(id.to_owned(), CachedGuild::from_map(guild));
                true
            }
            "GUILD_UPDATE" => self.with_guild(str_field(d, "id"), |guild| {
                if let Some(update) = d.as_object() {
                    for (key, value) in update {
                        if !LIST_FIELDS.contains(&key.as_str()) {
                            guild.fields.insert(key.clone(), value.clone());
                        }
                    }
                }
            }),
            "GUILD_DELETE" => {
                let Some(id) = str_field(d, "id") else {
                    return false;
                };
                if d.get("unavailable").and_then(Value::as_bool) == Some(true) {
                    self.guilds.insert(id.to_owned(), CachedGuild::stub(id));
                } else {
                    self.guilds.remove(id);
                }
                true
            }
            "CHANNEL_CREATE" | "CHANNEL_UPDATE" => self.upsert("channels", d),
            "CHANNEL_DELETE" => self.remove("channels", d, str_field(d, "id")),
            "THREAD_CREATE" | "THREAD_UPDATE" => self.upsert("threads", d),
            "THREAD_DELETE" => self.remove("threads", d, str_field(d, "id")),
            "GUILD_ROLE_CREATE" | "GUILD_ROLE_UPDATE" => match d.get("role") {
                Some(role) => self.upsert_in(str_field(d, "guild_id"), "roles", role),
                None => false,
            },
            "GUILD_ROLE_DELETE" => self.remove("roles", d, str_field(d, "role_id")),
            "GUILD_MEMBER_ADD" | "GUILD_MEMBER_UPDATE" => {
                let is_bot = element_key("members", d).as_deref() == self.bot_id();
                if !(self.config.members || (self.config.current_member && is_bot)) {
                    return false;
                }
                let mut member = d.clone();
                if let Some(object) = member.as_object_mut() {
                    object.remove("guild_id");
                }
                self.upsert_in(str_field(d, "guild_id"), "members", &member)
            }
            "GUILD_MEMBER_REMOVE" => {
                let key = d.get("user").and_then(|user| str_field(user, "id"));
                self.remove("members", d, key)
            }
            "PRESENCE_UPDATE" => self.upsert("presences", d),
            "VOICE_STATE_UPDATE" => {
                if d.get("channel_id").is_none_or(Value::is_null) {
                    self.remove("voice_states", d, str_field(d, "user_id"))
                } else {
                    self.upsert("voice_states", d)
                }
            }
            "STAGE_INSTANCE_CREATE" | "STAGE_INSTANCE_UPDATE" => self.upsert("stage_instances", d),
            "STAGE_INSTANCE_DELETE" => self.remove("stage_instances", d, str_field(d, "id")),
            "GUILD_SCHEDULED_EVENT_CREATE" | "GUILD_SCHEDULED_EVENT_UPDATE" => {
                self.upsert("guild_scheduled_events", d)
            }
            "GUILD_SCHEDULED_EVENT_DELETE" => {
                self.remove("guild_scheduled_events", d, str_field(d, "id"))
            }
            "GUILD_EMOJIS_UPDATE" => self.replace_list(d, "emojis"),
            "GUILD_STICKERS_UPDATE" => self.replace_list(d, "stickers"),
            _ => false,
        }
    }

    fn with_guild(&mut self, id: Option<&str>, change: impl FnOnce(&mut CachedGuild)) -> bool {
        match id.and_then(|id| self.guilds.get_mut(id)) {
            Some(guild) if !guild.unavailable() => {
                change(guild);
                true
            }
            _ => false,
        }
    }

    fn upsert(&mut self, field: &str, d: &Value) -> bool {
        self.upsert_in(str_field(d, "guild_id"), field, d)
    }

    fn upsert_in(&mut self, guild_id: Option<&str>, field: &str, element: &Value) -> bool {
        if !list_enabled(&self.config, field) {
            return false;
        }
        let (Some(key), Some(field)) = (element_key(field, element), list_field(field)) else {
            return false;
        };
        self.with_guild(guild_id, |guild| {
            let items = guild.list_mut(field);
            match items.iter_mut().find(|(k, _)| *k == key) {
                Some((_, existing)) => {
                    let merged = match (
                        serde_json::from_str::<Value>(existing).ok(),
                        element.as_object(),
                    ) {
                        (Some(Value::Object(mut old)), Some(update)) => {
                            for (k, v) in update {
                                old.insert(k.clone(), v.clone());
                            }
                            Value::Object(old)
                        }
                        _ => element.clone(),
                    };
                    *existing = merged.to_string().into_boxed_str();
                }
                None => items.push((key, element.to_string().into_boxed_str())),
            }
        })
    }

    fn remove(&mut self, field: &str, d: &Value, key: Option<&str>) -> bool {
        let Some(key) = key.map(str::to_owned) else {
            return false;
        };
        let Some(field) = list_field(field) else {
            return false;
        };
        self.with_guild(str_field(d, "guild_id"), |guild| {
            guild.list_mut(field).retain(|(k, _)| *k != key);
        })
    }

    fn replace_list(&mut self, d: &Value, field: &str) -> bool {
        if !list_enabled(&self.config, field) {
            return false;
        }
        let (Some(Value::Array(list)), Some(field)) = (d.get(field), list_field(field)) else {
            return false;
        };
        self.with_guild(str_field(d, "guild_id"), |guild| {
            *guild.list_mut(field) = compact_list(field, list);
        })
    }

    /// Everything needed to rebuild this cache after a restart.
    pub fn snapshot(&self) -> Value {
        serde_json::json!({
            "ready": self.ready,
            "guilds": self.guilds.values().map(CachedGuild::to_value).collect::<Vec<_>>(),
        })
    }

    /// Restores a [`ShardCache::snapshot`].
    pub fn restore(config: CacheConfig, snapshot: &Value) -> Self {
        let mut cache = ShardCache::new(config);
        cache.ready = snapshot.get("ready").filter(|r| !r.is_null()).cloned();
        if let Some(guilds) = snapshot.get("guilds").and_then(Value::as_array) {
            for guild in guilds {
                if let (Some(id), Some(map)) = (str_field(guild, "id"), guild.as_object()) {
                    cache
                        .guilds
                        .insert(id.to_owned(), CachedGuild::from_map(map.clone()));
                }
            }
        }
        cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::codec::Encoding;
    use serde_json::json;

    #[test]
    fn spliced_guild_json_is_the_guild() {
        let guild = json!({"id": "1", "name": "g\"q\u{e9}", "channels": [{"id": "10", "name": "a"}, {"id": "11"}],
            "members": [{"user": {"id": "9"}, "nick": null}], "roles": [], "emojis": []});
        let cached = CachedGuild::from_map(guild.as_object().unwrap().clone());
        let spliced: Value = serde_json::from_slice(&cached.to_json()).unwrap();
        assert_eq!(spliced, guild);
        assert_eq!(spliced, cached.to_value());
        let only_lists =
            CachedGuild::from_map(json!({"roles": [{"id": "2"}]}).as_object().unwrap().clone());
        assert_eq!(
            serde_json::from_slice::<Value>(&only_lists.to_json()).unwrap(),
            json!({"roles": [{"id": "2"}]})
        );
        let stub = CachedGuild::stub("5");
        assert_eq!(
            serde_json::from_slice::<Value>(&stub.to_json()).unwrap(),
            json!({"id": "5", "unavailable": true})
        );
    }

    fn cache(config: CacheConfig) -> ShardCache {
        let mut cache = ShardCache::new(config);
        cache.apply(
            "READY",
            &json!({"user": {"id": "9"}, "session_id": "s", "guilds": [{"id": "1", "unavailable": true}, {"id": "2", "unavailable": true}]}),
        );
        cache.apply(
            "GUILD_CREATE",
            &json!({"id": "1", "name": "g", "channels": [{"id": "10", "name": "general"}],
                    "roles": [{"id": "1", "name": "@everyone"}],
                    "members": [{"user": {"id": "9"}}, {"user": {"id": "7"}}],
                    "emojis": [{"id": "5"}]}),
        );
        cache
    }

    #[test]
    fn ready_guilds_start_unavailable_and_guild_create_fills_them() {
        let cache = cache(CacheConfig::default());
        assert_eq!(cache.guild_count(), 2);
        assert_eq!(cache.guild("2").unwrap()["unavailable"], true);
        let guild = cache.guild("1").unwrap();
        assert_eq!(guild["channels"][0]["name"], "general");
        // Default config: no emojis, members only the bot itself.
        assert_eq!(guild["emojis"], json!([]));
        assert_eq!(guild["members"], json!([{"user": {"id": "9"}}]));
        assert_eq!(cache.ready.as_ref().unwrap()["guilds"], json!([]));
    }

    #[test]
    fn guild_events_are_shared_until_the_guild_changes() {
        let mut cache = cache(CacheConfig::default());
        let first = cache.guild_event("1").unwrap();
        assert_eq!(first.name, "GUILD_CREATE");
        assert!(Arc::ptr_eq(&first, &cache.guild_event("1").unwrap()));
        assert_eq!(cache.guild_event("2").unwrap().name, "GUILD_DELETE");
        cache.apply(
            "CHANNEL_CREATE",
            &json!({"id": "11", "guild_id": "1", "name": "b"}),
        );
        let changed = cache.guild_event("1").unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        let json: Value = serde_json::from_slice(changed.data(Encoding::Json).unwrap()).unwrap();
        assert_eq!(json["channels"][1]["name"], "b");
        assert!(cache.guild_event("3").is_none());
    }

    #[test]
    fn update_events_keep_the_guild_current() {
        let config = CacheConfig {
            members: true,
            ..CacheConfig::default()
        };
        let mut cache = cache(config);
        cache.apply(
            "CHANNEL_CREATE",
            &json!({"id": "11", "guild_id": "1", "name": "b"}),
        );
        cache.apply(
            "CHANNEL_UPDATE",
            &json!({"id": "10", "guild_id": "1", "name": "renamed"}),
        );
        cache.apply(
            "GUILD_ROLE_CREATE",
            &json!({"guild_id": "1", "role": {"id": "3", "name": "mod"}}),
        );
        cache.apply(
            "GUILD_ROLE_DELETE",
            &json!({"guild_id": "1", "role_id": "1"}),
        );
        cache.apply(
            "GUILD_MEMBER_ADD",
            &json!({"guild_id": "1", "user": {"id": "8"}, "roles": []}),
        );
        cache.apply(
            "GUILD_MEMBER_REMOVE",
            &json!({"guild_id": "1", "user": {"id": "7"}}),
        );
        cache.apply("GUILD_UPDATE", &json!({"id": "1", "name": "new name"}));
        let guild = cache.guild("1").unwrap();
        assert_eq!(guild["name"], "new name");
        assert_eq!(
            guild["channels"],
            json!([{"id": "10", "name": "renamed", "guild_id": "1"}, {"id": "11", "guild_id": "1", "name": "b"}])
        );
        assert_eq!(guild["roles"], json!([{"id": "3", "name": "mod"}]));
        let members: Vec<&str> = guild["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(members, vec!["9", "8"]);
        cache.apply("CHANNEL_DELETE", &json!({"id": "10", "guild_id": "1"}));
        assert_eq!(
            cache.guild("1").unwrap()["channels"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn disabled_resources_are_not_kept() {
        let config = CacheConfig {
            channels: false,
            ..CacheConfig::default()
        };
        let mut cache = cache(config);
        assert!(!cache.apply("CHANNEL_CREATE", &json!({"id": "11", "guild_id": "1"})));
        assert_eq!(cache.guild("1").unwrap()["channels"], json!([]));
        assert!(!cache.apply(
            "GUILD_MEMBER_ADD",
            &json!({"guild_id": "1", "user": {"id": "8"}})
        ));
    }

    #[test]
    fn guild_delete_outage_marks_unavailable_and_leave_removes() {
        let mut cache = cache(CacheConfig::default());
        cache.apply("GUILD_DELETE", &json!({"id": "1", "unavailable": true}));
        assert_eq!(
            cache.guild("1").unwrap(),
            json!({"id": "1", "unavailable": true})
        );
        cache.apply("GUILD_DELETE", &json!({"id": "2"}));
        assert!(cache.guild("2").is_none());
    }

    #[test]
    fn snapshot_round_trips() {
        let cache = cache(CacheConfig::default());
        let restored = ShardCache::restore(CacheConfig::default(), &cache.snapshot());
        assert_eq!(restored.guild_count(), 2);
        assert_eq!(restored.guild("1"), cache.guild("1"));
        assert_eq!(restored.ready, cache.ready);
    }
}
