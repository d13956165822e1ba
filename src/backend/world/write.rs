//! Writing a checked fixture plan to the store (under the store's lock, in one go).
use super::plan::Plan;
use crate::backend::services::guilds::insert_guild;
use crate::backend::store::{Store, StoreError};

/// Writes every planned record.
pub(super) fn write(store: &Store, plan: Plan) -> Result<(), StoreError> {
    let _guard = store.lock();
    for (user, credentials) in &plan.users {
        store.put_user(user, credentials)?;
    }
    for app in &plan.applications {
        store.applications.put(app.id, app)?;
    }
    for (guild, everyone) in &plan.guilds {
        // Re-applying a fixture resets the @everyone permissions it names.
        store.roles.remove((guild.id, guild.id))?;
        insert_guild(store, guild, *everyone)?;
    }
    for (guild_id, role) in &plan.roles {
        store.roles.put((*guild_id, role.id), role)?;
    }
    for (guild_id, member) in &plan.members {
        store.put_member(*guild_id, member)?;
    }
    for channel in &plan.channels {
        store.put_channel(channel)?;
    }
    for message in &plan.messages {
        store.put_message(message)?;
    }
    for (channel_id, message_id) in &plan.pins {
        store
            .pins
            .put((*channel_id, *message_id), &message_id.timestamp_ms())?;
    }
    for (guild_id, emoji) in &plan.emojis {
        store.emojis.put((*guild_id, emoji.id), emoji)?;
        store.emoji_guild.put(emoji.id, *guild_id)?;
    }
    for sticker in &plan.stickers {
        store
            .extra
            .stickers
            .put((sticker.guild_id, sticker.id), sticker)?;
        store
            .extra
            .sticker_guild
            .put(sticker.id, sticker.guild_id)?;
    }
    for (channel, a, b) in &plan.dms {
        store.put_channel(channel)?;
        store.put_dm(*a, *b, channel.id)?;
    }
    for (channel, people) in &plan.group_dms {
        store.put_channel(channel)?;
        for user in people {
            store.user_dms.insert((*user, channel.id))?;
        }
    }
    for member in &plan.thread_members {
        store
            .thread_members
            .put((member.thread_id, member.user_id), member)?;
    }
    for hook in &plan.webhooks {
        store.webhooks.put(hook.id, hook)?;
    }
    for (guild_id, ban) in &plan.bans {
        store.bans.put((*guild_id, ban.user_id), ban)?;
    }
    for invite in &plan.invites {
        store.invites.put(&invite.code, invite)?;
    }
    for command in &plan.commands {
        store.commands.put(
            (
                command.application_id,
                crate::backend::services::commands::scope_key(command.guild_id),
                command.id,
            ),
            command,
        )?;
    }
    super::account::write_account(store, &plan.account)?;
    for (hash, bytes) in &plan.images {
        store.account.images.put(hash, bytes)?;
    }
    store.flush()?;
    Ok(())
}
