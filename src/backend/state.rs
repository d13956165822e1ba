//! Shared state of the backend (store, event bus, limits, settings) and the access checks every
//! route goes through: guild membership (50001), channel visibility (50001), permissions (50013).
use std::sync::Arc;

use super::error::{ApiError, Unknown};
use super::events::{Dispatch, EventBus};
use super::model::{
    channel_type, Application, AuditChange, AuditLogEntry, Channel, Guild, Member, Role, User,
};
use super::permissions::{apply_implicit, bits, GuildContext};
use super::ratelimit::{RateLimitConfig, RateLimiter};
use super::snowflake::{now_ms, Snowflake};
use super::store::Store;

/// Settings of a running backend.
#[derive(Debug, Clone)]
pub struct Config {
    /// Overrides the `ws://<Host>` advertised by `/gateway` and `/gateway/bot`.
    pub gateway_url: Option<String>,
    /// Rate limits (per route bucket and global); `RateLimitConfig::off()` disables them.
    pub rate_limits: RateLimitConfig,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Deepest JSON nesting accepted (50035 above).
    pub max_json_depth: usize,
    /// Shards advertised by `/gateway/bot`.
    pub recommended_shards: u32,
    /// The test-control API (`serve --control`); `None`: off.
    pub control: Option<super::control::ControlSettings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            gateway_url: None,
            rate_limits: RateLimitConfig::off(),
            max_body_bytes: 8 * 1024 * 1024,
            max_json_depth: 32,
            recommended_shards: 1,
            control: None,
        }
    }
}

/// Everything a handler needs; cheap to clone (one reference count: extractors clone it on
/// every request).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

/// What an [`AppState`] points at (reached through `Deref`: `state.store`, `state.bus`...).
pub struct SharedState {
    pub store: Store,
    pub bus: EventBus,
    pub config: Arc<Config>,
    pub limiter: Arc<RateLimiter>,
    /// When each (channel, user) may post again under the channel's slowmode.
    pub slowmode: Arc<parking_lot::Mutex<std::collections::HashMap<(Snowflake, Snowflake), u64>>>,
    /// Live voice states (the gateway's op 4 and the REST voice-state routes share them).
    pub voice: super::voice::VoiceStates,
    /// The test-control hub and its event log, with `serve --control` only.
    pub control: Option<Arc<super::control::ControlHub>>,
}

/// Permissions every participant has in a DM.
pub(crate) const DM_PERMISSIONS: u64 = bits::VIEW_CHANNEL
    | bits::SEND_MESSAGES
    | bits::SEND_TTS_MESSAGES
    | bits::EMBED_LINKS
    | bits::ATTACH_FILES
    | bits::READ_MESSAGE_HISTORY
    | bits::ADD_REACTIONS
    | bits::USE_EXTERNAL_EMOJIS
    | bits::PIN_MESSAGES;

/// A member's standing in a guild, loaded once per request.
#[derive(Debug, Clone)]
pub struct GuildAccess {
    pub guild: Guild,
    pub roles: Vec<Role>,
    pub member: Member,
}

impl GuildAccess {
    /// The permission context for this guild.
    pub fn ctx(&self) -> GuildContext<'_> {
        GuildContext {
            guild_id: self.guild.id,
            owner_id: self.guild.owner_id,
            roles: &self.roles,
        }
    }

    /// Guild-level permissions of the caller.
    pub fn permissions(&self) -> u64 {
        let base = self.ctx().base_permissions(&self.member);
        if self.member.timed_out_until(now_ms()).is_some() && base & bits::ADMINISTRATOR == 0 {
            base & bits::TIMEOUT_ALLOWED
        } else {
            base
        }
    }

    /// 50013 unless the caller holds every bit of `permission` in the guild.
    pub fn require(&self, permission: u64) -> Result<(), ApiError> {
        if self.permissions() & permission == permission {
            Ok(())
        } else {
            Err(ApiError::MissingPermissions)
        }
    }

    /// Whether the caller is the owner.
    pub fn is_owner(&self) -> bool {
        self.member.user_id == self.guild.owner_id
    }

    /// The caller's highest role position (owner: above all).
    pub fn highest_position(&self) -> i64 {
        self.ctx().highest_position(&self.member)
    }

    /// 50013 unless the caller's highest role is above `position` (or the caller owns the guild).
    pub fn require_above(&self, position: i64) -> Result<(), ApiError> {
        if self.is_owner() || self.highest_position() > position {
            Ok(())
        } else {
            Err(ApiError::MissingPermissions)
        }
    }

    /// 50013 unless the caller outranks `target` (used for kick, ban, nick and role edits).
    pub fn require_outranks(&self, target: &Member) -> Result<(), ApiError> {
        if target.user_id == self.guild.owner_id && !self.is_owner() {
            return Err(ApiError::MissingPermissions);
        }
        self.require_above(self.ctx().highest_position(target))
    }
}

/// The caller's view of one channel.
#[derive(Debug, Clone)]
pub struct ChannelAccess {
    pub channel: Channel,
    pub guild: Option<GuildAccess>,
    pub permissions: u64,
}

impl ChannelAccess {
    /// 50013 unless the caller holds every bit of `permission` here.
    pub fn require(&self, permission: u64) -> Result<(), ApiError> {
        if self.permissions & permission == permission {
            Ok(())
        } else {
            Err(ApiError::MissingPermissions)
        }
    }

    /// The guild id, if a guild channel.
    pub fn guild_id(&self) -> Option<Snowflake> {
        self.channel.guild_id
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

impl AppState {
    /// A state over `store` with `config`.
    pub fn new(store: Store, config: Config) -> Self {
        AppState(Arc::new(SharedState {
            store,
            bus: EventBus::default(),
            limiter: Arc::new(RateLimiter::new(config.rate_limits)),
            slowmode: Arc::default(),
            voice: Default::default(),
            control: config
                .control
                .as_ref()
                .map(|settings| Arc::new(super::control::ControlHub::new(settings))),
            config: Arc::new(config),
        }))
    }

    /// Publishes a dispatch on the event bus.
    pub fn publish(&self, dispatch: Dispatch) {
        self.bus.publish(dispatch);
    }

    /// The application, 10002 if unknown.
    pub fn application(&self, application_id: Snowflake) -> Result<Application, ApiError> {
        self.store
            .applications
            .get(application_id)?
            .ok_or(ApiError::NotFound(Unknown::Application))
    }

    /// The application if the caller is its bot or its owner (10002 unknown, 50001 otherwise).
    pub fn own_application(
        &self,
        application_id: Snowflake,
        caller: &User,
    ) -> Result<Application, ApiError> {
        let app = self.application(application_id)?;
        if caller.id != app.bot_id && caller.id != app.owner_id {
            return Err(ApiError::MissingAccess);
        }
        Ok(app)
    }

    /// The guild, 10004 if unknown, 50001 if the caller is not a member.
    pub fn guild_access(
        &self,
        guild_id: Snowflake,
        user_id: Snowflake,
    ) -> Result<GuildAccess, ApiError> {
        let guild = self
            .store
            .guild(guild_id)?
            .ok_or(ApiError::NotFound(Unknown::Guild))?;
        let member = self
            .store
            .member(guild_id, user_id)?
            .ok_or(ApiError::MissingAccess)?;
        let roles = self.store.guild_roles(guild_id)?;
        Ok(GuildAccess {
            guild,
            roles,
            member,
        })
    }

    /// [`AppState::guild_access`] for a caller who must hold every bit of `permission` in the
    /// guild (10004, 50001, then 50013, in Discord's order).
    pub fn guild_access_requiring(
        &self,
        guild_id: Snowflake,
        user_id: Snowflake,
        permission: u64,
    ) -> Result<GuildAccess, ApiError> {
        let access = self.guild_access(guild_id, user_id)?;
        access.require(permission)?;
        Ok(access)
    }

    /// [`AppState::channel_access`] for a caller who must hold every bit of `permission` there.
    pub fn channel_access_requiring(
        &self,
        channel_id: Snowflake,
        user: &User,
        permission: u64,
    ) -> Result<ChannelAccess, ApiError> {
        let access = self.channel_access(channel_id, user)?;
        access.require(permission)?;
        Ok(access)
    }

    /// Permissions of a member in a channel (threads use their parent's overwrites).
    pub fn permissions_in(&self, access: &GuildAccess, channel: &Channel) -> Result<u64, ApiError> {
        let overwrites = if channel_type::is_thread(channel.kind) {
            match channel.parent_id {
                Some(parent) => self
                    .store
                    .channel(parent)?
                    .and_then(|p| p.permission_overwrites)
                    .unwrap_or_default(),
                None => Vec::new(),
            }
        } else {
            channel.permission_overwrites.clone().unwrap_or_default()
        };
        let mut permissions =
            access
                .ctx()
                .channel_permissions(&access.member, &overwrites, now_ms());
        if channel_type::is_thread(channel.kind)
            && permissions & bits::SEND_MESSAGES_IN_THREADS != 0
        {
            // In threads, SEND_MESSAGES_IN_THREADS is what allows sending.
            permissions |= bits::SEND_MESSAGES;
        } else if channel_type::is_thread(channel.kind) {
            permissions &= !bits::SEND_MESSAGES;
        }
        Ok(permissions)
    }

    /// The channel as the caller sees it: 10003 if unknown, 50001 if not visible.
    pub fn channel_access(
        &self,
        channel_id: Snowflake,
        user: &User,
    ) -> Result<ChannelAccess, ApiError> {
        let channel = self
            .store
            .channel(channel_id)?
            .ok_or(ApiError::NotFound(Unknown::Channel))?;
        match channel.guild_id {
            None => {
                let recipients = channel.recipient_ids.clone().unwrap_or_default();
                if !recipients.contains(&user.id) {
                    return Err(ApiError::MissingAccess);
                }
                Ok(ChannelAccess {
                    channel,
                    guild: None,
                    permissions: DM_PERMISSIONS,
                })
            }
            Some(guild_id) => {
                let access = match self.guild_access(guild_id, user.id) {
                    Ok(access) => access,
                    Err(ApiError::NotFound(_)) => return Err(ApiError::NotFound(Unknown::Channel)),
                    Err(other) => return Err(other),
                };
                let mut permissions = self.permissions_in(&access, &channel)?;
                if channel.kind == channel_type::PRIVATE_THREAD
                    && permissions & bits::MANAGE_THREADS == 0
                    && !self.store.thread_members.contains((channel.id, user.id))?
                {
                    permissions = 0;
                }
                let permissions = apply_implicit(permissions, false);
                if permissions & bits::VIEW_CHANNEL == 0 {
                    return Err(ApiError::MissingAccess);
                }
                Ok(ChannelAccess {
                    channel,
                    guild: Some(access),
                    permissions,
                })
            }
        }
    }

    /// Enforces a channel's `rate_limit_per_user` (members with MANAGE_MESSAGES or
    /// MANAGE_CHANNELS are exempt, as on Discord): 429 with code 20016 and `retry_after`.
    pub fn check_slowmode(
        &self,
        access: &ChannelAccess,
        user_id: Snowflake,
    ) -> Result<(), ApiError> {
        let seconds = access.channel.rate_limit_per_user.unwrap_or(0);
        if seconds == 0 || access.permissions & (bits::MANAGE_MESSAGES | bits::MANAGE_CHANNELS) != 0
        {
            return Ok(());
        }
        let now = now_ms();
        let mut next = self.slowmode.lock();
        let key = (access.channel.id, user_id);
        if let Some(until) = next.get(&key).copied() {
            if until > now {
                return Err(ApiError::SlowMode {
                    retry_after: (until - now) as f64 / 1000.0,
                });
            }
        }
        next.insert(key, now + u64::from(seconds) * 1000);
        if next.len() > 100_000 {
            next.retain(|_, until| *until > now);
        }
        Ok(())
    }

    /// Records an audit log entry and publishes GUILD_AUDIT_LOG_ENTRY_CREATE.
    #[allow(clippy::too_many_arguments)]
    pub fn audit(
        &self,
        guild_id: Snowflake,
        user_id: Snowflake,
        action_type: u16,
        target_id: Option<Snowflake>,
        changes: Vec<AuditChange>,
        options: Option<serde_json::Value>,
        reason: Option<String>,
    ) -> Result<(), ApiError> {
        let entry = AuditLogEntry {
            id: self.store.next_id(),
            guild_id,
            user_id: Some(user_id),
            target_id,
            action_type,
            changes,
            options,
            reason,
        };
        self.store.put_audit(&entry)?;
        let mut data =
            serde_json::to_value(&entry).map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Some(object) = data.as_object_mut() {
            if let Some(target) = object.get_mut("target_id") {
                if target.is_null() {
                    *target = serde_json::Value::Null;
                }
            }
        }
        self.publish(
            Dispatch::guild(
                "GUILD_AUDIT_LOG_ENTRY_CREATE",
                guild_id,
                crate::gateway::intents::GUILD_MODERATION,
                data,
            )
            .requiring(bits::VIEW_AUDIT_LOG),
        );
        Ok(())
    }
}

/// Builds audit changes from (key, old, new) triples, skipping unchanged values.
pub(crate) fn changes(
    items: Vec<(&str, serde_json::Value, serde_json::Value)>,
) -> Vec<AuditChange> {
    items
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(key, old, new)| AuditChange {
            key: key.to_string(),
            old_value: (!old.is_null()).then_some(old),
            new_value: (!new.is_null()).then_some(new),
        })
        .collect()
}
