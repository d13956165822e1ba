//! `--upstream-ca` trusts an ordinary self-signed test server (`openssl req -x509`, whose
//! certificate is marked as a CA and names no host) by pinning that exact certificate, and a
//! handshake refused for its certificate says how to fix it.
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use record_support::*;
use serde_json::Value;
use upstream::*;

#[test]
fn a_self_signed_upstream_named_with_upstream_ca_is_trusted() {
    let stand_in = FakeDiscord::start_self_signed();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    let me = curl(
        &recorder,
        "https://discord.com/api/v9/users/@me",
        &["-H", "Authorization: Bot MTIz.secret"],
    );
    let log = recorder.log();
    assert!(me.status.success(), "{me:?}\n{log}");
    let user: Value = serde_json::from_slice(&me.stdout).expect("JSON from the stand-in");
    assert_eq!(user["username"], "Nelly", "{log}");
    assert!(stand_in.served() >= 1);
    // `record` logs the exchange in the access format, without the token.
    let line = log
        .lines()
        .find(|l| l.contains("discord_mitm::access") && l.contains("route=/api/v9/users/@me "))
        .unwrap_or_else(|| panic!("no access line:\n{log}"));
    assert!(
        line.contains("status=200") && line.contains("source=upstream"),
        "{line}"
    );
    assert!(line.contains("client=127.0.0.1:"), "{line}");
    assert!(!log.contains("MTIz.secret"), "{log}");
}

#[test]
fn another_certificate_is_still_refused_with_a_hint() {
    let trusted = FakeDiscord::start_self_signed();
    let other = FakeDiscord::start_self_signed();
    let dir = workdir();
    // Trust `trusted`'s certificate but send Discord's hosts to `other`.
    let pins: Vec<String> = other.resolve_args();
    let pins: Vec<&str> = pins.iter().map(String::as_str).collect();
    let recorder = Recorder::start_unpinned(dir.path(), &trusted, &pins);
    let reply = curl(
        &recorder,
        "https://discord.com/api/v9/users/@me",
        &["-w", "\n%{http_code}"],
    );
    let reply = String::from_utf8_lossy(&reply.stdout).to_string();
    let (body, status) = reply.rsplit_once('\n').unwrap();
    assert_eq!(status, "502", "{reply}");
    assert_eq!(other.served(), 0, "nothing reached the untrusted server");
    // The client reads the reason and the fix in Discord's error shape.
    let body: Value = serde_json::from_str(body).unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("502: Bad Gateway (TLS handshake with discord.com failed: ")
            && message.contains("certificate"),
        "{body}"
    );
    assert_eq!(body["code"], 0);
    assert!(
        body["discord_mitm_hint"]
            .as_str()
            .is_some_and(|hint| hint.contains("--upstream-ca FILE")),
        "{body}"
    );
    let log = recorder.stop();
    assert!(
        log.contains("--upstream-ca FILE"),
        "the log says how to trust a test upstream:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("answering 502") && l.contains("client=")),
        "{log}"
    );
}
