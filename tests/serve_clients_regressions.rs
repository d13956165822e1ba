//! Focused regressions for what discord.js and serenity revealed in `serve`, over raw HTTP and
//! WebSocket against the built binary (the library scenarios are in serve_clients_discordjs.rs
//! and serve_clients_serenity.rs).
mod serve_gateway_support;

use serde_json::{json, Value};
use serve_gateway_support::{
    fixture, rest, Frame, RawClient, Server, ALICE_ID, ALICE_TOKEN, BOT_ID, BOT_TOKEN, GENERAL_ID,
    GUILD_ID,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

fn bot() -> String {
    format!("Bot {BOT_TOKEN}")
}

/// Registers /echo in the guild, has alice invoke it, answers with "echo: hi"; returns the
/// interaction token.
async fn answered_interaction(server: &Server) -> String {
    let (status, body) = rest(
        server,
        &bot(),
        "PUT",
        &format!("/applications/{BOT_ID}/guilds/{GUILD_ID}/commands"),
        Some(json!([{"name": "echo", "description": "Echoes"}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, interaction) = rest(
        server,
        ALICE_TOKEN,
        "POST",
        "/_mitm/interactions",
        Some(json!({"application_id": BOT_ID, "channel_id": GENERAL_ID, "name": "echo"})),
    )
    .await;
    assert_eq!(status, 200, "{interaction}");
    let id = interaction["id"].as_str().expect("id");
    let token = interaction["token"].as_str().expect("token").to_string();
    let (status, body) = rest(
        server,
        "",
        "POST",
        &format!("/interactions/{id}/{token}/callback"),
        Some(json!({"type": 4, "data": {"content": "echo: hi"}})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    token
}

/// @discordjs/rest percent-encodes `@original`; Discord answers it as `@original`.
#[tokio::test]
async fn percent_encoded_original_reaches_the_original_response() {
    let server = Server::start(&fixture(None));
    let token = answered_interaction(&server).await;
    for path in ["%40original", "@original"] {
        let (status, message) = rest(
            &server,
            "",
            "GET",
            &format!("/webhooks/{BOT_ID}/{token}/messages/{path}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{path}: {message}");
        assert_eq!(message["content"], "echo: hi");
    }
    let (status, edited) = rest(
        &server,
        "",
        "PATCH",
        &format!("/webhooks/{BOT_ID}/{token}/messages/%40original"),
        Some(json!({"content": "edited"})),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["content"], "edited");
    // Escapes that would change the path's meaning still do not route.
    let (status, body) = rest(
        &server,
        "",
        "GET",
        &format!("/webhooks/{BOT_ID}/{token}%2Fmessages/%40original"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

/// Fetched later (a single GET or the history), an interaction's response still carries its
/// `interaction_metadata` and the bot user as author, as in its MESSAGE_CREATE.
#[tokio::test]
async fn interaction_responses_keep_their_metadata_and_bot_author_when_fetched() {
    let server = Server::start(&fixture(None));
    answered_interaction(&server).await;
    let (status, list) = rest(
        &server,
        ALICE_TOKEN,
        "GET",
        &format!("/channels/{GENERAL_ID}/messages?limit=1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let answer = &list[0];
    assert_eq!(answer["content"], "echo: hi");
    assert_eq!(answer["type"], 20);
    assert_eq!(answer["webhook_id"], BOT_ID);
    assert_eq!(answer["application_id"], BOT_ID);
    assert_eq!(answer["author"]["id"], BOT_ID);
    assert_eq!(answer["author"]["username"], "pingbot");
    assert_eq!(answer["author"]["bot"], true);
    assert_eq!(answer["interaction_metadata"]["type"], 2);
    assert_eq!(answer["interaction_metadata"]["user"]["id"], ALICE_ID);
    let id = answer["id"].as_str().expect("id");
    let (status, single) = rest(
        &server,
        ALICE_TOKEN,
        "GET",
        &format!("/channels/{GENERAL_ID}/messages/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{single}");
    assert_eq!(
        single["interaction_metadata"],
        answer["interaction_metadata"]
    );
}

/// serenity serializes `options`, `choices` and `channel_types` as `[]` on every option.
#[tokio::test]
async fn empty_option_arrays_in_commands_count_as_absent() {
    let server = Server::start(&fixture(None));
    let path = format!("/applications/{BOT_ID}/guilds/{GUILD_ID}/commands");
    let option = json!({"type": 3, "name": "text", "description": "what", "required": true,
                        "options": [], "choices": [], "channel_types": []});
    let (status, commands) = rest(
        &server,
        &bot(),
        "PUT",
        &path,
        Some(json!([{"name": "echo", "description": "Echoes", "options": [option]}])),
    )
    .await;
    assert_eq!(status, 200, "{commands}");
    let stored = &commands[0]["options"][0];
    assert_eq!(stored["name"], "text");
    assert_eq!(stored["required"], true);
    // Non-empty ones are still checked.
    let (status, error) = rest(
        &server,
        &bot(),
        "PUT",
        &path,
        Some(json!([{"name": "echo", "description": "Echoes",
                     "options": [{"type": 3, "name": "text", "description": "what",
                                  "channel_types": [0]}]}])),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["code"], 50035);
    assert!(
        error["errors"]["0"]["options"]["0"]["channel_types"].is_object(),
        "{error}"
    );
}

/// A client that closes first gets the Close frame back (RFC 6455 5.5.1); serenity waits for it.
#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame() {
    let server = Server::start(&fixture(None));
    for code in [1000u16, 4000] {
        let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
        let hello = client.payload().await;
        assert_eq!(hello.op, discord_mitm::gateway::OpCode::Hello);
        client
            .send_frame(Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "".into(),
            })))
            .await;
        match client.next().await {
            Frame::Closed(echoed) => assert_eq!(echoed, Some(code), "close code echoed"),
            Frame::Payload(p) => panic!("expected the close reply, got {p:?}"),
        }
    }
    // A server-side close still carries its code and reason.
    let mut client = RawClient::connect(&server, "v=10&encoding=json").await;
    client.payload().await;
    client.identify("not-a-token", Some(1), Value::Null).await;
    assert_eq!(client.closed().await, Some(4004));
}

/// MESSAGE_CREATE and MESSAGE_UPDATE carry `channel_type` (discord-api-docs' extra field):
/// discord.js needs it to emit a DM whose channel it has not cached.
#[tokio::test]
async fn message_events_carry_the_channel_type() {
    let server = Server::start(&fixture(None));
    let mut bot_client = RawClient::connect(&server, "v=10&encoding=json").await;
    bot_client.payload().await;
    let intents = 1 | (1 << 9) | (1 << 12) | (1 << 15);
    bot_client
        .identify(BOT_TOKEN, Some(intents), Value::Null)
        .await;
    bot_client.dispatch("GUILD_CREATE").await;

    let (status, dm) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        "/users/@me/channels",
        Some(json!({"recipient_id": BOT_ID})),
    )
    .await;
    assert_eq!(status, 200, "{dm}");
    let dm_id = dm["id"].as_str().expect("dm id").to_string();
    let (status, body) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{dm_id}/messages"),
        Some(json!({"content": "psst"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("channel_type").is_none(),
        "REST answers stay plain"
    );
    let created = bot_client.dispatch("MESSAGE_CREATE").await;
    assert_eq!(created["channel_id"], dm_id.as_str());
    assert_eq!(created["channel_type"], 1, "DM");
    assert!(created.get("guild_id").is_none());

    let (status, posted) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(json!({"content": "hi"})),
    )
    .await;
    assert_eq!(status, 200, "{posted}");
    let created = bot_client.dispatch("MESSAGE_CREATE").await;
    assert_eq!(created["channel_type"], 0, "GUILD_TEXT");
    assert_eq!(created["guild_id"], GUILD_ID);
    let id = posted["id"].as_str().expect("id");
    let (status, body) = rest(
        &server,
        ALICE_TOKEN,
        "PATCH",
        &format!("/channels/{GENERAL_ID}/messages/{id}"),
        Some(json!({"content": "hi again"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let updated = bot_client.dispatch("MESSAGE_UPDATE").await;
    assert_eq!(updated["channel_type"], 0);
    assert_eq!(updated["content"], "hi again");
}
