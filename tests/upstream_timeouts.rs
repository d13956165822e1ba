//! Upstreams that accept a connection and then say nothing, through the built binary: one that
//! stalls the TLS handshake (`--connect-timeout`), one that completes TLS and never answers the
//! request (`--response-timeout`), and the same for a WebSocket upgrade. `record` and
//! `serve --listen` answer each with a 502 in Discord's JSON shape naming the timeout, once the
//! timeout has passed and not much later, and go on serving everyone else meanwhile.
mod pipeline_support;
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, KeyPair};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use record_support::*;
use upstream::FakeDiscord;

/// Hosts the silent TLS upstream has a certificate for.
const SILENT_HOSTS: &[&str] = &["discord.com", "cdn.discordapp.com", "gateway.discord.gg"];
/// How late after its timeout an answer may come (a loaded CI machine).
const SLACK: Duration = Duration::from_secs(3);

/// Two upstreams that never answer: `tls` completes the handshake with a self-signed
/// certificate (`cert_pem`, for `--upstream-ca`) and then reads forever; `tcp` accepts and
/// never sends a byte, so the TLS handshake stalls. Both keep every connection open.
struct Silent {
    tls: SocketAddr,
    tcp: SocketAddr,
    cert_pem: PathBuf,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Silent {
    fn start() -> Silent {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(
            SILENT_HOSTS
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_pem = dir.path().join("silent.pem");
        std::fs::write(&cert_pem, cert.pem()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let bind = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            listener
        };
        let (tls_listener, tcp_listener) = (bind(), bind());
        let (tls, tcp) = (
            tls_listener.local_addr().unwrap(),
            tcp_listener.local_addr().unwrap(),
        );
        runtime.spawn(async move {
            let listener = TcpListener::from_std(tls_listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut sink = [0u8; 4096];
                    while matches!(tls.read(&mut sink).await, Ok(n) if n > 0) {}
                });
            }
        });
        runtime.spawn(async move {
            let listener = TcpListener::from_std(tcp_listener).unwrap();
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Silent {
            tls,
            tcp,
            cert_pem,
            _runtime: runtime,
            _dir: dir,
        }
    }
}

/// Asserts `elapsed` is at least `timeout` (the timeout answered, not something else) and at
/// most `timeout` plus [`SLACK`].
#[track_caller]
fn within(what: &str, elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed >= timeout.mul_f64(0.9) && elapsed <= timeout + SLACK,
        "{what}: answered after {elapsed:?}, expected about {timeout:?}"
    );
}

/// curl through `recorder`: (HTTP status, JSON body, how long it took).
fn curl_json(recorder: &Recorder, url: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let out = curl(recorder, url, &["-w", "\n%{http_code}"]);
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let body = serde_json::from_str(body).unwrap_or_else(|e| {
        panic!(
            "{url}: not JSON ({e}): {text}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            recorder.log()
        )
    });
    (status.parse().unwrap_or(0), body, elapsed)
}

/// A WebSocket upgrade to `host` through the proxy: the response head's status and its body.
async fn upgrade_through(proxy: SocketAddr, ca_pem: &Path, host: &str) -> (u16, Value) {
    let mut tls = tls_through_proxy(proxy, ca_pem, host).await;
    tls.write_all(
        format!(
            "GET /?v=10&encoding=json HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut chunk))
            .await
            .expect("an answer to the upgrade within 10 s")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let body = serde_json::from_str(&body[..length])
                    .unwrap_or_else(|e| panic!("upgrade answer not JSON ({e}): {text}"));
                return (status, body);
            }
        }
    }
    panic!(
        "the proxy closed without answering the upgrade: {}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn record_answers_silent_upstreams_with_a_502_once_their_timeout_passes_and_keeps_serving() {
    let stand_in = FakeDiscord::start();
    let silent = Silent::start();
    let dir = workdir();
    let pins: Vec<String> = [
        format!("discord.com={}", stand_in.addr),
        format!("cdn.discordapp.com={}", silent.tls),
        format!("gateway.discord.gg={}", silent.tls),
        format!("media.discordapp.net={}", silent.tcp),
    ]
    .into_iter()
    .flat_map(|pin| ["--resolve".to_string(), pin])
    .collect();
    let silent_ca = silent.cert_pem.display().to_string();
    // record_support passes --connect-timeout 2. The response timeout counts from the request,
    // connecting included, so it is the longer one here: each has its own silent upstream.
    let recorder = Recorder::start_against(
        dir.path(),
        &stand_in.ca_pem,
        &pins,
        &["--upstream-ca", &silent_ca, "--response-timeout", "3"],
    );
    let (connect, response) = (Duration::from_secs(2), Duration::from_secs(3));

    std::thread::scope(|scope| {
        // The TLS handshake never completes: --connect-timeout answers.
        let stalled = scope.spawn(|| {
            curl_json(
                &recorder,
                "https://media.discordapp.net/attachments/1/2/stalled.png",
            )
        });
        // TLS completes, the request is never answered: --response-timeout answers.
        let unanswered = scope.spawn(|| {
            curl_json(
                &recorder,
                "https://cdn.discordapp.com/attachments/1/2/unanswered.png",
            )
        });
        // Meanwhile everyone else is served.
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        proxy_still_serves(&recorder);
        assert!(
            started.elapsed() < response,
            "a healthy request waited for the silent ones: {:?}",
            started.elapsed()
        );

        let (status, body, elapsed) = stalled.join().unwrap();
        assert_eq!(status, 502, "{body}");
        within("stalled TLS handshake", elapsed, connect);
        assert_eq!(
            body,
            json!({
                "message": "502: Bad Gateway (connecting to media.discordapp.net timed out after 2s)",
                "code": 0,
                "discord_mitm_hint": "raise --connect-timeout SECONDS, or pin a reachable address with --resolve media.discordapp.net=IP:PORT",
            })
        );

        let (status, body, elapsed) = unanswered.join().unwrap();
        assert_eq!(status, 502, "{body}");
        within("unanswered request", elapsed, response);
        assert_eq!(
            body,
            json!({
                "message": "502: Bad Gateway (https://cdn.discordapp.com sent no response headers within 3s)",
                "code": 0,
                "discord_mitm_hint": "the upstream accepted the request but did not answer: raise --response-timeout SECONDS",
            })
        );
    });

    // A WebSocket upgrade the upstream never answers.
    let started = Instant::now();
    let (status, body) = runtime().block_on(upgrade_through(
        recorder.addr,
        &recorder.ca_pem,
        "gateway.discord.gg",
    ));
    within("unanswered WebSocket upgrade", started.elapsed(), response);
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body,
        json!({
            "message": "502: Bad Gateway (wss://gateway.discord.gg sent no response headers within 3s)",
            "code": 0,
            "discord_mitm_hint": "the upstream accepted the request but did not answer: raise --response-timeout SECONDS",
        })
    );
    proxy_still_serves(&recorder);

    // The failures are recorded as such.
    let log = recorder.stop();
    let store = open_store(&dir.path().join("recordings"));
    let exchanges: Vec<_> = store.exchanges().map(Result::unwrap).collect();
    for (host, reason) in [
        ("media.discordapp.net", "timed out after 2s"),
        ("cdn.discordapp.com", "sent no response headers within 3s"),
    ] {
        let exchange = exchanges
            .iter()
            .find(|e| e.host == host)
            .unwrap_or_else(|| panic!("nothing recorded for {host}: {exchanges:?}\n{log}"));
        assert_eq!(exchange.status(), Some(502));
        assert!(
            exchange
                .error
                .as_deref()
                .is_some_and(|e| e.contains(reason)),
            "{exchange:?}"
        );
    }
}

#[test]
fn serve_listen_answers_an_upstream_that_never_responds_with_a_502_and_keeps_serving() {
    let silent = Silent::start();
    let dir = workdir();
    // The backend answers Discord's API; a route it does not know goes down --fallback forward
    // to the silent upstream. pipeline_support passes --connect-timeout 2.
    let extra = pipeline_support::args(&[
        "--fallback",
        "forward",
        "--response-timeout",
        "1",
        "--upstream-ca",
        &silent.cert_pem.display().to_string(),
        "--resolve",
        &format!("discord.com={}", silent.tls),
    ]);
    let serve = pipeline_support::ServeProxy::start(dir.path(), &extra);
    let started = Instant::now();
    let reply = serve.curl(
        "https://discord.com/api/v9/users/@me/activities/statistics/applications",
        &[],
    );
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 502, "{reply:?}\n{}", serve.log());
    within(
        "unanswered forwarded request",
        elapsed,
        Duration::from_secs(1),
    );
    assert_eq!(reply.source(), Some("proxy"));
    assert_eq!(
        reply.json(),
        json!({
            "message": "502: Bad Gateway (https://discord.com sent no response headers within 1s)",
            "code": 0,
            "discord_mitm_hint": "the upstream accepted the request but did not answer: raise --response-timeout SECONDS",
        })
    );
    // The backend still answers through the same proxy.
    let me = serve.curl(
        "https://discord.com/api/v10/users/@me",
        &[
            "-H",
            &format!("Authorization: Bot {}", pipeline_support::BOT_TOKEN),
        ],
    );
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.source(), Some("backend"));
    assert_eq!(me.json()["id"], pipeline_support::BOT_ID);
    serve.stop();
}
