//! Helpers for `serve` integration tests: run the built binary on loopback with a fixture and
//! talk HTTP to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";
pub const CAROL: &str = "carol-token";
pub const DAVE: &str = "dave-token";
pub const BOT: &str = "Bot MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0";

pub const ALICE_ID: &str = "100000000000000001";
pub const BOT_ID: &str = "100000000000000002";
pub const BOB_ID: &str = "100000000000000003";
pub const CAROL_ID: &str = "100000000000000004";
pub const DAVE_ID: &str = "100000000000000005";
pub const GUILD: &str = "200000000000000001";
pub const MODS_ROLE: &str = "200000000000000002";
pub const BOTS_ROLE: &str = "200000000000000003";
pub const CATEGORY: &str = "200000000000000010";
pub const GENERAL: &str = "200000000000000011";
pub const SECRET: &str = "200000000000000012";
pub const READONLY: &str = "200000000000000013";
pub const VOICE: &str = "200000000000000014";
pub const FORUM: &str = "200000000000000015";
pub const NEWS: &str = "200000000000000016";

/// A 1×1 PNG as a data URL, for emoji, sticker and icon uploads.
pub const PIXEL_PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// The world every serve test runs in: alice owns the guild (Mods = ADMINISTRATOR), pingbot has
/// a moderator-like Bots role, bob and dave are plain members, carol is in no guild.
pub const FIXTURE: &str = r#"{
  "users": [
    {"id": "100000000000000001", "username": "alice", "token": "alice-token",
     "email": "alice@example.com", "password": "hunter2"},
    {"id": "100000000000000002", "username": "pingbot", "bot": true,
     "token": "MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0"},
    {"id": "100000000000000003", "username": "bob", "token": "bob-token"},
    {"id": "100000000000000004", "username": "carol", "token": "carol-token"},
    {"id": "100000000000000005", "username": "dave", "token": "dave-token"}
  ],
  "guilds": [{
    "id": "200000000000000001", "name": "Test Guild", "owner_id": "100000000000000001",
    "roles": [
      {"id": "200000000000000002", "name": "Mods", "permissions": "8", "position": 3},
      {"id": "200000000000000003", "name": "Bots", "permissions": "1496662011127", "position": 2}
    ],
    "channels": [
      {"id": "200000000000000010", "name": "Text", "type": 4},
      {"id": "200000000000000011", "name": "general", "type": 0, "parent_id": "200000000000000010"},
      {"id": "200000000000000012", "name": "secret", "type": 0, "parent_id": "200000000000000010",
       "permission_overwrites": [{"id": "200000000000000001", "type": 0, "deny": "1024"},
                                 {"id": "200000000000000003", "type": 0, "allow": "1024"}]},
      {"id": "200000000000000013", "name": "readonly", "type": 0,
       "permission_overwrites": [{"id": "200000000000000001", "type": 0, "deny": "2048"}]},
      {"id": "200000000000000014", "name": "Voice", "type": 2},
      {"id": "200000000000000015", "name": "forum", "type": 15},
      {"id": "200000000000000016", "name": "news", "type": 5}
    ],
    "members": [
      {"user_id": "100000000000000001", "roles": ["200000000000000002"]},
      {"user_id": "100000000000000002", "roles": ["200000000000000003"]},
      {"user_id": "100000000000000003"},
      {"user_id": "100000000000000005"}
    ]
  }]
}"#;

/// A running `discord-mitm serve`; stops (gracefully, by closing its stdin) when dropped.
pub struct Server {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pub addr: String,
    pub banner: String,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a fresh data directory seeded with `fixture` (None: demo world).
    pub fn start(fixture: Option<&str>, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut server = Self::start_in(&data, fixture, extra).expect("server starts");
        server._dir = Some(dir);
        server
    }

    /// Starts a server on [`FIXTURE`] with rate limits off, as most route tests do.
    pub fn on_fixture() -> Server {
        Server::start(Some(FIXTURE), &["--rate-limit", "off"])
    }

    /// [`Server::on_fixture`] from async code (started on a blocking thread).
    pub async fn on_fixture_async() -> Server {
        tokio::task::spawn_blocking(Server::on_fixture)
            .await
            .expect("server start-up thread")
    }

    /// Stops this server and starts another on the same `data`, from async code.
    pub async fn restart_async(mut self, data: &Path, extra: &'static [&'static str]) -> Server {
        let data = data.to_path_buf();
        tokio::task::spawn_blocking(move || {
            self.stop();
            Server::start_in(&data, None, extra).expect("restart on the same data")
        })
        .await
        .expect("server restart thread")
    }

    /// Starts a server on `data` (kept after stop, for restart tests).
    pub fn start_in(data: &Path, fixture: Option<&str>, extra: &[&str]) -> Result<Server, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_discord-mitm"));
        command
            .args([
                "serve",
                "--api",
                "127.0.0.1:0",
                "--exit-on-stdin-close",
                "--data",
            ])
            .arg(data)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(fixture) = fixture {
            let path = data.with_extension("fixture.json");
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, fixture).expect("write fixture");
            command.arg("--fixture").arg(&path);
        }
        let mut child = command.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut banner = String::new();
        let mut addr = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut line = String::new();
            let read = reader.read_line(&mut line).map_err(|e| e.to_string())?;
            if read == 0 {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    use std::io::Read;
                    let _ = stderr.read_to_string(&mut err);
                }
                let _ = child.wait();
                return Err(format!("server exited before listening: {err}"));
            }
            banner.push_str(&line);
            if let Some(rest) = line.strip_prefix("discord-mitm serve listening on http://") {
                addr = Some(rest.trim().to_string());
            }
            if line.starts_with("Press Ctrl-C to stop") {
                break;
            }
            if Instant::now() > deadline {
                return Err("server did not print its banner".into());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let stdin = child.stdin.take();
        Ok(Server {
            child: Some(child),
            stdin,
            addr: addr.ok_or("no address in banner")?,
            banner,
            data: data.to_path_buf(),
            _dir: None,
        })
    }

    /// `http://addr/api/v10`.
    pub fn base(&self) -> String {
        format!("http://{}/api/v10", self.addr)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// A twilight HTTP client sending as `token` (`Bot …` or a user token) to this server.
    pub fn twilight(&self, token: &str) -> twilight_http::Client {
        twilight_http::Client::builder()
            .proxy(self.addr.clone(), true)
            .token(token.trim_start_matches("Bot ").to_string())
            .build()
    }

    /// An API client for this server.
    pub fn api(&self) -> Api {
        Api::new(&self.base())
    }

    /// Stops the server gracefully and waits for it.
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Reply {
    /// The Discord error code of an error body.
    pub fn code(&self) -> i64 {
        self.body["code"].as_i64().unwrap_or(-1)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// A blocking HTTP client bound to one API base.
pub struct Api {
    base: String,
    client: reqwest::blocking::Client,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
        }
    }

    /// Sends a request; `token` is the raw Authorization value ("Bot x" or a user token).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw = response.text().expect("body");
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw).unwrap_or(Value::Null)
        };
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    /// Sends `body` as is, with `headers` (e.g. a form's content type).
    pub fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("authorization", token)
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw = response.text().expect("body");
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    pub fn get(&self, path: &str, token: &str) -> Reply {
        self.send("GET", path, Some(token), None, &[])
    }
    pub fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send("POST", path, Some(token), Some(&body), &[])
    }
    pub fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send("PATCH", path, Some(token), Some(&body), &[])
    }
    pub fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send("PUT", path, Some(token), Some(&body), &[])
    }
    pub fn delete(&self, path: &str, token: &str) -> Reply {
        self.send("DELETE", path, Some(token), None, &[])
    }
}

/// Asserts a reply's status, printing the body when it differs.
#[track_caller]
pub fn expect(reply: &Reply, status: u16) -> &Value {
    assert_eq!(
        reply.status, status,
        "unexpected status; body: {}",
        reply.raw
    );
    &reply.body
}

/// Asserts a Discord error (status + code).
#[track_caller]
pub fn expect_error(reply: &Reply, status: u16, code: i64) {
    assert_eq!(
        (reply.status, reply.code()),
        (status, code),
        "body: {}",
        reply.raw
    );
    assert!(
        reply.body["message"].is_string(),
        "error has a message: {}",
        reply.raw
    );
}

/// A `multipart/form-data` body of text `fields` and one file: its content type and bytes.
pub fn multipart(
    fields: &[(&str, &str)],
    file_field: &str,
    filename: &str,
    file: &[u8],
) -> (String, Vec<u8>) {
    let boundary = "----discordmitmtestmultipart";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; \
             filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend(file);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
