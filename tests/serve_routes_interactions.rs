//! Interactions against the built binary: the `/_mitm/interactions` test hook, the callback
//! route, `@original`, followups, component updates, errors, schema conformance and twilight.
mod serve_routes_support;
mod serve_support;

use serde_json::{json, Value};
use serve_routes_support::*;
use serve_support::*;

const APP: &str = BOT_ID;

fn setup(api: &Api) {
    expect(
        &api.post(
            &format!("/applications/{APP}/guilds/{GUILD}/commands"),
            BOT,
            json!({"name": "echo", "description": "Echoes",
                   "options": [{"type": 3, "name": "text", "description": "t", "required": true}]}),
        ),
        201,
    );
}

/// Bob invokes `/echo text:<text>` in #general; returns the INTERACTION_CREATE payload.
fn invoke(api: &Api, text: &str) -> Value {
    expect(
        &api.post(
            "/_mitm/interactions",
            BOB,
            json!({"application_id": APP, "channel_id": GENERAL, "name": "echo",
                   "options": [{"name": "text", "type": 3, "value": text}]}),
        ),
        200,
    )
    .clone()
}

fn callback_path(interaction: &Value) -> String {
    format!(
        "/interactions/{}/{}/callback",
        interaction["id"].as_str().unwrap(),
        interaction["token"].as_str().unwrap()
    )
}

fn hook_path(interaction: &Value) -> String {
    format!("/webhooks/{APP}/{}", interaction["token"].as_str().unwrap())
}

fn anonymous(api: &Api, method: &str, path: &str, body: Option<Value>) -> Reply {
    api.send(method, path, None, body.as_ref(), &[])
}

#[test]
fn invoking_a_command_makes_an_interaction() {
    let server = Server::on_fixture();
    let api = server.api();
    setup(&api);

    let interaction = invoke(&api, "hello");
    assert_eq!(interaction["type"], 2);
    assert_eq!(interaction["application_id"], APP);
    assert_eq!(interaction["guild_id"], GUILD);
    assert_eq!(interaction["channel_id"], GENERAL);
    assert_eq!(interaction["member"]["user"]["id"], BOB_ID);
    assert!(interaction["member"]["permissions"].is_string());
    assert_eq!(interaction["data"]["name"], "echo");
    assert_eq!(interaction["data"]["options"][0]["value"], "hello");
    assert!(interaction["token"].as_str().unwrap().len() > 20);

    expect_error(
        &api.post(
            "/_mitm/interactions",
            BOB,
            json!({"application_id": APP, "channel_id": GENERAL, "name": "nope"}),
        ),
        404,
        10063,
    );
    let missing = api.post(
        "/_mitm/interactions",
        BOB,
        json!({"application_id": APP, "channel_id": GENERAL, "name": "echo"}),
    );
    expect_error(&missing, 400, 50035);
    assert!(missing.body["errors"]["options"].is_object());
    expect_error(
        &api.post(
            "/_mitm/interactions",
            BOT,
            json!({"application_id": APP, "channel_id": GENERAL, "name": "echo"}),
        ),
        403,
        20001,
    );
    // Bob cannot see #secret; carol is in no guild.
    expect_error(
        &api.post(
            "/_mitm/interactions",
            BOB,
            json!({"application_id": APP, "channel_id": SECRET, "name": "echo"}),
        ),
        403,
        50001,
    );
    expect_error(
        &api.post(
            "/_mitm/interactions",
            CAROL,
            json!({"application_id": APP, "channel_id": GENERAL, "name": "echo"}),
        ),
        403,
        50001,
    );
}

/// discord.py sends `with_response=True`; Discord reads `True`/`true`/`1` and `False`/`false`/`0`
/// as booleans in every query string, and names the parameter when a value is none of them.
#[test]
fn callback_query_booleans_are_read_as_discord_reads_them() {
    let server = Server::on_fixture();
    let api = server.api();
    setup(&api);
    let interaction = invoke(&api, "py");
    let callback = callback_path(&interaction);
    let reply = json!({"type": 4, "data": {"content": "from discord.py"}});
    let bad = anonymous(
        &api,
        "POST",
        &format!("{callback}?with_response=yes"),
        Some(reply.clone()),
    );
    expect_error(&bad, 400, 50035);
    let error = &bad.body["errors"]["with_response"]["_errors"][0];
    assert_eq!(error["code"], "BASE_TYPE_BOOLEAN");
    assert_eq!(error["message"], "Value \"yes\" is not boolean.");
    let answered = anonymous(
        &api,
        "POST",
        &format!("{callback}?with_response=True"),
        Some(reply),
    );
    let answered = expect(&answered, 200);
    assert_eq!(
        answered["resource"]["message"]["content"],
        "from discord.py"
    );

    let quiet = invoke(&api, "quiet");
    let reply = json!({"type": 4, "data": {"content": "no body"}});
    let path = format!("{}?with_response=0", callback_path(&quiet));
    expect(&anonymous(&api, "POST", &path, Some(reply)), 204);
}

#[test]
fn callback_original_and_followups() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    setup(&api);
    let interaction = invoke(&api, "hi");
    let callback = callback_path(&interaction);
    let hook = hook_path(&interaction);

    // Followups need an acknowledged interaction; @original needs a response.
    expect_error(
        &anonymous(&api, "POST", &hook, Some(json!({"content": "early"}))),
        404,
        10015,
    );
    expect_error(
        &anonymous(&api, "GET", &format!("{hook}/messages/@original"), None),
        404,
        10008,
    );
    let wrong_token = format!(
        "/interactions/{}/not-the-token/callback",
        interaction["id"].as_str().unwrap()
    );
    expect_error(
        &anonymous(
            &api,
            "POST",
            &wrong_token,
            Some(json!({"type": 4, "data": {"content": "x"}})),
        ),
        404,
        10062,
    );
    let wrong_type = anonymous(
        &api,
        "POST",
        &callback,
        Some(json!({"type": 8, "data": {"choices": []}})),
    );
    expect_error(&wrong_type, 400, 50035);
    assert!(wrong_type.body["errors"]["type"].is_object());
    expect_error(
        &anonymous(
            &api,
            "POST",
            &callback,
            Some(json!({"type": 4, "data": {}})),
        ),
        400,
        50006,
    );

    let answered = anonymous(
        &api,
        "POST",
        &format!("{callback}?with_response=true"),
        Some(json!({"type": 4, "data": {"content": format!("echo: hi <@{BOB_ID}>")}})),
    );
    let answered = expect_documented(
        &spec,
        &answered,
        200,
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
    );
    let message = &answered["resource"]["message"];
    assert_eq!(answered["resource"]["type"], 4);
    assert_eq!(message["content"], format!("echo: hi <@{BOB_ID}>"));
    assert_eq!(message["type"], 20);
    assert_eq!(message["webhook_id"], APP);
    assert_eq!(message["application_id"], APP);
    assert_eq!(message["mentions"][0]["id"], BOB_ID);
    assert_eq!(message["interaction_metadata"]["user"]["id"], BOB_ID);
    let original_id = message["id"].as_str().unwrap().to_string();
    assert_eq!(
        answered["interaction"]["response_message_id"],
        original_id.as_str()
    );

    expect_error(
        &anonymous(
            &api,
            "POST",
            &callback,
            Some(json!({"type": 4, "data": {"content": "twice"}})),
        ),
        400,
        40060,
    );
    // The response is a real channel message.
    let in_channel = expect(
        &api.get(&format!("/channels/{GENERAL}/messages/{original_id}"), BOT),
        200,
    )
    .clone();
    assert_eq!(in_channel["content"], message["content"]);

    let original = format!("{hook}/messages/@original");
    let fetched = expect_documented(
        &spec,
        &anonymous(&api, "GET", &original, None),
        200,
        "GET",
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
    );
    assert_eq!(fetched["id"], original_id.as_str());
    let edited = expect(
        &anonymous(&api, "PATCH", &original, Some(json!({"content": "edited"}))),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PATCH",
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
        200,
        &edited,
    );
    assert_eq!(edited["content"], "edited");
    assert!(edited["edited_timestamp"].is_string());

    let followup = expect(
        &anonymous(
            &api,
            "POST",
            &hook,
            Some(json!({"content": "more", "flags": 64})),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "POST",
        "/webhooks/{webhook_id}/{webhook_token}",
        200,
        &followup,
    );
    assert_eq!(followup["flags"], 64);
    let followup_path = format!("{hook}/messages/{}", followup["id"].as_str().unwrap());
    assert_eq!(
        expect(&anonymous(&api, "GET", &followup_path, None), 200)["content"],
        "more"
    );
    assert_eq!(
        expect(
            &anonymous(
                &api,
                "PATCH",
                &followup_path,
                Some(json!({"content": "less"}))
            ),
            200
        )["content"],
        "less"
    );
    // Another message of the channel is not this interaction's to read.
    let other = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOT,
            json!({"content": "x"}),
        ),
        200,
    )
    .clone();
    expect_error(
        &anonymous(
            &api,
            "GET",
            &format!("{hook}/messages/{}", other["id"].as_str().unwrap()),
            None,
        ),
        404,
        10008,
    );
    expect(&anonymous(&api, "DELETE", &followup_path, None), 204);
    expect_error(&anonymous(&api, "GET", &followup_path, None), 404, 10008);
    expect(&anonymous(&api, "DELETE", &original, None), 204);
    expect_error(&anonymous(&api, "GET", &original, None), 404, 10008);
    expect_error(
        &api.get(&format!("/channels/{GENERAL}/messages/{original_id}"), BOT),
        404,
        10008,
    );
}

#[test]
fn deferred_responses_and_component_updates() {
    let server = Server::on_fixture();
    let api = server.api();
    setup(&api);

    let interaction = invoke(&api, "slow");
    expect(
        &anonymous(
            &api,
            "POST",
            &callback_path(&interaction),
            Some(json!({"type": 5, "data": {"flags": 64}})),
        ),
        204,
    );
    let original = format!("{}/messages/@original", hook_path(&interaction));
    let loading = expect(&anonymous(&api, "GET", &original, None), 200).clone();
    assert_eq!(loading["flags"], 64 | 128, "ephemeral + loading");
    let done = expect(
        &anonymous(&api, "PATCH", &original, Some(json!({"content": "done"}))),
        200,
    )
    .clone();
    assert_eq!(done["flags"], 64, "no longer loading");
    assert_eq!(done["content"], "done");

    // A response with a button, then bob clicks it and the bot updates the message.
    let interaction = invoke(&api, "buttons");
    let buttons = json!([{"type": 1, "components": [
        {"type": 2, "style": 1, "label": "Go", "custom_id": "go"}]}]);
    expect(
        &anonymous(
            &api,
            "POST",
            &callback_path(&interaction),
            Some(json!({"type": 4, "data": {"content": "press", "components": buttons}})),
        ),
        204,
    );
    let message = expect(
        &anonymous(
            &api,
            "GET",
            &format!("{}/messages/@original", hook_path(&interaction)),
            None,
        ),
        200,
    )
    .clone();
    let message_id = message["id"].as_str().unwrap();
    let click = expect(
        &api.post(
            "/_mitm/interactions",
            BOB,
            json!({"application_id": APP, "channel_id": GENERAL, "type": 3,
                   "message_id": message_id, "custom_id": "go"}),
        ),
        200,
    )
    .clone();
    assert_eq!(click["type"], 3);
    assert_eq!(click["data"]["custom_id"], "go");
    assert_eq!(click["message"]["id"], message_id);
    // A modal is a valid answer to a click; a bad one is refused with the fields named.
    let bad_modal = anonymous(
        &api,
        "POST",
        &callback_path(&click),
        Some(json!({"type": 9, "data": {"custom_id": "m", "components": []}})),
    );
    expect_error(&bad_modal, 400, 50035);
    assert!(bad_modal.body["errors"]["data"]["title"].is_object());
    expect(
        &anonymous(
            &api,
            "POST",
            &callback_path(&click),
            Some(json!({"type": 7, "data": {"content": "pressed", "components": []}})),
        ),
        204,
    );
    let updated = expect(
        &api.get(&format!("/channels/{GENERAL}/messages/{message_id}"), BOT),
        200,
    )
    .clone();
    assert_eq!(updated["content"], "pressed");
    assert_eq!(updated["components"], json!([]));

    // Components on someone else's message cannot be clicked for this app.
    let bobs = expect(
        &api.post(
            &format!("/channels/{GENERAL}/messages"),
            BOB,
            json!({"content": "mine"}),
        ),
        200,
    )
    .clone();
    expect_error(
        &api.post(
            "/_mitm/interactions",
            BOB,
            json!({"application_id": APP, "channel_id": GENERAL, "type": 3,
                   "message_id": bobs["id"], "custom_id": "go"}),
        ),
        400,
        50035,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_answers_an_interaction() {
    use twilight_model::http::interaction::{
        InteractionResponse, InteractionResponseData, InteractionResponseType,
    };
    use twilight_model::id::Id;

    let server = tokio::task::spawn_blocking(|| {
        let server = Server::on_fixture();
        setup(&server.api());
        server
    })
    .await
    .unwrap();
    let base = server.base();
    let interaction = tokio::task::spawn_blocking(move || invoke(&Api::new(&base), "twilight"))
        .await
        .unwrap();
    let http = server.twilight(BOT);
    let client = http.interaction(Id::new(APP.parse().unwrap()));
    let token = interaction["token"].as_str().unwrap().to_string();
    let id = Id::new(interaction["id"].as_str().unwrap().parse().unwrap());

    let response = InteractionResponse {
        kind: InteractionResponseType::ChannelMessageWithSource,
        data: Some(InteractionResponseData {
            content: Some("from twilight".into()),
            ..Default::default()
        }),
    };
    client.create_response(id, &token, &response).await.unwrap();
    let original = client
        .response(&token)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(original.content, "from twilight");
    assert_eq!(original.author.id.get().to_string(), APP);
    let updated = client
        .update_response(&token)
        .content(Some("updated by twilight"))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(updated.content, "updated by twilight");
    let followup = client
        .create_followup(&token)
        .content("a followup")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(followup.content, "a followup");
    let again = client
        .followup(&token, followup.id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(again.id, followup.id);
    client.delete_followup(&token, followup.id).await.unwrap();
    client.delete_response(&token).await.unwrap();
    drop(server);
}
