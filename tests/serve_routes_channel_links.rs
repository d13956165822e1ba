//! Channel following (announcement → follower webhook, crossposts delivered) and group DM
//! recipients against the built binary, with schema conformance and twilight-http.
mod serve_routes_support;
mod serve_support;

use serde_json::{json, Value};
use serve_routes_support::*;
use serve_support::*;

#[test]
fn following_an_announcement_channel_delivers_crossposts() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let follow = format!("/channels/{NEWS}/followers");

    let bad = api.post(&follow, ALICE, json!({}));
    expect_error(&bad, 400, 50035);
    assert!(bad.body["errors"]["webhook_channel_id"].is_object());
    // Only announcement channels can be followed, only into text channels.
    expect_error(
        &api.post(
            &format!("/channels/{GENERAL}/followers"),
            ALICE,
            json!({"webhook_channel_id": READONLY}),
        ),
        400,
        50024,
    );
    expect_error(
        &api.post(&follow, ALICE, json!({"webhook_channel_id": VOICE})),
        400,
        50024,
    );
    // Bob cannot manage webhooks in the target; carol sees neither channel.
    expect_error(
        &api.post(&follow, BOB, json!({"webhook_channel_id": GENERAL})),
        403,
        50013,
    );
    expect_error(
        &api.post(&follow, CAROL, json!({"webhook_channel_id": GENERAL})),
        403,
        50001,
    );
    expect_error(
        &api.post(&follow, ALICE, json!({"webhook_channel_id": "1"})),
        404,
        10003,
    );

    let followed = expect(
        &api.post(&follow, ALICE, json!({"webhook_channel_id": GENERAL})),
        200,
    )
    .clone();
    conforms(
        &spec,
        "POST",
        "/channels/{channel_id}/followers",
        200,
        &followed,
    );
    assert_eq!(followed["channel_id"], NEWS);
    let hook_id = followed["webhook_id"].as_str().unwrap().to_string();
    let hooks = expect(
        &api.get(&format!("/channels/{GENERAL}/webhooks"), ALICE),
        200,
    )
    .clone();
    let hook = hooks
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == hook_id.as_str())
        .expect("the follower webhook is listed")
        .clone();
    assert_eq!(hook["type"], 2);
    assert_eq!(hook["name"], "Test Guild #news");
    let log = expect(
        &api.get(&format!("/guilds/{GUILD}/audit-logs?action_type=50"), ALICE),
        200,
    )
    .clone();
    assert_eq!(log["audit_log_entries"][0]["target_id"], hook_id.as_str());

    // Publishing (crossposting) a news message delivers a copy into #general.
    let news = expect(
        &api.post(
            &format!("/channels/{NEWS}/messages"),
            ALICE,
            json!({"content": "release day <@100000000000000003>"}),
        ),
        200,
    )
    .clone();
    let news_id = news["id"].as_str().unwrap();
    expect(
        &api.post(
            &format!("/channels/{NEWS}/messages/{news_id}/crosspost"),
            ALICE,
            json!({}),
        ),
        200,
    );
    let latest = expect(
        &api.get(&format!("/channels/{GENERAL}/messages?limit=1"), ALICE),
        200,
    )
    .clone();
    let copy = &latest[0];
    assert_eq!(copy["content"], "release day <@100000000000000003>");
    assert_eq!(copy["flags"], 2);
    assert_eq!(copy["webhook_id"], hook_id.as_str());
    assert_eq!(copy["author"]["username"], "Test Guild #news");
    assert_eq!(copy["mentions"], json!([]));
    assert_eq!(copy["message_reference"]["message_id"], news_id);
    assert_eq!(copy["message_reference"]["channel_id"], NEWS);

    // Deleting the webhook unfollows: the next crosspost goes nowhere.
    expect(&api.delete(&format!("/webhooks/{hook_id}"), ALICE), 204);
    let second = expect(
        &api.post(
            &format!("/channels/{NEWS}/messages"),
            ALICE,
            json!({"content": "second"}),
        ),
        200,
    )
    .clone();
    let second_id = second["id"].as_str().unwrap();
    expect(
        &api.post(
            &format!("/channels/{NEWS}/messages/{second_id}/crosspost"),
            ALICE,
            json!({}),
        ),
        200,
    );
    let latest = expect(
        &api.get(&format!("/channels/{GENERAL}/messages?limit=1"), ALICE),
        200,
    )
    .clone();
    assert_eq!(latest[0]["id"], copy["id"]);
}

fn open_dm(api: &Api, token: &str, recipient: &str) -> Value {
    expect(
        &api.post(
            "/users/@me/channels",
            token,
            json!({"recipient_id": recipient}),
        ),
        200,
    )
    .clone()
}

#[test]
fn group_dm_recipients() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let dm = open_dm(&api, ALICE, BOB_ID);
    let dm_id = dm["id"].as_str().unwrap().to_string();

    expect_error(
        &api.put(&format!("/channels/{dm_id}/recipients/1"), ALICE, json!({})),
        404,
        10013,
    );
    expect_error(
        &api.put(
            &format!("/channels/{dm_id}/recipients/{CAROL_ID}"),
            DAVE,
            json!({}),
        ),
        403,
        50001,
    );
    expect_error(
        &api.put(
            &format!("/channels/{GENERAL}/recipients/{CAROL_ID}"),
            ALICE,
            json!({}),
        ),
        400,
        50024,
    );
    expect_error(
        &api.put(
            &format!("/channels/{dm_id}/recipients/{CAROL_ID}"),
            ALICE,
            json!({"nick": 5}),
        ),
        400,
        50035,
    );

    // A user adds friends only (50007 otherwise).
    expect_error(
        &api.put(
            &format!("/channels/{dm_id}/recipients/{CAROL_ID}"),
            ALICE,
            json!({}),
        ),
        403,
        50007,
    );
    for (token, friend) in [
        (ALICE, CAROL_ID),
        (CAROL, ALICE_ID),
        (BOB, DAVE_ID),
        (DAVE, BOB_ID),
    ] {
        expect(
            &api.put(
                &format!("/users/@me/relationships/{friend}"),
                token,
                json!({}),
            ),
            204,
        );
    }

    // Adding carol to the 1:1 DM makes a new group DM owned by alice.
    let group = expect(
        &api.put(
            &format!("/channels/{dm_id}/recipients/{CAROL_ID}"),
            ALICE,
            json!({}),
        ),
        201,
    )
    .clone();
    conforms(
        &spec,
        "PUT",
        "/channels/{channel_id}/recipients/{user_id}",
        201,
        &group,
    );
    assert_eq!(group["type"], 3);
    assert_eq!(group["owner_id"], ALICE_ID);
    assert_eq!(group["recipients"].as_array().unwrap().len(), 2);
    let group_id = group["id"].as_str().unwrap().to_string();
    let add = |user: &str| format!("/channels/{group_id}/recipients/{user}");

    // Everyone in it can read and write it.
    expect(
        &api.post(
            &format!("/channels/{group_id}/messages"),
            CAROL,
            json!({"content": "hi all"}),
        ),
        200,
    );
    assert!(expect(&api.get("/users/@me/channels", BOB), 200)
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == group_id.as_str()));

    // Adding dave (204, idempotent), then removals: only the owner removes others.
    expect(&api.put(&add(DAVE_ID), BOB, json!({})), 204);
    expect(&api.put(&add(DAVE_ID), BOB, json!({})), 204);
    expect(&api.get(&format!("/channels/{group_id}"), DAVE), 200);
    expect_error(&api.delete(&add(DAVE_ID), BOB), 403, 50013);
    expect(&api.delete(&add(DAVE_ID), ALICE), 204);
    expect_error(&api.get(&format!("/channels/{group_id}"), DAVE), 403, 50001);
    expect_error(&api.delete(&add(DAVE_ID), ALICE), 404, 10013);
    // The owner leaving hands the group to someone else.
    expect(&api.delete(&add(ALICE_ID), ALICE), 204);
    let after = expect(&api.get(&format!("/channels/{group_id}"), BOB), 200).clone();
    assert_ne!(after["owner_id"], ALICE_ID);
    expect_error(
        &api.delete(&format!("/channels/{dm_id}/recipients/{BOB_ID}"), ALICE),
        400,
        50024,
    );
}
