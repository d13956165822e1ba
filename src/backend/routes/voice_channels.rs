//! What members do in a voice channel over REST: set the channel's status line, and play a
//! soundboard sound (VOICE_CHANNEL_STATUS_UPDATE / VOICE_CHANNEL_EFFECT_SEND).
use axum::extract::State;
use axum::routing::{post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::soundboard::DEFAULT_SOUNDS;
use super::{no_content, ApiResult};
use crate::backend::error::unknown;
use crate::backend::error::{ApiError, Validator};
use crate::backend::extract::{Auth, Body, Ids, InChannel};
use crate::backend::model::channel_type;
use crate::backend::permissions::bits;
use crate::backend::services::patch;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{AppState, ChannelAccess};
use crate::{backend::events::Dispatch, gateway::intents};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels/{channel_id}/voice-status", put(set_status))
        .route(
            "/channels/{channel_id}/send-soundboard-sound",
            post(send_sound),
        )
}

fn wrong_type() -> ApiError {
    ApiError::bad_request(50024, "Cannot execute action on this channel type")
}

fn not_connected() -> ApiError {
    ApiError::bad_request(40032, "Target user is not connected to voice.")
}

/// Whether the caller is connected to this channel right now.
fn connected_here(state: &AppState, access: &ChannelAccess, user_id: Snowflake) -> bool {
    access
        .guild_id()
        .and_then(|guild_id| state.voice.get(guild_id, user_id))
        .is_some_and(|voice| voice.channel_id == access.channel.id)
}

#[derive(Deserialize)]
struct StatusBody {
    #[serde(default, deserialize_with = "patch::present")]
    status: Option<Option<String>>,
}

/// `PUT /channels/{id}/voice-status`: members in the channel may set it; anyone else needs
/// MANAGE_CHANNELS. An empty or null status clears it.
async fn set_status(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    InChannel(access, Body(body)): InChannel<0, Body<StatusBody>>,
) -> ApiResult {
    let Some(guild_id) = access.guild_id() else {
        return Err(wrong_type());
    };
    if access.channel.kind != channel_type::GUILD_VOICE {
        return Err(wrong_type());
    }
    let Some(status) = body.status else {
        return Err(ApiError::invalid_field(
            "status",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    };
    let mut checks = Validator::default();
    checks.length("status", status.as_deref(), 0, 500);
    checks.finish()?;
    if !connected_here(&state, &access, auth.id()) {
        access.require(bits::MANAGE_CHANNELS)?;
    }
    let status = status.filter(|s| !s.trim().is_empty());
    let table = &state.store.extra.voice_statuses;
    match &status {
        Some(text) => table.put(channel_id, text)?,
        None => {
            table.remove(channel_id)?;
        }
    }
    state.publish(Dispatch::guild(
        "VOICE_CHANNEL_STATUS_UPDATE",
        guild_id,
        intents::GUILDS,
        json!({"id": channel_id, "guild_id": guild_id, "status": status}),
    ));
    Ok(no_content())
}

#[derive(Deserialize)]
struct SendSoundBody {
    sound_id: Option<Snowflake>,
    source_guild_id: Option<Snowflake>,
}

/// `POST /channels/{id}/send-soundboard-sound`: the caller must be in the channel, able to
/// speak and heard (not deafened, muted or suppressed); sounds from another server need
/// USE_EXTERNAL_SOUNDS.
async fn send_sound(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    InChannel(access, Body(body)): InChannel<0, Body<SendSoundBody>>,
) -> ApiResult {
    let Some(guild_id) = access.guild_id() else {
        return Err(wrong_type());
    };
    if !matches!(
        access.channel.kind,
        channel_type::GUILD_VOICE | channel_type::GUILD_STAGE_VOICE
    ) {
        return Err(wrong_type());
    }
    let Some(sound_id) = body.sound_id else {
        return Err(ApiError::invalid_field(
            "sound_id",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    };
    let voice = state
        .voice
        .get(guild_id, auth.id())
        .filter(|v| v.channel_id == channel_id)
        .ok_or_else(not_connected)?;
    access.require(bits::SPEAK | bits::USE_SOUNDBOARD)?;
    if voice.self_deaf || voice.self_mute || voice.suppress {
        return Err(ApiError::MissingPermissions);
    }
    let source = body.source_guild_id.unwrap_or(guild_id);
    let (volume, emoji_id, emoji_name) = match DEFAULT_SOUNDS
        .iter()
        .find(|(id, _, _)| Snowflake(*id) == sound_id)
    {
        Some((_, _, emoji)) if body.source_guild_id.is_none() => {
            (1.0, None, Some(emoji.to_string()))
        }
        _ => {
            if source != guild_id {
                access.require(bits::USE_EXTERNAL_SOUNDS)?;
                if state.store.member(source, auth.id())?.is_none() {
                    return Err(unknown(crate::backend::error::unknown::SOUNDBOARD_SOUND));
                }
            }
            let sound = state
                .store
                .extra
                .sounds
                .get((source, sound_id))?
                .filter(|s| s.available)
                .ok_or_else(|| unknown(crate::backend::error::unknown::SOUNDBOARD_SOUND))?;
            (sound.volume, sound.emoji_id, sound.emoji_name)
        }
    };
    let mut data = json!({
        "channel_id": channel_id,
        "guild_id": guild_id,
        "user_id": auth.id(),
        "sound_id": sound_id,
        "sound_volume": volume,
    });
    if emoji_id.is_some() || emoji_name.is_some() {
        data["emoji"] = json!({"id": emoji_id, "name": emoji_name});
    }
    if body.source_guild_id.is_some() {
        data["source_guild_id"] = json!(source);
    }
    state.publish(Dispatch::for_channel(
        "VOICE_CHANNEL_EFFECT_SEND",
        &access.channel,
        intents::GUILD_VOICE_STATES,
        0,
        data,
    ));
    Ok(no_content())
}
