//! A real third-party client: twilight-http drives `serve` and its strict models must
//! deserialize every answer.
mod serve_support;

use serve_support::*;
use twilight_http::api_error::ApiError as TwilightApiError;
use twilight_http::error::ErrorType;
use twilight_http::request::channel::reaction::RequestReactionType;
use twilight_http::Client;
use twilight_model::channel::ChannelType;
use twilight_model::id::Id;

fn client(server: &Server, token: &str) -> Client {
    Client::builder()
        .proxy(server.addr.clone(), true)
        .token(token.to_string())
        .build()
}

fn bot_token() -> &'static str {
    BOT.trim_start_matches("Bot ")
}

/// The Discord error code twilight parsed from an error answer.
fn code_of(error: twilight_http::Error) -> u64 {
    match error.kind() {
        ErrorType::Response {
            error: TwilightApiError::General(general),
            ..
        } => general.code,
        other => panic!("expected a Discord error body, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilight_models_accept_every_answer() {
    let server = tokio::task::spawn_blocking(|| Server::start(Some(FIXTURE), &[]))
        .await
        .unwrap();
    let http = client(&server, bot_token());
    let guild_id = Id::new(GUILD.parse().unwrap());
    let general = Id::new(GENERAL.parse().unwrap());
    let bob = Id::new(BOB_ID.parse().unwrap());

    let me = http.current_user().await.unwrap().model().await.unwrap();
    assert_eq!(me.id.get().to_string(), BOT_ID);
    assert!(me.bot);
    let user = http.user(bob).await.unwrap().model().await.unwrap();
    assert_eq!(user.name, "bob");
    let guilds = http
        .current_user_guilds()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(guilds[0].id, guild_id);
    let app = http
        .current_user_application()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(app.id.get().to_string(), BOT_ID);
    let gateway = http
        .gateway()
        .authed()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(gateway.url, format!("ws://{}", server.addr));
    assert_eq!(gateway.shards, 1);

    let guild = http
        .guild(guild_id)
        .with_counts(true)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(guild.name, "Test Guild");
    assert!(guild.roles.iter().any(|r| r.id.get() == guild_id.get()));
    let preview = http
        .guild_preview(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(preview.id, guild_id);
    let channels = http
        .guild_channels(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(channels
        .iter()
        .any(|c| c.kind == ChannelType::GuildCategory));
    assert!(channels.iter().any(|c| c.kind == ChannelType::GuildVoice));
    assert!(channels.iter().any(|c| c.kind == ChannelType::GuildForum));
    let channel = http.channel(general).await.unwrap().model().await.unwrap();
    assert_eq!(channel.name.as_deref(), Some("general"));
    let created = http
        .create_guild_channel(guild_id, "twilight-made")
        .kind(ChannelType::GuildText)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(created.kind, ChannelType::GuildText);

    // Messages, replies, edits, reactions, pins.
    let message = http
        .create_message(general)
        .content("hello from twilight")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(message.content, "hello from twilight");
    let reply = http
        .create_message(general)
        .content("a reply")
        .reply(message.id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(
        reply.referenced_message.as_ref().map(|m| m.id),
        Some(message.id)
    );
    let listed = http
        .channel_messages(general)
        .limit(10)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(listed.iter().any(|m| m.id == reply.id));
    let edited = http
        .update_message(general, message.id)
        .content(Some("edited"))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(edited.edited_timestamp.is_some());
    let emoji = RequestReactionType::Unicode { name: "👍" };
    http.create_reaction(general, message.id, &emoji)
        .await
        .unwrap();
    let reactors = http
        .reactions(general, message.id, &emoji)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(reactors[0].id, me.id);
    let with_reaction = http
        .message(general, message.id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(with_reaction.reactions.len(), 1);
    http.create_pin(general, message.id).await.unwrap();
    let pins = http.pins(general).await.unwrap().model().await.unwrap();
    assert!(pins.iter().any(|m| m.id == message.id));
    http.create_typing_trigger(general).await.unwrap();
    http.delete_message(general, reply.id).await.unwrap();

    // Roles and members.
    let role = http
        .create_role(guild_id)
        .name("twilight role")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    let role = http
        .update_role(guild_id, role.id)
        .name(Some("renamed"))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(role.name, "renamed");
    let roles = http.roles(guild_id).await.unwrap().model().await.unwrap();
    assert!(roles.iter().any(|r| r.id == role.id));
    http.add_guild_member_role(guild_id, bob, role.id)
        .await
        .unwrap();
    let member = http
        .guild_member(guild_id, bob)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(member.roles.contains(&role.id));
    let members = http
        .guild_members(guild_id)
        .limit(100)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(members.len() >= 4);
    let found = http
        .search_guild_members(guild_id, "bo")
        .limit(5)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(found[0].user.id, bob);
    let nicked = http
        .update_guild_member(guild_id, bob)
        .nick(Some("Bobby"))
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(nicked.nick.as_deref(), Some("Bobby"));
    http.remove_guild_member_role(guild_id, bob, role.id)
        .await
        .unwrap();
    http.delete_role(guild_id, role.id).await.unwrap();

    // Bans, invites, emojis, webhooks, audit log.
    let dave = Id::new(DAVE_ID.parse().unwrap());
    http.create_ban(guild_id, dave).await.unwrap();
    let bans = http.bans(guild_id).await.unwrap().model().await.unwrap();
    assert!(bans.iter().any(|b| b.user.id == dave));
    let ban = http
        .ban(guild_id, dave)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(ban.user.id, dave);
    http.delete_ban(guild_id, dave).await.unwrap();
    let invite = http
        .create_invite(general)
        .max_age(3600)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    let fetched = http
        .invite(&invite.code)
        .with_counts()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(fetched.code, invite.code);
    let invites = http
        .guild_invites(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(invites.iter().any(|i| i.code == invite.code));
    let image = PIXEL_PNG;
    let created_emoji = http
        .create_emoji(guild_id, "blob", image)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    let emojis = http.emojis(guild_id).await.unwrap().model().await.unwrap();
    assert!(emojis.iter().any(|e| e.id == created_emoji.id));
    let webhook = http
        .create_webhook(general, "hook")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    let token = webhook.token.clone().expect("a token");
    let sent = http
        .execute_webhook(webhook.id, &token)
        .content("via webhook")
        .wait()
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(sent.webhook_id, Some(webhook.id));
    let hooks = http
        .channel_webhooks(general)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(hooks.iter().any(|h| h.id == webhook.id));
    let log = http
        .audit_log(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(!log.entries.is_empty());

    // Threads and forums.
    let thread = http
        .create_thread(general, "twilight thread", ChannelType::PublicThread)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(thread.kind, ChannelType::PublicThread);
    let thread_members = http
        .thread_members(thread.id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(thread_members.len(), 1);
    let active = http
        .active_threads(guild_id)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert!(active.threads.iter().any(|t| t.id == thread.id));
    let forum = Id::new(FORUM.parse().unwrap());
    let post = http
        .create_forum_thread(forum, "post")
        .message()
        .content("first post")
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(post.message.content, "first post");

    // DMs.
    let dm = http
        .create_private_channel(bob)
        .await
        .unwrap()
        .model()
        .await
        .unwrap();
    assert_eq!(dm.kind, ChannelType::Private);
    let regions = http.voice_regions().await.unwrap().model().await.unwrap();
    assert!(!regions.is_empty());

    // Errors parse as Discord's error bodies.
    let missing = http.channel(Id::new(1)).await.unwrap_err();
    assert_eq!(code_of(missing), 10003);
    let unknown_guild = http.guild(Id::new(5)).await.unwrap_err();
    assert_eq!(code_of(unknown_guild), 10004);
    let empty = http.create_message(general).await.unwrap_err();
    assert_eq!(code_of(empty), 50006);
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}
