//! The demo world created on an empty data directory: a guild, a few channels and users.
use crate::backend::accounts::{self, NewUser};
use crate::backend::model::*;
use crate::backend::permissions::bits;
use crate::backend::services::guilds::insert_guild;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::store::{Store, StoreError};

/// The ids of the demo guild's channels and bot role, allocated in this order after the guild's.
struct DemoIds {
    text_category: Snowflake,
    general: Snowflake,
    bot_testing: Snowflake,
    voice_category: Snowflake,
    voice: Snowflake,
    bots_role: Snowflake,
}

/// Creates the demo world: a guild with categories, text and voice channels, a user and a bot.
pub(crate) fn create_demo_world(store: &Store) -> Result<(), StoreError> {
    let user_id = store.next_id();
    let bot_id = store.next_id();
    let guild_id = store.next_id();
    let ids = DemoIds {
        text_category: store.next_id(),
        general: store.next_id(),
        bot_testing: store.next_id(),
        voice_category: store.next_id(),
        voice: store.next_id(),
        bots_role: store.next_id(),
    };
    let (user, bot) = create_demo_users(store, user_id, bot_id)?;
    let app = accounts::bot_application(&bot, user.id, None);
    store.applications.put(app.id, &app)?;
    let mut guild = Guild::new(guild_id, "Demo Guild", user.id);
    guild.system_channel_id = Some(ids.general);
    insert_guild(store, &guild, bits::EVERYONE_DEFAULT)?;
    let role = bots_role(ids.bots_role);
    store.roles.put((guild_id, role.id), &role)?;
    let mut bot_member = Member::new(bot.id, now_ms());
    bot_member.roles = vec![ids.bots_role];
    store.put_member(guild_id, &bot_member)?;
    for channel in &demo_channels(guild_id, &ids) {
        store.put_channel(channel)?;
    }
    super::account::add_demo_friend(store, user.id, guild_id)?;
    store.flush()
}

/// The demo user (`demo`, with an email and password to log in with) and the bot `demobot`.
fn create_demo_users(
    store: &Store,
    user_id: Snowflake,
    bot_id: Snowflake,
) -> Result<(User, User), StoreError> {
    let (user, _) = accounts::create_user(
        store,
        NewUser {
            id: user_id,
            username: "demo".into(),
            global_name: Some("Demo User".into()),
            bot: false,
            token: None,
            email: Some("demo@example.com".into()),
            password: Some("demo-password".into()),
        },
    )?;
    let (bot, _) = accounts::create_user(
        store,
        NewUser {
            id: bot_id,
            username: "demobot".into(),
            global_name: None,
            bot: true,
            token: None,
            email: None,
            password: None,
        },
    )?;
    Ok((user, bot))
}

/// The demo bot's role: hoisted, with moderation permissions.
fn bots_role(id: Snowflake) -> Role {
    Role {
        id,
        name: "Bots".into(),
        color: 0x5865F2,
        colors: RoleColors {
            primary_color: 0x5865F2,
            ..Default::default()
        },
        hoist: true,
        icon: None,
        unicode_emoji: None,
        position: 1,
        permissions: (bits::EVERYONE_DEFAULT
            | bits::MANAGE_MESSAGES
            | bits::MANAGE_CHANNELS
            | bits::MANAGE_ROLES
            | bits::KICK_MEMBERS
            | bits::BAN_MEMBERS
            | bits::MANAGE_WEBHOOKS
            | bits::VIEW_AUDIT_LOG
            | bits::MANAGE_THREADS)
            .to_string(),
        managed: false,
        mentionable: false,
        flags: 0,
        tags: None,
    }
}

/// The demo channels: a text category (general, bot-testing) and a voice category (General).
fn demo_channels(guild_id: Snowflake, ids: &DemoIds) -> Vec<Channel> {
    let DemoIds {
        text_category,
        general,
        bot_testing,
        voice_category,
        voice,
        ..
    } = *ids;
    let mut channels = vec![
        Channel::new_in_guild(
            text_category,
            guild_id,
            channel_type::GUILD_CATEGORY,
            "Text Channels",
        ),
        Channel::new_in_guild(general, guild_id, channel_type::GUILD_TEXT, "general"),
        Channel::new_in_guild(
            bot_testing,
            guild_id,
            channel_type::GUILD_TEXT,
            "bot-testing",
        ),
        Channel::new_in_guild(
            voice_category,
            guild_id,
            channel_type::GUILD_CATEGORY,
            "Voice Channels",
        ),
        Channel::new_in_guild(voice, guild_id, channel_type::GUILD_VOICE, "General"),
    ];
    channels[1].parent_id = Some(text_category);
    channels[2].parent_id = Some(text_category);
    channels[2].position = Some(1);
    channels[3].position = Some(1);
    channels[4].parent_id = Some(voice_category);
    channels[1].topic = Some("Say hi to demobot".into());
    channels
}
