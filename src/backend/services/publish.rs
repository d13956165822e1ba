//! Publishing a stored message to the gateway (MESSAGE_CREATE/UPDATE with gateway-only fields).
use serde_json::{json, Value};

use crate::backend::error::ApiError;
use crate::backend::model::Message;
use crate::backend::render;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{AppState, ChannelAccess};
use crate::{backend::events::Dispatch, gateway::intents};

/// Publishes MESSAGE_CREATE/UPDATE with the gateway-only fields (channel_type, guild_id, member,
/// mention members).
pub(crate) fn publish_message(
    state: &AppState,
    name: &'static str,
    access: &ChannelAccess,
    message: &Message,
    mut data: Value,
) -> Result<(), ApiError> {
    // discord.js needs it to handle a DM whose channel it has not cached (type 1, not text).
    data["channel_type"] = json!(access.channel.kind);
    if let Some(guild) = &access.guild {
        let guild_id = guild.guild.id;
        data["guild_id"] = json!(guild_id);
        if message.webhook.is_none() {
            if let Some(member) = state.store.member(guild_id, message.author_id)? {
                data["member"] = render::member_partial(&member);
            }
        }
        if let Some(mentions) = data["mentions"].as_array_mut() {
            for mention in mentions {
                let id = mention["id"].as_str().and_then(Snowflake::parse);
                if let Some(member) = id
                    .map(|id| state.store.member(guild_id, id))
                    .transpose()?
                    .flatten()
                {
                    mention["member"] = render::member_partial(&member);
                }
            }
        }
    }
    state.publish(message_dispatch(name, access, message, data).with_message_content());
    Ok(())
}

/// Ephemeral messages' flag (an interaction response only its invoker sees).
pub(crate) const EPHEMERAL: u64 = 1 << 6;

/// The one user who sees an ephemeral interaction response: its invoker.
fn ephemeral_viewer(message: &Message) -> Option<Snowflake> {
    if message.flags & EPHEMERAL == 0 {
        return None;
    }
    let metadata = message.webhook.as_ref()?.interaction_metadata.as_ref()?;
    metadata["user"]["id"].as_str().and_then(Snowflake::parse)
}

/// A dispatch about `message`: to whoever sees the channel, or only to the invoker of an
/// ephemeral interaction response (bots never receive those).
pub(crate) fn message_dispatch(
    name: &'static str,
    access: &ChannelAccess,
    message: &Message,
    mut data: Value,
) -> Dispatch {
    if message.flags & EPHEMERAL != 0 {
        if let (Some(guild_id), Some(object)) = (message.guild_id, data.as_object_mut()) {
            object.insert("guild_id".into(), json!(guild_id));
        }
        let viewers = ephemeral_viewer(message).into_iter().collect();
        return Dispatch::users(name, viewers, 0, data);
    }
    Dispatch::for_channel(
        name,
        &access.channel,
        intents::GUILD_MESSAGES,
        intents::DIRECT_MESSAGES,
        data,
    )
}
