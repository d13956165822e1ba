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
use super::user_state::{
    AccountVersions, MfaState, ReadState, Relationship, UserGuildSettings, WebauthnKey,
};

/// A failure of the storage engine or a record that no longer decodes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record does not decode: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error(transparent)]
    Private(#[from] crate::store::private::PrivateDirError),
    #[error("another discord-mitm is using {path}\n  fix: stop it, or pass --data DIR to use another data directory")]
    Locked { path: String },
    #[error("the data directory {path} is damaged ({reason})\n  fix: restore it from a backup, or start afresh with --reset (which deletes it)")]
    Damaged { path: String, reason: String },
    #[error("writes stopped after a write to the data directory failed (a full disk?)\n  fix: free space, then restart serve")]
    Halted,
    #[error("cannot open the data directory {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sled::Error,
    },
}

/// The kind of key a tree is indexed by. Ids encode big-endian so that sled's byte order is id
/// (and so time) order, and a key's leading ids are a prefix of its bytes; the encodings are the
/// on-disk layout and must never change (see the `key_encodings_are_pinned` test).
pub trait Key {
    /// What callers pass: an id, a tuple of ids, or a name.
    type Arg<'a>: Copy
    where
        Self: 'a;
    /// The encoded key: a fixed-size array for ids, so lookups allocate nothing.
    type Bytes<'a>: AsRef<[u8]>
    where
        Self: 'a;
    /// The on-disk bytes of `key`.
    fn encode<'a>(key: Self::Arg<'a>) -> Self::Bytes<'a>
    where
        Self: 'a;
}

/// The leading part of a key of kind `K`, for prefix scans (a guild id for `(guild, role)` keys).
pub trait Prefix<K: ?Sized> {
    /// The encoded prefix.
    type Bytes: AsRef<[u8]>;
    /// The on-disk bytes every key under this prefix starts with.
    fn encode(self) -> Self::Bytes;
}

fn be(id: Snowflake) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// Key of an entity owned by another (guild → role, channel → message...).
fn key2(parent: Snowflake, child: Snowflake) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&be(parent));
    key[8..].copy_from_slice(&be(child));
    key
}

/// Key of an entity owned by two others (application → guild → command).
fn key3(first: Snowflake, second: Snowflake, third: Snowflake) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&be(first));
    key[8..16].copy_from_slice(&be(second));
    key[16..].copy_from_slice(&be(third));
    key
}

fn last_id(key: &[u8]) -> Option<Snowflake> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(Snowflake(u64::from_be_bytes(tail)))
}

impl Key for Snowflake {
    type Arg<'a> = Snowflake;
    type Bytes<'a> = [u8; 8];
    fn encode<'a>(key: Snowflake) -> [u8; 8]
    where
        Self: 'a,
    {
        be(key)
    }
}

impl Key for (Snowflake, Snowflake) {
    type Arg<'a> = (Snowflake, Snowflake);
    type Bytes<'a> = [u8; 16];
    fn encode<'a>((parent, child): (Snowflake, Snowflake)) -> [u8; 16]
    where
        Self: 'a,
    {
        key2(parent, child)
    }
}

impl Key for (Snowflake, Snowflake, Snowflake) {
    type Arg<'a> = (Snowflake, Snowflake, Snowflake);
    type Bytes<'a> = [u8; 24];
    fn encode<'a>((first, second, third): (Snowflake, Snowflake, Snowflake)) -> [u8; 24]
    where
        Self: 'a,
    {
        key3(first, second, third)
    }
}

/// Names (tokens, lowercased emails, invite and template codes, meta entries): their UTF-8 bytes.
impl Key for str {
    type Arg<'a> = &'a str;
    type Bytes<'a> = &'a [u8];
    fn encode<'a>(key: &'a str) -> &'a [u8]
    where
        Self: 'a,
    {
        key.as_bytes()
    }
}

/// Key of a message nonce: `(channel, author, nonce text)`, the two ids then the text's bytes.
pub enum NonceKey {}

impl Key for NonceKey {
    type Arg<'a> = (Snowflake, Snowflake, &'a str);
    type Bytes<'a> = Vec<u8>;
    fn encode<'a>((channel, author, nonce): (Snowflake, Snowflake, &'a str)) -> Vec<u8>
    where
        Self: 'a,
    {
        let mut key = Vec::with_capacity(16 + nonce.len());
        key.extend_from_slice(&key2(channel, author));
        key.extend_from_slice(nonce.as_bytes());
        key
    }
}

impl Prefix<(Snowflake, Snowflake)> for Snowflake {
    type Bytes = [u8; 8];
    fn encode(self) -> [u8; 8] {
        be(self)
    }
}

impl Prefix<(Snowflake, Snowflake, Snowflake)> for Snowflake {
    type Bytes = [u8; 8];
    fn encode(self) -> [u8; 8] {
        be(self)
    }
}

impl Prefix<(Snowflake, Snowflake, Snowflake)> for (Snowflake, Snowflake) {
    type Bytes = [u8; 16];
    fn encode(self) -> [u8; 16] {
        key2(self.0, self.1)
    }
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
    entries: RwLock<FastMap<Box<[u8]>, Arc<V>>>,
    /// Prefix scans (a guild's roles), cached whole; any write to the tree clears them.
    scans: RwLock<ScanMap<V>>,
    /// Key counts under a prefix (a guild's members); any write to the tree clears them.
    counts: RwLock<FastMap<Box<[u8]>, usize>>,
    writes: AtomicU64,
}

type ScanMap<V> = FastMap<Box<[u8]>, Arc<Vec<V>>>;

/// The caches' maps: keys are looked up on every cached read (a cold READY does tens of
/// thousands), and foldhash hashes short byte keys several times faster than SipHash while
/// still seeding each map at random.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Entries beyond this are dropped wholesale (a bound, not an LRU: hot keys refill at once).
const CACHE_LIMIT: usize = 200_000;

impl<V> ReadCache<V> {
    fn new() -> Arc<Self> {
        Arc::new(ReadCache {
            entries: RwLock::new(FastMap::default()),
            scans: RwLock::new(FastMap::default()),
            counts: RwLock::new(FastMap::default()),
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

    /// The cached scan under `prefix`, or what `read` gives (from sled), cached unless a write
    /// came while it read.
    fn scan_or_read(
        &self,
        prefix: &[u8],
        read: impl FnOnce() -> Result<Vec<V>, StoreError>,
    ) -> Result<Arc<Vec<V>>, StoreError> {
        if let Some(hit) = self.scan(prefix) {
            return Ok(hit);
        }
        let stamp = self.stamp();
        let values = Arc::new(read()?);
        self.fill_scan(stamp, prefix, values.clone());
        Ok(values)
    }

    fn count(&self, prefix: &[u8]) -> Option<usize> {
        self.counts.read().get(prefix).copied()
    }

    fn fill_count(&self, stamp: u64, prefix: &[u8], count: usize) {
        let _entries = self.entries.write();
        if self.writes.load(Ordering::Acquire) != stamp {
            return;
        }
        let mut counts = self.counts.write();
        if counts.len() >= CACHE_LIMIT {
            counts.clear();
        }
        counts.insert(prefix.into(), count);
    }

    /// Call after changing `key` in sled.
    fn invalidate(&self, key: &[u8]) {
        let mut entries = self.entries.write();
        entries.remove(key);
        self.scans.write().clear();
        self.counts.write().clear();
        self.writes.fetch_add(1, Ordering::AcqRel);
    }

    /// Call after removing every key under `prefix` from sled.
    fn invalidate_prefix(&self, prefix: &[u8]) {
        let mut entries = self.entries.write();
        entries.retain(|key, _| !key.starts_with(prefix));
        self.scans.write().clear();
        self.counts.write().clear();
        self.writes.fetch_add(1, Ordering::AcqRel);
    }
}

/// Something that can drop everything it caches (after the whole store changed underneath).
trait Forget: Send + Sync {
    fn forget(&self);
}

impl<V: Send + Sync> Forget for ReadCache<V> {
    fn forget(&self) {
        self.invalidate_prefix(&[]);
    }
}

/// Every read cache of one store, so a restore can drop them all.
type Caches = Arc<Mutex<Vec<Arc<dyn Forget>>>>;

/// A copy of every tree of a store, taken in memory ([`Store::snapshot`]).
pub struct Snapshot {
    trees: Vec<(sled::IVec, Vec<(sled::IVec, sled::IVec)>)>,
    /// The id generator's position when it was taken.
    ids: u64,
}

impl Snapshot {
    /// Entries held, over every tree.
    pub fn len(&self) -> usize {
        self.trees.iter().map(|(_, entries)| entries.len()).sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id generator's position when it was taken.
    pub fn id_position(&self) -> u64 {
        self.ids
    }
}

/// Makes `tree` hold exactly `entries` (sorted by key, as sled iterates), writing only the
/// differences: a reset after a test touched a few records rewrites those, not the world.
fn restore_tree(tree: &sled::Tree, entries: &[(sled::IVec, sled::IVec)]) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    let mut changes = 0usize;
    let mut wanted = entries.iter().peekable();
    for item in tree.iter() {
        let (key, value) = item?;
        while let Some((missing, value)) = wanted.next_if(|(k, _)| *k < key) {
            batch.insert(missing.clone(), value.clone());
            changes += 1;
        }
        match wanted.next_if(|(k, _)| *k == key) {
            Some((_, old)) if *old == value => {}
            Some((_, old)) => {
                batch.insert(key, old.clone());
                changes += 1;
            }
            None => {
                batch.remove(key);
                changes += 1;
            }
        }
    }
    for (key, value) in wanted {
        batch.insert(key.clone(), value.clone());
        changes += 1;
    }
    if changes > 0 {
        tree.apply_batch(batch)?;
    }
    Ok(())
}

/// A tree of JSON values of one type, keyed by `K`.
pub struct Table<K: ?Sized, V> {
    tree: sled::Tree,
    cache: Option<Arc<ReadCache<V>>>,
    _types: PhantomData<fn(&K) -> V>,
}

impl<K: ?Sized, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Table {
            tree: self.tree.clone(),
            cache: self.cache.clone(),
            _types: PhantomData,
        }
    }
}

impl<K: Key + ?Sized + 'static, V: Serialize + DeserializeOwned + Clone> Table<K, V> {
    fn open(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(Table {
            tree: db.open_tree(name)?,
            cache: None,
            _types: PhantomData,
        })
    }

    /// Like [`Table::open`], with an in-memory read cache (for small, hot, read-mostly trees),
    /// registered in `caches`.
    fn open_cached(db: &sled::Db, name: &str, caches: &Caches) -> Result<Self, StoreError>
    where
        V: Send + Sync + 'static,
    {
        let cache = ReadCache::new();
        caches.lock().push(cache.clone());
        Ok(Table {
            cache: Some(cache),
            ..Self::open(db, name)?
        })
    }

    /// The value under `key`, shared (no copy when the table is cached).
    pub fn get_shared(&self, key: K::Arg<'_>) -> Result<Option<Arc<V>>, StoreError> {
        self.get_shared_bytes(K::encode(key).as_ref())
    }

    fn get_shared_bytes(&self, key: &[u8]) -> Result<Option<Arc<V>>, StoreError> {
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
    pub fn get(&self, key: K::Arg<'_>) -> Result<Option<V>, StoreError> {
        let key = K::encode(key);
        if self.cache.is_none() {
            return self.read(key.as_ref());
        }
        Ok(self
            .get_shared_bytes(key.as_ref())?
            .map(Arc::unwrap_or_clone))
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: K::Arg<'_>, value: &V) -> Result<(), StoreError> {
        let key = K::encode(key);
        let key = key.as_ref();
        self.tree.insert(key, serde_json::to_vec(value)?)?;
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
        Ok(())
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&self, key: K::Arg<'_>) -> Result<Option<V>, StoreError> {
        let key = K::encode(key);
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
    pub fn contains(&self, key: K::Arg<'_>) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(K::encode(key))?)
    }

    /// Every value whose key starts with `prefix`, in key order.
    pub fn values(&self, prefix: impl Prefix<K>) -> Result<Vec<V>, StoreError> {
        self.values_bytes(prefix.encode().as_ref())
    }

    /// Every value under `prefix` with the last id of its key (a note's target user...).
    pub fn values_by_last_id(
        &self,
        prefix: impl Prefix<K>,
    ) -> Result<Vec<(Snowflake, V)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix.encode().as_ref()) {
            let (key, bytes) = item?;
            if let Some(id) = last_id(&key) {
                out.push((id, serde_json::from_slice(&bytes)?));
            }
        }
        Ok(out)
    }

    /// Every value of the table, in key order.
    pub fn all(&self) -> Result<Vec<V>, StoreError> {
        self.values_bytes(&[])
    }

    fn values_bytes(&self, prefix: &[u8]) -> Result<Vec<V>, StoreError> {
        if self.cache.is_some() {
            return Ok(self.values_shared_bytes(prefix)?.iter().cloned().collect());
        }
        self.scan(prefix)
    }

    /// Like [`Table::values`], shared (no copy when the table is cached).
    pub fn values_shared(&self, prefix: impl Prefix<K>) -> Result<Arc<Vec<V>>, StoreError> {
        self.values_shared_bytes(prefix.encode().as_ref())
    }

    fn values_shared_bytes(&self, prefix: &[u8]) -> Result<Arc<Vec<V>>, StoreError> {
        match &self.cache {
            Some(cache) => cache.scan_or_read(prefix, || self.scan(prefix)),
            None => Ok(Arc::new(self.scan(prefix)?)),
        }
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

    /// Number of keys starting with `prefix` (remembered until the next write when the table
    /// is cached).
    pub fn count(&self, prefix: impl Prefix<K>) -> usize {
        let prefix = prefix.encode();
        let prefix = prefix.as_ref();
        let Some(cache) = &self.cache else {
            return self.tree.scan_prefix(prefix).count();
        };
        if let Some(count) = cache.count(prefix) {
            return count;
        }
        let stamp = cache.stamp();
        let count = self.tree.scan_prefix(prefix).count();
        cache.fill_count(stamp, prefix, count);
        count
    }

    /// Values in the key range `[start, end)`, ascending or descending, at most `limit`.
    pub fn range(
        &self,
        start: K::Arg<'_>,
        end: K::Arg<'_>,
        descending: bool,
        limit: usize,
    ) -> Result<Vec<V>, StoreError> {
        let (start, end) = (K::encode(start), K::encode(end));
        let iter = self.tree.range(start.as_ref()..end.as_ref());
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
    pub fn remove_prefix(&self, prefix: impl Prefix<K>) -> Result<usize, StoreError> {
        let prefix = prefix.encode();
        let prefix = prefix.as_ref();
        let keys: Vec<sled::IVec> = self
            .tree
            .scan_prefix(prefix)
            .keys()
            .collect::<Result<_, _>>()?;
        for key in &keys {
            self.tree.remove(key)?;
        }
        if let Some(cache) = &self.cache {
            cache.invalidate_prefix(prefix);
        }
        Ok(keys.len())
    }
}

/// A set of composite keys of kind `K` (an index); members are read back as the trailing id.
pub struct Index<K: ?Sized> {
    tree: sled::Tree,
    /// Cached id lists by prefix (only scans are used).
    cache: Option<Arc<ReadCache<Snowflake>>>,
    _key: PhantomData<fn(&K)>,
}

impl<K: ?Sized> Clone for Index<K> {
    fn clone(&self) -> Self {
        Index {
            tree: self.tree.clone(),
            cache: self.cache.clone(),
            _key: PhantomData,
        }
    }
}

impl<K: Key + ?Sized + 'static> Index<K> {
    fn open(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(Index {
            tree: db.open_tree(name)?,
            cache: None,
            _key: PhantomData,
        })
    }

    /// Like [`Index::open`], with an in-memory cache of the id lists read (a guild's
    /// channels: read by every READY and most channel routes, written rarely), registered in
    /// `caches`.
    fn open_cached(db: &sled::Db, name: &str, caches: &Caches) -> Result<Self, StoreError> {
        let cache = ReadCache::new();
        caches.lock().push(cache.clone());
        Ok(Index {
            cache: Some(cache),
            ..Self::open(db, name)?
        })
    }

    /// Adds `key`.
    pub fn insert(&self, key: K::Arg<'_>) -> Result<(), StoreError> {
        let key = K::encode(key);
        self.tree.insert(key.as_ref(), &[])?;
        if let Some(cache) = &self.cache {
            cache.invalidate(key.as_ref());
        }
        Ok(())
    }

    /// Removes `key`.
    pub fn remove(&self, key: K::Arg<'_>) -> Result<(), StoreError> {
        let key = K::encode(key);
        self.tree.remove(key.as_ref())?;
        if let Some(cache) = &self.cache {
            cache.invalidate(key.as_ref());
        }
        Ok(())
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: K::Arg<'_>) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(K::encode(key))?)
    }

    /// Removes every key under `prefix`.
    pub fn remove_prefix_all(&self, prefix: impl Prefix<K>) -> Result<(), StoreError> {
        let prefix = prefix.encode();
        let keys: Vec<sled::IVec> = self
            .tree
            .scan_prefix(prefix.as_ref())
            .keys()
            .collect::<Result<_, _>>()?;
        for key in keys {
            self.tree.remove(key)?;
        }
        if let Some(cache) = &self.cache {
            cache.invalidate_prefix(prefix.as_ref());
        }
        Ok(())
    }

    /// Trailing ids of every key under `prefix`, in order.
    pub fn ids(&self, prefix: impl Prefix<K>) -> Result<Vec<Snowflake>, StoreError> {
        let prefix = prefix.encode();
        match &self.cache {
            Some(_) => Ok(self.ids_shared_bytes(prefix.as_ref())?.to_vec()),
            None => self.scan_ids(prefix.as_ref()),
        }
    }

    /// Like [`Index::ids`], shared (no copy when the index is cached).
    pub fn ids_shared(&self, prefix: impl Prefix<K>) -> Result<Arc<Vec<Snowflake>>, StoreError> {
        self.ids_shared_bytes(prefix.encode().as_ref())
    }

    fn ids_shared_bytes(&self, prefix: &[u8]) -> Result<Arc<Vec<Snowflake>>, StoreError> {
        match &self.cache {
            Some(cache) => cache.scan_or_read(prefix, || self.scan_ids(prefix)),
            None => Ok(Arc::new(self.scan_ids(prefix)?)),
        }
    }

    fn scan_ids(&self, prefix: &[u8]) -> Result<Vec<Snowflake>, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .keys()
            .map(|key| Ok(last_id(&key?).unwrap_or_default()))
            .collect()
    }
}

/// A tree mapping keys of kind `K` to one id (token → user, email → user, DM pair → channel).
pub struct Lookup<K: ?Sized> {
    tree: sled::Tree,
    /// Cached answers; `None` (nothing stored) only when `remember_absent`.
    cache: Option<Arc<ReadCache<Option<Snowflake>>>>,
    remember_absent: bool,
    _key: PhantomData<fn(&K)>,
}

impl<K: ?Sized> Clone for Lookup<K> {
    fn clone(&self) -> Self {
        Lookup {
            tree: self.tree.clone(),
            cache: self.cache.clone(),
            remember_absent: self.remember_absent,
            _key: PhantomData,
        }
    }
}

impl<K: Key + ?Sized + 'static> Lookup<K> {
    fn open(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(Lookup {
            tree: db.open_tree(name)?,
            cache: None,
            remember_absent: false,
            _key: PhantomData,
        })
    }

    /// Like [`Lookup::open`], with an in-memory read cache (tokens: read on every request),
    /// registered in `caches`. Only keys found are cached: a flood of made-up tokens must not
    /// fill it.
    fn open_cached(db: &sled::Db, name: &str, caches: &Caches) -> Result<Self, StoreError> {
        let cache = ReadCache::new();
        caches.lock().push(cache.clone());
        Ok(Lookup {
            cache: Some(cache),
            ..Self::open(db, name)?
        })
    }

    /// Like [`Lookup::open_cached`], also remembering keys with nothing stored (a channel's
    /// last message: most channels of a READY have none, and its keys are ids we made).
    fn open_cached_with_absent(
        db: &sled::Db,
        name: &str,
        caches: &Caches,
    ) -> Result<Self, StoreError> {
        Ok(Lookup {
            remember_absent: true,
            ..Self::open_cached(db, name, caches)?
        })
    }

    /// The id stored under `key`.
    pub fn get(&self, key: K::Arg<'_>) -> Result<Option<Snowflake>, StoreError> {
        let key = K::encode(key);
        let key = key.as_ref();
        let Some(cache) = &self.cache else {
            return Ok(self.tree.get(key)?.and_then(|value| last_id(&value)));
        };
        if let Some(hit) = cache.get(key) {
            return Ok(*hit);
        }
        let stamp = cache.stamp();
        let found = self.tree.get(key)?.and_then(|value| last_id(&value));
        if found.is_some() || self.remember_absent {
            cache.fill(stamp, key, Arc::new(found));
        }
        Ok(found)
    }

    /// Stores `id` under `key` unless a larger id is there already.
    pub fn raise(&self, key: K::Arg<'_>, id: Snowflake) -> Result<(), StoreError> {
        let key = K::encode(key);
        let key = key.as_ref();
        self.tree.fetch_and_update(key, |old| {
            let old_id = old.and_then(last_id).unwrap_or_default();
            Some(be(id.max(old_id)).to_vec())
        })?;
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
        Ok(())
    }

    /// Stores `id` under `key`.
    pub fn put(&self, key: K::Arg<'_>, id: Snowflake) -> Result<(), StoreError> {
        let key = K::encode(key);
        let key = key.as_ref();
        self.tree.insert(key, &be(id))?;
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
        Ok(())
    }

    /// Removes `key`.
    pub fn remove(&self, key: K::Arg<'_>) -> Result<(), StoreError> {
        let key = K::encode(key);
        let key = key.as_ref();
        self.tree.remove(key)?;
        if let Some(cache) = &self.cache {
            cache.invalidate(key);
        }
        Ok(())
    }
}

/// A tree of raw bytes keyed by `K` (uploaded attachment contents).
pub struct Blobs<K: ?Sized> {
    tree: sled::Tree,
    _key: PhantomData<fn(&K)>,
}

impl<K: ?Sized> Clone for Blobs<K> {
    fn clone(&self) -> Self {
        Blobs {
            tree: self.tree.clone(),
            _key: PhantomData,
        }
    }
}

impl<K: Key + ?Sized + 'static> Blobs<K> {
    fn open(db: &sled::Db, name: &str) -> Result<Self, StoreError> {
        Ok(Blobs {
            tree: db.open_tree(name)?,
            _key: PhantomData,
        })
    }

    /// Stores `data` under `key`.
    pub fn put(&self, key: K::Arg<'_>, data: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(K::encode(key).as_ref(), data)?;
        Ok(())
    }

    /// The bytes under `key`.
    pub fn get(&self, key: K::Arg<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(K::encode(key))?.map(|v| v.to_vec()))
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

/// Group commit for [`Store::durable`]: callers take a ticket after their writes; one caller at
/// a time (the leader) flushes everything written so far and publishes the last ticket it
/// covered; the others wait for a flush that started after their ticket.
struct GroupCommit {
    /// Tickets handed out so far.
    requested: AtomicU64,
    /// Whether a leader is flushing now.
    flushing: std::sync::atomic::AtomicBool,
    /// The highest ticket known to be on disk; a bare version bump means "a flush failed".
    durable: tokio::sync::watch::Sender<u64>,
}

impl GroupCommit {
    fn new() -> GroupCommit {
        GroupCommit {
            requested: AtomicU64::new(0),
            flushing: std::sync::atomic::AtomicBool::new(false),
            durable: tokio::sync::watch::Sender::new(0),
        }
    }

    async fn wait(
        &self,
        db: &sled::Db,
        halted: &std::sync::atomic::AtomicBool,
    ) -> Result<(), StoreError> {
        // SeqCst: the caller's writes happen before its ticket, and a leader reads the ticket
        // count before it starts flushing, so a covered ticket's writes are in that flush.
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut seen = self.durable.subscribe();
        loop {
            if *seen.borrow_and_update() >= ticket {
                return Ok(());
            }
            // After a failed flush sled's next one never returns: nobody flushes again.
            if halted.load(Ordering::SeqCst) {
                return Err(StoreError::Halted);
            }
            if !self.flushing.swap(true, Ordering::SeqCst) {
                let mut leading = Leading {
                    commit: self,
                    covered: None,
                };
                let target = self.requested.load(Ordering::SeqCst);
                if let Err(err) = db.flush_async().await {
                    if matches!(err, sled::Error::Io(_)) {
                        halted.store(true, Ordering::SeqCst);
                    }
                    return Err(err.into());
                }
                leading.covered = Some(target);
                drop(leading);
                continue;
            }
            if seen.changed().await.is_err() {
                return Ok(());
            }
        }
    }
}

/// The leader's turn. Dropped when the flush ends, fails, or the request is cancelled (its
/// client went away): the flag is cleared before the waiters are woken, so a waiter that still
/// saw a leader is woken by this and never waits for a flush nobody runs; after a failure or a
/// cancellation the bare wake-up makes one of them lead the next flush.
struct Leading<'a> {
    commit: &'a GroupCommit,
    covered: Option<u64>,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.commit.flushing.store(false, Ordering::SeqCst);
        let covered = self.covered;
        self.commit.durable.send_modify(|durable| {
            if let Some(target) = covered {
                *durable = (*durable).max(target);
            }
        });
    }
}

/// sled's default tree: it holds the integrity mark (`store::watermark`), which is the
/// database's own history, not the world, so a reset leaves it alone.
const DEFAULT_TREE: &[u8] = b"__sled__default";

/// The backend's database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    commit: Arc<GroupCommit>,
    /// The read caches in front of the trees (dropped whole by [`Store::restore`]).
    caches: Caches,
    write_lock: std::sync::Arc<Mutex<()>>,
    pub ids: std::sync::Arc<SnowflakeGenerator>,
    pub users: Table<Snowflake, User>,
    pub credentials: Table<Snowflake, Credentials>,
    pub tokens: Lookup<str>,
    pub emails: Lookup<str>,
    pub applications: Table<Snowflake, Application>,
    pub guilds: Table<Snowflake, Guild>,
    pub roles: Table<(Snowflake, Snowflake), Role>,
    pub channels: Table<Snowflake, Channel>,
    pub guild_channels: Index<(Snowflake, Snowflake)>,
    pub last_message: Lookup<Snowflake>,
    pub members: Table<(Snowflake, Snowflake), Member>,
    pub user_guilds: Index<(Snowflake, Snowflake)>,
    pub messages: Table<(Snowflake, Snowflake), Message>,
    pub nonces: Lookup<NonceKey>,
    pub reactions: Table<(Snowflake, Snowflake), Vec<ReactionEntry>>,
    pub pins: Table<(Snowflake, Snowflake), u64>,
    pub bans: Table<(Snowflake, Snowflake), Ban>,
    pub invites: Table<str, Invite>,
    pub emojis: Table<(Snowflake, Snowflake), Emoji>,
    pub emoji_guild: Lookup<Snowflake>,
    pub webhooks: Table<Snowflake, Webhook>,
    pub audit: Table<(Snowflake, Snowflake), AuditLogEntry>,
    pub dm_pairs: Lookup<(Snowflake, Snowflake)>,
    pub user_dms: Index<(Snowflake, Snowflake)>,
    pub thread_members: Table<(Snowflake, Snowflake), ThreadMember>,
    pub attachments: Blobs<(Snowflake, Snowflake)>,
    /// Application commands under `(application, guild or 0, command)`.
    pub commands: Table<(Snowflake, Snowflake, Snowflake), ApplicationCommand>,
    /// Command permissions under `(application, guild, command or application)`.
    pub command_permissions: Table<(Snowflake, Snowflake, Snowflake), CommandPermissions>,
    /// Interactions by id, and their tokens → id.
    pub interactions: Table<Snowflake, Interaction>,
    pub interaction_tokens: Lookup<str>,
    /// Scheduled events under `(guild, event)`; subscribers under `(event, user)`.
    pub scheduled_events: Table<(Snowflake, Snowflake), ScheduledEvent>,
    pub scheduled_event_users: Index<(Snowflake, Snowflake)>,
    /// Live stages by channel id.
    pub stage_instances: Table<Snowflake, StageInstance>,
    /// Auto-moderation rules under `(guild, rule)`.
    pub automod_rules: Table<(Snowflake, Snowflake), AutoModRule>,
    pub meta: Table<str, serde_json::Value>,
    /// Tables of the route families added in session 2 (stickers, soundboard, templates...).
    pub extra: ExtraTables,
    /// The official client's per-account state (relationships, read states, settings...).
    pub account: AccountTables,
    /// Keeps the integrity mark of an on-disk database (none for a temporary one).
    watermark: Option<Arc<crate::store::watermark::Keeper>>,
    /// Set once a flush failed for good (shared with the integrity mark, which stops too).
    halted: Arc<std::sync::atomic::AtomicBool>,
    /// Whether the halt was logged.
    halted_said: Arc<std::sync::atomic::AtomicBool>,
}

impl Store {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        crate::store::private::prepare_dir(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|source| match crate::store::OpenFailure::of(source) {
                crate::store::OpenFailure::Locked => StoreError::Locked {
                    path: dir.display().to_string(),
                },
                crate::store::OpenFailure::Damaged => StoreError::Damaged {
                    path: dir.display().to_string(),
                    reason: "the storage engine found corrupted data in it".to_string(),
                },
                crate::store::OpenFailure::Other(source) => StoreError::Open {
                    path: dir.display().to_string(),
                    source,
                },
            })?;
        crate::store::private::tighten_files(dir)?;
        crate::store::watermark::check(&db, dir).map_err(|err| StoreError::Damaged {
            path: dir.display().to_string(),
            reason: err.to_string(),
        })?;
        let keeper = crate::store::watermark::Keeper::start(db.clone(), dir.to_path_buf());
        let mut store = Self::from_db(db)?;
        store.halted = keeper.halt_handle();
        store.watermark = Some(Arc::new(keeper));
        Ok(store)
    }

    /// A throwaway in-memory-backed database (unit tests, coverage probing).
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let meta: Table<str, serde_json::Value> = Table::open(&db, "meta")?;
        let floor = meta
            .get("snowflake_floor")?
            .and_then(|value| value.as_u64())
            .unwrap_or(0);
        let caches: Caches = Arc::default();
        Ok(Store {
            ids: std::sync::Arc::new(SnowflakeGenerator::new(1, floor)),
            write_lock: std::sync::Arc::new(Mutex::new(())),
            commit: Arc::new(GroupCommit::new()),
            users: Table::open_cached(&db, "users", &caches)?,
            credentials: Table::open(&db, "credentials")?,
            tokens: Lookup::open_cached(&db, "tokens", &caches)?,
            emails: Lookup::open(&db, "emails")?,
            applications: Table::open_cached(&db, "applications", &caches)?,
            guilds: Table::open_cached(&db, "guilds", &caches)?,
            roles: Table::open_cached(&db, "roles", &caches)?,
            channels: Table::open_cached(&db, "channels", &caches)?,
            guild_channels: Index::open_cached(&db, "guild_channels", &caches)?,
            last_message: Lookup::open_cached_with_absent(&db, "last_message", &caches)?,
            members: Table::open_cached(&db, "members", &caches)?,
            user_guilds: Index::open(&db, "user_guilds")?,
            messages: Table::open(&db, "messages")?,
            nonces: Lookup::open(&db, "nonces")?,
            reactions: Table::open(&db, "reactions")?,
            pins: Table::open_cached(&db, "pins", &caches)?,
            bans: Table::open(&db, "bans")?,
            invites: Table::open(&db, "invites")?,
            emojis: Table::open(&db, "emojis")?,
            emoji_guild: Lookup::open(&db, "emoji_guild")?,
            webhooks: Table::open_cached(&db, "webhooks", &caches)?,
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
            account: AccountTables::open(&db)?,
            meta,
            db,
            caches,
            watermark: None,
            halted: Arc::default(),
            halted_said: Arc::default(),
        })
    }

    /// A copy of every tree in memory (the world a reset goes back to).
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let _guard = self.lock();
        let mut trees = Vec::new();
        for name in self.db.tree_names() {
            if name == DEFAULT_TREE {
                continue;
            }
            let tree = self.db.open_tree(&name)?;
            let entries = tree.iter().collect::<Result<Vec<_>, _>>()?;
            trees.push((name, entries));
        }
        Ok(Snapshot {
            trees,
            ids: self.ids.position(),
        })
    }

    /// Replaces the content of every tree with `snapshot`'s (trees it does not name are
    /// emptied) and drops every read cache. Readers racing the restore may see a mix; callers
    /// close the gateway sessions afterwards so every client starts again from the result.
    pub fn restore(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let _guard = self.lock();
        let mut kept = std::collections::HashSet::new();
        for (name, entries) in &snapshot.trees {
            restore_tree(&self.db.open_tree(name)?, entries)?;
            kept.insert(name.clone());
        }
        for name in self.db.tree_names() {
            if !kept.contains(&name) && name != DEFAULT_TREE {
                self.db.open_tree(&name)?.clear()?;
            }
        }
        for cache in self.caches.lock().iter() {
            cache.forget();
        }
        Ok(())
    }

    /// Empties every tree and drops every read cache (before loading another fixture).
    pub fn clear_all(&self) -> Result<(), StoreError> {
        self.restore(&Snapshot {
            trees: Vec::new(),
            ids: 0,
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
        if self.write_halted() {
            return Err(StoreError::Halted);
        }
        self.db.flush()?;
        Ok(())
    }

    /// Asynchronous flush for request handlers that promise durability.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        if self.write_halted() {
            return Err(StoreError::Halted);
        }
        self.db.flush_async().await?;
        Ok(())
    }

    /// Returns once every write made before the call is on disk. Group commit: one flush covers
    /// every caller that arrived while the previous one ran, so concurrent requests share the
    /// cost of an fsync instead of queueing one each.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let result = self.commit.wait(&self.db, &self.halted).await;
        if self.write_halted() && !self.halted_said.swap(true, Ordering::SeqCst) {
            let why = result
                .as_ref()
                .err()
                .map_or_else(String::new, |err| format!(" ({err})"));
            tracing::error!(
                "serve stopped taking writes: a write to the data directory failed{why}. Every \
                 write is now answered 500 and nothing more is stored: free space, then restart serve"
            );
            // sled flushes when the last handle of a tree drops, and after an I/O error that
            // flush never returns: one handle of everything is kept until the process exits.
            std::mem::forget(self.clone());
        }
        result
    }

    /// True once a flush failed with an I/O error (a full disk): from then on every write is
    /// refused, and the integrity mark stops too.
    pub fn write_halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// True when no user exists yet (a fresh data directory).
    pub fn is_empty(&self) -> bool {
        self.users.tree.is_empty()
    }

    // ---- typed helpers used across routes ----

    /// The user with `id`.
    pub fn user(&self, id: Snowflake) -> Result<Option<User>, StoreError> {
        self.users.get(id)
    }

    /// The user a token belongs to.
    pub fn user_by_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        Ok(self.user_by_token_shared(token)?.map(Arc::unwrap_or_clone))
    }

    /// The user a token belongs to, shared (served from memory after the first request).
    pub fn user_by_token_shared(&self, token: &str) -> Result<Option<Arc<User>>, StoreError> {
        match self.tokens.get(token)? {
            Some(id) => self.users.get_shared(id),
            None => Ok(None),
        }
    }

    /// Stores a user and their credentials (indexes token and email).
    pub fn put_user(&self, user: &User, credentials: &Credentials) -> Result<(), StoreError> {
        if let Some(old) = self.credentials.get(user.id)? {
            self.tokens.remove(&old.token)?;
            if let Some(email) = old.email {
                self.emails.remove(&email.to_lowercase())?;
            }
        }
        self.users.put(user.id, user)?;
        self.credentials.put(user.id, credentials)?;
        self.tokens.put(&credentials.token, user.id)?;
        if let Some(email) = &credentials.email {
            self.emails.put(&email.to_lowercase(), user.id)?;
        }
        Ok(())
    }

    /// The guild with `id`.
    pub fn guild(&self, id: Snowflake) -> Result<Option<Guild>, StoreError> {
        self.guilds.get(id)
    }

    /// Every role of a guild (unsorted: id order).
    pub fn guild_roles(&self, guild_id: Snowflake) -> Result<Vec<Role>, StoreError> {
        self.roles.values(guild_id)
    }

    /// One role of a guild.
    pub fn role(
        &self,
        guild_id: Snowflake,
        role_id: Snowflake,
    ) -> Result<Option<Role>, StoreError> {
        self.roles.get((guild_id, role_id))
    }

    /// The channel with `id`.
    pub fn channel(&self, id: Snowflake) -> Result<Option<Channel>, StoreError> {
        self.channels.get(id)
    }

    /// Stores a channel and indexes it under its guild.
    pub fn put_channel(&self, channel: &Channel) -> Result<(), StoreError> {
        self.channels.put(channel.id, channel)?;
        if let Some(guild_id) = channel.guild_id {
            self.guild_channels.insert((guild_id, channel.id))?;
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
        self.members.get((guild_id, user_id))
    }

    /// Stores a member and indexes the guild under the user.
    pub fn put_member(&self, guild_id: Snowflake, member: &Member) -> Result<(), StoreError> {
        self.members.put((guild_id, member.user_id), member)?;
        self.user_guilds.insert((member.user_id, guild_id))?;
        Ok(())
    }

    /// Removes a member and its index entry.
    pub fn remove_member(
        &self,
        guild_id: Snowflake,
        user_id: Snowflake,
    ) -> Result<Option<Member>, StoreError> {
        self.user_guilds.remove((user_id, guild_id))?;
        self.members.remove((guild_id, user_id))
    }

    /// Ids of the guilds a user is in.
    pub fn guild_ids_of(&self, user_id: Snowflake) -> Result<Vec<Snowflake>, StoreError> {
        self.user_guilds.ids(user_id)
    }

    /// Number of members of a guild.
    pub fn member_count(&self, guild_id: Snowflake) -> usize {
        self.members.count(guild_id)
    }

    /// A message in a channel.
    pub fn message(
        &self,
        channel_id: Snowflake,
        message_id: Snowflake,
    ) -> Result<Option<Message>, StoreError> {
        self.messages.get((channel_id, message_id))
    }

    /// Stores a message (and moves the channel's last_message_id forward if it is newer and
    /// not an ephemeral interaction response, which is no channel history).
    pub fn put_message(&self, message: &Message) -> Result<(), StoreError> {
        self.messages
            .put((message.channel_id, message.id), message)?;
        if message.flags & (1 << 6) != 0 {
            return Ok(());
        }
        self.last_message.raise(message.channel_id, message.id)
    }

    /// The newest message id ever stored in a channel.
    pub fn last_message_id(&self, channel_id: Snowflake) -> Result<Option<Snowflake>, StoreError> {
        self.last_message.get(channel_id)
    }

    /// Removes everything a channel owns (messages, reactions, pins, thread members).
    pub fn purge_channel(&self, channel_id: Snowflake) -> Result<(), StoreError> {
        self.messages.remove_prefix(channel_id)?;
        self.reactions.remove_prefix(channel_id)?;
        self.pins.remove_prefix(channel_id)?;
        self.thread_members.remove_prefix(channel_id)?;
        self.last_message.remove(channel_id)?;
        Ok(())
    }

    /// The DM channel between two users, if one exists.
    pub fn dm_between(&self, a: Snowflake, b: Snowflake) -> Result<Option<Snowflake>, StoreError> {
        self.dm_pairs.get((a.min(b), a.max(b)))
    }

    /// Records the DM channel between two users.
    pub fn put_dm(
        &self,
        a: Snowflake,
        b: Snowflake,
        channel_id: Snowflake,
    ) -> Result<(), StoreError> {
        self.dm_pairs.put((a.min(b), a.max(b)), channel_id)?;
        self.user_dms.insert((a, channel_id))?;
        self.user_dms.insert((b, channel_id))?;
        Ok(())
    }

    /// Records an audit log entry.
    pub fn put_audit(&self, entry: &AuditLogEntry) -> Result<(), StoreError> {
        self.audit.put((entry.guild_id, entry.id), entry)
    }

    /// The sled database, for the few callers (tests, tools) that must see it whole.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// The tables of the route families added after the first cut (`extra`'s records); opened
/// with the rest of the store.
#[derive(Clone)]
pub struct ExtraTables {
    /// Guild stickers under `(guild, sticker)`; `sticker_guild` maps sticker → guild.
    pub stickers: Table<(Snowflake, Snowflake), Sticker>,
    pub sticker_guild: Lookup<Snowflake>,
    /// Soundboard sounds under `(guild, sound)`.
    pub sounds: Table<(Snowflake, Snowflake), SoundboardSound>,
    /// Templates by code; `guild_template` maps guild → the template's creation id.
    pub templates: Table<str, GuildTemplate>,
    /// Welcome screens and onboarding by guild id.
    pub welcome_screens: Table<Snowflake, WelcomeScreen>,
    pub onboarding: Table<Snowflake, Onboarding>,
    /// Application emojis under `(application, emoji)`.
    pub app_emojis: Table<(Snowflake, Snowflake), Emoji>,
    /// Entitlements under `(application, entitlement)`.
    pub entitlements: Table<(Snowflake, Snowflake), Entitlement>,
    /// Role-connection metadata records by application id.
    pub role_connection_metadata: Table<Snowflake, Vec<Value>>,
    /// A user's role connection under `(application, user)`.
    pub role_connections: Table<(Snowflake, Snowflake), Value>,
    /// Followers under `(source channel, webhook)`.
    pub channel_followers: Table<(Snowflake, Snowflake), ChannelFollower>,
    /// Exceptions of recurring scheduled events under `(event, exception)`.
    pub event_exceptions: Table<(Snowflake, Snowflake), EventException>,
    /// Target users of restricted invites, by invite code.
    pub invite_targets: Table<str, InviteTargets>,
    /// Lobbies by id, and their messages under `(lobby, message)`.
    pub lobbies: Table<Snowflake, Lobby>,
    pub lobby_messages: Table<(Snowflake, Snowflake), Value>,
    /// A guild's raid-protection pauses (`incidents_data`) by guild id.
    pub guild_incidents: Table<Snowflake, Value>,
    /// Voice channel statuses by channel id (absent: none set).
    pub voice_statuses: Table<Snowflake, String>,
    /// Poll votes under `(channel, message)`.
    pub poll_votes: Table<(Snowflake, Snowflake), PollVotes>,
    /// Polls not yet finalised, under `(channel, message)` (for the finaliser).
    pub open_polls: Table<(Snowflake, Snowflake), OpenPoll>,
}

impl ExtraTables {
    /// Opens (creating if needed) every table in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(ExtraTables {
            stickers: Table::open(db, "stickers")?,
            sticker_guild: Lookup::open(db, "sticker_guild")?,
            sounds: Table::open(db, "soundboard_sounds")?,
            templates: Table::open(db, "guild_templates")?,
            welcome_screens: Table::open(db, "welcome_screens")?,
            onboarding: Table::open(db, "onboarding")?,
            app_emojis: Table::open(db, "application_emojis")?,
            entitlements: Table::open(db, "entitlements")?,
            role_connection_metadata: Table::open(db, "role_connection_metadata")?,
            role_connections: Table::open(db, "role_connections")?,
            channel_followers: Table::open(db, "channel_followers")?,
            poll_votes: Table::open(db, "poll_votes")?,
            voice_statuses: Table::open(db, "voice_statuses")?,
            guild_incidents: Table::open(db, "guild_incidents")?,
            lobbies: Table::open(db, "lobbies")?,
            invite_targets: Table::open(db, "invite_targets")?,
            lobby_messages: Table::open(db, "lobby_messages")?,
            event_exceptions: Table::open(db, "scheduled_event_exceptions")?,
            open_polls: Table::open(db, "open_polls")?,
        })
    }
}

/// The official client's per-account state: what user sessions read in READY and the user
/// REST routes write. Keys start with the owning user, so one prefix scan loads a user's rows.
// Filled by the user routes (issue #16) and read by the user gateway (issue #15).
#[derive(Clone)]
pub struct AccountTables {
    /// Relationships under `(owner, other user)`; both sides are stored.
    pub(crate) relationships: Table<(Snowflake, Snowflake), Relationship>,
    /// Read states under `(user, read_state_type, resource id)`.
    pub(crate) read_states: Table<(Snowflake, Snowflake, Snowflake), ReadState>,
    /// Notification settings under `(user, guild id or 0 for DMs)`.
    pub(crate) guild_settings: Table<(Snowflake, Snowflake), UserGuildSettings>,
    /// Notes under `(owner, the user the note is about)`.
    pub(crate) notes: Table<(Snowflake, Snowflake), String>,
    /// MFA secrets and backup codes by user id.
    pub(crate) mfa: Table<Snowflake, MfaState>,
    /// WebAuthn authenticators under `(user, authenticator id)`.
    pub(crate) webauthn: Table<(Snowflake, Snowflake), WebauthnKey>,
    /// Messages removed from a user's recent-mentions inbox, `(user, message id)`.
    pub(crate) mentions_deleted: Index<(Snowflake, Snowflake)>,
    /// Group DMs whose blocked-user warning the user dismissed, `(user, channel id)`.
    pub(crate) blocked_warning_dismissed: Index<(Snowflake, Snowflake)>,
    /// The versions of the versioned READY shapes, by user id.
    pub(crate) versions: Table<Snowflake, AccountVersions>,
    /// Settings protobufs (encoded bytes) under `(user, settings_proto_type)`.
    pub(crate) settings_proto: Blobs<(Snowflake, Snowflake)>,
    /// The legacy `/users/@me/settings` JSON, kept consistent with the proto on every write,
    /// by user id (READY without USER_SETTINGS_PROTO sends it as `user_settings`).
    pub(crate) legacy_settings: Table<Snowflake, Value>,
    /// Uploaded images (avatars, icons, banners, emojis) by content hash.
    pub(crate) images: Blobs<str>,
}

impl AccountTables {
    /// Adds one to the version `which` picks of `user`'s versioned READY shapes; the new value.
    /// Call under the store's lock (it reads, then writes).
    pub(crate) fn bump_version(
        &self,
        user: Snowflake,
        which: impl FnOnce(&mut AccountVersions) -> &mut u64,
    ) -> Result<u64, StoreError> {
        let mut versions = self.versions.get(user)?.unwrap_or_default();
        let version = which(&mut versions);
        *version += 1;
        let new = *version;
        self.versions.put(user, &versions)?;
        Ok(new)
    }

    /// Opens (creating if needed) every table in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(AccountTables {
            relationships: Table::open(db, "relationships")?,
            read_states: Table::open(db, "read_states")?,
            guild_settings: Table::open(db, "user_guild_settings")?,
            notes: Table::open(db, "notes")?,
            mfa: Table::open(db, "mfa")?,
            webauthn: Table::open(db, "webauthn_keys")?,
            mentions_deleted: Index::open(db, "mentions_deleted")?,
            blocked_warning_dismissed: Index::open(db, "blocked_warning_dismissed")?,
            versions: Table::open(db, "account_versions")?,
            settings_proto: Blobs::open(db, "settings_proto")?,
            legacy_settings: Table::open(db, "legacy_settings")?,
            images: Blobs::open(db, "images")?,
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
            store.guilds.put(guild.id, &guild).unwrap();
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
        assert_eq!(store.emails.get("a@x.org").unwrap(), Some(user.id));
        assert_eq!(store.guild_ids_of(user.id).unwrap(), vec![Snowflake(9)]);
        assert_eq!(store.member_count(Snowflake(9)), 1);
        assert!(store.next_id().0 > 0);
    }

    #[test]
    fn restore_puts_every_tree_back_and_drops_the_caches() {
        let store = Store::temporary().unwrap();
        let guild = Snowflake(7);
        let role = |id: u64, name: &str| -> Role {
            serde_json::from_value(serde_json::json!({"id": id.to_string(), "name": name})).unwrap()
        };
        store
            .roles
            .put((guild, Snowflake(1)), &role(1, "kept"))
            .unwrap();
        store
            .roles
            .put((guild, Snowflake(2)), &role(2, "changed"))
            .unwrap();
        store
            .roles
            .put((guild, Snowflake(3)), &role(3, "removed"))
            .unwrap();
        let snapshot = store.snapshot().unwrap();
        assert!(snapshot.len() >= 3);
        // Fill the caches, then change, add and remove.
        assert_eq!(store.guild_roles(guild).unwrap().len(), 3);
        store
            .roles
            .put((guild, Snowflake(2)), &role(2, "edited"))
            .unwrap();
        store.roles.remove((guild, Snowflake(3))).unwrap();
        store
            .roles
            .put((guild, Snowflake(4)), &role(4, "added"))
            .unwrap();
        store.pins.put((guild, Snowflake(9)), &1).unwrap();
        assert_eq!(
            store.role(guild, Snowflake(2)).unwrap().unwrap().name,
            "edited"
        );
        store.restore(&snapshot).unwrap();
        let names: Vec<String> = store
            .guild_roles(guild)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["kept", "changed", "removed"]);
        assert_eq!(
            store.role(guild, Snowflake(2)).unwrap().unwrap().name,
            "changed"
        );
        assert!(store.pins.get((guild, Snowflake(9))).unwrap().is_none());
        store.clear_all().unwrap();
        assert!(store.guild_roles(guild).unwrap().is_empty());
        assert!(store.is_empty());
    }

    #[test]
    fn cached_trees_see_every_write_remove_and_prefix_removal() {
        let store = Store::temporary().unwrap();
        let guild = Snowflake(7);
        let mut role: Role =
            serde_json::from_value(serde_json::json!({"id": "7", "name": "@everyone"})).unwrap();
        store.roles.put((guild, role.id), &role).unwrap();
        // Fill both caches (one entry, one prefix scan), then change what they hold.
        assert_eq!(
            store.role(guild, role.id).unwrap().unwrap().name,
            "@everyone"
        );
        assert_eq!(store.guild_roles(guild).unwrap().len(), 1);
        role.name = "renamed".into();
        store.roles.put((guild, role.id), &role).unwrap();
        assert_eq!(store.role(guild, role.id).unwrap().unwrap().name, "renamed");
        assert_eq!(store.guild_roles(guild).unwrap()[0].name, "renamed");
        store.roles.remove((guild, role.id)).unwrap();
        assert!(store.role(guild, role.id).unwrap().is_none());
        assert!(store.guild_roles(guild).unwrap().is_empty());
        store.roles.put((guild, role.id), &role).unwrap();
        assert_eq!(store.guild_roles(guild).unwrap().len(), 1);
        store.roles.remove_prefix(guild).unwrap();
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
        // A guild's channel list: new channels, removals and a guild's removal show at once.
        let ids = |store: &Store| -> Vec<u64> {
            let mut ids: Vec<u64> = store
                .guild_channel_list(guild)
                .unwrap()
                .iter()
                .map(|c| c.id.0)
                .collect();
            ids.sort_unstable();
            ids
        };
        assert!(ids(&store).is_empty());
        for id in [11, 12] {
            store
                .put_channel(&Channel::new_in_guild(Snowflake(id), guild, 0, "c"))
                .unwrap();
            assert!(ids(&store).contains(&id));
        }
        assert_eq!(
            *store.guild_channels.ids_shared(guild).unwrap(),
            [Snowflake(11), Snowflake(12)]
        );
        store.guild_channels.remove((guild, Snowflake(11))).unwrap();
        assert_eq!(ids(&store), [12]);
        store.guild_channels.remove_prefix_all(guild).unwrap();
        assert!(ids(&store).is_empty());
        // A channel's last message: remembered as absent, then moved by every newer message
        // (never back), and gone with the channel.
        let channel = Snowflake(12);
        assert_eq!(store.last_message_id(channel).unwrap(), None);
        for (id, expected) in [(40, 40), (50, 50), (45, 50)] {
            store
                .put_message(&Message::new(Snowflake(id), channel, None, Snowflake(2)))
                .unwrap();
            assert_eq!(
                store.last_message_id(channel).unwrap(),
                Some(Snowflake(expected))
            );
        }
        store.purge_channel(channel).unwrap();
        assert_eq!(store.last_message_id(channel).unwrap(), None);
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
                (channel, Snowflake(0)),
                (channel, Snowflake(u64::MAX)),
                true,
                2,
            )
            .unwrap();
        let ids: Vec<u64> = newest_first.iter().map(|m| m.id.0).collect();
        assert_eq!(ids, vec![30, 20]);
        assert_eq!(store.last_message_id(channel).unwrap(), Some(Snowflake(30)));
    }

    /// The on-disk layout: changing any of these bytes breaks every existing data directory.
    #[test]
    fn key_encodings_are_pinned() {
        let (a, b, c) = (
            Snowflake(0x0102_0304_0506_0708),
            Snowflake(0x1112_1314_1516_1718),
            Snowflake(0x2122_2324_2526_2728),
        );
        let one: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
        let two: [u8; 8] = [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18];
        let three: [u8; 8] = [0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28];
        assert_eq!(<Snowflake as Key>::encode(a), one);
        assert_eq!(
            <(Snowflake, Snowflake) as Key>::encode((a, b)),
            [one, two].concat()[..]
        );
        assert_eq!(
            <(Snowflake, Snowflake, Snowflake) as Key>::encode((a, b, c)),
            [one, two, three].concat()[..]
        );
        assert_eq!(<str as Key>::encode("tok-É"), "tok-É".as_bytes());
        assert_eq!(
            NonceKey::encode((a, b, "n1")),
            [&one[..], &two[..], b"n1"].concat()
        );
        let guild_prefix = <Snowflake as Prefix<(Snowflake, Snowflake)>>::encode(a);
        assert_eq!(guild_prefix, one);
        let command_prefix = <Snowflake as Prefix<(Snowflake, Snowflake, Snowflake)>>::encode(a);
        assert_eq!(command_prefix, one);
        let scope_prefix = Prefix::<(Snowflake, Snowflake, Snowflake)>::encode((a, b));
        assert_eq!(scope_prefix, [one, two].concat()[..]);
        // What a lookup stores is the id's big-endian bytes.
        let store = Store::temporary().unwrap();
        store.tokens.put("tok", a).unwrap();
        assert_eq!(store.tokens.tree.get(b"tok").unwrap().unwrap(), one);
    }

    #[test]
    fn prefix_scans_return_only_that_prefix_in_id_order() {
        let store = Store::temporary().unwrap();
        let role = |guild: u64, id: u64| -> Role {
            serde_json::from_value(
                serde_json::json!({"id": id.to_string(), "name": format!("{guild}/{id}")}),
            )
            .unwrap()
        };
        // Ids straddle a byte boundary (255 < 256) so little-endian order would differ.
        for (guild, id) in [(2u64, 256u64), (1, 300), (2, 5), (3, 1), (2, 255), (1, 2)] {
            store
                .roles
                .put((Snowflake(guild), Snowflake(id)), &role(guild, id))
                .unwrap();
        }
        let names = |guild: u64| -> Vec<String> {
            store
                .roles
                .values(Snowflake(guild))
                .unwrap()
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        assert_eq!(names(2), ["2/5", "2/255", "2/256"]);
        assert_eq!(names(1), ["1/2", "1/300"]);
        assert!(names(4).is_empty());
        assert_eq!(store.roles.count(Snowflake(2)), 3);
        assert_eq!(store.roles.all().unwrap().len(), 6);
        // Indexes: the trailing ids under one prefix, in id order.
        store
            .user_guilds
            .insert((Snowflake(9), Snowflake(256)))
            .unwrap();
        store
            .user_guilds
            .insert((Snowflake(9), Snowflake(7)))
            .unwrap();
        store
            .user_guilds
            .insert((Snowflake(10), Snowflake(1)))
            .unwrap();
        assert_eq!(
            store.user_guilds.ids(Snowflake(9)).unwrap(),
            [Snowflake(7), Snowflake(256)]
        );
        assert_eq!(store.roles.remove_prefix(Snowflake(2)).unwrap(), 3);
        assert!(names(2).is_empty());
        assert_eq!(names(1), ["1/2", "1/300"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_serves_concurrent_and_cancelled_callers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Many writers at once: every one returns, each after a flush that covered its write.
        let writers: Vec<_> = (0..64u64)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .meta
                        .put(&format!("w{n}"), &serde_json::Value::from(n))
                        .unwrap();
                    store.durable().await.unwrap();
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        assert_eq!(store.commit.requested.load(Ordering::SeqCst), 64);
        assert_eq!(*store.commit.durable.borrow(), 64);
        // Callers whose requests are cancelled mid-wait (a client went away) never leave the
        // others waiting on a flush nobody runs.
        for round in 0..20u64 {
            let cancelled: Vec<_> = (0..8)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move { store.durable().await })
                })
                .collect();
            for task in &cancelled {
                task.abort();
            }
            store
                .meta
                .put("round", &serde_json::Value::from(round))
                .unwrap();
            tokio::time::timeout(std::time::Duration::from_secs(10), store.durable())
                .await
                .expect("a durable wait after cancelled ones finishes")
                .unwrap();
        }
    }
}
