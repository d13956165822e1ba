//! Voice states over REST against the built binary: a member joins a stage through gateway
//! op 4, then the REST routes read and change the stage controls (suppress, request to
//! speak) with permission checks, Discord's errors, the documented shapes and the
//! VOICE_STATE_UPDATE dispatches other sessions see.
mod serve_routes_gateway_support;
mod serve_routes_support;
mod serve_support;

use serde_json::json;
use serve_routes_gateway_support::{call, next_dispatch, send, session};
use serve_routes_support::*;
use serve_support::*;

const GUILDS: u64 = 1;
const GUILD_VOICE_STATES: u64 = 1 << 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_controls_over_rest() {
    let spec = spec();
    let server = Server::on_fixture_async().await;
    let base = server.base();
    let base = base.as_str();
    let (status, stage) = call(
        base,
        "POST",
        format!("/guilds/{GUILD}/channels"),
        ALICE,
        json!({"name": "Town hall", "type": 13}),
    )
    .await;
    assert_eq!(status, 201, "{stage}");
    let stage_id = stage["id"].as_str().unwrap().to_string();
    let own = format!("/guilds/{GUILD}/voice-states/@me");
    let bobs = format!("/guilds/{GUILD}/voice-states/{BOB_ID}");

    // Nobody is connected yet.
    let (status, error) = call(base, "GET", own.clone(), BOB, json!(null)).await;
    assert_eq!((status, &error["code"]), (404, &json!(10065)), "{error}");

    let mut watcher = session(&server.addr, ALICE, GUILDS | GUILD_VOICE_STATES).await;
    let mut bob = session(&server.addr, BOB, GUILDS).await;
    send(
        &mut bob,
        json!({"op": 4, "d": {"guild_id": GUILD, "channel_id": stage_id,
                              "self_mute": false, "self_deaf": true}}),
    )
    .await;
    let (joined, _) = next_dispatch(&mut watcher, |n| n == "VOICE_STATE_UPDATE").await;
    assert_eq!(joined["user_id"], BOB_ID);
    // Stage audiences join suppressed.
    assert_eq!(joined["suppress"], true);

    let (status, mine) = call(base, "GET", own.clone(), BOB, json!(null)).await;
    assert_eq!(status, 200, "{mine}");
    conforms(
        &spec,
        "GET",
        "/guilds/{guild_id}/voice-states/@me",
        200,
        &mine,
    );
    assert_eq!(mine["channel_id"], stage_id.as_str());
    assert_eq!(mine["guild_id"], GUILD);
    assert_eq!(mine["self_deaf"], true);
    assert_eq!(mine["member"]["user"]["id"], BOB_ID);
    let (status, seen) = call(base, "GET", bobs.clone(), ALICE, json!(null)).await;
    assert_eq!(status, 200, "{seen}");
    conforms(
        &spec,
        "GET",
        "/guilds/{guild_id}/voice-states/{user_id}",
        200,
        &seen,
    );
    assert_eq!(seen["session_id"], mine["session_id"]);
    let (status, error) = call(
        base,
        "GET",
        format!("/guilds/{GUILD}/voice-states/{ALICE_ID}"),
        BOB,
        json!(null),
    )
    .await;
    assert_eq!((status, &error["code"]), (404, &json!(10065)));
    let (status, error) = call(base, "GET", bobs.clone(), CAROL, json!(null)).await;
    assert_eq!((status, &error["code"]), (403, &json!(50001)));

    // Bob may ask to speak, but not unsuppress himself (no MUTE_MEMBERS).
    let (status, error) = call(base, "PATCH", own.clone(), BOB, json!({"suppress": false})).await;
    assert_eq!((status, &error["code"]), (403, &json!(50013)), "{error}");
    let (status, error) = call(
        base,
        "PATCH",
        own.clone(),
        BOB,
        json!({"request_to_speak_timestamp": "2001-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!((status, &error["code"]), (400, &json!(50035)));
    assert!(error["errors"]["request_to_speak_timestamp"]["_errors"].is_array());
    let (status, error) = call(
        base,
        "PATCH",
        own.clone(),
        BOB,
        json!({"channel_id": GENERAL, "suppress": true}),
    )
    .await;
    assert_eq!((status, &error["code"]), (400, &json!(50035)));
    assert!(error["errors"]["channel_id"]["_errors"].is_array());
    let asked_at = "2099-01-01T00:00:00.000000+00:00";
    let (status, _) = call(
        base,
        "PATCH",
        own.clone(),
        BOB,
        json!({"channel_id": stage_id, "request_to_speak_timestamp": asked_at}),
    )
    .await;
    assert_eq!(status, 204);
    let (asked, _) = next_dispatch(&mut watcher, |n| n == "VOICE_STATE_UPDATE").await;
    assert_eq!(asked["request_to_speak_timestamp"], asked_at);
    assert_eq!(asked["suppress"], true);

    // A stage moderator invites him up, then sends him back.
    let (status, error) = call(
        base,
        "PATCH",
        bobs.clone(),
        DAVE,
        json!({"channel_id": stage_id, "suppress": false}),
    )
    .await;
    assert_eq!((status, &error["code"]), (403, &json!(50013)));
    let (status, _) = call(
        base,
        "PATCH",
        bobs.clone(),
        ALICE,
        json!({"channel_id": stage_id, "suppress": false}),
    )
    .await;
    assert_eq!(status, 204);
    let (speaking, _) = next_dispatch(&mut watcher, |n| n == "VOICE_STATE_UPDATE").await;
    assert_eq!(speaking["suppress"], false);
    assert!(speaking["request_to_speak_timestamp"].is_string());
    let (status, _) = call(
        base,
        "PATCH",
        bobs.clone(),
        ALICE,
        json!({"channel_id": stage_id, "suppress": true}),
    )
    .await;
    assert_eq!(status, 204);
    let (audience, _) = next_dispatch(&mut watcher, |n| n == "VOICE_STATE_UPDATE").await;
    assert_eq!(audience["suppress"], true);
    assert_eq!(audience["request_to_speak_timestamp"], json!(null));
    let (_, now) = call(base, "GET", own.clone(), BOB, json!(null)).await;
    assert_eq!(now["suppress"], true);

    // Outside a stage the controls do not apply.
    send(
        &mut bob,
        json!({"op": 4, "d": {"guild_id": GUILD, "channel_id": VOICE,
                              "self_mute": false, "self_deaf": false}}),
    )
    .await;
    let (moved, _) = next_dispatch(&mut watcher, |n| n == "VOICE_STATE_UPDATE").await;
    assert_eq!(moved["channel_id"], VOICE);
    assert_eq!(moved["suppress"], false);
    let (status, error) = call(base, "PATCH", own.clone(), BOB, json!({"suppress": true})).await;
    assert_eq!((status, &error["code"]), (400, &json!(50024)));

    // Leaving voice removes the state.
    send(
        &mut bob,
        json!({"op": 4, "d": {"guild_id": GUILD, "channel_id": null,
                              "self_mute": false, "self_deaf": false}}),
    )
    .await;
    next_dispatch(&mut watcher, |n| n == "VOICE_STATE_UPDATE").await;
    let (status, _) = call(base, "GET", own, BOB, json!(null)).await;
    assert_eq!(status, 404);
}
