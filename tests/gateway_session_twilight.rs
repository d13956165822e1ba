//! twilight-gateway (a real third-party Discord client) against our server-side session state
//! machine over loopback WebSockets: IDENTIFY, heartbeats, dispatch numbering, op 7 + RESUME
//! with replay, zombie detection, and a fatal close code.
mod gateway_session_support;

use std::time::Duration;

use discord_mitm::gateway::server::{ServerConfig, ShardInfo};
use discord_mitm::gateway::GatewayPayload;
use futures_util::StreamExt;
use gateway_session_support::{Control, Seen, TestGateway, GOOD_TOKEN};
use serde_json::json;
use tokio::sync::mpsc;
use twilight_gateway::{ConfigBuilder, Intents, Message, Shard, ShardId};

#[derive(Debug)]
enum Got {
    Payload(GatewayPayload),
    Close(Option<u16>),
    Error(String),
    End,
}

fn fast_server() -> ServerConfig {
    ServerConfig {
        heartbeat_interval: Duration::from_millis(400),
        heartbeat_grace: Duration::from_millis(1000),
        ..ServerConfig::default()
    }
}

/// Runs a twilight shard against `url` and forwards what it yields.
fn run_shard(url: &str, token: &str) -> mpsc::UnboundedReceiver<Got> {
    let config = ConfigBuilder::new(token.to_owned(), Intents::GUILDS | Intents::GUILD_MESSAGES)
        .proxy_url(url.to_owned())
        .build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let got = match shard.next().await {
                Some(Ok(Message::Text(text))) => match serde_json::from_str(&text) {
                    Ok(payload) => Got::Payload(payload),
                    Err(error) => Got::Error(format!("bad json from server: {error}")),
                },
                Some(Ok(Message::Close(frame))) => Got::Close(frame.map(|f| f.code)),
                Some(Err(error)) => Got::Error(error.to_string()),
                None => {
                    let _ = tx.send(Got::End);
                    return;
                }
            };
            if tx.send(got).is_err() {
                return;
            }
        }
    });
    rx
}

async fn next_matching(
    rx: &mut mpsc::UnboundedReceiver<Got>,
    what: &str,
    pred: impl Fn(&Got) -> bool,
) -> Got {
    let wait = async {
        loop {
            match rx.recv().await {
                Some(got) if pred(&got) => return got,
                Some(Got::Error(error)) => {
                    eprintln!("shard error while waiting for {what}: {error}")
                }
                Some(_) => continue,
                None => panic!("shard task ended while waiting for {what}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn dispatch_named<'a>(event: &'a str) -> impl Fn(&Got) -> bool + 'a {
    move |got| matches!(got, Got::Payload(p) if p.t.as_deref() == Some(event))
}

#[tokio::test]
async fn twilight_identifies_heartbeats_and_resumes_after_reconnect() {
    let gateway = TestGateway::start(fast_server()).await;
    let mut shard = run_shard(&gateway.url, "good");

    let Got::Payload(ready) = next_matching(&mut shard, "READY", dispatch_named("READY")).await
    else {
        unreachable!()
    };
    assert_eq!(ready.s, Some(1));

    // What twilight sent in IDENTIFY is exposed to the backend.
    let seen = gateway.seen();
    let identify = seen
        .iter()
        .find_map(|s| match s {
            Seen::Identify(1, info) => Some(info.clone()),
            _ => None,
        })
        .expect("IDENTIFY seen");
    assert_eq!(identify.token, GOOD_TOKEN, "twilight prefixes \"Bot \"");
    assert_eq!(identify.intents, Some(513));
    assert_eq!(identify.shard, Some(ShardInfo { id: 0, count: 1 }));
    assert_eq!(identify.large_threshold, Some(50));
    assert!(!identify.compress);
    for key in ["os", "browser", "device"] {
        assert!(identify.properties.contains_key(key), "properties.{key}");
    }

    // Heartbeats arrive on twilight's jittered schedule and are acknowledged.
    gateway
        .wait_for("two heartbeats", |seen| {
            seen.iter().filter(|s| **s == Seen::Heartbeat(1)).count() >= 2
        })
        .await;

    gateway.control(
        1,
        Control::Dispatch("MESSAGE_CREATE", json!({"content": "hi"})),
    );
    let Got::Payload(message) = next_matching(
        &mut shard,
        "MESSAGE_CREATE",
        dispatch_named("MESSAGE_CREATE"),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(message.s, Some(2));

    // An op 1 request is answered at once, not at the next interval.
    let before = gateway
        .seen()
        .iter()
        .filter(|s| **s == Seen::Heartbeat(1))
        .count();
    gateway.control(1, Control::RequestHeartbeat);
    gateway
        .wait_for("requested heartbeat", |seen| {
            seen.iter().filter(|s| **s == Seen::Heartbeat(1)).count() > before
        })
        .await;

    // op 7: twilight closes with a non-1000 code, so the session is kept for RESUME.
    gateway.control(1, Control::RequestReconnect);
    gateway
        .wait_for("twilight closing connection 1", |seen| {
            seen.iter()
                .any(|s| matches!(s, Seen::ClientClosed(1, _, _)))
        })
        .await;
    let closed = gateway
        .seen()
        .into_iter()
        .find(|s| matches!(s, Seen::ClientClosed(1, _, _)))
        .expect("closed");
    assert!(
        matches!(closed, Seen::ClientClosed(1, code, true) if code != Some(1000)),
        "{closed:?}"
    );
    // Something happens while the bot is away; RESUME must replay it.
    gateway.add_missed_event("session-1", "MESSAGE_CREATE", json!({"content": "missed"}));

    let seen = gateway
        .wait_for("RESUME on connection 2", |seen| {
            seen.iter().any(|s| matches!(s, Seen::Resume(2, _)))
        })
        .await;
    let resume = seen
        .iter()
        .find_map(|s| match s {
            Seen::Resume(2, info) => Some(info.clone()),
            _ => None,
        })
        .expect("resume");
    assert_eq!(resume.session_id, "session-1");
    assert_eq!(resume.seq, Some(2));
    assert_eq!(resume.token, GOOD_TOKEN);
    assert!(
        !seen.iter().any(|s| matches!(s, Seen::Identify(2, _))),
        "twilight resumed, it did not identify again"
    );

    let Got::Payload(missed) = next_matching(
        &mut shard,
        "replayed event",
        |got| matches!(got, Got::Payload(p) if p.d["content"] == "missed"),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(missed.s, Some(3));
    let Got::Payload(resumed) =
        next_matching(&mut shard, "RESUMED", dispatch_named("RESUMED")).await
    else {
        unreachable!()
    };
    assert_eq!(resumed.s, Some(4));

    gateway.control(2, Control::Dispatch("TYPING_START", json!({})));
    let Got::Payload(typing) =
        next_matching(&mut shard, "TYPING_START", dispatch_named("TYPING_START")).await
    else {
        unreachable!()
    };
    assert_eq!(typing.s, Some(5), "numbering continues across the resume");
}

#[tokio::test]
async fn twilight_detects_a_zombied_connection_and_resumes() {
    let gateway = TestGateway::start(fast_server()).await;
    // Connection 1 never acknowledges heartbeats: a zombied link.
    gateway.mute_acks(1);
    let mut shard = run_shard(&gateway.url, "good");
    next_matching(&mut shard, "READY", dispatch_named("READY")).await;

    let seen = gateway
        .wait_for("RESUME after the zombie", |seen| {
            seen.iter().any(|s| matches!(s, Seen::Resume(2, _)))
        })
        .await;
    let heartbeats = seen.iter().filter(|s| **s == Seen::Heartbeat(1)).count();
    assert!(heartbeats >= 1, "a heartbeat went unanswered first");
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::ClientClosed(1, code, true) if *code != Some(1000))),
        "the zombied connection was dropped without ending the session: {seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Resume(2, info) if info.session_id == "session-1")),
        "{seen:#?}"
    );
    next_matching(&mut shard, "RESUMED", dispatch_named("RESUMED")).await;
}

#[tokio::test]
async fn twilight_stops_on_fatal_close_4004() {
    let gateway = TestGateway::start(fast_server()).await;
    let mut shard = run_shard(&gateway.url, "bad");

    let close = next_matching(&mut shard, "close frame", |got| {
        matches!(got, Got::Close(_))
    })
    .await;
    assert!(matches!(close, Got::Close(Some(4004))), "{close:?}");
    next_matching(&mut shard, "end of the shard stream", |got| {
        matches!(got, Got::End)
    })
    .await;

    // twilight treats 4004 as fatal: it never connects again (it would after 1 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = gateway.seen();
    assert!(seen.contains(&Seen::ServerClosed(1, 4004)), "{seen:#?}");
    assert!(!seen.contains(&Seen::Connected(2)), "{seen:#?}");
}
