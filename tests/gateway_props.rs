//! Property tests of the gateway codecs: JSON and ETF round trips of arbitrary JSON-like values,
//! any split of a compressed stream into frames decoding to the same payloads, and arbitrary bytes
//! never panicking anything.
use discord_mitm::gateway::codec::{self, Encoding};
use discord_mitm::gateway::compress::{
    self, ZlibStreamCompressor, ZlibStreamDecompressor, ZstdStreamCompressor,
    ZstdStreamDecompressor,
};
use discord_mitm::gateway::decoder::{Decoder, DecoderEvent, Direction, Frame};
use discord_mitm::gateway::etf::{self, DecodeOptions};
use discord_mitm::gateway::{GatewayPayload, OpCode};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Finite floats (JSON has no NaN or infinities), plus short decimals like real payloads carry.
fn finite_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (any::<i32>(), 0u32..12).prop_map(|(m, e)| m as f64 / (1u64 << e) as f64),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..300).prop_map(Value::from),
        finite_float().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z_]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn payload() -> impl Strategy<Value = GatewayPayload> {
    (
        any::<u8>(),
        json_value(),
        proptest::option::of(any::<u64>()),
        proptest::option::of("[A-Z_]{1,20}"),
    )
        .prop_map(|(op, d, s, t)| GatewayPayload {
            op: OpCode::from_code(op),
            d,
            s,
            t,
        })
}

/// Cuts `bytes` at the given fractions into consecutive non-empty frames.
fn split(bytes: &[u8], cuts: &[f64]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| (c * bytes.len() as f64) as usize)
        .collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .filter(|f| !f.is_empty())
        .collect()
}

fn decode_stream(query: &str, frames: &[Vec<u8>]) -> Vec<GatewayPayload> {
    let mut decoder = Decoder::from_query(query).unwrap();
    let mut got = Vec::new();
    for (time, frame) in frames.iter().enumerate() {
        for event in decoder.feed(Direction::ServerToClient, time as u64, Frame::Binary(frame)) {
            match event {
                DecoderEvent::Payload(p) => got.push(p.payload),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    got
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn json_round_trips(value in json_value()) {
        let mut text = Vec::new();
        codec::encode_value(&value, Encoding::Json, &mut text).unwrap();
        prop_assert_eq!(codec::decode_value(&text, Encoding::Json, &DecodeOptions::LENIENT).unwrap(), value);
    }

    #[test]
    fn etf_round_trips(value in json_value()) {
        let term = etf::encode(&value).unwrap();
        prop_assert_eq!(&etf::decode(&term, &DecodeOptions::CLIENT_STRICT).unwrap(), &value);
        // The streaming transcoders agree with the Value paths.
        let text = serde_json::to_vec(&value).unwrap();
        let mut transcoded = Vec::new();
        etf::json_to_etf(&text, &mut transcoded).unwrap();
        prop_assert_eq!(&transcoded, &term);
        let mut back = Vec::new();
        etf::etf_to_json(&term, &DecodeOptions::LENIENT, &mut back).unwrap();
        prop_assert_eq!(serde_json::from_slice::<Value>(&back).unwrap(), value);
    }

    #[test]
    fn payloads_round_trip_in_both_encodings(p in payload()) {
        for encoding in [Encoding::Json, Encoding::Etf] {
            let bytes = codec::encode_payload(&p, encoding).unwrap();
            prop_assert_eq!(&codec::decode_payload(&bytes, encoding, &DecodeOptions::CLIENT_STRICT).unwrap(), &p);
        }
    }

    #[test]
    fn any_split_of_a_zlib_stream_decodes_the_same(
        payloads in prop::collection::vec(payload(), 1..6),
        cuts in prop::collection::vec(0.0f64..1.0, 0..12),
        etf_encoding in any::<bool>(),
    ) {
        let encoding = if etf_encoding { Encoding::Etf } else { Encoding::Json };
        let mut tx = ZlibStreamCompressor::new();
        let mut stream = Vec::new();
        for p in &payloads {
            tx.compress_into(&codec::encode_payload(p, encoding).unwrap(), &mut stream).unwrap();
        }
        let query = format!("v=10&encoding={}&compress=zlib-stream", encoding.as_query_value());
        prop_assert_eq!(decode_stream(&query, &split(&stream, &cuts)), payloads);
    }

    #[test]
    fn any_split_of_a_zstd_stream_decodes_the_same(
        payloads in prop::collection::vec(payload(), 1..6),
        cuts in prop::collection::vec(0.0f64..1.0, 0..12),
        etf_encoding in any::<bool>(),
    ) {
        let encoding = if etf_encoding { Encoding::Etf } else { Encoding::Json };
        let mut tx = ZstdStreamCompressor::new().unwrap();
        let mut stream = Vec::new();
        for p in &payloads {
            tx.compress_into(&codec::encode_payload(p, encoding).unwrap(), &mut stream).unwrap();
        }
        let query = format!("v=10&encoding={}&compress=zstd-stream", encoding.as_query_value());
        prop_assert_eq!(decode_stream(&query, &split(&stream, &cuts)), payloads);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        frames in prop::collection::vec((any::<bool>(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..300)), 1..8),
        query in prop::sample::select(vec!["", "encoding=etf", "compress=zlib-stream", "compress=zstd-stream",
            "encoding=etf&compress=zlib-stream", "encoding=etf&compress=zstd-stream"]),
    ) {
        let mut decoder = Decoder::from_query(query).unwrap();
        for (time, (from_client, text, bytes)) in frames.iter().enumerate() {
            let direction = if *from_client { Direction::ClientToServer } else { Direction::ServerToClient };
            let frame = if *text { Frame::Text(bytes) } else { Frame::Binary(bytes) };
            let _ = decoder.feed(direction, time as u64, frame);
        }
        for (_, _, bytes) in &frames {
            let _ = etf::decode(bytes, &DecodeOptions::LENIENT);
            let _ = etf::decode(&[&[131u8][..], bytes].concat(), &DecodeOptions::LENIENT);
            let mut out = Vec::new();
            let _ = etf::etf_to_json(&[&[131u8][..], bytes].concat(), &DecodeOptions::LENIENT, &mut out);
            let _ = etf::json_to_etf(bytes, &mut out);
            let _ = compress::decompress_payload(bytes, 1 << 16);
            let _ = ZlibStreamDecompressor::new().push_frame(bytes);
            let _ = ZstdStreamDecompressor::new().unwrap().push_frame(bytes);
        }
    }

    #[test]
    fn corrupted_terms_and_streams_never_panic(
        value in json_value(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut term = etf::encode(&value).unwrap();
        for (index, byte) in &flips {
            let i = index.index(term.len());
            term[i] = *byte;
        }
        let _ = etf::decode(&term, &DecodeOptions::LENIENT);
        let _ = etf::decode(&term, &DecodeOptions::CLIENT_STRICT);
        let mut out = Vec::new();
        let _ = etf::etf_to_json(&term, &DecodeOptions::LENIENT, &mut out);

        let mut stream = ZlibStreamCompressor::new().compress(&serde_json::to_vec(&value).unwrap()).unwrap();
        for (index, byte) in &flips {
            let i = index.index(stream.len());
            stream[i] = *byte;
        }
        let _ = decode_stream_lossy("compress=zlib-stream", &stream);
        let _ = decode_stream_lossy("compress=zstd-stream", &stream);
    }
}

fn decode_stream_lossy(query: &str, stream: &[u8]) -> usize {
    let mut decoder = Decoder::from_query(query).unwrap();
    decoder
        .feed(Direction::ServerToClient, 0, Frame::Binary(stream))
        .len()
}
