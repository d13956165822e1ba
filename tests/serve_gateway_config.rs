//! `serve`'s gateway flags through the built binary: HELLO's heartbeat interval, the replay
//! buffer and resume window deciding whether a RESUME succeeds, the VOICE_SERVER_UPDATE
//! endpoint, and clear refusals of out-of-range values.
mod serve_gateway_support;

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use serve_gateway_support::*;

const GUILDS_MESSAGES_VOICE: u64 = 1 | (1 << 7) | (1 << 9) | (1 << 15);

fn bot() -> String {
    format!("Bot {BOT_TOKEN}")
}

async fn post(server: &Server, content: &str) {
    let (status, body) = rest(
        server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(json!({"content": content})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// A bot session that received READY and GUILD_CREATE (seq 2); returns it and its session id.
async fn ready_bot(server: &Server) -> (RawClient, String) {
    let mut client = RawClient::connect(server, "v=10&encoding=json").await;
    client.payload().await;
    client
        .identify(&bot(), Some(GUILDS_MESSAGES_VOICE), json!({}))
        .await;
    let ready = client.dispatch("READY").await;
    client.dispatch("GUILD_CREATE").await;
    let session_id = ready["session_id"]
        .as_str()
        .expect("session_id")
        .to_string();
    (client, session_id)
}

/// Opens a new connection and RESUMEs `session_id` from `seq`; returns the first payload.
async fn resume(
    server: &Server,
    session_id: &str,
    seq: u64,
) -> discord_mitm::gateway::GatewayPayload {
    let mut client = RawClient::connect(server, "v=10&encoding=json").await;
    client.payload().await;
    client
        .send_json(json!({"op": 6, "d": {"token": bot(), "session_id": session_id, "seq": seq}}))
        .await;
    client.payload().await
}

#[tokio::test]
async fn heartbeat_interval_flag_is_announced_in_hello() {
    let server = Server::start_with(&fixture(None), &["--gateway-heartbeat-interval", "5000"]);
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    let hello = client.payload().await;
    assert_eq!(hello.op.code(), 10);
    assert_eq!(hello.d["heartbeat_interval"], 5000);
}

#[tokio::test]
async fn a_small_replay_buffer_refuses_a_resume_that_needs_more() {
    let server = Server::start_with(&fixture(None), &["--gateway-replay-buffer", "2"]);
    // Three messages after GUILD_CREATE (seq 3, 4, 5): resuming from 2 needs all three.
    let (mut client, session_id) = ready_bot(&server).await;
    for i in 0..3 {
        post(&server, &format!("m{i}")).await;
        client.dispatch("MESSAGE_CREATE").await;
    }
    client.send_frame(close(4000)).await;
    let _ = client.closed().await;
    let refused = resume(&server, &session_id, 2).await;
    assert_eq!((refused.op.code(), &refused.d), (9, &json!(false)));

    // The same with a buffer large enough replays them.
    let server = Server::start_with(&fixture(None), &["--gateway-replay-buffer", "3"]);
    let (mut client, session_id) = ready_bot(&server).await;
    for i in 0..3 {
        post(&server, &format!("m{i}")).await;
        client.dispatch("MESSAGE_CREATE").await;
    }
    client.send_frame(close(4000)).await;
    let _ = client.closed().await;
    let replayed = resume(&server, &session_id, 2).await;
    assert_eq!(
        (replayed.t.as_deref(), replayed.s, &replayed.d["content"]),
        (Some("MESSAGE_CREATE"), Some(3), &json!("m0"))
    );
}

#[tokio::test]
async fn a_session_cannot_resume_after_the_resume_window() {
    let server = Server::start_with(&fixture(None), &["--gateway-resume-window", "1"]);
    let (mut client, session_id) = ready_bot(&server).await;
    client.send_frame(close(4000)).await;
    let _ = client.closed().await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let refused = resume(&server, &session_id, 2).await;
    assert_eq!((refused.op.code(), &refused.d), (9, &json!(false)));
}

#[tokio::test]
async fn voice_endpoint_flag_is_sent_in_voice_server_update() {
    let server = Server::start_with(&fixture(None), &["--voice-endpoint", "voice.test:443"]);
    let (mut client, session_id) = ready_bot(&server).await;
    client
        .send_json(
            json!({"op": 4, "d": {"guild_id": GUILD_ID, "channel_id": VOICE_ID,
            "self_mute": false, "self_deaf": true}}),
        )
        .await;
    let state = client.payload().await;
    assert_eq!(state.t.as_deref(), Some("VOICE_STATE_UPDATE"));
    assert_eq!(
        (
            &state.d["user_id"],
            &state.d["session_id"],
            &state.d["self_deaf"]
        ),
        (&json!(BOT_ID), &json!(session_id), &json!(true))
    );
    let server_update = client.payload().await;
    assert_eq!(server_update.t.as_deref(), Some("VOICE_SERVER_UPDATE"));
    assert_eq!(
        (&server_update.d["endpoint"], &server_update.d["guild_id"]),
        (&json!("voice.test:443"), &json!(GUILD_ID))
    );
}

#[tokio::test]
async fn a_bot_without_voice_intent_still_gets_its_voice_server() {
    let server = Server::start(&fixture(None));
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client.identify(&bot(), Some(1), json!({})).await;
    client.dispatch("GUILD_CREATE").await;
    client
        .send_json(
            json!({"op": 4, "d": {"guild_id": GUILD_ID, "channel_id": VOICE_ID,
            "self_mute": false, "self_deaf": false}}),
        )
        .await;
    let update = client.payload().await;
    assert_eq!(update.t.as_deref(), Some("VOICE_SERVER_UPDATE"));
    assert_eq!(update.d["endpoint"], Value::String(server.addr.clone()));
}

fn close(code: u16) -> tokio_tungstenite::tungstenite::Message {
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    tokio_tungstenite::tungstenite::Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: "test".into(),
    }))
}

#[test]
fn out_of_range_gateway_flags_are_refused_with_the_reason() {
    for (flag, value) in [
        ("--gateway-heartbeat-interval", "10"),
        ("--gateway-zlib-level", "12"),
        ("--gateway-replay-buffer", "0"),
        ("--gateway-resume-window", "100000"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
            .args(["serve", "--api", "127.0.0.1:0", flag, value])
            .output()
            .expect("run discord-mitm");
        assert!(!out.status.success(), "{flag} {value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(flag) && stderr.contains(value),
            "{flag} {value}: {stderr}"
        );
    }
}
