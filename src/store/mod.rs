//! The recordings database (sled): typed access to REST exchanges, gateway sessions and frames,
//! a route index for replay and exploration, redaction before write, and the recorder that
//! feeds it from the proxy without slowing traffic down.
pub mod account;
pub mod body;
pub mod capture;
mod chunk;
pub mod filter;
mod gateway_decode;
pub mod har;
pub mod multipart;

pub mod private;
pub mod recorder;
pub mod records;
pub mod redact;
pub mod remote;
pub mod route;
pub mod stdio;
pub mod watermark;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use recorder::{Recorder, RecorderOptions};
pub use records::{
    BodyRecord, CloseRecord, Direction, Exchange, Frame, FrameKind, GatewaySession, Header,
    ResponseRecord, Rewrite,
};

/// First byte of every stored record: the layout version, so old recordings stay readable.
const FORMAT_V1: u8 = 1;
/// Layout of an exchange chunk: this byte, the count (u32 LE), then zstd(postcard(Vec<Exchange>)).
/// The recorder writes exchanges in chunks under the first one's id: one sled key per chunk
/// instead of one per exchange, and similar exchanges compress well together (measured: sled's
/// per-key log writes were ~12 KB of disk writes per recorded exchange).
const FORMAT_CHUNK_ZSTD: u8 = 2;
/// The same chunk layout with exchanges that end in their [`Exchange::rewrites`]; chunks of
/// the older layout read with no rewrites.
const FORMAT_CHUNK_ZSTD_REWRITES: u8 = 3;
/// Exchanges per chunk at most.
pub(crate) const CHUNK_EXCHANGES: usize = 64;
/// zstd level for chunks: fast; the recorder thread shares the machine with the proxy.
/// Measured on 64 similar REST exchanges: level -1 compresses 30x (level 1: 32x) in 70% of the
/// time.
const CHUNK_ZSTD_LEVEL: i32 = -1;
/// How often sled writes dirty pages out. With the recorder's [`recorder::MAX_PENDING_AGE`]
/// and its poll this makes `record`'s promise: after `kill -9`, at most the exchanges of the last
/// 100 ms are missing (40 ms in memory + a 10 ms poll + 40 ms to the next flush, plus the fsync).
const FLUSH_EVERY_MS: u64 = 40;

/// Errors of the recordings database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database.
    #[error("the recordings database {path} is in use by another process (is another `discord-mitm record` or `serve --listen` running on it?)\n  fix: stop it, or pass --recordings DIR to use another directory")]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// The database could not be opened.
    #[error("cannot open the recordings database {path}: {reason}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// Why it failed.
        reason: String,
    },
    /// sled failed.
    #[error("recordings database error: {0}")]
    Sled(#[from] sled::Error),
    /// A record does not decode.
    #[error("record {key} is damaged or from a newer discord-mitm: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// Why it does not decode.
        reason: String,
    },
    /// The database is read through another process, which does all the writing.
    #[error("the recordings database {path} is held by a running discord-mitm; it is read through that process and cannot be written from here")]
    ReadOnly {
        /// The database directory.
        path: PathBuf,
    },
    /// The running process that holds the database did not answer as it should.
    #[error("the recordings database {path} is in use by a running discord-mitm, and its live API at {addr} failed: {reason}\n  fix: wait for it, or stop it (if it was killed, the stale {file} can be deleted)")]
    Live {
        /// The database directory.
        path: PathBuf,
        /// The live API's address.
        addr: String,
        /// The live file beside the database.
        file: String,
        /// What failed.
        reason: String,
    },
    /// A record could not be encoded.
    #[error("cannot encode record: {0}")]
    Encode(String),
}

/// Counts for `recordings stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StoreStats {
    /// REST exchanges.
    pub exchanges: u64,
    /// Gateway sessions.
    pub sessions: u64,
    /// Gateway frames.
    pub frames: u64,
    /// Bytes on disk.
    pub disk_bytes: u64,
}

/// The database file this process holds (sled).
struct Local {
    db: sled::Db,
    exchanges: sled::Tree,
    route_index: sled::Tree,
    sessions: sled::Tree,
    frames: sled::Tree,
    next_exchange: AtomicU64,
    next_session: AtomicU64,
    /// Writes so far (exchanges, sessions, frames): what the live explorer watches.
    writes: AtomicU64,
    /// Declared last: dropped after the trees, it takes the final mark.
    _watermark: watermark::Keeper,
}

impl Drop for Local {
    fn drop(&mut self) {
        if self._watermark.halted() {
            // sled flushes when the last handle of a tree drops, and after an I/O error that
            // flush never returns: leave these handles to the process's exit instead.
            std::mem::forget(self.db.clone());
            for tree in [
                &self.exchanges,
                &self.route_index,
                &self.sessions,
                &self.frames,
            ] {
                std::mem::forget(tree.clone());
            }
        }
    }
}

/// What a failed sled open means, for both databases (recordings and `serve --data`).
pub(crate) enum OpenFailure {
    /// Another process holds the directory's lock.
    Locked,
    /// sled found corrupted data.
    Damaged,
    /// Anything else (I/O, permissions).
    Other(sled::Error),
}

impl OpenFailure {
    /// Sorts sled's open error.
    pub(crate) fn of(err: sled::Error) -> OpenFailure {
        match &err {
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                OpenFailure::Locked
            }
            sled::Error::Corruption { .. } => OpenFailure::Damaged,
            _ => OpenFailure::Other(err),
        }
    }
}

impl Local {
    /// Opens (or creates) the database in `dir`.
    fn open(dir: &Path) -> Result<Local, StoreError> {
        let private = |err: private::PrivateDirError| StoreError::Open {
            path: dir.to_path_buf(),
            reason: err.to_string(),
        };
        private::prepare_dir(dir).map_err(private)?;
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(FLUSH_EVERY_MS))
            .cache_capacity(128 * 1024 * 1024)
            .open()
            .map_err(|err| match OpenFailure::of(err) {
                OpenFailure::Locked => StoreError::Locked {
                    path: dir.to_path_buf(),
                },
                OpenFailure::Damaged => StoreError::Open {
                    path: dir.to_path_buf(),
                    reason: "it is damaged (the storage engine found corrupted data in it)\n  fix: restore it from a backup, or record into a new directory with --recordings DIR".to_string(),
                },
                OpenFailure::Other(err) => StoreError::Open {
                    path: dir.to_path_buf(),
                    reason: err.to_string(),
                },
            })?;
        private::tighten_files(dir).map_err(private)?;
        watermark::check(&db, dir).map_err(|err| StoreError::Open {
            path: dir.to_path_buf(),
            reason: format!(
                "{err}\n  fix: restore it from a backup, or record into a new directory with --recordings DIR"
            ),
        })?;
        let keeper = watermark::Keeper::start(db.clone(), dir.to_path_buf());
        let exchanges = db.open_tree("exchanges")?;
        let route_index = db.open_tree("route_index")?;
        let sessions = db.open_tree("gateway_sessions")?;
        let frames = db.open_tree("gateway_frames")?;
        let next_exchange = last_exchange_id(&exchanges)? + 1;
        let next_session = last_id(&sessions)? + 1;
        Ok(Local {
            writes: AtomicU64::new(0),
            db,
            exchanges,
            route_index,
            sessions,
            frames,
            next_exchange: AtomicU64::new(next_exchange),
            next_session: AtomicU64::new(next_session),
            _watermark: keeper,
        })
    }

    /// Set once a write failed for good: stops the integrity mark (whose flush would hang).
    fn write_failure_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self._watermark.halt_handle()
    }

    /// Stores an exchange under a fresh id (written into `exchange.id`) and indexes its route.
    fn insert_exchange(&self, exchange: &mut Exchange) -> Result<u64, StoreError> {
        self.insert_exchanges(std::slice::from_mut(exchange))?;
        Ok(exchange.id)
    }

    /// Stores several exchanges at once (ids assigned in order) in compressed chunks, then
    /// their route index entries: the recorder's path under load.
    ///
    /// Plain inserts, not `sled::Batch`: sled seals and writes out its log buffer twice for
    /// every batch (a `pwrite` and `sync_file_range` each, and a wake-up of all its idle IO
    /// threads), which measured as more CPU than everything else the recorder does. Without
    /// batches the log buffer goes out when full or on the periodic flush. A crash recovers a
    /// prefix of sled's log, and the chunk goes in before its index entries, so an index entry
    /// never points at a chunk that was lost.
    fn insert_exchanges(&self, exchanges: &mut [Exchange]) -> Result<(), StoreError> {
        for chunk in exchanges.chunks_mut(CHUNK_EXCHANGES) {
            let first = self
                .next_exchange
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            // One index entry per route per chunk, its value the chunk's ids for that route.
            let mut routes: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = Default::default();
            // Clients repeat paths (polling, paging): template each distinct one once.
            let mut templates: std::collections::HashMap<String, String> = Default::default();
            for (offset, exchange) in chunk.iter_mut().enumerate() {
                exchange.id = first + offset as u64;
                let path = exchange.path();
                if !templates.contains_key(path) {
                    templates.insert(path.to_string(), route::route_template(path));
                }
                let template = templates.get(path).map_or("", String::as_str);
                routes
                    .entry(route_key(
                        &exchange.method,
                        &exchange.host,
                        template,
                        Some(first),
                    ))
                    .or_default()
                    .extend_from_slice(&exchange.id.to_be_bytes());
            }
            self.exchanges
                .insert(first.to_be_bytes(), encode_chunk(chunk)?)?;
            for (key, ids) in routes {
                self.route_index.insert(key, ids)?;
            }
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The exchange with this id.
    fn exchange(&self, id: u64) -> Result<Option<Exchange>, StoreError> {
        // The record holding `id` is keyed by `id` itself (one exchange) or by its chunk's first.
        let Some((key, value)) = self
            .exchanges
            .range(..=id.to_be_bytes())
            .next_back()
            .transpose()?
        else {
            return Ok(None);
        };
        let key = id_of(&key);
        if is_chunk(&value) {
            let chunk = decode_chunk(&value, || format!("exchange chunk {key}"))?;
            return Ok(chunk.into_iter().find(|exchange| exchange.id == id));
        }
        if key != id {
            return Ok(None);
        }
        decode::<records::LegacyExchange>(&value, || format!("exchange {id}"))
            .map(|old| Some(old.into()))
    }

    /// All exchanges, oldest first.
    fn exchanges(&self) -> impl Iterator<Item = Result<Exchange, StoreError>> + '_ {
        self.exchanges.iter().flat_map(|entry| {
            let records: Vec<Result<Exchange, StoreError>> = match entry {
                Err(err) => vec![Err(err.into())],
                Ok((key, value)) if is_chunk(&value) => {
                    match decode_chunk(&value, || format!("exchange chunk {}", id_of(&key))) {
                        Ok(chunk) => chunk.into_iter().map(Ok).collect(),
                        Err(err) => vec![Err(err)],
                    }
                }
                Ok((key, value)) => vec![decode::<records::LegacyExchange>(&value, || {
                    format!("exchange {}", id_of(&key))
                })
                .map(Exchange::from)],
            };
            records
        })
    }

    /// Ids of exchanges for `method host template` (as [`route::route_template`]
    /// makes them), newest first. This is the lookup replay uses.
    fn exchange_ids_for_route(
        &self,
        method: &str,
        host: &str,
        template: &str,
    ) -> impl Iterator<Item = Result<u64, StoreError>> + '_ {
        let prefix = route_key(method, host, template, None);
        self.route_index
            .scan_prefix(prefix)
            .rev()
            .flat_map(|entry| {
                let ids: Vec<Result<u64, StoreError>> = match entry {
                    Err(err) => vec![Err(err.into())],
                    // Older recordings: one entry per exchange, the id at the end of the key.
                    Ok((key, value)) if value.is_empty() => {
                        vec![Ok(id_of(&key[key.len().saturating_sub(8)..]))]
                    }
                    Ok((_, value)) => value
                        .chunks_exact(8)
                        .rev()
                        .map(|id| Ok(id_of(id)))
                        .collect(),
                };
                ids
            })
    }

    /// The id the next stored exchange gets: grows whenever something is recorded (cheap,
    /// unlike [`Store::exchange_count`], which reads every record).
    fn next_exchange_id(&self) -> u64 {
        self.next_exchange.load(Ordering::Relaxed)
    }

    /// Number of exchanges stored.
    fn exchange_count(&self) -> usize {
        self.exchanges
            .iter()
            .filter_map(Result::ok)
            .map(|(_, value)| record_count(&value))
            .sum()
    }

    /// Allocates a gateway session id.
    fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes (or rewrites) a gateway session.
    fn put_session(&self, session: &GatewaySession) -> Result<(), StoreError> {
        self.sessions
            .insert(session.id.to_be_bytes(), encode(session)?)?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// One gateway session.
    fn session(&self, id: u64) -> Result<Option<GatewaySession>, StoreError> {
        self.sessions
            .get(id.to_be_bytes())?
            .map(|bytes| decode_session(&bytes, || format!("gateway session {id}")))
            .transpose()
    }

    /// Writes one frame.
    fn insert_frame(&self, frame: &Frame) -> Result<(), StoreError> {
        self.frames.insert(
            frame_key(frame.session_id, frame.direction, frame.seq),
            encode(frame)?,
        )?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The frames of one session and direction, in order.
    fn frames_in(
        &self,
        session_id: u64,
        direction: Direction,
    ) -> impl Iterator<Item = Result<Frame, StoreError>> + '_ {
        let mut prefix = session_id.to_be_bytes().to_vec();
        prefix.push(direction.as_byte());
        self.frames.scan_prefix(prefix).map(move |entry| {
            let (_, value) = entry?;
            decode(&value, || format!("frame of session {session_id}"))
        })
    }

    /// Both directions of a session merged by time (send before receive on equal times).
    fn frames(&self, session_id: u64) -> Result<Vec<Frame>, StoreError> {
        let mut all: Vec<Frame> = self
            .frames_in(session_id, Direction::ClientToServer)
            .chain(self.frames_in(session_id, Direction::ServerToClient))
            .collect::<Result<_, _>>()?;
        all.sort_by_key(|frame| (frame.at_us, frame.direction.as_byte(), frame.seq));
        Ok(all)
    }

    /// Exchanges with an id of at least `first`, oldest first.
    fn exchanges_from(
        &self,
        first: u64,
    ) -> impl Iterator<Item = Result<Exchange, StoreError>> + '_ {
        // The record holding `first` is keyed by `first` or by its chunk's first id.
        let start = match self.exchanges.range(..=first.to_be_bytes()).next_back() {
            Some(Ok((key, _))) => id_of(&key),
            _ => first,
        };
        self.exchanges
            .range(start.to_be_bytes()..)
            .flat_map(|entry| {
                let records: Vec<Result<Exchange, StoreError>> = match entry {
                    Err(err) => vec![Err(err.into())],
                    Ok((key, value)) if is_chunk(&value) => {
                        match decode_chunk(&value, || format!("exchange chunk {}", id_of(&key))) {
                            Ok(chunk) => chunk.into_iter().map(Ok).collect(),
                            Err(err) => vec![Err(err)],
                        }
                    }
                    Ok((key, value)) => vec![decode::<records::LegacyExchange>(&value, || {
                        format!("exchange {}", id_of(&key))
                    })
                    .map(Exchange::from)],
                };
                records
            })
            .filter(move |exchange| exchange.as_ref().map_or(true, |e| e.id >= first))
    }

    /// Gateway sessions with an id of at least `first`, oldest first.
    fn sessions_from(
        &self,
        first: u64,
    ) -> impl Iterator<Item = Result<GatewaySession, StoreError>> + '_ {
        self.sessions.range(first.to_be_bytes()..).map(|entry| {
            let (key, value) = entry?;
            decode_session(&value, || format!("gateway session {}", id_of(&key)))
        })
    }

    /// Counts and size.
    fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(StoreStats {
            exchanges: self.exchange_count() as u64,
            sessions: self.sessions.len() as u64,
            frames: self.frames.len() as u64,
            disk_bytes: self.db.size_on_disk()?,
        })
    }

    /// Forces everything written so far to disk.
    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// An open recordings database. Clone-free: share it behind an `Arc`.
///
/// Either this process holds the database file, or (opened with [`Store::open_for_reading`]
/// while `record` or `serve` holds it) reads go to the process that does, through its live
/// API ([`remote`]); writes then fail with [`StoreError::ReadOnly`].
pub struct Store {
    path: PathBuf,
    inner: Inner,
}

enum Inner {
    Local(Box<Local>),
    Remote(remote::Client),
}

/// A boxed iterator of records: the same type whichever side holds the database.
pub type Records<'a, T> = Box<dyn Iterator<Item = Result<T, StoreError>> + Send + 'a>;

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            path: dir.to_path_buf(),
            inner: Inner::Local(Box::new(Local::open(dir)?)),
        })
    }

    /// Opens `dir` to read it: the file itself, or, when a running `record` or `serve` holds
    /// it and left its live API's address beside it, that process's view of it.
    pub fn open_for_reading(dir: &Path) -> Result<Store, StoreError> {
        match Store::open(dir) {
            Err(StoreError::Locked { path }) => match remote::LiveFile::read(dir) {
                Some(live) => Ok(Store {
                    path: dir.to_path_buf(),
                    inner: Inner::Remote(remote::Client::new(live, dir)),
                }),
                None => Err(StoreError::Locked { path }),
            },
            other => other,
        }
    }

    /// Whether reads go through another process's live API.
    pub fn is_remote(&self) -> bool {
        matches!(self.inner, Inner::Remote(_))
    }

    fn local(&self) -> Result<&Local, StoreError> {
        match &self.inner {
            Inner::Local(local) => Ok(local),
            Inner::Remote(_) => Err(StoreError::ReadOnly {
                path: self.path.clone(),
            }),
        }
    }

    /// Set once a write failed for good: stops the integrity mark (whose flush would hang).
    pub(crate) fn write_failure_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        match &self.inner {
            Inner::Local(local) => local.write_failure_flag(),
            Inner::Remote(_) => Default::default(),
        }
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores an exchange under a fresh id (written into `exchange.id`) and indexes its route.
    pub fn insert_exchange(&self, exchange: &mut Exchange) -> Result<u64, StoreError> {
        self.local()?.insert_exchange(exchange)
    }

    /// Stores several exchanges at once (ids assigned in order) in compressed chunks, then
    /// their route index entries: the recorder's path under load.
    pub fn insert_exchanges(&self, exchanges: &mut [Exchange]) -> Result<(), StoreError> {
        self.local()?.insert_exchanges(exchanges)
    }

    /// The exchange with this id.
    pub fn exchange(&self, id: u64) -> Result<Option<Exchange>, StoreError> {
        match &self.inner {
            Inner::Local(local) => local.exchange(id),
            Inner::Remote(client) => client.exchange(id),
        }
    }

    /// All exchanges, oldest first.
    pub fn exchanges(&self) -> Records<'_, Exchange> {
        self.exchanges_from(0)
    }

    /// Exchanges with an id of at least `first`, oldest first.
    pub fn exchanges_from(&self, first: u64) -> Records<'_, Exchange> {
        match &self.inner {
            Inner::Local(local) if first == 0 => Box::new(local.exchanges()),
            Inner::Local(local) => Box::new(local.exchanges_from(first)),
            Inner::Remote(client) => Box::new(client.exchanges_from(first)),
        }
    }

    /// Ids of exchanges for `method host template` (as [`route::route_template`]
    /// makes them), newest first. This is the lookup replay uses.
    pub fn exchange_ids_for_route(
        &self,
        method: &str,
        host: &str,
        template: &str,
    ) -> Records<'_, u64> {
        match self.local() {
            Ok(local) => Box::new(local.exchange_ids_for_route(method, host, template)),
            Err(err) => Box::new(std::iter::once(Err(err))),
        }
    }

    /// The id the next stored exchange gets: grows whenever something is recorded (cheap,
    /// unlike [`Store::exchange_count`], which reads every record).
    pub fn next_exchange_id(&self) -> u64 {
        match &self.inner {
            Inner::Local(local) => local.next_exchange_id(),
            Inner::Remote(client) => client.watch().map_or(0, |w| w.next_exchange),
        }
    }

    /// Number of exchanges stored.
    pub fn exchange_count(&self) -> usize {
        match &self.inner {
            Inner::Local(local) => local.exchange_count(),
            Inner::Remote(client) => client.stats().map_or(0, |s| s.exchanges as usize),
        }
    }

    /// Writes so far (exchanges, sessions, frames) in this process's lifetime: a cheap way to
    /// notice that something new was recorded.
    pub fn write_count(&self) -> u64 {
        match &self.inner {
            Inner::Local(local) => local.writes.load(Ordering::Relaxed),
            Inner::Remote(client) => client.watch().map_or(0, |w| w.writes),
        }
    }

    /// Allocates a gateway session id.
    pub fn next_session_id(&self) -> u64 {
        match &self.inner {
            Inner::Local(local) => local.next_session_id(),
            Inner::Remote(_) => 0,
        }
    }

    /// Writes (or rewrites) a gateway session.
    pub fn put_session(&self, session: &GatewaySession) -> Result<(), StoreError> {
        self.local()?.put_session(session)
    }

    /// One gateway session.
    pub fn session(&self, id: u64) -> Result<Option<GatewaySession>, StoreError> {
        match &self.inner {
            Inner::Local(local) => local.session(id),
            Inner::Remote(client) => client.session(id),
        }
    }

    /// All gateway sessions, oldest first.
    pub fn sessions(&self) -> Records<'_, GatewaySession> {
        self.sessions_from(0)
    }

    /// Gateway sessions with an id of at least `first`, oldest first.
    pub fn sessions_from(&self, first: u64) -> Records<'_, GatewaySession> {
        match &self.inner {
            Inner::Local(local) => Box::new(local.sessions_from(first)),
            Inner::Remote(client) => Box::new(client.sessions_from(first)),
        }
    }

    /// Writes one frame.
    pub fn insert_frame(&self, frame: &Frame) -> Result<(), StoreError> {
        self.local()?.insert_frame(frame)
    }

    /// The frames of one session and direction, in order.
    pub fn frames_in(&self, session_id: u64, direction: Direction) -> Records<'_, Frame> {
        match &self.inner {
            Inner::Local(local) => Box::new(local.frames_in(session_id, direction)),
            Inner::Remote(client) => match client.frames(session_id) {
                Ok(frames) => Box::new(
                    frames
                        .into_iter()
                        .filter(move |f| f.direction == direction)
                        .map(Ok),
                ),
                Err(err) => Box::new(std::iter::once(Err(err))),
            },
        }
    }

    /// Both directions of a session merged by time (send before receive on equal times).
    pub fn frames(&self, session_id: u64) -> Result<Vec<Frame>, StoreError> {
        match &self.inner {
            Inner::Local(local) => local.frames(session_id),
            Inner::Remote(client) => client.frames(session_id),
        }
    }

    /// Counts and size.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        match &self.inner {
            Inner::Local(local) => local.stats(),
            Inner::Remote(client) => client.stats(),
        }
    }

    /// Forces everything written so far to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        match &self.inner {
            Inner::Local(local) => local.flush(),
            Inner::Remote(_) => Ok(()),
        }
    }
}

fn last_id(tree: &sled::Tree) -> Result<u64, StoreError> {
    Ok(tree.last()?.map_or(0, |(key, _)| id_of(&key)))
}

/// The highest exchange id stored (chunks hold several under their first id).
fn last_exchange_id(tree: &sled::Tree) -> Result<u64, StoreError> {
    Ok(tree.last()?.map_or(0, |(key, value)| {
        id_of(&key) + (record_count(&value) as u64).saturating_sub(1)
    }))
}

/// Exchanges in one stored record: a chunk's count, else one.
fn record_count(value: &[u8]) -> usize {
    match value {
        [FORMAT_CHUNK_ZSTD | FORMAT_CHUNK_ZSTD_REWRITES, a, b, c, d, ..] => {
            u32::from_le_bytes([*a, *b, *c, *d]) as usize
        }
        _ => 1,
    }
}

/// Whether a stored value is a chunk of exchanges (either layout).
fn is_chunk(value: &[u8]) -> bool {
    matches!(
        value.first(),
        Some(&(FORMAT_CHUNK_ZSTD | FORMAT_CHUNK_ZSTD_REWRITES))
    )
}

fn encode_chunk(chunk: &[Exchange]) -> Result<Vec<u8>, StoreError> {
    // Sized up front (bodies dominate) so serialising does not grow the buffer step by step.
    let estimate: usize = chunk
        .iter()
        .map(|e| {
            512 + e.request_body.data.len() + e.response.as_ref().map_or(0, |r| r.body.data.len())
        })
        .sum();
    let plain = postcard::to_extend(chunk, Vec::with_capacity(estimate))
        .map_err(|err| StoreError::Encode(err.to_string()))?;
    let mut out = Vec::new();
    pack_chunk(chunk.len(), &plain, &mut out)?;
    Ok(out)
}

/// Writes into `out` the stored value of a chunk of `count` exchanges whose postcard encoding
/// is `plain`. `out` may be reused between chunks (its capacity stays: no page faults per chunk).
fn pack_chunk(count: usize, plain: &[u8], out: &mut Vec<u8>) -> Result<(), StoreError> {
    // One compressor per thread, reused: creating a zstd context per chunk allocated (and
    // zeroed) about a megabyte each time, which showed up as the recorder's top cost.
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    out.clear();
    out.reserve(5 + zstd::zstd_safe::compress_bound(plain.len()));
    out.push(FORMAT_CHUNK_ZSTD_REWRITES);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    COMPRESSOR
        .with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Compressor::new(CHUNK_ZSTD_LEVEL)?);
            }
            match slot.as_mut() {
                // Compressed straight behind the header: no second buffer and copy.
                Some(compressor) => {
                    let mut cursor = std::io::Cursor::new(&mut *out);
                    cursor.set_position(5);
                    compressor.compress_to_buffer(plain, &mut cursor)
                }
                None => Err(std::io::Error::other("no zstd compressor")),
            }
        })
        .map_err(|err| StoreError::Encode(format!("zstd: {err}")))?;
    Ok(())
}

/// Largest decompressed chunk accepted (64 exchanges with bodies at the recorder's default cap
/// would be far beyond what a sled value holds anyway).
const MAX_CHUNK_BYTES: usize = 1 << 30;

fn decode_chunk(bytes: &[u8], what: impl Fn() -> String) -> Result<Vec<Exchange>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: what(),
        reason,
    };
    let packed = bytes
        .get(5..)
        .ok_or_else(|| corrupt("chunk header cut short".into()))?;
    let size = zstd::zstd_safe::get_frame_content_size(packed)
        .ok()
        .flatten()
        .ok_or_else(|| corrupt("chunk is not a zstd frame with a size".into()))?;
    if size as usize > MAX_CHUNK_BYTES {
        return Err(corrupt(format!("chunk claims {size} bytes")));
    }
    let plain = zstd::bulk::decompress(packed, size as usize)
        .map_err(|err| corrupt(format!("zstd: {err}")))?;
    if bytes.first() == Some(&FORMAT_CHUNK_ZSTD) {
        let old: Vec<records::LegacyExchange> =
            postcard::from_bytes(&plain).map_err(|err| corrupt(err.to_string()))?;
        return Ok(old.into_iter().map(Exchange::from).collect());
    }
    postcard::from_bytes(&plain).map_err(|err| corrupt(err.to_string()))
}

fn id_of(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[8 - n..].copy_from_slice(&key[key.len() - n..]);
    u64::from_be_bytes(bytes)
}

fn route_key(method: &str, host: &str, template: &str, id: Option<u64>) -> Vec<u8> {
    let mut key = Vec::with_capacity(method.len() + host.len() + template.len() + 11);
    for part in [method, host, template] {
        key.extend_from_slice(part.as_bytes());
        key.push(0);
    }
    if let Some(id) = id {
        key.extend_from_slice(&id.to_be_bytes());
    }
    key
}

fn frame_key(session_id: u64, direction: Direction, seq: u64) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[..8].copy_from_slice(&session_id.to_be_bytes());
    key[8] = direction.as_byte();
    key[9..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_V1];
    postcard::to_io(record, &mut out).map_err(|err| StoreError::Encode(err.to_string()))?;
    Ok(out)
}

/// A gateway session record, of this layout or the one before
/// [`GatewaySession::rewrites`] existed (which reads with none).
fn decode_session(bytes: &[u8], what: impl Fn() -> String) -> Result<GatewaySession, StoreError> {
    decode::<GatewaySession>(bytes, &what).or_else(|err| {
        decode::<records::LegacyGatewaySession>(bytes, &what)
            .map(GatewaySession::from)
            .map_err(|_| err)
    })
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: impl Fn() -> String) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, rest)) => postcard::from_bytes(rest).map_err(|err| StoreError::Corrupt {
            key: what(),
            reason: err.to_string(),
        }),
        Some((version, _)) => Err(StoreError::Corrupt {
            key: what(),
            reason: format!("layout version {version} is unknown"),
        }),
        None => Err(StoreError::Corrupt {
            key: what(),
            reason: "empty record".into(),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Ids recorded for `GET discord.com /api/v9/channels/{channel_id}/messages`, newest first.
    fn message_list_ids(store: &Store) -> Vec<u64> {
        store
            .exchange_ids_for_route(
                "GET",
                "discord.com",
                "/api/v9/channels/{channel_id}/messages",
            )
            .collect::<Result<_, _>>()
            .unwrap()
    }

    pub(crate) fn sample_exchange(path: &str) -> Exchange {
        Exchange {
            id: 0,
            started_at_us: 1_700_000_000_000_000,
            wait_us: Some(1200),
            duration_us: 1500,
            client_addr: "127.0.0.1:50000".into(),
            upstream_addr: Some("127.0.0.1:443".into()),
            source: "upstream".into(),
            method: "GET".into(),
            scheme: "https".into(),
            host: "discord.com".into(),
            path_and_query: path.into(),
            http_version: "HTTP/1.1".into(),
            request_headers: vec![],
            request_body: BodyRecord::default(),
            response: Some(ResponseRecord {
                status: 200,
                headers: vec![],
                body: BodyRecord {
                    data: b"{}".to_vec(),
                    ..BodyRecord::default()
                },
            }),
            error: None,
            redactions: vec![],
            rewrites: Vec::new(),
        }
    }

    #[test]
    fn exchanges_get_monotonic_ids_that_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut a = sample_exchange("/api/v9/channels/81384788765712384/messages");
            let mut b = sample_exchange("/api/v9/channels/81384788765712385/messages?limit=50");
            assert_eq!(store.insert_exchange(&mut a).unwrap(), 1);
            assert_eq!(store.insert_exchange(&mut b).unwrap(), 2);
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let mut c = sample_exchange("/api/v9/users/@me");
        assert_eq!(store.insert_exchange(&mut c).unwrap(), 3);
        assert_eq!(
            store.exchange(2).unwrap().unwrap().path_and_query,
            "/api/v9/channels/81384788765712385/messages?limit=50"
        );
        let ids = message_list_ids(&store);
        assert_eq!(ids, vec![2, 1], "newest first");
        assert_eq!(store.exchanges().count(), 3);
    }

    #[test]
    fn second_open_is_a_clear_locked_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[test]
    fn frames_merge_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let frame = |direction, seq, at_us| Frame {
            session_id: 7,
            direction,
            seq,
            at_us,
            kind: FrameKind::Text,
            raw_size: 2,
            op: None,
            t: None,
            s: None,
            payload: Some("{}".into()),
            raw: None,
            decode_error: None,
            redacted: false,
        };
        store
            .insert_frame(&frame(Direction::ServerToClient, 0, 10))
            .unwrap();
        store
            .insert_frame(&frame(Direction::ClientToServer, 0, 20))
            .unwrap();
        store
            .insert_frame(&frame(Direction::ServerToClient, 1, 30))
            .unwrap();
        let order: Vec<(Direction, u64)> = store
            .frames(7)
            .unwrap()
            .into_iter()
            .map(|f| (f.direction, f.seq))
            .collect();
        assert_eq!(
            order,
            vec![
                (Direction::ServerToClient, 0),
                (Direction::ClientToServer, 0),
                (Direction::ServerToClient, 1)
            ]
        );
    }

    #[test]
    fn chunks_and_old_single_records_read_alike() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // What session-1 recordings hold: one record per exchange.
        for id in 1..=2u64 {
            let mut old = sample_exchange("/api/v9/users/@me");
            old.id = id;
            store
                .local()
                .unwrap()
                .exchanges
                .insert(id.to_be_bytes(), encode(&old).unwrap())
                .unwrap();
            store
                .local()
                .unwrap()
                .route_index
                .insert(
                    route_key("GET", "discord.com", "/api/v9/users/@me", Some(id)),
                    &[],
                )
                .unwrap();
        }
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let mut batch: Vec<Exchange> = (0..150)
            .map(|i| sample_exchange(&format!("/api/v9/channels/{}/messages", 1000 + i)))
            .collect();
        store.insert_exchanges(&mut batch).unwrap();
        assert_eq!(batch[0].id, 3);
        assert_eq!(batch[149].id, 152);
        assert_eq!(store.exchange_count(), 152);
        assert_eq!(store.stats().unwrap().exchanges, 152);
        let ids: Vec<u64> = store.exchanges().map(|e| e.unwrap().id).collect();
        assert_eq!(ids, (1..=152).collect::<Vec<_>>());
        assert_eq!(store.exchange(2).unwrap().unwrap().id, 2);
        let middle = store.exchange(100).unwrap().unwrap();
        assert_eq!(middle.path_and_query, "/api/v9/channels/1097/messages");
        assert!(store.exchange(153).unwrap().is_none());
        let ids = message_list_ids(&store);
        assert_eq!(
            ids,
            (3..=152).rev().collect::<Vec<_>>(),
            "newest first across chunks"
        );
        let mut newer = sample_exchange("/api/v9/users/@me");
        store.insert_exchange(&mut newer).unwrap();
        let ids: Vec<u64> = store
            .exchange_ids_for_route("GET", "discord.com", "/api/v9/users/@me")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            ids,
            vec![153, 2, 1],
            "old per-exchange index entries still found"
        );
        // Two old records, three chunks of at most 64, one chunk of one.
        assert_eq!(store.local().unwrap().exchanges.len(), 2 + 3 + 1);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let mut next = sample_exchange("/x");
        assert_eq!(store.insert_exchange(&mut next).unwrap(), 154);
    }

    #[test]
    fn damaged_chunk_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .local()
            .unwrap()
            .exchanges
            .insert(
                9u64.to_be_bytes(),
                &[FORMAT_CHUNK_ZSTD, 2, 0, 0, 0, 0x28, 0xb5],
            )
            .unwrap();
        assert!(matches!(store.exchange(9), Err(StoreError::Corrupt { .. })));
        assert!(store.exchanges().next().unwrap().is_err());
    }

    #[test]
    fn damaged_record_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .local()
            .unwrap()
            .exchanges
            .insert(5u64.to_be_bytes(), &[1, 0xff, 0xff])
            .unwrap();
        store
            .local()
            .unwrap()
            .exchanges
            .insert(6u64.to_be_bytes(), &[9])
            .unwrap();
        assert!(matches!(store.exchange(5), Err(StoreError::Corrupt { .. })));
        let err = store.exchange(6).err().unwrap();
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn sessions_stored_before_rewrites_existed_still_read_and_new_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut session = GatewaySession {
            id: store.next_session_id(),
            started_at_us: 1,
            ended_at_us: Some(2),
            client_addr: "127.0.0.1:1".into(),
            upstream_addr: Some("127.0.0.1:443".into()),
            url: "wss://gateway.discord.gg/?v=10".into(),
            host: "gateway.discord.gg".into(),
            version: Some("10".into()),
            encoding: None,
            compress: None,
            request_headers: vec![],
            status: Some(101),
            closes: vec![],
            frames_sent: 3,
            frames_received: 4,
            error: None,
            redactions: vec!["request.header.authorization".into()],
            rewrites: vec![],
        };
        // The older layout is this one without the trailing (empty) rewrites list.
        let mut old = encode(&session).unwrap();
        assert_eq!(old.pop(), Some(0));
        store
            .local()
            .unwrap()
            .sessions
            .insert(session.id.to_be_bytes(), old)
            .unwrap();
        assert_eq!(store.session(session.id).unwrap(), Some(session.clone()));
        session.id = store.next_session_id();
        session.rewrites.push(Rewrite {
            kind: "authorization".into(),
            from: "100000000000000001".into(),
            to: "upstream token".into(),
        });
        store.put_session(&session).unwrap();
        let all: Vec<GatewaySession> = store.sessions().map(Result::unwrap).collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].rewrites.is_empty());
        assert_eq!(all[1], session);
        store
            .local()
            .unwrap()
            .sessions
            .insert(9u64.to_be_bytes(), vec![FORMAT_V1, 1, 2])
            .unwrap();
        assert!(matches!(store.session(9), Err(StoreError::Corrupt { .. })));
    }
}
