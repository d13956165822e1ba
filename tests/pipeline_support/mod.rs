//! Test support for `serve --listen`: the built binary as the proxy in front of its backend, on
//! a fixture, with a CA made by `ca init`, optional recordings and the fake upstream
//! (`tests/common/upstream.rs`, included by the test crate as `upstream`) that `record`
//! (`record_support`) records from and `serve` forwards to.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::record_support::Recorder;
use crate::upstream::FakeDiscord;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_discord-mitm");

pub const ALICE_ID: &str = "100000000000000001";
pub const BOT_ID: &str = "100000000000000002";
pub const GUILD_ID: &str = "200000000000000001";
pub const GENERAL_ID: &str = "200000000000000011";
pub const ALICE_TOKEN: &str = "alice-token";
pub const BOT_TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0";

/// A guild with alice (human) and pingbot.
pub fn fixture() -> Value {
    json!({
        "users": [
            {"id": ALICE_ID, "username": "alice", "token": ALICE_TOKEN},
            {"id": BOT_ID, "username": "pingbot", "bot": true, "token": BOT_TOKEN}
        ],
        "guilds": [{
            "id": GUILD_ID, "name": "Test Guild", "owner_id": ALICE_ID,
            "channels": [{"id": GENERAL_ID, "name": "general", "type": 0}],
            "members": [{"user_id": ALICE_ID}, {"user_id": BOT_ID}]
        }]
    })
}

/// A running `discord-mitm serve --listen`; killed on drop.
pub struct ServeProxy {
    child: Child,
    /// The proxy's address.
    pub proxy: SocketAddr,
    /// The transparent TLS listener, when started with `--transparent`.
    pub transparent: Option<SocketAddr>,
    /// The CA certificate clients trust.
    pub ca_pem: PathBuf,
    /// The plain `--api` listener.
    pub api: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr_log: PathBuf,
}

impl ServeProxy {
    /// Starts serve with the proxy in `dir` (which holds `ca/`), recordings in
    /// `dir/recordings`, and `extra` arguments (fallback, upstream options).
    pub fn start(dir: &Path, extra: &[String]) -> ServeProxy {
        ServeProxy::start_with_fixture(dir, &fixture(), extra)
    }

    /// [`ServeProxy::start`] on another fixture.
    pub fn start_with_fixture(dir: &Path, fixture: &Value, extra: &[String]) -> ServeProxy {
        let fixture_path = dir.join("fixture.json");
        std::fs::write(&fixture_path, fixture.to_string()).unwrap();
        let world = vec!["--fixture".to_string(), fixture_path.display().to_string()];
        ServeProxy::start_named(dir, "", &world, extra)
    }

    /// Starts serve with the proxy in `dir` (which holds `ca/`) on the world `world` names
    /// (`--fixture FILE`, `--from-recordings DIR`), data in `dir/{name}data` and recordings in
    /// `dir/{name}recordings`.
    pub fn start_named(dir: &Path, name: &str, world: &[String], extra: &[String]) -> ServeProxy {
        let stderr_log = dir.join(format!("serve-{name}{}.log", extra.len()));
        let mut child = Command::new(BIN)
            .args(["serve", "--api", "127.0.0.1:0", "--rate-limit", "off"])
            .arg("--ca-dir")
            .arg(dir.join("ca"))
            .arg("--data")
            .arg(dir.join(format!("{name}data")))
            .args(world)
            .args(["--listen", "127.0.0.1:0", "--connect-timeout", "2"])
            .arg("--recordings")
            .arg(dir.join(format!("{name}recordings")))
            .args(extra)
            .env("RUST_LOG", "discord_mitm=info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("start discord-mitm serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut proxy = None;
        let mut transparent = None;
        let mut api = None;
        let stdout = Arc::new(Mutex::new(String::new()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let Some(Ok(line)) = lines.next() else { break };
            stdout.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.strip_prefix("discord-mitm serve listening on http://") {
                api = rest.trim().parse().ok();
            }
            if let Some(rest) = line.trim().strip_prefix("proxy:") {
                let addr = rest.trim().trim_start_matches("http://");
                proxy = addr.split_whitespace().next().and_then(|a| a.parse().ok());
            }
            if let Some(rest) = line.trim().strip_prefix("transparent TLS on ") {
                transparent = rest.trim().parse().ok();
            }
            if line.starts_with("Press Ctrl-C") && proxy.is_some() {
                break;
            }
        }
        let Some(proxy) = proxy else {
            let _ = child.kill();
            panic!(
                "serve --listen did not start: {}",
                std::fs::read_to_string(&stderr_log).unwrap_or_default()
            );
        };
        let rest = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                rest.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        ServeProxy {
            child,
            proxy,
            transparent,
            ca_pem: dir.join("ca").join("discord-mitm-ca.pem"),
            api: api.expect("serve printed its --api address"),
            stdout,
            stderr_log,
        }
    }

    /// Everything printed on standard output so far (the banner).
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// `http://ADDR` for `--proxy`.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy)
    }

    /// curl through the proxy trusting our CA; `-i` so headers come back too.
    pub fn curl(&self, url: &str, extra: &[&str]) -> Reply {
        curl_via(&self.proxy_url(), &self.ca_pem, url, extra)
    }

    /// Stops with SIGTERM (flushes recordings) and returns the log.
    pub fn stop(self) -> String {
        self.stop_with_stdout().1
    }

    /// Stops with SIGTERM and returns (everything printed on standard output, the log).
    pub fn stop_with_stdout(mut self) -> (String, String) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader thread sees end of file once the process is gone.
        std::thread::sleep(Duration::from_millis(50));
        (self.stdout(), self.log())
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for ServeProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl through the proxy at `proxy` trusting `ca_pem`; `-i` so headers come back too.
pub fn curl_via(proxy: &str, ca_pem: &Path, url: &str, extra: &[&str]) -> Reply {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--proxy"])
        .arg(proxy)
        .arg("--cacert")
        .arg(ca_pem)
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    Reply::parse(&out)
}

/// A running `discord-mitm record` recording from the fake upstream; killed on drop.
pub struct RecordProxy(Recorder);

impl RecordProxy {
    /// Starts `record` in `dir` (which holds `ca/`), recording into `dir/recordings`.
    pub fn start(dir: &Path, fake: &FakeDiscord) -> RecordProxy {
        RecordProxy(Recorder::start(dir, fake, &[]))
    }

    /// curl through `record`; asserts the fake answered.
    pub fn curl(&self, url: &str, extra: &[&str]) -> Reply {
        let reply = curl_via(&self.0.proxy_url(), &self.0.ca_pem, url, extra);
        assert_eq!(reply.status, 200, "recording {url}: {reply:?}");
        reply
    }

    /// curl through `record`, whatever the fake answers.
    pub fn curl_any(&self, url: &str, extra: &[&str]) -> Reply {
        curl_via(&self.0.proxy_url(), &self.0.ca_pem, url, extra)
    }

    /// Stops with SIGTERM (record flushes) and waits.
    pub fn stop(self) {
        let (stopped, log) = self.0.stop_gracefully();
        assert!(stopped, "record did not stop: {log}");
    }
}

/// Arguments as owned strings.
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A response as curl -i printed it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub stderr: String,
}

impl Reply {
    fn parse(out: &Output) -> Reply {
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let mut rest = text.as_str();
        loop {
            let Some((head, body)) = rest.split_once("\r\n\r\n") else {
                return Reply {
                    status: 0,
                    headers: vec![],
                    body: text.clone(),
                    stderr,
                };
            };
            let status: u16 = head
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            // The proxy's CONNECT answer (and any 100) comes first; the real head follows.
            if body.starts_with("HTTP/") {
                rest = body;
                continue;
            }
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            return Reply {
                status,
                headers,
                body: body.to_string(),
                stderr,
            };
        }
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Who answered.
    pub fn source(&self) -> Option<&str> {
        self.header("x-discord-mitm-source")
    }

    /// How a replayed response matched: `exact`, `template` or `loose`.
    pub fn replay_match(&self) -> Option<&str> {
        self.header("x-discord-mitm-replay")
            .and_then(|v| v.split_whitespace().nth(1))
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Whether the log has the access line of `method route` answered by `source`.
pub fn answered(log: &str, method: &str, route: &str, source: &str) -> bool {
    log.lines().any(|line| {
        line.contains("discord_mitm::access")
            && line.contains(&format!("method={method} route={route} "))
            && line.contains(&format!("source={source} "))
    })
}
