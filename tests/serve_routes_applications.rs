//! Application emojis, entitlements and role connections against the built binary: success,
//! access denials, unknown ids, bad bodies, schema conformance, and twilight-http's models.
mod serve_routes_support;
mod serve_support;

use serde_json::{json, Value};
use serve_routes_support::*;
use serve_support::*;

#[test]
fn application_emojis() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let list = format!("/applications/{BOT_ID}/emojis");

    expect_error(&api.get(&list, BOB), 403, 50001);
    expect_error(&api.get("/applications/1/emojis", BOT), 404, 10002);
    let bad = api.post(&list, BOT, json!({"name": "a b"}));
    expect_error(&bad, 400, 50035);
    assert!(bad.body["errors"]["name"].is_object() && bad.body["errors"]["image"].is_object());

    let emoji = expect(
        &api.post(&list, BOT, json!({"name": "wumpus", "image": PIXEL_PNG})),
        201,
    )
    .clone();
    conforms(
        &spec,
        "POST",
        "/applications/{application_id}/emojis",
        201,
        &emoji,
    );
    assert_eq!(emoji["user"]["id"], BOT_ID);
    expect_error(
        &api.post(&list, BOT, json!({"name": "wumpus", "image": PIXEL_PNG})),
        400,
        50035,
    );
    let id = emoji["id"].as_str().unwrap().to_string();
    let one = format!("{list}/{id}");
    let listed = expect_documented(
        &spec,
        &api.get(&list, BOT),
        200,
        "GET",
        "/applications/{application_id}/emojis",
    );
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    expect_documented(
        &spec,
        &api.get(&one, BOT),
        200,
        "GET",
        "/applications/{application_id}/emojis/{emoji_id}",
    );
    let renamed = expect_documented(
        &spec,
        &api.patch(&one, BOT, json!({"name": "wumpus2"})),
        200,
        "PATCH",
        "/applications/{application_id}/emojis/{emoji_id}",
    );
    assert_eq!(renamed["name"], "wumpus2");
    expect_error(&api.patch(&one, BOB, json!({"name": "bob"})), 403, 50001);
    expect(&api.delete(&one, BOT), 204);
    expect_error(&api.get(&one, BOT), 404, 10014);
    expect_error(&api.delete(&one, BOT), 404, 10014);
}

#[test]
fn entitlements() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let list = format!("/applications/{BOT_ID}/entitlements");
    let sku = "1019475255913222144";

    expect_error(&api.get(&list, BOB), 403, 50001);
    let bad = api.post(&list, BOT, json!({"owner_type": 3}));
    expect_error(&bad, 400, 50035);
    for field in ["sku_id", "owner_id", "owner_type"] {
        assert!(
            bad.body["errors"][field].is_object(),
            "{field}: {}",
            bad.raw
        );
    }
    expect_error(
        &api.post(
            &list,
            BOT,
            json!({"sku_id": sku, "owner_id": "1", "owner_type": 2}),
        ),
        404,
        10013,
    );
    expect_error(
        &api.post(
            &list,
            BOT,
            json!({"sku_id": sku, "owner_id": "1", "owner_type": 1}),
        ),
        404,
        10004,
    );

    let for_bob = expect(
        &api.post(
            &list,
            BOT,
            json!({"sku_id": sku, "owner_id": BOB_ID, "owner_type": 2}),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "POST",
        "/applications/{application_id}/entitlements",
        200,
        &for_bob,
    );
    assert_eq!(for_bob["user_id"], BOB_ID);
    assert_eq!(for_bob["deleted"], false);
    let for_guild = expect(
        &api.post(
            &list,
            BOT,
            json!({"sku_id": sku, "owner_id": GUILD, "owner_type": 1}),
        ),
        200,
    )
    .clone();
    assert_eq!(for_guild["guild_id"], GUILD);
    let bob_entitlement = for_bob["id"].as_str().unwrap().to_string();

    let all = expect(&api.get(&list, BOT), 200).clone();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let bobs = expect_documented(
        &spec,
        &api.get(&format!("{list}?user_id={BOB_ID}"), BOT),
        200,
        "GET",
        "/applications/{application_id}/entitlements",
    );
    assert_eq!(bobs.as_array().unwrap().len(), 1);
    assert_eq!(
        expect(&api.get(&format!("{list}?sku_ids=1,2"), BOT), 200),
        &json!([])
    );
    expect_error(&api.get(&format!("{list}?sku_ids=x"), BOT), 400, 50035);
    expect_error(&api.get(&format!("{list}?limit=0"), BOT), 400, 50035);
    let one = format!("{list}/{bob_entitlement}");
    expect_documented(
        &spec,
        &api.get(&one, BOT),
        200,
        "GET",
        "/applications/{application_id}/entitlements/{entitlement_id}",
    );

    // Bob sees his own entitlements for the app.
    let mine_path = format!("/users/@me/applications/{BOT_ID}/entitlements");
    let mine = expect_documented(
        &spec,
        &api.get(&mine_path, BOB),
        200,
        "GET",
        "/users/@me/applications/{application_id}/entitlements",
    );
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(expect(&api.get(&mine_path, DAVE), 200), &json!([]));

    // Consume once; a second time is refused.
    expect(&api.post(&format!("{one}/consume"), BOT, json!({})), 204);
    expect_error(
        &api.post(&format!("{one}/consume"), BOT, json!({})),
        400,
        40074,
    );
    assert_eq!(expect(&api.get(&one, BOT), 200)["consumed"], true);
    assert_eq!(expect(&api.get(&mine_path, BOB), 200), &json!([]));

    expect(&api.delete(&one, BOT), 204);
    assert_eq!(
        expect(&api.get(&format!("{list}?user_id={BOB_ID}"), BOT), 200),
        &json!([])
    );
    let with_deleted = expect(&api.get(&format!("{list}?exclude_deleted=false"), BOT), 200).clone();
    assert_eq!(with_deleted.as_array().unwrap().len(), 2);
    expect_error(&api.delete(&one, BOT), 404, 10029);
    expect_error(&api.get(&format!("{list}/1"), BOT), 404, 10029);
}

#[test]
fn role_connections() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let metadata = format!("/applications/{BOT_ID}/role-connections/metadata");
    let connection = format!("/users/@me/applications/{BOT_ID}/role-connection");

    let empty = expect_documented(
        &spec,
        &api.get(&metadata, BOT),
        200,
        "GET",
        "/applications/{application_id}/role-connections/metadata",
    );
    assert_eq!(empty, json!([]));
    expect_error(&api.put(&metadata, BOB, json!([])), 403, 50001);
    let bad = api.put(
        &metadata,
        BOT,
        json!([{"type": 9, "key": "Bad Key", "name": "", "description": "d"}]),
    );
    expect_error(&bad, 400, 50035);
    for field in ["type", "key", "name"] {
        assert!(
            bad.body["errors"]["0"][field].is_object(),
            "{field}: {}",
            bad.raw
        );
    }
    let too_many: Vec<Value> = (0..6)
        .map(|n| json!({"type": 7, "key": format!("k{n}"), "name": "n", "description": "d"}))
        .collect();
    expect_error(&api.put(&metadata, BOT, json!(too_many)), 400, 50035);
    let records = json!([
        {"type": 2, "key": "level", "name": "Level", "description": "At least this level"},
        {"type": 7, "key": "verified", "name": "Verified", "description": "Has verified"}
    ]);
    let saved = expect_documented(
        &spec,
        &api.put(&metadata, BOT, records),
        200,
        "PUT",
        "/applications/{application_id}/role-connections/metadata",
    );
    assert_eq!(saved.as_array().unwrap().len(), 2);

    // A user's connection: only declared keys; bots have none.
    expect_error(&api.get(&connection, BOT), 403, 20001);
    expect_error(
        &api.get("/users/@me/applications/1/role-connection", BOB),
        404,
        10002,
    );
    let initial = expect_documented(
        &spec,
        &api.get(&connection, BOB),
        200,
        "GET",
        "/users/@me/applications/{application_id}/role-connection",
    );
    assert_eq!(initial["metadata"], json!({}));
    let bad = api.put(&connection, BOB, json!({"metadata": {"karma": "5"}}));
    expect_error(&bad, 400, 50035);
    assert!(bad.body["errors"]["metadata"]["karma"].is_object());
    let set = expect(
        &api.put(
            &connection,
            BOB,
            json!({"platform_name": "Arcade", "platform_username": "bob99",
                   "metadata": {"level": 12, "verified": true}}),
        ),
        200,
    )
    .clone();
    conforms(
        &spec,
        "PUT",
        "/users/@me/applications/{application_id}/role-connection",
        200,
        &set,
    );
    assert_eq!(set["metadata"], json!({"level": "12", "verified": "1"}));
    assert_eq!(expect(&api.get(&connection, BOB), 200).clone(), set);
    expect(&api.delete(&connection, BOB), 204);
    assert_eq!(
        expect(&api.get(&connection, BOB), 200)["metadata"],
        json!({})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_parses_application_answers() {
    use twilight_http::request::application::monetization::CreateTestEntitlementOwner;
    use twilight_model::id::Id;
    let server = Server::on_fixture_async().await;
    let http = server.twilight(BOT);
    let app = Id::new(BOT_ID.parse().unwrap());

    let emoji = http
        .add_application_emoji(app, "wumpus", PIXEL_PNG)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(emoji.name, "wumpus");
    let list = http
        .get_application_emojis(app)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let renamed = http
        .update_application_emoji(app, emoji.id, "wumpus_two")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(renamed.name, "wumpus_two");
    http.delete_application_emoji(app, emoji.id).await.unwrap();

    let bob = Id::new(BOB_ID.parse().unwrap());
    let entitlement = http
        .create_test_entitlement(
            app,
            Id::new(1019475255913222144),
            CreateTestEntitlementOwner::User(bob),
        )
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(entitlement.user_id, Some(bob));
    let all = http
        .entitlements(app)
        .await
        .unwrap()
        .models()
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    http.delete_test_entitlement(app, entitlement.id)
        .await
        .unwrap();
}
