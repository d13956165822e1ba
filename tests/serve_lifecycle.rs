//! `serve` as a process: persistence across restarts (graceful and killed), bad fixtures, the
//! demo world and its banner, --reset, and rate limits.
mod serve_support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use serve_support::*;

#[test]
fn data_survives_a_graceful_restart_and_ids_keep_increasing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = Server::start_in(&data, Some(FIXTURE), &["--rate-limit", "off"]).unwrap();
    let api = first.api();
    let message = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": "remember me"}),
        ),
        200,
    )
    .clone();
    let role = expect(
        &api.post(
            &format!("/guilds/{GUILD}/roles"),
            BOT,
            json!({"name": "Persisted"}),
        ),
        200,
    )
    .clone();
    expect(
        &api.patch("/users/@me", ALICE, json!({"global_name": "Alice A"})),
        200,
    );
    first.stop();

    let second = Server::start_in(&data, None, &["--rate-limit", "off"]).unwrap();
    assert!(second.banner.contains("existing data"), "{}", second.banner);
    let api = second.api();
    let stored = expect(
        &api.get(
            &format!(
                "/channels/{GENERAL}/messages/{}",
                message["id"].as_str().unwrap()
            ),
            BOB,
        ),
        200,
    )
    .clone();
    assert_eq!(stored["content"], "remember me");
    let roles = expect(&api.get(&format!("/guilds/{GUILD}/roles"), BOB), 200).clone();
    assert!(roles
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == role["id"]));
    assert_eq!(api.get("/users/@me", ALICE).body["global_name"], "Alice A");
    let newer = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": "after restart"}),
        ),
        200,
    )
    .clone();
    let (old_id, new_id): (u64, u64) = (
        message["id"].as_str().unwrap().parse().unwrap(),
        newer["id"].as_str().unwrap().parse().unwrap(),
    );
    assert!(new_id > old_id);
    let listed = api
        .get(&format!("/channels/{GENERAL}/messages?limit=2"), BOB)
        .body;
    assert_eq!(listed[0]["content"], "after restart");
    assert_eq!(listed[1]["content"], "remember me");
}

#[test]
fn data_written_before_a_crash_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, Some(FIXTURE), &["--rate-limit", "off"]).unwrap();
    let api = server.api();
    let message = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": "durable"}),
        ),
        200,
    )
    .clone();
    // sled flushes on its own every 500 ms; a crash after that loses nothing.
    std::thread::sleep(Duration::from_millis(1200));
    let pid = server.pid();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    server.stop();
    let again = Server::start_in(&data, None, &["--rate-limit", "off"]).unwrap();
    let stored = again.api().get(
        &format!(
            "/channels/{GENERAL}/messages/{}",
            message["id"].as_str().unwrap()
        ),
        BOT,
    );
    assert_eq!(expect(&stored, 200)["content"], "durable");
}

#[test]
fn a_bad_fixture_fails_with_its_json_path_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = FIXTURE.replace(r#""roles": ["200000000000000002"]"#, r#""roles": ["999"]"#);
    let fixture = dir.path().join("bad.json");
    std::fs::write(&fixture, bad).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args(["serve", "--api", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--fixture")
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("$.guilds[0].members[0].roles[0]"),
        "{stderr}"
    );
    assert!(stderr.contains("no role with id 999"), "{stderr}");
    assert!(!data.exists(), "nothing was written");

    let not_json = dir.path().join("broken.json");
    std::fs::write(&not_json, "{\"users\": [").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_discord-mitm"))
        .args(["serve", "--api", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--fixture")
        .arg(&not_json)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("broken.json"));
}

#[test]
fn an_empty_data_dir_gets_a_demo_world_with_a_helpful_banner() {
    let server = Server::start(None, &["--rate-limit", "off"]);
    let banner = &server.banner;
    assert!(
        banner.contains(&format!("http://{}/api/v10", server.addr)),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("ws://{}", server.addr)),
        "{banner}"
    );
    let bot_line = banner
        .lines()
        .find(|l| l.contains("Authorization: Bot "))
        .expect("a bot token line");
    let token = bot_line.split("Authorization: ").nth(1).unwrap().trim();
    let api = server.api();
    let guilds = expect(&api.get("/users/@me/guilds", token), 200).clone();
    assert_eq!(guilds[0]["name"], "Demo Guild");
    let channels = expect(
        &api.get(
            &format!("/guilds/{}/channels", guilds[0]["id"].as_str().unwrap()),
            token,
        ),
        200,
    )
    .clone();
    let kinds: Vec<i64> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_i64().unwrap())
        .collect();
    assert!(kinds.contains(&4) && kinds.contains(&0) && kinds.contains(&2));
    // The bot token's first segment is its id in base64, as libraries expect.
    let me = api.get("/users/@me", token).body;
    use base64::Engine;
    let first = token.trim_start_matches("Bot ").split('.').next().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(first)
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        me["id"].as_str().unwrap()
    );
    // The demo user can log in with the printed email.
    let login = api.send(
        "POST",
        "/auth/login",
        None,
        Some(&json!({"login": "demo@example.com", "password": "demo-password"})),
        &[],
    );
    expect(&login, 200);
}

#[test]
fn reset_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = Server::start_in(&data, Some(FIXTURE), &[]).unwrap();
    expect(&first.api().get("/users/@me", ALICE), 200);
    first.stop();
    let second = Server::start_in(&data, None, &["--reset"]).unwrap();
    assert!(second.banner.contains("demo world"), "{}", second.banner);
    expect_error(&second.api().get("/users/@me", ALICE), 401, 0);
}

#[test]
fn route_buckets_answer_429_with_headers_and_split_by_channel() {
    let server = Server::start(Some(FIXTURE), &["--rate-limit", "3/60"]);
    let api = server.api();
    let path = format!("/channels/{GENERAL}/messages");
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let reply = api.post(&path, BOT, json!({"content": "x"}));
        expect(&reply, 200);
        remaining.push(reply.header("x-ratelimit-remaining").unwrap());
        assert_eq!(reply.header("x-ratelimit-limit").as_deref(), Some("3"));
        assert!(reply.header("x-ratelimit-bucket").is_some());
        assert!(
            reply
                .header("x-ratelimit-reset")
                .unwrap()
                .parse::<f64>()
                .unwrap()
                > 1.7e9
        );
        assert!(
            reply
                .header("x-ratelimit-reset-after")
                .unwrap()
                .parse::<f64>()
                .unwrap()
                <= 60.0
        );
        assert_eq!(reply.header("x-ratelimit-scope").as_deref(), Some("user"));
    }
    assert_eq!(remaining, vec!["2", "1", "0"]);
    let limited = api.post(&path, BOT, json!({"content": "x"}));
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["global"], false);
    assert_eq!(limited.body["message"], "You are being rate limited.");
    let retry = limited.body["retry_after"].as_f64().unwrap();
    assert!(retry > 0.0 && retry <= 60.0);
    assert_eq!(limited.header("via").as_deref(), Some("1.1 google"));
    assert!(limited.header("retry-after").is_some());
    assert_eq!(
        limited.header("content-type").as_deref(),
        Some("application/json")
    );
    // Another channel is another bucket; another caller has its own.
    expect(
        &api.post(
            &format!("/channels/{NEWS}/messages"),
            BOT,
            json!({"content": "x"}),
        ),
        200,
    );
    expect(&api.post(&path, ALICE, json!({"content": "x"})), 200);
    // Errors carry the headers too.
    let unauthorized = api.get("/users/@me", "nope");
    assert_eq!(unauthorized.status, 401);
    assert!(unauthorized.header("x-ratelimit-limit").is_some());
}

#[test]
fn the_global_limit_answers_429_global() {
    let server = Server::start(
        Some(FIXTURE),
        &["--rate-limit", "off", "--global-rate-limit", "4/60"],
    );
    let api = server.api();
    for path in [
        "/users/@me",
        "/gateway/bot",
        "/users/@me/guilds",
        "/applications/@me",
    ] {
        expect(&api.get(path, BOT), 200);
    }
    let limited = api.get(&format!("/guilds/{GUILD}"), BOT);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["global"], true);
    assert_eq!(
        limited.header("x-ratelimit-global").as_deref(),
        Some("true")
    );
    assert_eq!(
        limited.header("x-ratelimit-scope").as_deref(),
        Some("global")
    );
    expect(&api.get("/users/@me", ALICE), 200);
}
