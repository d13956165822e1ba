//! Every mutation publishes the dispatch events Discord would send (driven in-process).
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast::Receiver;

use crate::backend::permissions::bits;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;
use crate::{
    backend::events::{Audience, Event},
    gateway::intents,
};

const FIXTURE: &str = r#"{"users": [
  {"id": "11", "username": "alice", "token": "alice"},
  {"id": "12", "username": "pingbot", "bot": true, "token": "bot"},
  {"id": "13", "username": "bob", "token": "bob"},
  {"id": "14", "username": "carol", "token": "carol"}],
 "guilds": [{"id": "100", "name": "Guild", "owner_id": "11",
   "roles": [{"id": "101", "name": "Mods", "permissions": "8", "position": 2}],
   "channels": [{"id": "110", "name": "general", "type": 0}],
   "members": [{"user_id": "11"}, {"user_id": "12", "roles": ["101"]}, {"user_id": "13"}]}]}"#;

struct Harness {
    state: AppState,
    events: Receiver<Arc<Event>>,
}

impl Harness {
    fn new() -> Harness {
        let state = super::test_support::state_with(FIXTURE);
        let events = state.bus.subscribe();
        Harness { state, events }
    }

    async fn call(&mut self, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
        super::test_support::call(&self.state, method, path, token, body).await
    }

    /// [`Harness::call`] as the bot application.
    async fn bot(&mut self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, "Bot bot", body).await
    }

    /// Events published since the last drain, audit log entries left out.
    fn drain(&mut self) -> Vec<Arc<Event>> {
        let mut out = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            if event.name != "GUILD_AUDIT_LOG_ENTRY_CREATE" {
                out.push(event);
            }
        }
        out
    }

    /// Calls as `token` and returns the answer with the events the call published.
    async fn act(
        &mut self,
        token: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> (Value, Vec<Arc<Event>>) {
        let (_, answer) = self.call(method, path, token, body).await;
        (answer, self.drain())
    }

    /// Calls as `token` and asserts the names of the events the call published, in order.
    async fn expect(
        &mut self,
        token: &str,
        method: &str,
        path: &str,
        body: Value,
        names: &[&str],
    ) -> Value {
        let (answer, events) = self.act(token, method, path, body).await;
        let published: Vec<&str> = events.iter().map(|e| e.name).collect();
        assert_eq!(published, names, "{method} {path}");
        answer
    }
}

fn guild_channel(guild: u64, channel: u64) -> Audience {
    Audience::Guild {
        guild_id: Snowflake(guild),
        channel_id: Some(Snowflake(channel)),
        required_permission: 0,
    }
}

const BOT: &str = "Bot bot";

#[tokio::test]
async fn message_lifecycle_publishes_create_update_delete_bulk() {
    let mut h = Harness::new();
    let (status, message) = h
        .bot(
            "POST",
            "/channels/110/messages",
            json!({"content": "hi <@13>"}),
        )
        .await;
    assert_eq!(status, 200);
    let events = h.drain();
    assert_eq!(events.len(), 1);
    let create = &events[0];
    assert_eq!(create.name, "MESSAGE_CREATE");
    assert_eq!(create.audience, guild_channel(100, 110));
    assert_eq!(create.intents, intents::GUILD_MESSAGES);
    assert!(create.carries_message_content);
    assert_eq!(create.data["guild_id"], "100");
    assert_eq!(create.data["member"]["roles"], json!(["101"]));
    assert!(create.data["mentions"][0]["member"]["joined_at"].is_string());
    assert_eq!(create.data["content"], "hi <@13>");
    let path = format!("/channels/110/messages/{}", message["id"].as_str().unwrap());
    let (_, update) = h
        .act(BOT, "PATCH", &path, json!({"content": "edited"}))
        .await;
    assert_eq!(update[0].name, "MESSAGE_UPDATE");
    assert_eq!(update[0].data["content"], "edited");
    let (_, delete) = h.act(BOT, "DELETE", &path, json!({})).await;
    assert_eq!(delete[0].name, "MESSAGE_DELETE");
    assert_eq!(
        delete[0].data,
        json!({"id": message["id"], "channel_id": "110", "guild_id": "100"})
    );
    let (_, a) = h
        .bot("POST", "/channels/110/messages", json!({"content": "a"}))
        .await;
    let (_, b) = h
        .bot("POST", "/channels/110/messages", json!({"content": "b"}))
        .await;
    h.drain();
    let ids = json!({"messages": [a["id"], b["id"]]});
    let (_, bulk) = h
        .act(BOT, "POST", "/channels/110/messages/bulk-delete", ids)
        .await;
    assert_eq!(bulk[0].name, "MESSAGE_DELETE_BULK");
    assert_eq!(bulk[0].data["ids"], json!([a["id"], b["id"]]));
    let (_, typing) = h
        .act("bob", "POST", "/channels/110/typing", json!({}))
        .await;
    assert_eq!(typing[0].name, "TYPING_START");
    assert_eq!(typing[0].intents, intents::GUILD_MESSAGE_TYPING);
    assert_eq!(typing[0].data["user_id"], "13");
}

#[tokio::test]
async fn reactions_and_pins_publish_their_events() {
    let mut h = Harness::new();
    let (_, message) = h
        .call(
            "POST",
            "/channels/110/messages",
            "bob",
            json!({"content": "x"}),
        )
        .await;
    let id = message["id"].as_str().unwrap();
    let base = format!("/channels/110/messages/{id}");
    let thumbs = format!("{base}/reactions/%F0%9F%91%8D");
    h.drain();
    let (_, add) = h.act(BOT, "PUT", &format!("{thumbs}/@me"), json!({})).await;
    assert_eq!(add[0].name, "MESSAGE_REACTION_ADD");
    assert_eq!(add[0].intents, intents::GUILD_MESSAGE_REACTIONS);
    assert_eq!(add[0].data["emoji"], json!({"id": null, "name": "👍"}));
    assert_eq!(add[0].data["message_author_id"], "13");
    assert_eq!(add[0].data["member"]["user"]["id"], "12");
    let mine = format!("{thumbs}/@me");
    h.expect(
        BOT,
        "DELETE",
        &mine,
        json!({}),
        &["MESSAGE_REACTION_REMOVE"],
    )
    .await;
    h.act("bob", "PUT", &mine, json!({})).await;
    h.expect(
        BOT,
        "DELETE",
        &thumbs,
        json!({}),
        &["MESSAGE_REACTION_REMOVE_EMOJI"],
    )
    .await;
    let all = format!("{base}/reactions");
    h.expect(
        BOT,
        "DELETE",
        &all,
        json!({}),
        &["MESSAGE_REACTION_REMOVE_ALL"],
    )
    .await;
    let pinned = ["MESSAGE_UPDATE", "CHANNEL_PINS_UPDATE", "MESSAGE_CREATE"];
    h.expect(
        BOT,
        "PUT",
        &format!("/channels/110/pins/{id}"),
        json!({}),
        &pinned,
    )
    .await;
}

#[tokio::test]
async fn guild_structure_changes_publish_channel_role_and_member_events() {
    let mut h = Harness::new();
    let (channel, events) = h
        .act(BOT, "POST", "/guilds/100/channels", json!({"name": "new"}))
        .await;
    assert_eq!(events[0].name, "CHANNEL_CREATE");
    assert_eq!(events[0].intents, intents::GUILDS);
    let path = format!("/channels/{}", channel["id"].as_str().unwrap());
    h.expect(
        BOT,
        "PATCH",
        &path,
        json!({"topic": "t"}),
        &["CHANNEL_UPDATE"],
    )
    .await;
    let overwrite = json!({"type": 1, "deny": "1024"});
    let bob = format!("{path}/permissions/13");
    h.expect(BOT, "PUT", &bob, overwrite, &["CHANNEL_UPDATE"])
        .await;
    h.expect(BOT, "DELETE", &path, json!({}), &["CHANNEL_DELETE"])
        .await;

    let (role, created) = h
        .act(BOT, "POST", "/guilds/100/roles", json!({"name": "r"}))
        .await;
    assert_eq!(created[0].name, "GUILD_ROLE_CREATE");
    assert_eq!(created[0].data["role"]["name"], "r");
    let rid = role["id"].as_str().unwrap().to_string();
    let role_path = format!("/guilds/100/roles/{rid}");
    let renamed = json!({"name": "r2"});
    h.expect(BOT, "PATCH", &role_path, renamed, &["GUILD_ROLE_UPDATE"])
        .await;
    let grant = format!("/guilds/100/members/13/roles/{rid}");
    let (_, member) = h.act(BOT, "PUT", &grant, json!({})).await;
    assert_eq!(member[0].name, "GUILD_MEMBER_UPDATE");
    assert_eq!(member[0].intents, intents::GUILD_MEMBERS);
    assert_eq!(member[0].data["roles"], json!([rid]));
    let deleted = ["GUILD_ROLE_DELETE", "GUILD_MEMBER_UPDATE"];
    h.expect(BOT, "DELETE", &role_path, json!({}), &deleted)
        .await;

    let (_, update) = h
        .act("alice", "PATCH", "/guilds/100", json!({"name": "Renamed"}))
        .await;
    assert_eq!(update[0].name, "GUILD_UPDATE");
    assert_eq!(update[0].data["name"], "Renamed");
    let emoji = json!({"name": "blob", "image": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="});
    h.expect(
        BOT,
        "POST",
        "/guilds/100/emojis",
        emoji,
        &["GUILD_EMOJIS_UPDATE"],
    )
    .await;
    let hook = json!({"name": "hook"});
    h.expect(
        BOT,
        "POST",
        "/channels/110/webhooks",
        hook,
        &["WEBHOOKS_UPDATE"],
    )
    .await;
    let thread_events = [
        "THREAD_MEMBERS_UPDATE",
        "THREAD_MEMBER_UPDATE",
        "THREAD_CREATE",
    ];
    let thread = json!({"name": "t", "type": 11});
    let thread = h
        .expect(BOT, "POST", "/channels/110/threads", thread, &thread_events)
        .await;
    assert_eq!(thread["type"], 11);
}

#[tokio::test]
async fn joins_kicks_and_bans_reach_the_guild_and_the_user() {
    let mut h = Harness::new();
    let (invite, created) = h.act(BOT, "POST", "/channels/110/invites", json!({})).await;
    assert_eq!(created[0].name, "INVITE_CREATE");
    assert_eq!(
        created[0].audience,
        Audience::Guild {
            guild_id: Snowflake(100),
            channel_id: Some(Snowflake(110)),
            required_permission: bits::MANAGE_CHANNELS
        }
    );
    let code = format!("/invites/{}", invite["code"].as_str().unwrap());
    let (_, joined) = h.act("carol", "POST", &code, json!({})).await;
    assert_eq!(joined[0].name, "GUILD_MEMBER_ADD");
    assert_eq!(joined[0].data["guild_id"], "100");
    assert_eq!(joined[1].name, "GUILD_CREATE");
    assert_eq!(joined[1].audience, Audience::Users(vec![Snowflake(14)]));
    assert_eq!(joined[1].data["unavailable"], false);
    assert!(joined[1].data["members"].as_array().unwrap().len() >= 4);
    assert!(joined[1].data["channels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == "110"));
    let (_, kicked) = h
        .act(BOT, "DELETE", "/guilds/100/members/14", json!({}))
        .await;
    assert_eq!(kicked[0].name, "GUILD_MEMBER_REMOVE");
    assert_eq!(kicked[1].name, "GUILD_DELETE");
    assert_eq!(kicked[1].audience, Audience::Users(vec![Snowflake(14)]));
    let banned = ["GUILD_MEMBER_REMOVE", "GUILD_DELETE", "GUILD_BAN_ADD"];
    h.expect(BOT, "PUT", "/guilds/100/bans/13", json!({}), &banned)
        .await;
    h.expect(
        BOT,
        "DELETE",
        "/guilds/100/bans/13",
        json!({}),
        &["GUILD_BAN_REMOVE"],
    )
    .await;
}

#[tokio::test]
async fn dms_user_updates_and_audit_entries_go_to_the_right_people() {
    let mut h = Harness::new();
    let (dm, _) = h
        .act(
            "carol",
            "POST",
            "/users/@me/channels",
            json!({"recipient_id": "12"}),
        )
        .await;
    let messages = format!("/channels/{}/messages", dm["id"].as_str().unwrap());
    let (_, events) = h
        .act("carol", "POST", &messages, json!({"content": "psst"}))
        .await;
    let message = events.iter().find(|e| e.name == "MESSAGE_CREATE").unwrap();
    assert_eq!(
        message.audience,
        Audience::Users(vec![Snowflake(14), Snowflake(12)])
    );
    assert_eq!(message.intents, intents::DIRECT_MESSAGES);
    assert!(message.data.get("guild_id").is_none());
    let (_, update) = h
        .act(
            "bob",
            "PATCH",
            "/users/@me",
            json!({"global_name": "Bobby"}),
        )
        .await;
    assert_eq!(update[0].name, "USER_UPDATE");
    assert_eq!(update[0].audience, Audience::Users(vec![Snowflake(13)]));
    // Audit log entries are for those who can read the audit log.
    h.call("PATCH", "/guilds/100", "alice", json!({"description": "d"}))
        .await;
    let mut audit = None;
    while let Ok(event) = h.events.try_recv() {
        if event.name == "GUILD_AUDIT_LOG_ENTRY_CREATE" {
            audit = Some(event);
        }
    }
    let audit = audit.expect("an audit event");
    assert_eq!(audit.intents, intents::GUILD_MODERATION);
    assert_eq!(
        audit.audience,
        Audience::Guild {
            guild_id: Snowflake(100),
            channel_id: None,
            required_permission: bits::VIEW_AUDIT_LOG
        }
    );
    assert_eq!(audit.data["action_type"], 1);
}

#[tokio::test]
async fn failed_requests_publish_nothing() {
    let mut h = Harness::new();
    let (status, _) = h
        .call(
            "POST",
            "/channels/110/messages",
            "bob",
            json!({"content": ""}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = h
        .call("POST", "/guilds/100/roles", "bob", json!({"name": "x"}))
        .await;
    assert_eq!(status, 403);
    assert!(h.drain().is_empty());
}

#[tokio::test]
async fn opening_a_dm_tells_the_opening_user_but_not_bots() {
    let mut h = Harness::new();
    let open = json!({"recipient_id": "12"});
    let (status, dm) = h
        .call("POST", "/users/@me/channels", "carol", open.clone())
        .await;
    assert_eq!(status, 200);
    let events = h.drain();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].name, "CHANNEL_CREATE");
    assert_eq!(events[0].audience, Audience::Users(vec![Snowflake(14)]));
    assert_eq!(events[0].data["id"], dm["id"]);
    // Opening it again creates nothing new.
    h.expect("carol", "POST", "/users/@me/channels", open, &[])
        .await;
    // A bot opening a DM gets no CHANNEL_CREATE (Discord sends none for DMs to bots).
    let open = json!({"recipient_id": "13"});
    h.expect(BOT, "POST", "/users/@me/channels", open, &[])
        .await;
}
