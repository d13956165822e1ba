//! The gateway dispatches the newer route families publish, seen by real gateway sessions on
//! the built binary: expressions, guild settings, entitlements, follower crossposts, group DMs.
mod serve_support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use serve_support::*;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A JSON, uncompressed gateway session that has received READY.
struct Session {
    ws: Socket,
}

impl Session {
    async fn open(server: &Server, token: &str, intents: u64) -> Session {
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/?v=10&encoding=json", server.addr))
                .await
                .expect("gateway connects");
        let mut session = Session { ws };
        let hello = session.next().await;
        assert_eq!(hello["op"], 10);
        session
            .ws
            .send(Message::text(
                json!({"op": 2, "d": {"token": token, "intents": intents,
                    "properties": {"os": "linux", "browser": "test", "device": "test"}}})
                .to_string(),
            ))
            .await
            .expect("identify sent");
        session.dispatch("READY").await;
        session
    }

    async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a gateway frame within 10 s")
                .expect("the connection stays open")
                .expect("a readable frame");
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str()).expect("JSON payload");
            }
        }
    }

    /// Skips payloads until dispatch `name`; returns its `d`.
    async fn dispatch(&mut self, name: &str) -> Value {
        loop {
            let payload = self.next().await;
            if payload["t"] == name {
                return payload["d"].clone();
            }
        }
    }
}

/// One REST call with the async client (a blocking one must not live on the runtime).
async fn call(
    base: &str,
    method: &'static str,
    path: String,
    token: &'static str,
    body: Option<Value>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("authorization", token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let raw = response.text().await.expect("body");
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_reach_gateway_sessions() {
    let server = Server::on_fixture_async().await;
    let base = server.base();
    let api = base.as_str();
    // GUILDS | GUILD_EXPRESSIONS | GUILD_WEBHOOKS | GUILD_MESSAGES | MESSAGE_CONTENT
    let intents = 1 | (1 << 3) | (1 << 5) | (1 << 9) | (1 << 15);
    let mut bot = Session::open(&server, BOT.trim_start_matches("Bot "), intents).await;
    let mut bob = Session::open(&server, BOB, intents).await;

    let sound = call(
        api,
        "POST",
        format!("/guilds/{GUILD}/soundboard-sounds"),
        ALICE,
        Some(json!({"name": "beep", "sound": "data:audio/ogg;base64,T2dnUw=="})),
    )
    .await;
    let sound_id = expect(&sound, 201)["sound_id"].clone();
    let created = bot.dispatch("GUILD_SOUNDBOARD_SOUND_CREATE").await;
    assert_eq!(created["sound_id"], sound_id);
    assert_eq!(created["guild_id"], GUILD);
    call(
        api,
        "DELETE",
        format!(
            "/guilds/{GUILD}/soundboard-sounds/{}",
            sound_id.as_str().unwrap()
        ),
        ALICE,
        None,
    )
    .await;
    let deleted = bot.dispatch("GUILD_SOUNDBOARD_SOUND_DELETE").await;
    assert_eq!(deleted, json!({"sound_id": sound_id, "guild_id": GUILD}));

    let widget = call(
        api,
        "PATCH",
        format!("/guilds/{GUILD}/widget"),
        ALICE,
        Some(json!({"enabled": true})),
    )
    .await;
    expect(&widget, 200);
    assert_eq!(bot.dispatch("GUILD_UPDATE").await["widget_enabled"], true);

    let entitlement = call(
        api,
        "POST",
        format!("/applications/{BOT_ID}/entitlements"),
        BOT,
        Some(json!({"sku_id": "1019475255913222144", "owner_id": BOB_ID, "owner_type": 2})),
    )
    .await;
    let entitlement_id = expect(&entitlement, 200)["id"].clone();
    let event = bot.dispatch("ENTITLEMENT_CREATE").await;
    assert_eq!(event["id"], entitlement_id);
    assert_eq!(event["user_id"], BOB_ID);

    let follow = call(
        api,
        "POST",
        format!("/channels/{NEWS}/followers"),
        ALICE,
        Some(json!({"webhook_channel_id": GENERAL})),
    )
    .await;
    expect(&follow, 200);
    assert_eq!(bot.dispatch("WEBHOOKS_UPDATE").await["channel_id"], GENERAL);
    let news = call(
        api,
        "POST",
        format!("/channels/{NEWS}/messages"),
        ALICE,
        Some(json!({"content": "extra extra"})),
    )
    .await;
    let news_id = expect(&news, 200)["id"].as_str().unwrap().to_string();
    expect(
        &call(
            api,
            "POST",
            format!("/channels/{NEWS}/messages/{news_id}/crosspost"),
            ALICE,
            None,
        )
        .await,
        200,
    );
    loop {
        let message = bot.dispatch("MESSAGE_CREATE").await;
        if message["channel_id"] == GENERAL {
            assert_eq!(message["content"], "extra extra");
            assert_eq!(message["flags"], 2);
            break;
        }
    }

    // Group DMs: bob is added to alice and carol's group and is told about it (a user adds
    // friends only, so alice befriends dave and bob first).
    for (token, friend) in [
        (ALICE, DAVE_ID),
        (DAVE, ALICE_ID),
        (ALICE, BOB_ID),
        (BOB, ALICE_ID),
    ] {
        expect(
            &call(
                api,
                "PUT",
                format!("/users/@me/relationships/{friend}"),
                token,
                Some(json!({})),
            )
            .await,
            204,
        );
    }
    let dm = call(
        api,
        "POST",
        "/users/@me/channels".into(),
        ALICE,
        Some(json!({"recipient_id": CAROL_ID})),
    )
    .await;
    let dm_id = expect(&dm, 200)["id"].as_str().unwrap().to_string();
    let group = call(
        api,
        "PUT",
        format!("/channels/{dm_id}/recipients/{DAVE_ID}"),
        ALICE,
        Some(json!({})),
    )
    .await;
    let group_id = expect(&group, 201)["id"].as_str().unwrap().to_string();
    expect(
        &call(
            api,
            "PUT",
            format!("/channels/{group_id}/recipients/{BOB_ID}"),
            ALICE,
            Some(json!({})),
        )
        .await,
        204,
    );
    let created = bob.dispatch("CHANNEL_CREATE").await;
    assert_eq!(created["id"], group_id.as_str());
    assert_eq!(created["type"], 3);
    expect(
        &call(
            api,
            "DELETE",
            format!("/channels/{group_id}/recipients/{DAVE_ID}"),
            ALICE,
            None,
        )
        .await,
        204,
    );
    let removed = bob.dispatch("CHANNEL_RECIPIENT_REMOVE").await;
    assert_eq!(removed["channel_id"], group_id.as_str());
    assert_eq!(removed["user"]["id"], DAVE_ID);
}
