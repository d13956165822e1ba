//! Errors a person can act on, through the built binary: a taken address and a data directory
//! held by another instance are each said once, in words, with the fix; no ANSI colour codes
//! reach a stderr that is not a terminal unless `--color always`; attachment URLs come from
//! `--public-url` (default the API address), never from the uploader's `Host`.
mod serve_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use serde_json::Value;
use serve_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_discord-mitm");

fn serve_fails(args: &[&str]) -> String {
    let out = Command::new(BIN).arg("serve").args(args).output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_taken_address_and_a_held_data_directory_are_said_once_with_the_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let stderr = serve_fails(&["--api", &addr, "--data", data.to_str().unwrap()]);
    assert_eq!(stderr.matches("already in use").count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("fix:") && stderr.contains("--api"),
        "{stderr}"
    );
    assert!(!stderr.contains("os error"), "{stderr}");

    let server = Server::start_in(&data, Some(FIXTURE), &[]).unwrap();
    let stderr = serve_fails(&["--api", "127.0.0.1:0", "--data", data.to_str().unwrap()]);
    assert_eq!(
        stderr.matches("another discord-mitm is using").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("--data DIR"), "{stderr}");
    assert!(
        !stderr.contains("Os {") && !stderr.contains("code: 11"),
        "{stderr}"
    );
    drop(server);
}

#[test]
fn no_colour_codes_unless_asked_when_stderr_is_not_a_terminal() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    drop(Server::start_in(&data, Some(FIXTURE), &[]).unwrap());
    // A data directory open to others: `serve --reset` on it logs a warning (a log line).
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let warn = |color: Option<&str>| {
        let mut command = Command::new(BIN);
        if let Some(color) = color {
            command.args(["--color", color]);
        }
        // The port is taken, so serve stops right after opening the data directory.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let out = command
            .args(["serve", "--data", data.to_str().unwrap(), "--api"])
            .arg(taken.local_addr().unwrap().to_string())
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let plain = warn(None);
    assert!(plain.contains("chmod 700"), "{plain}");
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
    assert!(!warn(Some("never")).contains('\u{1b}'));
    assert!(warn(Some("always")).contains("\u{1b}["));
}

/// Posts a message with one attachment, sending `host` as the Host header.
fn upload(addr: &str, host: &str) -> Value {
    let boundary = "xXboundaryXx";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\
         Content-Type: application/json\r\n\r\n{{\"content\":\"file\"}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    );
    let request = format!(
        "POST /api/v10/channels/{GENERAL}/messages HTTP/1.1\r\nHost: {host}\r\nAuthorization: {ALICE}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let (head, json) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    serde_json::from_str(json).unwrap_or_else(|err| panic!("{err}: {json}"))
}

#[test]
fn attachment_urls_come_from_public_url_never_from_host() {
    let server = Server::start(Some(FIXTURE), &[]);
    let message = upload(&server.addr, "evil.example");
    let url = message["attachments"][0]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("http://{}/", server.addr)),
        "{url}"
    );
    drop(server);

    let server = Server::start(
        Some(FIXTURE),
        &["--public-url", "https://files.example.test/"],
    );
    let message = upload(&server.addr, "evil.example");
    let url = message["attachments"][0]["url"].as_str().unwrap();
    assert!(url.starts_with("https://files.example.test/"), "{url}");
    let id = message["id"].as_str().unwrap();
    let stored = server
        .api()
        .get(&format!("/channels/{GENERAL}/messages/{id}"), ALICE);
    let stored_url = stored.body["attachments"][0]["url"].as_str().unwrap();
    assert!(!stored_url.contains("evil.example"), "{stored_url}");
}
