//! Reading recordings while `record` runs (through its live API), and the live explorer's JSON
//! API: against the built binary, recording from the local stand-in upstream.
#[path = "common/explore_gateway.rs"]
mod explore_gateway;
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use explore_gateway::gateway_session;
use record_support::*;
use serde_json::Value;
use upstream::*;

fn run_ok(args: &[&str]) -> String {
    let out = run_bin(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn get_through(recorder: &Recorder, path: &str) {
    let out = curl(
        recorder,
        &format!("https://discord.com/api/v9{path}"),
        &["--compressed"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `check` until it holds (the recorder writes within ~100 ms).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A string planted in one gateway frame (a presence update the client sends).
const PLANTED: &str = "needle-5e0a-explorer";

#[test]
fn recordings_routes_and_export_read_through_a_running_record() {
    let dir = workdir();
    let stand_in = FakeDiscord::start();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    let rec = recorder.recordings.to_str().unwrap().to_string();
    get_through(
        &recorder,
        &format!("/channels/{CHANNEL_ID}/messages?limit=2"),
    );
    get_through(&recorder, "/users/@me");
    assert!(
        std::fs::metadata(recorder.recordings.join("live.json")).is_ok(),
        "record leaves its live file beside the database"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(recorder.recordings.join("live.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    eventually("two exchanges listed while record runs", || {
        let out = run_bin(&["recordings", "--recordings", &rec, "--json", "list"]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).lines().count() == 2
    });
    let list = run_ok(&["recordings", "--recordings", &rec, "list"]);
    assert!(
        list.contains("/users/@me") && list.contains("/messages?limit=2"),
        "{list}"
    );
    let routes = run_ok(&["routes", "--recordings", &rec]);
    assert!(
        routes.contains("/api/v9/channels/{channel_id}/messages")
            && routes.contains("/api/v9/users/@me"),
        "{routes}"
    );
    let routes_json = run_ok(&["routes", "--recordings", &rec, "--json"]);
    let shown = run_ok(&["recordings", "--recordings", &rec, "--json", "show", "2"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["route"], "/api/v9/users/@me");
    let har: Value = serde_json::from_str(&run_ok(&[
        "export",
        "har",
        "--recordings",
        &rec,
        "--out",
        "-",
    ]))
    .unwrap();
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 2);
    // A third exchange made now is seen by the next read.
    get_through(&recorder, "/gateway");
    eventually("the third exchange", || {
        run_ok(&["recordings", "--recordings", &rec, "list"]).contains("/api/v9/gateway")
    });
    let list_live = run_ok(&["recordings", "--recordings", &rec, "list"]);
    let routes_live = run_ok(&["routes", "--recordings", &rec, "--json"]);
    recorder.stop();
    assert!(
        !dir.path().join("recordings/live.json").exists(),
        "a stopped record removes its live file"
    );
    // The same output as reading the stopped database directly.
    assert_eq!(
        run_ok(&["recordings", "--recordings", &rec, "list"]),
        list_live
    );
    assert_eq!(
        run_ok(&["routes", "--recordings", &rec, "--json"]),
        routes_live
    );
    assert_ne!(routes_json, routes_live, "the third route was added");
}

#[test]
fn a_stale_live_file_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("recordings");
    // Hold the database (an open store in this process) and point its live file nowhere.
    let _store = open_store(&rec);
    std::fs::write(
        rec.join("live.json"),
        r#"{"addr":"127.0.0.1:9","token":"x","pid":1}"#,
    )
    .unwrap();
    let out = run_bin(&["recordings", "--recordings", rec.to_str().unwrap(), "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("live API at 127.0.0.1:9 failed") && err.contains("live.json"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A blocking client of the explorer API with the token from its URL.
struct Api {
    base: String,
    token: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn new(url: &str) -> Api {
        let (base, token) = url.split_once("/?token=").unwrap();
        Api {
            base: base.to_string(),
            token: token.to_string(),
            http: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
        }
    }

    fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
    }

    fn json(&self, path: &str) -> Value {
        let response = self.get(path);
        assert_eq!(response.status(), 200, "{path}");
        response.json().unwrap()
    }
}

#[test]
fn the_explorer_api_of_a_running_record() {
    let dir = workdir();
    let stand_in = FakeDiscord::start();
    let recorder = Recorder::start(dir.path(), &stand_in, &["--ui", "127.0.0.1:0"]);
    let url = recorder
        .explorer
        .clone()
        .expect("record --ui prints the explorer address");
    let api = Api::new(&url);
    get_through(
        &recorder,
        &format!("/channels/{CHANNEL_ID}/messages?limit=2"),
    );

    // Without the token, or under a foreign Host name, nothing is shown.
    let bare = api
        .http
        .get(format!("{}/api/v1/routes", api.base))
        .send()
        .unwrap();
    assert_eq!(bare.status(), 401);
    let page = api.http.get(format!("{}/", api.base)).send().unwrap();
    assert_eq!(page.status(), 401);
    let rebound = api
        .http
        .get(format!("{}/api/v1/routes", api.base))
        .bearer_auth(&api.token)
        .header("host", "evil.example")
        .send()
        .unwrap();
    assert_eq!(rebound.status(), 403);
    // The address printed sets the cookie the page uses.
    let login = api.http.get(&url).send().unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let page = api
        .http
        .get(format!("{}/", api.base))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("/app.js"));

    eventually("the route in the catalog", || {
        let catalog = api.json("/api/v1/routes");
        catalog["routes"].as_array().is_some_and(|r| !r.is_empty())
    });
    let catalog = api.json("/api/v1/routes");
    assert_eq!(
        catalog["routes"][0]["template"],
        "/api/v9/channels/{channel_id}/messages"
    );

    // The event stream delivers an exchange made after it opened.
    let events = api.get("/api/v1/events");
    assert_eq!(events.status(), 200);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(events).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    get_through(&recorder, "/users/@me");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut streamed = None;
    let mut last_event = String::new();
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if let Some(name) = line.strip_prefix("event: ") {
            last_event = name.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            if last_event == "exchange" {
                let row: Value = serde_json::from_str(data).unwrap();
                if row["path"] == "/api/v9/users/@me" {
                    streamed = Some(row);
                    break;
                }
            }
        }
    }
    let row = streamed.expect("the new exchange streamed");
    assert_eq!(row["kind"], "rest");
    assert_eq!(row["route"], "/api/v9/users/@me");
    assert_eq!(row["source"], "upstream");
    let id = row["id"].as_u64().unwrap();
    let exchange = api.json(&format!("/api/v1/exchanges/{id}"));
    assert_eq!(exchange["method"], "GET");
    assert_eq!(exchange["response"]["status"], 200);
    let headers = exchange["request"]["headers"].to_string();
    assert!(!headers.contains("secret"), "{headers}");
    assert_eq!(api.get("/api/v1/exchanges/999").status(), 404);

    // A gateway session, its decoded frames and heartbeat round trip.
    gateway_session(&recorder, true, Some(PLANTED));
    eventually("the gateway session", || {
        api.json("/api/v1/items")
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["kind"] == "gateway")
    });
    let items = api.json("/api/v1/items");
    let session_id = items
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["kind"] == "gateway")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    eventually("the session's frames", || {
        api.json(&format!("/api/v1/sessions/{session_id}"))["frames"]
            .as_array()
            .is_some_and(|f| f.len() >= 3)
    });
    let session = api.json(&format!("/api/v1/sessions/{session_id}"));
    let frames = session["frames"].as_array().unwrap();
    assert_eq!(frames[0]["op"], 10, "HELLO first: {session}");
    assert!(frames.iter().all(|f| f["offset_ms"].is_number()));
    let identify = frames.iter().find(|f| f["op"] == 2).unwrap();
    assert!(!identify["payload"].to_string().contains("secret-token"));
    assert!(session["heartbeats"].is_array());

    // Downloads.
    let openapi = api.json("/api/v1/openapi.json");
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(openapi["paths"]
        .as_object()
        .unwrap()
        .contains_key("/api/v9/users/@me"));
    let har = api.json("/api/v1/export.har");
    assert!(har["log"]["entries"].as_array().unwrap().len() >= 3);
    let asyncapi = api.json("/api/v1/asyncapi.json");
    assert!(
        asyncapi["asyncapi"].as_str().unwrap().starts_with("3."),
        "{asyncapi}"
    );
    let messages = asyncapi["components"]["messages"].to_string();
    assert!(
        messages.contains("HELLO") || messages.contains("\"op\""),
        "{asyncapi}"
    );
    assert!(!asyncapi.to_string().contains("secret-token"));

    search_api(&api, &recorder, session_id);
    diff_api(&api, row["started_at_us"].as_i64().unwrap(), session_id);
    assert_eq!(api.get("/api/v1/store/nothing").status(), 400);
    recorder.stop();
}

/// `/api/v1/search`: the planted string found in its gateway frame (the same hit as
/// `recordings search` through the running record), the filters, and clear 400s.
fn search_api(api: &Api, recorder: &Recorder, session_id: u64) {
    let found = api.json(&format!("/api/v1/search?q={PLANTED}"));
    assert_eq!(found["total"], 1, "{found}");
    let hit = &found["hits"][0];
    let frame_id = hit["id"].as_str().unwrap().to_string();
    assert!(
        frame_id.starts_with(&format!("gw:{session_id}:send:")),
        "{hit}"
    );
    assert_eq!(hit["kind"], "gateway");
    assert_eq!(hit["place"], "payload");
    assert!(hit["snippet"].as_str().unwrap().contains(PLANTED), "{hit}");
    assert!(hit["summary"].as_str().unwrap().contains("op 3"), "{hit}");
    // The hit names a frame of the session view.
    let seq: u64 = frame_id.rsplit(':').next().unwrap().parse().unwrap();
    let session = api.json(&format!("/api/v1/sessions/{session_id}"));
    let frame = session["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["direction"] == "send" && f["seq"] == seq)
        .expect("the hit's frame is in its session");
    assert!(frame["payload"].to_string().contains(PLANTED));
    // The CLI, reading through the running record, finds the same frame.
    let rec = recorder.recordings.to_str().unwrap();
    let cli = run_ok(&[
        "recordings",
        "--recordings",
        rec,
        "--json",
        "search",
        PLANTED,
    ]);
    let cli_hit: Value = serde_json::from_str(cli.lines().next().unwrap()).unwrap();
    assert_eq!(cli_hit, *hit);

    // Filters: route, event, JSON path, time; the limit.
    let by_route = api.json("/api/v1/search?route=/users/@me");
    let hits = by_route["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(
        |h| h["kind"] == "rest" && h["summary"].as_str().unwrap().contains("/api/v9/users/@me")
    ));
    let by_event = api.json("/api/v1/search?event=3");
    assert_eq!(by_event["total"], 1, "{by_event}");
    assert_eq!(by_event["hits"][0]["id"], frame_id.as_str());
    let by_path = api.json("/api/v1/search?where=d.activities%5B*%5D.name~needle-5e0a&where=op=3");
    assert_eq!(by_path["total"], 1, "{by_path}");
    let none = api.json(&format!(
        "/api/v1/search?q={PLANTED}&until=2000-01-01T00:00:00Z"
    ));
    assert_eq!(none["total"], 0);
    let limited = api.json("/api/v1/search?limit=1");
    assert_eq!(limited["shown"], 1);
    assert!(limited["total"].as_u64().unwrap() > 1, "{limited}");
    for (query, says) in [
        ("where=d.x%5B", "bad JSON path condition"),
        ("since=yesterday", "is not a time"),
        ("limit=many", "is not a number"),
    ] {
        let response = api.get(&format!("/api/v1/search?{query}"));
        assert_eq!(response.status(), 400, "{query}");
        let message: Value = response.json().unwrap();
        assert!(
            message["message"].as_str().unwrap().contains(says),
            "{query}: {message}"
        );
    }
}

/// `/api/v1/diff`: two time ranges split at `split_us` (the route first called then is added,
/// the earlier one removed), gateway sessions as sides, and clear 400s.
fn diff_api(api: &Api, split_us: i64, session_id: u64) {
    let diff = api.json(&format!(
        "/api/v1/diff?a_until={split_us}&b_since={split_us}"
    ));
    let added = diff["routes"]["added"].to_string();
    let removed = diff["routes"]["removed"].to_string();
    assert!(added.contains("GET /api/v9/users/@me"), "{diff}");
    assert!(
        removed.contains("GET /api/v9/channels/{channel_id}/messages"),
        "{diff}"
    );
    assert!(
        diff["events"]["added"]
            .to_string()
            .contains("receive op 10"),
        "the session came after the split: {diff}"
    );
    assert!(diff["b"].as_str().unwrap().contains("since "), "{diff}");
    // The whole recording against itself: nothing changed.
    let same = api.json("/api/v1/diff");
    for section in ["routes", "events"] {
        for part in ["added", "removed", "changed"] {
            assert_eq!(same[section][part], serde_json::json!([]), "{same}");
        }
    }
    // One gateway session's span against everything before it.
    let by_session = api.json(&format!(
        "/api/v1/diff?a_until={split_us}&b_session={session_id}"
    ));
    assert!(
        by_session["b"]
            .as_str()
            .unwrap()
            .contains(&format!("gateway session {session_id}")),
        "{by_session}"
    );
    assert!(
        by_session["events"]["added"]
            .to_string()
            .contains("send op 2"),
        "{by_session}"
    );
    let sources = api.json("/api/v1/diff/sources");
    assert!(sources["compare"].is_null());
    for (query, says) in [
        ("b=compare", "--compare"),
        ("a_session=999", "no gateway session 999"),
        ("a_session=x", "not a gateway session id"),
        ("a_session=1&a_since=0", "not both"),
        ("b_until=later", "is not a time"),
        ("a=other", "give live or compare"),
    ] {
        let response = api.get(&format!("/api/v1/diff?{query}"));
        assert_eq!(response.status(), 400, "{query}");
        let message: Value = response.json().unwrap();
        assert!(
            message["message"].as_str().unwrap().contains(says),
            "{query}: {message}"
        );
    }
}

#[test]
fn explore_serves_a_recordings_directory_and_refuses_public_addresses() {
    let dir = workdir();
    let stand_in = FakeDiscord::start();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    get_through(&recorder, "/users/@me");
    let rec = recorder.recordings.clone();
    std::thread::sleep(Duration::from_millis(300));
    // While record runs, `explore` goes through it.
    let explore_with = |rec: &std::path::Path, extra: &[&std::ffi::OsStr]| {
        let mut child = std::process::Command::new(BIN)
            .args(["explore", "--listen", "127.0.0.1:0", "--recordings"])
            .arg(rec)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut through = false;
        let url = loop {
            let line = lines.next().expect("explore prints its address").unwrap();
            through |= line.contains("through the discord-mitm process");
            if let Some(url) = line.strip_prefix("discord-mitm explore: open ") {
                break url.to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        (child, url, through)
    };
    let explore = |rec: &std::path::Path| explore_with(rec, &[]);
    let (mut child, url, through) = explore(&rec);
    assert!(through);
    let api = Api::new(&url);
    eventually("the route through the running record", || {
        api.json("/api/v1/routes")["routes"]
            .to_string()
            .contains("/api/v9/users/@me")
    });
    let _ = child.kill();
    let _ = child.wait();
    recorder.stop();
    // On a stopped recording it opens the directory itself.
    let (mut child, url, through) = explore(&rec);
    assert!(!through);
    let api = Api::new(&url);
    assert!(api.json("/api/v1/routes")["routes"]
        .to_string()
        .contains("/api/v9/users/@me"));
    assert!(
        rec.join("live.json").exists(),
        "explore holds the database and says where"
    );
    let _ = child.kill();
    let _ = child.wait();

    // `--compare DIR`: a second recording (another route) is a side of the diff view.
    let other_dir = workdir();
    let other = Recorder::start(other_dir.path(), &stand_in, &[]);
    get_through(&other, "/gateway");
    std::thread::sleep(Duration::from_millis(300));
    let other_rec = other.recordings.clone();
    other.stop();
    let (mut child, url, _) = explore_with(&rec, &["--compare".as_ref(), other_rec.as_os_str()]);
    let api = Api::new(&url);
    let sources = api.json("/api/v1/diff/sources");
    assert!(
        sources["compare"]
            .as_str()
            .is_some_and(|c| c.ends_with("recordings")),
        "{sources}"
    );
    let diff = api.json("/api/v1/diff?b=compare");
    assert_eq!(
        diff["routes"]["added"],
        serde_json::json!(["GET /api/v9/gateway"]),
        "{diff}"
    );
    assert_eq!(
        diff["routes"]["removed"],
        serde_json::json!(["GET /api/v9/users/@me"]),
        "{diff}"
    );
    assert_eq!(
        api.json("/api/v1/diff?a=compare&b=compare")["routes"]["added"],
        serde_json::json!([])
    );
    let _ = child.kill();
    let _ = child.wait();

    let out = run_bin(&[
        "explore",
        "--listen",
        "0.0.0.0:0",
        "--recordings",
        rec.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
}
