//! One exchange as the proxy captures it: a single byte buffer the proxy thread appends to as
//! the exchange goes by (request head, response head, response body, then the closing facts),
//! and that the recorder parses back without copying. Nothing here is formatted, decoded or
//! redacted: that is the recorder thread's work.
//!
//! Why one buffer: the proxy thread allocates it once and frees it itself after copying it
//! into the recorder's log, so recording adds no allocations freed on another thread and no
//! per-field copies (measured: those were most of what recording cost the proxy threads).
//!
//! Layout (integers little-endian; `str` is a u32 length then the bytes):
//! ```text
//! method str | path_and_query str | http_version str | request headers block
//! response: 0 | 1 status u16, headers block, body (u32 length, bytes), wire_size u64, truncated u8
//! request body (u32 length, bytes), wire_size u64, truncated u8
//! started_at_us i64 | wait_us u64 (u64::MAX: none) | duration_us u64
//! client addr | upstream addr (tag 0: none, 1: text, 4: IPv4 + port, 6: IPv6 + port + scope)
//! source str | scheme str | host str | error: 0 | 1 str
//! rewrites block (u32 byte length, then per rewrite: kind str, from str, to str)
//! ```
//! A headers block is a u32 byte length, then per header: name str, value str.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use http::HeaderMap;

/// A body as captured on the wire: copied out of the connection's buffers (holding on to
/// them would make the connection allocate fresh ones).
#[derive(Debug, Default, Clone)]
pub struct CapturedBody {
    /// The kept bytes are `data[start..]` (at most `max_body` of them); what comes before
    /// `start` is the capture the body is being appended to.
    pub data: Vec<u8>,
    /// Where the body starts in `data`.
    pub start: usize,
    /// Bytes that went over the wire.
    pub wire_size: u64,
    /// More bytes went over the wire than were kept.
    pub truncated: bool,
}

impl CapturedBody {
    /// A body holding `data`.
    pub fn from_bytes(data: Vec<u8>) -> CapturedBody {
        CapturedBody {
            wire_size: data.len() as u64,
            data,
            start: 0,
            truncated: false,
        }
    }

    /// The body's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.data.get(self.start..).unwrap_or_default()
    }

    /// How many body bytes are kept so far.
    pub fn kept(&self) -> usize {
        self.data.len().saturating_sub(self.start)
    }
}

/// How a captured exchange ended, beyond its bytes.
#[derive(Debug, Clone)]
pub struct ExchangeEnd<'a> {
    /// The request body (empty for bodiless requests).
    pub request_body: &'a CapturedBody,
    /// Request arrival, µs since the epoch.
    pub started_at_us: i64,
    /// Time to response headers, µs.
    pub wait_us: Option<u64>,
    /// Time to the end of the response body, µs.
    pub duration_us: u64,
    /// Client socket.
    pub client_addr: Addr<'a>,
    /// Upstream socket.
    pub upstream_addr: Option<Addr<'a>>,
    /// Who answered.
    pub source: &'a str,
    /// `https` or `http`.
    pub scheme: &'a str,
    /// Host, without the port.
    pub host: &'a str,
    /// The port, when it is not the scheme's default.
    pub port: Option<u16>,
    /// What failed.
    pub error: Option<&'a str>,
    /// What `serve` changed on the way (empty for `record`).
    pub rewrites: &'a [super::Rewrite],
}

/// A socket address as captured and read back: binary on the hot path, text where a caller
/// has only text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr<'a> {
    /// A socket address (formatted by the recorder).
    Socket(SocketAddr),
    /// Already text.
    Text(&'a str),
}

const NO_WAIT: u64 = u64::MAX;

/// `HTTP/1.1` and friends, as `{:?}` writes them.
pub fn version_name(version: http::Version) -> &'static str {
    use http::Version;
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

/// The capture of one exchange being built on a proxy thread.
#[derive(Debug, Default)]
pub struct ExchangeCapture {
    buf: Vec<u8>,
}

impl ExchangeCapture {
    /// Starts a capture with the request head. `extra` is room reserved for what follows.
    pub fn request(
        method: &str,
        path_and_query: &str,
        http_version: &str,
        headers: &HeaderMap,
        extra: usize,
    ) -> ExchangeCapture {
        let size = 16 + method.len() + path_and_query.len() + http_version.len();
        let mut capture = ExchangeCapture {
            buf: Vec::with_capacity(size + headers_size(headers) + extra),
        };
        capture.put_str(method);
        capture.put_str(path_and_query);
        capture.put_str(http_version);
        capture.put_headers(headers);
        capture
    }

    /// Records that no response came.
    pub fn no_response(&mut self) {
        self.buf.push(0);
    }

    /// Adds the response head; the body is then appended to the returned [`CapturedBody`]
    /// (whose `data` is this capture) and handed back to [`ExchangeCapture::response_body_end`].
    pub fn response_head(
        mut self,
        status: u16,
        headers: &HeaderMap,
        body_hint: usize,
    ) -> CapturedBody {
        self.buf
            .reserve(7 + headers_size(headers) + body_hint + END_SIZE);
        self.buf.push(1);
        self.buf.extend_from_slice(&status.to_le_bytes());
        self.put_headers(headers);
        self.buf.extend_from_slice(&0u32.to_le_bytes()); // body length, set at the end
        let start = self.buf.len();
        CapturedBody {
            data: self.buf,
            start,
            wire_size: 0,
            truncated: false,
        }
    }

    /// Takes back the capture a response body was appended to.
    pub fn response_body_end(body: CapturedBody) -> ExchangeCapture {
        let CapturedBody {
            mut data,
            start,
            wire_size,
            truncated,
        } = body;
        let len = data.len().saturating_sub(start) as u32;
        if let Some(slot) = start.checked_sub(4).and_then(|at| data.get_mut(at..start)) {
            slot.copy_from_slice(&len.to_le_bytes());
        }
        data.extend_from_slice(&wire_size.to_le_bytes());
        data.push(u8::from(truncated));
        ExchangeCapture { buf: data }
    }

    /// A whole response at once (for exchanges the proxy answers itself).
    pub fn response(
        self,
        status: u16,
        headers: &HeaderMap,
        body: &CapturedBody,
    ) -> ExchangeCapture {
        let mut captured = self.response_head(status, headers, body.kept());
        captured.data.extend_from_slice(body.bytes());
        captured.wire_size = body.wire_size;
        captured.truncated = body.truncated;
        ExchangeCapture::response_body_end(captured)
    }

    /// Adds the closing facts; the capture is then complete.
    pub fn finish(mut self, end: &ExchangeEnd<'_>) -> Vec<u8> {
        let body = end.request_body;
        self.buf
            .reserve(END_SIZE + body.kept() + end.error.map_or(0, str::len));
        self.put_bytes(body.bytes());
        self.buf.extend_from_slice(&body.wire_size.to_le_bytes());
        self.buf.push(u8::from(body.truncated));
        self.buf.extend_from_slice(&end.started_at_us.to_le_bytes());
        self.buf
            .extend_from_slice(&end.wait_us.unwrap_or(NO_WAIT).to_le_bytes());
        self.buf.extend_from_slice(&end.duration_us.to_le_bytes());
        self.put_addr(Some(end.client_addr));
        self.put_addr(end.upstream_addr);
        self.put_str(end.source);
        self.put_str(end.scheme);
        match end.port {
            None => self.put_str(end.host),
            Some(port) => self.put_str(&format!("{}:{port}", end.host)),
        }
        match end.error {
            None => self.buf.push(0),
            Some(error) => {
                self.buf.push(1);
                self.put_str(error);
            }
        }
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        for rewrite in end.rewrites {
            self.put_str(&rewrite.kind);
            self.put_str(&rewrite.from);
            self.put_str(&rewrite.to);
        }
        let len = (self.buf.len() - at - 4) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.buf
    }

    fn put_bytes(&mut self, bytes: &[u8]) {
        self.buf
            .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(bytes);
    }

    fn put_str(&mut self, text: &str) {
        self.put_bytes(text.as_bytes());
    }

    fn put_headers(&mut self, headers: &HeaderMap) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        for (name, value) in headers {
            self.put_bytes(name.as_str().as_bytes());
            self.put_bytes(value.as_bytes());
        }
        let len = (self.buf.len() - at - 4) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    fn put_addr(&mut self, addr: Option<Addr<'_>>) {
        match addr {
            None => self.buf.push(0),
            Some(Addr::Text(text)) => {
                self.buf.push(1);
                self.put_str(text);
            }
            Some(Addr::Socket(SocketAddr::V4(v4))) => {
                self.buf.push(4);
                self.buf.extend_from_slice(&v4.ip().octets());
                self.buf.extend_from_slice(&v4.port().to_le_bytes());
            }
            Some(Addr::Socket(SocketAddr::V6(v6))) => {
                self.buf.push(6);
                self.buf.extend_from_slice(&v6.ip().octets());
                self.buf.extend_from_slice(&v6.port().to_le_bytes());
                self.buf.extend_from_slice(&v6.scope_id().to_le_bytes());
            }
        }
    }
}

/// Bytes the closing facts take besides the request body, error and host.
const END_SIZE: usize = 128;

fn headers_size(headers: &HeaderMap) -> usize {
    4 + headers
        .iter()
        .map(|(name, value)| 8 + name.as_str().len() + value.len())
        .sum::<usize>()
}

/// Headers of a capture, as stored: name and value pairs in wire order, repeats included.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadersView<'a> {
    packed: &'a [u8],
}

impl<'a> HeadersView<'a> {
    /// Name and value of each header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut rest = self.packed;
        std::iter::from_fn(move || {
            let name = take_bytes(&mut rest)?;
            let value = take_bytes(&mut rest)?;
            Some((name, value))
        })
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// The first value of `name` (lower case), as text.
    pub fn get_str(&self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(n, _)| *n == name.as_bytes())
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }
}

/// The rewrites of a capture, as stored: kind, from and to of each, in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct RewritesView<'a> {
    packed: &'a [u8],
}

impl<'a> RewritesView<'a> {
    /// Kind, from and to of each rewrite, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> {
        let mut rest = self.packed;
        std::iter::from_fn(move || {
            let kind = take_str(&mut rest)?;
            let from = take_str(&mut rest)?;
            let to = take_str(&mut rest)?;
            Some((kind, from, to))
        })
    }

    /// How many rewrites there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }
}

/// A body of a capture.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyView<'a> {
    /// Kept bytes.
    pub data: &'a [u8],
    /// Bytes that went over the wire.
    pub wire_size: u64,
    /// More went over the wire than was kept.
    pub truncated: bool,
}

/// A response of a capture.
#[derive(Debug, Clone, Copy)]
pub struct ResponseView<'a> {
    /// Status code.
    pub status: u16,
    /// Headers as upstream sent them.
    pub headers: HeadersView<'a>,
    /// Body.
    pub body: BodyView<'a>,
}

/// A complete capture, parsed without copying.
#[derive(Debug, Clone, Copy)]
pub struct CaptureView<'a> {
    /// Method.
    pub method: &'a str,
    /// Path and query.
    pub path_and_query: &'a str,
    /// Client's HTTP version.
    pub http_version: &'a str,
    /// Request headers.
    pub request_headers: HeadersView<'a>,
    /// The response, if one came.
    pub response: Option<ResponseView<'a>>,
    /// Request body.
    pub request_body: BodyView<'a>,
    /// Request arrival, µs since the epoch.
    pub started_at_us: i64,
    /// Time to response headers, µs.
    pub wait_us: Option<u64>,
    /// Time to the end of the response body, µs.
    pub duration_us: u64,
    /// Client socket.
    pub client_addr: Option<Addr<'a>>,
    /// Upstream socket.
    pub upstream_addr: Option<Addr<'a>>,
    /// Who answered.
    pub source: &'a str,
    /// Scheme.
    pub scheme: &'a str,
    /// Host (with the port when not the scheme's default).
    pub host: &'a str,
    /// What failed.
    pub error: Option<&'a str>,
    /// What `serve` changed on the way.
    pub rewrites: RewritesView<'a>,
}

impl<'a> CaptureView<'a> {
    /// Parses a capture made by [`ExchangeCapture`]; `None` when it is cut or malformed.
    pub fn parse(bytes: &'a [u8]) -> Option<CaptureView<'a>> {
        let mut rest = bytes;
        let rest = &mut rest;
        let method = take_str(rest)?;
        let path_and_query = take_str(rest)?;
        let http_version = take_str(rest)?;
        let request_headers = HeadersView {
            packed: take_bytes(rest)?,
        };
        let response = match take_u8(rest)? {
            0 => None,
            1 => {
                let status = u16::from_le_bytes(take_array(rest)?);
                let headers = HeadersView {
                    packed: take_bytes(rest)?,
                };
                Some(ResponseView {
                    status,
                    headers,
                    body: take_body(rest)?,
                })
            }
            _ => return None,
        };
        let request_body = take_body(rest)?;
        let started_at_us = i64::from_le_bytes(take_array(rest)?);
        let wait_us = Some(u64::from_le_bytes(take_array(rest)?)).filter(|w| *w != NO_WAIT);
        let duration_us = u64::from_le_bytes(take_array(rest)?);
        let client_addr = take_addr(rest)?;
        let upstream_addr = take_addr(rest)?;
        let source = take_str(rest)?;
        let scheme = take_str(rest)?;
        let host = take_str(rest)?;
        let error = match take_u8(rest)? {
            0 => None,
            1 => Some(take_str(rest)?),
            _ => return None,
        };
        let rewrites = RewritesView {
            packed: take_bytes(rest)?,
        };
        rest.is_empty().then_some(CaptureView {
            method,
            path_and_query,
            http_version,
            request_headers,
            response,
            request_body,
            started_at_us,
            wait_us,
            duration_us,
            client_addr,
            upstream_addr,
            source,
            scheme,
            host,
            error,
            rewrites,
        })
    }

    /// The path without its query string.
    pub fn path(&self) -> &'a str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query, |(path, _)| path)
    }
}

fn take_u8(rest: &mut &[u8]) -> Option<u8> {
    let (first, tail) = rest.split_first()?;
    *rest = tail;
    Some(*first)
}

fn take_array<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

fn take_bytes<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(take_array(rest)?) as usize;
    let bytes = rest.get(..len)?;
    *rest = &rest[len..];
    Some(bytes)
}

fn take_str<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    std::str::from_utf8(take_bytes(rest)?).ok()
}

fn take_body<'a>(rest: &mut &'a [u8]) -> Option<BodyView<'a>> {
    let data = take_bytes(rest)?;
    let wire_size = u64::from_le_bytes(take_array(rest)?);
    let truncated = take_u8(rest)? != 0;
    Some(BodyView {
        data,
        wire_size,
        truncated,
    })
}

fn take_addr<'a>(rest: &mut &'a [u8]) -> Option<Option<Addr<'a>>> {
    Some(match take_u8(rest)? {
        0 => None,
        1 => Some(Addr::Text(take_str(rest)?)),
        4 => {
            let ip = Ipv4Addr::from(take_array::<4>(rest)?);
            let port = u16::from_le_bytes(take_array(rest)?);
            Some(Addr::Socket(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        6 => {
            let ip = Ipv6Addr::from(take_array::<16>(rest)?);
            let port = u16::from_le_bytes(take_array(rest)?);
            let scope = u32::from_le_bytes(take_array(rest)?);
            Some(Addr::Socket(SocketAddr::V6(SocketAddrV6::new(
                ip, port, 0, scope,
            ))))
        }
        _ => return None,
    })
}

#[cfg(test)]
#[path = "capture_tests.rs"]
mod tests;
