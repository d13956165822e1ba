//! The recorder: the proxy hands it raw captures through a bounded queue and never waits; one
//! writer thread decodes bodies and gateway frames, redacts, and writes to the store.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;

use super::body;
use super::gateway_decode::{Decoded, SessionDecoder};
use super::records::{
    BodyRecord, CloseRecord, Direction, Exchange, Frame, FrameKind, GatewaySession, Header,
    ResponseRecord,
};
use super::redact;
use super::{Store, CHUNK_EXCHANGES};

/// How the recorder treats what it is given.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    /// Keep Authorization, cookies, tokens and passwords as they were (`--keep-secrets`).
    pub keep_secrets: bool,
    /// Largest body kept per request or response; longer ones are cut and marked truncated.
    pub max_body: usize,
    /// Events queued before new ones are dropped (and counted) rather than slowing traffic.
    pub queue: usize,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            keep_secrets: false,
            max_body: 32 * 1024 * 1024,
            queue: 65_536,
        }
    }
}

/// A body as captured on the wire: copied out of the connection's buffers (holding on to
/// them would make the connection allocate fresh ones and free the old ones on the recorder
/// thread).
#[derive(Debug, Default, Clone)]
pub struct CapturedBody {
    /// The kept bytes (at most `max_body`).
    pub data: Vec<u8>,
    /// Bytes that went over the wire.
    pub wire_size: u64,
    /// More bytes went over the wire than were kept.
    pub truncated: bool,
}

/// Headers copied into one buffer: a capture allocates once instead of cloning a `HeaderMap`
/// (several allocations, and references that pin the connection's read buffer).
#[derive(Debug, Default, Clone)]
pub struct CapturedHeaders {
    /// Repeated: name length (u32 LE), name, value length (u32 LE), value.
    packed: Vec<u8>,
}

impl CapturedHeaders {
    /// Copies every header of `map`, in order, repeated names included.
    pub fn from_map(map: &HeaderMap) -> CapturedHeaders {
        let size: usize = map
            .iter()
            .map(|(name, value)| 8 + name.as_str().len() + value.len())
            .sum();
        let mut packed = Vec::with_capacity(size);
        for (name, value) in map {
            for part in [name.as_str().as_bytes(), value.as_bytes()] {
                packed.extend_from_slice(&(part.len() as u32).to_le_bytes());
                packed.extend_from_slice(part);
            }
        }
        CapturedHeaders { packed }
    }

    /// Name and value of each header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let mut rest = self.packed.as_slice();
        std::iter::from_fn(move || {
            let name = take_part(&mut rest)?;
            let value = take_part(&mut rest)?;
            Some((name, value))
        })
    }

    /// The first value of `name` (lower case), as text.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| *n == name.as_bytes())
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }
}

impl From<&HeaderMap> for CapturedHeaders {
    fn from(map: &HeaderMap) -> Self {
        CapturedHeaders::from_map(map)
    }
}

fn take_part<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    let part = tail.get(..len)?;
    *rest = &tail[len..];
    Some(part)
}

/// Text the recorder formats on its own thread, so the proxy allocates nothing for it.
#[derive(Debug, Clone)]
pub enum CapturedText {
    /// Known in advance (scheme, standard method, HTTP version).
    Static(&'static str),
    /// Already a string.
    Owned(String),
    /// A socket address.
    Addr(SocketAddr),
}

impl CapturedText {
    /// The method's name, static for the standard ones.
    pub fn method(method: &http::Method) -> CapturedText {
        use http::Method;
        let known = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
            Method::CONNECT,
            Method::TRACE,
        ];
        const NAMES: [&str; 9] = [
            "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
        ];
        match known.iter().position(|m| m == method) {
            Some(index) => CapturedText::Static(NAMES[index]),
            None => CapturedText::Owned(method.as_str().to_string()),
        }
    }

    /// `HTTP/1.1` and friends, as `{:?}` writes them.
    pub fn version(version: http::Version) -> CapturedText {
        use http::Version;
        CapturedText::Static(match version {
            Version::HTTP_09 => "HTTP/0.9",
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_11 => "HTTP/1.1",
            Version::HTTP_2 => "HTTP/2.0",
            Version::HTTP_3 => "HTTP/3.0",
            other => return CapturedText::Owned(format!("{other:?}")),
        })
    }

    fn into_string(self) -> String {
        match self {
            CapturedText::Static(text) => text.to_string(),
            CapturedText::Owned(text) => text,
            CapturedText::Addr(addr) => addr_string(addr),
        }
    }
}

/// `addr.to_string()` without the formatting machinery (measured: most of what formatting an
/// exchange cost), for the IPv4 addresses nearly every exchange has.
fn addr_string(addr: SocketAddr) -> String {
    let SocketAddr::V4(v4) = addr else {
        return addr.to_string();
    };
    fn push_decimal(out: &mut String, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &digit in &digits[at..] {
            out.push(char::from(digit));
        }
    }
    let mut out = String::with_capacity(21);
    for (index, octet) in v4.ip().octets().into_iter().enumerate() {
        if index > 0 {
            out.push('.');
        }
        push_decimal(&mut out, u32::from(octet));
    }
    out.push(':');
    push_decimal(&mut out, u32::from(v4.port()));
    out
}

/// What the pipeline captures of each exchange it answers: everything [`CapturedExchange`]
/// holds, in a form that is cheap to build on a proxy thread (decoding, redaction and
/// formatting happen on the recorder thread).
#[derive(Debug, Clone)]
pub struct Capture {
    /// Request arrival, µs since the epoch.
    pub started_at_us: i64,
    /// Time to response headers, µs.
    pub wait_us: Option<u64>,
    /// Time to the end of the response body, µs.
    pub duration_us: u64,
    /// Client socket.
    pub client_addr: CapturedText,
    /// Upstream socket.
    pub upstream_addr: Option<CapturedText>,
    /// Who answered.
    pub source: &'static str,
    /// Method.
    pub method: CapturedText,
    /// Scheme.
    pub scheme: CapturedText,
    /// Host (with the port when not the scheme's default).
    pub host: String,
    /// Path and query.
    pub path_and_query: String,
    /// Client's HTTP version.
    pub http_version: CapturedText,
    /// Request headers.
    pub request_headers: CapturedHeaders,
    /// Request body.
    pub request_body: CapturedBody,
    /// Response status, headers (as upstream sent them) and body, if one came.
    pub response: Option<(u16, CapturedHeaders, CapturedBody)>,
    /// What failed.
    pub error: Option<String>,
}

impl From<CapturedExchange> for Capture {
    fn from(captured: CapturedExchange) -> Capture {
        Capture {
            started_at_us: captured.started_at_us,
            wait_us: captured.wait_us,
            duration_us: captured.duration_us,
            client_addr: CapturedText::Owned(captured.client_addr),
            upstream_addr: captured.upstream_addr.map(CapturedText::Owned),
            source: captured.source,
            method: CapturedText::Owned(captured.method),
            scheme: CapturedText::Owned(captured.scheme),
            host: captured.host,
            path_and_query: captured.path_and_query,
            http_version: CapturedText::Owned(captured.http_version),
            request_headers: CapturedHeaders::from_map(&captured.request_headers),
            request_body: captured.request_body,
            response: captured.response.map(|res| {
                (
                    res.status,
                    CapturedHeaders::from_map(&res.headers),
                    res.body,
                )
            }),
            error: captured.error,
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
    Exchange(Box<Capture>),
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
    Flush(mpsc::Sender<()>),
}

/// Handle the proxy records through; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    sender: SyncSender<Event>,
    store: Arc<Store>,
    dropped: Arc<AtomicU64>,
    max_body: usize,
    _writer: Arc<WriterGuard>,
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
        let handle = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || Writer::new(writer_store, options).run(receiver))
            .ok();
        if handle.is_none() {
            tracing::error!("cannot start the recorder thread; nothing will be recorded");
        }
        Recorder {
            sender,
            store,
            dropped: Arc::new(AtomicU64::new(0)),
            max_body,
            _writer: Arc::new(WriterGuard {
                handle: std::sync::Mutex::new(handle),
            }),
        }
    }

    /// Largest body the recorder keeps; captures should stop collecting there.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Events dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, event: Event) {
        match self.sender.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n, "recorder queue full: events dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues a finished exchange.
    pub fn exchange(&self, exchange: CapturedExchange) {
        self.capture(Capture::from(exchange));
    }

    /// Queues a finished exchange as the pipeline captures it (the per-request path).
    pub fn capture(&self, capture: Capture) {
        self.send(Event::Exchange(Box::new(capture)));
    }

    /// Queues the start of a gateway session; returns its id for the frames.
    pub fn session_start(&self, session: CapturedSession) -> u64 {
        let id = self.store.next_session_id();
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
        if self.sender.send(Event::Flush(done)).is_ok() {
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
/// anyway (well inside the 1 s durability promise, with sled's own flush every 500 ms).
const MAX_PENDING_AGE: Duration = Duration::from_millis(100);

struct OpenSession {
    record: GatewaySession,
    decoder: SessionDecoder,
    last_written: Instant,
}

struct Writer {
    store: Arc<Store>,
    options: RecorderOptions,
    sessions: HashMap<u64, OpenSession>,
    /// Exchanges built but not yet stored: written a full chunk at a time (one sled insert and
    /// one zstd frame per [`CHUNK_EXCHANGES`]), or when the oldest is [`MAX_PENDING_AGE`] old.
    pending: Vec<Exchange>,
    pending_since: Instant,
}

impl Writer {
    fn new(store: Arc<Store>, options: RecorderOptions) -> Writer {
        Writer {
            store,
            options,
            sessions: HashMap::new(),
            pending: Vec::with_capacity(CHUNK_EXCHANGES),
            pending_since: Instant::now(),
        }
    }

    fn run(mut self, receiver: Receiver<Event>) {
        let mut last_event = Instant::now();
        loop {
            let idle = last_event.elapsed() >= IDLE_AFTER;
            if idle && self.pending.is_empty() {
                match receiver.recv() {
                    Ok(event) => {
                        last_event = Instant::now();
                        self.handle(event);
                    }
                    Err(_) => break,
                }
            } else {
                std::thread::sleep(POLL_EVERY);
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
            if !self.pending.is_empty() && self.pending_since.elapsed() >= MAX_PENDING_AGE {
                self.write_pending();
            }
            if disconnected {
                break;
            }
        }
        self.write_pending();
        for (_, session) in std::mem::take(&mut self.sessions) {
            self.write_session(&session.record);
        }
        if let Err(err) = self.store.flush() {
            tracing::error!("flushing recordings: {err}");
        }
    }

    fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Err(err) = self.store.insert_exchanges(&mut self.pending) {
            tracing::error!("recording {} exchanges: {err}", self.pending.len());
        }
        self.pending.clear();
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Exchange(captured) => {
                let exchange = self.build_exchange(*captured);
                if self.pending.is_empty() {
                    self.pending_since = Instant::now();
                }
                self.pending.push(exchange);
                if self.pending.len() >= CHUNK_EXCHANGES {
                    self.write_pending();
                }
            }
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
            Event::Flush(done) => {
                self.write_pending();
                for session in self.sessions.values() {
                    self.write_session(&session.record);
                }
                if let Err(err) = self.store.flush() {
                    tracing::error!("flushing recordings: {err}");
                }
                let _ = done.send(());
            }
        }
    }

    fn write_session(&self, session: &GatewaySession) {
        if let Err(err) = self.store.put_session(session) {
            tracing::error!("recording gateway session {}: {err}", session.id);
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

    fn captured_headers(&self, headers: &CapturedHeaders) -> Vec<Header> {
        headers
            .iter()
            .map(|(name, value)| Header {
                name: String::from_utf8_lossy(name).into_owned(),
                value: value.to_vec(),
            })
            .collect()
    }

    fn body(&self, headers: &CapturedHeaders, captured: CapturedBody) -> BodyRecord {
        body::decode(
            headers.get_str("content-encoding"),
            captured.data,
            captured.wire_size,
            captured.truncated,
            self.options.max_body,
        )
    }

    fn build_exchange(&self, captured: Capture) -> Exchange {
        let mut redactions = Vec::new();
        let keep = self.options.keep_secrets;
        let mut request_headers = self.captured_headers(&captured.request_headers);
        let request_type = captured.request_headers.get_str("content-type");
        let mut request_body = self.body(&captured.request_headers, captured.request_body);
        let path_and_query = if keep {
            captured.path_and_query
        } else {
            redact::query(&captured.path_and_query, "request", &mut redactions)
        };
        if !keep {
            redact::headers(&mut request_headers, "request", &mut redactions);
            if let Some(clean) =
                redact::body(request_type, &request_body.data, "request", &mut redactions)
            {
                request_body.data = clean;
            }
        }
        let response = captured.response.map(|(status, res_headers, res_body)| {
            let mut headers = self.captured_headers(&res_headers);
            let response_type = res_headers.get_str("content-type");
            let mut body = self.body(&res_headers, res_body);
            if !keep {
                redact::headers(&mut headers, "response", &mut redactions);
                if let Some(clean) =
                    redact::body(response_type, &body.data, "response", &mut redactions)
                {
                    body.data = clean;
                }
            }
            ResponseRecord {
                status,
                headers,
                body,
            }
        });
        Exchange {
            id: 0,
            started_at_us: captured.started_at_us,
            wait_us: captured.wait_us,
            duration_us: captured.duration_us,
            client_addr: captured.client_addr.into_string(),
            upstream_addr: captured.upstream_addr.map(CapturedText::into_string),
            source: captured.source.to_string(),
            method: captured.method.into_string(),
            scheme: captured.scheme.into_string(),
            host: captured.host,
            path_and_query,
            http_version: captured.http_version.into_string(),
            request_headers,
            request_body,
            response,
            error: captured.error,
            redactions,
        }
    }

    fn start_session(&mut self, id: u64, captured: CapturedSession) {
        let mut redactions = Vec::new();
        let keep = self.options.keep_secrets;
        let mut request_headers = self.headers(&captured.request_headers);
        let path_and_query = if keep {
            captured.path_and_query
        } else {
            redact::headers(&mut request_headers, "request", &mut redactions);
            redact::query(&captured.path_and_query, "request", &mut redactions)
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
            if let Err(err) = self.store.insert_frame(&frame) {
                tracing::error!("recording frame: {err}");
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
    use http::HeaderValue;

    #[test]
    fn captured_headers_keep_order_repeats_and_raw_bytes() {
        let mut map = HeaderMap::new();
        map.append("set-cookie", HeaderValue::from_static("a=1"));
        map.append("content-type", HeaderValue::from_static("application/json"));
        map.append("set-cookie", HeaderValue::from_static("b=2"));
        map.append("x-raw", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let captured = CapturedHeaders::from_map(&map);
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = captured
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = map
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(pairs, expected);
        assert_eq!(captured.get_str("set-cookie"), Some("a=1"));
        assert_eq!(captured.get_str("content-type"), Some("application/json"));
        assert_eq!(captured.get_str("x-raw"), None, "not text");
        assert_eq!(captured.get_str("authorization"), None);
        assert_eq!(CapturedHeaders::default().iter().count(), 0);
    }

    #[test]
    fn cut_header_buffer_ends_iteration_instead_of_panicking() {
        let mut map = HeaderMap::new();
        map.append("user-agent", HeaderValue::from_static("curl/8"));
        map.append("accept", HeaderValue::from_static("*/*"));
        let whole = CapturedHeaders::from_map(&map);
        for cut in 0..whole.packed.len() {
            let part = CapturedHeaders {
                packed: whole.packed[..cut].to_vec(),
            };
            assert!(part.iter().count() < 2, "cut at {cut}");
        }
    }

    #[test]
    fn captured_text_formats_like_the_types_do() {
        for method in [
            http::Method::GET,
            http::Method::PATCH,
            http::Method::from_bytes(b"PURGE").unwrap(),
        ] {
            assert_eq!(CapturedText::method(&method).into_string(), method.as_str());
        }
        for version in [
            http::Version::HTTP_10,
            http::Version::HTTP_11,
            http::Version::HTTP_2,
        ] {
            assert_eq!(
                CapturedText::version(version).into_string(),
                format!("{version:?}")
            );
        }
        for text in [
            "127.0.0.1:4000",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.20.3.100:443",
            "[::1]:8080",
            "[2001:db8::7]:443",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(CapturedText::Addr(addr).into_string(), text);
        }
    }

    fn capture(path: &str) -> Capture {
        let mut request = HeaderMap::new();
        request.append("authorization", HeaderValue::from_static("Bot secret"));
        let mut response = HeaderMap::new();
        response.append("content-type", HeaderValue::from_static("application/json"));
        Capture {
            started_at_us: 1,
            wait_us: Some(2),
            duration_us: 3,
            client_addr: CapturedText::Addr("127.0.0.1:5000".parse().unwrap()),
            upstream_addr: None,
            source: "upstream",
            method: CapturedText::method(&http::Method::POST),
            scheme: CapturedText::Static("https"),
            host: "discord.com".into(),
            path_and_query: path.into(),
            http_version: CapturedText::version(http::Version::HTTP_11),
            request_headers: CapturedHeaders::from_map(&request),
            request_body: CapturedBody::default(),
            response: Some((
                200,
                CapturedHeaders::from_map(&response),
                CapturedBody {
                    data: br#"{"token":"abc"}"#.to_vec(),
                    wire_size: 15,
                    truncated: false,
                },
            )),
            error: None,
        }
    }

    #[test]
    fn pending_exchanges_reach_the_store_without_a_flush_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let recorder = Recorder::start(Arc::clone(&store), RecorderOptions::default());
        for i in 0..3 {
            recorder.capture(capture(&format!("/api/v9/auth/login?n={i}")));
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
            recorder.capture(capture(&format!("/api/v9/users/{i}")));
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
