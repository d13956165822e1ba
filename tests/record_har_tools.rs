//! The HAR export opens in real HAR consumers: mitmproxy (`mitmdump -n -r FILE.har`) and
//! haralyzer read every entry, and gateway sessions carry `_webSocketMessages` the way Chrome
//! DevTools writes and reads them. The recording mixes normal exchanges, a gzip body, a POST, a
//! 502, a 431, a failed TLS handshake (an entry without response) and a zstd-stream gateway.
//! The tools come from `scripts/setup-test-deps` (.venv/record-tools).
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use record_support::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use upstream::*;

fn tool(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/record-tools/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-test-deps",
        path.display()
    );
    path
}

fn make_recording(dir: &Path) {
    let rt = runtime();
    let stand_in = FakeDiscord::start();
    let recorder = Recorder::start(dir, &stand_in, &[]);
    let calls: &[(&str, &[&str])] = &[
        ("https://discord.com/api/v9/users/@me", &[]),
        (
            "https://discord.com/api/v9/channels/81384788765712384/messages?limit=2",
            &["--compressed"],
        ),
        (
            "https://discord.com/api/v9/channels/81384788765712384/messages",
            &[
                "--data",
                r#"{"content":"hi"}"#,
                "-H",
                "content-type: application/json",
            ],
        ),
        ("https://discord.com/api/v9/nothing-here", &[]),
        ("https://discord.com/big", &["-o", "/dev/null"]),
    ];
    for (url, extra) in calls {
        let out = curl(&recorder, url, extra);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A 431 and a refused TLS handshake become entries too.
    let many: Vec<String> = (0..150)
        .flat_map(|i| ["-H".to_string(), format!("X-Extra-{i}: {i}")])
        .collect();
    let args: Vec<&str> = many.iter().map(String::as_str).collect();
    curl(
        &recorder,
        "https://discord.com/api/v9/users/@me?many=1",
        &args,
    );
    let mut tcp = TcpStream::connect(recorder.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"CONNECT discord.com:443 HTTP/1.1\r\nHost: discord.com:443\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 12];
    tcp.read_exact(&mut answer).unwrap();
    tcp.write_all(b"\x16\x03\x01\x00\x05hello").unwrap();
    let _ = tcp.read_to_end(&mut Vec::new());
    rt.block_on(async {
        let url = "wss://gateway.discord.gg/?v=10&encoding=json&compress=zstd-stream";
        let mut ws =
            websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", url)
                .await;
        ws.next().await.unwrap().unwrap();
        let identify = json!({"op": 2, "d": {"token": "har-secret-token", "intents": 1}});
        ws.send(Message::text(identify.to_string())).await.unwrap();
        ws.next().await.unwrap().unwrap();
        ws.next().await.unwrap().unwrap();
        ws.send(Message::text(json!({"op": 99}).to_string()))
            .await
            .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });
    std::thread::sleep(Duration::from_millis(200));
    recorder.stop();
}

#[test]
fn har_export_opens_in_mitmproxy_and_haralyzer_with_chrome_websocket_messages() {
    let mitmdump = tool("mitmdump");
    let python = tool("python");
    let dir = workdir();
    make_recording(dir.path());
    let har_path = dir.path().join("out.har");
    let out = run_bin(&[
        "export",
        "har",
        "--recordings",
        dir.path().join("recordings").to_str().unwrap(),
        "--out",
        har_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let har: Value = serde_json::from_slice(&std::fs::read(&har_path).unwrap()).unwrap();
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 8, "{entries:#?}");

    // mitmproxy reads the HAR as flows and prints one line per flow.
    let out = Command::new(&mitmdump)
        .args(["-n", "--set", "flow_detail=1", "-r"])
        .arg(&har_path)
        .env("HOME", dir.path())
        .output()
        .expect("run mitmdump");
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let errors = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "mitmdump failed:\n{printed}\n{errors}"
    );
    assert!(
        !printed.contains("Traceback") && !errors.contains("Traceback"),
        "{printed}\n{errors}"
    );
    // (mitmdump shortens long URLs with an ellipsis.)
    for expected in [
        "GET https://discord.com/api/v9/users/@me\n",
        "<< 200 OK 85b",
        "POST https://discord.com/api/v9/channels/",
        "GET https://discord.com/api/v9/nothing-here",
        "<< 404 Not Found",
        "GET https://discord.com/big",
        "<< 200 OK 2.0m",
        "GET https://discord.com/api/v9/users/@me?many=1\n          << 431 ",
        "CONNECT discord.com:443",
        "GET wss://gateway.discord.gg",
        "<< 101 Switching Protocols",
    ] {
        assert!(
            printed.contains(expected),
            "mitmdump did not show {expected:?}:\n{printed}\n{errors}"
        );
    }

    // haralyzer parses every entry with its own model of HAR 1.2.
    let script = r#"
import json, sys
from haralyzer import HarParser
with open(sys.argv[1]) as f:
    parser = HarParser(json.load(f))
page_entries = parser.har_data["entries"]
print(len(page_entries))
for raw in page_entries:
    from haralyzer import HarEntry
    entry = HarEntry(raw)
    print(entry.request.method, entry.request.url, entry.response.status, entry.time,
          len(entry.request.headers), entry.response.mimeType)
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&har_path)
        .output()
        .expect("run haralyzer");
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "haralyzer failed:\n{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = printed.lines();
    assert_eq!(lines.next(), Some("8"));
    let described: Vec<&str> = lines.collect();
    assert!(
        described
            .iter()
            .any(|l| l.starts_with("CONNECT https://discord.com 0 ")),
        "{printed}"
    );
    assert!(
        described
            .iter()
            .any(|l| l.starts_with("GET https://discord.com/api/v9/users/@me?many=1 431 ")),
        "{printed}"
    );

    // What Chrome DevTools needs to show the gateway's Messages tab.
    let ws = entries
        .iter()
        .find(|e| e["_resourceType"] == "websocket")
        .unwrap();
    assert_eq!(ws["response"]["status"], 101);
    let messages = ws["_webSocketMessages"].as_array().unwrap();
    assert_eq!(messages.len(), 5, "{messages:#?}");
    let started = ws["startedDateTime"].as_str().unwrap();
    assert!(started.ends_with('Z'), "{started}");
    for message in messages {
        let object = message.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["data", "opcode", "time", "type"]);
        assert!(["send", "receive"].contains(&message["type"].as_str().unwrap()));
        assert_eq!(message["opcode"], 1);
        // Seconds since the epoch as a float, like Chrome's monotonic-to-wall conversion.
        let time = message["time"].as_f64().unwrap();
        assert!(time > 1.7e9 && time < 1e10, "{time}");
        let payload: Value = serde_json::from_str(message["data"].as_str().unwrap()).unwrap();
        assert!(payload["op"].is_u64());
    }
    let times: Vec<f64> = messages
        .iter()
        .map(|m| m["time"].as_f64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(!std::fs::read_to_string(&har_path)
        .unwrap()
        .contains("har-secret-token"));
}
