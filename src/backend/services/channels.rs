//! Channel bodies and threads: validating and applying a channel create/edit body, new thread
//! records, channel events and the DM recipient view, shared by guild and channel routes and
//! the fixtures (`world`).
use serde::Deserialize;
use serde_json::Value;

use super::guilds::normalise_channel_name;
use super::patch;
use crate::backend::error::{ApiError, Validator};
use crate::backend::model::*;
use crate::backend::permissions::bits;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, Snowflake};
use crate::backend::state::{AppState, GuildAccess};
use crate::backend::store::Store;
use crate::{backend::events::Dispatch, gateway::intents};

/// Publishes a channel event to whoever can see the channel (DMs: their participants).
pub(crate) fn publish_channel_event(
    state: &AppState,
    name: &'static str,
    channel: &Channel,
    data: Value,
) {
    state.publish(Dispatch::for_channel(
        name,
        channel,
        intents::GUILDS,
        intents::DIRECT_MESSAGES,
        data,
    ));
}

/// Body shared by guild channel creation and channel edits.
#[derive(Deserialize, Default)]
pub(crate) struct ChannelBody {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<u8>,
    #[serde(default, deserialize_with = "patch::present")]
    pub topic: Option<Option<String>>,
    pub bitrate: Option<u32>,
    pub user_limit: Option<u32>,
    pub rate_limit_per_user: Option<u32>,
    pub position: Option<i64>,
    pub permission_overwrites: Option<Vec<Overwrite>>,
    #[serde(default, deserialize_with = "patch::present")]
    pub parent_id: Option<Option<Snowflake>>,
    pub nsfw: Option<bool>,
    #[serde(default, deserialize_with = "patch::present")]
    pub rtc_region: Option<Option<String>>,
    pub video_quality_mode: Option<u8>,
    pub default_auto_archive_duration: Option<u32>,
    pub default_reaction_emoji: Option<Value>,
    pub available_tags: Option<Vec<Value>>,
    pub default_sort_order: Option<u8>,
    pub default_forum_layout: Option<u8>,
    pub default_thread_rate_limit_per_user: Option<u32>,
    pub flags: Option<u64>,
    // Thread-only fields.
    pub archived: Option<bool>,
    pub auto_archive_duration: Option<u32>,
    pub locked: Option<bool>,
    pub invitable: Option<bool>,
    pub applied_tags: Option<Vec<Snowflake>>,
    // Group DM-only fields.
    #[serde(default, deserialize_with = "patch::present")]
    pub icon: Option<Option<String>>,
    pub owner: Option<Snowflake>,
}

/// Validates and applies a channel body to `channel` (creation or edit).
pub(crate) fn apply_channel_body(
    store: &Store,
    access: &GuildAccess,
    channel: &mut Channel,
    mut body: ChannelBody,
) -> Result<(), ApiError> {
    validate_channel_body(store, channel, &body)?;
    if let Some(overwrites) = body.permission_overwrites.take() {
        set_permission_overwrites(access, channel, overwrites)?;
    }
    // The two copies touch disjoint fields; thread fields first, as the channel copy consumes the body.
    copy_thread_fields(channel, &body);
    copy_channel_fields(channel, body);
    Ok(())
}

/// The field checks of a channel body (lengths, ranges, archive durations, parent, overwrites).
fn validate_channel_body(
    store: &Store,
    channel: &Channel,
    body: &ChannelBody,
) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    checks.length("name", body.name.as_deref(), 1, 100);
    if let Some(Some(topic)) = &body.topic {
        let max = if channel.kind == channel_type::GUILD_FORUM {
            4096
        } else {
            1024
        };
        checks.length("topic", Some(topic), 0, max);
    }
    checks.range(
        "rate_limit_per_user",
        body.rate_limit_per_user.map(i64::from),
        0,
        21600,
    );
    checks.range("user_limit", body.user_limit.map(i64::from), 0, 99);
    checks.range("bitrate", body.bitrate.map(i64::from), 8000, 384_000);
    if let Some(duration) = body
        .default_auto_archive_duration
        .or(body.auto_archive_duration)
    {
        if ![60, 1440, 4320, 10080].contains(&duration) {
            checks.add(
                "auto_archive_duration",
                "BASE_TYPE_CHOICES",
                "Value must be one of {60, 1440, 4320, 10080}.",
            );
        }
    }
    if let Some(Some(parent)) = body.parent_id {
        let ok_parent = store.channel(parent)?.is_some_and(|p| {
            p.guild_id == channel.guild_id && p.kind == channel_type::GUILD_CATEGORY
        });
        if !ok_parent || channel.kind == channel_type::GUILD_CATEGORY {
            checks.add(
                "parent_id",
                "CHANNEL_PARENT_INVALID",
                "Invalid parent channel",
            );
        }
    }
    if let Some(overwrites) = &body.permission_overwrites {
        for (index, overwrite) in overwrites.iter().enumerate() {
            if overwrite.kind > 1 {
                checks.add(
                    &format!("permission_overwrites.{index}.type"),
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {0, 1}.",
                );
            }
            if overwrite.allow.parse::<u64>().is_err() || overwrite.deny.parse::<u64>().is_err() {
                checks.add(
                    &format!("permission_overwrites.{index}"),
                    "BASE_TYPE_INVALID",
                    "Invalid permission value",
                );
            }
        }
    }
    checks.finish()
}

/// Editing overwrites needs MANAGE_ROLES, and only for permissions the caller holds.
fn set_permission_overwrites(
    access: &GuildAccess,
    channel: &mut Channel,
    overwrites: Vec<Overwrite>,
) -> Result<(), ApiError> {
    let mine = access.permissions();
    if mine & bits::ADMINISTRATOR == 0 {
        access.require(bits::MANAGE_ROLES)?;
        for overwrite in &overwrites {
            let (allow, deny) = overwrite.bits();
            if (allow | deny) & !mine != 0 {
                return Err(ApiError::MissingPermissions);
            }
        }
    }
    channel.permission_overwrites = Some(overwrites);
    Ok(())
}

/// Copies the channel fields the body gives (the thread fields aside).
fn copy_channel_fields(channel: &mut Channel, body: ChannelBody) {
    if let Some(name) = body.name {
        channel.name = Some(normalise_channel_name(channel.kind, &name));
    }
    if let Some(topic) = body.topic {
        channel.topic = topic;
    }
    patch::set_given(&mut channel.bitrate, body.bitrate);
    patch::set_given(&mut channel.user_limit, body.user_limit);
    patch::set_given(&mut channel.rate_limit_per_user, body.rate_limit_per_user);
    patch::set_given(&mut channel.position, body.position);
    if let Some(v) = body.parent_id {
        channel.parent_id = v;
    }
    patch::set_given(&mut channel.nsfw, body.nsfw);
    if let Some(v) = body.rtc_region {
        channel.rtc_region = v;
    }
    patch::set_given(&mut channel.video_quality_mode, body.video_quality_mode);
    patch::set_given(
        &mut channel.default_auto_archive_duration,
        body.default_auto_archive_duration,
    );
    patch::set_given(
        &mut channel.default_reaction_emoji,
        body.default_reaction_emoji,
    );
    patch::set_given(&mut channel.available_tags, body.available_tags);
    patch::set_given(&mut channel.default_sort_order, body.default_sort_order);
    patch::set_given(&mut channel.default_forum_layout, body.default_forum_layout);
    patch::set_given(
        &mut channel.default_thread_rate_limit_per_user,
        body.default_thread_rate_limit_per_user,
    );
    if let Some(v) = body.flags {
        channel.flags = v;
    }
    patch::set_given(&mut channel.applied_tags, body.applied_tags);
}

/// Copies the thread fields the body gives onto a thread's metadata.
fn copy_thread_fields(channel: &mut Channel, body: &ChannelBody) {
    if let Some(meta) = channel.thread_metadata.as_mut() {
        if let Some(v) = body.archived {
            meta.archived = v;
            meta.archive_timestamp = iso8601_from_ms(now_ms());
        }
        if let Some(v) = body.auto_archive_duration {
            meta.auto_archive_duration = v;
        }
        if let Some(v) = body.locked {
            meta.locked = v;
        }
        if let Some(v) = body.invitable {
            meta.invitable = Some(v);
        }
    }
}

/// A new thread under `parent` (the id is given: a message id for threads from messages).
pub(crate) fn new_thread(
    parent: &Channel,
    id: Snowflake,
    kind: u8,
    name: &str,
    auto_archive: Option<u32>,
    owner: Snowflake,
) -> Channel {
    let mut thread = Channel::new(id, kind);
    thread.guild_id = parent.guild_id;
    thread.parent_id = Some(parent.id);
    thread.name = Some(name.to_string());
    thread.owner_id = Some(owner);
    thread.rate_limit_per_user = Some(0);
    let now = iso8601_from_ms(now_ms());
    thread.thread_metadata = Some(ThreadMetadata {
        archived: false,
        auto_archive_duration: auto_archive
            .or(parent.default_auto_archive_duration)
            .unwrap_or(4320),
        archive_timestamp: now.clone(),
        locked: false,
        invitable: (kind == channel_type::PRIVATE_THREAD).then_some(true),
        create_timestamp: Some(now),
    });
    thread
}

/// DM channels list the *other* participants as `recipients`.
pub(crate) fn strip_self_from_recipients(channel: &mut Value, me: Snowflake) {
    if let Some(recipients) = channel.get_mut("recipients").and_then(Value::as_array_mut) {
        let me = me.to_string();
        if recipients.len() > 1 {
            recipients.retain(|user| user["id"].as_str() != Some(me.as_str()));
        }
    }
}
