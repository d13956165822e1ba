//! The official client's account routes, second part, on the built binary: group DMs (rename,
//! icon, owner transfer, adding, removing and leaving, with CHANNEL_UPDATE and
//! CHANNEL_RECIPIENT_ADD/REMOVE on the others' sessions and Discord's system messages), blocked
//! users (1:1 DMs refused with 50007 both ways, left out of the recent-mentions inbox and of
//! the mention counts), group DMs only taking friends and their blocked-user warning, removing a
//! recent mention, SMS MFA and WebAuthn without a key (the keys themselves are in
//! `serve_client_webauthn.rs`), the desktop updater's module routes, and upload limits (413
//! with 40005 above the request limit or a file's, 50045 for an image over its own, 50138 for a
//! role icon over 256 KiB).
mod account_support;
mod serve_routes_gateway_support;
mod serve_support;

use std::time::Duration;

use account_support::TOTP_SECRET;
use base64::Engine;
use serde_json::{json, Value};
use serve_routes_gateway_support::{next_dispatch, session, Rest, Socket};
use serve_support::*;

/// Intents a user client does not send; user sessions get their events regardless.
const NO_INTENTS: u64 = 0;
/// The control token of the servers started with `--control`.
const CONTROL: &str = "account-control-token";

impl Rest {
    /// `me` and `other` become friends.
    async fn befriend(&self, me: &str, other: &str, other_id: &str, my_id: &str) {
        for (token, target) in [(me, other_id), (other, my_id)] {
            self.expect(
                "PUT",
                &format!("/users/@me/relationships/{target}"),
                token,
                json!({}),
                204,
            )
            .await;
        }
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

/// A group DM of alice (its owner), bob and dave, with bob's and dave's sessions.
struct Group {
    rest: Rest,
    addr: String,
    id: String,
    at: String,
    bob: Socket,
    dave: Socket,
}

/// Alice befriends bob and dave and opens a group DM with both; the REST client and its id.
async fn group_of_alice_bob_and_dave(server: &Server) -> (Rest, String) {
    let rest = Rest {
        base: server.base(),
    };
    rest.befriend(ALICE, BOB, BOB_ID, ALICE_ID).await;
    rest.befriend(ALICE, DAVE, DAVE_ID, ALICE_ID).await;
    let group = rest
        .expect(
            "POST",
            "/users/@me/channels",
            ALICE,
            json!({"recipients": [BOB_ID, DAVE_ID]}),
            200,
        )
        .await;
    let id = group["id"].as_str().unwrap().to_string();
    (rest, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_dms_are_renamed_handed_over_and_left() {
    let server = Server::on_fixture_async().await;
    let (rest, id) = group_of_alice_bob_and_dave(&server).await;
    let mut group = Group {
        rest,
        addr: server.addr.clone(),
        at: format!("/channels/{id}"),
        id,
        bob: session(&server.addr, BOB, NO_INTENTS).await,
        dave: session(&server.addr, DAVE, NO_INTENTS).await,
    };
    rename_and_icon(&mut group).await;
    owner_and_refusals(&mut group).await;
    add_and_remove(&mut group).await;
    leave(&mut group).await;
}

/// Anyone in the group renames it or changes its icon: CHANNEL_UPDATE to the others and the
/// CHANNEL_NAME_CHANGE / CHANNEL_ICON_CHANGE messages; the CDN serves the icon.
async fn rename_and_icon(g: &mut Group) {
    let renamed = g
        .rest
        .expect("PATCH", &g.at, BOB, json!({"name": "trip"}), 200)
        .await;
    assert_eq!(
        (renamed["name"].as_str(), renamed["owner_id"].as_str()),
        (Some("trip"), Some(ALICE_ID))
    );
    let update = wait_for(&mut g.dave, "CHANNEL_UPDATE", |_| true).await;
    assert_eq!(
        (update["id"].as_str(), update["name"].as_str()),
        (Some(g.id.as_str()), Some("trip"))
    );
    let notice = next_message(&mut g.dave, 4).await;
    assert_eq!(
        (notice["content"].as_str(), notice["author"]["id"].as_str()),
        (Some("trip"), Some(BOB_ID))
    );
    let iconed = g
        .rest
        .expect("PATCH", &g.at, DAVE, json!({"icon": PIXEL_PNG}), 200)
        .await;
    let hash = iconed["icon"].as_str().expect("an icon hash").to_string();
    assert_eq!(next_message(&mut g.bob, 5).await["author"]["id"], DAVE_ID);
    let icon = reqwest::get(format!(
        "http://{}/channel-icons/{}/{hash}.png",
        g.addr, g.id
    ))
    .await
    .unwrap();
    assert_eq!(icon.status(), 200);
}

/// Bad names and icons are 50035; only the owner hands the group over, to someone inside;
/// removing the name leaves an empty CHANNEL_NAME_CHANGE.
async fn owner_and_refusals(g: &mut Group) {
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
        g.rest
            .refuse("PATCH", &g.at, token, body, status, code)
            .await;
    }
    let handed = g
        .rest
        .expect("PATCH", &g.at, ALICE, json!({"owner": BOB_ID}), 200)
        .await;
    assert_eq!(handed["owner_id"], BOB_ID);
    wait_for(&mut g.dave, "CHANNEL_UPDATE", |c| c["owner_id"] == BOB_ID).await;
    g.rest
        .expect("PATCH", &g.at, ALICE, json!({"name": ""}), 200)
        .await;
    wait_for(&mut g.dave, "MESSAGE_CREATE", |m| {
        m["type"] == 4 && m["content"] == ""
    })
    .await;
}

/// The new owner adds carol once she is his friend (50007 before: a group DM takes friends
/// only; CHANNEL_RECIPIENT_ADD, a RECIPIENT_ADD message naming her) and removes her again
/// (CHANNEL_RECIPIENT_REMOVE, a RECIPIENT_REMOVE message by bob).
async fn add_and_remove(g: &mut Group) {
    let carol = format!("{}/recipients/{CAROL_ID}", g.at);
    g.rest
        .refuse("PUT", &carol, BOB, json!({}), 403, 50007)
        .await;
    g.rest.befriend(BOB, CAROL, CAROL_ID, BOB_ID).await;
    g.rest.expect("PUT", &carol, BOB, json!({}), 204).await;
    let added = wait_for(&mut g.dave, "CHANNEL_RECIPIENT_ADD", |_| true).await;
    assert_eq!(added["user"]["id"], CAROL_ID);
    assert_eq!(
        next_message(&mut g.dave, 1).await["mentions"][0]["id"],
        CAROL_ID
    );
    g.rest.expect("DELETE", &carol, BOB, json!({}), 204).await;
    let removed = wait_for(&mut g.dave, "CHANNEL_RECIPIENT_REMOVE", |_| true).await;
    assert_eq!(removed["user"]["id"], CAROL_ID);
    let notice = next_message(&mut g.dave, 2).await;
    assert_eq!(
        (
            notice["author"]["id"].as_str(),
            notice["mentions"][0]["id"].as_str()
        ),
        (Some(BOB_ID), Some(CAROL_ID))
    );
}

/// Leaving is DELETE /channels/{id}: the channel back, CHANNEL_DELETE to the one who left,
/// CHANNEL_RECIPIENT_REMOVE to the others; an owner who leaves hands the group on, `silent`
/// skips the message, the last one out deletes it.
async fn leave(g: &mut Group) {
    let left = g.rest.expect("DELETE", &g.at, BOB, json!({}), 200).await;
    assert_eq!(left["id"], g.id.as_str());
    assert_eq!(
        wait_for(&mut g.bob, "CHANNEL_DELETE", |_| true).await["id"],
        g.id.as_str()
    );
    wait_for(&mut g.dave, "CHANNEL_RECIPIENT_REMOVE", |r| {
        r["user"]["id"] == BOB_ID
    })
    .await;
    wait_for(&mut g.dave, "CHANNEL_UPDATE", |c| c["owner_id"] == ALICE_ID).await;
    g.rest
        .refuse("GET", &g.at, BOB, json!({}), 403, 50001)
        .await;
    g.rest
        .expect(
            "DELETE",
            &format!("{}?silent=true", g.at),
            DAVE,
            json!({}),
            200,
        )
        .await;
    let messages = g
        .rest
        .expect("GET", &format!("{}/messages", g.at), ALICE, json!({}), 200)
        .await;
    let kinds: Vec<i64> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_i64().unwrap())
        .collect();
    assert_eq!(kinds, vec![2, 2, 1, 4, 5, 4], "newest first");
    g.rest.expect("DELETE", &g.at, ALICE, json!({}), 200).await;
    g.rest
        .refuse("GET", &g.at, ALICE, json!({}), 404, 10003)
        .await;
}

/// The ids of a list of messages.
fn ids(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_users_cannot_dm_and_do_not_notify() {
    let server = Server::on_fixture_async().await;
    let rest = Rest {
        base: server.base(),
    };
    let dm = rest
        .expect(
            "POST",
            "/users/@me/channels",
            BOB,
            json!({"recipient_id": DAVE_ID}),
            200,
        )
        .await;
    let dm_at = format!("/channels/{}/messages", dm["id"].as_str().unwrap());
    let general = format!("/channels/{GENERAL}/messages");
    let say = |content: String| json!({"content": content});
    rest.expect("POST", &dm_at, DAVE, say("hi bob".into()), 200)
        .await;
    let before = rest
        .expect(
            "POST",
            &general,
            DAVE,
            say(format!("<@{BOB_ID}> look")),
            200,
        )
        .await;
    rest.expect(
        "PUT",
        &format!("/users/@me/relationships/{DAVE_ID}"),
        BOB,
        json!({"type": 2}),
        204,
    )
    .await;
    // Neither side of the 1:1 DM can write now, nor can bob put dave in a group DM.
    for token in [DAVE, BOB] {
        rest.refuse("POST", &dm_at, token, say("there?".into()), 403, 50007)
            .await;
    }
    let with_alice = rest
        .expect(
            "POST",
            "/users/@me/channels",
            BOB,
            json!({"recipient_id": ALICE_ID}),
            200,
        )
        .await;
    let add_dave = format!(
        "/channels/{}/recipients/{DAVE_ID}",
        with_alice["id"].as_str().unwrap()
    );
    rest.refuse("PUT", &add_dave, BOB, json!({}), 403, 50007)
        .await;
    inbox_leaves_blocked_authors_out(&rest, &dm_at, &before).await;
}

/// Guild messages still post, but a blocked author's mentions stay out of the inbox until
/// the block is lifted; `before` is a mention dave made before bob blocked him.
async fn inbox_leaves_blocked_authors_out(rest: &Rest, dm_at: &str, before: &Value) {
    let general = format!("/channels/{GENERAL}/messages");
    let say = |content: String| json!({"content": content});
    // Guild messages still post, but a blocked author's mentions stay out of the inbox (all of
    // them, older ones too); another user's are in it.
    let blocked = rest
        .expect(
            "POST",
            &general,
            DAVE,
            say(format!("<@{BOB_ID}> hello?")),
            200,
        )
        .await;
    let alice = rest
        .expect(
            "POST",
            &general,
            ALICE,
            say(format!("<@{BOB_ID}> standup")),
            200,
        )
        .await;
    let inbox = rest
        .expect("GET", "/users/@me/mentions", BOB, json!({}), 200)
        .await;
    assert_eq!(
        ids(&inbox),
        vec![alice["id"].as_str().unwrap().to_string()],
        "{inbox}"
    );
    rest.refuse(
        "GET",
        "/users/@me/mentions?limit=0",
        BOB,
        json!({}),
        400,
        50035,
    )
    .await;
    rest.refuse("GET", "/users/@me/mentions", BOT, json!({}), 403, 20001)
        .await;
    // Unblocking lets the DM work again and brings dave's mentions back.
    rest.expect(
        "DELETE",
        &format!("/users/@me/relationships/{DAVE_ID}"),
        BOB,
        json!({}),
        204,
    )
    .await;
    rest.expect("POST", dm_at, DAVE, say("again".into()), 200)
        .await;
    let inbox = rest
        .expect("GET", "/users/@me/mentions?limit=3", BOB, json!({}), 200)
        .await;
    let expected: Vec<String> = [&alice, &blocked, before]
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids(&inbox), expected);
    let older = rest
        .expect(
            "GET",
            &format!(
                "/users/@me/mentions?before={}",
                blocked["id"].as_str().unwrap()
            ),
            BOB,
            json!({}),
            200,
        )
        .await;
    assert_eq!(
        ids(&older),
        vec![before["id"].as_str().unwrap().to_string()]
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

/// Alice's password login: the MFA answer (checked to offer SMS as `sms`); its ticket.
async fn ticket(rest: &Rest, sms: bool) -> String {
    let login = json!({"login": "alice@example.com", "password": "hunter2"});
    let answer = rest.expect("POST", "/auth/login", "", login, 200).await;
    assert_eq!(
        (answer["mfa"].clone(), answer["sms"].clone()),
        (json!(true), json!(sms)),
        "{answer}"
    );
    answer["ticket"].as_str().unwrap().to_string()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_codes_finish_mfa_logins_and_webauthn_is_refused() {
    let server = tokio::task::spawn_blocking(sms_server).await.unwrap();
    let rest = Rest {
        base: server.base(),
    };
    let token = sms_login(&rest).await;
    control_pins_codes(&rest).await;
    sms_switches(&rest, &token).await;
    webauthn(&rest, &token).await;
}

/// The code is refused until an SMS was "sent" for the ticket, then logs in once; the answer's
/// token works. Alice's token.
async fn sms_login(rest: &Rest) -> String {
    let first = ticket(rest, true).await;
    let code = |code: &str| json!({"ticket": first, "code": code});
    rest.refuse("POST", "/auth/mfa/sms", "", code("424242"), 400, 60008)
        .await;
    let sent = rest
        .expect(
            "POST",
            "/auth/mfa/sms/send",
            "",
            json!({"ticket": first}),
            200,
        )
        .await;
    assert_eq!(sent["phone"], "+*******0185");
    rest.refuse("POST", "/auth/mfa/sms", "", code("000000"), 400, 60008)
        .await;
    let done = rest
        .expect("POST", "/auth/mfa/sms", "", code("424242"), 200)
        .await;
    let token = done["token"].as_str().unwrap().to_string();
    let me = rest
        .expect("GET", "/users/@me", &token, json!({}), 200)
        .await;
    assert_eq!(me["id"], ALICE_ID);
    // The spent ticket is gone: Discord's 60006.
    rest.refuse(
        "POST",
        "/auth/mfa/sms/send",
        "",
        json!({"ticket": first}),
        400,
        60006,
    )
    .await;
    token
}

/// The control API pins the next SMS code, or draws a new one.
async fn control_pins_codes(rest: &Rest) {
    let (status, pinned) = control(&rest.base, json!({"as": "alice", "code": "135790"})).await;
    assert_eq!(
        (status, pinned["phone"].clone()),
        (200, json!("+15555550185")),
        "{pinned}"
    );
    let second = ticket(rest, true).await;
    rest.expect(
        "POST",
        "/auth/mfa/sms/send",
        "",
        json!({"ticket": second}),
        200,
    )
    .await;
    rest.expect(
        "POST",
        "/auth/mfa/sms",
        "",
        json!({"ticket": second, "code": "135790"}),
        200,
    )
    .await;
    let (status, drawn) = control(&rest.base, json!({"as": ALICE_ID})).await;
    assert_eq!(
        (status, drawn["code"].as_str().map(str::len)),
        (200, Some(6)),
        "{drawn}"
    );
    let (status, _) = control(&rest.base, json!({"as": "nobody"})).await;
    assert_eq!(status, 404);
}

/// SMS off (with the password): the login offers TOTP only and sms/send is refused; on again.
async fn sms_switches(rest: &Rest, token: &str) {
    let off = "/users/@me/mfa/sms/disable";
    rest.refuse("POST", off, token, json!({"password": "nope"}), 400, 50035)
        .await;
    rest.expect("POST", off, token, json!({"password": "hunter2"}), 204)
        .await;
    let third = ticket(rest, false).await;
    rest.refuse(
        "POST",
        "/auth/mfa/sms/send",
        "",
        json!({"ticket": third}),
        400,
        60010,
    )
    .await;
    let on = "/users/@me/mfa/sms/enable";
    rest.expect("POST", on, token, json!({"password": "hunter2"}), 204)
        .await;
    ticket(rest, true).await;
    // Bob has no password, so nothing of his changes.
    rest.refuse("POST", on, BOB, json!({"password": "x"}), 400, 50035)
        .await;
}

/// WebAuthn without a registered key: challenges have Discord's shape, and every assertion
/// fails (60008).
async fn webauthn(rest: &Rest, token: &str) {
    let start = rest
        .expect("POST", "/auth/passwordless/start", "", json!({}), 200)
        .await;
    let options: Value = serde_json::from_str(start["challenge"].as_str().unwrap()).unwrap();
    assert_eq!(options["publicKey"]["rpId"], "discord.com");
    let challenge = options["publicKey"]["challenge"].as_str().unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(challenge)
        .unwrap();
    assert_eq!(raw.len(), 32);
    let conditional = rest
        .expect("POST", "/auth/conditional/start", "", json!({}), 200)
        .await;
    let options: Value = serde_json::from_str(conditional["challenge"].as_str().unwrap()).unwrap();
    assert_eq!(options["mediation"], "conditional");
    let finish = json!({"ticket": conditional["ticket"], "credential": "{}"});
    rest.refuse("POST", "/auth/conditional/finish", "", finish, 400, 60008)
        .await;
    rest.refuse(
        "POST",
        "/auth/conditional/finish",
        "",
        json!({}),
        400,
        50035,
    )
    .await;
    let list = rest
        .expect(
            "GET",
            "/users/@me/mfa/webauthn/credentials",
            token,
            json!({}),
            200,
        )
        .await;
    assert_eq!(list, json!([]));
    let fourth = ticket(rest, true).await;
    let assertion = json!({"ticket": fourth, "code": "{}"});
    rest.refuse("POST", "/auth/mfa/webauthn", "", assertion, 400, 60008)
        .await;
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
    let payload = json!({"content": "file"}).to_string();
    let file = vec![b'x'; size];
    let (content_type, body) =
        multipart(&[("payload_json", &payload)], "files[0]", "big.bin", &file);
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .post(format!("{root}/api/v10/channels/{GENERAL}/messages"))
        .header("authorization", ALICE)
        .header("content-type", content_type)
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
    // A role icon over 256 KiB is Discord's 50138; one of exactly 256 KiB is stored; one that
    // is no image is a 50035.
    let role = format!("/guilds/{GUILD}/roles/{MODS_ROLE}");
    expect_error(&api.patch(&role, ALICE, json!({"icon": emoji})), 400, 50138);
    let at_limit = oversized_png(256 * 1024);
    let iconed = expect(&api.patch(&role, ALICE, json!({"icon": at_limit})), 200).clone();
    assert!(iconed["icon"].is_string(), "{iconed}");
    let broken = "data:image/png;base64,AAAA";
    expect_error(
        &api.patch(&role, ALICE, json!({"icon": broken})),
        400,
        50035,
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

/// The Mods role of [`FIXTURE`].
const MODS_ROLE: &str = "200000000000000002";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_dm_blocked_user_warning_is_dismissed_per_user() {
    let server = Server::on_fixture_async().await;
    let (rest, id) = group_of_alice_bob_and_dave(&server).await;
    // Bob blocks dave; the group stays, and bob's copy carries the warning flag, not dismissed.
    rest.expect(
        "PUT",
        &format!("/users/@me/relationships/{DAVE_ID}"),
        BOB,
        json!({"type": 2}),
        204,
    )
    .await;
    let flag = |list: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id.as_str())
            .map(|c| c["blocked_user_warning_dismissed"].clone())
    };
    let list = rest
        .expect("GET", "/users/@me/channels", BOB, json!({}), 200)
        .await;
    assert_eq!(flag(&list), Some(json!(false)), "{list}");
    let mut bob = session(&server.addr, BOB, NO_INTENTS).await;
    let dismiss = format!("/channels/{id}/blocked-user-warning-dismissal");
    rest.expect("POST", &dismiss, BOB, json!({}), 200).await;
    let update = wait_for(&mut bob, "CHANNEL_UPDATE", |c| c["id"] == id.as_str()).await;
    assert_eq!(update["blocked_user_warning_dismissed"], true);
    let list = rest
        .expect("GET", "/users/@me/channels", BOB, json!({}), 200)
        .await;
    assert_eq!(flag(&list), Some(json!(true)));
    // Dismissing is per user: dave's copy is unchanged.
    let list = rest
        .expect("GET", "/users/@me/channels", DAVE, json!({}), 200)
        .await;
    assert_eq!(flag(&list), Some(json!(false)));
    // Outsiders cannot; a 1:1 DM has no such warning.
    rest.refuse("POST", &dismiss, CAROL, json!({}), 403, 50001)
        .await;
    let dm = rest
        .expect(
            "POST",
            "/users/@me/channels",
            ALICE,
            json!({"recipient_id": BOB_ID}),
            200,
        )
        .await;
    let dm_dismiss = format!(
        "/channels/{}/blocked-user-warning-dismissal",
        dm["id"].as_str().unwrap()
    );
    rest.refuse("POST", &dm_dismiss, ALICE, json!({}), 400, 50024)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_mentions_are_removed_one_by_one() {
    let server = Server::on_fixture_async().await;
    let rest = Rest {
        base: server.base(),
    };
    let general = format!("/channels/{GENERAL}/messages");
    let mut mentions = Vec::new();
    for content in ["first", "second"] {
        let message = rest
            .expect(
                "POST",
                &general,
                DAVE,
                json!({"content": format!("<@{BOB_ID}> {content}")}),
                200,
            )
            .await;
        mentions.push(message["id"].as_str().unwrap().to_string());
    }
    let plain = rest
        .expect("POST", &general, DAVE, json!({"content": "no ping"}), 200)
        .await;
    let mut bob = session(&server.addr, BOB, NO_INTENTS).await;
    let first = format!("/users/@me/mentions/{}", mentions[0]);
    rest.expect("DELETE", &first, BOB, json!({}), 204).await;
    let event = wait_for(&mut bob, "RECENT_MENTION_DELETE", |_| true).await;
    assert_eq!(event["message_id"], mentions[0].as_str());
    let inbox = rest
        .expect("GET", "/users/@me/mentions", BOB, json!({}), 200)
        .await;
    assert_eq!(ids(&inbox), vec![mentions[1].clone()], "{inbox}");
    // Gone already, not a mention of bob's, or not a snowflake; bots have no inbox.
    rest.refuse("DELETE", &first, BOB, json!({}), 404, 10008)
        .await;
    let not_his = format!("/users/@me/mentions/{}", plain["id"].as_str().unwrap());
    rest.refuse("DELETE", &not_his, BOB, json!({}), 404, 10008)
        .await;
    let second = format!("/users/@me/mentions/{}", mentions[1]);
    rest.refuse("DELETE", &second, ALICE, json!({}), 404, 10008)
        .await;
    rest.refuse(
        "DELETE",
        "/users/@me/mentions/abc",
        BOB,
        json!({}),
        400,
        50035,
    )
    .await;
    rest.refuse("DELETE", &second, BOT, json!({}), 403, 20001)
        .await;
    rest.expect("DELETE", &second, BOB, json!({}), 204).await;
    let inbox = rest
        .expect("GET", "/users/@me/mentions", BOB, json!({}), 200)
        .await;
    assert_eq!(inbox, json!([]));
}

#[test]
fn a_fixture_phone_must_be_e164() {
    let mut fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    fixture["users"][0]["mfa"] = json!({"totp_secret": TOTP_SECRET, "phone": "555-0185"});
    let dir = tempfile::tempdir().unwrap();
    let error = Server::start_in(&dir.path().join("data"), Some(&fixture.to_string()), &[])
        .err()
        .expect("the fixture is refused");
    assert!(error.contains("$.users[0].mfa.phone"), "{error}");
}
