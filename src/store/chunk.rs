//! Builds an exchange chunk straight from captures: each capture is redacted, decoded and
//! written in the stored encoding (postcard of [`Exchange`]) in one pass, without building an
//! [`Exchange`] first (measured: the intermediate records, their per-header strings and their
//! serialisation were most of what the recorder thread spent per exchange).
//!
//! The bytes written here must be exactly what `postcard` writes for the same [`Exchange`]:
//! the tests decode them with postcard and compare, and re-encode and compare byte for byte.
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::capture::{Addr, BodyView, CaptureView, HeadersView};
use super::records::Exchange;
use super::route::route_template;
use super::{body, redact, route_key, Store, StoreError, CHUNK_EXCHANGES};

/// Room left in front of the encoded exchanges for the count, a postcard varint.
const COUNT_ROOM: usize = 10;
/// Distinct paths whose route template is remembered between chunks.
const TEMPLATE_CACHE: usize = 4096;

/// How captures are turned into records.
#[derive(Debug, Clone)]
pub(crate) struct EncodeOptions {
    /// Keep secrets as they were (`--keep-secrets`).
    pub keep_secrets: bool,
    /// Largest decoded body kept.
    pub max_body: usize,
}

/// Exchanges encoded but not yet stored.
pub(crate) struct ChunkBuilder {
    /// `COUNT_ROOM` bytes, then the encoded exchanges.
    plain: Vec<u8>,
    count: usize,
    first_id: u64,
    /// Route index entries of this chunk: key → the chunk's ids for that route.
    routes: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Clients repeat paths (polling, paging): each distinct one is templated once.
    templates: HashMap<String, String>,
    started: Option<Instant>,
    redactions: Vec<String>,
    key: Vec<u8>,
    /// The stored value of the last chunk, kept for its capacity.
    packed: Vec<u8>,
}

impl ChunkBuilder {
    pub(crate) fn new() -> ChunkBuilder {
        ChunkBuilder {
            plain: vec![0; COUNT_ROOM],
            count: 0,
            first_id: 0,
            routes: BTreeMap::new(),
            templates: HashMap::new(),
            started: None,
            redactions: Vec::new(),
            key: Vec::new(),
            packed: Vec::new(),
        }
    }

    /// Exchanges waiting.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Whether none wait.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the chunk is full.
    pub(crate) fn is_full(&self) -> bool {
        self.count >= CHUNK_EXCHANGES
    }

    /// When the oldest waiting exchange was added.
    pub(crate) fn started(&self) -> Option<Instant> {
        self.started
    }

    /// Encodes one capture into the chunk.
    pub(crate) fn push(
        &mut self,
        store: &Store,
        capture: &CaptureView<'_>,
        options: &EncodeOptions,
    ) {
        if self.count == 0 {
            self.first_id = store.next_exchange_id();
            self.started = Some(Instant::now());
        }
        let id = self.first_id + self.count as u64;
        self.redactions.clear();
        encode_exchange(&mut self.plain, id, capture, options, &mut self.redactions);
        self.count += 1;

        let path = capture.path();
        let (method, host, first) = (capture.method, capture.host, self.first_id);
        match self.templates.get(path) {
            Some(template) => route_key_into(&mut self.key, method, host, template, first),
            None => {
                if self.templates.len() >= TEMPLATE_CACHE {
                    self.templates.clear();
                }
                let template = route_template(path);
                route_key_into(&mut self.key, method, host, &template, first);
                self.templates.insert(path.to_string(), template);
            }
        }
        match self.routes.get_mut(self.key.as_slice()) {
            Some(ids) => ids.extend_from_slice(&id.to_be_bytes()),
            None => {
                self.routes
                    .insert(self.key.clone(), id.to_be_bytes().to_vec());
            }
        }
    }

    /// Stores the waiting exchanges as one chunk and starts a new one.
    pub(crate) fn write(&mut self, store: &Store) -> Result<(), StoreError> {
        if self.count == 0 {
            return Ok(());
        }
        let result = self.store_chunk(store);
        self.plain.truncate(COUNT_ROOM);
        self.count = 0;
        self.routes.clear();
        self.started = None;
        result
    }

    fn store_chunk(&mut self, store: &Store) -> Result<(), StoreError> {
        let mut count = Vec::with_capacity(COUNT_ROOM);
        write_varint(&mut count, self.count as u64);
        let at = COUNT_ROOM - count.len();
        self.plain[at..COUNT_ROOM].copy_from_slice(&count);
        let encoded = &self.plain[at..];
        let first = self.first_id;
        let local = store.local()?;
        let reserved = local.next_exchange.compare_exchange(
            first,
            first + self.count as u64,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if reserved.is_err() {
            // Someone else stored exchanges since this chunk began (only tests and tools do):
            // the ids written are taken, so store the exchanges under fresh ones.
            let mut exchanges: Vec<Exchange> = postcard::from_bytes(encoded)
                .map_err(|err| StoreError::Encode(format!("re-reading a chunk: {err}")))?;
            return store.insert_exchanges(&mut exchanges);
        }
        super::pack_chunk(self.count, encoded, &mut self.packed)?;
        local
            .exchanges
            .insert(first.to_be_bytes(), self.packed.as_slice())?;
        for (key, ids) in std::mem::take(&mut self.routes) {
            local.route_index.insert(key, ids)?;
        }
        local.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn route_key_into(key: &mut Vec<u8>, method: &str, host: &str, template: &str, first: u64) {
    key.clear();
    for part in [method, host, template] {
        key.extend_from_slice(part.as_bytes());
        key.push(0);
    }
    key.extend_from_slice(&first.to_be_bytes());
    debug_assert_eq!(*key, route_key(method, host, template, Some(first)));
}

/// Writes `capture` as postcard writes the [`Exchange`] the recorder makes of it.
pub(crate) fn encode_exchange(
    out: &mut Vec<u8>,
    id: u64,
    capture: &CaptureView<'_>,
    options: &EncodeOptions,
    redactions: &mut Vec<String>,
) {
    let keep = options.keep_secrets;
    write_varint(out, id);
    write_varint(out, zigzag(capture.started_at_us));
    match capture.wait_us {
        None => out.push(0),
        Some(wait) => {
            out.push(1);
            write_varint(out, wait);
        }
    }
    write_varint(out, capture.duration_us);
    write_addr(out, capture.client_addr);
    match capture.upstream_addr {
        None => out.push(0),
        Some(addr) => {
            out.push(1);
            write_addr(out, Some(addr));
        }
    }
    write_str(out, capture.source);
    write_str(out, capture.method);
    write_str(out, capture.scheme);
    write_str(out, capture.host);
    if keep || !redact::url_may_hold_secret(capture.path_and_query) {
        write_str(out, capture.path_and_query);
    } else {
        write_str(
            out,
            &redact::url(capture.path_and_query, "request", redactions),
        );
    }
    write_str(out, capture.http_version);
    write_headers(out, capture.request_headers, "request", keep, redactions);
    write_body(
        out,
        capture.request_body,
        capture.request_headers,
        "request",
        options,
        redactions,
    );
    match &capture.response {
        None => out.push(0),
        Some(response) => {
            out.push(1);
            write_varint(out, u64::from(response.status));
            write_headers(out, response.headers, "response", keep, redactions);
            write_body(
                out,
                response.body,
                response.headers,
                "response",
                options,
                redactions,
            );
        }
    }
    write_option_str(out, capture.error);
    write_varint(out, redactions.len() as u64);
    for label in redactions.iter() {
        write_str(out, label);
    }
    write_varint(out, capture.rewrites.len() as u64);
    for (kind, from, to) in capture.rewrites.iter() {
        write_str(out, kind);
        write_str(out, from);
        write_str(out, to);
    }
}

fn write_headers(
    out: &mut Vec<u8>,
    headers: HeadersView<'_>,
    side: &str,
    keep: bool,
    redactions: &mut Vec<String>,
) {
    write_varint(out, headers.len() as u64);
    for (name, value) in headers.iter() {
        // Header names are ASCII (http::HeaderName); the lossy path is only for damaged input.
        let name =
            std::str::from_utf8(name).map_or_else(|_| String::from_utf8_lossy(name), Cow::Borrowed);
        out.reserve(name.len() + value.len() + 4);
        write_bytes(out, name.as_bytes());
        match (!keep)
            .then(|| redact::header_value(&name, value))
            .flatten()
        {
            Some(redacted) => {
                write_bytes(out, redacted.as_bytes());
                redact::note(redactions, side, &name);
            }
            None => write_bytes(out, value),
        }
    }
}

fn write_body(
    out: &mut Vec<u8>,
    captured: BodyView<'_>,
    headers: HeadersView<'_>,
    side: &str,
    options: &EncodeOptions,
    redactions: &mut Vec<String>,
) {
    let encoded = headers
        .get_str("content-encoding")
        .map(|e| e.trim())
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"));
    let record = encoded.map(|encoding| {
        body::decode(
            Some(encoding),
            captured.data.to_vec(),
            captured.wire_size,
            captured.truncated,
            options.max_body,
        )
    });
    let mut data = Cow::Borrowed(record.as_ref().map_or(captured.data, |r| r.data.as_slice()));
    if !options.keep_secrets {
        if let Some(clean) = redact::body(headers.get_str("content-type"), &data, side, redactions)
        {
            data = Cow::Owned(clean);
        }
    }
    write_bytes(out, &data);
    match &record {
        None => {
            out.push(0);
            write_varint(out, captured.wire_size);
            out.push(u8::from(captured.truncated));
            out.push(0);
        }
        Some(record) => {
            write_option_str(out, record.encoding.as_deref());
            write_varint(out, record.wire_size);
            out.push(u8::from(record.truncated));
            write_option_str(out, record.decode_error.as_deref());
        }
    }
}

fn write_addr(out: &mut Vec<u8>, addr: Option<Addr<'_>>) {
    match addr {
        None => write_str(out, ""),
        Some(Addr::Text(text)) => write_str(out, text),
        Some(Addr::Socket(addr)) => write_socket_addr(out, addr),
    }
}

/// `addr.to_string()` without the formatting machinery (measured: most of what formatting an
/// exchange cost), for the IPv4 addresses nearly every exchange has.
fn write_socket_addr(out: &mut Vec<u8>, addr: std::net::SocketAddr) {
    let std::net::SocketAddr::V4(v4) = addr else {
        write_str(out, &addr.to_string());
        return;
    };
    // At most "255.255.255.255:65535".
    let mut text = [0u8; 21];
    let mut len = 0;
    let mut push_decimal = |mut n: u32, separator: Option<u8>| {
        if let Some(separator) = separator {
            text[len] = separator;
            len += 1;
        }
        let mut digits = [0u8; 5];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let digits = &digits[at..];
        text[len..len + digits.len()].copy_from_slice(digits);
        len += digits.len();
    };
    for (index, octet) in v4.ip().octets().into_iter().enumerate() {
        push_decimal(u32::from(octet), (index > 0).then_some(b'.'));
    }
    push_decimal(u32::from(v4.port()), Some(b':'));
    write_bytes(out, &text[..len]);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub(crate) fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    write_bytes(out, text.as_bytes());
}

fn write_option_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.push(0),
        Some(text) => {
            out.push(1);
            write_str(out, text);
        }
    }
}

#[cfg(test)]
#[path = "chunk_tests.rs"]
mod tests;
