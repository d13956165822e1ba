//! Runs third-party bot programs (discord.js under node, the serenity bot built from
//! tests/serenity_bot/) against a running `discord-mitm serve` and collects the JSON lines they
//! print: `{"step": NAME, "data": ...}`, one per scenario step.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve_gateway_support::{
    fixture as gateway_fixture, Server, ALICE_ID, ALICE_TOKEN, BOT_ID, BOT_TOKEN, CAROL_ID,
    GENERAL_ID, GUILD_ID,
};

/// The Bots role the scenarios' bot holds.
pub const BOTS_ROLE_ID: &str = "200000000000000003";

/// What a moderation bot is typically granted on top of @everyone's defaults, not ADMINISTRATOR:
/// KICK, BAN, MANAGE_CHANNELS, MANAGE_GUILD, VIEW_AUDIT_LOG, MANAGE_MESSAGES, MANAGE_NICKNAMES,
/// MANAGE_ROLES, MANAGE_WEBHOOKS, MANAGE_GUILD_EXPRESSIONS.
const BOTS_PERMISSIONS: u64 = (1 << 1)
    | (1 << 2)
    | (1 << 4)
    | (1 << 5)
    | (1 << 7)
    | (1 << 13)
    | (1 << 27)
    | (1 << 28)
    | (1 << 29)
    | (1 << 30);

/// The serve gateway tests' world (alice owns it, carol is a plain member, #secret hides from
/// @everyone) with the bot holding a Bots role, positioned above anything it creates.
pub fn fixture() -> Value {
    let mut world = gateway_fixture(None);
    let guild = &mut world["guilds"][0];
    if let Some(roles) = guild["roles"].as_array_mut() {
        roles.push(
            serde_json::json!({"id": BOTS_ROLE_ID, "name": "Bots", "position": 2,
                                      "permissions": BOTS_PERMISSIONS.to_string()}),
        );
    }
    if let Some(members) = guild["members"].as_array_mut() {
        for member in members.iter_mut().filter(|m| m["user_id"] == BOT_ID) {
            member["roles"] = serde_json::json!([BOTS_ROLE_ID]);
        }
    }
    world
}

/// What one scenario run printed.
pub struct Run {
    /// `data` of each step, by step name.
    pub steps: BTreeMap<String, Value>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The data of `step`; panics with the whole output if the scenario never printed it.
    pub fn step(&self, step: &str) -> &Value {
        self.steps.get(step).unwrap_or_else(|| {
            panic!(
                "no step {step:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `command` with the scenario environment for `server` (the gateway tests' fixture ids);
/// panics with its output and the server's log unless it exits successfully within `timeout` and
/// prints `SCENARIO <name> OK`.
pub fn run(server: Server, name: &str, mut command: Command, timeout: Duration) -> (Run, Server) {
    command
        .env("BOT_TOKEN", BOT_TOKEN)
        .env("ALICE_TOKEN", ALICE_TOKEN)
        .env("ALICE_ID", ALICE_ID)
        .env("CAROL_ID", CAROL_ID)
        .env("GUILD_ID", GUILD_ID)
        .env("GENERAL_ID", GENERAL_ID);
    match run_against(&server.http(), name, command, timeout) {
        Ok(run) => (run, server),
        Err(failure) => {
            let log = server.stop();
            let tail = log.lines().rev().take(60).collect::<Vec<_>>();
            let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            panic!("{failure}\n--- server log (tail)\n{tail}");
        }
    }
}

/// Runs `command` against the server at `http` (`DMITM_API`); the failure text carries the
/// scenario's whole output.
pub fn run_against(
    http: &str,
    name: &str,
    mut command: Command,
    timeout: Duration,
) -> Result<Run, String> {
    let mut child = command
        .env("DMITM_API", http)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {name} scenario: {e}"));
    // Drain both pipes on threads so a chatty client never blocks on a full pipe.
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out_pipe.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err_pipe.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let ok = status.is_some_and(|s| s.success()) && stdout.contains(&format!("SCENARIO {name} OK"));
    if !ok {
        return Err(format!(
            "{name} scenario failed (status {status:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ));
    }
    let steps = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| Some((v["step"].as_str()?.to_string(), v["data"].clone())))
        .collect();
    Ok(Run {
        steps,
        stdout,
        stderr,
    })
}

/// `node` with tests/js/scenario.js, after checking scripts/setup-test-deps ran `npm ci`.
pub fn discordjs(compress: &str) -> Command {
    let js = root().join("tests/js");
    assert!(
        js.join("node_modules/discord.js").is_dir(),
        "{} is missing: run scripts/setup-test-deps (npm ci in tests/js)",
        js.join("node_modules").display()
    );
    let mut command = Command::new("node");
    command
        .arg(js.join("scenario.js"))
        .current_dir(&js)
        .env("DJS_COMPRESS", compress);
    command
}

/// The serenity scenario binary, built (or found up to date) in target/serenity_bot with the
/// committed Cargo.lock; scripts/setup-test-deps builds it ahead of time.
pub fn serenity() -> Command {
    let manifest = root().join("tests/serenity_bot/Cargo.toml");
    let target = root().join("target/serenity_bot");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target);
    // Build as scripts/setup-test-deps does: what `cargo test` sets for us (CARGO_MANIFEST_DIR,
    // CARGO_PKG_*, LD_LIBRARY_PATH) would dirty ring's build script and relink the bot each time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let ours = name.starts_with("CARGO_")
            && !matches!(name.as_ref(), "CARGO_HOME" | "CARGO_TARGET_DIR");
        if ours || name == "LD_LIBRARY_PATH" {
            build.env_remove(name.as_ref());
        }
    }
    build.env("CARGO_TARGET_DIR", &target);
    let output = build
        .output()
        .expect("run cargo build for tests/serenity_bot");
    assert!(
        output.status.success(),
        "building tests/serenity_bot failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let binary: PathBuf = target.join("debug/serenity-scenario");
    Command::new(binary)
}

/// The names in a JSON array of strings.
pub fn names(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
