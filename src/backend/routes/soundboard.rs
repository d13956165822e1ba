//! Soundboard: Discord's default sounds and guild sounds (create from an mp3/ogg data URI,
//! edit, delete), with GUILD_SOUNDBOARD_SOUND_* dispatches and audit entries.
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, ApiResult};
use crate::backend::error::unknown;
use crate::backend::error::{ApiError, Unknown, Validator};
use crate::backend::extra::SoundboardSound;
use crate::backend::extract::{Auth, Body, Ids, InGuild, Reason};
use crate::backend::model::AuditChange;
use crate::backend::services::expressions::{self, ExpressionKind, Slots};
use crate::backend::services::patch::set_if_present;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{changes, AppState};
use crate::{backend::events::Dispatch, gateway::intents};

/// Audit log actions.
const SOUND_CREATE: u16 = 130;
const SOUND_UPDATE: u16 = 131;
const SOUND_DELETE: u16 = 132;
/// Largest sound file Discord accepts.
const MAX_SOUND_BYTES: usize = 512 * 1024;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/soundboard-default-sounds", get(default_sounds))
        .route(
            "/guilds/{guild_id}/soundboard-sounds",
            get(list_sounds).post(create_sound),
        )
        .route(
            "/guilds/{guild_id}/soundboard-sounds/{sound_id}",
            get(get_sound).patch(edit_sound).delete(delete_sound),
        )
}

/// Discord's default sounds (ids 1..; available to everyone).
pub(crate) const DEFAULT_SOUNDS: &[(u64, &str, &str)] = &[
    (1, "quack", "🦆"),
    (2, "airhorn", "🔊"),
    (3, "cricket", "🦗"),
    (4, "golf clap", "⛳"),
    (5, "sad horn", "🎺"),
    (6, "ba dum tss", "🥁"),
];

async fn default_sounds(_auth: Auth) -> ApiResult {
    Ok(ok(Value::Array(
        DEFAULT_SOUNDS
            .iter()
            .map(|(id, name, emoji)| {
                json!({
                    "name": name,
                    "sound_id": Snowflake(*id),
                    "volume": 1.0,
                    "emoji_id": null,
                    "emoji_name": emoji,
                    "available": true,
                })
            })
            .collect(),
    )))
}

fn render_sound(
    state: &AppState,
    sound: &SoundboardSound,
    with_user: bool,
) -> Result<Value, ApiError> {
    let out = json!({
        "name": sound.name,
        "sound_id": sound.id,
        "volume": sound.volume,
        "emoji_id": sound.emoji_id,
        "emoji_name": sound.emoji_name,
        "guild_id": sound.guild_id,
        "available": sound.available,
    });
    expressions::with_uploader(state, out, sound.creator_id, with_user)
}

fn load(
    state: &AppState,
    guild_id: Snowflake,
    sound_id: Snowflake,
) -> Result<SoundboardSound, ApiError> {
    state
        .store
        .extra
        .sounds
        .get((guild_id, sound_id))?
        .ok_or(unknown(unknown::SOUNDBOARD_SOUND))
}

fn publish(state: &AppState, name: &'static str, guild_id: Snowflake, data: Value) {
    state.publish(Dispatch::guild(
        name,
        guild_id,
        intents::GUILD_EXPRESSIONS,
        data,
    ));
}

/// Sound slots by boost tier.
const SOUND_SLOTS: Slots = Slots {
    by_tier: [8, 24, 36, 48],
    code: 30045,
    message: "Maximum number of soundboard sounds reached",
};

/// Audit changes from `old` (none when created) to `new`.
fn sound_changes(old: Option<&SoundboardSound>, new: &SoundboardSound) -> Vec<AuditChange> {
    let was = |field: fn(&SoundboardSound) -> Value| old.map_or(Value::Null, field);
    changes(vec![
        ("name", was(|s| json!(s.name)), json!(new.name)),
        ("volume", was(|s| json!(s.volume)), json!(new.volume)),
        ("emoji_id", was(|s| json!(s.emoji_id)), json!(new.emoji_id)),
        (
            "emoji_name",
            was(|s| json!(s.emoji_name)),
            json!(new.emoji_name),
        ),
    ])
}

async fn list_sounds(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let with_user = expressions::sees_creators(&access);
    let items = expressions::render_guild_expressions(&state.store.extra.sounds, guild_id, |s| {
        render_sound(&state, s, with_user)
    })?;
    Ok(ok(json!({ "items": items })))
}

async fn get_sound(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, sound_id)): Ids<(Snowflake, Snowflake)>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let sound = load(&state, guild_id, sound_id)?;
    Ok(ok(render_sound(
        &state,
        &sound,
        expressions::sees_creators(&access),
    )?))
}

/// Create and edit bodies (`sound` only on create).
#[derive(Deserialize)]
struct SoundBody {
    name: Option<String>,
    sound: Option<String>,
    #[serde(default, deserialize_with = "crate::backend::services::patch::present")]
    volume: Option<Option<f64>>,
    #[serde(default, deserialize_with = "crate::backend::services::patch::present")]
    emoji_id: Option<Option<Snowflake>>,
    #[serde(default, deserialize_with = "crate::backend::services::patch::present")]
    emoji_name: Option<Option<String>>,
}

fn check_common(checks: &mut Validator, body: &SoundBody) {
    checks.length("name", body.name.as_deref(), 2, 32);
    if let Some(Some(volume)) = body.volume {
        if !(0.0..=1.0).contains(&volume) {
            checks.add(
                "volume",
                "NUMBER_TYPE_OUT_OF_RANGE",
                "float value should be between 0 and 1.",
            );
        }
    }
    checks.length(
        "emoji_name",
        body.emoji_name.clone().flatten().as_deref(),
        1,
        32,
    );
}

/// 10014 unless `emoji_id` is a custom emoji of some guild this backend knows.
fn check_emoji(state: &AppState, emoji_id: Option<Snowflake>) -> Result<(), ApiError> {
    match emoji_id {
        Some(id) if state.store.emoji_guild.get(id)?.is_none() => {
            Err(ApiError::NotFound(Unknown::Emoji))
        }
        _ => Ok(()),
    }
}

/// Validates an mp3/ogg data URI and returns its decoded size.
fn decode_sound(data: &str) -> Result<usize, ApiError> {
    let invalid = || ApiError::invalid_field("sound", "SOUND_INVALID", "Invalid sound data");
    let (head, payload) = data.split_once(";base64,").ok_or_else(invalid)?;
    if !matches!(
        head,
        "data:audio/mpeg" | "data:audio/mp3" | "data:audio/ogg" | "data:audio/x-mpeg"
    ) {
        return Err(invalid());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|_| invalid())?;
    if bytes.is_empty() {
        return Err(invalid());
    }
    if bytes.len() > MAX_SOUND_BYTES {
        return Err(ApiError::bad_request(
            50045,
            "File uploaded exceeds the maximum size",
        ));
    }
    Ok(bytes.len())
}

async fn create_sound(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<0, Body<SoundBody>>,
) -> ApiResult {
    expressions::require_expression_creator(&access)?;
    let mut checks = Validator::default();
    checks.required("name", body.name.as_ref());
    checks.required("sound", body.sound.as_ref());
    check_common(&mut checks, &body);
    checks.finish()?;
    decode_sound(body.sound.as_deref().unwrap_or_default())?;
    let emoji_id = body.emoji_id.flatten();
    check_emoji(&state, emoji_id)?;
    let sound = {
        let _guard = state.store.lock();
        SOUND_SLOTS.check(
            state.store.extra.sounds.count(guild_id),
            access.guild.premium_tier,
        )?;
        let sound = SoundboardSound {
            id: state.store.next_id(),
            guild_id,
            name: body.name.unwrap_or_default(),
            volume: body.volume.flatten().unwrap_or(1.0),
            emoji_id,
            emoji_name: if emoji_id.is_some() {
                None
            } else {
                body.emoji_name.flatten()
            },
            available: true,
            creator_id: auth.id(),
        };
        state.store.extra.sounds.put((guild_id, sound.id), &sound)?;
        sound
    };
    let data = announce_sound(&state, auth.id(), None, &sound, reason)?;
    Ok(created(data))
}

async fn edit_sound(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, sound_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<0, Body<SoundBody>>,
) -> ApiResult {
    let (old, sound) = expressions::edit_expression(
        &state,
        &state.store.extra.sounds,
        (guild_id, sound_id),
        &access,
        auth.id(),
        &SOUND,
        |sound| {
            let mut checks = Validator::default();
            check_common(&mut checks, &body);
            checks.finish()?;
            if let Some(emoji_id) = body.emoji_id {
                check_emoji(&state, emoji_id)?;
            }
            set_if_present(&mut sound.name, body.name);
            if let Some(volume) = body.volume {
                sound.volume = volume.unwrap_or(1.0);
            }
            if let Some(emoji_id) = body.emoji_id {
                sound.emoji_id = emoji_id;
                if emoji_id.is_some() {
                    sound.emoji_name = None;
                }
            }
            if let Some(emoji_name) = body.emoji_name {
                sound.emoji_name = emoji_name;
                if sound.emoji_name.is_some() {
                    sound.emoji_id = None;
                }
            }
            Ok(())
        },
    )?;
    let data = announce_sound(&state, auth.id(), Some(&old), &sound, reason)?;
    Ok(ok(data))
}

/// Records a created (`old` None) or edited sound in the audit log and dispatches it; returns
/// its rendering (with the uploader).
fn announce_sound(
    state: &AppState,
    actor: Snowflake,
    old: Option<&SoundboardSound>,
    sound: &SoundboardSound,
    reason: Option<String>,
) -> Result<Value, ApiError> {
    let (action, event) = match old {
        None => (SOUND_CREATE, "GUILD_SOUNDBOARD_SOUND_CREATE"),
        Some(_) => (SOUND_UPDATE, "GUILD_SOUNDBOARD_SOUND_UPDATE"),
    };
    state.audit(
        sound.guild_id,
        actor,
        action,
        Some(sound.id),
        sound_changes(old, sound),
        None,
        reason,
    )?;
    let data = render_sound(state, sound, true)?;
    publish(state, event, sound.guild_id, data.clone());
    Ok(data)
}

async fn delete_sound(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, sound_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, _): InGuild,
) -> ApiResult {
    expressions::delete_expression(
        &state,
        &state.store.extra.sounds,
        (guild_id, sound_id),
        &access,
        auth.id(),
        reason,
        &SOUND,
    )?;
    publish(
        &state,
        "GUILD_SOUNDBOARD_SOUND_DELETE",
        guild_id,
        json!({"sound_id": sound_id, "guild_id": guild_id}),
    );
    Ok(no_content())
}

/// Sounds as expressions: a deletion's audit entry names the sound.
const SOUND: ExpressionKind<SoundboardSound> = ExpressionKind {
    action: SOUND_DELETE,
    creator_of: |sound| sound.creator_id,
    missing: || unknown(unknown::SOUNDBOARD_SOUND),
    changes: |sound| changes(vec![("name", json!(sound.name), Value::Null)]),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sound_data_uris_are_checked() {
        assert_eq!(decode_sound("data:audio/ogg;base64,T2dnUw==").unwrap(), 4);
        assert!(decode_sound("data:image/png;base64,T2dnUw==").is_err());
        assert!(decode_sound("data:audio/mpeg;base64,!!!").is_err());
        assert!(decode_sound("no uri").is_err());
        let huge = format!(
            "data:audio/mpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(vec![0u8; MAX_SOUND_BYTES + 1])
        );
        assert_eq!(decode_sound(&huge).unwrap_err().body()["code"], 50045);
    }
}
