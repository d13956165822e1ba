//! Fixture loading and the demo world.
use super::*;
use crate::backend::accounts;
use crate::backend::model::{channel_type, User};
use crate::backend::permissions::bits;
use crate::backend::snowflake::Snowflake;

const EXAMPLE: &str = r#"{"users": [
   {"id": "100000000000000001", "username": "alice", "token": "alice-token",
    "email": "alice@example.com", "password": "hunter2"},
   {"id": "100000000000000002", "username": "pingbot", "bot": true,
    "token": "MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0"}],
 "guilds": [
   {"id": "200000000000000001", "name": "Test Guild", "owner_id": "100000000000000001",
    "roles": [{"id": "200000000000000002", "name": "Mods", "permissions": "8"}],
    "channels": [{"id": "200000000000000010", "name": "Text", "type": 4},
                 {"id": "200000000000000011", "name": "general", "type": 0,
                  "parent_id": "200000000000000010"}],
    "members": [{"user_id": "100000000000000001", "roles": ["200000000000000002"]},
                {"user_id": "100000000000000002"}]}]}"#;

#[test]
fn the_issue_example_loads_with_defaults() {
    let store = Store::temporary().unwrap();
    let summary = load_fixture_bytes(&store, EXAMPLE.as_bytes(), "example.json").unwrap();
    assert_eq!(
        summary,
        FixtureSummary {
            users: 2,
            guilds: 1,
            channels: 2
        }
    );
    let guild = Snowflake(200000000000000001);
    let everyone = store.role(guild, guild).unwrap().unwrap();
    assert_eq!(everyone.name, "@everyone");
    assert_eq!(everyone.permission_bits(), bits::EVERYONE_DEFAULT);
    let bot = store
        .user_by_token("MTAwMDAwMDAwMDAwMDAwMDAy.Gm1tm0.c2VjcmV0")
        .unwrap()
        .unwrap();
    assert!(bot.bot);
    let app = store.applications.get(bot.id).unwrap().unwrap();
    assert_eq!(app.owner_id, Snowflake(100000000000000001));
    assert_eq!(
        app.allowed_privileged_intents(),
        crate::gateway::intents::PRIVILEGED
    );
    assert_eq!(store.member_count(guild), 2);
    let general = store
        .channel(Snowflake(200000000000000011))
        .unwrap()
        .unwrap();
    assert_eq!(general.parent_id, Some(Snowflake(200000000000000010)));
    assert!(
        accounts::check_login(&store, "alice@example.com", "hunter2")
            .unwrap()
            .is_some()
    );
}

fn error_of(json: &str) -> (String, String) {
    let store = Store::temporary().unwrap();
    match load_fixture_bytes(&store, json.as_bytes(), "f.json") {
        Err(FixtureError::Invalid { path, reason, .. }) => {
            assert!(store.is_empty(), "nothing may be written");
            (path, reason)
        }
        other => panic!("expected an invalid fixture, got {other:?}"),
    }
}

#[test]
fn bad_fixtures_name_the_json_path_and_write_nothing() {
    let unknown_role = EXAMPLE.replace(r#""roles": ["200000000000000002"]"#, r#""roles": ["999"]"#);
    let (path, reason) = error_of(&unknown_role);
    assert_eq!(path, "$.guilds[0].members[0].roles[0]");
    assert!(reason.contains("no role"), "{reason}");

    let bad_type = EXAMPLE.replace(r#""type": 4}"#, r#""type": "four"}"#);
    let (path, _) = error_of(&bad_type);
    assert_eq!(path, "$.guilds[0].channels[0].type");

    let bad_owner = EXAMPLE.replace(r#""owner_id": "100000000000000001""#, r#""owner_id": "5""#);
    assert_eq!(error_of(&bad_owner).0, "$.guilds[0].owner_id");

    let typo = EXAMPLE.replace(r#""username": "alice""#, r#""usernme": "alice""#);
    assert_eq!(error_of(&typo).0, "$.users[0].usernme");

    let bad_parent = EXAMPLE.replace(
        r#""parent_id": "200000000000000010""#,
        r#""parent_id": "200000000000000011""#,
    );
    assert_eq!(error_of(&bad_parent).0, "$.guilds[0].channels[1].parent_id");
}

#[test]
fn application_flags_restrict_privileged_intents() {
    let restricted = EXAMPLE.replace(
        r#""bot": true,"#,
        r#""bot": true, "application": {"flags": 32768},"#,
    );
    let store = Store::temporary().unwrap();
    load_fixture_bytes(&store, restricted.as_bytes(), "f.json").unwrap();
    let app = store
        .applications
        .get(Snowflake(100000000000000002))
        .unwrap()
        .unwrap();
    assert_eq!(
        app.allowed_privileged_intents(),
        crate::gateway::intents::GUILD_MEMBERS
    );
}

#[test]
fn the_demo_world_has_a_guild_a_user_and_a_bot() {
    let store = Store::temporary().unwrap();
    create_demo_world(&store).unwrap();
    let bots: Vec<User> = store
        .users
        .all()
        .unwrap()
        .into_iter()
        .filter(|u| u.bot)
        .collect();
    assert_eq!(bots.len(), 1);
    let guild_id = store.guild_ids_of(bots[0].id).unwrap()[0];
    let kinds: Vec<u8> = store
        .guild_channel_list(guild_id)
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .collect();
    assert!(kinds.contains(&channel_type::GUILD_CATEGORY));
    assert!(kinds.contains(&channel_type::GUILD_TEXT));
    assert!(kinds.contains(&channel_type::GUILD_VOICE));
}
