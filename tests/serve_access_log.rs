//! `serve -v` writes one access line per request (method, route template, status, latency,
//! source, caller id) and one per gateway session step (open, identify, close with its code),
//! and never a token: not the fixture's, not a webhook's in the path, not one in the query.
//! `--log-format json` writes the same as one JSON object per line.
mod serve_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use serve_support::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// `serve -v` on the shared fixture, its stderr in `log`; returns the child and its address.
fn start(dir: &Path, log: &Path, extra: &[&str]) -> (Child, String) {
    let fixture = dir.join("fixture.json");
    std::fs::write(&fixture, FIXTURE).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args(["serve", "-v", "--api", "localhost:0", "--rate-limit", "off"])
        .args(["--exit-on-stdin-close", "--data"])
        .arg(dir.join("data"))
        .arg("--fixture")
        .arg(&fixture)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut addr = None;
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.strip_prefix("discord-mitm serve listening on http://") {
            addr = Some(rest.trim().to_string());
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let addr =
        addr.unwrap_or_else(|| panic!("no banner: {}", std::fs::read_to_string(log).unwrap()));
    (child, addr)
}

fn stop(mut child: Child) {
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A bot session: HELLO, IDENTIFY, READY, then the client closes with 1000.
async fn gateway_session(addr: &str) {
    let url = format!("ws://{addr}/?v=10&encoding=json");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"op\":10"), "{hello:?}");
    let identify = json!({"op": 2, "d": {"token": BOT.trim_start_matches("Bot "), "intents": 513,
        "properties": {"os": "linux", "browser": "test", "device": "test"}}});
    ws.send(Message::text(identify.to_string())).await.unwrap();
    loop {
        let frame = ws.next().await.unwrap().unwrap();
        if frame.to_text().unwrap_or("").contains("\"READY\"") {
            break;
        }
    }
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

/// Drives REST requests (one of them a webhook execute with its token in the path, one with a
/// token in the query) and a gateway session; returns the webhook's token and how many REST
/// requests were sent.
fn drive(addr: &str) -> (String, usize) {
    let api = Api::new(&format!("http://{addr}/api/v10"));
    expect(&api.get("/users/@me", ALICE), 200);
    expect(&api.get(&format!("/channels/{GENERAL}/messages"), BOT), 200);
    let hook = expect(
        &api.post(
            &format!("/channels/{GENERAL}/webhooks"),
            ALICE,
            json!({"name": "alerts"}),
        ),
        200,
    )
    .clone();
    let (id, token) = (
        hook["id"].as_str().unwrap(),
        hook["token"].as_str().unwrap(),
    );
    let executed = api.send(
        "POST",
        &format!("/webhooks/{id}/{token}?wait=true"),
        None,
        Some(&json!({"content": "from the hook"})),
        &[],
    );
    expect(&executed, 200);
    expect(&api.get("/users/@me?token=query-secret-123", BOB), 200);
    expect_error(&api.get("/users/@me", "not-a-token"), 401, 0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(gateway_session(addr));
    (token.to_string(), 6)
}

#[test]
fn serve_v_logs_each_request_by_template_and_caller_and_never_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let (child, addr) = start(dir.path(), &log_path, &[]);
    let (webhook_token, requests) = drive(&addr);
    std::thread::sleep(Duration::from_millis(300));
    stop(child);
    let log = std::fs::read_to_string(&log_path).unwrap();

    for secret in [
        ALICE,
        BOB,
        CAROL,
        DAVE,
        BOT.trim_start_matches("Bot "),
        "c2VjcmV0",
        &webhook_token,
        "query-secret-123",
        "not-a-token",
    ] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
    // `--color auto` (the default): a file gets no ANSI escapes.
    assert!(!log.contains('\u{1b}'), "ANSI in a file:\n{log}");
    let plain = log.clone();
    let answered: Vec<&str> = plain
        .lines()
        .filter(|l| l.contains("discord_mitm::access") && l.contains("answered"))
        .collect();
    // One line per REST request plus the gateway's upgrade request.
    assert_eq!(answered.len(), requests + 1, "{plain}");
    let line = |route: &str, status: u16| {
        answered
            .iter()
            .find(|l| {
                l.contains(&format!("route={route} ")) && l.contains(&format!("status={status} "))
            })
            .unwrap_or_else(|| panic!("no {route} {status} line in:\n{plain}"))
            .to_string()
    };
    let me = line("/api/v10/users/@me", 200);
    assert!(me.contains(&format!("caller={ALICE_ID}")), "{me}");
    assert!(
        me.contains("method=GET") && me.contains("source=backend"),
        "{me}"
    );
    assert!(
        me.contains("latency_ms=") && me.contains("client=127.0.0.1:"),
        "{me}"
    );
    let messages = line("/api/v10/channels/{channel_id}/messages", 200);
    assert!(messages.contains(&format!("caller={BOT_ID}")), "{messages}");
    let hook = line("/api/v10/webhooks/{webhook_id}/{webhook_token}", 200);
    assert!(hook.contains("method=POST"), "{hook}");
    assert!(
        answered
            .iter()
            .any(|l| l.contains(&format!("caller={BOB_ID}"))),
        "{plain}"
    );
    let refused = line("/api/v10/users/@me", 401);
    assert!(refused.contains("caller=-"), "{refused}");

    let gateway: Vec<&str> = plain.lines().filter(|l| l.contains("gateway ")).collect();
    assert!(
        gateway.iter().any(|l| l.contains("gateway open")),
        "{plain}"
    );
    let identify = gateway
        .iter()
        .find(|l| l.contains("gateway identify"))
        .unwrap_or_else(|| panic!("no identify in:\n{plain}"));
    assert!(identify.contains(&format!("caller={BOT_ID}")), "{identify}");
    let close = gateway
        .iter()
        .find(|l| l.contains("gateway close"))
        .unwrap_or_else(|| panic!("no close in:\n{plain}"));
    assert!(
        close.contains("close_code=1000") && close.contains("closed_by=client"),
        "{close}"
    );
}

#[test]
fn log_format_json_is_one_object_per_line_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.json");
    let (child, addr) = start(dir.path(), &log_path, &["--log-format", "json"]);
    let api = Api::new(&format!("http://{addr}/api/v10"));
    expect(&api.get("/users/@me", ALICE), 200);
    std::thread::sleep(Duration::from_millis(200));
    stop(child);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains('\u{1b}'), "ANSI in a file:\n{log}");
    assert!(!log.contains(ALICE), "{log}");
    let objects: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let access = objects
        .iter()
        .find(|o| o["target"] == "discord_mitm::access" && o["fields"]["message"] == "answered")
        .unwrap_or_else(|| panic!("no access object in:\n{log}"));
    let fields = &access["fields"];
    assert_eq!(fields["method"], "GET", "{access}");
    assert_eq!(fields["route"], "/api/v10/users/@me", "{access}");
    assert_eq!(fields["status"], 200, "{access}");
    assert_eq!(fields["source"], "backend", "{access}");
    assert_eq!(fields["caller"], ALICE_ID, "{access}");
    assert!(fields["latency_ms"].is_number(), "{access}");
    assert_eq!(access["level"], "INFO");
}
