//! Real processes for the gateway-proxy NATS tests and benchmarks: `nats-server` with JetStream
//! on a free loopback port, `discord-mitm serve` with guilds spread over four shards, and
//! `discord-mitm gateway-proxy` processes logging to files (nothing blocks on a full pipe).
#![allow(dead_code, unreachable_pub)]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ALICE_ID: &str = "100000000000000001";
pub const BOT_ID: &str = "100000000000000002";
pub const ALICE_TOKEN: &str = "alice-token";
pub const BOT_TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0";
/// Snowflake timestamp part of the fixture's ids.
const BASE: u64 = 200_000_000_000_000_001 >> 22;
/// Shards of the test bot.
pub const SHARDS: u32 = 4;
/// Guilds per shard in the fixture.
pub const GUILDS_PER_SHARD: u64 = 2;

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The `nats-server` binary: `$NATS_SERVER`, on PATH, or where Debian installs it.
pub fn nats_server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|path| path.is_file())
}

/// A `nats-server -js` on loopback; killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store: PathBuf,
    binary: PathBuf,
}

impl NatsServer {
    /// Starts one with its JetStream store in `store`; `None` (and a message saying why) when
    /// nats-server is not installed.
    pub fn start(store: &Path) -> Option<NatsServer> {
        let Some(binary) = nats_server_binary() else {
            eprintln!(
                "SKIPPED: nats-server is not installed (scripts/setup-test-deps installs the \
                 Debian package nats-server)"
            );
            return None;
        };
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            store: store.to_owned(),
            binary,
        };
        server.restart();
        Some(server)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Guild `n` of the fixture: its id, on shard `n % SHARDS`.
pub fn guild_id(n: u64) -> u64 {
    ((BASE + n) << 22) | 1
}

/// The text channel of guild `n`.
pub fn channel_id(n: u64) -> u64 {
    ((BASE + 1000 + n) << 22) | 2
}

/// Alice, the bot, and `SHARDS * GUILDS_PER_SHARD` guilds (guild `n` on shard `n % SHARDS`),
/// each with one text channel and both users as members.
pub fn fixture() -> Value {
    let guilds: Vec<Value> = (0..u64::from(SHARDS) * GUILDS_PER_SHARD)
        .map(|n| {
            assert_eq!((guild_id(n) >> 22) % u64::from(SHARDS), n % u64::from(SHARDS));
            json!({"id": guild_id(n).to_string(), "name": format!("guild {n}"), "owner_id": ALICE_ID,
                   "channels": [{"id": channel_id(n).to_string(), "name": "general", "type": 0}],
                   "members": [{"user_id": ALICE_ID}, {"user_id": BOT_ID}]})
        })
        .collect();
    json!({
        "users": [
            {"id": ALICE_ID, "username": "alice", "token": ALICE_TOKEN},
            {"id": BOT_ID, "username": "pingbot", "bot": true, "token": BOT_TOKEN}
        ],
        "guilds": guilds,
    })
}

/// A running `discord-mitm serve` logging to a file; killed on drop.
pub struct Serve {
    child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl Serve {
    /// Starts serve on the fixture in `dir` with `extra` flags (rate limits off).
    pub fn start(dir: &Path, extra: &[&str]) -> Serve {
        let fixture_path = dir.join("fixture.json");
        std::fs::write(&fixture_path, fixture().to_string()).expect("write fixture");
        let log = dir.join("serve.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
            .args([
                "serve",
                "--api",
                "127.0.0.1:0",
                "--rate-limit",
                "off",
                "--data",
            ])
            .arg(dir.join("data"))
            .arg("--fixture")
            .arg(&fixture_path)
            .args(extra)
            .env("RUST_LOG", "discord_mitm=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("serve log"))
            .spawn()
            .expect("start serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).expect("serve banner");
        let addr = first
            .rsplit("http://")
            .next()
            .expect("address")
            .trim()
            .to_owned();
        std::thread::spawn(move || for _ in lines {});
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "serve never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve { child, addr, log }
    }

    /// `http://ADDR`.
    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What serve logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts `content` to `channel` as alice; panics unless serve answers 200.
pub async fn post(http: &reqwest::Client, serve: &str, channel: u64, content: &str) {
    let response = http
        .post(format!("{serve}/api/v10/channels/{channel}/messages"))
        .header("authorization", ALICE_TOKEN)
        .json(&json!({"content": content}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 200, "posting {content}");
}

/// A gateway-proxy process logging to `<dir>/proxy.log`; killed on drop.
pub struct GwProxy {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    config: PathBuf,
}

/// The config of a proxy on `port` for shards `first..=last` (the count comes from serve's
/// GET /gateway/bot), publishing to `nats`.
pub fn proxy_config(port: u16, serve: &str, first: u32, last: u32, nats: Option<Value>) -> Value {
    let mut config = json!({
        "token": BOT_TOKEN,
        "intents": 33281,
        "port": port,
        "shards": [first, last],
        "cache": {"members": true, "channels": true, "roles": true},
        "upstream_api": format!("{serve}/api/v10"),
    });
    if let Some(nats) = nats {
        config["nats"] = nats;
    }
    config
}

impl GwProxy {
    /// Starts the proxy with `config` (written to `dir`) without waiting for it.
    pub fn spawn(dir: &Path, config: &Value) -> GwProxy {
        std::fs::create_dir_all(dir).expect("proxy dir");
        let path = dir.join("config.json");
        std::fs::write(&path, config.to_string()).expect("write config");
        let mut proxy = GwProxy {
            child: None,
            port: config["port"].as_u64().expect("port") as u16,
            dir: dir.to_owned(),
            config: path,
        };
        proxy.respawn();
        proxy
    }

    /// Starts the process again with the same config and state file.
    pub fn respawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("proxy.log"))
            .expect("proxy log");
        // GWPROXY_BENCH_BIN runs another build (benches compare two binaries in one run).
        let binary = std::env::var_os("GWPROXY_BENCH_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_discord-mitm").into());
        let child = Command::new(binary)
            .arg("gateway-proxy")
            .arg("--config")
            .arg(&self.config)
            .arg("--state")
            .arg(self.dir.join("state.json"))
            .env("RUST_LOG", "discord_mitm=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start gateway-proxy");
        self.child = Some(child);
    }

    /// Waits until `/health` says OK (at most `timeout`).
    pub fn wait_healthy(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("proxy exited with {status}: {}", self.log());
            }
            if self.get("/health").is_some_and(|(status, _)| status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "proxy on {} never became healthy: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// GET `path` on the proxy: (status, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let response =
            reqwest::blocking::get(format!("http://127.0.0.1:{}{path}", self.port)).ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().ok()?))
    }

    /// The value of the first metrics line starting with `prefix`.
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics")?;
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no chance to save state or close sockets.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the proxy logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for GwProxy {
    fn drop(&mut self) {
        self.kill9();
    }
}
