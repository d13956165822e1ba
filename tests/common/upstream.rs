//! The one fake Discord upstream for the record and pipeline tests: real TLS (a CA made at test
//! time) for Discord's hosts, on a thread and runtime of its own so blocking and async tests use
//! it alike. It answers the REST routes the record tests read (some gzip-compressed, one that
//! resets mid-body, a 2 MiB one), the official client's start-up files and CDN attachments, a
//! zlib-stream / zstd-stream / ETF gateway, and counts every request it serves.
//! Routes it does not know get Discord's 404, or, from [`FakeDiscord::start_echoing`], an echo
//! of the request with that counter so a replay shows exactly which recorded answer it is.
//! It keeps what it received ([`FakeDiscord::seen`]: each request's method, path, body and
//! `Authorization`, and each gateway IDENTIFY's token) so tests can assert what reached it,
//! without echoing credentials into answers that would then be recorded. Its own account is
//! [`REAL_USER_ID`] whatever token is used.
//! Test crates include it with `#[path = "common/upstream.rs"] mod upstream;`.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Hosts the fake has a certificate for; all but `localhost` are pinned to it by
/// [`FakeDiscord::resolve_args`].
pub const HOSTS: &[&str] = &[
    "discord.com",
    "discordapp.com",
    "gateway.discord.gg",
    // A regional gateway host: `serve` relays its upgrades upstream (the in-process gateway
    // takes gateway.discord.gg's).
    "gateway-us-east1-b.discord.gg",
    "cdn.discordapp.com",
    "media.discordapp.net",
    "localhost",
];

/// The stand-in's own account: its `/users/@me`, READY user and identity probe.
pub const REAL_USER_ID: &str = "80351110224678912";
/// Another user the identity probe mentions (never swapped).
pub const OTHER_USER_ID: &str = "80351110224678913";

/// One request (or gateway IDENTIFY) the stand-in received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// HTTP method, or `IDENTIFY` / `RESUME` for gateway messages.
    pub method: String,
    /// Path (for gateway messages the upgrade's host).
    pub path: String,
    /// Query string (empty when none).
    pub query: String,
    /// The `Authorization` header (for gateway messages the token).
    pub authorization: Option<String>,
    /// The request body as text.
    pub body: String,
}

type SeenLog = Arc<Mutex<Vec<Seen>>>;

/// A snowflake-looking channel id used by the REST routes and the gateway.
pub const CHANNEL_ID: &str = "81384788765712384";

/// The versions manifest the desktop client fetches at start-up.
pub const VERSIONS_JSON: &str = r#"{"discord_desktop_core":1,"discord_voice":3,"discord_utils":2}"#;
/// Bytes of a module download.
pub const MODULE_BYTES: &[u8] = b"PK\x03\x04 discord_desktop_core module";
/// The web app's HTML.
pub const APP_HTML: &str = "<!DOCTYPE html><html><head><title>Discord</title></head></html>";
/// Bytes of a real Discord attachment (not one `serve` handed out).
pub const REAL_ATTACHMENT: &[u8] = b"\x89PNG attachment from real discord";

/// What the fake answers to a route it does not know.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unknown {
    /// Discord's 404 body.
    NotFound,
    /// An echo of the request with the request counter.
    Echo,
}

/// The running fake; stops when dropped (its runtime goes with it).
pub struct FakeDiscord {
    /// Where it listens (TLS).
    pub addr: SocketAddr,
    /// PEM of its CA, for `--upstream-ca`.
    pub ca_pem: PathBuf,
    served: Arc<AtomicU64>,
    seen: SeenLog,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl FakeDiscord {
    /// Starts the fake; unknown routes get Discord's 404.
    pub fn start() -> FakeDiscord {
        FakeDiscord::start_with(Unknown::NotFound)
    }

    /// Starts the fake; unknown routes get an echo of the request (see the module doc).
    pub fn start_echoing() -> FakeDiscord {
        FakeDiscord::start_with(Unknown::Echo)
    }

    /// Starts the fake with an ordinary self-signed certificate made by `openssl req -x509`
    /// (marked as a CA, naming only `CN=discord.com`); `ca_pem` is that certificate.
    pub fn start_self_signed() -> FakeDiscord {
        let dir = tempfile::tempdir().unwrap();
        let cert_pem = dir.path().join("self-signed.pem");
        let key_pem = dir.path().join("self-signed.key");
        let made = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=discord.com", "-keyout"])
            .arg(&key_pem)
            .arg("-out")
            .arg(&cert_pem)
            .output()
            .expect("openssl runs");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let chain = rustls_pemfile::certs(&mut std::fs::read(&cert_pem).unwrap().as_slice())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut std::fs::read(&key_pem).unwrap().as_slice())
            .unwrap()
            .unwrap();
        FakeDiscord::serve(dir, chain, key, cert_pem, Unknown::NotFound)
    }

    fn start_with(unknown: Unknown) -> FakeDiscord {
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
        let mut leaf_params =
            CertificateParams::new(HOSTS.iter().map(|h| h.to_string()).collect::<Vec<_>>())
                .unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "fake discord.com");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        FakeDiscord::serve(dir, vec![leaf.der().clone()], key_der, ca_pem, unknown)
    }

    fn serve(
        dir: tempfile::TempDir,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key_der: rustls::pki_types::PrivateKeyDer<'static>,
        ca_pem: PathBuf,
        unknown: Unknown,
    ) -> FakeDiscord {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // Binding on the fake's own runtime works from blocking and async callers alike.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&served);
        let seen: SeenLog = Arc::default();
        let log = Arc::clone(&seen);
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let counter = Arc::clone(&counter);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| {
                        handle(req, Arc::clone(&counter), Arc::clone(&log), unknown)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        FakeDiscord {
            addr,
            ca_pem,
            served,
            seen,
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    /// `--resolve` arguments pinning every Discord host here.
    pub fn resolve_args(&self) -> Vec<String> {
        HOSTS
            .iter()
            .filter(|h| **h != "localhost")
            .flat_map(|h| ["--resolve".to_string(), format!("{h}={}", self.addr)])
            .collect()
    }

    /// `--upstream-ca` and `--resolve` arguments that send Discord's hosts here.
    pub fn upstream_args(&self) -> Vec<String> {
        let mut args = vec![
            "--upstream-ca".to_string(),
            self.ca_pem.display().to_string(),
        ];
        args.extend(self.resolve_args());
        args
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }

    /// Everything received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        // Not a blocking shutdown: async tests drop the fake inside their own runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

type FakeError = Box<dyn std::error::Error + Send + Sync>;
type FakeBody = http_body_util::combinators::BoxBody<Bytes, FakeError>;

fn full(bytes: impl Into<Bytes>) -> FakeBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn reply(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<FakeBody> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(full(body))
        .unwrap()
}

fn json_response(status: u16, value: Value) -> Response<FakeBody> {
    reply(status, "application/json", value.to_string())
}

/// A body that sends some bytes and then fails, so hyper cuts the connection mid-response.
fn resetting_body() -> FakeBody {
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
                    Err::<hyper::body::Frame<Bytes>, FakeError>(
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

async fn handle(
    mut req: Request<Incoming>,
    counter: Arc<AtomicU64>,
    seen: SeenLog,
    unknown: Unknown,
) -> Result<Response<FakeBody>, std::convert::Infallible> {
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if host.starts_with("gateway") && req.headers().contains_key("sec-websocket-key") {
        return Ok(gateway_upgrade(&mut req, &query, seen, host));
    }
    let method = req.method().to_string();
    let (head, body) = req.into_parts();
    let body = read_body(body).await;
    if let Some(response) = identity_routes(&seen, &head, &body) {
        return Ok(response);
    }
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
        ("GET", "/api/v9/users/@me/affinities/guilds")
        | ("GET", "/api/v9/users/@me/activities/statistics/applications") => {
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
        ("GET", "/api/modules/stable/versions.json") => {
            reply(200, "application/json", VERSIONS_JSON)
        }
        ("GET", p) if p.starts_with("/api/modules/stable/") => {
            reply(200, "application/zip", MODULE_BYTES)
        }
        ("GET", "/app") => reply(200, "text/html; charset=utf-8", APP_HTML),
        ("GET", p) if p.starts_with("/assets/") => reply(
            200,
            "application/javascript",
            format!("/* {p} */ window.GLOBAL_ENV = {{}};"),
        ),
        ("GET", p) if p.starts_with("/attachments/") => reply(200, "image/png", REAL_ATTACHMENT),
        _ if unknown == Unknown::Echo => {
            // Which request this was and the how-many-th answer, ids listed separately so
            // replay's id substitution can be seen.
            let ids: Vec<Value> = path
                .split('/')
                .filter(|s| s.len() >= 17 && s.bytes().all(|b| b.is_ascii_digit()))
                .map(|s| Value::String(s.to_string()))
                .collect();
            let echo = json!({
                "n": n,
                "method": method,
                "host": host,
                "path": path,
                "query": query,
                "body": String::from_utf8_lossy(&body),
                "ids": ids,
            });
            json_response(200, echo)
        }
        _ => json_response(404, json!({"message": "404: Not Found", "code": 0})),
    };
    Ok(response)
}

/// A request body whole (empty if it failed).
async fn read_body(body: Incoming) -> Bytes {
    body.collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// Notes what arrived (see [`FakeDiscord::seen`]) and answers the identity tests' routes: a
/// probe naming the user asked for and the stand-in's own id, and a route answering 401.
fn identity_routes(
    seen: &SeenLog,
    head: &http::request::Parts,
    body: &Bytes,
) -> Option<Response<FakeBody>> {
    let path = head.uri.path();
    seen.lock().unwrap().push(Seen {
        method: head.method.to_string(),
        path: path.to_string(),
        query: head.uri.query().unwrap_or_default().to_string(),
        authorization: head
            .headers
            .get("authorization")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string()),
        body: String::from_utf8_lossy(body).to_string(),
    });
    if path.starts_with("/api/v9/users/") && path.ends_with("/identity-probe") {
        let asked = path.split('/').nth(4).unwrap_or_default();
        return Some(json_response(
            200,
            json!({"asked": asked, "user_id": REAL_USER_ID, "owner": {"id": REAL_USER_ID},
                "friends": [OTHER_USER_ID], "body": String::from_utf8_lossy(body)}),
        ));
    }
    path.ends_with("/unauthorized-probe")
        .then(|| json_response(401, json!({"message": "401: Unauthorized", "code": 0})))
}

fn gateway_upgrade(
    req: &mut Request<Incoming>,
    query: &str,
    seen: SeenLog,
    host: String,
) -> Response<FakeBody> {
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
            run_etf_gateway(ws, compress, seen, host).await;
        } else {
            run_gateway(ws, compress, seen, host).await;
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
    /// The compressor for a connection that asked for `compress` (`zlib`, `zstd` or `none`).
    fn new(compress: &str) -> Compressor {
        match compress {
            "zlib" => Compressor::Zlib(Compress::new(Compression::default(), true)),
            "zstd" => Compressor::Zstd(zstd::stream::raw::Encoder::new(3).unwrap()),
            _ => Compressor::None,
        }
    }

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

async fn run_gateway<S>(ws: WebSocketStream<S>, compress: &str, seen: SeenLog, host: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut compressor = Compressor::new(compress);
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
        if let Some(op @ (2 | 6)) = payload["op"].as_u64() {
            seen.lock().unwrap().push(Seen {
                method: if op == 2 { "IDENTIFY" } else { "RESUME" }.into(),
                path: host.clone(),
                query: String::new(),
                authorization: payload["d"]["token"].as_str().map(str::to_string),
                body: String::new(),
            });
        }
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
                    "id": "1300000000000000003", "channel_id": CHANNEL_ID, "content": "gateway says hi",
                    "author": {"id": REAL_USER_ID, "username": "Nelly"}}});
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
/// IDENTIFY vector (or any ETF IDENTIFY, noted in [`FakeDiscord::seen`]: a relay may have
/// encoded it again) is answered with [`etf_server_payloads`].
async fn run_etf_gateway<S>(ws: WebSocketStream<S>, compress: &str, seen: SeenLog, host: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut compressor = Compressor::new(compress);
    let vectors = gateway_vectors();
    let (mut sink, mut stream) = ws.split();
    let hello = vector_bytes(&vectors["etf"][ETF_HELLO]);
    if sink.send(compressor.bytes(&hello)).await.is_err() {
        return;
    }
    let identify = vector_bytes(&vectors["etf"][ETF_IDENTIFY]);
    while let Some(Ok(message)) = stream.next().await {
        let decoded = match &message {
            Message::Binary(data) => discord_mitm::gateway::etf::decode(
                data,
                &discord_mitm::gateway::etf::DecodeOptions::LENIENT,
            )
            .ok(),
            _ => None,
        };
        let is_identify = decoded.as_ref().is_some_and(|d| d["op"] == 2);
        if let Some(d) = decoded.filter(|_| is_identify) {
            seen.lock().unwrap().push(Seen {
                method: "IDENTIFY".into(),
                path: host.clone(),
                query: String::new(),
                authorization: d["d"]["token"].as_str().map(str::to_string),
                body: String::new(),
            });
        }
        match message {
            Message::Binary(data) if data[..] == identify[..] || is_identify => {
                for payload in etf_server_payloads() {
                    let _ = sink.send(compressor.bytes(&payload)).await;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
}
