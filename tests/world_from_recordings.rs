//! A world built from a recording, round trip with the built binary and real clients: a
//! session is recorded through `serve --listen` standing in for Discord (discord.py as a bot;
//! a raw user-IDENTIFY WebSocket session as the official client makes it), `world export`
//! turns the recordings into a fixture, and the same client run against `serve --fixture` on
//! it (and `serve --from-recordings`) sees the same guild, channels, roles, members and
//! messages. No recorded token reaches the fixture.
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bots/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-test-deps (installs discord.py in .venv/bots)",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(root.join("tests/python/world_reader.py"))
        .env("SSL_CERT_FILE", &serve.ca_pem)
        .env("DMITM_PROXY", serve.proxy_url())
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
            "world_reader ({mode}) failed: {status:?}\n--- stdout\n{out}\n--- stderr\n{err}\n--- serve log\n{}",
            serve.log()
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
