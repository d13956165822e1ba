//! A fake Discord upstream for the pipeline tests: real TLS (a CA made at test time) for
//! Discord's hosts, on its own thread and runtime so tests stay plain blocking code, answering
//! the official client's start-up files, CDN attachments and, for everything else, an echo of
//! the request with a counter so a replay shows exactly which recorded answer it is.
//! `record` (the binary) records through it; `serve --fallback forward` forwards to it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// Hosts the fake has a certificate for (and the tests pin to it with `--resolve`).
pub const HOSTS: &[&str] = &[
    "discord.com",
    "discordapp.com",
    "cdn.discordapp.com",
    "media.discordapp.net",
];

/// The versions manifest the desktop client fetches at start-up.
pub const VERSIONS_JSON: &str = r#"{"discord_desktop_core":1,"discord_voice":3,"discord_utils":2}"#;
/// Bytes of a module download.
pub const MODULE_BYTES: &[u8] = b"PK\x03\x04 discord_desktop_core module";
/// The web app's HTML.
pub const APP_HTML: &str = "<!DOCTYPE html><html><head><title>Discord</title></head></html>";
/// Bytes of a real Discord attachment (not one `serve` handed out).
pub const REAL_ATTACHMENT: &[u8] = b"\x89PNG attachment from real discord";

/// The running fake; stops when dropped (its runtime goes with it).
pub struct FakeDiscord {
    /// Where it listens (TLS).
    pub addr: SocketAddr,
    /// PEM of its CA, for `--upstream-ca`.
    pub ca_pem: PathBuf,
    served: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl FakeDiscord {
    /// Starts the fake on a runtime of its own.
    pub fn start() -> FakeDiscord {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pipeline tests' fake Discord CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_pem = dir.path().join("fake-discord-ca.pem");
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&served);
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| handle(req, Arc::clone(&counter)));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        FakeDiscord {
            addr,
            ca_pem,
            served,
            _runtime: runtime,
            _dir: dir,
        }
    }

    /// `--upstream-ca` and `--resolve` arguments that send Discord's hosts here.
    pub fn upstream_args(&self) -> Vec<String> {
        let mut args = vec![
            "--upstream-ca".to_string(),
            self.ca_pem.display().to_string(),
        ];
        for host in HOSTS {
            args.push("--resolve".into());
            args.push(format!("{host}={}", self.addr));
        }
        args
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
}

type FakeBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn reply(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<FakeBody> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

async fn handle(
    req: Request<Incoming>,
    counter: Arc<AtomicU64>,
) -> Result<Response<FakeBody>, Infallible> {
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let response = match (method.as_str(), path.as_str()) {
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
        _ => {
            // Echo: which request this was and the how-many-th answer, ids listed separately so
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
            reply(200, "application/json", echo.to_string())
        }
    };
    Ok(response)
}
