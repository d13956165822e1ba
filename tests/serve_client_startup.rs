//! The official client's start-up sequence through `serve --listen` (curl through the MITM
//! proxy, trusting our CA): register, login without and with MFA, `/users/@me`, `/experiments`,
//! the settings protos, affinities, the other start-up routes, acks and relationships. Every
//! answer must come from the backend (`X-Discord-Mitm-Source: backend`), none from the
//! recordings or upstream.
mod account_support;
mod pipeline_support;
mod record_support;
#[path = "common/upstream.rs"]
mod upstream;

use account_support::{totp_now, TOTP_SECRET};
use pipeline_support::*;
use record_support::workdir;
use serde_json::{json, Value};

/// One request through the proxy; asserts the backend answered it with `status`.
fn backend(
    serve: &ServeProxy,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    status: u16,
) -> Value {
    let url = format!("https://discord.com/api/v9{path}");
    let auth = token.map(|t| format!("Authorization: {t}"));
    let body = body.map(|b| b.to_string());
    let mut extra = vec!["-X", method];
    if let Some(auth) = &auth {
        extra.extend(["-H", auth.as_str()]);
    }
    if let Some(body) = &body {
        extra.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body.as_str(),
        ]);
    }
    let reply = serve.curl(&url, &extra);
    assert_eq!(
        reply.source(),
        Some("backend"),
        "{method} {path}: {reply:?}"
    );
    assert_eq!(reply.status, status, "{method} {path}: {reply:?}");
    if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    }
}

fn register(serve: &ServeProxy, email: &str, name: &str) -> String {
    let made = backend(
        serve,
        "POST",
        "/auth/register",
        None,
        Some(
            json!({"email": email, "password": "correct horse", "global_name": name, "consent": true}),
        ),
        201,
    );
    made["token"].as_str().unwrap().to_string()
}

fn login(serve: &ServeProxy, email: &str) -> Value {
    backend(
        serve,
        "POST",
        "/auth/login",
        None,
        Some(json!({"login": email, "password": "correct horse"})),
        200,
    )
}

#[test]
fn the_official_clients_start_up_sequence_is_answered_by_the_backend() {
    let dir = workdir();
    let serve = ServeProxy::start(dir.path(), &args(&["--fallback", "none"]));
    let (erin, frank) = sign_in_both(&serve);
    start_up_routes(&serve, &erin, &frank);
    misc_routes(&serve, &erin);
    relationships_and_acks(&serve, &erin, &frank);
    // The updater, on the proxy and on --api alike.
    let manifest = serve.curl(
        "https://discord.com/api/updates/distributions/app/manifests/latest?channel=stable&platform=win&arch=x64",
        &[],
    );
    assert_eq!((manifest.status, manifest.source()), (200, Some("backend")));
    let manifest = manifest.json();
    assert!(manifest["full"]["host_version"].is_array());
    let no_platform = serve.curl("https://discord.com/api/updates/stable?version=0.0.1", &[]);
    assert_eq!(
        (no_platform.status, no_platform.source()),
        (200, Some("backend"))
    );
    assert!(
        no_platform.json()["url"]
            .as_str()
            .unwrap()
            .contains("/osx/"),
        "platform defaults to osx"
    );
    // The native module list is the backend's too: no modules are published, so the list is
    // empty, and a download goes down the chain (here there is nothing behind: a 404).
    let modules = serve.curl("https://discord.com/api/modules/stable/versions.json", &[]);
    assert_eq!((modules.status, modules.source()), (200, Some("backend")));
    assert_eq!(modules.json(), json!({}));
    let module = serve.curl(
        "https://discord.com/api/modules/stable/discord_voice/1?platform=win&host_version=1.0.9",
        &[],
    );
    assert_eq!((module.status, module.source()), (404, Some("none")));
    member_avatar_on_the_cdn(&serve, &erin);
    serve.stop();
}

/// A member's own guild avatar set over REST comes back from `cdn.discordapp.com` through the
/// proxy, answered by the backend.
fn member_avatar_on_the_cdn(serve: &ServeProxy, erin: &str) {
    let erin_id = backend(serve, "GET", "/users/@me", Some(erin), None, 200)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let guild = backend(
        serve,
        "POST",
        "/guilds",
        Some(erin),
        Some(json!({"name": "Erin's"})),
        201,
    );
    let guild_id = guild["id"].as_str().unwrap();
    let pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let path = format!("/guilds/{guild_id}/members/@me");
    let member = backend(
        serve,
        "PATCH",
        &path,
        Some(erin),
        Some(json!({"avatar": pixel})),
        200,
    );
    let hash = member["avatar"].as_str().unwrap();
    let url =
        format!("https://cdn.discordapp.com/guilds/{guild_id}/users/{erin_id}/avatars/{hash}.png");
    let image = serve.curl(&url, &[]);
    assert_eq!(
        (image.status, image.source()),
        (200, Some("backend")),
        "{image:?}"
    );
}

/// One phase of the test above it.
fn sign_in_both(serve: &ServeProxy) -> (String, String) {
    // Before login: location metadata, experiments with a fingerprint.
    let meta = backend(serve, "GET", "/auth/location-metadata", None, None, 200);
    assert!(meta["country_code"].is_string());
    let anonymous = backend(serve, "GET", "/experiments", None, None, 200);
    assert!(anonymous["fingerprint"].is_string());
    register(serve, "erin@example.com", "Erin");
    let frank_token = register(serve, "frank@example.com", "Frank");
    // Frank turns MFA on; his login then needs the second step.
    let enabled = backend(
        serve,
        "POST",
        "/users/@me/mfa/totp/enable",
        Some(&frank_token),
        Some(
            json!({"password": "correct horse", "secret": TOTP_SECRET, "code": totp_now(TOTP_SECRET)}),
        ),
        200,
    );
    assert_eq!(enabled["backup_codes"].as_array().unwrap().len(), 10);
    let plain = login(serve, "erin@example.com");
    let erin = plain["token"].as_str().unwrap().to_string();
    let ticket = login(serve, "frank@example.com");
    assert_eq!(ticket["mfa"], true);
    let frank = backend(
        serve,
        "POST",
        "/auth/mfa/totp",
        None,
        Some(json!({"ticket": ticket["ticket"], "code": totp_now(TOTP_SECRET)})),
        200,
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    (erin, frank)
}

/// One phase of the test above it.
fn start_up_routes(serve: &ServeProxy, erin: &str, frank: &str) {
    for token in [erin, frank] {
        let me = backend(serve, "GET", "/users/@me", Some(token), None, 200);
        assert!(me["id"].is_string());
        let experiments = backend(
            serve,
            "GET",
            "/experiments?with_guild_experiments=true",
            Some(token),
            None,
            200,
        );
        assert_eq!(experiments["assignments"], json!([]));
        assert_eq!(experiments["guild_experiments"], json!([]));
        assert_eq!(
            backend(
                serve,
                "GET",
                "/users/@me/settings-proto/1",
                Some(token),
                None,
                200
            )["settings"],
            ""
        );
        assert_eq!(
            backend(
                serve,
                "GET",
                "/users/@me/settings-proto/2",
                Some(token),
                None,
                200
            )["settings"],
            ""
        );
        assert!(backend(
            serve,
            "GET",
            "/users/@me/affinities/users",
            Some(token),
            None,
            200
        )["user_affinities"]
            .is_array());
        assert!(backend(
            serve,
            "GET",
            "/users/@me/affinities/guilds",
            Some(token),
            None,
            200
        )["guild_affinities"]
            .is_array());
        let gateway = backend(serve, "GET", "/gateway", Some(token), None, 200);
        assert_eq!(gateway["url"], "wss://gateway.discord.gg");
    }
}

/// One phase of the test above it.
fn misc_routes(serve: &ServeProxy, erin: &str) {
    for path in [
        "/users/@me/billing/payment-sources",
        "/users/@me/billing/subscriptions",
        "/users/@me/entitlements/gifts",
        "/users/@me/guilds/premium/subscription-slots",
        "/applications/detectable",
        "/users/@me/connections",
        "/users/@me/relationships",
    ] {
        assert_eq!(
            backend(serve, "GET", path, Some(erin), None, 200),
            json!([]),
            "{path}"
        );
    }
    assert_eq!(
        backend(
            serve,
            "GET",
            "/users/@me/billing/country-code",
            Some(erin),
            None,
            200
        )["country_code"],
        "US"
    );
    assert!(
        backend(serve, "GET", "/users/@me/consent", Some(erin), None, 200)["usage_statistics"]
            .is_object()
    );
    assert!(backend(serve, "GET", "/users/@me/survey", Some(erin), None, 200)["survey"].is_null());
    backend(serve, "GET", "/users/@me/harvest", Some(erin), None, 204);
    backend(
        serve,
        "POST",
        "/science",
        Some(erin),
        Some(json!({"events": []})),
        204,
    );
    backend(
        serve,
        "POST",
        "/track",
        Some(erin),
        Some(json!({"events": []})),
        204,
    );
    let settings = backend(serve, "GET", "/users/@me/settings", Some(erin), None, 200);
    assert_eq!(settings["theme"], "dark");
}

/// One phase of the test above it.
fn relationships_and_acks(serve: &ServeProxy, erin: &str, frank: &str) {
    // Relationships: erin asks frank by username, frank accepts; the profile shows it.
    let frank_name =
        backend(serve, "GET", "/users/@me", Some(frank), None, 200)["username"].clone();
    backend(
        serve,
        "POST",
        "/users/@me/relationships",
        Some(erin),
        Some(json!({"username": frank_name})),
        204,
    );
    let erin_id = backend(serve, "GET", "/users/@me", Some(erin), None, 200)["id"]
        .as_str()
        .unwrap()
        .to_string();
    backend(
        serve,
        "PUT",
        &format!("/users/@me/relationships/{erin_id}"),
        Some(frank),
        Some(json!({})),
        204,
    );
    let friends = backend(
        serve,
        "GET",
        "/users/@me/relationships",
        Some(erin),
        None,
        200,
    );
    assert_eq!(friends[0]["type"], 1);
    let profile = backend(
        serve,
        "GET",
        &format!("/users/{erin_id}/profile"),
        Some(frank),
        None,
        200,
    );
    assert_eq!(profile["user"]["id"], erin_id.as_str());
    assert_eq!(profile["mutual_guilds"], json!([]));
    // Acks in the fixture's guild, as alice.
    let alice = ALICE_TOKEN.to_string();
    let message = backend(
        serve,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(&alice),
        Some(json!({"content": "hello"})),
        200,
    );
    let ack = backend(
        serve,
        "POST",
        &format!(
            "/channels/{GENERAL_ID}/messages/{}/ack",
            message["id"].as_str().unwrap()
        ),
        Some(&alice),
        Some(json!({"token": null})),
        200,
    );
    assert_eq!(ack, json!({"token": null}));
    backend(
        serve,
        "POST",
        &format!("/guilds/{GUILD_ID}/ack"),
        Some(&alice),
        Some(json!({})),
        204,
    );
}
