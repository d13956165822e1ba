//! Gateway load figures for `scripts/bench-gateway`, against the built `discord-mitm serve`
//! (release) on loopback, with this process as the clients:
//! - memory per idle session, uncompressed and zlib-stream (server RSS delta / sessions);
//! - fan-out: MESSAGE_CREATEs to N zlib-stream sessions, deliveries per second;
//! - 10,000 idle sessions held with heartbeats for a while, all still acknowledged.
//!
//! Environment: GW_BENCH_SESSIONS (default 1000), GW_BENCH_IDLE (10000), GW_BENCH_HOLD_SECS
//! (50), GW_BENCH_MESSAGES (100), GW_BENCH_PHASES (memory,fanout,idle), GW_BENCH_SERVE_ARGS
//! (extra `serve` flags, e.g. `--gateway-zlib-history`), GW_BENCH_BIN (the `discord-mitm` to
//! measure; default: this build's). Raise the fd limit first (the script
//! does).
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const BOT_TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0";
const ALICE_TOKEN: &str = "alice-token";
const GENERAL_ID: &str = "200000000000000011";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let fixture = json!({
            "users": [
                {"id": "100000000000000001", "username": "alice", "token": ALICE_TOKEN},
                {"id": "100000000000000002", "username": "pingbot", "bot": true, "token": BOT_TOKEN}],
            "guilds": [{"id": "200000000000000001", "name": "Bench Guild", "owner_id": "100000000000000001",
                "channels": [{"id": GENERAL_ID, "name": "general", "type": 0}],
                "members": [{"user_id": "100000000000000001"}, {"user_id": "100000000000000002"}]}]
        });
        let path = dir.path().join("fixture.json");
        std::fs::write(&path, fixture.to_string()).expect("fixture");
        // GW_BENCH_BIN measures another build (a base commit's) with this same client.
        let binary = std::env::var("GW_BENCH_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_discord-mitm").to_string());
        let mut child = Command::new(binary)
            .args([
                "serve",
                "--api",
                "127.0.0.1:0",
                "--rate-limit",
                "off",
                "--data",
            ])
            .arg(dir.path().join("data"))
            .arg("--fixture")
            .arg(&path)
            .args(
                std::env::var("GW_BENCH_SERVE_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(Result::ok).expect("banner");
        let addr = first
            .rsplit("http://")
            .next()
            .expect("addr")
            .trim()
            .to_string();
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            _dir: dir,
        }
    }

    /// CPU time (user + system) the server process has used so far.
    fn cpu_time(&self) -> Duration {
        cpu_time_of(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Resident memory of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// User + system CPU time from a `/proc/.../stat` file (zero if unreadable).
fn cpu_time_of(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at `state`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / per_second)
}

/// Counters shared by the client tasks.
#[derive(Default)]
struct Counters {
    ready: AtomicUsize,
    frames: AtomicUsize,
    acks: AtomicUsize,
    closed: AtomicUsize,
    /// Wire bytes of the counted dispatch frames.
    frame_bytes: AtomicUsize,
    /// Their size once inflated.
    plain_bytes: AtomicUsize,
}

/// One bot session: identify, wait for GUILD_CREATE (frame 3), then count frames and heartbeat.
async fn session(url: String, counters: Arc<Counters>, mut stop: mpsc::Receiver<()>) {
    // Like a real bot, retry a refused connect (a burst can overflow the listen backlog).
    let mut attempt = 0;
    let ws = loop {
        match tokio_tungstenite::connect_async(&url).await {
            Ok((ws, _)) => break ws,
            Err(_) if attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(_) => {
                counters.closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    };
    let (mut write, mut read) = ws.split();
    let identify = json!({"op": 2, "d": {"token": BOT_TOKEN, "intents": 1 | (1 << 9) | (1 << 15),
        "properties": {"os": "linux", "browser": "bench", "device": "bench"}}});
    if write
        .send(Message::text(identify.to_string()))
        .await
        .is_err()
    {
        counters.closed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let compressed = url.contains("zlib-stream");
    let mut inflate = discord_mitm::gateway::compress::ZlibStreamDecompressor::new();
    let mut seen = 0usize;
    let jitter = Duration::from_millis(rand_jitter(&url) % 41_250);
    let mut beat = tokio::time::interval_at(
        tokio::time::Instant::now() + jitter,
        Duration::from_millis(41_250),
    );
    loop {
        tokio::select! {
            frame = read.next() => match frame {
                Some(Ok(Message::Text(text))) if !compressed => {
                    seen += 1;
                    if text.as_str().contains("\"op\":11") {
                        counters.acks.fetch_add(1, Ordering::Relaxed);
                    } else if seen == 3 {
                        counters.ready.fetch_add(1, Ordering::Relaxed);
                    } else if seen > 3 {
                        counters.frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let Ok(Some(message)) = inflate.push_frame(&bytes) else {
                        continue;
                    };
                    seen += 1;
                    if seen == 3 {
                        counters.ready.fetch_add(1, Ordering::Relaxed);
                    } else if message.starts_with(b"{\"op\":11") {
                        counters.acks.fetch_add(1, Ordering::Relaxed);
                    } else if seen > 3 {
                        counters.frames.fetch_add(1, Ordering::Relaxed);
                        counters.frame_bytes.fetch_add(bytes.len(), Ordering::Relaxed);
                        counters.plain_bytes.fetch_add(message.len(), Ordering::Relaxed);
                    }
                }
                Some(Ok(_)) => {}
                _ => {
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
            _ = beat.tick() => {
                if seen >= 3 && write.send(Message::text(json!({"op": 1, "d": 2}).to_string())).await.is_err() {
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            _ = stop.recv() => {
                let _ = write.send(Message::Close(None)).await;
                return;
            }
        }
    }
}

fn rand_jitter(seed: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut hasher);
    Instant::now().hash(&mut hasher);
    hasher.finish()
}

struct Group {
    counters: Arc<Counters>,
    stops: Vec<mpsc::Sender<()>>,
}

impl Group {
    async fn open(server: &Server, query: &str, n: usize) -> Group {
        let counters = Arc::new(Counters::default());
        let mut stops = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = mpsc::channel(1);
            stops.push(tx);
            let url = format!("ws://{}/?{query}&n={i}", server.addr);
            tokio::spawn(session(url, counters.clone(), rx));
            if i % 200 == 199 {
                // Let READYs flow instead of queueing thousands of handshakes at once.
                wait_until(
                    || {
                        counters.ready.load(Ordering::Relaxed)
                            + counters.closed.load(Ordering::Relaxed)
                            + 100
                            >= i
                    },
                    60,
                )
                .await;
            }
        }
        wait_until(
            || {
                counters.ready.load(Ordering::Relaxed) + counters.closed.load(Ordering::Relaxed)
                    >= n
            },
            120,
        )
        .await;
        let failed = counters.closed.load(Ordering::Relaxed);
        assert_eq!(failed, 0, "{failed} sessions failed to open");
        Group { counters, stops }
    }

    async fn close(self) {
        for stop in &self.stops {
            let _ = stop.send(()).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_until(mut done: impl FnMut() -> bool, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn post(http: &reqwest::Client, server: &Server, content: &str) {
    let response = http
        .post(format!(
            "http://{}/api/v10/channels/{GENERAL_ID}/messages",
            server.addr
        ))
        .header("Authorization", ALICE_TOKEN)
        .json(&json!({"content": content}))
        .send()
        .await
        .expect("post");
    assert!(response.status().is_success(), "{}", response.status());
}

async fn settle(server: &Server) -> u64 {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.rss_kib()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let scale = |full_size: usize, smoke: usize| if full { full_size } else { smoke };
    let sessions = env_usize("GW_BENCH_SESSIONS", scale(1000, 20));
    let idle = env_usize("GW_BENCH_IDLE", scale(10_000, 50));
    let hold = env_usize("GW_BENCH_HOLD_SECS", scale(50, 0)) as u64;
    let messages = env_usize("GW_BENCH_MESSAGES", scale(100, 3));
    let phases = std::env::var("GW_BENCH_PHASES").unwrap_or_else(|_| "memory,fanout,idle".into());
    let phase = |name: &str| phases.split(',').any(|p| p.trim() == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let server = Server::start();
        let http = reqwest::Client::new();

        if phase("memory") {
            let base = settle(&server).await;
            let plain = Group::open(&server, "v=10&encoding=json", sessions).await;
            let with_plain = settle(&server).await;
            println!(
                "memory: {sessions} idle uncompressed sessions: {:.1} KiB each (server RSS {base} -> {with_plain} KiB)",
                (with_plain.saturating_sub(base)) as f64 / sessions as f64
            );
            plain.close().await;
        }

        if phase("memory") || phase("fanout") {
            let base = settle(&server).await;
            let zlib = Group::open(&server, "v=10&encoding=json&compress=zlib-stream", sessions).await;
            let with_zlib = settle(&server).await;
            println!(
                "memory: {sessions} idle zlib-stream sessions: {:.1} KiB each (server RSS {base} -> {with_zlib} KiB)",
                (with_zlib.saturating_sub(base)) as f64 / sessions as f64
            );
            if phase("fanout") {
                fan_out(&server, &http, &zlib, sessions, messages).await;
            }
            zlib.close().await;
        }

        if phase("idle") {
            let base = settle(&server).await;
            let many = Group::open(&server, "v=10&encoding=json", idle).await;
            let opened = settle(&server).await;
            println!(
                "idle: {idle} sessions open: {:.1} KiB each (server RSS {base} -> {opened} KiB); holding {hold} s with heartbeats",
                (opened.saturating_sub(base)) as f64 / idle as f64
            );
            tokio::time::sleep(Duration::from_secs(hold)).await;
            let acks = many.counters.acks.load(Ordering::Relaxed);
            let closed = many.counters.closed.load(Ordering::Relaxed);
            println!("idle: after {hold} s: {acks} heartbeats acknowledged, {closed} sessions lost, server RSS {} KiB", server.rss_kib());
            assert_eq!(closed, 0, "sessions were lost while idle");
            many.close().await;
        }
    });
}

/// Posts `messages` MESSAGE_CREATEs as alice and times their delivery to every session of
/// `group`; reports wall-clock deliveries/s and the CPU the server and these clients spent.
async fn fan_out(
    server: &Server,
    http: &reqwest::Client,
    group: &Group,
    sessions: usize,
    messages: usize,
) {
    let frames = || group.counters.frames.load(Ordering::Relaxed);
    // Warm up, then measure.
    post(http, server, "warm-up").await;
    wait_until(|| frames() >= sessions, 60).await;
    let before = frames();
    let bytes_before = group.counters.frame_bytes.load(Ordering::Relaxed);
    let plain_before = group.counters.plain_bytes.load(Ordering::Relaxed);
    let target = before + messages * sessions;
    let server_cpu = server.cpu_time();
    let client_cpu = cpu_time_of("/proc/self/stat");
    let started = Instant::now();
    for i in 0..messages {
        post(
            http,
            server,
            &format!("fan-out message {i} with a bit of realistic length to it"),
        )
        .await;
    }
    wait_until(|| frames() >= target, 120).await;
    let elapsed = started.elapsed();
    let server_cpu = server.cpu_time().saturating_sub(server_cpu);
    let client_cpu = cpu_time_of("/proc/self/stat").saturating_sub(client_cpu);
    let deliveries = (messages * sessions) as f64;
    let bytes = group.counters.frame_bytes.load(Ordering::Relaxed) - bytes_before;
    let plain = group.counters.plain_bytes.load(Ordering::Relaxed) - plain_before;
    println!(
        "fan-out: {messages} MESSAGE_CREATE x {sessions} zlib-stream sessions = {deliveries} deliveries in {:.3} s: {:.0} deliveries/s",
        elapsed.as_secs_f64(),
        deliveries / elapsed.as_secs_f64()
    );
    println!(
        "fan-out: {:.0} bytes per delivered MESSAGE_CREATE on the wire ({:.0} inflated)",
        bytes as f64 / deliveries,
        plain as f64 / deliveries
    );
    println!(
        "fan-out: server CPU {:.3} s ({:.2} us/delivery, {:.0} deliveries per server CPU-second); bench clients CPU {:.3} s",
        server_cpu.as_secs_f64(),
        server_cpu.as_secs_f64() * 1e6 / deliveries,
        deliveries / server_cpu.as_secs_f64().max(1e-9),
        client_cpu.as_secs_f64()
    );
}
