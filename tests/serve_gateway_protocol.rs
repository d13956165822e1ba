//! The `serve` gateway at the protocol level, with a bare WebSocket client against the built
//! binary: HELLO/READY/GUILD_CREATE shapes, close codes, encodings and compression, intents and
//! permission filtering, shard routing, RESUME, op 3/4/8, op 7 on shutdown, URL discovery.
mod serve_gateway_support;

use serde_json::{json, Value};
use serve_gateway_support::*;
use tokio_tungstenite::tungstenite::Message;

const ALL_INTENTS: u64 = 0x1_FFFF | (1 << 20) | (1 << 21) | (1 << 24) | (1 << 25);
const GUILDS: u64 = 1;
const GUILD_MESSAGES: u64 = 1 << 9;
const MESSAGE_CONTENT: u64 = 1 << 15;

fn bot() -> String {
    format!("Bot {BOT_TOKEN}")
}

async fn identified(
    server: &Server,
    query: &str,
    intents: u64,
    extra: Value,
) -> (RawClient, Value) {
    let mut client = RawClient::connect(server, query).await;
    let hello = client.payload().await;
    assert_eq!(hello.op.code(), 10);
    client.identify(&bot(), Some(intents), extra).await;
    let ready = client.dispatch("READY").await;
    (client, ready)
}

async fn post(server: &Server, channel: &str, content: &str) -> Value {
    let (status, body) = rest(
        server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{channel}/messages"),
        Some(json!({"content": content})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn ready_and_guild_create_carry_what_libraries_read() {
    let server = Server::start(&fixture(None));
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    let hello = client.payload().await;
    assert_eq!(hello.d["heartbeat_interval"], 41250);
    client.identify(&bot(), Some(ALL_INTENTS), json!({})).await;
    let ready = client.payload().await;
    assert_eq!(ready.t.as_deref(), Some("READY"));
    assert_eq!(ready.s, Some(1));
    let d = &ready.d;
    assert_eq!(d["v"], 10);
    assert_eq!(d["user"]["id"], BOT_ID);
    assert_eq!(d["user"]["bot"], true);
    assert_eq!(d["guilds"], json!([{"id": GUILD_ID, "unavailable": true}]));
    let session_id = d["session_id"].as_str().unwrap();
    assert_eq!(session_id.len(), 32);
    assert_eq!(d["resume_gateway_url"], server.ws());
    assert_eq!(d["application"]["id"], BOT_ID);
    assert!(d["application"]["flags"].is_u64());
    for key in [
        "user_settings",
        "relationships",
        "private_channels",
        "presences",
        "guild_join_requests",
        "geo_ordered_rtc_regions",
    ] {
        assert!(!d[key].is_null(), "READY lacks {key}");
    }
    let create = client.payload().await;
    assert_eq!(create.t.as_deref(), Some("GUILD_CREATE"));
    assert_eq!(create.s, Some(2));
    let g = &create.d;
    assert_eq!(g["id"], GUILD_ID);
    assert_eq!(g["unavailable"], false);
    assert_eq!(g["large"], false);
    assert_eq!(g["member_count"], 3);
    assert!(g["joined_at"].is_string());
    let members = g["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    for member in members {
        for key in ["flags", "roles", "deaf", "mute", "user", "joined_at"] {
            assert!(!member[key].is_null(), "member lacks {key}: {member}");
        }
    }
    let channels: Vec<&str> = g["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(channels.len(), 4, "{channels:?}");
    for role in g["roles"].as_array().unwrap() {
        assert!(
            role["colors"].is_object() && role["flags"].is_u64(),
            "{role}"
        );
    }
    for key in [
        "threads",
        "emojis",
        "stickers",
        "presences",
        "voice_states",
        "stage_instances",
        "guild_scheduled_events",
        "soundboard_sounds",
    ] {
        assert!(g[key].is_array(), "GUILD_CREATE lacks {key}");
    }
    // The bot itself is online now.
    let presences = g["presences"].as_array().unwrap();
    assert!(
        presences
            .iter()
            .any(|p| p["user"]["id"] == BOT_ID && p["status"] == "online"),
        "{presences:?}"
    );
    // Heartbeat gets an ACK.
    client.send_json(json!({"op": 1, "d": 2})).await;
    assert_eq!(client.payload().await.op.code(), 11);
}

#[tokio::test]
async fn bad_tokens_versions_shards_and_intents_get_discords_close_codes() {
    let restricted = fixture(Some(json!({"flags": 0})));
    let server = Server::start(&restricted);
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client.identify("Bot nope", Some(GUILDS), json!({})).await;
    assert_eq!(client.closed().await, Some(4004));

    for version in ["v=5", "v=11", "v=x"] {
        let mut client = RawClient::connect(&server, &format!("{version}&encoding=json")).await;
        assert_eq!(client.closed().await, Some(4012), "{version}");
    }
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client.identify(&bot(), Some(1 << 30), json!({})).await;
    assert_eq!(client.closed().await, Some(4013));

    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client.identify(&bot(), None, json!({})).await;
    assert_eq!(client.closed().await, Some(4013), "v10 requires intents");

    // This application has no GATEWAY_* flags: privileged intents are refused.
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client
        .identify(&bot(), Some(GUILDS | MESSAGE_CONTENT), json!({}))
        .await;
    assert_eq!(client.closed().await, Some(4014));

    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client
        .identify(&bot(), Some(GUILDS), json!({"shard": [2, 2]}))
        .await;
    assert_eq!(client.closed().await, Some(4010));

    // Non-privileged intents are fine for the same bot.
    let (_client, ready) = identified(
        &server,
        "v=10&encoding=json",
        GUILDS | GUILD_MESSAGES,
        json!({}),
    )
    .await;
    assert_eq!(ready["application"]["flags"], 0);
}

#[tokio::test]
async fn etf_payload_compression_and_binary_client_frames() {
    use discord_mitm::gateway::codec::{encode_payload, Encoding};
    use discord_mitm::gateway::{GatewayPayload, OpCode};
    let server = Server::start(&fixture(None));
    // ETF both ways.
    let mut client = RawClient::connect(&server, "v=10&encoding=etf").await;
    assert_eq!(client.payload().await.d["heartbeat_interval"], 41250);
    let identify = GatewayPayload::new(
        OpCode::Identify,
        json!({"token": bot(), "intents": ALL_INTENTS, "properties": {"os": "linux"}}),
    );
    client
        .send_frame(Message::binary(
            encode_payload(&identify, Encoding::Etf).unwrap(),
        ))
        .await;
    let ready = client.dispatch("READY").await;
    assert_eq!(ready["user"]["id"], BOT_ID);
    let beat = GatewayPayload::new(OpCode::Heartbeat, json!(1));
    client
        .send_frame(Message::binary(
            encode_payload(&beat, Encoding::Etf).unwrap(),
        ))
        .await;
    loop {
        let payload = client.payload().await;
        if payload.op.code() == 11 {
            break;
        }
    }
    // JSON sent in a binary frame (as hikari does), and IDENTIFY compress: true.
    let mut client = RawClient::connect(&server, "v=9&encoding=json").await;
    client.payload().await;
    let identify = json!({"op": 2, "d": {"token": bot(), "intents": ALL_INTENTS, "compress": true, "properties": {}}});
    client
        .send_frame(Message::binary(identify.to_string().into_bytes()))
        .await;
    client.expect_payload_compression();
    let ready = client.dispatch("READY").await;
    assert_eq!(ready["v"], 9);
    client.dispatch("GUILD_CREATE").await;
    // zstd-stream and zlib-stream.
    for compress in ["zstd-stream", "zlib-stream"] {
        let (mut client, ready) = identified(
            &server,
            &format!("v=10&encoding=json&compress={compress}"),
            ALL_INTENTS,
            json!({}),
        )
        .await;
        assert_eq!(ready["user"]["id"], BOT_ID);
        client.dispatch("GUILD_CREATE").await;
        post(&server, GENERAL_ID, compress).await;
        assert_eq!(client.dispatch("MESSAGE_CREATE").await["content"], compress);
    }
    // Undecodable client frames are 4002.
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client.send_frame(Message::text("{not json")).await;
    assert_eq!(client.closed().await, Some(4002));
    // So are frames over the WebSocket size limit (1 MiB), however large: the server reads the
    // rest of the frame before it closes, so the close code is not lost to a TCP reset.
    for size in [2 << 20, 20 << 20] {
        let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
        client.payload().await;
        let padding = "x".repeat(size);
        client
            .send_frame(Message::text(format!(
                r#"{{"op":1,"d":null,"pad":"{padding}"}}"#
            )))
            .await;
        assert_eq!(client.closed().await, Some(4002), "a {size}-byte frame");
    }
}

#[tokio::test]
async fn message_content_and_channel_visibility_are_enforced_per_session() {
    let server = Server::start(&fixture(None));
    let (mut plain, _) = identified(
        &server,
        "v=10&encoding=json",
        GUILDS | GUILD_MESSAGES,
        json!({}),
    )
    .await;
    let (mut full, _) = identified(
        &server,
        "v=10&encoding=json",
        GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT,
        json!({}),
    )
    .await;
    post(&server, SECRET_ID, "nobody but alice sees this").await;
    post(&server, GENERAL_ID, "hello **world**").await;
    let stripped = plain.dispatch("MESSAGE_CREATE").await;
    assert_eq!(
        stripped["channel_id"], GENERAL_ID,
        "the #secret message must not arrive"
    );
    assert_eq!(stripped["content"], "");
    assert_eq!(stripped["embeds"], json!([]));
    let kept = full.dispatch("MESSAGE_CREATE").await;
    assert_eq!(kept["channel_id"], GENERAL_ID);
    assert_eq!(kept["content"], "hello **world**");
    // A mention of the bot keeps the content without the intent.
    post(&server, GENERAL_ID, &format!("<@{BOT_ID}> hi")).await;
    assert_eq!(
        plain.dispatch("MESSAGE_CREATE").await["content"],
        format!("<@{BOT_ID}> hi")
    );
    // Sequence numbers are per session.
    assert_eq!(plain.seq, Some(4));
}

#[tokio::test]
async fn guild_events_follow_shards_and_dms_go_to_shard_zero() {
    let server = Server::start(&fixture(None));
    let guild_id: u64 = GUILD_ID.parse().unwrap();
    let home = (guild_id >> 22) % 2;
    let (shard0, ready0) = identified(
        &server,
        "v=10&encoding=json",
        ALL_INTENTS,
        json!({"shard": [0, 2]}),
    )
    .await;
    let (shard1, ready1) = identified(
        &server,
        "v=10&encoding=json",
        ALL_INTENTS,
        json!({"shard": [1, 2]}),
    )
    .await;
    assert_eq!(ready0["shard"], json!([0, 2]));
    let (with_guild, without) = if home == 0 {
        (&ready0, &ready1)
    } else {
        (&ready1, &ready0)
    };
    assert_eq!(with_guild["guilds"].as_array().unwrap().len(), 1);
    assert_eq!(without["guilds"], json!([]));
    let (status, dm) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        "/users/@me/channels",
        Some(json!({"recipient_id": BOT_ID})),
    )
    .await;
    assert_eq!(status, 200, "{dm}");
    let dm_id = dm["id"].as_str().unwrap().to_string();
    post(&server, GENERAL_ID, "guild message").await;
    post(&server, &dm_id, "direct message").await;
    let (mut guild_shard, mut other) = if home == 0 {
        (shard0, shard1)
    } else {
        (shard1, shard0)
    };
    assert_eq!(
        guild_shard.dispatch("MESSAGE_CREATE").await["content"],
        "guild message"
    );
    let dm_shard = if home == 0 {
        &mut guild_shard
    } else {
        &mut other
    };
    assert_eq!(
        dm_shard.dispatch("MESSAGE_CREATE").await["content"],
        "direct message"
    );
    if home == 1 {
        // Shard 0 (no guild) got the DM and nothing else; shard 1 never sees the DM.
        post(&server, GENERAL_ID, "marker").await;
        assert_eq!(
            guild_shard.dispatch("MESSAGE_CREATE").await["content"],
            "marker"
        );
    }
}

#[tokio::test]
async fn resume_replays_missed_events_in_order_and_unknown_sessions_get_op9_false() {
    let server = Server::start(&fixture(None));
    let (mut client, ready) = identified(
        &server,
        "v=10&encoding=json&compress=zlib-stream",
        ALL_INTENTS,
        json!({}),
    )
    .await;
    client.dispatch("GUILD_CREATE").await;
    let session_id = ready["session_id"].as_str().unwrap().to_string();
    let seq = client.seq.unwrap();
    drop(client); // the socket is cut without a close frame
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    post(&server, GENERAL_ID, "missed-1").await;
    post(&server, GENERAL_ID, "missed-2").await;
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client
        .send_json(json!({"op": 6, "d": {"token": bot(), "session_id": session_id, "seq": seq}}))
        .await;
    let first = client.payload().await;
    let second = client.payload().await;
    let resumed = client.payload().await;
    assert_eq!(
        (first.t.as_deref(), first.s, &first.d["content"]),
        (Some("MESSAGE_CREATE"), Some(seq + 1), &json!("missed-1"))
    );
    assert_eq!(
        (second.t.as_deref(), second.s, &second.d["content"]),
        (Some("MESSAGE_CREATE"), Some(seq + 2), &json!("missed-2"))
    );
    assert_eq!(
        (resumed.t.as_deref(), resumed.s),
        (Some("RESUMED"), Some(seq + 3))
    );
    post(&server, GENERAL_ID, "live").await;
    let live = client.payload().await;
    assert_eq!(
        (live.s, &live.d["content"]),
        (Some(seq + 4), &json!("live"))
    );
    // A RESUME from an older seq replays what was already sent too.
    drop(client);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut again = RawClient::connect(&server, "v=10&encoding=json").await;
    again.payload().await;
    again
        .send_json(
            json!({"op": 6, "d": {"token": bot(), "session_id": session_id, "seq": seq + 2}}),
        )
        .await;
    assert_eq!(again.payload().await.s, Some(seq + 3));
    drop(again);
    // Unknown session: op 9 false.
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client.send_json(json!({"op": 6, "d": {"token": bot(), "session_id": "0123456789abcdef0123456789abcdef", "seq": 1}})).await;
    let invalid = client.payload().await;
    assert_eq!((invalid.op.code(), &invalid.d), (9, &json!(false)));
    // A session ended with 1000 cannot be resumed.
    let (mut client, ready) =
        identified(&server, "v=10&encoding=json", ALL_INTENTS, json!({})).await;
    client
        .send_frame(Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 1000.into(),
                reason: "bye".into(),
            },
        )))
        .await;
    let _ = client.closed().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client
        .send_json(
            json!({"op": 6, "d": {"token": bot(), "session_id": ready["session_id"], "seq": 1}}),
        )
        .await;
    assert_eq!(client.payload().await.d, json!(false));
}

#[tokio::test]
async fn presence_voice_state_and_member_chunk_commands() {
    let server = Server::start(&fixture(None));
    let (mut bot_client, _) =
        identified(&server, "v=10&encoding=json", ALL_INTENTS, json!({})).await;
    bot_client.dispatch("GUILD_CREATE").await;
    // Alice connects as a user (no intents) and sets her presence.
    let mut alice = RawClient::connect(&server, "v=9&encoding=json").await;
    alice.payload().await;
    alice
        .send_json(
            json!({"op": 2, "d": {"token": ALICE_TOKEN, "properties": {}, "capabilities": 16381}}),
        )
        .await;
    assert_eq!(alice.dispatch("READY").await["user"]["id"], ALICE_ID);
    let online = bot_client.dispatch("PRESENCE_UPDATE").await;
    assert_eq!(
        (&online["user"]["id"], &online["status"]),
        (&json!(ALICE_ID), &json!("online"))
    );
    alice.send_json(json!({"op": 3, "d": {"since": null, "activities": [{"name": "tests", "type": 0}], "status": "dnd", "afk": false}})).await;
    let dnd = bot_client.dispatch("PRESENCE_UPDATE").await;
    assert_eq!(
        (
            &dnd["status"],
            &dnd["guild_id"],
            &dnd["activities"][0]["name"]
        ),
        (&json!("dnd"), &json!(GUILD_ID), &json!("tests"))
    );
    // Voice: stored and dispatched; alice's own session also gets its voice server, after
    // its own voice state.
    alice.send_json(json!({"op": 4, "d": {"guild_id": GUILD_ID, "channel_id": VOICE_ID, "self_mute": true, "self_deaf": false}})).await;
    let voice = bot_client.dispatch("VOICE_STATE_UPDATE").await;
    assert_eq!(
        (&voice["user_id"], &voice["channel_id"], &voice["self_mute"]),
        (&json!(ALICE_ID), &json!(VOICE_ID), &json!(true))
    );
    assert_eq!(voice["member"]["user"]["id"], ALICE_ID);
    let own = alice.dispatch("VOICE_STATE_UPDATE").await;
    assert_eq!(own["session_id"], voice["session_id"]);
    let next = alice.payload().await;
    assert_eq!(next.t.as_deref(), Some("VOICE_SERVER_UPDATE"));
    assert_eq!(next.d["guild_id"], GUILD_ID);
    assert_eq!(next.d["endpoint"], server.addr.as_str());
    assert!(next.d["token"].as_str().is_some_and(|t| t.len() == 16));
    // Muting in the same channel is a voice state change only.
    alice.send_json(json!({"op": 4, "d": {"guild_id": GUILD_ID, "channel_id": VOICE_ID, "self_mute": false, "self_deaf": false}})).await;
    assert_eq!(
        bot_client.dispatch("VOICE_STATE_UPDATE").await["self_mute"],
        false
    );
    assert_eq!(
        alice.dispatch("VOICE_STATE_UPDATE").await["self_mute"],
        false
    );
    let (mut late, _) = identified(&server, "v=10&encoding=json", ALL_INTENTS, json!({})).await;
    let create = late.dispatch("GUILD_CREATE").await;
    assert_eq!(create["voice_states"][0]["channel_id"], VOICE_ID);
    assert!(create["presences"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["user"]["id"] == ALICE_ID && p["status"] == "dnd"));
    // Member chunks: ids with not_found, nonce and presences; a name query; everyone.
    bot_client.send_json(json!({"op": 8, "d": {"guild_id": GUILD_ID, "user_ids": [ALICE_ID, "999"], "presences": true, "nonce": "n1"}})).await;
    let chunk = bot_client.dispatch("GUILD_MEMBERS_CHUNK").await;
    assert_eq!(
        (
            &chunk["chunk_index"],
            &chunk["chunk_count"],
            &chunk["nonce"]
        ),
        (&json!(0), &json!(1), &json!("n1"))
    );
    assert_eq!(chunk["not_found"], json!(["999"]));
    assert_eq!(chunk["members"][0]["user"]["id"], ALICE_ID);
    assert_eq!(chunk["presences"][0]["status"], "dnd");
    bot_client
        .send_json(json!({"op": 8, "d": {"guild_id": GUILD_ID, "query": "CA", "limit": 10}}))
        .await;
    let chunk = bot_client.dispatch("GUILD_MEMBERS_CHUNK").await;
    let names: Vec<&str> = chunk["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["carol"]);
    bot_client
        .send_json(json!({"op": 8, "d": {"guild_id": GUILD_ID, "query": "", "limit": 0}}))
        .await;
    assert_eq!(
        bot_client.dispatch("GUILD_MEMBERS_CHUNK").await["members"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Leaving voice: no server update, only the state; the bot never got a server update.
    alice.send_json(json!({"op": 4, "d": {"guild_id": GUILD_ID, "channel_id": null, "self_mute": false, "self_deaf": false}})).await;
    let left = bot_client.payload().await;
    assert_eq!(
        (left.t.as_deref(), &left.d["channel_id"]),
        (Some("VOICE_STATE_UPDATE"), &Value::Null)
    );
    let left = alice.payload().await;
    assert_eq!(
        (left.t.as_deref(), &left.d["channel_id"]),
        (Some("VOICE_STATE_UPDATE"), &Value::Null)
    );
}

#[tokio::test]
async fn sessions_told_op7_at_a_clean_shutdown_resume_on_the_next_process() {
    let server = Server::start(&fixture(None));
    let (mut client, ready) =
        identified(&server, "v=10&encoding=json", ALL_INTENTS, json!({})).await;
    client.dispatch("GUILD_CREATE").await;
    let session_id = ready["session_id"].as_str().unwrap().to_string();
    let restarting = std::thread::spawn(move || server.restart());
    let reconnect = loop {
        let payload = client.payload().await;
        if payload.op.code() != 0 {
            break payload;
        }
    };
    assert_eq!(reconnect.op.code(), 7);
    let seq = client.seq.unwrap();
    drop(client);
    let server = restarting.join().unwrap();
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client
        .send_json(json!({"op": 6, "d": {"token": bot(), "session_id": session_id, "seq": seq}}))
        .await;
    let resumed = client.payload().await;
    assert_eq!(
        (resumed.op.code(), resumed.t.as_deref(), resumed.s),
        (0, Some("RESUMED"), Some(seq + 1)),
        "{:?}",
        resumed.d
    );
    post(&server, GENERAL_ID, "after the restart").await;
    let live = client.dispatch("MESSAGE_CREATE").await;
    assert_eq!(live["content"], "after the restart");
}

#[tokio::test]
async fn shutdown_sends_op7_reconnect() {
    let server = Server::start(&fixture(None));
    let (mut client, _) = identified(&server, "v=10&encoding=json", ALL_INTENTS, json!({})).await;
    client.dispatch("GUILD_CREATE").await;
    let stopping = std::thread::spawn(move || server.stop());
    let reconnect = loop {
        let payload = client.payload().await;
        if payload.op.code() != 0 {
            break payload;
        }
    };
    assert_eq!(reconnect.op.code(), 7);
    let _ = stopping.join();
}

#[tokio::test]
async fn discovery_advertises_the_host_used_and_every_gateway_path_upgrades() {
    let server = Server::start(&fixture(None));
    let client = reqwest::Client::new();
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let body: Value = client
        .get(format!("{}/api/v10/gateway", server.http()))
        .header("Host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["url"], format!("ws://localhost:{port}"));
    let (status, bot_body) = rest(&server, &bot(), "GET", "/gateway/bot", None).await;
    assert_eq!(status, 200);
    assert_eq!(bot_body["url"], server.ws());
    for key in ["total", "remaining", "reset_after", "max_concurrency"] {
        assert!(bot_body["session_start_limit"][key].is_u64(), "{key}");
    }
    // serenity appends only `?v=10` to the URL it got from /gateway; discord.js and
    // discord.py add encoding (and compression) to the bare URL.
    for path in [
        "/gateway?v=10",
        "/gateway/?v=10&encoding=json",
        "/?v=10&encoding=json&compress=zlib-stream",
    ] {
        let url = format!("{}{path}", server.ws());
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        use futures_util::StreamExt;
        let hello = match ws.next().await.unwrap().unwrap() {
            Message::Binary(bytes) => {
                let mut inflate = discord_mitm::gateway::compress::ZlibStreamDecompressor::new();
                let hello = inflate.push_frame(&bytes).unwrap().unwrap().to_vec();
                String::from_utf8(hello).unwrap()
            }
            other => other.to_text().unwrap().to_string(),
        };
        assert!(
            hello.contains("\"heartbeat_interval\":41250"),
            "{path}: {hello}"
        );
    }
    // A plain GET on / is the API's 404, not an upgrade.
    let response = client
        .get(format!("{}/", server.http()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
