//! Application commands against the built binary: global and guild CRUD, bulk overwrite,
//! command permissions, Discord's errors, schema conformance, persistence, and twilight-http.
mod serve_routes_support;
mod serve_support;

use serde_json::{json, Value};
use serve_routes_support::*;
use serve_support::*;

const APP: &str = BOT_ID;

fn global() -> String {
    format!("/applications/{APP}/commands")
}

fn guild() -> String {
    format!("/applications/{APP}/guilds/{GUILD}/commands")
}

fn ping_command() -> Value {
    json!({
        "name": "ping",
        "description": "Replies with pong",
        "options": [
            {"type": 3, "name": "flavour", "description": "How to pong", "required": true,
             "choices": [{"name": "Loud", "value": "loud"}, {"name": "Quiet", "value": "quiet"}]},
            {"type": 4, "name": "times", "description": "How often", "min_value": 1, "max_value": 5},
            {"type": 7, "name": "where", "description": "Channel", "channel_types": [0, 5]}
        ],
        "default_member_permissions": "32"
    })
}

#[test]
fn global_commands_crud_upsert_and_errors() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();

    let empty = expect(&api.get(&global(), BOT), 200).clone();
    assert_eq!(empty, json!([]));
    conforms(
        &spec,
        "GET",
        "/applications/{application_id}/commands",
        200,
        &empty,
    );

    let created = expect_documented(
        &spec,
        &api.post(&global(), BOT, ping_command()),
        201,
        "POST",
        "/applications/{application_id}/commands",
    );
    assert_eq!(created["application_id"], APP);
    assert_eq!(created["type"], 1);
    assert_eq!(created["default_member_permissions"], "32");
    assert_eq!(created["dm_permission"], true);
    assert_eq!(created["options"][0]["required"], true);
    assert_eq!(created["options"][0]["choices"][1]["value"], "quiet");
    assert_eq!(created["options"][1]["min_value"], 1);
    assert!(created.get("guild_id").is_none());
    let id = created["id"].as_str().unwrap().to_string();

    // Same name and type: Discord overwrites the command, keeps its id, answers 200.
    let again = expect(
        &api.post(
            &global(),
            BOT,
            json!({"name": "ping", "description": "Pong, again"}),
        ),
        200,
    )
    .clone();
    assert_eq!(again["id"], id.as_str());
    assert_ne!(again["version"], created["version"]);
    assert!(again.get("options").is_none());

    // A user command may share the name (different type) and has an empty description.
    let user_command = expect(
        &api.post(&global(), BOT, json!({"name": "Ping Them", "type": 2})),
        201,
    )
    .clone();
    assert_eq!(user_command["description"], "");

    let one = expect_documented(
        &spec,
        &api.get(&format!("{}/{id}", global()), BOT),
        200,
        "GET",
        "/applications/{application_id}/commands/{command_id}",
    );
    assert_eq!(one["description"], "Pong, again");

    let edited = expect(
        &api.patch(
            &format!("{}/{id}", global()),
            BOT,
            json!({"description": "Edited", "nsfw": true}),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PATCH",
        "/applications/{application_id}/commands/{command_id}",
        200,
        &edited,
    );
    assert_eq!(edited["description"], "Edited");
    assert_eq!(edited["name"], "ping");
    assert_eq!(edited["nsfw"], true);
    assert_ne!(edited["version"], again["version"]);

    // The app owner (alice) may manage them too; other users may not.
    expect(&api.get(&global(), ALICE), 200);
    expect_error(&api.get(&global(), BOB), 403, 50001);
    expect_error(&api.get("/applications/1/commands", BOT), 404, 10002);
    expect_error(&api.get(&format!("{}/1", global()), BOT), 404, 10063);
    expect_error(&api.delete(&format!("{}/1", global()), BOT), 404, 10063);
    expect_error(&api.get(&global(), "nobody"), 401, 0);

    let list = expect(&api.get(&global(), BOT), 200).clone();
    assert_eq!(list.as_array().unwrap().len(), 2);

    expect(&api.delete(&format!("{}/{id}", global()), BOT), 204);
    expect_error(&api.get(&format!("{}/{id}", global()), BOT), 404, 10063);
    assert_eq!(
        expect(&api.get(&global(), BOT), 200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn invalid_commands_get_50035_at_the_offending_fields() {
    let server = Server::on_fixture();
    let api = server.api();

    let reply = api.post(
        &global(),
        BOT,
        json!({
            "name": "Not Valid",
            "options": [
                {"type": 3, "name": "first", "description": "optional"},
                {"type": 3, "name": "second", "description": "required", "required": true},
                {"type": 5, "name": "flag", "description": "b", "choices": [{"name": "x", "value": "y"}]},
                {"type": 42, "name": "weird", "description": "w"}
            ]
        }),
    );
    expect_error(&reply, 400, 50035);
    let errors = &reply.body["errors"];
    assert_eq!(
        errors["name"]["_errors"][0]["code"], "APPLICATION_COMMAND_INVALID_NAME",
        "{}",
        reply.raw
    );
    assert_eq!(
        errors["description"]["_errors"][0]["code"],
        "BASE_TYPE_BAD_LENGTH"
    );
    assert_eq!(
        errors["options"]["1"]["required"]["_errors"][0]["code"],
        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID"
    );
    assert!(errors["options"]["2"]["choices"]["_errors"].is_array());
    assert_eq!(
        errors["options"]["3"]["type"]["_errors"][0]["code"],
        "BASE_TYPE_CHOICES"
    );

    // Subcommands may not be mixed with plain options; message commands take no description.
    let mixed = api.post(
        &global(),
        BOT,
        json!({"name": "mixed", "description": "m", "options": [
            {"type": 1, "name": "sub", "description": "s"},
            {"type": 3, "name": "text", "description": "t"}]}),
    );
    expect_error(&mixed, 400, 50035);
    assert!(mixed.body["errors"]["options"]["_errors"].is_array());
    let message_command = api.post(
        &global(),
        BOT,
        json!({"name": "Quote", "type": 3, "description": "nope"}),
    );
    expect_error(&message_command, 400, 50035);
    assert!(message_command.body["errors"]["description"].is_object());

    // Nothing was stored by the failed attempts.
    assert_eq!(expect(&api.get(&global(), BOT), 200), &json!([]));

    // Renaming onto another command's name is refused.
    let a = expect(
        &api.post(&global(), BOT, json!({"name": "alpha", "description": "a"})),
        201,
    )
    .clone();
    expect(
        &api.post(&global(), BOT, json!({"name": "beta", "description": "b"})),
        201,
    );
    let clash = api.patch(
        &format!("{}/{}", global(), a["id"].as_str().unwrap()),
        BOT,
        json!({"name": "beta"}),
    );
    expect_error(&clash, 400, 40041);
}

#[test]
fn bulk_overwrite_keeps_ids_and_enforces_limits() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let ping = expect(&api.post(&global(), BOT, ping_command()), 201).clone();
    let doomed = expect(
        &api.post(
            &global(),
            BOT,
            json!({"name": "doomed", "description": "d"}),
        ),
        201,
    )
    .clone();

    let replaced = expect(
        &api.put(
            &global(),
            BOT,
            json!([
                {"name": "ping", "description": "Replies with pong"},
                {"name": "echo", "description": "Echoes",
                 "options": [{"type": 3, "name": "text", "description": "t", "required": true}]},
                {"name": "Report", "type": 3}
            ]),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PUT",
        "/applications/{application_id}/commands",
        200,
        &replaced,
    );
    let list = replaced.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["id"], ping["id"], "same name keeps its id");
    let current = api.get(&global(), BOT);
    let names: Vec<&str> = expect(&current, 200)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"echo") && names.contains(&"Report"));
    assert!(!names.contains(&"doomed"));
    expect_error(
        &api.get(
            &format!("{}/{}", global(), doomed["id"].as_str().unwrap()),
            BOT,
        ),
        404,
        10063,
    );

    let duplicate = api.put(
        &global(),
        BOT,
        json!([{"name": "twin", "description": "a"}, {"name": "twin", "description": "b"}]),
    );
    expect_error(&duplicate, 400, 50035);
    assert!(duplicate.body["errors"]["1"]["name"].is_object());

    let too_many: Vec<Value> = (0..101)
        .map(|n| json!({"name": format!("c{n}"), "description": "x"}))
        .collect();
    expect_error(&api.put(&global(), BOT, Value::Array(too_many)), 400, 30032);
    // Failed overwrites change nothing.
    assert_eq!(
        expect(&api.get(&global(), BOT), 200)
            .as_array()
            .unwrap()
            .len(),
        3
    );

    expect(&api.put(&global(), BOT, json!([])), 200);
    assert_eq!(expect(&api.get(&global(), BOT), 200), &json!([]));
}

#[test]
fn guild_commands_and_permissions() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();

    let command = expect_documented(
        &spec,
        &api.post(&guild(), BOT, ping_command()),
        201,
        "POST",
        "/applications/{application_id}/guilds/{guild_id}/commands",
    );
    assert_eq!(command["guild_id"], GUILD);
    assert!(command.get("dm_permission").is_none());
    let id = command["id"].as_str().unwrap().to_string();
    assert_eq!(expect(&api.get(&global(), BOT), 200), &json!([]));
    let listed = expect_documented(
        &spec,
        &api.get(&guild(), BOT),
        200,
        "GET",
        "/applications/{application_id}/guilds/{guild_id}/commands",
    );
    assert_eq!(listed[0]["id"], id.as_str());
    expect_documented(
        &spec,
        &api.get(&format!("{}/{id}", guild()), BOT),
        200,
        "GET",
        "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
    );
    // A global lookup does not find a guild command.
    expect_error(&api.get(&format!("{}/{id}", global()), BOT), 404, 10063);
    expect_error(
        &api.get(&format!("/applications/{APP}/guilds/1/commands"), BOT),
        404,
        10004,
    );

    // Permissions: none yet.
    let all = format!("{}/permissions", guild());
    let single = format!("{}/{id}/permissions", guild());
    let none = expect(&api.get(&all, BOT), 200).clone();
    assert_eq!(none, json!([]));
    expect_error(&api.get(&single, BOT), 404, 10066);

    let body = json!({"permissions": [
        {"id": MODS_ROLE, "type": 1, "permission": true},
        {"id": BOB_ID, "type": 2, "permission": false},
        {"id": GENERAL, "type": 3, "permission": true}]});
    expect_error(&api.put(&single, BOT, body.clone()), 403, 20001);
    expect_error(&api.put(&single, BOB, body.clone()), 403, 50013);
    expect_error(&api.put(&single, CAROL, body.clone()), 403, 50001);
    let bad = api.put(
        &single,
        ALICE,
        json!({"permissions": [{"id": "1", "type": 1, "permission": true}]}),
    );
    expect_error(&bad, 400, 50035);
    assert!(bad.body["errors"]["permissions"]["0"]["id"].is_object());
    expect_error(
        &api.put(&format!("{}/1/permissions", guild()), ALICE, body.clone()),
        404,
        10063,
    );

    let set = expect_documented(
        &spec,
        &api.put(&single, ALICE, body),
        200,
        "PUT",
        "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}/permissions",
    );
    assert_eq!(set["id"], id.as_str());
    assert_eq!(set["application_id"], APP);
    assert_eq!(set["permissions"][1]["permission"], false);
    let fetched = expect_documented(
        &spec,
        &api.get(&single, BOT),
        200,
        "GET",
        "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}/permissions",
    );
    assert_eq!(fetched, set);
    let listed = expect_documented(
        &spec,
        &api.get(&all, BOT),
        200,
        "GET",
        "/applications/{application_id}/guilds/{guild_id}/commands/permissions",
    );
    assert_eq!(listed, json!([set]));

    // Deleting the command drops its permissions.
    expect(&api.delete(&format!("{}/{id}", guild()), BOT), 204);
    assert_eq!(expect(&api.get(&all, BOT), 200), &json!([]));
}

#[test]
fn commands_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, Some(FIXTURE), &["--rate-limit", "off"]).unwrap();
    let created = expect(&server.api().post(&global(), BOT, ping_command()), 201).clone();
    server.stop();
    let server = Server::start_in(&data, None, &["--rate-limit", "off"]).unwrap();
    let list = expect(&server.api().get(&global(), BOT), 200).clone();
    assert_eq!(list, json!([created]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_manages_commands() {
    use twilight_model::application::command::{CommandOption, CommandOptionType, CommandType};
    use twilight_model::id::Id;

    let server = Server::on_fixture_async().await;
    let http = server.twilight(BOT);
    let interaction = http.interaction(Id::new(APP.parse().unwrap()));
    let guild_id = Id::new(GUILD.parse().unwrap());

    let option = CommandOption {
        autocomplete: None,
        channel_types: None,
        choices: None,
        description: "What to say".into(),
        description_localizations: None,
        kind: CommandOptionType::String,
        max_length: Some(50),
        max_value: None,
        min_length: None,
        min_value: None,
        name: "text".into(),
        name_localizations: None,
        options: None,
        required: Some(true),
    };
    let options = [option];
    let command = interaction
        .create_global_command()
        .chat_input("say", "Says something")
        .command_options(&options)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(command.name, "say");
    assert_eq!(command.kind, CommandType::ChatInput);
    assert_eq!(command.options[0].max_length, Some(50));
    let id = command.id.unwrap();

    let listed = interaction
        .global_commands()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let fetched = interaction
        .global_command(id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(fetched.id, Some(id));
    let updated = interaction
        .update_global_command(id)
        .description("Says it louder")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(updated.description, "Says it louder");

    let guild_command = interaction
        .create_guild_command(guild_id)
        .user("Wave")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(guild_command.kind, CommandType::User);
    assert_eq!(guild_command.guild_id, Some(guild_id));
    let in_guild = interaction
        .guild_commands(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(in_guild.len(), 1);

    // Bulk overwrite with the models twilight itself produced.
    let replaced = interaction
        .set_global_commands(std::slice::from_ref(&fetched))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].id, Some(id));
    let permissions = interaction
        .guild_command_permissions(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(permissions.is_empty());

    interaction.delete_global_command(id).await.unwrap();
    let error = interaction.global_command(id).await.unwrap_err();
    assert!(
        matches!(error.kind(), twilight_http::error::ErrorType::Response { status, .. } if status.get() == 404)
    );
    drop(server);
}
