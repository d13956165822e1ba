//! Fixtures beyond users and guilds, through the binary: threads, DMs, webhooks, bans, invites and
//! application commands are served as seeded (with Discord's defaults), and each kind of bad
//! input fails naming its JSON path while writing nothing.
mod serve_support;

use std::process::Command;

use serde_json::{json, Value};
use serve_support::*;

const THREAD: &str = "300000000000000001";
const PRIVATE_THREAD: &str = "300000000000000002";
const HOOK: &str = "300000000000000010";
const DM: &str = "300000000000000020";

/// The shared test world plus one of everything a fixture can seed.
fn rich_fixture() -> Value {
    let mut fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let guild = &mut fixture["guilds"][0];
    guild["threads"] = json!([
        {"id": THREAD, "parent_id": GENERAL, "name": "release planning",
         "owner_id": BOB_ID, "members": [DAVE_ID],
         "messages": [{"author_id": BOB_ID, "content": "first in thread"}]},
        {"id": PRIVATE_THREAD, "parent_id": GENERAL, "name": "mods only", "type": 12,
         "auto_archive_duration": 60}
    ]);
    guild["webhooks"] = json!([
        {"id": HOOK, "channel_id": GENERAL, "name": "Deploys", "token": "deploy-token"}
    ]);
    guild["bans"] = json!([{"user_id": CAROL_ID, "reason": "spam"}]);
    guild["invites"] = json!([
        {"code": "welcome", "channel_id": GENERAL, "max_age": 0},
        {"code": "oneshot", "channel_id": NEWS, "max_uses": 1, "inviter_id": BOB_ID}
    ]);
    guild["commands"] = json!([
        {"application_id": BOT_ID, "name": "deploy", "description": "Ship it",
         "options": [{"type": 3, "name": "target", "description": "where", "required": true}]}
    ]);
    fixture["users"][1]["application"] = json!({
        "commands": [{"name": "ping", "description": "Replies with pong"}]
    });
    fixture["dms"] = json!([
        {"id": DM, "recipients": [ALICE_ID, BOB_ID],
         "messages": [{"author_id": BOB_ID, "content": "hi alice", "pinned": true}]}
    ]);
    fixture
}

#[test]
fn a_fixture_seeds_threads_dms_webhooks_bans_invites_and_commands() {
    let server = Server::start(Some(&rich_fixture().to_string()), &["--rate-limit", "off"]);
    let api = server.api();

    // Threads: Discord's defaults (public type 11, 3-day archive, not archived), members, messages.
    let thread = expect(&api.get(&format!("/channels/{THREAD}"), BOB), 200).clone();
    assert_eq!(thread["type"], 11);
    assert_eq!(thread["parent_id"], GENERAL);
    assert_eq!(thread["owner_id"], BOB_ID);
    assert_eq!(thread["thread_metadata"]["archived"], false);
    assert_eq!(thread["thread_metadata"]["auto_archive_duration"], 4320);
    let members = expect(
        &api.get(&format!("/channels/{THREAD}/thread-members"), BOB),
        200,
    )
    .clone();
    let mut ids: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, vec![BOB_ID, DAVE_ID]);
    let messages = expect(&api.get(&format!("/channels/{THREAD}/messages"), BOB), 200).clone();
    assert_eq!(messages[0]["content"], "first in thread");
    assert_eq!(messages[0]["author"]["id"], BOB_ID);
    // A private thread is invisible to a plain member who is not in it.
    let private = expect(&api.get(&format!("/channels/{PRIVATE_THREAD}"), ALICE), 200).clone();
    assert_eq!(private["type"], 12);
    assert_eq!(private["thread_metadata"]["auto_archive_duration"], 60);
    expect_error(
        &api.get(&format!("/channels/{PRIVATE_THREAD}"), DAVE),
        403,
        50001,
    );

    // DMs: listed for both participants, with the seeded (pinned) message.
    let dms = expect(&api.get("/users/@me/channels", ALICE), 200).clone();
    let dm = dms
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == DM)
        .expect("the seeded DM is listed");
    assert_eq!(dm["type"], 1);
    assert_eq!(dm["recipients"][0]["id"], BOB_ID);
    let dm_messages = expect(&api.get(&format!("/channels/{DM}/messages"), ALICE), 200).clone();
    assert_eq!(dm_messages[0]["content"], "hi alice");
    let pins = expect(&api.get(&format!("/channels/{DM}/pins"), BOB), 200).clone();
    assert_eq!(pins[0]["content"], "hi alice");
    expect_error(&api.get(&format!("/channels/{DM}"), DAVE), 403, 50001);

    // Webhooks: listed for managers, executable with the fixture's token.
    let hooks = expect(
        &api.get(&format!("/channels/{GENERAL}/webhooks"), ALICE),
        200,
    )
    .clone();
    assert_eq!(hooks[0]["id"], HOOK);
    assert_eq!(hooks[0]["name"], "Deploys");
    assert_eq!(
        hooks[0]["user"]["id"], ALICE_ID,
        "creator defaults to the owner"
    );
    let sent = expect(
        &api.send(
            "POST",
            &format!("/webhooks/{HOOK}/deploy-token?wait=true"),
            None,
            Some(&json!({"content": "deployed"})),
            &[],
        ),
        200,
    )
    .clone();
    assert_eq!(sent["webhook_id"], HOOK);

    // Bans: listed with the reason; the banned user cannot join through an invite.
    let bans = expect(&api.get(&format!("/guilds/{GUILD}/bans"), ALICE), 200).clone();
    assert_eq!(bans[0]["user"]["id"], CAROL_ID);
    assert_eq!(bans[0]["reason"], "spam");
    expect_error(&api.post("/invites/welcome", CAROL, json!({})), 403, 40007);

    // Invites: Discord's defaults where the fixture is silent.
    let welcome = expect(&api.get("/invites/welcome", ALICE), 200).clone();
    assert_eq!(welcome["guild"]["id"], GUILD);
    assert_eq!(welcome["channel"]["id"], GENERAL);
    let listed = expect(&api.get(&format!("/guilds/{GUILD}/invites"), ALICE), 200).clone();
    let oneshot = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "oneshot")
        .expect("listed");
    assert_eq!(oneshot["max_age"], 86400);
    assert_eq!(oneshot["max_uses"], 1);
    assert_eq!(oneshot["inviter"]["id"], BOB_ID);

    // Application commands: global and guild, normalised like the create routes do.
    let global = expect(
        &api.get(&format!("/applications/{BOT_ID}/commands"), BOT),
        200,
    )
    .clone();
    assert_eq!(global[0]["name"], "ping");
    assert_eq!(global[0]["type"], 1);
    assert_eq!(global[0]["application_id"], BOT_ID);
    let guild_commands = expect(
        &api.get(
            &format!("/applications/{BOT_ID}/guilds/{GUILD}/commands"),
            BOT,
        ),
        200,
    )
    .clone();
    assert_eq!(guild_commands[0]["name"], "deploy");
    assert_eq!(guild_commands[0]["guild_id"], GUILD);
    assert_eq!(guild_commands[0]["options"][0]["required"], true);
}

/// Runs `serve` with `fixture` and returns its stderr, asserting it failed and wrote nothing.
fn refused(fixture: &Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = dir.path().join("fixture.json");
    std::fs::write(&path, fixture.to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args(["serve", "--api", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--fixture")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "accepted: {stderr}");
    assert!(!data.exists(), "nothing may be written: {stderr}");
    stderr
}

#[test]
fn bad_threads_dms_webhooks_bans_invites_and_commands_name_their_json_path() {
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "/guilds/0/threads/0/parent_id",
            json!(VOICE),
            "$.guilds[0].threads[0].parent_id",
            "holds no threads",
        ),
        (
            "/guilds/0/threads/1/type",
            json!(10),
            "$.guilds[0].threads[1].type",
            "is not a thread type this parent can hold",
        ),
        (
            "/guilds/0/threads/1/members",
            json!([CAROL_ID]),
            "$.guilds[0].threads[1].members[0]",
            "not a member of this guild",
        ),
        (
            "/guilds/0/threads/1/auto_archive_duration",
            json!(42),
            "$.guilds[0].threads[1].auto_archive_duration",
            "60, 1440, 4320, 10080",
        ),
        (
            "/dms/0/recipients",
            json!([ALICE_ID]),
            "$.dms[0].recipients",
            "exactly two",
        ),
        (
            "/dms/0/messages/0/author_id",
            json!(DAVE_ID),
            "$.dms[0].messages[0].author_id",
            "not a recipient",
        ),
        (
            "/guilds/0/webhooks/0/name",
            json!("Discord helper"),
            "$.guilds[0].webhooks[0].name",
            "clyde",
        ),
        (
            "/guilds/0/webhooks/0/channel_id",
            json!(CATEGORY),
            "$.guilds[0].webhooks[0].channel_id",
            "cannot have webhooks",
        ),
        (
            "/guilds/0/bans/0/user_id",
            json!(BOB_ID),
            "$.guilds[0].bans[0].user_id",
            "banned users are not members",
        ),
        (
            "/guilds/0/invites/1/code",
            json!("welcome"),
            "$.guilds[0].invites[1].code",
            "used twice",
        ),
        (
            "/guilds/0/invites/0/channel_id",
            json!(CATEGORY),
            "$.guilds[0].invites[0].channel_id",
            "category",
        ),
        (
            "/guilds/0/commands/0/name",
            json!("Not Valid"),
            "$.guilds[0].commands[0].name",
            "",
        ),
        (
            "/guilds/0/commands/0/application_id",
            json!(ALICE_ID),
            "$.guilds[0].commands[0].application_id",
            "no bot with id",
        ),
        (
            "/users/1/application/commands/0/description",
            json!(""),
            "$.users[1].application.commands[0].description",
            "",
        ),
    ];
    for (pointer, value, path, reason) in cases {
        let mut fixture = rich_fixture();
        // Set (or add) the field the pointer names.
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match fixture.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.insert(key.to_string(), value);
            }
            Some(Value::Array(items)) => items[key.parse::<usize>().unwrap()] = value,
            _ => panic!("{pointer}"),
        }
        let stderr = refused(&fixture);
        assert!(stderr.contains(path), "{pointer}: {stderr}");
        assert!(stderr.contains(reason), "{pointer}: {stderr}");
    }
}
