//! Runs the built `discord-mitm serve` binary on a fixture for gateway tests, plus helpers to act
//! as a user over REST and to run the Python bot scenarios (tests/python/) against it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ALICE_ID: &str = "100000000000000001";
pub const BOT_ID: &str = "100000000000000002";
pub const CAROL_ID: &str = "100000000000000003";
pub const GUILD_ID: &str = "200000000000000001";
pub const GENERAL_ID: &str = "200000000000000011";
pub const SECRET_ID: &str = "200000000000000012";
pub const VOICE_ID: &str = "200000000000000013";
pub const ALICE_TOKEN: &str = "alice-token";
pub const BOT_TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0";

/// Issue 5's example fixture, plus a voice channel, a channel the bot cannot see, and carol.
pub fn fixture(bot_application: Option<Value>) -> Value {
    let mut bot = json!({"id": BOT_ID, "username": "pingbot", "bot": true, "token": BOT_TOKEN});
    if let Some(application) = bot_application {
        bot["application"] = application;
    }
    json!({
        "users": [
            {"id": ALICE_ID, "username": "alice", "token": ALICE_TOKEN,
             "email": "alice@example.com", "password": "hunter2"},
            bot,
            {"id": CAROL_ID, "username": "carol", "token": "carol-token"}
        ],
        "guilds": [{
            "id": GUILD_ID, "name": "Test Guild", "owner_id": ALICE_ID,
            "roles": [{"id": "200000000000000002", "name": "Mods", "permissions": "8"}],
            "channels": [
                {"id": "200000000000000010", "name": "Text", "type": 4},
                {"id": GENERAL_ID, "name": "general", "type": 0, "parent_id": "200000000000000010"},
                {"id": SECRET_ID, "name": "secret", "type": 0,
                 "permission_overwrites": [{"id": GUILD_ID, "type": 0, "allow": "0", "deny": "1024"}]},
                {"id": VOICE_ID, "name": "Voice", "type": 2}
            ],
            "members": [
                {"user_id": ALICE_ID, "roles": ["200000000000000002"]},
                {"user_id": BOT_ID},
                {"user_id": CAROL_ID}
            ]
        }]
    })
}

/// A running `discord-mitm serve`; killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary on a free port with `fixture`.
    pub fn start(fixture: &Value) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let fixture_path = dir.path().join("fixture.json");
        std::fs::write(&fixture_path, fixture.to_string()).expect("write fixture");
        let mut child = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
            .args(["serve", "--api", "127.0.0.1:0", "--rate-limit", "off", "--data"])
            .arg(dir.path().join("data"))
            .arg("--fixture")
            .arg(&fixture_path)
            .env("RUST_LOG", "discord_mitm=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start discord-mitm serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("serve printed nothing: {}", stderr_of(&mut child)));
        let addr = first
            .rsplit("http://")
            .next()
            .expect("banner has an address")
            .trim()
            .to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let server = Server {
            child,
            addr,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(Instant::now() < deadline, "serve never accepted connections");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://ADDR`.
    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://ADDR`.
    pub fn ws(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Sends SIGTERM and returns what the server logged on stderr.
    pub fn stop(mut self) -> String {
        #[cfg(unix)]
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        stderr_of(&mut self.child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

/// A REST call as `token` (`Bot ...` for bots, bare for users); returns (status, body).
pub async fn rest(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client
        .request(method, format!("{}/api/v10{path}", server.http()))
        .header("Authorization", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body)
}

/// The interpreter of the bot-library venv made by scripts/setup-test-deps.
pub fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bots/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-test-deps (installs discord.py in .venv/bots)",
        python.display()
    );
    python
}

/// Runs `tests/python/gateway_scenarios.py SCENARIO` against `server`; panics with its output
/// (and the server's log) unless it succeeds within `timeout`.
pub fn run_scenario(server: Server, scenario: &str, compress: &str, timeout: Duration) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python())
        .arg(root.join("tests/python/gateway_scenarios.py"))
        .arg(scenario)
        .env("DMITM_API", server.http())
        .env("DMITM_COMPRESS", compress)
        .env("BOT_TOKEN", BOT_TOKEN)
        .env("ALICE_TOKEN", ALICE_TOKEN)
        .env("ALICE_ID", ALICE_ID)
        .env("GUILD_ID", GUILD_ID)
        .env("GENERAL_ID", GENERAL_ID)
        .env("SECRET_ID", SECRET_ID)
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let ok = status.is_some_and(|s| s.success());
    if !ok {
        let log = server.stop();
        let tail: String = log
            .lines()
            .rev()
            .take(80)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "scenario {scenario} ({compress}) failed (status {status:?})\n--- stdout\n{out}\n--- stderr\n{err}\n--- server log (tail)\n{tail}"
        );
    }
    assert!(out.contains(&format!("SCENARIO {scenario} OK")), "{out}\n{err}");
}
