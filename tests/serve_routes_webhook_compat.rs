//! Slack- and GitHub-compatible webhook execution against the built binary, driven by curl the
//! way those services (and scripts imitating them) post: the payloads become real messages.
mod serve_routes_support;
mod serve_support;

use std::process::Command;

use serde_json::{json, Value};
use serve_routes_support::*;
use serve_support::*;

/// POSTs `body` with curl; returns (status, parsed body or null).
fn curl(url: &str, content_type: &str, headers: &[&str], body: &str) -> (u16, Value) {
    let mut command = Command::new("curl");
    command.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", url]);
    command.args(["-H", &format!("Content-Type: {content_type}")]);
    for header in headers {
        command.args(["-H", header]);
    }
    command.args(["--data-binary", body]);
    let output = command.output().expect("curl runs");
    let text = String::from_utf8(output.stdout).expect("utf-8 answer");
    let (body, status) = text.rsplit_once('\n').expect("status line");
    (
        status.trim().parse().expect("status code"),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[test]
fn slack_and_github_payloads_become_messages() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let hook = expect(
        &api.post(
            &format!("/channels/{GENERAL}/webhooks"),
            ALICE,
            json!({"name": "alerts"}),
        ),
        200,
    )
    .clone();
    let base = format!(
        "{}/webhooks/{}/{}",
        server.base(),
        hook["id"].as_str().unwrap(),
        hook["token"].as_str().unwrap()
    );
    let latest = || {
        expect(
            &api.get(&format!("/channels/{GENERAL}/messages?limit=1"), ALICE),
            200,
        )[0]
        .clone()
    };

    // Slack, JSON: text with mrkdwn links, an attachment as an embed.
    let slack = json!({"text": "Deploy <https://ci.example/7|#7> done", "username": "ci-bot",
        "attachments": [{"color": "good", "title": "Build 7", "title_link": "https://ci.example/7",
                         "text": "all green", "fields": [{"title": "Branch", "value": "main", "short": true}]}]});
    let (status, answer) = curl(
        &format!("{base}/slack"),
        "application/json",
        &[],
        &slack.to_string(),
    );
    assert_eq!((status, &answer), (200, &json!("ok")));
    conforms(
        &spec,
        "POST",
        "/webhooks/{webhook_id}/{webhook_token}/slack",
        200,
        &answer,
    );
    let posted = latest();
    assert_eq!(posted["content"], "Deploy [#7](https://ci.example/7) done");
    assert_eq!(posted["author"]["username"], "ci-bot");
    assert_eq!(posted["webhook_id"], hook["id"]);
    assert_eq!(posted["embeds"][0]["title"], "Build 7");
    assert_eq!(posted["embeds"][0]["color"], 0x2EB886);
    assert_eq!(posted["embeds"][0]["fields"][0]["inline"], true);

    // Slack, form-encoded `payload=` as Slack's own clients send it.
    let form = format!(
        "payload={}",
        form_urlencoded::byte_serialize(json!({"text": "from a form"}).to_string().as_bytes())
            .collect::<String>()
    );
    let (status, _) = curl(
        &format!("{base}/slack"),
        "application/x-www-form-urlencoded",
        &[],
        &form,
    );
    assert_eq!(status, 200);
    assert_eq!(latest()["content"], "from a form");

    // Bad input: nothing to post, broken JSON, wrong token.
    let (status, error) = curl(&format!("{base}/slack"), "application/json", &[], "{}");
    assert_eq!((status, &error["code"]), (400, &json!(50006)));
    let (status, error) = curl(&format!("{base}/slack"), "application/json", &[], "{nope");
    assert_eq!((status, &error["code"]), (400, &json!(50109)));
    let (status, error) = curl(
        &format!(
            "{}/webhooks/{}/wrong/slack",
            server.base(),
            hook["id"].as_str().unwrap()
        ),
        "application/json",
        &[],
        &slack.to_string(),
    );
    assert_eq!((status, &error["code"]), (401, &json!(50027)));

    // GitHub: a push becomes a summary embed by "GitHub".
    let push = json!({
        "ref": "refs/heads/main", "compare": "https://github.com/o/r/compare/a...b",
        "repository": {"full_name": "o/r", "html_url": "https://github.com/o/r"},
        "sender": {"login": "octo", "html_url": "https://github.com/octo", "avatar_url": "https://avatars.example/octo"},
        "commits": [
            {"id": "a1b2c3d4e5f6", "url": "https://github.com/o/r/commit/a1b2c3d", "message": "Fix the parser\n\ndetails", "author": {"username": "octo", "name": "Octo Cat"}},
            {"id": "0f0f0f0f0f0f", "url": "https://github.com/o/r/commit/0f0f0f0", "message": "Add tests", "author": {"username": "hubot", "name": "Hubot"}}]});
    let (status, _) = curl(
        &format!("{base}/github"),
        "application/json",
        &["X-GitHub-Event: push"],
        &push.to_string(),
    );
    assert_eq!(status, 204);
    let posted = latest();
    assert_eq!(posted["author"]["username"], "GitHub");
    let embed = &posted["embeds"][0];
    assert_eq!(embed["title"], "[o/r:main] 2 new commits");
    assert_eq!(embed["url"], "https://github.com/o/r/compare/a...b");
    assert_eq!(embed["author"]["name"], "octo");
    assert!(embed["description"]
        .as_str()
        .unwrap()
        .starts_with("[`a1b2c3d`](https://github.com/o/r/commit/a1b2c3d) Fix the parser - octo"));

    // ?wait=true answers with the message; an issue opening.
    let issue = json!({"action": "opened", "repository": {"full_name": "o/r"},
        "sender": {"login": "octo"},
        "issue": {"number": 12, "title": "Crash on start", "body": "Steps...", "html_url": "https://github.com/o/r/issues/12"}});
    let (status, message) = curl(
        &format!("{base}/github?wait=true"),
        "application/json",
        &["X-GitHub-Event: issues"],
        &issue.to_string(),
    );
    assert_eq!(status, 200, "{message}");
    assert_eq!(
        message["embeds"][0]["title"],
        "[o/r] Issue opened: #12 Crash on start"
    );
    assert_eq!(message["embeds"][0]["description"], "Steps...");

    // A ping (GitHub's hook test) and unsupported events are accepted and post nothing.
    let before = latest()["id"].clone();
    let (status, _) = curl(
        &format!("{base}/github"),
        "application/json",
        &["X-GitHub-Event: ping"],
        &json!({"zen": "Keep it simple.", "sender": {"login": "octo"}}).to_string(),
    );
    assert_eq!(status, 204);
    assert_eq!(latest()["id"], before);
    let (status, error) = curl(
        &format!("{base}/github"),
        "application/json",
        &["X-GitHub-Event: push"],
        &json!({"commits": []}).to_string(),
    );
    assert_eq!((status, &error["code"]), (400, &json!(50035)));
    assert!(error["errors"]["sender"]["_errors"].is_array());
}
