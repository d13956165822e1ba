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
        Server::start_with(fixture, &[])
    }

    /// Starts the binary on a free port with `fixture` and extra `serve` flags.
    pub fn start_with(fixture: &Value, extra_args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let fixture_path = dir.path().join("fixture.json");
        std::fs::write(&fixture_path, fixture.to_string()).expect("write fixture");
        Server::spawn(dir, "127.0.0.1:0", extra_args)
    }

    /// Stops the server with SIGTERM (op 7 to every session first) and starts it again on the
    /// same address and data directory.
    pub fn restart(mut self) -> Server {
        self.terminate();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("tempdir"));
        let addr = self.addr.clone();
        drop(self);
        Server::spawn(dir, &addr, &[])
    }

    fn terminate(&mut self) {
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        #[cfg(unix)]
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(dir: tempfile::TempDir, api: &str, extra_args: &[&str]) -> Server {
        let fixture_path = dir.path().join("fixture.json");
        // Rate limits are off unless the caller sets its own.
        let limits: &[&str] = if extra_args.contains(&"--rate-limit") {
            &[]
        } else {
            &["--rate-limit", "off"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
            .args(["serve", "--api", api])
            .args(limits)
            .arg("--data")
            .arg(dir.path().join("data"))
            .arg("--fixture")
            .arg(&fixture_path)
            .args(extra_args)
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
            assert!(
                Instant::now() < deadline,
                "serve never accepted connections"
            );
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
        self.terminate();
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

/// Runs `tests/python/gateway_scenarios.py SCENARIO` (or `hikari_scenario.py` for "hikari",
/// `SCENARIO.py` for the `interactions_*` scenarios) against `server`; panics with its output
/// (and the server's log) unless it succeeds within `timeout`.
pub fn run_scenario(server: Server, scenario: &str, compress: &str, timeout: Duration) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = match scenario {
        "hikari" => "tests/python/hikari_scenario.py".to_string(),
        interactions if interactions.starts_with("interactions_") => {
            format!("tests/python/{interactions}.py")
        }
        _ => "tests/python/gateway_scenarios.py".to_string(),
    };
    let mut child = Command::new(python())
        .arg(root.join(script))
        .arg(scenario)
        .env("BOT_ID", BOT_ID)
        .env("CAROL_ID", CAROL_ID)
        .env("CAROL_TOKEN", "carol-token")
        .env("DMITM_API", server.http())
        .env("DMITM_COMPRESS", compress)
        .env("BOT_TOKEN", BOT_TOKEN)
        .env("ALICE_TOKEN", ALICE_TOKEN)
        .env("ALICE_ID", ALICE_ID)
        .env("GUILD_ID", GUILD_ID)
        .env("GENERAL_ID", GENERAL_ID)
        .env("SECRET_ID", SECRET_ID)
        .env("VOICE_ID", VOICE_ID)
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
    assert!(
        out.contains(&format!("SCENARIO {scenario} OK")),
        "{out}\n{err}"
    );
}

/// A bare WebSocket gateway client that decodes what the server sends (any encoding and
/// compression), for protocol-level assertions.
pub struct RawClient {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    params: discord_mitm::gateway::decoder::ConnectionParams,
    zlib: discord_mitm::gateway::compress::ZlibStreamDecompressor,
    zstd: discord_mitm::gateway::compress::ZstdStreamDecompressor,
    payload_compression: bool,
    /// Last sequence number received.
    pub seq: Option<u64>,
}

/// What a [`RawClient`] read.
#[derive(Debug)]
pub enum Frame {
    Payload(discord_mitm::gateway::GatewayPayload),
    Closed(Option<u16>),
}

impl RawClient {
    /// Connects to `server` with `query` (e.g. `v=10&encoding=json`).
    pub async fn connect(server: &Server, query: &str) -> RawClient {
        use discord_mitm::gateway::compress::{ZlibStreamDecompressor, ZstdStreamDecompressor};
        let url = format!("{}/?{query}", server.ws());
        let (ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        RawClient {
            ws,
            params: discord_mitm::gateway::decoder::ConnectionParams::from_query(query)
                .unwrap_or_default(),
            zlib: ZlibStreamDecompressor::new(),
            zstd: ZstdStreamDecompressor::new().expect("zstd"),
            payload_compression: false,
            seq: None,
        }
    }

    /// Expect per-payload zlib from now on (after IDENTIFY `compress: true`).
    pub fn expect_payload_compression(&mut self) {
        self.payload_compression = true;
    }

    /// Sends a payload as a JSON text frame.
    pub async fn send_json(&mut self, payload: Value) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::text(
                payload.to_string(),
            ))
            .await
            .expect("send");
    }

    /// Sends a raw frame.
    pub async fn send_frame(&mut self, message: tokio_tungstenite::tungstenite::Message) {
        use futures_util::SinkExt;
        self.ws.send(message).await.expect("send");
    }

    /// The next payload or close, within 10 s.
    pub async fn next(&mut self) -> Frame {
        use discord_mitm::gateway::codec::{decode_payload, Encoding};
        use discord_mitm::gateway::compress::{decompress_payload, TransportCompression};
        use discord_mitm::gateway::etf::DecodeOptions;
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("timed out waiting for a gateway frame");
            let bytes = match message {
                Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                Some(Ok(Message::Binary(bytes))) => match self.params.compression {
                    TransportCompression::ZlibStream => {
                        match self.zlib.push_frame(&bytes).expect("zlib") {
                            Some(message) => message.to_vec(),
                            None => continue,
                        }
                    }
                    TransportCompression::ZstdStream => {
                        self.zstd.push_frame(&bytes).expect("zstd").to_vec()
                    }
                    TransportCompression::None if self.payload_compression => {
                        decompress_payload(&bytes, 1 << 24).expect("payload zlib")
                    }
                    TransportCompression::None => bytes.to_vec(),
                },
                Some(Ok(Message::Close(frame))) => {
                    return Frame::Closed(frame.map(|f| u16::from(f.code)))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Frame::Closed(None),
            };
            let encoding = if self.params.encoding == Encoding::Etf {
                Encoding::Etf
            } else {
                Encoding::Json
            };
            let payload = decode_payload(&bytes, encoding, &DecodeOptions::LENIENT)
                .expect("decodable payload");
            if let Some(s) = payload.s {
                self.seq = Some(s);
            }
            return Frame::Payload(payload);
        }
    }

    /// The next payload; panics on a close.
    pub async fn payload(&mut self) -> discord_mitm::gateway::GatewayPayload {
        match self.next().await {
            Frame::Payload(payload) => payload,
            Frame::Closed(code) => panic!("connection closed with {code:?}"),
        }
    }

    /// Skips payloads until dispatch `name`; returns its `d`.
    pub async fn dispatch(&mut self, name: &str) -> Value {
        loop {
            let payload = self.payload().await;
            if payload.t.as_deref() == Some(name) {
                return payload.d;
            }
        }
    }

    /// Reads until the connection closes; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Frame::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    /// Sends IDENTIFY with `d` fields merged over a bot default.
    pub async fn identify(&mut self, token: &str, intents: Option<u64>, extra: Value) {
        let mut d = json!({"token": token, "properties": {"os": "linux", "browser": "test", "device": "test"}});
        if let Some(intents) = intents {
            d["intents"] = json!(intents);
        }
        if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                d.insert(k.clone(), v.clone());
            }
        }
        self.send_json(json!({"op": 2, "d": d})).await;
    }
}
