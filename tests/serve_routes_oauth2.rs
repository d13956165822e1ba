//! OAuth2 information routes and guild integrations against the built binary: what a bot
//! token's authorization is, OpenID userinfo, the signing keys, and uninstalling a bot from a
//! guild by deleting its integration (member removed, dispatches, audit log).
mod serve_routes_gateway_support;
mod serve_routes_support;
mod serve_support;

use serde_json::json;
use serve_routes_gateway_support::{call, next_dispatch, session};
use serve_routes_support::*;
use serve_support::*;

#[test]
fn oauth2_information_routes() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();

    let me = expect_documented(
        &spec,
        &api.get("/oauth2/@me", BOT),
        200,
        "GET",
        "/oauth2/@me",
    );
    assert_eq!(me["application"]["id"], BOT_ID);
    assert_eq!(me["user"]["id"], BOT_ID);
    assert_eq!(me["scopes"], json!(["bot", "applications.commands"]));
    // A user's session token is no OAuth2 authorization; no token at all is refused too.
    expect_error(&api.get("/oauth2/@me", ALICE), 401, 0);
    let anonymous = api.send("GET", "/oauth2/@me", None, None, &[]);
    expect_error(&anonymous, 401, 0);

    let info = expect_documented(
        &spec,
        &api.get("/oauth2/userinfo", ALICE),
        200,
        "GET",
        "/oauth2/userinfo",
    );
    assert_eq!(info["sub"], ALICE_ID);
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["email"], "alice@example.com");
    let bot_info = expect(&api.get("/oauth2/userinfo", BOT), 200).clone();
    assert_eq!(bot_info["sub"], BOT_ID);
    assert_eq!(bot_info["email"], json!(null));

    let keys = expect_documented(
        &spec,
        &api.send("GET", "/oauth2/keys", None, None, &[]),
        200,
        "GET",
        "/oauth2/keys",
    );
    assert_eq!(keys, json!({"keys": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_bots_integration_uninstalls_it() {
    let spec = spec();
    let server = Server::on_fixture_async().await;
    let base = server.base();
    let base = base.as_str();
    let list = format!("/guilds/{GUILD}/integrations");
    let (status, integrations) = call(base, "GET", list.clone(), ALICE, json!(null)).await;
    assert_eq!(status, 200, "{integrations}");
    conforms(
        &spec,
        "GET",
        "/guilds/{guild_id}/integrations",
        200,
        &integrations,
    );
    assert_eq!(integrations[0]["application"]["id"], BOT_ID);
    let id = integrations[0]["id"].as_str().unwrap().to_string();
    let one = format!("/guilds/{GUILD}/integrations/{id}");

    let (status, error) = call(base, "DELETE", one.clone(), BOB, json!(null)).await;
    assert_eq!((status, &error["code"]), (403, &json!(50013)));
    let (status, error) = call(
        base,
        "DELETE",
        format!("/guilds/{GUILD}/integrations/1"),
        ALICE,
        json!(null),
    )
    .await;
    assert_eq!((status, &error["code"]), (404, &json!(10005)));

    // GUILDS | GUILD_MEMBERS | GUILD_INTEGRATIONS
    let mut watcher = session(&server.addr, ALICE, 1 | (1 << 1) | (1 << 4)).await;
    let mut bot = session(&server.addr, BOT.trim_start_matches("Bot "), 1).await;
    let (status, _) = call(base, "DELETE", one.clone(), ALICE, json!(null)).await;
    assert_eq!(status, 204);
    let (removed, _) = next_dispatch(&mut watcher, |n| n == "GUILD_MEMBER_REMOVE").await;
    assert_eq!(removed["user"]["id"], BOT_ID);
    let (deleted, _) = next_dispatch(&mut watcher, |n| n == "INTEGRATION_DELETE").await;
    assert_eq!(
        deleted,
        json!({"id": id, "guild_id": GUILD, "application_id": BOT_ID})
    );
    next_dispatch(&mut watcher, |n| n == "GUILD_INTEGRATIONS_UPDATE").await;
    let (gone, _) = next_dispatch(&mut bot, |n| n == "GUILD_DELETE").await;
    assert_eq!(gone["id"], GUILD);

    let (status, error) = call(
        base,
        "GET",
        format!("/guilds/{GUILD}/members/{BOT_ID}"),
        ALICE,
        json!(null),
    )
    .await;
    assert_eq!((status, &error["code"]), (404, &json!(10007)));
    let (_, after) = call(base, "GET", list, ALICE, json!(null)).await;
    assert_eq!(after, json!([]));
    let (status, _) = call(base, "DELETE", one, ALICE, json!(null)).await;
    assert_eq!(status, 404);
    let (_, log) = call(
        base,
        "GET",
        format!("/guilds/{GUILD}/audit-logs?action_type=82"),
        ALICE,
        json!(null),
    )
    .await;
    assert_eq!(log["audit_log_entries"][0]["target_id"], BOT_ID, "{log}");
}
