//! The user's settings: the settings protobufs (`/users/@me/settings-proto/{1,2}`), the legacy
//! JSON view (`/users/@me/settings`) kept consistent with them, and notification settings per
//! guild (`/users/@me/guilds/{id}/settings`).
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use prost::Message as _;
use serde_json::{json, Map, Value};

use crate::backend::error::ApiError;
use crate::backend::events::Dispatch;
use crate::backend::model::User;
use crate::backend::settings_proto::{
    preloaded_user_settings, FrecencyUserSettings, PreloadedUserSettings, ReplaceTopLevel,
};
use crate::backend::snowflake::{iso8601_from_ms, Snowflake};
use crate::backend::state::AppState;
use crate::backend::user_state::{settings_proto_type, UserGuildSettings};

/// The legacy settings for a user nothing was stored for (Discord's defaults).
pub(crate) fn legacy_defaults(user: &User) -> Value {
    json!({
        "locale": user.locale,
        "theme": "dark",
        "status": "online",
        "custom_status": null,
        "show_current_game": true,
        "developer_mode": false,
        "guild_folders": [],
        "guild_positions": [],
        "restricted_guilds": [],
        "message_display_compact": false,
        "inline_attachment_media": true,
        "inline_embed_media": true,
        "gif_auto_play": true,
        "render_embeds": true,
        "render_reactions": true,
        "animate_emoji": true,
        "animate_stickers": 0,
        "enable_tts_command": true,
        "convert_emoticons": true,
        "explicit_content_filter": 1,
        "default_guilds_restricted": false,
        "detect_platform_accounts": true,
        "disable_games_tab": false,
        "friend_source_flags": {"all": true},
        "friend_discovery_flags": 0,
        "afk_timeout": 600,
        "timezone_offset": 0,
        "stream_notifications_enabled": true,
        "allow_accessibility_detection": false,
        "contact_sync_enabled": false,
        "native_phone_integration_enabled": true,
        "view_nsfw_guilds": false,
        "view_nsfw_commands": false,
        "passwordless": false,
        "activity_restricted_guild_ids": [],
        "activity_joining_restricted_guild_ids": [],
    })
}

/// The user's legacy settings: the stored view over the defaults.
pub(crate) fn legacy_settings(state: &AppState, user: &User) -> Result<Value, ApiError> {
    let mut out = legacy_defaults(user);
    if let (Some(stored), Some(object)) = (
        state.store.account.legacy_settings.get(user.id)?,
        out.as_object_mut(),
    ) {
        if let Some(stored) = stored.as_object() {
            for (key, value) in stored {
                object.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(out)
}

/// Decodes a stored or sent settings proto of `kind`; 50035 at `settings` when it does not
/// decode.
fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, ApiError> {
    M::decode(bytes).map_err(|_| {
        ApiError::invalid_field(
            "settings",
            "SETTINGS_PROTO_INVALID",
            "Invalid settings protobuf",
        )
    })
}

/// 50035 unless `kind` is a settings-proto type this backend keeps (1 preloaded, 2 frecency).
pub(crate) fn check_proto_kind(kind: u8) -> Result<(), ApiError> {
    if kind == settings_proto_type::PRELOADED || kind == settings_proto_type::FRECENCY {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "type",
            "BASE_TYPE_CHOICES",
            "Value must be one of {1, 2}.",
        ))
    }
}

/// The user's stored proto of `kind` (empty when nothing was stored).
pub(crate) fn proto_bytes(
    state: &AppState,
    user_id: Snowflake,
    kind: u8,
) -> Result<Vec<u8>, ApiError> {
    Ok(state
        .store
        .account
        .settings_proto
        .get((user_id, Snowflake(u64::from(kind))))?
        .unwrap_or_default())
}

/// What a settings-proto PATCH produced.
#[derive(Debug)]
pub(crate) struct ProtoWrite {
    /// The stored proto after the write (unchanged when out of date).
    pub bytes: Vec<u8>,
    /// The write was dropped: `required_data_version` was older than the stored one.
    pub out_of_date: bool,
}

/// Applies a PATCH of the user's proto of `kind` (`settings`: base64) as Discord does: each
/// top-level field sent replaces the stored one; with `required_data_version` older than the
/// stored data version nothing changes. Publishes USER_SETTINGS_PROTO_UPDATE (and, for the
/// preloaded settings, USER_SETTINGS_UPDATE with the legacy view of what changed).
pub(crate) fn patch_proto(
    state: &AppState,
    user: &User,
    kind: u8,
    settings: &str,
    required_data_version: Option<u32>,
) -> Result<ProtoWrite, ApiError> {
    let patch = STANDARD.decode(settings.trim()).map_err(|_| {
        ApiError::invalid_field("settings", "BASE64_INVALID", "Invalid base64 data")
    })?;
    let (bytes, out_of_date, legacy) = {
        let _guard = state.store.lock();
        let stored = proto_bytes(state, user.id, kind)?;
        match kind {
            settings_proto_type::PRELOADED => {
                let (bytes, stale, message) =
                    apply::<PreloadedUserSettings>(&stored, &patch, required_data_version)?;
                let legacy = (!stale).then(|| legacy_from_proto(&message));
                (bytes, stale, legacy)
            }
            _ => {
                let (bytes, stale, _) =
                    apply::<FrecencyUserSettings>(&stored, &patch, required_data_version)?;
                (bytes, stale, None)
            }
        }
    };
    if out_of_date {
        return Ok(ProtoWrite { bytes, out_of_date });
    }
    {
        let _guard = state.store.lock();
        state
            .store
            .account
            .settings_proto
            .put((user.id, Snowflake(u64::from(kind))), &bytes)?;
        if let Some(legacy) = &legacy {
            merge_legacy(&state.store, user.id, legacy)?;
        }
    }
    publish_proto(state, user.id, kind, &bytes);
    if let Some(legacy) = legacy {
        state.publish(Dispatch::users(
            "USER_SETTINGS_UPDATE",
            vec![user.id],
            0,
            Value::Object(legacy),
        ));
    }
    Ok(ProtoWrite { bytes, out_of_date })
}

/// Decodes `stored` and `patch`, applies the patch; (encoded result, out of date, result).
fn apply<M>(
    stored: &[u8],
    patch: &[u8],
    required_data_version: Option<u32>,
) -> Result<(Vec<u8>, bool, M), ApiError>
where
    M: prost::Message + Default + ReplaceTopLevel,
{
    let mut current: M = decode(stored)?;
    let patch: M = decode(patch)?;
    if required_data_version.is_some_and(|required| required < current.data_version()) {
        return Ok((stored.to_vec(), true, current));
    }
    let client_version = patch_client_version(&patch);
    current.replace_top_level(patch);
    current.bump_version(client_version);
    Ok((current.encode_to_vec(), false, current))
}

/// The client version a patch announces (its `versions.client_version`).
fn patch_client_version<M: prost::Message>(patch: &M) -> u32 {
    // Field 1 of both settings messages is `versions`; its field 1 is `client_version`.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Versions {
        #[prost(uint32, tag = "1")]
        client_version: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Head {
        #[prost(message, optional, tag = "1")]
        versions: Option<Versions>,
    }
    Head::decode(patch.encode_to_vec().as_slice())
        .ok()
        .and_then(|head| head.versions)
        .map_or(0, |v| v.client_version)
}

/// Sends USER_SETTINGS_PROTO_UPDATE with the whole proto of `kind`.
fn publish_proto(state: &AppState, user_id: Snowflake, kind: u8, bytes: &[u8]) {
    state.publish(Dispatch::users(
        "USER_SETTINGS_PROTO_UPDATE",
        vec![user_id],
        0,
        json!({"settings": {"type": kind, "proto": STANDARD.encode(bytes)}, "partial": false}),
    ));
}

/// Stores `changes` over the user's legacy settings.
fn merge_legacy(
    store: &crate::backend::store::Store,
    user_id: Snowflake,
    changes: &Map<String, Value>,
) -> Result<(), ApiError> {
    let mut stored = store
        .account
        .legacy_settings
        .get(user_id)?
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    if let Some(object) = stored.as_object_mut() {
        for (key, value) in changes {
            object.insert(key.clone(), value.clone());
        }
    }
    store.account.legacy_settings.put(user_id, &stored)?;
    Ok(())
}

const THEMES: [&str; 5] = ["", "dark", "light", "darker", "midnight"];

/// The legacy keys the preloaded proto sets (only those it carries).
pub(crate) fn legacy_from_proto(proto: &PreloadedUserSettings) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(status) = &proto.status {
        if let Some(value) = &status.status {
            out.insert("status".into(), json!(value));
        }
        out.insert(
            "custom_status".into(),
            status.custom_status.as_ref().map_or(Value::Null, |c| {
                json!({
                    "text": (!c.text.is_empty()).then_some(&c.text),
                    "emoji_id": (c.emoji_id != 0).then(|| c.emoji_id.to_string()),
                    "emoji_name": (!c.emoji_name.is_empty()).then_some(&c.emoji_name),
                    "expires_at": (c.expires_at_ms != 0).then(|| iso8601_from_ms(c.expires_at_ms)),
                })
            }),
        );
        if let Some(show) = status.show_current_game {
            out.insert("show_current_game".into(), json!(show));
        }
    }
    if let Some(appearance) = &proto.appearance {
        if let Some(theme) = usize::try_from(appearance.theme)
            .ok()
            .and_then(|i| THEMES.get(i))
            .filter(|t| !t.is_empty())
        {
            out.insert("theme".into(), json!(theme));
        }
        out.insert("developer_mode".into(), json!(appearance.developer_mode));
    }
    if let Some(localization) = &proto.localization {
        if let Some(locale) = &localization.locale {
            out.insert("locale".into(), json!(locale));
        }
        if let Some(offset) = localization.timezone_offset {
            out.insert("timezone_offset".into(), json!(offset));
        }
    }
    if let Some(folders) = &proto.guild_folders {
        out.insert("guild_folders".into(), legacy_folders(folders));
        out.insert(
            "guild_positions".into(),
            json!(folders
                .guild_positions
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()),
        );
    }
    if let Some(text) = &proto.text_and_images {
        text_legacy(text, &mut out);
    }
    out
}

fn legacy_folders(folders: &preloaded_user_settings::GuildFolders) -> Value {
    Value::Array(
        folders
            .folders
            .iter()
            .map(|f| {
                json!({
                    "guild_ids": f.guild_ids.iter().map(u64::to_string).collect::<Vec<_>>(),
                    "id": f.id,
                    "name": f.name,
                    "color": f.color,
                })
            })
            .collect(),
    )
}

/// The text-and-images booleans and numbers both views share: (legacy key, getter, setter).
type TextField = (
    &'static str,
    fn(&preloaded_user_settings::TextAndImagesSettings) -> Option<Value>,
    fn(&mut preloaded_user_settings::TextAndImagesSettings, &Value) -> bool,
);

macro_rules! text_fields {
    ($($name:ident: $kind:ident),* $(,)?) => {
        &[$((
            stringify!($name),
            |t| t.$name.map(|v| json!(v)),
            |t, v| match text_fields!(@get $kind, v) {
                Some(v) => { t.$name = Some(v); true }
                None => false,
            },
        )),*]
    };
    (@get bool, $v:expr) => { $v.as_bool() };
    (@get u32, $v:expr) => { $v.as_u64().and_then(|n| u32::try_from(n).ok()) };
}

const TEXT_FIELDS: &[TextField] = text_fields!(
    inline_attachment_media: bool,
    inline_embed_media: bool,
    gif_auto_play: bool,
    render_embeds: bool,
    render_reactions: bool,
    animate_emoji: bool,
    animate_stickers: u32,
    enable_tts_command: bool,
    message_display_compact: bool,
    explicit_content_filter: u32,
    view_nsfw_guilds: bool,
    convert_emoticons: bool,
    view_nsfw_commands: bool,
);

fn text_legacy(
    text: &preloaded_user_settings::TextAndImagesSettings,
    out: &mut Map<String, Value>,
) {
    for (key, get, _) in TEXT_FIELDS {
        if let Some(value) = get(text) {
            out.insert((*key).into(), value);
        }
    }
}

/// Checks a legacy settings PATCH; 50035 naming the first bad key.
fn check_legacy(changes: &Map<String, Value>) -> Result<(), ApiError> {
    let mut checks = crate::backend::error::Validator::default();
    if let Some(theme) = changes.get("theme") {
        if !theme.as_str().is_some_and(|t| THEMES[1..].contains(&t)) {
            checks.add(
                "theme",
                "BASE_TYPE_CHOICES",
                "Value must be one of ('dark', 'light', 'darker', 'midnight').",
            );
        }
    }
    if let Some(status) = changes.get("status") {
        if !status
            .as_str()
            .is_some_and(|s| ["online", "idle", "dnd", "invisible"].contains(&s))
        {
            checks.add(
                "status",
                "BASE_TYPE_CHOICES",
                "Value must be one of ('online', 'idle', 'dnd', 'invisible').",
            );
        }
    }
    if let Some(locale) = changes.get("locale") {
        if !locale.as_str().is_some_and(|l| (2..=10).contains(&l.len())) {
            checks.add("locale", "BASE_TYPE_BAD_LOCALE", "Not a valid locale.");
        }
    }
    if let Some(custom) = changes.get("custom_status") {
        let text_ok = custom
            .get("text")
            .is_none_or(|t| t.is_null() || t.as_str().is_some_and(|t| t.chars().count() <= 128));
        if !(custom.is_null() || custom.is_object() && text_ok) {
            checks.add(
                "custom_status",
                "BASE_TYPE_BAD_CUSTOM_STATUS",
                "Not a valid custom status.",
            );
        }
    }
    for (key, _, set) in TEXT_FIELDS {
        if let Some(value) = changes.get(*key) {
            let mut scratch = preloaded_user_settings::TextAndImagesSettings::default();
            if !set(&mut scratch, value) {
                checks.add(key, "BASE_TYPE_BAD_VALUE", "Not a valid value.");
            }
        }
    }
    checks.finish()
}

/// Applies the legacy keys the preloaded proto also carries onto it.
fn apply_legacy(proto: &mut PreloadedUserSettings, changes: &Map<String, Value>) {
    if changes.contains_key("status")
        || changes.contains_key("custom_status")
        || changes.contains_key("show_current_game")
    {
        let status = proto.status.get_or_insert_with(Default::default);
        if let Some(value) = changes.get("status").and_then(Value::as_str) {
            status.status = Some(value.to_string());
        }
        if let Some(custom) = changes.get("custom_status") {
            status.custom_status = custom_status_proto(custom);
        }
        if let Some(show) = changes.get("show_current_game").and_then(Value::as_bool) {
            status.show_current_game = Some(show);
        }
    }
    if let Some(theme) = changes.get("theme").and_then(Value::as_str) {
        if let Some(index) = THEMES.iter().position(|t| *t == theme) {
            let appearance = proto.appearance.get_or_insert_with(Default::default);
            appearance.theme = i32::try_from(index).unwrap_or(0);
        }
    }
    if let Some(developer) = changes.get("developer_mode").and_then(Value::as_bool) {
        proto
            .appearance
            .get_or_insert_with(Default::default)
            .developer_mode = developer;
    }
    if let Some(locale) = changes.get("locale").and_then(Value::as_str) {
        proto
            .localization
            .get_or_insert_with(Default::default)
            .locale = Some(locale.to_string());
    }
    if let Some(offset) = changes.get("timezone_offset").and_then(Value::as_i64) {
        proto
            .localization
            .get_or_insert_with(Default::default)
            .timezone_offset = i32::try_from(offset).ok();
    }
    if changes.contains_key("guild_folders") || changes.contains_key("guild_positions") {
        apply_legacy_folders(proto, changes);
    }
    if TEXT_FIELDS
        .iter()
        .any(|(key, _, _)| changes.contains_key(*key))
    {
        let text = proto.text_and_images.get_or_insert_with(Default::default);
        for (key, _, set) in TEXT_FIELDS {
            if let Some(value) = changes.get(*key) {
                set(text, value);
            }
        }
    }
}

fn id_list(value: Option<&Value>) -> Vec<u64> {
    value
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| match id {
                    Value::String(s) => s.parse().ok(),
                    other => other.as_u64(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn apply_legacy_folders(proto: &mut PreloadedUserSettings, changes: &Map<String, Value>) {
    let folders = proto.guild_folders.get_or_insert_with(Default::default);
    if let Some(list) = changes.get("guild_folders").and_then(Value::as_array) {
        folders.folders = list
            .iter()
            .map(|f| preloaded_user_settings::GuildFolder {
                guild_ids: id_list(f.get("guild_ids")),
                id: f.get("id").and_then(Value::as_i64),
                name: f.get("name").and_then(Value::as_str).map(str::to_string),
                color: f.get("color").and_then(Value::as_u64),
            })
            .collect();
    }
    if changes.contains_key("guild_positions") {
        folders.guild_positions = id_list(changes.get("guild_positions"));
    }
}

fn custom_status_proto(custom: &Value) -> Option<preloaded_user_settings::CustomStatus> {
    if !custom.is_object() {
        return None;
    }
    let text = |key: &str| {
        custom
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Some(preloaded_user_settings::CustomStatus {
        text: text("text"),
        emoji_id: custom
            .get("emoji_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        emoji_name: text("emoji_name"),
        expires_at_ms: custom
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(crate::backend::snowflake::parse_iso8601_ms)
            .unwrap_or(0),
        created_at_ms: crate::backend::snowflake::now_ms(),
        label: None,
    })
}

/// Checks and stores legacy settings `changes` for `user_id` and mirrors them into the
/// preloaded proto (no events; the caller holds the store lock). The proto's new bytes.
pub(crate) fn store_legacy(
    store: &crate::backend::store::Store,
    user_id: Snowflake,
    changes: &Map<String, Value>,
) -> Result<Vec<u8>, ApiError> {
    check_legacy(changes)?;
    let key = (
        user_id,
        Snowflake(u64::from(settings_proto_type::PRELOADED)),
    );
    let stored = store.account.settings_proto.get(key)?.unwrap_or_default();
    let mut proto: PreloadedUserSettings = decode(&stored)?;
    apply_legacy(&mut proto, changes);
    proto.bump_version(0);
    let bytes = proto.encode_to_vec();
    store.account.settings_proto.put(key, &bytes)?;
    merge_legacy(store, user_id, changes)?;
    Ok(bytes)
}

/// Applies a legacy `/users/@me/settings` PATCH: stores the keys, mirrors those the preloaded
/// proto carries into it, and publishes USER_SETTINGS_UPDATE and USER_SETTINGS_PROTO_UPDATE.
/// Returns the whole legacy view after the change.
pub(crate) fn patch_legacy(
    state: &AppState,
    user: &User,
    changes: Map<String, Value>,
) -> Result<Value, ApiError> {
    let bytes = {
        let _guard = state.store.lock();
        store_legacy(&state.store, user.id, &changes)?
    };
    publish_proto(state, user.id, settings_proto_type::PRELOADED, &bytes);
    state.publish(Dispatch::users(
        "USER_SETTINGS_UPDATE",
        vec![user.id],
        0,
        Value::Object(changes),
    ));
    legacy_settings(state, user)
}

/// The user's notification settings for `guild` (`None`: DMs), defaults when none are stored.
pub(crate) fn guild_settings(
    state: &AppState,
    user_id: Snowflake,
    guild: Option<Snowflake>,
) -> Result<UserGuildSettings, ApiError> {
    let key = (user_id, guild.unwrap_or(Snowflake(0)));
    Ok(state
        .store
        .account
        .guild_settings
        .get(key)?
        .unwrap_or_else(|| UserGuildSettings {
            guild_id: guild,
            ..UserGuildSettings::default()
        }))
}

const GUILD_SETTING_KEYS: [&str; 10] = [
    "muted",
    "mute_config",
    "message_notifications",
    "suppress_everyone",
    "suppress_roles",
    "mobile_push",
    "hide_muted_channels",
    "notify_highlights",
    "mute_scheduled_events",
    "flags",
];

/// Overlays the partial `changes` (Discord's partial user guild settings: top-level keys and
/// `channel_overrides` as a map or list keyed by channel) on `current`.
fn overlay_guild_settings(
    current: &UserGuildSettings,
    changes: &Map<String, Value>,
) -> Result<UserGuildSettings, ApiError> {
    let mut value = serde_json::to_value(current).map_err(|e| ApiError::Internal(e.to_string()))?;
    let bad = |key: &str| ApiError::invalid_field(key, "BASE_TYPE_BAD_VALUE", "Not a valid value.");
    let Some(object) = value.as_object_mut() else {
        return Err(ApiError::Internal(
            "settings do not serialize to an object".into(),
        ));
    };
    for key in GUILD_SETTING_KEYS {
        if let Some(new) = changes.get(key) {
            object.insert(key.into(), new.clone());
        }
    }
    if let Some(overrides) = changes.get("channel_overrides") {
        let entries: Vec<(String, Value)> = match overrides {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Value::Array(list) => list
                .iter()
                .map(|v| {
                    (
                        v.get("channel_id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        v.clone(),
                    )
                })
                .collect(),
            _ => return Err(bad("channel_overrides")),
        };
        let mut list: Vec<Value> = object
            .get("channel_overrides")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (channel_id, partial) in entries {
            let Some(partial) = partial.as_object() else {
                return Err(bad("channel_overrides"));
            };
            if Snowflake::parse(&channel_id).is_none() {
                return Err(bad("channel_overrides"));
            }
            let slot = match list
                .iter()
                .position(|o| o["channel_id"] == channel_id.as_str())
            {
                Some(i) => &mut list[i],
                None => {
                    list.push(json!({"channel_id": channel_id}));
                    let last = list.len() - 1;
                    &mut list[last]
                }
            };
            if let Some(slot) = slot.as_object_mut() {
                for (key, v) in partial {
                    if key != "channel_id" {
                        slot.insert(key.clone(), v.clone());
                    }
                }
            }
        }
        object.insert("channel_overrides".into(), Value::Array(list));
    }
    let out: UserGuildSettings = serde_json::from_value(value)
        .map_err(|e| ApiError::invalid_field("settings", "BASE_TYPE_BAD_VALUE", e.to_string()))?;
    if out.message_notifications > 3 || out.notify_highlights > 2 {
        return Err(bad("message_notifications"));
    }
    Ok(out)
}

/// Applies a partial user guild settings PATCH for `guild` (`None`: DMs), bumps the version and
/// sends USER_GUILD_SETTINGS_UPDATE; the settings after the change.
pub(crate) fn patch_guild_settings(
    state: &AppState,
    user_id: Snowflake,
    guild: Option<Snowflake>,
    changes: &Map<String, Value>,
) -> Result<UserGuildSettings, ApiError> {
    let settings = {
        let _guard = state.store.lock();
        let current = guild_settings(state, user_id, guild)?;
        let mut settings = overlay_guild_settings(&current, changes)?;
        settings.version = state
            .store
            .account
            .bump_version(user_id, |versions| &mut versions.user_guild_settings)?;
        settings.guild_id = guild;
        state
            .store
            .account
            .guild_settings
            .put((user_id, guild.unwrap_or(Snowflake(0))), &settings)?;
        settings
    };
    state.publish(Dispatch::users(
        "USER_GUILD_SETTINGS_UPDATE",
        vec![user_id],
        0,
        serde_json::to_value(&settings).unwrap_or(Value::Null),
    ));
    Ok(settings)
}
