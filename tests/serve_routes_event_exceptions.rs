//! Recurring scheduled events and their exceptions against the built binary: the recurrence
//! rule, moving and canceling one occurrence, its subscriber list, errors, documented shapes
//! and the GUILD_SCHEDULED_EVENT_EXCEPTION_* dispatches.
mod serve_routes_gateway_support;
mod serve_routes_support;
mod serve_support;

use serde_json::json;
use serve_routes_gateway_support::{call, next_dispatch, session};
use serve_routes_support::*;
use serve_support::*;

const START: &str = "2031-01-06T18:00:00Z";
const NEXT_WEEK: &str = "2031-01-13T18:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_event_exceptions() {
    let spec = spec();
    let server = Server::on_fixture_async().await;
    let base = server.base();
    let base = base.as_str();
    let events = format!("/guilds/{GUILD}/scheduled-events");
    let (status, error) = call(
        base,
        "POST",
        events.clone(),
        ALICE,
        json!({"name": "Standup", "privacy_level": 2, "entity_type": 3,
               "entity_metadata": {"location": "Room 1"}, "scheduled_start_time": START,
               "scheduled_end_time": "2031-01-06T18:30:00Z",
               "recurrence_rule": {"start": START, "frequency": 2, "interval": 3}}),
    )
    .await;
    assert_eq!((status, &error["code"]), (400, &json!(50035)));
    assert!(error["errors"]["recurrence_rule"]["interval"]["_errors"].is_array());
    let (status, event) = call(
        base,
        "POST",
        events.clone(),
        ALICE,
        json!({"name": "Standup", "privacy_level": 2, "entity_type": 3,
               "entity_metadata": {"location": "Room 1"}, "scheduled_start_time": START,
               "scheduled_end_time": "2031-01-06T18:30:00Z",
               "recurrence_rule": {"start": START, "frequency": 2, "interval": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["recurrence_rule"]["frequency"], 2);
    assert_eq!(event["recurrence_rule"]["by_weekday"], json!(null));
    let id = event["id"].as_str().unwrap().to_string();
    let exceptions = format!("{events}/{id}/exceptions");

    // GUILDS | GUILD_SCHEDULED_EVENTS
    let mut watcher = session(&server.addr, ALICE, 1 | (1 << 16)).await;
    let (status, error) = call(
        base,
        "POST",
        exceptions.clone(),
        ALICE,
        json!({"original_scheduled_start_time": "2031-01-09T18:00:00Z", "is_canceled": true}),
    )
    .await;
    assert_eq!((status, &error["code"]), (400, &json!(50035)), "{error}");
    let (status, error) = call(
        base,
        "POST",
        exceptions.clone(),
        BOB,
        json!({"original_scheduled_start_time": NEXT_WEEK, "is_canceled": true}),
    )
    .await;
    assert_eq!((status, &error["code"]), (403, &json!(50013)));
    let (status, canceled) = call(
        base,
        "POST",
        exceptions.clone(),
        ALICE,
        json!({"original_scheduled_start_time": NEXT_WEEK, "is_canceled": true}),
    )
    .await;
    assert_eq!(status, 200, "{canceled}");
    conforms(
        &spec,
        "POST",
        "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/exceptions",
        200,
        &canceled,
    );
    assert_eq!(canceled["event_id"], id.as_str());
    assert_eq!(canceled["is_canceled"], true);
    let exception_id = canceled["event_exception_id"].as_str().unwrap().to_string();
    let (created, _) = next_dispatch(&mut watcher, |n| {
        n == "GUILD_SCHEDULED_EVENT_EXCEPTION_CREATE"
    })
    .await;
    assert_eq!(created["event_exception_id"], exception_id.as_str());
    assert_eq!(created["guild_id"], GUILD);
    let (status, _) = call(
        base,
        "POST",
        exceptions.clone(),
        ALICE,
        json!({"original_scheduled_start_time": NEXT_WEEK}),
    )
    .await;
    assert_eq!(status, 400);

    // Moved instead of canceled.
    let one = format!("{exceptions}/{exception_id}");
    let (status, moved) = call(
        base,
        "PATCH",
        one.clone(),
        ALICE,
        json!({"is_canceled": false, "scheduled_start_time": "2031-01-14T18:00:00Z",
               "scheduled_end_time": "2031-01-14T18:30:00Z"}),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    conforms(
        &spec,
        "PATCH",
        "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/exceptions/{exception_id}",
        200,
        &moved,
    );
    assert_eq!(moved["is_canceled"], false);
    assert!(moved["scheduled_start_time"]
        .as_str()
        .unwrap()
        .starts_with("2031-01-14T18:00:00"));
    next_dispatch(&mut watcher, |n| {
        n == "GUILD_SCHEDULED_EVENT_EXCEPTION_UPDATE"
    })
    .await;
    let (status, error) = call(
        base,
        "PATCH",
        one.clone(),
        ALICE,
        json!({"scheduled_end_time": "2031-01-14T17:00:00Z"}),
    )
    .await;
    assert_eq!((status, &error["code"]), (400, &json!(50035)));

    let (_, shown) = call(base, "GET", format!("{events}/{id}"), BOB, json!(null)).await;
    conforms(
        &spec,
        "GET",
        "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}",
        200,
        &shown,
    );
    assert_eq!(shown["guild_scheduled_event_exceptions"][0], moved);

    // Who is interested in that occurrence.
    call(
        base,
        "PUT",
        format!("{events}/{id}/users/@me"),
        BOB,
        json!({}),
    )
    .await;
    let (status, users) = call(
        base,
        "GET",
        format!("{events}/{id}/{exception_id}/users"),
        ALICE,
        json!(null),
    )
    .await;
    assert_eq!(status, 200, "{users}");
    conforms(
        &spec,
        "GET",
        "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/{guild_scheduled_event_exception_id}/users",
        200,
        &users,
    );
    assert_eq!(users[0]["user"]["id"], BOB_ID);
    let (status, _) = call(
        base,
        "GET",
        format!("{events}/{id}/1/users"),
        ALICE,
        json!(null),
    )
    .await;
    assert_eq!(status, 404);

    let (status, _) = call(base, "DELETE", one.clone(), ALICE, json!(null)).await;
    assert_eq!(status, 204);
    next_dispatch(&mut watcher, |n| {
        n == "GUILD_SCHEDULED_EVENT_EXCEPTION_DELETE"
    })
    .await;
    let (status, _) = call(base, "DELETE", one, ALICE, json!(null)).await;
    assert_eq!(status, 404);

    // One-off events have no occurrences to change.
    let (_, single) = call(
        base,
        "POST",
        events.clone(),
        ALICE,
        json!({"name": "Launch", "privacy_level": 2, "entity_type": 3,
               "entity_metadata": {"location": "Here"}, "scheduled_start_time": START,
               "scheduled_end_time": "2031-01-06T19:00:00Z"}),
    )
    .await;
    let (status, error) = call(
        base,
        "POST",
        format!("{events}/{}/exceptions", single["id"].as_str().unwrap()),
        ALICE,
        json!({"original_scheduled_start_time": START}),
    )
    .await;
    assert_eq!((status, &error["code"]), (400, &json!(50035)));
}
