//! gateway-proxy on NATS JetStream, with the built binary (release), a real `nats-server -js`
//! (file storage) and a local stand-in upstream that bursts MESSAGE_CREATEs on each shard.
//! Each figure is printed with its target and ok/MISSED:
//! - throughput: one process × 4 shards, 4 × 25,000 dispatches sent back to back upstream;
//!   dispatches per second until JetStream acked every one (the proxy's own ack counter);
//! - latency: 2,000 dispatches on shard 0 one per millisecond; per event, the time from the
//!   stand-in writing it upstream to a core NATS subscriber on its subject receiving it (so the
//!   JetStream store and one NATS hop are included); p50 and p99;
//! - CPU: the same load on two processes × 2 shards vs one × 4; each process's CPU seconds
//!   (utime + stime) per 1,000 dispatches it published.
//!
//! Under `cargo test` (no `--bench`) each shard gets 500 dispatches and the latency 100.
//!
//! The stand-in's gateway sockets set TCP_NODELAY, as Discord's servers send small frames at
//! once. `GWPROXY_BENCH_NAGLE=1` leaves Nagle's algorithm on (how this bench ran before
//! 2026-12-06 17:00): frames then wait for the proxy's delayed ACKs and the latency turns
//! bimodal (p50 ~0.2 ms or ~17 ms, p99 ~40 ms). `GWPROXY_BENCH_BIN=path` runs another build of
//! the proxy.
#[path = "../tests/gwproxy_nats_support/mod.rs"]
mod gwproxy_nats_support;
#[path = "support/mode.rs"]
mod mode;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use gwproxy_nats_support::{free_port, GwProxy, NatsServer, BOT_TOKEN};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Dispatches sent on each shard for the throughput and CPU figures.
fn per_shard() -> u64 {
    mode::sized(25_000, 500)
}
const THROUGHPUT_TARGET: f64 = 50_000.0;
const LATENCY_TARGET_MS: f64 = 1.0;
const CPU_RATIO_TARGET: f64 = 1.2;
/// Dispatches timed one by one for the latency figure.
fn latency_events() -> u64 {
    mode::sized(2_000, 100)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

type Senders = Arc<Mutex<HashMap<u32, mpsc::UnboundedSender<Message>>>>;

/// The stand-in Discord: GET /gateway/bot (max_concurrency 16, so no pacing wait), HELLO,
/// READY with a fresh session per connection, heartbeat ACKs; dispatches come from `senders`.
struct Upstream {
    api: String,
    senders: Senders,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

async fn start_upstream() -> Upstream {
    let gw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("ws://{}", gw_listener.local_addr().unwrap());
    let body = json!({"url": gateway, "shards": 4, "session_start_limit":
        {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 16}});
    let app = axum::Router::new().route(
        "/api/v10/gateway/bot",
        axum::routing::get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}/api/v10", api_listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(api_listener, app).await;
    });
    let senders: Senders = Arc::default();
    let registry = senders.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = gw_listener.accept().await {
            // Discord writes each gateway frame out at once. With Nagle on this socket a frame
            // written while the previous one is unacked waits for the proxy's delayed ACK (up to
            // 40 ms on Linux; the proxy writes nothing back between heartbeats to piggyback it).
            if std::env::var_os("GWPROXY_BENCH_NAGLE").is_none() {
                let _ = stream.set_nodelay(true);
            }
            let registry = registry.clone();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let (mut sink, mut source) = ws.split();
                let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
                tokio::spawn(async move {
                    while let Some(message) = rx.recv().await {
                        if sink.feed(message).await.is_err() {
                            return;
                        }
                        while let Ok(message) = rx.try_recv() {
                            if sink.feed(message).await.is_err() {
                                return;
                            }
                        }
                        if sink.flush().await.is_err() {
                            return;
                        }
                    }
                });
                let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}});
                let _ = tx.send(Message::text(hello.to_string()));
                while let Some(Ok(message)) = source.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let Ok(payload) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    match payload["op"].as_u64() {
                        Some(1) => {
                            let _ = tx.send(Message::text(json!({"op": 11}).to_string()));
                        }
                        Some(2) => {
                            let shard = payload["d"]["shard"][0].as_u64().unwrap_or(0) as u32;
                            let ready = json!({"op": 0, "s": 1, "t": "READY", "d": {
                                "v": 10, "session_id": format!("bench-{shard}-{}", now_ns()),
                                "resume_gateway_url": "ws://127.0.0.1:1",
                                "user": {"id": "1", "username": "bench", "discriminator": "0",
                                         "avatar": null, "bot": true},
                                "guilds": [], "shard": [shard, 4],
                                "application": {"id": "1", "flags": 0}}});
                            let _ = tx.send(Message::text(ready.to_string()));
                            registry.lock().insert(shard, tx.clone());
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    Upstream { api, senders }
}

/// A MESSAGE_CREATE frame (~700 bytes, like a short message with its author and member).
fn message_frame(shard: u32, seq: u64, sent_ns: u64) -> Message {
    let guild = (((1_000 + u64::from(shard)) << 22) | 1).to_string();
    Message::text(
        json!({"op": 0, "s": seq, "t": "MESSAGE_CREATE", "d": {
            "id": (((5_000_000 + seq) << 22) | u64::from(shard)).to_string(),
            "channel_id": "200000000000000011", "guild_id": guild,
            "content": format!("benchmark message {seq} on shard {shard}"),
            "author": {"id": "100000000000000001", "username": "alice", "global_name": "Alice",
                       "discriminator": "0", "avatar": null, "public_flags": 0},
            "member": {"roles": [], "joined_at": "2024-01-01T00:00:00.000000+00:00",
                       "deaf": false, "mute": false, "flags": 0},
            "timestamp": "2024-01-01T00:00:00.000000+00:00", "edited_timestamp": null,
            "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
            "attachments": [], "embeds": [], "pinned": false, "type": 0, "flags": 0,
            "components": [], "nonce": seq.to_string(), "sent_ns": sent_ns}})
        .to_string(),
    )
}

fn nats_section(url: &str) -> Value {
    json!({"url": url, "stream": "bench", "subject_prefix": "bench"})
}

fn config(port: u16, api: &str, first: u32, last: u32, url: &str) -> Value {
    json!({"token": BOT_TOKEN, "intents": 33281, "port": port, "shards": [first, last],
           "shard_count": 4, "upstream_api": api, "nats": nats_section(url)})
}

/// CPU seconds (user + system) of process `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(") ").next().unwrap_or("");
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat; 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn wait_acked(proxies: &[&GwProxy], want: f64, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let acked: f64 = proxies
            .iter()
            .map(|p| p.metric("gateway_nats_acked_total").unwrap_or(0.0))
            .sum();
        if acked >= want {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "only {acked} of {want} acked");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `per_shard()` messages on each of the 4 shards at once; returns dispatches/s.
fn burst(runtime: &tokio::runtime::Runtime, upstream: &Upstream, proxies: &[&GwProxy]) -> f64 {
    let before: f64 = proxies
        .iter()
        .map(|p| p.metric("gateway_nats_acked_total").unwrap_or(0.0))
        .sum();
    let frames: Vec<(u32, Vec<Message>)> = (0..4u32)
        .map(|shard| {
            let frames = (0..per_shard())
                .map(|n| message_frame(shard, n + 2, 0))
                .collect();
            (shard, frames)
        })
        .collect();
    let senders = upstream.senders.lock().clone();
    let start = Instant::now();
    runtime.block_on(async {
        for (shard, frames) in frames {
            let sender = senders.get(&shard).expect("shard connected");
            for frame in frames {
                let _ = sender.send(frame);
            }
        }
    });
    let total = 4.0 * per_shard() as f64;
    let done = wait_acked(proxies, before + total, Duration::from_secs(300));
    total / done.duration_since(start).as_secs_f64()
}

fn start_proxy(dir: &std::path::Path, config: Value) -> GwProxy {
    let mut proxy = GwProxy::spawn(dir, &config);
    proxy.wait_healthy(Duration::from_secs(60));
    proxy
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn latency(runtime: &tokio::runtime::Runtime, upstream: &Upstream, url: &str) -> (f64, f64) {
    let sender = upstream.senders.lock().get(&0).cloned().expect("shard 0");
    let mut latencies = runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let mut subscriber = client.subscribe("bench.0.MESSAGE_CREATE").await.unwrap();
        client.flush().await.unwrap();
        let receive = tokio::spawn(async move {
            let mut latencies = Vec::new();
            while latencies.len() < latency_events() as usize {
                let Ok(Some(message)) =
                    tokio::time::timeout(Duration::from_secs(10), subscriber.next()).await
                else {
                    break;
                };
                let now = now_ns();
                let value: Value = serde_json::from_slice(&message.payload).unwrap_or_default();
                if let Some(sent) = value["sent_ns"].as_u64().filter(|sent| *sent > 0) {
                    latencies.push(now.saturating_sub(sent) as f64 / 1e6);
                }
            }
            latencies
        });
        for n in 0..latency_events() {
            let _ = sender.send(message_frame(0, 1_000_000 + n, now_ns()));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        receive.await.unwrap()
    });
    latencies.sort_by(f64::total_cmp);
    assert!(!latencies.is_empty(), "no event reached the subscriber");
    (percentile(&latencies, 0.5), percentile(&latencies, 0.99))
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    mode::announce();
    let dir = tempfile::tempdir().unwrap();
    println!(
        "gwproxy nats bench (load: {:?})",
        std::fs::read_to_string("/proc/loadavg").ok()
    );

    // One process, four shards.
    let Some(nats) = NatsServer::start(&dir.path().join("js1")) else {
        return;
    };
    let upstream = runtime.block_on(start_upstream());
    let one = start_proxy(
        &dir.path().join("one"),
        config(free_port(), &upstream.api, 0, 3, &nats.url()),
    );
    let pid = one.pid().expect("pid");
    let cpu_before = cpu_seconds(pid);
    let rate = burst(&runtime, &upstream, &[&one]);
    let single_cpu = (cpu_seconds(pid) - cpu_before) / (4.0 * per_shard() as f64) * 1000.0;
    println!(
        "gwproxy nats throughput: {rate:.0} dispatches/s published and acked (target >= {THROUGHPUT_TARGET:.0}) {}",
        verdict(rate >= THROUGHPUT_TARGET)
    );
    let (p50, p99) = latency(&runtime, &upstream, &nats.url());
    println!(
        "gwproxy nats latency: upstream write -> NATS subscriber p50 {p50:.3} ms, p99 {p99:.3} ms (target p50 <= {LATENCY_TARGET_MS} ms) {}",
        verdict(p50 <= LATENCY_TARGET_MS)
    );
    drop(one);
    drop(nats);

    // Two processes, two shards each, same load.
    let Some(nats) = NatsServer::start(&dir.path().join("js2")) else {
        return;
    };
    let upstream = runtime.block_on(start_upstream());
    let a = start_proxy(
        &dir.path().join("a"),
        config(free_port(), &upstream.api, 0, 1, &nats.url()),
    );
    let b = start_proxy(
        &dir.path().join("b"),
        config(free_port(), &upstream.api, 2, 3, &nats.url()),
    );
    let pids = [a.pid().expect("pid"), b.pid().expect("pid")];
    let before: Vec<f64> = pids.iter().map(|pid| cpu_seconds(*pid)).collect();
    let rate_two = burst(&runtime, &upstream, &[&a, &b]);
    let per_process: Vec<f64> = pids
        .iter()
        .zip(&before)
        .map(|(pid, before)| (cpu_seconds(*pid) - before) / (2.0 * per_shard() as f64) * 1000.0)
        .collect();
    let worst = per_process.iter().copied().fold(0.0, f64::max);
    let ratio = worst / single_cpu;
    println!(
        "gwproxy nats cpu: one process x 4 shards {single_cpu:.4} CPU s per 1,000 dispatches; two x 2: {:.4} and {:.4} ({rate_two:.0} dispatches/s together); worst/single {ratio:.2} (target <= {CPU_RATIO_TARGET}) {}",
        per_process[0],
        per_process[1],
        verdict(ratio <= CPU_RATIO_TARGET)
    );
    println!("gwproxy nats summary: done");
}
