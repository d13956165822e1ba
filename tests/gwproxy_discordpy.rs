//! gateway-proxy with real bot libraries: discord.py (unmodified, from PyPI; its gateway is
//! the proxy, its REST base is `discord-mitm serve`) runs ping/pong and sees the same guild as
//! serve sends directly; then it is killed with SIGKILL, alice talks while it is down, and a
//! twilight-gateway shard RESUMEs the dead bot's session and gets every missed message, while
//! upstream the shard never identified again.
mod gwproxy_support;
#[path = "serve_gateway_support/mod.rs"]
mod serve_gateway_support;

use std::time::Duration;

use gwproxy_support::{config, free_port, Bot, Proxy, RawClient};
use serde_json::{json, Value};
use serve_gateway_support::{
    fixture, rest, Server, ALICE_ID, ALICE_TOKEN, BOT_TOKEN, GENERAL_ID, GUILD_ID,
};
use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Session, Shard, ShardId, StreamExt,
};

/// discord.py's `Intents.default()` plus `message_content`: what the bot identifies with and
/// what the proxy's shard runs with.
const BOT_INTENTS: u64 = 53_608_189;
const BOT_WAIT: Duration = Duration::from_secs(40);

fn bot_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BOT_TOKEN", BOT_TOKEN),
        ("ALICE_TOKEN", ALICE_TOKEN),
        ("ALICE_ID", ALICE_ID),
        ("GUILD_ID", GUILD_ID),
        ("GENERAL_ID", GENERAL_ID),
    ]
}

async fn start() -> (Server, Proxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    let (server, proxy) = tokio::task::spawn_blocking(move || {
        let server = Server::start(&fixture(None));
        let port = free_port();
        let mut config = config(port, &server.http(), BOT_TOKEN);
        config["intents"] = json!(BOT_INTENTS);
        let proxy = Proxy::start_in(&dir_path, &config);
        (server, proxy)
    })
    .await
    .unwrap();
    (server, proxy, dir)
}

/// What serve itself sends a bot with the same intents.
async fn direct_guild_create(server: &Server) -> Value {
    let mut direct = RawClient::connect(&server.ws()).await;
    direct.identify_with(BOT_TOKEN, BOT_INTENTS).await;
    let (guild, _) = direct.until("GUILD_CREATE").await;
    direct.close_resumable().await;
    guild["d"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discordpy_through_the_proxy_gets_serves_guild_state_and_replies_pong() {
    let (server, proxy, _dir) = start().await;
    let direct = direct_guild_create(&server).await;
    let (serve_http, proxy_ws) = (server.http(), proxy.ws());
    let (through_proxy, ok, seen) = tokio::task::spawn_blocking(move || {
        let mut bot = Bot::start("exit", &serve_http, &proxy_ws, &bot_env());
        let guild = bot.line("GUILD_CREATE ", BOT_WAIT);
        bot.line("SCENARIO gwproxy_pingpong OK", BOT_WAIT);
        let ok = bot.wait(Duration::from_secs(10));
        (guild, ok, bot.seen.clone())
    })
    .await
    .unwrap();
    assert!(ok, "the bot did not exit cleanly: {seen:?}");
    let through_proxy: Value = serde_json::from_str(&through_proxy).unwrap();
    assert_eq!(
        through_proxy, direct,
        "GUILD_CREATE through the proxy differs from serve's own"
    );
    drop(proxy);
    drop(server);
}

async fn next_event(shard: &mut Shard, what: &str) -> Event {
    match tokio::time::timeout(
        Duration::from_secs(15),
        shard.next_event(EventTypeFlags::all()),
    )
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    {
        Some(Ok(event)) => event,
        Some(Err(error)) => panic!("twilight failed while waiting for {what}: {error:?}"),
        None => panic!("shard ended while waiting for {what}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_bot_session_is_resumed_by_twilight_with_every_missed_message_in_order() {
    let (server, proxy, _dir) = start().await;
    let (serve_http, proxy_ws) = (server.http(), proxy.ws());
    let (bot, session) = tokio::task::spawn_blocking(move || {
        let mut bot = Bot::start("hold", &serve_http, &proxy_ws, &bot_env());
        let session = bot.line("SESSION ", BOT_WAIT);
        bot.line("SCENARIO gwproxy_pingpong OK", BOT_WAIT);
        (bot, session)
    })
    .await
    .unwrap();
    let (session_id, seq) = session.split_once(' ').expect("SESSION id seq");
    let seq: u64 = seq.parse().expect("numeric seq");
    let mut bot = bot;
    tokio::task::block_in_place(|| bot.kill9());

    // The bot is gone; alice keeps talking.
    let missed: Vec<String> = (0..8).map(|n| format!("while down {n}")).collect();
    for content in &missed {
        let (status, _) = rest(
            &server,
            ALICE_TOKEN,
            "POST",
            &format!("/channels/{GENERAL_ID}/messages"),
            Some(json!({"content": content})),
        )
        .await;
        assert_eq!(status, 200);
    }

    let config = ConfigBuilder::new(
        BOT_TOKEN.to_string(),
        Intents::from_bits_truncate(BOT_INTENTS),
    )
    .session(Session::new(seq, session_id.to_owned()))
    .resume_url(proxy.ws())
    .build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    let mut received = Vec::new();
    loop {
        match next_event(&mut shard, "the missed messages and RESUMED").await {
            Event::MessageCreate(message) => received.push(message.content.clone()),
            Event::Ready(_) => panic!("twilight identified: the session was not resumable"),
            Event::Resumed => break,
            _ => {}
        }
    }
    // Every message sent while the bot was dead, in order; at most the bot's own last events
    // (already seen by it) come before them.
    let first_missed = received
        .iter()
        .position(|content| content == &missed[0])
        .unwrap_or_else(|| panic!("missed messages not replayed: {received:?}"));
    assert_eq!(&received[first_missed..], &missed[..], "{received:?}");
    assert!(
        received[..first_missed]
            .iter()
            .all(|c| c == "ping" || c == "pong"),
        "{received:?}"
    );

    // And the session is live again.
    rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(json!({"content": "live again"})),
    )
    .await;
    loop {
        if let Event::MessageCreate(message) = next_event(&mut shard, "a live message").await {
            assert_eq!(message.content, "live again");
            break;
        }
    }

    // Upstream, the shard identified once and got one READY: neither the bot's death nor the
    // resume reached serve.
    let metrics = tokio::task::block_in_place(|| proxy.metrics());
    assert!(
        metrics.contains("gateway_shard_identifies_total{shard=\"0\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_events_total{shard=\"0\",event_type=\"READY\"} 1\n"),
        "{metrics}"
    );
    drop(proxy);
    drop(server);
}
