//! serenity 0.12 (from crates.io, unmodified; tests/serenity_bot/Cargo.lock) against the built
//! `discord-mitm serve`: REST through `HttpBuilder::proxy`, the gateway URL from GET /gateway,
//! IDENTIFY `compress: true` (serenity's per-payload zlib). It sees READY and the guild in its
//! cache, sends, edits, reacts, replies to alice's "ping", fetches members, starts a thread,
//! creates a channel and a role, gives carol the role and a nickname, pins an embed, bulk-deletes,
//! registers slash commands and answers alice's interactions (one with an ephemeral deferral
//! that alice alone sees), updates a message from alice's
//! button click, answers alice's DM, deletes, reads 36 more endpoints into
//! its strict models (audit log, bans, invites, webhooks, commands, threads…), and shuts down with a
//! clean close handshake — with no warning from serenity's parser on stderr.
mod serve_clients_support;
mod serve_gateway_support;

use std::time::Duration;

use serve_clients_support::{fixture, names, run, serenity};
use serve_gateway_support::{rest, Server, ALICE_ID, ALICE_TOKEN, BOT_ID, GENERAL_ID, GUILD_ID};

#[test]
fn serenity_runs_the_whole_scenario() {
    // Built before the server starts so the build's time does not count against the scenario.
    let command = serenity();
    let server = Server::start(&fixture());
    let (run, server) = run(server, "serenity", command, Duration::from_secs(90));

    let gateway = run.step("gateway");
    assert_eq!(gateway["url"], server.ws());
    let bot_gateway = run.step("gateway_bot");
    assert_eq!(bot_gateway["url"], server.ws());
    assert_eq!(bot_gateway["shards"], 1);
    assert_eq!(bot_gateway["remaining"], 1000);
    assert_eq!(bot_gateway["max_concurrency"], 1);

    let ready = run.step("ready");
    assert_eq!(ready["user"], "pingbot");
    assert_eq!(ready["user_id"], BOT_ID);
    assert_eq!(ready["bot"], true);
    assert_eq!(names(&ready["guilds"]), [GUILD_ID]);
    assert_eq!(ready["application_id"], BOT_ID);
    assert_eq!(ready["resume_gateway_url"], server.ws());
    assert_eq!(ready["version"], 10);
    assert!(ready["session_id_len"].as_u64().unwrap_or(0) >= 16);

    let guild_create = run.step("guild_create");
    assert_eq!(guild_create["id"], GUILD_ID);
    assert_eq!(guild_create["name"], "Test Guild");
    assert_eq!(guild_create["channels"], 4);
    assert_eq!(guild_create["roles"], 3);
    assert_eq!(guild_create["members"], 3);

    let cache = run.step("cache");
    assert_eq!(cache["name"], "Test Guild");
    assert_eq!(
        names(&cache["channels"]),
        ["Text", "Voice", "general", "secret"]
    );
    assert_eq!(names(&cache["roles"]), ["@everyone", "Bots", "Mods"]);
    assert_eq!(names(&cache["members"]), ["alice", "carol", "pingbot"]);
    assert_eq!(cache["member_count"], 3);
    assert_eq!(cache["owner_id"], ALICE_ID);

    let sent = run.step("sent");
    assert_eq!(sent["content"], "hello from serenity");
    assert_eq!(sent["author_bot"], true);
    assert_eq!(sent["guild_id"], GUILD_ID);
    assert_eq!(sent["member"], true);

    let edited = run.step("edited");
    assert_eq!(edited["rest_content"], "edited by serenity");
    assert_eq!(edited["event_content"], "edited by serenity");
    assert_eq!(edited["edited_timestamp"], true);

    let reacted = run.step("reacted");
    assert_eq!(reacted["emoji"], "👍");
    assert_eq!(reacted["user_id"], BOT_ID);
    assert_eq!(names(run.step("reaction_users")), ["pingbot"]);

    let alice = run.step("alice_message");
    assert_eq!(alice["content"], "ping");
    assert_eq!(alice["author"], "alice");
    assert_eq!(alice["member_roles"], 1, "the Mods role");
    assert_eq!(alice["cached_author"], "alice");
    let replied = run.step("replied");
    assert_eq!(replied["content"], "pong");
    assert_eq!(replied["references"], replied["ping_id"]);
    assert_eq!(replied["referenced_content"], "ping");

    let members = run.step("members");
    let mut listed = names(&members["listed"]);
    listed.sort_unstable();
    assert_eq!(listed, ["alice", "carol", "pingbot"]);
    assert_eq!(members["alice"], "alice");
    assert_eq!(members["alice_roles"], 1);
    assert_eq!(members["alice_joined"], true);

    let thread = run.step("thread");
    assert_eq!(thread["name"], "serenity thread");
    assert_eq!(thread["kind"], 11, "PUBLIC_THREAD");
    assert_eq!(thread["parent_id"], GENERAL_ID);

    assert_eq!(names(run.step("commands")), ["echo", "secret"]);
    let interaction = run.step("interaction");
    assert_eq!(interaction["name"], "echo");
    assert_eq!(interaction["user"], "alice");
    assert_eq!(interaction["option"], "hi");
    assert_eq!(interaction["answer"], "echo: hi");
    assert_eq!(interaction["original"], "echo: hi");

    let button = run.step("button");
    assert_eq!(button["custom_id"], "approve");
    assert_eq!(button["user"], "alice");
    assert_eq!(button["message_id_matches"], true);
    assert_eq!(button["content"], "approved");
    assert_eq!(button["components"], 0);

    // An ephemeral deferral: the first followup became the response, then was edited.
    let secret = run.step("secret");
    assert_eq!(secret["followup_id"], secret["edited_id"]);
    assert_eq!(secret["content"], "psst, edited");
    assert_eq!(secret["flags"], 64, "ephemeral, no longer loading");

    let dm = run.step("dm");
    assert_eq!(dm["content"], "psst");
    assert_eq!(dm["channel_matches"], true);
    assert_eq!(dm["answer"], "got it");
    assert_eq!(dm["answer_in_dm"], true);
    assert_eq!(dm["bot_dm_same_channel"], true);

    let management = run.step("management");
    assert_eq!(management["channel"], "serenity-made");
    assert_eq!(management["topic"], "made by serenity");
    assert_eq!(management["cached_channel"], "serenity-made");
    assert_eq!(management["role"], "Helpers");
    assert_eq!(management["role_colour"], 0x00ff00);
    assert_eq!(management["role_mentionable"], true);
    assert_eq!(management["carol_nick"], "caz");
    assert_eq!(management["carol_roles"], 1);
    assert_eq!(management["event_nick"], "caz");
    assert_eq!(management["event_roles"], 1);
    assert_eq!(management["cached_carol"]["nick"], "caz");
    assert_eq!(management["cached_carol"]["roles"], 1);
    assert_eq!(management["embed_title"], "Report");
    assert_eq!(names(&management["pins"]), ["Report"]);
    assert_eq!(management["bulk_deleted"], 2);

    assert!(run.steps.contains_key("deleted"));

    // Every read serenity's strict models deserialize, after a webhook, an invite and a ban exist.
    let reads = run.step("reads");
    assert_eq!(reads["webhook_message"], "via the hook");
    let outcomes = reads["reads"].as_object().expect("reads");
    assert!(outcomes.len() >= 36, "{reads}");
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|(_, outcome)| outcome["ok"] != true)
        .map(|(name, outcome)| format!("{name}: {}", outcome["error"]))
        .collect();
    assert!(
        failed.is_empty(),
        "serenity could not read:\n{}",
        failed.join("\n")
    );

    // serenity logs what it fails to parse or handle (and a close handshake the server does not
    // answer) as warnings; a run against Discord prints none.
    assert!(
        !run.stderr.contains("WARN") && !run.stderr.contains("ERROR"),
        "serenity complained:\n{}",
        run.stderr
    );

    // What alice sees afterwards: the webhook's message, the interaction's answer, the reply stored
    // as a reply; the deleted message is gone.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (status, messages) = runtime.block_on(rest(
        &server,
        ALICE_TOKEN,
        "GET",
        &format!("/channels/{GENERAL_ID}/messages?limit=50"),
        None,
    ));
    assert_eq!(status, 200, "{messages}");
    let list = messages.as_array().expect("message list");
    let contents: Vec<&str> = list.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(
        contents,
        ["via the hook", "approved", "echo: hi", "pong", "ping"]
    );
    assert_eq!(
        list[0]["webhook_id"], list[0]["author"]["id"],
        "a webhook message"
    );
    assert_eq!(list[0]["author"]["username"], "serenity hook");
    assert_eq!(
        list[3]["message_reference"]["message_id"],
        replied["ping_id"]
    );

    // The ephemeral answer is not channel history (the list above) and no channel route
    // reaches it, not even for alice; her view of the interaction shows it answered.
    let secret_id = secret["edited_id"].as_str().expect("secret id");
    let path = format!("/channels/{GENERAL_ID}/messages/{secret_id}");
    let (status, body) = runtime.block_on(rest(&server, ALICE_TOKEN, "GET", &path, None));
    assert_eq!((status, &body["code"]), (404, &serde_json::json!(10008)));
    let interaction_id = secret["interaction_id"].as_str().expect("interaction id");
    let path = format!("/_mitm/interactions/{interaction_id}");
    let (status, state) = runtime.block_on(rest(&server, ALICE_TOKEN, "GET", &path, None));
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["status"], "deferred", "answered with callback 5");
    assert_eq!(state["original"]["content"], "psst, edited");
    assert_eq!(state["original"]["flags"], 64);
    assert_eq!(
        state["original"]["interaction_metadata"]["user"]["id"],
        ALICE_ID
    );
}
