//! Test support for `record`: a local fake "discord.com" (real TLS with a CA made at test
//! time, REST routes, a zlib-stream / zstd-stream gateway), the binary under test as a child
//! process, and clients that go through it (curl, a tokio-tungstenite WebSocket client).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_discord-mitm");

/// Hosts the stand-in has certificates for.
pub const STAND_IN_HOSTS: &[&str] = &[
    "discord.com",
    "gateway.discord.gg",
    "cdn.discordapp.com",
    "localhost",
];

/// A snowflake-looking channel id used by the routes.
pub const CHANNEL_ID: &str = "81384788765712384";

/// The fake Discord.
pub struct StandIn {
    /// Where it listens (TLS).
    pub addr: SocketAddr,
    /// PEM of the CA that signed its certificate (pass as `--upstream-ca`).
    pub ca_pem: PathBuf,
    _dir: tempfile::TempDir,
}

impl StandIn {
    /// Starts the stand-in on the current tokio runtime.
    pub async fn start() -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "stand-in upstream test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_pem = dir.path().join("upstream-ca.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(
            STAND_IN_HOSTS
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "stand-in discord.com");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key_der)
        .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(handle);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        StandIn {
            addr,
            ca_pem,
            _dir: dir,
        }
    }

    /// `--resolve` arguments pinning every stand-in host here.
    pub fn resolve_args(&self) -> Vec<String> {
        STAND_IN_HOSTS
            .iter()
            .filter(|h| **h != "localhost")
            .flat_map(|h| ["--resolve".to_string(), format!("{h}={}", self.addr)])
            .collect()
    }
}

type StandInError = Box<dyn std::error::Error + Send + Sync>;
type StandInBody = http_body_util::combinators::BoxBody<Bytes, StandInError>;

fn full(bytes: impl Into<Bytes>) -> StandInBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A body that sends some bytes and then fails, so hyper cuts the connection mid-response.
fn resetting_body() -> StandInBody {
    let chunks = futures::stream::unfold(0, |step| async move {
        match step {
            0 => Some((
                Ok(hyper::body::Frame::data(Bytes::from_static(
                    b"{\"partial\": ",
                ))),
                1,
            )),
            1 => {
                // Let the headers and the first bytes reach the proxy before the reset.
                tokio::time::sleep(Duration::from_millis(200)).await;
                Some((
                    Err::<hyper::body::Frame<Bytes>, StandInError>(
                        "stand-in resets the connection".into(),
                    ),
                    2,
                ))
            }
            _ => None,
        }
    });
    BodyExt::boxed(http_body_util::StreamBody::new(chunks))
}

fn json_response(status: u16, value: Value) -> Response<StandInBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(value.to_string()))
        .unwrap()
}

async fn handle(
    mut req: Request<Incoming>,
) -> Result<Response<StandInBody>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if host.starts_with("gateway.discord.gg") && req.headers().contains_key("sec-websocket-key") {
        return Ok(gateway_upgrade(&mut req, &query));
    }
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let messages_path = format!("/api/v9/channels/{CHANNEL_ID}/messages");
    let response = match (method.as_str(), path.as_str()) {
        ("GET", "/api/v9/users/@me") => json_response(
            200,
            json!({"id": "80351110224678912", "username": "Nelly", "discriminator": "0", "mfa_enabled": false}),
        ),
        ("GET", p) if p.starts_with("/api/v9/channels/") && p.ends_with("/messages") => {
            let text = json!([{"id": "1300000000000000001", "channel_id": CHANNEL_ID, "content": "hello from the stand-in"}]).to_string();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(text.as_bytes()).unwrap();
            Response::builder()
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(full(gz.finish().unwrap()))
                .unwrap()
        }
        ("POST", p) if p == messages_path => {
            let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            json_response(
                200,
                json!({"id": "1300000000000000002", "channel_id": CHANNEL_ID, "content": sent["content"]}),
            )
        }
        ("POST", "/api/v9/auth/login") => Response::builder()
            .header("content-type", "application/json")
            .header("set-cookie", "__dcfduid=abcdef0123456789; Path=/; HttpOnly")
            .header("alt-svc", "h3=\":443\"; ma=86400")
            .body(full(
                json!({"user_id": "80351110224678912", "token": "mfa.SECRET-USER-TOKEN"})
                    .to_string(),
            ))
            .unwrap(),
        ("GET", "/api/v9/gateway") => {
            json_response(200, json!({"url": "wss://gateway.discord.gg"}))
        }
        ("GET", p) if p.starts_with("/api/v9/guilds/") && p.ends_with("/premium/subscriptions") => {
            // Echoes the guild id so replay's id substitution can be seen.
            let guild_id = p.split('/').nth(4).unwrap_or_default();
            json_response(
                200,
                json!([{"id": "1400000000000000001", "guild_id": guild_id, "user_id": "80351110224678912", "ended": false}]),
            )
        }
        ("GET", "/api/v9/users/@me/affinities/guilds") => {
            json_response(200, json!({"guild_affinities": []}))
        }
        ("GET", "/reset") => Response::builder()
            .header("content-type", "application/json")
            .header("content-length", "1000")
            .body(resetting_body())
            .unwrap(),
        ("GET", "/big") => Response::builder()
            .header("content-type", "application/octet-stream")
            .body(full(vec![b'x'; 2 * 1024 * 1024]))
            .unwrap(),
        ("GET", "/") if host.starts_with("localhost") => Response::builder()
            .header("content-type", "text/plain")
            .body(full("not discord"))
            .unwrap(),
        _ => json_response(404, json!({"message": "404: Not Found", "code": 0})),
    };
    Ok(response)
}

fn gateway_upgrade(req: &mut Request<Incoming>, query: &str) -> Response<StandInBody> {
    let key = req.headers().get("sec-websocket-key").cloned().unwrap();
    let compress = if query.contains("compress=zstd-stream") {
        "zstd"
    } else if query.contains("compress=zlib-stream") {
        "zlib"
    } else {
        "none"
    };
    let etf = query.contains("encoding=etf");
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        if etf {
            run_etf_gateway(ws, compress).await;
        } else {
            run_gateway(ws, compress).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header(
            "sec-websocket-accept",
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
        )
        .body(full(Bytes::new()))
        .unwrap()
}

/// Compresses gateway messages the way Discord does for one connection.
enum Compressor {
    None,
    Zlib(Compress),
    Zstd(zstd::stream::raw::Encoder<'static>),
}

impl Compressor {
    fn message(&mut self, payload: &Value) -> Message {
        let text = payload.to_string();
        match self {
            Compressor::None => Message::text(text),
            _ => self.bytes(text.as_bytes()),
        }
    }

    /// One encoded payload as a binary frame (compressed when the connection asked for it).
    fn bytes(&mut self, text: &[u8]) -> Message {
        match self {
            Compressor::None => Message::binary(text.to_vec()),
            Compressor::Zlib(deflate) => {
                let mut out = Vec::with_capacity(text.len() + 64);
                deflate
                    .compress_vec(text, &mut out, FlushCompress::Sync)
                    .unwrap();
                Message::binary(out)
            }
            Compressor::Zstd(encoder) => {
                use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
                let mut out = vec![0u8; text.len() + 256];
                let mut src = InBuffer::around(text);
                let mut dst = OutBuffer::around(&mut out[..]);
                encoder.run(&mut src, &mut dst).unwrap();
                encoder.flush(&mut dst).unwrap();
                let n = dst.pos();
                out.truncate(n);
                Message::binary(out)
            }
        }
    }
}

async fn run_gateway<S>(ws: WebSocketStream<S>, compress: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut compressor = match compress {
        "zlib" => Compressor::Zlib(Compress::new(Compression::default(), true)),
        "zstd" => Compressor::Zstd(zstd::stream::raw::Encoder::new(3).unwrap()),
        _ => Compressor::None,
    };
    let (mut sink, mut stream) = ws.split();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}, "s": null, "t": null});
    if sink.send(compressor.message(&hello)).await.is_err() {
        return;
    }
    let mut seq = 0u64;
    while let Some(Ok(message)) = stream.next().await {
        let text = match message {
            Message::Text(text) => text.to_string(),
            Message::Close(_) => break,
            _ => continue,
        };
        let Ok(payload) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match payload["op"].as_u64() {
            Some(2) if payload["d"]["compress"] == true => {
                // Payload compression: each payload its own zlib stream (made by Python's zlib).
                let vectors = gateway_vectors();
                for index in [2, 3] {
                    let _ = sink
                        .send(Message::binary(vector_bytes(
                            &vectors["payload_zlib"][index],
                        )))
                        .await;
                }
            }
            Some(2) => {
                seq += 1;
                let ready = json!({"op": 0, "t": "READY", "s": seq, "d": {
                    "v": 10, "session_id": "f00dfeedcafe", "resume_gateway_url": "wss://gateway.discord.gg",
                    "user": {"id": "80351110224678912", "username": "Nelly"}, "guilds": []}});
                let _ = sink.send(compressor.message(&ready)).await;
                seq += 1;
                let create = json!({"op": 0, "t": "MESSAGE_CREATE", "s": seq, "d": {
                    "id": "1300000000000000003", "channel_id": CHANNEL_ID, "content": "gateway says hi"}});
                let _ = sink.send(compressor.message(&create)).await;
            }
            Some(1) => {
                let _ = sink.send(compressor.message(&json!({"op": 11}))).await;
            }
            Some(99) => {
                // Test hook: the server closes with Discord's "unknown error" code.
                let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 4000u16.into(),
                    reason: "stand-in closing".into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                break;
            }
            _ => {}
        }
    }
}

/// The gateway vectors made by real third-party encoders (erlpack, Python zlib, zstandard).
pub fn gateway_vectors() -> &'static Value {
    static VECTORS: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    VECTORS.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/gateway/vectors.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

/// A base64 vector's bytes.
pub fn vector_bytes(value: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap())
        .unwrap()
}

/// Indexes into the vectors' `etf` list.
pub const ETF_HELLO: usize = 0;
pub const ETF_READY: usize = 2;
pub const ETF_MESSAGE_CREATE: usize = 3;
pub const ETF_NUMBERS: usize = 5;
pub const ETF_IDENTIFY: usize = 6;

/// The ETF payloads the stand-in sends after the client's IDENTIFY, in order: erlpack's READY,
/// MESSAGE_CREATE and NUMBERS, then Erlang's own term_to_binary with atom keys.
pub fn etf_server_payloads() -> Vec<Vec<u8>> {
    let vectors = gateway_vectors();
    let mut out: Vec<Vec<u8>> = [ETF_READY, ETF_MESSAGE_CREATE, ETF_NUMBERS]
        .iter()
        .map(|&i| vector_bytes(&vectors["etf"][i]))
        .collect();
    out.push(vector_bytes(&vectors["etf_server_atom_keys"]["etf"]));
    out
}

/// A gateway speaking ETF (`encoding=etf`) with real encoders' bytes: HELLO first; the
/// IDENTIFY vector is answered with [`etf_server_payloads`].
async fn run_etf_gateway<S>(ws: WebSocketStream<S>, compress: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut compressor = match compress {
        "zlib" => Compressor::Zlib(Compress::new(Compression::default(), true)),
        "zstd" => Compressor::Zstd(zstd::stream::raw::Encoder::new(3).unwrap()),
        _ => Compressor::None,
    };
    let vectors = gateway_vectors();
    let (mut sink, mut stream) = ws.split();
    let hello = vector_bytes(&vectors["etf"][ETF_HELLO]);
    if sink.send(compressor.bytes(&hello)).await.is_err() {
        return;
    }
    let identify = vector_bytes(&vectors["etf"][ETF_IDENTIFY]);
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Binary(data) if data[..] == identify[..] => {
                for payload in etf_server_payloads() {
                    let _ = sink.send(compressor.bytes(&payload)).await;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
}

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
    stderr_log: PathBuf,
}

/// A scratch directory with a CA for the proxy, made by `discord-mitm ca init`.
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let out = Command::new(BIN)
        .arg("--ca-dir")
        .arg(&ca_dir)
        .args(["ca", "init"])
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
    pub fn start(dir: &Path, stand_in: &StandIn, extra: &[&str]) -> Recorder {
        Recorder::start_with(dir, stand_in, true, extra)
    }

    /// Like [`Recorder::start`] but without `--resolve` pins: Discord hosts go to DNS.
    pub fn start_unpinned(dir: &Path, stand_in: &StandIn, extra: &[&str]) -> Recorder {
        Recorder::start_with(dir, stand_in, false, extra)
    }

    fn start_with(dir: &Path, stand_in: &StandIn, pinned: bool, extra: &[&str]) -> Recorder {
        let pins = if pinned {
            stand_in.resolve_args()
        } else {
            Vec::new()
        };
        let recordings = dir.join("recordings");
        let ca_dir = dir.join("ca");
        let stderr_log = dir.join(format!("record-{}.log", std::process::id()));
        let mut cmd = Command::new(BIN);
        cmd.arg("--ca-dir")
            .arg(&ca_dir)
            .arg("record")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--recordings")
            .arg(&recordings)
            .arg("--upstream-ca")
            .arg(&stand_in.ca_pem)
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
    pub fn stop(mut self) -> String {
        unsafe_sigterm(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
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
    let tls = connector.connect(name, tcp).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    ws
}

/// Opens the recordings with the library (the process that wrote them must have stopped).
pub fn open_store(recordings: &Path) -> discord_mitm::store::Store {
    discord_mitm::store::Store::open(recordings).unwrap()
}
