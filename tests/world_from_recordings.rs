//! A world built from a recording, round trip with the built binary and real clients: a
//! session is recorded through `serve --listen` standing in for Discord (discord.py as a bot;
//! a raw user-IDENTIFY WebSocket session as the official client makes it), or by `record`
//! itself against `serve` as a TLS stand-in for discord.com (`--upstream-ca`, `--resolve`),
//! `world export` turns the recordings into a fixture, and the same client run against
//! `serve --fixture` on it (and `serve --from-recordings`) sees the same guild, channels,
//! roles, members and messages. No recorded token reaches the fixture.
mod pipeline_support;
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipeline_support::*;
use serde_json::{json, Value};

const CAROL_ID: &str = "100000000000000003";
const MODS_ID: &str = "200000000000000002";
const CATEGORY_ID: &str = "200000000000000010";
const NEWS_ID: &str = "200000000000000012";
const THREAD_ID: &str = "200000000000000020";

/// The stand-in's world: roles, a category, text, announcement and voice channels with
/// overwrites, a thread, three members and messages.
fn rich_fixture() -> Value {
    json!({
        "users": [
            {"id": ALICE_ID, "username": "alice", "token": ALICE_TOKEN, "global_name": "Alice"},
            {"id": BOT_ID, "username": "pingbot", "bot": true, "token": BOT_TOKEN},
            {"id": CAROL_ID, "username": "carol"}
        ],
        "guilds": [{
            "id": GUILD_ID, "name": "Recorded Guild", "owner_id": ALICE_ID,
            "roles": [{"id": MODS_ID, "name": "Mods", "permissions": "8", "color": 255, "hoist": true},
                      {"id": "200000000000000003", "name": "Regulars", "permissions": "0"}],
            "channels": [
                {"id": CATEGORY_ID, "name": "Text", "type": 4},
                {"id": GENERAL_ID, "name": "general", "type": 0, "parent_id": CATEGORY_ID,
                 "topic": "talk here",
                 "permission_overwrites": [{"id": MODS_ID, "type": 0, "allow": "16"},
                                           {"id": CAROL_ID, "type": 1, "deny": "2048"}],
                 "messages": [
                    {"id": "300000000000000001", "author_id": ALICE_ID, "content": "welcome, everyone"},
                    {"id": "300000000000000002", "author_id": CAROL_ID, "content": "hi alice"},
                    {"id": "300000000000000003", "author_id": ALICE_ID, "content": "the rules are pinned", "pinned": true}]},
                {"id": NEWS_ID, "name": "news", "type": 5, "parent_id": CATEGORY_ID,
                 "messages": [{"id": "300000000000000004", "author_id": ALICE_ID, "content": "release 1.0"}]},
                {"id": "200000000000000013", "name": "Lounge", "type": 2}
            ],
            "threads": [{"id": THREAD_ID, "parent_id": GENERAL_ID, "name": "side talk",
                         "owner_id": CAROL_ID, "messages": [
                            {"id": "300000000000000005", "author_id": CAROL_ID, "content": "in a thread"}]}],
            "members": [{"user_id": ALICE_ID, "roles": [MODS_ID]}, {"user_id": BOT_ID},
                        {"user_id": CAROL_ID, "roles": ["200000000000000003"], "nick": "Caz"}],
            "emojis": [{"id": "200000000000000030", "name": "party"}]
        }]
    })
}

/// Runs tests/python/world_reader.py through `serve`'s proxy; the `WORLD` line it printed.
fn read_world(serve: &ServeProxy, mode: &str, token: &str) -> Value {
    read_world_via(&serve.proxy_url(), &serve.ca_pem, mode, token, &|| {
        serve.log()
    })
}

/// Runs tests/python/world_reader.py through the proxy at `proxy` (trusting `ca_pem`); the
/// `WORLD` line it printed (`log` tells what the proxy said when it fails).
fn read_world_via(
    proxy: &str,
    ca_pem: &Path,
    mode: &str,
    token: &str,
    log: &dyn Fn() -> String,
) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bots/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-test-deps (installs discord.py in .venv/bots)",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(root.join("tests/python/world_reader.py"))
        .env("SSL_CERT_FILE", ca_pem)
        .env("DMITM_PROXY", proxy)
        .env("TOKEN", token)
        .env("GUILD_ID", GUILD_ID)
        .env("MODE", mode)
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let line = out.lines().find_map(|l| l.strip_prefix("WORLD "));
    match (status, line) {
        (Some(status), Some(line)) if status.success() => serde_json::from_str(line).unwrap(),
        _ => panic!(
            "world_reader ({mode}) failed: {status:?}\n--- stdout\n{out}\n--- stderr\n{err}\n--- proxy log\n{}",
            log()
        ),
    }
}

/// `discord-mitm world export`: (the fixture, stderr).
fn export(recordings: &Path, out: &Path) -> (Value, String) {
    let output = Command::new(BIN)
        .args(["world", "export", "--recordings"])
        .arg(recordings)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run world export");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "world export failed: {stderr}");
    let text = std::fs::read_to_string(out).unwrap();
    for secret in [BOT_TOKEN, ALICE_TOKEN, "redacted"] {
        assert!(!text.contains(secret), "{secret:?} in the fixture:\n{text}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(out).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the fixture holds tokens: owner-only");
    }
    (serde_json::from_str(&text).unwrap(), stderr)
}

/// The local token the fixture gives `id`.
fn token_of(fixture: &Value, id: &str) -> String {
    fixture["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .and_then(|u| u["token"].as_str())
        .unwrap_or_else(|| panic!("no token for {id}: {fixture}"))
        .to_string()
}

/// What any client reading the stand-in's guild sees.
fn assert_seen(seen: &Value) {
    assert_eq!(seen["guild"], "Recorded Guild", "{seen}");
    assert_eq!(
        seen["channels"],
        json!(["Lounge", "Text", "general", "news"]),
        "{seen}"
    );
    assert_eq!(seen["threads"], json!(["side talk"]), "{seen}");
    assert_eq!(
        seen["roles"],
        json!(["@everyone", "Mods", "Regulars"]),
        "{seen}"
    );
    assert_eq!(
        seen["messages"],
        json!({"general": ["the rules are pinned", "hi alice", "welcome, everyone"],
               "news": ["release 1.0"], "side talk": ["in a thread"]}),
        "{seen}"
    );
}

/// Records `mode`'s session against the stand-in; what the client saw.
fn record(dir: &Path, mode: &str, token: &str) -> Value {
    let fixture = dir.join("stand-in.json");
    std::fs::write(&fixture, rich_fixture().to_string()).unwrap();
    let world = args(&["--fixture", fixture.to_str().unwrap()]);
    let stand_in =
        ServeProxy::start_named(dir, "stand-in-", &world, &args(&["--fallback", "none"]));
    let seen = read_world(&stand_in, mode, token);
    let log = stand_in.stop();
    assert!(log.contains("source=backend"), "{log}");
    seen
}

#[test]
fn a_discordpy_bot_sees_the_same_world_served_from_its_recording() {
    let dir = record_support::workdir();
    let seen = record(dir.path(), "bot", BOT_TOKEN);
    assert_seen(&seen);
    assert_eq!(
        seen["members"],
        json!(["alice", "carol", "pingbot"]),
        "{seen}"
    );

    let recordings = dir.path().join("stand-in-recordings");
    let out = dir.path().join("world.json");
    let (fixture, stderr) = export(&recordings, &out);
    assert!(
        stderr.contains("imported:") && stderr.contains("messages"),
        "{stderr}"
    );
    assert!(stderr.contains("new local token"), "{stderr}");
    let token = token_of(&fixture, BOT_ID);
    assert_ne!(token, BOT_TOKEN);
    assert!(stderr.contains(&token), "the new token is told: {stderr}");
    let general = &fixture["guilds"][0]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == GENERAL_ID)
        .cloned()
        .unwrap();
    assert_eq!(
        general["permission_overwrites"].as_array().unwrap().len(),
        2,
        "{general}"
    );

    let served = ServeProxy::start_named(
        dir.path(),
        "exported-",
        &args(&["--fixture", out.to_str().unwrap()]),
        &args(&["--fallback", "none"]),
    );
    let again = read_world(&served, "bot", &token);
    drop(served);
    assert_eq!(again, seen, "the world served from the export");

    let rebuilt = ServeProxy::start_named(
        dir.path(),
        "rebuilt-",
        &args(&["--from-recordings", recordings.to_str().unwrap()]),
        &args(&["--fallback", "none"]),
    );
    let log = rebuilt.log();
    let token = log
        .lines()
        .find(|l| l.contains("pingbot") && l.contains("new local token"))
        .and_then(|l| l.rsplit("Authorization: Bot ").next())
        .unwrap_or_else(|| panic!("no token line: {log}"))
        .trim()
        .to_string();
    let third = read_world(&rebuilt, "bot", &token);
    assert_eq!(third, seen, "the world served by --from-recordings");
}

#[test]
fn a_user_client_ready_session_gives_the_same_world_back() {
    let dir = record_support::workdir();
    let seen = record(dir.path(), "user", ALICE_TOKEN);
    assert_seen(&seen);
    assert_eq!(seen["members"], json!(["alice"]), "{seen}");

    let out = dir.path().join("world.json");
    let (fixture, stderr) = export(&dir.path().join("stand-in-recordings"), &out);
    let token = token_of(&fixture, ALICE_ID);
    assert_ne!(token, ALICE_TOKEN);
    assert!(stderr.contains("recorded account alice"), "{stderr}");
    let served = ServeProxy::start_named(
        dir.path(),
        "exported-",
        &args(&["--fixture", out.to_str().unwrap()]),
        &args(&["--fallback", "none"]),
    );
    let again = read_world(&served, "user", &token);
    assert_eq!(again, seen, "the world served from the export");
}

#[test]
fn a_session_recorded_by_record_against_a_tls_stand_in_is_served_the_same() {
    let dir = record_support::workdir();
    // The stand-in for discord.com: `serve` on the rich world, answering Discord's hosts on a
    // TLS listener of its own (as a hosts-file redirect would reach it).
    let fixture = dir.path().join("stand-in.json");
    std::fs::write(&fixture, rich_fixture().to_string()).unwrap();
    let stand_in = ServeProxy::start_named(
        dir.path(),
        "stand-in-",
        &args(&["--fixture", fixture.to_str().unwrap()]),
        &args(&["--fallback", "none", "--transparent", "127.0.0.1:0"]),
    );
    let tls = stand_in.transparent.expect("the stand-in's TLS listener");
    let pins: Vec<String> = ["discord.com", "gateway.discord.gg"]
        .iter()
        .flat_map(|host| ["--resolve".to_string(), format!("{host}={tls}")])
        .collect();
    // `record` trusts the stand-in's CA upstream (--upstream-ca) and pins Discord's hosts to
    // it (--resolve); the bot goes through `record`'s proxy.
    let recorder =
        record_support::Recorder::start_against(dir.path(), &stand_in.ca_pem, &pins, &[]);
    let seen = read_world_via(
        &recorder.proxy_url(),
        &recorder.ca_pem,
        "bot",
        BOT_TOKEN,
        &|| recorder.log(),
    );
    let recordings = recorder.recordings.clone();
    let record_log = recorder.stop();
    let stand_in_log = stand_in.stop();
    assert_seen(&seen);
    assert_eq!(
        seen["members"],
        json!(["alice", "carol", "pingbot"]),
        "{seen}"
    );
    assert!(
        stand_in_log.contains("source=backend"),
        "the stand-in answered: {stand_in_log}"
    );
    assert!(!record_log.contains(BOT_TOKEN), "record logged the token");

    let out = dir.path().join("world.json");
    let (fixture, stderr) = export(&recordings, &out);
    assert!(stderr.contains("imported:"), "{stderr}");
    let token = token_of(&fixture, BOT_ID);
    assert_ne!(token, BOT_TOKEN);
    let served = ServeProxy::start_named(
        dir.path(),
        "exported-",
        &args(&["--fixture", out.to_str().unwrap()]),
        &args(&["--fallback", "none"]),
    );
    let again = read_world(&served, "bot", &token);
    assert_eq!(again, seen, "the world served from what `record` recorded");
}

#[test]
fn world_export_explains_missing_or_empty_recordings() {
    let dir = record_support::workdir();
    let out = dir.path().join("world.json");
    let missing = Command::new(BIN)
        .args(["world", "export", "--recordings"])
        .arg(dir.path().join("nothing-here"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("no recordings in"), "{stderr}");
    assert!(
        !dir.path().join("nothing-here").exists(),
        "nothing is created"
    );
    assert!(!out.exists());
}

/// A user account's recorded gateway sessions, written as `record` stores them (real sled
/// files): a full READY with a forum (tags, a tagged post) and a group DM, a webhook message,
/// a system message and a group DM message; then a second session whose READY sends the
/// guild `data_mode: partial`, and a PASSIVE_UPDATE_V2.
fn write_user_sessions(recordings: &Path) {
    use discord_mitm::store::{Direction, Frame, FrameKind, GatewaySession, Store};
    let store = Store::open(recordings).unwrap();
    let carol = json!({"id": CAROL_ID, "username": "carol", "discriminator": "0"});
    let dispatches: [(u64, &str, Value); 6] = [
        (
            1,
            "READY",
            json!({"v": 9, "session_id": "s1",
            "user": {"id": ALICE_ID, "username": "alice", "discriminator": "0"},
            "users": [carol, {"id": "100000000000000005", "username": "erin", "discriminator": "0"}],
            "guilds": [{"id": GUILD_ID, "data_mode": "full",
                "properties": {"id": GUILD_ID, "name": "Recorded Guild", "owner_id": ALICE_ID},
                "roles": [{"id": GUILD_ID, "name": "@everyone", "permissions": "1024", "position": 0}],
                "channels": [
                    {"id": GENERAL_ID, "type": 0, "name": "general", "position": 0},
                    {"id": "200000000000000014", "type": 15, "name": "ideas", "position": 1,
                     "available_tags": [{"id": "200000000000000041", "name": "bug", "moderated": false,
                                         "emoji_id": null, "emoji_name": null},
                                        {"id": "200000000000000042", "name": "idea", "moderated": true,
                                         "emoji_id": null, "emoji_name": null}]}],
                "threads": [{"id": THREAD_ID, "type": 11, "name": "dark mode", "parent_id": "200000000000000014",
                             "owner_id": ALICE_ID, "applied_tags": ["200000000000000042"],
                             "thread_metadata": {"archived": false, "locked": false}}],
                "emojis": [], "stickers": []}],
            "merged_members": [[{"user_id": ALICE_ID, "roles": []}]],
            "private_channels": [{"id": "300000000000000200", "type": 3, "name": "weekend",
                                  "owner_id": CAROL_ID, "recipient_ids": [CAROL_ID, "100000000000000005"]}]}),
        ),
        (
            1,
            "MESSAGE_CREATE",
            json!({"id": "300000000000000011", "channel_id": GENERAL_ID,
            "guild_id": GUILD_ID, "webhook_id": "400000000000000001", "type": 0,
            "author": {"id": "400000000000000001", "username": "Deploys", "bot": true}, "content": "build 42 is out"}),
        ),
        (
            1,
            "MESSAGE_CREATE",
            json!({"id": "300000000000000012", "channel_id": GENERAL_ID,
            "guild_id": GUILD_ID, "type": 7, "author": carol, "content": ""}),
        ),
        (
            1,
            "MESSAGE_CREATE",
            json!({"id": "300000000000000201", "channel_id": "300000000000000200",
            "type": 0, "author": carol, "content": "saturday?"}),
        ),
        (
            2,
            "READY",
            json!({"v": 9, "session_id": "s2",
            "user": {"id": ALICE_ID, "username": "alice", "discriminator": "0"},
            "guilds": [{"id": GUILD_ID, "data_mode": "partial", "partial_updates": {
                "properties": {"name": "Renamed Guild"},
                "channels": [{"id": NEWS_ID, "type": 0, "name": "news", "position": 2}]}}],
            "merged_members": [[]]}),
        ),
        (
            2,
            "PASSIVE_UPDATE_V2",
            json!({"guild_id": GUILD_ID,
            "updated_members": [{"user": {"id": "100000000000000006", "username": "frank", "discriminator": "0"},
                                 "roles": [], "nick": "Frankie"}],
            "updated_channels": [{"id": GENERAL_ID, "last_message_id": "300000000000000012"}]}),
        ),
    ];
    for session in [1, 2] {
        let id = store.next_session_id();
        assert_eq!(id, session);
        store
            .put_session(&GatewaySession {
                id,
                started_at_us: 1_700_000_000_000_000 + id as i64,
                ended_at_us: None,
                client_addr: "127.0.0.1:1".into(),
                upstream_addr: Some("127.0.0.1:443".into()),
                url: "wss://gateway.discord.gg/?v=9&encoding=json".into(),
                host: "gateway.discord.gg".into(),
                version: Some("9".into()),
                encoding: Some("json".into()),
                compress: None,
                request_headers: vec![],
                status: Some(101),
                closes: vec![],
                frames_sent: 0,
                frames_received: 0,
                error: None,
                redactions: vec![],
                rewrites: vec![],
            })
            .unwrap();
    }
    for (seq, (session, event, d)) in dispatches.into_iter().enumerate() {
        let payload = json!({"op": 0, "t": event, "s": seq + 1, "d": d}).to_string();
        store
            .insert_frame(&Frame {
                session_id: session,
                direction: Direction::ServerToClient,
                seq: seq as u64,
                at_us: 1_700_000_000_000_000 + 1000 * seq as i64,
                kind: FrameKind::Text,
                raw_size: payload.len() as u64,
                op: Some(0),
                t: Some(event.to_string()),
                s: Some(seq as u64 + 1),
                payload: Some(payload),
                raw: None,
                decode_error: None,
                redacted: false,
            })
            .unwrap();
    }
    store.flush().unwrap();
}

#[test]
fn group_dms_webhook_and_system_messages_partial_ready_passive_updates_and_forum_tags_are_served() {
    let dir = record_support::workdir();
    let recordings = dir.path().join("user-recordings");
    write_user_sessions(&recordings);
    let out = dir.path().join("world.json");
    let (fixture, stderr) = export(&recordings, &out);
    assert!(stderr.contains("1 group DMs"), "{stderr}");
    let guild = &fixture["guilds"][0];
    assert_eq!(guild["name"], "Renamed Guild", "the partial READY's change");
    let token = token_of(&fixture, ALICE_ID);
    let served = ServeProxy::start_named(
        dir.path(),
        "exported-",
        &args(&["--fixture", out.to_str().unwrap()]),
        &args(&["--fallback", "none"]),
    );
    let auth = format!("Authorization: {token}");
    let get = |path: &str| -> Value {
        let reply = served.curl(&format!("https://discord.com/api/v9{path}"), &["-H", &auth]);
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        reply.json()
    };
    let guild = get(&format!("/guilds/{GUILD_ID}"));
    assert_eq!(guild["name"], "Renamed Guild");
    let channels = get(&format!("/guilds/{GUILD_ID}/channels"));
    let mut names: Vec<&str> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["general", "ideas", "news"], "{channels}");
    let forum = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == 15)
        .expect("the forum");
    let tags: Vec<&Value> = forum["available_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["name"])
        .collect();
    assert_eq!(tags, [&json!("bug"), &json!("idea")], "{forum}");
    let post = get(&format!("/channels/{THREAD_ID}"));
    assert_eq!(
        post["applied_tags"],
        json!(["200000000000000042"]),
        "{post}"
    );
    let messages = get(&format!("/channels/{GENERAL_ID}/messages"));
    let system = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "300000000000000012")
        .expect("the system message");
    assert_eq!(system["type"], 7, "{system}");
    assert_eq!(system["author"]["id"], CAROL_ID);
    let hooked = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "300000000000000011")
        .expect("the webhook message");
    assert_eq!(hooked["webhook_id"], "400000000000000001", "{hooked}");
    assert_eq!(hooked["author"]["username"], "Deploys");
    assert_eq!(hooked["content"], "build 42 is out");
    let dms = get("/users/@me/channels");
    let group = dms
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "300000000000000200")
        .unwrap_or_else(|| panic!("the group DM: {dms}"));
    assert_eq!(group["type"], 3);
    assert_eq!(group["name"], "weekend");
    assert_eq!(group["owner_id"], CAROL_ID);
    let in_group = get("/channels/300000000000000200/messages");
    assert_eq!(in_group[0]["content"], "saturday?");
    let frank = get(&format!("/guilds/{GUILD_ID}/members/100000000000000006"));
    assert_eq!(frank["nick"], "Frankie", "the passive update's member");
}
