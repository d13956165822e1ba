//! gateway-proxy end to end: `discord-mitm serve` upstream, the proxy binary in between, raw
//! WebSocket clients on the bot side.
mod gwproxy_support;
#[path = "serve_gateway_support/mod.rs"]
mod serve_gateway_support;

use std::time::Duration;

use gwproxy_support::{config, free_port, Proxy, RawClient};
use serde_json::{json, Value};
use serve_gateway_support::{fixture, rest, Server, ALICE_TOKEN, BOT_TOKEN, GENERAL_ID, GUILD_ID};

fn guild_state(guild: &Value) -> Value {
    let ids = |field: &str| {
        let mut items: Vec<Value> = guild[field]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|item| json!([item["id"], item["name"]]))
            .collect();
        items.sort_by_key(|v| v.to_string());
        items
    };
    json!({"id": guild["id"], "name": guild["name"], "owner_id": guild["owner_id"],
           "channels": ids("channels"), "roles": ids("roles"),
           "members": guild["members"].as_array().map(Vec::len)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_gets_crafted_ready_and_guild_state_then_resumes_without_loss() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    let (server, proxy) = tokio::task::spawn_blocking(move || {
        let server = Server::start(&fixture(None));
        let proxy = Proxy::start_in(&dir_path, &config(port, &server.http(), BOT_TOKEN));
        (server, proxy)
    })
    .await
    .unwrap();

    // What serve itself sends a bot.
    let mut direct = RawClient::connect(&server.ws()).await;
    direct.identify(BOT_TOKEN).await;
    let (direct_ready, _) = direct.until("READY").await;
    let (direct_guild, _) = direct.until("GUILD_CREATE").await;

    let mut client = RawClient::connect(&proxy.ws()).await;
    // A wrong token is refused with 4004, a shard this proxy does not run with 4011/4010.
    let mut bad = RawClient::connect(&proxy.ws()).await;
    bad.identify("not-the-token").await;
    assert_eq!(bad.next().await.unwrap_err(), Some(4004));
    let mut bad = RawClient::connect(&proxy.ws()).await;
    bad.send(json!({"op": 2, "d": {"token": BOT_TOKEN, "intents": 1,
        "properties": {}, "shard": [0, 2]}}))
        .await;
    assert_eq!(bad.next().await.unwrap_err(), Some(4011));

    client.identify(BOT_TOKEN).await;
    let (ready, _) = client.until("READY").await;
    let d = &ready["d"];
    assert_eq!(ready["s"], 1);
    assert_ne!(
        d["session_id"], direct_ready["d"]["session_id"],
        "proxy crafts its own session"
    );
    assert_eq!(d["resume_gateway_url"], format!("ws://127.0.0.1:{port}"));
    assert_eq!(d["user"]["id"], direct_ready["d"]["user"]["id"]);
    assert_eq!(d["guilds"], json!([{"id": GUILD_ID, "unavailable": true}]));
    let (guild, _) = client.until("GUILD_CREATE").await;
    assert_eq!(guild["s"], 2);
    assert_eq!(guild_state(&guild["d"]), guild_state(&direct_guild["d"]));
    let session_id = d["session_id"].as_str().unwrap().to_owned();

    // A live event arrives with the next sequence number.
    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(json!({"content": "before"})),
    )
    .await;
    assert_eq!(status, 200);
    let (message, _) = client.until("MESSAGE_CREATE").await;
    assert_eq!(message["d"]["content"], "before");
    assert_eq!(message["s"], 3);
    let seq = client.seq.unwrap();
    client.close_resumable().await;

    // While the bot is away, alice talks.
    for n in 0..5 {
        let (status, _) = rest(
            &server,
            ALICE_TOKEN,
            "POST",
            &format!("/channels/{GENERAL_ID}/messages"),
            Some(json!({"content": format!("missed {n}")})),
        )
        .await;
        assert_eq!(status, 200);
    }
    // Give the proxy time to receive them upstream.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut resumed = RawClient::connect(&proxy.ws()).await;
    resumed
        .send(json!({"op": 6, "d": {"token": BOT_TOKEN, "session_id": session_id, "seq": seq}}))
        .await;
    let (_, missed) = resumed.until("RESUMED").await;
    let contents: Vec<&str> = missed
        .iter()
        .filter(|p| p["t"] == "MESSAGE_CREATE")
        .map(|p| p["d"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        ["missed 0", "missed 1", "missed 2", "missed 3", "missed 4"]
    );
    let seqs: Vec<u64> = missed.iter().map(|p| p["s"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > seq,
        "in order after {seq}: {seqs:?}"
    );

    // An unknown session gets op 9 false.
    let mut stranger = RawClient::connect(&proxy.ws()).await;
    stranger
        .send(json!({"op": 6, "d": {"token": BOT_TOKEN, "session_id": "nope", "seq": 1}}))
        .await;
    let invalid = stranger.next().await.unwrap();
    assert_eq!(
        (invalid["op"].as_u64(), invalid["d"].as_bool()),
        (Some(9), Some(false))
    );

    let metrics = tokio::task::spawn_blocking({
        let http = proxy.http();
        move || {
            reqwest::blocking::get(format!("{http}/metrics"))
                .unwrap()
                .text()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        metrics.contains("gateway_shard_ready{shard=\"0\",state=\"Active\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_shard_identifies_total{shard=\"0\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("gateway_cache_guilds 1"), "{metrics}");
    let shard_count = tokio::task::spawn_blocking({
        let http = proxy.http();
        move || {
            reqwest::blocking::get(format!("{http}/shard-count"))
                .unwrap()
                .text()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(shard_count, "1");
    drop(proxy);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_restart_resumes_upstream_instead_of_identifying() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    let (server, mut proxy, config) = tokio::task::spawn_blocking(move || {
        let server = Server::start(&fixture(None));
        let config = config(port, &server.http(), BOT_TOKEN);
        let proxy = Proxy::start_in(&dir_path, &config);
        (server, proxy, config)
    })
    .await
    .unwrap();
    let metrics = tokio::task::block_in_place(|| proxy.metrics());
    assert!(
        metrics.contains("gateway_shard_identifies_total{shard=\"0\"} 1"),
        "{metrics}"
    );

    let (stopped_cleanly, log) = tokio::task::block_in_place(|| proxy.stop());
    assert!(stopped_cleanly, "proxy exits 0 on SIGTERM: {log}");
    let state: Value =
        serde_json::from_slice(&std::fs::read(proxy.state_path()).expect("state file")).unwrap();
    let saved = &state["shards"]["0"];
    assert!(saved["session"]["session_id"].is_string(), "{state}");
    assert_eq!(saved["cache"]["guilds"][0]["id"], GUILD_ID);
    drop(proxy);

    // Alice talks while the proxy is down; the restarted proxy RESUMEs upstream and a client
    // identifying afterwards gets the guild from the saved cache.
    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(json!({"content": "while the proxy restarts"})),
    )
    .await;
    assert_eq!(status, 200);
    let dir_path = dir.path().to_owned();
    let proxy = tokio::task::spawn_blocking(move || Proxy::start_in(&dir_path, &config))
        .await
        .unwrap();
    let metrics = tokio::task::block_in_place(|| proxy.metrics());
    assert!(
        metrics.contains("gateway_shard_identifies_total{shard=\"0\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_shard_ready{shard=\"0\",state=\"Active\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("event_type=\"RESUMED\"} 1"), "{metrics}");
    // The message sent while the proxy was down came in with the upstream RESUME.
    assert!(
        metrics.contains("event_type=\"MESSAGE_CREATE\"} 1"),
        "{metrics}"
    );
    let mut client = RawClient::connect(&proxy.ws()).await;
    client.identify(BOT_TOKEN).await;
    let (ready, _) = client.until("READY").await;
    assert_eq!(
        ready["d"]["guilds"],
        json!([{"id": GUILD_ID, "unavailable": true}])
    );
    let (guild, _) = client.until("GUILD_CREATE").await;
    assert_eq!(guild["d"]["name"], "Test Guild");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_session_survives_a_proxy_restart_and_resumes_without_loss() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    let (server, mut proxy, config) = tokio::task::spawn_blocking(move || {
        let server = Server::start(&fixture(None));
        let config = config(port, &server.http(), BOT_TOKEN);
        let proxy = Proxy::start_in(&dir_path, &config);
        (server, proxy, config)
    })
    .await
    .unwrap();
    let post = |content: String| {
        let server = &server;
        async move {
            let (status, _) = rest(
                server,
                ALICE_TOKEN,
                "POST",
                &format!("/channels/{GENERAL_ID}/messages"),
                Some(json!({"content": content})),
            )
            .await;
            assert_eq!(status, 200);
        }
    };

    let mut client = RawClient::connect(&proxy.ws()).await;
    client.identify(BOT_TOKEN).await;
    let (ready, _) = client.until("READY").await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_owned();
    post("seen before the restart".into()).await;
    let (seen, _) = client.until("MESSAGE_CREATE").await;
    assert_eq!(seen["d"]["content"], "seen before the restart");
    // Sent while the client is busy: it never reads these before the proxy goes down.
    post("unread 0".into()).await;
    post("unread 1".into()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seq = seen["s"].as_u64().unwrap();

    let (stopped_cleanly, log) = tokio::task::block_in_place(|| proxy.stop());
    assert!(stopped_cleanly, "proxy exits 0 on SIGTERM: {log}");
    // The client was told to come back: a resumable close.
    let (_, unread) = {
        let mut before = Vec::new();
        let code = loop {
            match client.next().await {
                Ok(payload) => before.push(payload),
                Err(code) => break code,
            }
        };
        assert_eq!(code, Some(4000), "{log}");
        (code, before)
    };
    assert!(unread.len() <= 2);
    let state: Value =
        serde_json::from_slice(&std::fs::read(proxy.state_path()).expect("state file")).unwrap();
    assert_eq!(state["clients"][0]["session_id"], session_id.as_str());
    drop(proxy);

    // Alice talks while the proxy is down.
    for n in 0..3 {
        post(format!("while the proxy was down {n}")).await;
    }
    let dir_path = dir.path().to_owned();
    let proxy = tokio::task::spawn_blocking(move || Proxy::start_in(&dir_path, &config))
        .await
        .unwrap();

    // The bot comes back with its old session and gets everything after what it processed.
    let mut resumed = RawClient::connect(&proxy.ws()).await;
    resumed
        .send(json!({"op": 6, "d": {"token": BOT_TOKEN, "session_id": session_id, "seq": seq}}))
        .await;
    let (_, missed) = resumed.until("RESUMED").await;
    let contents: Vec<&str> = missed
        .iter()
        .map(|p| p["d"]["content"].as_str().unwrap_or("(not a message)"))
        .collect();
    assert_eq!(
        contents,
        [
            "unread 0",
            "unread 1",
            "while the proxy was down 0",
            "while the proxy was down 1",
            "while the proxy was down 2"
        ]
    );
    let seqs: Vec<u64> = missed.iter().map(|p| p["s"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (seq + 1..=seq + 5).collect();
    assert_eq!(seqs, expected);
    // Live again, numbered on.
    post("after the restart".into()).await;
    let (live, _) = resumed.until("MESSAGE_CREATE").await;
    assert_eq!(live["d"]["content"], "after the restart");
    assert_eq!(live["s"], seq + 7, "RESUMED took seq + 6");
    let metrics = tokio::task::block_in_place(|| proxy.metrics());
    assert!(
        metrics.contains("gateway_shard_identifies_total{shard=\"0\"} 0"),
        "{metrics}"
    );
    drop(server);
}
