//! Reading recordings made by `record`: `recordings`, `export har`, `routes`, and `hosts`.
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::path::Path;

use futures::{SinkExt, StreamExt};
use record_support::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use upstream::*;

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/discord-openapi.json"
);

/// Records a small session: REST calls (documented and not) and one zlib-stream gateway.
fn make_recording(dir: &Path) {
    let rt = runtime();
    let stand_in = FakeDiscord::start();
    let recorder = Recorder::start(dir, &stand_in, &[]);
    for url in [
        format!("https://discord.com/api/v9/channels/{CHANNEL_ID}/messages?limit=2"),
        "https://discord.com/api/v9/channels/81384788765712999/messages".to_string(),
        "https://discord.com/api/v9/users/@me".to_string(),
        "https://discord.com/api/v9/users/@me/affinities/guilds".to_string(),
        "https://discord.com/api/v9/nothing-here".to_string(),
    ] {
        let out = curl(&recorder, &url, &["--compressed"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = curl(
        &recorder,
        &format!("https://discord.com/api/v9/channels/{CHANNEL_ID}/messages"),
        &[
            "--data",
            r#"{"content":"hi"}"#,
            "-H",
            "content-type: application/json",
        ],
    );
    assert!(out.status.success());
    rt.block_on(async {
        let url = "wss://gateway.discord.gg/?v=10&encoding=json&compress=zlib-stream";
        let mut ws =
            websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", url)
                .await;
        ws.next().await.unwrap().unwrap();
        ws.send(Message::text(
            json!({"op": 2, "d": {"token": "secret-token"}}).to_string(),
        ))
        .await
        .unwrap();
        ws.next().await.unwrap().unwrap();
        ws.next().await.unwrap().unwrap();
        ws.send(Message::text(json!({"op": 99}).to_string()))
            .await
            .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    recorder.stop();
}

fn run_ok(args: &[&str]) -> String {
    let out = run_bin(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn recordings_export_and_routes_read_what_record_wrote() {
    let dir = workdir();
    make_recording(dir.path());
    let rec = dir.path().join("recordings");
    let rec = rec.to_str().unwrap();

    // recordings list / show / stats
    let list = run_ok(&["recordings", "--recordings", rec, "list"]);
    assert_eq!(list.lines().count(), 1 + 6 + 1, "{list}");
    assert!(
        list.contains("GET       200") && list.contains("gw:1"),
        "{list}"
    );
    let rows: Vec<Value> = run_ok(&[
        "recordings",
        "--recordings",
        rec,
        "--json",
        "list",
        "--limit",
        "2",
    ])
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["kind"], "gateway");
    let shown: Value = serde_json::from_str(&run_ok(&[
        "recordings",
        "--recordings",
        rec,
        "--json",
        "show",
        "1",
    ]))
    .unwrap();
    assert_eq!(shown["route"], "/api/v9/channels/{channel_id}/messages");
    assert_eq!(shown["response"]["body"]["encoding"], "gzip");
    let text = run_ok(&["recordings", "--recordings", rec, "show", "1"]);
    assert!(
        text.contains("decoded from gzip") && text.contains("hello from the stand-in"),
        "{text}"
    );
    let session: Value = serde_json::from_str(&run_ok(&[
        "recordings",
        "--recordings",
        rec,
        "--json",
        "show",
        "gw:1",
    ]))
    .unwrap();
    assert_eq!(session["compress"], "zlib-stream");
    assert_eq!(session["frames"][0]["payload"]["op"], 10);
    let stats: Value = serde_json::from_str(&run_ok(&[
        "recordings",
        "--recordings",
        rec,
        "--json",
        "stats",
    ]))
    .unwrap();
    assert_eq!(stats["exchanges"], 6);
    assert_eq!(stats["gateway_sessions"], 1);
    assert_eq!(stats["by_status"]["4xx"], 1);
    let missing = run_bin(&["recordings", "--recordings", rec, "show", "999"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no exchange 999"));
    let nowhere = run_bin(&[
        "recordings",
        "--recordings",
        dir.path().join("nope").to_str().unwrap(),
        "list",
    ]);
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("no recordings in"));

    // export har
    let har_path = dir.path().join("out.har");
    run_ok(&[
        "export",
        "har",
        "--recordings",
        rec,
        "--out",
        har_path.to_str().unwrap(),
    ]);
    let har: Value = serde_json::from_slice(&std::fs::read(&har_path).unwrap()).unwrap();
    assert_eq!(har["log"]["version"], "1.2");
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 7);
    let first = &entries[0];
    assert_eq!(first["request"]["method"], "GET");
    assert_eq!(
        first["request"]["queryString"],
        json!([{"name": "limit", "value": "2"}])
    );
    assert_eq!(first["response"]["status"], 200);
    let content: Value =
        serde_json::from_str(first["response"]["content"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(content[0]["content"], "hello from the stand-in");
    assert!(first["startedDateTime"].as_str().unwrap().ends_with('Z'));
    let post = entries
        .iter()
        .find(|e| e["request"]["method"] == "POST")
        .unwrap();
    assert_eq!(post["request"]["postData"]["text"], r#"{"content":"hi"}"#);
    let ws = entries
        .iter()
        .find(|e| e["_resourceType"] == "websocket")
        .unwrap();
    assert_eq!(ws["response"]["status"], 101);
    let messages = ws["_webSocketMessages"].as_array().unwrap();
    let kinds: Vec<(&str, u64)> = messages
        .iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap(),
                serde_json::from_str::<Value>(m["data"].as_str().unwrap()).unwrap()["op"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("receive", 10),
            ("send", 2),
            ("receive", 0),
            ("receive", 0),
            ("send", 99)
        ]
    );
    assert!(messages
        .iter()
        .all(|m| m["opcode"] == 1 && m["time"].as_f64().unwrap() > 1.7e9));
    assert!(!std::fs::read_to_string(&har_path)
        .unwrap()
        .contains("secret-token"));

    let filtered = dir.path().join("filtered.har");
    run_ok(&[
        "export",
        "har",
        "--recordings",
        rec,
        "--out",
        filtered.to_str().unwrap(),
        "--filter",
        "kind=rest status>=400",
    ]);
    let filtered: Value = serde_json::from_slice(&std::fs::read(&filtered).unwrap()).unwrap();
    let urls: Vec<&str> = filtered["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, vec!["https://discord.com/api/v9/nothing-here"]);
    let bad = run_bin(&[
        "export",
        "har",
        "--recordings",
        rec,
        "--out",
        "/dev/null",
        "--filter",
        "colour=red",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown field"));

    // routes
    let catalog: Value = serde_json::from_str(&run_ok(&[
        "routes",
        "--recordings",
        rec,
        "--spec",
        SPEC,
        "--json",
    ]))
    .unwrap();
    let routes = catalog["routes"].as_array().unwrap();
    let find = |method: &str, template: &str| {
        routes
            .iter()
            .find(|r| r["method"] == method && r["template"] == template)
            .unwrap_or_else(|| panic!("{method} {template} in {routes:?}"))
    };
    let messages = find("GET", "/api/v9/channels/{channel_id}/messages");
    assert_eq!(messages["count"], 2, "two channel ids, one template");
    assert_eq!(messages["statuses"], json!({"200": 2}));
    assert_eq!(messages["documented_as"], "/channels/{channel_id}/messages");
    assert_eq!(
        find("POST", "/api/v9/channels/{channel_id}/messages")["count"],
        1
    );
    assert_eq!(
        find("GET", "/api/v9/users/@me")["documented_as"],
        "/users/@me"
    );
    assert!(find("GET", "/api/v9/users/@me/affinities/guilds")["documented_as"].is_null());
    assert_eq!(catalog["gateway"]["received_ops"]["10"], 1);
    assert_eq!(
        catalog["gateway"]["dispatches"],
        json!({"MESSAGE_CREATE": 1, "READY": 1})
    );
    let undocumented = run_ok(&[
        "routes",
        "--recordings",
        rec,
        "--spec",
        SPEC,
        "--undocumented",
    ]);
    assert!(
        undocumented.contains("/api/v9/users/@me/affinities/guilds"),
        "{undocumented}"
    );
    assert!(undocumented.contains("/api/v9/nothing-here"));
    assert!(
        !undocumented.contains("{channel_id}/messages"),
        "{undocumented}"
    );
    assert!(undocumented.contains("READY"));

    // Without --spec, the built-in table of documented routes marks them the same way.
    let builtin: Value =
        serde_json::from_str(&run_ok(&["routes", "--recordings", rec, "--json"])).unwrap();
    assert_eq!(builtin["routes"], catalog["routes"]);
    let table = run_ok(&["routes", "--recordings", rec]);
    assert!(!table.contains(" ? "), "{table}");
    assert!(table.contains("built-in table"), "{table}");
    let undocumented_builtin = run_ok(&["routes", "--recordings", rec, "--undocumented"]);
    assert!(undocumented_builtin.contains("/api/v9/users/@me/affinities/guilds"));
    assert!(!undocumented_builtin.contains("{channel_id}/messages"));

    // `-` is standard input for the spec and standard output for the HAR.
    let spec = std::fs::read(SPEC).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args(["routes", "--recordings", rec, "--json", "--spec", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &spec).unwrap();
    let from_stdin = child.wait_with_output().unwrap();
    assert!(from_stdin.status.success());
    let from_stdin: Value = serde_json::from_slice(&from_stdin.stdout).unwrap();
    assert_eq!(from_stdin["routes"], catalog["routes"]);
    let cwd = tempfile::tempdir().unwrap();
    let har = std::process::Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args(["export", "har", "--recordings", rec, "--out", "-"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(
        har.status.success(),
        "{}",
        String::from_utf8_lossy(&har.stderr)
    );
    let har: Value = serde_json::from_slice(&har.stdout).unwrap();
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 7, "{har}");
    assert!(!cwd.path().join("-").exists(), "no file named -");
}

#[test]
fn hosts_lines_apply_and_remove_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let original = "127.0.0.1 localhost\n10.0.0.5 build-box # mine\n";
    std::fs::write(&hosts, original).unwrap();
    let printed = run_ok(&["hosts", "--address", "127.0.0.2"]);
    assert!(
        printed
            .lines()
            .any(|l| l == "127.0.0.2 gateway.discord.gg # added by discord-mitm"),
        "{printed}"
    );
    let path = hosts.to_str().unwrap();
    run_ok(&[
        "hosts",
        "--apply",
        "--address",
        "127.0.0.2",
        "--hosts-file",
        path,
    ]);
    let applied = std::fs::read_to_string(&hosts).unwrap();
    assert_eq!(applied, format!("{original}{printed}"));
    run_ok(&["hosts", "--remove", "--hosts-file", path]);
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), original);
}
