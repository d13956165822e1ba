//! Guild settings with their own routes: welcome screen, widget (settings and `widget.json`),
//! onboarding, and member prune (count and begin).
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ok, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown, Validator};
use crate::backend::extra::{Onboarding, WelcomeChannel, WelcomeScreen};
use crate::backend::extract::{Auth, Body, Ids, InGuild, Reason, Q};
use crate::backend::model::{audit_action, channel_type};
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::patch::set_if_present;
use crate::backend::snowflake::{now_ms, parse_iso8601_ms, Snowflake};
use crate::backend::state::{changes, AppState, GuildAccess};
use crate::{backend::events::Dispatch, gateway::intents};

/// Audit log actions.
const MEMBER_PRUNE: u16 = 21;
const ONBOARDING_CREATE: u16 = 166;
const ONBOARDING_UPDATE: u16 = 167;
const HOME_SETTINGS_UPDATE: u16 = 191;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/guilds/{guild_id}/welcome-screen",
            get(get_welcome).patch(edit_welcome),
        )
        .route(
            "/guilds/{guild_id}/widget",
            get(get_widget_settings).patch(edit_widget_settings),
        )
        .route("/guilds/{guild_id}/widget.json", get(widget_json))
        .route("/guilds/{guild_id}/widget.png", get(widget_png))
        .route(
            "/guilds/{guild_id}/onboarding",
            get(get_onboarding).put(put_onboarding),
        )
        .route("/guilds/{guild_id}/prune", get(prune_count).post(prune))
}

/// Whether `channel_id` is a channel of `guild_id`.
fn channel_in_guild(
    state: &AppState,
    channel_id: Snowflake,
    guild_id: Snowflake,
) -> Result<bool, ApiError> {
    Ok(state
        .store
        .channel(channel_id)?
        .is_some_and(|c| c.guild_id == Some(guild_id)))
}

// ---- welcome screen ----

fn render_welcome(screen: &WelcomeScreen) -> Value {
    json!({
        "description": screen.description,
        "welcome_channels": screen.welcome_channels.iter().map(|c| json!({
            "channel_id": c.channel_id,
            "description": c.description,
            "emoji_id": c.emoji_id,
            "emoji_name": c.emoji_name,
        })).collect::<Vec<_>>(),
    })
}

fn welcome_screen(state: &AppState, guild_id: Snowflake) -> Result<WelcomeScreen, ApiError> {
    Ok(state
        .store
        .extra
        .welcome_screens
        .get(guild_id)?
        .unwrap_or(WelcomeScreen {
            enabled: false,
            description: None,
            welcome_channels: Vec::new(),
        }))
}

async fn get_welcome(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let screen = welcome_screen(&state, guild_id)?;
    // A disabled welcome screen is only visible to those who can configure it.
    if !screen.enabled {
        access.require(bits::MANAGE_GUILD)?;
    }
    Ok(ok(render_welcome(&screen)))
}

#[derive(Deserialize)]
struct WelcomeBody {
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::backend::services::patch::present")]
    description: Option<Option<String>>,
    welcome_channels: Option<Vec<WelcomeChannelBody>>,
}

#[derive(Deserialize)]
struct WelcomeChannelBody {
    channel_id: Snowflake,
    description: String,
    #[serde(default)]
    emoji_id: Option<Snowflake>,
    #[serde(default)]
    emoji_name: Option<String>,
}

async fn edit_welcome(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(_, Body(body)): InGuild<{ bits::MANAGE_GUILD }, Body<WelcomeBody>>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.length(
        "description",
        body.description.clone().flatten().as_deref(),
        0,
        140,
    );
    if let Some(channels) = &body.welcome_channels {
        if channels.len() > 5 {
            checks.add(
                "welcome_channels",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 5 or fewer in length.",
            );
        }
        for (n, channel) in channels.iter().enumerate() {
            checks.length(
                &format!("welcome_channels.{n}.description"),
                Some(&channel.description),
                1,
                50,
            );
            let in_guild = state
                .store
                .channel(channel.channel_id)?
                .is_some_and(|c| c.guild_id == Some(guild_id));
            if !in_guild {
                checks.add(
                    &format!("welcome_channels.{n}.channel_id"),
                    "CHANNEL_INVALID",
                    "Invalid channel",
                );
            }
        }
    }
    checks.finish()?;
    let (old, screen) = {
        let _guard = state.store.lock();
        let old = welcome_screen(&state, guild_id)?;
        let mut screen = old.clone();
        set_if_present(&mut screen.enabled, body.enabled);
        set_if_present(&mut screen.description, body.description);
        if let Some(channels) = body.welcome_channels {
            screen.welcome_channels = channels
                .into_iter()
                .map(|c| WelcomeChannel {
                    channel_id: c.channel_id,
                    description: c.description,
                    emoji_id: c.emoji_id,
                    emoji_name: if c.emoji_id.is_some() {
                        None
                    } else {
                        c.emoji_name
                    },
                })
                .collect();
        }
        state.store.extra.welcome_screens.put(guild_id, &screen)?;
        (old, screen)
    };
    state.audit(
        guild_id,
        auth.id(),
        HOME_SETTINGS_UPDATE,
        Some(guild_id),
        changes(vec![
            ("enabled", json!(old.enabled), json!(screen.enabled)),
            (
                "description",
                json!(old.description),
                json!(screen.description),
            ),
        ]),
        None,
        reason,
    )?;
    Ok(ok(render_welcome(&screen)))
}

// ---- widget ----

async fn get_widget_settings(InGuild(access, _): InGuild<{ bits::MANAGE_GUILD }>) -> ApiResult {
    Ok(ok(json!({
        "enabled": access.guild.widget_enabled,
        "channel_id": access.guild.widget_channel_id,
    })))
}

#[derive(Deserialize)]
struct WidgetBody {
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::backend::services::patch::present")]
    channel_id: Option<Option<Snowflake>>,
}

async fn edit_widget_settings(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(_, Body(body)): InGuild<{ bits::MANAGE_GUILD }, Body<WidgetBody>>,
) -> ApiResult {
    if let Some(Some(channel_id)) = body.channel_id {
        let in_guild = state
            .store
            .channel(channel_id)?
            .is_some_and(|c| c.guild_id == Some(guild_id) && !channel_type::is_thread(c.kind));
        if !in_guild {
            return Err(ApiError::invalid_field(
                "channel_id",
                "CHANNEL_INVALID",
                "Invalid channel",
            ));
        }
    }
    let (old, guild) = {
        let _guard = state.store.lock();
        let mut guild = state.store.guild(guild_id).or_unknown(Unknown::Guild)?;
        let old = guild.clone();
        set_if_present(&mut guild.widget_enabled, body.enabled);
        set_if_present(&mut guild.widget_channel_id, body.channel_id);
        state.store.guilds.put(guild_id, &guild)?;
        (old, guild)
    };
    state.audit(
        guild_id,
        auth.id(),
        audit_action::GUILD_UPDATE,
        Some(guild_id),
        changes(vec![
            (
                "widget_enabled",
                json!(old.widget_enabled),
                json!(guild.widget_enabled),
            ),
            (
                "widget_channel_id",
                json!(old.widget_channel_id),
                json!(guild.widget_channel_id),
            ),
        ]),
        None,
        reason,
    )?;
    if old != guild {
        state.publish(Dispatch::guild(
            "GUILD_UPDATE",
            guild_id,
            intents::GUILDS,
            render::guild(&state.store, &guild, false)?,
        ));
    }
    Ok(ok(json!({
        "enabled": guild.widget_enabled,
        "channel_id": guild.widget_channel_id,
    })))
}

/// The public widget: no authentication, 50004 while disabled. Lists the voice channels
/// @everyone can see; members and presence count need the gateway's presence data, which
/// this route does not read, so they are empty.
async fn widget_json(State(state): State<AppState>, Ids(guild_id): Ids<Snowflake>) -> ApiResult {
    let guild = state.store.guild(guild_id).or_unknown(Unknown::Guild)?;
    if !guild.widget_enabled {
        return Err(ApiError::forbidden(50004, "Widget Disabled"));
    }
    let roles = state.store.guild_roles(guild_id)?;
    let everyone = crate::backend::model::Member::new(Snowflake(0), 0);
    let ctx = crate::backend::permissions::GuildContext {
        guild_id,
        owner_id: guild.owner_id,
        roles: &roles,
    };
    let mut channels = Vec::new();
    for channel in state.store.guild_channel_list(guild_id)? {
        if !matches!(
            channel.kind,
            channel_type::GUILD_VOICE | channel_type::GUILD_STAGE_VOICE
        ) {
            continue;
        }
        let overwrites = channel.permission_overwrites.clone().unwrap_or_default();
        let visible =
            ctx.channel_permissions(&everyone, &overwrites, now_ms()) & bits::VIEW_CHANNEL != 0;
        if visible {
            channels.push(json!({
                "id": channel.id,
                "name": channel.name,
                "position": channel.position.unwrap_or(0),
            }));
        }
    }
    Ok(ok(json!({
        "id": guild.id,
        "name": guild.name,
        "instant_invite": null,
        "channels": channels,
        "members": [],
        "presence_count": 0,
    })))
}

#[derive(Deserialize)]
struct WidgetImageQuery {
    style: Option<String>,
}

/// The widget image: public, 50004 while disabled. This backend draws no text, so every style
/// is a blurple placeholder of (roughly) that style's size, a real PNG image all the same.
async fn widget_png(
    State(state): State<AppState>,
    Ids(guild_id): Ids<Snowflake>,
    Q(query): Q<WidgetImageQuery>,
) -> Result<axum::response::Response, ApiError> {
    let (width, height) = match query.style.as_deref().unwrap_or("shield") {
        "shield" => (76, 20),
        "banner1" => (320, 76),
        "banner2" => (320, 64),
        "banner3" => (320, 96),
        "banner4" => (320, 152),
        _ => {
            return Err(ApiError::invalid_field(
                "style",
                "BASE_TYPE_CHOICES",
                "Value must be one of ('shield', 'banner1', 'banner2', 'banner3', 'banner4').",
            ))
        }
    };
    let guild = state.store.guild(guild_id).or_unknown(Unknown::Guild)?;
    if !guild.widget_enabled {
        return Err(ApiError::forbidden(50004, "Widget Disabled"));
    }
    let png = solid_png(width, height, [0x58, 0x65, 0xf2])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "image/png")],
        png,
    )))
}

/// A `width`×`height` PNG of one RGB colour.
fn solid_png(width: u32, height: u32, rgb: [u8; 3]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    // Each row: filter type 0 (none), then the pixels.
    let mut row = vec![0u8];
    row.extend(rgb.iter().copied().cycle().take(width as usize * 3));
    let raw = row.repeat(height as usize);
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&raw)?;
    let data = encoder.finish()?;
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, body) in [(b"IHDR", header), (b"IDAT", data), (b"IEND", Vec::new())] {
        png.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(&body);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }
    Ok(png)
}

/// CRC-32 (IEEE), as PNG chunks use.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

// ---- onboarding ----

fn render_onboarding(guild_id: Snowflake, onboarding: &Onboarding) -> Value {
    json!({
        "guild_id": guild_id,
        "prompts": onboarding.prompts,
        "default_channel_ids": onboarding.default_channel_ids,
        "enabled": onboarding.enabled,
        "mode": onboarding.mode,
    })
}

fn onboarding(state: &AppState, guild_id: Snowflake) -> Result<Onboarding, ApiError> {
    Ok(state
        .store
        .extra
        .onboarding
        .get(guild_id)?
        .unwrap_or(Onboarding {
            prompts: Vec::new(),
            default_channel_ids: Vec::new(),
            enabled: false,
            mode: 0,
        }))
}

async fn get_onboarding(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    _: InGuild,
) -> ApiResult {
    Ok(ok(render_onboarding(
        guild_id,
        &onboarding(&state, guild_id)?,
    )))
}

#[derive(Deserialize)]
struct OnboardingBody {
    prompts: Option<Vec<PromptBody>>,
    default_channel_ids: Option<Vec<Snowflake>>,
    enabled: Option<bool>,
    mode: Option<u8>,
}

#[derive(Deserialize)]
struct PromptBody {
    id: Option<Snowflake>,
    title: Option<String>,
    options: Option<Vec<OptionBody>>,
    #[serde(default)]
    single_select: bool,
    #[serde(default)]
    required: bool,
    #[serde(default = "yes")]
    in_onboarding: bool,
    #[serde(rename = "type", default)]
    kind: u8,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct OptionBody {
    id: Option<Snowflake>,
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    emoji_id: Option<Snowflake>,
    #[serde(default)]
    emoji_name: Option<String>,
    #[serde(default)]
    emoji_animated: bool,
    #[serde(default)]
    role_ids: Vec<Snowflake>,
    #[serde(default)]
    channel_ids: Vec<Snowflake>,
}

/// Validates prompts and renders them in their response shape (new ids where missing).
fn build_prompts(
    state: &AppState,
    access: &GuildAccess,
    prompts: Vec<PromptBody>,
    checks: &mut Validator,
) -> Result<Vec<Value>, ApiError> {
    let guild_id = access.guild.id;
    let mut out = Vec::new();
    for (n, prompt) in prompts.into_iter().enumerate() {
        let at = |field: &str| format!("prompts.{n}.{field}");
        checks.required(&at("title"), prompt.title.as_ref());
        checks.length(&at("title"), prompt.title.as_deref(), 1, 100);
        let options = prompt.options.unwrap_or_default();
        if options.is_empty() || options.len() > 50 {
            checks.add(
                &at("options"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 50 in length.",
            );
        }
        if prompt.kind > 1 {
            checks.add(
                &at("type"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {0, 1}.",
            );
        }
        let mut rendered_options = Vec::new();
        for (m, option) in options.into_iter().enumerate() {
            let at = |field: &str| format!("prompts.{n}.options.{m}.{field}");
            checks.required(&at("title"), option.title.as_ref());
            checks.length(&at("title"), option.title.as_deref(), 1, 50);
            checks.length(&at("description"), option.description.as_deref(), 0, 100);
            for (k, role_id) in option.role_ids.iter().enumerate() {
                if !access.roles.iter().any(|r| r.id == *role_id) {
                    checks.add(
                        &format!("prompts.{n}.options.{m}.role_ids.{k}"),
                        "ROLE_INVALID",
                        "Invalid role",
                    );
                }
            }
            for (k, channel_id) in option.channel_ids.iter().enumerate() {
                if !channel_in_guild(state, *channel_id, guild_id)? {
                    checks.add(
                        &format!("prompts.{n}.options.{m}.channel_ids.{k}"),
                        "CHANNEL_INVALID",
                        "Invalid channel",
                    );
                }
            }
            if option.role_ids.is_empty() && option.channel_ids.is_empty() {
                checks.add(
                    &at("role_ids"),
                    "BASE_TYPE_REQUIRED",
                    "An option needs at least one role or channel.",
                );
            }
            rendered_options.push(json!({
                "id": option.id.unwrap_or_else(|| state.store.next_id()),
                "title": option.title,
                "description": option.description.unwrap_or_default(),
                "emoji": {
                    "id": option.emoji_id,
                    "name": option.emoji_name,
                    "animated": option.emoji_animated,
                },
                "role_ids": option.role_ids,
                "channel_ids": option.channel_ids,
            }));
        }
        out.push(json!({
            "id": prompt.id.unwrap_or_else(|| state.store.next_id()),
            "title": prompt.title,
            "options": rendered_options,
            "single_select": prompt.single_select,
            "required": prompt.required,
            "in_onboarding": prompt.in_onboarding,
            "type": prompt.kind,
        }));
    }
    Ok(out)
}

/// Default channels that @everyone can read and send in (Discord wants 7, 5 of them writable).
fn onboarding_requirements_met(
    state: &AppState,
    access: &GuildAccess,
    channel_ids: &[Snowflake],
) -> Result<bool, ApiError> {
    let everyone = crate::backend::model::Member::new(Snowflake(0), 0);
    let (mut readable, mut writable) = (0, 0);
    for id in channel_ids {
        let Some(channel) = state.store.channel(*id)? else {
            continue;
        };
        let overwrites = channel.permission_overwrites.clone().unwrap_or_default();
        let permissions = access
            .ctx()
            .channel_permissions(&everyone, &overwrites, now_ms());
        if permissions & bits::VIEW_CHANNEL != 0 {
            readable += 1;
            if permissions & bits::SEND_MESSAGES != 0 {
                writable += 1;
            }
        }
    }
    Ok(readable >= 7 && writable >= 5)
}

async fn put_onboarding(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<
        { bits::MANAGE_GUILD | bits::MANAGE_ROLES },
        Body<OnboardingBody>,
    >,
) -> ApiResult {
    let mut checks = Validator::default();
    if body.mode.is_some_and(|m| m > 1) {
        checks.add("mode", "BASE_TYPE_CHOICES", "Value must be one of {0, 1}.");
    }
    if let Some(ids) = &body.default_channel_ids {
        for (n, id) in ids.iter().enumerate() {
            if !channel_in_guild(&state, *id, guild_id)? {
                checks.add(
                    &format!("default_channel_ids.{n}"),
                    "CHANNEL_INVALID",
                    "Invalid channel",
                );
            }
        }
    }
    let prompts = match body.prompts {
        Some(prompts) => Some(build_prompts(&state, &access, prompts, &mut checks)?),
        None => None,
    };
    checks.finish()?;
    let (existed, old, new) = {
        let _guard = state.store.lock();
        let existed = state.store.extra.onboarding.contains(guild_id)?;
        let old = onboarding(&state, guild_id)?;
        let mut new = old.clone();
        if let Some(prompts) = prompts {
            new.prompts = prompts;
        }
        set_if_present(&mut new.default_channel_ids, body.default_channel_ids);
        set_if_present(&mut new.enabled, body.enabled);
        set_if_present(&mut new.mode, body.mode);
        if new.enabled && !onboarding_requirements_met(&state, &access, &new.default_channel_ids)? {
            let (code, message) = if old.enabled {
                (350001, "Cannot update onboarding while below requirements")
            } else {
                (350000, "Cannot enable onboarding, requirements are not met")
            };
            return Err(ApiError::bad_request(code, message));
        }
        state.store.extra.onboarding.put(guild_id, &new)?;
        (existed, old, new)
    };
    state.audit(
        guild_id,
        auth.id(),
        if existed {
            ONBOARDING_UPDATE
        } else {
            ONBOARDING_CREATE
        },
        None,
        changes(vec![
            ("enabled", json!(old.enabled), json!(new.enabled)),
            ("mode", json!(old.mode), json!(new.mode)),
            (
                "default_channel_ids",
                json!(old.default_channel_ids),
                json!(new.default_channel_ids),
            ),
        ]),
        None,
        reason,
    )?;
    Ok(ok(render_onboarding(guild_id, &new)))
}

// ---- prune ----

#[derive(Deserialize)]
struct PruneQuery {
    days: Option<i64>,
    include_roles: Option<String>,
}

#[derive(Deserialize)]
struct PruneBody {
    days: Option<i64>,
    compute_prune_count: Option<bool>,
    include_roles: Option<Vec<Snowflake>>,
    #[allow(dead_code)]
    reason: Option<String>,
}

/// Members a prune of `days` would remove: nobody with a role outside `include_roles`, and
/// only members who joined more than `days` days ago (this backend does not track when a
/// member was last seen, so the join date stands in for inactivity). Never the owner.
fn prune_candidates(
    state: &AppState,
    access: &GuildAccess,
    days: i64,
    include_roles: &[Snowflake],
) -> Result<Vec<Snowflake>, ApiError> {
    let cutoff = now_ms().saturating_sub(days as u64 * 86_400_000);
    let members = state.store.members.values(access.guild.id)?;
    Ok(members
        .into_iter()
        .filter(|m| m.user_id != access.guild.owner_id)
        .filter(|m| m.roles.iter().all(|r| include_roles.contains(r)))
        .filter(|m| parse_iso8601_ms(&m.joined_at).is_some_and(|joined| joined < cutoff))
        .map(|m| m.user_id)
        .collect())
}

fn check_days(days: Option<i64>) -> Result<i64, ApiError> {
    let days = days.unwrap_or(7);
    if !(1..=30).contains(&days) {
        return Err(ApiError::invalid_field(
            "days",
            "NUMBER_TYPE_OUT_OF_RANGE",
            "int value should be between 1 and 30.",
        ));
    }
    Ok(days)
}

fn check_roles(access: &GuildAccess, roles: &[Snowflake]) -> Result<(), ApiError> {
    for (n, role) in roles.iter().enumerate() {
        if !access.roles.iter().any(|r| r.id == *role) {
            return Err(ApiError::invalid_field(
                &format!("include_roles.{n}"),
                "ROLE_INVALID",
                "Invalid role",
            ));
        }
    }
    Ok(())
}

async fn prune_count(
    State(state): State<AppState>,
    _: Auth,
    Ids(_): Ids<Snowflake>,
    Q(query): Q<PruneQuery>,
    InGuild(access, _): InGuild<{ bits::MANAGE_GUILD | bits::KICK_MEMBERS }>,
) -> ApiResult {
    let days = check_days(query.days)?;
    let mut roles = Vec::new();
    for (n, part) in query
        .include_roles
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        roles.push(Snowflake::parse(part).ok_or_else(|| {
            ApiError::invalid_field(
                &format!("include_roles.{n}"),
                "NUMBER_TYPE_COERCE",
                format!("Value \"{part}\" is not snowflake."),
            )
        })?);
    }
    check_roles(&access, &roles)?;
    let pruned = prune_candidates(&state, &access, days, &roles)?.len();
    Ok(ok(json!({ "pruned": pruned })))
}

async fn prune(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<
        { bits::MANAGE_GUILD | bits::KICK_MEMBERS },
        Body<PruneBody>,
    >,
) -> ApiResult {
    let days = check_days(body.days)?;
    let roles = body.include_roles.unwrap_or_default();
    check_roles(&access, &roles)?;
    let mut removed = Vec::new();
    for user_id in prune_candidates(&state, &access, days, &roles)? {
        let Some(user) = state.store.user(user_id)? else {
            continue;
        };
        if state.store.remove_member(guild_id, user_id)?.is_some() {
            crate::backend::services::members::publish_member_removed(
                &state,
                guild_id,
                &user,
                Some(auth.id()),
            )?;
            removed.push(user_id);
        }
    }
    state.audit(
        guild_id,
        auth.id(),
        MEMBER_PRUNE,
        None,
        Vec::new(),
        Some(json!({
            "delete_member_days": days.to_string(),
            "members_removed": removed.len().to_string(),
        })),
        reason,
    )?;
    let pruned = if body.compute_prune_count.unwrap_or(true) {
        json!(removed.len())
    } else {
        Value::Null
    };
    Ok(ok(json!({ "pruned": pruned })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_png_reference_value() {
        // The CRC of an IEND chunk is fixed by the PNG specification.
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn solid_images_have_the_requested_size() {
        let png = solid_png(76, 20, [1, 2, 3]).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 76);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 20);
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]));
    }
}
