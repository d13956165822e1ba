//! discord.py (from PyPI, unmodified) run entirely through `serve --listen` as a bot operator
//! would: `Client(proxy=...)`, SSL_CERT_FILE pointing at our CA, REST and gateway left at
//! discord.com's and gateway.discord.gg. The ping/pong scenario must pass, and the gateway
//! session the in-process gateway served is in the recordings, decoded, token redacted.
mod pipeline_support;
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipeline_support::*;

#[test]
fn discordpy_through_the_proxy_gets_ready_and_replies_pong() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bots/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-test-deps (installs discord.py in .venv/bots)",
        python.display()
    );
    let dir = record_support::workdir();
    let serve = ServeProxy::start(dir.path(), &["--fallback".into(), "none".into()]);
    let mut child = Command::new(python)
        .arg(root.join("tests/python/proxy_pingpong.py"))
        .env("SSL_CERT_FILE", &serve.ca_pem)
        .env("DMITM_PROXY", serve.proxy_url())
        .env("BOT_TOKEN", BOT_TOKEN)
        .env("ALICE_TOKEN", ALICE_TOKEN)
        .env("ALICE_ID", ALICE_ID)
        .env("GUILD_ID", GUILD_ID)
        .env("GENERAL_ID", GENERAL_ID)
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
    let log = serve.stop();
    assert!(
        status.is_some_and(|s| s.success()) && out.contains("SCENARIO proxy_pingpong OK"),
        "status {status:?}\n--- stdout\n{out}\n--- stderr\n{err}\n--- serve log\n{log}"
    );
    // The bot's own REST calls and its gateway upgrade were answered in-process.
    assert!(log.contains("source=backend"), "{log}");

    // The gateway session is recorded like `record` records upstream's.
    let recordings = dir.path().join("recordings");
    let recordings = recordings.to_str().unwrap();
    let list = recordings_cli(&["--recordings", recordings, "list"]);
    let gateway_rows: Vec<&str> = list.lines().filter(|l| l.contains("gw:")).collect();
    assert_eq!(gateway_rows.len(), 1, "{list}");
    assert!(
        gateway_rows[0].contains("gateway.discord.gg"),
        "{}",
        gateway_rows[0]
    );
    assert!(
        list.contains("/api/v10/users/@me"),
        "REST exchanges recorded too: {list}"
    );
    let id = gateway_rows[0]
        .split_whitespace()
        .find(|w| w.starts_with("gw:"))
        .unwrap();
    let shown = recordings_cli(&["--recordings", recordings, "show", id]);
    assert!(
        shown.contains("op=10") && shown.contains("t=READY") && shown.contains("t=MESSAGE_CREATE"),
        "{shown}"
    );
    assert!(
        shown.contains(r#""content":"pong""#),
        "the bot's reply as the gateway sent it: {shown}"
    );
    assert!(!shown.contains(BOT_TOKEN), "IDENTIFY token stored: {shown}");
    let session: serde_json::Value = serde_json::from_str(&recordings_cli(&[
        "--recordings",
        recordings,
        "--json",
        "show",
        id,
    ]))
    .unwrap();
    let frames = session["frames"].as_array().unwrap();
    let identify = frames
        .iter()
        .find(|f| f["payload"]["op"] == 2)
        .unwrap_or_else(|| panic!("no IDENTIFY frame: {session}"));
    assert_eq!(identify["direction"], "send", "{identify}");
    let token = identify["payload"]["d"]["token"].as_str().unwrap();
    assert_ne!(token, BOT_TOKEN);
    assert!(token.contains("redacted"), "{identify}");
    assert!(
        session["redactions"].to_string().contains("token"),
        "{session}"
    );
}

fn recordings_cli(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("recordings")
        .args(args)
        .output()
        .expect("run recordings");
    assert!(
        out.status.success(),
        "recordings {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
