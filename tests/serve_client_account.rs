//! The official client's account routes, second part, on the built binary: group DMs (rename,
//! icon, owner transfer, adding, removing and leaving, with CHANNEL_UPDATE and
//! CHANNEL_RECIPIENT_ADD/REMOVE on the others' sessions and Discord's system messages), blocked
//! users (1:1 DMs refused with 50007 both ways, left out of the recent-mentions inbox and of
//! the mention counts), SMS and WebAuthn MFA, the desktop updater's module routes, and upload
//! limits (413 with 40005 above the request limit or a file's, 50045 for an image over its own).
mod account_support;
mod serve_routes_gateway_support;
mod serve_support;

use std::time::Duration;

use account_support::TOTP_SECRET;
use base64::Engine;
use serde_json::{json, Value};
use serve_routes_gateway_support::{call, next_dispatch, session, Socket};
use serve_support::*;

/// Intents a user client does not send; user sessions get their events regardless.
const NO_INTENTS: u64 = 0;
/// The control token of the servers started with `--control`.
const CONTROL: &str = "account-control-token";

/// `me` and `other` become friends.
async fn befriend(base: &str, me: &str, other: &str, other_id: &str, my_id: &str) {
    for (token, target) in [(me, other_id), (other, my_id)] {
        let (status, body) = call(
            base,
            "PUT",
            format!("/users/@me/relationships/{target}"),
            token,
            json!({}),
        )
        .await;
        assert_eq!(status, 204, "{body}");
    }
}

/// The next `name` dispatch on `ws` that `wanted` accepts (others are skipped).
async fn wait_for(ws: &mut Socket, name: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        let (data, _) = next_dispatch(ws, |n| n == name).await;
        if wanted(&data) {
            return data;
        }
    }
}

/// The next system message of `kind` on `ws`.
async fn next_message(ws: &mut Socket, kind: i64) -> Value {
    wait_for(ws, "MESSAGE_CREATE", |m| m["type"] == kind).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_dms_are_renamed_handed_over_and_left() {
    let server = Server::on_fixture_async().await;
    let base = server.base();
    befriend(&base, ALICE, BOB, BOB_ID, ALICE_ID).await;
    befriend(&base, ALICE, DAVE, DAVE_ID, ALICE_ID).await;
    let (status, group) = call(
        &base,
        "POST",
        "/users/@me/channels".into(),
        ALICE,
        json!({"recipients": [BOB_ID, DAVE_ID]}),
    )
    .await;
    assert_eq!(status, 200, "{group}");
    let group_id = group["id"].as_str().unwrap().to_string();
    let at = format!("/channels/{group_id}");
    let mut bob = session(&server.addr, BOB, NO_INTENTS).await;
    let mut dave = session(&server.addr, DAVE, NO_INTENTS).await;

    // Anyone in it renames it: CHANNEL_UPDATE to the others, a CHANNEL_NAME_CHANGE message.
    let (status, renamed) = call(&base, "PATCH", at.clone(), BOB, json!({"name": "trip"})).await;
    assert_eq!(
        (status, renamed["name"].clone()),
        (200, json!("trip")),
        "{renamed}"
    );
    assert_eq!(renamed["owner_id"], ALICE_ID);
    let update = wait_for(&mut dave, "CHANNEL_UPDATE", |_| true).await;
    assert_eq!(
        (update["id"].as_str(), update["name"].as_str()),
        (Some(group_id.as_str()), Some("trip"))
    );
    let notice = next_message(&mut dave, 4).await;
    assert_eq!(notice["content"], "trip");
    assert_eq!(notice["author"]["id"], BOB_ID);
    // The icon: CHANNEL_ICON_CHANGE, and the CDN serves it.
    let (status, iconed) = call(&base, "PATCH", at.clone(), DAVE, json!({"icon": PIXEL_PNG})).await;
    assert_eq!(status, 200, "{iconed}");
    let hash = iconed["icon"].as_str().expect("an icon hash").to_string();
    assert_eq!(next_message(&mut bob, 5).await["author"]["id"], DAVE_ID);
    let icon = reqwest::get(format!(
        "http://{}/channel-icons/{group_id}/{hash}.png",
        server.addr
    ))
    .await
    .unwrap();
    assert_eq!(icon.status(), 200);
    // Bad names and icons, and ownership only the owner hands over, to someone inside.
    let long = "x".repeat(101);
    for (token, body, status, code) in [
        (BOB, json!({"name": long}), 400, 50035),
        (
            BOB,
            json!({"icon": "data:image/png;base64,AAAA"}),
            400,
            50035,
        ),
        (BOB, json!({"owner": BOB_ID}), 403, 50013),
        (ALICE, json!({"owner": CAROL_ID}), 400, 50035),
        (CAROL, json!({"name": "x"}), 403, 50001),
    ] {
        let (got, answer) = call(&base, "PATCH", at.clone(), token, body.clone()).await;
        assert_eq!(
            (got, answer["code"].clone()),
            (status, json!(code)),
            "{body}: {answer}"
        );
    }
    let (status, handed) = call(&base, "PATCH", at.clone(), ALICE, json!({"owner": BOB_ID})).await;
    assert_eq!(
        (status, handed["owner_id"].clone()),
        (200, json!(BOB_ID)),
        "{handed}"
    );
    wait_for(&mut dave, "CHANNEL_UPDATE", |c| c["owner_id"] == BOB_ID).await;
    // Removing the name leaves an empty CHANNEL_NAME_CHANGE.
    let (status, _) = call(&base, "PATCH", at.clone(), ALICE, json!({"name": ""})).await;
    assert_eq!(status, 200);
    wait_for(&mut dave, "MESSAGE_CREATE", |m| {
        m["type"] == 4 && m["content"] == ""
    })
    .await;

    // The new owner adds carol (a RECIPIENT_ADD message naming her) and removes her again.
    let (status, body) = call(
        &base,
        "PUT",
        format!("{at}/recipients/{CAROL_ID}"),
        BOB,
        json!({}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let added = wait_for(&mut dave, "CHANNEL_RECIPIENT_ADD", |_| true).await;
    assert_eq!(added["user"]["id"], CAROL_ID);
    let notice = next_message(&mut dave, 1).await;
    assert_eq!(notice["mentions"][0]["id"], CAROL_ID);
    let (status, _) = call(
        &base,
        "DELETE",
        format!("{at}/recipients/{CAROL_ID}"),
        BOB,
        json!({}),
    )
    .await;
    assert_eq!(status, 204);
    let removed = wait_for(&mut dave, "CHANNEL_RECIPIENT_REMOVE", |_| true).await;
    assert_eq!(removed["user"]["id"], CAROL_ID);
    let notice = next_message(&mut dave, 2).await;
    assert_eq!(
        (
            notice["author"]["id"].clone(),
            notice["mentions"][0]["id"].clone()
        ),
        (json!(BOB_ID), json!(CAROL_ID))
    );

    // Leaving is DELETE /channels/{id}: the channel object back, CHANNEL_DELETE to the one who
    // left, RECIPIENT_REMOVE to the others; the owner leaving hands the group on.
    let (status, left) = call(&base, "DELETE", at.clone(), BOB, json!({})).await;
    assert_eq!(
        (status, left["id"].clone()),
        (200, json!(group_id)),
        "{left}"
    );
    let gone = wait_for(&mut bob, "CHANNEL_DELETE", |_| true).await;
    assert_eq!(gone["id"], group_id.as_str());
    wait_for(&mut dave, "CHANNEL_RECIPIENT_REMOVE", |r| {
        r["user"]["id"] == BOB_ID
    })
    .await;
    wait_for(&mut dave, "CHANNEL_UPDATE", |c| c["owner_id"] == ALICE_ID).await;
    let (status, answer) = call(&base, "GET", at.clone(), BOB, json!({})).await;
    assert_eq!((status, answer["code"].clone()), (403, json!(50001)));
    // A silent leave writes no system message.
    let (status, _) = call(
        &base,
        "DELETE",
        format!("{at}?silent=true"),
        DAVE,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, messages) = call(&base, "GET", format!("{at}/messages"), ALICE, json!({})).await;
    assert_eq!(status, 200);
    let kinds: Vec<i64> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_i64().unwrap())
        .collect();
    assert_eq!(kinds, vec![2, 2, 1, 4, 5, 4], "newest first");
    // Alone in it, alice leaves the last: the group is gone.
    let (status, _) = call(&base, "DELETE", at.clone(), ALICE, json!({})).await;
    assert_eq!(status, 200);
    let (status, answer) = call(&base, "GET", at.clone(), ALICE, json!({})).await;
    assert_eq!((status, answer["code"].clone()), (404, json!(10003)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_users_cannot_dm_and_do_not_notify() {
    let server = Server::on_fixture_async().await;
    let base = server.base();
    let (status, dm) = call(
        &base,
        "POST",
        "/users/@me/channels".into(),
        BOB,
        json!({"recipient_id": DAVE_ID}),
    )
    .await;
    assert_eq!(status, 200);
    let dm_id = dm["id"].as_str().unwrap().to_string();
    let say = |token: &'static str, channel: String, content: String| {
        let base = base.clone();
        async move {
            call(
                &base,
                "POST",
                format!("/channels/{channel}/messages"),
                token,
                json!({"content": content}),
            )
            .await
        }
    };
    let (status, _) = say(DAVE, dm_id.clone(), "hi bob".into()).await;
    assert_eq!(status, 200);
    // A guild mention before the block is in bob's inbox.
    let (status, before) = say(DAVE, GENERAL.into(), format!("<@{BOB_ID}> look")).await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &base,
        "PUT",
        format!("/users/@me/relationships/{DAVE_ID}"),
        BOB,
        json!({"type": 2}),
    )
    .await;
    assert_eq!(status, 204);
    // Neither side of the 1:1 DM can write now.
    for (token, content) in [(DAVE, "are you there?"), (BOB, "no")] {
        let (status, answer) = say(token, dm_id.clone(), content.into()).await;
        assert_eq!(
            (status, answer["code"].clone()),
            (403, json!(50007)),
            "{answer}"
        );
    }
    // Nor can bob put dave in a group DM.
    let (_, bob_alice) = call(
        &base,
        "POST",
        "/users/@me/channels".into(),
        BOB,
        json!({"recipient_id": ALICE_ID}),
    )
    .await;
    let bob_alice = bob_alice["id"].as_str().unwrap().to_string();
    let (status, answer) = call(
        &base,
        "PUT",
        format!("/channels/{bob_alice}/recipients/{DAVE_ID}"),
        BOB,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, answer["code"].clone()),
        (403, json!(50007)),
        "{answer}"
    );
    // Guild messages still post, but a blocked author's mention neither counts nor reaches the
    // inbox; another user's does.
    let (status, blocked_mention) = say(DAVE, GENERAL.into(), format!("<@{BOB_ID}> hello?")).await;
    assert_eq!(status, 200);
    let (status, alice_mention) = say(ALICE, GENERAL.into(), format!("<@{BOB_ID}> standup")).await;
    assert_eq!(status, 200);
    let (status, inbox) = call(&base, "GET", "/users/@me/mentions".into(), BOB, json!({})).await;
    assert_eq!(status, 200, "{inbox}");
    let ids: Vec<&str> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![alice_mention["id"].as_str().unwrap()], "{inbox}");
    assert!(!ids.contains(&blocked_mention["id"].as_str().unwrap()));
    assert!(!ids.contains(&before["id"].as_str().unwrap()));
    let (status, answer) = call(
        &base,
        "GET",
        "/users/@me/mentions?limit=0".into(),
        BOB,
        json!({}),
    )
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(50035)));
    // Unblocking lets the DM work again and brings dave's mentions back.
    let (status, _) = call(
        &base,
        "DELETE",
        format!("/users/@me/relationships/{DAVE_ID}"),
        BOB,
        json!({}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = say(DAVE, dm_id.clone(), "again".into()).await;
    assert_eq!(status, 200);
    let (_, inbox) = call(
        &base,
        "GET",
        "/users/@me/mentions?limit=2".into(),
        BOB,
        json!({}),
    )
    .await;
    let ids: Vec<&str> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            alice_mention["id"].as_str().unwrap(),
            blocked_mention["id"].as_str().unwrap()
        ]
    );
}

/// A server whose alice has TOTP and a phone with a pinned SMS code, and the control API on.
fn sms_server() -> Server {
    let mut fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    fixture["users"][0]["mfa"] = json!({
        "totp_secret": TOTP_SECRET, "phone": "+15555550185", "sms_code": "424242"
    });
    let text = fixture.to_string();
    Server::start(
        Some(&text),
        &[
            "--rate-limit",
            "off",
            "--control",
            "--control-token",
            CONTROL,
        ],
    )
}

async fn ticket(base: &str) -> String {
    let (status, login) = call(
        base,
        "POST",
        "/auth/login".into(),
        "",
        json!({"login": "alice@example.com", "password": "hunter2"}),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(
        (login["mfa"].clone(), login["sms"].clone()),
        (json!(true), json!(true)),
        "{login}"
    );
    login["ticket"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_codes_finish_mfa_logins_and_webauthn_is_refused() {
    let server = tokio::task::spawn_blocking(sms_server).await.unwrap();
    let base = server.base();
    let first = ticket(&base).await;
    // The code is refused until an SMS was "sent" for this ticket.
    let (status, answer) = call(
        &base,
        "POST",
        "/auth/mfa/sms".into(),
        "",
        json!({"ticket": first, "code": "424242"}),
    )
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(60008)));
    let (status, sent) = call(
        &base,
        "POST",
        "/auth/mfa/sms/send".into(),
        "",
        json!({"ticket": first}),
    )
    .await;
    assert_eq!(
        (status, sent["phone"].clone()),
        (200, json!("+*******0185")),
        "{sent}"
    );
    let (status, answer) = call(
        &base,
        "POST",
        "/auth/mfa/sms".into(),
        "",
        json!({"ticket": first, "code": "000000"}),
    )
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(60008)));
    let (status, done) = call(
        &base,
        "POST",
        "/auth/mfa/sms".into(),
        "",
        json!({"ticket": first, "code": "424242"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let token = done["token"].as_str().unwrap().to_string();
    let (status, me) = call(&base, "GET", "/users/@me".into(), &token, json!({})).await;
    assert_eq!((status, me["id"].clone()), (200, json!(ALICE_ID)));
    // The spent ticket is gone; a bad ticket is a 50035.
    let (status, answer) = call(
        &base,
        "POST",
        "/auth/mfa/sms/send".into(),
        "",
        json!({"ticket": first}),
    )
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(50035)));

    // The control API pins a new code (or draws one) for the next SMS.
    let (status, pinned) = control(&base, json!({"as": "alice", "code": "135790"})).await;
    assert_eq!(
        (status, pinned["phone"].clone()),
        (200, json!("+15555550185")),
        "{pinned}"
    );
    let second = ticket(&base).await;
    call(
        &base,
        "POST",
        "/auth/mfa/sms/send".into(),
        "",
        json!({"ticket": second}),
    )
    .await;
    let (status, _) = call(
        &base,
        "POST",
        "/auth/mfa/sms".into(),
        "",
        json!({"ticket": second, "code": "135790"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, drawn) = control(&base, json!({"as": ALICE_ID})).await;
    let drawn = drawn["code"].as_str().unwrap().to_string();
    assert_eq!((status, drawn.len()), (200, 6));

    // SMS off (with the password): the login offers TOTP only and sms/send is refused.
    let (status, answer) = call(
        &base,
        "POST",
        "/users/@me/mfa/sms/disable".into(),
        &token,
        json!({"password": "nope"}),
    )
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(50035)));
    let (status, _) = call(
        &base,
        "POST",
        "/users/@me/mfa/sms/disable".into(),
        &token,
        json!({"password": "hunter2"}),
    )
    .await;
    assert_eq!(status, 204);
    let (_, login) = call(
        &base,
        "POST",
        "/auth/login".into(),
        "",
        json!({"login": "alice@example.com", "password": "hunter2"}),
    )
    .await;
    assert_eq!(login["sms"], false);
    let third = login["ticket"].as_str().unwrap().to_string();
    let (status, answer) = call(
        &base,
        "POST",
        "/auth/mfa/sms/send".into(),
        "",
        json!({"ticket": third}),
    )
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(60001)));
    let (status, _) = call(
        &base,
        "POST",
        "/users/@me/mfa/sms/enable".into(),
        &token,
        json!({"password": "hunter2"}),
    )
    .await;
    assert_eq!(status, 204);
    // Bob has no MFA at all: enabling SMS is refused.
    let (status, answer) = call(
        &base,
        "POST",
        "/users/@me/mfa/sms/enable".into(),
        BOB,
        json!({"password": "x"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");

    // WebAuthn: challenges have Discord's shape; no authenticator exists, so assertions fail.
    let (status, start) = call(
        &base,
        "POST",
        "/auth/passwordless/start".into(),
        "",
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let options: Value = serde_json::from_str(start["challenge"].as_str().unwrap()).unwrap();
    assert_eq!(options["publicKey"]["rpId"], "discord.com");
    let challenge = options["publicKey"]["challenge"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(challenge)
            .unwrap()
            .len(),
        32
    );
    let (_, conditional) = call(
        &base,
        "POST",
        "/auth/conditional/start".into(),
        "",
        json!({}),
    )
    .await;
    let options: Value = serde_json::from_str(conditional["challenge"].as_str().unwrap()).unwrap();
    assert_eq!(options["mediation"], "conditional");
    let (status, answer) = call(
        &base,
        "POST",
        "/auth/conditional/finish".into(),
        "",
        json!({"ticket": conditional["ticket"], "credential": "{}"}),
    )
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(60008)));
    let (status, answer) = call(
        &base,
        "POST",
        "/auth/conditional/finish".into(),
        "",
        json!({}),
    )
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(50035)));
    let (status, list) = call(
        &base,
        "GET",
        "/users/@me/mfa/webauthn/credentials".into(),
        &token,
        json!({}),
    )
    .await;
    assert_eq!((status, list), (200, json!([])));
    let fourth = ticket(&base).await;
    let (status, answer) = call(
        &base,
        "POST",
        "/auth/mfa/webauthn".into(),
        "",
        json!({"ticket": fourth, "code": "{}"}),
    )
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(60008)));
}

/// `POST /_mitm/sms` with the control token.
async fn control(base: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/_mitm/sms"))
        .header("Authorization", format!("Control {CONTROL}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[test]
fn module_routes_answer_on_the_api() {
    let server = Server::on_fixture();
    let root = format!("http://{}", server.addr);
    let get = |path: &str| {
        let response = reqwest::blocking::get(format!("{root}{path}")).unwrap();
        let status = response.status().as_u16();
        let source = response
            .headers()
            .get("x-discord-mitm-source")
            .map(|v| v.to_str().unwrap().to_string());
        (status, source, response.text().unwrap())
    };
    for path in [
        "/api/modules/stable/versions.json",
        "/api/modules/canary/versions.json?platform=win&host_version=1.0.9",
        "/api/v9/modules/ptb/versions.json?platform=linux",
    ] {
        let (status, _, body) = get(path);
        assert_eq!((status, body.as_str()), (200, "{}"), "{path}");
    }
    for path in [
        "/api/modules/nightly/versions.json",
        "/api/modules/stable/versions.json?platform=amiga",
        "/api/modules/stable/discord_voice/1?platform=win&host_version=1.0.9",
    ] {
        let (status, _, body) = get(path);
        assert_eq!(status, 404, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], 0, "{path}");
    }
}

/// A PNG header padded past `size` bytes (the size check comes before decoding).
fn oversized_png(size: usize) -> String {
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(PIXEL_PNG.trim_start_matches("data:image/png;base64,"))
        .unwrap();
    bytes.resize(size, 0);
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// A multipart message with one file of `size` bytes.
fn post_file(root: &str, size: usize) -> (u16, Value) {
    let boundary = "----discordmitmaccountboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n",
        json!({"content": "file"})
    )
    .into_bytes();
    body.resize(body.len() + size, b'x');
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .post(format!("{root}/api/v10/channels/{GENERAL}/messages"))
        .header("authorization", ALICE)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn oversized_uploads_answer_413_or_50045_as_discord_does() {
    const MIB: usize = 1024 * 1024;
    // Default limits: an 8 MiB request limit, so an 11 MiB avatar is refused as a request
    // (413, 40005) before anything reads it; an emoji over 256 KiB is a 50045.
    let server = Server::on_fixture();
    let api = server.api();
    let root = format!("http://{}", server.addr);
    let avatar = oversized_png(11 * MIB);
    expect_error(
        &api.patch("/users/@me", ALICE, json!({"avatar": avatar})),
        413,
        40005,
    );
    let emoji = oversized_png(300 * 1024);
    expect_error(
        &api.post(
            &format!("/guilds/{GUILD}/emojis"),
            ALICE,
            json!({"name": "big", "image": emoji}),
        ),
        400,
        50045,
    );
    assert_eq!(post_file(&root, 9 * MIB).0, 413);
    drop(server);

    // With room for bigger requests (`--max-body`), the image's own 10 MiB limit answers:
    // 50045, as Discord does; a file over Discord's 10 MiB per-file limit is still a 413.
    let server = Server::start(
        Some(FIXTURE),
        &["--rate-limit", "off", "--max-body", "33554432"],
    );
    let api = server.api();
    let root = format!("http://{}", server.addr);
    expect_error(
        &api.patch("/users/@me", ALICE, json!({"avatar": avatar})),
        400,
        50045,
    );
    let (status, body) = post_file(&root, 11 * MIB);
    assert_eq!(
        (status, body["code"].clone()),
        (413, json!(40005)),
        "{body}"
    );
    let (status, body) = post_file(&root, 9 * MIB);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attachments"][0]["size"], 9 * MIB);
}
