//! SKU subscriptions against the built binary: derived from the application's subscription
//! entitlements, per user, paged, ended when the entitlement is deleted; documented shapes.
mod serve_routes_support;
mod serve_support;

use serde_json::json;
use serve_routes_support::*;
use serve_support::*;

const SKU: &str = "400000000000000001";

#[test]
fn subscriptions_follow_subscription_entitlements() {
    let spec = spec();
    let server = Server::on_fixture();
    let api = server.api();
    let grant = |user: &str| {
        expect(
            &api.post(
                &format!("/applications/{BOT_ID}/entitlements"),
                BOT,
                json!({"sku_id": SKU, "owner_id": user, "owner_type": 2}),
            ),
            200,
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let bobs = grant(BOB_ID);
    grant(ALICE_ID);
    let list = format!("/skus/{SKU}/subscriptions?user_id={BOB_ID}");

    let listed = expect_documented(
        &spec,
        &api.get(&list, BOT),
        200,
        "GET",
        "/skus/{sku_id}/subscriptions",
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let subscription = &listed[0];
    assert_eq!(subscription["id"], bobs.as_str());
    assert_eq!(subscription["user_id"], BOB_ID);
    assert_eq!(subscription["sku_ids"], json!([SKU]));
    assert_eq!(subscription["entitlement_ids"], json!([bobs]));
    assert_eq!(subscription["status"], 0);

    let one = expect(
        &api.get(&format!("/skus/{SKU}/subscriptions/{bobs}"), BOT),
        200,
    )
    .clone();
    conforms(
        &spec,
        "GET",
        "/skus/{sku_id}/subscriptions/{subscription_id}",
        200,
        &one,
    );
    assert_eq!(one, *subscription);
    assert_eq!(
        expect(
            &api.get(&format!("/skus/1/subscriptions?user_id={BOB_ID}"), BOT),
            200
        ),
        &json!([])
    );
    assert_eq!(
        expect(&api.get(&format!("{list}&after={bobs}"), BOT), 200),
        &json!([])
    );
    expect_error(
        &api.get(&format!("/skus/{SKU}/subscriptions"), BOT),
        400,
        50035,
    );
    expect_error(&api.get(&list, ALICE), 403, 50001);
    expect_error(
        &api.get(&format!("/skus/{SKU}/subscriptions/1"), BOT),
        404,
        0,
    );

    // Deleting the entitlement ends the subscription.
    expect(
        &api.delete(&format!("/applications/{BOT_ID}/entitlements/{bobs}"), BOT),
        204,
    );
    let ended = expect(&api.get(&list, BOT), 200)[0].clone();
    assert_eq!(ended["status"], 2);
    assert!(ended["canceled_at"].is_string());
    assert_eq!(ended["renewal_sku_ids"], json!(null));
}
