//! gateway-proxy across processes on NATS JetStream, all real: `discord-mitm serve` as Discord
//! (4 shards, max_concurrency 1, IDENTIFY pacing enforced with op 9), `nats-server -js` on
//! loopback, two `gateway-proxy` processes running shards 0-1 and 2-3, a JetStream consumer.
mod gwproxy_nats_support;
mod gwproxy_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use gwproxy_nats_support::{
    channel_id, guild_id, post, proxy_config, GwProxy, NatsServer, Serve, ALICE_ID, BOT_TOKEN,
    SHARDS,
};
use gwproxy_support::{free_port, RawClient};
use serde_json::{json, Value};

/// One message as the consumer got it.
#[derive(Debug, Clone)]
struct Consumed {
    stream_seq: u64,
    shard: u32,
    seq: u64,
    session: String,
    msg_id: String,
    event: String,
    data: Value,
}

type Seen = Arc<Mutex<Vec<Consumed>>>;

fn header(message: &async_nats::Message, name: &str) -> String {
    message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(name))
        .map(|value| value.as_str().to_owned())
        .unwrap_or_default()
}

/// A durable pull consumer on `filter` collecting everything into `seen`, riding out NATS
/// restarts.
async fn consume(url: String, filter: &'static str, durable: &'static str, seen: Seen) {
    loop {
        let Ok(client) = async_nats::connect(&url).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let js = jetstream::new(client);
        let consumer = match js.get_stream("discord").await {
            Ok(stream) => {
                stream
                    .get_or_create_consumer(
                        durable,
                        consumer::pull::Config {
                            durable_name: Some(durable.to_owned()),
                            filter_subject: filter.to_owned(),
                            ack_policy: consumer::AckPolicy::Explicit,
                            ..Default::default()
                        },
                    )
                    .await
            }
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Ok(consumer) = consumer else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Ok(mut messages) = consumer.messages().await else {
            continue;
        };
        while let Some(message) = messages.next().await {
            let Ok(message) = message else {
                break;
            };
            let stream_seq = message.info().map(|info| info.stream_sequence).unwrap_or(0);
            let consumed = Consumed {
                stream_seq,
                shard: header(&message, "Discord-Shard")
                    .parse()
                    .unwrap_or(u32::MAX),
                seq: header(&message, "Discord-Seq").parse().unwrap_or(0),
                session: header(&message, "Discord-Session-Id"),
                msg_id: message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|value| value.as_str().to_owned())
                    .unwrap_or_default(),
                event: header(&message, "Discord-Event"),
                data: serde_json::from_slice(&message.payload).unwrap_or(Value::Null),
            };
            seen.lock().unwrap().push(consumed);
            let _ = message.ack().await;
        }
    }
}

/// Waits until `seen` holds `want` distinct message contents starting with `prefix`.
fn wait_contents(seen: &Seen, prefix: &str, want: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let have = contents(seen, prefix).len();
        if have >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {have} of {want} `{prefix}` messages reached the consumer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Content → stream sequence numbers it is stored under.
fn contents(seen: &Seen, prefix: &str) -> BTreeMap<String, Vec<u64>> {
    let mut by_content: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for item in seen.lock().unwrap().iter() {
        let Some(content) = item.data["content"].as_str() else {
            continue;
        };
        if !content.starts_with(prefix) {
            continue;
        }
        let stored = by_content.entry(content.to_owned()).or_default();
        if !stored.contains(&item.stream_seq) {
            stored.push(item.stream_seq);
        }
    }
    by_content
}

/// Seconds since midnight of each `bot IDENTIFY admitted` line in serve's log, with the shard.
fn admitted_identifies(log: &str) -> Vec<(f64, u32)> {
    log.lines()
        .filter(|line| line.contains("bot IDENTIFY admitted"))
        .filter_map(|line| {
            let time = line.get(11..26)?;
            let mut parts = time.split(':');
            let hours: f64 = parts.next()?.parse().ok()?;
            let minutes: f64 = parts.next()?.parse().ok()?;
            let seconds: f64 = parts.next()?.trim_end_matches('Z').parse().ok()?;
            let shard = line
                .split("shard_id=")
                .nth(1)?
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()?;
            Some((hours * 3600.0 + minutes * 60.0 + seconds, shard))
        })
        .collect()
}

fn nats_section(url: &str) -> Value {
    json!({"url": url, "stream": "discord", "subject_prefix": "discord",
           "buffer": 16, "max_in_flight": 8})
}

#[test]
fn two_processes_share_pacing_publish_exactly_once_and_survive_kill_9_and_nats_outage() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut nats) = NatsServer::start(&dir.path().join("jetstream")) else {
        return;
    };
    // serve's GET /gateway/bot says 4 shards, max_concurrency 1; the proxies take the count
    // from it.
    let serve = Serve::start(
        dir.path(),
        &["--gateway-identify-pacing", "--gateway-bot-shards", "4"],
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let url = nats.url();
    let mut a = GwProxy::spawn(
        &dir.path().join("a"),
        &proxy_config(port_a, &serve.http(), 0, 1, Some(nats_section(&url))),
    );
    let mut b = GwProxy::spawn(
        &dir.path().join("b"),
        &proxy_config(port_b, &serve.http(), 2, 3, Some(nats_section(&url))),
    );
    // Four IDENTIFYs in one bucket, 5 s apart, whichever process gets the slot.
    a.wait_healthy(Duration::from_secs(60));
    b.wait_healthy(Duration::from_secs(60));
    let log = serve.log_text();
    assert!(
        !log.contains("too fast"),
        "serve refused an IDENTIFY:\n{log}"
    );
    let mut identifies = admitted_identifies(&log);
    identifies.sort_by(|x, y| x.0.total_cmp(&y.0));
    let shards: std::collections::BTreeSet<u32> = identifies.iter().map(|(_, s)| *s).collect();
    assert_eq!(shards.len(), 4, "{identifies:?}");
    for pair in identifies.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= 5.0,
            "IDENTIFYs closer than 5 s: {identifies:?}"
        );
    }

    // Each process serves its own range and counts the whole bot.
    for (proxy, first, last) in [(&a, 0, 1), (&b, 2, 3)] {
        assert_eq!(proxy.get("/shard-count").unwrap().1, "4");
        assert_eq!(
            proxy.metric("gateway_process_shard_range{bound=\"first\"}"),
            Some(f64::from(first))
        );
        assert_eq!(
            proxy.metric("gateway_process_shard_range{bound=\"last\"}"),
            Some(f64::from(last))
        );
        assert_eq!(proxy.metric("gateway_nats_connected"), Some(1.0));
    }
    let (outside, inside) = runtime.block_on(async {
        let mut client = RawClient::connect(&format!("ws://127.0.0.1:{port_a}")).await;
        client
            .send(json!({"op": 2, "d": {"token": BOT_TOKEN, "intents": 33281,
                "properties": {}, "shard": [2, SHARDS]}}))
            .await;
        let outside = client.next().await.unwrap_err();
        let mut client = RawClient::connect(&format!("ws://127.0.0.1:{port_b}")).await;
        client
            .send(json!({"op": 2, "d": {"token": BOT_TOKEN, "intents": 33281,
                "properties": {}, "shard": [2, SHARDS]}}))
            .await;
        let (ready, _) = client.until("READY").await;
        (outside, ready["d"]["shard"].clone())
    });
    assert_eq!(outside, Some(4010), "a shard outside the range gets 4010");
    assert_eq!(inside, json!([2, SHARDS]));

    let seen: Seen = Arc::default();
    runtime.spawn(consume(
        url.clone(),
        "discord.*.MESSAGE_CREATE",
        "test-messages",
        seen.clone(),
    ));

    runtime.block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        // Each of the four IDENTIFYs took one start from the shared session_start_limit.
        let shards_kv = jetstream::new(client.clone())
            .get_key_value("discord-shards")
            .await
            .unwrap();
        let budget = shards_kv
            .get("session-start-budget")
            .await
            .unwrap()
            .unwrap();
        let budget: Value = serde_json::from_slice(&budget).unwrap();
        assert_eq!(budget["remaining"], 996, "{budget}");
        // A worker asks shard 1 (guild 1) for members; the chunk comes back on the stream.
        let chunks: Seen = Arc::default();
        tokio::spawn(consume(
            url.clone(),
            "discord.*.GUILD_MEMBERS_CHUNK",
            "test-chunks",
            chunks.clone(),
        ));
        let reply = client
            .request(
                "discord.rpc.1.command",
                json!({"op": 8, "d": {"guild_id": guild_id(1).to_string(), "query": "ali",
                       "limit": 10, "nonce": "worker-1"}})
                .to_string()
                .into(),
            )
            .await
            .unwrap();
        let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(reply, json!({"ok": true, "shard": 1}));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = chunks
                .lock()
                .unwrap()
                .iter()
                .find(|c| c.data["nonce"] == "worker-1")
                .cloned();
            if let Some(chunk) = got {
                assert_eq!(chunk.shard, 1);
                assert_eq!(chunk.data["members"][0]["user"]["id"], ALICE_ID);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no GUILD_MEMBERS_CHUNK for the worker"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let refused = client
            .request(
                "discord.rpc.1.command",
                json!({"op": 2, "d": {}}).to_string().into(),
            )
            .await
            .unwrap();
        let refused: Value = serde_json::from_slice(&refused.payload).unwrap();
        assert_eq!(refused["ok"], false);

        // Cache queries are answered by the process owning the guild's shard.
        for (n, port) in [(3u64, port_b), (0, port_a)] {
            let reply = client
                .request(
                    "discord.rpc.cache.query",
                    json!({"kind": "channel", "guild_id": guild_id(n).to_string(),
                           "id": channel_id(n).to_string()})
                    .to_string()
                    .into(),
                )
                .await
                .unwrap();
            let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
            assert_eq!(reply["found"], true, "{reply}");
            assert_eq!(reply["shard"], n % u64::from(SHARDS));
            assert_eq!(reply["data"]["name"], "general");
            assert!(
                reply["process"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("gateway-proxy:{port}:")),
                "{reply}"
            );
        }
    });

    // 200 messages across the eight guilds; proxy A is killed -9 after 80 and restarted.
    let http = reqwest::Client::new();
    let guilds = u64::from(SHARDS) * gwproxy_nats_support::GUILDS_PER_SHARD;
    let serve_http = serve.http();
    let poster = {
        let (http, serve_http) = (http.clone(), serve_http.clone());
        runtime.spawn(async move {
            for n in 0..200u64 {
                post(
                    &http,
                    &serve_http,
                    channel_id(n % guilds),
                    &format!("m-{n:03}"),
                )
                .await;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    wait_contents(&seen, "m-", 60, Duration::from_secs(30));
    a.kill9();
    std::thread::sleep(Duration::from_millis(300));
    a.respawn();
    a.wait_healthy(Duration::from_secs(30));
    runtime.block_on(poster).unwrap();
    wait_contents(&seen, "m-", 200, Duration::from_secs(60));
    assert_eq!(
        a.metric("gateway_shard_identifies_total{shard=\"0\"}"),
        Some(0.0),
        "the restarted process RESUMEd instead of identifying: {}",
        a.log()
    );
    assert!(
        a.log().contains("resuming from the NATS checkpoint"),
        "{}",
        a.log()
    );
    // The crashed process saved no cache: it rebuilt it from the stream.
    let cached = runtime.block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        let reply = client
            .request(
                "discord.rpc.cache.query",
                json!({"kind": "guild", "guild_id": guild_id(4).to_string()})
                    .to_string()
                    .into(),
            )
            .await
            .unwrap();
        serde_json::from_slice::<Value>(&reply.payload).unwrap()
    });
    assert_eq!(cached["found"], true, "{cached}");
    assert_eq!(cached["data"]["name"], "guild 4");
    assert!(cached["process"]
        .as_str()
        .unwrap()
        .starts_with(&format!("gateway-proxy:{port_a}:")));
    // Give late duplicates, if any were stored, time to arrive before judging.
    std::thread::sleep(Duration::from_millis(500));
    let stored = contents(&seen, "m-");
    assert_eq!(stored.len(), 200);
    let twice: Vec<_> = stored.iter().filter(|(_, seqs)| seqs.len() != 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    // Per shard, in upstream order; each on the subject and shard of its guild.
    let mut last: HashMap<(u32, String), u64> = HashMap::new();
    let mut by_stream: Vec<Consumed> = seen.lock().unwrap().clone();
    by_stream.sort_by_key(|item| item.stream_seq);
    by_stream.dedup_by_key(|item| item.stream_seq);
    for item in &by_stream {
        assert_eq!(item.event, "MESSAGE_CREATE");
        let guild: u64 = item.data["guild_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(item.shard, ((guild >> 22) % u64::from(SHARDS)) as u32);
        assert_eq!(item.msg_id, format!("{}:{}", item.session, item.seq));
        let previous = last.insert((item.shard, item.session.clone()), item.seq);
        assert!(
            previous.is_none_or(|previous| previous < item.seq),
            "shard {} out of order at {}",
            item.shard,
            item.seq
        );
    }

    // NATS goes away: a WebSocket client of B keeps getting messages, drops are counted.
    let dropped_before = b.metric("gateway_nats_dropped_total").unwrap();
    let mut client = runtime.block_on(async {
        let mut client = RawClient::connect(&format!("ws://127.0.0.1:{port_b}")).await;
        client
            .send(json!({"op": 2, "d": {"token": BOT_TOKEN, "intents": 33281,
                "properties": {}, "shard": [3, SHARDS]}}))
            .await;
        client.until("READY").await;
        client
    });
    nats.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.metric("gateway_nats_connected") != Some(0.0) {
        assert!(Instant::now() < deadline, "B never noticed NATS was gone");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(b.get("/health").unwrap().0, 503);
    runtime.block_on(async {
        for n in 0..60u64 {
            post(&http, &serve_http, channel_id(3), &format!("down-{n:02}")).await;
            let (message, _) = client.until("MESSAGE_CREATE").await;
            assert_eq!(message["d"]["content"], format!("down-{n:02}"));
        }
    });
    let dropped = b.metric("gateway_nats_dropped_total").unwrap() - dropped_before;
    assert!(
        dropped >= 30.0,
        "with 16 buffered and 8 in flight most of 60 drop: {dropped}"
    );

    // NATS is back: publishing resumes.
    nats.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.metric("gateway_nats_connected") != Some(1.0) {
        assert!(Instant::now() < deadline, "B never reconnected to NATS");
        std::thread::sleep(Duration::from_millis(100));
    }
    runtime.block_on(async {
        for n in 0..5u64 {
            post(&http, &serve_http, channel_id(3), &format!("back-{n}")).await;
        }
    });
    wait_contents(&seen, "back-", 5, Duration::from_secs(30));
    assert_eq!(b.get("/health").unwrap().0, 200);
}
