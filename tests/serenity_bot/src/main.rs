//! A serenity bot, unmodified library from crates.io, pointed at `discord-mitm serve`: REST through
//! `HttpBuilder::proxy`, the gateway URL from `GET /gateway`. It runs one scenario step by step and
//! prints what serenity handed it as JSON lines on stdout, for tests/serve_clients_serenity.rs to
//! check. Any step that fails or times out exits non-zero with the reason on stderr.
//!
//! Environment: DMITM_API (http://HOST:PORT), BOT_TOKEN, ALICE_TOKEN, ALICE_ID, CAROL_ID, GUILD_ID,
//! GENERAL_ID.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use serenity::all::{
    ButtonStyle, ChannelId, ChannelPinsUpdateEvent, ChannelType, CommandInteraction,
    ComponentInteraction, CreateActionRow, CreateButton, CreateChannel, CreateCommand,
    CreateCommandOption, CreateEmbed, CreateInteractionResponse, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, EditInteractionResponse,
    CreateMessage, CreateThread, EditMember, EditMessage, EditRole, ExecuteWebhook, GuildChannel,
    GuildId, GuildMemberUpdateEvent, Interaction, MessageId, Role, UserId,
};
use serenity::async_trait;
use serenity::builder::{CreateInvite, CreateWebhook};
use serenity::cache::Cache;
use serenity::client::{ClientBuilder, Context, EventHandler};
use serenity::http::{Http, HttpBuilder};
use serenity::model::application::CommandOptionType;
use serenity::model::channel::{Message, Reaction, ReactionType};
use serenity::model::event::MessageUpdateEvent;
use serenity::model::gateway::{GatewayIntents, Ready};
use serenity::model::guild::Guild;
use tokio::sync::mpsc;

const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// One thing serenity told the bot, reduced to what the scenario checks.
#[derive(Debug)]
enum Seen {
    Ready(Value),
    GuildCreate(Value),
    CacheReady,
    Message(Box<Message>),
    MessageUpdate(Box<MessageUpdateEvent>),
    ReactionAdd(Box<Reaction>),
    MessageDelete(MessageId),
    ThreadCreate(Value),
    Command(Box<CommandInteraction>),
    Component(Box<ComponentInteraction>),
    ChannelCreate(Box<GuildChannel>),
    RoleCreate(Box<Role>),
    MemberUpdate(Box<GuildMemberUpdateEvent>),
    PinsUpdate(ChannelPinsUpdateEvent),
    BulkDelete(Vec<MessageId>),
}

struct Handler {
    seen: mpsc::UnboundedSender<Seen>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _: Context, ready: Ready) {
        let _ = self.seen.send(Seen::Ready(json!({
            "user": ready.user.name,
            "user_id": ready.user.id.to_string(),
            "bot": ready.user.bot,
            "guilds": ready.guilds.iter().map(|g| g.id.to_string()).collect::<Vec<_>>(),
            "session_id_len": ready.session_id.len(),
            "resume_gateway_url": ready.resume_gateway_url,
            "application_id": ready.application.id.to_string(),
            "version": ready.version,
        })));
    }

    async fn guild_create(&self, _: Context, guild: Guild, _: Option<bool>) {
        let _ = self.seen.send(Seen::GuildCreate(json!({
            "id": guild.id.to_string(),
            "name": guild.name,
            "channels": guild.channels.len(),
            "roles": guild.roles.len(),
            "members": guild.members.len(),
        })));
    }

    async fn cache_ready(&self, _: Context, _: Vec<GuildId>) {
        let _ = self.seen.send(Seen::CacheReady);
    }

    async fn message(&self, _: Context, message: Message) {
        let _ = self.seen.send(Seen::Message(Box::new(message)));
    }

    async fn message_update(
        &self,
        _: Context,
        _: Option<Message>,
        _: Option<Message>,
        event: MessageUpdateEvent,
    ) {
        let _ = self.seen.send(Seen::MessageUpdate(Box::new(event)));
    }

    async fn reaction_add(&self, _: Context, reaction: Reaction) {
        let _ = self.seen.send(Seen::ReactionAdd(Box::new(reaction)));
    }

    async fn message_delete(&self, _: Context, _: ChannelId, id: MessageId, _: Option<GuildId>) {
        let _ = self.seen.send(Seen::MessageDelete(id));
    }

    async fn thread_create(&self, _: Context, thread: serenity::model::channel::GuildChannel) {
        let _ = self.seen.send(Seen::ThreadCreate(json!({
            "id": thread.id.to_string(),
            "name": thread.name,
            "kind": u8::from(thread.kind),
            "parent_id": thread.parent_id.map(|p| p.to_string()),
        })));
    }

    async fn channel_create(&self, _: Context, channel: GuildChannel) {
        let _ = self.seen.send(Seen::ChannelCreate(Box::new(channel)));
    }

    async fn guild_role_create(&self, _: Context, role: Role) {
        let _ = self.seen.send(Seen::RoleCreate(Box::new(role)));
    }

    async fn guild_member_update(
        &self,
        _: Context,
        _: Option<serenity::model::guild::Member>,
        _: Option<serenity::model::guild::Member>,
        event: GuildMemberUpdateEvent,
    ) {
        let _ = self.seen.send(Seen::MemberUpdate(Box::new(event)));
    }

    async fn channel_pins_update(&self, _: Context, pins: ChannelPinsUpdateEvent) {
        let _ = self.seen.send(Seen::PinsUpdate(pins));
    }

    async fn message_delete_bulk(
        &self,
        _: Context,
        _: ChannelId,
        ids: Vec<MessageId>,
        _: Option<GuildId>,
    ) {
        let _ = self.seen.send(Seen::BulkDelete(ids));
    }

    async fn interaction_create(&self, _: Context, interaction: Interaction) {
        match interaction {
            Interaction::Command(command) => {
                let _ = self.seen.send(Seen::Command(Box::new(command)));
            }
            Interaction::Component(component) => {
                let _ = self.seen.send(Seen::Component(Box::new(component)));
            }
            _ => {}
        }
    }
}

/// The bot's own user id, as GET /users/@me reports it.
async fn ready_user_id(http: &Http) -> String {
    check("GET /users/@me", http.get_current_user().await)
        .id
        .to_string()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("{name} is not set")))
}

fn fail(why: &str) -> ! {
    eprintln!("SCENARIO FAILED: {why}");
    std::process::exit(1)
}

fn emit(step: &str, data: Value) {
    println!("{}", json!({"step": step, "data": data}));
}

/// What serenity reported so far. serenity runs every handler call in its own task, so events
/// can arrive out of order (CACHE_READY before GUILD_CREATE); unmatched ones wait in `backlog`.
struct Events {
    receiver: mpsc::UnboundedReceiver<Seen>,
    backlog: Vec<Seen>,
}

impl Events {
    /// The first event, old or new, that `pick` accepts, within [`STEP_TIMEOUT`].
    async fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&Seen) -> Option<T>) -> T {
        if let Some(index) = self.backlog.iter().position(|e| pick(e).is_some()) {
            let event = self.backlog.remove(index);
            if let Some(found) = pick(&event) {
                return found;
            }
        }
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Ok(Some(event)) => match pick(&event) {
                    Some(found) => return found,
                    None => self.backlog.push(event),
                },
                Ok(None) => fail(&format!("the client stopped while waiting for {what}")),
                Err(_) => fail(&format!("timed out waiting for {what}")),
            }
        }
    }
}

fn check<T, E: std::fmt::Display + std::fmt::Debug>(what: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| fail(&format!("{what}: {e} ({e:?})")))
}

/// An ephemeral deferral answered by a followup (which becomes the response) and an edit; the
/// test then checks through serve what alice and carol see of it.
async fn secret_command(
    api: &str,
    alice_token: &str,
    application_id: &str,
    general: ChannelId,
    http: &Http,
    seen: &mut Events,
) {
    as_alice(
        api,
        alice_token,
        "POST",
        "/_mitm/interactions",
        json!({"application_id": application_id, "channel_id": general.to_string(),
               "name": "secret"}),
    )
    .await;
    let command = seen
        .wait_for("the secret INTERACTION_CREATE", |e| match e {
            Seen::Command(c) if c.data.name == "secret" => Some(c.clone()),
            _ => None,
        })
        .await;
    check("defer ephemerally", command.defer_ephemeral(http).await);
    let followup = check(
        "follow up",
        command
            .create_followup(
                http,
                CreateInteractionResponseFollowup::new()
                    .content("psst, only you")
                    .ephemeral(true),
            )
            .await,
    );
    let edited = check(
        "edit the response",
        command
            .edit_response(http, EditInteractionResponse::new().content("psst, edited"))
            .await,
    );
    emit(
        "secret",
        json!({"interaction_id": command.id.to_string(), "followup_id": followup.id.to_string(),
               "edited_id": edited.id.to_string(), "flags": edited.flags.map(|f| f.bits()),
               "content": edited.content}),
    );
}

/// Acts as the user alice over plain REST (serenity's Http always sends `Bot` tokens).
async fn as_alice(api: &str, token: &str, method: &str, path: &str, body: Value) -> Value {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let response = check(
        "alice's request",
        client
            .request(method, format!("{api}/api/v10{path}"))
            .header("Authorization", token)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await,
    );
    let status = response.status();
    let text = check("alice's response", response.text().await);
    if !status.is_success() {
        fail(&format!("alice {path}: {status} {text}"));
    }
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::main]
async fn main() {
    // serenity reports what it could not parse or handle as tracing warnings; the test reads them
    // from stderr.
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let api = env("DMITM_API");
    let bot_token = env("BOT_TOKEN");
    let alice_token = env("ALICE_TOKEN");
    let alice_id = UserId::new(check("ALICE_ID", env("ALICE_ID").parse()));
    let carol_id = UserId::new(check("CAROL_ID", env("CAROL_ID").parse()));
    let guild_id = GuildId::new(check("GUILD_ID", env("GUILD_ID").parse()));
    let general = ChannelId::new(check("GENERAL_ID", env("GENERAL_ID").parse()));

    // The proxy replaces https://discord.com in every route. serenity 0.12's rate limiter builds
    // its requests without the proxy (it expects the proxy to limit), so it has to be off.
    let http = HttpBuilder::new(&bot_token)
        .proxy(api.clone())
        .ratelimiter_disabled(true)
        .build();
    let intents = GatewayIntents::non_privileged()
        | GatewayIntents::GUILD_MEMBERS
        | GatewayIntents::MESSAGE_CONTENT;
    let (sender, receiver) = mpsc::unbounded_channel();
    let mut seen = Events {
        receiver,
        backlog: Vec::new(),
    };
    // The client fetches its gateway URL with GET /gateway through this Http, as on Discord.
    let mut client = check(
        "building the client",
        ClientBuilder::new_with_http(http, intents)
            .event_handler(Handler { seen: sender })
            .await,
    );
    let http: Arc<Http> = Arc::clone(&client.http);
    let cache: Arc<Cache> = Arc::clone(&client.cache);
    let shards = Arc::clone(&client.shard_manager);

    // The gateway URL serenity connects to comes from GET /gateway through the proxy.
    let gateway = check("GET /gateway", http.get_gateway().await);
    emit("gateway", json!({"url": gateway.url}));
    let bot_gateway = check("GET /gateway/bot", http.get_bot_gateway().await);
    emit(
        "gateway_bot",
        json!({"url": bot_gateway.url, "shards": bot_gateway.shards,
               "remaining": bot_gateway.session_start_limit.remaining,
               "max_concurrency": bot_gateway.session_start_limit.max_concurrency}),
    );

    let runner = tokio::spawn(async move {
        if let Err(why) = client.start().await {
            fail(&format!("client.start: {why}"));
        }
    });

    let ready = seen
        .wait_for("READY", |e| match e {
            Seen::Ready(r) => Some(r.clone()),
            _ => None,
        })
        .await;
    emit("ready", ready);
    let guild_create = seen
        .wait_for("GUILD_CREATE", |e| match e {
            Seen::GuildCreate(g) => Some(g.clone()),
            _ => None,
        })
        .await;
    emit("guild_create", guild_create);
    seen.wait_for("cache_ready", |e| match e {
        Seen::CacheReady => Some(()),
        _ => None,
    })
    .await;
    let cached = match cache.guild(guild_id) {
        Some(guild) => {
            let mut channels: Vec<_> = guild.channels.values().map(|c| c.name.clone()).collect();
            channels.sort();
            let mut roles: Vec<_> = guild.roles.values().map(|r| r.name.clone()).collect();
            roles.sort();
            let mut members: Vec<_> = guild
                .members
                .values()
                .map(|m| m.user.name.clone())
                .collect();
            members.sort();
            json!({"name": guild.name, "channels": channels, "roles": roles, "members": members,
                   "member_count": guild.member_count, "owner_id": guild.owner_id.to_string()})
        }
        None => fail("the guild is not in serenity's cache"),
    };
    emit("cache", cached);

    // Send, and see our own MESSAGE_CREATE.
    let mut sent = check(
        "send a message",
        general
            .send_message(&http, CreateMessage::new().content("hello from serenity"))
            .await,
    );
    let echoed = seen
        .wait_for("our MESSAGE_CREATE", |e| match e {
            Seen::Message(m) if m.id == sent.id => Some(m.clone()),
            _ => None,
        })
        .await;
    emit(
        "sent",
        json!({"content": echoed.content, "author_bot": echoed.author.bot,
               "guild_id": echoed.guild_id.map(|g| g.to_string()),
               "member": echoed.member.is_some()}),
    );

    // Edit.
    check(
        "edit the message",
        sent.edit(&http, EditMessage::new().content("edited by serenity"))
            .await,
    );
    let update = seen
        .wait_for("MESSAGE_UPDATE", |e| match e {
            Seen::MessageUpdate(u) if u.id == sent.id => Some(u.clone()),
            _ => None,
        })
        .await;
    emit(
        "edited",
        json!({"rest_content": sent.content, "event_content": update.content,
               "edited_timestamp": update.edited_timestamp.is_some()}),
    );

    // React.
    check(
        "react",
        sent.react(&http, ReactionType::Unicode("👍".into())).await,
    );
    let reaction = seen
        .wait_for("MESSAGE_REACTION_ADD", |e| match e {
            Seen::ReactionAdd(r) if r.message_id == sent.id => Some(r.clone()),
            _ => None,
        })
        .await;
    emit(
        "reacted",
        json!({"emoji": reaction.emoji.to_string(),
               "user_id": reaction.user_id.map(|u| u.to_string())}),
    );
    let users = check(
        "reaction users",
        sent.reaction_users(&http, ReactionType::Unicode("👍".into()), None, None)
            .await,
    );
    emit(
        "reaction_users",
        json!(users.iter().map(|u| u.name.clone()).collect::<Vec<_>>()),
    );

    // Another user posts; the bot replies.
    as_alice(
        &api,
        &alice_token,
        "POST",
        &format!("/channels/{general}/messages"),
        json!({"content": "ping"}),
    )
    .await;
    let ping = seen
        .wait_for("alice's MESSAGE_CREATE", |e| match e {
            Seen::Message(m) if m.author.id == alice_id => Some(m.clone()),
            _ => None,
        })
        .await;
    let author_nick_cached = cache
        .guild(guild_id)
        .and_then(|g| g.members.get(&alice_id).map(|m| m.user.name.clone()));
    emit(
        "alice_message",
        json!({"content": ping.content, "author": ping.author.name,
               "member_roles": ping.member.as_ref().map(|m| m.roles.len()),
               "cached_author": author_nick_cached}),
    );
    let pong = check("reply", ping.reply(&http, "pong").await);
    let pong_event = seen
        .wait_for("the reply's MESSAGE_CREATE", |e| match e {
            Seen::Message(m) if m.id == pong.id => Some(m.clone()),
            _ => None,
        })
        .await;
    emit(
        "replied",
        json!({"content": pong_event.content,
               "references": pong_event.message_reference.as_ref().and_then(|r| r.message_id).map(|m| m.to_string()),
               "referenced_content": pong_event.referenced_message.as_ref().map(|m| m.content.clone()),
               "ping_id": ping.id.to_string()}),
    );

    // Members over REST.
    let members = check(
        "list members",
        guild_id.members(&http, Some(100), None).await,
    );
    let alice = check("get alice", guild_id.member(&http, alice_id).await);
    emit(
        "members",
        json!({"listed": members.iter().map(|m| m.user.name.clone()).collect::<Vec<_>>(),
               "alice": alice.user.name, "alice_roles": alice.roles.len(),
               "alice_joined": alice.joined_at.is_some()}),
    );

    // A thread from the message.
    let thread = check(
        "create a thread",
        general
            .create_thread_from_message(&http, sent.id, CreateThread::new("serenity thread"))
            .await,
    );
    let thread_event = seen
        .wait_for("THREAD_CREATE", |e| match e {
            Seen::ThreadCreate(t) if t["id"] == thread.id.to_string() => Some(t.clone()),
            _ => None,
        })
        .await;
    emit("thread", thread_event);

    // Slash command registration and an interaction that the bot answers.
    let commands = check(
        "register guild commands",
        guild_id
            .set_commands(
                &http,
                vec![
                    CreateCommand::new("echo").description("Echoes").add_option(
                        CreateCommandOption::new(CommandOptionType::String, "text", "what to echo")
                            .required(true),
                    ),
                    CreateCommand::new("secret").description("Answers privately"),
                ],
            )
            .await,
    );
    emit(
        "commands",
        json!(commands.iter().map(|c| c.name.clone()).collect::<Vec<_>>()),
    );
    let application_id = commands
        .first()
        .map(|c| c.application_id.to_string())
        .unwrap_or_else(|| fail("no command registered"));
    as_alice(
        &api,
        &alice_token,
        "POST",
        "/_mitm/interactions",
        json!({"application_id": application_id, "channel_id": general.to_string(),
               "name": "echo", "options": [{"name": "text", "type": 3, "value": "hi"}]}),
    )
    .await;
    let command = seen
        .wait_for("INTERACTION_CREATE", |e| match e {
            Seen::Command(c) => Some(c.clone()),
            _ => None,
        })
        .await;
    let text = command
        .data
        .options
        .first()
        .and_then(|o| o.value.as_str())
        .unwrap_or("")
        .to_string();
    check(
        "answer the interaction",
        command
            .create_response(
                &http,
                CreateInteractionResponse::Message(
                    CreateInteractionResponseMessage::new().content(format!("echo: {text}")),
                ),
            )
            .await,
    );
    let answer = seen
        .wait_for("the interaction answer's MESSAGE_CREATE", |e| match e {
            Seen::Message(m)
                if m.interaction_metadata.is_some() || m.content.starts_with("echo:") =>
            {
                Some(m.clone())
            }
            _ => None,
        })
        .await;
    let original = check(
        "get the original response",
        command.get_response(&http).await,
    );
    emit(
        "interaction",
        json!({"name": command.data.name, "user": command.user.name, "option": text,
               "answer": answer.content, "original": original.content}),
    );

    secret_command(&api, &alice_token, &application_id, general, &http, &mut seen).await;

    // A button: alice clicks it, the bot updates the message in place (callback type 7).
    let with_button = check(
        "send a button",
        general
            .send_message(
                &http,
                CreateMessage::new().content("approve?").components(vec![
                    CreateActionRow::Buttons(vec![CreateButton::new("approve")
                        .label("Approve")
                        .style(ButtonStyle::Success)]),
                ]),
            )
            .await,
    );
    as_alice(
        &api,
        &alice_token,
        "POST",
        "/_mitm/interactions",
        json!({"type": 3, "application_id": application_id, "channel_id": general.to_string(),
               "message_id": with_button.id.to_string(), "custom_id": "approve",
               "component_type": 2}),
    )
    .await;
    let click = seen
        .wait_for("the button INTERACTION_CREATE", |e| match e {
            Seen::Component(c) => Some(c.clone()),
            _ => None,
        })
        .await;
    check(
        "update from the button",
        click
            .create_response(
                &http,
                CreateInteractionResponse::UpdateMessage(
                    CreateInteractionResponseMessage::new()
                        .content("approved")
                        .components(vec![]),
                ),
            )
            .await,
    );
    let button_update = seen
        .wait_for("the button MESSAGE_UPDATE", |e| match e {
            Seen::MessageUpdate(u) if u.id == with_button.id => Some(u.clone()),
            _ => None,
        })
        .await;
    emit(
        "button",
        json!({"custom_id": click.data.custom_id, "user": click.user.name,
               "message_id_matches": click.message.id == with_button.id,
               "content": button_update.content,
               "components": button_update.components.as_ref().map(Vec::len)}),
    );

    // A DM from alice, answered in the DM.
    let dm = as_alice(
        &api,
        &alice_token,
        "POST",
        "/users/@me/channels",
        json!({"recipient_id": ready_user_id(&http).await}),
    )
    .await;
    let dm_id = dm["id"].as_str().unwrap_or_default().to_string();
    as_alice(
        &api,
        &alice_token,
        "POST",
        &format!("/channels/{dm_id}/messages"),
        json!({"content": "psst"}),
    )
    .await;
    let psst = seen
        .wait_for("alice's DM", |e| match e {
            Seen::Message(m) if m.author.id == alice_id && m.guild_id.is_none() => Some(m.clone()),
            _ => None,
        })
        .await;
    let dm_answer = check("answer the DM", psst.reply(&http, "got it").await);
    let bot_dm = check(
        "open a DM from the bot",
        alice_id.create_dm_channel(&http).await,
    );
    emit(
        "dm",
        json!({"content": psst.content, "channel_matches": psst.channel_id.to_string() == dm_id,
               "answer": dm_answer.content, "answer_in_dm": dm_answer.channel_id.to_string() == dm_id,
               "bot_dm_same_channel": bot_dm.id.to_string() == dm_id}),
    );

    // Guild management: a channel, a role given to carol with a nickname, a pinned embed, a bulk
    // delete; serenity's cache must take every event.
    let made = check(
        "create a channel",
        guild_id
            .create_channel(
                &http,
                CreateChannel::new("serenity-made")
                    .kind(ChannelType::Text)
                    .topic("made by serenity"),
            )
            .await,
    );
    seen.wait_for("CHANNEL_CREATE", |e| match e {
        Seen::ChannelCreate(c) if c.id == made.id => Some(()),
        _ => None,
    })
    .await;
    let role = check(
        "create a role",
        guild_id
            .create_role(
                &http,
                EditRole::new()
                    .name("Helpers")
                    .colour(0x00ff00)
                    .mentionable(true),
            )
            .await,
    );
    seen.wait_for("GUILD_ROLE_CREATE", |e| match e {
        Seen::RoleCreate(r) if r.id == role.id => Some(()),
        _ => None,
    })
    .await;
    let carol = check(
        "edit carol",
        guild_id
            .edit_member(
                &http,
                carol_id,
                EditMember::new().roles(vec![role.id]).nickname("caz"),
            )
            .await,
    );
    let carol_update = seen
        .wait_for("GUILD_MEMBER_UPDATE", |e| match e {
            Seen::MemberUpdate(u) if u.user.id == carol_id => Some(u.clone()),
            _ => None,
        })
        .await;
    let embedded = check(
        "send an embed",
        made.id
            .send_message(
                &http,
                CreateMessage::new().embed(
                    CreateEmbed::new()
                        .title("Report")
                        .description("all good")
                        .field("a", "b", true),
                ),
            )
            .await,
    );
    check("pin", embedded.pin(&http).await);
    seen.wait_for("CHANNEL_PINS_UPDATE", |e| match e {
        Seen::PinsUpdate(p) if p.channel_id == made.id => Some(()),
        _ => None,
    })
    .await;
    let pins = check("pins", made.id.pins(&http).await);
    let extra = check("send more", made.id.say(&http, "one more").await);
    check(
        "bulk delete",
        made.id
            .delete_messages(&http, [embedded.id, extra.id])
            .await,
    );
    let bulk = seen
        .wait_for("MESSAGE_DELETE_BULK", |e| match e {
            Seen::BulkDelete(ids) => Some(ids.len()),
            _ => None,
        })
        .await;
    let cached_carol = cache.guild(guild_id).and_then(|g| {
        g.members
            .get(&carol_id)
            .map(|m| (m.nick.clone(), m.roles.len()))
    });
    let cached_channel = cache
        .guild(guild_id)
        .and_then(|g| g.channels.get(&made.id).map(|c| c.name.clone()));
    emit(
        "management",
        json!({"channel": made.name, "topic": made.topic, "cached_channel": cached_channel,
               "role": role.name, "role_colour": role.colour.0, "role_mentionable": role.mentionable,
               "carol_nick": carol.nick, "carol_roles": carol.roles.len(),
               "event_nick": carol_update.nick, "event_roles": carol_update.roles.len(),
               "cached_carol": cached_carol.map(|(nick, roles)| json!({"nick": nick, "roles": roles})),
               "embed_title": embedded.embeds.first().and_then(|e| e.title.clone()),
               "pins": pins.iter().filter_map(|m| m.embeds.first().and_then(|e| e.title.clone())).collect::<Vec<_>>(),
               "bulk_deleted": bulk}),
    );

    // Delete.
    check("delete", sent.delete(&http).await);
    let deleted = seen
        .wait_for("MESSAGE_DELETE", |e| match e {
            Seen::MessageDelete(id) if *id == sent.id => Some(*id),
            _ => None,
        })
        .await;
    emit("deleted", json!(deleted.to_string()));

    // Every other read serenity models strictly: each response must deserialize. A webhook, an
    // invite and a ban first, so those lists are not empty.
    let hook = check(
        "create a webhook",
        general
            .create_webhook(&http, CreateWebhook::new("serenity hook"))
            .await,
    );
    let via_hook = check(
        "execute the webhook",
        hook.execute(&http, true, ExecuteWebhook::new().content("via the hook"))
            .await,
    );
    let invite = check(
        "create an invite",
        general
            .create_invite(&http, CreateInvite::new().max_age(3600))
            .await,
    );
    check(
        "ban carol",
        guild_id
            .ban_with_reason(&http, carol_id, 0, "testing")
            .await,
    );
    let mut reads = serde_json::Map::new();
    macro_rules! read {
        ($name:literal, $call:expr) => {
            let outcome = match $call.await {
                Ok(value) => json!({"ok": true, "debug_len": format!("{value:?}").len()}),
                Err(e) => json!({"ok": false, "error": format!("{e} ({e:?})")}),
            };
            reads.insert($name.to_string(), outcome);
        };
    }
    read!("current_user", http.get_current_user());
    read!("current_application", http.get_current_application_info());
    read!("user", http.get_user(alice_id));
    read!("guild", http.get_guild(guild_id));
    read!("guild_with_counts", http.get_guild_with_counts(guild_id));
    read!("guild_preview", http.get_guild_preview(guild_id));
    read!("channels", http.get_channels(guild_id));
    read!("channel", http.get_channel(general));
    read!("thread_channel", http.get_channel(thread.id));
    read!("active_threads", http.get_guild_active_threads(guild_id));
    read!("roles", http.get_guild_roles(guild_id));
    read!("messages", http.get_messages(general, None, Some(50)));
    read!("own_member", http.get_current_user_guild_member(guild_id));
    read!("bans", http.get_bans(guild_id, None, None));
    read!(
        "audit_log",
        http.get_audit_logs(guild_id, None, None, None, None)
    );
    read!("guild_invites", http.get_guild_invites(guild_id));
    read!("channel_invites", http.get_channel_invites(general));
    read!("invite", http.get_invite(&invite.code, true, true, None));
    read!("channel_webhooks", http.get_channel_webhooks(general));
    read!("guild_webhooks", http.get_guild_webhooks(guild_id));
    read!(
        "webhook_message",
        hook.get_message(
            &http,
            None,
            via_hook.as_ref().map_or(MessageId::new(1), |m| m.id)
        )
    );
    read!("emojis", http.get_emojis(guild_id));
    read!("stickers", http.get_guild_stickers(guild_id));
    read!("global_commands", http.get_global_commands());
    read!("guild_commands", http.get_guild_commands(guild_id));
    read!(
        "command_permissions",
        http.get_guild_commands_permissions(guild_id)
    );
    read!("integrations", http.get_guild_integrations(guild_id));
    read!("welcome_screen", http.get_guild_welcome_screen(guild_id));
    read!("widget", http.get_guild_widget(guild_id));
    read!("regions", http.get_guild_regions(guild_id));
    read!("voice_regions", http.get_voice_regions());
    read!("prune_count", http.get_guild_prune_count(guild_id, 7));
    read!("automod_rules", http.get_automod_rules(guild_id));
    read!(
        "scheduled_events",
        http.get_scheduled_events(guild_id, true)
    );
    read!("current_user_guilds", http.get_guilds(None, Some(100)));
    read!("dm_channel", alice_id.create_dm_channel(&http));
    emit(
        "reads",
        json!({"webhook_message": via_hook.map(|m| m.content), "reads": reads}),
    );

    shards.shutdown_all().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), runner).await;
    println!("SCENARIO serenity OK");
}
