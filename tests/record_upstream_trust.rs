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
        &["-o", "/dev/null", "-w", "%{http_code}"],
    );
    assert_eq!(String::from_utf8_lossy(&reply.stdout), "502");
    assert_eq!(other.served(), 0, "nothing reached the untrusted server");
    let log = recorder.stop();
    assert!(
        log.contains("--upstream-ca FILE"),
        "the log says how to trust a test upstream:\n{log}"
    );
}
