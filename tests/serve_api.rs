//! `serve` over real HTTP: every route family, permission denials, Discord's error codes and
//! bodies. One server (the built binary) for the whole file; tests create what they change.
mod serve_support;

use std::sync::OnceLock;

use serde_json::{json, Value};
use serve_support::*;

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::on_fixture)
}

fn api() -> Api {
    server().api()
}

fn send(api: &Api, channel: &str, token: &str, content: &str) -> Value {
    let reply = api.post(
        &format!("/channels/{channel}/messages"),
        token,
        json!({"content": content}),
    );
    expect(&reply, 200).clone()
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_string()
}

#[test]
fn users_me_for_bots_and_users_and_the_auth_prefix_rule() {
    let api = api();
    let me = expect(&api.get("/users/@me", BOT), 200).clone();
    assert_eq!(me["id"], BOT_ID);
    assert_eq!(me["bot"], true);
    assert_eq!(me["username"], "pingbot");
    let alice = expect(&api.get("/users/@me", ALICE), 200).clone();
    assert_eq!(alice["email"], "alice@example.com");
    // A user token with the Bot prefix, a bot token without it, and garbage: all 401.
    for token in [
        "Bot alice-token",
        "MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0",
        "nope",
        "",
    ] {
        let reply = api.get("/users/@me", token);
        assert_eq!(reply.status, 401, "{token}");
        assert_eq!(
            reply.body,
            json!({"message": "401: Unauthorized", "code": 0})
        );
    }
    let none = api.send("GET", "/users/@me", None, None, &[]);
    assert_eq!(
        none.body,
        json!({"message": "401: Unauthorized", "code": 0})
    );
}

#[test]
fn every_api_prefix_answers_and_json_content_type_is_exact() {
    let api = api();
    for prefix in [
        "/api", "/api/v6", "/api/v7", "/api/v8", "/api/v9", "/api/v10",
    ] {
        let url = format!("http://{}{prefix}/users/@me", server().addr);
        let reply = api.send("GET", &url, Some(BOT), None, &[]);
        assert_eq!(reply.status, 200, "{prefix}");
        assert_eq!(
            reply.header("content-type").as_deref(),
            Some("application/json")
        );
        assert!(
            reply.header("x-ratelimit-limit").is_none(),
            "limits are off for this server"
        );
    }
    let unknown = api.send(
        "GET",
        &format!("http://{}/api/v11/users/@me", server().addr),
        Some(BOT),
        None,
        &[],
    );
    expect_error(&unknown, 404, 0);
    let no_route = api.get("/definitely/not/a/route", BOT);
    assert_eq!(
        no_route.body,
        json!({"message": "404: Not Found", "code": 0})
    );
}

#[test]
fn users_profiles_guild_lists_and_dms() {
    let api = api();
    let bob = expect(&api.get(&format!("/users/{BOB_ID}"), BOT), 200).clone();
    assert_eq!(bob["username"], "bob");
    assert!(bob.get("email").is_none(), "others' emails stay private");
    expect_error(&api.get("/users/100000000000000099", BOT), 404, 10013);
    let malformed = api.get("/users/abc", BOT);
    expect_error(&malformed, 400, 50035);
    assert_eq!(
        malformed.body["errors"]["user_id"]["_errors"][0]["code"],
        "NUMBER_TYPE_COERCE"
    );

    let guilds = expect(&api.get("/users/@me/guilds", BOT), 200).clone();
    assert_eq!(guilds.as_array().unwrap().len(), 1);
    assert_eq!(guilds[0]["id"], GUILD);
    assert_eq!(guilds[0]["owner"], false);
    // @everyone's default permissions OR the Bots role's.
    assert_eq!(
        guilds[0]["permissions"],
        (2248473465835073u64 | 1496662011127).to_string()
    );
    let owned = expect(&api.get("/users/@me/guilds?with_counts=true", ALICE), 200).clone();
    assert_eq!(owned[0]["owner"], true);
    assert_eq!(owned[0]["approximate_member_count"], 4);
    expect(&api.get("/users/@me/guilds", CAROL), 200);
    assert_eq!(api.get("/users/@me/guilds", CAROL).body, json!([]));
    let member = expect(
        &api.get(&format!("/users/@me/guilds/{GUILD}/member"), BOT),
        200,
    )
    .clone();
    assert_eq!(member["roles"], json!([BOTS_ROLE]));

    // DMs: the same channel both ways, recipients = the other side.
    let dm = expect(
        &api.post(
            "/users/@me/channels",
            CAROL,
            json!({"recipient_id": BOT_ID}),
        ),
        200,
    )
    .clone();
    assert_eq!(dm["type"], 1);
    assert_eq!(dm["recipients"][0]["id"], BOT_ID);
    let again = expect(
        &api.post(
            "/users/@me/channels",
            CAROL,
            json!({"recipient_id": BOT_ID}),
        ),
        200,
    )
    .clone();
    assert_eq!(again["id"], dm["id"]);
    let message = send(&api, dm["id"].as_str().unwrap(), CAROL, "hello bot");
    assert_eq!(message["author"]["id"], CAROL_ID);
    let seen_by_bot = expect(&api.get(&format!("/channels/{}", id(&dm)), BOT), 200).clone();
    assert_eq!(seen_by_bot["recipients"][0]["id"], CAROL_ID);
    expect_error(&api.get(&format!("/channels/{}", id(&dm)), BOB), 403, 50001);
    let dms = expect(&api.get("/users/@me/channels", CAROL), 200).clone();
    assert!(dms.as_array().unwrap().iter().any(|c| c["id"] == dm["id"]));
    expect_error(
        &api.post(
            "/users/@me/channels",
            CAROL,
            json!({"recipient_id": "100000000000000099"}),
        ),
        404,
        10013,
    );
}

#[test]
fn profile_edits_are_validated_and_stored() {
    let api = api();
    let edited = expect(
        &api.patch("/users/@me", DAVE, json!({"global_name": "Dave D"})),
        200,
    )
    .clone();
    assert_eq!(edited["global_name"], "Dave D");
    assert_eq!(api.get("/users/@me", DAVE).body["global_name"], "Dave D");
    let bad = api.patch("/users/@me", DAVE, json!({"username": "x"}));
    expect_error(&bad, 400, 50035);
    assert_eq!(
        bad.body["errors"]["username"]["_errors"][0]["code"],
        "BASE_TYPE_BAD_LENGTH"
    );
    let wrong_type = api.patch("/users/@me", DAVE, json!({"username": 5}));
    expect_error(&wrong_type, 400, 50035);
    assert!(wrong_type.body["errors"]["username"]["_errors"][0]["message"].is_string());
}

#[test]
fn login_register_and_applications() {
    let api = api();
    let ok = expect(
        &api.send(
            "POST",
            "/auth/login",
            None,
            Some(&json!({"login": "alice@example.com", "password": "hunter2"})),
            &[],
        ),
        200,
    )
    .clone();
    assert_eq!(ok["token"], ALICE);
    assert_eq!(ok["user_id"], ALICE_ID);
    let bad = api.send(
        "POST",
        "/auth/login",
        None,
        Some(&json!({"login": "alice@example.com", "password": "wrong"})),
        &[],
    );
    expect_error(&bad, 400, 50035);
    assert_eq!(
        bad.body["errors"]["login"]["_errors"][0]["code"],
        "INVALID_LOGIN"
    );
    let registered = expect(&api.send("POST", "/auth/register", None, Some(&json!({"username": "newbie", "email": "new@example.com", "password": "long-enough"})), &[]), 201).clone();
    let token = registered["token"].as_str().unwrap();
    let me = expect(&api.get("/users/@me", token), 200).clone();
    assert_eq!(me["username"], "newbie");
    let login = expect(
        &api.send(
            "POST",
            "/auth/login",
            None,
            Some(&json!({"login": "new@example.com", "password": "long-enough"})),
            &[],
        ),
        200,
    )
    .clone();
    assert_eq!(login["token"], token);

    let app = expect(&api.get("/applications/@me", BOT), 200).clone();
    assert_eq!(app["id"], BOT_ID);
    assert_eq!(app["bot"]["id"], BOT_ID);
    assert_eq!(app["owner"]["id"], ALICE_ID);
    assert_eq!(
        app["flags"].as_u64().unwrap() & (1 << 19),
        1 << 19,
        "MESSAGE_CONTENT_LIMITED on by default"
    );
    assert_eq!(api.get("/oauth2/applications/@me", BOT).body["id"], BOT_ID);
    expect_error(&api.get("/applications/@me", ALICE), 404, 10002);
}

#[test]
fn gateway_discovery_uses_the_host_the_client_used() {
    let api = api();
    let gateway = expect(&api.send("GET", "/gateway", None, None, &[]), 200).clone();
    assert_eq!(gateway["url"], format!("ws://{}", server().addr));
    let bot = expect(
        &api.send(
            "GET",
            "/gateway/bot",
            Some(BOT),
            None,
            &[("host", "discord.test:8080")],
        ),
        200,
    )
    .clone();
    assert_eq!(bot["url"], "ws://discord.test:8080");
    assert_eq!(bot["shards"], 1);
    assert_eq!(bot["session_start_limit"]["max_concurrency"], 1);
    assert_eq!(bot["session_start_limit"]["remaining"], 1000);
    expect_error(&api.get("/gateway/bot", ALICE), 401, 0);
}

#[test]
fn guilds_get_create_patch_delete_preview() {
    let api = api();
    let guild = expect(
        &api.get(&format!("/guilds/{GUILD}?with_counts=true"), BOT),
        200,
    )
    .clone();
    assert_eq!(guild["name"], "Test Guild");
    assert_eq!(guild["approximate_member_count"], 4);
    let roles = guild["roles"].as_array().unwrap();
    assert_eq!(roles[0]["id"], GUILD, "@everyone has the guild's id");
    assert_eq!(roles[0]["name"], "@everyone");
    expect_error(&api.get(&format!("/guilds/{GUILD}"), CAROL), 403, 50001);
    expect_error(&api.get("/guilds/200000000000000099", BOT), 404, 10004);
    let preview = expect(&api.get(&format!("/guilds/{GUILD}/preview"), BOB), 200).clone();
    assert_eq!(preview["approximate_member_count"], 4);

    // A user creates a guild: default categories and channels, owner membership.
    let created = expect(
        &api.post("/guilds", CAROL, json!({"name": "Carol's Place"})),
        201,
    )
    .clone();
    let guild_id = id(&created);
    let channels = expect(
        &api.get(&format!("/guilds/{guild_id}/channels"), CAROL),
        200,
    )
    .clone();
    let kinds: Vec<i64> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_i64().unwrap())
        .collect();
    assert!(
        kinds.contains(&4) && kinds.contains(&0) && kinds.contains(&2),
        "{kinds:?}"
    );
    let renamed = expect(
        &api.patch(
            &format!("/guilds/{guild_id}"),
            CAROL,
            json!({"name": "Renamed"}),
        ),
        200,
    )
    .clone();
    assert_eq!(renamed["name"], "Renamed");
    let bad = api.patch(
        &format!("/guilds/{guild_id}"),
        CAROL,
        json!({"afk_timeout": 7}),
    );
    expect_error(&bad, 400, 50035);
    assert!(bad.body["errors"]["afk_timeout"]["_errors"].is_array());
    expect_error(
        &api.patch(&format!("/guilds/{GUILD}"), BOB, json!({"name": "mine"})),
        403,
        50013,
    );
    expect(&api.delete(&format!("/guilds/{guild_id}"), CAROL), 204);
    expect_error(&api.get(&format!("/guilds/{guild_id}"), CAROL), 404, 10004);
    expect_error(
        &api.post("/guilds", CAROL, json!({"name": "x"})),
        400,
        50035,
    );
}

#[test]
fn channels_create_get_patch_delete_positions_and_overwrites() {
    let api = api();
    let category = expect(
        &api.post(
            &format!("/guilds/{GUILD}/channels"),
            BOT,
            json!({"name": "Bot Things", "type": 4}),
        ),
        201,
    )
    .clone();
    let text = expect(
        &api.post(
            &format!("/guilds/{GUILD}/channels"),
            BOT,
            json!({"name": "Bot Chat", "parent_id": category["id"], "topic": "t"}),
        ),
        201,
    )
    .clone();
    assert_eq!(
        text["name"], "bot-chat",
        "text channel names are normalised"
    );
    assert_eq!(text["parent_id"], category["id"]);
    for (name, kind) in [("vc", 2), ("news-2", 5), ("forum-2", 15), ("stage", 13)] {
        let made = expect(
            &api.post(
                &format!("/guilds/{GUILD}/channels"),
                BOT,
                json!({"name": name, "type": kind}),
            ),
            201,
        )
        .clone();
        assert_eq!(made["type"], kind);
        expect(&api.delete(&format!("/channels/{}", id(&made)), BOT), 200);
    }
    expect_error(
        &api.post(
            &format!("/guilds/{GUILD}/channels"),
            BOT,
            json!({"name": "dm", "type": 1}),
        ),
        400,
        50035,
    );
    expect_error(
        &api.post(
            &format!("/guilds/{GUILD}/channels"),
            BOB,
            json!({"name": "nope"}),
        ),
        403,
        50013,
    );
    let bad_parent = api.post(
        &format!("/guilds/{GUILD}/channels"),
        BOT,
        json!({"name": "x", "parent_id": GENERAL}),
    );
    expect_error(&bad_parent, 400, 50035);

    let text_id = id(&text);
    let patched = expect(
        &api.patch(
            &format!("/channels/{text_id}"),
            BOT,
            json!({"topic": "new topic", "rate_limit_per_user": 5}),
        ),
        200,
    )
    .clone();
    assert_eq!(patched["topic"], "new topic");
    assert_eq!(patched["rate_limit_per_user"], 5);
    expect_error(
        &api.patch(&format!("/channels/{text_id}"), BOB, json!({"topic": "x"})),
        403,
        50013,
    );
    expect(
        &api.patch(
            &format!("/guilds/{GUILD}/channels"),
            BOT,
            json!([{"id": text_id, "position": 7}]),
        ),
        204,
    );
    assert_eq!(
        api.get(&format!("/channels/{text_id}"), BOT).body["position"],
        7
    );

    // Overwrites: deny bob SEND in this channel, then allow his view back in #secret.
    expect(
        &api.put(
            &format!("/channels/{text_id}/permissions/{BOB_ID}"),
            BOT,
            json!({"type": 1, "deny": "2048"}),
        ),
        204,
    );
    expect_error(
        &api.post(
            &format!("/channels/{text_id}/messages"),
            BOB,
            json!({"content": "hi"}),
        ),
        403,
        50013,
    );
    expect(
        &api.delete(&format!("/channels/{text_id}/permissions/{BOB_ID}"), BOT),
        204,
    );
    send(&api, &text_id, BOB, "now I can");
    expect_error(
        &api.put(
            &format!("/channels/{text_id}/permissions/200000000000000099"),
            BOT,
            json!({"type": 0, "allow": "0"}),
        ),
        404,
        10011,
    );
    // Overwrites cannot grant what the caller lacks.
    expect_error(
        &api.put(
            &format!("/channels/{text_id}/permissions/{BOB_ID}"),
            BOT,
            json!({"type": 1, "allow": "8"}),
        ),
        403,
        50013,
    );

    // Deleting a category orphans its children.
    let deleted = expect(
        &api.delete(&format!("/channels/{}", id(&category)), BOT),
        200,
    )
    .clone();
    assert_eq!(deleted["id"], category["id"]);
    assert_eq!(
        api.get(&format!("/channels/{text_id}"), BOT).body["parent_id"],
        Value::Null
    );
    expect_error(
        &api.get(&format!("/channels/{}", id(&category)), BOT),
        404,
        10003,
    );
    expect(&api.delete(&format!("/channels/{text_id}"), BOT), 200);
}

#[test]
fn permission_denials_are_50001_or_50013_as_discord_answers() {
    let api = api();
    // #secret: @everyone cannot view; the Bots role may; the owner's ADMINISTRATOR beats both.
    expect_error(&api.get(&format!("/channels/{SECRET}"), BOB), 403, 50001);
    expect_error(
        &api.get(&format!("/channels/{SECRET}/messages"), BOB),
        403,
        50001,
    );
    expect(&api.get(&format!("/channels/{SECRET}"), BOT), 200);
    expect(&api.get(&format!("/channels/{SECRET}"), ALICE), 200);
    // #readonly: visible but no SEND.
    expect(&api.get(&format!("/channels/{READONLY}"), BOB), 200);
    expect_error(
        &api.post(
            &format!("/channels/{READONLY}/messages"),
            BOB,
            json!({"content": "x"}),
        ),
        403,
        50013,
    );
    // Not a member at all.
    expect_error(&api.get(&format!("/channels/{GENERAL}"), CAROL), 403, 50001);
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/members"), CAROL),
        403,
        50001,
    );
    // Hidden channels do not show in the list.
    let visible = expect(&api.get(&format!("/guilds/{GUILD}/channels"), BOB), 200).clone();
    assert!(!visible
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == SECRET));
    // Moderation without the permission.
    for (method, path) in [
        ("PUT", format!("/guilds/{GUILD}/bans/{DAVE_ID}")),
        ("DELETE", format!("/guilds/{GUILD}/members/{DAVE_ID}")),
        ("POST", format!("/guilds/{GUILD}/roles")),
        ("GET", format!("/guilds/{GUILD}/audit-logs")),
        ("POST", format!("/channels/{GENERAL}/webhooks")),
        ("GET", format!("/guilds/{GUILD}/invites")),
    ] {
        let reply = api.send(method, &path, Some(BOB), Some(&json!({"name": "x"})), &[]);
        expect_error(&reply, 403, 50013);
    }
    // Role hierarchy: the bot (Bots, position 2) cannot edit Mods (position 3) or kick alice.
    expect_error(
        &api.patch(
            &format!("/guilds/{GUILD}/roles/{MODS_ROLE}"),
            BOT,
            json!({"name": "x"}),
        ),
        403,
        50013,
    );
    expect_error(
        &api.delete(&format!("/guilds/{GUILD}/members/{ALICE_ID}"), BOT),
        403,
        50013,
    );
}

#[test]
fn messages_create_list_get_edit_delete_and_bulk() {
    let api = api();
    let channel = expect(
        &api.post(
            &format!("/guilds/{GUILD}/channels"),
            BOT,
            json!({"name": "msgs"}),
        ),
        201,
    )
    .clone();
    let ch = id(&channel);
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(id(&send(&api, &ch, BOT, &format!("m{n}"))));
    }
    let mut sorted = ids.clone();
    sorted.sort_by_key(|s| s.parse::<u64>().unwrap());
    assert_eq!(ids, sorted, "snowflakes are strictly increasing");
    let all = expect(&api.get(&format!("/channels/{ch}/messages"), BOB), 200).clone();
    let contents: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, vec!["m4", "m3", "m2", "m1", "m0"], "newest first");
    let limited = api
        .get(
            &format!("/channels/{ch}/messages?limit=2&before={}", ids[3]),
            BOB,
        )
        .body;
    assert_eq!(
        limited
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["m2", "m1"]
    );
    let after = api
        .get(&format!("/channels/{ch}/messages?after={}", ids[2]), BOB)
        .body;
    assert_eq!(
        after
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["m4", "m3"]
    );
    let around = api
        .get(
            &format!("/channels/{ch}/messages?around={}&limit=3", ids[2]),
            BOB,
        )
        .body;
    assert_eq!(
        around
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["m3", "m2", "m1"]
    );
    expect_error(
        &api.get(&format!("/channels/{ch}/messages?limit=101"), BOB),
        400,
        50035,
    );
    expect_error(
        &api.get(&format!("/channels/{ch}/messages?limit=abc"), BOB),
        400,
        50035,
    );

    let one = expect(
        &api.get(&format!("/channels/{ch}/messages/{}", ids[0]), BOB),
        200,
    )
    .clone();
    assert_eq!(one["content"], "m0");
    assert_eq!(one["author"]["id"], BOT_ID);
    assert!(one["timestamp"].as_str().unwrap().ends_with("+00:00"));
    expect_error(
        &api.get(&format!("/channels/{ch}/messages/1"), BOB),
        404,
        10008,
    );

    let edited = expect(
        &api.patch(
            &format!("/channels/{ch}/messages/{}", ids[0]),
            BOT,
            json!({"content": "edited"}),
        ),
        200,
    )
    .clone();
    assert_eq!(edited["content"], "edited");
    assert!(edited["edited_timestamp"].is_string());
    expect_error(
        &api.patch(
            &format!("/channels/{ch}/messages/{}", ids[0]),
            BOB,
            json!({"content": "mine now"}),
        ),
        403,
        50005,
    );
    expect_error(
        &api.delete(&format!("/channels/{ch}/messages/{}", ids[0]), BOB),
        403,
        50013,
    );
    let bobs = send(&api, &ch, BOB, "bob's");
    expect(
        &api.delete(&format!("/channels/{ch}/messages/{}", id(&bobs)), BOB),
        204,
    );
    expect(
        &api.delete(&format!("/channels/{ch}/messages/{}", ids[0]), BOT),
        204,
    );
    expect_error(
        &api.get(&format!("/channels/{ch}/messages/{}", ids[0]), BOT),
        404,
        10008,
    );

    expect_error(
        &api.post(
            &format!("/channels/{ch}/messages/bulk-delete"),
            BOT,
            json!({"messages": [ids[1]]}),
        ),
        400,
        50035,
    );
    expect(
        &api.post(
            &format!("/channels/{ch}/messages/bulk-delete"),
            BOT,
            json!({"messages": [ids[1], ids[2]]}),
        ),
        204,
    );
    assert_eq!(
        api.get(&format!("/channels/{ch}/messages"), BOT)
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let old = "175928847299117063"; // 2016: far older than 14 days
    expect_error(
        &api.post(
            &format!("/channels/{ch}/messages/bulk-delete"),
            BOT,
            json!({"messages": [ids[3], old]}),
        ),
        400,
        50034,
    );
    expect_error(
        &api.post(
            &format!("/channels/{ch}/messages/bulk-delete"),
            BOB,
            json!({"messages": [ids[3], ids[4]]}),
        ),
        403,
        50013,
    );

    expect(
        &api.post(&format!("/channels/{ch}/typing"), BOB, json!({})),
        204,
    );
    expect_error(
        &api.post(
            &format!("/channels/{CATEGORY}/messages"),
            BOT,
            json!({"content": "x"}),
        ),
        400,
        50008,
    );
    // Voice channels carry text chat, as on Discord.
    send(&api, VOICE, BOT, "text in voice");
    expect(&api.delete(&format!("/channels/{ch}"), BOT), 200);
}

#[test]
fn message_bodies_replies_nonces_mentions_and_validation() {
    let api = api();
    let original = send(&api, GENERAL, BOB, "ping");
    let reply = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": "pong", "message_reference": {"message_id": original["id"]}}),
        ),
        200,
    )
    .clone();
    assert_eq!(reply["type"], 19);
    assert_eq!(reply["message_reference"]["message_id"], original["id"]);
    assert_eq!(reply["referenced_message"]["content"], "ping");
    assert_eq!(
        reply["mentions"][0]["id"], BOB_ID,
        "replies ping the replied-to author by default"
    );
    let quiet = expect(&api.post(&format!("/channels/{GENERAL}/messages"), BOT,
        json!({"content": "pong", "message_reference": {"message_id": original["id"]}, "allowed_mentions": {"parse": []}})), 200).clone();
    assert_eq!(quiet["mentions"], json!([]));
    let unknown = api.post(
        &format!("/channels/{GENERAL}/messages"),
        BOT,
        json!({"content": "x", "message_reference": {"message_id": "1"}}),
    );
    expect_error(&unknown, 400, 50035);
    assert_eq!(
        unknown.body["errors"]["message_reference"]["_errors"][0]["code"],
        "REPLIES_UNKNOWN_MESSAGE"
    );
    let lenient = expect(&api.post(&format!("/channels/{GENERAL}/messages"), BOT,
        json!({"content": "x", "message_reference": {"message_id": "1", "fail_if_not_exists": false}})), 200).clone();
    assert_eq!(lenient["type"], 0);

    // Nonces: enforce_nonce returns the first message again.
    let first = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": "once", "nonce": "n-1", "enforce_nonce": true}),
        ),
        200,
    )
    .clone();
    let second = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": "once", "nonce": "n-1", "enforce_nonce": true}),
        ),
        200,
    )
    .clone();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["nonce"], "n-1");
    let third = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": "once", "nonce": "n-1"}),
        ),
        200,
    )
    .clone();
    assert_ne!(third["id"], first["id"]);

    // Mentions parsed from content, filtered by allowed_mentions and permissions.
    let mentions = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": format!("<@{BOB_ID}> <@!{DAVE_ID}> <@&{MODS_ROLE}> @everyone <@1>")}),
        ),
        200,
    )
    .clone();
    let ids: Vec<&str> = mentions["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![BOB_ID, DAVE_ID], "unknown users are not mentions");
    // @everyone's default permissions include MENTION_EVERYONE, which also allows
    // mentioning roles that are not mentionable.
    assert_eq!(mentions["mention_roles"], json!([MODS_ROLE]));
    assert_eq!(mentions["mention_everyone"], true);
    let muted = expect(&api.post(&format!("/channels/{GENERAL}/messages"), BOT,
        json!({"content": format!("@everyone <@&{MODS_ROLE}>"), "allowed_mentions": {"parse": ["users"]}})), 200).clone();
    assert_eq!(
        (
            muted["mention_everyone"].clone(),
            muted["mention_roles"].clone()
        ),
        (json!(false), json!([]))
    );
    let by_owner = expect(&api.post(&format!("/channels/{GENERAL}/messages"), ALICE,
        json!({"content": format!("@everyone <@&{MODS_ROLE}> <@{BOB_ID}>"), "allowed_mentions": {"parse": ["everyone"], "roles": [MODS_ROLE]}})), 200).clone();
    assert_eq!(by_owner["mention_everyone"], true);
    assert_eq!(by_owner["mention_roles"], json!([MODS_ROLE]));
    assert_eq!(by_owner["mentions"], json!([]));
    let exclusive = api.post(
        &format!("/channels/{GENERAL}/messages"),
        BOT,
        json!({"content": "x", "allowed_mentions": {"parse": ["users"], "users": [BOB_ID]}}),
    );
    expect_error(&exclusive, 400, 50035);

    // Embeds are stored with type "rich"; bad ones answer a nested 50035.
    let embed = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"embeds": [{"title": "T", "description": "D"}]}),
        ),
        200,
    )
    .clone();
    assert_eq!(embed["embeds"][0]["type"], "rich");
    let long_title = api.post(
        &format!("/channels/{GENERAL}/messages"),
        BOT,
        json!({"content": "x".repeat(2001), "embeds": [{"title": "t".repeat(300)}]}),
    );
    expect_error(&long_title, 400, 50035);
    assert_eq!(
        long_title.body["errors"]["content"]["_errors"][0]["code"],
        "BASE_TYPE_BAD_LENGTH"
    );
    assert_eq!(
        long_title.body["errors"]["embeds"]["0"]["title"]["_errors"][0]["code"],
        "BASE_TYPE_MAX_LENGTH"
    );
    expect_error(
        &api.post(&format!("/channels/{GENERAL}/messages"), BOT, json!({})),
        400,
        50006,
    );
    expect_error(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": ""}),
        ),
        400,
        50006,
    );
}

#[test]
fn body_limits_depth_and_malformed_json_never_break_the_server() {
    let api = api();
    let huge = "x".repeat(9 * 1024 * 1024);
    let reply = api.send(
        "POST",
        &format!("/channels/{GENERAL}/messages"),
        Some(BOT),
        Some(&json!({"content": huge})),
        &[],
    );
    expect_error(&reply, 413, 40005);
    let deep = format!(
        "{{\"content\": \"x\", \"embeds\": {}{}}}",
        "[".repeat(40),
        "]".repeat(40)
    );
    let client = reqwest::blocking::Client::new();
    let deep_reply = client
        .post(format!("{}/channels/{GENERAL}/messages", server().base()))
        .header("authorization", BOT)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .unwrap();
    assert_eq!(deep_reply.status().as_u16(), 400);
    let body: Value = deep_reply.json().unwrap();
    assert_eq!(body["code"], 50035);
    let broken = client
        .post(format!("{}/channels/{GENERAL}/messages", server().base()))
        .header("authorization", BOT)
        .body("{\"content\": ")
        .send()
        .unwrap();
    assert_eq!(broken.status().as_u16(), 400);
    assert_eq!(broken.json::<Value>().unwrap()["code"], 50109);
    // Still serving.
    expect(&api.get("/users/@me", BOT), 200);
}

#[test]
fn reactions_every_route() {
    let api = api();
    let message = send(&api, GENERAL, BOB, "react to me");
    let path = format!("/channels/{GENERAL}/messages/{}", id(&message));
    let thumbs = "%F0%9F%91%8D";
    expect(
        &api.put(&format!("{path}/reactions/{thumbs}/@me"), BOT, json!({})),
        204,
    );
    expect(
        &api.put(&format!("{path}/reactions/{thumbs}/@me"), BOB, json!({})),
        204,
    );
    expect(
        &api.put(&format!("{path}/reactions/%E2%9D%A4/@me"), BOB, json!({})),
        204,
    );
    let seen = expect(&api.get(&path, BOT), 200).clone();
    assert_eq!(seen["reactions"][0]["count"], 2);
    assert_eq!(seen["reactions"][0]["me"], true);
    assert_eq!(seen["reactions"][0]["emoji"]["name"], "👍");
    let users = expect(&api.get(&format!("{path}/reactions/{thumbs}"), BOT), 200).clone();
    assert_eq!(users.as_array().unwrap().len(), 2);
    let one = api
        .get(&format!("{path}/reactions/{thumbs}?limit=1"), BOT)
        .body;
    assert_eq!(one.as_array().unwrap().len(), 1);
    expect_error(
        &api.put(&format!("{path}/reactions/notanemoji/@me"), BOT, json!({})),
        404,
        10014,
    );
    expect_error(
        &api.put(&format!("{path}/reactions/custom:1/@me"), BOT, json!({})),
        404,
        10014,
    );
    expect_error(
        &api.delete(&format!("{path}/reactions/{thumbs}/{BOT_ID}"), BOB),
        403,
        50013,
    );
    expect(
        &api.delete(&format!("{path}/reactions/{thumbs}/@me"), BOT),
        204,
    );
    expect(
        &api.delete(&format!("{path}/reactions/{thumbs}/{BOB_ID}"), BOT),
        204,
    );
    let after = api.get(&path, BOT).body;
    assert_eq!(
        after["reactions"].as_array().unwrap().len(),
        1,
        "only ❤ remains"
    );
    expect(
        &api.delete(&format!("{path}/reactions/%E2%9D%A4"), BOT),
        204,
    );
    expect(
        &api.put(&format!("{path}/reactions/{thumbs}/@me"), BOT, json!({})),
        204,
    );
    expect_error(&api.delete(&format!("{path}/reactions"), BOB), 403, 50013);
    expect(&api.delete(&format!("{path}/reactions"), BOT), 204);
    assert!(api.get(&path, BOT).body.get("reactions").is_none());
}

#[test]
fn pins_legacy_and_paginated_routes_and_system_message() {
    let api = api();
    let channel = expect(
        &api.post(
            &format!("/guilds/{GUILD}/channels"),
            BOT,
            json!({"name": "pins"}),
        ),
        201,
    )
    .clone();
    let ch = id(&channel);
    let first = send(&api, &ch, BOB, "pin me");
    let second = send(&api, &ch, BOB, "pin me too");
    expect_error(
        &api.put(
            &format!("/channels/{ch}/pins/{}", id(&first)),
            BOB,
            json!({}),
        ),
        403,
        50013,
    );
    expect(
        &api.put(
            &format!("/channels/{ch}/pins/{}", id(&first)),
            BOT,
            json!({}),
        ),
        204,
    );
    expect(
        &api.put(
            &format!("/channels/{ch}/messages/pins/{}", id(&second)),
            BOT,
            json!({}),
        ),
        204,
    );
    let legacy = expect(&api.get(&format!("/channels/{ch}/pins"), BOB), 200).clone();
    assert_eq!(legacy.as_array().unwrap().len(), 2);
    assert_eq!(legacy[0]["pinned"], true);
    let paged = expect(
        &api.get(&format!("/channels/{ch}/messages/pins?limit=1"), BOB),
        200,
    )
    .clone();
    assert_eq!(paged["items"].as_array().unwrap().len(), 1);
    assert_eq!(paged["has_more"], true);
    assert!(paged["items"][0]["pinned_at"].is_string());
    let latest = api
        .get(&format!("/channels/{ch}/messages?limit=1"), BOB)
        .body;
    assert_eq!(latest[0]["type"], 6, "pins announce themselves");
    let fetched = api.get(&format!("/channels/{ch}"), BOB).body;
    assert!(fetched["last_pin_timestamp"].is_string());
    expect(
        &api.delete(&format!("/channels/{ch}/pins/{}", id(&first)), BOT),
        204,
    );
    expect(
        &api.delete(
            &format!("/channels/{ch}/messages/pins/{}", id(&second)),
            BOT,
        ),
        204,
    );
    assert_eq!(
        api.get(&format!("/channels/{ch}/pins"), BOB).body,
        json!([])
    );
    expect(&api.delete(&format!("/channels/{ch}"), BOT), 200);
}

#[test]
fn roles_crud_positions_and_member_role_changes() {
    let api = api();
    let role = expect(
        &api.post(
            &format!("/guilds/{GUILD}/roles"),
            BOT,
            json!({"name": "Helpers", "color": 3447003, "mentionable": true}),
        ),
        200,
    )
    .clone();
    let role_id = id(&role);
    assert_eq!(role["position"], 1);
    assert_eq!(role["colors"]["primary_color"], 3447003);
    assert_eq!(
        expect(
            &api.get(&format!("/guilds/{GUILD}/roles/{role_id}"), BOB),
            200
        )["name"],
        "Helpers"
    );
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/roles/1"), BOB),
        404,
        10011,
    );
    let edited = expect(
        &api.patch(
            &format!("/guilds/{GUILD}/roles/{role_id}"),
            BOT,
            json!({"name": "Helpers+", "hoist": true}),
        ),
        200,
    )
    .clone();
    assert_eq!(edited["hoist"], true);
    // The bot may not grant ADMINISTRATOR, which it does not have.
    expect_error(
        &api.patch(
            &format!("/guilds/{GUILD}/roles/{role_id}"),
            BOT,
            json!({"permissions": "8"}),
        ),
        403,
        50013,
    );
    let bad = api.patch(
        &format!("/guilds/{GUILD}/roles/{role_id}"),
        BOT,
        json!({"permissions": "lots"}),
    );
    expect_error(&bad, 400, 50035);
    let positions = expect(
        &api.patch(
            &format!("/guilds/{GUILD}/roles"),
            BOT,
            json!([{"id": role_id, "position": 1}]),
        ),
        200,
    )
    .clone();
    assert!(positions
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == role_id.as_str()));

    expect(
        &api.put(
            &format!("/guilds/{GUILD}/members/{BOB_ID}/roles/{role_id}"),
            BOT,
            json!({}),
        ),
        204,
    );
    let bob = expect(
        &api.get(&format!("/guilds/{GUILD}/members/{BOB_ID}"), BOT),
        200,
    )
    .clone();
    assert!(bob["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == role_id.as_str()));
    expect(
        &api.delete(
            &format!("/guilds/{GUILD}/members/{BOB_ID}/roles/{role_id}"),
            BOT,
        ),
        204,
    );
    expect_error(
        &api.put(
            &format!("/guilds/{GUILD}/members/{BOB_ID}/roles/{MODS_ROLE}"),
            BOT,
            json!({}),
        ),
        403,
        50013,
    );
    expect(
        &api.delete(&format!("/guilds/{GUILD}/roles/{role_id}"), BOT),
        204,
    );
    expect_error(
        &api.delete(&format!("/guilds/{GUILD}/roles/{role_id}"), BOT),
        404,
        10011,
    );
    expect_error(
        &api.delete(&format!("/guilds/{GUILD}/roles/{GUILD}"), ALICE),
        400,
        50035,
    );
}

#[test]
fn members_list_search_get_modify_timeout() {
    let api = api();
    let one = expect(&api.get(&format!("/guilds/{GUILD}/members"), BOT), 200).clone();
    assert_eq!(one.as_array().unwrap().len(), 1, "limit defaults to 1");
    let all = expect(
        &api.get(&format!("/guilds/{GUILD}/members?limit=1000"), BOT),
        200,
    )
    .clone();
    assert!(all.as_array().unwrap().len() >= 4);
    let after = api
        .get(
            &format!("/guilds/{GUILD}/members?limit=2&after={ALICE_ID}"),
            BOT,
        )
        .body;
    assert_eq!(after[0]["user"]["id"], BOT_ID);
    assert_eq!(after[1]["user"]["id"], BOB_ID);
    let found = expect(
        &api.get(
            &format!("/guilds/{GUILD}/members/search?query=bo&limit=10"),
            BOT,
        ),
        200,
    )
    .clone();
    assert_eq!(found[0]["user"]["username"], "bob");
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/members/search"), BOT),
        400,
        50035,
    );
    let member = expect(
        &api.get(&format!("/guilds/{GUILD}/members/{BOT_ID}"), BOB),
        200,
    )
    .clone();
    for field in ["roles", "joined_at", "deaf", "mute", "flags", "user"] {
        assert!(member.get(field).is_some(), "member has {field}");
    }
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/members/{CAROL_ID}"), BOB),
        404,
        10007,
    );

    let nick = expect(
        &api.patch(
            &format!("/guilds/{GUILD}/members/{BOB_ID}"),
            BOT,
            json!({"nick": "Bobby"}),
        ),
        200,
    )
    .clone();
    assert_eq!(nick["nick"], "Bobby");
    let own = expect(
        &api.patch(
            &format!("/guilds/{GUILD}/members/@me"),
            BOB,
            json!({"nick": "B"}),
        ),
        200,
    )
    .clone();
    assert_eq!(own["nick"], "B");
    expect_error(
        &api.patch(
            &format!("/guilds/{GUILD}/members/{BOT_ID}"),
            BOB,
            json!({"nick": "hacked"}),
        ),
        403,
        50013,
    );
    // Timeout: dave keeps only VIEW + history, so sending is refused.
    let until = "2099-01-01T00:00:00+00:00";
    let far = api.patch(
        &format!("/guilds/{GUILD}/members/{DAVE_ID}"),
        BOT,
        json!({"communication_disabled_until": until}),
    );
    expect_error(&far, 400, 50035);
    let soon = time_in(600);
    let timed = expect(
        &api.patch(
            &format!("/guilds/{GUILD}/members/{DAVE_ID}"),
            BOT,
            json!({"communication_disabled_until": soon}),
        ),
        200,
    )
    .clone();
    assert!(timed["communication_disabled_until"].is_string());
    expect_error(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            DAVE,
            json!({"content": "muted?"}),
        ),
        403,
        50013,
    );
    expect(
        &api.patch(
            &format!("/guilds/{GUILD}/members/{DAVE_ID}"),
            BOT,
            json!({"communication_disabled_until": null}),
        ),
        200,
    );
    send(&api, GENERAL, DAVE, "free again");
    expect(
        &api.patch(
            &format!("/guilds/{GUILD}/members/{BOB_ID}"),
            BOT,
            json!({"nick": null}),
        ),
        200,
    );
}

fn time_in(seconds: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + seconds;
    let t = time::OffsetDateTime::from_unix_timestamp(now as i64).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn bans_invites_kicks_and_rejoining() {
    let api = api();
    // An invite brings carol in; a kick takes her out; a ban keeps her out.
    let invite = expect(
        &api.post(
            &format!("/channels/{GENERAL}/invites"),
            BOT,
            json!({"max_age": 3600, "unique": true}),
        ),
        200,
    )
    .clone();
    let code = invite["code"].as_str().unwrap().to_string();
    assert_eq!(invite["guild"]["id"], GUILD);
    assert_eq!(invite["max_age"], 3600);
    let counted = expect(
        &api.get(&format!("/invites/{code}?with_counts=true"), CAROL),
        200,
    )
    .clone();
    assert!(counted["approximate_member_count"].as_u64().unwrap() >= 4);
    assert_eq!(counted["channel"]["id"], GENERAL);
    expect_error(&api.get("/invites/doesnotexist", CAROL), 404, 10006);
    expect_error(
        &api.post(&format!("/invites/{code}"), BOT, json!({})),
        403,
        20001,
    );
    let joined = expect(
        &api.post(&format!("/invites/{code}"), CAROL, json!({})),
        200,
    )
    .clone();
    assert_eq!(joined["new_member"], true);
    expect(
        &api.get(&format!("/guilds/{GUILD}/members/{CAROL_ID}"), BOT),
        200,
    );
    let listed = expect(&api.get(&format!("/guilds/{GUILD}/invites"), BOT), 200).clone();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["code"] == code.as_str() && i["uses"] == 1));
    expect(&api.get(&format!("/channels/{GENERAL}/invites"), BOT), 200);

    expect(
        &api.delete(&format!("/guilds/{GUILD}/members/{CAROL_ID}"), BOT),
        204,
    );
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/members/{CAROL_ID}"), BOT),
        404,
        10007,
    );
    expect(
        &api.post(&format!("/invites/{code}"), CAROL, json!({})),
        200,
    );
    let ban = api.send(
        "PUT",
        &format!("/guilds/{GUILD}/bans/{CAROL_ID}"),
        Some(BOT),
        Some(&json!({"delete_message_seconds": 0})),
        &[("x-audit-log-reason", "too%20noisy")],
    );
    expect(&ban, 204);
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/members/{CAROL_ID}"), BOT),
        404,
        10007,
    );
    let bans = expect(&api.get(&format!("/guilds/{GUILD}/bans"), BOT), 200).clone();
    assert!(bans
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["user"]["id"] == CAROL_ID && b["reason"] == "too noisy"));
    assert_eq!(
        expect(
            &api.get(&format!("/guilds/{GUILD}/bans/{CAROL_ID}"), BOT),
            200
        )["user"]["id"],
        CAROL_ID
    );
    expect_error(
        &api.post(&format!("/invites/{code}"), CAROL, json!({})),
        403,
        40007,
    );
    expect(
        &api.delete(&format!("/guilds/{GUILD}/bans/{CAROL_ID}"), BOT),
        204,
    );
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/bans/{CAROL_ID}"), BOT),
        404,
        10026,
    );
    expect_error(
        &api.put(
            &format!("/guilds/{GUILD}/bans/{CAROL_ID}"),
            BOT,
            json!({"delete_message_seconds": 999999999}),
        ),
        400,
        50035,
    );
    expect(&api.delete(&format!("/invites/{code}"), BOT), 200);
    expect_error(&api.get(&format!("/invites/{code}"), CAROL), 404, 10006);
    // Adding a member directly (OAuth2 access_token flow).
    expect(
        &api.put(
            &format!("/guilds/{GUILD}/members/{CAROL_ID}"),
            BOT,
            json!({"access_token": "oauth-token"}),
        ),
        201,
    );
    expect(
        &api.put(
            &format!("/guilds/{GUILD}/members/{CAROL_ID}"),
            BOT,
            json!({"access_token": "oauth-token"}),
        ),
        204,
    );
    expect(
        &api.delete(&format!("/users/@me/guilds/{GUILD}"), CAROL),
        204,
    );
    expect_error(
        &api.delete(&format!("/users/@me/guilds/{GUILD}"), ALICE),
        400,
        50055,
    );
}

#[test]
fn emojis_and_custom_emoji_reactions() {
    let api = api();
    let image = PIXEL_PNG;
    let emoji = expect(
        &api.post(
            &format!("/guilds/{GUILD}/emojis"),
            BOT,
            json!({"name": "blob", "image": image}),
        ),
        201,
    )
    .clone();
    let emoji_id = id(&emoji);
    assert_eq!(emoji["user"]["id"], BOT_ID);
    expect_error(
        &api.post(
            &format!("/guilds/{GUILD}/emojis"),
            BOT,
            json!({"name": "bad name!", "image": image}),
        ),
        400,
        50035,
    );
    // Everyone may create expressions by default, but only edit their own.
    expect_error(
        &api.patch(
            &format!("/guilds/{GUILD}/emojis/{emoji_id}"),
            BOB,
            json!({"name": "mine"}),
        ),
        403,
        50013,
    );
    let list = expect(&api.get(&format!("/guilds/{GUILD}/emojis"), BOB), 200).clone();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["id"] == emoji_id.as_str()));
    let renamed = expect(
        &api.patch(
            &format!("/guilds/{GUILD}/emojis/{emoji_id}"),
            BOT,
            json!({"name": "blobby"}),
        ),
        200,
    )
    .clone();
    assert_eq!(renamed["name"], "blobby");
    let message = send(&api, GENERAL, BOT, "custom");
    let path = format!(
        "/channels/{GENERAL}/messages/{}/reactions/blobby:{emoji_id}/@me",
        id(&message)
    );
    expect(&api.put(&path, BOB, json!({})), 204);
    let seen = api
        .get(
            &format!("/channels/{GENERAL}/messages/{}", id(&message)),
            BOB,
        )
        .body;
    assert_eq!(seen["reactions"][0]["emoji"]["id"], emoji_id.as_str());
    expect(
        &api.delete(&format!("/guilds/{GUILD}/emojis/{emoji_id}"), BOT),
        204,
    );
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/emojis/{emoji_id}"), BOT),
        404,
        10014,
    );
}

#[test]
fn webhooks_create_list_execute_edit_delete() {
    let api = api();
    let hook = expect(
        &api.post(
            &format!("/channels/{GENERAL}/webhooks"),
            BOT,
            json!({"name": "Hooky"}),
        ),
        200,
    )
    .clone();
    let hook_id = id(&hook);
    let token = hook["token"].as_str().unwrap().to_string();
    expect_error(
        &api.post(
            &format!("/channels/{GENERAL}/webhooks"),
            BOT,
            json!({"name": "clyde"}),
        ),
        400,
        50035,
    );
    assert!(
        expect(&api.get(&format!("/channels/{GENERAL}/webhooks"), BOT), 200)
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == hook_id.as_str())
    );
    assert!(
        expect(&api.get(&format!("/guilds/{GUILD}/webhooks"), BOT), 200)
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == hook_id.as_str())
    );
    let anonymous = api.send(
        "GET",
        &format!("/webhooks/{hook_id}/{token}"),
        None,
        None,
        &[],
    );
    assert_eq!(expect(&anonymous, 200)["name"], "Hooky");
    let bad_token = api.send(
        "GET",
        &format!("/webhooks/{hook_id}/wrong"),
        None,
        None,
        &[],
    );
    expect_error(&bad_token, 401, 50027);

    let sent = api.send(
        "POST",
        &format!("/webhooks/{hook_id}/{token}?wait=true"),
        None,
        Some(&json!({"content": "from a hook", "username": "Custom"})),
        &[],
    );
    let sent = expect(&sent, 200).clone();
    assert_eq!(sent["webhook_id"], hook_id.as_str());
    assert_eq!(sent["author"]["username"], "Custom");
    assert_eq!(sent["author"]["bot"], true);
    let silent = api.send(
        "POST",
        &format!("/webhooks/{hook_id}/{token}"),
        None,
        Some(&json!({"content": "no wait"})),
        &[],
    );
    expect(&silent, 204);
    let got = api.send(
        "GET",
        &format!("/webhooks/{hook_id}/{token}/messages/{}", id(&sent)),
        None,
        None,
        &[],
    );
    assert_eq!(expect(&got, 200)["content"], "from a hook");
    let edited = api.send(
        "PATCH",
        &format!("/webhooks/{hook_id}/{token}/messages/{}", id(&sent)),
        None,
        Some(&json!({"content": "edited hook"})),
        &[],
    );
    assert_eq!(expect(&edited, 200)["content"], "edited hook");
    let deleted = api.send(
        "DELETE",
        &format!("/webhooks/{hook_id}/{token}/messages/{}", id(&sent)),
        None,
        None,
        &[],
    );
    expect(&deleted, 204);

    let renamed = expect(
        &api.patch(
            &format!("/webhooks/{hook_id}"),
            BOT,
            json!({"name": "Renamed"}),
        ),
        200,
    )
    .clone();
    assert_eq!(renamed["name"], "Renamed");
    expect_error(&api.get(&format!("/webhooks/{hook_id}"), BOB), 403, 50013);
    expect(&api.delete(&format!("/webhooks/{hook_id}"), BOT), 204);
    expect_error(&api.get(&format!("/webhooks/{hook_id}"), BOT), 404, 10015);
}

#[test]
fn audit_log_records_changes_with_reasons() {
    let api = api();
    let reason = api.send(
        "PATCH",
        &format!("/guilds/{GUILD}"),
        Some(ALICE),
        Some(&json!({"description": "audited"})),
        &[("x-audit-log-reason", "testing%20reasons")],
    );
    expect(&reason, 200);
    let log = expect(
        &api.get(
            &format!("/guilds/{GUILD}/audit-logs?action_type=1&limit=5"),
            BOT,
        ),
        200,
    )
    .clone();
    let entry = &log["audit_log_entries"][0];
    assert_eq!(entry["action_type"], 1);
    assert_eq!(entry["reason"], "testing reasons");
    assert_eq!(entry["user_id"], ALICE_ID);
    assert!(entry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["key"] == "description" && c["new_value"] == "audited"));
    assert!(log["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == ALICE_ID));
    for key in [
        "webhooks",
        "integrations",
        "threads",
        "application_commands",
        "auto_moderation_rules",
        "guild_scheduled_events",
    ] {
        assert!(log[key].is_array(), "{key}");
    }
    let by_user = api
        .get(&format!("/guilds/{GUILD}/audit-logs?user_id={BOB_ID}"), BOT)
        .body;
    assert_eq!(by_user["audit_log_entries"], json!([]));
}

#[test]
fn threads_forums_and_thread_members() {
    let api = api();
    let starter = send(&api, GENERAL, BOB, "discuss");
    let thread = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages/{}/threads", id(&starter)),
            BOT,
            json!({"name": "Discussion"}),
        ),
        201,
    )
    .clone();
    assert_eq!(
        thread["id"], starter["id"],
        "a thread from a message takes the message's id"
    );
    assert_eq!(thread["type"], 11);
    assert_eq!(thread["parent_id"], GENERAL);
    assert_eq!(thread["thread_metadata"]["archived"], false);
    expect_error(
        &api.post(
            &format!("/channels/{GENERAL}/messages/{}/threads", id(&starter)),
            BOT,
            json!({"name": "again"}),
        ),
        400,
        160004,
    );
    let tid = id(&thread);
    let in_thread = send(&api, &tid, BOB, "in the thread");
    assert_eq!(in_thread["channel_id"], tid.as_str());
    expect(
        &api.put(
            &format!("/channels/{tid}/thread-members/@me"),
            BOB,
            json!({}),
        ),
        204,
    );
    let members = expect(
        &api.get(&format!("/channels/{tid}/thread-members"), BOB),
        200,
    )
    .clone();
    assert_eq!(members.as_array().unwrap().len(), 2);
    expect(
        &api.get(
            &format!("/channels/{tid}/thread-members/{BOB_ID}?with_member=true"),
            BOB,
        ),
        200,
    );
    expect(
        &api.delete(&format!("/channels/{tid}/thread-members/@me"), BOB),
        204,
    );
    expect_error(
        &api.get(&format!("/channels/{tid}/thread-members/{BOB_ID}"), BOB),
        404,
        10007,
    );
    expect(
        &api.put(
            &format!("/channels/{tid}/thread-members/{DAVE_ID}"),
            BOT,
            json!({}),
        ),
        204,
    );
    expect(
        &api.delete(&format!("/channels/{tid}/thread-members/{DAVE_ID}"), BOT),
        204,
    );
    let active = expect(
        &api.get(&format!("/guilds/{GUILD}/threads/active"), BOB),
        200,
    )
    .clone();
    assert!(active["threads"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == tid.as_str()));

    let archived = expect(
        &api.patch(&format!("/channels/{tid}"), BOT, json!({"archived": true})),
        200,
    )
    .clone();
    assert_eq!(archived["thread_metadata"]["archived"], true);
    let listed = expect(
        &api.get(&format!("/channels/{GENERAL}/threads/archived/public"), BOB),
        200,
    )
    .clone();
    assert!(listed["threads"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == tid.as_str()));
    assert_eq!(listed["has_more"], false);
    expect_error(
        &api.post(
            &format!("/channels/{tid}/messages"),
            BOB,
            json!({"content": "late"}),
        ),
        400,
        50083,
    );

    let private = expect(
        &api.post(
            &format!("/channels/{GENERAL}/threads"),
            BOT,
            json!({"name": "Private", "type": 12}),
        ),
        201,
    )
    .clone();
    assert_eq!(private["type"], 12);
    expect_error(
        &api.get(&format!("/channels/{}", id(&private)), BOB),
        403,
        50001,
    );
    expect(
        &api.get(
            &format!("/channels/{GENERAL}/threads/archived/private"),
            BOT,
        ),
        200,
    );
    expect_error(
        &api.get(
            &format!("/channels/{GENERAL}/threads/archived/private"),
            BOB,
        ),
        403,
        50013,
    );
    expect(
        &api.get(
            &format!("/channels/{GENERAL}/users/@me/threads/archived/private"),
            BOB,
        ),
        200,
    );

    expect_error(
        &api.post(
            &format!("/channels/{FORUM}/threads"),
            BOB,
            json!({"name": "No message"}),
        ),
        400,
        50035,
    );
    let post = expect(
        &api.post(
            &format!("/channels/{FORUM}/threads"),
            BOB,
            json!({"name": "A post", "message": {"content": "first!"}}),
        ),
        201,
    )
    .clone();
    assert_eq!(post["type"], 11);
    assert_eq!(post["message"]["content"], "first!");
    assert_eq!(
        post["message"]["id"], post["id"],
        "a forum post's first message has the thread's id"
    );
    expect(
        &api.delete(&format!("/channels/{}", id(&private)), BOT),
        200,
    );
}

#[test]
fn announcement_channels_crosspost() {
    let api = api();
    let message = send(&api, NEWS, BOT, "news!");
    let crossposted = expect(
        &api.post(
            &format!("/channels/{NEWS}/messages/{}/crosspost", id(&message)),
            BOT,
            json!({}),
        ),
        200,
    )
    .clone();
    assert_eq!(crossposted["flags"].as_u64().unwrap() & 1, 1);
    expect_error(
        &api.post(
            &format!("/channels/{NEWS}/messages/{}/crosspost", id(&message)),
            BOT,
            json!({}),
        ),
        400,
        40033,
    );
    let plain = send(&api, GENERAL, BOT, "not news");
    expect_error(
        &api.post(
            &format!("/channels/{GENERAL}/messages/{}/crosspost", id(&plain)),
            BOT,
            json!({}),
        ),
        400,
        50068,
    );
}

#[test]
fn voice_regions_and_guild_regions() {
    let api = api();
    let regions = expect(&api.get("/voice/regions", BOT), 200).clone();
    assert_eq!(regions[0]["optimal"], true);
    expect(&api.get(&format!("/guilds/{GUILD}/regions"), BOT), 200);
}

#[test]
fn api_v6_and_v7_answer_integer_permissions_and_named_overwrite_types() {
    let api = api();
    for version in ["v6", "v7"] {
        let url = format!(
            "http://{}/api/{version}/guilds/{GUILD}/roles",
            server().addr
        );
        let roles = expect(&api.send("GET", &url, Some(BOT), None, &[]), 200).clone();
        let everyone = roles
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == GUILD)
            .unwrap()
            .clone();
        assert!(everyone["permissions"].is_u64(), "{version}: {everyone}");
        assert_eq!(everyone["permissions_new"], "2248473465835073");
        let url = format!("http://{}/api/{version}/channels/{SECRET}", server().addr);
        let channel = expect(&api.send("GET", &url, Some(BOT), None, &[]), 200).clone();
        assert_eq!(channel["permission_overwrites"][0]["type"], "role");
        assert_eq!(channel["permission_overwrites"][0]["deny"], 1024);
    }
    let modern = api.get(&format!("/guilds/{GUILD}/roles"), BOT).body;
    assert!(modern[0]["permissions"].is_string());
    assert!(modern[0].get("permissions_new").is_none());
}

#[test]
fn slowmode_limits_members_but_not_moderators() {
    let api = api();
    let channel = expect(
        &api.post(
            &format!("/guilds/{GUILD}/channels"),
            BOT,
            json!({"name": "slow", "rate_limit_per_user": 30}),
        ),
        201,
    )
    .clone();
    let ch = id(&channel);
    expect_error(
        &api.post(
            &format!("/channels/{ch}/messages"),
            BOB,
            json!({"content": ""}),
        ),
        400,
        50006,
    );
    send(&api, &ch, BOB, "first");
    let second = api.post(
        &format!("/channels/{ch}/messages"),
        BOB,
        json!({"content": "second"}),
    );
    expect_error(&second, 429, 20016);
    let retry = second.body["retry_after"].as_f64().unwrap();
    assert!(retry > 25.0 && retry <= 30.0, "{retry}");
    send(&api, &ch, BOT, "moderators are exempt");
    send(&api, &ch, BOT, "still exempt");
    expect(&api.delete(&format!("/channels/{ch}"), BOT), 200);
}

#[test]
fn multipart_uploads_become_attachments_served_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    // Larger than axum's 2 MiB default body limit: --max-body (8 MiB) is what applies.
    std::fs::write(&file, "attached bytes \u{1F4CE}\n".repeat(160_000)).unwrap();
    let output = std::process::Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: {BOT}")])
        .args(["-F", r#"payload_json={"content": "with a file", "attachments": [{"id": 0, "description": "some notes"}]};type=application/json"#])
        .arg("-F")
        .arg(format!("files[0]=@{}", file.display()))
        .arg(format!("{}/channels/{GENERAL}/messages", server().base()))
        .output()
        .expect("curl runs");
    let message: Value = serde_json::from_slice(&output.stdout).expect("JSON answer");
    assert_eq!(message["content"], "with a file", "{message}");
    let attachment = &message["attachments"][0];
    assert_eq!(attachment["filename"], "notes.txt");
    assert_eq!(attachment["description"], "some notes");
    assert_eq!(attachment["size"], std::fs::metadata(&file).unwrap().len());
    let url = attachment["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("http://{}/attachments/{GENERAL}/", server().addr)),
        "{url}"
    );
    let fetched = reqwest::blocking::get(url).unwrap();
    assert_eq!(
        fetched.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        fetched.bytes().unwrap().as_ref(),
        std::fs::read(&file).unwrap().as_slice()
    );
    // Uploads go through the same permission checks as any message.
    let denied = std::process::Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: {BOB}")])
        .args(["-F", r#"payload_json={"content": "x"}"#])
        .arg("-F")
        .arg(format!("files[0]=@{}", file.display()))
        .arg(format!("{}/channels/{READONLY}/messages", server().base()))
        .output()
        .unwrap();
    let denied: Value = serde_json::from_slice(&denied.stdout).unwrap();
    assert_eq!(denied["code"], 50013);
}

#[test]
fn bulk_bans_integrations_vanity_urls_and_unknown_interactions() {
    let api = api();
    let ghost = "100000000000000077";
    let reply = api.post(
        &format!("/guilds/{GUILD}/bulk-ban"),
        BOT,
        json!({"user_ids": [CAROL_ID, ghost, ALICE_ID]}),
    );
    let result = expect(&reply, 200).clone();
    assert_eq!(result["banned_users"], json!([CAROL_ID]));
    assert_eq!(
        result["failed_users"],
        json!([ghost, ALICE_ID]),
        "unknown users and the owner fail"
    );
    expect(
        &api.delete(&format!("/guilds/{GUILD}/bans/{CAROL_ID}"), BOT),
        204,
    );
    expect_error(
        &api.post(
            &format!("/guilds/{GUILD}/bulk-ban"),
            BOT,
            json!({"user_ids": []}),
        ),
        400,
        50035,
    );
    expect_error(
        &api.post(
            &format!("/guilds/{GUILD}/bulk-ban"),
            BOB,
            json!({"user_ids": [DAVE_ID]}),
        ),
        403,
        50013,
    );
    // The one bot in the guild is its one (discord) integration.
    let integrations = expect(&api.get(&format!("/guilds/{GUILD}/integrations"), BOT), 200).clone();
    assert_eq!(integrations.as_array().unwrap().len(), 1, "{integrations}");
    assert_eq!(integrations[0]["type"], "discord");
    assert_eq!(integrations[0]["application"]["bot"]["id"], BOT_ID);
    let vanity = expect(&api.get(&format!("/guilds/{GUILD}/vanity-url"), BOT), 200).clone();
    assert_eq!(vanity, json!({"code": null, "uses": 0}));
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/vanity-url"), BOB),
        403,
        50013,
    );
    let callback = api.send(
        "POST",
        "/interactions/1/token/callback",
        None,
        Some(&json!({"type": 4})),
        &[],
    );
    expect_error(&callback, 404, 10062);
}
