//! Durable acknowledgements through the built binary: every message `serve` answered 200 for
//! is still there after `kill -9` the moment the last answer arrives, and a restart on the same
//! data directory.
mod serve_support;

use serde_json::json;
use serve_support::*;

#[test]
fn acknowledged_messages_survive_kill_9_right_after_the_200() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = Server::start_in(&data, Some(FIXTURE), &["--rate-limit", "off"]).unwrap();
    assert!(
        !server.banner.contains("durability: relaxed"),
        "{}",
        server.banner
    );
    let api = server.api();
    let mut ids = Vec::new();
    for n in 0..25 {
        let reply = api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": format!("acknowledged {n}")}),
        );
        assert_eq!(reply.status, 200, "{}", reply.raw);
        ids.push(reply.body["id"].as_str().unwrap().to_string());
    }
    // SIGKILL on the last 200: no shutdown, no final flush.
    let killed = std::process::Command::new("kill")
        .args(["-9", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(server);

    let server = Server::start_in(&data, None, &["--rate-limit", "off"]).unwrap();
    let api = server.api();
    for (n, id) in ids.iter().enumerate() {
        let reply = api.get(&format!("/channels/{GENERAL}/messages/{id}"), BOT);
        assert_eq!(reply.status, 200, "message {n} was lost: {}", reply.raw);
        assert_eq!(reply.body["content"], format!("acknowledged {n}"));
    }
}

#[test]
fn relaxed_durability_says_so_in_the_banner() {
    let server = Server::start(Some(FIXTURE), &["--durability", "relaxed"]);
    assert!(
        server.banner.contains("durability: relaxed"),
        "{}",
        server.banner
    );
}
