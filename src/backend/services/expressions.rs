//! Guild expressions (stickers, soundboard sounds): who may create, edit and see their
//! uploaders, slot limits by boost tier, listing, and deletion with its audit entry; shared by
//! the sticker and soundboard routes.
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::backend::error::ApiError;
use crate::backend::model::AuditChange;
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{AppState, GuildAccess};
use crate::backend::store::Table;

/// How many expressions of one kind a guild may hold, and the error once it is full.
pub(crate) struct Slots {
    /// Capacity at boost tier 0, 1, 2 and 3.
    pub by_tier: [usize; 4],
    pub code: u32,
    pub message: &'static str,
}

impl Slots {
    /// The error for a guild at `premium_tier` already holding `used` of them.
    pub(crate) fn check(&self, used: usize, premium_tier: u8) -> Result<(), ApiError> {
        let tier = usize::from(premium_tier).min(self.by_tier.len() - 1);
        if used >= self.by_tier[tier] {
            return Err(ApiError::bad_request(self.code, self.message));
        }
        Ok(())
    }
}

/// An expression's rendering `out`, with its uploader as `user` when `with_user` (Discord shows
/// it to expression managers).
pub(crate) fn with_uploader(
    state: &AppState,
    mut out: Value,
    creator_id: Snowflake,
    with_user: bool,
) -> Result<Value, ApiError> {
    if with_user {
        out["user"] = render::user_by_id(&state.store, creator_id)?;
    }
    Ok(out)
}

/// Whether the caller may see who uploaded expressions.
pub(crate) fn sees_creators(access: &GuildAccess) -> bool {
    access.permissions() & (bits::CREATE_GUILD_EXPRESSIONS | bits::MANAGE_GUILD_EXPRESSIONS) != 0
}

/// 50013 unless the caller may edit an expression made by `creator_id` (own ones with
/// CREATE_GUILD_EXPRESSIONS, anyone's with MANAGE_GUILD_EXPRESSIONS).
fn require_expression_editor(
    access: &GuildAccess,
    creator_id: Snowflake,
    caller: Snowflake,
) -> Result<(), ApiError> {
    let own = creator_id == caller && access.permissions() & bits::CREATE_GUILD_EXPRESSIONS != 0;
    if own {
        Ok(())
    } else {
        access.require(bits::MANAGE_GUILD_EXPRESSIONS)
    }
}

/// 50013 unless the caller may create expressions.
pub(crate) fn require_expression_creator(access: &GuildAccess) -> Result<(), ApiError> {
    if sees_creators(access) {
        Ok(())
    } else {
        Err(ApiError::MissingPermissions)
    }
}

/// Every expression of `guild_id` in `table`, each rendered by `render`.
pub(crate) fn render_guild_expressions<V: Serialize + DeserializeOwned + Clone>(
    table: &Table<(Snowflake, Snowflake), V>,
    guild_id: Snowflake,
    render: impl Fn(&V) -> Result<Value, ApiError>,
) -> Result<Vec<Value>, ApiError> {
    table.values(guild_id)?.iter().map(render).collect()
}

/// What editing and deleting one kind of expression needs to know: its creator, its 404, and
/// the audit entry a deletion leaves.
pub(crate) struct ExpressionKind<V> {
    /// The audit log action of a deletion.
    pub action: u16,
    /// Who uploaded the expression.
    pub creator_of: fn(&V) -> Snowflake,
    /// The error for an absent expression.
    pub missing: fn() -> ApiError,
    /// The audit changes of the deleted expression.
    pub changes: fn(&V) -> Vec<AuditChange>,
}

/// Removes the expression `key` (guild, id) from `table` once the caller may edit it (404 via
/// `missing` when absent) and records the deletion in the guild's audit log; returns it.
pub(crate) fn delete_expression<V: Serialize + DeserializeOwned + Clone>(
    state: &AppState,
    table: &Table<(Snowflake, Snowflake), V>,
    key: (Snowflake, Snowflake),
    access: &GuildAccess,
    caller: Snowflake,
    reason: Option<String>,
    kind: &ExpressionKind<V>,
) -> Result<V, ApiError> {
    let value = table.get(key)?.ok_or_else(kind.missing)?;
    require_expression_editor(access, (kind.creator_of)(&value), caller)?;
    let value = table.remove(key)?.ok_or_else(kind.missing)?;
    let (guild_id, id) = key;
    state.audit(
        guild_id,
        caller,
        kind.action,
        Some(id),
        (kind.changes)(&value),
        None,
        reason,
    )?;
    Ok(value)
}

/// Edits the expression `key` (guild, id) in `table` under the store lock once the caller may
/// edit it (404 via `missing` when absent): `change` validates and applies the edit, then it is
/// stored; returns the expression before and after.
pub(crate) fn edit_expression<V: Serialize + DeserializeOwned + Clone>(
    state: &AppState,
    table: &Table<(Snowflake, Snowflake), V>,
    key: (Snowflake, Snowflake),
    access: &GuildAccess,
    caller: Snowflake,
    kind: &ExpressionKind<V>,
    change: impl FnOnce(&mut V) -> Result<(), ApiError>,
) -> Result<(V, V), ApiError> {
    let _guard = state.store.lock();
    let mut value = table.get(key)?.ok_or_else(kind.missing)?;
    require_expression_editor(access, (kind.creator_of)(&value), caller)?;
    let old = value.clone();
    change(&mut value)?;
    table.put(key, &value)?;
    Ok((old, value))
}
