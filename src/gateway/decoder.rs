//! The recorder's view of one gateway connection: raw WebSocket frames from both directions in,
//! decoded payloads out. Never fails as a whole: a corrupt frame is reported and skipped, and a
//! stream that cannot be decompressed is reported once, its later frames marked undecodable.
use serde_json::Value;

use super::codec::{CodecError, Encoding};
use super::compress::{
    self, CompressError, TransportCompression, ZlibStreamDecompressor, ZstdStreamDecompressor,
    DEFAULT_MAX_MESSAGE_SIZE,
};
use super::etf::{self, DecodeOptions, EtfError};
use super::payload::{GatewayPayload, OpCode};

/// Which peer sent a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (bot or official client) to the gateway.
    ClientToServer,
    /// From the gateway to the client.
    ServerToClient,
}

/// One WebSocket data or close frame, as tapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A text frame's bytes.
    Text(&'a [u8]),
    /// A binary frame's bytes.
    Binary(&'a [u8]),
    /// A close frame with its code and reason, if any.
    Close(Option<u16>, &'a str),
}

impl Frame<'_> {
    fn len(&self) -> usize {
        match self {
            Frame::Text(b) | Frame::Binary(b) => b.len(),
            Frame::Close(code, reason) => reason.len() + if code.is_some() { 2 } else { 0 },
        }
    }
}

/// The gateway URL's query: `v`, `encoding`, `compress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionParams {
    /// The `v` parameter, when given.
    pub version: Option<u8>,
    /// The `encoding` parameter (JSON when absent).
    pub encoding: Encoding,
    /// The `compress` parameter (none when absent).
    pub compression: TransportCompression,
}

/// A gateway URL query Discord would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// `v` is not a number.
    #[error("gateway version {0:?} is not a number")]
    BadVersion(String),
    /// `encoding` is neither `json` nor `etf`.
    #[error("gateway encoding {0:?} is not json or etf")]
    UnknownEncoding(String),
    /// `compress` is neither `zlib-stream` nor `zstd-stream`.
    #[error("gateway compression {0:?} is not zlib-stream or zstd-stream")]
    UnknownCompression(String),
}

impl ConnectionParams {
    /// Reads the parameters from a query string (`v=10&encoding=json`) or a whole URL.
    pub fn from_query(query: &str) -> Result<ConnectionParams, ParamsError> {
        let query = query.split_once('?').map_or(query, |(_, q)| q);
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        let mut params = ConnectionParams::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match percent_decode(key).as_str() {
                "v" => {
                    params.version = Some(
                        value
                            .parse()
                            .map_err(|_| ParamsError::BadVersion(value.clone()))?,
                    )
                }
                "encoding" => {
                    params.encoding = Encoding::from_query_value(&value)
                        .ok_or_else(|| ParamsError::UnknownEncoding(value.clone()))?
                }
                "compress" if value.is_empty() => params.compression = TransportCompression::None,
                "compress" => {
                    params.compression = TransportCompression::from_query_value(&value)
                        .ok_or_else(|| ParamsError::UnknownCompression(value.clone()))?
                }
                _ => {}
            }
        }
        Ok(params)
    }
}

fn percent_decode(text: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why one frame or payload could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    /// The transport stream could not be decompressed.
    #[error(transparent)]
    Decompress(#[from] CompressError),
    /// The decompressed payload could not be decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A payload was cut off by the next one; the bytes lost.
    #[error("payload was cut off: {0} bytes never completed before the next one started")]
    Truncated(usize),
    /// A payload grew past the size limit before completing.
    #[error("payload exceeds {limit} bytes before completing")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// One decoded payload with where and when it was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedPayload {
    /// Who sent it.
    pub direction: Direction,
    /// The caller's timestamp of the frame that completed this payload.
    pub timestamp: u64,
    /// Opcode.
    pub op: OpCode,
    /// Event name (dispatches only).
    pub t: Option<String>,
    /// Sequence number (dispatches only).
    pub s: Option<u64>,
    /// Wire bytes of the frames that completed this payload (0 for a second payload in one frame).
    pub raw_size: usize,
    /// Size of the payload's uncompressed encoded form.
    pub decoded_size: usize,
    /// The payload itself.
    pub payload: GatewayPayload,
}

/// What the decoder made of a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum DecoderEvent {
    /// A whole payload.
    Payload(DecodedPayload),
    /// A frame or payload that could not be decoded; it was skipped and decoding goes on.
    Corrupt {
        /// Who sent the frame.
        direction: Direction,
        /// The caller's timestamp of the frame.
        timestamp: u64,
        /// Wire bytes of the frame.
        raw_size: usize,
        /// What went wrong.
        error: FrameError,
    },
    /// The direction's compressed stream broke; said once, later frames are `Undecodable`.
    StreamFailed {
        /// Who sent the frame.
        direction: Direction,
        /// The caller's timestamp of the frame.
        timestamp: u64,
        /// What went wrong.
        error: FrameError,
    },
    /// A frame of a stream that already failed.
    Undecodable {
        /// Who sent the frame.
        direction: Direction,
        /// The caller's timestamp of the frame.
        timestamp: u64,
        /// Wire bytes of the frame.
        raw_size: usize,
    },
    /// A close frame.
    Closed {
        /// Who sent the frame.
        direction: Direction,
        /// The caller's timestamp of the frame.
        timestamp: u64,
        /// Close code, when the frame carries one.
        code: Option<u16>,
        /// Close reason (empty when none).
        reason: String,
    },
}

/// Reassembles payloads from decompressed bytes that may hold several or part of one.
#[derive(Default)]
struct Reassembly {
    pending: Vec<u8>,
    raw_pending: usize,
}

enum Transport {
    Plain,
    Zlib(ZlibStreamDecompressor),
    Zstd(ZstdStreamDecompressor),
    Failed,
}

/// Decodes one gateway connection's frames in both directions.
pub struct Decoder {
    params: ConnectionParams,
    server_transport: Transport,
    /// Why the server stream could not even start; reported with its first frame.
    startup_error: Option<CompressError>,
    server: Reassembly,
    payload_compression: bool,
    max_message_size: usize,
    etf_options: DecodeOptions,
}

impl Decoder {
    /// A decoder for a connection opened with `params`.
    pub fn new(params: ConnectionParams) -> Decoder {
        Decoder::with_max_message_size(params, DEFAULT_MAX_MESSAGE_SIZE)
    }

    /// A decoder refusing payloads over `max` bytes decompressed.
    pub fn with_max_message_size(params: ConnectionParams, max: usize) -> Decoder {
        let (server_transport, startup_error) = match params.compression {
            TransportCompression::None => (Transport::Plain, None),
            TransportCompression::ZlibStream => (
                Transport::Zlib(ZlibStreamDecompressor::with_max_message_size(max)),
                None,
            ),
            TransportCompression::ZstdStream => {
                match ZstdStreamDecompressor::with_max_message_size(max) {
                    Ok(z) => (Transport::Zstd(z), None),
                    Err(e) => (Transport::Failed, Some(e)),
                }
            }
        };
        Decoder {
            params,
            startup_error,
            server_transport,
            server: Reassembly::default(),
            payload_compression: false,
            max_message_size: max,
            etf_options: DecodeOptions {
                max_uncompressed_size: max,
                ..DecodeOptions::LENIENT
            },
        }
    }

    /// A decoder for the connection URL's query (or the whole URL).
    pub fn from_query(query: &str) -> Result<Decoder, ParamsError> {
        Ok(Decoder::new(ConnectionParams::from_query(query)?))
    }

    /// The connection parameters.
    pub fn params(&self) -> ConnectionParams {
        self.params
    }

    /// Whether the client asked for payload compression in IDENTIFY (`compress: true`).
    pub fn payload_compression(&self) -> bool {
        self.payload_compression
    }

    /// Takes one frame seen at `timestamp` going `direction`; returns what it decoded to.
    pub fn feed(
        &mut self,
        direction: Direction,
        timestamp: u64,
        frame: Frame<'_>,
    ) -> Vec<DecoderEvent> {
        let mut events = Vec::with_capacity(1);
        let raw_size = frame.len();
        match (direction, frame) {
            (_, Frame::Close(code, reason)) => events.push(DecoderEvent::Closed {
                direction,
                timestamp,
                code,
                reason: reason.to_owned(),
            }),
            // Text frames are never transport-compressed and always JSON.
            (_, Frame::Text(text)) => self.whole(
                direction,
                timestamp,
                raw_size,
                text,
                Encoding::Json,
                &mut events,
            ),
            // Clients never compress; their binary frames are ETF, or JSON from libraries that
            // send text as binary.
            (Direction::ClientToServer, Frame::Binary(data)) => {
                let encoding = if data.first() == Some(&etf::VERSION) {
                    Encoding::Etf
                } else {
                    Encoding::Json
                };
                self.whole(direction, timestamp, raw_size, data, encoding, &mut events)
            }
            (Direction::ServerToClient, Frame::Binary(data)) => {
                self.server_binary(timestamp, data, &mut events)
            }
        }
        for event in &events {
            if let DecoderEvent::Payload(p) = event {
                if p.direction == Direction::ClientToServer && p.op == OpCode::Identify {
                    if let Some(Value::Bool(compress)) = p.payload.d.get("compress") {
                        self.payload_compression = *compress;
                    }
                }
            }
        }
        events
    }

    /// Decodes a frame that holds exactly one payload.
    fn whole(
        &mut self,
        direction: Direction,
        timestamp: u64,
        raw_size: usize,
        bytes: &[u8],
        encoding: Encoding,
        events: &mut Vec<DecoderEvent>,
    ) {
        let options = self.etf_options;
        let decoded = match encoding {
            Encoding::Json => {
                serde_json::from_slice::<Value>(bytes).map_err(|e| CodecError::Json(e.to_string()))
            }
            Encoding::Etf => etf::decode(bytes, &options).map_err(CodecError::from),
        };
        match decoded.and_then(GatewayPayload::from_value) {
            Ok(payload) => events.push(payload_event(
                direction,
                timestamp,
                raw_size,
                bytes.len(),
                payload,
            )),
            Err(e) => events.push(DecoderEvent::Corrupt {
                direction,
                timestamp,
                raw_size,
                error: e.into(),
            }),
        }
    }

    fn server_binary(&mut self, timestamp: u64, data: &[u8], events: &mut Vec<DecoderEvent>) {
        let direction = Direction::ServerToClient;
        let raw_size = data.len();
        let result = match &mut self.server_transport {
            Transport::Failed => {
                if let Some(error) = self.startup_error.take() {
                    events.push(DecoderEvent::StreamFailed {
                        direction,
                        timestamp,
                        error: error.into(),
                    });
                    return;
                }
                events.push(DecoderEvent::Undecodable {
                    direction,
                    timestamp,
                    raw_size,
                });
                return;
            }
            Transport::Plain => {
                if self.params.encoding == Encoding::Json && compress::looks_like_zlib(data) {
                    // Payload compression: each binary frame is its own zlib stream.
                    match compress::decompress_payload(data, self.max_message_size) {
                        Ok(json) => self.whole(
                            direction,
                            timestamp,
                            raw_size,
                            &json,
                            Encoding::Json,
                            events,
                        ),
                        Err(e) => events.push(DecoderEvent::Corrupt {
                            direction,
                            timestamp,
                            raw_size,
                            error: e.into(),
                        }),
                    }
                } else {
                    let encoding = if data.first() == Some(&etf::VERSION) {
                        Encoding::Etf
                    } else {
                        Encoding::Json
                    };
                    self.whole(direction, timestamp, raw_size, data, encoding, events);
                }
                return;
            }
            Transport::Zlib(z) => z.push_frame(data).map(|m| m.map(<[u8]>::to_vec)),
            Transport::Zstd(z) => z.push_frame(data).map(|m| Some(m.to_vec())),
        };
        self.server.raw_pending += raw_size;
        match result {
            Ok(Some(bytes)) => self.reassemble(timestamp, raw_size, &bytes, events),
            Ok(None) => {}
            Err(error @ CompressError::TooLarge { .. }) => {
                events.push(DecoderEvent::Corrupt {
                    direction,
                    timestamp,
                    raw_size: std::mem::take(&mut self.server.raw_pending),
                    error: error.into(),
                });
                self.server.pending.clear();
            }
            Err(error) => {
                self.server_transport = Transport::Failed;
                self.server = Reassembly::default();
                events.push(DecoderEvent::StreamFailed {
                    direction,
                    timestamp,
                    error: error.into(),
                });
            }
        }
    }

    /// Appends decompressed bytes and takes every complete payload off the front.
    fn reassemble(
        &mut self,
        timestamp: u64,
        frame_raw_size: usize,
        bytes: &[u8],
        events: &mut Vec<DecoderEvent>,
    ) {
        let direction = Direction::ServerToClient;
        if !self.server.pending.is_empty() && self.whole_payloads(bytes) {
            // Peers send one payload per message, so a message that is complete on its own starts
            // fresh: what was carried over was cut off (e.g. a corrupt length), not continued here.
            events.push(DecoderEvent::Corrupt {
                direction,
                timestamp,
                raw_size: self.server.raw_pending - frame_raw_size,
                error: FrameError::Truncated(self.server.pending.len()),
            });
            self.server.pending.clear();
            self.server.raw_pending = frame_raw_size;
        }
        let carried = self.server.pending.len();
        self.server.pending.extend_from_slice(bytes);
        let mut start = 0;
        let mut carried_left = carried;
        while start < self.server.pending.len() {
            let rest = &self.server.pending[start..];
            let parsed = match self.params.encoding {
                Encoding::Json => parse_json_prefix(rest),
                Encoding::Etf => parse_etf_prefix(rest, &self.etf_options),
            };
            match parsed {
                Parsed::Complete(value, used) => {
                    let raw_size = std::mem::take(&mut self.server.raw_pending);
                    match GatewayPayload::from_value(value) {
                        Ok(payload) => events
                            .push(payload_event(direction, timestamp, raw_size, used, payload)),
                        Err(e) => events.push(DecoderEvent::Corrupt {
                            direction,
                            timestamp,
                            raw_size,
                            error: e.into(),
                        }),
                    }
                    start += used;
                    carried_left = carried_left.saturating_sub(used);
                }
                Parsed::Incomplete => break,
                Parsed::Blank => {
                    start = self.server.pending.len();
                }
                Parsed::Invalid(error) => {
                    if carried_left > 0 {
                        // A payload left incomplete by an earlier message: drop only it and
                        // retry where this message's bytes begin.
                        events.push(DecoderEvent::Corrupt {
                            direction,
                            timestamp,
                            raw_size: 0,
                            error: FrameError::Truncated(carried_left),
                        });
                        start += carried_left;
                        carried_left = 0;
                        continue;
                    }
                    events.push(DecoderEvent::Corrupt {
                        direction,
                        timestamp,
                        raw_size: std::mem::take(&mut self.server.raw_pending),
                        error: error.into(),
                    });
                    start = self.server.pending.len();
                }
            }
        }
        self.server.pending.drain(..start);
        if self.server.pending.len() > self.max_message_size {
            self.server.pending.clear();
            events.push(DecoderEvent::Corrupt {
                direction,
                timestamp,
                raw_size: std::mem::take(&mut self.server.raw_pending),
                error: FrameError::TooLarge {
                    limit: self.max_message_size,
                },
            });
        }
    }
}

impl Decoder {
    /// Whether `bytes` parse as nothing but complete gateway payloads (objects with an `op`).
    fn whole_payloads(&self, bytes: &[u8]) -> bool {
        let mut rest = bytes;
        let mut any = false;
        loop {
            let parsed = match self.params.encoding {
                Encoding::Json => parse_json_prefix(rest),
                Encoding::Etf => parse_etf_prefix(rest, &self.etf_options),
            };
            match parsed {
                Parsed::Complete(value, used) => {
                    if !value.get("op").is_some_and(Value::is_u64) {
                        return false;
                    }
                    any = true;
                    rest = &rest[used..];
                    if rest.is_empty() {
                        return true;
                    }
                }
                Parsed::Blank => return any,
                Parsed::Incomplete | Parsed::Invalid(_) => return false,
            }
        }
    }
}

fn payload_event(
    direction: Direction,
    timestamp: u64,
    raw_size: usize,
    decoded_size: usize,
    payload: GatewayPayload,
) -> DecoderEvent {
    DecoderEvent::Payload(DecodedPayload {
        direction,
        timestamp,
        op: payload.op,
        t: payload.t.clone(),
        s: payload.s,
        raw_size,
        decoded_size,
        payload,
    })
}

enum Parsed {
    Complete(Value, usize),
    Incomplete,
    /// Only whitespace left.
    Blank,
    Invalid(CodecError),
}

fn parse_json_prefix(bytes: &[u8]) -> Parsed {
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    match stream.next() {
        None => Parsed::Blank,
        Some(Ok(value)) => Parsed::Complete(value, stream.byte_offset()),
        Some(Err(e)) if e.is_eof() => Parsed::Incomplete,
        Some(Err(e)) => Parsed::Invalid(CodecError::Json(e.to_string())),
    }
}

fn parse_etf_prefix(bytes: &[u8], options: &DecodeOptions) -> Parsed {
    match etf::decode_prefix(bytes, options) {
        Ok((value, used)) => Parsed::Complete(value, used),
        Err(EtfError::UnexpectedEnd { .. }) => Parsed::Incomplete,
        Err(e) => Parsed::Invalid(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::compress::{ZlibStreamCompressor, ZstdStreamCompressor};
    use serde_json::json;

    fn payloads(events: &[DecoderEvent]) -> Vec<&DecodedPayload> {
        events
            .iter()
            .filter_map(|e| match e {
                DecoderEvent::Payload(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn params_come_from_the_query() {
        let p = ConnectionParams::from_query(
            "wss://gateway.discord.gg/?encoding=etf&v=9&compress=zstd-stream",
        )
        .unwrap();
        assert_eq!(
            p,
            ConnectionParams {
                version: Some(9),
                encoding: Encoding::Etf,
                compression: TransportCompression::ZstdStream
            }
        );
        assert_eq!(
            ConnectionParams::from_query("").unwrap(),
            ConnectionParams::default()
        );
        assert_eq!(
            ConnectionParams::from_query("v=10&compress=zlib%2Dstream")
                .unwrap()
                .compression,
            TransportCompression::ZlibStream
        );
        assert_eq!(
            ConnectionParams::from_query("encoding=xml"),
            Err(ParamsError::UnknownEncoding("xml".into()))
        );
        assert_eq!(
            ConnectionParams::from_query("compress=gzip"),
            Err(ParamsError::UnknownCompression("gzip".into()))
        );
        assert_eq!(
            ConnectionParams::from_query("v=ten"),
            Err(ParamsError::BadVersion("ten".into()))
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn decodes_both_directions_of_a_zlib_stream_connection() {
        let mut decoder = Decoder::from_query("v=10&encoding=json&compress=zlib-stream").unwrap();
        let mut tx = ZlibStreamCompressor::new();
        let hello = tx
            .compress(br#"{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}"#)
            .unwrap();
        let events = decoder.feed(Direction::ServerToClient, 1, Frame::Binary(&hello));
        let got = payloads(&events);
        assert_eq!(
            (got[0].op, got[0].timestamp, got[0].raw_size),
            (OpCode::Hello, 1, hello.len())
        );

        let identify = br#"{"op":2,"d":{"token":"x","properties":{},"compress":false}}"#;
        let events = decoder.feed(Direction::ClientToServer, 2, Frame::Text(identify));
        assert_eq!(payloads(&events)[0].op, OpCode::Identify);

        let ready = tx
            .compress(br#"{"op":0,"d":{"v":10},"s":1,"t":"READY"}"#)
            .unwrap();
        let (a, b) = ready.split_at(3);
        assert!(decoder
            .feed(Direction::ServerToClient, 3, Frame::Binary(a))
            .is_empty());
        let events = decoder.feed(Direction::ServerToClient, 4, Frame::Binary(b));
        let got = payloads(&events);
        assert_eq!(
            (
                got[0].t.as_deref(),
                got[0].s,
                got[0].timestamp,
                got[0].raw_size
            ),
            (Some("READY"), Some(1), 4, ready.len())
        );
    }

    #[test]
    fn a_broken_stream_is_reported_once() {
        let mut decoder = Decoder::from_query("compress=zlib-stream").unwrap();
        let events = decoder.feed(
            Direction::ServerToClient,
            1,
            Frame::Binary(b"garbage\x00\x00\xff\xff"),
        );
        assert!(
            matches!(events[..], [DecoderEvent::StreamFailed { .. }]),
            "{events:?}"
        );
        for t in 2..5 {
            let events = decoder.feed(
                Direction::ServerToClient,
                t,
                Frame::Binary(b"more\x00\x00\xff\xff"),
            );
            assert_eq!(
                events,
                vec![DecoderEvent::Undecodable {
                    direction: Direction::ServerToClient,
                    timestamp: t,
                    raw_size: 8
                }]
            );
        }
        // The client direction is unaffected.
        let events = decoder.feed(
            Direction::ClientToServer,
            9,
            Frame::Text(br#"{"op":1,"d":null}"#),
        );
        assert_eq!(payloads(&events)[0].op, OpCode::Heartbeat);
    }

    #[test]
    fn corrupt_payloads_are_skipped_and_decoding_goes_on() {
        let mut decoder = Decoder::from_query("compress=zstd-stream").unwrap();
        let mut tx = ZstdStreamCompressor::new().unwrap();
        let bad = tx.compress(b"{\"op\": nope}").unwrap();
        let events = decoder.feed(Direction::ServerToClient, 1, Frame::Binary(&bad));
        assert!(
            matches!(
                events[..],
                [DecoderEvent::Corrupt {
                    error: FrameError::Codec(_),
                    ..
                }]
            ),
            "{events:?}"
        );
        let good = tx.compress(b"{\"op\":11}").unwrap();
        let events = decoder.feed(Direction::ServerToClient, 2, Frame::Binary(&good));
        assert_eq!(payloads(&events)[0].op, OpCode::HeartbeatAck);
        // A payload cut short by its sender is dropped alone.
        let cut = tx.compress(b"{\"op\":0,\"d\":{\"a\"").unwrap();
        assert!(decoder
            .feed(Direction::ServerToClient, 3, Frame::Binary(&cut))
            .is_empty());
        let next = tx.compress(b"{\"op\":1,\"d\":7}").unwrap();
        let events = decoder.feed(Direction::ServerToClient, 4, Frame::Binary(&next));
        assert!(
            matches!(
                events[0],
                DecoderEvent::Corrupt {
                    error: FrameError::Truncated(16),
                    ..
                }
            ),
            "{events:?}"
        );
        assert_eq!(payloads(&events)[0].payload.d, json!(7));
        // Valid JSON that is not a payload is reported too.
        let events = decoder.feed(Direction::ClientToServer, 5, Frame::Text(b"[1,2]"));
        assert!(matches!(
            events[..],
            [DecoderEvent::Corrupt {
                error: FrameError::Codec(CodecError::NotAPayload(_)),
                ..
            }]
        ));
    }

    #[test]
    fn a_corrupt_length_does_not_swallow_later_payloads() {
        let mut decoder = Decoder::from_query("encoding=etf&compress=zstd-stream").unwrap();
        let mut tx = ZstdStreamCompressor::new().unwrap();
        // A binary claiming 1 GiB: it can only ever look incomplete.
        let bad = tx
            .compress(b"\x83t\x00\x00\x00\x01m\x00\x00\x00\x02opm\x40\x00\x00\x00ab")
            .unwrap();
        assert!(decoder
            .feed(Direction::ServerToClient, 1, Frame::Binary(&bad))
            .is_empty());
        let good = tx
            .compress(&etf::encode(&json!({"op": 11})).unwrap())
            .unwrap();
        let events = decoder.feed(Direction::ServerToClient, 2, Frame::Binary(&good));
        assert!(
            matches!(
                events[0],
                DecoderEvent::Corrupt {
                    raw_size,
                    error: FrameError::Truncated(20),
                    ..
                } if raw_size == bad.len()
            ),
            "{events:?}"
        );
        assert_eq!(payloads(&events)[0].op, OpCode::HeartbeatAck);
        assert_eq!(payloads(&events)[0].raw_size, good.len());
    }

    #[test]
    fn payload_compression_is_detected_from_identify() {
        let mut decoder = Decoder::from_query("v=10&encoding=json").unwrap();
        assert!(!decoder.payload_compression());
        decoder.feed(
            Direction::ClientToServer,
            1,
            Frame::Text(br#"{"op":2,"d":{"token":"x","compress":true}}"#),
        );
        assert!(decoder.payload_compression());
        let mut tx = compress::PayloadCompressor::new();
        let mut frame = Vec::new();
        tx.compress_into(br#"{"op":0,"s":1,"t":"READY","d":{}}"#, &mut frame)
            .unwrap();
        let events = decoder.feed(Direction::ServerToClient, 2, Frame::Binary(&frame));
        assert_eq!(payloads(&events)[0].t.as_deref(), Some("READY"));
        // Uncompressed payloads still come as text frames.
        let events = decoder.feed(Direction::ServerToClient, 3, Frame::Text(br#"{"op":11}"#));
        assert_eq!(payloads(&events)[0].op, OpCode::HeartbeatAck);
        // A broken compressed payload is skipped; each one stands alone.
        let events = decoder.feed(
            Direction::ServerToClient,
            4,
            Frame::Binary(&frame[..frame.len() - 3]),
        );
        assert!(matches!(events[..], [DecoderEvent::Corrupt { .. }]));
    }

    #[test]
    fn etf_connections_decode_both_directions() {
        let mut decoder = Decoder::from_query("encoding=etf").unwrap();
        let client = etf::encode(&json!({"op": 1, "d": 5})).unwrap();
        let events = decoder.feed(Direction::ClientToServer, 1, Frame::Binary(&client));
        assert_eq!(payloads(&events)[0].payload.d, json!(5));
        // The server uses atom keys; recording takes them.
        let server = b"\x83t\x00\x00\x00\x01s\x02opa\x0b";
        let events = decoder.feed(Direction::ServerToClient, 2, Frame::Binary(server));
        assert_eq!(payloads(&events)[0].op, OpCode::HeartbeatAck);
        let events = decoder.feed(
            Direction::ServerToClient,
            3,
            Frame::Close(Some(4004), "Authentication failed."),
        );
        assert!(
            matches!(&events[0], DecoderEvent::Closed { code: Some(4004), reason, .. } if reason == "Authentication failed.")
        );
    }
}
