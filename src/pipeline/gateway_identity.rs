//! The identity rules on a relayed gateway session (`serve --listen` forwarding an upgrade):
//! the client's IDENTIFY or RESUME carries the upstream token ([`Identity`]), the real
//! account's id (learned from READY's `user`, or already known from REST's `/users/@me`)
//! reads as the local user's in everything upstream sends, and the local id as the real one
//! in what the client sends after it identified.
//!
//! Upstream's messages are decoded as the session asked for them (JSON text or ETF binary;
//! `zlib-stream` or `zstd-stream` transport compression, or IDENTIFY's per-payload zlib),
//! the ids swapped, and the message encoded again the same way. A compressed stream keeps one
//! context per connection, so once identity rules apply every upstream message is
//! decompressed and compressed again with our own context (the client's inflater follows
//! ours, not upstream's).
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::identity::{self, Identity};
use crate::gateway::compress::{
    self, PayloadCompressor, TransportCompression, ZlibStreamCompressor, ZlibStreamDecompressor,
    ZstdStreamCompressor, ZstdStreamDecompressor,
};
use crate::gateway::etf;
use crate::store::Rewrite;

/// The largest gateway message decoded (the relay's own WebSocket limit).
const MAX_MESSAGE: usize = 128 << 20;

/// Why a relayed session cannot go on (upstream's compressed stream is broken).
#[derive(Debug, thiserror::Error)]
pub enum GatewayIdentityError {
    /// Upstream's stream could not be decompressed, or ours not compressed.
    #[error("gateway {direction} stream: {source}")]
    Compression {
        /// `upstream` (decompressing) or `client` (compressing).
        direction: &'static str,
        /// What failed.
        source: compress::CompressError,
    },
}

/// Who the session speaks as, once its IDENTIFY or RESUME went by.
#[derive(Debug, Default)]
struct SessionIds {
    /// The local user whose token the client identified with.
    local: Option<String>,
    /// The real account's id.
    real: Option<String>,
    /// The real-id cache key of the upstream token the session carries.
    upstream_key: Option<String>,
    /// Whether the answer-side swap is already listed.
    answer_listed: bool,
    /// Whether the client-side swap is already listed.
    request_listed: bool,
}

impl SessionIds {
    /// (from, to) for upstream's messages: the real id to the local one, when both are known
    /// and differ.
    fn answer_pair(&self) -> Option<(&str, &str)> {
        match (&self.real, &self.local) {
            (Some(real), Some(local)) if real != local => Some((real, local)),
            _ => None,
        }
    }
}

/// How upstream's messages arrive and leave again.
enum Transport {
    /// One message per WebSocket message.
    Plain {
        /// For IDENTIFY `compress: true` (each JSON payload its own zlib stream).
        payload: Option<PayloadCompressor>,
    },
    /// `zlib-stream`: upstream's context in, ours out.
    Zlib(Box<(ZlibStreamDecompressor, ZlibStreamCompressor)>),
    /// `zstd-stream`: upstream's context in, ours out.
    Zstd(Box<(ZstdStreamDecompressor, ZstdStreamCompressor)>),
}

/// One relayed session's identity rules; shared by both directions of the relay.
pub struct RelayedIdentity {
    identity: Arc<Identity>,
    etf: bool,
    ids: Mutex<SessionIds>,
    transport: Mutex<Transport>,
}

/// What a message became: the message to pass on (`None` while a compressed message is still
/// arriving in parts) and the rewrite to list with the session, the first time it happens.
pub type Relayed = (Option<Message>, Option<Rewrite>);

impl RelayedIdentity {
    /// Rules for a session speaking ETF or JSON with `compression`.
    pub fn new(
        identity: Arc<Identity>,
        etf: bool,
        compression: TransportCompression,
    ) -> Result<RelayedIdentity, GatewayIdentityError> {
        let failed = |source| GatewayIdentityError::Compression {
            direction: "client",
            source,
        };
        let transport = match compression {
            TransportCompression::None => Transport::Plain { payload: None },
            TransportCompression::ZlibStream => Transport::Zlib(Box::new((
                ZlibStreamDecompressor::with_max_message_size(MAX_MESSAGE),
                ZlibStreamCompressor::new(),
            ))),
            TransportCompression::ZstdStream => Transport::Zstd(Box::new((
                ZstdStreamDecompressor::with_max_message_size(MAX_MESSAGE).map_err(failed)?,
                ZstdStreamCompressor::new().map_err(failed)?,
            ))),
        };
        Ok(RelayedIdentity {
            identity,
            etf,
            ids: Mutex::new(SessionIds::default()),
            transport: Mutex::new(transport),
        })
    }

    fn ids(&self) -> MutexGuard<'_, SessionIds> {
        // A panic elsewhere while holding it leaves plain data behind: keep going.
        self.ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A client message on its way upstream: IDENTIFY and RESUME carry the upstream token
    /// (the returned rewrite says how), later messages carry the real id for the local one.
    pub fn client_message(&self, message: Message) -> Relayed {
        let data: &[u8] = match (&message, self.etf) {
            (Message::Text(text), false) => text.as_bytes(),
            (Message::Binary(data), true) => data,
            _ => return (Some(message), None),
        };
        if let Some(credential) = self.identity.gateway_credential(data, self.etf) {
            let mut ids = self.ids();
            ids.local = credential.caller.map(|c| c.id);
            if let Some(key) = &credential.upstream_key {
                if let Some(Some(real)) = self.identity.known_real_id(key) {
                    ids.real = Some(real);
                }
            }
            ids.upstream_key = credential.upstream_key;
            drop(ids);
            tracing::info!(
                local_user = %credential.rewrite.from,
                "gateway {} relayed upstream with {}",
                if self.etf { "ETF IDENTIFY/RESUME" } else { "IDENTIFY/RESUME" },
                if credential.rewrite.to == identity::NO_CREDENTIAL {
                    "no token (there is no upstream token)"
                } else {
                    "the upstream token"
                }
            );
            return (
                Some(self.encoded(credential.bytes, &message)),
                Some(credential.rewrite),
            );
        }
        let mut ids = self.ids();
        let Some((local, real)) = ids
            .answer_pair()
            .map(|(r, l)| (l.to_string(), r.to_string()))
        else {
            return (Some(message), None);
        };
        let Some(swapped) = swap_message_ids(data, self.etf, &local, &real) else {
            return (Some(message), None);
        };
        let listed = !std::mem::replace(&mut ids.request_listed, true);
        let rewrite = listed.then(|| identity::rewrite(identity::REQUEST_ID, &local, &real));
        (Some(self.encoded(swapped, &message)), rewrite)
    }

    /// `bytes` as the same kind of message as `like`.
    fn encoded(&self, bytes: Vec<u8>, like: &Message) -> Message {
        match like {
            Message::Text(_) => match String::from_utf8(bytes) {
                Ok(text) => Message::Text(text.into()),
                Err(_) => like.clone(),
            },
            _ => Message::Binary(Bytes::from(bytes)),
        }
    }

    /// An upstream message on its way to the client: decoded as the session speaks, the real
    /// id learned from READY, and the real id swapped for the local one.
    pub fn server_message(&self, message: Message) -> Result<Relayed, GatewayIdentityError> {
        let mut transport = self
            .transport
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let upstream = |source| GatewayIdentityError::Compression {
            direction: "upstream",
            source,
        };
        let client = |source| GatewayIdentityError::Compression {
            direction: "client",
            source,
        };
        match (&mut *transport, message) {
            (Transport::Zlib(pair), Message::Binary(frame)) => {
                let (inflate, deflate) = &mut **pair;
                let Some(payload) = inflate.push_frame(&frame).map_err(upstream)? else {
                    return Ok((None, None));
                };
                let (out, rewrite) = self.swap_answer(payload);
                let out = deflate
                    .compress(out.as_deref().unwrap_or(payload))
                    .map_err(client)?;
                Ok((Some(Message::Binary(Bytes::from(out))), rewrite))
            }
            (Transport::Zstd(pair), Message::Binary(frame)) => {
                let (decoder, encoder) = &mut **pair;
                let payload = decoder.push_frame(&frame).map_err(upstream)?;
                if payload.is_empty() {
                    return Ok((None, None));
                }
                let (out, rewrite) = self.swap_answer(payload);
                let out = encoder
                    .compress(out.as_deref().unwrap_or(payload))
                    .map_err(client)?;
                Ok((Some(Message::Binary(Bytes::from(out))), rewrite))
            }
            (Transport::Plain { payload }, Message::Binary(data))
                if !self.etf && compress::looks_like_zlib(&data) =>
            {
                let Ok(json) = compress::decompress_payload(&data, MAX_MESSAGE) else {
                    return Ok((Some(Message::Binary(data)), None));
                };
                let (out, rewrite) = self.swap_answer(&json);
                let Some(out) = out else {
                    return Ok((Some(Message::Binary(data)), rewrite));
                };
                let mut zlib = Vec::new();
                payload
                    .get_or_insert_with(PayloadCompressor::new)
                    .compress_into(&out, &mut zlib)
                    .map_err(client)?;
                Ok((Some(Message::Binary(Bytes::from(zlib))), rewrite))
            }
            (Transport::Plain { .. }, message @ (Message::Text(_) | Message::Binary(_))) => {
                let data: &[u8] = match &message {
                    Message::Text(text) => text.as_bytes(),
                    Message::Binary(data) => data,
                    _ => &[],
                };
                let (out, rewrite) = self.swap_answer(data);
                Ok((
                    Some(out.map_or(message.clone(), |out| self.encoded(out, &message))),
                    rewrite,
                ))
            }
            (_, message) => Ok((Some(message), None)),
        }
    }

    /// One upstream payload: the real id learned from READY, then swapped for the local one;
    /// `None` when nothing changed.
    fn swap_answer(&self, payload: &[u8]) -> (Option<Vec<u8>>, Option<Rewrite>) {
        let mut ids = self.ids();
        if ids.local.is_none() && ids.upstream_key.is_none() {
            return (None, None);
        }
        // JSON text names an id as its digits: most messages can be passed by unparsed. A
        // READY names the session's real account, whatever was known before.
        let learning =
            self.etf || ids.real.is_none() || memchr::memmem::find(payload, b"\"READY\"").is_some();
        if !learning {
            let real = ids.real.as_deref().unwrap_or_default();
            if memchr::memmem::find(payload, real.as_bytes()).is_none() {
                return (None, None);
            }
        }
        let Some(mut value) = decode(payload, self.etf) else {
            return (None, None);
        };
        if learning {
            self.learn_from_ready(&mut ids, &value);
        }
        let Some((real, local)) = ids
            .answer_pair()
            .map(|(r, l)| (r.to_string(), l.to_string()))
        else {
            return (None, None);
        };
        if !swap_value(&mut value, &real, &local) {
            return (None, None);
        }
        let Some(out) = encode(&value, self.etf) else {
            return (None, None);
        };
        let listed = !std::mem::replace(&mut ids.answer_listed, true);
        let rewrite = listed.then(|| identity::rewrite(identity::RESPONSE_ID, &real, &local));
        (Some(out), rewrite)
    }

    /// Learns the real id from a READY's `user`, for this session and for every later
    /// request carrying the same upstream token (REST then needs no `/users/@me`).
    fn learn_from_ready(&self, ids: &mut SessionIds, payload: &Value) {
        if payload.get("t").and_then(Value::as_str) != Some("READY") {
            return;
        }
        let Some(real) = snowflake_text(&payload["d"]["user"]["id"]) else {
            return;
        };
        if let Some(key) = &ids.upstream_key {
            if self.identity.known_real_id(key).flatten().as_ref() != Some(&real) {
                tracing::info!(real_id = %real, "the upstream token belongs to user {real} (its READY says)");
                self.identity.remember_real_id(key, Some(real.clone()));
            }
        }
        ids.real = Some(real);
    }
}

/// A snowflake as text, from a string or (ETF) an integer.
fn snowflake_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            Some(text.clone())
        }
        Value::Number(number) => number.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

fn decode(payload: &[u8], etf: bool) -> Option<Value> {
    if etf {
        etf::decode(payload, &etf::DecodeOptions::LENIENT).ok()
    } else {
        serde_json::from_slice(payload).ok()
    }
}

fn encode(value: &Value, etf: bool) -> Option<Vec<u8>> {
    if etf {
        etf::encode(value).ok()
    } else {
        serde_json::to_vec(value).ok()
    }
}

/// One gateway message with `from`'s id swapped for `to`'s; `None` when it holds none.
fn swap_message_ids(data: &[u8], etf: bool, from: &str, to: &str) -> Option<Vec<u8>> {
    if !etf && memchr::memmem::find(data, from.as_bytes()).is_none() {
        return None;
    }
    let mut value = decode(data, etf)?;
    if !swap_value(&mut value, from, to) {
        return None;
    }
    encode(&value, etf)
}

/// Replaces every string equal to `from` (and every integer, as ETF sends snowflakes) with
/// `to`, keeping its type; whether anything was replaced.
fn swap_value(value: &mut Value, from: &str, to: &str) -> bool {
    match value {
        Value::String(text) if text == from => {
            *text = to.to_string();
            true
        }
        Value::Number(number) if number.as_u64().is_some_and(|n| n.to_string() == from) => {
            match to.parse::<u64>() {
                Ok(n) => {
                    *value = Value::from(n);
                    true
                }
                Err(_) => false,
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |hit, item| swap_value(item, from, to) | hit),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |hit, item| swap_value(item, from, to) | hit),
        _ => false,
    }
}

#[cfg(test)]
#[path = "gateway_identity_tests.rs"]
mod tests;
