//! Guild templates, welcome screen, widget, onboarding and prune against the built binary:
//! success, permission denials, unknown ids, bad bodies, audit entries, schema conformance,
//! and twilight-http's models.
mod serve_routes_support;
mod serve_support;

use serde_json::{json, Value};
use serve_routes_support::*;
use serve_support::*;

/// The shared fixture with dave as a long-standing member (a prune candidate).
fn fixture() -> String {
    FIXTURE.replace(
        r#"{"user_id": "100000000000000005"}"#,
        r#"{"user_id": "100000000000000005", "joined_at": "2020-01-01T00:00:00+00:00"}"#,
    )
}

fn audit_entries(api: &Api, action_type: u16) -> Vec<Value> {
    expect(
        &api.get(
            &format!("/guilds/{GUILD}/audit-logs?action_type={action_type}"),
            ALICE,
        ),
        200,
    )["audit_log_entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Fetches widget.png and has Python's zlib check it: signature, every chunk's CRC, and the
/// decompressed pixel rows. Returns (HTTP status, "WxH").
fn widget_png(server: &Server, style: &str) -> (u16, String) {
    let response = reqwest::blocking::get(format!(
        "{}/guilds/{GUILD}/widget.png?style={style}",
        server.base()
    ))
    .expect("request sent");
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "image/png"
    );
    let bytes = response.bytes().expect("body").to_vec();
    let checker = r#"
import struct, sys, zlib
data = sys.stdin.buffer.read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
pos, idat, size = 8, b"", None
while pos < len(data):
    (length,) = struct.unpack(">I", data[pos:pos + 4])
    kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
    (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
    assert zlib.crc32(kind + body) == crc, kind
    if kind == b"IHDR":
        width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        size = (width, height)
    if kind == b"IDAT":
        idat += body
    pos += 12 + length
width, height = size
assert len(zlib.decompress(idat)) == height * (width * 3 + 1)
print(f"{width}x{height}")
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", checker])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python rejects the PNG: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        status,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[test]
fn guild_template_lifecycle() {
    let spec = spec();
    let server = Server::start(Some(&fixture()), &["--rate-limit", "off"]);
    let api = server.api();
    let list = format!("/guilds/{GUILD}/templates");

    expect_error(&api.get(&list, BOB), 403, 50013);
    expect_error(&api.get(&list, CAROL), 403, 50001);
    expect_error(&api.post(&list, BOB, json!({"name": "mine"})), 403, 50013);
    let bad = api.post(&list, ALICE, json!({"description": "x".repeat(121)}));
    expect_error(&bad, 400, 50035);
    assert!(
        bad.body["errors"]["name"].is_object() && bad.body["errors"]["description"].is_object()
    );

    let template = expect(
        &api.post(
            &list,
            ALICE,
            json!({"name": "Starter", "description": "a start"}),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "POST",
        "/guilds/{guild_id}/templates",
        200,
        &template,
    );
    assert_eq!(template["source_guild_id"], GUILD);
    assert_eq!(template["creator"]["id"], ALICE_ID);
    assert_eq!(template["is_dirty"], Value::Null);
    let snapshot = &template["serialized_source_guild"];
    assert_eq!(snapshot["name"], "Test Guild");
    assert_eq!(snapshot["roles"][0]["id"], 0);
    assert_eq!(snapshot["roles"][0]["name"], "@everyone");
    // #general sits in the "Text" category: its parent is the category's placeholder.
    let channels = snapshot["channels"].as_array().unwrap();
    let category = channels.iter().find(|c| c["name"] == "Text").unwrap();
    let general = channels.iter().find(|c| c["name"] == "general").unwrap();
    assert_eq!(
        general["parent_id"].as_str().unwrap(),
        category["id"].to_string()
    );
    let code = template["code"].as_str().unwrap().to_string();
    expect_error(
        &api.post(&list, ALICE, json!({"name": "Second"})),
        400,
        30031,
    );

    // Anyone can read a template by its code; unknown codes are 10057.
    expect_documented(
        &spec,
        &api.get(&format!("/guilds/templates/{code}"), CAROL),
        200,
        "GET",
        "/guilds/templates/{code}",
    );
    expect_error(&api.get("/guilds/templates/nope", CAROL), 404, 10057);
    let listed = expect_documented(
        &spec,
        &api.get(&list, BOT),
        200,
        "GET",
        "/guilds/{guild_id}/templates",
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // Changing the guild makes the template dirty until it is synced.
    expect(
        &api.post(
            &format!("/guilds/{GUILD}/roles"),
            ALICE,
            json!({"name": "Newcomers"}),
        ),
        200,
    );
    let dirty = expect(&api.get(&format!("/guilds/templates/{code}"), BOB), 200).clone();
    assert_eq!(dirty["is_dirty"], true);
    let one = format!("/guilds/{GUILD}/templates/{code}");
    expect_error(&api.put(&one, BOB, json!({})), 403, 50013);
    let synced = expect_documented(
        &spec,
        &api.put(&one, ALICE, json!({})),
        200,
        "PUT",
        "/guilds/{guild_id}/templates/{code}",
    );
    assert_eq!(synced["is_dirty"], Value::Null);
    assert!(synced["serialized_source_guild"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "Newcomers"));

    let edited = expect(
        &api.patch(&one, ALICE, json!({"name": "Renamed", "description": null})),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PATCH",
        "/guilds/{guild_id}/templates/{code}",
        200,
        &edited,
    );
    assert_eq!(edited["name"], "Renamed");
    assert_eq!(edited["description"], Value::Null);
    expect_error(&api.patch(&one, ALICE, json!({"name": ""})), 400, 50035);
    expect_error(
        &api.patch(
            &format!("/guilds/{GUILD}/templates/nope"),
            ALICE,
            json!({"name": "x"}),
        ),
        404,
        10057,
    );

    let deleted = expect_documented(
        &spec,
        &api.delete(&one, ALICE),
        200,
        "DELETE",
        "/guilds/{guild_id}/templates/{code}",
    );
    assert_eq!(deleted["code"], code.as_str());
    expect_error(
        &api.get(&format!("/guilds/templates/{code}"), BOB),
        404,
        10057,
    );
    expect_error(&api.delete(&one, ALICE), 404, 10057);
}

#[test]
fn welcome_screen_widget_and_onboarding() {
    let spec = spec();
    let server = Server::start(Some(&fixture()), &["--rate-limit", "off"]);
    let api = server.api();

    // Welcome screen: hidden from plain members until enabled.
    let welcome = format!("/guilds/{GUILD}/welcome-screen");
    expect_error(&api.get(&welcome, BOB), 403, 50013);
    let empty = expect_documented(
        &spec,
        &api.get(&welcome, ALICE),
        200,
        "GET",
        "/guilds/{guild_id}/welcome-screen",
    );
    assert_eq!(empty["welcome_channels"], json!([]));
    let bad = api.patch(
        &welcome,
        ALICE,
        json!({"welcome_channels": [{"channel_id": "1", "description": ""}]}),
    );
    expect_error(&bad, 400, 50035);
    assert!(bad.body["errors"]["welcome_channels"]["0"]["channel_id"].is_object());
    assert!(bad.body["errors"]["welcome_channels"]["0"]["description"].is_object());
    expect_error(
        &api.patch(&welcome, BOB, json!({"enabled": true})),
        403,
        50013,
    );
    let set = expect(
        &api.patch(
            &welcome,
            ALICE,
            json!({"enabled": true, "description": "Hi!",
                   "welcome_channels": [{"channel_id": GENERAL, "description": "Chat", "emoji_name": "👋"}]}),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PATCH",
        "/guilds/{guild_id}/welcome-screen",
        200,
        &set,
    );
    let seen = expect(&api.get(&welcome, BOB), 200).clone();
    assert_eq!(seen, set);
    assert_eq!(seen["welcome_channels"][0]["channel_id"], GENERAL);

    // Widget: settings need MANAGE_GUILD; widget.json is public and 50004 while disabled.
    let settings = format!("/guilds/{GUILD}/widget");
    let public = format!("{}/guilds/{GUILD}/widget.json", server.base());
    expect_error(&api.get(&settings, BOB), 403, 50013);
    let off = expect_documented(
        &spec,
        &api.get(&settings, BOT),
        200,
        "GET",
        "/guilds/{guild_id}/widget",
    );
    assert_eq!(off, json!({"enabled": false, "channel_id": null}));
    expect_error(&api.send("GET", &public, None, None, &[]), 403, 50004);
    let public_png = format!("{}/guilds/{GUILD}/widget.png", server.base());
    expect_error(&api.send("GET", &public_png, None, None, &[]), 403, 50004);
    expect_error(
        &api.patch(&settings, ALICE, json!({"channel_id": "123"})),
        400,
        50035,
    );
    let on = expect(
        &api.patch(
            &settings,
            ALICE,
            json!({"enabled": true, "channel_id": GENERAL}),
        ),
        200,
    )
    .clone();
    conforms(&spec, "PATCH", "/guilds/{guild_id}/widget", 200, &on);
    assert_eq!(on["channel_id"], GENERAL);
    let widget = expect_documented(
        &spec,
        &api.send("GET", &public, None, None, &[]),
        200,
        "GET",
        "/guilds/{guild_id}/widget.json",
    );
    assert_eq!(widget["name"], "Test Guild");
    assert_eq!(widget["channels"][0]["id"], VOICE);
    assert_eq!(
        expect(&api.get(&format!("/guilds/{GUILD}"), BOB), 200)["widget_enabled"],
        true
    );
    for (style, size) in [("shield", "76x20"), ("banner2", "320x64")] {
        assert_eq!(widget_png(&server, style), (200, size.to_string()));
    }
    let bad_style = api.send("GET", &format!("{public_png}?style=huge"), None, None, &[]);
    expect_error(&bad_style, 400, 50035);
    let updates = audit_entries(&api, 1);
    assert!(updates[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["key"] == "widget_enabled" && c["new_value"] == true));

    // Onboarding: members read it; MANAGE_GUILD + MANAGE_ROLES write it.
    let path = format!("/guilds/{GUILD}/onboarding");
    let initial = expect_documented(
        &spec,
        &api.get(&path, BOB),
        200,
        "GET",
        "/guilds/{guild_id}/onboarding",
    );
    assert_eq!(initial["enabled"], false);
    expect_error(&api.put(&path, BOB, json!({"mode": 1})), 403, 50013);
    expect_error(&api.get(&path, CAROL), 403, 50001);
    let bad = api.put(
        &path,
        ALICE,
        json!({"prompts": [{"id": "1", "title": "", "options": [{"title": "x", "role_ids": ["42"]}]}]}),
    );
    expect_error(&bad, 400, 50035);
    assert!(bad.body["errors"]["prompts"]["0"]["title"].is_object());
    assert!(bad.body["errors"]["prompts"]["0"]["options"]["0"]["role_ids"]["0"].is_object());
    let prompts = json!([{"id": "0", "title": "What brings you here?", "single_select": true,
        "options": [{"title": "Moderating", "description": "I help out", "role_ids": [MODS_ROLE],
                     "emoji_name": "🛡️"},
                    {"title": "Chatting", "channel_ids": [GENERAL]}]}]);
    let saved = expect(
        &api.put(
            &path,
            ALICE,
            json!({"prompts": prompts, "default_channel_ids": [GENERAL], "mode": 0}),
        ),
        200,
    )
    .clone();
    conforms(&spec, "PUT", "/guilds/{guild_id}/onboarding", 200, &saved);
    assert_eq!(saved["prompts"][0]["options"].as_array().unwrap().len(), 2);
    assert_ne!(saved["prompts"][0]["options"][0]["id"], "0");
    assert_eq!(expect(&api.get(&path, BOB), 200).clone(), saved);
    // One default channel is far below Discord's requirements for enabling.
    expect_error(
        &api.put(&path, ALICE, json!({"enabled": true})),
        400,
        350000,
    );
    assert_eq!(audit_entries(&api, 166).len(), 1);
}

#[test]
fn prune_counts_and_removes_inactive_members() {
    let spec = spec();
    let server = Server::start(Some(&fixture()), &["--rate-limit", "off"]);
    let api = server.api();
    let path = format!("/guilds/{GUILD}/prune");

    expect_error(&api.get(&path, BOB), 403, 50013);
    expect_error(&api.get(&format!("{path}?days=31"), BOT), 400, 50035);
    expect_error(
        &api.get(&format!("{path}?include_roles=x"), BOT),
        400,
        50035,
    );
    expect_error(&api.post(&path, BOT, json!({"days": 0})), 400, 50035);
    expect_error(&api.post(&path, BOT, json!({"days": "seven"})), 400, 50035);

    // Dave joined in 2020 and has no roles; bob joined today.
    let count = expect_documented(
        &spec,
        &api.get(&format!("{path}?days=7"), BOT),
        200,
        "GET",
        "/guilds/{guild_id}/prune",
    );
    assert_eq!(count["pruned"], 1);
    // A role outside include_roles protects a member.
    expect(
        &api.put(
            &format!("/guilds/{GUILD}/members/{DAVE_ID}/roles/{BOTS_ROLE}"),
            ALICE,
            json!({}),
        ),
        204,
    );
    assert_eq!(expect(&api.get(&path, BOT), 200)["pruned"], 0);
    assert_eq!(
        expect(
            &api.get(&format!("{path}?include_roles={BOTS_ROLE}"), BOT),
            200
        )["pruned"],
        1
    );
    let pruned = expect(
        &api.send(
            "POST",
            &path,
            Some(BOT),
            Some(&json!({"days": 7, "include_roles": [BOTS_ROLE]})),
            &[("X-Audit-Log-Reason", "spring%20cleaning")],
        ),
        200,
    )
    .clone();
    conforms(&spec, "POST", "/guilds/{guild_id}/prune", 200, &pruned);
    assert_eq!(pruned["pruned"], 1);
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/members/{DAVE_ID}"), ALICE),
        404,
        10007,
    );
    expect(
        &api.get(&format!("/guilds/{GUILD}/members/{BOB_ID}"), ALICE),
        200,
    );
    let entries = audit_entries(&api, 21);
    assert_eq!(entries[0]["options"]["members_removed"], "1");
    assert_eq!(entries[0]["reason"], "spring cleaning");
    let quiet = expect(
        &api.post(&path, BOT, json!({"compute_prune_count": false})),
        200,
    )
    .clone();
    assert_eq!(quiet, json!({"pruned": null}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_parses_guild_settings() {
    use twilight_model::id::Id;
    let fixture = fixture();
    let server = tokio::task::spawn_blocking(move || {
        Server::start(Some(&fixture), &["--rate-limit", "off"])
    })
    .await
    .unwrap();
    let http = server.twilight(BOT);
    let guild_id = Id::new(GUILD.parse().unwrap());
    let general = Id::new(GENERAL.parse().unwrap());

    let settings = http
        .update_guild_widget_settings(guild_id)
        .enabled(true)
        .channel_id(Some(general))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(settings.enabled);
    let settings = http
        .guild_widget_settings(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(settings.channel_id, general);
    let widget = http
        .guild_widget(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(widget.name, "Test Guild");

    let screen = http
        .update_guild_welcome_screen(guild_id)
        .enabled(true)
        .description("hello")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(screen.description.as_deref(), Some("hello"));
    let screen = http
        .guild_welcome_screen(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(screen.welcome_channels.is_empty());

    let onboarding = http
        .guild_onboarding(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(!onboarding.enabled);

    let count = http
        .guild_prune_count(guild_id)
        .days(7)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(count.pruned, 1);
    let pruned = http
        .create_guild_prune(guild_id)
        .days(7)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(pruned.pruned, 1);
}

#[test]
fn scheduled_event_user_counts() {
    let spec = spec();
    let server = Server::start(Some(&fixture()), &["--rate-limit", "off"]);
    let api = server.api();
    let event = expect(
        &api.post(
            &format!("/guilds/{GUILD}/scheduled-events"),
            ALICE,
            json!({"name": "Game night", "entity_type": 3, "privacy_level": 2,
                   "scheduled_start_time": "2030-01-01T20:00:00Z",
                   "scheduled_end_time": "2030-01-01T22:00:00Z",
                   "entity_metadata": {"location": "Online"}}),
        ),
        200,
    )
    .clone();
    let event_id = event["id"].as_str().unwrap();
    let base = format!("/guilds/{GUILD}/scheduled-events/{event_id}/users");
    let counts = format!("{base}/counts");
    let before = expect(&api.get(&counts, BOB), 200).clone();
    let initial = before["guild_scheduled_event_count"].as_u64().unwrap();
    expect(&api.put(&format!("{base}/@me"), BOB, json!({})), 200);
    expect(&api.put(&format!("{base}/@me"), DAVE, json!({})), 200);
    let after = expect_documented(
        &spec,
        &api.get(&counts, BOB),
        200,
        "GET",
        "/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}/users/counts",
    );
    assert_eq!(
        after["guild_scheduled_event_count"].as_u64().unwrap(),
        initial + 2
    );
    assert_eq!(after["guild_scheduled_event_exception_counts"], json!({}));
    expect_error(
        &api.get(
            &format!("{counts}?guild_scheduled_event_exception_ids=nope"),
            BOB,
        ),
        400,
        50035,
    );
    expect_error(&api.get(&counts, CAROL), 403, 50001);
    expect_error(
        &api.get(
            &format!("/guilds/{GUILD}/scheduled-events/1/users/counts"),
            BOB,
        ),
        404,
        10070,
    );
}
