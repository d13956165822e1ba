//! The builder on hand-made recorded items: every fixture it writes must load.
use serde_json::{json, Value};

use super::*;
use crate::backend::snowflake::Snowflake;
use crate::backend::store::Store;

const BOT: &str = "100000000000000002";
const ALICE: &str = "100000000000000001";
const CAROL: &str = "100000000000000003";
const GUILD: &str = "200000000000000001";
const CATEGORY: &str = "200000000000000010";
const GENERAL: &str = "200000000000000011";
const FORUM: &str = "200000000000000012";
const MODS: &str = "200000000000000002";
const REDACTED: &str = "[redacted by discord-mitm sha256:0badf00d]";

fn dispatch(at_us: i64, session: u64, event: &str, data: Value) -> RecordedItem {
    RecordedItem {
        at_us,
        kind: ItemKind::Dispatch {
            session,
            event: event.into(),
            data,
        },
    }
}

fn rest(at_us: i64, method: &str, path: &str, auth: Option<&str>, body: Value) -> RecordedItem {
    RecordedItem {
        at_us,
        kind: ItemKind::Rest {
            method: method.into(),
            path: path.into(),
            status: 200,
            auth: auth.map(str::to_string),
            body,
        },
    }
}

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "username": name, "discriminator": "0", "global_name": null, "avatar": null})
}

fn built(items: Vec<RecordedItem>) -> BuiltWorld {
    build(items, &|id| format!("local-token-{id}")).expect("a world")
}

/// Loads the fixture into a scratch backend store (as `serve --fixture` does).
fn loads(world: &BuiltWorld) -> Store {
    let store = Store::temporary().unwrap();
    let bytes = serde_json::to_vec(&world.fixture).unwrap();
    if let Err(err) = crate::backend::world::load_fixture_bytes(&store, &bytes, "built.json") {
        panic!(
            "the built fixture does not load: {err}\n{}",
            serde_json::to_string_pretty(&world.fixture).unwrap()
        );
    }
    store
}

/// Fails unless the import report has a warning containing `text`.
fn assert_warned(world: &BuiltWorld, text: &str) {
    assert!(
        world.warnings.iter().any(|w| w.contains(text)),
        "no warning with {text:?} in {:?}",
        world.warnings
    );
}

/// The stored message `id` of #general, which the test expects to be there.
fn in_general(store: &Store, id: u64) -> crate::backend::model::Message {
    store
        .message(Snowflake(GENERAL.parse().unwrap()), Snowflake(id))
        .unwrap()
        .unwrap_or_else(|| panic!("message {id} is not stored in #general"))
}

fn message(id: &str, channel: &str, author: &Value, content: &str) -> Value {
    json!({"id": id, "channel_id": channel, "author": author, "content": content, "type": 0,
           "mentions": [], "attachments": [], "embeds": [], "pinned": false,
           "edited_timestamp": null, "timestamp": "2024-01-01T00:00:00+00:00"})
}

/// A bot's GUILD_CREATE: a category, #general (overwrites for a role, a member and someone
/// never recorded), a forum, roles, members, an emoji and a sticker, a thread.
fn guild_create() -> Value {
    json!({
        "id": GUILD, "name": "Test Guild", "owner_id": ALICE, "icon": null, "features": ["COMMUNITY"],
        "verification_level": 1, "preferred_locale": "en-US", "system_channel_id": GENERAL,
        "roles": [
            {"id": GUILD, "name": "@everyone", "permissions": "1024", "position": 0, "color": 0,
             "hoist": false, "mentionable": false},
            {"id": MODS, "name": "Mods", "permissions": "8", "position": 1, "color": 255,
             "hoist": true, "mentionable": false}
        ],
        "channels": [
            {"id": CATEGORY, "type": 4, "name": "Text", "position": 0, "permission_overwrites": []},
            {"id": GENERAL, "type": 0, "name": "general", "position": 1, "parent_id": CATEGORY,
             "topic": "hello", "permission_overwrites": [
                {"id": MODS, "type": 0, "allow": "2048", "deny": "0"},
                {"id": BOT, "type": 1, "allow": "0", "deny": "2048"},
                {"id": "999999999999999999", "type": 1, "allow": "0", "deny": "1024"}]},
            {"id": FORUM, "type": 15, "name": "ideas", "position": 2, "permission_overwrites": []},
            {"id": "200000000000000099", "type": 14, "name": "directory", "position": 3}
        ],
        "threads": [
            {"id": "200000000000000020", "type": 11, "name": "first idea", "parent_id": FORUM,
             "owner_id": "999999999999999999", "guild_id": GUILD,
             "thread_metadata": {"archived": false, "locked": false, "auto_archive_duration": 1440}}
        ],
        "members": [
            {"user": user(ALICE, "alice"), "roles": [MODS], "nick": "Al",
             "joined_at": "2023-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false},
            {"user": user(BOT, "pingbot"), "roles": [], "joined_at": "2023-01-02T00:00:00+00:00"}
        ],
        "emojis": [{"id": "200000000000000030", "name": "party", "animated": true}],
        "stickers": [{"id": "200000000000000031", "name": "wave", "format_type": 1, "tags": "wave",
                      "description": "hi"}]
    })
}

fn bot_ready() -> Value {
    let mut bot = user(BOT, "pingbot");
    bot["bot"] = json!(true);
    json!({"v": 10, "user": bot, "session_id": REDACTED,
           "guilds": [{"id": GUILD, "unavailable": true}]})
}

#[test]
fn a_bot_session_becomes_a_fixture_with_overwrites_threads_and_expressions() {
    let world = built(vec![
        dispatch(1, 1, "READY", bot_ready()),
        dispatch(2, 1, "GUILD_CREATE", guild_create()),
        rest(
            3,
            "GET",
            &format!("/channels/{GENERAL}/messages"),
            None,
            json!([
                message(
                    "300000000000000002",
                    GENERAL,
                    &user(ALICE, "alice"),
                    "second"
                ),
                message(
                    "300000000000000001",
                    GENERAL,
                    &user(CAROL, "carol"),
                    "first, by a former member"
                ),
            ]),
        ),
        dispatch(4, 1, "MESSAGE_CREATE", {
            let mut m = message(
                "300000000000000003",
                "200000000000000020",
                &user(ALICE, "alice"),
                "in the thread",
            );
            m["guild_id"] = json!(GUILD);
            m
        }),
    ]);
    let fixture = &world.fixture;
    let guild = &fixture["guilds"][0];
    assert_eq!(guild["name"], "Test Guild");
    assert_eq!(guild["system_channel_id"], GENERAL);
    let names: Vec<&str> = guild["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Text", "general", "ideas"],
        "the directory channel (type 14) is left out"
    );
    let general = &guild["channels"][1];
    assert_eq!(general["parent_id"], CATEGORY);
    let overwrites = general["permission_overwrites"].as_array().unwrap();
    assert_eq!(
        overwrites.len(),
        2,
        "the overwrite for an unrecorded member is dropped: {overwrites:?}"
    );
    assert_eq!(
        overwrites[1],
        json!({"id": BOT, "type": 1, "allow": "0", "deny": "2048"})
    );
    let contents: Vec<&str> = general["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        ["first, by a former member", "second"],
        "oldest first"
    );
    let thread = &guild["threads"][0];
    assert_eq!(thread["parent_id"], FORUM);
    assert!(
        thread.get("owner_id").is_none(),
        "the owner is not a recorded member: {thread}"
    );
    assert_eq!(thread["messages"][0]["content"], "in the thread");
    assert_eq!(
        guild["emojis"][0],
        json!({"id": "200000000000000030", "name": "party", "animated": true})
    );
    assert_eq!(guild["stickers"][0]["name"], "wave");
    assert_eq!(guild["members"][0]["roles"], json!([MODS]));
    assert_eq!(guild["members"][0]["nick"], "Al");
    assert_warned(&world, "permission overwrites");
    assert_warned(&world, "type 14");
    assert_eq!(
        world.accounts,
        vec![LocalAccount {
            id: BOT.parse().unwrap(),
            username: "pingbot".into(),
            token: format!("local-token-{BOT}"),
            bot: true,
        }]
    );
    assert_eq!(world.counts["messages"], 3);
    let store = loads(&world);
    let bot = store
        .user_by_token(&format!("local-token-{BOT}"))
        .unwrap()
        .unwrap();
    assert!(bot.bot);
    let sticker = store
        .extra
        .stickers
        .get((
            Snowflake(GUILD.parse().unwrap()),
            Snowflake(200000000000000031),
        ))
        .unwrap();
    assert!(sticker.is_some());
}

#[test]
fn the_newest_sample_wins_whatever_the_order_items_arrive_in() {
    let cases: Vec<(&str, Vec<RecordedItem>, &str, &str)> = vec![
        (
            "guild renamed later",
            vec![
                dispatch(
                    20,
                    1,
                    "GUILD_UPDATE",
                    json!({"id": GUILD, "name": "New Name", "owner_id": ALICE}),
                ),
                dispatch(10, 1, "GUILD_CREATE", guild_create()),
            ],
            "New Name",
            "general",
        ),
        (
            "REST fetch after the gateway event",
            vec![
                rest(
                    30,
                    "GET",
                    &format!("/guilds/{GUILD}/channels"),
                    None,
                    json!([{"id": GENERAL, "type": 0, "name": "renamed", "guild_id": GUILD}]),
                ),
                dispatch(10, 1, "GUILD_CREATE", guild_create()),
            ],
            "Test Guild",
            "renamed",
        ),
        (
            "older REST fetch loses to a newer CHANNEL_UPDATE",
            vec![
                dispatch(
                    40,
                    1,
                    "CHANNEL_UPDATE",
                    json!({"id": GENERAL, "type": 0, "name": "newest", "guild_id": GUILD}),
                ),
                rest(
                    30,
                    "GET",
                    &format!("/guilds/{GUILD}/channels"),
                    None,
                    json!([{"id": GENERAL, "type": 0, "name": "renamed", "guild_id": GUILD}]),
                ),
                dispatch(10, 1, "GUILD_CREATE", guild_create()),
            ],
            "Test Guild",
            "newest",
        ),
    ];
    for (name, mut items, guild_name, channel_name) in cases {
        items.push(dispatch(1, 1, "READY", bot_ready()));
        let world = built(items);
        let guild = &world.fixture["guilds"][0];
        assert_eq!(guild["name"], guild_name, "{name}");
        let general = guild["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == GENERAL)
            .unwrap();
        assert_eq!(general["name"], channel_name, "{name}");
        loads(&world);
    }
}

#[test]
fn message_edits_and_deletes_apply_in_time_order() {
    let alice = user(ALICE, "alice");
    let mut edited = json!({"id": "300000000000000001", "channel_id": GENERAL, "content": "edited",
                            "edited_timestamp": "2024-01-02T00:00:00.000000+00:00", "guild_id": GUILD});
    edited["attachments"] =
        json!([{"id": "1", "filename": "a.png", "size": 3, "url": "https://cdn.example/a.png"}]);
    let world = built(vec![
        dispatch(1, 1, "READY", bot_ready()),
        dispatch(2, 1, "GUILD_CREATE", guild_create()),
        dispatch(
            3,
            1,
            "MESSAGE_CREATE",
            message("300000000000000001", GENERAL, &alice, "original"),
        ),
        dispatch(
            4,
            1,
            "MESSAGE_CREATE",
            message("300000000000000002", GENERAL, &alice, "doomed"),
        ),
        dispatch(5, 1, "MESSAGE_UPDATE", edited),
        dispatch(
            6,
            1,
            "MESSAGE_DELETE",
            json!({"id": "300000000000000002", "channel_id": GENERAL}),
        ),
        dispatch(
            7,
            1,
            "MESSAGE_UPDATE",
            json!({"id": "300000000000000009", "channel_id": GENERAL, "content": "edit of an unseen message"}),
        ),
    ]);
    let messages = world.fixture["guilds"][0]["channels"][1]["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["content"], "edited");
    assert_eq!(
        messages[0]["edited_timestamp"],
        "2024-01-02T00:00:00.000000+00:00"
    );
    assert_eq!(messages[0]["attachments"][0]["filename"], "a.png");
    assert_warned(&world, "without an author");
    let store = loads(&world);
    let stored = in_general(&store, 300000000000000001);
    assert_eq!(stored.content, "edited");
    assert_eq!(stored.attachments.len(), 1);
}

/// A user READY in the CLIENT_STATE_V2 shape with deduplicated users and merged_members.
fn user_ready() -> Value {
    json!({
        "v": 9,
        "user": {"id": ALICE, "username": "alice", "discriminator": "0", "global_name": "Alice",
                 "email": "alice@example.com", "locale": "en-GB", "verified": true},
        "users": [user(CAROL, "carol"), user(BOT, "pingbot")],
        "guilds": [{
            "id": GUILD, "data_mode": "full", "version": 0,
            "properties": {"id": GUILD, "name": "Test Guild", "owner_id": ALICE, "icon": null,
                           "features": []},
            "roles": [{"id": GUILD, "name": "@everyone", "permissions": "1024", "position": 0}],
            "channels": [{"id": GENERAL, "type": 0, "name": "general", "position": 0,
                          "permission_overwrites": [{"id": ALICE, "type": 1, "allow": "1024", "deny": "0"}]}],
            "threads": [], "emojis": [], "stickers": []
        }],
        "merged_members": [[{"user_id": ALICE, "roles": [], "joined_at": "2023-01-01T00:00:00.000000+00:00"}]],
        "private_channels": [{"id": "300000000000000100", "type": 1, "recipient_ids": [CAROL],
                              "last_message_id": null}],
        "relationships": [
            {"id": CAROL, "type": 1, "user_id": CAROL, "nickname": "C"},
            {"id": BOT, "type": 3, "user_id": BOT}
        ],
        "read_state": {"entries": [{"id": GENERAL, "last_message_id": "300000000000000001", "mention_count": 2}],
                       "partial": false, "version": 1},
        "session_id": REDACTED,
        "analytics_token": REDACTED
    })
}

#[test]
fn a_user_ready_gives_guilds_merged_members_dms_and_relationships() {
    let world = built(vec![
        dispatch(1, 7, "READY", user_ready()),
        dispatch(
            1,
            7,
            "READY_SUPPLEMENTAL",
            json!({"guilds": [{"id": GUILD, "voice_states": []}],
            "merged_members": [[{"user_id": CAROL, "roles": [], "nick": "in voice"},
                                {"user_id": "100000000000000009", "roles": []}]]}),
        ),
        dispatch(
            2,
            7,
            "GUILD_MEMBER_LIST_UPDATE",
            json!({"guild_id": GUILD, "id": "everyone",
            "ops": [{"op": "SYNC", "range": [0, 99], "items": [
                {"group": {"id": "online", "count": 2}},
                {"member": {"user": user(CAROL, "carol"), "roles": [], "joined_at": "2023-02-01T00:00:00+00:00"}}]},
                {"op": "INSERT", "index": 3, "item": {"member": {"user": user(BOT, "pingbot"), "roles": []}}}]}),
        ),
        dispatch(
            3,
            7,
            "MESSAGE_CREATE",
            message(
                "300000000000000101",
                "300000000000000100",
                &user(CAROL, "carol"),
                "hi alice",
            ),
        ),
        dispatch(
            4,
            7,
            "GUILD_MEMBERS_CHUNK",
            json!({"guild_id": GUILD, "members": [
            {"user": user("100000000000000005", "erin"), "roles": []}]}),
        ),
    ]);
    let fixture = &world.fixture;
    let guild = &fixture["guilds"][0];
    assert_eq!(guild["name"], "Test Guild");
    let members: Vec<&str> = guild["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        members,
        [ALICE, BOT, CAROL, "100000000000000005"],
        "READY_SUPPLEMENTAL's unknown user is left out"
    );
    assert_eq!(
        guild["members"][2]["nick"], "in voice",
        "a member-list item without a nick keeps the earlier one"
    );
    assert_eq!(
        guild["channels"][0]["permission_overwrites"][0]["id"],
        ALICE
    );
    assert_eq!(fixture["dms"][0]["recipients"], json!([ALICE, CAROL]));
    assert_eq!(fixture["dms"][0]["messages"][0]["content"], "hi alice");
    let relationships = fixture["relationships"].as_array().unwrap();
    assert!(relationships
        .contains(&json!({"user_id": ALICE, "other_id": CAROL, "type": 1, "nickname": "C"})));
    assert!(
        relationships.contains(&json!({"user_id": BOT, "other_id": ALICE, "type": 4})),
        "an incoming request: {relationships:?}"
    );
    assert_eq!(fixture["read_states"][0]["mention_count"], 2);
    let alice = fixture["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == ALICE)
        .unwrap();
    assert_eq!(alice["token"], format!("local-token-{ALICE}"));
    assert_eq!(alice["global_name"], "Alice");
    assert!(alice.get("email").is_none());
    let store = loads(&world);
    let me = store
        .user_by_token(&format!("local-token-{ALICE}"))
        .unwrap()
        .unwrap();
    assert_eq!(me.username, "alice");
}

#[test]
fn redacted_values_never_become_data_and_no_recorded_token_survives() {
    let mut ready = user_ready();
    ready["user"]["global_name"] = json!(REDACTED);
    ready["user"]["token"] = json!(REDACTED);
    let world = built(vec![
        dispatch(1, 7, "READY", ready),
        rest(
            2,
            "GET",
            "/users/@me",
            Some(REDACTED),
            json!({"id": ALICE, "username": "alice", "avatar": REDACTED}),
        ),
        rest(
            3,
            "GET",
            "/users/@me/channels",
            Some(REDACTED),
            json!([
            {"id": "300000000000000200", "type": 1, "recipients": [user(BOT, "pingbot")]}]),
        ),
    ]);
    let text = serde_json::to_string(&world.fixture).unwrap();
    assert!(!text.contains("redacted"), "{text}");
    let alice = world.fixture["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == ALICE)
        .unwrap()
        .clone();
    assert!(
        alice.get("global_name").is_none() && alice.get("avatar").is_none(),
        "{alice}"
    );
    assert_eq!(alice["token"], format!("local-token-{ALICE}"));
    let dms: Vec<&Value> = world.fixture["dms"].as_array().unwrap().iter().collect();
    assert_eq!(
        dms.len(),
        2,
        "the REST DM list is the account's too: {dms:?}"
    );
    loads(&world);
}

#[test]
fn recordings_without_an_account_or_a_guild_are_refused_and_odd_items_are_only_counted() {
    let err = build(
        vec![rest(1, "GET", "/gateway", None, json!({"url": "wss://x"}))],
        &|_| String::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no account"), "{err}");
    let world = built(vec![
        dispatch(1, 1, "READY", bot_ready()),
        dispatch(2, 1, "GUILD_CREATE", json!({"id": "not a snowflake"})),
        dispatch(3, 1, "GUILD_CREATE", json!({"id": "200000000000000077"})),
        dispatch(4, 1, "MESSAGE_CREATE", json!({"id": 5, "channel_id": null})),
        dispatch(
            5,
            1,
            "CHANNEL_CREATE",
            json!({"id": "5", "type": 3, "recipients": []}),
        ),
        dispatch(6, 1, "GUILD_MEMBERS_CHUNK", json!("not an object")),
        rest(
            7,
            "GET",
            "/channels/5/messages",
            None,
            json!({"unexpected": true}),
        ),
        dispatch(
            8,
            1,
            "MESSAGE_CREATE",
            json!({"id": "6", "channel_id": "7", "guild_id": GUILD,
                                               "author": user(CAROL, "carol"), "member": "odd"}),
        ),
        rest(
            9,
            "GET",
            "/channels/7/messages/pins",
            None,
            json!({"items": [{"message": 5}, 7]}),
        ),
        rest(10, "GET", "/channels/7/messages/pins", None, json!([1, 2])),
        dispatch(11, 1, "READY", json!({"user": "nobody", "guilds": 5})),
        dispatch(
            12,
            1,
            "GUILD_MEMBER_LIST_UPDATE",
            json!({"guild_id": GUILD, "ops": [{"items": 3}, 4]}),
        ),
    ]);
    assert!(world.fixture["guilds"].as_array().unwrap().is_empty());
    assert_warned(&world, "only by their id");
    assert_warned(&world, "group DMs");
    loads(&world);
}

#[test]
fn rest_answers_belong_to_the_account_whose_token_asked() {
    let (alice_auth, bot_auth) = (
        "[redacted by discord-mitm sha256:aaaa]",
        "Bot [redacted by discord-mitm sha256:bbbb]",
    );
    let dm = |id: &str, other: &str, name: &str| json!([{"id": id, "type": 1, "recipients": [user(other, name)]}]);
    let world = built(vec![
        // Alice's DM list is recorded before her /users/@me: the token still tells whose it is.
        rest(
            1,
            "GET",
            "/users/@me/channels",
            Some(alice_auth),
            dm("300000000000000300", CAROL, "carol"),
        ),
        rest(
            2,
            "GET",
            "/users/@me",
            Some(alice_auth),
            user(ALICE, "alice"),
        ),
        dispatch(3, 1, "READY", bot_ready()),
        rest(4, "GET", "/users/@me", Some(bot_auth), {
            let mut bot = user(BOT, "pingbot");
            bot["bot"] = json!(true);
            bot
        }),
        rest(
            5,
            "GET",
            "/users/@me/channels",
            Some(bot_auth),
            dm("300000000000000301", CAROL, "carol"),
        ),
        rest(
            6,
            "GET",
            "/users/@me/channels",
            Some("[redacted by discord-mitm sha256:cccc]"),
            dm("300000000000000302", ALICE, "alice"),
        ),
    ]);
    let dms = world.fixture["dms"].as_array().unwrap();
    let pairs: Vec<&Value> = dms.iter().map(|d| &d["recipients"]).collect();
    assert_eq!(
        pairs,
        [&json!([ALICE, CAROL]), &json!([BOT, CAROL])],
        "{dms:?}"
    );
    assert_warned(&world, "account that made the request");
    let ids: Vec<u64> = world.accounts.iter().map(|a| a.id).collect();
    assert_eq!(
        ids,
        [BOT.parse::<u64>().unwrap(), ALICE.parse().unwrap()],
        "newest first"
    );
    loads(&world);
}

#[test]
fn an_old_guild_whose_general_has_the_guild_id_loads() {
    let mut guild = guild_create();
    guild["channels"] = json!([{"id": GUILD, "type": 0, "name": "general", "position": 0}]);
    guild["system_channel_id"] = json!(GUILD);
    let world = built(vec![
        dispatch(1, 1, "READY", bot_ready()),
        dispatch(2, 1, "GUILD_CREATE", guild),
    ]);
    assert_eq!(world.fixture["guilds"][0]["channels"][0]["id"], GUILD);
    let store = loads(&world);
    let general = store
        .channel(Snowflake(GUILD.parse().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(general.name.as_deref(), Some("general"));
}

mod shapes {
    //! Any JSON in any event or answer: the builder never panics and what it writes loads.
    use proptest::prelude::*;

    use super::*;

    const KEYS: [&str; 24] = [
        "id",
        "name",
        "type",
        "guild_id",
        "channel_id",
        "user",
        "author",
        "members",
        "roles",
        "channels",
        "threads",
        "guilds",
        "user_id",
        "parent_id",
        "owner_id",
        "recipients",
        "content",
        "permission_overwrites",
        "merged_members",
        "users",
        "properties",
        "ops",
        "items",
        "member",
    ];
    const EVENTS: [&str; 10] = [
        "READY",
        "GUILD_CREATE",
        "CHANNEL_CREATE",
        "THREAD_CREATE",
        "GUILD_MEMBERS_CHUNK",
        "GUILD_MEMBER_LIST_UPDATE",
        "MESSAGE_CREATE",
        "MESSAGE_UPDATE",
        "RELATIONSHIP_ADD",
        "GUILD_ROLE_CREATE",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0u64..4).prop_map(Value::from),
            prop::sample::select(vec![
                GUILD, GENERAL, ALICE, BOT, CAROL, "0", "x", "ab", REDACTED
            ])
            .prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..6).prop_map(
                    |fields| Value::Object(
                        fields
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect()
                    )
                ),
            ]
        })
    }

    fn item() -> impl Strategy<Value = RecordedItem> {
        prop_oneof![
            (0i64..50, prop::sample::select(EVENTS.to_vec()), value())
                .prop_map(|(at, event, data)| dispatch(at, 1, event, data)),
            (
                0i64..50,
                prop::sample::select(vec![
                    "/users/@me",
                    "/users/@me/channels",
                    "/guilds/200000000000000001",
                    "/channels/200000000000000011/messages"
                ]),
                value()
            )
                .prop_map(|(at, path, body)| rest(at, "GET", path, None, body)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn any_items_build_a_fixture_that_loads_or_a_clear_error(
            items in prop::collection::vec(item(), 0..12),
        ) {
            let mut items = items;
            items.push(dispatch(0, 1, "READY", bot_ready()));
            let world = built(items);
            loads(&world);
            prop_assert!(!serde_json::to_string(&world.fixture).unwrap().contains("redacted"));
        }
    }
}

#[test]
fn group_dms_come_from_ready_and_events_with_their_messages() {
    const GROUP: &str = "300000000000000200";
    const ERIN: &str = "100000000000000005";
    let mut ready = user_ready();
    ready["private_channels"] = json!([{"id": GROUP, "type": 3, "name": "weekend plans",
        "owner_id": CAROL, "recipient_ids": [CAROL], "icon": null, "last_message_id": null}]);
    let world = built(vec![
        dispatch(1, 7, "READY", ready),
        dispatch(
            2,
            7,
            "CHANNEL_RECIPIENT_ADD",
            json!({"channel_id": GROUP, "user": user(ERIN, "erin")}),
        ),
        dispatch(
            3,
            7,
            "MESSAGE_CREATE",
            message(
                "300000000000000201",
                GROUP,
                &user(CAROL, "carol"),
                "saturday?",
            ),
        ),
        dispatch(
            4,
            7,
            "MESSAGE_CREATE",
            message(
                "300000000000000202",
                GROUP,
                &user(BOT, "pingbot"),
                "not in it",
            ),
        ),
    ]);
    let group = &world.fixture["group_dms"][0];
    assert_eq!(group["id"], GROUP);
    assert_eq!(group["name"], "weekend plans");
    assert_eq!(group["owner_id"], CAROL);
    assert_eq!(
        group["recipients"],
        json!([ALICE, CAROL, ERIN]),
        "the recorded account, READY's recipients and who was added"
    );
    let contents: Vec<&Value> = group["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["content"])
        .collect();
    assert_eq!(contents, [&json!("saturday?")]);
    assert_warned(&world, "outside the group");
    assert_eq!(world.counts["group DMs"], 1);
    let store = loads(&world);
    let channel = store
        .channel(Snowflake(GROUP.parse().unwrap()))
        .unwrap()
        .expect("the group DM is stored");
    assert_eq!(channel.kind, 3);
    assert_eq!(channel.recipient_ids.map(|r| r.len()), Some(3));
}

#[test]
fn webhook_and_system_messages_are_kept_with_their_author_and_type() {
    let mut hooked = message(
        "300000000000000011",
        GENERAL,
        &json!({"id": "400000000000000001", "username": "Deploys", "avatar": null, "bot": true}),
        "build 42 is out",
    );
    hooked["webhook_id"] = json!("400000000000000001");
    let mut joined = message("300000000000000012", GENERAL, &user(ALICE, "alice"), "");
    joined["type"] = json!(7);
    let mut odd = message("300000000000000013", GENERAL, &user(ALICE, "alice"), "x");
    odd["type"] = json!(250);
    let world = built(vec![
        dispatch(1, 1, "READY", bot_ready()),
        dispatch(2, 1, "GUILD_CREATE", guild_create()),
        rest(
            3,
            "GET",
            &format!("/channels/{GENERAL}/messages"),
            None,
            json!([hooked, joined, odd]),
        ),
    ]);
    let general = world.fixture["guilds"][0]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == GENERAL)
        .unwrap()
        .clone();
    let messages = general["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(
        messages[0]["webhook"],
        json!({"id": "400000000000000001", "username": "Deploys"})
    );
    assert!(messages[0].get("author_id").is_none());
    assert_eq!(messages[1]["type"], 7);
    assert_eq!(messages[1]["author_id"], ALICE);
    assert_warned(&world, "unknown type 250");
    let store = loads(&world);
    let stored = in_general(&store, 300000000000000011);
    assert_eq!(
        stored.webhook.map(|w| w.username),
        Some("Deploys".to_string())
    );
    let joined = in_general(&store, 300000000000000012);
    assert_eq!(joined.kind, 7);
}

#[test]
fn forum_tags_and_the_tags_posts_carry_are_imported() {
    let mut guild = guild_create();
    guild["channels"][2]["available_tags"] = json!([
        {"id": "200000000000000040", "name": "bug", "moderated": false, "emoji_id": null, "emoji_name": "🐛"},
        {"id": "200000000000000041", "name": "idea", "moderated": true, "emoji_id": null, "emoji_name": null},
        {"id": "200000000000000042", "name": ""}
    ]);
    guild["threads"][0]["applied_tags"] = json!(["200000000000000041", "200000000000000049"]);
    let world = built(vec![
        dispatch(1, 1, "READY", bot_ready()),
        dispatch(2, 1, "GUILD_CREATE", guild),
    ]);
    let guild = &world.fixture["guilds"][0];
    let forum = guild["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == FORUM)
        .unwrap();
    assert_eq!(
        forum["available_tags"],
        json!([{"id": "200000000000000040", "name": "bug", "emoji_name": "🐛"},
               {"id": "200000000000000041", "name": "idea", "moderated": true}])
    );
    assert_eq!(
        guild["threads"][0]["applied_tags"],
        json!(["200000000000000041"]),
        "a tag the forum does not offer is dropped"
    );
    let store = loads(&world);
    let thread = store
        .channel(Snowflake(200000000000000020))
        .unwrap()
        .unwrap();
    assert_eq!(
        thread.applied_tags,
        Some(vec![Snowflake(200000000000000041)])
    );
    let forum = store
        .channel(Snowflake(FORUM.parse().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(forum.available_tags.map(|t| t.len()), Some(2));
}

#[test]
fn a_partial_ready_merges_its_changes_into_the_earlier_full_sample() {
    const RENAMED: &str = "200000000000000013";
    let full = user_ready();
    let mut partial = user_ready();
    partial["guilds"] = json!([{
        "id": GUILD, "data_mode": "partial", "version": 7,
        "partial_updates": {
            "properties": {"name": "Renamed Guild"},
            "channels": [{"id": RENAMED, "type": 0, "name": "new-channel", "position": 1,
                          "permission_overwrites": []}],
            "roles": [{"id": MODS, "name": "Mods", "permissions": "8", "position": 1}],
            "deleted_channel_ids": [GENERAL],
            "deleted_role_ids": []
        }
    }]);
    partial["merged_members"] = json!([[]]);
    let world = built(vec![
        dispatch(1, 7, "READY", full),
        dispatch(5, 8, "READY", partial),
        // The guild fetch the client makes afterwards completes what the cache held.
        rest(
            6,
            "GET",
            &format!("/guilds/{GUILD}/roles"),
            None,
            json!([{"id": "200000000000000003", "name": "Regulars", "permissions": "0", "position": 2}]),
        ),
        dispatch(
            7,
            8,
            "READY_SUPPLEMENTAL",
            json!({"guilds": [{"id": GUILD}], "merged_members": [[]],
                   "lazy_private_channels": [{"id": "300000000000000300", "type": 1, "recipient_ids": [BOT]}]}),
        ),
    ]);
    let guild = &world.fixture["guilds"][0];
    assert_eq!(guild["name"], "Renamed Guild");
    let channels: Vec<&Value> = guild["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(channels, [&json!("new-channel")], "general was deleted");
    let roles: Vec<&Value> = guild["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["name"])
        .collect();
    assert!(
        roles.contains(&&json!("Mods")) && roles.contains(&&json!("Regulars")),
        "{roles:?}"
    );
    let dms: Vec<&Value> = world.fixture["dms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["id"])
        .collect();
    assert!(dms.contains(&&json!("300000000000000300")), "{dms:?}");
    loads(&world);

    // A partial READY with nothing before it: only what it carries, and a note.
    let mut alone = user_ready();
    alone["guilds"] = json!([{"id": GUILD, "data_mode": "partial", "partial_updates": {}}]);
    let world = built(vec![dispatch(1, 7, "READY", alone)]);
    assert_warned(&world, "sent partial");
}

#[test]
fn passive_updates_refresh_members_and_known_channels_only() {
    let world = built(vec![
        dispatch(1, 7, "READY", user_ready()),
        dispatch(
            2,
            7,
            "PASSIVE_UPDATE_V2",
            json!({"guild_id": GUILD,
                "updated_members": [{"user": user("100000000000000006", "frank"), "roles": [], "nick": "Frankie"}],
                "updated_channels": [
                    {"id": GENERAL, "last_message_id": "300000000000000009"},
                    {"id": "200000000000000077", "last_message_id": "300000000000000008"}],
                "updated_voice_states": [], "removed_voice_states": []}),
        ),
    ]);
    let guild = &world.fixture["guilds"][0];
    let frank = guild["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == "100000000000000006")
        .expect("the passive update's member");
    assert_eq!(frank["nick"], "Frankie");
    let channels = guild["channels"].as_array().unwrap();
    assert_eq!(
        channels.len(),
        1,
        "no channel from a partial sample: {channels:?}"
    );
    assert_eq!(
        channels[0]["name"], "general",
        "the known channel keeps its name"
    );
    loads(&world);
}
