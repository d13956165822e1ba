//! gateway-proxy operations through the built binary: the config's `log_level` (and RUST_LOG
//! winning over it), per-client intents over one shard, and the shard latency in /metrics.
mod gwproxy_support;
#[path = "serve_gateway_support/mod.rs"]
mod serve_gateway_support;

use std::time::{Duration, Instant};

use gwproxy_support::{config, free_port, FakeUpstream, Proxy, RawClient};
use serde_json::{json, Value};
use serve_gateway_support::{fixture, rest, Server, ALICE_TOKEN, BOT_TOKEN, GENERAL_ID, GUILD_ID};

fn log_with(server: &Server, log_level: &str, rust_log: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(free_port(), &server.http(), BOT_TOKEN);
    config["log_level"] = json!(log_level);
    let mut proxy = Proxy::start_with_log(dir.path(), &config, rust_log);
    let (ok, log) = proxy.stop();
    assert!(ok, "{log}");
    strip_ansi(&log)
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn config_log_level_sets_verbosity_unless_rust_log_does() {
    let server = Server::start(&fixture(None));
    let debug = log_with(&server, "debug", None);
    assert!(debug.contains("DEBUG "), "{debug}");
    assert!(debug.contains("starting shards"), "{debug}");
    let info = log_with(&server, "INFO", None);
    assert!(info.contains("starting shards"), "{info}");
    assert!(!info.contains("DEBUG "), "{info}");
    let error = log_with(&server, "error", None);
    assert!(!error.contains("starting shards"), "{error}");
    let overridden = log_with(&server, "debug", Some("discord_mitm=error"));
    assert!(!overridden.contains("starting shards"), "{overridden}");
}

/// Reads `client`'s dispatches until `marker` CHANNEL_CREATE; returns the names and data.
async fn until_marker(client: &mut RawClient, marker: &str) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    loop {
        let payload = client.next().await.expect("socket open");
        if payload["op"] != 0 {
            continue;
        }
        let name = payload["t"].as_str().unwrap_or("").to_owned();
        if name == "CHANNEL_CREATE" && payload["d"]["name"] == marker {
            return seen;
        }
        seen.push((name, payload["d"].clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_gets_what_its_own_intents_cover() {
    const GUILDS: u64 = 1;
    const GUILD_MESSAGES: u64 = 1 << 9;
    const MESSAGE_CONTENT: u64 = 1 << 15;
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    let (server, proxy) = tokio::task::spawn_blocking(move || {
        let server = Server::start(&fixture(None));
        // The shard receives guilds, guild messages and their content.
        let config = config(free_port(), &server.http(), BOT_TOKEN);
        let proxy = Proxy::start_in(&dir_path, &config);
        (server, proxy)
    })
    .await
    .unwrap();
    let mut clients = Vec::new();
    for intents in [
        GUILDS,
        GUILDS | GUILD_MESSAGES,
        GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT,
    ] {
        let mut client = RawClient::connect(&proxy.ws()).await;
        client.identify_with(BOT_TOKEN, intents).await;
        let (guild, _) = client.until("GUILD_CREATE").await;
        assert_eq!(guild["d"]["id"], GUILD_ID);
        clients.push(client);
    }
    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(json!({"content": "secret plans", "embeds": [{"title": "more"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/guilds/{GUILD_ID}/channels"),
        Some(json!({"name": "marker", "type": 0})),
    )
    .await;
    assert_eq!(status, 201, "channel creation");

    let guilds_only = until_marker(&mut clients[0], "marker").await;
    assert!(
        guilds_only.iter().all(|(name, _)| name != "MESSAGE_CREATE"),
        "GUILDS alone must not deliver messages: {guilds_only:?}"
    );
    let no_content = until_marker(&mut clients[1], "marker").await;
    let message = &no_content
        .iter()
        .find(|(name, _)| name == "MESSAGE_CREATE")
        .expect("GUILD_MESSAGES delivers the message")
        .1;
    assert_eq!(
        message["content"], "",
        "content emptied without MESSAGE_CONTENT"
    );
    assert_eq!(message["embeds"], json!([]));
    assert_eq!(message["author"]["username"], "alice");
    let full = until_marker(&mut clients[2], "marker").await;
    let message = &full
        .iter()
        .find(|(name, _)| name == "MESSAGE_CREATE")
        .expect("message delivered")
        .1;
    assert_eq!(message["content"], "secret plans");
    assert_eq!(message["embeds"][0]["title"], "more");
    drop(proxy);
    drop(server);
}

fn latency_gauge(metrics: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("gateway_shard_latency_seconds{shard=\"0\"} "))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn shard_latency_is_the_heartbeat_round_trip() {
    let ack_delay = Duration::from_millis(120);
    let upstream = FakeUpstream::start(ack_delay);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = json!({"token": "fake-token", "intents": 513, "port": port,
        "upstream_api": upstream.api, "upstream_gateway": upstream.gateway});
    let proxy = Proxy::start_in(dir.path(), &config);
    let deadline = Instant::now() + Duration::from_secs(10);
    let latency = loop {
        if let Some(latency) = latency_gauge(&proxy.metrics()) {
            break latency;
        }
        assert!(Instant::now() < deadline, "{}", proxy.metrics());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        (0.12..1.0).contains(&latency),
        "latency {latency}s for ACKs delayed by 120 ms"
    );
    drop(proxy);
}
