//! The official client on `serve`'s gateway, with a raw WebSocket client against the built
//! binary behaving as userdoccers says the client behaves: IDENTIFY with `capabilities` and
//! `client_state`, READY shaped by those capabilities, READY_SUPPLEMENTAL, SESSIONS_REPLACE
//! across sessions, op 37 member lists (SYNC, then INSERT when someone joins over REST), and
//! every client opcode accepted.
mod serve_gateway_support;

use serde_json::{json, Value};
use serve_gateway_support::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const DAVE_ID: &str = "100000000000000004";
const DAVE_TOKEN: &str = "dave-token";
const USER_SETTINGS_PROTO: u64 = 1 << 9;
const DM_ID: &str = "300000000000000001";

/// The gateway fixture plus dave (in no guild) and an invite to #general.
fn user_fixture() -> Value {
    let mut fixture = fixture(None);
    fixture["users"]
        .as_array_mut()
        .expect("users")
        .push(json!({"id": DAVE_ID, "username": "dave", "token": DAVE_TOKEN}));
    fixture["guilds"][0]["invites"] = json!([{"code": "join-us", "channel_id": GENERAL_ID}]);
    fixture["dms"] = json!([{"id": DM_ID, "recipients": [ALICE_ID, CAROL_ID]}]);
    fixture
}

/// IDENTIFY as the desktop client does.
async fn user_session(server: &Server, token: &str, capabilities: u64, os: &str) -> RawClient {
    let mut client = RawClient::connect(server, "v=9&encoding=json").await;
    assert_eq!(client.payload().await.op.code(), 10);
    client
        .send_json(json!({"op": 2, "d": {
            "token": token,
            "capabilities": capabilities,
            "properties": {"os": os, "browser": "Discord Client", "release_channel": "stable",
                           "client_version": "1.0.9000", "client_build_number": 1},
            "presence": {"status": "unknown", "since": 0, "activities": [], "afk": false},
            "compress": false,
            "client_state": {"guild_versions": {}, "api_code_version": 0},
        }}))
        .await;
    client
}

/// JSON type name of a value.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every path of `sample` (arrays through their first element) that `ours` lacks or types
/// differently; a null in the sample accepts anything.
fn shape_differences(sample: &Value, ours: &Value, path: &str, out: &mut Vec<String>) {
    match (sample, ours) {
        (Value::Null, _) => {}
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                if key.starts_with("_comment") {
                    continue;
                }
                match have.get(key) {
                    Some(got) => shape_differences(value, got, &format!("{path}.{key}"), out),
                    None => out.push(format!("{path}.{key} missing")),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if let (Some(w), Some(h)) = (want.first(), have.first()) {
                shape_differences(w, h, &format!("{path}[0]"), out);
            }
        }
        (want, have) if kind(want) == kind(have) => {}
        (want, have) => out.push(format!(
            "{path}: {} here, {} in the sample",
            kind(have),
            kind(want)
        )),
    }
}

#[tokio::test]
async fn ready_follows_the_capabilities() {
    let server = Server::start(&user_fixture());
    // No capabilities: full guilds with members inline, arrays, legacy settings, notes.
    let mut plain = user_session(&server, ALICE_TOKEN, 0, "Linux").await;
    let ready = plain.dispatch("READY").await;
    let guild = &ready["guilds"][0];
    assert_eq!(guild["name"], "Test Guild");
    assert!(guild["channels"].as_array().is_some_and(|c| c.len() >= 3));
    assert!(guild["roles"].is_array());
    assert_eq!(guild["members"][0]["user"]["id"], ALICE_ID);
    assert_eq!(guild["member_count"], 3);
    assert!(guild.get("unavailable").is_none_or(|u| u == false));
    assert!(guild.get("properties").is_none());
    assert!(ready["read_state"].is_array());
    assert!(ready["user_guild_settings"].is_array());
    assert_eq!(ready["user_guild_settings"][0]["guild_id"], GUILD_ID);
    assert!(ready["user_settings"].is_object());
    assert!(ready.get("user_settings_proto").is_none());
    assert!(ready["notes"].is_object());
    assert!(ready["presences"].is_array());
    assert!(ready.get("users").is_none() && ready.get("merged_members").is_none());
    assert_eq!(ready["sessions"][0]["client_info"]["os"], "linux");
    assert_eq!(ready["session_type"], "normal");
    for key in [
        "country_code",
        "analytics_token",
        "auth_session_id_hash",
        "resume_gateway_url",
    ] {
        assert!(ready[key].is_string(), "{key}");
    }
    assert!(ready["experiments"].is_array() && ready["guild_experiments"].is_array());
    // Users get no GUILD_CREATE after READY; the next dispatch is their sessions.
    let next = plain.payload().await;
    assert_eq!(next.t.as_deref(), Some("SESSIONS_REPLACE"));

    // The official client's set: CLIENT_STATE_V2 guilds, deduplicated users, versioned
    // shapes, the settings proto, no notes, READY_SUPPLEMENTAL right after READY.
    let mut full = user_session(&server, ALICE_TOKEN, 16381, "Windows").await;
    let first = full.payload().await;
    assert_eq!(first.t.as_deref(), Some("READY"));
    let ready = first.d;
    let guild = &ready["guilds"][0];
    assert_eq!(guild["properties"]["name"], "Test Guild");
    assert_eq!(guild["data_mode"], "full");
    assert!(guild["roles"].is_array() && guild.get("members").is_none());
    assert!(guild.get("soundboard_sounds").is_none() && guild.get("voice_states").is_none());
    assert_eq!(ready["merged_members"][0][0]["user_id"], ALICE_ID);
    assert!(ready["merged_members"][0][0].get("user").is_none());
    assert!(ready["users"]
        .as_array()
        .is_some_and(|u| u.iter().any(|u| u["id"] == ALICE_ID)));
    assert_eq!(ready["read_state"]["partial"], false);
    assert!(ready["read_state"]["entries"].is_array());
    assert!(ready["user_guild_settings"]["version"].is_number());
    assert!(ready["user_settings_proto"].is_string());
    assert!(ready.get("user_settings").is_none() && ready.get("notes").is_none());
    assert!(ready.get("presences").is_none() && ready.get("merged_presences").is_none());
    // Two sessions now: the `all` session first.
    assert_eq!(ready["sessions"][0]["session_id"], "all");
    let supplemental = full.payload().await;
    assert_eq!(supplemental.t.as_deref(), Some("READY_SUPPLEMENTAL"));
    assert_eq!(supplemental.d["guilds"][0]["id"], GUILD_ID);
    assert!(supplemental.d["guilds"][0]["voice_states"].is_array());
    assert!(supplemental.d["merged_presences"]["friends"].is_array());
    assert_eq!(
        supplemental.d["merged_presences"]["guilds"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(supplemental.d["lazy_private_channels"].is_array());

    // Everything but the settings proto: legacy settings come back.
    let mut legacy =
        user_session(&server, ALICE_TOKEN, 16381 & !USER_SETTINGS_PROTO, "Linux").await;
    let ready = legacy.dispatch("READY").await;
    assert!(ready["user_settings"].is_object());
    assert!(ready.get("user_settings_proto").is_none());
    assert!(ready["users"].is_array());
}

#[tokio::test]
async fn ready_has_the_key_tree_of_a_recorded_official_ready() {
    let server = Server::start(&user_fixture());
    let sample: Value =
        serde_json::from_str(include_str!("user_gateway_data/ready_16381.json")).expect("sample");
    let mut client = user_session(&server, ALICE_TOKEN, 16381, "Linux").await;
    let ready = client.dispatch("READY").await;
    let mut differences = Vec::new();
    shape_differences(&sample, &ready, "READY", &mut differences);
    assert!(differences.is_empty(), "{differences:#?}");
}

#[tokio::test]
async fn sessions_replace_reaches_every_session_of_the_user() {
    let server = Server::start(&user_fixture());
    let mut desktop = user_session(&server, ALICE_TOKEN, 16381, "Windows").await;
    desktop.dispatch("READY").await;
    let own = desktop.dispatch("SESSIONS_REPLACE").await;
    assert_eq!(own.as_array().map(Vec::len), Some(1));
    let mut phone = user_session(&server, ALICE_TOKEN, 16381, "Android").await;
    phone.dispatch("READY").await;
    let both = desktop.dispatch("SESSIONS_REPLACE").await;
    let clients: Vec<&Value> = both
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["client_info"]["client"])
        .collect();
    assert_eq!(clients, vec!["unknown", "desktop", "mobile"]);
    // The phone goes idle: the aggregate stays online (another session is active) and the
    // per-session status follows.
    phone
        .send_json(
            json!({"op": 3, "d": {"status": "idle", "since": 0, "activities": [], "afk": true}}),
        )
        .await;
    loop {
        let sessions = desktop.dispatch("SESSIONS_REPLACE").await;
        let list = sessions.as_array().unwrap();
        if list.iter().any(|s| s["status"] == "idle") {
            assert_eq!(list[0]["session_id"], "all");
            assert_eq!(list[0]["status"], "online");
            break;
        }
    }
    // The phone logs off (a clean close ends the session for good).
    phone
        .send_frame(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    loop {
        let sessions = desktop.dispatch("SESSIONS_REPLACE").await;
        if sessions.as_array().map(Vec::len) == Some(1) {
            assert_eq!(sessions[0]["client_info"]["client"], "desktop");
            break;
        }
    }
}

#[tokio::test]
async fn member_list_syncs_then_inserts_a_member_who_joins_over_rest() {
    let server = Server::start(&user_fixture());
    let mut alice = user_session(&server, ALICE_TOKEN, 16381, "Linux").await;
    alice.dispatch("READY_SUPPLEMENTAL").await;
    alice
        .send_json(json!({"op": 37, "d": {"subscriptions": {GUILD_ID: {
            "typing": true, "activities": true, "threads": true, "member_updates": true,
            "channels": {GENERAL_ID: [[0, 99]]}}}}}))
        .await;
    let sync = alice.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    assert_eq!(sync["guild_id"], GUILD_ID);
    assert_eq!(sync["id"], "everyone");
    assert_eq!(
        (sync["member_count"].clone(), sync["online_count"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(sync["ops"][0]["op"], "SYNC");
    assert_eq!(sync["ops"][0]["range"], json!([0, 99]));
    let items = sync["ops"][0]["items"].as_array().unwrap();
    let rows: Vec<Value> = items
        .iter()
        .map(|i| {
            i["group"]["id"].clone().as_str().map_or_else(
                || i["member"]["user"]["id"].clone(),
                |g| json!(format!("group:{g}")),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            json!("group:online"),
            json!(ALICE_ID),
            json!("group:offline"),
            json!(CAROL_ID),
            json!(BOT_ID)
        ]
    );
    assert_eq!(items[1]["member"]["presence"]["status"], "online");
    // Dave joins through the invite: "dave" sorts between "carol" and "pingbot".
    let (status, body) = rest(
        &server,
        DAVE_TOKEN,
        "POST",
        "/invites/join-us",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let update = alice.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    assert_eq!(update["member_count"], 4);
    let ops = update["ops"].as_array().unwrap();
    assert_eq!(ops[0]["op"], "INSERT");
    assert_eq!(ops[0]["index"], 4);
    assert_eq!(ops[0]["item"]["member"]["user"]["id"], DAVE_ID);
    assert_eq!(
        ops[1],
        json!({"op": "UPDATE", "index": 2, "item": {"group": {"id": "offline", "count": 3}}})
    );
    // Dave comes online: he moves from the offline group to the online one.
    let mut dave = user_session(&server, DAVE_TOKEN, 16381, "Linux").await;
    dave.dispatch("READY").await;
    let moved = alice.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    assert_eq!(moved["online_count"], 2);
    let kinds: Vec<&Value> = moved["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["op"])
        .collect();
    assert_eq!(kinds, vec!["DELETE", "UPDATE", "INSERT", "UPDATE"]);
}

#[tokio::test]
async fn every_client_opcode_is_accepted_and_unknown_ones_close_with_4001() {
    let server = Server::start(&user_fixture());
    let mut alice = user_session(&server, ALICE_TOKEN, 16381, "Linux").await;
    alice.dispatch("READY_SUPPLEMENTAL").await;
    let commands = [
        json!({"op": 4, "d": {"guild_id": null, "channel_id": null, "self_mute": false, "self_deaf": false}}),
        json!({"op": 5, "d": null}),
        json!({"op": 13, "d": {"channel_id": GENERAL_ID}}),
        json!({"op": 14, "d": {"guild_id": GUILD_ID, "typing": true, "channels": {GENERAL_ID: [[0, 99]]}}}),
        json!({"op": 34, "d": {"guild_id": GUILD_ID, "channel_ids": [GENERAL_ID]}}),
        json!({"op": 35, "d": {"guild_id": GUILD_ID, "query": "", "continuation_token": null, "nonce": "n"}}),
        json!({"op": 36, "d": {"guild_id": GUILD_ID}}),
        json!({"op": 39, "d": {"guild_id": GUILD_ID, "channel_id": GENERAL_ID}}),
        json!({"op": 41, "d": {"initialization_timestamp": 0, "session_id": "x", "client_launch_id": "y"}}),
        json!({"op": 43, "d": {"guild_id": GUILD_ID, "fields": ["status"]}}),
        json!({"op": 40, "d": {"seq": 1, "qos": {"ver": 27, "active": true, "reasons": ["foregrounded"]}}}),
    ];
    for command in commands {
        alice.send_json(command).await;
    }
    alice.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    assert_eq!(alice.dispatch("LAST_MESSAGES").await["guild_id"], GUILD_ID);
    let chunk = alice.dispatch("GUILD_MEMBERS_CHUNK").await;
    assert_eq!(
        (
            chunk["nonce"].clone(),
            chunk["members"].as_array().map(Vec::len)
        ),
        (json!("n"), Some(3))
    );
    assert!(alice.dispatch("CHANNEL_STATUSES").await["channels"].is_array());
    let count = alice.dispatch("CHANNEL_MEMBER_COUNT_UPDATE").await;
    assert_eq!(
        (
            count["member_count"].clone(),
            count["presence_count"].clone()
        ),
        (json!(3), json!(1))
    );
    assert_eq!(alice.dispatch("CHANNEL_INFO").await["guild_id"], GUILD_ID);
    alice.send_json(json!({"op": 44, "d": {}})).await;
    assert_eq!(alice.closed().await, Some(4001));
}

#[tokio::test]
async fn a_call_in_a_dm_creates_updates_and_deletes() {
    let server = Server::start(&user_fixture());
    let mut alice = user_session(&server, ALICE_TOKEN, 16381, "Linux").await;
    let ready = alice.dispatch("READY").await;
    let dm = &ready["private_channels"][0];
    assert_eq!(dm["id"], DM_ID);
    assert_eq!(dm["recipient_ids"], json!([CAROL_ID]));
    let mut carol = user_session(&server, "carol-token", 16381, "Linux").await;
    carol.dispatch("READY").await;
    alice
        .send_json(json!({"op": 4, "d": {"guild_id": null, "channel_id": DM_ID, "self_mute": false, "self_deaf": false}}))
        .await;
    let created = carol.dispatch("CALL_CREATE").await;
    assert_eq!(created["channel_id"], DM_ID);
    assert_eq!(created["ringing"], json!([CAROL_ID]));
    assert_eq!(created["voice_states"][0]["user_id"], ALICE_ID);
    let server_update = alice.dispatch("VOICE_SERVER_UPDATE").await;
    assert_eq!(server_update["channel_id"], DM_ID);
    // A session that asks for the call gets it.
    carol
        .send_json(json!({"op": 13, "d": {"channel_id": DM_ID}}))
        .await;
    assert_eq!(carol.dispatch("CALL_CREATE").await["channel_id"], DM_ID);
    carol
        .send_json(json!({"op": 4, "d": {"guild_id": null, "channel_id": DM_ID, "self_mute": true, "self_deaf": false}}))
        .await;
    let update = alice.dispatch("CALL_UPDATE").await;
    assert_eq!(update["ringing"], json!([]));
    for client in [&mut alice, &mut carol] {
        client
            .send_json(json!({"op": 4, "d": {"guild_id": null, "channel_id": null, "self_mute": false, "self_deaf": false}}))
            .await;
    }
    assert_eq!(alice.dispatch("CALL_DELETE").await["channel_id"], DM_ID);
}

/// Dispatch names read until dispatch `name` whose data satisfies `done` (included).
async fn names_until(
    client: &mut RawClient,
    name: &str,
    done: impl Fn(&Value) -> bool,
) -> (Vec<String>, Value) {
    let mut names = Vec::new();
    loop {
        let payload = client.payload().await;
        let Some(t) = payload.t else {
            continue;
        };
        names.push(t.clone());
        if t == name && done(&payload.d) {
            return (names, payload.d);
        }
    }
}

/// Alice goes `status` (op 3); the payloads up to her own SESSIONS_REPLACE saying so mark
/// everything published before.
async fn mark(client: &mut RawClient, status: &str) -> Vec<String> {
    client
        .send_json(
            json!({"op": 3, "d": {"status": status, "since": 0, "activities": [], "afk": false}}),
        )
        .await;
    names_until(client, "SESSIONS_REPLACE", |d| {
        d.as_array()
            .is_some_and(|s| s.iter().any(|s| s["status"] == status))
    })
    .await
    .0
}

#[tokio::test]
async fn subscription_flags_decide_typing_member_and_thread_events() {
    let server = Server::start(&user_fixture());
    let mut alice = user_session(&server, ALICE_TOKEN, 16381, "Linux").await;
    alice.dispatch("READY_SUPPLEMENTAL").await;
    let carol = "carol-token";
    let typing = format!("/channels/{GENERAL_ID}/typing");
    let nick = format!("/guilds/{GUILD_ID}/members/@me");
    let threads = format!("/channels/{GENERAL_ID}/threads");
    // Not subscribed: carol's typing, her nickname and her new thread stay away.
    let (status, _) = rest(&server, carol, "POST", &typing, None).await;
    assert_eq!(status, 204);
    let (status, body) = rest(&server, carol, "PATCH", &nick, Some(json!({"nick": "caz"}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = rest(
        &server,
        carol,
        "POST",
        &threads,
        Some(json!({"name": "first", "type": 11})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let seen = mark(&mut alice, "dnd").await;
    for name in ["TYPING_START", "GUILD_MEMBER_UPDATE", "THREAD_CREATE"] {
        assert!(!seen.contains(&name.to_string()), "{name} in {seen:?}");
    }
    // Her own action on another member reaches her all the same (userdoccers: every action
    // the user does on other members goes to its sessions).
    let carols = format!("/guilds/{GUILD_ID}/members/{CAROL_ID}");
    let (status, body) = rest(
        &server,
        ALICE_TOKEN,
        "PATCH",
        &carols,
        Some(json!({"nick": "by-alice"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let update = alice.dispatch("GUILD_MEMBER_UPDATE").await;
    assert_eq!(update["nick"], "by-alice");
    assert_eq!(update["user"]["id"], CAROL_ID);
    // Subscribed with every flag: the thread list first, then all three.
    alice
        .send_json(json!({"op": 37, "d": {"subscriptions": {GUILD_ID: {
            "typing": true, "threads": true, "activities": true, "member_updates": true}}}}))
        .await;
    let sync = alice.dispatch("THREAD_LIST_SYNC").await;
    assert_eq!(sync["guild_id"], GUILD_ID);
    assert_eq!(sync["threads"][0]["name"], "first");
    rest(&server, carol, "POST", &typing, None).await;
    assert_eq!(
        alice.dispatch("TYPING_START").await["channel_id"],
        GENERAL_ID
    );
    rest(&server, carol, "PATCH", &nick, Some(json!({"nick": "cat"}))).await;
    assert_eq!(alice.dispatch("GUILD_MEMBER_UPDATE").await["nick"], "cat");
    rest(
        &server,
        carol,
        "POST",
        &threads,
        Some(json!({"name": "second", "type": 11})),
    )
    .await;
    assert_eq!(alice.dispatch("THREAD_CREATE").await["name"], "second");
}

#[tokio::test]
async fn settings_events_follow_the_settings_proto_capability() {
    let server = Server::start(&user_fixture());
    let mut proto = user_session(&server, ALICE_TOKEN, 16381, "Linux").await;
    proto.dispatch("READY_SUPPLEMENTAL").await;
    let mut legacy =
        user_session(&server, ALICE_TOKEN, 16381 & !USER_SETTINGS_PROTO, "Linux").await;
    legacy.dispatch("READY_SUPPLEMENTAL").await;
    let (status, body) = rest(
        &server,
        ALICE_TOKEN,
        "PATCH",
        "/users/@me/settings",
        Some(json!({"theme": "light"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = mark(&mut proto, "dnd").await;
    assert!(
        seen.contains(&"USER_SETTINGS_PROTO_UPDATE".to_string()),
        "{seen:?}"
    );
    assert!(
        !seen.contains(&"USER_SETTINGS_UPDATE".to_string()),
        "{seen:?}"
    );
    let (seen, _) = names_until(&mut legacy, "SESSIONS_REPLACE", |d| {
        d.as_array()
            .is_some_and(|s| s.iter().any(|s| s["status"] == "dnd"))
    })
    .await;
    assert!(
        seen.contains(&"USER_SETTINGS_UPDATE".to_string()),
        "{seen:?}"
    );
    assert!(
        !seen.contains(&"USER_SETTINGS_PROTO_UPDATE".to_string()),
        "{seen:?}"
    );
}

/// IDENTIFY with the official client's capabilities and `client_state`.
async fn session_with_state(server: &Server, client_state: Value) -> RawClient {
    let mut client = RawClient::connect(server, "v=9&encoding=json").await;
    assert_eq!(client.payload().await.op.code(), 10);
    client
        .send_json(json!({"op": 2, "d": {
            "token": ALICE_TOKEN, "capabilities": 16381,
            "properties": {"os": "Linux", "browser": "Discord Client"},
            "presence": {"status": "unknown", "since": 0, "activities": [], "afk": false},
            "client_state": client_state,
        }}))
        .await;
    client
}

/// A channel of a READY guild by id.
fn channel_in<'a>(guild: &'a Value, key: &str, id: &str) -> Option<&'a Value> {
    guild[key].as_array()?.iter().find(|c| c["id"] == id)
}

#[tokio::test]
async fn guilds_the_client_holds_come_partial_with_what_changed() {
    let server = Server::start(&user_fixture());
    let mut first = session_with_state(&server, json!({"guild_versions": {}})).await;
    let ready = first.dispatch("READY").await;
    let guild = &ready["guilds"][0];
    assert_eq!(guild["data_mode"], "full");
    let version = guild["version"].as_u64().expect("a version");
    assert!(version > 0);
    // Re-identify holding that version: the guild comes partial (no channels), same version,
    // with empty `partial_updates` (the client reads them in partial mode) and no unread news.
    let mut again =
        session_with_state(&server, json!({"guild_versions": {GUILD_ID: version}})).await;
    let ready = again.dispatch("READY").await;
    let guild = &ready["guilds"][0];
    assert_eq!(guild["data_mode"], "partial");
    assert_eq!(guild["version"], version);
    assert!(guild.get("channels").is_none(), "{guild}");
    assert_eq!(guild["properties"]["name"], "Test Guild");
    assert!(guild["joined_at"].is_string());
    let updates = &guild["partial_updates"];
    for key in [
        "channels",
        "deleted_channel_ids",
        "roles",
        "deleted_role_ids",
        "emojis",
        "deleted_emoji_ids",
        "stickers",
        "deleted_sticker_ids",
    ] {
        assert_eq!(updates[key], json!([]), "{key} in {updates}");
    }
    assert_eq!(guild["channel_updates"], json!([]));
    assert_eq!(guild["unable_to_sync_deletes"], false);
    // The guild changes: renamed, a channel renamed, one deleted, a role created, a message.
    let changes = [
        (
            "PATCH",
            format!("/guilds/{GUILD_ID}"),
            json!({"name": "Renamed"}),
        ),
        (
            "PATCH",
            format!("/channels/{VOICE_ID}"),
            json!({"name": "Loud"}),
        ),
        ("DELETE", format!("/channels/{SECRET_ID}"), Value::Null),
        (
            "POST",
            format!("/guilds/{GUILD_ID}/roles"),
            json!({"name": "Helpers"}),
        ),
        (
            "POST",
            format!("/channels/{GENERAL_ID}/messages"),
            json!({"content": "hi"}),
        ),
    ];
    let mut message_id = Value::Null;
    for (method, path, body) in changes {
        let body = (!body.is_null()).then_some(body);
        let (status, answer) = rest(&server, ALICE_TOKEN, method, &path, body).await;
        assert!(
            status == 200 || status == 201,
            "{method} {path}: {status} {answer}"
        );
        message_id = answer["id"].clone();
    }
    // Holding the old version: partial against it, with a newer version and what changed.
    let mut later =
        session_with_state(&server, json!({"guild_versions": {GUILD_ID: version}})).await;
    let ready = later.dispatch("READY").await;
    let guild = &ready["guilds"][0];
    assert_eq!(guild["data_mode"], "partial", "{guild}");
    assert!(guild["version"].as_u64() > Some(version));
    assert_eq!(guild["properties"]["name"], "Renamed");
    let updates = &guild["partial_updates"];
    let written: Vec<&Value> = updates["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .collect();
    assert_eq!(written.len(), 1, "{updates}");
    assert_eq!(written[0]["id"], VOICE_ID);
    assert_eq!(written[0]["name"], "Loud");
    assert_eq!(updates["deleted_channel_ids"], json!([SECRET_ID]));
    // The new role, and Mods, which it pushed up one position.
    let roles: Vec<(&Value, &Value)> = updates["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| (&r["name"], &r["position"]))
        .collect();
    assert_eq!(
        roles,
        [(&json!("Helpers"), &json!(1)), (&json!("Mods"), &json!(2))],
        "{updates}"
    );
    assert_eq!(updates["deleted_role_ids"], json!([]));
    assert_eq!(
        guild["channel_updates"],
        json!([{"id": GENERAL_ID, "last_message_id": message_id, "last_pin_timestamp": null}])
    );
    // A version this server never handed out: the guild in full.
    let mut unknown =
        session_with_state(&server, json!({"guild_versions": {GUILD_ID: version - 1}})).await;
    let ready = unknown.dispatch("READY").await;
    let guild = &ready["guilds"][0];
    assert_eq!(guild["data_mode"], "full");
    assert_eq!(guild["properties"]["name"], "Renamed");
    assert!(guild.get("partial_updates").is_none());
    assert_eq!(
        channel_in(guild, "channels", GENERAL_ID).expect("general")["last_message_id"],
        message_id
    );
    assert!(channel_in(guild, "channels", SECRET_ID).is_none());
    // `initial_guild_id`: INITIAL_GUILD, the full guild, comes before READY.
    let mut lazy = session_with_state(
        &server,
        json!({"guild_versions": {}, "initial_guild_id": GUILD_ID}),
    )
    .await;
    let first = lazy.payload().await;
    assert_eq!(first.t.as_deref(), Some("INITIAL_GUILD"));
    assert_eq!(first.d["id"], GUILD_ID);
    assert_eq!(first.d["data_mode"], "full");
    assert!(first.d["channels"].is_array());
    assert_eq!(first.d["members"][0]["user"]["id"], ALICE_ID);
    assert_eq!(lazy.payload().await.t.as_deref(), Some("READY"));
}

#[tokio::test]
async fn a_session_that_expires_without_a_close_leaves_the_others_sessions_replace() {
    let server = Server::start_with(&user_fixture(), &["--gateway-resume-window", "1"]);
    let mut desktop = user_session(&server, ALICE_TOKEN, 16381, "Windows").await;
    desktop.dispatch("READY").await;
    let mut phone = user_session(&server, ALICE_TOKEN, 16381, "Android").await;
    phone.dispatch("READY").await;
    loop {
        let sessions = desktop.dispatch("SESSIONS_REPLACE").await;
        if sessions.as_array().map(Vec::len) == Some(3) {
            break;
        }
    }
    // The phone's TCP connection drops: no close frame. Once the resume window is over, the
    // desktop hears that only it is left.
    drop(phone);
    let started = std::time::Instant::now();
    loop {
        let sessions = desktop.dispatch("SESSIONS_REPLACE").await;
        if sessions.as_array().map(Vec::len) == Some(1) {
            assert_eq!(sessions[0]["client_info"]["client"], "desktop");
            break;
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// The gateway fixture with `filler` more offline members (named `fill-NNN`) and two users
/// outside the guild who can join: `abe` (sorts first) and `zed` (sorts last).
fn big_fixture(filler: usize) -> Value {
    let mut fixture = user_fixture();
    let users = fixture["users"].as_array_mut().expect("users");
    let mut members = Vec::new();
    for i in 0..filler {
        let id = format!("{}", 110_000_000_000_000_000u64 + i as u64);
        users.push(json!({"id": id, "username": format!("fill-{i:03}")}));
        members.push(json!({"user_id": id}));
    }
    users.push(json!({"id": "120000000000000001", "username": "abe", "token": "abe-token"}));
    users.push(json!({"id": "120000000000000002", "username": "zed", "token": "zed-token"}));
    fixture["guilds"][0]["members"]
        .as_array_mut()
        .expect("members")
        .extend(members);
    fixture
}

#[tokio::test]
async fn member_list_updates_reach_each_session_only_for_its_ranges() {
    let server = Server::start(&big_fixture(150));
    let subscribe = |range: [u64; 2]| {
        json!({"op": 37, "d": {"subscriptions": {GUILD_ID: {
            "channels": {GENERAL_ID: [range]}}}}})
    };
    let mut alice = user_session(&server, ALICE_TOKEN, 16381, "Linux").await;
    alice.dispatch("READY_SUPPLEMENTAL").await;
    let mut carol = user_session(&server, "carol-token", 16381, "Linux").await;
    carol.dispatch("READY_SUPPLEMENTAL").await;
    alice.send_json(subscribe([0, 99])).await;
    let first = alice.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    assert_eq!(first["ops"][0]["range"], json!([0, 99]));
    carol.send_json(subscribe([100, 199])).await;
    let second = carol.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    assert_eq!(second["ops"][0]["range"], json!([100, 199]));
    // Rows: online header, alice, carol, offline header, 151 offline members (0..=154).
    let items = second["ops"][0]["items"].as_array().expect("items");
    assert_eq!(items.len(), 55);
    // zed joins: he sorts last (index 155). Carol sees the INSERT; alice only the offline
    // group's new count, at index 3 in her range.
    let (status, body) = rest(
        &server,
        "zed-token",
        "POST",
        "/invites/join-us",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let to_carol = carol.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    assert_eq!(
        to_carol["ops"].as_array().map(|ops| ops
            .iter()
            .map(|o| (o["op"].clone(), o["index"].clone()))
            .collect::<Vec<_>>()),
        Some(vec![(json!("INSERT"), json!(155))])
    );
    let to_alice = alice.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    assert_eq!(
        to_alice["ops"],
        json!([{"op": "UPDATE", "index": 3, "item": {"group": {"id": "offline", "count": 152}}}])
    );
    assert_eq!(to_alice["member_count"], 154);
    // abe joins: first of the offline group (index 4). Alice gets the INSERT; carol's range
    // moved by one row, so she gets it again whole.
    let (status, body) = rest(
        &server,
        "abe-token",
        "POST",
        "/invites/join-us",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let to_alice = alice.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    assert_eq!(to_alice["ops"][0]["op"], "INSERT");
    assert_eq!(to_alice["ops"][0]["index"], 4);
    assert_eq!(
        to_alice["ops"][0]["item"]["member"]["user"]["id"],
        "120000000000000001"
    );
    let to_carol = carol.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    let ops = to_carol["ops"].as_array().expect("ops");
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(ops[0]["op"], "SYNC");
    assert_eq!(ops[0]["range"], json!([100, 199]));
    assert_eq!(ops[0]["items"].as_array().map(Vec::len), Some(57));
}

#[tokio::test]
async fn a_ready_right_after_a_message_shows_it() {
    let server = Server::start(&user_fixture());
    let mut warm = user_session(&server, ALICE_TOKEN, 16381, "Linux").await;
    let ready = warm.dispatch("READY").await;
    assert_eq!(
        channel_in(&ready["guilds"][0], "channels", GENERAL_ID).expect("general")
            ["last_message_id"],
        Value::Null
    );
    // Each READY is built right after the REST call answered (its guild rendered before, so
    // cached): the channel's `last_message_id` is the message just posted, every time.
    for (i, capabilities) in [16381, 16381, 0, 16381 & !USER_SETTINGS_PROTO, 16381]
        .iter()
        .enumerate()
    {
        let (status, message) = rest(
            &server,
            "carol-token",
            "POST",
            &format!("/channels/{GENERAL_ID}/messages"),
            Some(json!({"content": format!("message {i}")})),
        )
        .await;
        assert_eq!(status, 200, "{message}");
        let mut alice = user_session(&server, ALICE_TOKEN, *capabilities, "Linux").await;
        let ready = alice.dispatch("READY").await;
        let general = channel_in(&ready["guilds"][0], "channels", GENERAL_ID).expect("general");
        assert_eq!(
            general["last_message_id"], message["id"],
            "after message {i}"
        );
    }
}
