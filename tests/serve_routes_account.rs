//! The official client's account routes on the built binary: auth with MFA (RFC 6238 TOTP and
//! backup codes) and logout closing gateway sessions with 4004, relationships and notes with
//! their events on both users' sessions, read states with mention counts from real messages,
//! settings protos built and read with the published discord-protos definitions, the legacy
//! settings kept consistent, user guild settings, and persistence across a restart.
mod account_support;
mod serve_routes_gateway_support;
mod serve_support;

use std::process::Command;
use std::time::Duration;

use account_support::{totp_now, TOTP_SECRET};
use futures_util::StreamExt;
use serde_json::{json, Value};
use serve_routes_gateway_support::{call, next_dispatch, session, Socket};
use serve_support::*;
use tokio_tungstenite::tungstenite::Message;

/// Intents a user client does not send; user sessions get their events regardless.
const NO_INTENTS: u64 = 0;

async fn login(base: &str, login: &str, password: &str) -> (u16, Value) {
    call(
        base,
        "POST",
        "/auth/login".into(),
        "",
        json!({"login": login, "password": password}),
    )
    .await
}

/// Waits for the connection to close; its close code.
async fn close_code(ws: &mut Socket) -> u16 {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame or the close within 10 s");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(_)) => continue,
            other => panic!("connection ended without a close frame: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_login_backup_codes_and_logout() {
    let server = Server::on_fixture_async().await;
    let base = server.base();
    let (token, codes) = enable_totp(&server, &base).await;
    second_factor_logins(&base, token.clone(), codes).await;
    // Logout: the token stops working and its gateway session closes with 4004.
    let mut live = session(&server.addr, &token, NO_INTENTS).await;
    let (status, _) = call(
        &base,
        "POST",
        "/auth/logout".into(),
        &token,
        json!({"provider": null}),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(close_code(&mut live).await, 4004);
    let (status, _) = call(&base, "GET", "/users/@me".into(), &token, Value::Null).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_location_metadata_and_errors() {
    let server = Server::on_fixture_async().await;
    let base = server.base();
    let (status, meta) = call(
        &base,
        "GET",
        "/auth/location-metadata".into(),
        "",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(meta["consent_required"], false);
    assert!(meta["country_code"].is_string());
    assert!(meta["promotional_email_opt_in"]["required"].is_boolean());
    let (status, taken) = call(
        &base,
        "POST",
        "/auth/register".into(),
        "",
        json!({"email": "ALICE@example.com", "password": "long-enough", "global_name": "A"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        taken["errors"]["email"]["_errors"][0]["code"],
        "EMAIL_ALREADY_REGISTERED"
    );
    // No username: one is picked; date of birth and consent as the client sends them.
    let (status, made) = call(
        &base,
        "POST",
        "/auth/register".into(),
        "",
        json!({"email": "zed@example.com", "password": "long-enough", "global_name": "Zed",
               "consent": true, "date_of_birth": "1990-01-02"}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let (_, me) = call(
        &base,
        "GET",
        "/users/@me".into(),
        made["token"].as_str().unwrap(),
        Value::Null,
    )
    .await;
    assert_eq!(me["global_name"], "Zed");
    assert!(me["username"].as_str().unwrap().starts_with("zed"));
    let (status, bad) = call(
        &base,
        "POST",
        "/auth/register".into(),
        "",
        json!({"email": "y@example.com", "password": "long-enough", "username": "yy",
               "consent": false, "date_of_birth": "soon"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(bad["errors"]["consent"].is_object());
    assert!(bad["errors"]["date_of_birth"].is_object());
    let (status, fingerprint) =
        call(&base, "POST", "/auth/fingerprint".into(), "", json!({})).await;
    assert_eq!(status, 200);
    assert!(fingerprint["fingerprint"].as_str().unwrap().contains('.'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relationships_reach_both_sides_and_notes_persist() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fixture = FIXTURE.to_string();
    let server = {
        let (data, fixture) = (data.clone(), fixture.clone());
        tokio::task::spawn_blocking(move || {
            Server::start_in(&data, Some(&fixture), &["--rate-limit", "off"]).unwrap()
        })
        .await
        .unwrap()
    };
    let base = server.base();
    let mut alice = session(&server.addr, ALICE, NO_INTENTS).await;
    let mut carol = session(&server.addr, CAROL, NO_INTENTS).await;
    request_accept_and_errors(&base, &mut alice, &mut carol).await;
    nickname_note_and_block(&base, &mut alice).await;
    drop((alice, carol));

    // After a restart everything is still there.
    let server = server.restart_async(&data, &["--rate-limit", "off"]).await;
    let base = server.base();
    check_after_restart(&server, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_count_real_mentions_and_reach_other_sessions() {
    let server = Server::on_fixture_async().await;
    let base = server.base();
    let post = |content: String| {
        let base = base.clone();
        async move {
            let (status, message) = call(
                &base,
                "POST",
                format!("/channels/{GENERAL}/messages"),
                BOB,
                json!({"content": content}),
            )
            .await;
            assert_eq!(status, 200, "{message}");
            message["id"].as_str().unwrap().to_string()
        }
    };
    let first = post("nothing for alice".into()).await;
    post(format!("hey <@{ALICE_ID}>")).await;
    post("@everyone look".into()).await;
    post(format!("mods <@&{MODS_ROLE}>")).await;
    post(format!("bob himself <@{BOB_ID}>")).await;
    // Alice's second session sees the ack made on the first.
    let mut other = session(&server.addr, ALICE, NO_INTENTS).await;
    let (status, body) = call(
        &base,
        "POST",
        format!("/channels/{GENERAL}/messages/{first}/ack"),
        ALICE,
        json!({"token": null}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"token": null}));
    let (ack, _) = next_dispatch(&mut other, |n| n == "MESSAGE_ACK").await;
    assert_eq!(ack["channel_id"], GENERAL);
    assert_eq!(ack["message_id"], first.as_str());
    assert_eq!(
        ack["mention_count"], 3,
        "user, @everyone and role mentions after the ack"
    );
    let first_version = ack["version"].as_u64().unwrap();
    // Bob's own mention of himself does not count for alice; a manual ack sets the count.
    let (status, _) = call(
        &base,
        "POST",
        format!("/channels/{GENERAL}/messages/{first}/ack"),
        ALICE,
        json!({"manual": true, "mention_count": 1}),
    )
    .await;
    assert_eq!(status, 200);
    let (ack, _) = next_dispatch(&mut other, |n| n == "MESSAGE_ACK").await;
    assert_eq!(
        (ack["mention_count"].clone(), ack["manual"].clone()),
        (json!(1), json!(true))
    );
    assert!(ack["version"].as_u64().unwrap() > first_version);
    // Guild ack: everything read.
    let (status, _) = call(
        &base,
        "POST",
        format!("/guilds/{GUILD}/ack"),
        ALICE,
        json!({}),
    )
    .await;
    assert_eq!(status, 204);
    let (ack, _) = next_dispatch(&mut other, |n| n == "MESSAGE_ACK").await;
    assert_eq!(ack["mention_count"], 0);
    bulk_pins_and_errors(&base, &mut other, &first).await;
}

fn protos(args: &[&str]) -> String {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/protos/bin/python");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/settings_proto.py"
    );
    let output = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("run scripts/setup-test-deps for .venv/protos");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_protos_round_trip_with_the_published_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            Server::start_in(&data, Some(FIXTURE), &["--rate-limit", "off"]).unwrap()
        })
        .await
        .unwrap()
    };
    let base = server.base();
    let (_, empty) = call(
        &base,
        "GET",
        "/users/@me/settings-proto/1".into(),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(empty, json!({"settings": ""}));
    let mut other = session(&server.addr, ALICE, NO_INTENTS).await;
    preloaded_round_trip(&base, &mut other).await;
    let now = legacy_frecency_and_errors(&base).await;
    user_guild_settings(&base, &mut other).await;
    drop(other);
    let server = server.restart_async(&data, &["--rate-limit", "off"]).await;
    let (_, after) = call(
        &server.base(),
        "GET",
        "/users/@me/settings-proto/1".into(),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(after, now);
    let (_, legacy) = call(
        &server.base(),
        "GET",
        "/users/@me/settings".into(),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(legacy["status"], "dnd");
}

/// `me` and `other` become friends.
async fn befriend(base: &str, me: &str, other: &str, other_id: &str, my_id: &str) {
    let (status, _) = call(
        base,
        "PUT",
        format!("/users/@me/relationships/{other_id}"),
        me,
        json!({}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        base,
        "PUT",
        format!("/users/@me/relationships/{my_id}"),
        other,
        json!({}),
    )
    .await;
    assert_eq!(status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_dms_are_created_with_friends_only() {
    let server = Server::on_fixture_async().await;
    let base = server.base();
    befriend(&base, ALICE, BOB, BOB_ID, ALICE_ID).await;
    befriend(&base, ALICE, DAVE, DAVE_ID, ALICE_ID).await;
    let mut bob = session(&server.addr, BOB, NO_INTENTS).await;
    let (status, group) = call(
        &base,
        "POST",
        "/users/@me/channels".into(),
        ALICE,
        json!({"recipients": [BOB_ID, DAVE_ID], "name": "plans"}),
    )
    .await;
    assert_eq!(status, 200, "{group}");
    assert_eq!(group["type"], 3);
    assert_eq!(group["owner_id"], ALICE_ID);
    assert_eq!(group["name"], "plans");
    assert_eq!(group["recipients"].as_array().unwrap().len(), 2);
    let (created, _) = next_dispatch(&mut bob, |n| n == "CHANNEL_CREATE").await;
    assert_eq!(created["id"], group["id"]);
    let ids: Vec<&str> = created["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&ALICE_ID) && ids.contains(&DAVE_ID) && !ids.contains(&BOB_ID));
    // Messages work in it; carol (not a friend) cannot be put in one.
    let (status, _) = call(
        &base,
        "POST",
        format!("/channels/{}/messages", group["id"].as_str().unwrap()),
        BOB,
        json!({"content": "hi all"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &base,
        "POST",
        "/users/@me/channels".into(),
        ALICE,
        json!({"recipients": [BOB_ID, CAROL_ID]}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (403, json!(50007)));
    let many: Vec<String> = (10..21)
        .map(|i| format!("1000000000000000{i:02}"))
        .collect();
    let (status, body) = call(
        &base,
        "POST",
        "/users/@me/channels".into(),
        ALICE,
        json!({"recipients": many}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(30004)));
    // A one-recipient body still opens the 1:1 DM.
    let (status, dm) = call(
        &base,
        "POST",
        "/users/@me/channels".into(),
        ALICE,
        json!({"recipients": [CAROL_ID]}),
    )
    .await;
    assert_eq!((status, dm["type"].clone()), (200, json!(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_seed_account_state_and_the_demo_world_has_friends_with_mfa() {
    let mut fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    fixture["users"][0]["mfa"] = json!({"totp_secret": TOTP_SECRET, "backup_codes": ["abcd1234"]});
    fixture["users"][0]["settings"] = json!({"theme": "light", "status": "idle"});
    fixture["relationships"] = json!([
        {"user_id": ALICE_ID, "other_id": BOB_ID, "type": 1, "nickname": "Bobby"},
        {"user_id": DAVE_ID, "other_id": ALICE_ID, "type": 4},
        {"user_id": CAROL_ID, "other_id": BOB_ID, "type": 2}
    ]);
    fixture["notes"] =
        json!([{"user_id": ALICE_ID, "target_id": BOB_ID, "note": "from the fixture"}]);
    fixture["read_states"] =
        json!([{"user_id": ALICE_ID, "channel_id": GENERAL, "last_message_id": GENERAL}]);
    let text = fixture.to_string();
    let server =
        tokio::task::spawn_blocking(move || Server::start(Some(&text), &["--rate-limit", "off"]))
            .await
            .unwrap();
    let base = server.base();
    let (_, first) = login(&base, "alice@example.com", "hunter2").await;
    assert_eq!(first["mfa"], true);
    let (status, done) = call(
        &base,
        "POST",
        "/auth/mfa/backup".into(),
        "",
        json!({"ticket": first["ticket"], "code": "ABCD1234"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let (_, rels) = call(
        &base,
        "GET",
        "/users/@me/relationships".into(),
        ALICE,
        Value::Null,
    )
    .await;
    let bob = rels
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == BOB_ID)
        .unwrap();
    assert_eq!(
        (bob["type"].clone(), bob["nickname"].clone()),
        (json!(1), json!("Bobby"))
    );
    let dave = rels
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == DAVE_ID)
        .unwrap();
    assert_eq!(dave["type"], 3);
    let (_, carol) = call(
        &base,
        "GET",
        "/users/@me/relationships".into(),
        CAROL,
        Value::Null,
    )
    .await;
    assert_eq!(carol[0]["type"], 2);
    let (_, notes) = call(&base, "GET", "/users/@me/notes".into(), ALICE, Value::Null).await;
    assert_eq!(notes[BOB_ID], "from the fixture");
    let (_, settings) = call(
        &base,
        "GET",
        "/users/@me/settings".into(),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(
        (settings["theme"].clone(), settings["status"].clone()),
        (json!("light"), json!("idle"))
    );
    let (_, proto) = call(
        &base,
        "GET",
        "/users/@me/settings-proto/1".into(),
        ALICE,
        Value::Null,
    )
    .await;
    assert_ne!(proto["settings"], "");
    bad_fixture_and_demo_world().await;
}

/// One phase of the test above it.
async fn enable_totp(server: &Server, base: &str) -> (String, Vec<String>) {
    // Enabling TOTP: the password first (60005 asks for the secret), then secret + code.
    let (status, body) = call(
        base,
        "POST",
        "/users/@me/mfa/totp/enable".into(),
        ALICE,
        json!({"password": "wrong"}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(50035)));
    let (status, body) = call(
        base,
        "POST",
        "/users/@me/mfa/totp/enable".into(),
        ALICE,
        json!({"password": "hunter2"}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(60005)));
    let (status, body) = call(
        base,
        "POST",
        "/users/@me/mfa/totp/enable".into(),
        ALICE,
        json!({"password": "hunter2", "secret": TOTP_SECRET, "code": "000000"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (400, json!(60008)),
        "{body}"
    );
    let mut watcher = session(&server.addr, ALICE, NO_INTENTS).await;
    let (status, enabled) = call(
        base,
        "POST",
        "/users/@me/mfa/totp/enable".into(),
        ALICE,
        json!({"password": "hunter2", "secret": TOTP_SECRET, "code": totp_now(TOTP_SECRET)}),
    )
    .await;
    assert_eq!(status, 200, "{enabled}");
    let token = enabled["token"].as_str().unwrap().to_string();
    assert_ne!(token, ALICE);
    let codes: Vec<String> = enabled["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    // The old token's session is closed with 4004 and the old token stops working.
    assert_eq!(close_code(&mut watcher).await, 4004);
    let (status, _) = call(base, "GET", "/users/@me".into(), ALICE, Value::Null).await;
    assert_eq!(status, 401);
    let (_, me) = call(base, "GET", "/users/@me".into(), &token, Value::Null).await;
    assert_eq!(me["mfa_enabled"], true);

    (token, codes)
}

/// One phase of the test above it.
async fn second_factor_logins(base: &str, token: String, codes: Vec<String>) {
    // Login now needs the second factor.
    let (status, first) = login(base, "alice@example.com", "hunter2").await;
    assert_eq!(status, 200);
    assert_eq!(first["mfa"], true);
    assert_eq!(first["totp"], true);
    assert_eq!(first["sms"], false);
    assert_eq!(first["backup"], true);
    assert!(first["webauthn"].is_null());
    assert!(first.get("token").is_none());
    let ticket = first["ticket"].as_str().unwrap().to_string();
    let (status, wrong) = call(
        base,
        "POST",
        "/auth/mfa/totp".into(),
        "",
        json!({"ticket": ticket, "code": "123456"}),
    )
    .await;
    assert_eq!((status, wrong["code"].clone()), (400, json!(60008)));
    let (status, done) = call(
        base,
        "POST",
        "/auth/mfa/totp".into(),
        "",
        json!({"ticket": ticket, "code": totp_now(TOTP_SECRET)}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["token"], token.as_str());
    assert!(done["user_settings"]["locale"].is_string());
    // A spent ticket is gone.
    let (status, _) = call(
        base,
        "POST",
        "/auth/mfa/totp".into(),
        "",
        json!({"ticket": ticket, "code": totp_now(TOTP_SECRET)}),
    )
    .await;
    assert_eq!(status, 400);
    // A backup code works once.
    let (_, second) = login(base, "alice@example.com", "hunter2").await;
    let ticket = second["ticket"].as_str().unwrap().to_string();
    let (status, _) = call(
        base,
        "POST",
        "/auth/mfa/backup".into(),
        "",
        json!({"ticket": ticket, "code": codes[0]}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, third) = login(base, "alice@example.com", "hunter2").await;
    let ticket = third["ticket"].as_str().unwrap().to_string();
    let (status, reused) = call(
        base,
        "POST",
        "/auth/mfa/backup".into(),
        "",
        json!({"ticket": ticket, "code": codes[0]}),
    )
    .await;
    assert_eq!((status, reused["code"].clone()), (400, json!(60008)));
}

/// One phase of the test above it.
async fn request_accept_and_errors(base: &str, alice: &mut Socket, carol: &mut Socket) {
    // Carol shares no guild with alice: a request by username reaches her anyway.
    let (status, _) = call(
        base,
        "POST",
        "/users/@me/relationships".into(),
        ALICE,
        json!({"username": "carol"}),
    )
    .await;
    assert_eq!(status, 204);
    let (incoming, _) = next_dispatch(carol, |n| n == "RELATIONSHIP_ADD").await;
    assert_eq!(incoming["type"], 3);
    assert_eq!(incoming["id"], ALICE_ID);
    assert_eq!(incoming["user"]["username"], "alice");
    assert_eq!(incoming["should_notify"], true);
    let (outgoing, _) = next_dispatch(alice, |n| n == "RELATIONSHIP_ADD").await;
    assert_eq!(outgoing["type"], 4);
    // Errors as Discord's.
    let (status, body) = call(
        base,
        "PUT",
        format!("/users/@me/relationships/{ALICE_ID}"),
        ALICE,
        json!({}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(80003)));
    let (status, body) = call(
        base,
        "POST",
        "/users/@me/relationships".into(),
        ALICE,
        json!({"username": "nobody-here"}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(80004)));
    let (status, body) = call(
        base,
        "PUT",
        format!("/users/@me/relationships/{BOT_ID}"),
        ALICE,
        json!({}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(80002)));
    let (status, _) = call(
        base,
        "GET",
        "/users/@me/relationships".into(),
        BOT,
        Value::Null,
    )
    .await;
    assert_eq!(status, 403);
    // Carol accepts: both become friends.
    let (status, _) = call(
        base,
        "PUT",
        format!("/users/@me/relationships/{ALICE_ID}"),
        CAROL,
        json!({}),
    )
    .await;
    assert_eq!(status, 204);
    let (friend, _) = next_dispatch(alice, |n| n == "RELATIONSHIP_ADD").await;
    assert_eq!(
        (friend["type"].clone(), friend["id"].clone()),
        (json!(1), json!(CAROL_ID))
    );
    let (friend, _) = next_dispatch(carol, |n| n == "RELATIONSHIP_ADD").await;
    assert_eq!(friend["type"], 1);
    let (status, body) = call(
        base,
        "PUT",
        format!("/users/@me/relationships/{CAROL_ID}"),
        ALICE,
        json!({"type": 1}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(80007)));
}

/// One phase of the test above it.
async fn nickname_note_and_block(base: &str, alice: &mut Socket) {
    // A nickname is private to alice.
    let (status, _) = call(
        base,
        "PATCH",
        format!("/users/@me/relationships/{CAROL_ID}"),
        ALICE,
        json!({"nickname": "Caz"}),
    )
    .await;
    assert_eq!(status, 204);
    let (update, _) = next_dispatch(alice, |n| n == "RELATIONSHIP_UPDATE").await;
    assert_eq!(update["nickname"], "Caz");
    // A note.
    let (status, _) = call(
        base,
        "PUT",
        format!("/users/@me/notes/{CAROL_ID}"),
        ALICE,
        json!({"note": "met at the meetup"}),
    )
    .await;
    assert_eq!(status, 204);
    let (note, _) = next_dispatch(alice, |n| n == "USER_NOTE_UPDATE").await;
    assert_eq!(note, json!({"id": CAROL_ID, "note": "met at the meetup"}));
    // Dave blocks alice: alice's request to him is refused.
    let (status, _) = call(
        base,
        "PUT",
        format!("/users/@me/relationships/{ALICE_ID}"),
        DAVE,
        json!({"type": 2}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        base,
        "PUT",
        format!("/users/@me/relationships/{DAVE_ID}"),
        ALICE,
        json!({}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(80001)));
}

/// One phase of the test above it.
async fn check_after_restart(server: &Server, base: &str) {
    let (_, list) = call(
        base,
        "GET",
        "/users/@me/relationships".into(),
        ALICE,
        Value::Null,
    )
    .await;
    let carol_side = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == CAROL_ID)
        .unwrap()
        .clone();
    assert_eq!(carol_side["type"], 1);
    assert_eq!(carol_side["nickname"], "Caz");
    assert_eq!(carol_side["user"]["username"], "carol");
    let (_, notes) = call(base, "GET", "/users/@me/notes".into(), ALICE, Value::Null).await;
    assert_eq!(notes[CAROL_ID], "met at the meetup");
    let (_, blocks) = call(
        base,
        "GET",
        "/users/@me/relationships".into(),
        DAVE,
        Value::Null,
    )
    .await;
    assert_eq!(blocks[0]["type"], 2);
    // Unfriending removes both sides, each told.
    let mut carol = session(&server.addr, CAROL, NO_INTENTS).await;
    let (status, _) = call(
        base,
        "DELETE",
        format!("/users/@me/relationships/{CAROL_ID}"),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    let (removed, _) = next_dispatch(&mut carol, |n| n == "RELATIONSHIP_REMOVE").await;
    assert_eq!(removed["id"], ALICE_ID);
    let (_, list) = call(
        base,
        "GET",
        "/users/@me/relationships".into(),
        CAROL,
        Value::Null,
    )
    .await;
    assert_eq!(list, json!([]));
    let (status, _) = call(
        base,
        "DELETE",
        format!("/users/@me/relationships/{CAROL_ID}"),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);
}

/// One phase of the test above it.
async fn bulk_pins_and_errors(base: &str, other: &mut Socket, first: &str) {
    // Bulk ack and pins ack.
    let (status, _) = call(base, "POST", "/read-states/ack-bulk".into(), ALICE,
        json!({"read_states": [{"channel_id": GENERAL, "message_id": first, "read_state_type": 0}]})).await;
    assert_eq!(status, 204);
    let (ack, _) = next_dispatch(other, |n| n == "MESSAGE_ACK").await;
    assert_eq!(ack["mention_count"], 3);
    let (status, _) = call(
        base,
        "POST",
        format!("/channels/{GENERAL}/pins/ack"),
        ALICE,
        json!({}),
    )
    .await;
    assert_eq!(status, 204);
    let (pins, _) = next_dispatch(other, |n| n == "CHANNEL_PINS_ACK").await;
    assert_eq!(pins["channel_id"], GENERAL);
    assert!(pins["timestamp"].is_string());
    // Errors: a channel alice cannot see, a bot.
    let (status, body) = call(
        base,
        "POST",
        format!("/channels/{SECRET}/messages/{first}/ack"),
        BOB,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (403, json!(50001)),
        "{body}"
    );
    let (status, _) = call(
        base,
        "POST",
        format!("/channels/{GENERAL}/messages/{first}/ack"),
        BOT,
        json!({}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        base,
        "POST",
        "/read-states/ack-bulk".into(),
        ALICE,
        json!({"read_states": "no"}),
    )
    .await;
    assert_eq!(status, 400);
}

/// One phase of the test above it.
async fn preloaded_round_trip(base: &str, other: &mut Socket) {
    let built = protos(&["build-preloaded"]);
    let (status, patched) = call(
        base,
        "PATCH",
        "/users/@me/settings-proto/1".into(),
        ALICE,
        json!({"settings": built}),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    let (event, _) = next_dispatch(other, |n| n == "USER_SETTINGS_PROTO_UPDATE").await;
    assert_eq!(event["settings"]["type"], 1);
    assert_eq!(event["settings"]["proto"], patched["settings"]);
    let (legacy_event, _) = next_dispatch(other, |n| n == "USER_SETTINGS_UPDATE").await;
    assert_eq!(legacy_event["status"], "idle");
    let read: Value = serde_json::from_str(&protos(&[
        "read-preloaded",
        patched["settings"].as_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(read["status"]["status"], "idle");
    assert_eq!(read["appearance"]["theme"], "THEME_LIGHT");
    assert_eq!(read["localization"]["locale"], "de");
    assert_eq!(read["guild_folders"]["folders"][0]["name"], "Work");
    assert_eq!(read["versions"]["data_version"], 1);
    // The legacy view follows the proto.
    let (_, legacy) = call(
        base,
        "GET",
        "/users/@me/settings".into(),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(legacy["status"], "idle");
    assert_eq!(legacy["theme"], "light");
    assert_eq!(legacy["locale"], "de");
    assert_eq!(legacy["custom_status"]["text"], "testing");
    assert_eq!(legacy["guild_folders"][0]["guild_ids"][0], GUILD);
    // A patch with only appearance replaces appearance and keeps the rest.
    let (_, patched) = call(
        base,
        "PATCH",
        "/users/@me/settings-proto/1".into(),
        ALICE,
        json!({"settings": protos(&["build-appearance"])}),
    )
    .await;
    let read: Value = serde_json::from_str(&protos(&[
        "read-preloaded",
        patched["settings"].as_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(read["appearance"]["theme"], "THEME_MIDNIGHT");
    assert_eq!(read["appearance"]["developer_mode"], true);
    assert_eq!(read["status"]["status"], "idle");
    assert_eq!(read["versions"]["data_version"], 2);
    // An edit made against an older version is dropped.
    let (status, stale) = call(
        base,
        "PATCH",
        "/users/@me/settings-proto/1".into(),
        ALICE,
        json!({"settings": protos(&["build-preloaded"]), "required_data_version": 1}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(stale["out_of_date"], true);
    assert_eq!(stale["settings"], patched["settings"]);
}

/// One phase of the test above it.
async fn legacy_frecency_and_errors(base: &str) -> Value {
    // The legacy route writes through to the proto.
    let (status, _) = call(
        base,
        "PATCH",
        "/users/@me/settings".into(),
        ALICE,
        json!({"status": "dnd", "theme": "dark"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, now) = call(
        base,
        "GET",
        "/users/@me/settings-proto/1".into(),
        ALICE,
        Value::Null,
    )
    .await;
    let read: Value = serde_json::from_str(&protos(&[
        "read-preloaded",
        now["settings"].as_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(read["status"]["status"], "dnd");
    assert_eq!(read["appearance"]["theme"], "THEME_DARK");
    assert_eq!(read["appearance"]["developer_mode"], true);
    // Frecency.
    let (status, frecency) = call(
        base,
        "PATCH",
        "/users/@me/settings-proto/2".into(),
        ALICE,
        json!({"settings": protos(&["build-frecency"])}),
    )
    .await;
    assert_eq!(status, 200);
    let read: Value = serde_json::from_str(&protos(&[
        "read-frecency",
        frecency["settings"].as_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(
        read["favorite_gifs"]["gifs"]["https://example.com/cat.gif"]["width"],
        320
    );
    // Errors.
    let (status, _) = call(
        base,
        "PATCH",
        "/users/@me/settings-proto/1".into(),
        ALICE,
        json!({"settings": "%%%"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        base,
        "PATCH",
        "/users/@me/settings-proto/1".into(),
        ALICE,
        json!({"settings": "/////w=="}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        base,
        "GET",
        "/users/@me/settings-proto/9".into(),
        ALICE,
        Value::Null,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        base,
        "PATCH",
        "/users/@me/settings".into(),
        ALICE,
        json!({"theme": "purple"}),
    )
    .await;
    assert_eq!(status, 400);
    now
}

/// One phase of the test above it.
async fn user_guild_settings(base: &str, other: &mut Socket) {
    // User guild settings, and the DM settings under @me.
    let (status, settings) = call(
        base,
        "PATCH",
        format!("/users/@me/guilds/{GUILD}/settings"),
        ALICE,
        json!({"muted": true, "message_notifications": 1,
               "channel_overrides": {GENERAL: {"muted": true, "message_notifications": 2}}}),
    )
    .await;
    assert_eq!(status, 200, "{settings}");
    let (event, _) = next_dispatch(other, |n| n == "USER_GUILD_SETTINGS_UPDATE").await;
    assert_eq!(event["guild_id"], GUILD);
    assert_eq!(event["muted"], true);
    assert_eq!(event["mobile_push"], true);
    assert_eq!(event["channel_overrides"][0]["channel_id"], GENERAL);
    assert_eq!(event["channel_overrides"][0]["message_notifications"], 2);
    let (status, dms) = call(
        base,
        "PATCH",
        "/users/@me/guilds/@me/settings".into(),
        ALICE,
        json!({"suppress_everyone": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(dms["guild_id"].is_null());
    assert!(dms["version"].as_u64().unwrap() > settings["version"].as_u64().unwrap());
    let (status, _) = call(
        base,
        "PATCH",
        format!("/users/@me/guilds/{GUILD}/settings"),
        CAROL,
        json!({"muted": true}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        base,
        "PATCH",
        format!("/users/@me/guilds/{GUILD}/settings"),
        ALICE,
        json!({"message_notifications": 9}),
    )
    .await;
    assert_eq!(status, 400);
}

/// One phase of the test above it.
async fn bad_fixture_and_demo_world() {
    // A bad fixture names the field.
    let mut bad: Value = serde_json::from_str(FIXTURE).unwrap();
    bad["relationships"] = json!([{"user_id": ALICE_ID, "other_id": "999", "type": 1}]);
    let text = bad.to_string();
    let error = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        Server::start_in(&dir.path().join("data"), Some(&text), &[])
            .err()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(error.contains("$.relationships[0].other_id"), "{error}");

    // The demo world: demo and friend are friends; friend logs in with MFA.
    let demo = tokio::task::spawn_blocking(|| Server::start(None, &["--rate-limit", "off"]))
        .await
        .unwrap();
    let base = demo.base();
    let (_, plain) = login(&base, "demo@example.com", "demo-password").await;
    let demo_token = plain["token"].as_str().unwrap().to_string();
    let (_, rels) = call(
        &base,
        "GET",
        "/users/@me/relationships".into(),
        &demo_token,
        Value::Null,
    )
    .await;
    assert_eq!(rels[0]["type"], 1);
    assert_eq!(rels[0]["user"]["username"], "friend");
    let (_, ticket) = login(&base, "friend@example.com", "friend-password").await;
    assert_eq!(ticket["mfa"], true);
    let (status, _) = call(
        &base,
        "POST",
        "/auth/mfa/totp".into(),
        "",
        json!({"ticket": ticket["ticket"], "code": totp_now("KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU")}),
    )
    .await;
    assert_eq!(status, 200);
}
