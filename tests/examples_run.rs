//! The shipped examples work: `examples/fixtures/fixture.schema.json` is what `serve
//! --fixture-schema` prints, every example fixture (and the route tests' fixture) validates
//! against it and loads in the built `serve`, and the example bots in `examples/bots/` (real
//! discord.py from `.venv/bots`, real discord.js from `tests/js/node_modules`) reach their ready
//! event against it and answer `!ping`.
mod serve_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use serve_support::{expect, Server};

const EXAMPLES: &[&str] = &["minimal-bot", "community", "official-client"];
const BOT_TOKEN: &str = "Bot MTEwMDAwMDAwMDAwMDAwMDAwMg.example.bot-token";
const ALICE_TOKEN: &str = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.example.alice-token";
const GENERAL: &str = "1100000000000000101";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> String {
    let path = root().join(format!("examples/fixtures/{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn printed_schema() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args(["serve", "--fixture-schema"])
        .output()
        .expect("run serve --fixture-schema");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 schema")
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&printed_schema()).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_committed_schema_is_what_serve_prints() {
    let committed = std::fs::read_to_string(root().join("examples/fixtures/fixture.schema.json"))
        .expect("examples/fixtures/fixture.schema.json");
    assert!(
        committed == printed_schema(),
        "examples/fixtures/fixture.schema.json is stale: regenerate it with \
         `discord-mitm serve --fixture-schema > examples/fixtures/fixture.schema.json`"
    );
}

#[test]
fn every_example_and_the_route_tests_fixture_validate_against_the_schema() {
    let validator = validator();
    for name in EXAMPLES {
        let instance: Value = serde_json::from_str(&example(name)).expect("example is JSON");
        assert_eq!(
            instance["$schema"], "./fixture.schema.json",
            "{name} points editors at the schema"
        );
        let found = errors(&validator, &instance);
        assert!(found.is_empty(), "{name}.json: {found:#?}");
    }
    let tests_fixture: Value = serde_json::from_str(serve_support::FIXTURE).expect("JSON");
    let found = errors(&validator, &tests_fixture);
    assert!(found.is_empty(), "tests/serve_support FIXTURE: {found:#?}");
}

#[test]
fn the_schema_refuses_what_serve_refuses() {
    let validator = validator();
    let typo = json!({"users": [{"id": "1", "username": "a", "tokn": "x"}]});
    assert!(!errors(&validator, &typo).is_empty(), "unknown fields");
    let bad_id = json!({"users": [{"id": "12a", "username": "a"}]});
    assert!(!errors(&validator, &bad_id).is_empty(), "ids are digits");
    let missing = json!({"guilds": [{"id": "1", "name": "g"}]});
    assert!(
        !errors(&validator, &missing).is_empty(),
        "owner_id is required"
    );
}

#[test]
fn every_example_loads_in_serve_and_its_accounts_work() {
    for name in EXAMPLES {
        let text = example(name);
        let fixture: Value = serde_json::from_str(&text).expect("JSON");
        let server = Server::start(Some(&text), &["--rate-limit", "off"]);
        let users = fixture["users"].as_array().expect("users");
        assert!(
            server.banner.contains(&format!("{} users", users.len())),
            "{name}: {}",
            server.banner
        );
        for user in users {
            let token = user["token"]
                .as_str()
                .expect("every example user has a token");
            let token = if user["bot"] == true {
                format!("Bot {token}")
            } else {
                token.to_string()
            };
            let me = server.api().get("/users/@me", &token);
            assert_eq!(expect(&me, 200)["id"], user["id"], "{name}: {token}");
        }
    }
}

#[test]
fn the_official_client_example_logs_in_with_mfa_and_has_friends() {
    let server = Server::start(Some(&example("official-client")), &["--rate-limit", "off"]);
    let api = server.api();
    let credentials = json!({"login": "bob@example.com", "password": "bob-password"});
    let login = api.send("POST", "/auth/login", None, Some(&credentials), &[]);
    let body = expect(&login, 200);
    assert_eq!(body["mfa"], true, "{body}");
    let alice = "MTMwMDAwMDAwMDAwMDAwMDAwMQ.example.alice-token";
    let relationships = api.get("/users/@me/relationships", alice);
    let kinds: Vec<i64> = expect(&relationships, 200)
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["type"].as_i64())
        .collect();
    for kind in [1, 2, 3] {
        assert!(
            kinds.contains(&kind),
            "friend, blocked and incoming: {kinds:?}"
        );
    }
}

/// A bot process whose stdout lines arrive on a channel; killed when dropped.
struct Bot {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bot {
    fn start(mut command: Command) -> Bot {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the bot");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Bot { child, lines }
    }

    fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + READY_TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let status = self.child.try_wait();
        panic!("the bot never printed {prefix:?} (process: {status:?})");
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks the bot is ready in the example guild, then that it answers alice's `!ping`.
fn ready_and_pong(server: &Server, mut bot: Bot) {
    let ready = bot.wait_for("ready as ");
    assert_eq!(ready, "ready as examplebot in 1 guild(s): Example Guild");
    let api = server.api();
    let path = format!("/channels/{GENERAL}/messages");
    expect(
        &api.post(&path, ALICE_TOKEN, json!({"content": "!ping"})),
        200,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let messages = api.get(&format!("{path}?limit=5"), BOT_TOKEN);
        let pong = expect(&messages, 200)
            .as_array()
            .expect("array")
            .iter()
            .any(|m| m["content"] == "pong" && m["author"]["username"] == "examplebot");
        if pong {
            return;
        }
        assert!(Instant::now() < deadline, "no pong from the bot");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn bot_env(command: &mut Command, server: &Server) {
    command
        .env("DISCORD_API", format!("http://{}", server.addr))
        .env_remove("DISCORD_TOKEN")
        .current_dir(root());
}

fn need(path: &Path) {
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-test-deps",
        path.display()
    );
}

#[test]
fn the_discordpy_example_bot_gets_ready_and_answers_ping() {
    let python = root().join(".venv/bots/bin/python");
    need(&python);
    let server = Server::start(Some(&example("minimal-bot")), &[]);
    let mut command = Command::new(python);
    command.arg("examples/bots/discordpy/bot.py");
    bot_env(&mut command, &server);
    ready_and_pong(&server, Bot::start(command));
}

#[test]
fn the_discordjs_example_bot_gets_ready_and_answers_ping() {
    let modules = root().join("tests/js/node_modules");
    need(&modules.join("discord.js"));
    let server = Server::start(Some(&example("minimal-bot")), &[]);
    let mut command = Command::new("node");
    command
        .arg("examples/bots/discordjs/bot.js")
        .env("NODE_PATH", &modules);
    bot_env(&mut command, &server);
    ready_and_pong(&server, Bot::start(command));
}
