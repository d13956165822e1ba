//! Forum and media channels' tags in a fixture: the tags a channel offers, the tags a
//! thread under it carries.
use serde_json::{json, Value};

use super::fixture::{FixtureChannel, FixtureThread};
use super::plan::PlanError;
use crate::backend::model::channel_type;
use crate::backend::snowflake::Snowflake;

/// Discord's limit on a forum's tags.
const MAX_TAGS: usize = 20;
/// Discord's limit on the tags one post carries.
const MAX_APPLIED: usize = 5;

/// The channel's `available_tags` as stored, checked (`None`: the channel has none given).
pub(super) fn available_tags(
    channel: &FixtureChannel,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<Vec<Value>>, PlanError> {
    if channel.available_tags.is_empty() {
        return Ok(None);
    }
    if !matches!(
        channel.kind,
        channel_type::GUILD_FORUM | channel_type::GUILD_MEDIA
    ) {
        return Err((
            at("available_tags"),
            "only forum (15) and media (16) channels have tags".into(),
        ));
    }
    if channel.available_tags.len() > MAX_TAGS {
        return Err((
            at("available_tags"),
            format!("must hold {MAX_TAGS} or fewer tags"),
        ));
    }
    let mut seen: Vec<Snowflake> = Vec::new();
    let mut tags = Vec::new();
    for (i, tag) in channel.available_tags.iter().enumerate() {
        let field = |name: &str| at(&format!("available_tags[{i}].{name}"));
        if seen.contains(&tag.id) {
            return Err((field("id"), format!("duplicate tag id {}", tag.id)));
        }
        seen.push(tag.id);
        let length = tag.name.chars().count();
        if tag.name.trim().is_empty() || length > 20 {
            return Err((field("name"), "must be between 1 and 20 characters".into()));
        }
        tags.push(json!({
            "id": tag.id,
            "name": tag.name,
            "moderated": tag.moderated,
            "emoji_id": tag.emoji_id,
            "emoji_name": tag.emoji_name,
        }));
    }
    Ok(Some(tags))
}

/// The thread's `applied_tags`, checked against its parent's tags (`None`: none given).
pub(super) fn applied_tags(
    thread: &FixtureThread,
    parent: Option<&FixtureChannel>,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<Vec<Snowflake>>, PlanError> {
    if thread.applied_tags.is_empty() {
        return Ok(None);
    }
    if thread.applied_tags.len() > MAX_APPLIED {
        return Err((
            at("applied_tags"),
            format!("must hold {MAX_APPLIED} or fewer tags"),
        ));
    }
    let offered: Vec<Snowflake> = parent
        .map(|p| p.available_tags.iter().map(|t| t.id).collect())
        .unwrap_or_default();
    for (i, tag) in thread.applied_tags.iter().enumerate() {
        if !offered.contains(tag) {
            return Err((
                at(&format!("applied_tags[{i}]")),
                format!("{tag} is not one of the parent channel's available_tags"),
            ));
        }
    }
    Ok(Some(thread.applied_tags.clone()))
}
