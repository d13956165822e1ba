//! Stickers: guild stickers (multipart upload, edit, delete, with GUILD_STICKERS_UPDATE and
//! audit entries), `GET /stickers/{id}`, and the standard sticker packs (a small built-in
//! catalog, since the real one lives on Discord's side).
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, ApiResult};
use crate::backend::error::unknown;
use crate::backend::error::{ApiError, Validator};
use crate::backend::extra::Sticker;
use crate::backend::extract::{Auth, Body, Ids, InGuild, Reason};
use crate::backend::services::expressions::{
    delete_expression, edit_expression, render_guild_expressions, require_expression_creator,
    sees_creators, with_uploader, ExpressionKind, Slots,
};
use crate::backend::services::patch::set_if_present;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{changes, AppState};
use crate::{backend::events::Dispatch, gateway::intents};

/// Audit log actions.
const STICKER_CREATE: u16 = 90;
const STICKER_UPDATE: u16 = 91;
const STICKER_DELETE: u16 = 92;
/// Largest sticker file Discord accepts.
const MAX_STICKER_BYTES: usize = 512 * 1024;

/// Sticker format types.
mod format {
    pub(super) const PNG: u8 = 1;
    pub(super) const APNG: u8 = 2;
    pub(super) const LOTTIE: u8 = 3;
    pub(super) const GIF: u8 = 4;
}

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/guilds/{guild_id}/stickers",
            get(list_stickers).post(create_sticker),
        )
        .route(
            "/guilds/{guild_id}/stickers/{sticker_id}",
            get(get_guild_sticker)
                .patch(edit_sticker)
                .delete(delete_sticker),
        )
        .route("/stickers/{sticker_id}", get(get_sticker))
        .route("/sticker-packs", get(list_packs))
        .route("/sticker-packs/{pack_id}", get(get_pack))
}

/// One standard sticker of the built-in catalog.
struct StandardSticker {
    id: u64,
    name: &'static str,
    tags: &'static str,
    description: &'static str,
    format_type: u8,
    sort_value: u32,
}

/// One standard pack of the built-in catalog.
struct StandardPack {
    id: u64,
    sku_id: u64,
    name: &'static str,
    description: &'static str,
    cover_sticker_id: u64,
    banner_asset_id: u64,
    stickers: &'static [StandardSticker],
}

/// The standard packs served by `/sticker-packs` (ids as Discord documents its example pack).
const PACKS: &[StandardPack] = &[StandardPack {
    id: 847_199_849_233_514_549,
    sku_id: 847_199_849_233_514_547,
    name: "Wumpus Beyond",
    description: "Say hello to Wumpus!",
    cover_sticker_id: 749_053_689_419_006_003,
    banner_asset_id: 761_773_777_976_819_732,
    stickers: &[
        StandardSticker {
            id: 749_053_689_419_006_003,
            name: "Wumpus Hi",
            tags: "wumpus, hi, hello",
            description: "Wumpus says hi",
            format_type: format::LOTTIE,
            sort_value: 1,
        },
        StandardSticker {
            id: 749_054_660_769_218_631,
            name: "Wave",
            tags: "wumpus, hello, wave, hi, hey",
            description: "Wumpus waves hello",
            format_type: format::LOTTIE,
            sort_value: 12,
        },
    ],
}];

fn render_standard(pack: &StandardPack, sticker: &StandardSticker) -> Value {
    json!({
        "id": Snowflake(sticker.id),
        "pack_id": Snowflake(pack.id),
        "name": sticker.name,
        "description": sticker.description,
        "tags": sticker.tags,
        "type": 1,
        "format_type": sticker.format_type,
        "available": true,
        "sort_value": sticker.sort_value,
    })
}

fn render_pack(pack: &StandardPack) -> Value {
    json!({
        "id": Snowflake(pack.id),
        "sku_id": Snowflake(pack.sku_id),
        "name": pack.name,
        "description": pack.description,
        "cover_sticker_id": Snowflake(pack.cover_sticker_id),
        "banner_asset_id": Snowflake(pack.banner_asset_id),
        "stickers": pack.stickers.iter().map(|s| render_standard(pack, s)).collect::<Vec<_>>(),
    })
}

/// A guild sticker; with `with_user`, the uploader (Discord shows it to expression managers).
fn render_sticker(state: &AppState, sticker: &Sticker, with_user: bool) -> Result<Value, ApiError> {
    let out = json!({
        "id": sticker.id,
        "name": sticker.name,
        "tags": sticker.tags,
        "type": 2,
        "format_type": sticker.format_type,
        "description": sticker.description,
        "available": sticker.available,
        "guild_id": sticker.guild_id,
    });
    with_uploader(state, out, sticker.creator_id, with_user)
}

fn load(state: &AppState, guild_id: Snowflake, sticker_id: Snowflake) -> Result<Sticker, ApiError> {
    state
        .store
        .extra
        .stickers
        .get((guild_id, sticker_id))?
        .ok_or(unknown(crate::backend::error::unknown::STICKER))
}

fn publish_stickers(state: &AppState, guild_id: Snowflake) -> Result<(), ApiError> {
    let stickers = state
        .store
        .extra
        .stickers
        .values(guild_id)?
        .iter()
        .map(|s| render_sticker(state, s, true))
        .collect::<Result<Vec<_>, _>>()?;
    state.publish(Dispatch::guild(
        "GUILD_STICKERS_UPDATE",
        guild_id,
        intents::GUILD_EXPRESSIONS,
        json!({"guild_id": guild_id, "stickers": stickers}),
    ));
    Ok(())
}

/// Sticker slots by boost tier.
const STICKER_SLOTS: Slots = Slots {
    by_tier: [5, 15, 30, 60],
    code: 30039,
    message: "Maximum number of stickers reached",
};

async fn list_stickers(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let with_user = sees_creators(&access);
    let out = render_guild_expressions(&state.store.extra.stickers, guild_id, |s| {
        render_sticker(&state, s, with_user)
    })?;
    Ok(ok(Value::Array(out)))
}

async fn get_guild_sticker(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, sticker_id)): Ids<(Snowflake, Snowflake)>,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let sticker = load(&state, guild_id, sticker_id)?;
    Ok(ok(render_sticker(
        &state,
        &sticker,
        sees_creators(&access),
    )?))
}

async fn get_sticker(
    State(state): State<AppState>,
    _auth: Auth,
    Ids(sticker_id): Ids<Snowflake>,
) -> ApiResult {
    for pack in PACKS {
        if let Some(sticker) = pack.stickers.iter().find(|s| s.id == sticker_id.0) {
            return Ok(ok(render_standard(pack, sticker)));
        }
    }
    let guild_id = state
        .store
        .extra
        .sticker_guild
        .get(sticker_id)?
        .ok_or(unknown(unknown::STICKER))?;
    let sticker = load(&state, guild_id, sticker_id)?;
    Ok(ok(render_sticker(&state, &sticker, false)?))
}

async fn list_packs(_auth: Auth) -> ApiResult {
    Ok(ok(
        json!({"sticker_packs": PACKS.iter().map(render_pack).collect::<Vec<_>>()}),
    ))
}

async fn get_pack(_auth: Auth, Ids(pack_id): Ids<Snowflake>) -> ApiResult {
    PACKS
        .iter()
        .find(|p| p.id == pack_id.0)
        .map(|pack| ok(render_pack(pack)))
        .ok_or(unknown(unknown::STICKER_PACK))
}

/// The fields of a sticker upload form.
#[derive(Default)]
struct StickerForm {
    name: Option<String>,
    description: Option<String>,
    tags: Option<String>,
    file: Option<(Option<String>, axum::body::Bytes)>,
}

/// Reads the multipart form; a body that is not multipart reads as an empty form (every
/// required field then fails validation, as Discord answers JSON sent here).
async fn read_form(request: Request, state: &AppState) -> Result<StickerForm, ApiError> {
    let mut form = StickerForm::default();
    let is_multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Ok(form);
    }
    let bad = |err: axum::extract::multipart::MultipartError| {
        if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::invalid_field("", "MULTIPART_INVALID", err.body_text())
        }
    };
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|err| ApiError::invalid_field("", "MULTIPART_INVALID", err.body_text()))?;
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        let content_type = field.content_type().map(str::to_string);
        let data = field.bytes().await.map_err(bad)?;
        let text = || String::from_utf8_lossy(&data).to_string();
        match name.as_str() {
            // Some clients (twilight) send the file part without a filename.
            "file" => form.file = Some((content_type, data.clone())),
            "name" => form.name = Some(text()),
            "description" => form.description = Some(text()),
            "tags" => form.tags = Some(text()),
            _ => {}
        }
    }
    Ok(form)
}

/// The format of an uploaded sticker file, from its bytes (the declared type is not trusted).
fn sniff_format(data: &[u8]) -> Option<u8> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        // An animated PNG carries an acTL chunk before its first IDAT.
        let idat = find(data, b"IDAT").unwrap_or(data.len());
        return Some(if find(&data[..idat], b"acTL").is_some() {
            format::APNG
        } else {
            format::PNG
        });
    }
    if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        return Some(format::GIF);
    }
    let text = std::str::from_utf8(data).ok()?.trim_start();
    if text.starts_with('{') {
        let lottie: Value = serde_json::from_str(text).ok()?;
        return lottie.get("layers").is_some().then_some(format::LOTTIE);
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn check_sticker_fields(
    checks: &mut Validator,
    name: Option<&str>,
    description: Option<&str>,
    tags: Option<&str>,
) {
    checks.length("name", name, 2, 30);
    if description.is_some_and(|d| !d.is_empty()) {
        checks.length("description", description, 2, 100);
    }
    checks.length("tags", tags, 1, 200);
}

async fn create_sticker(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, _): InGuild,
    request: Request,
) -> ApiResult {
    require_expression_creator(&access)?;
    let form = read_form(request, &state).await?;
    let mut checks = Validator::default();
    checks.required("name", form.name.as_ref());
    checks.required("tags", form.tags.as_ref());
    checks.required("file", form.file.as_ref());
    check_sticker_fields(
        &mut checks,
        form.name.as_deref(),
        form.description.as_deref(),
        form.tags.as_deref(),
    );
    checks.finish()?;
    let (_, data) = form.file.unwrap_or_default();
    if data.len() > MAX_STICKER_BYTES {
        return Err(ApiError::bad_request(
            50045,
            "File uploaded exceeds the maximum size",
        ));
    }
    let format_type =
        sniff_format(&data).ok_or(ApiError::bad_request(50046, "Invalid file uploaded"))?;
    if format_type == format::LOTTIE
        && !access
            .guild
            .features
            .iter()
            .any(|f| f == "VERIFIED" || f == "PARTNERED")
    {
        return Err(ApiError::bad_request(50046, "Invalid file uploaded"));
    }
    let sticker = {
        let _guard = state.store.lock();
        STICKER_SLOTS.check(
            state.store.extra.stickers.count(guild_id),
            access.guild.premium_tier,
        )?;
        let sticker = Sticker {
            id: state.store.next_id(),
            guild_id,
            name: form.name.unwrap_or_default(),
            description: form.description.filter(|d| !d.is_empty()),
            tags: form.tags.unwrap_or_default(),
            format_type,
            available: true,
            creator_id: auth.id(),
        };
        state
            .store
            .extra
            .stickers
            .put((guild_id, sticker.id), &sticker)?;
        state.store.extra.sticker_guild.put(sticker.id, guild_id)?;
        // The CDN serves the file as uploaded under the sticker's id.
        state
            .store
            .account
            .images
            .put(&format!("stickers/{}", sticker.id), &data)?;
        sticker
    };
    state.audit(
        guild_id,
        auth.id(),
        STICKER_CREATE,
        Some(sticker.id),
        changes(vec![
            ("name", Value::Null, json!(sticker.name)),
            ("tags", Value::Null, json!(sticker.tags)),
            ("description", Value::Null, json!(sticker.description)),
            ("format_type", Value::Null, json!(sticker.format_type)),
        ]),
        None,
        reason,
    )?;
    publish_stickers(&state, guild_id)?;
    Ok(created(render_sticker(&state, &sticker, true)?))
}

#[derive(Deserialize)]
struct EditBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::backend::services::patch::present")]
    description: Option<Option<String>>,
    tags: Option<String>,
}

async fn edit_sticker(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, sticker_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<0, Body<EditBody>>,
) -> ApiResult {
    let (old, sticker) = edit_expression(
        &state,
        &state.store.extra.stickers,
        (guild_id, sticker_id),
        &access,
        auth.id(),
        &STICKER,
        |sticker| {
            let mut checks = Validator::default();
            check_sticker_fields(
                &mut checks,
                body.name.as_deref(),
                body.description.clone().flatten().as_deref(),
                body.tags.as_deref(),
            );
            checks.finish()?;
            set_if_present(&mut sticker.name, body.name);
            if let Some(description) = body.description {
                sticker.description = description.filter(|d| !d.is_empty());
            }
            set_if_present(&mut sticker.tags, body.tags);
            Ok(())
        },
    )?;
    state.audit(
        guild_id,
        auth.id(),
        STICKER_UPDATE,
        Some(sticker_id),
        changes(vec![
            ("name", json!(old.name), json!(sticker.name)),
            ("tags", json!(old.tags), json!(sticker.tags)),
            (
                "description",
                json!(old.description),
                json!(sticker.description),
            ),
        ]),
        None,
        reason,
    )?;
    publish_stickers(&state, guild_id)?;
    Ok(ok(render_sticker(&state, &sticker, true)?))
}

async fn delete_sticker(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, sticker_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, _): InGuild,
) -> ApiResult {
    delete_expression(
        &state,
        &state.store.extra.stickers,
        (guild_id, sticker_id),
        &access,
        auth.id(),
        reason,
        &STICKER,
    )?;
    state.store.extra.sticker_guild.remove(sticker_id)?;
    publish_stickers(&state, guild_id)?;
    Ok(no_content())
}

/// Stickers as expressions: a deletion's audit entry names the sticker and its tags.
const STICKER: ExpressionKind<Sticker> = ExpressionKind {
    action: STICKER_DELETE,
    creator_of: |sticker| sticker.creator_id,
    missing: || unknown(unknown::STICKER),
    changes: |sticker| {
        changes(vec![
            ("name", json!(sticker.name), Value::Null),
            ("tags", json!(sticker.tags), Value::Null),
        ])
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_sniffed_from_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR....\0\0\0\0IDATxx";
        assert_eq!(sniff_format(png), Some(format::PNG));
        let apng = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR....acTL....IDATxx";
        assert_eq!(sniff_format(apng), Some(format::APNG));
        assert_eq!(sniff_format(b"GIF89a...."), Some(format::GIF));
        assert_eq!(
            sniff_format(br#"{"v":"5.5.2","layers":[]}"#),
            Some(format::LOTTIE)
        );
        assert_eq!(sniff_format(b"{not json"), None);
        assert_eq!(sniff_format(b"\xff\xd8\xff\xe0JFIF"), None);
    }
}
