//! `routes --asyncapi`, `recordings search`, `recordings list` filters and `recordings diff`,
//! on recordings made by the real binary through the local stand-in: gateway sessions in JSON
//! and ETF over zlib-stream and zstd-stream, and REST exchanges. The AsyncAPI document is
//! validated against the official AsyncAPI 3.0 JSON Schema (@asyncapi/specs).
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use record_support::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use upstream::*;

/// A string planted in exactly one gateway frame (a client's presence update).
const PLANTED: &str = "needle-7c1f-planted";
const IDENTIFY_TOKEN: &str = "MTIz.identify-secret-token-for-asyncapi";

async fn json_session(recorder: &Recorder, compress: &str, plant: bool) {
    let url = format!("wss://gateway.discord.gg/?v=10&encoding=json&compress={compress}");
    let mut ws =
        websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", &url).await;
    let _hello = ws.next().await.unwrap().unwrap();
    let identify = json!({"op": 2, "d": {"token": IDENTIFY_TOKEN, "intents": 513,
        "properties": {"os": "linux", "browser": "test", "device": "test"}}});
    ws.send(Message::text(identify.to_string())).await.unwrap();
    for _ in 0..2 {
        let _ready_and_create = ws.next().await.unwrap().unwrap();
    }
    ws.send(Message::text(json!({"op": 1, "d": 2}).to_string()))
        .await
        .unwrap();
    let _ack = ws.next().await.unwrap().unwrap();
    if plant {
        let presence = json!({"op": 3, "d": {"since": null, "afk": false, "status": "online",
            "activities": [{"name": PLANTED, "type": 0}]}});
        ws.send(Message::text(presence.to_string())).await.unwrap();
    }
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

async fn etf_session(recorder: &Recorder, compress: &str) {
    let url = format!("wss://gateway.discord.gg/?v=10&encoding=etf&compress={compress}");
    let mut ws =
        websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", &url).await;
    let _hello = ws.next().await.unwrap().unwrap();
    let identify = vector_bytes(&gateway_vectors()["etf"][ETF_IDENTIFY]);
    ws.send(Message::binary(identify)).await.unwrap();
    for _ in etf_server_payloads() {
        let _payload = ws.next().await.unwrap().unwrap();
    }
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

fn run_ok(args: &[&str]) -> std::process::Output {
    let out = run_bin(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn validator_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/explore-tools/bin/python")
}

/// Runs the AsyncAPI JSON Schema validation; (valid, what it printed).
fn validate_asyncapi(file: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asyncapi/validate.py");
    let out = std::process::Command::new(validator_python())
        .arg(script)
        .arg(file)
        .output()
        .expect("python with jsonschema missing: run scripts/setup-test-deps");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncapi_search_and_list_over_json_and_etf_sessions() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    json_session(&recorder, "zlib-stream", false).await;
    json_session(&recorder, "zstd-stream", true).await;
    etf_session(&recorder, "zlib-stream").await;
    etf_session(&recorder, "zstd-stream").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    recorder.stop();
    let recordings = dir.path().join("recordings");
    let rec = recordings.to_str().unwrap();

    // AsyncAPI: every opcode per direction and every dispatch, encodings and compressions.
    let file = dir.path().join("asyncapi.json");
    let out = run_ok(&[
        "routes",
        "--recordings",
        rec,
        "--asyncapi",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.stderr.is_empty(),
        "piped runs draw no progress: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let facts = &doc["info"]["x-discord-mitm"];
    assert_eq!(facts["sessions"], 4);
    assert_eq!(facts["encodings"], json!({"etf": 2, "json": 2}));
    assert_eq!(
        facts["compressions"],
        json!({"zlib-stream": 2, "zstd-stream": 2})
    );
    assert_eq!(
        doc["channels"]["gateway"]["bindings"]["ws"]["query"]["properties"]["compress"]["enum"],
        json!(["zlib-stream", "zstd-stream"])
    );
    let messages = &doc["components"]["messages"];
    let hello = &messages["receive_op10"];
    assert_eq!(hello["name"], "HELLO");
    assert_eq!(hello["x-discord-mitm"]["samples"], 4);
    assert_eq!(
        hello["payload"]["properties"]["d"]["properties"]["heartbeat_interval"]["type"],
        "integer"
    );
    let create = &messages["receive_MESSAGE_CREATE"];
    assert_eq!(create["x-discord-mitm"]["documented"], true);
    assert_eq!(
        create["payload"]["properties"]["t"]["const"],
        "MESSAGE_CREATE"
    );
    assert_eq!(create["payload"]["properties"]["op"]["const"], 0);
    let d = &create["payload"]["properties"]["d"];
    assert_eq!(d["properties"]["channel_id"]["format"], "snowflake");
    assert_eq!(d["properties"]["content"]["type"], "string");
    // An event Discord does not document (the ETF vectors' NUMBERS) is marked so.
    assert_eq!(
        messages["receive_NUMBERS"]["x-discord-mitm"]["documented"],
        false
    );
    assert_eq!(
        messages["receive_READY"]["x-discord-mitm"]["documented"],
        true
    );
    let identify = &messages["send_op2"];
    assert_eq!(identify["name"], "IDENTIFY");
    assert_eq!(identify["x-discord-mitm"]["documented"], true);
    assert_eq!(
        identify["payload"]["properties"]["d"]["properties"]["token"]["type"],
        "string"
    );
    assert!(
        messages["send_op3"]["payload"]["properties"]["d"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("activities"))
    );
    assert!(messages["receive_op11"].is_object() && messages["send_op1"].is_object());
    assert!(!text.contains(IDENTIFY_TOKEN) && !text.contains("redacted by discord-mitm"));
    assert!(
        doc["operations"]["send"]["messages"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );

    // The official schema accepts it, and rejects it once broken (the check can fail).
    let (valid, report) = validate_asyncapi(&file);
    assert!(valid, "{report}");
    let mut broken = doc.clone();
    broken["operations"]["receive"]
        .as_object_mut()
        .unwrap()
        .remove("action");
    let broken_file = dir.path().join("broken.json");
    std::fs::write(&broken_file, broken.to_string()).unwrap();
    let (valid, report) = validate_asyncapi(&broken_file);
    assert!(
        !valid,
        "a document without an operation action passed: {report}"
    );

    // Search: the planted string is in one frame (JSON over zstd-stream, client side).
    let out = run_ok(&[
        "recordings",
        "--recordings",
        rec,
        "--json",
        "search",
        PLANTED,
    ]);
    let hits: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let id = hits[0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("gw:") && id.contains(":send:"), "{id}");
    assert_eq!(hits[0]["place"], "payload");
    assert!(hits[0]["snippet"].as_str().unwrap().contains(PLANTED));
    // The hit's id opens that frame.
    let out = run_ok(&["recordings", "--recordings", rec, "--json", "show", &id]);
    let frame: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(frame["op"], 3);
    assert_eq!(frame["payload"]["d"]["activities"][0]["name"], PLANTED);
    // Decoded server frames of every encoding and compression: ETF over zlib and zstd,
    // JSON over zlib and zstd; narrowed by event and by a JSON path.
    let searches: [(&[&str], usize); 3] = [
        (&["atom keys", "--event", "MESSAGE_CREATE"], 2),
        (&["--where", "d.content=gateway says hi"], 2),
        (&["--where", "d.activities[*].name~NEEDLE-7c1f"], 1),
    ];
    for (query, hits) in searches {
        let mut args = vec!["recordings", "--recordings", rec, "--json", "search"];
        args.extend_from_slice(query);
        let out = run_ok(&args);
        let found = String::from_utf8_lossy(&out.stdout).lines().count();
        assert_eq!(found, hits, "search {query:?}");
    }
    let out = run_bin(&[
        "recordings",
        "--recordings",
        rec,
        "search",
        "--where",
        "d.x[oops",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JSON path"));

    // `recordings list` takes the same filters: only the session holding the planted frame.
    let out = run_ok(&[
        "recordings",
        "--recordings",
        rec,
        "--json",
        "list",
        "--text",
        PLANTED,
    ]);
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["kind"], "gateway");
    assert!(id.starts_with(&format!("gw:{}:", rows[0]["id"])));
    let out = run_ok(&[
        "recordings",
        "--recordings",
        rec,
        "--json",
        "list",
        "--event",
        "NUMBERS",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn post_message(recorder: &Recorder, body: &Value) {
    let out = curl(
        recorder,
        "https://discord.com/api/v9/channels/81384788765712399/messages",
        &[
            "--data",
            &body.to_string(),
            "-H",
            "content-type: application/json",
        ],
    );
    assert!(out.status.success());
}

/// The "old client": its own user and a message post.
fn old_client(recorder: &Recorder) {
    assert!(curl(recorder, "https://discord.com/api/v9/users/@me", &[])
        .status
        .success());
    post_message(recorder, &json!({"content": "hello", "tts": false}));
}

/// The "new client": the same, but messages carry `flags` and it calls a new route.
fn new_client(recorder: &Recorder) {
    assert!(curl(recorder, "https://discord.com/api/v9/users/@me", &[])
        .status
        .success());
    post_message(
        recorder,
        &json!({"content": "hello", "tts": false, "flags": 4096}),
    );
    let out = curl(
        recorder,
        "https://discord.com/api/v9/users/@me/new-experiment-route",
        &[],
    );
    assert!(out.status.success());
}

#[test]
fn diff_two_recordings_and_two_ranges_of_one() {
    let stand_in = FakeDiscord::start_echoing();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    old_client(&recorder);
    std::thread::sleep(Duration::from_millis(200));
    recorder.stop();
    let old = dir.path().join("old");
    std::fs::rename(dir.path().join("recordings"), &old).unwrap();
    // The new recording holds the old client, then (from `split` on) the new one.
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    old_client(&recorder);
    std::thread::sleep(Duration::from_millis(50));
    let split = now_us();
    std::thread::sleep(Duration::from_millis(50));
    new_client(&recorder);
    std::thread::sleep(Duration::from_millis(200));
    recorder.stop();
    let new = dir.path().join("recordings");

    let out = run_ok(&[
        "recordings",
        "--json",
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
    ]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        diff["routes"]["added"],
        json!(["GET /api/v9/users/@me/new-experiment-route"])
    );
    assert_eq!(diff["routes"]["removed"], json!([]));
    let changed = diff["routes"]["changed"].as_array().unwrap();
    let post = changed
        .iter()
        .find(|c| c["name"] == "POST /api/v9/channels/{channel_id}/messages")
        .unwrap_or_else(|| panic!("{diff}"));
    let flags: Vec<&Value> = post["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["field"] == "flags")
        .collect();
    assert!(
        flags.iter().any(|c| c["body"] == "request application/json"
            && c["change"] == "added"
            && c["to"] == "integer"),
        "{post}"
    );

    // Two ranges of one recording, as text.
    let split = split.to_string();
    let out = run_ok(&[
        "recordings",
        "diff",
        new.to_str().unwrap(),
        "--a-until",
        &split,
        "--b-since",
        &split,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+ GET /api/v9/users/@me/new-experiment-route"),
        "{text}"
    );
    assert!(
        text.contains("~ POST /api/v9/channels/{channel_id}/messages"),
        "{text}"
    );
    assert!(
        text.contains("request application/json: flags field added (integer)"),
        "{text}"
    );
    assert!(!text.contains("\n  - "), "nothing was removed: {text}");

    // A recording against itself: no differences.
    let out = run_ok(&[
        "recordings",
        "diff",
        old.to_str().unwrap(),
        old.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no differences"));
    let out = run_bin(&[
        "recordings",
        "diff",
        old.to_str().unwrap(),
        "--a-since",
        "last tuesday",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}
