//! Smaller Discord behaviours: the GUILD_MEMBERS intent gate on REST member listing.
mod serve_support;

use serve_support::*;

#[test]
fn listing_members_needs_the_guild_members_intent() {
    // The same world, but the bot's application has every privileged intent toggle off.
    let restricted = FIXTURE.replace(
        r#""username": "pingbot", "bot": true,"#,
        r#""username": "pingbot", "bot": true, "application": {"flags": 0},"#,
    );
    assert_ne!(restricted, FIXTURE, "fixture rewrite applied");
    let server = Server::start(Some(&restricted), &["--rate-limit", "off"]);
    let api = server.api();
    expect_error(
        &api.get(&format!("/guilds/{GUILD}/members"), BOT),
        403,
        50001,
    );
    // Single members and users are not gated; users listing members are not either.
    expect(
        &api.get(&format!("/guilds/{GUILD}/members/{BOB_ID}"), BOT),
        200,
    );
    expect(&api.get(&format!("/guilds/{GUILD}/members"), ALICE), 200);

    let server = Server::on_fixture();
    let members = server
        .api()
        .get(&format!("/guilds/{GUILD}/members?limit=10"), BOT);
    assert_eq!(expect(&members, 200).as_array().unwrap().len(), 4);
}
