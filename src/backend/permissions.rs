//! Permission computation exactly as Discord documents it: base permissions from @everyone and
//! the member's roles (owner and ADMINISTRATOR get everything), then channel overwrites in the
//! order @everyone → roles (allow after deny, merged) → member, then implicit denials.
use super::model::{Member, Overwrite, Role};
use super::snowflake::Snowflake;

/// Permission bits.
pub(crate) mod bits {
    pub(crate) const CREATE_INSTANT_INVITE: u64 = 1 << 0;
    pub(crate) const KICK_MEMBERS: u64 = 1 << 1;
    pub(crate) const BAN_MEMBERS: u64 = 1 << 2;
    pub(crate) const ADMINISTRATOR: u64 = 1 << 3;
    pub(crate) const MANAGE_CHANNELS: u64 = 1 << 4;
    pub(crate) const MANAGE_GUILD: u64 = 1 << 5;
    pub(crate) const ADD_REACTIONS: u64 = 1 << 6;
    pub(crate) const VIEW_AUDIT_LOG: u64 = 1 << 7;
    pub(crate) const PRIORITY_SPEAKER: u64 = 1 << 8;
    pub(crate) const STREAM: u64 = 1 << 9;
    pub(crate) const VIEW_CHANNEL: u64 = 1 << 10;
    pub(crate) const SEND_MESSAGES: u64 = 1 << 11;
    pub(crate) const SEND_TTS_MESSAGES: u64 = 1 << 12;
    pub(crate) const MANAGE_MESSAGES: u64 = 1 << 13;
    pub(crate) const EMBED_LINKS: u64 = 1 << 14;
    pub(crate) const ATTACH_FILES: u64 = 1 << 15;
    pub(crate) const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    pub(crate) const MENTION_EVERYONE: u64 = 1 << 17;
    pub(crate) const USE_EXTERNAL_EMOJIS: u64 = 1 << 18;
    pub(crate) const VIEW_GUILD_INSIGHTS: u64 = 1 << 19;
    pub(crate) const CONNECT: u64 = 1 << 20;
    pub(crate) const SPEAK: u64 = 1 << 21;
    pub(crate) const MUTE_MEMBERS: u64 = 1 << 22;
    pub(crate) const DEAFEN_MEMBERS: u64 = 1 << 23;
    pub(crate) const MOVE_MEMBERS: u64 = 1 << 24;
    pub(crate) const USE_VAD: u64 = 1 << 25;
    pub(crate) const CHANGE_NICKNAME: u64 = 1 << 26;
    pub(crate) const MANAGE_NICKNAMES: u64 = 1 << 27;
    pub(crate) const MANAGE_ROLES: u64 = 1 << 28;
    pub(crate) const MANAGE_WEBHOOKS: u64 = 1 << 29;
    pub(crate) const MANAGE_GUILD_EXPRESSIONS: u64 = 1 << 30;
    pub(crate) const USE_APPLICATION_COMMANDS: u64 = 1 << 31;
    pub(crate) const REQUEST_TO_SPEAK: u64 = 1 << 32;
    pub(crate) const MANAGE_EVENTS: u64 = 1 << 33;
    pub(crate) const MANAGE_THREADS: u64 = 1 << 34;
    pub(crate) const CREATE_PUBLIC_THREADS: u64 = 1 << 35;
    pub(crate) const CREATE_PRIVATE_THREADS: u64 = 1 << 36;
    pub(crate) const USE_EXTERNAL_STICKERS: u64 = 1 << 37;
    pub(crate) const SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;
    pub(crate) const USE_EMBEDDED_ACTIVITIES: u64 = 1 << 39;
    pub(crate) const MODERATE_MEMBERS: u64 = 1 << 40;
    pub(crate) const VIEW_CREATOR_MONETIZATION_ANALYTICS: u64 = 1 << 41;
    pub(crate) const USE_SOUNDBOARD: u64 = 1 << 42;
    pub(crate) const CREATE_GUILD_EXPRESSIONS: u64 = 1 << 43;
    pub(crate) const CREATE_EVENTS: u64 = 1 << 44;
    pub(crate) const USE_EXTERNAL_SOUNDS: u64 = 1 << 45;
    pub(crate) const SEND_VOICE_MESSAGES: u64 = 1 << 46;
    pub(crate) const SEND_POLLS: u64 = 1 << 49;
    pub(crate) const USE_EXTERNAL_APPS: u64 = 1 << 50;
    pub(crate) const PIN_MESSAGES: u64 = 1 << 51;
    /// Every bit Discord defines.
    pub(crate) const ALL: u64 = CREATE_INSTANT_INVITE
        | KICK_MEMBERS
        | BAN_MEMBERS
        | ADMINISTRATOR
        | MANAGE_CHANNELS
        | MANAGE_GUILD
        | ADD_REACTIONS
        | VIEW_AUDIT_LOG
        | PRIORITY_SPEAKER
        | STREAM
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | SEND_TTS_MESSAGES
        | MANAGE_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | MENTION_EVERYONE
        | USE_EXTERNAL_EMOJIS
        | VIEW_GUILD_INSIGHTS
        | CONNECT
        | SPEAK
        | MUTE_MEMBERS
        | DEAFEN_MEMBERS
        | MOVE_MEMBERS
        | USE_VAD
        | CHANGE_NICKNAME
        | MANAGE_NICKNAMES
        | MANAGE_ROLES
        | MANAGE_WEBHOOKS
        | MANAGE_GUILD_EXPRESSIONS
        | USE_APPLICATION_COMMANDS
        | REQUEST_TO_SPEAK
        | MANAGE_EVENTS
        | MANAGE_THREADS
        | CREATE_PUBLIC_THREADS
        | CREATE_PRIVATE_THREADS
        | USE_EXTERNAL_STICKERS
        | SEND_MESSAGES_IN_THREADS
        | USE_EMBEDDED_ACTIVITIES
        | MODERATE_MEMBERS
        | VIEW_CREATOR_MONETIZATION_ANALYTICS
        | USE_SOUNDBOARD
        | CREATE_GUILD_EXPRESSIONS
        | CREATE_EVENTS
        | USE_EXTERNAL_SOUNDS
        | SEND_VOICE_MESSAGES
        | SEND_POLLS
        | USE_EXTERNAL_APPS
        | PIN_MESSAGES;
    /// What a new guild's @everyone role gets (Discord's default for new guilds).
    pub(crate) const EVERYONE_DEFAULT: u64 = 2_248_473_465_835_073;
    /// The only permissions a timed-out member keeps.
    pub(crate) const TIMEOUT_ALLOWED: u64 = VIEW_CHANNEL | READ_MESSAGE_HISTORY;
}

/// Everything needed to compute one member's permissions in a guild.
pub struct GuildContext<'a> {
    pub guild_id: Snowflake,
    pub owner_id: Snowflake,
    pub roles: &'a [Role],
}

impl GuildContext<'_> {
    fn role(&self, id: Snowflake) -> Option<&Role> {
        self.roles.iter().find(|role| role.id == id)
    }

    /// Guild-level permissions of `member` (before channel overwrites).
    pub fn base_permissions(&self, member: &Member) -> u64 {
        if member.user_id == self.owner_id {
            return bits::ALL;
        }
        let mut permissions = self.role(self.guild_id).map_or(0, Role::permission_bits);
        for role_id in &member.roles {
            if let Some(role) = self.role(*role_id) {
                permissions |= role.permission_bits();
            }
        }
        if permissions & bits::ADMINISTRATOR != 0 {
            return bits::ALL;
        }
        permissions
    }

    /// Permissions of `member` in a channel with `overwrites`, at time `now_ms` (timeouts).
    pub fn channel_permissions(
        &self,
        member: &Member,
        overwrites: &[Overwrite],
        now_ms: u64,
    ) -> u64 {
        let base = self.base_permissions(member);
        if base & bits::ADMINISTRATOR != 0 || member.user_id == self.owner_id {
            return bits::ALL;
        }
        let mut permissions = base;
        if let Some(everyone) = overwrites.iter().find(|o| o.id == self.guild_id) {
            let (allow, deny) = everyone.bits();
            permissions &= !deny;
            permissions |= allow;
        }
        let (mut allow, mut deny) = (0u64, 0u64);
        for overwrite in overwrites {
            if overwrite.kind == 0 && member.roles.contains(&overwrite.id) {
                let (a, d) = overwrite.bits();
                allow |= a;
                deny |= d;
            }
        }
        permissions &= !deny;
        permissions |= allow;
        if let Some(own) = overwrites
            .iter()
            .find(|o| o.kind == 1 && o.id == member.user_id)
        {
            let (a, d) = own.bits();
            permissions &= !d;
            permissions |= a;
        }
        apply_implicit(permissions, member.timed_out_until(now_ms).is_some())
    }

    /// Position of the member's highest role (0 for @everyone only; owner is above everyone).
    pub fn highest_position(&self, member: &Member) -> i64 {
        if member.user_id == self.owner_id {
            return i64::MAX;
        }
        member
            .roles
            .iter()
            .filter_map(|id| self.role(*id))
            .map(|role| role.position)
            .max()
            .unwrap_or(0)
    }
}

/// Discord's implicit rules: no VIEW_CHANNEL means nothing; no SEND_MESSAGES drops the
/// permissions that only make sense when sending; a timeout leaves only view + history.
pub(crate) fn apply_implicit(mut permissions: u64, timed_out: bool) -> u64 {
    if permissions & bits::VIEW_CHANNEL == 0 {
        return 0;
    }
    if permissions & bits::SEND_MESSAGES == 0 {
        permissions &= !(bits::SEND_TTS_MESSAGES
            | bits::MENTION_EVERYONE
            | bits::EMBED_LINKS
            | bits::ATTACH_FILES);
    }
    if timed_out {
        permissions &= bits::TIMEOUT_ALLOWED;
    }
    permissions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_every_named_bit_and_nothing_else() {
        // Bits 0..=46, then 49..=51 (47 and 48 are unassigned): the value Discord documents.
        assert_eq!(
            bits::ALL,
            ((1 << 47) - 1) | (1 << 49) | (1 << 50) | (1 << 51)
        );
    }

    fn role(id: u64, permissions: u64, position: i64) -> Role {
        Role {
            id: Snowflake(id),
            name: format!("r{id}"),
            color: 0,
            colors: Default::default(),
            hoist: false,
            icon: None,
            unicode_emoji: None,
            position,
            permissions: permissions.to_string(),
            managed: false,
            mentionable: false,
            flags: 0,
            tags: None,
        }
    }

    fn overwrite(id: u64, kind: u8, allow: u64, deny: u64) -> Overwrite {
        Overwrite {
            id: Snowflake(id),
            kind,
            allow: allow.to_string(),
            deny: deny.to_string(),
        }
    }

    fn member(id: u64, roles: &[u64]) -> Member {
        let mut member = Member::new(Snowflake(id), 0);
        member.roles = roles.iter().map(|r| Snowflake(*r)).collect();
        member
    }

    const GUILD: u64 = 1;
    const VIEW_SEND: u64 = bits::VIEW_CHANNEL | bits::SEND_MESSAGES;

    #[test]
    fn owner_and_administrator_get_everything_even_through_denials() {
        let roles = vec![role(GUILD, 0, 0), role(2, bits::ADMINISTRATOR, 1)];
        let ctx = GuildContext {
            guild_id: Snowflake(GUILD),
            owner_id: Snowflake(10),
            roles: &roles,
        };
        let deny_all = [overwrite(GUILD, 0, 0, bits::ALL)];
        assert_eq!(
            ctx.channel_permissions(&member(10, &[]), &deny_all, 0),
            bits::ALL
        );
        assert_eq!(
            ctx.channel_permissions(&member(11, &[2]), &deny_all, 0),
            bits::ALL
        );
        assert_eq!(ctx.channel_permissions(&member(12, &[]), &deny_all, 0), 0);
    }

    #[test]
    fn overwrites_apply_everyone_then_roles_then_member() {
        let roles = vec![role(GUILD, VIEW_SEND, 0), role(2, 0, 1), role(3, 0, 2)];
        let ctx = GuildContext {
            guild_id: Snowflake(GUILD),
            owner_id: Snowflake(10),
            roles: &roles,
        };
        // @everyone denied SEND; role 2 allows it back; role 3 denies it: allow wins among roles.
        let overwrites = [
            overwrite(GUILD, 0, 0, bits::SEND_MESSAGES),
            overwrite(2, 0, bits::SEND_MESSAGES, 0),
            overwrite(3, 0, 0, bits::SEND_MESSAGES),
        ];
        let plain = ctx.channel_permissions(&member(20, &[]), &overwrites, 0);
        assert_eq!(plain & bits::SEND_MESSAGES, 0);
        let with_roles = ctx.channel_permissions(&member(20, &[2, 3]), &overwrites, 0);
        assert_ne!(with_roles & bits::SEND_MESSAGES, 0);
        // A member overwrite beats the roles.
        let mut with_member = overwrites.to_vec();
        with_member.push(overwrite(20, 1, 0, bits::SEND_MESSAGES));
        let denied = ctx.channel_permissions(&member(20, &[2, 3]), &with_member, 0);
        assert_eq!(denied & bits::SEND_MESSAGES, 0);
    }

    #[test]
    fn implicit_permissions_follow_view_and_send() {
        let roles = vec![role(
            GUILD,
            bits::VIEW_CHANNEL | bits::SEND_MESSAGES | bits::EMBED_LINKS | bits::MENTION_EVERYONE,
            0,
        )];
        let ctx = GuildContext {
            guild_id: Snowflake(GUILD),
            owner_id: Snowflake(10),
            roles: &roles,
        };
        let no_send = [overwrite(GUILD, 0, 0, bits::SEND_MESSAGES)];
        let perms = ctx.channel_permissions(&member(20, &[]), &no_send, 0);
        assert_eq!(perms, bits::VIEW_CHANNEL);
        let no_view = [overwrite(GUILD, 0, 0, bits::VIEW_CHANNEL)];
        assert_eq!(ctx.channel_permissions(&member(20, &[]), &no_view, 0), 0);
    }

    #[test]
    fn timed_out_members_keep_only_view_and_history() {
        let roles = vec![role(GUILD, VIEW_SEND | bits::READ_MESSAGE_HISTORY, 0)];
        let ctx = GuildContext {
            guild_id: Snowflake(GUILD),
            owner_id: Snowflake(10),
            roles: &roles,
        };
        let mut timed_out = member(20, &[]);
        timed_out.communication_disabled_until = Some(crate::backend::snowflake::iso8601_from_ms(
            2_000_000_000_000,
        ));
        let perms = ctx.channel_permissions(&timed_out, &[], 1_900_000_000_000);
        assert_eq!(perms, bits::VIEW_CHANNEL | bits::READ_MESSAGE_HISTORY);
        let later = ctx.channel_permissions(&timed_out, &[], 2_100_000_000_000);
        assert_ne!(later & bits::SEND_MESSAGES, 0);
    }

    #[test]
    fn hierarchy_uses_the_highest_role() {
        let roles = vec![role(GUILD, 0, 0), role(2, 0, 5), role(3, 0, 2)];
        let ctx = GuildContext {
            guild_id: Snowflake(GUILD),
            owner_id: Snowflake(10),
            roles: &roles,
        };
        assert_eq!(ctx.highest_position(&member(20, &[3, 2])), 5);
        assert_eq!(ctx.highest_position(&member(20, &[])), 0);
        assert_eq!(ctx.highest_position(&member(10, &[])), i64::MAX);
    }
}
