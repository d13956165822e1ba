//! What a recording holds: REST exchanges, gateway sessions and their frames.
use serde::{Deserialize, Serialize, Serializer};

/// Writes bytes in one piece rather than element by element. In postcard both are a length
/// then the bytes, so records read the same either way (and older ones still read); the
/// recorder just spends less time per body.
fn as_bytes<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// One header line as it went over the wire (value bytes kept as sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Header name, lower case.
    pub name: String,
    /// Header value bytes.
    #[serde(serialize_with = "as_bytes")]
    pub value: Vec<u8>,
}

impl Header {
    /// The value as text (lossy for non-UTF-8 bytes).
    pub fn value_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.value)
    }
}

/// A request or response body as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyRecord {
    /// The body after undoing `encoding` (or the wire bytes when decoding failed).
    #[serde(serialize_with = "as_bytes")]
    pub data: Vec<u8>,
    /// The original `Content-Encoding` (gzip, br, deflate, zstd), if any.
    pub encoding: Option<String>,
    /// Bytes that went over the wire.
    pub wire_size: u64,
    /// True when the body was longer than the recording limit and `data` is cut.
    pub truncated: bool,
    /// Why `data` could not be decoded from `encoding`, if it could not.
    pub decode_error: Option<String>,
}

/// A recorded HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseRecord {
    /// Status code.
    pub status: u16,
    /// Headers as received from upstream (before Alt-Svc was stripped for the client).
    pub headers: Vec<Header>,
    /// Body.
    pub body: BodyRecord,
}

/// One REST exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// Monotonic id, assigned by the store.
    pub id: u64,
    /// When the request arrived, microseconds since the Unix epoch.
    pub started_at_us: i64,
    /// Until the response headers arrived, microseconds.
    pub wait_us: Option<u64>,
    /// Until the response body ended (or the exchange failed), microseconds.
    pub duration_us: u64,
    /// Who sent the request.
    pub client_addr: String,
    /// The upstream socket address, when one was reached.
    pub upstream_addr: Option<String>,
    /// Who answered: `upstream`, `backend`, `recording`, `none`, `proxy` (an error we made).
    pub source: String,
    /// HTTP method.
    pub method: String,
    /// Scheme (`https` or `http`).
    pub scheme: String,
    /// Host (without port unless it was not the scheme's default).
    pub host: String,
    /// Path and query as sent (query tokens redacted).
    pub path_and_query: String,
    /// HTTP version of the client's request (`HTTP/1.1`).
    pub http_version: String,
    /// Request headers.
    pub request_headers: Vec<Header>,
    /// Request body.
    pub request_body: BodyRecord,
    /// The response, absent when none was received.
    pub response: Option<ResponseRecord>,
    /// What went wrong, if anything (connect failure, reset, client gone).
    pub error: Option<String>,
    /// Where secrets were replaced, e.g. `request.header.authorization`, `request.body.password`.
    pub redactions: Vec<String>,
    /// What `serve` changed on the way (identity rules): ids swapped, credentials replaced.
    /// Empty for everything `record` records.
    pub rewrites: Vec<Rewrite>,
}

/// One change `serve` made to an exchange on its way through: which kind, and the ids it
/// swapped. Never holds a token: a replaced credential is named by its owner's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    /// What was changed, e.g. `authorization`, `request-id`, `response-id`, `replay-id`.
    pub kind: String,
    /// The value before (an id, or a description such as `local user 1234`).
    pub from: String,
    /// The value after.
    pub to: String,
}

/// An exchange as stored before [`Exchange::rewrites`] existed (layout versions 1 and 2).
#[derive(Debug, Deserialize)]
pub(crate) struct LegacyExchange {
    id: u64,
    started_at_us: i64,
    wait_us: Option<u64>,
    duration_us: u64,
    client_addr: String,
    upstream_addr: Option<String>,
    source: String,
    method: String,
    scheme: String,
    host: String,
    path_and_query: String,
    http_version: String,
    request_headers: Vec<Header>,
    request_body: BodyRecord,
    response: Option<ResponseRecord>,
    error: Option<String>,
    redactions: Vec<String>,
}

impl From<LegacyExchange> for Exchange {
    fn from(old: LegacyExchange) -> Exchange {
        Exchange {
            id: old.id,
            started_at_us: old.started_at_us,
            wait_us: old.wait_us,
            duration_us: old.duration_us,
            client_addr: old.client_addr,
            upstream_addr: old.upstream_addr,
            source: old.source,
            method: old.method,
            scheme: old.scheme,
            host: old.host,
            path_and_query: old.path_and_query,
            http_version: old.http_version,
            request_headers: old.request_headers,
            request_body: old.request_body,
            response: old.response,
            error: old.error,
            redactions: old.redactions,
            rewrites: Vec::new(),
        }
    }
}

impl Exchange {
    /// `scheme://host/path?query`.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path_and_query)
    }

    /// The path without its query string.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(path, _)| path)
    }

    /// The status received, or the one the proxy answered with.
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|res| res.status)
    }
}

/// Which way a gateway frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// From the client (official client, bot) to Discord.
    ClientToServer,
    /// From Discord to the client.
    ServerToClient,
}

impl Direction {
    /// Key byte.
    pub fn as_byte(self) -> u8 {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
    /// Short name: `send` (client to server) or `receive`, as Chrome's HAR says it.
    pub fn har_type(self) -> &'static str {
        match self {
            Direction::ClientToServer => "send",
            Direction::ServerToClient => "receive",
        }
    }
}

/// A WebSocket close as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseRecord {
    /// Who sent it.
    pub direction: Direction,
    /// Close code (e.g. 4004 authentication failed).
    pub code: Option<u16>,
    /// Close reason text.
    pub reason: String,
    /// When, microseconds since the Unix epoch.
    pub at_us: i64,
}

/// One gateway connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewaySession {
    /// Monotonic id, assigned by the store.
    pub id: u64,
    /// When the upgrade request arrived.
    pub started_at_us: i64,
    /// When both directions were done; absent while open (or when the recorder died).
    pub ended_at_us: Option<i64>,
    /// Who connected.
    pub client_addr: String,
    /// Upstream socket address, when reached.
    pub upstream_addr: Option<String>,
    /// `wss://host/path?query` (query tokens redacted).
    pub url: String,
    /// Host.
    pub host: String,
    /// `v` query parameter.
    pub version: Option<String>,
    /// `encoding` query parameter (json, etf).
    pub encoding: Option<String>,
    /// `compress` query parameter (zlib-stream, zstd-stream).
    pub compress: Option<String>,
    /// Upgrade request headers.
    pub request_headers: Vec<Header>,
    /// Upstream's handshake status (101 normally).
    pub status: Option<u16>,
    /// Close frames seen, in order.
    pub closes: Vec<CloseRecord>,
    /// Frames recorded per direction: client to server.
    pub frames_sent: u64,
    /// Frames recorded: server to client.
    pub frames_received: u64,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// Where secrets were replaced.
    pub redactions: Vec<String>,
    /// What `serve` changed on the relayed session (identity rules): the IDENTIFY/RESUME
    /// credential replaced (named by its owner's id, never the token), ids swapped. Each
    /// change once; empty for everything `record` records.
    pub rewrites: Vec<Rewrite>,
}

/// A gateway session as stored before [`GatewaySession::rewrites`] existed.
#[derive(Debug, Deserialize)]
pub(crate) struct LegacyGatewaySession {
    id: u64,
    started_at_us: i64,
    ended_at_us: Option<i64>,
    client_addr: String,
    upstream_addr: Option<String>,
    url: String,
    host: String,
    version: Option<String>,
    encoding: Option<String>,
    compress: Option<String>,
    request_headers: Vec<Header>,
    status: Option<u16>,
    closes: Vec<CloseRecord>,
    frames_sent: u64,
    frames_received: u64,
    error: Option<String>,
    redactions: Vec<String>,
}

impl From<LegacyGatewaySession> for GatewaySession {
    fn from(old: LegacyGatewaySession) -> GatewaySession {
        GatewaySession {
            id: old.id,
            started_at_us: old.started_at_us,
            ended_at_us: old.ended_at_us,
            client_addr: old.client_addr,
            upstream_addr: old.upstream_addr,
            url: old.url,
            host: old.host,
            version: old.version,
            encoding: old.encoding,
            compress: old.compress,
            request_headers: old.request_headers,
            status: old.status,
            closes: old.closes,
            frames_sent: old.frames_sent,
            frames_received: old.frames_received,
            error: old.error,
            redactions: old.redactions,
            rewrites: Vec::new(),
        }
    }
}

/// The WebSocket message type of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameKind {
    /// Text message.
    Text,
    /// Binary message.
    Binary,
    /// Close frame.
    Close,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
}

/// One WebSocket message of a gateway session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The session.
    pub session_id: u64,
    /// Which way.
    pub direction: Direction,
    /// Position within this direction, from 0.
    pub seq: u64,
    /// When the proxy saw it, microseconds since the Unix epoch.
    pub at_us: i64,
    /// Message type.
    pub kind: FrameKind,
    /// Size on the wire (payload bytes, compressed as sent).
    pub raw_size: u64,
    /// Gateway opcode, when decoded.
    pub op: Option<u8>,
    /// Dispatch event name.
    pub t: Option<String>,
    /// Sequence number.
    pub s: Option<u64>,
    /// The decoded payload as JSON text (secrets redacted); absent when this frame only
    /// carried part of a compressed message or could not be decoded.
    pub payload: Option<String>,
    /// The wire bytes, kept only when the frame could not be decoded (so nothing is lost).
    pub raw: Option<Vec<u8>>,
    /// Why decoding failed.
    pub decode_error: Option<String>,
    /// True when something in `payload` was redacted.
    pub redacted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout these records had before bytes were written in one piece.
    #[derive(Serialize)]
    struct ElementWiseHeader {
        name: String,
        value: Vec<u8>,
    }

    #[test]
    fn exchanges_stored_before_rewrites_existed_still_read() {
        let exchange = crate::store::tests::sample_exchange("/api/v9/users/@me");
        let bytes = postcard::to_stdvec(&exchange).unwrap();
        // The older layout is this one without the trailing (empty) rewrites list.
        assert_eq!(bytes.last(), Some(&0));
        let old: LegacyExchange = postcard::from_bytes(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(Exchange::from(old), exchange);
    }

    #[test]
    fn bytes_in_one_piece_are_the_same_postcard_as_element_by_element() {
        for value in [Vec::new(), b"Bot abc".to_vec(), vec![0xff; 300]] {
            let header = Header {
                name: "authorization".into(),
                value: value.clone(),
            };
            let old = ElementWiseHeader {
                name: header.name.clone(),
                value,
            };
            let bytes = postcard::to_stdvec(&header).unwrap();
            assert_eq!(bytes, postcard::to_stdvec(&old).unwrap());
            assert_eq!(postcard::from_bytes::<Header>(&bytes).unwrap(), header);
        }
    }
}
