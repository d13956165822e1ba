//! Replay matching through the binary: recordings made by `record` (the binary) from the fake
//! upstream, replayed by `serve --listen --fallback recorded` to curl through the proxy. The
//! fake answers every request with a counter (`n`), so each replay shows which recording it is.
mod pipeline_support;
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use pipeline_support::*;
use record_support::workdir;
use serde_json::json;
use upstream::FakeDiscord;

const GUILD: &str = "81384788765712384";
const OTHER_GUILD: &str = "999999999999999999";

/// A GET route with a query that `serve` does not answer natively (guild join requests), so
/// replays come from the recordings.
fn search(guild: &str, query: &str) -> String {
    format!("https://discord.com/api/v9/guilds/{guild}/requests?{query}")
}

fn assert_replayed(reply: &Reply, n: u64, kind: &str) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.source(), Some("recording"), "{reply:?}");
    assert_eq!(reply.json()["n"], n, "{reply:?}");
    assert_eq!(reply.replay_match(), Some(kind), "{reply:?}");
}

fn assert_none(reply: &Reply) {
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(reply.source(), Some("none"), "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"message": "404: Not Found", "code": 0})
    );
}

/// curl arguments for a JSON POST of `body`.
fn post(body: &str) -> [&str; 6] {
    [
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-raw",
        body,
    ]
}

#[test]
fn with_match_body_each_recorded_post_replays_its_own_response() {
    let fake = FakeDiscord::start_echoing();
    let dir = workdir();
    let record = RecordProxy::start(dir.path(), &fake);
    // A POST route the backend does not serve (relationships became native with the official
    // client's account routes), so each answer comes from the recordings.
    let relationships = "https://discord.com/api/v9/hypesquad/online";
    let alice = post(r#"{"username":"alice"}"#);
    let bob = post(r#"{"username":"bob"}"#);
    let carol = post(r#"{"username":"carol"}"#);
    assert_eq!(record.curl(relationships, &alice).json()["n"], 1);
    assert_eq!(record.curl(relationships, &bob).json()["n"], 2);
    record.stop();
    let served_while_recording = fake.served();

    let serve = ServeProxy::start(
        dir.path(),
        &args(&["--fallback", "recorded", "--replay-match-body"]),
    );
    let to_alice = serve.curl(relationships, &alice);
    assert_replayed(&to_alice, 1, "exact");
    assert_eq!(to_alice.json()["body"], r#"{"username":"alice"}"#);
    let to_bob = serve.curl(relationships, &bob);
    assert_replayed(&to_bob, 2, "exact");
    assert_eq!(to_bob.json()["body"], r#"{"username":"bob"}"#);
    // A body nobody recorded is not answered by someone else's recording.
    assert_none(&serve.curl(relationships, &carol));
    let log = serve.stop();
    assert!(
        answered(&log, "POST", "/api/v9/hypesquad/online", "recording")
            && answered(&log, "POST", "/api/v9/hypesquad/online", "none"),
        "{log}"
    );

    // Without --replay-match-body the body is no part of the key: the most recent wins.
    let serve = ServeProxy::start(dir.path(), &args(&["--fallback", "recorded"]));
    assert_replayed(&serve.curl(relationships, &alice), 2, "exact");
    assert_replayed(&serve.curl(relationships, &carol), 2, "exact");
    serve.stop();
    assert_eq!(
        fake.served(),
        served_while_recording,
        "replay reached upstream"
    );
}

#[test]
fn ignored_parameters_match_others_fall_to_looser_matches_and_the_most_recent_wins() {
    let fake = FakeDiscord::start_echoing();
    let dir = workdir();
    let record = RecordProxy::start(dir.path(), &fake);
    // n=1: with a cache buster; n=2 and n=3: the same request twice.
    record.curl(&search(GUILD, "content=alpha&_=1111"), &[]);
    record.curl(&search(GUILD, "content=beta"), &[]);
    record.curl(&search(GUILD, "content=beta"), &[]);
    record.stop();

    let serve = ServeProxy::start(dir.path(), &args(&["--fallback", "recorded"]));
    // `_` is ignored by default: another cache buster, or none, is still the exact request.
    assert_replayed(
        &serve.curl(&search(GUILD, "_=2222&content=alpha"), &[]),
        1,
        "exact",
    );
    assert_replayed(
        &serve.curl(&search(GUILD, "content=alpha"), &[]),
        1,
        "exact",
    );
    // Recorded twice: the most recent answers.
    assert_replayed(&serve.curl(&search(GUILD, "content=beta"), &[]), 3, "exact");
    // Parameters are compared decoded and sorted.
    assert_replayed(
        &serve.curl(&search(GUILD, "content=%62eta"), &[]),
        3,
        "exact",
    );
    // A parameter that is not ignored differs: the route's most recent recording, marked loose.
    assert_replayed(
        &serve.curl(&search(GUILD, "content=alpha&offset=25"), &[]),
        3,
        "loose",
    );
    assert_replayed(
        &serve.curl(&search(GUILD, "content=gamma"), &[]),
        3,
        "loose",
    );
    // Another guild, same query: the template match, with the guild id substituted.
    let other = serve.curl(&search(OTHER_GUILD, "content=alpha"), &[]);
    assert_replayed(&other, 1, "template");
    assert_eq!(other.json()["ids"], json!([OTHER_GUILD]), "{other:?}");
    // Only JSON strings equal to the id are replaced, not the recorded path that contains it.
    assert!(
        other.json()["path"].as_str().unwrap().contains(GUILD),
        "{other:?}"
    );
    // The same route on another method or host is not a candidate.
    assert_none(&serve.curl(&search(GUILD, "content=alpha"), &["-X", "DELETE"]));
    assert_none(&serve.curl(
        &format!("https://discordapp.com/api/v9/guilds/{GUILD}/requests?content=alpha"),
        &[],
    ));
    serve.stop();

    // --replay-ignore-param replaces the default list: `offset` is ignored now, `_` is not.
    let serve = ServeProxy::start(
        dir.path(),
        &args(&["--fallback", "recorded", "--replay-ignore-param", "offset"]),
    );
    assert_replayed(
        &serve.curl(&search(GUILD, "content=alpha&_=1111&offset=25"), &[]),
        1,
        "exact",
    );
    assert_replayed(
        &serve.curl(&search(GUILD, "content=alpha&_=2222"), &[]),
        3,
        "loose",
    );
    let log = serve.stop();
    assert!(
        answered(
            &log,
            "GET",
            "/api/v9/guilds/{guild_id}/requests",
            "recording"
        ),
        "{log}"
    );
}
