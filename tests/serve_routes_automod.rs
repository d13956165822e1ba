//! Auto-moderation rules against the built binary: CRUD, validation, limits, permissions,
//! schema conformance and twilight-http.
mod serve_routes_support;
mod serve_support;

use serde_json::json;
use serve_routes_support::*;
use serve_support::*;

fn rules() -> String {
    format!("/guilds/{GUILD}/auto-moderation/rules")
}

#[test]
fn automod_rules_lifecycle() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();

    let empty = expect(&api.get(&rules(), BOT), 200).clone();
    assert_eq!(empty, json!([]));
    let keyword = expect(
        &api.post(
            &rules(),
            BOT,
            json!({"name": "No spoilers", "event_type": 1, "trigger_type": 1,
                   "trigger_metadata": {"keyword_filter": ["spoiler*"], "regex_patterns": ["end(ing|game)"]},
                   "actions": [{"type": 1, "metadata": {"custom_message": "No spoilers!"}},
                               {"type": 2, "metadata": {"channel_id": GENERAL}},
                               {"type": 3, "metadata": {"duration_seconds": 60}}],
                   "enabled": true, "exempt_roles": [MODS_ROLE], "exempt_channels": [READONLY]}),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "POST",
        "/guilds/{guild_id}/auto-moderation/rules",
        200,
        &keyword,
    );
    assert_eq!(keyword["creator_id"], BOT_ID);
    assert_eq!(keyword["trigger_metadata"]["allow_list"], json!([]));
    assert_eq!(keyword["actions"][1]["metadata"]["channel_id"], GENERAL);
    let id = keyword["id"].as_str().unwrap().to_string();
    let one = format!("{}/{id}", rules());

    let mentions = expect(
        &api.post(
            &rules(),
            BOT,
            json!({"name": "Mentions", "event_type": 1, "trigger_type": 5,
                   "trigger_metadata": {"mention_total_limit": 5},
                   "actions": [{"type": 1}]}),
        ),
        200,
    )
    .clone();
    assert_eq!(
        mentions["trigger_metadata"]["mention_raid_protection_enabled"],
        false
    );
    assert_eq!(mentions["enabled"], false);

    // Validation, with fields named.
    let bad = api.post(
        &rules(),
        BOT,
        json!({"name": "Bad", "event_type": 1, "trigger_type": 3,
               "actions": [{"type": 3, "metadata": {"duration_seconds": 0}}, {"type": 9}]}),
    );
    expect_error(&bad, 400, 50035);
    assert!(
        bad.body["errors"]["actions"]["0"]["metadata"]["duration_seconds"].is_object(),
        "{}",
        bad.raw
    );
    assert!(bad.body["errors"]["actions"]["0"]["type"].is_object());
    assert!(bad.body["errors"]["actions"]["1"]["type"].is_object());
    let no_keywords = api.post(
        &rules(),
        BOT,
        json!({"name": "Empty", "event_type": 1, "trigger_type": 1, "actions": [{"type": 1}],
               "trigger_metadata": {"regex_patterns": ["(unclosed"]}}),
    );
    expect_error(&no_keywords, 400, 50035);
    assert!(no_keywords.body["errors"]["trigger_metadata"]["regex_patterns"]["0"].is_object());
    // One mention-spam rule per guild.
    let second = api.post(
        &rules(),
        BOT,
        json!({"name": "Again", "event_type": 1, "trigger_type": 5,
               "trigger_metadata": {"mention_total_limit": 3}, "actions": [{"type": 1}]}),
    );
    expect_error(&second, 400, 50035);
    assert_eq!(
        second.body["errors"]["trigger_type"]["_errors"][0]["code"],
        "AUTO_MODERATION_MAX_RULES_OF_TYPE_EXCEEDED"
    );

    // MANAGE_GUILD is required, even to read.
    expect_error(&api.get(&rules(), BOB), 403, 50013);
    expect_error(&api.get(&rules(), CAROL), 403, 50001);
    let unknown = api.get(&format!("{}/1", rules()), BOT);
    assert_eq!(unknown.status, 404, "{}", unknown.raw);
    assert_eq!(unknown.body["message"], "Unknown Auto Moderation Rule");

    let fetched = expect_documented(
        &spec,
        &api.get(&one, BOT),
        200,
        "GET",
        "/guilds/{guild_id}/auto-moderation/rules/{rule_id}",
    );
    assert_eq!(fetched, keyword);
    let edited = expect(
        &api.patch(
            &one,
            BOT,
            json!({"name": "Spoilers", "enabled": false, "exempt_roles": []}),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PATCH",
        "/guilds/{guild_id}/auto-moderation/rules/{rule_id}",
        200,
        &edited,
    );
    assert_eq!(edited["name"], "Spoilers");
    assert_eq!(edited["exempt_roles"], json!([]));
    assert_eq!(edited["trigger_metadata"], keyword["trigger_metadata"]);
    expect_error(
        &api.patch(&one, BOT, json!({"trigger_type": 5})),
        400,
        50035,
    );

    let list = expect_documented(
        &spec,
        &api.get(&rules(), BOT),
        200,
        "GET",
        "/guilds/{guild_id}/auto-moderation/rules",
    );
    assert_eq!(list.as_array().unwrap().len(), 2);
    expect(&api.delete(&one, BOT), 204);
    assert_eq!(api.get(&one, BOT).status, 404);
    let audit = expect(&api.get(&format!("/guilds/{GUILD}/audit-logs"), ALICE), 200).clone();
    let actions = audit_actions(&audit);
    for action in [140, 141, 142] {
        assert!(
            actions.contains(&action),
            "audit action {action} in {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_reads_automod_rules() {
    use twilight_model::id::Id;

    let server = Server::on_fixture_async().await;
    let base = server.base();
    tokio::task::spawn_blocking(move || {
        expect(
            &Api::new(&base).post(
                &rules(),
                BOT,
                json!({"name": "Words", "event_type": 1, "trigger_type": 1,
                       "trigger_metadata": {"keyword_filter": ["bad"]},
                       "actions": [{"type": 1}], "enabled": true}),
            ),
            200,
        );
    })
    .await
    .unwrap();
    let http = server.twilight(BOT);
    let guild_id = Id::new(GUILD.parse().unwrap());
    let rules = http
        .auto_moderation_rules(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].name, "Words");
    let rule = http
        .auto_moderation_rule(guild_id, rules[0].id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(rule.enabled);
    http.delete_auto_moderation_rule(guild_id, rule.id)
        .await
        .unwrap();
    drop(server);
}
