//! Schema conformance: every JSON answer of every implemented route validates against the
//! response schema of Discord's OpenAPI spec (`../shared/discord-openapi.json`).
mod serve_routes_support;
mod serve_support;

use serde_json::{json, Value};
use serve_routes_support::spec;
use serve_support::*;

/// Every 2xx JSON response schema of the spec, compiled once into one validator map.
struct Schemas {
    map: jsonschema::ValidatorMap,
    keys: std::collections::HashMap<String, String>,
}

impl Schemas {
    fn new<'a>(spec: &Value, templates: impl IntoIterator<Item = &'a str>) -> Schemas {
        let wanted: std::collections::HashSet<&str> = templates.into_iter().collect();
        let mut defs = serde_json::Map::new();
        let mut keys = std::collections::HashMap::new();
        for (template, item) in spec["paths"].as_object().unwrap() {
            if !wanted.contains(template.as_str()) {
                continue;
            }
            for (method, operation) in item.as_object().unwrap() {
                let Some(responses) = operation["responses"].as_object() else {
                    continue;
                };
                for (status, response) in responses {
                    let schema = &response["content"]["application/json"]["schema"];
                    if status.starts_with('2') && !schema.is_null() {
                        let name = format!("r{}", defs.len());
                        defs.insert(name.clone(), schema.clone());
                        keys.insert(
                            format!("{method} {template} {status}"),
                            format!("#/$defs/{name}"),
                        );
                    }
                }
            }
        }
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": defs,
            "components": spec["components"],
            "$ref": "#/$defs/r0",
        });
        let map = jsonschema::options()
            .build_map(&root)
            .expect("the spec's schemas compile");
        Schemas { map, keys }
    }

    /// Problems with `body` as the answer `status` to (method, template).
    fn violations(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &Value,
    ) -> Result<Vec<String>, String> {
        let key = format!("{} {template} {status}", method.to_lowercase());
        let pointer = self
            .keys
            .get(&key)
            .ok_or_else(|| format!("the spec has no JSON {status} answer for {key}"))?;
        let validator = self
            .map
            .get(pointer)
            .ok_or_else(|| format!("no compiled schema for {key}"))?;
        Ok(validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect())
    }
}

struct Check<'a> {
    method: &'a str,
    template: &'a str,
    path: String,
    token: Option<&'a str>,
    body: Option<Value>,
}

fn check<'a>(
    method: &'a str,
    template: &'a str,
    path: String,
    token: Option<&'a str>,
    body: Option<Value>,
) -> Check<'a> {
    Check {
        method,
        template,
        path,
        token,
        body,
    }
}

#[test]
fn every_implemented_route_answers_in_the_documented_shape() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();

    // Things to talk about.
    let message = expect(&api.post(&format!("/channels/{GENERAL}/messages"), BOT,
        json!({"content": format!("hello <@{BOB_ID}>"), "embeds": [{"title": "t", "description": "d"}]})), 200).clone();
    let message_id = message["id"].as_str().unwrap().to_string();
    let reply = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": "reply", "message_reference": {"message_id": message_id}}),
        ),
        200,
    )
    .clone();
    expect(
        &api.put(
            &format!("/channels/{GENERAL}/messages/{message_id}/reactions/%F0%9F%91%8D/@me"),
            BOT,
            json!({}),
        ),
        204,
    );
    expect(
        &api.put(
            &format!("/channels/{GENERAL}/pins/{message_id}"),
            BOT,
            json!({}),
        ),
        204,
    );
    let news = expect(
        &api.post(
            &format!("/channels/{NEWS}/messages"),
            BOT,
            json!({"content": "news"}),
        ),
        200,
    )
    .clone();
    let role = expect(
        &api.post(
            &format!("/guilds/{GUILD}/roles"),
            BOT,
            json!({"name": "schema"}),
        ),
        200,
    )
    .clone();
    let role_id = role["id"].as_str().unwrap().to_string();
    let image = PIXEL_PNG;
    let emoji = expect(
        &api.post(
            &format!("/guilds/{GUILD}/emojis"),
            BOT,
            json!({"name": "blob", "image": image}),
        ),
        201,
    )
    .clone();
    let emoji_id = emoji["id"].as_str().unwrap().to_string();
    let hook = expect(
        &api.post(
            &format!("/channels/{GENERAL}/webhooks"),
            BOT,
            json!({"name": "hook"}),
        ),
        200,
    )
    .clone();
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let hook_token = hook["token"].as_str().unwrap().to_string();
    let hook_message = expect(
        &api.send(
            "POST",
            &format!("/webhooks/{hook_id}/{hook_token}?wait=true"),
            None,
            Some(&json!({"content": "hooked"})),
            &[],
        ),
        200,
    )
    .clone();
    let hook_message_id = hook_message["id"].as_str().unwrap().to_string();
    let thread = expect(
        &api.post(
            &format!("/channels/{GENERAL}/threads"),
            BOT,
            json!({"name": "t", "type": 11}),
        ),
        201,
    )
    .clone();
    let thread_id = thread["id"].as_str().unwrap().to_string();
    let starter = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOB,
            json!({"content": "start"}),
        ),
        200,
    )
    .clone();
    let doomed = expect(
        &api.post(
            &format!("/guilds/{GUILD}/channels"),
            BOT,
            json!({"name": "doomed"}),
        ),
        201,
    )
    .clone();
    expect(
        &api.put(&format!("/guilds/{GUILD}/bans/{DAVE_ID}"), BOT, json!({})),
        204,
    );

    let poll = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            ALICE,
            json!({"poll": {"question": {"text": "Tea?"},
                "answers": [{"poll_media": {"text": "Yes"}}, {"poll_media": {"text": "No"}}]}}),
        ),
        200,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    expect(
        &api.put(
            &format!("/channels/{GENERAL}/polls/{poll}/answers/@me"),
            BOB,
            json!({"answer_ids": [1]}),
        ),
        204,
    );

    let checks = vec![
        check("GET", "/users/@me", "/users/@me".into(), Some(BOT), None),
        check(
            "PATCH",
            "/users/@me",
            "/users/@me".into(),
            Some(BOT),
            Some(json!({"username": "pingbot"})),
        ),
        check(
            "GET",
            "/users/{user_id}",
            format!("/users/{BOB_ID}"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/users/@me/guilds",
            "/users/@me/guilds?with_counts=true".into(),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/users/@me/guilds/{guild_id}/member",
            format!("/users/@me/guilds/{GUILD}/member"),
            Some(BOT),
            None,
        ),
        check(
            "POST",
            "/users/@me/channels",
            "/users/@me/channels".into(),
            Some(BOT),
            Some(json!({"recipient_id": BOB_ID})),
        ),
        check(
            "GET",
            "/users/@me/connections",
            "/users/@me/connections".into(),
            Some(ALICE),
            None,
        ),
        check(
            "GET",
            "/applications/@me",
            "/applications/@me".into(),
            Some(BOT),
            None,
        ),
        check(
            "PATCH",
            "/applications/@me",
            "/applications/@me".into(),
            Some(BOT),
            Some(json!({"description": "d"})),
        ),
        check(
            "GET",
            "/applications/{application_id}",
            format!("/applications/{BOT_ID}"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/oauth2/applications/@me",
            "/oauth2/applications/@me".into(),
            Some(BOT),
            None,
        ),
        check("GET", "/gateway", "/gateway".into(), None, None),
        check(
            "GET",
            "/gateway/bot",
            "/gateway/bot".into(),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/voice/regions",
            "/voice/regions".into(),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}",
            format!("/guilds/{GUILD}?with_counts=true"),
            Some(BOT),
            None,
        ),
        check(
            "PATCH",
            "/guilds/{guild_id}",
            format!("/guilds/{GUILD}"),
            Some(ALICE),
            Some(json!({"description": "schema"})),
        ),
        check(
            "GET",
            "/guilds/{guild_id}/preview",
            format!("/guilds/{GUILD}/preview"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/channels",
            format!("/guilds/{GUILD}/channels"),
            Some(BOT),
            None,
        ),
        check(
            "POST",
            "/guilds/{guild_id}/channels",
            format!("/guilds/{GUILD}/channels"),
            Some(BOT),
            Some(json!({"name": "schema-made"})),
        ),
        check(
            "POST",
            "/guilds/{guild_id}/channels",
            format!("/guilds/{GUILD}/channels"),
            Some(BOT),
            Some(json!({"name": "vc", "type": 2})),
        ),
        check(
            "POST",
            "/guilds/{guild_id}/channels",
            format!("/guilds/{GUILD}/channels"),
            Some(BOT),
            Some(json!({"name": "cat", "type": 4})),
        ),
        check(
            "POST",
            "/guilds/{guild_id}/channels",
            format!("/guilds/{GUILD}/channels"),
            Some(BOT),
            Some(json!({"name": "forum-x", "type": 15})),
        ),
        check(
            "GET",
            "/guilds/{guild_id}/bans",
            format!("/guilds/{GUILD}/bans"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/bans/{user_id}",
            format!("/guilds/{GUILD}/bans/{DAVE_ID}"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/audit-logs",
            format!("/guilds/{GUILD}/audit-logs"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/emojis",
            format!("/guilds/{GUILD}/emojis"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/emojis/{emoji_id}",
            format!("/guilds/{GUILD}/emojis/{emoji_id}"),
            Some(BOT),
            None,
        ),
        check(
            "PATCH",
            "/guilds/{guild_id}/emojis/{emoji_id}",
            format!("/guilds/{GUILD}/emojis/{emoji_id}"),
            Some(BOT),
            Some(json!({"name": "blobby"})),
        ),
        check(
            "GET",
            "/guilds/{guild_id}/threads/active",
            format!("/guilds/{GUILD}/threads/active"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/regions",
            format!("/guilds/{GUILD}/regions"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/roles",
            format!("/guilds/{GUILD}/roles"),
            Some(BOT),
            None,
        ),
        check(
            "POST",
            "/guilds/{guild_id}/roles",
            format!("/guilds/{GUILD}/roles"),
            Some(BOT),
            Some(json!({"name": "another"})),
        ),
        check(
            "PATCH",
            "/guilds/{guild_id}/roles",
            format!("/guilds/{GUILD}/roles"),
            Some(BOT),
            Some(json!([{"id": role_id, "position": 1}])),
        ),
        check(
            "GET",
            "/guilds/{guild_id}/roles/{role_id}",
            format!("/guilds/{GUILD}/roles/{role_id}"),
            Some(BOT),
            None,
        ),
        check(
            "PATCH",
            "/guilds/{guild_id}/roles/{role_id}",
            format!("/guilds/{GUILD}/roles/{role_id}"),
            Some(BOT),
            Some(json!({"color": 5})),
        ),
        check(
            "GET",
            "/guilds/{guild_id}/members",
            format!("/guilds/{GUILD}/members?limit=10"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/members/search",
            format!("/guilds/{GUILD}/members/search?query=a&limit=10"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/members/{user_id}",
            format!("/guilds/{GUILD}/members/{BOB_ID}"),
            Some(BOT),
            None,
        ),
        check(
            "PATCH",
            "/guilds/{guild_id}/members/{user_id}",
            format!("/guilds/{GUILD}/members/{BOB_ID}"),
            Some(BOT),
            Some(json!({"nick": "B"})),
        ),
        check(
            "PATCH",
            "/guilds/{guild_id}/members/@me",
            format!("/guilds/{GUILD}/members/@me"),
            Some(BOT),
            Some(json!({"nick": "botty"})),
        ),
        check(
            "PUT",
            "/guilds/{guild_id}/members/{user_id}",
            format!("/guilds/{GUILD}/members/{CAROL_ID}"),
            Some(BOT),
            Some(json!({"access_token": "t"})),
        ),
        check(
            "GET",
            "/guilds/{guild_id}/integrations",
            format!("/guilds/{GUILD}/integrations"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/vanity-url",
            format!("/guilds/{GUILD}/vanity-url"),
            Some(BOT),
            None,
        ),
        check(
            "POST",
            "/guilds/{guild_id}/bulk-ban",
            format!("/guilds/{GUILD}/bulk-ban"),
            Some(BOT),
            Some(json!({"user_ids": [CAROL_ID, "100000000000000088"]})),
        ),
        check(
            "GET",
            "/guilds/{guild_id}/invites",
            format!("/guilds/{GUILD}/invites"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/guilds/{guild_id}/webhooks",
            format!("/guilds/{GUILD}/webhooks"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}",
            format!("/channels/{GENERAL}"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}",
            format!("/channels/{VOICE}"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}",
            format!("/channels/{CATEGORY}"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}",
            format!("/channels/{FORUM}"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}",
            format!("/channels/{NEWS}"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}",
            format!("/channels/{thread_id}"),
            Some(BOT),
            None,
        ),
        check(
            "PATCH",
            "/channels/{channel_id}",
            format!("/channels/{GENERAL}"),
            Some(BOT),
            Some(json!({"topic": "schema"})),
        ),
        check(
            "DELETE",
            "/channels/{channel_id}",
            format!("/channels/{}", doomed["id"].as_str().unwrap()),
            Some(BOT),
            None,
        ),
        check(
            "POST",
            "/channels/{channel_id}/invites",
            format!("/channels/{GENERAL}/invites"),
            Some(BOT),
            Some(json!({"unique": true})),
        ),
        check(
            "GET",
            "/channels/{channel_id}/invites",
            format!("/channels/{GENERAL}/invites"),
            Some(BOT),
            None,
        ),
        check(
            "POST",
            "/channels/{channel_id}/threads",
            format!("/channels/{GENERAL}/threads"),
            Some(BOT),
            Some(json!({"name": "another", "type": 11})),
        ),
        check(
            "POST",
            "/channels/{channel_id}/threads",
            format!("/channels/{FORUM}/threads"),
            Some(BOT),
            Some(json!({"name": "post", "message": {"content": "x"}})),
        ),
        check(
            "POST",
            "/channels/{channel_id}/messages/{message_id}/threads",
            format!(
                "/channels/{GENERAL}/messages/{}/threads",
                starter["id"].as_str().unwrap()
            ),
            Some(BOT),
            Some(json!({"name": "from message"})),
        ),
        check(
            "GET",
            "/channels/{channel_id}/thread-members",
            format!("/channels/{thread_id}/thread-members"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}/thread-members/{user_id}",
            format!("/channels/{thread_id}/thread-members/{BOT_ID}?with_member=true"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}/threads/archived/public",
            format!("/channels/{GENERAL}/threads/archived/public"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}/threads/archived/private",
            format!("/channels/{GENERAL}/threads/archived/private"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}/users/@me/threads/archived/private",
            format!("/channels/{GENERAL}/users/@me/threads/archived/private"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}/messages",
            format!("/channels/{GENERAL}/messages"),
            Some(BOT),
            None,
        ),
        check(
            "POST",
            "/channels/{channel_id}/messages",
            format!("/channels/{GENERAL}/messages"),
            Some(BOT),
            Some(json!({"content": "schema", "nonce": "1"})),
        ),
        check(
            "GET",
            "/channels/{channel_id}/messages/{message_id}",
            format!("/channels/{GENERAL}/messages/{message_id}"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}/messages/{message_id}",
            format!(
                "/channels/{GENERAL}/messages/{}",
                reply["id"].as_str().unwrap()
            ),
            Some(BOT),
            None,
        ),
        check(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            format!("/channels/{GENERAL}/messages/{message_id}"),
            Some(BOT),
            Some(json!({"content": "edited"})),
        ),
        check(
            "POST",
            "/channels/{channel_id}/messages/{message_id}/crosspost",
            format!(
                "/channels/{NEWS}/messages/{}/crosspost",
                news["id"].as_str().unwrap()
            ),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}",
            format!("/channels/{GENERAL}/messages/{message_id}/reactions/%F0%9F%91%8D"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}/pins",
            format!("/channels/{GENERAL}/pins"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}/messages/pins",
            format!("/channels/{GENERAL}/messages/pins"),
            Some(BOT),
            None,
        ),
        check(
            "POST",
            "/channels/{channel_id}/webhooks",
            format!("/channels/{GENERAL}/webhooks"),
            Some(BOT),
            Some(json!({"name": "second"})),
        ),
        check(
            "GET",
            "/channels/{channel_id}/webhooks",
            format!("/channels/{GENERAL}/webhooks"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/webhooks/{webhook_id}",
            format!("/webhooks/{hook_id}"),
            Some(BOT),
            None,
        ),
        check(
            "PATCH",
            "/webhooks/{webhook_id}",
            format!("/webhooks/{hook_id}"),
            Some(BOT),
            Some(json!({"name": "renamed"})),
        ),
        check(
            "GET",
            "/webhooks/{webhook_id}/{webhook_token}",
            format!("/webhooks/{hook_id}/{hook_token}"),
            None,
            None,
        ),
        check(
            "PATCH",
            "/webhooks/{webhook_id}/{webhook_token}",
            format!("/webhooks/{hook_id}/{hook_token}"),
            None,
            Some(json!({"name": "again"})),
        ),
        check(
            "POST",
            "/webhooks/{webhook_id}/{webhook_token}",
            format!("/webhooks/{hook_id}/{hook_token}?wait=true"),
            None,
            Some(json!({"content": "hi"})),
        ),
        check(
            "GET",
            "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
            format!("/webhooks/{hook_id}/{hook_token}/messages/{hook_message_id}"),
            None,
            None,
        ),
        check(
            "PATCH",
            "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
            format!("/webhooks/{hook_id}/{hook_token}/messages/{hook_message_id}"),
            None,
            Some(json!({"content": "edited"})),
        ),
        check(
            "GET",
            "/channels/{channel_id}/polls/{message_id}/answers/{answer_id}",
            format!("/channels/{GENERAL}/polls/{poll}/answers/1"),
            Some(BOT),
            None,
        ),
        check(
            "POST",
            "/channels/{channel_id}/polls/{message_id}/expire",
            format!("/channels/{GENERAL}/polls/{poll}/expire"),
            Some(ALICE),
            Some(json!({})),
        ),
        check("GET", "/oauth2/@me", "/oauth2/@me".into(), Some(BOT), None),
        check(
            "GET",
            "/oauth2/userinfo",
            "/oauth2/userinfo".into(),
            Some(ALICE),
            None,
        ),
        check("GET", "/oauth2/keys", "/oauth2/keys".into(), None, None),
        check(
            "GET",
            "/guilds/{guild_id}/messages/search",
            format!("/guilds/{GUILD}/messages/search?content=hello"),
            Some(BOT),
            None,
        ),
        check(
            "GET",
            "/channels/{channel_id}/threads/search",
            format!("/channels/{GENERAL}/threads/search"),
            Some(BOT),
            None,
        ),
        check(
            "PATCH",
            "/applications/{application_id}",
            format!("/applications/{BOT_ID}"),
            Some(BOT),
            Some(json!({"description": "schema"})),
        ),
        check(
            "PUT",
            "/guilds/{guild_id}/incident-actions",
            format!("/guilds/{GUILD}/incident-actions"),
            Some(ALICE),
            Some(json!({"invites_disabled_until": null})),
        ),
        check(
            "POST",
            "/webhooks/{webhook_id}/{webhook_token}/slack",
            format!("/webhooks/{hook_id}/{hook_token}/slack"),
            None,
            Some(json!({"text": "from slack"})),
        ),
    ];
    let schemas = Schemas::new(
        &spec,
        checks.iter().map(|c| c.template).chain(["/invites/{code}"]),
    );
    // A negative control: the validator does reject a wrong shape.
    assert!(!schemas
        .violations("GET", "/users/@me", 200, &json!({"id": 5}))
        .unwrap()
        .is_empty());
    let mut failures = Vec::new();
    let mut validated = 0;
    for check in &checks {
        let reply = api.send(
            check.method,
            &check.path,
            check.token,
            check.body.as_ref(),
            &[],
        );
        if !(200..300).contains(&reply.status) {
            failures.push(format!(
                "{} {} answered {}: {}",
                check.method, check.path, reply.status, reply.raw
            ));
            continue;
        }
        match schemas.violations(check.method, check.template, reply.status, &reply.body) {
            Ok(problems) if problems.is_empty() => validated += 1,
            Ok(problems) => failures.push(format!(
                "{} {} ({}):\n    {}",
                check.method,
                check.template,
                check.path,
                problems.join("\n    ")
            )),
            Err(missing) => failures.push(missing),
        }
    }
    // The invite routes need the code of an invite created above.
    let invite = expect(
        &api.post(
            &format!("/channels/{GENERAL}/invites"),
            BOT,
            json!({"unique": true}),
        ),
        200,
    )
    .clone();
    let code = invite["code"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/invites/{code}?with_counts=true")),
        ("DELETE", format!("/invites/{code}")),
    ] {
        let reply = api.send(method, &path, Some(BOT), None, &[]);
        match schemas.violations(method, "/invites/{code}", reply.status, &reply.body) {
            Ok(problems) if problems.is_empty() => validated += 1,
            Ok(problems) => failures.push(format!(
                "{method} /invites/{{code}}: {}",
                problems.join("; ")
            )),
            Err(missing) => failures.push(missing),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} answers do not match the spec:\n{}",
        failures.len(),
        checks.len() + 2,
        failures.join("\n")
    );
    assert_eq!(validated, checks.len() + 2);
}

#[test]
fn error_answers_match_the_documented_error_shape() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let errors = [
        api.get("/channels/1", BOT),
        api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": "x".repeat(3000)}),
        ),
        api.get(&format!("/channels/{SECRET}"), BOB),
    ];
    // The spec types every error code as an integer, but Discord's field errors carry string
    // codes ("BASE_TYPE_REQUIRED"); we follow Discord, so the nested `errors` is checked by
    // hand and the top level against the spec's `Error` schema.
    let mut root = spec.clone();
    root["$ref"] = json!("#/components/schemas/Error");
    let validator = jsonschema::options().build(&root).unwrap();
    for reply in &errors {
        let problems: Vec<String> = validator
            .iter_errors(&reply.body)
            .map(|e| e.to_string())
            .collect();
        assert!(problems.is_empty(), "{}: {problems:?}", reply.raw);
    }
    let field = &errors[1].body["errors"]["content"]["_errors"][0];
    assert!(
        field["code"].is_string() && field["message"].is_string(),
        "{}",
        errors[1].raw
    );
}

/// The spellings Discord accepts for a query parameter of `schema`, and one it refuses
/// (to tell routes that read the parameter from those that ignore it); None for types read as
/// plain text.
fn spellings(spec: &Value, schema: &Value) -> Option<(Vec<String>, &'static str)> {
    let schema = match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            if name == "SnowflakeType" {
                return Some((vec!["1".into(), "%221%22".into()], "abc"));
            }
            &spec["components"]["schemas"][name]
        }
        None => schema,
    };
    match schema["type"].as_str() {
        Some("boolean") => Some((
            ["true", "false", "True", "False", "1", "0"]
                .map(String::from)
                .to_vec(),
            "maybe",
        )),
        Some("integer") | Some("number") => {
            let low = schema["minimum"].as_i64().unwrap_or(1).max(1);
            let value = schema["maximum"].as_i64().map_or(low, |high| low.min(high));
            Some((
                vec![
                    format!("{value}"),
                    format!("%22{value}%22"),
                    format!("%20{value}%20"),
                ],
                "x",
            ))
        }
        _ => None,
    }
}

/// A path of `template` with the fixture's ids in its placeholders.
fn fill(template: &str) -> String {
    let mut path = String::new();
    for segment in template.split('/').skip(1) {
        let value = match segment {
            "{guild_id}" => GUILD,
            "{channel_id}" => GENERAL,
            "{user_id}" | "{application_id}" | "{bot_user_id}" => BOT_ID,
            "{role_id}" => MODS_ROLE,
            s if s.starts_with('{') => "1",
            s => s,
        };
        path.push('/');
        path.push_str(value);
    }
    path
}

/// Item 1 of issue 22: every query parameter of the spec, in every spelling Discord accepts
/// (booleans true/false/True/False/1/0, numbers bare, quoted or padded), passes the served
/// route's extractor: no route answers 50035 naming the parameter. A refused spelling shows
/// which routes read the parameter, so the audit is not vacuous.
#[test]
fn every_query_parameter_accepts_discords_spellings() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let names_param = |reply: &Reply, name: &str| {
        reply.status == 400 && reply.code() == 50035 && !reply.body["errors"][name].is_null()
    };
    let (mut refused, mut checked, mut reading) = (Vec::new(), 0, 0);
    for (template, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let Some(parameters) = operation["parameters"].as_array() else {
                continue;
            };
            for parameter in parameters {
                let parameter = match parameter["$ref"].as_str() {
                    Some(r) => &spec["components"]["parameters"][r.rsplit('/').next().unwrap()],
                    None => parameter,
                };
                let name = parameter["name"].as_str().unwrap_or_default();
                if parameter["in"] != "query" {
                    continue;
                }
                let Some((accepted, wrong)) = spellings(&spec, &parameter["schema"]) else {
                    continue;
                };
                // The routes with query parameters that change things are webhook executions
                // and edits: with the placeholder ids they find nothing to change.
                let path = fill(template);
                let verb = method.to_uppercase();
                let body = (verb != "GET").then(|| json!({}));
                let send = |value: &str| {
                    let path = format!("{path}?{name}={value}");
                    api.send(&verb, &path, Some(BOT), body.as_ref(), &[])
                };
                if names_param(&send(wrong), name) {
                    reading += 1;
                }
                for value in accepted {
                    checked += 1;
                    let reply = send(&value);
                    if names_param(&reply, name) {
                        refused.push(format!("{verb} {template}?{name}={value}: {}", reply.raw));
                    }
                }
            }
        }
    }
    assert!(
        refused.is_empty(),
        "Discord's spellings refused:\n{}",
        refused.join("\n")
    );
    assert!(checked > 150, "only {checked} spellings checked");
    assert!(
        reading >= 30,
        "only {reading} parameters are read by a served route"
    );
}

/// Form bodies read like query strings: `application/x-www-form-urlencoded` fields, or a
/// multipart body's text fields without `payload_json`, become the JSON body's fields.
#[test]
fn form_bodies_are_read_as_discord_reads_them() {
    let server = Server::on_fixture();
    let api = server.api();
    let path = format!("/channels/{GENERAL}/messages");
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let reply = api.send_raw(
        "POST",
        &path,
        BOT,
        &form,
        "content=from+a+form&tts=False&flags=%224096%22",
    );
    let message = expect(&reply, 200);
    assert_eq!(message["content"], "from a form");
    assert_eq!(message["tts"], false);
    assert_eq!(message["flags"], 4096);
    let reply = api.send_raw("POST", &path, BOT, &form, "tts=maybe&content=x");
    expect_error(&reply, 400, 50035);
    assert_eq!(
        reply.body["errors"]["tts"]["_errors"][0]["code"],
        "BASE_TYPE_BOOLEAN"
    );

    let boundary = "dmitmboundary";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nmultipart field\r\n--{boundary}--\r\n"
    );
    let kind = format!("multipart/form-data; boundary={boundary}");
    let reply = api.send_raw("POST", &path, BOT, &[("content-type", &kind)], &multipart);
    assert_eq!(expect(&reply, 200)["content"], "multipart field");
}
