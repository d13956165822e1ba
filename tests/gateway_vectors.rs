//! The gateway codecs against real third-party implementations, both ways:
//! vectors made by Python zlib, zstandard and erlpack (scripts/gen-gateway-vectors) decoded by us,
//! and our compressed streams and ETF decoded by those same tools.
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use discord_mitm::gateway::codec::{self, Encoding};
use discord_mitm::gateway::compress::{
    self, PayloadCompressor, ZlibStreamCompressor, ZlibStreamDecompressor, ZstdStreamCompressor,
    ZstdStreamDecompressor,
};
use discord_mitm::gateway::decoder::{Decoder, DecoderEvent, Direction, Frame};
use discord_mitm::gateway::etf::{self, DecodeOptions, EtfError};
use discord_mitm::gateway::GatewayPayload;
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vectors() -> Value {
    let text = std::fs::read_to_string(root().join("tests/vectors/gateway/vectors.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn b64(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap())
        .unwrap()
}

fn texts(v: &Value) -> Vec<String> {
    v["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

fn decoded_payloads(events: Vec<DecoderEvent>) -> Vec<GatewayPayload> {
    events
        .into_iter()
        .map(|e| match e {
            DecoderEvent::Payload(p) => p.payload,
            other => panic!("unexpected decoder event {other:?}"),
        })
        .collect()
}

#[test]
fn python_zlib_stream_decodes_frame_by_frame() {
    let v = vectors();
    let texts = texts(&v);
    let frames = v["zlib_stream"]["frames"].as_array().unwrap();
    let completes = v["zlib_stream"]["completes"].as_array().unwrap();
    assert!(
        completes.iter().any(Value::is_null),
        "vectors must split a message across frames"
    );
    let mut rx = ZlibStreamDecompressor::new();
    let mut decoder = Decoder::from_query("?v=10&encoding=json&compress=zlib-stream").unwrap();
    for (frame, completes) in frames.iter().zip(completes) {
        let bytes = b64(frame);
        let message = rx.push_frame(&bytes).unwrap().map(<[u8]>::to_vec);
        let got =
            decoded_payloads(decoder.feed(Direction::ServerToClient, 0, Frame::Binary(&bytes)));
        match completes.as_u64() {
            Some(index) => {
                let index = index as usize;
                assert_eq!(message.as_deref(), Some(texts[index].as_bytes()));
                let expected: GatewayPayload =
                    serde_json::from_value(v["payloads"][index].clone()).unwrap();
                assert_eq!(got, vec![expected]);
            }
            None => {
                assert_eq!(message, None);
                assert!(got.is_empty());
            }
        }
    }
}

#[test]
fn python_zstandard_stream_decodes_one_message_per_frame() {
    let v = vectors();
    let texts = texts(&v);
    let mut rx = ZstdStreamDecompressor::new().unwrap();
    let mut decoder = Decoder::from_query("v=10&encoding=json&compress=zstd-stream").unwrap();
    for (index, frame) in v["zstd_stream"].as_array().unwrap().iter().enumerate() {
        let bytes = b64(frame);
        assert_eq!(rx.push_frame(&bytes).unwrap(), texts[index].as_bytes());
        let got = decoded_payloads(decoder.feed(
            Direction::ServerToClient,
            index as u64,
            Frame::Binary(&bytes),
        ));
        assert_eq!(got[0].d, v["payloads"][index]["d"]);
    }
}

#[test]
fn python_payload_compression_decodes() {
    let v = vectors();
    let texts = texts(&v);
    let mut decoder = Decoder::from_query("v=10&encoding=json").unwrap();
    decoder.feed(
        Direction::ClientToServer,
        0,
        Frame::Text(br#"{"op":2,"d":{"token":"t","properties":{},"compress":true}}"#),
    );
    assert!(decoder.payload_compression());
    for (index, frame) in v["payload_zlib"].as_array().unwrap().iter().enumerate() {
        let bytes = b64(frame);
        assert_eq!(
            compress::decompress_payload(&bytes, 1 << 20).unwrap(),
            texts[index].as_bytes()
        );
        let got =
            decoded_payloads(decoder.feed(Direction::ServerToClient, 1, Frame::Binary(&bytes)));
        assert_eq!(got[0].d, v["payloads"][index]["d"]);
    }
}

#[test]
fn erlpack_terms_decode_and_we_encode_the_same_bytes() {
    let v = vectors();
    for (index, term) in v["etf"].as_array().unwrap().iter().enumerate() {
        let bytes = b64(term);
        let expected = &v["payloads"][index];
        assert_eq!(
            &etf::decode(&bytes, &DecodeOptions::CLIENT_STRICT).unwrap(),
            expected,
            "payload {index}"
        );
        assert_eq!(
            etf::encode(expected).unwrap(),
            bytes,
            "payload {index}: our bytes differ from erlpack's"
        );
        let mut text = Vec::new();
        etf::etf_to_json(&bytes, &DecodeOptions::LENIENT, &mut text).unwrap();
        assert_eq!(&serde_json::from_slice::<Value>(&text).unwrap(), expected);
        let mut back = Vec::new();
        etf::json_to_etf(&text, &mut back).unwrap();
        assert_eq!(back, bytes);
        let payload =
            codec::decode_payload(&bytes, Encoding::Etf, &DecodeOptions::CLIENT_STRICT).unwrap();
        assert_eq!(&payload.d, &expected["d"]);
    }
    for extra in v["etf_extra"].as_array().unwrap() {
        assert_eq!(
            etf::decode(&b64(&extra["etf"]), &DecodeOptions::LENIENT).unwrap(),
            extra["json"]
        );
    }
}

#[test]
fn atom_keyed_server_terms_decode_leniently_and_fail_strictly() {
    let v = vectors();
    let case = &v["etf_server_atom_keys"];
    let bytes = b64(&case["etf"]);
    assert_eq!(
        etf::decode(&bytes, &DecodeOptions::LENIENT).unwrap(),
        case["json"]
    );
    assert!(matches!(
        etf::decode(&bytes, &DecodeOptions::CLIENT_STRICT),
        Err(EtfError::AtomKey { .. })
    ));
    let mut decoder = Decoder::from_query("encoding=etf").unwrap();
    let got = decoded_payloads(decoder.feed(Direction::ServerToClient, 0, Frame::Binary(&bytes)));
    assert_eq!(
        (got[0].t.as_deref(), got[0].s),
        (Some("MESSAGE_CREATE"), Some(7))
    );
    assert_eq!(got[0].d["id"], json!(175928847299117063u64));
}

/// Writes our encodings of the vector payloads and has the Python tools check them.
#[test]
fn python_tools_decode_our_streams_and_terms() {
    let python = root().join(".venv/gateway-vectors/bin/python");
    if !python.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run scripts/setup-test-deps, which creates {}",
            python.display()
        );
        eprintln!(
            "skipped: {} missing; run scripts/gen-gateway-vectors --setup-only",
            python.display()
        );
        return;
    }
    let v = vectors();
    let payloads = v["payloads"].as_array().unwrap();
    let texts: Vec<String> = payloads
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    let encode =
        |bytes: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));

    let mut zlib = ZlibStreamCompressor::new();
    let mut zlib_frames = Vec::new();
    for text in &texts {
        let message = zlib.compress(text.as_bytes()).unwrap();
        // Split large messages the way Discord does, so Python must buffer until the suffix.
        for chunk in message.chunks(300) {
            zlib_frames.push(encode(chunk));
        }
    }
    let mut zstd = ZstdStreamCompressor::new().unwrap();
    let mut payload = PayloadCompressor::new();
    let mut zstd_frames = Vec::new();
    let mut payload_frames = Vec::new();
    let mut terms = Vec::new();
    for (text, value) in texts.iter().zip(payloads) {
        zstd_frames.push(encode(&zstd.compress(text.as_bytes()).unwrap()));
        let mut out = Vec::new();
        payload.compress_into(text.as_bytes(), &mut out).unwrap();
        payload_frames.push(encode(&out));
        terms.push(encode(&etf::encode(value).unwrap()));
    }
    let ours = json!({"texts": texts, "zlib_stream": zlib_frames, "zstd_stream": zstd_frames,
        "payload_zlib": payload_frames, "etf": terms});
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ours.json"),
        serde_json::to_vec(&ours).unwrap(),
    )
    .unwrap();
    run_check(&python, dir.path());
}

fn run_check(python: &Path, dir: &Path) {
    let output = Command::new(python)
        .arg(root().join("scripts/gateway_vectors.py"))
        .arg("--check")
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Python check failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("checked 7 payloads: 0 failures"),
        "{stdout}"
    );
}

#[test]
fn erlang_term_to_binary_output_decodes() {
    let v = vectors();
    let terms = v["erlang"]["terms"]
        .as_array()
        .expect("vectors hold Erlang terms");
    for case in terms {
        let name = case["name"].as_str().unwrap();
        let bytes = b64(&case["etf"]);
        let decoded = etf::decode(&bytes, &DecodeOptions::LENIENT);
        if let Some(index) = case["payload"].as_u64() {
            assert_eq!(
                decoded.as_ref().unwrap(),
                &v["payloads"][index as usize],
                "{name}"
            );
            // The same payload through the streaming transcoder.
            let mut text = Vec::new();
            etf::etf_to_json(&bytes, &DecodeOptions::LENIENT, &mut text).unwrap();
            assert_eq!(
                serde_json::from_slice::<Value>(&text).unwrap(),
                v["payloads"][index as usize],
                "{name}"
            );
        } else if let Some(error) = case["error"].as_str() {
            let err = decoded.expect_err(name);
            assert!(format!("{err:?}").starts_with(error), "{name}: {err:?}");
        } else {
            assert_eq!(decoded.unwrap(), case["json"], "{name}");
        }
    }
    // Erlang writes maps with atom keys (as Discord's server may); a client may not.
    let atom_keyed = terms.iter().find(|c| c["name"] == "atom_keys").unwrap();
    assert!(matches!(
        etf::decode(&b64(&atom_keyed["etf"]), &DecodeOptions::CLIENT_STRICT),
        Err(EtfError::AtomKey { .. })
    ));
}

/// Erlang's binary_to_term (safe mode) must read our terms as the same terms it wrote itself.
#[test]
fn erlang_binary_to_term_reads_our_terms() {
    let Some(escript) = find_on_path("escript") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run scripts/setup-test-deps, which installs erlang-base"
        );
        eprintln!("skipped: escript not installed (apt-get install erlang-base)");
        return;
    };
    let v = vectors();
    let mut lines = String::new();
    for case in v["erlang"]["terms"].as_array().unwrap() {
        let Some(index) = case["payload"].as_u64() else {
            continue;
        };
        let ours = etf::encode(&v["payloads"][index as usize]).unwrap();
        let reference = b64(&case["etf"]);
        lines.push_str(&format!(
            "{} {}\n",
            hex::encode_upper(ours),
            hex::encode_upper(reference)
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs");
    std::fs::write(&pairs, lines).unwrap();
    let output = Command::new(escript)
        .arg(root().join("scripts/gateway_vectors.escript"))
        .arg("check")
        .arg(&pairs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "Erlang check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("checked 8 terms: 0 failures"), "{stdout}");
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
