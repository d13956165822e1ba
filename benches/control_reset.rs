//! Resets of the test-control API (`serve --control`) with a bot connected: 100 rounds of
//! "alice posts 10 messages, POST /_mitm/reset, the bot reconnects (RESUME refused with op 9,
//! IDENTIFY) and its GUILD_CREATEs show the fixture's channels again". Reports the reset's
//! round trip as the test suite sees it, the store restore alone, and the time until the bot
//! is back; the target is every reset ≤ 50 ms.
//!
//! Runs the built binary (`CARGO_BIN_EXE_discord-mitm`, or `BENCH_BIN`); the bot is a plain
//! gateway client that behaves as the libraries do after a close 4000 (RESUME, then IDENTIFY
//! on op 9 `false`) without their client-side identify pacing.
//! `cargo bench --bench control_reset` (BENCH_RESETS=100 by default; 5 under `cargo test`).
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "control-token-for-the-benchmark";
const BOT_TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.YmVuY2g";
const GUILDS: usize = 5;
const CHANNELS: usize = 20;
const USERS: usize = 50;

/// 50 users, 5 guilds of 20 channels with everyone a member of each.
fn fixture() -> Value {
    let mut users = vec![json!({"id": "100000000000000002", "username": "benchbot",
                                "bot": true, "token": BOT_TOKEN})];
    for n in 0..USERS {
        users.push(
            json!({"id": (100_000_000_000_000_100u64 + n as u64).to_string(),
                          "username": format!("user{n}"), "token": format!("user-token-{n}")}),
        );
    }
    let guilds: Vec<Value> = (0..GUILDS)
        .map(|g| {
            let base = 200_000_000_000_000_000u64 + (g as u64) * 1000;
            let channels: Vec<Value> = (0..CHANNELS)
                .map(|c| json!({"id": (base + 1 + c as u64).to_string(), "name": format!("ch{c}"), "type": 0}))
                .collect();
            let members: Vec<Value> = users.iter().map(|u| json!({"user_id": u["id"]})).collect();
            json!({"id": base.to_string(), "name": format!("guild {g}"),
                   "owner_id": "100000000000000100", "channels": channels, "members": members})
        })
        .collect();
    json!({"users": users, "guilds": guilds})
}

async fn control(base: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("Authorization", format!("Control {TOKEN}"))
        .json(&body)
        .send()
        .await
        .expect("control call");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// A bot that reconnects the way the libraries do after a close 4000.
async fn run_bot(url: String) {
    let mut resume: Option<(String, u64)> = None;
    loop {
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let identify = json!({"op": 2, "d": {"token": BOT_TOKEN, "intents": 1 | 512,
            "properties": {"os": "linux", "browser": "bench", "device": "bench"}}});
        let hello = match &resume {
            Some((session, seq)) => {
                json!({"op": 6, "d": {"token": BOT_TOKEN, "session_id": session, "seq": seq}})
            }
            None => identify.clone(),
        };
        let _ = ws.next().await; // HELLO
        if ws
            .send(Message::Text(hello.to_string().into()))
            .await
            .is_err()
        {
            continue;
        }
        while let Some(Ok(message)) = ws.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let Ok(payload) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if let Some(seq) = payload["s"].as_u64() {
                if let Some((_, last)) = resume.as_mut() {
                    *last = seq;
                }
            }
            match (payload["op"].as_u64(), payload["t"].as_str()) {
                (Some(0), Some("READY")) => {
                    let session = payload["d"]["session_id"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    resume = Some((session, payload["s"].as_u64().unwrap_or(0)));
                }
                (Some(9), _) => {
                    resume = None;
                    let _ = ws.send(Message::Text(identify.to_string().into())).await;
                }
                _ => {}
            }
        }
    }
}

fn stats(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:34} min {:7.2}  median {:7.2}  p95 {:7.2}  max {:7.2} ms",
        at(0.0),
        at(0.5),
        at(0.95),
        at(1.0)
    );
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let resets: usize = std::env::var("BENCH_RESETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100 } else { 5 });
    let binary = std::env::var("BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_discord-mitm").to_string());
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture_path = dir.path().join("fixture.json");
    std::fs::write(&fixture_path, fixture().to_string()).expect("fixture");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--rate-limit",
            "off",
            "--control",
            "--control-token",
            TOKEN,
        ])
        .arg("--api")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--fixture")
        .arg(&fixture_path)
        .stdout(Stdio::null())
        .spawn()
        .expect("start serve");
    let base = format!("http://127.0.0.1:{port}");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::spawn(run_bot(format!(
        "ws://127.0.0.1:{port}/?v=10&encoding=json"
    )));
    let first = json!({"type": "GUILD_CREATE", "timeout_ms": 20_000, "match": {"user_id": "100000000000000002"}});
    control(&base, reqwest::Method::POST, "/_mitm/events/wait", first).await;

    let (mut round_trips, mut restores, mut reconnects) = (Vec::new(), Vec::new(), Vec::new());
    let mut over = 0;
    for round in 0..resets {
        for n in 0..10 {
            let act = json!({"as": "user0", "action": "send_message", "channel_id": "200000000000000001",
                             "content": format!("round {round} message {n}")});
            control(&base, reqwest::Method::POST, "/_mitm/act", act).await;
        }
        let started = Instant::now();
        let reset = control(&base, reqwest::Method::POST, "/_mitm/reset", json!({})).await;
        let round_trip = started.elapsed().as_secs_f64() * 1000.0;
        if round_trip > 50.0 {
            over += 1;
        }
        round_trips.push(round_trip);
        restores.push(reset["took_us"].as_f64().unwrap_or(0.0) / 1000.0);
        // The bot is back once it has every guild again, each with the fixture's channels.
        let mut since = reset["cursor"].as_u64().unwrap_or(0);
        for _ in 0..GUILDS {
            let wait = json!({"type": "GUILD_CREATE", "since": since, "timeout_ms": 20_000,
                              "match": {"user_id": "100000000000000002"}});
            let found = control(&base, reqwest::Method::POST, "/_mitm/events/wait", wait).await;
            // Large payloads are logged reduced, with the sizes of what was left out.
            let data = &found["event"]["data"];
            let channels = data["channels"]
                .as_array()
                .map(Vec::len)
                .or_else(|| data["_sizes"]["channels"].as_u64().map(|n| n as usize))
                .unwrap_or(0);
            assert_eq!(
                channels, CHANNELS,
                "the bot saw a world that is not the fixture's"
            );
            since = found["cursor"].as_u64().unwrap_or(since);
        }
        reconnects.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    println!("control_reset: {resets} resets, {USERS} users, {GUILDS} guilds x {CHANNELS} channels, 10 messages undone each");
    stats("reset (POST /_mitm/reset round trip)", round_trips);
    stats("  of which the store restore", restores);
    stats("reset until the bot has the world", reconnects);
    println!("resets over 50 ms: {over} of {resets}");
    let _ = child.kill();
    let _ = child.wait();
}
