//! The session state machines on real sockets: a plain WebSocket client (tungstenite) sees the
//! server machine's close codes on the wire, and the client machine, driven by a small tokio
//! loop, identifies, survives a zombied link and op 7 by resuming, and stops on a fatal code.
mod gateway_session_support;

use std::time::Duration;

use discord_mitm::gateway::client::{ClientAction, ClientConfig, ClientSession, ClientState};
use discord_mitm::gateway::close::CloseCode;
use discord_mitm::gateway::server::ServerConfig;
use discord_mitm::gateway::GatewayPayload;
use futures_util::{SinkExt, StreamExt};
use gateway_session_support::{Control, Seen, TestGateway, GOOD_TOKEN};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn identify(token: &str) -> Value {
    json!({"op": 2, "d": {"token": token, "intents": 0, "properties": {"os": "linux", "browser": "t", "device": "t"}}})
}

/// Reads until the server closes; returns the close code (None: dropped without a frame).
async fn close_code(ws: &mut Socket) -> Option<u16> {
    let wait = async {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("server closed in time")
}

#[tokio::test]
async fn a_plain_websocket_client_sees_each_close_code() {
    // Long enough that a loaded machine still sends each case's frames before the 4009 deadline.
    let config = ServerConfig {
        heartbeat_interval: Duration::from_millis(1000),
        heartbeat_grace: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let gateway = TestGateway::start(config).await;
    let heartbeat = json!({"op": 1, "d": null}).to_string();
    let padded = json!({"op": 1, "d": null, "pad": "x".repeat(5000)}).to_string();
    let cases: Vec<(&str, Vec<Message>, u16)> = vec![
        (
            "presence update before identify",
            vec![Message::text(json!({"op": 3, "d": {}}).to_string())],
            4003,
        ),
        ("payload over 4096 bytes", vec![Message::text(padded)], 4002),
        ("not JSON", vec![Message::text("{nope")], 4002),
        (
            "binary frame without ETF",
            vec![Message::binary(vec![131u8, 116])],
            4002,
        ),
        (
            "unknown opcode",
            vec![Message::text(json!({"op": 99}).to_string())],
            4001,
        ),
        (
            "identify twice",
            vec![
                Message::text(identify(GOOD_TOKEN).to_string()),
                Message::text(identify(GOOD_TOKEN).to_string()),
            ],
            4005,
        ),
        (
            "bad token",
            vec![Message::text(identify("Bot nope").to_string())],
            4004,
        ),
        (
            "invalid shard",
            vec![Message::text(
                json!({"op": 2, "d": {"token": GOOD_TOKEN, "shard": [3, 2]}}).to_string(),
            )],
            4010,
        ),
        ("no heartbeat", vec![], 4009),
        (
            "121 payloads in a minute",
            vec![Message::text(heartbeat); 121],
            4008,
        ),
    ];
    for (name, frames, expected) in cases {
        let (mut ws, _) = tokio_tungstenite::connect_async(gateway.url.as_str())
            .await
            .expect("connect");
        let Some(Ok(Message::Text(hello))) = ws.next().await else {
            panic!("{name}: no HELLO");
        };
        let hello: Value = serde_json::from_str(hello.as_str()).expect("HELLO is JSON");
        assert_eq!(
            hello,
            json!({"op": 10, "d": {"heartbeat_interval": 1000}, "s": null, "t": null})
        );
        for frame in frames {
            if ws.send(frame).await.is_err() {
                break;
            }
        }
        assert_eq!(close_code(&mut ws).await, Some(expected), "{name}");
    }
}

#[tokio::test]
async fn resume_of_an_unknown_session_gets_op_9_false_and_may_identify() {
    let gateway = TestGateway::start(ServerConfig::default()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(gateway.url.as_str())
        .await
        .expect("connect");
    ws.next().await.expect("HELLO").expect("HELLO");
    let resume = json!({"op": 6, "d": {"token": GOOD_TOKEN, "session_id": "nope", "seq": 3}});
    ws.send(Message::text(resume.to_string()))
        .await
        .expect("send");
    let Some(Ok(Message::Text(reply))) = ws.next().await else {
        panic!("no reply to RESUME");
    };
    let reply: GatewayPayload = serde_json::from_str(reply.as_str()).expect("json");
    assert_eq!((reply.op.code(), reply.d), (9, json!(false)));
    // The invalidated connection may identify again instead of getting 4005.
    ws.send(Message::text(identify(GOOD_TOKEN).to_string()))
        .await
        .expect("send");
    let Some(Ok(Message::Text(ready))) = ws.next().await else {
        panic!("no READY");
    };
    let ready: GatewayPayload = serde_json::from_str(ready.as_str()).expect("json");
    assert_eq!((ready.t.as_deref(), ready.s), (Some("READY"), Some(1)));
}

/// What the client driver reports back to the test.
#[derive(Debug)]
enum Report {
    Payload(usize, GatewayPayload),
    Fatal(CloseCode),
}

/// A minimal socket driver for `ClientSession`: the shape a gateway-proxy shard runner has.
async fn drive_client(
    mut session: ClientSession,
    first: Vec<ClientAction>,
    reports: mpsc::UnboundedSender<Report>,
) {
    let mut ws: Option<Socket> = None;
    let mut connections = 0;
    let mut pending = first;
    loop {
        for action in std::mem::take(&mut pending) {
            let now = std::time::Instant::now();
            match action {
                ClientAction::Connect { url, .. } => {
                    match tokio_tungstenite::connect_async(url.as_str()).await {
                        Ok((socket, _)) => {
                            connections += 1;
                            ws = Some(socket);
                            pending.extend(session.on_connected(now));
                        }
                        Err(_) => pending.extend(session.on_connect_failed(now)),
                    }
                }
                ClientAction::Send(payload) => {
                    if let Some(socket) = ws.as_mut() {
                        let text = serde_json::to_string(&payload).expect("json");
                        let _ = socket.send(Message::text(text)).await;
                    }
                }
                ClientAction::Close(code) => {
                    if let Some(mut socket) = ws.take() {
                        let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                            code: code.code().into(),
                            reason: "".into(),
                        };
                        let _ = socket.close(Some(frame)).await;
                    }
                }
                ClientAction::RequestIdentify { .. } => {
                    pending.extend(session.identify_permitted(now))
                }
                ClientAction::Fatal(code) | ClientAction::Finished(code) => {
                    let _ = reports.send(Report::Fatal(code));
                    return;
                }
            }
        }
        if !pending.is_empty() {
            continue;
        }
        let deadline = session
            .poll_at()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let message = async {
            match ws.as_mut() {
                Some(socket) => socket.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = message => {
                let now = std::time::Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(payload) = serde_json::from_str::<GatewayPayload>(text.as_str()) {
                            pending = session.on_payload(&payload, now);
                            let _ = reports.send(Report::Payload(connections, payload));
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        ws = None;
                        pending = session.on_closed(frame.map(|f| u16::from(f.code)), now);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        ws = None;
                        pending = session.on_closed(None, now);
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                pending = session.on_tick(std::time::Instant::now());
            }
        }
        if matches!(session.state(), ClientState::Stopped | ClientState::Fatal)
            && pending.is_empty()
        {
            return;
        }
    }
}

async fn next_report(
    rx: &mut mpsc::UnboundedReceiver<Report>,
    what: &str,
    pred: impl Fn(&Report) -> bool,
) -> Report {
    let wait = async {
        loop {
            match rx.recv().await {
                Some(report) if pred(&report) => return report,
                Some(_) => continue,
                None => panic!("client driver ended while waiting for {what}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn client_config(url: &str, token: &str) -> ClientConfig {
    let mut config = ClientConfig::new(token, url);
    config.intents = Some(513);
    config.jitter_seed = 7;
    config.backoff.base = Duration::from_millis(100);
    config
}

#[tokio::test]
async fn client_session_identifies_and_resumes_after_a_zombie_and_op_7() {
    let gateway = TestGateway::start(ServerConfig {
        heartbeat_interval: Duration::from_millis(300),
        heartbeat_grace: Duration::from_millis(2000),
        ..ServerConfig::default()
    })
    .await;
    gateway.mute_acks(1);
    let (session, first) = ClientSession::new(
        client_config(&gateway.url, GOOD_TOKEN),
        std::time::Instant::now(),
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(drive_client(session, first, tx));

    next_report(
        &mut rx,
        "READY",
        |r| matches!(r, Report::Payload(1, p) if p.t.as_deref() == Some("READY")),
    )
    .await;
    let seen = gateway.seen();
    assert!(
        seen.iter().any(|s| matches!(s, Seen::Identify(1, info) if info.token == GOOD_TOKEN && info.intents == Some(513))),
        "{seen:#?}"
    );

    // Connection 1 never ACKs: the client must notice, close with a non-1000 code and resume.
    next_report(
        &mut rx,
        "RESUMED on connection 2",
        |r| matches!(r, Report::Payload(2, p) if p.t.as_deref() == Some("RESUMED")),
    )
    .await;
    let seen = gateway.seen();
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::ClientClosed(1, Some(4000), true))),
        "zombie close keeps the session: {seen:#?}"
    );
    assert!(
        seen.iter().any(|s| matches!(s, Seen::Resume(2, info) if info.session_id == "session-1" && info.seq == Some(1))),
        "{seen:#?}"
    );

    // op 7 on connection 2: reconnect to resume_gateway_url and resume again.
    gateway.control(
        2,
        Control::Dispatch("MESSAGE_CREATE", json!({"content": "before op 7"})),
    );
    next_report(
        &mut rx,
        "MESSAGE_CREATE",
        |r| matches!(r, Report::Payload(2, p) if p.t.as_deref() == Some("MESSAGE_CREATE")),
    )
    .await;
    gateway.control(2, Control::RequestReconnect);
    next_report(
        &mut rx,
        "RESUMED on connection 3",
        |r| matches!(r, Report::Payload(3, p) if p.t.as_deref() == Some("RESUMED")),
    )
    .await;
    let seen = gateway.seen();
    assert!(
        seen.iter().any(|s| matches!(s, Seen::Resume(3, info) if info.session_id == "session-1" && info.seq == Some(3))),
        "{seen:#?}"
    );
    assert!(
        !seen.iter().any(|s| matches!(s, Seen::Identify(2 | 3, _))),
        "{seen:#?}"
    );
    // Heartbeats on the healthy connection are answered.
    gateway
        .wait_for("heartbeats on connection 3", |seen| {
            seen.contains(&Seen::Heartbeat(3))
        })
        .await;
}

#[tokio::test]
async fn client_session_surfaces_a_fatal_close_and_stops() {
    let gateway = TestGateway::start(ServerConfig::default()).await;
    let (session, first) = ClientSession::new(
        client_config(&gateway.url, "Bot wrong"),
        std::time::Instant::now(),
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(drive_client(session, first, tx));
    let report = next_report(&mut rx, "fatal close", |r| matches!(r, Report::Fatal(_))).await;
    assert!(
        matches!(report, Report::Fatal(CloseCode::AuthenticationFailed)),
        "{report:?}"
    );
    tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("driver stopped")
        .expect("driver did not panic");
    assert!(
        !gateway.seen().contains(&Seen::Connected(2)),
        "no reconnect after a fatal close"
    );
}
