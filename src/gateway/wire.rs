//! Events encoded once and framed per connection: a [`Prepared`] dispatch carries its `d`
//! encoded lazily per encoding, and for zlib-stream its deflated body (both shared by every
//! session it fans out to); a [`Framer`] turns payloads into WebSocket messages with the
//! connection's encoding and compression.
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::codec::{self, CodecError, Encoding};
use super::compress::{
    CompressError, PayloadCompressor, TransportCompression, ZlibStreamCompressor,
    ZstdStreamCompressor,
};
use super::decoder::ConnectionParams;
use super::deflate::{self, ZLIB_HEADER};
use super::etf::DecodeOptions;
use super::GatewayPayload;

/// A dispatch ready to be numbered and sent to any number of sessions.
#[derive(Debug)]
pub struct Prepared {
    /// Event name (`t`).
    pub name: String,
    /// Event data (`d`); dropped by [`Prepared::compact`] once encoded.
    d: Option<Value>,
    json: OnceLock<Result<Vec<u8>, CodecError>>,
    etf: OnceLock<Result<Vec<u8>, CodecError>>,
    /// zlib-stream body per encoding (JSON, ETF).
    spliced: [OnceLock<Result<Spliced, FrameError>>; 2],
}

/// A dispatch's zlib-stream body: everything up to the end of `d`, deflated on its own.
#[derive(Debug)]
struct Spliced {
    /// Bytes of the dispatch before `d` (`{"op":0,"d":` in JSON).
    header_len: usize,
    /// Header and `d`, deflated without references outside it, ending in a sync flush.
    deflated: Vec<u8>,
    /// Length of header and `d` before deflating.
    plain_len: usize,
}

/// Length of the part of an encoded dispatch before its `d`.
fn dispatch_header_len(encoding: Encoding) -> Result<usize, CodecError> {
    let (mut empty, mut one) = (Vec::new(), Vec::new());
    codec::encode_dispatch_with_data("", 0, b"", encoding, &mut empty)?;
    codec::encode_dispatch_with_data("", 0, b"\x01", encoding, &mut one)?;
    Ok(empty.iter().zip(&one).take_while(|(a, b)| a == b).count())
}

impl Prepared {
    /// A shared dispatch of `name` with data `d`.
    pub fn new(name: impl Into<String>, d: Value) -> Arc<Prepared> {
        Arc::new(Prepared {
            name: name.into(),
            d: Some(d),
            json: OnceLock::new(),
            etf: OnceLock::new(),
            spliced: Default::default(),
        })
    }

    /// A shared dispatch of `name` whose data is already JSON text (`json` must be one JSON
    /// value; ETF is transcoded from it when asked for).
    pub fn from_json(name: impl Into<String>, json: Vec<u8>) -> Arc<Prepared> {
        let prepared = Prepared {
            name: name.into(),
            d: None,
            json: OnceLock::new(),
            etf: OnceLock::new(),
            spliced: Default::default(),
        };
        let _ = prepared.json.set(Ok(json));
        Arc::new(prepared)
    }

    /// The event data, unless compacted.
    pub fn value(&self) -> Option<&Value> {
        self.d.as_ref()
    }

    /// The event data, decoded again from its JSON encoding when compacted (for readers off
    /// the hot path, such as the test-control event log on a RESUME's replay).
    pub fn value_or_decoded(&self) -> Option<std::borrow::Cow<'_, Value>> {
        if let Some(d) = &self.d {
            return Some(std::borrow::Cow::Borrowed(d));
        }
        let json = self.data(Encoding::Json).ok()?;
        serde_json::from_slice(json)
            .ok()
            .map(std::borrow::Cow::Owned)
    }

    fn cell(&self, encoding: Encoding) -> &OnceLock<Result<Vec<u8>, CodecError>> {
        match encoding {
            Encoding::Json => &self.json,
            Encoding::Etf => &self.etf,
        }
    }

    /// `d` encoded in `encoding` (computed once, then shared; transcoded when compacted).
    pub fn data(&self, encoding: Encoding) -> Result<&[u8], CodecError> {
        self.cell(encoding)
            .get_or_init(|| {
                let mut out = Vec::with_capacity(256);
                match &self.d {
                    Some(d) => codec::encode_data(d, encoding, &mut out).map(|()| out),
                    None => self.transcoded(encoding),
                }
            })
            .as_ref()
            .map(Vec::as_slice)
            .map_err(Clone::clone)
    }

    fn transcoded(&self, encoding: Encoding) -> Result<Vec<u8>, CodecError> {
        let other = match encoding {
            Encoding::Json => Encoding::Etf,
            Encoding::Etf => Encoding::Json,
        };
        let Some(Ok(source)) = self.cell(other).get() else {
            return Err(CodecError::NotAPayload(
                "compacted event lost its data".into(),
            ));
        };
        let mut out = Vec::with_capacity(source.len() + 16);
        match other {
            // ETF fragments are terms without the version byte; the transcoder wants it.
            Encoding::Etf => {
                let mut whole = Vec::with_capacity(source.len() + 1);
                whole.push(super::etf::VERSION);
                whole.extend_from_slice(source);
                codec::transcode(&whole, other, encoding, &DecodeOptions::LENIENT, &mut out)?;
            }
            Encoding::Json => {
                codec::transcode(source, other, encoding, &DecodeOptions::LENIENT, &mut out)?;
                out.remove(0);
            }
        }
        Ok(out)
    }

    /// The zlib-stream body for `encoding` (deflated at `level` by the first session asking).
    fn spliced(&self, encoding: Encoding, level: u32) -> Result<&Spliced, FrameError> {
        let index = match encoding {
            Encoding::Json => 0,
            Encoding::Etf => 1,
        };
        self.spliced[index]
            .get_or_init(|| {
                let data = self.data(encoding)?;
                let header_len = dispatch_header_len(encoding)?;
                let mut plain = Vec::with_capacity(header_len + data.len() + 64);
                codec::encode_dispatch_with_data(&self.name, 0, data, encoding, &mut plain)?;
                plain.truncate(header_len + data.len());
                let mut deflated = Vec::new();
                deflate::standalone(&plain, level, &mut deflated)?;
                Ok(Spliced {
                    header_len,
                    deflated,
                    plain_len: plain.len(),
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A copy holding only the encoding `encoding` of `d` (replay buffers keep these: a
    /// session's own READY and GUILD_CREATE cost their wire size, not a JSON tree).
    pub fn compact(&self, encoding: Encoding) -> Result<Arc<Prepared>, CodecError> {
        let data = self.data(encoding)?.to_vec();
        let compact = Prepared {
            name: self.name.clone(),
            d: None,
            json: OnceLock::new(),
            etf: OnceLock::new(),
            spliced: Default::default(),
        };
        let _ = compact.cell(encoding).set(Ok(data));
        Ok(Arc::new(compact))
    }
}

/// Why a payload could not be framed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    /// The payload could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The encoded payload could not be compressed.
    #[error(transparent)]
    Compress(#[from] CompressError),
}

enum Transport {
    None,
    /// zlib-stream, every message deflated on its own (see [`deflate`]); `started` once the
    /// zlib header went out.
    Zlib {
        started: bool,
        level: u32,
    },
    /// zlib-stream with one compressor (and history) per connection: smaller output, more
    /// memory, every message deflated per session.
    ZlibHistory(Box<ZlibStreamCompressor>),
    Zstd(Box<ZstdStreamCompressor>),
}

/// History window of per-connection zlib-stream compressors (every inflater reads it; it
/// saves 64 KiB per connection over 15 bits).
const ZLIB_WINDOW_BITS: u8 = 14;

/// One connection's outgoing encoder: encoding, transport compression, payload compression.
pub struct Framer {
    encoding: Encoding,
    transport: Transport,
    payload_zlib: Option<Box<PayloadCompressor>>,
    scratch: Vec<u8>,
    /// zlib-stream bytes so far, inflated and as sent: see [`Framer::balance_zlib`].
    zlib_plain: u64,
    zlib_sent: u64,
}

/// Whitespace a JSON zlib-stream message may end with (see [`Framer::balance_zlib`]).
const JSON_PADDING: [u8; 4096] = [b' '; 4096];

/// Scratch space kept between messages; a larger one (after a big READY) is released.
const SCRATCH_KEEP: usize = 4096;

impl Framer {
    /// A framer for a connection opened with `params`; zlib-stream deflates at `zlib_level`,
    /// each message on its own.
    pub fn new(params: &ConnectionParams, zlib_level: u32) -> Result<Framer, CompressError> {
        Framer::with_zlib_history(params, zlib_level, false)
    }

    /// Like [`Framer::new`]; with `history`, zlib-stream keeps a compressor per connection
    /// whose history spans messages.
    pub fn with_zlib_history(
        params: &ConnectionParams,
        zlib_level: u32,
        history: bool,
    ) -> Result<Framer, CompressError> {
        let transport = match params.compression {
            TransportCompression::None => Transport::None,
            TransportCompression::ZlibStream if history => Transport::ZlibHistory(Box::new(
                ZlibStreamCompressor::with_level_and_window(zlib_level, ZLIB_WINDOW_BITS),
            )),
            TransportCompression::ZlibStream => Transport::Zlib {
                started: false,
                level: zlib_level,
            },
            TransportCompression::ZstdStream => {
                Transport::Zstd(Box::new(ZstdStreamCompressor::new()?))
            }
        };
        Ok(Framer {
            encoding: params.encoding,
            transport,
            payload_zlib: None,
            scratch: Vec::new(),
            zlib_plain: 0,
            zlib_sent: 0,
        })
    }

    /// The connection's encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// IDENTIFY `compress: true`: from now on every payload is its own zlib stream (binary
    /// frames). Ignored under transport compression, as Discord does.
    pub fn enable_payload_compression(&mut self) {
        if matches!(self.transport, Transport::None) && self.payload_zlib.is_none() {
            self.payload_zlib = Some(Box::default());
        }
    }

    /// Frames a whole payload (HELLO, ACK, op 7/9, replayed dispatches).
    pub fn payload(&mut self, payload: &GatewayPayload) -> Result<Message, FrameError> {
        self.scratch.clear();
        codec::encode_payload_into(payload, self.encoding, &mut self.scratch)?;
        self.finish()
    }

    /// Frames dispatch `seq` of a prepared event.
    pub fn dispatch(&mut self, event: &Prepared, seq: u64) -> Result<Message, FrameError> {
        self.scratch.clear();
        if let Transport::Zlib { started, level } = &mut self.transport {
            // The shared deflated body, then this session's `s` and `t` as a stored block.
            let spliced = event.spliced(self.encoding, *level)?;
            codec::encode_dispatch_with_data(
                &event.name,
                seq,
                b"",
                self.encoding,
                &mut self.scratch,
            )?;
            let tail = self.scratch.get(spliced.header_len..).unwrap_or_default();
            let mut out = Vec::with_capacity(spliced.deflated.len() + tail.len() + 16);
            if !*started {
                out.extend_from_slice(&ZLIB_HEADER);
                *started = true;
            }
            out.extend_from_slice(&spliced.deflated);
            deflate::stored(tail, &mut out);
            let plain = spliced.plain_len + tail.len();
            self.balance_zlib(plain, &mut out)?;
            return Ok(Message::binary(out));
        }
        let data = event.data(self.encoding)?;
        codec::encode_dispatch_with_data(&event.name, seq, data, self.encoding, &mut self.scratch)?;
        self.finish()
    }

    /// Counts one zlib-stream message of `plain` bytes sent as `out`. While a JSON stream has
    /// sent more bytes than it inflates to, the message gets trailing whitespace (which any
    /// JSON parser skips, and which deflates to a few bytes): twilight-gateway 0.16's inflater
    /// subtracts these totals after every message and panics in debug builds if the stream
    /// ever grew, which tiny messages (HELLO, heartbeat ACKs) can make it do.
    fn balance_zlib(&mut self, plain: usize, out: &mut Vec<u8>) -> Result<(), CompressError> {
        self.zlib_plain += plain as u64;
        self.zlib_sent += out.len() as u64;
        while self.encoding == Encoding::Json && self.zlib_sent > self.zlib_plain {
            let deficit = (self.zlib_sent - self.zlib_plain) as usize;
            let padding = &JSON_PADDING[..(deficit + 64).min(JSON_PADDING.len())];
            let before = out.len();
            match &mut self.transport {
                Transport::Zlib { level, .. } => deflate::standalone(padding, *level, out)?,
                Transport::ZlibHistory(zlib) => zlib.compress_into(padding, out)?,
                Transport::None | Transport::Zstd(_) => return Ok(()),
            }
            let added = out.len() - before;
            self.zlib_plain += padding.len() as u64;
            self.zlib_sent += added as u64;
            if added >= padding.len() {
                // Whitespace that does not compress: nothing more can be done.
                break;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<Message, FrameError> {
        let message = match &mut self.transport {
            Transport::Zlib { started, level } => {
                let mut out = Vec::with_capacity(self.scratch.len() / 2 + 32);
                if !*started {
                    out.extend_from_slice(&ZLIB_HEADER);
                    *started = true;
                }
                deflate::standalone(&self.scratch, *level, &mut out)?;
                self.balance_zlib(self.scratch.len(), &mut out)?;
                Message::binary(out)
            }
            Transport::ZlibHistory(zlib) => {
                let mut out = Vec::with_capacity(self.scratch.len() / 3 + 32);
                zlib.compress_into(&self.scratch, &mut out)?;
                self.balance_zlib(self.scratch.len(), &mut out)?;
                Message::binary(out)
            }
            Transport::Zstd(zstd) => {
                let mut out = Vec::with_capacity(self.scratch.len() / 3 + 32);
                zstd.compress_into(&self.scratch, &mut out)?;
                Message::binary(out)
            }
            Transport::None => match &mut self.payload_zlib {
                Some(zlib) => {
                    let mut out = Vec::with_capacity(self.scratch.len() / 3 + 32);
                    zlib.compress_into(&self.scratch, &mut out)?;
                    Message::binary(out)
                }
                None if self.encoding == Encoding::Json => {
                    match String::from_utf8(self.scratch.clone()) {
                        Ok(text) => Message::text(text),
                        Err(e) => return Err(CodecError::Json(e.to_string()).into()),
                    }
                }
                None => Message::binary(self.scratch.clone()),
            },
        };
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::compress::{decompress_payload, ZlibStreamDecompressor};
    use crate::gateway::OpCode;
    use serde_json::json;

    fn params(query: &str) -> ConnectionParams {
        ConnectionParams::from_query(query).unwrap()
    }

    #[test]
    fn json_uncompressed_is_text_and_etf_is_binary() {
        let event = Prepared::new("MESSAGE_CREATE", json!({"content": "ping"}));
        let mut framer = Framer::new(&params("v=10&encoding=json"), 6).unwrap();
        let Message::Text(text) = framer.dispatch(&event, 3).unwrap() else {
            panic!("json must be text")
        };
        let decoded: GatewayPayload = serde_json::from_str(text.as_str()).unwrap();
        assert_eq!(
            decoded,
            GatewayPayload::dispatch("MESSAGE_CREATE", 3, event.value().unwrap().clone())
        );
        let mut framer = Framer::new(&params("v=10&encoding=etf"), 6).unwrap();
        let Message::Binary(bytes) = framer.dispatch(&event, 4).unwrap() else {
            panic!("etf must be binary")
        };
        let decoded =
            codec::decode_payload(&bytes, Encoding::Etf, &DecodeOptions::LENIENT).unwrap();
        assert_eq!(decoded.s, Some(4));
        assert_eq!(decoded.d["content"], "ping");
    }

    #[test]
    fn compacted_events_keep_their_bytes_and_transcode_to_the_other_encoding() {
        let d = json!({"id": "1", "content": "h\u{e9}", "n": [1, null, true]});
        for encoding in [Encoding::Json, Encoding::Etf] {
            let event = Prepared::new("READY", d.clone());
            let compact = event.compact(encoding).unwrap();
            assert!(compact.value().is_none());
            for wanted in [Encoding::Json, Encoding::Etf] {
                let mut framer =
                    Framer::new(&params(&format!("encoding={}", wanted.as_query_value())), 6)
                        .unwrap();
                let bytes = match framer.dispatch(&compact, 1).unwrap() {
                    Message::Text(text) => text.as_bytes().to_vec(),
                    Message::Binary(bytes) => bytes.to_vec(),
                    other => panic!("{other:?}"),
                };
                let decoded =
                    codec::decode_payload(&bytes, wanted, &DecodeOptions::LENIENT).unwrap();
                assert_eq!(decoded, GatewayPayload::dispatch("READY", 1, d.clone()));
            }
        }
    }

    #[test]
    fn json_zlib_streams_never_send_more_than_they_inflate_to() {
        for history in [false, true] {
            let params = params("encoding=json&compress=zlib-stream");
            let mut framer = Framer::with_zlib_history(&params, 1, history).unwrap();
            let mut inflate = ZlibStreamDecompressor::new();
            let (mut sent, mut inflated) = (0usize, 0usize);
            let hello = GatewayPayload::new(OpCode::Hello, json!({"heartbeat_interval": 41_250}));
            let ack = GatewayPayload::new(OpCode::HeartbeatAck, Value::Null);
            let tiny = Prepared::new("TYPING_START", json!({}));
            for n in 0..3_000u64 {
                let message = match n {
                    0 => framer.payload(&hello).unwrap(),
                    n if n % 2 == 0 => framer.payload(&ack).unwrap(),
                    n => framer.dispatch(&tiny, n).unwrap(),
                };
                let Message::Binary(bytes) = message else {
                    panic!("binary")
                };
                sent += bytes.len();
                let text = inflate.push_frame(&bytes).unwrap().unwrap().to_vec();
                inflated += text.len();
                assert!(
                    sent <= inflated,
                    "history {history}, message {n}: {sent} sent > {inflated} inflated"
                );
                let payload: Value = serde_json::from_slice(&text).unwrap();
                assert_eq!(
                    payload["op"],
                    json!(if n == 0 {
                        10
                    } else if n % 2 == 0 {
                        11
                    } else {
                        0
                    })
                );
            }
        }
    }

    #[test]
    fn zlib_stream_messages_follow_each_other_on_one_inflater() {
        let mut framer = Framer::new(&params("encoding=json&compress=zlib-stream"), 6).unwrap();
        let mut inflate = ZlibStreamDecompressor::new();
        for seq in 1..=3 {
            let event = Prepared::new("X", json!({"seq": seq}));
            let Message::Binary(bytes) = framer.dispatch(&event, seq).unwrap() else {
                panic!("binary")
            };
            let message = inflate.push_frame(&bytes).unwrap().unwrap().to_vec();
            let payload: GatewayPayload = serde_json::from_slice(&message).unwrap();
            assert_eq!(payload.s, Some(seq));
        }
    }

    #[test]
    fn one_deflated_event_serves_sessions_at_different_points_of_their_streams() {
        let shared = Prepared::new("MESSAGE_CREATE", json!({"content": "fan out", "id": "9"}));
        for encoding in ["json", "etf"] {
            let query = format!("encoding={encoding}&compress=zlib-stream");
            let mut framers: Vec<Framer> = (0..3)
                .map(|_| Framer::new(&params(&query), 1).unwrap())
                .collect();
            let mut inflaters: Vec<ZlibStreamDecompressor> =
                (0..3).map(|_| ZlibStreamDecompressor::new()).collect();
            let wanted = if encoding == "json" {
                Encoding::Json
            } else {
                Encoding::Etf
            };
            for (i, (framer, inflate)) in framers.iter_mut().zip(&mut inflaters).enumerate() {
                // Each session has seen a different number of its own messages first.
                for n in 0..i {
                    let own = Prepared::new("OWN", json!({"n": n}));
                    let Message::Binary(bytes) = framer.dispatch(&own, n as u64 + 1).unwrap()
                    else {
                        panic!("binary")
                    };
                    inflate.push_frame(&bytes).unwrap().unwrap();
                }
                let seq = 100 + i as u64;
                let Message::Binary(bytes) = framer.dispatch(&shared, seq).unwrap() else {
                    panic!("binary")
                };
                let message = inflate.push_frame(&bytes).unwrap().unwrap().to_vec();
                let decoded =
                    codec::decode_payload(&message, wanted, &DecodeOptions::LENIENT).unwrap();
                assert_eq!(
                    decoded,
                    GatewayPayload::dispatch(
                        "MESSAGE_CREATE",
                        seq,
                        shared.value().unwrap().clone()
                    ),
                    "{encoding} session {i}"
                );
                let ack = GatewayPayload::new(OpCode::HeartbeatAck, Value::Null);
                let Message::Binary(bytes) = framer.payload(&ack).unwrap() else {
                    panic!("binary")
                };
                let message = inflate.push_frame(&bytes).unwrap().unwrap().to_vec();
                let decoded =
                    codec::decode_payload(&message, wanted, &DecodeOptions::LENIENT).unwrap();
                assert_eq!(decoded, ack);
            }
        }
    }

    #[test]
    fn zlib_history_mode_shares_one_context_across_messages() {
        let query = params("encoding=json&compress=zlib-stream");
        let mut framer = Framer::with_zlib_history(&query, 1, true).unwrap();
        let mut inflate = ZlibStreamDecompressor::new();
        let mut sizes = Vec::new();
        for seq in 1..=2 {
            let event = Prepared::new("X", json!({"same": "a longer body repeated in both"}));
            let Message::Binary(bytes) = framer.dispatch(&event, seq).unwrap() else {
                panic!("binary")
            };
            sizes.push(bytes.len());
            let message = inflate.push_frame(&bytes).unwrap().unwrap().to_vec();
            let payload: GatewayPayload = serde_json::from_slice(&message).unwrap();
            assert_eq!(payload.s, Some(seq));
        }
        // The second message refers back to the first.
        assert!(sizes[1] < sizes[0] / 2, "{sizes:?}");
    }

    #[test]
    fn payload_compression_makes_each_payload_a_whole_zlib_stream() {
        let mut framer = Framer::new(&params("encoding=json"), 6).unwrap();
        framer.enable_payload_compression();
        let hello = GatewayPayload::new(OpCode::Hello, json!({"heartbeat_interval": 41250}));
        let Message::Binary(bytes) = framer.payload(&hello).unwrap() else {
            panic!("binary")
        };
        let plain = decompress_payload(&bytes, 1 << 20).unwrap();
        let payload: GatewayPayload = serde_json::from_slice(&plain).unwrap();
        assert_eq!(payload, hello);
    }
}
