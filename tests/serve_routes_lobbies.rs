//! Lobbies against the built binary: an application manages its lobbies and their members
//! with its bot token, members exchange lobby messages; errors and documented shapes.
mod serve_routes_support;
mod serve_support;

use serde_json::json;
use serve_routes_support::*;
use serve_support::*;

#[test]
fn application_managed_lobbies() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();

    let invalid = api.post(
        "/lobbies",
        BOT,
        json!({"metadata": {"topic": 5}, "idle_timeout_seconds": 1, "members": [{"flags": 1}]}),
    );
    expect_error(&invalid, 400, 50035);
    for field in ["metadata", "idle_timeout_seconds"] {
        assert!(
            invalid.body["errors"][field].is_object(),
            "{field}: {}",
            invalid.raw
        );
    }
    assert!(
        invalid.body["errors"]["members"]["0"]["id"].is_object(),
        "{}",
        invalid.raw
    );
    expect_error(
        &api.post("/lobbies", BOT, json!({"members": [{"id": "1"}]})),
        404,
        10013,
    );
    // Lobbies belong to applications: a user's session token cannot manage them.
    expect_error(&api.post("/lobbies", ALICE, json!({})), 401, 0);

    let lobby = expect(
        &api.post(
            "/lobbies",
            BOT,
            json!({"metadata": {"topic": "we need more redstone"},
                   "members": [{"id": ALICE_ID, "flags": 1}], "idle_timeout_seconds": 300}),
        ),
        201,
    )
    .clone();
    conforms(&spec, "POST", "/lobbies", 201, &lobby);
    assert_eq!(lobby["application_id"], BOT_ID);
    assert_eq!(lobby["members"][0]["id"], ALICE_ID);
    assert_eq!(lobby["members"][0]["flags"], 1);
    let id = lobby["id"].as_str().unwrap().to_string();
    let path = format!("/lobbies/{id}");
    let fetched = expect_documented(
        &spec,
        &api.get(&path, BOT),
        200,
        "GET",
        "/lobbies/{lobby_id}",
    );
    assert_eq!(fetched, lobby);

    let member = expect(
        &api.put(
            &format!("{path}/members/{BOB_ID}"),
            BOT,
            json!({"metadata": {"class": "mage"}, "additional_name": "Twindly"}),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PUT",
        "/lobbies/{lobby_id}/members/{user_id}",
        200,
        &member,
    );
    assert_eq!(member["additional_name"], "Twindly");
    let bulk = expect(
        &api.post(
            &format!("{path}/members/bulk"),
            BOT,
            json!([{"id": CAROL_ID}, {"id": ALICE_ID, "remove_member": true},
                   {"id": BOB_ID, "flags": 1}]),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "POST",
        "/lobbies/{lobby_id}/members/bulk",
        200,
        &bulk,
    );
    assert_eq!(bulk.as_array().unwrap().len(), 2);
    // Updating keeps what was not sent.
    assert_eq!(bulk[1]["additional_name"], "Twindly");
    let ids: Vec<String> = expect(&api.get(&path, BOT), 200)["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [CAROL_ID, BOB_ID]);
    expect_error(
        &api.post(&format!("{path}/members/bulk"), BOT, json!([])),
        400,
        50035,
    );

    // Messages: members post with their own token; outsiders do not see the lobby.
    let sent = expect(
        &api.post(
            &format!("{path}/messages"),
            BOB,
            json!({"content": "gg", "metadata": {"x": "1"}}),
        ),
        201,
    )
    .clone();
    conforms(&spec, "POST", "/lobbies/{lobby_id}/messages", 201, &sent);
    assert_eq!(sent["author"]["id"], BOB_ID);
    assert_eq!(sent["lobby_id"], id.as_str());
    expect(
        &api.post(
            &format!("{path}/messages"),
            BOT,
            json!({"content": "welcome"}),
        ),
        201,
    );
    expect_error(
        &api.post(&format!("{path}/messages"), ALICE, json!({"content": "hi"})),
        404,
        10031,
    );
    expect_error(
        &api.post(&format!("{path}/messages"), BOB, json!({"content": ""})),
        400,
        50035,
    );
    let history = expect_documented(
        &spec,
        &api.get(&format!("{path}/messages"), CAROL),
        200,
        "GET",
        "/lobbies/{lobby_id}/messages",
    );
    assert_eq!(history[0]["content"], "welcome");
    assert_eq!(history[1]["content"], "gg");
    assert_eq!(
        expect(&api.get(&format!("{path}/messages?limit=1"), CAROL), 200)
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Linking a guild channel: CanLinkLobby members who manage the channel, or the app.
    let link = format!("{path}/channel-linking");
    expect_error(
        &api.patch(&link, CAROL, json!({"channel_id": GENERAL})),
        403,
        50013,
    );
    expect_error(
        &api.patch(&link, BOB, json!({"channel_id": GENERAL})),
        403,
        50013,
    );
    expect_error(
        &api.patch(&link, BOT, json!({"channel_id": VOICE})),
        400,
        50024,
    );
    let linked = expect_documented(
        &spec,
        &api.patch(&link, BOT, json!({"channel_id": GENERAL})),
        200,
        "PATCH",
        "/lobbies/{lobby_id}/channel-linking",
    );
    assert_eq!(linked["linked_channel"]["id"], GENERAL);
    assert_eq!(
        expect(&api.get(&path, BOT), 200)["linked_channel"]["id"],
        GENERAL
    );
    let unlinked = expect(&api.patch(&link, BOT, json!({})), 200).clone();
    assert!(unlinked.get("linked_channel").is_none(), "{unlinked}");

    // Leaving: the member is gone and no longer sees the lobby.
    expect(&api.delete(&format!("{path}/members/@me"), CAROL), 204);
    expect_error(&api.get(&format!("{path}/messages"), CAROL), 404, 10031);

    let edited = expect(
        &api.patch(
            &path,
            BOT,
            json!({"metadata": null, "members": [{"id": DAVE_ID}]}),
        ),
        200,
    )
    .clone();
    conforms(&spec, "PATCH", "/lobbies/{lobby_id}", 200, &edited);
    assert_eq!(edited["metadata"], json!(null));
    assert_eq!(
        edited["members"],
        json!([{"id": DAVE_ID, "metadata": null, "flags": 0}])
    );
    expect(&api.delete(&format!("{path}/members/{DAVE_ID}"), BOT), 204);

    expect(&api.delete(&path, BOT), 204);
    expect(&api.delete(&path, BOT), 204);
    expect_error(&api.get(&path, BOT), 404, 10031);
}
