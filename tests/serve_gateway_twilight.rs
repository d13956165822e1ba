//! twilight-gateway (zlib-stream) against the built `discord-mitm serve`: its strict models must
//! parse READY, GUILD_CREATE, MESSAGE_CREATE, GUILD_MEMBERS_CHUNK and the events REST causes.
mod serve_gateway_support;

use std::time::Duration;

use serde_json::json;
use serve_gateway_support::*;
use twilight_gateway::{ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt};
use twilight_model::gateway::payload::outgoing::RequestGuildMembers;
use twilight_model::id::Id;

async fn next_event(shard: &mut Shard, what: &str) -> Event {
    let event = tokio::time::timeout(
        Duration::from_secs(15),
        shard.next_event(EventTypeFlags::all()),
    )
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    match event {
        Some(Ok(event)) => event,
        Some(Err(error)) => {
            panic!("twilight could not take an event while waiting for {what}: {error:?}")
        }
        None => panic!("shard ended while waiting for {what}"),
    }
}

#[tokio::test]
async fn twilight_strict_models_parse_ready_guild_create_and_message_create() {
    twilight_session(&[]).await;
}

/// One compression context per connection instead of spliced bodies: twilight's debug-build
/// inflater must not underflow on it either.
#[tokio::test]
async fn twilight_reads_per_connection_zlib_history() {
    twilight_session(&["--gateway-zlib-history"]).await;
}

async fn twilight_session(serve_args: &[&str]) {
    let server = Server::start_with(&fixture(None), serve_args);
    let intents = Intents::GUILDS
        | Intents::GUILD_MEMBERS
        | Intents::GUILD_MESSAGES
        | Intents::MESSAGE_CONTENT
        | Intents::GUILD_MESSAGE_REACTIONS
        | Intents::GUILD_PRESENCES
        | Intents::GUILD_VOICE_STATES;
    let config = ConfigBuilder::new(BOT_TOKEN.to_string(), intents)
        .proxy_url(server.ws())
        .build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    let ready = loop {
        if let Event::Ready(ready) = next_event(&mut shard, "READY").await {
            break ready;
        }
    };
    assert_eq!(ready.user.id.get().to_string(), BOT_ID);
    assert_eq!(ready.guilds.len(), 1);
    assert!(ready.guilds[0].unavailable);
    assert_eq!(ready.application.id.get().to_string(), BOT_ID);
    assert_eq!(ready.resume_gateway_url, server.ws());
    let guild = match next_event(&mut shard, "GUILD_CREATE").await {
        Event::GuildCreate(create) => match *create {
            twilight_model::gateway::payload::incoming::GuildCreate::Available(guild) => guild,
            other => panic!("guild unavailable: {other:?}"),
        },
        other => panic!("expected GUILD_CREATE, got {other:?}"),
    };
    assert_eq!(guild.name, "Test Guild");
    assert_eq!(guild.channels.len(), 4);
    assert_eq!(guild.members.len(), 3);
    assert_eq!(guild.member_count, Some(3));
    assert!(guild.roles.iter().any(|r| r.name == "Mods"));

    let (status, _) = rest(
        &server,
        ALICE_TOKEN,
        "POST",
        &format!("/channels/{GENERAL_ID}/messages"),
        Some(json!({"content": "hello twilight"})),
    )
    .await;
    assert_eq!(status, 200);
    let message = loop {
        if let Event::MessageCreate(message) = next_event(&mut shard, "MESSAGE_CREATE").await {
            break message;
        }
    };
    assert_eq!(message.content, "hello twilight");
    assert_eq!(message.author.name, "alice");
    assert_eq!(
        message.guild_id.map(|id| id.get().to_string()).as_deref(),
        Some(GUILD_ID)
    );
    assert!(message.member.is_some());

    // Edits, reactions, member updates and member chunks parse too.
    let id = message.id.get();
    rest(
        &server,
        ALICE_TOKEN,
        "PATCH",
        &format!("/channels/{GENERAL_ID}/messages/{id}"),
        Some(json!({"content": "edited"})),
    )
    .await;
    rest(
        &server,
        ALICE_TOKEN,
        "PUT",
        &format!("/channels/{GENERAL_ID}/messages/{id}/reactions/%F0%9F%91%8D/@me"),
        None,
    )
    .await;
    rest(
        &server,
        ALICE_TOKEN,
        "PATCH",
        &format!("/guilds/{GUILD_ID}/members/{ALICE_ID}"),
        Some(json!({"nick": "Ally"})),
    )
    .await;
    let request = RequestGuildMembers::builder(Id::new(GUILD_ID.parse().unwrap()))
        .nonce("twilight")
        .query("", None);
    shard.command(&request);
    let (mut update, mut reaction, mut member, mut chunk) = (false, false, false, false);
    while !(update && reaction && member && chunk) {
        match next_event(&mut shard, "the events REST caused").await {
            Event::MessageUpdate(m) => update |= m.content == "edited",
            Event::ReactionAdd(_) => reaction = true,
            Event::MemberUpdate(m) => member |= m.nick.as_deref() == Some("Ally"),
            Event::MemberChunk(c) => {
                assert_eq!(c.nonce.as_deref(), Some("twilight"));
                assert_eq!(c.members.len(), 3);
                chunk = true;
            }
            _ => {}
        }
    }
}

/// Registers a guild slash command with twilight-http (the bot's token, REST pointed at serve).
async fn register_echo(server: &Server, application_id: u64) -> twilight_http::Client {
    let http = twilight_http::Client::builder()
        .proxy(server.addr.clone(), true)
        .token(BOT_TOKEN.to_string())
        .build();
    let interaction = http.interaction(Id::new(application_id));
    let guild_id = Id::new(GUILD_ID.parse().expect("guild id"));
    let command = interaction
        .create_guild_command(guild_id)
        .chat_input("echo", "Echoes")
        .await
        .expect("create the guild command")
        .model()
        .await
        .expect("command model");
    assert_eq!(command.name, "echo");
    http
}

/// Alice invokes the command through the hook; the shard's next INTERACTION_CREATE.
async fn invoke_echo(
    server: &Server,
    shard: &mut Shard,
) -> Box<twilight_model::application::interaction::Interaction> {
    let body = json!({"application_id": BOT_ID, "channel_id": GENERAL_ID, "name": "echo"});
    let (status, invoked) = rest(
        server,
        ALICE_TOKEN,
        "POST",
        "/_mitm/interactions",
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{invoked}");
    loop {
        if let Event::InteractionCreate(created) = next_event(shard, "INTERACTION_CREATE").await {
            let interaction = created.0;
            assert_eq!(interaction.id.get().to_string(), invoked["id"]);
            return Box::new(interaction);
        }
    }
}

/// The interaction's state as alice sees it, once `done` holds (bounded).
async fn interaction_state(
    server: &Server,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let path = format!("/_mitm/interactions/{id}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, state) = rest(server, ALICE_TOKEN, "GET", &path, None).await;
        assert_eq!(status, 200, "{state}");
        if done(&state) {
            return state;
        }
        assert!(std::time::Instant::now() < deadline, "never done: {state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A guild slash command end to end with twilight: the shard parses INTERACTION_CREATE into its
/// strict model, twilight-http answers (a message, then an ephemeral followup), and serve shows
/// alice the answer in the channel and the followup to her alone.
#[tokio::test]
async fn twilight_answers_a_slash_command_and_its_ephemeral_followup_reaches_only_the_invoker() {
    use twilight_model::channel::message::MessageFlags;
    use twilight_model::http::interaction::{
        InteractionResponse, InteractionResponseData, InteractionResponseType,
    };
    let server = Server::start(&fixture(None));
    let config = ConfigBuilder::new(BOT_TOKEN.to_string(), Intents::GUILDS)
        .proxy_url(server.ws())
        .build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    let application_id = loop {
        if let Event::Ready(ready) = next_event(&mut shard, "READY").await {
            break ready.application.id.get();
        }
    };
    let http = register_echo(&server, application_id).await;
    let interaction = invoke_echo(&server, &mut shard).await;
    assert_eq!(
        interaction
            .author_id()
            .map(|id| id.get().to_string())
            .as_deref(),
        Some(ALICE_ID)
    );
    let client = http.interaction(Id::new(application_id));
    let response = InteractionResponse {
        kind: InteractionResponseType::ChannelMessageWithSource,
        data: Some(InteractionResponseData {
            content: Some("echo from twilight".into()),
            ..InteractionResponseData::default()
        }),
    };
    client
        .create_response(interaction.id, &interaction.token, &response)
        .await
        .expect("answer the interaction");
    let followup = client
        .create_followup(&interaction.token)
        .content("just for alice")
        .flags(MessageFlags::EPHEMERAL)
        .await
        .expect("ephemeral followup")
        .model()
        .await
        .expect("followup model");
    assert!(followup
        .flags
        .is_some_and(|f| f.contains(MessageFlags::EPHEMERAL)));

    let id = interaction.id.get().to_string();
    let state = interaction_state(&server, &id, |s| {
        s["followups"].as_array().is_some_and(|f| f.len() == 1)
    })
    .await;
    assert_eq!(state["status"], "responded");
    assert_eq!(state["original"]["content"], "echo from twilight");
    assert_eq!(
        state["original"]["interaction_metadata"]["user"]["id"],
        ALICE_ID
    );
    assert_eq!(state["followups"][0]["content"], "just for alice");
    for token in [ALICE_TOKEN, "carol-token"] {
        let path = format!("/channels/{GENERAL_ID}/messages?limit=5");
        let (_, history) = rest(&server, token, "GET", &path, None).await;
        let contents: Vec<&str> = history
            .as_array()
            .expect("history")
            .iter()
            .filter_map(|m| m["content"].as_str())
            .collect();
        assert_eq!(
            contents,
            ["echo from twilight"],
            "the ephemeral followup is no channel history"
        );
    }
}
