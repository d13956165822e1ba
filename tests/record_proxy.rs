//! `discord-mitm record` end to end: curl and a WebSocket client through the proxy to a local
//! fake discord.com; then the sled recording is opened and checked.
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use futures::{SinkExt, StreamExt};
use record_support::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use upstream::*;

async fn curl_async(recorder: &Recorder, url: &str, extra: &[&str]) -> std::process::Output {
    let proxy = recorder.proxy_url();
    let ca = recorder.ca_pem.clone();
    let url = url.to_string();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "--proxy", &proxy, "--cacert"])
            .arg(&ca)
            .args(&extra)
            .arg(&url)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn header(headers: &[discord_mitm::store::Header], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value_str().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_exchanges_are_recorded_decoded_and_redacted() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(
        dir.path(),
        &stand_in,
        &["--resolve", "discordapp.com=127.0.0.1:1"],
    );

    let me = curl_async(
        &recorder,
        "https://discord.com/api/v9/users/@me",
        &["-H", "Authorization: Bot MTIz.very-secret-bot-token"],
    )
    .await;
    assert!(
        me.status.success(),
        "{}",
        String::from_utf8_lossy(&me.stderr)
    );
    let user: Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(user["username"], "Nelly");

    let url = format!("https://discord.com/api/v9/channels/{CHANNEL_ID}/messages?limit=50");
    let messages = curl_async(&recorder, &url, &["--compressed"]).await;
    let messages: Value = serde_json::from_slice(&messages.stdout).unwrap();
    assert_eq!(messages[0]["content"], "hello from the stand-in");

    let login = curl_async(
        &recorder,
        "https://discord.com/api/v9/auth/login",
        &[
            "-i",
            "-H",
            "content-type: application/json",
            "--data",
            r#"{"login":"nelly@example.com","password":"hunter2"}"#,
        ],
    )
    .await;
    let login_text = String::from_utf8_lossy(&login.stdout).to_ascii_lowercase();
    assert!(
        login_text.contains("set-cookie: __dcfduid="),
        "{login_text}"
    );
    assert!(
        !login_text.contains("alt-svc"),
        "Alt-Svc must be stripped: {login_text}"
    );

    // Unreachable upstream: a recorded 502 with a Discord-style body, quickly.
    let started = std::time::Instant::now();
    let down = curl_async(
        &recorder,
        "https://discordapp.com/api/v9/gateway",
        &["-w", "\n%{http_code}"],
    )
    .await;
    let down_text = String::from_utf8_lossy(&down.stdout);
    assert!(down_text.ends_with("\n502"), "{down_text}");
    let body: Value = serde_json::from_str(down_text.lines().next().unwrap()).unwrap();
    assert_eq!(body["code"], 0, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("502: Bad Gateway (cannot connect to discordapp.com"),
        "{body}"
    );
    assert!(
        body["discord_mitm_hint"]
            .as_str()
            .is_some_and(|hint| hint.contains("--resolve discordapp.com=IP:PORT")),
        "{body}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let log = recorder.stop();
    let store = open_store(&dir.path().join("recordings"));
    let exchanges: Vec<_> = store.exchanges().collect::<Result<_, _>>().unwrap();
    assert_eq!(exchanges.len(), 4, "{log}");

    let me = &exchanges[0];
    assert_eq!(me.method, "GET");
    assert_eq!(me.url(), "https://discord.com/api/v9/users/@me");
    let auth = header(&me.request_headers, "authorization").unwrap();
    assert!(
        auth.starts_with("Bot [redacted by discord-mitm sha256:"),
        "{auth}"
    );
    assert!(me
        .redactions
        .contains(&"request.header.authorization".to_string()));
    assert_eq!(me.status(), Some(200));
    assert_eq!(
        me.upstream_addr.as_deref(),
        Some(stand_in.addr.to_string().as_str())
    );
    assert!(me.client_addr.starts_with("127.0.0.1:"));

    let messages = &exchanges[1];
    let body = &messages.response.as_ref().unwrap().body;
    assert_eq!(body.encoding.as_deref(), Some("gzip"));
    let decoded: Value = serde_json::from_slice(&body.data).unwrap();
    assert_eq!(decoded[0]["content"], "hello from the stand-in");
    assert!(body.wire_size > 0 && body.wire_size != body.data.len() as u64);
    assert_eq!(
        messages.path_and_query,
        format!("/api/v9/channels/{CHANNEL_ID}/messages?limit=50")
    );

    let login = &exchanges[2];
    let sent: Value = serde_json::from_slice(&login.request_body.data).unwrap();
    assert_eq!(sent["login"], "nelly@example.com");
    assert_eq!(sent["password"], "[redacted by discord-mitm]");
    let response = login.response.as_ref().unwrap();
    let got: Value = serde_json::from_slice(&response.body.data).unwrap();
    assert!(got["token"]
        .as_str()
        .unwrap()
        .starts_with("[redacted by discord-mitm sha256:"));
    let cookie = header(&response.headers, "set-cookie").unwrap();
    assert!(
        cookie.starts_with("__dcfduid=[redacted") && cookie.ends_with("; Path=/; HttpOnly"),
        "{cookie}"
    );
    assert!(
        header(&response.headers, "alt-svc").is_some(),
        "the recording keeps what upstream sent"
    );

    let failed = &exchanges[3];
    assert_eq!(failed.status(), Some(502));
    assert_eq!(failed.source, "proxy");
    let error = failed.error.as_deref().unwrap();
    assert!(error.contains("127.0.0.1:1"), "{error}");
}

async fn gateway_session(recorder: &Recorder, compress: &str) -> Vec<Value> {
    let url = format!("wss://gateway.discord.gg/?v=10&encoding=json&compress={compress}");
    let mut ws =
        websocket_through_proxy(recorder.addr, &recorder.ca_pem, "gateway.discord.gg", &url).await;
    let mut inflate = flate2::Decompress::new(true);
    let mut zstd = zstd::stream::raw::Decoder::new().unwrap();
    let mut received = Vec::new();
    let mut decode = |data: &[u8]| -> Value {
        let text = match compress {
            "zlib-stream" => {
                let mut out = Vec::with_capacity(1 << 16);
                inflate
                    .decompress_vec(data, &mut out, flate2::FlushDecompress::Sync)
                    .unwrap();
                out
            }
            _ => {
                use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
                let mut out = vec![0u8; 1 << 16];
                let mut src = InBuffer::around(data);
                let mut dst = OutBuffer::around(&mut out[..]);
                zstd.run(&mut src, &mut dst).unwrap();
                let n = dst.pos();
                out.truncate(n);
                out
            }
        };
        serde_json::from_slice(&text).unwrap()
    };
    let mut next = |ws_msg: Message| match ws_msg {
        Message::Binary(data) => decode(&data),
        other => panic!("expected a compressed binary frame, got {other:?}"),
    };
    received.push(next(ws.next().await.unwrap().unwrap()));
    let identify = json!({"op": 2, "d": {"token": "MTIz.gateway-secret-token", "intents": 513, "properties": {"os": "linux"}}});
    ws.send(Message::text(identify.to_string())).await.unwrap();
    received.push(next(ws.next().await.unwrap().unwrap()));
    received.push(next(ws.next().await.unwrap().unwrap()));
    ws.send(Message::text(json!({"op": 1, "d": 2}).to_string()))
        .await
        .unwrap();
    received.push(next(ws.next().await.unwrap().unwrap()));
    ws.send(Message::text(json!({"op": 99}).to_string()))
        .await
        .unwrap();
    // The stand-in closes with 4000; the close must reach us through the proxy.
    let mut close_code = None;
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Close(Some(frame)) = msg {
            close_code = Some(u16::from(frame.code));
        }
    }
    assert_eq!(close_code, Some(4000));
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_sessions_are_decoded_frame_by_frame() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    for compress in ["zlib-stream", "zstd-stream"] {
        let got = gateway_session(&recorder, compress).await;
        let ops: Vec<u64> = got.iter().map(|p| p["op"].as_u64().unwrap()).collect();
        assert_eq!(ops, vec![10, 0, 0, 11], "{compress}");
        assert_eq!(got[1]["t"], "READY");
    }
    // Give the relay a moment to see both closes before stopping.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = recorder.stop();
    let store = open_store(&dir.path().join("recordings"));
    let sessions: Vec<_> = store.sessions().collect::<Result<_, _>>().unwrap();
    assert_eq!(sessions.len(), 2, "{log}");
    for (session, compress) in sessions.iter().zip(["zlib-stream", "zstd-stream"]) {
        assert_eq!(session.compress.as_deref(), Some(compress));
        assert_eq!(session.version.as_deref(), Some("10"));
        assert_eq!(session.encoding.as_deref(), Some("json"));
        assert!(session.ended_at_us.is_some(), "{session:?}");
        assert!(
            session.closes.iter().any(|c| c.code == Some(4000)),
            "{:?}",
            session.closes
        );
        let frames = store.frames(session.id).unwrap();
        let described: Vec<(String, Option<u8>, Option<String>)> = frames
            .iter()
            .filter(|f| f.payload.is_some())
            .map(|f| (f.direction.har_type().to_string(), f.op, f.t.clone()))
            .collect();
        let expect =
            |dir: &str, op: u8, t: Option<&str>| (dir.to_string(), Some(op), t.map(str::to_string));
        assert_eq!(
            described,
            vec![
                expect("receive", 10, None),
                expect("send", 2, None),
                expect("receive", 0, Some("READY")),
                expect("receive", 0, Some("MESSAGE_CREATE")),
                expect("send", 1, None),
                expect("receive", 11, None),
                expect("send", 99, None),
            ],
            "{compress}"
        );
        let identify: Value = serde_json::from_str(
            frames
                .iter()
                .find(|f| f.op == Some(2))
                .unwrap()
                .payload
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let token = identify["d"]["token"].as_str().unwrap();
        assert!(
            token.starts_with("[redacted by discord-mitm sha256:"),
            "{token}"
        );
        assert_eq!(identify["d"]["intents"], 513);
        let ready = frames
            .iter()
            .find(|f| f.t.as_deref() == Some("READY"))
            .unwrap();
        assert_eq!(ready.s, Some(1));
        assert!(ready.raw_size > 0);
        let payload: Value = serde_json::from_str(ready.payload.as_ref().unwrap()).unwrap();
        assert_eq!(payload["d"]["session_id"], "f00dfeedcafe");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_hosts_are_tunnelled_with_the_origin_certificate() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    let url = format!("https://localhost:{}/", stand_in.addr.port());
    // Trusting only our CA fails: the certificate is the origin's, not one of our leaves.
    let ours = curl_async(&recorder, &url, &[]).await;
    assert_eq!(
        ours.status.code(),
        Some(60),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    // Trusting the origin's CA works, and curl saw the origin's issuer.
    let proxy = recorder.proxy_url();
    let origin_ca = stand_in.ca_pem.clone();
    let origin = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args([
                "-sS",
                "-v",
                "--max-time",
                "10",
                "--proxy",
                &proxy,
                "--cacert",
            ])
            .arg(&origin_ca)
            .arg(&url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&origin.stdout), "not discord");
    let verbose = String::from_utf8_lossy(&origin.stderr);
    assert!(verbose.contains("stand-in upstream test CA"), "{verbose}");
    recorder.stop();
    let store = open_store(&dir.path().join("recordings"));
    assert_eq!(
        store.exchange_count(),
        0,
        "tunnelled traffic is not recorded"
    );
}

#[test]
fn big_bodies_stream_through_and_the_recording_is_capped() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &["--max-body", "1024"]);
    let out = curl(&recorder, "https://discord.com/big", &[]);
    assert_eq!(out.stdout.len(), 2 * 1024 * 1024);
    recorder.stop();
    let store = open_store(&dir.path().join("recordings"));
    let exchange = store.exchange(1).unwrap().unwrap();
    let body = &exchange.response.unwrap().body;
    assert!(body.truncated);
    assert_eq!(body.data.len(), 1024);
    assert_eq!(body.wire_size, 2 * 1024 * 1024);
}
