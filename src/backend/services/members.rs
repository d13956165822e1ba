//! Member events: the GUILD_MEMBER_* dispatches (and the GUILD_CREATE/GUILD_DELETE the member
//! itself gets) that member, role, invite, ban and leave routes all publish.
use serde_json::{json, Value};

use super::guilds::guild_create_payload;
use crate::backend::error::ApiError;
use crate::backend::model::{Member, User};
use crate::backend::render;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;
use crate::{backend::events::Dispatch, gateway::intents};

/// The GUILD_MEMBER_UPDATE payload for a member.
pub(crate) fn member_update_payload(
    state: &AppState,
    guild_id: Snowflake,
    member: &Member,
) -> Result<Value, ApiError> {
    let mut data = render::member(&state.store, member)?;
    data["guild_id"] = json!(guild_id);
    Ok(data)
}

/// Publishes GUILD_MEMBER_UPDATE, done by `actor` (see [`crate::backend::events::Event::actor`]).
pub(crate) fn publish_member_update(
    state: &AppState,
    guild_id: Snowflake,
    member: &Member,
    actor: Option<Snowflake>,
) -> Result<(), ApiError> {
    let data = member_update_payload(state, guild_id, member)?;
    state.publish(
        Dispatch::guild_and_users(
            "GUILD_MEMBER_UPDATE",
            guild_id,
            vec![member.user_id],
            intents::GUILD_MEMBERS,
            data,
        )
        .by(actor),
    );
    Ok(())
}

/// Publishes GUILD_MEMBER_ADD to the guild (done by `actor`) and GUILD_CREATE to the
/// newcomer.
pub(crate) fn publish_member_added(
    state: &AppState,
    guild_id: Snowflake,
    member: &Member,
    actor: Option<Snowflake>,
) -> Result<(), ApiError> {
    let data = member_update_payload(state, guild_id, member)?;
    state.publish(
        Dispatch::guild("GUILD_MEMBER_ADD", guild_id, intents::GUILD_MEMBERS, data).by(actor),
    );
    if let Some(guild) = state.store.guild(guild_id)? {
        let payload = guild_create_payload(&state.store, &guild, member.user_id)?;
        state.publish(Dispatch::users(
            "GUILD_CREATE",
            vec![member.user_id],
            intents::GUILDS,
            payload,
        ));
    }
    Ok(())
}

/// Publishes GUILD_MEMBER_REMOVE to the guild (done by `actor`) and GUILD_DELETE to the one
/// who left.
pub(crate) fn publish_member_removed(
    state: &AppState,
    guild_id: Snowflake,
    user: &User,
    actor: Option<Snowflake>,
) -> Result<(), ApiError> {
    state.publish(
        Dispatch::guild(
            "GUILD_MEMBER_REMOVE",
            guild_id,
            intents::GUILD_MEMBERS,
            json!({"guild_id": guild_id, "user": render::user(user)}),
        )
        .by(actor),
    );
    state.publish(Dispatch::users(
        "GUILD_DELETE",
        vec![user.id],
        intents::GUILDS,
        json!({"id": guild_id}),
    ));
    Ok(())
}
