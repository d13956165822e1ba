//! One identity through `serve`'s fallback chain (issue 18), through the built binary with curl
//! and a WebSocket client behind the proxy, the stand-in upstream on real TLS, and the
//! recordings read back from their sled files:
//! - forwarding never sends a token `serve` issued: without `--upstream-token` the request
//!   arrives without `Authorization` (said once per route in the log); with one it carries
//!   that token, and the real account's id reads as the local user's in the answer (and the
//!   local id as the real one in the forwarded path and body);
//! - a relayed gateway IDENTIFY carries the upstream token, and upstream's READY and
//!   dispatches (JSON and ETF, zlib-stream and zstd-stream) carry the local user's id; READY
//!   teaches `serve` the token's real account; each session's recording lists its rewrites;
//! - recorded errors are not replayed unless `--replay-status` allows them;
//! - a replayed `@me` body carries the local caller's id, not the recorded account's;
//! - every rewrite is listed in the exchange's recording and `recordings show` marks it; the
//!   real token is in no recordings file.
mod pipeline_support;
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use std::path::Path;
use std::time::Duration;

use discord_mitm::gateway::compress::{ZlibStreamDecompressor, ZstdStreamDecompressor};
use discord_mitm::gateway::etf;
use futures::{SinkExt, StreamExt};
use pipeline_support::*;
use record_support::{open_store, run_bin, workdir};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use upstream::{FakeDiscord, Seen, OTHER_USER_ID, REAL_USER_ID};

/// The real credential given to `serve`; must reach the stand-in and nothing else.
const REAL_TOKEN: &str = "real-account-token.Xy9.secret";

fn forward_args(fake: &FakeDiscord, more: &[&str]) -> Vec<String> {
    let mut extra = args(&["--fallback", "forward"]);
    extra.extend(fake.upstream_args());
    extra.extend(args(more));
    extra
}

fn alice() -> [&'static str; 2] {
    ["-H", "Authorization: alice-token"]
}

#[track_caller]
fn assert_no_local_token_reached(seen: &[Seen]) {
    for request in seen {
        let text = format!("{request:?}");
        assert!(
            !text.contains(ALICE_TOKEN) && !text.contains(BOT_TOKEN),
            "a token serve issued reached upstream: {request:?}"
        );
    }
}

/// Every file under `dir`, raw and with its zstd frames opened (exchanges are stored in
/// zstd chunks), must not hold `secret`.
#[track_caller]
fn assert_not_in_files(dir: &Path, secret: &str) {
    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut all = Vec::new();
    files(dir, &mut all);
    assert!(!all.is_empty());
    for file in all {
        let data = std::fs::read(&file).unwrap();
        let mut opened = Vec::new();
        for start in memchr::memmem::find_iter(&data, &[0x28, 0xb5, 0x2f, 0xfd]) {
            use std::io::Read;
            if let Ok(decoder) = zstd::stream::read::Decoder::new(&data[start..]) {
                let _ = decoder
                    .single_frame()
                    .take(64 << 20)
                    .read_to_end(&mut opened);
            }
        }
        for bytes in [&data, &opened] {
            assert!(
                memchr::memmem::find(bytes, secret.as_bytes()).is_none(),
                "{} holds the real token",
                file.display()
            );
        }
    }
}

/// Stdout of `discord-mitm recordings --recordings DIR ARGS...`.
fn recordings_cli(recordings: &Path, args: &[&str]) -> String {
    let mut all = vec!["recordings", "--recordings", recordings.to_str().unwrap()];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&run_bin(&all).stdout).to_string()
}

/// Fails unless `recordings list` marks the line naming `what` as rewritten.
fn assert_listed_as_rewritten(recordings: &Path, what: &str) {
    let listing = recordings_cli(recordings, &["list"]);
    assert!(
        listing
            .lines()
            .any(|l| l.contains(what) && l.contains("(rewritten)")),
        "{what} is not listed as rewritten:\n{listing}"
    );
}

fn probes(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter()
        .filter(|s| s.path.ends_with("/identity-probe"))
        .collect()
}

#[test]
fn without_an_upstream_token_forwarded_requests_go_without_authorization_said_once_per_route() {
    let fake = FakeDiscord::start();
    let dir = workdir();
    let serve = ServeProxy::start(dir.path(), &forward_args(&fake, &[]));
    let me_probe = "https://discord.com/api/v9/users/@me/identity-probe";
    let first = serve.curl(me_probe, &alice());
    let again = serve.curl(me_probe, &alice());
    let by_id = serve.curl(
        &format!("https://discord.com/api/v9/users/{ALICE_ID}/identity-probe"),
        &["-H", &format!("Authorization: Bot {BOT_TOKEN}")],
    );
    let banner = serve.stdout();
    let log = serve.stop();
    for reply in [&first, &again, &by_id] {
        assert_eq!(reply.status, 200, "{reply:?}\n{log}");
        assert_eq!(reply.source(), Some("upstream"), "{reply:?}");
    }
    // No upstream account: nothing to swap, the stand-in's answer comes as it is.
    assert_eq!(first.json()["user_id"], REAL_USER_ID);
    let seen = fake.seen();
    let probes = probes(&seen);
    assert_eq!(probes.len(), 3, "{seen:?}");
    assert!(probes.iter().all(|p| p.authorization.is_none()), "{seen:?}");
    assert_no_local_token_reached(&seen);
    assert!(
        !seen.iter().any(|s| s.path == "/api/v9/users/@me"),
        "no token, so no account to look up: {seen:?}"
    );
    let said = log.matches("upstream without Authorization").count();
    assert_eq!(said, 2, "once per route template:\n{log}");
    assert!(
        banner.contains("no --upstream-token: forwarded requests go without Authorization"),
        "{banner}"
    );

    let store = open_store(&dir.path().join("recordings"));
    let forwarded: Vec<_> = store
        .exchanges()
        .map(Result::unwrap)
        .filter(|e| e.path().ends_with("/identity-probe"))
        .collect();
    assert_eq!(forwarded.len(), 3);
    let rewrites = &forwarded[0].rewrites;
    assert_eq!(rewrites.len(), 1, "{rewrites:?}");
    assert_eq!(
        (
            rewrites[0].kind.as_str(),
            rewrites[0].from.as_str(),
            rewrites[0].to.as_str()
        ),
        ("authorization", ALICE_ID, "none")
    );
    assert_eq!(forwarded[2].rewrites[0].from, BOT_ID);
}

#[test]
fn with_an_upstream_token_forwarded_requests_carry_it_and_the_real_id_reads_as_the_local_one() {
    let fake = FakeDiscord::start();
    let dir = workdir();
    let serve = ServeProxy::start(
        dir.path(),
        &forward_args(&fake, &["--upstream-token", REAL_TOKEN]),
    );
    let by_id = serve.curl(
        &format!("https://discord.com/api/v9/users/{ALICE_ID}/identity-probe?with={ALICE_ID}&n=1"),
        &alice(),
    );
    let body =
        json!({"recipient_id": ALICE_ID, "note": ALICE_ID.to_string() + " stays"}).to_string();
    let posted = serve.curl(
        "https://discord.com/api/v9/users/@me/identity-probe",
        &[
            "-H",
            "Authorization: alice-token",
            "-H",
            "content-type: application/json",
            "--data-raw",
            &body,
        ],
    );
    let banner = serve.stdout();
    let log = serve.stop();
    assert_eq!(by_id.status, 200, "{by_id:?}\n{log}");
    assert_eq!(by_id.source(), Some("upstream"));
    let answer = by_id.json();
    // The stand-in answered about its own account; the client sees itself.
    assert_eq!(answer["asked"], ALICE_ID, "{answer}");
    assert_eq!(answer["user_id"], ALICE_ID, "{answer}");
    assert_eq!(answer["owner"]["id"], ALICE_ID, "{answer}");
    assert_eq!(answer["friends"], json!([OTHER_USER_ID]), "{answer}");
    assert_eq!(posted.status, 200, "{posted:?}");

    let seen = fake.seen();
    assert_no_local_token_reached(&seen);
    let probes = probes(&seen);
    assert_eq!(probes.len(), 2, "{seen:?}");
    for probe in &probes {
        assert_eq!(
            probe.authorization.as_deref(),
            Some(REAL_TOKEN),
            "{probe:?}"
        );
    }
    // The local id went upstream as the real one, in the path, query and JSON body.
    assert_eq!(
        probes[0].path,
        format!("/api/v9/users/{REAL_USER_ID}/identity-probe")
    );
    assert_eq!(probes[0].query, format!("with={REAL_USER_ID}&n=1"));
    let sent: serde_json::Value = serde_json::from_str(&probes[1].body).unwrap();
    assert_eq!(sent["recipient_id"], REAL_USER_ID, "{sent}");
    assert_eq!(sent["note"], format!("{ALICE_ID} stays"));
    // The real account was looked up once for the token, with the token.
    let lookups: Vec<_> = seen
        .iter()
        .filter(|s| s.path == "/api/v9/users/@me")
        .collect();
    assert_eq!(lookups.len(), 1, "{seen:?}");
    assert_eq!(lookups[0].authorization.as_deref(), Some(REAL_TOKEN));
    assert!(!log.contains(REAL_TOKEN), "the log holds the real token");
    assert!(
        !banner.contains(REAL_TOKEN),
        "the banner holds the real token"
    );
    assert!(
        banner.contains("forwarded requests carry --upstream-token instead"),
        "{banner}"
    );
    let recordings = dir.path().join("recordings");
    assert_not_in_files(&recordings, REAL_TOKEN);

    let store = open_store(&recordings);
    let exchange = store
        .exchanges()
        .map(Result::unwrap)
        .find(|e| e.method == "GET" && e.path().ends_with("/identity-probe"))
        .unwrap();
    let listed: Vec<(String, String, String)> = exchange
        .rewrites
        .iter()
        .map(|r| (r.kind.clone(), r.from.clone(), r.to.clone()))
        .collect();
    let expected = [
        ("authorization", ALICE_ID, "upstream token"),
        ("request-id", ALICE_ID, REAL_USER_ID),
        ("response-id", REAL_USER_ID, ALICE_ID),
    ]
    .map(|(k, f, t)| (k.to_string(), f.to_string(), t.to_string()));
    assert_eq!(listed, expected);
    let id = exchange.id.to_string();
    drop(store);
    let shown = recordings_cli(&recordings, &["show", &id]);
    assert!(shown.contains("REWRITTEN"), "{shown}");
    assert!(
        shown.contains(&format!("response-id: {REAL_USER_ID} -> {ALICE_ID}")),
        "{shown}"
    );
    assert_listed_as_rewritten(&recordings, "/identity-probe");
}

#[test]
fn a_fixture_users_own_upstream_token_is_theirs_alone_and_stored_nowhere() {
    const ALICE_REAL: &str = "alice-real-account-token.secret";
    let fake = FakeDiscord::start();
    let dir = workdir();
    let mut world = fixture();
    world["users"][0]["upstream_token"] = json!(ALICE_REAL);
    let serve = ServeProxy::start_with_fixture(dir.path(), &world, &forward_args(&fake, &[]));
    let probe = "https://discord.com/api/v9/users/@me/identity-probe";
    let as_alice = serve.curl(probe, &alice());
    let as_bot = serve.curl(probe, &["-H", &format!("Authorization: Bot {BOT_TOKEN}")]);
    let banner = serve.stdout();
    let log = serve.stop();
    assert_eq!(as_alice.json()["user_id"], ALICE_ID, "{as_alice:?}\n{log}");
    // The bot has no upstream token: its request went bare, and nothing was swapped.
    assert_eq!(as_bot.json()["user_id"], REAL_USER_ID, "{as_bot:?}");
    let seen = fake.seen();
    assert_no_local_token_reached(&seen);
    let probes = probes(&seen);
    assert_eq!(probes[0].authorization.as_deref(), Some(ALICE_REAL));
    assert_eq!(probes[1].authorization, None);
    assert!(
        banner.contains(
            "the fixture's upstream_token (1 of its users have one), else no Authorization"
        ),
        "{banner}"
    );
    assert!(!banner.contains(ALICE_REAL) && !log.contains(ALICE_REAL));
    assert_not_in_files(&dir.path().join("recordings"), ALICE_REAL);
    assert_not_in_files(&dir.path().join("data"), ALICE_REAL);
}

/// The client side of one relayed gateway session: its messages decoded as it asked for them.
struct GatewayClient {
    ws: WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    etf: bool,
    zlib: Option<ZlibStreamDecompressor>,
    zstd: Option<ZstdStreamDecompressor>,
}

impl GatewayClient {
    async fn open(serve: &ServeProxy, host: &str, encoding: &str, compress: &str) -> GatewayClient {
        let mut url = format!("wss://{host}/?v=10&encoding={encoding}");
        if !compress.is_empty() {
            url.push_str(&format!("&compress={compress}"));
        }
        let ws =
            record_support::websocket_through_proxy(serve.proxy, &serve.ca_pem, host, &url).await;
        GatewayClient {
            ws,
            etf: encoding == "etf",
            zlib: (compress == "zlib-stream").then(ZlibStreamDecompressor::new),
            zstd: (compress == "zstd-stream").then(|| ZstdStreamDecompressor::new().unwrap()),
        }
    }

    /// The next whole payload.
    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a gateway message within 10 s");
            let bytes = match message {
                Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                Some(Ok(Message::Binary(data))) => data.to_vec(),
                other => panic!("expected a payload, got {other:?}"),
            };
            let payload = if let Some(zlib) = &mut self.zlib {
                match zlib.push_frame(&bytes).expect("our zlib stream inflates") {
                    Some(payload) => payload.to_vec(),
                    None => continue,
                }
            } else if let Some(zstd) = &mut self.zstd {
                zstd.push_frame(&bytes)
                    .expect("our zstd stream decodes")
                    .to_vec()
            } else {
                bytes
            };
            return if self.etf {
                etf::decode(&payload, &etf::DecodeOptions::LENIENT).unwrap()
            } else {
                serde_json::from_slice(&payload).unwrap()
            };
        }
    }

    async fn send(&mut self, payload: &Value) {
        let message = if self.etf {
            Message::binary(etf::encode(payload).unwrap())
        } else {
            Message::text(payload.to_string())
        };
        self.ws.send(message).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_gateway_sessions_carry_the_upstream_token_and_the_local_users_id() {
    let fake = FakeDiscord::start();
    let dir = workdir();
    let serve_dir = dir.path().to_path_buf();
    let extra = forward_args(&fake, &["--upstream-token", &format!("Bot {REAL_TOKEN}")]);
    let serve = tokio::task::spawn_blocking(move || ServeProxy::start(&serve_dir, &extra))
        .await
        .unwrap();
    // A regional gateway host: the in-process gateway answers gateway.discord.gg only, so
    // these upgrades go down the chain and are relayed upstream.
    let host = "gateway-us-east1-b.discord.gg";
    let identify = json!({"op": 2, "d": {"token": BOT_TOKEN, "intents": 513,
        "properties": {"os": "linux", "browser": "test", "device": "test"}}});
    // ETF first: erlpack's READY names another account (its bot); the JSON sessions' READY
    // then names the stand-in's own, which stays the token's real account.
    let etf_ready_user = "1090000000000000007";
    for (encoding, compress) in [
        ("etf", "zlib-stream"),
        ("json", ""),
        ("json", "zlib-stream"),
        ("json", "zstd-stream"),
    ] {
        let mut client = GatewayClient::open(&serve, host, encoding, compress).await;
        assert_eq!(client.next().await["op"], 10, "{encoding} {compress}");
        client.send(&identify).await;
        let ready = client.next().await;
        assert_eq!(ready["t"], "READY", "{ready}");
        assert_eq!(
            ready["d"]["user"]["id"], BOT_ID,
            "{encoding} {compress}: the real account reads as the local bot: {ready}"
        );
        let create = client.next().await;
        assert_eq!(create["t"], "MESSAGE_CREATE", "{create}");
        if encoding == "json" {
            assert_eq!(create["d"]["author"]["id"], BOT_ID, "{create}");
            assert_eq!(create["d"]["content"], "gateway says hi");
        } else {
            // Another user than READY's: never swapped.
            assert_eq!(create["d"]["mentions"][0]["id"], REAL_USER_ID, "{create}");
            assert_eq!(ready["d"]["application"]["id"], BOT_ID, "{ready}");
            assert_eq!(ready["d"]["guilds"][0]["id"], "1180000000000000000");
        }
        let _ = client.ws.close(None).await;
    }
    // READY taught serve the token's real account: a forwarded request needs no /users/@me.
    let probe = format!("https://discord.com/api/v9/users/{BOT_ID}/identity-probe");
    let auth = format!("Authorization: Bot {BOT_TOKEN}");
    let (answer, log) = tokio::task::spawn_blocking(move || {
        let answer = serve.curl(&probe, &["-H", &auth]);
        (answer, serve.stop())
    })
    .await
    .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}\n{log}");
    assert_eq!(answer.json()["user_id"], BOT_ID, "{:?}", answer.json());
    let seen = fake.seen();
    assert!(
        !seen.iter().any(|s| s.path == "/api/v9/users/@me"),
        "the real id came from READY: {seen:?}"
    );
    assert_no_local_token_reached(&seen);
    let identified: Vec<_> = seen.iter().filter(|s| s.method == "IDENTIFY").collect();
    assert_eq!(identified.len(), 4, "{seen:?}\n{log}");
    for identify in identified {
        // Bots identify with the bare token.
        assert_eq!(identify.authorization.as_deref(), Some(REAL_TOKEN));
        assert_eq!(identify.path, host);
    }
    assert!(log.contains("its READY says"), "{log}");
    assert!(!log.contains(REAL_TOKEN), "the log holds the real token");
    let recordings = dir.path().join("recordings");
    assert_not_in_files(&recordings, REAL_TOKEN);

    // Each relayed session lists what was changed on it; the frames stay as upstream sent them.
    let store = open_store(&recordings);
    let sessions: Vec<_> = store
        .sessions()
        .map(Result::unwrap)
        .filter(|s| s.host == host)
        .collect();
    assert_eq!(sessions.len(), 4);
    for (session, real) in
        sessions
            .iter()
            .zip([etf_ready_user, REAL_USER_ID, REAL_USER_ID, REAL_USER_ID])
    {
        let listed: Vec<(String, String, String)> = session
            .rewrites
            .iter()
            .map(|r| (r.kind.clone(), r.from.clone(), r.to.clone()))
            .collect();
        let expected = [
            ("authorization", BOT_ID, "upstream token"),
            ("response-id", real, BOT_ID),
        ]
        .map(|(k, f, t)| (k.to_string(), f.to_string(), t.to_string()));
        assert_eq!(listed, expected, "session {}", session.id);
    }
    let json_session = sessions[1].id;
    let frames = store.frames(json_session).unwrap();
    let ready = frames
        .iter()
        .find(|f| f.t.as_deref() == Some("READY"))
        .expect("READY recorded");
    assert!(ready.payload.as_deref().unwrap().contains(REAL_USER_ID));
    drop(store);
    let shown = recordings_cli(&recordings, &["show", &format!("gw:{json_session}")]);
    assert!(shown.contains("REWRITTEN"), "{shown}");
    assert!(
        shown.contains(&format!("authorization: {BOT_ID} -> upstream token")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("response-id: {REAL_USER_ID} -> {BOT_ID}")),
        "{shown}"
    );
    assert_listed_as_rewritten(&recordings, &format!("gw:{json_session}"));
}

#[test]
fn a_recorded_error_is_not_replayed_unless_replay_status_allows_it() {
    let fake = FakeDiscord::start();
    let dir = workdir();
    let refused = "https://discord.com/api/v9/guilds/81384788765712384/unauthorized-probe";
    let record = RecordProxy::start(dir.path(), &fake);
    assert_eq!(record.curl_any(refused, &[]).status, 401);
    record.stop();

    let serve = ServeProxy::start(dir.path(), &args(&["--fallback", "recorded"]));
    let skipped = serve.curl(refused, &alice());
    serve.stop();
    assert_eq!(skipped.status, 404, "{skipped:?}");
    assert_eq!(skipped.source(), Some("none"), "{skipped:?}");

    let serve = ServeProxy::start(
        dir.path(),
        &args(&["--fallback", "recorded", "--replay-status", "4xx"]),
    );
    let replayed = serve.curl(refused, &alice());
    serve.stop();
    assert_eq!(replayed.status, 401, "{replayed:?}");
    assert_eq!(replayed.source(), Some("recording"), "{replayed:?}");
    assert_eq!(replayed.replay_match(), Some("exact"), "{replayed:?}");

    let bad = run_bin(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--replay-status",
        "4xx,6xx",
    ]);
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("invalid --replay-status item \"6xx\"") && said.contains("a class (4xx"),
        "{said}"
    );
}

#[test]
fn a_replayed_me_body_carries_the_local_callers_id() {
    let fake = FakeDiscord::start();
    let dir = workdir();
    let record = RecordProxy::start(dir.path(), &fake);
    // The recorded account is known from its /users/@me answer.
    record.curl("https://discord.com/api/v9/users/@me", &[]);
    let probe = "https://discord.com/api/v9/users/@me/identity-probe";
    record.curl(probe, &[]);
    record.stop();

    let serve = ServeProxy::start(dir.path(), &args(&["--fallback", "recorded"]));
    let as_alice = serve.curl(probe, &alice());
    let anonymous = serve.curl(probe, &[]);
    let log = serve.stop();
    assert_eq!(as_alice.status, 200, "{as_alice:?}\n{log}");
    assert_eq!(as_alice.source(), Some("recording"));
    let replay = as_alice.header("x-discord-mitm-replay").unwrap();
    assert!(replay.ends_with(" exact"), "names its recording: {replay}");
    let body = as_alice.json();
    assert_eq!(body["user_id"], ALICE_ID, "{body}");
    assert_eq!(body["owner"]["id"], ALICE_ID, "{body}");
    assert_eq!(body["asked"], "@me");
    assert_eq!(body["friends"], json!([OTHER_USER_ID]), "{body}");
    // No caller, nobody to be: the recording as it was.
    assert_eq!(anonymous.json()["user_id"], REAL_USER_ID);

    let store = open_store(&dir.path().join("recordings"));
    let replayed = store
        .exchanges()
        .map(Result::unwrap)
        .find(|e| e.source == "recording" && e.path().ends_with("/identity-probe"))
        .unwrap();
    assert_eq!(replayed.rewrites.len(), 1, "{:?}", replayed.rewrites);
    assert_eq!(replayed.rewrites[0].kind, "replay-id");
    assert_eq!(replayed.rewrites[0].from, REAL_USER_ID);
    assert_eq!(replayed.rewrites[0].to, ALICE_ID);
}
