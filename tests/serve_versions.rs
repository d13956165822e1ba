//! Which API version a request gets, through the binary: bare `/api` follows Discord's defaults
//! (v9 for user tokens, the client's default; v6 for bots, the API's default), pinned versions
//! get their own shapes.
mod serve_support;

use serve_support::*;

#[test]
fn bare_api_is_v9_for_users_and_v6_for_bots() {
    let server = Server::on_fixture();
    let api = server.api();
    let roles_at = |prefix: &str, token: &str| {
        let url = format!("http://{}{prefix}/guilds/{GUILD}/roles", server.addr);
        let reply = api.send("GET", &url, Some(token), None, &[]);
        let roles = expect(&reply, 200).clone();
        roles
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == GUILD)
            .expect("@everyone")
            .clone()
    };
    // A bot on bare /api: v6 integers with the string in permissions_new.
    let bot = roles_at("/api", BOT);
    assert!(bot["permissions"].is_u64(), "{bot}");
    assert_eq!(bot["permissions_new"], "2248473465835073");
    // A user (alice) on bare /api: the client default, v9, strings.
    let user = roles_at("/api", ALICE);
    assert_eq!(user["permissions"], "2248473465835073");
    assert!(user.get("permissions_new").is_none(), "{user}");
    // Pinned versions do not depend on who asks.
    assert!(roles_at("/api/v9", BOT)["permissions"].is_string());
    assert!(roles_at("/api/v10", ALICE)["permissions"].is_string());
    assert!(roles_at("/api/v6", ALICE)["permissions"].is_u64());
}

#[test]
fn the_singular_embed_counts_before_v10_only() {
    let server = Server::on_fixture();
    let api = server.api();
    let post = |version: &str| {
        let url = format!(
            "http://{}/api/{version}/channels/{GENERAL}/messages",
            server.addr
        );
        let body = serde_json::json!({"content": "release notes", "embed": {"title": "v1.2"}});
        expect(&api.send("POST", &url, Some(BOT), Some(&body), &[]), 200).clone()
    };
    assert_eq!(post("v9")["embeds"][0]["title"], "v1.2");
    assert_eq!(post("v8")["embeds"][0]["title"], "v1.2");
    let v10 = post("v10");
    assert_eq!(v10["embeds"], serde_json::json!([]), "{v10}");
    assert_eq!(v10["content"], "release notes");
}
