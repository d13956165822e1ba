//! Guild scheduled events against the built binary: CRUD, status transitions, subscribers,
//! permissions, errors, schema conformance and twilight-http.
mod serve_routes_support;
mod serve_support;

use serde_json::json;
use serve_routes_support::*;
use serve_support::*;

const START: &str = "2030-01-01T18:00:00+00:00";
const END: &str = "2030-01-01T20:00:00+00:00";

/// The shared world, with pingbot's role granted ADMINISTRATOR (it lacks MANAGE_EVENTS there).
fn admin_bot_fixture() -> String {
    let fixture = FIXTURE.replace(r#""permissions": "1496662011127""#, r#""permissions": "8""#);
    assert_ne!(fixture, FIXTURE, "fixture rewrite applied");
    fixture
}

fn events() -> String {
    format!("/guilds/{GUILD}/scheduled-events")
}

#[test]
fn scheduled_events_lifecycle() {
    let spec = spec();
    let server = Server::start(Some(&admin_bot_fixture()), &["--rate-limit", "off"]);
    let api = server.api();

    let external = expect(
        &api.post(
            &events(),
            BOT,
            json!({"name": "Meetup", "description": "Bring snacks", "privacy_level": 2,
                   "entity_type": 3, "scheduled_start_time": START, "scheduled_end_time": END,
                   "entity_metadata": {"location": "The park"}}),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "POST",
        "/guilds/{guild_id}/scheduled-events",
        200,
        &external,
    );
    assert_eq!(external["status"], 1);
    assert_eq!(external["creator_id"], BOT_ID);
    assert_eq!(external["channel_id"], json!(null));
    assert_eq!(external["entity_metadata"]["location"], "The park");
    // Stored as Discord renders timestamps (with microseconds), same instant.
    assert_eq!(
        external["scheduled_start_time"],
        "2030-01-01T18:00:00.000000+00:00"
    );
    let id = external["id"].as_str().unwrap().to_string();
    let one = format!("{}/{id}", events());

    let voice = expect(
        &api.post(
            &events(),
            BOT,
            json!({"name": "Voice chat", "privacy_level": 2, "entity_type": 2,
                   "scheduled_start_time": START, "channel_id": VOICE}),
        ),
        200,
    )
    .clone();
    assert_eq!(voice["channel_id"], VOICE);

    // Validation: every problem named at its field.
    let bad = api.post(
        &events(),
        BOT,
        json!({"name": "", "privacy_level": 1, "entity_type": 3,
               "scheduled_start_time": "2001-01-01T00:00:00Z"}),
    );
    expect_error(&bad, 400, 50035);
    for field in ["name", "privacy_level", "scheduled_start_time"] {
        assert!(
            bad.body["errors"][field].is_object(),
            "{field}: {}",
            bad.raw
        );
    }
    let external_without_location = api.post(
        &events(),
        BOT,
        json!({"name": "x", "privacy_level": 2, "entity_type": 3, "scheduled_start_time": START}),
    );
    expect_error(&external_without_location, 400, 50035);
    assert!(external_without_location.body["errors"]["entity_metadata"]["location"].is_object());
    assert!(external_without_location.body["errors"]["scheduled_end_time"].is_object());
    let voice_in_text = api.post(
        &events(),
        BOT,
        json!({"name": "x", "privacy_level": 2, "entity_type": 2,
               "scheduled_start_time": START, "channel_id": GENERAL}),
    );
    expect_error(&voice_in_text, 400, 50035);
    assert!(voice_in_text.body["errors"]["channel_id"].is_object());

    // Permissions and unknowns. @everyone's default CREATE_EVENTS lets bob manage his own
    // events, but not others' (that takes MANAGE_EVENTS).
    let bobs = expect(
        &api.post(
            &events(),
            BOB,
            json!({"name": "x", "privacy_level": 2, "entity_type": 2,
                   "scheduled_start_time": START, "channel_id": VOICE}),
        ),
        200,
    )
    .clone();
    let bobs_path = format!("{}/{}", events(), bobs["id"].as_str().unwrap());
    expect(&api.patch(&bobs_path, BOB, json!({"name": "Bob's"})), 200);
    expect_error(
        &api.delete(
            &format!("{}/{}", events(), voice["id"].as_str().unwrap()),
            BOB,
        ),
        403,
        50013,
    );
    expect(&api.delete(&bobs_path, BOB), 204);
    expect_error(&api.get(&events(), CAROL), 403, 50001);
    expect_error(&api.get(&format!("{}/1", events()), BOT), 404, 10070);
    expect_error(&api.patch(&one, BOB, json!({"name": "mine"})), 403, 50013);

    // Subscribers.
    expect(&api.put(&format!("{one}/users/@me"), BOB, json!({})), 200);
    expect(&api.put(&format!("{one}/users/@me"), ALICE, json!({})), 200);
    let users = expect_documented(
        &spec,
        &api.get(&format!("{one}/users?with_member=true"), BOT),
        200,
        "GET",
        "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/users",
    );
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert!(users[0]["member"]["joined_at"].is_string());
    let limited = expect(&api.get(&format!("{one}/users?limit=1"), BOT), 200).clone();
    assert_eq!(limited.as_array().unwrap().len(), 1);
    expect_error(&api.get(&format!("{one}/users?limit=101"), BOT), 400, 50035);
    let counted = expect_documented(
        &spec,
        &api.get(&format!("{one}?with_user_count=true"), BOT),
        200,
        "GET",
        "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}",
    );
    assert_eq!(counted["user_count"], 2);
    expect(&api.delete(&format!("{one}/users/@me"), BOB), 204);
    expect_error(&api.delete(&format!("{one}/users/@me"), BOB), 404, 10071);

    // Status: scheduled → active → completed; nothing after that.
    let bad_transition = api.patch(&one, BOT, json!({"status": 3}));
    expect_error(&bad_transition, 400, 50035);
    let active = expect(
        &api.patch(&one, BOT, json!({"status": 2, "name": "Meetup!"})),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PATCH",
        "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}",
        200,
        &active,
    );
    assert_eq!(active["status"], 2);
    assert_eq!(active["name"], "Meetup!");
    expect(&api.patch(&one, BOT, json!({"status": 3})), 200);
    expect_error(&api.patch(&one, BOT, json!({"name": "again"})), 400, 50035);

    let list = expect(
        &api.get(&format!("{}?with_user_count=true", events()), BOB),
        200,
    )
    .clone();
    conforms(
        &spec,
        "GET",
        "/guilds/{guild_id}/scheduled-events",
        200,
        &list,
    );
    assert_eq!(list.as_array().unwrap().len(), 2);

    expect(&api.delete(&one, BOT), 204);
    expect_error(&api.get(&one, BOT), 404, 10070);
    let audit = expect(&api.get(&format!("/guilds/{GUILD}/audit-logs"), ALICE), 200).clone();
    let actions = audit_actions(&audit);
    for action in [100, 101, 102] {
        assert!(
            actions.contains(&action),
            "audit action {action} in {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_reads_scheduled_events() {
    use twilight_model::id::Id;

    let server = tokio::task::spawn_blocking(|| {
        Server::start(Some(&admin_bot_fixture()), &["--rate-limit", "off"])
    })
    .await
    .unwrap();
    let http = server.twilight(BOT);
    let guild_id = Id::new(GUILD.parse().unwrap());
    let start = twilight_model::util::Timestamp::parse(START).unwrap();
    let end = twilight_model::util::Timestamp::parse(END).unwrap();
    let created = http
        .create_guild_scheduled_event(
            guild_id,
            twilight_model::guild::scheduled_event::PrivacyLevel::GuildOnly,
        )
        .external("Picnic", "The lake", &start, &end)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(created.name, "Picnic");
    let listed = http
        .guild_scheduled_events(guild_id)
        .with_user_count(true)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user_count, Some(0));
    let users = http
        .guild_scheduled_event_users(guild_id, created.id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(users.is_empty());
    http.delete_guild_scheduled_event(guild_id, created.id)
        .await
        .unwrap();
    drop(server);
}
