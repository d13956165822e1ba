//! Message and thread search against the built binary: filters, paging, sorting, what the
//! caller may not read staying hidden, Discord's validation errors and the documented shapes.
mod serve_routes_support;
mod serve_support;

use serde_json::{json, Value};
use serve_routes_support::*;
use serve_support::*;

fn ids(messages: &Value) -> Vec<String> {
    messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group[0]["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn guild_message_search() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let send = |channel: &str, token: &str, body: Value| {
        expect(
            &api.post(&format!("/channels/{channel}/messages"), token, body),
            200,
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let deploy = send(
        GENERAL,
        ALICE,
        json!({"content": "Deploy finished on staging"}),
    );
    let link = send(
        GENERAL,
        BOB,
        json!({"content": "logs at https://logs.example/1 for the deploy"}),
    );
    let mention = send(
        GENERAL,
        BOT,
        json!({"content": format!("<@{BOB_ID}> deploy is green"),
                                           "embeds": [{"title": "Build status"}]}),
    );
    let reply = send(
        GENERAL,
        ALICE,
        json!({"content": "thanks",
                                           "message_reference": {"message_id": mention}}),
    );
    let hidden = send(SECRET, BOT, json!({"content": "secret deploy notes"}));
    let path = format!("/guilds/{GUILD}/messages/search");

    let all = expect_documented(
        &spec,
        &api.get(&format!("{path}?content=deploy"), BOB),
        200,
        "GET",
        "/guilds/{guild_id}/messages/search",
    );
    // Newest first; bob cannot read #secret, so its message is not found for him.
    assert_eq!(ids(&all), [mention.clone(), link.clone(), deploy.clone()]);
    assert_eq!(all["total_results"], 3);
    assert_eq!(all["messages"][0][0]["hit"], true);
    let for_bot = expect(&api.get(&format!("{path}?content=deploy"), BOT), 200).clone();
    assert_eq!(for_bot["total_results"], 4);
    assert_eq!(ids(&for_bot)[0], hidden);

    // Every word must match, in any order, case-insensitively (embeds count).
    assert_eq!(
        ids(&expect(
            &api.get(&format!("{path}?content=STATUS%20build"), BOB),
            200
        )
        .clone()),
        [mention.as_str()]
    );
    let check = |query: &str, expected: &[&String]| {
        let found = expect(&api.get(&format!("{path}?{query}"), BOB), 200).clone();
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(ids(&found), expected, "{query}");
    };
    check(
        &format!("author_id={ALICE_ID}&author_id={BOB_ID}&content=deploy"),
        &[&link, &deploy],
    );
    check("author_type=bot", &[&mention]);
    check("author_type=-bot&content=deploy", &[&link, &deploy]);
    check("has=link", &[&link]);
    check("has=embed", &[&mention]);
    check(&format!("mentions={BOB_ID}"), &[&mention]);
    // A reply mentions the replied-to author by default.
    check(&format!("mentions={BOT_ID}"), &[&reply]);
    check(&format!("replied_to_message_id={mention}"), &[&reply]);
    check(&format!("replied_to_user_id={BOT_ID}"), &[&reply]);
    check(&format!("min_id={link}&content=deploy"), &[&mention]);
    check(&format!("max_id={link}"), &[&deploy]);
    check("content=deploy&sort_order=asc&limit=2", &[&deploy, &link]);
    check(
        "content=deploy&sort_order=asc&limit=2&offset=2",
        &[&mention],
    );
    check(&format!("channel_id={READONLY}"), &[]);
    expect(
        &api.put(
            &format!("/channels/{GENERAL}/pins/{deploy}"),
            ALICE,
            json!({}),
        ),
        204,
    );
    check("pinned=true", &[&deploy]);

    let invalid = api.get(&format!("{path}?limit=26&has=gifs&author_id=abc"), BOB);
    expect_error(&invalid, 400, 50035);
    for field in ["limit", "has", "author_id"] {
        assert!(
            invalid.body["errors"][field].is_object(),
            "{field}: {}",
            invalid.raw
        );
    }
    expect_error(&api.get(&format!("{path}?content=x"), CAROL), 403, 50001);
}

#[test]
fn forum_thread_search() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    // Tag ids as a forum's `available_tags` would give them.
    let bug = "300000000000000001".to_string();
    let idea = "300000000000000002".to_string();
    let post = |name: &str, tags: Vec<&String>| {
        expect(
            &api.post(
                &format!("/channels/{FORUM}/threads"),
                BOB,
                json!({"name": name, "applied_tags": tags, "message": {"content": format!("about {name}")}}),
            ),
            201,
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let crash = post("Crash on start", vec![&bug]);
    let dark = post("Dark mode", vec![&idea]);
    let both = post("Crash in dark mode", vec![&bug, &idea]);
    let path = format!("/channels/{FORUM}/threads/search");
    let names = |query: &str| {
        let found = expect(&api.get(&format!("{path}?{query}"), ALICE), 200).clone();
        found["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    let found = expect_documented(
        &spec,
        &api.get(&format!("{path}?name=crash"), ALICE),
        200,
        "GET",
        "/channels/{channel_id}/threads/search",
    );
    assert_eq!(found["total_results"], 2);
    assert_eq!(found["has_more"], false);
    assert_eq!(
        found["first_messages"][0]["content"],
        "about Crash in dark mode"
    );
    assert_eq!(names("name=crash"), [both.clone(), crash.clone()]);
    assert_eq!(names(&format!("tag={bug}")), [both.clone(), crash.clone()]);
    assert_eq!(
        names(&format!("tag={bug}&tag={idea}&tag_setting=match_all")),
        [both.as_str()]
    );
    assert_eq!(
        names(&format!("tag={bug}&tag={idea}")),
        [both.clone(), dark.clone(), crash.clone()]
    );
    assert_eq!(
        names("sort_by=creation_time&sort_order=asc&limit=2"),
        [crash.clone(), dark.clone()]
    );
    let paged = expect(&api.get(&format!("{path}?limit=1"), ALICE), 200).clone();
    assert_eq!(paged["has_more"], true);
    expect(
        &api.patch(&format!("/channels/{dark}"), BOB, json!({"archived": true})),
        200,
    );
    assert_eq!(names("archived=true"), [dark.as_str()]);
    expect_error(
        &api.get(&format!("{path}?sort_by=popularity"), ALICE),
        400,
        50035,
    );
    expect_error(
        &api.get(&format!("/channels/{VOICE}/threads/search"), ALICE),
        400,
        50024,
    );
}
