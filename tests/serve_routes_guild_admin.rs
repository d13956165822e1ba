//! Guild and application administration routes against the built binary: incident actions
//! (invite/DM pauses, enforced on invite use) and editing an application by id.
mod serve_routes_support;
mod serve_support;

use serde_json::json;
use serve_routes_support::*;
use serve_support::*;

fn in_hours(hours: u64) -> String {
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(hours * 3600);
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // Formatted by the server's own rules would be circular: use RFC 3339 by hand.
    let days = secs / 86_400;
    let (y, m, d) = civil(days as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[test]
fn incident_actions_pause_invites() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let path = format!("/guilds/{GUILD}/incident-actions");
    let invite = expect(
        &api.post(&format!("/channels/{GENERAL}/invites"), ALICE, json!({})),
        200,
    )["code"]
        .as_str()
        .unwrap()
        .to_string();

    expect_error(
        &api.put(&path, BOB, json!({"invites_disabled_until": in_hours(2)})),
        403,
        50013,
    );
    let too_far = api.put(
        &path,
        ALICE,
        json!({"invites_disabled_until": in_hours(48), "dms_disabled_until": "soon"}),
    );
    expect_error(&too_far, 400, 50035);
    assert!(too_far.body["errors"]["invites_disabled_until"]["_errors"].is_array());
    assert!(too_far.body["errors"]["dms_disabled_until"]["_errors"].is_array());

    let paused = expect(
        &api.put(&path, ALICE, json!({"invites_disabled_until": in_hours(2)})),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PUT",
        "/guilds/{guild_id}/incident-actions",
        200,
        &paused,
    );
    assert!(paused["invites_disabled_until"].is_string());
    assert_eq!(paused["dms_disabled_until"], json!(null));
    let guild = expect(&api.get(&format!("/guilds/{GUILD}"), ALICE), 200).clone();
    assert_eq!(
        guild["incidents_data"]["invites_disabled_until"],
        paused["invites_disabled_until"]
    );
    // Carol is not a member: the paused invite does not let her in.
    expect_error(
        &api.post(&format!("/invites/{invite}"), CAROL, json!({})),
        403,
        40006,
    );

    let lifted = expect(&api.put(&path, ALICE, json!({})), 200).clone();
    assert_eq!(
        lifted,
        json!({"invites_disabled_until": null, "dms_disabled_until": null})
    );
    assert_eq!(
        expect(&api.get(&format!("/guilds/{GUILD}"), ALICE), 200)["incidents_data"],
        json!(null)
    );
    expect(
        &api.post(&format!("/invites/{invite}"), CAROL, json!({})),
        200,
    );
}

#[test]
fn applications_are_edited_by_id() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let path = format!("/applications/{BOT_ID}");
    let edited = expect(
        &api.patch(&path, BOT, json!({"description": "pings things"})),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PATCH",
        "/applications/{application_id}",
        200,
        &edited,
    );
    assert_eq!(edited["description"], "pings things");
    assert_eq!(
        expect(&api.get("/applications/@me", BOT), 200)["description"],
        "pings things"
    );
    expect_error(
        &api.patch(&path, BOB, json!({"description": "mine now"})),
        403,
        50001,
    );
    expect_error(&api.patch("/applications/1", BOT, json!({})), 404, 10002);
    expect_error(
        &api.patch(&path, BOT, json!({"description": "x".repeat(401)})),
        400,
        50035,
    );
}
