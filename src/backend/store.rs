//! The entity store: one sled database (under `--data`) with one typed tree per entity kind.
//! Keys are big-endian ids, so prefix scans (a guild's roles, a channel's messages) come out in
//! id order. Values are JSON. Callers never see raw sled keys.
use std::marker::PhantomData;
use std::path::Path;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard, RwLock};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extra::{
    ChannelFollower, Entitlement, EventException, GuildTemplate, InviteTargets, Lobby, Onboarding,
    SoundboardSound, Sticker, WelcomeScreen,
};
use super::model::*;
use super::poll::{OpenPoll, PollVotes};
use super::snowflake::{Snowflake, SnowflakeGenerator};

/// A failure of the storage engine or a record that no longer decodes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record does not decode: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("cannot open the data directory {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sled::Error,
    },
}

/// Key of an entity owned by another (guild → role, channel → message...).
pub fn key2(parent: Snowflake, child: Snowflake) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&parent.be());
    key[8..].copy_from_slice(&child.be());
    key
}

/// Key of an entity owned by two others (application → guild → command).
pub fn key3(first: Snowflake, second: Snowflake, third: Snowflake) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&first.be());
    key[8..16].copy_from_slice(&second.be());
    key[16..].copy_from_slice(&third.be());
    key
}

fn last_id(key: &[u8]) -> Option<Snowflake> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(Snowflake(u64::from_be_bytes(tail)))
}

/// An in-memory read cache of decoded values in front of one tree (hot entities: users, guilds,
/// channels, members, roles). sled stays the source of truth; the cache only saves the JSON
/// decode and tree walk of every request's auth and permission lookups.
///
/// Coherence: every write goes through the owning [`Table`]/[`Lookup`], which updates sled first
/// and then, under the cache's lock, drops the affected entries and bumps `writes`. A reader that
/// missed fills the cache only if no write happened since it started reading sled, so a value
/// read before a concurrent write can never be cached after it.
struct ReadCache<V> {
    entries: RwLock<HashMap<Box<[u8]>, Arc<V>>>,
    /// Prefix scans (a guild's roles), cached whole; any write to the tree clears them.
    scans: RwLock<ScanMap<V>>,
    writes: AtomicU64,
}

type ScanMap<V> = HashMap<Box<[u8]>, Arc<Vec<V>>>;

/// Entries beyond this are dropped wholesale (a bound, not an LRU: hot keys refill at once).
const CACHE_LIMIT: usize = 200_000;

impl<V> ReadCache<V> {
    fn new() -> Arc<Self> {
        Arc::new(ReadCache {
            entries: RwLock::new(HashMap::new()),
            scans: RwLock::new(HashMap::new()),
            writes: AtomicU64::new(0),
        })
    }

    fn get(&self, key: &[u8]) -> Option<Arc<V>> {
        self.entries.read().get(key).cloned()
    }

    /// The write counter to pass to [`ReadCache::fill`] (read it BEFORE reading sled).
    fn stamp(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    fn fill(&self, stamp: u64, key: &[u8], value: Arc<V>) {
        let mut entries = self.entries.write();
        if self.writes.load(Ordering::Acquire) != stamp {
            return;
        }
        if entries.len() >= CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(key.into(), value);
    }

    fn scan(&self, prefix: &[u8]) -> Option<Arc<Vec<V>>> {
        self.scans.read().get(prefix).cloned()
    }

    fn fill_scan(&self, stamp: u64, prefix: &[u8], values: Arc<Vec<V>>) {
        let _entries = self.entries.write();
        if self.writes.load(Ordering::Acquire) != stamp {
            return;
        }
        let mut scans = self.scans.write();
        if scans.len() >= CACHE_LIMIT {
            scans.clear();
        }
        scans.insert(prefix.into(), values);
    }

    /// Call after changing `key` in sled.
    fn invalidate(&self, key: &[u8]) {
        let mut entries = self.entries.write();
        entries.remove(key);
        self.scans.write().clear();
        self.writes.fetch_add(1, Ordering::AcqRel);
    }

    /// Call after removing every key under `prefix` from sled.
    fn invalidate_prefix(&self, prefix: &[u8]) {
        let mut entries = self.entries.write();
        entries.retain(|key, _| !key.starts_with(prefix));
        self.scans.write().clear();
        self.writes.fetch_add(1, Ordering::AcqRel);
    }
}

/// A tree of JSON values of one type.
#[derive(Clone)]
pub struct Table<V> {
    tree: sled::Tree,
    cache: Option<Arc<ReadCache<V>>>,
    _value: PhantomData<fn() -> V>,
}

impl<V: Serialize + DeserializeOwned + Clone> Table<V> {
    fn open(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(Table {
            tree: db.open_tree(name)?,
            cache: None,
            _value: PhantomData,
        })
    }

    /// Like [`Table::open`], with an in-memory read cache (for small, hot, read-mostly trees).
    fn open_cached(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(Table {
            cache: Some(ReadCache::new()),
            ..Self::open(db, name)?
        })
    }

    /// The value under `key`, shared (no copy when the table is cached).
    pub fn get_shared(&self, key: impl AsRef<[u8]>) -> Result<Option<Arc<V>>, StoreError> {
        let key = key.as_ref();
        let Some(cache) = &self.cache else {
            return Ok(self.read(key)?.map(Arc::new));
        };
        if let Some(hit) = cache.get(key) {
            return Ok(Some(hit));
        }
        let stamp = cache.stamp();
        let Some(value) = self.read(key)? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        cache.fill(stamp, key, value.clone());
        Ok(Some(value))
    }

    fn read(&self, key: &[u8]) -> Result<Option<V>, StoreError> {
        match self.tree.get(key)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<V>, StoreError> {
        if self.cache.is_none() {
            return self.read(key.as_ref());
        }
        Ok(self.get_shared(key)?.map(Arc::unwrap_or_clone))
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: impl AsRef<[u8]>, value: &V) -> Result<(), StoreError> {
        let key = key.as_ref();
        self.tree.insert(key, serde_json::to_vec(value)?)?;
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
        Ok(())
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<V>, StoreError> {
        let key = key.as_ref();
        let removed = self.tree.remove(key)?;
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
        match removed {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(key)?)
    }

    /// Every value whose key starts with `prefix`, in key order.
    pub fn values(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<V>, StoreError> {
        if self.cache.is_some() {
            return Ok(self.values_shared(prefix)?.iter().cloned().collect());
        }
        self.scan(prefix.as_ref())
    }

    /// Like [`Table::values`], shared (no copy when the table is cached).
    pub fn values_shared(&self, prefix: impl AsRef<[u8]>) -> Result<Arc<Vec<V>>, StoreError> {
        let prefix = prefix.as_ref();
        let Some(cache) = &self.cache else {
            return Ok(Arc::new(self.scan(prefix)?));
        };
        if let Some(hit) = cache.scan(prefix) {
            return Ok(hit);
        }
        let stamp = cache.stamp();
        let values = Arc::new(self.scan(prefix)?);
        cache.fill_scan(stamp, prefix, values.clone());
        Ok(values)
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<V>, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .map(|item| {
                let (_, bytes) = item?;
                Ok(serde_json::from_slice(&bytes)?)
            })
            .collect()
    }

    /// Number of keys starting with `prefix`.
    pub fn count(&self, prefix: impl AsRef<[u8]>) -> usize {
        self.tree.scan_prefix(prefix).count()
    }

    /// Values in the key range `[start, end)`, ascending or descending, at most `limit`.
    pub fn range(
        &self,
        start: &[u8],
        end: &[u8],
        descending: bool,
        limit: usize,
    ) -> Result<Vec<V>, StoreError> {
        let iter = self.tree.range(start..end);
        let decode = |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<V, StoreError> {
            let (_, bytes) = item?;
            Ok(serde_json::from_slice(&bytes)?)
        };
        if descending {
            iter.rev().take(limit).map(decode).collect()
        } else {
            iter.take(limit).map(decode).collect()
        }
    }

    /// Removes every key starting with `prefix`; returns how many went.
    pub fn remove_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<usize, StoreError> {
        let keys: Vec<sled::IVec> = self
            .tree
            .scan_prefix(prefix.as_ref())
            .keys()
            .collect::<Result<_, _>>()?;
        for key in &keys {
            self.tree.remove(key)?;
        }
        if let Some(cache) = &self.cache {
            cache.invalidate_prefix(prefix.as_ref());
        }
        Ok(keys.len())
    }
}

/// A set of composite keys (an index); members are read back as the trailing id.
#[derive(Clone)]
pub struct Index {
    tree: sled::Tree,
}

impl Index {
    fn open(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(Index {
            tree: db.open_tree(name)?,
        })
    }

    /// Adds `key`.
    pub fn insert(&self, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        self.tree.insert(key.as_ref(), &[])?;
        Ok(())
    }

    /// Removes `key`.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        self.tree.remove(key)?;
        Ok(())
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(key)?)
    }

    /// Removes every key under `prefix`.
    pub fn remove_prefix_all(&self, prefix: Snowflake) -> Result<(), StoreError> {
        let keys: Vec<sled::IVec> = self
            .tree
            .scan_prefix(prefix.be())
            .keys()
            .collect::<Result<_, _>>()?;
        for key in keys {
            self.tree.remove(key)?;
        }
        Ok(())
    }

    /// Trailing ids of every key under `prefix`, in order.
    pub fn ids(&self, prefix: Snowflake) -> Result<Vec<Snowflake>, StoreError> {
        self.tree
            .scan_prefix(prefix.be())
            .keys()
            .map(|key| Ok(last_id(&key?).unwrap_or_default()))
            .collect()
    }
}

/// A tree mapping byte keys to one id (token → user, email → user, DM pair → channel).
#[derive(Clone)]
pub struct Lookup {
    tree: sled::Tree,
    cache: Option<Arc<ReadCache<Snowflake>>>,
}

impl Lookup {
    fn open(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(Lookup {
            tree: db.open_tree(name)?,
            cache: None,
        })
    }

    /// Like [`Lookup::open`], with an in-memory read cache (tokens: read on every request).
    fn open_cached(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(Lookup {
            cache: Some(ReadCache::new()),
            ..Self::open(db, name)?
        })
    }

    /// The id stored under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Snowflake>, StoreError> {
        let key = key.as_ref();
        let Some(cache) = &self.cache else {
            return Ok(self.tree.get(key)?.and_then(|value| last_id(&value)));
        };
        if let Some(hit) = cache.get(key) {
            return Ok(Some(*hit));
        }
        let stamp = cache.stamp();
        let found = self.tree.get(key)?.and_then(|value| last_id(&value));
        if let Some(id) = found {
            cache.fill(stamp, key, Arc::new(id));
        }
        Ok(found)
    }

    /// Stores `id` under `key`.
    pub fn put(&self, key: impl AsRef<[u8]>, id: Snowflake) -> Result<(), StoreError> {
        let key = key.as_ref();
        self.tree.insert(key, &id.be())?;
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
        Ok(())
    }

    /// Removes `key`.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        let key = key.as_ref();
        self.tree.remove(key)?;
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
        Ok(())
    }
}

/// A tree of raw bytes (uploaded attachment contents).
#[derive(Clone)]
pub struct Blobs {
    tree: sled::Tree,
}

impl Blobs {
    fn open(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(Blobs {
            tree: db.open_tree(name)?,
        })
    }

    /// Stores `data` under `key`.
    pub fn put(&self, key: impl AsRef<[u8]>, data: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(key.as_ref(), data)?;
        Ok(())
    }

    /// The bytes under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }
}

/// One emoji's reactions on a message, in the order they were first added.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReactionEntry {
    pub emoji_id: Option<Snowflake>,
    pub emoji_name: String,
    #[serde(default)]
    pub animated: bool,
    pub user_ids: Vec<Snowflake>,
}

/// A user's membership in a thread.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThreadMember {
    pub thread_id: Snowflake,
    pub user_id: Snowflake,
    pub join_timestamp: String,
    #[serde(default)]
    pub flags: u64,
}

/// The backend's database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    write_lock: std::sync::Arc<Mutex<()>>,
    pub ids: std::sync::Arc<SnowflakeGenerator>,
    pub users: Table<User>,
    pub credentials: Table<Credentials>,
    pub tokens: Lookup,
    pub emails: Lookup,
    pub applications: Table<Application>,
    pub guilds: Table<Guild>,
    pub roles: Table<Role>,
    pub channels: Table<Channel>,
    pub guild_channels: Index,
    pub last_message: Lookup,
    pub members: Table<Member>,
    pub user_guilds: Index,
    pub messages: Table<Message>,
    pub nonces: Lookup,
    pub reactions: Table<Vec<ReactionEntry>>,
    pub pins: Table<u64>,
    pub bans: Table<Ban>,
    pub invites: Table<Invite>,
    pub emojis: Table<Emoji>,
    pub emoji_guild: Lookup,
    pub webhooks: Table<Webhook>,
    pub audit: Table<AuditLogEntry>,
    pub dm_pairs: Lookup,
    pub user_dms: Index,
    pub thread_members: Table<ThreadMember>,
    pub attachments: Blobs,
    /// Application commands under `key3(application, guild or 0, command)`.
    pub commands: Table<ApplicationCommand>,
    /// Command permissions under `key3(application, guild, command or application)`.
    pub command_permissions: Table<CommandPermissions>,
    /// Interactions by id, and their tokens → id.
    pub interactions: Table<Interaction>,
    pub interaction_tokens: Lookup,
    /// Scheduled events under `key2(guild, event)`; subscribers under `key2(event, user)`.
    pub scheduled_events: Table<ScheduledEvent>,
    pub scheduled_event_users: Index,
    /// Live stages by channel id.
    pub stage_instances: Table<StageInstance>,
    /// Auto-moderation rules under `key2(guild, rule)`.
    pub automod_rules: Table<AutoModRule>,
    pub meta: Table<serde_json::Value>,
    /// Tables of the route families added in session 2 (stickers, soundboard, templates...).
    pub extra: ExtraTables,
}

impl Store {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|source| StoreError::Open {
                path: dir.display().to_string(),
                source,
            })?;
        Self::from_db(db)
    }

    /// A throwaway in-memory-backed database (unit tests, coverage probing).
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let meta: Table<serde_json::Value> = Table::open(&db, "meta")?;
        let floor = meta
            .get("snowflake_floor")?
            .and_then(|value| value.as_u64())
            .unwrap_or(0);
        Ok(Store {
            ids: std::sync::Arc::new(SnowflakeGenerator::new(1, floor)),
            write_lock: std::sync::Arc::new(Mutex::new(())),
            users: Table::open_cached(&db, "users")?,
            credentials: Table::open(&db, "credentials")?,
            tokens: Lookup::open_cached(&db, "tokens")?,
            emails: Lookup::open(&db, "emails")?,
            applications: Table::open_cached(&db, "applications")?,
            guilds: Table::open_cached(&db, "guilds")?,
            roles: Table::open_cached(&db, "roles")?,
            channels: Table::open_cached(&db, "channels")?,
            guild_channels: Index::open(&db, "guild_channels")?,
            last_message: Lookup::open(&db, "last_message")?,
            members: Table::open_cached(&db, "members")?,
            user_guilds: Index::open(&db, "user_guilds")?,
            messages: Table::open(&db, "messages")?,
            nonces: Lookup::open(&db, "nonces")?,
            reactions: Table::open(&db, "reactions")?,
            pins: Table::open(&db, "pins")?,
            bans: Table::open(&db, "bans")?,
            invites: Table::open(&db, "invites")?,
            emojis: Table::open(&db, "emojis")?,
            emoji_guild: Lookup::open(&db, "emoji_guild")?,
            webhooks: Table::open_cached(&db, "webhooks")?,
            audit: Table::open(&db, "audit")?,
            dm_pairs: Lookup::open(&db, "dm_pairs")?,
            user_dms: Index::open(&db, "user_dms")?,
            thread_members: Table::open(&db, "thread_members")?,
            attachments: Blobs::open(&db, "attachments")?,
            commands: Table::open(&db, "commands")?,
            command_permissions: Table::open(&db, "command_permissions")?,
            interactions: Table::open(&db, "interactions")?,
            interaction_tokens: Lookup::open(&db, "interaction_tokens")?,
            scheduled_events: Table::open(&db, "scheduled_events")?,
            scheduled_event_users: Index::open(&db, "scheduled_event_users")?,
            stage_instances: Table::open(&db, "stage_instances")?,
            automod_rules: Table::open(&db, "automod_rules")?,
            extra: ExtraTables::open(&db)?,
            meta,
            db,
        })
    }

    /// Serializes read-modify-write sequences (edits); plain inserts do not need it.
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock()
    }

    /// A fresh snowflake.
    pub fn next_id(&self) -> Snowflake {
        self.ids.next()
    }

    /// Writes everything to disk (and remembers the id floor so ids keep increasing).
    pub fn flush(&self) -> Result<(), StoreError> {
        let floor = self.ids.next().0;
        self.meta
            .put("snowflake_floor", &serde_json::Value::from(floor))?;
        self.db.flush()?;
        Ok(())
    }

    /// Asynchronous flush for request handlers that promise durability.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// True when no user exists yet (a fresh data directory).
    pub fn is_empty(&self) -> bool {
        self.users.tree.is_empty()
    }

    // ---- typed helpers used across routes ----

    /// The user with `id`.
    pub fn user(&self, id: Snowflake) -> Result<Option<User>, StoreError> {
        self.users.get(id.be())
    }

    /// The user a token belongs to.
    pub fn user_by_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        Ok(self.user_by_token_shared(token)?.map(Arc::unwrap_or_clone))
    }

    /// The user a token belongs to, shared (served from memory after the first request).
    pub fn user_by_token_shared(&self, token: &str) -> Result<Option<Arc<User>>, StoreError> {
        match self.tokens.get(token.as_bytes())? {
            Some(id) => self.users.get_shared(id.be()),
            None => Ok(None),
        }
    }

    /// Stores a user and their credentials (indexes token and email).
    pub fn put_user(&self, user: &User, credentials: &Credentials) -> Result<(), StoreError> {
        if let Some(old) = self.credentials.get(user.id.be())? {
            self.tokens.remove(old.token.as_bytes())?;
            if let Some(email) = old.email {
                self.emails.remove(email.to_lowercase().as_bytes())?;
            }
        }
        self.users.put(user.id.be(), user)?;
        self.credentials.put(user.id.be(), credentials)?;
        self.tokens.put(credentials.token.as_bytes(), user.id)?;
        if let Some(email) = &credentials.email {
            self.emails.put(email.to_lowercase().as_bytes(), user.id)?;
        }
        Ok(())
    }

    /// The guild with `id`.
    pub fn guild(&self, id: Snowflake) -> Result<Option<Guild>, StoreError> {
        self.guilds.get(id.be())
    }

    /// Every role of a guild (unsorted: id order).
    pub fn guild_roles(&self, guild_id: Snowflake) -> Result<Vec<Role>, StoreError> {
        self.roles.values(guild_id.be())
    }

    /// One role of a guild.
    pub fn role(
        &self,
        guild_id: Snowflake,
        role_id: Snowflake,
    ) -> Result<Option<Role>, StoreError> {
        self.roles.get(key2(guild_id, role_id))
    }

    /// The channel with `id`.
    pub fn channel(&self, id: Snowflake) -> Result<Option<Channel>, StoreError> {
        self.channels.get(id.be())
    }

    /// Stores a channel and indexes it under its guild.
    pub fn put_channel(&self, channel: &Channel) -> Result<(), StoreError> {
        self.channels.put(channel.id.be(), channel)?;
        if let Some(guild_id) = channel.guild_id {
            self.guild_channels.insert(key2(guild_id, channel.id))?;
        }
        Ok(())
    }

    /// Every channel (threads included) of a guild.
    pub fn guild_channel_list(&self, guild_id: Snowflake) -> Result<Vec<Channel>, StoreError> {
        let mut channels = Vec::new();
        for id in self.guild_channels.ids(guild_id)? {
            if let Some(channel) = self.channel(id)? {
                channels.push(channel);
            }
        }
        Ok(channels)
    }

    /// A guild member.
    pub fn member(
        &self,
        guild_id: Snowflake,
        user_id: Snowflake,
    ) -> Result<Option<Member>, StoreError> {
        self.members.get(key2(guild_id, user_id))
    }

    /// Stores a member and indexes the guild under the user.
    pub fn put_member(&self, guild_id: Snowflake, member: &Member) -> Result<(), StoreError> {
        self.members.put(key2(guild_id, member.user_id), member)?;
        self.user_guilds.insert(key2(member.user_id, guild_id))?;
        Ok(())
    }

    /// Removes a member and its index entry.
    pub fn remove_member(
        &self,
        guild_id: Snowflake,
        user_id: Snowflake,
    ) -> Result<Option<Member>, StoreError> {
        self.user_guilds.remove(key2(user_id, guild_id))?;
        self.members.remove(key2(guild_id, user_id))
    }

    /// Ids of the guilds a user is in.
    pub fn guild_ids_of(&self, user_id: Snowflake) -> Result<Vec<Snowflake>, StoreError> {
        self.user_guilds.ids(user_id)
    }

    /// Number of members of a guild.
    pub fn member_count(&self, guild_id: Snowflake) -> usize {
        self.members.count(guild_id.be())
    }

    /// A message in a channel.
    pub fn message(
        &self,
        channel_id: Snowflake,
        message_id: Snowflake,
    ) -> Result<Option<Message>, StoreError> {
        self.messages.get(key2(channel_id, message_id))
    }

    /// Stores a message (and moves the channel's last_message_id forward if it is newer).
    pub fn put_message(&self, message: &Message) -> Result<(), StoreError> {
        self.messages
            .put(key2(message.channel_id, message.id), message)?;
        let key = message.channel_id.be();
        self.last_message.tree.fetch_and_update(key, |old| {
            let old_id = old.and_then(last_id).unwrap_or_default();
            Some(message.id.max(old_id).be().to_vec())
        })?;
        Ok(())
    }

    /// The newest message id ever stored in a channel.
    pub fn last_message_id(&self, channel_id: Snowflake) -> Result<Option<Snowflake>, StoreError> {
        self.last_message.get(channel_id.be())
    }

    /// Removes everything a channel owns (messages, reactions, pins, thread members).
    pub fn purge_channel(&self, channel_id: Snowflake) -> Result<(), StoreError> {
        self.messages.remove_prefix(channel_id.be())?;
        self.reactions.remove_prefix(channel_id.be())?;
        self.pins.remove_prefix(channel_id.be())?;
        self.thread_members.remove_prefix(channel_id.be())?;
        self.last_message.remove(channel_id.be())?;
        Ok(())
    }

    /// The DM channel between two users, if one exists.
    pub fn dm_between(&self, a: Snowflake, b: Snowflake) -> Result<Option<Snowflake>, StoreError> {
        self.dm_pairs.get(key2(a.min(b), a.max(b)))
    }

    /// Records the DM channel between two users.
    pub fn put_dm(
        &self,
        a: Snowflake,
        b: Snowflake,
        channel_id: Snowflake,
    ) -> Result<(), StoreError> {
        self.dm_pairs.put(key2(a.min(b), a.max(b)), channel_id)?;
        self.user_dms.insert(key2(a, channel_id))?;
        self.user_dms.insert(key2(b, channel_id))?;
        Ok(())
    }

    /// Records an audit log entry.
    pub fn put_audit(&self, entry: &AuditLogEntry) -> Result<(), StoreError> {
        self.audit.put(key2(entry.guild_id, entry.id), entry)
    }

    /// The sled database, for the few callers (tests, tools) that must see it whole.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// Constructors for tables kept outside this file (`backend::extra`).
impl<V: Serialize + DeserializeOwned + Clone> Table<V> {
    /// Opens (creating if needed) the tree `name` as a table.
    pub(crate) fn open_tree(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Self::open(db, name)
    }
}

impl Lookup {
    /// Opens (creating if needed) the tree `name` as a lookup.
    pub(crate) fn open_tree(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Self::open(db, name)
    }
}

/// The tables of the route families added after the first cut (`extra`'s records); opened
/// with the rest of the store.
#[derive(Clone)]
pub struct ExtraTables {
    /// Guild stickers under `key2(guild, sticker)`; `sticker_guild` maps sticker → guild.
    pub stickers: Table<Sticker>,
    pub sticker_guild: Lookup,
    /// Soundboard sounds under `key2(guild, sound)`.
    pub sounds: Table<SoundboardSound>,
    /// Templates by code; `guild_template` maps guild → the template's creation id.
    pub templates: Table<GuildTemplate>,
    /// Welcome screens and onboarding by guild id.
    pub welcome_screens: Table<WelcomeScreen>,
    pub onboarding: Table<Onboarding>,
    /// Application emojis under `key2(application, emoji)`.
    pub app_emojis: Table<Emoji>,
    /// Entitlements under `key2(application, entitlement)`.
    pub entitlements: Table<Entitlement>,
    /// Role-connection metadata records by application id.
    pub role_connection_metadata: Table<Vec<Value>>,
    /// A user's role connection under `key2(application, user)`.
    pub role_connections: Table<Value>,
    /// Followers under `key2(source channel, webhook)`.
    pub channel_followers: Table<ChannelFollower>,
    /// Exceptions of recurring scheduled events under `key2(event, exception)`.
    pub event_exceptions: Table<EventException>,
    /// Target users of restricted invites, by invite code.
    pub invite_targets: Table<InviteTargets>,
    /// Lobbies by id, and their messages under `key2(lobby, message)`.
    pub lobbies: Table<Lobby>,
    pub lobby_messages: Table<Value>,
    /// A guild's raid-protection pauses (`incidents_data`) by guild id.
    pub guild_incidents: Table<Value>,
    /// Voice channel statuses by channel id (absent: none set).
    pub voice_statuses: Table<String>,
    /// Poll votes under `key2(channel, message)`.
    pub poll_votes: Table<PollVotes>,
    /// Polls not yet finalised, under `key2(channel, message)` (for the finaliser).
    pub open_polls: Table<OpenPoll>,
}

impl ExtraTables {
    /// Opens (creating if needed) every table in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(ExtraTables {
            stickers: Table::open_tree(db, "stickers")?,
            sticker_guild: Lookup::open_tree(db, "sticker_guild")?,
            sounds: Table::open_tree(db, "soundboard_sounds")?,
            templates: Table::open_tree(db, "guild_templates")?,
            welcome_screens: Table::open_tree(db, "welcome_screens")?,
            onboarding: Table::open_tree(db, "onboarding")?,
            app_emojis: Table::open_tree(db, "application_emojis")?,
            entitlements: Table::open_tree(db, "entitlements")?,
            role_connection_metadata: Table::open_tree(db, "role_connection_metadata")?,
            role_connections: Table::open_tree(db, "role_connections")?,
            channel_followers: Table::open_tree(db, "channel_followers")?,
            poll_votes: Table::open_tree(db, "poll_votes")?,
            voice_statuses: Table::open_tree(db, "voice_statuses")?,
            guild_incidents: Table::open_tree(db, "guild_incidents")?,
            lobbies: Table::open_tree(db, "lobbies")?,
            invite_targets: Table::open_tree(db, "invite_targets")?,
            lobby_messages: Table::open_tree(db, "lobby_messages")?,
            event_exceptions: Table::open_tree(db, "scheduled_event_exceptions")?,
            open_polls: Table::open_tree(db, "open_polls")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let user = User::new(Snowflake(5), "alice", false);
        {
            let store = Store::open(dir.path()).unwrap();
            let creds = Credentials {
                user_id: user.id,
                token: "tok".into(),
                email: Some("A@x.org".into()),
                password_salt: None,
                password_hash: None,
            };
            store.put_user(&user, &creds).unwrap();
            let guild = Guild::new(Snowflake(9), "g", user.id);
            store.guilds.put(guild.id.be(), &guild).unwrap();
            store
                .put_member(guild.id, &Member::new(user.id, 0))
                .unwrap();
            store.flush().unwrap();
        }
        // sled's flusher thread lets go of the file lock shortly after the handle is dropped.
        let mut reopened = Store::open(dir.path());
        for _ in 0..100 {
            if reopened.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            reopened = Store::open(dir.path());
        }
        let store = reopened.unwrap();
        assert_eq!(store.user_by_token("tok").unwrap(), Some(user.clone()));
        assert_eq!(store.emails.get(b"a@x.org").unwrap(), Some(user.id));
        assert_eq!(store.guild_ids_of(user.id).unwrap(), vec![Snowflake(9)]);
        assert_eq!(store.member_count(Snowflake(9)), 1);
        assert!(store.next_id().0 > 0);
    }

    #[test]
    fn cached_trees_see_every_write_remove_and_prefix_removal() {
        let store = Store::temporary().unwrap();
        let guild = Snowflake(7);
        let mut role: Role =
            serde_json::from_value(serde_json::json!({"id": "7", "name": "@everyone"})).unwrap();
        store.roles.put(key2(guild, role.id), &role).unwrap();
        // Fill both caches (one entry, one prefix scan), then change what they hold.
        assert_eq!(
            store.role(guild, role.id).unwrap().unwrap().name,
            "@everyone"
        );
        assert_eq!(store.guild_roles(guild).unwrap().len(), 1);
        role.name = "renamed".into();
        store.roles.put(key2(guild, role.id), &role).unwrap();
        assert_eq!(store.role(guild, role.id).unwrap().unwrap().name, "renamed");
        assert_eq!(store.guild_roles(guild).unwrap()[0].name, "renamed");
        store.roles.remove(key2(guild, role.id)).unwrap();
        assert!(store.role(guild, role.id).unwrap().is_none());
        assert!(store.guild_roles(guild).unwrap().is_empty());
        store.roles.put(key2(guild, role.id), &role).unwrap();
        assert_eq!(store.guild_roles(guild).unwrap().len(), 1);
        store.roles.remove_prefix(guild.be()).unwrap();
        assert!(store.role(guild, role.id).unwrap().is_none());
        assert!(store.guild_roles(guild).unwrap().is_empty());
        // Tokens: a new token works at once, the replaced one stops working.
        let user = User::new(Snowflake(5), "alice", false);
        let mut creds = Credentials {
            user_id: user.id,
            token: "old".into(),
            email: None,
            password_salt: None,
            password_hash: None,
        };
        store.put_user(&user, &creds).unwrap();
        assert!(store.user_by_token_shared("old").unwrap().is_some());
        creds.token = "new".into();
        store.put_user(&user, &creds).unwrap();
        assert!(store.user_by_token_shared("old").unwrap().is_none());
        assert_eq!(
            store.user_by_token_shared("new").unwrap().unwrap().id,
            user.id
        );
    }

    #[test]
    fn message_ranges_come_out_in_id_order() {
        let store = Store::temporary().unwrap();
        let channel = Snowflake(1);
        for id in [10u64, 30, 20] {
            let message = Message {
                content: id.to_string(),
                ..Message::new(Snowflake(id), channel, None, Snowflake(2))
            };
            store.put_message(&message).unwrap();
        }
        let newest_first = store
            .messages
            .range(
                &key2(channel, Snowflake(0)),
                &key2(channel, Snowflake(u64::MAX)),
                true,
                2,
            )
            .unwrap();
        let ids: Vec<u64> = newest_first.iter().map(|m| m.id.0).collect();
        assert_eq!(ids, vec![30, 20]);
        assert_eq!(store.last_message_id(channel).unwrap(), Some(Snowflake(30)));
    }
}
