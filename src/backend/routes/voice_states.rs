//! Voice states over REST: read one's own or another member's, and the stage controls
//! (suppress, request to speak) with VOICE_STATE_UPDATE dispatches. The states themselves
//! come from gateway op 4 (see [`crate::backend::voice`]).
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

use super::{no_content, ok, ApiResult};
use crate::backend::error::not_found;
use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::extract::{Auth, Body, Ids, InGuild};
use crate::backend::model::channel_type;
use crate::backend::permissions::bits;
use crate::backend::services::patch;
use crate::backend::services::patch::set_if_present;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, parse_iso8601_ms, Snowflake};
use crate::backend::state::{AppState, GuildAccess};
use crate::backend::voice::{self, VoiceState};
use crate::{backend::events::Dispatch, gateway::intents};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/guilds/{guild_id}/voice-states/@me",
            get(get_own).patch(patch_own),
        )
        .route(
            "/guilds/{guild_id}/voice-states/{user_id}",
            get(get_other).patch(patch_other),
        )
}

fn unknown_voice_state() -> ApiError {
    not_found(10065, "Unknown Voice State")
}

/// The caller's permissions in the channel a voice state is in.
fn permissions_in_channel(
    state: &AppState,
    access: &GuildAccess,
    channel_id: Snowflake,
) -> Result<(crate::backend::model::Channel, u64), ApiError> {
    let channel = state
        .store
        .channel(channel_id)
        .or_unknown(Unknown::Channel)?;
    let permissions = state.permissions_in(access, &channel)?;
    Ok((channel, permissions))
}

fn answer(state: &AppState, voice: &VoiceState) -> ApiResult {
    Ok(ok(voice::render(&state.store, voice, true)?))
}

async fn get_own(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    _: InGuild,
) -> ApiResult {
    let current = state
        .voice
        .get(guild_id, auth.id())
        .ok_or_else(unknown_voice_state)?;
    answer(&state, &current)
}

async fn get_other(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, user_id)): Ids<(Snowflake, Snowflake)>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    if state.store.member(guild_id, user_id)?.is_none() {
        return Err(ApiError::NotFound(Unknown::Member));
    }
    let current = state
        .voice
        .get(guild_id, user_id)
        .ok_or_else(unknown_voice_state)?;
    // Seeing who is in a channel takes being able to connect to it.
    let (_, permissions) = permissions_in_channel(&state, &access, current.channel_id)?;
    if permissions & (bits::VIEW_CHANNEL | bits::CONNECT) != bits::VIEW_CHANNEL | bits::CONNECT {
        return Err(ApiError::MissingPermissions);
    }
    answer(&state, &current)
}

/// Body of the voice-state PATCH routes (`request_to_speak_timestamp`: own state only).
#[derive(Deserialize)]
struct VoiceStatePatch {
    channel_id: Option<Snowflake>,
    suppress: Option<bool>,
    #[serde(default, deserialize_with = "patch::present")]
    request_to_speak_timestamp: Option<Option<String>>,
}

/// The target's current stage voice state and the caller's permissions in that stage, after
/// the checks both PATCH routes share: connected, `channel_id` (if given) is where they are,
/// and it is a stage.
fn stage_state(
    state: &AppState,
    access: &GuildAccess,
    user_id: Snowflake,
    body: &VoiceStatePatch,
) -> Result<(VoiceState, u64), ApiError> {
    let guild_id = access.guild.id;
    let current = state
        .voice
        .get(guild_id, user_id)
        .ok_or_else(unknown_voice_state)?;
    if let Some(channel_id) = body.channel_id {
        if channel_id != current.channel_id {
            return Err(ApiError::invalid_field(
                "channel_id",
                "VOICE_STATE_CHANNEL_MISMATCH",
                "The user is not connected to this channel.",
            ));
        }
    }
    let (channel, permissions) = permissions_in_channel(state, access, current.channel_id)?;
    if channel.kind != channel_type::GUILD_STAGE_VOICE {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    }
    Ok((current, permissions))
}

fn publish(state: &AppState, voice: &VoiceState) -> Result<(), ApiError> {
    let data: Value = voice::render(&state.store, voice, true)?;
    state.publish(Dispatch::guild(
        "VOICE_STATE_UPDATE",
        voice.guild_id,
        intents::GUILD_VOICE_STATES,
        data,
    ));
    Ok(())
}

async fn patch_own(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, Body(body)): InGuild<0, Body<VoiceStatePatch>>,
) -> ApiResult {
    let request = match &body.request_to_speak_timestamp {
        Some(Some(text)) => {
            let mut checks = Validator::default();
            let at = parse_iso8601_ms(text);
            match at {
                None => checks.add(
                    "request_to_speak_timestamp",
                    "DATE_TIME_TYPE_PARSE",
                    "Could not parse the timestamp. Should be ISO8601.",
                ),
                // "Any present or future time": a minute of clock skew is tolerated.
                Some(at) if at + 60_000 < now_ms() => checks.add(
                    "request_to_speak_timestamp",
                    "DATE_TIME_TYPE_PAST",
                    "The timestamp cannot be in the past.",
                ),
                Some(_) => {}
            }
            checks.finish()?;
            Some(at.map(iso8601_from_ms))
        }
        Some(None) => Some(None),
        None => None,
    };
    let (_, permissions) = stage_state(&state, &access, auth.id(), &body)?;
    if body.suppress == Some(false) && permissions & bits::MUTE_MEMBERS == 0 {
        return Err(ApiError::MissingPermissions);
    }
    if matches!(request, Some(Some(_))) && permissions & bits::REQUEST_TO_SPEAK == 0 {
        return Err(ApiError::MissingPermissions);
    }
    let updated = state
        .voice
        .update(guild_id, auth.id(), |voice| {
            set_if_present(&mut voice.suppress, body.suppress);
            if let Some(request) = request {
                voice.request_to_speak_timestamp = request;
            }
        })
        .ok_or_else(unknown_voice_state)?;
    publish(&state, &updated)?;
    Ok(no_content())
}

async fn patch_other(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, user_id)): Ids<(Snowflake, Snowflake)>,
    InGuild(access, Body(body)): InGuild<0, Body<VoiceStatePatch>>,
) -> ApiResult {
    let target = state.store.user(user_id).or_unknown(Unknown::User)?;
    if state.store.member(guild_id, user_id)?.is_none() {
        return Err(ApiError::NotFound(Unknown::Member));
    }
    let (_, permissions) = stage_state(&state, &access, user_id, &body)?;
    if permissions & bits::MUTE_MEMBERS == 0 {
        return Err(ApiError::MissingPermissions);
    }
    let updated = state
        .voice
        .update(guild_id, user_id, |voice| {
            if let Some(suppress) = body.suppress {
                voice.suppress = suppress;
                // Invited up: people (not bots) show as having asked now; sent back to the
                // audience: the request is cleared.
                voice.request_to_speak_timestamp = match (suppress, target.bot) {
                    (false, false) => Some(iso8601_from_ms(now_ms())),
                    _ => None,
                };
            }
        })
        .ok_or_else(unknown_voice_state)?;
    publish(&state, &updated)?;
    Ok(no_content())
}
