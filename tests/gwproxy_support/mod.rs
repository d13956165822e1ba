//! Runs `discord-mitm gateway-proxy` (the built binary) against a `discord-mitm serve` upstream,
//! and a small raw WebSocket gateway client for asserting what a bot sees.
#![allow(dead_code)]
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// A running proxy; killed on drop.
pub struct Proxy {
    child: Child,
    pub port: u16,
    /// Directory of the config and state file.
    pub dir: PathBuf,
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

impl Proxy {
    /// Starts the proxy with `config` in `dir` (where its state file lives).
    pub fn start_in(dir: &std::path::Path, config: &Value) -> Proxy {
        Proxy::start_with_log(dir, config, Some("discord_mitm=info"))
    }

    /// Like [`Proxy::start_in`] with `RUST_LOG` set to `rust_log` (or unset).
    pub fn start_with_log(dir: &std::path::Path, config: &Value, rust_log: Option<&str>) -> Proxy {
        Proxy::start_with_args(dir, config, rust_log, &[])
    }

    /// Like [`Proxy::start_with_log`] with `extra` command-line arguments.
    pub fn start_with_args(
        dir: &std::path::Path,
        config: &Value,
        rust_log: Option<&str>,
        extra: &[&str],
    ) -> Proxy {
        let port = config["port"].as_u64().expect("config has a port") as u16;
        let path = dir.join("config.json");
        std::fs::write(&path, config.to_string()).expect("write config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_discord-mitm"));
        command
            .arg("gateway-proxy")
            .arg("--config")
            .arg(&path)
            .arg("--state")
            .arg(dir.join("state.json"))
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(rust_log) = rust_log {
            command.env("RUST_LOG", rust_log);
        }
        let child = command.spawn().expect("start gateway-proxy");
        let mut proxy = Proxy {
            child,
            port,
            dir: dir.to_owned(),
        };
        proxy.wait_healthy();
        proxy
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("proxy exited with {status}: {}", self.stderr());
            }
            if let Ok(reply) = reqwest::blocking::get(format!("{}/health", self.http())) {
                if reply.status().as_u16() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "proxy never became healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The proxy's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The proxy's Prometheus text.
    pub fn metrics(&self) -> String {
        reqwest::blocking::get(format!("{}/metrics", self.http()))
            .expect("metrics")
            .text()
            .expect("metrics body")
    }

    /// Sends SIGTERM, waits for the exit and returns the exit success and the log.
    pub fn stop(&mut self) -> (bool, String) {
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut ok = false;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                ok = status.success();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = self.stderr();
        (ok, log)
    }

    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }

    /// The state file path.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The proxy config used by the tests: everything cached, upstream = `serve_http`.
pub fn config(port: u16, serve_http: &str, token: &str) -> Value {
    json!({
        "log_level": "info",
        "token": token,
        "intents": 33281,
        "port": port,
        "backpressure": 100,
        "externally_accessible_url": format!("ws://127.0.0.1:{port}"),
        "cache": {"channels": true, "presences": true, "emojis": true, "current_member": true,
                  "members": true, "roles": true, "scheduled_events": true,
                  "stage_instances": true, "stickers": true, "users": true, "voice_states": true},
        "upstream_api": format!("{serve_http}/api/v10"),
    })
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw JSON gateway client.
pub struct RawClient {
    ws: Ws,
    /// Last dispatch sequence seen.
    pub seq: Option<u64>,
}

impl RawClient {
    /// Connects to `base` (`ws://host:port`) with JSON, no compression; reads HELLO.
    pub async fn connect(base: &str) -> RawClient {
        let (ws, _) = tokio_tungstenite::connect_async(format!("{base}/?v=10&encoding=json"))
            .await
            .expect("connect");
        let mut client = RawClient { ws, seq: None };
        let hello = client.next().await.expect("HELLO");
        assert_eq!(hello["op"], 10, "first payload is HELLO: {hello}");
        client
    }

    /// Like [`RawClient::connect`] with a 4 KiB socket receive buffer, so a client that stops
    /// reading backs up into the proxy soon.
    pub async fn connect_small_buffer(base: &str) -> RawClient {
        let addr: std::net::SocketAddr = base
            .trim_start_matches("ws://")
            .parse()
            .expect("ws://ip:port");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("connect");
        let (ws, _) = tokio_tungstenite::client_async(
            format!("{base}/?v=10&encoding=json"),
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .expect("handshake");
        let mut client = RawClient { ws, seq: None };
        let hello = client.next().await.expect("HELLO");
        assert_eq!(hello["op"], 10, "first payload is HELLO: {hello}");
        client
    }

    /// Sends a payload.
    pub async fn send(&mut self, payload: Value) {
        self.ws
            .send(Message::text(payload.to_string()))
            .await
            .expect("send");
    }

    /// Sends IDENTIFY for shard [0, 1].
    pub async fn identify(&mut self, token: &str) {
        self.send(json!({"op": 2, "d": {"token": token, "intents": 33281,
            "properties": {"os": "linux", "browser": "test", "device": "test"},
            "shard": [0, 1]}}))
            .await;
    }

    /// The next payload, or `Err(close code)` when the socket closed.
    pub async fn next(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a payload within 10 s");
            match message {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(text.as_str()).expect("JSON payload");
                    if let Some(s) = value["s"].as_u64() {
                        self.seq = Some(s);
                    }
                    return Ok(value);
                }
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// Reads until a dispatch named `event`, returning it and the dispatches before it.
    pub async fn until(&mut self, event: &str) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let payload = self.next().await.expect("socket open");
            if payload["t"] == event {
                return (payload, before);
            }
            if payload["op"] == 0 {
                before.push(payload);
            }
        }
    }

    /// Closes with 4000 (keeps the session resumable).
    pub async fn close_resumable(mut self) {
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code: CloseCode::from(4000),
                reason: "".into(),
            }))
            .await;
    }
}

impl RawClient {
    /// Sends IDENTIFY for shard [0, 1] with `intents`.
    pub async fn identify_with(&mut self, token: &str, intents: u64) {
        self.send(json!({"op": 2, "d": {"token": token, "intents": intents,
            "properties": {"os": "linux", "browser": "test", "device": "test"},
            "shard": [0, 1]}}))
            .await;
    }
}

/// A discord.py bot (tests/python/gwproxy_bot.py) whose stdout lines arrive on a channel.
pub struct Bot {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Everything it printed so far (for failure messages).
    pub seen: Vec<String>,
}

impl Bot {
    /// Starts the bot in `mode` (`exit` or `hold`) against `serve_http` (REST) and
    /// `proxy_ws` (gateway), with the fixture's ids and tokens in `env`.
    pub fn start(mode: &str, serve_http: &str, proxy_ws: &str, env: &[(&str, &str)]) -> Bot {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = root.join(".venv/bots/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/setup-test-deps (installs discord.py in .venv/bots)",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(root.join("tests/python/gwproxy_bot.py"))
            .arg(mode)
            .env("DMITM_API", serve_http)
            .env("GWPROXY_WS", proxy_ws)
            .env("PYTHONUNBUFFERED", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Bot {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most `timeout`) for a line starting with `prefix`; returns the rest of it.
    pub fn line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let mut err = String::new();
                    if let Some(mut stderr) = self.child.stderr.take() {
                        let _ = stderr.read_to_string(&mut err);
                    }
                    panic!(
                        "the bot never printed {prefix:?}\n--- stdout\n{}\n--- stderr\n{err}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// Waits for the bot to exit by itself; returns whether it succeeded.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGKILL: the process gets no chance to close its socket.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal stand-in for Discord's gateway (for what `serve` cannot be made to do): GET
/// /api/v10/gateway/bot, HELLO with a short heartbeat interval, READY on IDENTIFY, and every
/// heartbeat ACKed after `ack_delay`.
pub struct FakeUpstream {
    /// `http://127.0.0.1:PORT/api/v10`.
    pub api: String,
    /// `ws://127.0.0.1:PORT`.
    pub gateway: String,
    _runtime: tokio::runtime::Runtime,
}

impl FakeUpstream {
    /// Starts it on its own runtime.
    pub fn start(ack_delay: Duration) -> FakeUpstream {
        FakeUpstream::with_guilds(250, ack_delay, Vec::new())
    }

    /// Like [`FakeUpstream::start`] with HELLO's `heartbeat_interval_ms`; READY lists
    /// `guilds` as unavailable and a GUILD_CREATE follows for each.
    pub fn with_guilds(
        heartbeat_interval_ms: u64,
        ack_delay: Duration,
        guilds: Vec<Value>,
    ) -> FakeUpstream {
        FakeUpstream::with_burst(heartbeat_interval_ms, ack_delay, guilds, None)
    }

    /// Like [`FakeUpstream::with_guilds`]; after the GUILD_CREATEs, once `burst.1` is notified,
    /// sends every dispatch of `burst.0` (`{"t", "d"}` objects, numbered on) back to back.
    pub fn with_burst(
        heartbeat_interval_ms: u64,
        ack_delay: Duration,
        guilds: Vec<Value>,
        burst: Option<(Vec<Value>, std::sync::Arc<tokio::sync::Notify>)>,
    ) -> FakeUpstream {
        let guilds = std::sync::Arc::new(guilds);
        let burst = std::sync::Arc::new(burst);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (api, gateway) = runtime.block_on(async move {
            let gw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let gateway = format!("ws://{}", gw_listener.local_addr().unwrap());
            let body = json!({"url": gateway, "shards": 1, "session_start_limit":
                {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}});
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
            let resume_url = gateway.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = gw_listener.accept().await {
                    let resume_url = resume_url.clone();
                    let guilds = guilds.clone();
                    let burst = burst.clone();
                    tokio::spawn(async move {
                        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                            return;
                        };
                        let hello = json!({"op": 10,
                            "d": {"heartbeat_interval": heartbeat_interval_ms}});
                        let _ = ws.send(Message::text(hello.to_string())).await;
                        while let Some(Ok(message)) = ws.next().await {
                            let Message::Text(text) = message else {
                                continue;
                            };
                            let Ok(payload) = serde_json::from_str::<Value>(text.as_str()) else {
                                continue;
                            };
                            let reply = match payload["op"].as_u64() {
                                Some(1) => {
                                    tokio::time::sleep(ack_delay).await;
                                    json!({"op": 11})
                                }
                                Some(2) => {
                                    let stubs: Vec<Value> = guilds
                                        .iter()
                                        .map(|g| json!({"id": g["id"], "unavailable": true}))
                                        .collect();
                                    let ready = json!({"op": 0, "s": 1, "t": "READY", "d": {
                                        "v": 10, "session_id": "fake-session",
                                        "resume_gateway_url": resume_url,
                                        "user": {"id": "1", "username": "fake",
                                                 "discriminator": "0", "avatar": null,
                                                 "bot": true},
                                        "guilds": stubs, "shard": [0, 1],
                                        "application": {"id": "1", "flags": 0}}});
                                    if ws.send(Message::text(ready.to_string())).await.is_err() {
                                        return;
                                    }
                                    for (n, guild) in guilds.iter().enumerate() {
                                        let create = json!({"op": 0, "s": n + 2,
                                            "t": "GUILD_CREATE", "d": guild});
                                        if ws.send(Message::text(create.to_string())).await.is_err()
                                        {
                                            return;
                                        }
                                    }
                                    if let Some((dispatches, start)) = burst.as_ref() {
                                        start.notified().await;
                                        for (n, dispatch) in dispatches.iter().enumerate() {
                                            let event = json!({"op": 0,
                                                "s": guilds.len() + 2 + n,
                                                "t": dispatch["t"], "d": dispatch["d"]});
                                            if ws
                                                .feed(Message::text(event.to_string()))
                                                .await
                                                .is_err()
                                            {
                                                return;
                                            }
                                        }
                                        if ws.flush().await.is_err() {
                                            return;
                                        }
                                    }
                                    continue;
                                }
                                Some(6) => json!({"op": 0, "s": guilds.len() + 2,
                                    "t": "RESUMED", "d": {}}),
                                _ => continue,
                            };
                            if ws.send(Message::text(reply.to_string())).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            (api, gateway)
        });
        FakeUpstream {
            api,
            gateway,
            _runtime: runtime,
        }
    }
}
