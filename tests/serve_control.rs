//! The test-control API (`serve --control`) against the built binary, over real HTTP: off by
//! default, the token and loopback guards, every endpoint, acting as users through the REST
//! routes, the event log and its wait-for, the clock expiring an invite, a reset with discord.py
//! (unmodified, .venv/bots) connected, and deterministic mode (`--seed`) giving identical event
//! logs on two runs.
mod serve_gateway_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use serve_gateway_support::{
    fixture, python, rest, Server, ALICE_ID, ALICE_TOKEN, BOT_ID, BOT_TOKEN, CAROL_ID, GENERAL_ID,
    GUILD_ID, SECRET_ID,
};

const TOKEN: &str = "control-token-for-the-tests";

fn controlled() -> Server {
    Server::start_with(&fixture(None), &["--control", "--control-token", TOKEN])
}

/// A control API call; returns (status, body).
async fn control(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    control_with(base, Some(TOKEN), method, path, body).await
}

async fn control_with(
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Control {token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn act(base: &str, body: Value) -> Value {
    let (status, out) = control(base, "POST", "/_mitm/act", Some(body.clone())).await;
    assert_eq!(status, 200, "{body} -> {out}");
    out
}

async fn wait_for(base: &str, body: Value) -> Value {
    let (status, out) = control(base, "POST", "/_mitm/events/wait", Some(body.clone())).await;
    assert_eq!(status, 200, "waiting for {body}: {out}");
    out["event"].clone()
}

/// The event log's cursor now (wait for what comes after it).
async fn cursor(base: &str) -> u64 {
    let (status, out) = control(base, "GET", "/_mitm/control", None).await;
    assert_eq!(status, 200, "{out}");
    out["cursor"].as_u64().unwrap()
}

async fn events(base: &str, query: &str) -> Vec<Value> {
    let (status, out) = control(base, "GET", &format!("/_mitm/events?{query}"), None).await;
    assert_eq!(status, 200, "{out}");
    out["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn off_by_default_and_guarded_by_the_token_on_every_prefix() {
    let plain = Server::start(&fixture(None));
    for path in [
        "/_mitm/control",
        "/api/v10/_mitm/control",
        "/api/_mitm/events",
    ] {
        let (status, _) = control(&plain.http(), "GET", path, None).await;
        assert_eq!(status, 404, "{path} without --control");
    }
    let (status, _) = control(&plain.http(), "POST", "/_mitm/reset", Some(json!({}))).await;
    assert_eq!(status, 404);

    let server = controlled();
    let base = server.http();
    for path in [
        "/_mitm/control",
        "/api/v10/_mitm/control",
        "/api/v9/_mitm/clock",
    ] {
        let (status, body) = control_with(&base, None, "GET", path, None).await;
        assert_eq!(status, 401, "{path} without a token: {body}");
        let (status, _) =
            control_with(&base, Some("wrong-token-wrong-token"), "GET", path, None).await;
        assert_eq!(status, 401, "{path} with a wrong token");
        let (status, body) = control(&base, "GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // A bot token is not the control token.
    let (status, _) = control_with(&base, Some(BOT_TOKEN), "POST", "/_mitm/reset", None).await;
    assert_eq!(status, 401);
    let (_, status_body) = control(&base, "GET", "/_mitm/control", None).await;
    assert_eq!(status_body["enabled"], true);
    assert_eq!(status_body["users"].as_array().unwrap().len(), 3);
}

/// A non-loopback address of this machine, if it has one.
fn own_non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("10.255.255.255:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn peers_that_are_not_loopback_are_refused_even_with_the_token() {
    let Some(ip) = own_non_loopback_ip() else {
        eprintln!("no non-loopback address on this machine; nothing to check");
        return;
    };
    let port = free_port();
    let (mut child, _dir) = spawn_serve(&format!("0.0.0.0:{port}"), &[]).await;
    let (status, body) = control(
        &format!("http://{ip}:{port}"),
        "GET",
        "/_mitm/control",
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = control(
        &format!("http://127.0.0.1:{port}"),
        "GET",
        "/_mitm/control",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let _ = child.kill();
    let _ = child.wait();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `serve --control` on `api` with the test fixture and `extra` flags, once it accepts.
async fn spawn_serve(api: &str, extra: &[&str]) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let fixture_path = dir.path().join("fixture.json");
    std::fs::write(&fixture_path, fixture(None).to_string()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args([
            "serve",
            "--rate-limit",
            "off",
            "--control",
            "--control-token",
            TOKEN,
        ])
        .args(extra)
        .arg("--api")
        .arg(api)
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--fixture")
        .arg(&fixture_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let port: u16 = api.rsplit(':').next().unwrap().parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (child, dir)
}

#[tokio::test]
async fn acting_as_users_goes_through_the_rest_routes_and_lands_in_the_log() {
    let server = controlled();
    let base = server.http();
    let sent = act(
        &base,
        json!({"as": "alice", "action": "send_message",
                                  "channel_id": GENERAL_ID, "content": "hello"}),
    )
    .await;
    assert_eq!(sent["status"], 200, "{sent}");
    let message_id = sent["body"]["id"].as_str().unwrap().to_string();
    assert_eq!(sent["body"]["author"]["id"], ALICE_ID);
    let message = json!({"channel_id": GENERAL_ID, "message_id": message_id});
    let mut edit = message.clone();
    edit["as"] = json!(ALICE_ID);
    edit["action"] = json!("edit_message");
    edit["content"] = json!("hello, edited");
    assert_eq!(act(&base, edit).await["body"]["content"], "hello, edited");
    for (who, action) in [("carol", "react"), ("carol", "unreact"), ("alice", "react")] {
        let mut body = message.clone();
        body["as"] = json!(who);
        body["action"] = json!(action);
        body["emoji"] = json!("👍");
        assert_eq!(act(&base, body).await["status"], 204);
    }
    let typing = act(
        &base,
        json!({"as": "carol", "action": "typing", "channel_id": GENERAL_ID}),
    )
    .await;
    assert_eq!(typing["status"], 204);
    let presence = act(
        &base,
        json!({"as": "carol", "action": "presence", "status": "dnd",
                                     "activities": [{"name": "tests", "type": 0}]}),
    )
    .await;
    assert_eq!(presence["status"], 200);
    let left = act(
        &base,
        json!({"as": "carol", "action": "leave_guild", "guild_id": GUILD_ID}),
    )
    .await;
    assert_eq!(left["status"], 204, "{left}");
    let joined = act(
        &base,
        json!({"as": CAROL_ID, "action": "join_guild", "guild_id": GUILD_ID}),
    )
    .await;
    assert_eq!(joined["body"]["new_member"], true);
    let invite = act(
        &base,
        json!({"as": "alice", "action": "rest", "method": "POST",
        "path": format!("/channels/{GENERAL_ID}/invites"), "body": {"max_age": 0}}),
    )
    .await;
    let code = invite["body"]["code"].as_str().unwrap().to_string();
    act(
        &base,
        json!({"as": "carol", "action": "leave_guild", "guild_id": GUILD_ID}),
    )
    .await;
    let rejoined = act(
        &base,
        json!({"as": "carol", "action": "join_guild", "invite": code}),
    )
    .await;
    assert_eq!(rejoined["body"]["new_member"], true, "{rejoined}");
    let mut delete = message.clone();
    delete["as"] = json!("alice");
    delete["action"] = json!("delete_message");
    assert_eq!(act(&base, delete).await["status"], 204);

    // The stored state is what the REST routes made.
    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "GET",
        &format!("/channels/{GENERAL_ID}/messages/{message_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "GET",
        &format!("/guilds/{GUILD_ID}/members/{CAROL_ID}"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Every call is in the log with its route template, caller and answer; no token is.
    let calls = events(&base, "type=REST").await;
    let routes: Vec<String> = calls
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["method"],
                e["route"].as_str().unwrap(),
                e["caller_id"],
                e["status"]
            )
        })
        .collect();
    for wanted in [
        format!("\"POST\" /channels/{{channel_id}}/messages \"{ALICE_ID}\" 200"),
        format!("\"PATCH\" /channels/{{channel_id}}/messages/{{message_id}} \"{ALICE_ID}\" 200"),
        format!("\"PUT\" /channels/{{channel_id}}/messages/{{message_id}}/reactions/{{emoji}}/@me \"{CAROL_ID}\" 204"),
        format!("\"POST\" /channels/{{channel_id}}/typing \"{CAROL_ID}\" 204"),
        format!("\"DELETE\" /users/@me/guilds/{{guild_id}} \"{CAROL_ID}\" 204"),
        format!("\"POST\" /invites/{{code}} \"{CAROL_ID}\" 200"),
        format!("\"DELETE\" /channels/{{channel_id}}/messages/{{message_id}} \"{ALICE_ID}\" 204"),
    ] {
        assert!(routes.contains(&wanted), "{wanted} not in {routes:#?}");
    }
    let posted = events(
        &base,
        &format!("type=REST&route=/channels/{{channel_id}}/messages&channel_id={GENERAL_ID}"),
    )
    .await;
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0]["request"]["content"], "hello");
    assert_eq!(posted[0]["response"]["id"], message_id.as_str());
    let everything = serde_json::to_string(&events(&base, "").await).unwrap();
    for secret in [ALICE_TOKEN, BOT_TOKEN, "carol-token", TOKEN] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked into the event log"
        );
    }
    // A user who does not exist, an action that does not.
    let (status, _) = control(
        &base,
        "POST",
        "/_mitm/act",
        Some(json!({"as": "nobody", "action": "typing", "channel_id": GENERAL_ID})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = control(
        &base,
        "POST",
        "/_mitm/act",
        Some(json!({"as": "alice", "action": "fly"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = control(&base, "GET", "/_mitm/events?since=x", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn commands_and_component_clicks_go_through_the_interaction_hook() {
    let server = controlled();
    let base = server.http();
    let registered = act(
        &base,
        json!({"as": "pingbot", "action": "rest", "method": "POST",
        "path": format!("/applications/{BOT_ID}/guilds/{GUILD_ID}/commands"),
        "body": {"name": "hello", "description": "says hello"}}),
    )
    .await;
    assert!(
        registered["status"] == 201 || registered["status"] == 200,
        "{registered}"
    );
    let invoked = act(
        &base,
        json!({"as": "alice", "action": "invoke_command",
                                    "channel_id": GENERAL_ID, "name": "hello"}),
    )
    .await;
    assert_eq!(invoked["status"], 200, "{invoked}");
    assert_eq!(invoked["body"]["data"]["name"], "hello");
    assert_eq!(invoked["body"]["application_id"], BOT_ID);
    let logged = events(&base, "type=REST&route=/_mitm/interactions").await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["caller_id"], ALICE_ID);
    assert_eq!(logged[0]["response"]["token"], "[redacted]");
    // A click on a message the application posted.
    let posted = act(
        &base,
        json!({"as": "pingbot", "action": "send_message", "channel_id": GENERAL_ID,
        "content": "press", "components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "Go", "custom_id": "go"}]}]}),
    )
    .await;
    let message_id = posted["body"]["id"].as_str().unwrap();
    let clicked = act(
        &base,
        json!({"as": "alice", "action": "click_component", "channel_id": GENERAL_ID,
        "message_id": message_id, "custom_id": "go"}),
    )
    .await;
    assert_eq!(clicked["status"], 200, "{clicked}");
    assert_eq!(clicked["body"]["data"]["custom_id"], "go");
}

#[tokio::test]
async fn wait_for_returns_the_matching_event_or_times_out_cleanly() {
    let server = controlled();
    let base = server.http();
    let (_, status) = control(&base, "GET", "/_mitm/control", None).await;
    let since = status["cursor"].as_u64().unwrap();
    let waiter = {
        let base = base.clone();
        tokio::spawn(async move {
            control(&base, "POST", "/_mitm/events/wait", Some(json!({
                "type": "REST", "since": since, "timeout_ms": 10_000,
                "match": {"channel_id": GENERAL_ID, "author_id": CAROL_ID, "request.content": "second"}
            }))).await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (who, content) in [("carol", "first"), ("alice", "second"), ("carol", "second")] {
        act(&base, json!({"as": who, "action": "send_message", "channel_id": GENERAL_ID, "content": content})).await;
    }
    let (status, found) = waiter.await.unwrap();
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["event"]["caller_id"], CAROL_ID);
    assert_eq!(found["event"]["request"]["content"], "second");
    let started = std::time::Instant::now();
    let (status, missed) = control(
        &base,
        "POST",
        "/_mitm/events/wait",
        Some(json!({"type": "MESSAGE_DELETE", "timeout_ms": 300})),
    )
    .await;
    assert_eq!(status, 408, "{missed}");
    assert_eq!(missed["timeout"], true);
    assert!(missed["cursor"].as_u64().unwrap() > since);
    assert!(started.elapsed() < Duration::from_secs(5));
    let (status, _) = control(
        &base,
        "POST",
        "/_mitm/events/wait",
        Some(json!({"timeout_ms": "soon"})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_clock_moves_and_expires_invites() {
    let server = controlled();
    let base = server.http();
    let (status, clock) = control(&base, "GET", "/_mitm/clock", None).await;
    assert_eq!(status, 200);
    assert_eq!(clock["frozen"], false);
    let invite = act(
        &base,
        json!({"as": "alice", "action": "rest", "method": "POST",
        "path": format!("/channels/{GENERAL_ID}/invites"), "body": {"max_age": 60}}),
    )
    .await;
    let code = invite["body"]["code"].as_str().unwrap().to_string();
    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "GET",
        &format!("/invites/{code}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, moved) = control(
        &base,
        "POST",
        "/_mitm/clock",
        Some(json!({"advance_ms": 61_000})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert!(moved["offset_ms"].as_i64().unwrap() >= 61_000);
    let (status, body) = rest(
        &server,
        ALICE_TOKEN,
        "GET",
        &format!("/invites/{code}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "the invite outlived its max_age: {body}");
    assert_eq!(body["code"], 10006);
    // A poll ends as soon as the clock passes its expiry.
    let poll = act(
        &base,
        json!({"as": "alice", "action": "send_message", "channel_id": GENERAL_ID,
        "poll": {"question": {"text": "lunch?"}, "answers": [{"poll_media": {"text": "yes"}},
                 {"poll_media": {"text": "no"}}], "duration": 1}}),
    )
    .await;
    assert_eq!(poll["status"], 200, "{poll}");
    let poll_id = poll["body"]["id"].as_str().unwrap().to_string();
    let (_, moved) = control(
        &base,
        "POST",
        "/_mitm/clock",
        Some(json!({"advance_ms": 3_600_001})),
    )
    .await;
    assert_eq!(moved["polls_ended"], 1, "{moved}");
    let (_, stored) = rest(
        &server,
        ALICE_TOKEN,
        "GET",
        &format!("/channels/{GENERAL_ID}/messages/{poll_id}"),
        None,
    )
    .await;
    assert_eq!(stored["poll"]["results"]["is_finalized"], true, "{stored}");
    // Frozen, set, frozen again.
    let target = 1_900_000_000_000u64;
    let (_, frozen) = control(
        &base,
        "POST",
        "/_mitm/clock",
        Some(json!({"frozen": true, "set_ms": target})),
    )
    .await;
    assert_eq!(frozen["now_ms"], target);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (_, still) = control(&base, "GET", "/_mitm/clock", None).await;
    assert_eq!(still["now_ms"], target);
    let (_, sent) = control(
        &base,
        "POST",
        "/_mitm/act",
        Some(json!({"as": "alice", "action": "send_message",
        "channel_id": GENERAL_ID, "content": "from the future"})),
    )
    .await;
    assert!(
        sent["body"]["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2030-03-17T17:46:40"),
        "{sent}"
    );
    let (status, _) = control(
        &base,
        "POST",
        "/_mitm/clock",
        Some(json!({"advance_ms": -5})),
    )
    .await;
    assert_eq!(status, 400);
}

/// discord.py running tests/python/control_bot.py; killed on drop.
struct Bot {
    child: Child,
}

impl Bot {
    fn start(server: &Server) -> Bot {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/control_bot.py");
        let mut child = Command::new(python())
            .arg(script)
            .env("DMITM_API", server.http())
            .env("BOT_TOKEN", BOT_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the discord.py bot");
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("bot: {line}");
            }
        });
        Bot { child }
    }

    /// Starts the bot and waits until the event log shows it received its guild.
    async fn start_ready(server: &Server) -> Bot {
        let bot = Bot::start(server);
        wait_for(
            &server.http(),
            json!({"type": "GUILD_CREATE", "timeout_ms": 30_000, "match": {"user_id": BOT_ID}}),
        )
        .await;
        bot
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alice says `content` in #general; returns the bot's answer (waited for through the log).
async fn ask_bot(base: &str, content: &str) -> String {
    let since = cursor(base).await;
    act(base, json!({"as": "alice", "action": "send_message", "channel_id": GENERAL_ID, "content": content})).await;
    let reply = wait_for(
        base,
        json!({"type": "MESSAGE_CREATE", "since": since, "timeout_ms": 20_000,
        "match": {"channel_id": GENERAL_ID, "author_id": BOT_ID, "user_id": BOT_ID}}),
    )
    .await;
    reply["data"]["content"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_reset_reconnects_discordpy_into_the_fixtures_world() {
    let server = controlled();
    let base = server.http();
    let _bot = Bot::start_ready(&server).await;
    assert_eq!(ask_bot(&base, "!ping").await, "pong");
    let since = cursor(&base).await;
    let created = act(
        &base,
        json!({"as": "alice", "action": "rest", "method": "POST",
        "path": format!("/guilds/{GUILD_ID}/channels"), "body": {"name": "extra", "type": 0}}),
    )
    .await;
    assert!(
        created["status"] == 201 || created["status"] == 200,
        "{created}"
    );
    wait_for(
        &base,
        json!({"type": "CHANNEL_CREATE", "since": since,
        "timeout_ms": 10_000, "match": {"user_id": BOT_ID}}),
    )
    .await;
    assert_eq!(ask_bot(&base, "!channels").await, "extra,general");

    let (status, reset) = control(&base, "POST", "/_mitm/reset", Some(json!({}))).await;
    assert_eq!(status, 200, "{reset}");
    assert!(reset["took_ms"].as_f64().unwrap() < 1000.0, "{reset}");
    let since = reset["cursor"].as_u64().unwrap();
    // RESUME of the ended session is refused: discord.py identifies again and gets READY.
    wait_for(
        &base,
        json!({"type": "GUILD_CREATE", "since": since, "timeout_ms": 30_000,
                           "match": {"user_id": BOT_ID}}),
    )
    .await;
    let resumed = events(&base, &format!("since={since}&type=RESUMED")).await;
    assert!(resumed.is_empty(), "{resumed:?}");
    let ready = events(&base, &format!("since={since}&type=READY&user_id={BOT_ID}")).await;
    assert_eq!(ready.len(), 1);
    assert_eq!(
        ask_bot(&base, "!channels").await,
        "general",
        "the bot still sees the old world"
    );
    let (_, messages) = rest(
        &server,
        ALICE_TOKEN,
        "GET",
        &format!("/channels/{GENERAL_ID}/messages?limit=50"),
        None,
    )
    .await;
    let contents: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(
        !contents.contains(&"!ping") && !contents.contains(&"extra,general"),
        "{contents:?}"
    );
    // Another fixture file: a world with one more channel.
    let mut other = fixture(None);
    other["guilds"][0]["channels"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "200000000000000019", "name": "lobby", "type": 0}));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), other.to_string()).unwrap();
    let (status, reset) = control(
        &base,
        "POST",
        "/_mitm/reset",
        Some(json!({"fixture": file.path()})),
    )
    .await;
    assert_eq!(status, 200, "{reset}");
    wait_for(
        &base,
        json!({"type": "GUILD_CREATE", "since": reset["cursor"], "timeout_ms": 30_000,
                           "match": {"user_id": BOT_ID}}),
    )
    .await;
    assert_eq!(ask_bot(&base, "!channels").await, "general,lobby");
    let (status, bad) = control(
        &base,
        "POST",
        "/_mitm/reset",
        Some(json!({"fixture": "/nonexistent.json"})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
}

#[tokio::test]
async fn acting_as_a_user_sends_the_bot_what_the_rest_route_sends() {
    let server = controlled();
    let base = server.http();
    let _bot = Bot::start_ready(&server).await;
    act(&base, json!({"as": "alice", "action": "send_message", "channel_id": GENERAL_ID, "content": "one"})).await;
    let from_act = wait_for(
        &base,
        json!({"type": "MESSAGE_CREATE",
        "timeout_ms": 10_000, "match": {"user_id": BOT_ID, "data.content": "one"}}),
    )
    .await;
    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(json!({"content": "two"})),
    )
    .await;
    assert_eq!(status, 200);
    let from_rest = wait_for(
        &base,
        json!({"type": "MESSAGE_CREATE", "timeout_ms": 10_000,
        "match": {"user_id": BOT_ID, "data.content": "two"}}),
    )
    .await;
    let shape = |event: &Value| {
        let mut data = event["data"].clone();
        for volatile in ["id", "content", "timestamp", "nonce"] {
            data.as_object_mut().unwrap().remove(volatile);
        }
        data
    };
    assert_eq!(shape(&from_act), shape(&from_rest));
    let (_, reacted) = control(
        &base,
        "POST",
        "/_mitm/act",
        Some(json!({"as": "carol", "action": "react",
        "channel_id": GENERAL_ID, "message_id": from_act["data"]["id"], "emoji": "🎉"})),
    )
    .await;
    assert_eq!(reacted["status"], 204);
    let reaction = wait_for(
        &base,
        json!({"type": "MESSAGE_REACTION_ADD", "timeout_ms": 10_000,
        "match": {"user_id": BOT_ID, "data.user_id": CAROL_ID}}),
    )
    .await;
    assert_eq!(reaction["data"]["emoji"]["name"], "🎉");
    assert_eq!(reaction["data"]["guild_id"], GUILD_ID);
    // SECRET is not visible to the bot: acting there sends it nothing.
    act(&base, json!({"as": "alice", "action": "send_message", "channel_id": SECRET_ID, "content": "hidden"})).await;
    let (status, _) = control(
        &base,
        "POST",
        "/_mitm/events/wait",
        Some(json!({"type": "MESSAGE_CREATE",
        "timeout_ms": 500, "match": {"user_id": BOT_ID, "data.content": "hidden"}})),
    )
    .await;
    assert_eq!(status, 408);
}

/// One seeded run of a fixed scenario on `port`; returns its event log.
async fn seeded_run(port: u16) -> Vec<Value> {
    let (mut child, _dir) = spawn_serve(&format!("127.0.0.1:{port}"), &["--seed", "42"]).await;
    let base = format!("http://127.0.0.1:{port}");
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/?v=10&encoding=json"))
            .await
            .unwrap();
    let _hello = ws.next().await.unwrap().unwrap();
    let identify = json!({"op": 2, "d": {"token": BOT_TOKEN, "intents": 1 | 64 | 512 | 1024 | 32768,
        "properties": {"os": "linux", "browser": "test", "device": "test"}}});
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        identify.to_string().into(),
    ))
    .await
    .unwrap();
    wait_for(&base, json!({"type": "GUILD_CREATE", "timeout_ms": 10_000})).await;
    let sent = act(
        &base,
        json!({"as": "alice", "action": "send_message", "channel_id": GENERAL_ID, "content": "hi"}),
    )
    .await;
    let id = sent["body"]["id"].clone();
    wait_for(
        &base,
        json!({"type": "MESSAGE_CREATE", "timeout_ms": 10_000}),
    )
    .await;
    act(&base, json!({"as": "carol", "action": "react", "channel_id": GENERAL_ID, "message_id": id, "emoji": "👍"})).await;
    wait_for(
        &base,
        json!({"type": "MESSAGE_REACTION_ADD", "timeout_ms": 10_000}),
    )
    .await;
    act(
        &base,
        json!({"as": "alice", "action": "rest", "method": "POST",
        "path": format!("/channels/{GENERAL_ID}/invites"), "body": {"max_age": 60}}),
    )
    .await;
    control(
        &base,
        "POST",
        "/_mitm/clock",
        Some(json!({"advance_ms": 120_000})),
    )
    .await;
    act(&base, json!({"as": "alice", "action": "edit_message", "channel_id": GENERAL_ID, "message_id": id, "content": "later"})).await;
    wait_for(
        &base,
        json!({"type": "MESSAGE_UPDATE", "timeout_ms": 10_000}),
    )
    .await;
    let log = events(&base, "limit=10000").await;
    drop(ws);
    let _ = child.kill();
    let _ = child.wait();
    log
}

#[tokio::test]
async fn two_seeded_runs_of_one_scenario_log_the_same_events() {
    let port = free_port();
    let first = seeded_run(port).await;
    let second = seeded_run(port).await;
    assert!(first.len() >= 8, "{first:#?}");
    let kinds: Vec<&str> = first.iter().filter_map(|e| e["type"].as_str()).collect();
    for kind in [
        "READY",
        "GUILD_CREATE",
        "MESSAGE_CREATE",
        "MESSAGE_REACTION_ADD",
        "MESSAGE_UPDATE",
        "REST",
        "CLOCK",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let (a, b) = (
        serde_json::to_string_pretty(&first).unwrap(),
        serde_json::to_string_pretty(&second).unwrap(),
    );
    if a != b {
        for (x, y) in a.lines().zip(b.lines()) {
            assert_eq!(x, y, "the event logs differ");
        }
    }
    assert_eq!(a, b);
    // Ids come from the frozen clock: 2026-01-01.
    let message = first
        .iter()
        .find(|e| e["type"] == "MESSAGE_CREATE")
        .unwrap();
    assert!(
        message["data"]["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-01-01T00:0"),
        "{message}"
    );
    assert_eq!(message["at_ms"], 1_767_225_600_000u64);
}

/// The log's entries after `since` of `type`.
async fn logged_since(base: &str, since: u64, kind: &str) -> Vec<Value> {
    events(base, &format!("since={since}&type={kind}")).await
}

#[tokio::test]
async fn a_missed_deadline_on_the_moved_clock_is_logged_and_modals_submit() {
    let server = controlled();
    let base = server.http();
    let (status, _) = rest(
        &server,
        &format!("Bot {BOT_TOKEN}"),
        "POST",
        &format!("/applications/{BOT_ID}/guilds/{GUILD_ID}/commands"),
        Some(json!({"name": "form", "description": "opens a form"})),
    )
    .await;
    assert!(status == 200 || status == 201);
    let mut bot = serve_gateway_support::RawClient::connect(&server, "v=10&encoding=json").await;
    bot.payload().await; // HELLO
    bot.identify(BOT_TOKEN, Some(1), json!({})).await;
    bot.dispatch("READY").await;
    // Nobody answers this one: moving the clock past its 3 seconds fails it at once.
    let since = cursor(&base).await;
    let ignored = act(
        &base,
        json!({"as": "alice", "action": "invoke_command",
                                    "channel_id": GENERAL_ID, "name": "form"}),
    )
    .await;
    let ignored_id = ignored["body"]["id"].as_str().unwrap().to_string();
    let (status, _) = control(
        &base,
        "POST",
        "/_mitm/clock",
        Some(json!({"advance_ms": 3_001})),
    )
    .await;
    assert_eq!(status, 200);
    let failed = wait_for(
        &base,
        json!({"type": "INTERACTION_FAILED", "since": since,
        "timeout_ms": 2_000, "match": {"data.id": ignored_id}}),
    )
    .await;
    assert_eq!(failed["kind"], "state");
    assert_eq!(failed["data"]["user_id"], ALICE_ID);
    assert_eq!(failed["data"]["channel_id"], GENERAL_ID);
    let (_, seen) = rest(
        &server,
        ALICE_TOKEN,
        "GET",
        &format!("/_mitm/interactions/{ignored_id}"),
        None,
    )
    .await;
    assert_eq!(seen["status"], "failed", "{seen}");
    // The bot opens a modal in time; alice submits it through the control API.
    let since = cursor(&base).await;
    let invoked = act(
        &base,
        json!({"as": "alice", "action": "invoke_command",
                                    "channel_id": GENERAL_ID, "name": "form"}),
    )
    .await;
    let (id, token) = (
        invoked["body"]["id"].as_str().unwrap().to_string(),
        invoked["body"]["token"].as_str().unwrap().to_string(),
    );
    let (status, body) = rest(&server, BOT_TOKEN, "POST", &format!("/interactions/{id}/{token}/callback"),
        Some(json!({"type": 9, "data": {"custom_id": "feedback", "title": "Feedback", "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "text", "label": "Say", "style": 1}]}]}})))
    .await;
    assert_eq!(status, 204, "{body}");
    let submitted = act(
        &base,
        json!({"as": "alice", "action": "submit_modal", "channel_id": GENERAL_ID,
        "custom_id": "feedback", "components": [{"type": 1, "components": [
            {"type": 4, "custom_id": "text", "value": "all good"}]}]}),
    )
    .await;
    assert_eq!(submitted["status"], 200, "{submitted}");
    assert_eq!(submitted["body"]["type"], 5);
    assert_eq!(submitted["body"]["data"]["custom_id"], "feedback");
    // The bot is sent the submit as Discord sends it, and the log has what it was sent.
    let modal = loop {
        let created = bot.dispatch("INTERACTION_CREATE").await;
        if created["type"] == 5 {
            break created;
        }
    };
    assert_eq!(modal["data"]["custom_id"], "feedback");
    assert_eq!(
        modal["data"]["components"][0]["components"][0]["value"],
        "all good"
    );
    let created: Vec<Value> = logged_since(&base, since, "INTERACTION_CREATE").await;
    assert!(
        created
            .iter()
            .any(|e| e["user_id"] == BOT_ID && e["data"]["type"] == 5),
        "the log lacks the modal submit the bot was sent: {created:?}"
    );
    // The answered command never fails, whatever the clock does.
    control(
        &base,
        "POST",
        "/_mitm/clock",
        Some(json!({"advance_ms": 10_000})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let failures = logged_since(&base, since, "INTERACTION_FAILED").await;
    assert!(
        failures.iter().all(|e| e["data"]["id"] != id.as_str()),
        "{failures:?}"
    );
}

#[tokio::test]
async fn calls_to_no_route_and_dispatches_replayed_on_resume_are_logged() {
    let server = controlled();
    let base = server.http();
    let since = cursor(&base).await;
    let client = reqwest::Client::new();
    let secret = "whsecret-abcdefghijklmnop";
    let answer = client
        .get(format!(
            "{base}/api/v10/webhooks/{GUILD_ID}/{secret}/no/such/route?token=qsecret"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "GET",
        "/users/@me/no-such-thing",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let unmatched = logged_since(&base, since, "REST").await;
    let mine = unmatched
        .iter()
        .find(|e| e["route"] == "/users/@me/no-such-thing")
        .unwrap_or_else(|| panic!("no entry for the call to no route: {unmatched:?}"));
    assert_eq!(mine["status"], 404);
    assert_eq!(mine["caller_id"], ALICE_ID);
    let text = serde_json::to_string(&unmatched).unwrap();
    assert!(text.contains("/no/such/route"), "{text}");
    assert!(
        !text.contains(secret) && !text.contains("qsecret"),
        "a secret reached the log: {text}"
    );
    // A RESUME replays what the bot missed, and the log says so.
    let mut bot = serve_gateway_support::RawClient::connect(&server, "v=10&encoding=json").await;
    bot.payload().await; // HELLO
    bot.identify(BOT_TOKEN, Some(1 | 512 | 32768), json!({}))
        .await;
    let ready = bot.dispatch("READY").await;
    let session_id = ready["session_id"].as_str().unwrap().to_string();
    bot.dispatch("GUILD_CREATE").await;
    // The bot is sent the message but resumes from before it, as a client does whose last
    // frames were lost with the connection: the RESUME replays it.
    let seq = bot.seq.unwrap_or(0);
    let since = cursor(&base).await;
    let (status, sent) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(json!({"content": "while you were away"})),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        bot.dispatch("MESSAGE_CREATE").await["content"],
        "while you were away"
    );
    drop(bot);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut back = serve_gateway_support::RawClient::connect(&server, "v=10&encoding=json").await;
    back.payload().await; // HELLO
    back.send_json(
        json!({"op": 6, "d": {"token": BOT_TOKEN, "session_id": session_id, "seq": seq}}),
    )
    .await;
    let replayed = back.dispatch("MESSAGE_CREATE").await;
    assert_eq!(replayed["content"], "while you were away");
    back.dispatch("RESUMED").await;
    let logged = logged_since(&base, since, "MESSAGE_CREATE").await;
    let entry = logged
        .iter()
        .find(|e| e["session_id"] == session_id.as_str() && e["replayed"] == true)
        .unwrap_or_else(|| panic!("no replayed MESSAGE_CREATE for {session_id}: {logged:?}"));
    assert_eq!(entry["replayed"], true, "{entry}");
    assert_eq!(entry["user_id"], BOT_ID);
}
