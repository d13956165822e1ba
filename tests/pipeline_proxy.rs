//! `serve --listen` end to end with curl through the proxy (trusting our CA): the backend
//! answers what it implements, recordings made by `record` against the stand-in answer what it
//! does not, then upstream (recorded), then Discord's 404 — each tagged with its source.
mod pipeline_support;
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use pipeline_support::*;
use record_support::{open_store, workdir, Recorder};
use serde_json::json;
use upstream::FakeDiscord;

const NOT_FOUND: &str = r#"{"code":0,"message":"404: Not Found"}"#;

fn assert_not_found(reply: &Reply) {
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(reply.source(), Some("none"), "{reply:?}");
    assert_eq!(
        reply.json(),
        serde_json::from_str::<serde_json::Value>(NOT_FOUND).unwrap()
    );
}

#[test]
fn the_backend_answers_its_routes_and_the_clients_start_up_routes() {
    let dir = workdir();
    let serve = ServeProxy::start(
        dir.path(),
        &args(&["--fallback", "none", "--client-version", "0.0.412"]),
    );
    let auth = format!("Authorization: Bot {BOT_TOKEN}");

    let me = serve.curl("https://discord.com/api/v10/users/@me", &["-H", &auth]);
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.source(), Some("backend"));
    assert_eq!(me.json()["username"], "pingbot");
    let legacy_host = serve.curl("https://discordapp.com/api/v9/users/@me", &["-H", &auth]);
    assert_eq!(legacy_host.source(), Some("backend"));
    assert_eq!(legacy_host.json()["id"], BOT_ID);

    // The gateway advertised through the proxy is Discord's own.
    let gateway = serve.curl("https://discord.com/api/v10/gateway", &[]);
    assert_eq!(gateway.source(), Some("backend"));
    assert_eq!(gateway.json()["url"], "wss://gateway.discord.gg");

    // The desktop client's update check, against a served version that is not the default.
    let keys = |value: &serde_json::Value| {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    for platform in ["linux", "win"] {
        let old = serve.curl(
            &format!("https://discord.com/api/updates/stable?platform={platform}&version=0.0.309"),
            &[],
        );
        assert_eq!(old.status, 200, "{platform}: {old:?}");
        assert_eq!(old.source(), Some("backend"));
        let update = old.json();
        assert_eq!(keys(&update), ["name", "pub_date"], "{update}");
        assert_eq!(update["name"], "0.0.412");
        assert!(update["pub_date"].is_string(), "{update}");
    }
    let osx = serve
        .curl(
            "https://discord.com/api/updates/stable?platform=osx&version=0.0.1",
            &[],
        )
        .json();
    assert_eq!(keys(&osx), ["name", "notes", "pub_date", "url"], "{osx}");
    assert_eq!(osx["name"], "0.0.412");
    assert!(
        osx["url"].as_str().unwrap().ends_with(".zip") && osx["notes"].is_string(),
        "{osx}"
    );
    for version in ["0.0.412", "0.0.500", "1.0.0"] {
        let current = serve.curl(
            &format!("https://discord.com/api/updates/stable?platform=win&version={version}"),
            &[],
        );
        assert_eq!(current.status, 204, "{version}: {current:?}");
        assert_eq!(current.source(), Some("backend"));
        assert!(current.body.is_empty(), "{current:?}");
    }
    let unknown = serve.curl(
        "https://discord.com/api/updates/stable?platform=beos&version=1.0.0",
        &[],
    );
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(unknown.source(), Some("backend"));
    for path in ["/api/science", "/api/v9/science"] {
        let science = serve.curl(
            &format!("https://discord.com{path}"),
            &[
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "-d",
                r#"{"events":[]}"#,
            ],
        );
        assert_eq!(science.status, 204, "{path}: {science:?}");
        assert_eq!(science.source(), Some("backend"));
    }

    // The desktop module list is the backend's (no modules published: an empty list).
    let versions = serve.curl("https://discord.com/api/modules/stable/versions.json", &[]);
    assert_eq!(
        (versions.status, versions.source()),
        (200, Some("backend")),
        "{versions:?}"
    );
    assert_eq!(versions.json(), json!({}));
    // Not the backend's and nothing behind it: Discord's 404.
    assert_not_found(&serve.curl("https://discord.com/app", &[]));
    let log = serve.stop();
    assert!(log.contains("source=backend"), "{log}");
    assert!(log.contains("source=none"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_answer_what_the_backend_does_not_with_ids_substituted() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    let recorded_guild = "81384788765712384";
    // Blocking curl inside the async test: the fake upstream runs on a runtime of its own.
    let recorded = record_support::curl(
        &recorder,
        &format!("https://discord.com/api/v9/guilds/{recorded_guild}/premium/subscriptions"),
        &[],
    );
    assert!(recorded.status.success(), "{recorded:?}");
    let affinities = record_support::curl(
        &recorder,
        "https://discord.com/api/v9/users/@me/activities/statistics/applications",
        &[],
    );
    assert!(affinities.status.success());
    recorder.stop();

    let serve_dir = dir.path().to_path_buf();
    let reply = tokio::task::spawn_blocking(move || {
        let serve = ServeProxy::start(&serve_dir, &args(&["--fallback", "recorded"]));
        let exact = serve.curl(
            "https://discord.com/api/v9/users/@me/activities/statistics/applications",
            &[],
        );
        let templated = serve.curl(
            "https://discord.com/api/v9/guilds/999999999999999999/premium/subscriptions",
            &[],
        );
        let other_query = serve.curl(
            "https://discord.com/api/v9/users/@me/activities/statistics/applications?with_counts=true",
            &[],
        );
        let log = serve.stop();
        (exact, templated, other_query, log)
    })
    .await
    .unwrap();
    let (exact, templated, other_query, log) = reply;
    assert_eq!(exact.status, 200, "{exact:?}\n{log}");
    assert_eq!(exact.source(), Some("recording"));
    assert_eq!(exact.json(), json!({"guild_affinities": []}));
    assert_eq!(templated.source(), Some("recording"), "{templated:?}");
    let subscription = &templated.json()[0];
    assert_eq!(
        subscription["guild_id"], "999999999999999999",
        "{subscription}"
    );
    assert_eq!(subscription["id"], "1400000000000000001");
    // A different (non-ignorable) query is not the exact request: the route's recording answers,
    // marked as a loose match.
    assert_eq!(other_query.source(), Some("recording"), "{other_query:?}");
    assert_eq!(other_query.replay_match(), Some("loose"), "{other_query:?}");
    assert_eq!(other_query.json(), json!({"guild_affinities": []}));
    assert!(log.contains("source=recording"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_reaches_the_stand_in_and_records_it_and_unreachable_upstream_is_a_quick_404() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    let mut extra = args(&["--fallback", "forward", "--upstream-ca"]);
    extra.push(stand_in.ca_pem.display().to_string());
    extra.extend(stand_in.resolve_args());
    extra.extend(args(&["--resolve", "discordapp.com=127.0.0.1:1"]));
    let serve_dir = dir.path().to_path_buf();
    let (forwarded, unreachable, backend, log) = tokio::task::spawn_blocking(move || {
        let serve = ServeProxy::start(&serve_dir, &extra);
        let forwarded = serve.curl(
            "https://discord.com/api/v9/users/@me/activities/statistics/applications",
            &["-H", "Authorization: secret-user-token"],
        );
        let unreachable = serve.curl(
            "https://discordapp.com/api/v9/users/@me/activities/statistics/applications",
            &[],
        );
        let backend = serve.curl(
            "https://discord.com/api/v10/users/@me",
            &["-H", &format!("Authorization: Bot {BOT_TOKEN}")],
        );
        (forwarded, unreachable, backend, serve.stop())
    })
    .await
    .unwrap();
    assert_eq!(forwarded.status, 200, "{forwarded:?}\n{log}");
    assert_eq!(forwarded.source(), Some("upstream"));
    assert_eq!(forwarded.json(), json!({"guild_affinities": []}));
    assert_not_found(&unreachable);
    assert_eq!(backend.source(), Some("backend"));

    let store = open_store(&dir.path().join("recordings"));
    let exchanges: Vec<_> = store.exchanges().map(Result::unwrap).collect();
    let upstream = exchanges
        .iter()
        .find(|e| e.source == "upstream" && e.path_and_query.ends_with("/statistics/applications"))
        .unwrap_or_else(|| panic!("forwarded exchange not recorded: {exchanges:?}"));
    assert_eq!(upstream.response.as_ref().unwrap().status, 200);
    let auth = upstream
        .request_headers
        .iter()
        .find(|h| h.name == "authorization")
        .unwrap();
    assert!(
        !auth.value_str().contains("secret-user-token"),
        "secret stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_fails_before_answering_is_a_discord_style_502() {
    let stand_in = FakeDiscord::start();
    let dir = workdir();
    // Reachable, but its certificate is not trusted (no --upstream-ca): the TLS handshake fails.
    let extra = stand_in.resolve_args();
    let serve_dir = dir.path().to_path_buf();
    let (reply, log) = tokio::task::spawn_blocking(move || {
        let mut extra = extra;
        extra.extend(args(&["--fallback", "recorded,forward"]));
        let serve = ServeProxy::start(&serve_dir, &extra);
        let reply = serve.curl(
            "https://discord.com/api/v9/users/@me/activities/statistics/applications",
            &[],
        );
        (reply, serve.stop())
    })
    .await
    .unwrap();
    assert_eq!(reply.status, 502, "{reply:?}\n{log}");
    assert_eq!(reply.source(), Some("proxy"));
    let body = reply.json();
    assert_eq!(
        body,
        json!({
            "message": body["message"].as_str().filter(|m| {
                m.starts_with("502: Bad Gateway (TLS handshake with discord.com failed: invalid peer certificate")
            }).unwrap_or("a 502 naming the TLS failure"),
            "code": 0,
            "discord_mitm_hint": "to trust a test upstream, pass its CA or its own self-signed certificate with --upstream-ca FILE",
        })
    );
}

#[test]
fn the_transparent_listener_reaches_the_backend_by_sni() {
    let dir = workdir();
    let serve = ServeProxy::start(
        dir.path(),
        &args(&["--fallback", "none", "--transparent", "127.0.0.1:0"]),
    );
    let addr = serve.transparent.expect("transparent address printed");
    // As a hosts-file redirect would: discord.com resolves to us; no proxy involved.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&serve.ca_pem)
        .arg("--resolve")
        .arg(format!("discord.com:{}:127.0.0.1", addr.port()))
        .args(["-H", &format!("Authorization: Bot {BOT_TOKEN}")])
        .arg(format!(
            "https://discord.com:{}/api/v10/users/@me",
            addr.port()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(me["username"], "pingbot", "{me}");
    assert!(serve.stop().contains("source=backend"));
}

#[test]
fn attachments_the_backend_hands_out_come_back_from_it_through_the_proxy() {
    let dir = workdir();
    let serve = ServeProxy::start(dir.path(), &args(&["--fallback", "none"]));
    let file = dir.path().join("hello.txt");
    std::fs::write(&file, "hello from an attachment\n").unwrap();
    let sent = serve.curl(
        &format!("https://discord.com/api/v10/channels/{GENERAL_ID}/messages"),
        &[
            "-H",
            &format!("Authorization: {ALICE_TOKEN}"),
            "--form-string",
            r#"payload_json={"content":"file for you","attachments":[{"id":0,"description":"greeting"}]}"#,
            "-F",
            &format!("files[0]=@{};type=text/plain", file.display()),
        ],
    );
    assert_eq!(sent.status, 200, "{sent:?}");
    assert_eq!(sent.source(), Some("backend"));
    let attachment = &sent.json()["attachments"][0];
    assert_eq!(attachment["description"], "greeting", "{attachment}");
    // Discord's CDN, as the client believes it talks to Discord.
    let url = attachment["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "https://cdn.discordapp.com/attachments/{GENERAL_ID}/"
        )) && url.ends_with("/hello.txt"),
        "{url}"
    );
    let fetched = serve.curl(url, &[]);
    assert_eq!(fetched.status, 200, "{fetched:?}");
    assert_eq!(fetched.source(), Some("backend"));
    assert_eq!(fetched.body, "hello from an attachment\n");
    assert_eq!(
        fetched.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    // The media proxy host (with its resizing query) is served the same way.
    let media = format!(
        "{}?width=100&height=100",
        url.replace("cdn.discordapp.com", "media.discordapp.net")
    );
    let resized = serve.curl(&media, &[]);
    assert_eq!(resized.source(), Some("backend"), "{resized:?}");
    assert_eq!(resized.body, "hello from an attachment\n");
    // An attachment the backend never handed out is not its answer: down the chain (none here).
    assert_not_found(&serve.curl(
        &format!("https://cdn.discordapp.com/attachments/{GENERAL_ID}/1234567890123456789/cat.png"),
        &[],
    ));
    let log = serve.stop();
    assert!(
        answered(
            &log,
            "GET",
            "/attachments/{channel_id}/{attachment_id}/{filename}",
            "backend"
        ),
        "{log}"
    );
}

#[test]
fn the_clients_start_up_files_and_foreign_attachments_go_down_the_chain() {
    let fake = FakeDiscord::start_echoing();
    let dir = workdir();
    let record = RecordProxy::start(dir.path(), &fake);
    record.curl("https://discord.com/api/modules/stable/versions.json", &[]);
    record.curl("https://discord.com/app", &[]);
    record.stop();
    let served_while_recording = fake.served();

    let mut extra = args(&["--fallback", "recorded,forward"]);
    extra.extend(fake.upstream_args());
    let serve = ServeProxy::start(dir.path(), &extra);
    // The module list is answered natively now (#16), ahead of the recording of the real one.
    let versions = serve.curl("https://discord.com/api/modules/stable/versions.json", &[]);
    assert_eq!(versions.source(), Some("backend"), "{versions:?}");
    let app = serve.curl("https://discord.com/app", &[]);
    assert_eq!(app.source(), Some("recording"), "{app:?}");
    assert_eq!(app.body, upstream::APP_HTML);
    assert_eq!(app.header("content-type"), Some("text/html; charset=utf-8"));
    // Never recorded: forwarded upstream.
    let module = serve.curl(
        "https://discord.com/api/modules/stable/discord_desktop_core/1?host_version=0.0.309",
        &[],
    );
    assert_eq!(module.status, 200, "{module:?}");
    assert_eq!(module.source(), Some("upstream"));
    assert_eq!(module.body.as_bytes(), upstream::MODULE_BYTES);
    let asset = serve.curl("https://discord.com/assets/4f3a9c.js", &[]);
    assert_eq!(asset.source(), Some("upstream"), "{asset:?}");
    assert!(asset.body.contains("GLOBAL_ENV"), "{asset:?}");
    let foreign = serve.curl(
        "https://cdn.discordapp.com/attachments/81384788765712384/1300000000000000001/cat.png",
        &[],
    );
    assert_eq!(foreign.source(), Some("upstream"), "{foreign:?}");
    assert!(foreign.body.contains("attachment from real discord"));
    // The backend's own start-up routes never leave the process.
    let science = serve.curl(
        "https://discord.com/api/v9/science",
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            "{}",
        ],
    );
    assert_eq!((science.status, science.source()), (204, Some("backend")));
    assert_eq!(fake.served(), served_while_recording + 3);
    let log = serve.stop();
    for (method, route, source) in [
        ("GET", "/app", "recording"),
        (
            "GET",
            "/api/modules/stable/discord_desktop_core/{discord_desktop_core_id}",
            "upstream",
        ),
        ("GET", "/assets/4f3a9c.js", "upstream"),
        ("POST", "/api/v9/science", "backend"),
    ] {
        assert!(
            answered(&log, method, route, source),
            "{method} {route} by {source} not in {log}"
        );
    }

    // What was forwarded is recorded: the recordings alone answer it now.
    let serve = ServeProxy::start(dir.path(), &args(&["--fallback", "recorded"]));
    let module = serve.curl(
        "https://discord.com/api/modules/stable/discord_desktop_core/1?host_version=0.0.309",
        &[],
    );
    assert_eq!(module.source(), Some("recording"), "{module:?}");
    assert_eq!(module.body.as_bytes(), upstream::MODULE_BYTES);
    serve.stop();
    assert_eq!(fake.served(), served_while_recording + 3);
}

#[test]
fn the_banner_lists_accounts_and_urls_and_the_proxy_once() {
    let dir = workdir();
    let serve = ServeProxy::start(
        dir.path(),
        &args(&["--fallback", "none", "--transparent", "127.0.0.1:0"]),
    );
    let (api, proxy) = (serve.api, serve.proxy);
    let transparent = serve.transparent.expect("transparent address printed");
    // Bots pointed straight at --api keep their own gateway URL; behind the proxy it is Discord's.
    let direct = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://{api}/api/v10/gateway"))
        .output()
        .unwrap();
    let direct: serde_json::Value = serde_json::from_slice(&direct.stdout).unwrap();
    assert_eq!(direct["url"], format!("ws://{api}"));
    let proxied = serve.curl("https://discord.com/api/v10/gateway", &[]);
    assert_eq!(proxied.json()["url"], "wss://gateway.discord.gg");
    let (banner, _) = serve.stop_with_stdout();
    assert_eq!(banner.matches("Press Ctrl-C").count(), 1, "{banner}");
    assert!(
        banner.trim_end().ends_with("Press Ctrl-C to stop."),
        "{banner}"
    );
    assert_eq!(
        banner.matches(&format!("proxy:    http://{proxy}")).count(),
        1,
        "{banner}"
    );
    assert_eq!(banner.matches("proxy:").count(), 1, "{banner}");
    for expected in [
        format!("discord-mitm serve listening on http://{api}"),
        format!("REST:     http://{api}/api/v10"),
        format!("gateway:  ws://{api}"),
        format!("Authorization: Bot {BOT_TOKEN}"),
        format!("Authorization: {ALICE_TOKEN}"),
        format!("transparent TLS on {transparent}"),
        "REST https://discord.com/api/v10, gateway wss://gateway.discord.gg, attachments https://cdn.discordapp.com".to_string(),
        format!(
            "recording exchanges and gateway sessions into {}",
            dir.path().join("recordings").display()
        ),
    ] {
        assert!(banner.contains(&expected), "{expected:?} not in\n{banner}");
    }

    // --no-store: said so, and nothing is written.
    let quiet_dir = workdir();
    let serve = ServeProxy::start(
        quiet_dir.path(),
        &args(&["--fallback", "none", "--no-store"]),
    );
    let me = serve.curl(
        "https://discord.com/api/v10/users/@me",
        &["-H", &format!("Authorization: Bot {BOT_TOKEN}")],
    );
    assert_eq!(me.source(), Some("backend"));
    let (banner, _) = serve.stop_with_stdout();
    assert!(banner.contains("not recording (--no-store)"), "{banner}");
    assert_eq!(banner.matches("Press Ctrl-C").count(), 1, "{banner}");
    assert!(!quiet_dir.path().join("recordings").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_store_the_in_process_gateway_still_serves_and_nothing_is_recorded() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let dir = workdir();
    let serve_dir = dir.path().to_path_buf();
    let serve = tokio::task::spawn_blocking(move || {
        ServeProxy::start(&serve_dir, &args(&["--fallback", "none", "--no-store"]))
    })
    .await
    .unwrap();
    let mut ws = record_support::websocket_through_proxy(
        serve.proxy,
        &serve.ca_pem,
        "gateway.discord.gg",
        "wss://gateway.discord.gg/?v=10&encoding=json",
    )
    .await;
    let next_json = |message: Option<Result<Message, _>>| -> serde_json::Value {
        match message {
            Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
            other => panic!("expected a JSON text frame, got {other:?}"),
        }
    };
    let hello = next_json(ws.next().await);
    assert_eq!(hello["op"], 10, "{hello}");
    let identify = json!({"op": 2, "d": {"token": BOT_TOKEN, "intents": 513,
        "properties": {"os": "linux", "browser": "test", "device": "test"}}});
    ws.send(Message::text(identify.to_string())).await.unwrap();
    let ready = next_json(ws.next().await);
    assert_eq!(ready["t"], "READY", "{ready}");
    assert_eq!(
        ready["d"]["resume_gateway_url"], "wss://gateway.discord.gg",
        "{ready}"
    );
    let _ = ws.close(None).await;
    let log = tokio::task::spawn_blocking(move || serve.stop())
        .await
        .unwrap();
    assert!(answered(&log, "GET", "/", "backend"), "{log}");
    // The in-process gateway logs the session too.
    assert!(log.contains("gateway identify"), "{log}");
    assert!(!dir.path().join("recordings").exists());
}

#[test]
fn no_store_without_the_proxy_is_refused_with_a_clear_error() {
    let out = std::process::Command::new(BIN)
        .args(["serve", "--no-store"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--listen"), "{stderr}");
}
