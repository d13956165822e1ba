//! Test support for `record`: the binary under test as a child process recording from the fake
//! upstream (`tests/common/upstream.rs`, which the test crate includes as `upstream`), and
//! clients that go through it (curl, a tokio-tungstenite WebSocket client).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

use crate::upstream::FakeDiscord;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_discord-mitm");

/// A `discord-mitm record` child process.
pub struct Recorder {
    /// The child.
    pub child: Child,
    /// Proxy address.
    pub addr: SocketAddr,
    /// Transparent listener address, if started with one.
    pub transparent: Option<SocketAddr>,
    /// Where the CA lives.
    pub ca_dir: PathBuf,
    /// The CA certificate clients must trust.
    pub ca_pem: PathBuf,
    /// Recordings directory.
    pub recordings: PathBuf,
    /// The live explorer's address with its token, when started with `--ui`.
    pub explorer: Option<String>,
    stderr_log: PathBuf,
}

/// A scratch directory with a CA for the proxy, made by `discord-mitm ca init`.
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let out = Command::new(BIN)
        .args(["ca", "init", "--ca-dir"])
        .arg(&ca_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ca init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

impl Recorder {
    /// Starts `discord-mitm record` in `dir` (which holds `ca/`) with extra arguments.
    pub fn start(dir: &Path, stand_in: &FakeDiscord, extra: &[&str]) -> Recorder {
        Recorder::start_with(dir, stand_in, true, extra)
    }

    /// Like [`Recorder::start`] but without `--resolve` pins: Discord hosts go to DNS.
    pub fn start_unpinned(dir: &Path, stand_in: &FakeDiscord, extra: &[&str]) -> Recorder {
        Recorder::start_with(dir, stand_in, false, extra)
    }

    fn start_with(dir: &Path, stand_in: &FakeDiscord, pinned: bool, extra: &[&str]) -> Recorder {
        let pins = if pinned {
            stand_in.resolve_args()
        } else {
            Vec::new()
        };
        Recorder::start_against(dir, &stand_in.ca_pem, &pins, extra)
    }

    /// Starts `discord-mitm record` in `dir` (which holds `ca/`) against any TLS stand-in:
    /// `upstream_ca` is trusted upstream, `pins` are its `--resolve` arguments.
    pub fn start_against(
        dir: &Path,
        upstream_ca: &Path,
        pins: &[String],
        extra: &[&str],
    ) -> Recorder {
        let recordings = dir.join("recordings");
        let ca_dir = dir.join("ca");
        let stderr_log = dir.join(format!("record-{}.log", std::process::id()));
        let mut cmd = Command::new(BIN);
        cmd.arg("record")
            .arg("--ca-dir")
            .arg(&ca_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--recordings")
            .arg(&recordings)
            .arg("--upstream-ca")
            .arg(upstream_ca)
            .arg("--connect-timeout")
            .arg("2")
            .args(pins)
            .args(extra)
            .env("RUST_LOG", "discord_mitm=info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap());
        let mut child = cmd.spawn().expect("spawn discord-mitm");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        let mut transparent = None;
        let mut explorer = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(rest) = line.strip_prefix("discord-mitm record: proxy listening on ") {
                addr = rest.trim().parse().ok();
            }
            if let Some(rest) =
                line.strip_prefix("discord-mitm record: transparent TLS listening on ")
            {
                transparent = rest.trim().parse().ok();
            }
            if let Some(rest) = line.strip_prefix("discord-mitm: explorer at ") {
                explorer = Some(rest.trim().to_string());
            }
            if line.starts_with("discord-mitm record: recording into")
                || line.contains("not recording")
            {
                break;
            }
        }
        let Some(addr) = addr else {
            let _ = child.kill();
            panic!(
                "record did not start: {}",
                std::fs::read_to_string(&stderr_log).unwrap_or_default()
            );
        };
        std::thread::spawn(move || for _ in lines {});
        Recorder {
            child,
            addr,
            transparent,
            explorer,
            ca_pem: ca_dir.join("discord-mitm-ca.pem"),
            ca_dir,
            recordings,
            stderr_log,
        }
    }

    /// `http://ADDR` for `--proxy`.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops with SIGTERM (graceful: flushes) and waits.
    pub fn stop(self) -> String {
        self.stop_gracefully().1
    }

    /// Stops with SIGTERM, waits up to 15 s and then kills: (whether it stopped by itself,
    /// the log).
    pub fn stop_gracefully(mut self) -> (bool, String) {
        unsafe_sigterm(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut stopped = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                stopped = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (stopped, self.log())
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

/// Runs curl through the proxy, trusting our CA. Returns (status line code, body, stderr).
pub fn curl(recorder: &Recorder, url: &str, extra: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10", "--proxy"])
        .arg(recorder.proxy_url())
        .arg("--cacert")
        .arg(&recorder.ca_pem)
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl")
}

/// Asserts the proxy still answers a plain request through the fake upstream.
#[track_caller]
pub fn proxy_still_serves(recorder: &Recorder) {
    let out = curl(recorder, "https://discord.com/api/v9/users/@me", &[]);
    assert!(
        out.status.success(),
        "proxy stopped serving: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        recorder.log()
    );
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(user["username"], "Nelly");
}

/// A two-worker runtime for blocking tests that also drive async clients.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the binary with arguments; returns its output.
pub fn run_bin(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run discord-mitm")
}

/// Opens a WebSocket to `url` (wss) through the proxy with CONNECT, trusting `ca_pem`.
pub async fn websocket_through_proxy(
    proxy: SocketAddr,
    ca_pem: &Path,
    host: &str,
    url: &str,
) -> WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>> {
    let tls = tls_through_proxy(proxy, ca_pem, host).await;
    let (ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    ws
}

/// A TLS connection to `host` through the proxy (CONNECT), trusting `ca_pem`.
pub async fn tls_through_proxy(
    proxy: SocketAddr,
    ca_pem: &Path,
    host: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    tcp.write_all(format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "proxy closed during CONNECT"
        );
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca_pem).unwrap();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Opens the recordings with the library (the process that wrote them must have stopped).
pub fn open_store(recordings: &Path) -> discord_mitm::store::Store {
    discord_mitm::store::Store::open(recordings).unwrap()
}
