//! Invites restricted to target users against the built binary, uploading the CSV with curl's
//! multipart form (as a script would): who may accept, reading the list back, job status.
mod serve_routes_support;
mod serve_support;

use std::process::Command;

use serde_json::{json, Value};
use serve_routes_support::*;
use serve_support::*;

/// `PUT` a CSV as `target_users_file` with curl; returns (status, body text).
fn upload(url: &str, token: &str, csv: &str) -> (u16, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.csv");
    std::fs::write(&file, csv).unwrap();
    let output = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "PUT", url])
        .args(["-H", &format!("Authorization: {token}")])
        .args([
            "-F",
            &format!("target_users_file=@{};type=text/csv", file.display()),
        ])
        .output()
        .expect("curl runs");
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), body.to_string())
}

#[test]
fn restricted_invites() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let code = expect(
        &api.post(
            &format!("/channels/{GENERAL}/invites"),
            ALICE,
            json!({"max_age": 0}),
        ),
        200,
    )["code"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/invites/{code}/target-users", server.base());

    let status = expect(
        &api.get(&format!("/invites/{code}/target-users/job-status"), ALICE),
        200,
    )
    .clone();
    conforms(
        &spec,
        "GET",
        "/invites/{code}/target-users/job-status",
        200,
        &status,
    );
    assert_eq!(status["status"], 0);

    let (code_bad, body) = upload(&url, ALICE, "user_id\n123\nnot-an-id\n");
    assert_eq!(code_bad, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], 50035);
    assert_eq!(
        error["errors"]["target_users_file"]["_errors"][0]["message"],
        "Line 3: invalid user ID format"
    );
    let (forbidden, _) = upload(&url, BOB, &format!("user_id\n{CAROL_ID}\n"));
    assert_eq!(forbidden, 403);
    let (done, body) = upload(&url, ALICE, &format!("user_id\n{CAROL_ID}\n{CAROL_ID}\n"));
    assert_eq!(done, 204, "{body}");

    let listed = api.get(&format!("/invites/{code}/target-users"), ALICE);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.header("content-type").as_deref(), Some("text/csv"));
    assert_eq!(listed.raw, format!("user_id\n{CAROL_ID}\n"));
    expect_error(
        &api.get(&format!("/invites/{code}/target-users"), BOB),
        403,
        50013,
    );
    let status = expect(
        &api.get(&format!("/invites/{code}/target-users/job-status"), ALICE),
        200,
    )
    .clone();
    conforms(
        &spec,
        "GET",
        "/invites/{code}/target-users/job-status",
        200,
        &status,
    );
    assert_eq!(status["status"], 2);
    assert_eq!(status["total_users"], 1);

    // Only the target may use it; to anyone else it is unknown.
    expect_error(
        &api.post(&format!("/invites/{code}"), DAVE, json!({})),
        404,
        10006,
    );
    expect(
        &api.post(&format!("/invites/{code}"), CAROL, json!({})),
        200,
    );
    expect_error(&api.get("/invites/nope/target-users", ALICE), 404, 10006);
}
