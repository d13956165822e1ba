//! Gateway payload encodings (`encoding=json` / `encoding=etf`), both directions.
use serde_json::Value;

use super::etf::{self, DecodeOptions, EtfError};
use super::payload::GatewayPayload;

/// The `encoding` query parameter of a gateway URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// JSON text (WebSocket text frames when uncompressed).
    #[default]
    Json,
    /// Erlang External Term Format (binary frames).
    Etf,
}

impl Encoding {
    /// Parses the query value (`json`, `etf`); `None` for anything else.
    pub fn from_query_value(value: &str) -> Option<Encoding> {
        match value {
            "json" => Some(Encoding::Json),
            "etf" => Some(Encoding::Etf),
            _ => None,
        }
    }

    /// The query value.
    pub fn as_query_value(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Etf => "etf",
        }
    }
}

/// Why a payload could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    /// The payload is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The payload is not valid ETF.
    #[error("invalid ETF: {0}")]
    Etf(#[from] EtfError),
    /// The value is well-formed but not a gateway payload (`op`/`d`/`s`/`t`).
    #[error("not a gateway payload: {0}")]
    NotAPayload(String),
}

// Here rather than beside the type so that the payload knows nothing of codecs.
impl GatewayPayload {
    /// Builds a payload from a decoded JSON value (e.g. from ETF), moving `d` out without copying.
    pub fn from_value(value: Value) -> Result<Self, CodecError> {
        serde_json::from_value(value).map_err(|e| CodecError::NotAPayload(e.to_string()))
    }
}

/// Encodes any JSON value in `encoding`, appending to `out`.
pub fn encode_value(
    value: &Value,
    encoding: Encoding,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    match encoding {
        Encoding::Json => {
            serde_json::to_writer(out, value).map_err(|e| CodecError::Json(e.to_string()))
        }
        Encoding::Etf => Ok(etf::encode_into(value, out)?),
    }
}

/// Decodes one whole message in `encoding` into a JSON value.
pub fn decode_value(
    bytes: &[u8],
    encoding: Encoding,
    options: &DecodeOptions,
) -> Result<Value, CodecError> {
    match encoding {
        Encoding::Json => {
            serde_json::from_slice(bytes).map_err(|e| CodecError::Json(e.to_string()))
        }
        Encoding::Etf => Ok(etf::decode(bytes, options)?),
    }
}

/// Encodes a payload in `encoding`, appending to `out`. Absent `s`/`t` are sent as null, as Discord does.
pub fn encode_payload_into(
    payload: &GatewayPayload,
    encoding: Encoding,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    match encoding {
        Encoding::Json => {
            serde_json::to_writer(out, payload).map_err(|e| CodecError::Json(e.to_string()))
        }
        Encoding::Etf => {
            // Written field by field so `d` is never cloned into an envelope `Value`.
            out.push(etf::VERSION);
            etf::write_map_header(out, 4)?;
            etf::write_binary(out, b"op")?;
            etf::write_u64(out, payload.op.code() as u64);
            etf::write_binary(out, b"d")?;
            etf::encode_term(&payload.d, out)?;
            etf::write_binary(out, b"s")?;
            match payload.s {
                Some(s) => etf::write_u64(out, s),
                None => etf::write_atom(out, b"nil"),
            }
            etf::write_binary(out, b"t")?;
            match &payload.t {
                Some(t) => etf::write_binary(out, t.as_bytes())?,
                None => etf::write_atom(out, b"nil"),
            }
            Ok(())
        }
    }
}

/// Encodes a dispatch's `d` alone, for [`encode_dispatch_with_data`]: JSON text, or an ETF term
/// without the version byte. Lets a server encode one event once and send it to many sessions.
pub fn encode_data(d: &Value, encoding: Encoding, out: &mut Vec<u8>) -> Result<(), CodecError> {
    match encoding {
        Encoding::Json => {
            serde_json::to_writer(out, d).map_err(|e| CodecError::Json(e.to_string()))
        }
        Encoding::Etf => Ok(etf::encode_term(d, out)?),
    }
}

/// Appends the dispatch `{op: 0, d, s: seq, t: name}` whose `d` was encoded by [`encode_data`]
/// in the same `encoding`; the result equals [`encode_payload_into`] of the same payload.
pub fn encode_dispatch_with_data(
    name: &str,
    seq: u64,
    data: &[u8],
    encoding: Encoding,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    match encoding {
        Encoding::Json => {
            out.extend_from_slice(b"{\"op\":0,\"d\":");
            out.extend_from_slice(data);
            out.extend_from_slice(b",\"s\":");
            out.extend_from_slice(seq.to_string().as_bytes());
            out.extend_from_slice(b",\"t\":");
            serde_json::to_writer(&mut *out, name).map_err(|e| CodecError::Json(e.to_string()))?;
            out.push(b'}');
            Ok(())
        }
        Encoding::Etf => {
            out.push(etf::VERSION);
            etf::write_map_header(out, 4)?;
            etf::write_binary(out, b"op")?;
            etf::write_u64(out, 0);
            etf::write_binary(out, b"d")?;
            out.extend_from_slice(data);
            etf::write_binary(out, b"s")?;
            etf::write_u64(out, seq);
            etf::write_binary(out, b"t")?;
            etf::write_binary(out, name.as_bytes())?;
            Ok(())
        }
    }
}

/// Encodes a payload in `encoding` into a new buffer.
pub fn encode_payload(payload: &GatewayPayload, encoding: Encoding) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(256);
    encode_payload_into(payload, encoding, &mut out)?;
    Ok(out)
}

/// Decodes one whole message in `encoding` into a payload.
pub fn decode_payload(
    bytes: &[u8],
    encoding: Encoding,
    options: &DecodeOptions,
) -> Result<GatewayPayload, CodecError> {
    match encoding {
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                CodecError::NotAPayload(e.to_string())
            } else {
                CodecError::Json(e.to_string())
            }
        }),
        Encoding::Etf => GatewayPayload::from_value(etf::decode(bytes, options)?),
    }
}

/// Transcodes one message between encodings without building a `Value` (JSON⇄ETF; same → copy).
pub fn transcode(
    bytes: &[u8],
    from: Encoding,
    to: Encoding,
    options: &DecodeOptions,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    match (from, to) {
        (Encoding::Json, Encoding::Etf) => Ok(etf::json_to_etf(bytes, out)?),
        (Encoding::Etf, Encoding::Json) => Ok(etf::etf_to_json(bytes, options, out)?),
        (Encoding::Json, Encoding::Json) => {
            serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                .map_err(|e| CodecError::Json(e.to_string()))?;
            out.extend_from_slice(bytes);
            Ok(())
        }
        (Encoding::Etf, Encoding::Etf) => {
            etf::decode(bytes, options)?;
            out.extend_from_slice(bytes);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::OpCode;
    use serde_json::json;

    #[test]
    fn payloads_round_trip_in_both_encodings() {
        let payloads = [
            GatewayPayload::new(OpCode::Heartbeat, json!(null)),
            GatewayPayload::new(OpCode::Hello, json!({"heartbeat_interval": 41250})),
            GatewayPayload::dispatch("MESSAGE_CREATE", 42, json!({"id": "1", "content": "hi"})),
            GatewayPayload::new(OpCode::Unknown(99), json!([1, 2])),
        ];
        for encoding in [Encoding::Json, Encoding::Etf] {
            for payload in &payloads {
                let bytes = encode_payload(payload, encoding).unwrap();
                assert_eq!(
                    &decode_payload(&bytes, encoding, &DecodeOptions::CLIENT_STRICT).unwrap(),
                    payload
                );
            }
        }
        // Our ETF envelope equals the generic value encoding of the same object.
        let payload = &payloads[2];
        let as_value = json!({"op": 0, "d": payload.d, "s": 42, "t": "MESSAGE_CREATE"});
        assert_eq!(
            encode_payload(payload, Encoding::Etf).unwrap(),
            etf::encode(&as_value).unwrap()
        );
    }

    #[test]
    fn dispatch_with_pre_encoded_data_equals_the_whole_payload() {
        let d = json!({"id": "1", "content": "h\u{e9} \"quoted\"", "n": [1, 2.5, null]});
        for encoding in [Encoding::Json, Encoding::Etf] {
            let mut data = Vec::new();
            encode_data(&d, encoding, &mut data).unwrap();
            let mut out = Vec::new();
            encode_dispatch_with_data("MESSAGE_CREATE", 7, &data, encoding, &mut out).unwrap();
            let whole = GatewayPayload::dispatch("MESSAGE_CREATE", 7, d.clone());
            let decoded = decode_payload(&out, encoding, &DecodeOptions::CLIENT_STRICT).unwrap();
            assert_eq!(decoded, whole);
            if encoding == Encoding::Etf {
                assert_eq!(out, encode_payload(&whole, encoding).unwrap());
            }
        }
    }

    #[test]
    fn non_payloads_are_rejected_clearly() {
        let err =
            decode_payload(b"{\"d\":1}", Encoding::Json, &DecodeOptions::LENIENT).unwrap_err();
        assert!(
            matches!(err, CodecError::NotAPayload(ref m) if m.contains("op")),
            "{err}"
        );
        let err = decode_payload(b"{\"op\":", Encoding::Json, &DecodeOptions::LENIENT).unwrap_err();
        assert!(matches!(err, CodecError::Json(_)), "{err}");
        let etf = etf::encode(&json!({"op": "x"})).unwrap();
        assert!(matches!(
            decode_payload(&etf, Encoding::Etf, &DecodeOptions::LENIENT),
            Err(CodecError::NotAPayload(_))
        ));
        let etf = etf::encode(&json!([1])).unwrap();
        assert!(matches!(
            decode_payload(&etf, Encoding::Etf, &DecodeOptions::LENIENT),
            Err(CodecError::NotAPayload(_))
        ));
    }

    #[test]
    fn transcode_checks_its_input() {
        let mut out = Vec::new();
        transcode(
            b"{\"op\":1,\"d\":null}",
            Encoding::Json,
            Encoding::Json,
            &DecodeOptions::LENIENT,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"{\"op\":1,\"d\":null}");
        assert!(transcode(
            b"{",
            Encoding::Json,
            Encoding::Etf,
            &DecodeOptions::LENIENT,
            &mut out
        )
        .is_err());
        assert!(transcode(
            b"\x83",
            Encoding::Etf,
            Encoding::Etf,
            &DecodeOptions::LENIENT,
            &mut out
        )
        .is_err());
    }
}
