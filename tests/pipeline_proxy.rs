//! `serve --listen` end to end with curl through the proxy (trusting our CA): the backend
//! answers what it implements, recordings made by `record` against the stand-in answer what it
//! does not, then upstream (recorded), then Discord's 404 — each tagged with its source.
mod pipeline_support;
mod record_support;

use pipeline_support::*;
use record_support::{open_store, workdir, Recorder, StandIn};
use serde_json::json;

const NOT_FOUND: &str = r#"{"code":0,"message":"404: Not Found"}"#;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

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
        &args(&["--fallback", "none", "--client-version", "0.0.309"]),
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

    let old = serve.curl(
        "https://discord.com/api/updates/stable?platform=linux&version=0.0.300",
        &[],
    );
    assert_eq!(old.status, 200, "{old:?}");
    assert_eq!(old.source(), Some("backend"));
    let update = old.json();
    assert_eq!(update["name"], "0.0.309");
    assert!(
        update["pub_date"].is_string() && update.get("url").is_none(),
        "{update}"
    );
    let osx = serve
        .curl(
            "https://discord.com/api/updates/stable?platform=osx&version=0.0.1",
            &[],
        )
        .json();
    assert_eq!(osx["name"], "0.0.309");
    assert!(
        osx["url"].as_str().unwrap().ends_with(".zip") && osx["notes"].is_string(),
        "{osx}"
    );
    let current = serve.curl(
        "https://discord.com/api/updates/stable?platform=win&version=0.0.309",
        &[],
    );
    assert_eq!(current.status, 204, "{current:?}");
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

    // Not the backend's and nothing behind it: Discord's 404, for /api and for /app alike.
    assert_not_found(&serve.curl("https://discord.com/api/modules/stable/versions.json", &[]));
    assert_not_found(&serve.curl("https://discord.com/app", &[]));
    let log = serve.stop();
    assert!(log.contains("answered by backend"), "{log}");
    assert!(log.contains("answered by none"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_answer_what_the_backend_does_not_with_ids_substituted() {
    let stand_in = StandIn::start().await;
    let dir = workdir();
    let recorder = Recorder::start(dir.path(), &stand_in, &[]);
    let recorded_guild = "81384788765712384";
    // Blocking curl on one of the two runtime workers; the stand-in runs on the other.
    let recorded = record_support::curl(
        &recorder,
        &format!("https://discord.com/api/v9/guilds/{recorded_guild}/premium/subscriptions"),
        &[],
    );
    assert!(recorded.status.success(), "{recorded:?}");
    let affinities = record_support::curl(
        &recorder,
        "https://discord.com/api/v9/users/@me/affinities/guilds",
        &[],
    );
    assert!(affinities.status.success());
    recorder.stop();

    let serve_dir = dir.path().to_path_buf();
    let reply = tokio::task::spawn_blocking(move || {
        let serve = ServeProxy::start(&serve_dir, &args(&["--fallback", "recorded"]));
        let exact = serve.curl(
            "https://discord.com/api/v9/users/@me/affinities/guilds",
            &[],
        );
        let templated = serve.curl(
            "https://discord.com/api/v9/guilds/999999999999999999/premium/subscriptions",
            &[],
        );
        let other_query = serve.curl(
            "https://discord.com/api/v9/users/@me/affinities/guilds?with_counts=true",
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
    // A different (non-ignorable) query is a different request: nothing recorded, 404.
    assert_not_found(&other_query);
    assert!(log.contains("answered by recording"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_reaches_the_stand_in_and_records_it_and_unreachable_upstream_is_a_quick_404() {
    let stand_in = StandIn::start().await;
    let dir = workdir();
    let mut extra = args(&["--fallback", "forward", "--upstream-ca"]);
    extra.push(stand_in.ca_pem.display().to_string());
    extra.extend(stand_in.resolve_args());
    extra.extend(args(&["--resolve", "discordapp.com=127.0.0.1:1"]));
    let serve_dir = dir.path().to_path_buf();
    let (forwarded, unreachable, backend, log) = tokio::task::spawn_blocking(move || {
        let serve = ServeProxy::start(&serve_dir, &extra);
        let forwarded = serve.curl(
            "https://discord.com/api/v9/users/@me/affinities/guilds",
            &["-H", "Authorization: secret-user-token"],
        );
        let unreachable = serve.curl(
            "https://discordapp.com/api/v9/users/@me/affinities/guilds",
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
        .find(|e| e.source == "upstream" && e.path_and_query.ends_with("/affinities/guilds"))
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
    let stand_in = StandIn::start().await;
    let dir = workdir();
    // Reachable, but its certificate is not trusted (no --upstream-ca): the TLS handshake fails.
    let extra = stand_in.resolve_args();
    let serve_dir = dir.path().to_path_buf();
    let (reply, log) = tokio::task::spawn_blocking(move || {
        let mut extra = extra;
        extra.extend(args(&["--fallback", "recorded,forward"]));
        let serve = ServeProxy::start(&serve_dir, &extra);
        let reply = serve.curl(
            "https://discord.com/api/v9/users/@me/affinities/guilds",
            &[],
        );
        (reply, serve.stop())
    })
    .await
    .unwrap();
    assert_eq!(reply.status, 502, "{reply:?}\n{log}");
    assert_eq!(reply.source(), Some("proxy"));
    assert_eq!(
        reply.json(),
        json!({"message": "502: Bad Gateway", "code": 0})
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
    assert!(serve.stop().contains("answered by backend"));
}
