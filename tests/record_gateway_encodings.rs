//! Gateway recording with what the official client speaks: ETF (`encoding=etf`) plain, over
//! zlib-stream and over zstd-stream, and JSON with payload compression (IDENTIFY
//! `compress: true`). The stand-in sends bytes made by real encoders (erlpack, Erlang's
//! term_to_binary, Python's zlib); a WebSocket client goes through the proxy; the recording must
//! hold every frame decoded to JSON with op, t and s, and the client must get the bytes untouched.
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use futures::{SinkExt, StreamExt};
use record_support::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use upstream::*;

/// Undoes the connection's transport compression, frame by frame.
struct Inflater {
    zlib: flate2::Decompress,
    zstd: zstd::stream::raw::Decoder<'static>,
    compress: Option<&'static str>,
}

impl Inflater {
    fn new(compress: Option<&'static str>) -> Self {
        Inflater {
            zlib: flate2::Decompress::new(true),
            zstd: zstd::stream::raw::Decoder::new().unwrap(),
            compress,
        }
    }

    fn frame(&mut self, message: Message) -> Vec<u8> {
        let Message::Binary(data) = message else {
            panic!("expected a binary frame, got {message:?}");
        };
        match self.compress {
            None => data.to_vec(),
            Some("zlib-stream") => {
                let mut out = Vec::with_capacity(1 << 16);
                self.zlib
                    .decompress_vec(&data, &mut out, flate2::FlushDecompress::Sync)
                    .unwrap();
                out
            }
            Some(_) => {
                use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
                let mut out = vec![0u8; 1 << 16];
                let mut src = InBuffer::around(&data[..]);
                let mut dst = OutBuffer::around(&mut out[..]);
                self.zstd.run(&mut src, &mut dst).unwrap();
                let n = dst.pos();
                out.truncate(n);
                out
            }
        }
    }
}

async fn etf_session(recorder: &Recorder, compress: Option<&'static str>) {
    let query = match compress {
        Some(compress) => format!("v=10&encoding=etf&compress={compress}"),
        None => "v=10&encoding=etf".to_string(),
    };
    let url = format!("wss://gateway.discord.gg/?{query}");
    let mut ws =
        websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", &url).await;
    let vectors = gateway_vectors();
    let mut inflater = Inflater::new(compress);
    let hello = inflater.frame(ws.next().await.unwrap().unwrap());
    assert_eq!(hello, vector_bytes(&vectors["etf"][ETF_HELLO]), "{query}");
    let identify = vector_bytes(&vectors["etf"][ETF_IDENTIFY]);
    ws.send(Message::binary(identify)).await.unwrap();
    for expected in etf_server_payloads() {
        let got = inflater.frame(ws.next().await.unwrap().unwrap());
        assert_eq!(got, expected, "the proxy changed a frame ({query})");
    }
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

type Described = (String, Option<u8>, Option<String>, Option<u64>);

fn describe(frames: &[discord_mitm::store::Frame]) -> Vec<Described> {
    frames
        .iter()
        .filter(|f| f.payload.is_some())
        .map(|f| (f.direction.har_type().to_string(), f.op, f.t.clone(), f.s))
        .collect()
}

fn expect(dir: &str, op: u8, t: Option<&str>, s: Option<u64>) -> Described {
    (dir.to_string(), Some(op), t.map(str::to_string), s)
}

fn payload(frame: &discord_mitm::store::Frame) -> Value {
    serde_json::from_str(frame.payload.as_deref().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etf_and_payload_compressed_sessions_are_recorded_as_json() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    let transports = [None, Some("zlib-stream"), Some("zstd-stream")];
    for compress in transports {
        etf_session(&recorder, compress).await;
    }

    // JSON with payload compression: each payload after IDENTIFY is its own zlib stream.
    let url = "wss://gateway.discord.gg/?v=10&encoding=json";
    let mut ws =
        websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", url).await;
    let hello = ws.next().await.unwrap().unwrap();
    assert!(matches!(hello, Message::Text(_)), "{hello:?}");
    let identify = json!({"op": 2, "d": {"token": "MTIz.payload-secret", "compress": true,
        "intents": 1, "properties": {"os": "linux"}}});
    ws.send(Message::text(identify.to_string())).await.unwrap();
    let vectors = gateway_vectors();
    for index in [2, 3] {
        let Message::Binary(data) = ws.next().await.unwrap().unwrap() else {
            panic!("payload compression sends binary frames");
        };
        let mut text = Vec::new();
        use std::io::Read;
        flate2::read::ZlibDecoder::new(&data[..])
            .read_to_end(&mut text)
            .unwrap();
        let got: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(got, vectors["payloads"][index]);
    }
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = recorder.stop();
    let store = open_store(&dir.path().join("recordings"));
    let sessions: Vec<_> = store.sessions().collect::<Result<_, _>>().unwrap();
    assert_eq!(sessions.len(), 4, "{log}");

    for (session, compress) in sessions.iter().zip(transports) {
        assert_eq!(session.encoding.as_deref(), Some("etf"));
        assert_eq!(session.compress.as_deref(), compress);
        assert!(session.ended_at_us.is_some(), "{session:?}");
        let frames = store.frames(session.id).unwrap();
        let failed: Vec<_> = frames
            .iter()
            .filter_map(|f| f.decode_error.clone())
            .collect();
        assert!(failed.is_empty(), "{compress:?}: {failed:?}");
        assert_eq!(
            describe(&frames),
            vec![
                expect("receive", 10, None, None),
                expect("send", 2, None, None),
                expect("receive", 0, Some("READY"), Some(1)),
                expect("receive", 0, Some("MESSAGE_CREATE"), Some(42)),
                expect("receive", 0, Some("NUMBERS"), Some(4)),
                expect("receive", 0, Some("MESSAGE_CREATE"), Some(7)),
            ],
            "{compress:?}"
        );
        let with_payload: Vec<_> = frames.iter().filter(|f| f.payload.is_some()).collect();
        let hello = payload(with_payload[0]);
        assert_eq!(hello["d"]["heartbeat_interval"], 41250);
        let identify = payload(with_payload[1]);
        let token = identify["d"]["token"].as_str().unwrap();
        assert!(token.starts_with("[redacted by discord-mitm"), "{token}");
        assert_eq!(identify["d"]["capabilities"], 16381);
        assert_eq!(identify["d"]["properties"]["browser"], "Discord Client");
        let ready = payload(with_payload[2]);
        assert_eq!(ready["d"]["session_id"], "9f2c1b7e0a4d4b7c8e1f2a3b4c5d6e7f");
        assert_eq!(ready["d"], vectors["payloads"][2]["d"]);
        assert_eq!(payload(with_payload[3])["d"], vectors["payloads"][3]["d"]);
        let numbers = payload(with_payload[4]);
        assert_eq!(numbers["d"]["u64max"], json!(18446744073709551615u64));
        assert_eq!(numbers["d"]["i64min"], json!(-9223372036854775808i64));
        let atom_keys = payload(with_payload[5]);
        assert_eq!(atom_keys["d"]["content"], "atom keys");
        // Raw sizes are what went over the wire (compressed), not the decoded size.
        assert!(with_payload.iter().all(|f| f.raw_size > 0));
    }

    let compressed = &sessions[3];
    assert_eq!(compressed.encoding.as_deref(), Some("json"));
    assert_eq!(compressed.compress, None);
    let frames = store.frames(compressed.id).unwrap();
    assert_eq!(
        describe(&frames),
        vec![
            expect("receive", 10, None, None),
            expect("send", 2, None, None),
            expect("receive", 0, Some("READY"), Some(1)),
            expect("receive", 0, Some("MESSAGE_CREATE"), Some(42)),
        ]
    );
    let identify = payload(&frames.iter().find(|f| f.op == Some(2)).unwrap().clone());
    assert_eq!(identify["d"]["compress"], true);
    assert!(identify["d"]["token"]
        .as_str()
        .unwrap()
        .starts_with("[redacted by discord-mitm"));
    let message = frames
        .iter()
        .find(|f| f.t.as_deref() == Some("MESSAGE_CREATE"))
        .unwrap();
    assert_eq!(payload(message), vectors["payloads"][3]);
}
