//! The recorder: the proxy hands it raw captures and never waits; one writer thread decodes
//! bodies and gateway frames, redacts, and writes to the store. REST exchanges arrive as
//! [`ExchangeCapture`] bytes appended to one shared log the writer swaps out as a whole;
//! gateway events go through a bounded queue.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;

pub use super::capture::CapturedBody;
use super::capture::{Addr, CaptureView, ExchangeCapture, ExchangeEnd};
use super::chunk::{ChunkBuilder, EncodeOptions};
use super::gateway_decode::{Decoded, SessionDecoder};
use super::records::{CloseRecord, Direction, Frame, FrameKind, GatewaySession, Header, Rewrite};
use super::redact;
use super::Store;

/// How the recorder treats what it is given.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    /// Keep Authorization, cookies, tokens and passwords as they were (`--keep-secrets`).
    pub keep_secrets: bool,
    /// Largest body kept per request or response; longer ones are cut and marked truncated.
    pub max_body: usize,
    /// Gateway events queued before new ones are dropped (and counted) rather than slowing
    /// traffic.
    pub queue: usize,
    /// Bytes of REST captures waiting for the writer before new ones are dropped (and counted).
    pub max_pending_bytes: usize,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            keep_secrets: false,
            max_body: 32 * 1024 * 1024,
            queue: 65_536,
            max_pending_bytes: 256 * 1024 * 1024,
        }
    }
}

/// A response as captured.
#[derive(Debug, Clone)]
pub struct CapturedResponse {
    /// Status code.
    pub status: u16,
    /// Headers as upstream sent them.
    pub headers: HeaderMap,
    /// Body.
    pub body: CapturedBody,
}

/// An exchange as the proxy saw it, before decoding and redaction.
#[derive(Debug, Clone)]
pub struct CapturedExchange {
    /// Request arrival, µs since the epoch.
    pub started_at_us: i64,
    /// Time to response headers, µs.
    pub wait_us: Option<u64>,
    /// Time to the end of the response body, µs.
    pub duration_us: u64,
    /// Client socket.
    pub client_addr: String,
    /// Upstream socket.
    pub upstream_addr: Option<String>,
    /// Who answered.
    pub source: &'static str,
    /// Method.
    pub method: String,
    /// Scheme.
    pub scheme: String,
    /// Host.
    pub host: String,
    /// Path and query.
    pub path_and_query: String,
    /// Client's HTTP version.
    pub http_version: String,
    /// Request headers.
    pub request_headers: HeaderMap,
    /// Request body.
    pub request_body: CapturedBody,
    /// The response, if one came.
    pub response: Option<CapturedResponse>,
    /// What failed.
    pub error: Option<String>,
}

impl CapturedExchange {
    /// The capture bytes of this exchange, as the proxy path makes them.
    pub fn into_capture(self) -> Vec<u8> {
        let mut capture = ExchangeCapture::request(
            &self.method,
            &self.path_and_query,
            &self.http_version,
            &self.request_headers,
            0,
        );
        match &self.response {
            Some(response) => {
                capture = capture.response(response.status, &response.headers, &response.body);
            }
            None => capture.no_response(),
        }
        capture.finish(&ExchangeEnd {
            request_body: &self.request_body,
            started_at_us: self.started_at_us,
            wait_us: self.wait_us,
            duration_us: self.duration_us,
            client_addr: Addr::Text(&self.client_addr),
            upstream_addr: self.upstream_addr.as_deref().map(Addr::Text),
            source: self.source,
            scheme: &self.scheme,
            host: &self.host,
            port: None,
            error: self.error.as_deref(),
            rewrites: &[],
        })
    }
}

/// A gateway connection's opening facts.
#[derive(Debug, Clone)]
pub struct CapturedSession {
    /// Upgrade time.
    pub started_at_us: i64,
    /// Client socket.
    pub client_addr: String,
    /// Upstream socket.
    pub upstream_addr: Option<String>,
    /// Scheme (wss/ws).
    pub scheme: String,
    /// Host.
    pub host: String,
    /// Path and query.
    pub path_and_query: String,
    /// Upgrade request headers.
    pub request_headers: HeaderMap,
    /// Upstream's handshake status.
    pub status: Option<u16>,
    /// Set when the upstream handshake failed.
    pub error: Option<String>,
}

enum Event {
    /// Captures are waiting in the log (sent only to a writer parked on the queue).
    Wake,
    SessionStart(u64, Box<CapturedSession>),
    Frame {
        session_id: u64,
        direction: Direction,
        at_us: i64,
        kind: FrameKind,
        data: Bytes,
        close: Option<(Option<u16>, String)>,
    },
    SessionEnd {
        session_id: u64,
        at_us: i64,
        error: Option<String>,
    },
    SessionRewrite {
        session_id: u64,
        rewrite: Rewrite,
    },
    Flush(mpsc::Sender<()>),
}

/// Handle the proxy records through; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    // One reference count for the whole handle: the pipeline clones it per exchange.
    inner: Arc<Shared>,
}

struct Shared {
    // Dropped first, so the writer sees the queue close before `_writer` waits for it.
    sender: SyncSender<Event>,
    log: Arc<CaptureLog>,
    store: Arc<Store>,
    dropped: AtomicU64,
    max_body: usize,
    _writer: WriterGuard,
}

/// REST captures waiting for the writer: `u32` length, capture, repeated. Proxy threads append
/// under the lock (a copy of one buffer); the writer swaps the whole buffer for an empty one.
/// Both buffers keep their capacity, so in steady state nobody allocates.
struct CaptureLog {
    records: Mutex<Vec<u8>>,
    /// The writer sleeps on the event queue; whoever appends next sends it [`Event::Wake`].
    writer_parked: AtomicBool,
    max_bytes: usize,
}

struct WriterGuard {
    handle: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if let Ok(mut handle) = self.handle.lock() {
            if let Some(handle) = handle.take() {
                let _ = handle.join();
            }
        }
    }
}

impl Recorder {
    /// Starts the writer thread on `store`.
    pub fn start(store: Arc<Store>, options: RecorderOptions) -> Recorder {
        let (sender, receiver) = mpsc::sync_channel(options.queue.max(1));
        let writer_store = Arc::clone(&store);
        let max_body = options.max_body;
        let log = Arc::new(CaptureLog {
            records: Mutex::new(Vec::new()),
            writer_parked: AtomicBool::new(false),
            // Room for the largest exchange the body limit allows, whatever the setting.
            max_bytes: options
                .max_pending_bytes
                .max(max_body.saturating_mul(2).saturating_add(1 << 20)),
        });
        let writer_log = Arc::clone(&log);
        let handle = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || Writer::new(writer_store, writer_log, options).run(receiver))
            .ok();
        if handle.is_none() {
            tracing::error!("cannot start the recorder thread; nothing will be recorded");
        }
        Recorder {
            inner: Arc::new(Shared {
                sender,
                log,
                store,
                dropped: AtomicU64::new(0),
                max_body,
                _writer: WriterGuard {
                    handle: std::sync::Mutex::new(handle),
                },
            }),
        }
    }

    /// Largest body the recorder keeps; captures should stop collecting there.
    pub fn max_body(&self) -> usize {
        self.inner.max_body
    }

    /// Events dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, event: Event) {
        match self.inner.sender.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.count_dropped("recorder queue full: events dropped"),
            Err(TrySendError::Disconnected(_)) => {
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn count_dropped(&self, why: &str) {
        let n = self.inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(dropped = n, "{why}");
        }
    }

    /// Queues a finished exchange.
    pub fn exchange(&self, exchange: CapturedExchange) {
        self.capture(&exchange.into_capture());
    }

    /// Queues a finished exchange as the pipeline captures it (the per-request path): one copy
    /// into the shared log; `capture` is freed by the caller, on its own thread.
    pub fn capture(&self, capture: &[u8]) {
        let Ok(len) = u32::try_from(capture.len()) else {
            self.count_dropped("capture too large for the recorder: exchanges dropped");
            return;
        };
        {
            let Ok(mut records) = self.inner.log.records.lock() else {
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if records.len() + capture.len() + 4 > self.inner.log.max_bytes {
                drop(records);
                self.count_dropped("recorder behind: exchanges dropped");
                return;
            }
            records.extend_from_slice(&len.to_le_bytes());
            records.extend_from_slice(capture);
        }
        if self.inner.log.writer_parked.load(Ordering::SeqCst)
            && self.inner.log.writer_parked.swap(false, Ordering::SeqCst)
        {
            let _ = self.inner.sender.try_send(Event::Wake);
        }
    }

    /// Queues the start of a gateway session; returns its id for the frames.
    pub fn session_start(&self, session: CapturedSession) -> u64 {
        let id = self.inner.store.next_session_id();
        self.send(Event::SessionStart(id, Box::new(session)));
        id
    }

    /// Queues one frame of a session.
    pub fn frame(
        &self,
        session_id: u64,
        direction: Direction,
        kind: FrameKind,
        data: Bytes,
        close: Option<(Option<u16>, String)>,
    ) {
        self.send(Event::Frame {
            session_id,
            direction,
            at_us: now_us(),
            kind,
            data,
            close,
        });
    }

    /// Queues a change `serve` made to a relayed session (listed with it, each change once).
    pub fn session_rewrite(&self, session_id: u64, rewrite: Rewrite) {
        self.send(Event::SessionRewrite {
            session_id,
            rewrite,
        });
    }

    /// Queues the end of a session.
    pub fn session_end(&self, session_id: u64, error: Option<String>) {
        self.send(Event::SessionEnd {
            session_id,
            at_us: now_us(),
            error,
        });
    }

    /// Waits until everything queued so far is written and flushed to disk.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.inner.sender.send(Event::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(30));
        }
    }
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// While traffic flows the writer wakes on this timer and takes whatever queued up, instead of
/// sleeping on the queue: a writer parked on the queue has to be woken by the proxy thread that
/// sends (a futex call and a context switch on 2 cores, per batch).
const POLL_EVERY: Duration = Duration::from_millis(10);
/// After this long without events the writer parks on the queue again (an idle proxy costs
/// nothing; the first event after it pays one wake-up).
const IDLE_AFTER: Duration = Duration::from_millis(500);
/// Exchanges wait in memory at most this long for their chunk to fill before being written
/// anyway: part of the 100 ms promise (see the store's flush interval).
pub(crate) const MAX_PENDING_AGE: Duration = Duration::from_millis(40);

/// Log buffers larger than this are freed when a drain finds them mostly empty.
const SHRINK_LOG_ABOVE: usize = 8 * 1024 * 1024;

struct OpenSession {
    record: GatewaySession,
    decoder: SessionDecoder,
    last_written: Instant,
}

struct Writer {
    store: Arc<Store>,
    options: RecorderOptions,
    encode: EncodeOptions,
    sessions: HashMap<u64, OpenSession>,
    log: Arc<CaptureLog>,
    /// The log buffer the writer holds while the proxy appends to the other one.
    taken: Vec<u8>,
    /// Exchanges encoded but not yet stored: written a full chunk at a time (one sled insert
    /// and one zstd frame per chunk), or when the oldest is [`MAX_PENDING_AGE`] old.
    chunk: ChunkBuilder,
    /// Whether the database still takes writes.
    health: WriteHealth,
}

/// Once a write fails with an I/O error (a full disk, above all), recording stops for good with
/// one error in the log; the proxy goes on forwarding. Retrying every chunk would log an error
/// per request and keep the disk full.
struct WriteHealth {
    stopped: bool,
    /// Tells the store's integrity mark to stop too.
    halt: Arc<std::sync::atomic::AtomicBool>,
}

impl WriteHealth {
    /// Logs a failed write of `what`; an I/O error stops recording (said once).
    fn failed(&mut self, what: &str, err: &super::StoreError) {
        if self.stopped {
            return;
        }
        if matches!(err, super::StoreError::Sled(sled::Error::Io(_))) {
            self.stopped = true;
            self.halt.store(true, Ordering::SeqCst);
            tracing::error!(
                "recording stopped: {what}: {err}. The proxy keeps forwarding but records \
                 nothing more: free space, then restart `discord-mitm record`"
            );
        } else {
            tracing::error!("{what}: {err}");
        }
    }
}

impl Writer {
    fn new(store: Arc<Store>, log: Arc<CaptureLog>, options: RecorderOptions) -> Writer {
        let halt = store.write_failure_flag();
        Writer {
            store,
            encode: EncodeOptions {
                keep_secrets: options.keep_secrets,
                max_body: options.max_body,
            },
            options,
            sessions: HashMap::new(),
            log,
            taken: Vec::new(),
            chunk: ChunkBuilder::new(),
            health: WriteHealth {
                stopped: false,
                halt,
            },
        }
    }

    fn run(mut self, receiver: Receiver<Event>) {
        let mut last_event = Instant::now();
        loop {
            let idle = last_event.elapsed() >= IDLE_AFTER;
            if idle && self.chunk.is_empty() {
                // Park on the queue; the next capture appended wakes us. Checked after saying
                // so, so a capture appended in between is not left waiting.
                self.log.writer_parked.store(true, Ordering::SeqCst);
                if self.log_is_empty() {
                    match receiver.recv() {
                        Ok(event) => {
                            last_event = Instant::now();
                            self.handle(event);
                        }
                        Err(_) => break,
                    }
                }
                self.log.writer_parked.store(false, Ordering::SeqCst);
            } else {
                std::thread::sleep(POLL_EVERY);
            }
            if self.drain_log() > 0 {
                last_event = Instant::now();
            }
            let mut disconnected = false;
            loop {
                match receiver.try_recv() {
                    Ok(event) => {
                        last_event = Instant::now();
                        self.handle(event);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if self
                .chunk
                .started()
                .is_some_and(|started| started.elapsed() >= MAX_PENDING_AGE)
            {
                self.write_chunk();
            }
            if disconnected {
                break;
            }
        }
        self.drain_log();
        self.write_chunk();
        for (_, session) in std::mem::take(&mut self.sessions) {
            self.write_session(&session.record);
        }
        self.flush();
    }

    fn flush(&mut self) {
        if self.health.stopped {
            return;
        }
        if let Err(err) = self.store.flush() {
            self.health.failed("flushing recordings", &err);
        }
    }

    fn log_is_empty(&self) -> bool {
        self.log
            .records
            .lock()
            .map_or(true, |records| records.is_empty())
    }

    /// Encodes every capture waiting in the log; returns how many there were.
    fn drain_log(&mut self) -> usize {
        self.taken.clear();
        match self.log.records.lock() {
            Ok(mut records) => std::mem::swap(&mut *records, &mut self.taken),
            Err(_) => return 0,
        }
        let taken = std::mem::take(&mut self.taken);
        let mut rest = taken.as_slice();
        let mut count = 0;
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let len = u32::from_le_bytes(*len) as usize;
            let Some(capture) = tail.get(..len) else {
                tracing::error!("recorder log cut short; {} bytes skipped", tail.len());
                break;
            };
            rest = &tail[len..];
            count += 1;
            match CaptureView::parse(capture) {
                Some(_) if self.health.stopped => {}
                Some(view) => {
                    self.chunk.push(&self.store, &view, &self.encode);
                    if self.chunk.is_full() {
                        self.write_chunk();
                    }
                }
                None => tracing::error!("malformed capture of {len} bytes skipped"),
            }
        }
        // Both log buffers keep their capacity so steady traffic allocates nothing; after a
        // burst, one that is mostly empty is let go instead of staying resident.
        if taken.capacity() > SHRINK_LOG_ABOVE && taken.len() < taken.capacity() / 8 {
            self.taken = Vec::new();
        } else {
            self.taken = taken;
        }
        count
    }

    fn write_chunk(&mut self) {
        let count = self.chunk.len();
        if let Err(err) = self.chunk.write(&self.store) {
            self.health
                .failed(&format!("recording {count} exchanges"), &err);
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Wake => {}
            Event::SessionStart(id, captured) => self.start_session(id, *captured),
            Event::Frame {
                session_id,
                direction,
                at_us,
                kind,
                data,
                close,
            } => self.frame(session_id, direction, at_us, kind, data, close),
            Event::SessionEnd {
                session_id,
                at_us,
                error,
            } => {
                if let Some(mut session) = self.sessions.remove(&session_id) {
                    session.record.ended_at_us = Some(at_us);
                    if session.record.error.is_none() {
                        session.record.error = error;
                    }
                    self.write_session(&session.record);
                }
            }
            Event::SessionRewrite {
                session_id,
                rewrite,
            } => {
                if let Some(session) = self.sessions.get_mut(&session_id) {
                    if !session.record.rewrites.contains(&rewrite) {
                        session.record.rewrites.push(rewrite);
                        let record = session.record.clone();
                        self.write_session(&record);
                    }
                }
            }
            Event::Flush(done) => {
                self.drain_log();
                self.write_chunk();
                let records: Vec<GatewaySession> =
                    self.sessions.values().map(|s| s.record.clone()).collect();
                for record in &records {
                    self.write_session(record);
                }
                self.flush();
                let _ = done.send(());
            }
        }
    }

    fn write_session(&mut self, session: &GatewaySession) {
        if self.health.stopped {
            return;
        }
        if let Err(err) = self.store.put_session(session) {
            self.health
                .failed(&format!("recording gateway session {}", session.id), &err);
        }
    }

    fn headers(&self, map: &HeaderMap) -> Vec<Header> {
        map.iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_string(),
                value: value.as_bytes().to_vec(),
            })
            .collect()
    }

    fn start_session(&mut self, id: u64, captured: CapturedSession) {
        let mut redactions = Vec::new();
        let keep = self.options.keep_secrets;
        let mut request_headers = self.headers(&captured.request_headers);
        let path_and_query = if keep {
            captured.path_and_query
        } else {
            redact::headers(&mut request_headers, "request", &mut redactions);
            redact::url(&captured.path_and_query, "request", &mut redactions)
        };
        let query = query_params(&path_and_query);
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let record = GatewaySession {
            id,
            started_at_us: captured.started_at_us,
            ended_at_us: None,
            client_addr: captured.client_addr,
            upstream_addr: captured.upstream_addr,
            url: format!("{}://{}{}", captured.scheme, captured.host, path_and_query),
            host: captured.host,
            version: param("v"),
            encoding: param("encoding"),
            compress: param("compress"),
            request_headers,
            status: captured.status,
            closes: Vec::new(),
            frames_sent: 0,
            frames_received: 0,
            error: captured.error,
            redactions,
            rewrites: Vec::new(),
        };
        let decoder = SessionDecoder::new(path_and_query.split_once('?').map_or("", |(_, q)| q));
        self.write_session(&record);
        self.sessions.insert(
            id,
            OpenSession {
                record,
                decoder,
                last_written: Instant::now(),
            },
        );
    }

    fn frame(
        &mut self,
        session_id: u64,
        direction: Direction,
        at_us: i64,
        kind: FrameKind,
        data: Bytes,
        close: Option<(Option<u16>, String)>,
    ) {
        let keep = self.options.keep_secrets;
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        if let Some((code, reason)) = close {
            session.record.closes.push(CloseRecord {
                direction,
                code,
                reason,
                at_us,
            });
        }
        let blank = Frame {
            session_id,
            direction,
            seq: 0,
            at_us,
            kind,
            raw_size: data.len() as u64,
            op: None,
            t: None,
            s: None,
            payload: None,
            raw: None,
            decode_error: None,
            redacted: false,
        };
        let decoded = session.decoder.decode(direction, kind, &data);
        // One record per payload; a frame that completed none (part of a compressed message,
        // ping, close) is still recorded so sizes and timing are all there.
        let mut records = Vec::with_capacity(decoded.len().max(1));
        if decoded.is_empty() {
            let mut frame = blank.clone();
            if kind == FrameKind::Close || keep {
                frame.raw = Some(data.to_vec());
            }
            records.push(frame);
        }
        for (index, outcome) in decoded.into_iter().enumerate() {
            let mut frame = blank.clone();
            if index > 0 {
                // Several payloads in one frame: the wire bytes belong to the first.
                frame.raw_size = 0;
            }
            match outcome {
                Decoded::Payload(mut value) => {
                    frame.op = value.get("op").and_then(|v| v.as_u64()).map(|v| v as u8);
                    frame.t = value.get("t").and_then(|v| v.as_str()).map(str::to_string);
                    frame.s = value.get("s").and_then(|v| v.as_u64());
                    if !keep {
                        let mut marks = Vec::new();
                        redact::json_value(&mut value, "d", &mut marks);
                        frame.redacted = !marks.is_empty();
                        for mark in marks {
                            let label = format!("frame.{mark}");
                            if !session.record.redactions.contains(&label) {
                                session.record.redactions.push(label);
                            }
                        }
                    }
                    frame.payload = Some(value.to_string());
                }
                Decoded::Failed(reason) => {
                    frame.decode_error = Some(reason);
                    // Client frames that did not decode may hold a token: keep them only on request.
                    if keep || direction == Direction::ServerToClient {
                        frame.raw = Some(data.to_vec());
                    }
                }
            }
            records.push(frame);
        }
        for mut frame in records {
            let seq = match direction {
                Direction::ClientToServer => &mut session.record.frames_sent,
                Direction::ServerToClient => &mut session.record.frames_received,
            };
            frame.seq = *seq;
            *seq += 1;
            if self.health.stopped {
                continue;
            }
            if let Err(err) = self.store.insert_frame(&frame) {
                self.health.failed("recording frame", &err);
            }
        }
        if session.last_written.elapsed() > Duration::from_secs(1) {
            session.last_written = Instant::now();
            let record = session.record.clone();
            self.write_session(&record);
        }
    }
}

fn query_params(path_and_query: &str) -> Vec<(String, String)> {
    let Some((_, query)) = path_and_query.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CHUNK_EXCHANGES;
    use http::HeaderValue;

    fn capture(path: &str) -> Vec<u8> {
        let mut request = HeaderMap::new();
        request.append("authorization", HeaderValue::from_static("Bot secret"));
        let mut response = HeaderMap::new();
        response.append("content-type", HeaderValue::from_static("application/json"));
        CapturedExchange {
            started_at_us: 1,
            wait_us: Some(2),
            duration_us: 3,
            client_addr: "127.0.0.1:5000".into(),
            upstream_addr: None,
            source: "upstream",
            method: "POST".into(),
            scheme: "https".into(),
            host: "discord.com".into(),
            path_and_query: path.into(),
            http_version: "HTTP/1.1".into(),
            request_headers: request,
            request_body: CapturedBody::default(),
            response: Some(CapturedResponse {
                status: 200,
                headers: response,
                body: CapturedBody::from_bytes(br#"{"token":"abc"}"#.to_vec()),
            }),
            error: None,
        }
        .into_capture()
    }

    #[test]
    fn a_parked_writer_is_woken_by_the_next_capture() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let recorder = Recorder::start(Arc::clone(&store), RecorderOptions::default());
        for round in 1..=2 {
            // Idle long enough that the writer stops polling and sleeps on the queue.
            std::thread::sleep(IDLE_AFTER + POLL_EVERY * 5);
            assert!(
                recorder.inner.log.writer_parked.load(Ordering::SeqCst),
                "parked"
            );
            recorder.capture(&capture("/api/v9/gateway"));
            let deadline = Instant::now() + Duration::from_secs(5);
            while store.exchange_count() < round && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(store.exchange_count(), round, "written without a flush");
        }
        assert_eq!(recorder.dropped(), 0);
    }

    #[test]
    fn malformed_captures_are_skipped_and_the_rest_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let recorder = Recorder::start(Arc::clone(&store), RecorderOptions::default());
        let good = capture("/api/v9/users/@me");
        recorder.capture(&good[..good.len() - 1]);
        recorder.capture(b"");
        recorder.capture(&good);
        recorder.flush();
        assert_eq!(store.exchange_count(), 1);
        let stored = store.exchanges().next().unwrap().unwrap();
        assert_eq!(stored.path_and_query, "/api/v9/users/@me");
    }

    #[test]
    fn pending_exchanges_reach_the_store_without_a_flush_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let recorder = Recorder::start(Arc::clone(&store), RecorderOptions::default());
        for i in 0..3 {
            recorder.capture(&capture(&format!("/api/v9/auth/login?n={i}")));
        }
        // Fewer than a chunk: written when the oldest has waited MAX_PENDING_AGE.
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.exchange_count() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(store.exchange_count(), 3);
        let first = store.exchange(1).unwrap().unwrap();
        assert_eq!(first.method, "POST");
        assert_eq!(first.client_addr, "127.0.0.1:5000");
        assert_eq!(first.http_version, "HTTP/1.1");
        assert_eq!(first.url(), "https://discord.com/api/v9/auth/login?n=0");
        assert_ne!(first.request_headers[0].value, b"Bot secret".to_vec());
        let body = &first.response.as_ref().unwrap().body.data;
        assert!(
            !String::from_utf8_lossy(body).contains("abc"),
            "token redacted"
        );
        assert!(first
            .redactions
            .contains(&"request.header.authorization".to_string()));
        // A full chunk and more, then a flush: all there, ids in order.
        for i in 0..(CHUNK_EXCHANGES + 5) {
            recorder.capture(&capture(&format!("/api/v9/users/{i}")));
        }
        recorder.flush();
        assert_eq!(store.exchange_count(), 3 + CHUNK_EXCHANGES + 5);
        let ids: Vec<u64> = store.exchanges().map(|e| e.unwrap().id).collect();
        assert_eq!(
            ids,
            (1..=(3 + CHUNK_EXCHANGES + 5) as u64).collect::<Vec<_>>()
        );
    }
}
