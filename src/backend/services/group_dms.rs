//! Creating group DMs (`POST /users/@me/channels` with several recipients): the creator owns
//! it, everyone invited must be their friend (Discord's rule for user accounts), at most ten
//! people in all; CHANNEL_CREATE goes to each participant with their own view.
use serde_json::{json, Value};

use crate::backend::error::{ApiError, Unknown};
use crate::backend::events::Dispatch;
use crate::backend::model::{channel_type, Channel, User};
use crate::backend::render;
use crate::backend::services::channels::strip_self_from_recipients;
use crate::backend::services::relationships::are_friends;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Most people a group DM holds, its owner included.
const MAX_PARTICIPANTS: usize = 10;

/// The group DM as `viewer` sees it.
fn view(state: &AppState, channel: &Channel, viewer: Snowflake) -> Result<Value, ApiError> {
    let mut out = render::channel(&state.store, channel)?;
    strip_self_from_recipients(&mut out, viewer);
    out["name"] = json!(channel.name);
    out["icon"] = json!(channel.icon);
    out["owner_id"] = json!(channel.owner_id);
    Ok(out)
}

/// Creates a group DM owned by `owner` with `recipients` (duplicates and the owner ignored);
/// the owner's view of it.
pub(crate) fn create(
    state: &AppState,
    owner: &User,
    recipients: &[Snowflake],
    name: Option<String>,
    icon: Option<String>,
) -> Result<Value, ApiError> {
    if owner.bot {
        return Err(ApiError::forbidden(
            50007,
            "Cannot send messages to this user",
        ));
    }
    let mut others: Vec<Snowflake> = Vec::new();
    for id in recipients {
        if *id != owner.id && !others.contains(id) {
            others.push(*id);
        }
    }
    if others.len() + 1 > MAX_PARTICIPANTS {
        return Err(ApiError::bad_request(
            30004,
            "Maximum number of recipients reached (10)",
        ));
    }
    for id in &others {
        let user = state
            .store
            .user(*id)?
            .ok_or(ApiError::NotFound(Unknown::User))?;
        if user.bot || !are_friends(state, owner.id, *id)? {
            return Err(ApiError::forbidden(
                50007,
                "Cannot send messages to this user",
            ));
        }
    }
    let icon = icon
        .map(|data| crate::backend::services::images::store_image(&state.store, &data, "icon"))
        .transpose()?;
    let mut participants = vec![owner.id];
    participants.extend(others);
    let channel = {
        let _guard = state.store.lock();
        let mut channel = Channel::new(state.store.next_id(), channel_type::GROUP_DM);
        channel.recipient_ids = Some(participants.clone());
        channel.owner_id = Some(owner.id);
        channel.name = name.filter(|n| !n.is_empty());
        channel.icon = icon;
        state.store.put_channel(&channel)?;
        for user in &participants {
            state.store.user_dms.insert((*user, channel.id))?;
        }
        channel
    };
    for user in &participants {
        state.publish(Dispatch::users(
            "CHANNEL_CREATE",
            vec![*user],
            0,
            view(state, &channel, *user)?,
        ));
    }
    view(state, &channel, owner.id)
}
