//! Stage instances against the built binary: open, read, edit, close, errors, schema.
mod serve_routes_support;
mod serve_support;

use serde_json::json;
use serve_routes_support::*;
use serve_support::*;

#[test]
fn stage_lifecycle() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let stage = expect(
        &api.post(
            &format!("/guilds/{GUILD}/channels"),
            ALICE,
            json!({"name": "Town hall", "type": 13}),
        ),
        201,
    )
    .clone();
    let stage_id = stage["id"].as_str().unwrap().to_string();
    let path = format!("/stage-instances/{stage_id}");

    expect_error(&api.get(&path, BOB), 404, 10067);
    // Only stage channels; only stage moderators (bob has no MANAGE_CHANNELS/MUTE/MOVE).
    expect_error(
        &api.post(
            "/stage-instances",
            ALICE,
            json!({"channel_id": GENERAL, "topic": "x"}),
        ),
        400,
        50024,
    );
    expect_error(
        &api.post(
            "/stage-instances",
            BOB,
            json!({"channel_id": stage_id, "topic": "x"}),
        ),
        403,
        50013,
    );
    let invalid = api.post(
        "/stage-instances",
        ALICE,
        json!({"channel_id": stage_id, "topic": ""}),
    );
    expect_error(&invalid, 400, 50035);
    assert!(invalid.body["errors"]["topic"].is_object());

    let opened = expect(
        &api.post(
            "/stage-instances",
            ALICE,
            json!({"channel_id": stage_id, "topic": "Quarterly update"}),
        ),
        200,
    )
    .clone();
    conforms(&spec, "POST", "/stage-instances", 200, &opened);
    assert_eq!(opened["channel_id"], stage_id.as_str());
    assert_eq!(opened["guild_id"], GUILD);
    assert_eq!(opened["privacy_level"], 2);
    expect_error(
        &api.post(
            "/stage-instances",
            ALICE,
            json!({"channel_id": stage_id, "topic": "again"}),
        ),
        400,
        150006,
    );

    let fetched = expect_documented(
        &spec,
        &api.get(&path, BOB),
        200,
        "GET",
        "/stage-instances/{channel_id}",
    );
    assert_eq!(fetched, opened);
    let edited = expect_documented(
        &spec,
        &api.patch(&path, ALICE, json!({"topic": "Q&A"})),
        200,
        "PATCH",
        "/stage-instances/{channel_id}",
    );
    assert_eq!(edited["topic"], "Q&A");
    expect_error(&api.patch(&path, BOB, json!({"topic": "mine"})), 403, 50013);
    expect_error(&api.delete(&path, BOB), 403, 50013);
    expect(&api.delete(&path, ALICE), 204);
    expect_error(&api.get(&path, BOB), 404, 10067);
    expect_error(&api.delete(&path, ALICE), 404, 10067);
}
