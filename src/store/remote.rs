//! Reading a recordings database that a running `record` or `serve` holds (sled allows one
//! process per database): that process answers reads on its loopback live API and leaves the
//! address and an access token in [`LIVE_FILE`] (0600) beside the database. This file holds
//! both ends of that protocol: [`answer`] for the holder, [`Client`] for the reader, so the
//! records cross it in the store's own encoding (postcard) and readers see what the holder sees.
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Exchange, Frame, GatewaySession, Store, StoreError, StoreStats};

/// The file beside the database naming the holder's live API.
pub const LIVE_FILE: &str = "live.json";
/// Where the store's read endpoints live on the live API.
pub const PREFIX: &str = "/api/v1/store/";
/// Exchanges per page at most.
const PAGE_EXCHANGES: usize = 256;
/// Bytes of bodies per page, about (a page always holds at least one exchange).
const PAGE_BYTES: usize = 16 * 1024 * 1024;
/// Largest answer a reader accepts (one exchange holds two bodies of up to `--max-body`).
const MAX_ANSWER: u64 = 1024 * 1024 * 1024;

/// What [`LIVE_FILE`] holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveFile {
    /// The live API's address (loopback).
    pub addr: SocketAddr,
    /// The bearer token it requires.
    pub token: String,
    /// The holder's process id, for people.
    pub pid: u32,
}

impl LiveFile {
    /// The live file of `dir`, if there is a readable one.
    pub fn read(dir: &Path) -> Option<LiveFile> {
        let text = std::fs::read(dir.join(LIVE_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Writes it beside the database (0600, replacing a stale one) and returns a guard that
    /// removes it again.
    pub fn write(&self, dir: &Path) -> std::io::Result<LiveFileGuard> {
        let path = dir.join(LIVE_FILE);
        let temp = dir.join(format!("{LIVE_FILE}.{}", std::process::id()));
        let text = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        Ok(LiveFileGuard { path })
    }
}

/// Removes the live file when dropped (the holder is stopping).
#[derive(Debug)]
pub struct LiveFileGuard {
    path: PathBuf,
}

impl Drop for LiveFileGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Cheap counters a reader polls to notice new records.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Watch {
    /// The holder's [`Store::write_count`].
    pub writes: u64,
    /// The holder's [`Store::next_exchange_id`].
    pub next_exchange: u64,
}

/// Why a request to the store endpoints is refused.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// No such endpoint, or a bad query.
    #[error("{0}")]
    BadRequest(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The holder's answer to `GET {PREFIX}{endpoint}?{query}`: postcard bytes.
pub fn answer(store: &Store, endpoint: &str, query: &str) -> Result<Vec<u8>, AnswerError> {
    let number = |name: &str| -> Result<u64, AnswerError> {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.parse().ok())
            .ok_or_else(|| AnswerError::BadRequest(format!("`{name}` must be a number")))
    };
    Ok(match endpoint {
        "exchanges" => {
            let mut page = Vec::new();
            let mut bytes = 0;
            for exchange in store.exchanges_from(number("from")?) {
                let exchange = exchange?;
                bytes += exchange.request_body.data.len()
                    + exchange.response.as_ref().map_or(0, |r| r.body.data.len());
                page.push(exchange);
                if page.len() >= PAGE_EXCHANGES || bytes >= PAGE_BYTES {
                    break;
                }
            }
            encode(&page)?
        }
        "exchange" => encode(&store.exchange(number("id")?)?)?,
        "sessions" => {
            let page = store
                .sessions_from(number("from")?)
                .take(PAGE_EXCHANGES)
                .collect::<Result<Vec<_>, _>>()?;
            encode(&page)?
        }
        "session" => encode(&store.session(number("id")?)?)?,
        "frames" => encode(&store.frames(number("session")?)?)?,
        "stats" => encode(&store.stats()?)?,
        "watch" => encode(&Watch {
            writes: store.write_count(),
            next_exchange: store.next_exchange_id(),
        })?,
        other => {
            return Err(AnswerError::BadRequest(format!(
                "no store endpoint `{other}`"
            )))
        }
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|err| StoreError::Encode(err.to_string()))
}

/// A reader of another process's database, through its live API (blocking, one connection
/// per request: the commands that use it are plain loops over records).
pub(crate) struct Client {
    live: LiveFile,
    dir: PathBuf,
}

impl Client {
    /// A client of the holder that `live` names.
    pub(crate) fn new(live: LiveFile, dir: &Path) -> Client {
        Client {
            live,
            dir: dir.to_path_buf(),
        }
    }

    fn failed(&self, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Live {
            path: self.dir.clone(),
            addr: self.live.addr.to_string(),
            file: self.dir.join(LIVE_FILE).display().to_string(),
            reason: reason.to_string(),
        }
    }

    fn get<T: DeserializeOwned>(&self, endpoint: &str, query: &str) -> Result<T, StoreError> {
        let body = self.fetch(&format!("{PREFIX}{endpoint}?{query}"))?;
        postcard::from_bytes(&body).map_err(|err| self.failed(format!("bad answer: {err}")))
    }

    fn fetch(&self, target: &str) -> Result<Vec<u8>, StoreError> {
        let mut tcp = TcpStream::connect_timeout(&self.live.addr, Duration::from_secs(3))
            .map_err(|err| self.failed(err))?;
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(120)));
        let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.live.addr, self.live.token
        );
        tcp.write_all(request.as_bytes())
            .map_err(|err| self.failed(err))?;
        let mut raw = Vec::new();
        tcp.take(MAX_ANSWER)
            .read_to_end(&mut raw)
            .map_err(|err| self.failed(err))?;
        let (status, chunked, body) =
            split_response(&raw).ok_or_else(|| self.failed("not an HTTP answer"))?;
        let body = if chunked {
            dechunk(body).ok_or_else(|| self.failed("bad chunked answer"))?
        } else {
            body.to_vec()
        };
        if status != 200 {
            return Err(self.failed(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body).trim()
            )));
        }
        Ok(body)
    }

    /// One exchange.
    pub(crate) fn exchange(&self, id: u64) -> Result<Option<Exchange>, StoreError> {
        self.get("exchange", &format!("id={id}"))
    }

    /// Exchanges from `first` on, fetched a page at a time.
    pub(crate) fn exchanges_from(
        &self,
        first: u64,
    ) -> impl Iterator<Item = Result<Exchange, StoreError>> + Send + '_ {
        self.pages("exchanges", first, |e: &Exchange| e.id)
    }

    /// One gateway session.
    pub(crate) fn session(&self, id: u64) -> Result<Option<GatewaySession>, StoreError> {
        self.get("session", &format!("id={id}"))
    }

    /// Gateway sessions from `first` on.
    pub(crate) fn sessions_from(
        &self,
        first: u64,
    ) -> impl Iterator<Item = Result<GatewaySession, StoreError>> + Send + '_ {
        self.pages("sessions", first, |s: &GatewaySession| s.id)
    }

    /// A session's frames, merged by time.
    pub(crate) fn frames(&self, session_id: u64) -> Result<Vec<Frame>, StoreError> {
        self.get("frames", &format!("session={session_id}"))
    }

    /// Counts and size.
    pub(crate) fn stats(&self) -> Result<StoreStats, StoreError> {
        self.get("stats", "")
    }

    /// The holder's counters.
    pub(crate) fn watch(&self) -> Result<Watch, StoreError> {
        self.get("watch", "")
    }

    /// Pages of `endpoint` from id `first` on, until an empty page (or an error).
    fn pages<T: DeserializeOwned + Send + 'static>(
        &self,
        endpoint: &'static str,
        first: u64,
        id: fn(&T) -> u64,
    ) -> impl Iterator<Item = Result<T, StoreError>> + Send + '_ {
        let mut next = Some(first);
        let mut page = std::collections::VecDeque::new();
        std::iter::from_fn(move || loop {
            if let Some(item) = page.pop_front() {
                return Some(Ok(item));
            }
            let from = next?;
            match self.get::<Vec<T>>(endpoint, &format!("from={from}")) {
                Ok(items) => {
                    next = items.last().map(|last| id(last) + 1);
                    page.extend(items);
                }
                Err(err) => {
                    next = None;
                    return Some(Err(err));
                }
            }
        })
    }
}

/// (status, chunked, body) of a raw HTTP/1.1 answer.
fn split_response(raw: &[u8]) -> Option<(u16, bool, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    Some((status, chunked, &raw[end + 4..]))
}

/// The body of a chunked transfer.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split_and_dechunk() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (status, chunked, body) = split_response(raw).unwrap();
        assert_eq!((status, chunked), (200, true));
        assert_eq!(dechunk(body).unwrap(), b"abcde");
        let raw = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno";
        assert_eq!(split_response(raw).unwrap(), (404, false, &b"no"[..]));
        assert!(split_response(b"garbage").is_none());
        assert!(dechunk(b"zz\r\n").is_none());
    }

    #[test]
    fn the_live_file_is_private_and_removed_with_its_guard() {
        let dir = tempfile::tempdir().unwrap();
        let live = LiveFile {
            addr: "127.0.0.1:9".parse().unwrap(),
            token: "t".into(),
            pid: 1,
        };
        let guard = live.write(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(LIVE_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(LiveFile::read(dir.path()).unwrap().token, "t");
        drop(guard);
        assert!(LiveFile::read(dir.path()).is_none());
    }
}
