//! discord.js 14 (from npm, unmodified; tests/js/package-lock.json) against the built
//! `discord-mitm serve`: REST through `rest.api`, the gateway URL from GET /gateway/bot. It logs
//! in, sees READY and the guild cache, sends, edits, reacts, replies to alice's "ping", reads
//! history, fetches members (REST and gateway op 8), starts a thread, creates a channel and a
//! role, gives carol the role and a nickname, pins an embed, bulk-deletes, registers a slash
//! command and answers alice's interaction, updates a message from alice's button click, answers
//! alice's DM, deletes — over zlib-stream (zlib-sync) and uncompressed (discord.js without
//! zlib-sync), with serve's rate limits on and off. It RESUMEs after its socket is cut, getting
//! what it missed; runs with two shards; and logs into the demo world with the token the banner
//! prints. discord.js 14's @discordjs/ws 1.x speaks neither zstd-stream nor ETF.
mod serve_clients_support;
mod serve_gateway_support;
mod serve_support;

use std::time::Duration;

use serde_json::Value;
use serve_clients_support::{discordjs, fixture, names, run, run_against, Run};
use serve_gateway_support::{rest, Server, ALICE_ID, ALICE_TOKEN, BOT_ID, GENERAL_ID, GUILD_ID};

const TIMEOUT: Duration = Duration::from_secs(90);

fn scenario(compress: &str, extra_args: &[&str]) -> (Run, Server) {
    let server = Server::start_with(&fixture(), extra_args);
    let mut command = discordjs(compress);
    if extra_args.contains(&"--gateway-heartbeat-interval") {
        command.env("DJS_HEARTBEAT_WAIT_MS", "5000");
    }
    run(server, "discord.js", command, TIMEOUT)
}

/// What every run must show, whatever the transport.
fn check_scenario(run: &Run, server: &Server) {
    let ready = run.step("ready");
    assert_eq!(ready["user"], "pingbot");
    assert_eq!(ready["bot"], true);
    assert_eq!(ready["user_id"], BOT_ID);
    assert_eq!(
        ready["application_id"], BOT_ID,
        "client.application from READY"
    );
    assert_eq!(names(&ready["guilds"]), [GUILD_ID]);
    let debug = ready["debug"].to_string();
    assert!(
        debug.contains(&format!("URL: {}", server.ws())),
        "gateway URL from /gateway/bot: {debug}"
    );
    assert!(
        debug.contains("Total: 1000"),
        "session_start_limit: {debug}"
    );

    let cache = run.step("cache");
    assert_eq!(cache["name"], "Test Guild");
    assert_eq!(cache["available"], true);
    assert_eq!(cache["owner_id"], ALICE_ID);
    assert_eq!(cache["member_count"], 3);
    assert_eq!(
        names(&cache["channels"]),
        ["Text", "Voice", "general", "secret"]
    );
    assert_eq!(names(&cache["roles"]), ["@everyone", "Bots", "Mods"]);
    assert_eq!(cache["everyone_role"], GUILD_ID);
    assert_eq!(names(&cache["members"]), ["alice", "carol", "pingbot"]);
    assert_eq!(cache["can_send_in_general"], true);
    assert_eq!(cache["me_roles"], 2, "Bots and @everyone");

    let sent = run.step("sent");
    assert_eq!(sent["same_id"], true);
    assert_eq!(sent["content"], "hello from discord.js");
    assert_eq!(sent["guild_id"], GUILD_ID);
    assert_eq!(sent["member_cached"], true);

    let edited = run.step("edited");
    assert_eq!(edited["rest_content"], "edited by discord.js");
    assert_eq!(edited["old_content"], "hello from discord.js");
    assert_eq!(edited["new_content"], "edited by discord.js");
    assert_eq!(edited["edited_at"], true);

    let reacted = run.step("reacted");
    assert_eq!(reacted["emoji"], "👍");
    assert_eq!(reacted["user_id"], BOT_ID);
    assert_eq!(reacted["count"], 1);
    assert_eq!(names(&reacted["users"]), ["pingbot"]);

    let alice = run.step("alice_message");
    assert_eq!(alice["content"], "ping", "MESSAGE_CONTENT intent granted");
    assert_eq!(alice["author"], "alice");
    assert_eq!(alice["member_roles"], 2, "Mods and @everyone");
    let replied = run.step("replied");
    assert_eq!(replied["content"], "pong");
    assert_eq!(replied["reference"], replied["ping_id"]);
    assert_eq!(replied["reference_content"], "ping");

    assert_eq!(
        names(run.step("history")),
        ["pong", "ping", "edited by discord.js"]
    );

    let members = run.step("members");
    assert_eq!(members["alice"], "alice");
    assert_eq!(names(&members["alice_roles"]), ["Mods"]);
    assert_eq!(members["alice_joined"], true);
    assert_eq!(names(&members["all"]), ["alice", "carol", "pingbot"]);

    let thread = run.step("thread");
    assert_eq!(thread["same_id"], true);
    assert_eq!(thread["name"], "discord.js thread");
    assert_eq!(thread["parent_id"], GENERAL_ID);
    assert_eq!(thread["is_thread"], true);
    assert_eq!(thread["message_channel"], true);

    let interaction = run.step("interaction");
    assert_eq!(names(&interaction["commands"]), ["echo"]);
    assert_eq!(interaction["command"], "echo");
    assert_eq!(interaction["user"], "alice");
    assert_eq!(interaction["option"], "hi");
    assert_eq!(interaction["in_guild"], true);
    assert_eq!(interaction["replied"], true);
    assert_eq!(
        interaction["original"], "echo: hi",
        "GET …/messages/%40original"
    );
    assert_eq!(interaction["answer"], "echo: hi");
    assert_eq!(interaction["answer_interaction_user"], "alice");

    let button = run.step("button");
    assert_eq!(button["custom_id"], "approve");
    assert_eq!(button["user"], "alice");
    assert_eq!(button["message_id_matches"], true);
    assert_eq!(
        button["content"], "approved",
        "updated in place (callback type 7)"
    );
    assert_eq!(button["components"], 0);

    let dm = run.step("dm");
    assert_eq!(
        dm["content"], "psst",
        "a DM in a channel discord.js had not cached"
    );
    assert_eq!(dm["in_guild"], false);
    assert_eq!(dm["channel_id_matches"], true);
    assert_eq!(dm["answer"], "got it");
    assert_eq!(
        dm["bot_dm_same_channel"], true,
        "the bot's DM reuses the channel"
    );

    let management = run.step("management");
    assert_eq!(management["channel"]["name"], "djs-made");
    assert_eq!(management["channel"]["topic"], "made by discord.js");
    assert_eq!(management["channel"]["parent_id"], "200000000000000010");
    assert_eq!(management["channel"]["same_id"], true);
    assert_eq!(management["role"]["name"], "Helpers");
    assert_eq!(management["role"]["color"], 0x00ff00);
    assert_eq!(management["role"]["mentionable"], true);
    assert_eq!(names(&management["carol_roles"]), ["Helpers"]);
    assert_eq!(management["carol_nick"], "caz");
    assert_eq!(management["embed"]["title"], "Report");
    assert_eq!(management["embed"]["fields"], 1);
    assert_eq!(names(&management["pins"]), ["Report"]);
    assert_eq!(
        management["bulk_deleted"], 9,
        "an embed, one more, a burst of 7"
    );
    assert_eq!(management["bulk_event"], 9);

    let deleted = run.step("deleted");
    assert_eq!(deleted["id_matches"], true);
    assert_eq!(deleted["was_cached"], true);

    // What alice sees afterwards over REST: the reply, the interaction's answer and its
    // follow-up, the button message as updated; the deleted message is gone.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (status, messages) = runtime.block_on(rest(
        server,
        ALICE_TOKEN,
        "GET",
        &format!("/channels/{GENERAL_ID}/messages?limit=50"),
        None,
    ));
    assert_eq!(status, 200, "{messages}");
    let contents: Vec<&str> = messages
        .as_array()
        .expect("message list")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(
        contents,
        ["approved", "and a follow-up", "echo: hi", "pong", "ping"]
    );
    let pong = messages
        .as_array()
        .and_then(|list| list.iter().find(|m| m["content"] == "pong"))
        .expect("pong stored");
    assert_eq!(pong["message_reference"]["message_id"], replied["ping_id"]);
    assert_eq!(pong["author"]["id"], BOT_ID);
    let answer: &Value = &messages[2];
    assert_eq!(answer["interaction_metadata"]["user"]["id"], ALICE_ID);
    assert_eq!(answer["author"]["id"], BOT_ID, "written by the bot user");
    assert_eq!(answer["author"]["username"], "pingbot");
    assert_eq!(answer["webhook_id"], BOT_ID, "the application's webhook");
}

#[test]
fn discordjs_runs_the_whole_scenario_over_zlib_stream() {
    let (run, server) = scenario("zlib-stream", &[]);
    check_scenario(&run, &server);
    let rest = run.step("rest");
    assert_eq!(rest["status_429"], 0, "{rest}");
    assert_eq!(rest["rate_limited_waits"], 0, "limits are off: {rest}");
    let debug = run.step("ready")["debug"].to_string();
    assert!(
        debug.contains("?v=10&encoding=json&compress=zlib-stream")
            && debug.contains("compression: zlib-stream"),
        "zlib-sync is installed, so discord.js asks for zlib-stream: {debug}"
    );
}

/// Also with a 1 s heartbeat interval: discord.js heartbeats during the run, gets its ACKs (a
/// measured ping) and never declares the connection a zombie.
#[test]
fn discordjs_runs_the_whole_scenario_over_zlib_stream_with_per_connection_history() {
    let (run, server) = scenario(
        "zlib-stream",
        &[
            "--gateway-zlib-history",
            "--gateway-heartbeat-interval",
            "1000",
        ],
    );
    check_scenario(&run, &server);
    let heartbeat = run.step("heartbeat");
    assert_eq!(heartbeat["first_heartbeat"], true, "{heartbeat}");
    assert!(
        heartbeat["ping_ms"].as_i64().unwrap_or(-1) >= 0,
        "{heartbeat}"
    );
    assert_eq!(heartbeat["zombie"], false, "{heartbeat}");
}

/// With serve's rate limits on (5 requests per second per route), discord.js paces its burst by
/// the X-RateLimit headers: it waits on its own and never runs into a 429.
#[test]
fn discordjs_paces_itself_by_the_rate_limit_headers() {
    let (run, server) = scenario("zlib-stream", &["--rate-limit", "5/1"]);
    check_scenario(&run, &server);
    let rest = run.step("rest");
    assert_eq!(rest["status_429"], 0, "{rest}");
    assert!(
        rest["rate_limited_waits"].as_u64().unwrap_or(0) >= 1,
        "{rest}"
    );
    assert_eq!(rest["global_waits"], 0, "{rest}");
}

#[test]
fn discordjs_runs_the_whole_scenario_uncompressed_without_zlib_sync() {
    let (run, server) = scenario("none", &[]);
    check_scenario(&run, &server);
    let debug = run.step("ready")["debug"].to_string();
    assert!(
        debug.contains("?v=10&encoding=json\"") || debug.contains("?v=10&encoding=json\\n"),
        "{debug}"
    );
    assert!(debug.contains("compression: none"), "{debug}");
}

#[test]
fn discordjs_resumes_after_its_socket_is_cut_and_gets_the_missed_message() {
    let server = Server::start(&fixture());
    let mut command = discordjs("zlib-stream");
    command.env("DJS_SCENARIO", "resume");
    let (run, _server) = run(server, "discord.js", command, TIMEOUT);
    let resumed = run.step("resumed");
    assert_eq!(resumed["shard"], 0);
    assert_eq!(resumed["content"], "posted while the bot was away");
    assert_eq!(resumed["author"], "alice");
    assert_eq!(resumed["same_session"], true, "RESUMED, not a new IDENTIFY");
    assert!(
        resumed["replayed"].as_u64().unwrap_or(0) >= 1,
        "the message was posted before the bot reconnected, so it must be replayed: {resumed}"
    );
    let debug = resumed["debug"].to_string();
    assert!(debug.contains("Resuming session"), "{debug}");
    assert_eq!(run.step("live")["content"], "after the resume");
}

/// Two shards in one client: both identify, the guild is on shard (guild_id >> 22) % 2, and
/// alice's message arrives once, on that shard.
#[test]
fn discordjs_with_two_shards_gets_each_event_once_on_the_guilds_shard() {
    let server = Server::start(&fixture());
    let mut command = discordjs("zlib-stream");
    command.env("DJS_SCENARIO", "shards");
    let (run, _server) = run(server, "discord.js", command, TIMEOUT);
    let shards = run.step("shards");
    assert_eq!(shards["shard_count"], 2);
    assert_eq!(shards["shards"], serde_json::json!([0, 1]));
    assert_eq!(shards["statuses"], serde_json::json!([0, 0]), "both READY");
    let expected = (GUILD_ID.parse::<u64>().expect("id") >> 22) % 2;
    assert_eq!(shards["expected_shard"], expected);
    assert_eq!(shards["guild_shard"], expected);
    assert_eq!(shards["message_shards"], serde_json::json!([expected]));
}

/// The newcomer's path: `serve` with no fixture makes a demo world and prints the tokens; with
/// the bot token from that banner discord.js sees the demo guild, talks in #general and gets the
/// demo user's "ping" (tokens as printed, ids discovered).
#[test]
fn discordjs_logs_into_the_demo_world_with_the_printed_bot_token() {
    let server = serve_support::Server::start(None, &["--rate-limit", "off"]);
    let account = |kind: &str| -> (String, String) {
        let line = server
            .banner
            .lines()
            .find(|l| l.trim_start().starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} account in the banner:\n{}", server.banner));
        let id = line.split_whitespace().nth(3).expect("id").to_string();
        let token = line
            .split("Authorization: ")
            .nth(1)
            .and_then(|rest| rest.split("  ").next())
            .expect("token")
            .trim()
            .trim_start_matches("Bot ")
            .to_string();
        (id, token)
    };
    let (user_id, user_token) = account("user ");
    let (_, bot_token) = account("bot ");
    let mut command = discordjs("zlib-stream");
    command
        .env("DJS_SCENARIO", "demo")
        .env("BOT_TOKEN", &bot_token)
        .env("ALICE_TOKEN", &user_token)
        .env("ALICE_ID", &user_id);
    let http = format!("http://{}", server.addr);
    let run = run_against(&http, "discord.js", command, TIMEOUT)
        .unwrap_or_else(|failure| panic!("{failure}\n--- banner\n{}", server.banner));
    assert_eq!(run.step("ready")["user"], "demobot");
    let demo = run.step("demo");
    assert_eq!(demo["guilds"], 1);
    assert_eq!(demo["guild"], "Demo Guild");
    assert_eq!(
        names(&demo["channels"]),
        [
            "0:bot-testing",
            "0:general",
            "2:General",
            "4:Text Channels",
            "4:Voice Channels"
        ]
    );
    // The demo world's second person (`friend`, the demo user's friend) is a member too.
    assert_eq!(names(&demo["members"]), ["demo", "demobot", "friend"]);
    assert_eq!(demo["channel"], "general");
    assert_eq!(demo["ping"], "ping");
    assert_eq!(demo["ping_author"], "demo");
    assert_eq!(demo["pong_reference"], true);
}
