//! Applying recorded items to the world being built: every object merged field by field into
//! what is known (so the newest sample wins), deletions applied, accounts told apart.
use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::{ItemKind, RecordedItem};
use crate::backend::model::channel_type;
use crate::store::account;

/// A JSON object.
pub(super) type Object = Map<String, Value>;

/// Objects by snowflake, in id order.
pub(super) type ById = BTreeMap<u64, Object>;

/// Warnings counted by reason.
#[derive(Default)]
pub(super) struct Notes(pub(super) BTreeMap<String, usize>);

impl Notes {
    /// Counts one more `reason`.
    pub(super) fn add(&mut self, reason: impl Into<String>) {
        *self.0.entry(reason.into()).or_default() += 1;
    }
}

/// What is known of one guild.
#[derive(Default)]
pub(super) struct GuildState {
    /// The guild object's own fields (name, owner_id, icon, features, …).
    pub(super) props: Object,
    pub(super) roles: ById,
    /// Channels and threads.
    pub(super) channels: ById,
    /// Members without their `user` (users live in `World::users`).
    pub(super) members: ById,
    pub(super) emojis: ById,
    pub(super) stickers: ById,
}

/// A DM between a recorded account and one other user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dm {
    pub(super) owner: u64,
    pub(super) other: u64,
}

/// A group DM: who is in it and its own fields (name, icon, owner_id).
#[derive(Debug, Clone, Default)]
pub(super) struct GroupDm {
    /// Everyone in it, the recorded account whose list it came from included.
    pub(super) people: std::collections::BTreeSet<u64>,
    pub(super) props: Object,
}

/// Everything learned from the recordings so far.
#[derive(Default)]
pub(super) struct World {
    pub(super) users: ById,
    /// The recorded accounts, in the order they were last seen (newest last).
    pub(super) accounts: Vec<u64>,
    pub(super) guilds: BTreeMap<u64, GuildState>,
    /// Which guild a channel belongs to.
    pub(super) channel_home: HashMap<u64, u64>,
    pub(super) dms: BTreeMap<u64, Dm>,
    pub(super) group_dms: BTreeMap<u64, GroupDm>,
    /// Messages by channel, then id.
    pub(super) messages: BTreeMap<u64, ById>,
    /// Relationships by (account, other user).
    pub(super) relationships: BTreeMap<(u64, u64), Object>,
    /// Channel read states by (account, channel).
    pub(super) read_states: BTreeMap<(u64, u64), Object>,
    /// Gateway session → the account its READY named.
    sessions: HashMap<u64, u64>,
    /// Recorded `Authorization` fingerprint → the account `/users/@me` named.
    tokens: HashMap<String, u64>,
    pub(super) notes: Notes,
}

/// A snowflake given as a string or a number (never 0).
pub(super) fn snowflake(value: Option<&Value>) -> Option<u64> {
    let id = match value? {
        Value::String(text) => text.parse().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    (id != 0).then_some(id)
}

/// `object[key]` as a snowflake.
pub(super) fn id_at(object: &Value, key: &str) -> Option<u64> {
    snowflake(object.get(key))
}

/// Whether a value is (or starts with) a redaction marker: never data.
pub(super) fn is_redacted(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| text.contains(crate::store::redact::MARK))
}

/// Merges `source`'s fields into `target` (newer wins), skipping redacted values.
fn merge(target: &mut Object, source: &Value) {
    let Some(source) = source.as_object() else {
        return;
    };
    for (key, value) in source {
        if !is_redacted(value) {
            target.insert(key.clone(), value.clone());
        }
    }
}

/// The array at `key`, or nothing.
fn list<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The dispatches the builder reads (the reader leaves the rest undecoded).
pub(super) const USED_EVENTS: [&str; 34] = [
    "READY",
    "READY_SUPPLEMENTAL",
    "GUILD_CREATE",
    "GUILD_UPDATE",
    "GUILD_DELETE",
    "CHANNEL_CREATE",
    "CHANNEL_UPDATE",
    "CHANNEL_DELETE",
    "THREAD_CREATE",
    "THREAD_UPDATE",
    "THREAD_DELETE",
    "THREAD_LIST_SYNC",
    "GUILD_ROLE_CREATE",
    "GUILD_ROLE_UPDATE",
    "GUILD_ROLE_DELETE",
    "GUILD_MEMBER_ADD",
    "GUILD_MEMBER_UPDATE",
    "GUILD_MEMBER_REMOVE",
    "GUILD_MEMBERS_CHUNK",
    "GUILD_MEMBER_LIST_UPDATE",
    "GUILD_EMOJIS_UPDATE",
    "GUILD_STICKERS_UPDATE",
    "MESSAGE_CREATE",
    "MESSAGE_UPDATE",
    "MESSAGE_DELETE",
    "MESSAGE_DELETE_BULK",
    "RELATIONSHIP_ADD",
    "RELATIONSHIP_UPDATE",
    "RELATIONSHIP_REMOVE",
    "USER_UPDATE",
    "CHANNEL_RECIPIENT_ADD",
    "CHANNEL_RECIPIENT_REMOVE",
    "PASSIVE_UPDATE_V1",
    "PASSIVE_UPDATE_V2",
];

/// Keys of a guild object that are lists handled on their own, not guild properties.
const GUILD_LISTS: [&str; 14] = [
    "roles",
    "channels",
    "threads",
    "members",
    "emojis",
    "stickers",
    "presences",
    "voice_states",
    "stage_instances",
    "guild_scheduled_events",
    "soundboard_sounds",
    "properties",
    "partial_updates",
    "data_mode",
];

impl World {
    /// Learns which recorded `Authorization` belongs to which account (from `/users/@me`
    /// answers, as [`account::users_me_account`] reads them), so `@me` routes answered
    /// before that request are attributed too.
    pub(super) fn learn_tokens(&mut self, items: &[RecordedItem]) {
        for item in items {
            if let ItemKind::Rest {
                method,
                path,
                status,
                auth: Some(auth),
                body,
            } = &item.kind
            {
                let named = account::users_me_account(method, path, *status, body);
                if let Some(id) = named.and_then(|id| id.parse().ok()) {
                    self.tokens.insert(auth.clone(), id);
                }
            }
        }
    }

    /// Applies one item.
    pub(super) fn apply(&mut self, item: &RecordedItem) {
        match &item.kind {
            ItemKind::Rest {
                method,
                path,
                status,
                auth,
                body,
            } => {
                if (200..300).contains(status) {
                    self.rest(method, path, auth.as_deref(), body);
                }
            }
            ItemKind::Dispatch {
                session,
                event,
                data,
            } => self.dispatch(*session, event, data),
        }
    }

    /// A user object (merged); its id.
    pub(super) fn user(&mut self, user: &Value) -> Option<u64> {
        let id = id_at(user, "id")?;
        let entry = self.users.entry(id).or_default();
        merge(entry, user);
        Some(id)
    }

    /// A recorded account (READY's or `/users/@me`'s user, as [`account`] names them):
    /// newest last.
    fn account(&mut self, user: &Value, named: Option<String>) -> Option<u64> {
        let named: u64 = named?.parse().ok()?;
        let id = self.user(user).filter(|id| *id == named)?;
        self.accounts.retain(|a| *a != id);
        self.accounts.push(id);
        Some(id)
    }

    /// The account a REST request was made as: known from its token, or the only one.
    fn account_of(&mut self, auth: Option<&str>) -> Option<u64> {
        if let Some(id) = auth.and_then(|a| self.tokens.get(a)) {
            return Some(*id);
        }
        match self.accounts.as_slice() {
            [only] => Some(*only),
            _ => {
                self.notes
                    .add("@me answers skipped: the account that made the request is not known");
                None
            }
        }
    }

    /// The account of a gateway session, or the only one.
    fn account_of_session(&self, session: u64) -> Option<u64> {
        self.sessions
            .get(&session)
            .copied()
            .or(match self.accounts.as_slice() {
                [only] => Some(*only),
                _ => None,
            })
    }

    /// READY: the account, its guilds (full or CLIENT_STATE_V2, members inline or in
    /// `merged_members`), `users`, DMs, relationships and read states.
    fn ready(&mut self, session: u64, d: &Value) {
        let named = account::ready_account(d);
        let Some(account) = d.get("user").and_then(|u| self.account(u, named)) else {
            self.notes.add("READY without a user skipped");
            return;
        };
        self.sessions.insert(session, account);
        for user in list(d, "users") {
            self.user(user);
        }
        let merged = list(d, "merged_members");
        for (i, guild) in list(d, "guilds").iter().enumerate() {
            if guild.get("unavailable").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(id) = self.guild(guild) {
                for member in merged
                    .get(i)
                    .map_or(&[][..], |m| m.as_array().map_or(&[], Vec::as_slice))
                {
                    self.member(id, member);
                }
            }
        }
        for channel in list(d, "private_channels") {
            self.channel(channel, None, Some(account));
        }
        for relationship in list(d, "relationships") {
            self.relationship(account, relationship);
        }
        let read_state = d.get("read_state");
        let entries = read_state
            .and_then(|r| r.get("entries"))
            .or(read_state)
            .and_then(Value::as_array);
        for entry in entries.into_iter().flatten() {
            let channel_kind = entry.get("read_state_type").and_then(Value::as_u64);
            if let (Some(channel), None | Some(0)) = (id_at(entry, "id"), channel_kind) {
                let slot = self.read_states.entry((account, channel)).or_default();
                merge(slot, entry);
            }
        }
    }

    /// READY_SUPPLEMENTAL: more members per guild (`merged_members`, aligned with `guilds`),
    /// taken when READY's `users` named them.
    fn supplemental(&mut self, session: u64, d: &Value) {
        let owner = self.account_of_session(session);
        for channel in list(d, "lazy_private_channels") {
            self.channel(channel, None, owner);
        }
        let merged = list(d, "merged_members");
        for (i, guild) in list(d, "guilds").iter().enumerate() {
            let (Some(id), Some(members)) =
                (id_at(guild, "id"), merged.get(i).and_then(Value::as_array))
            else {
                continue;
            };
            for member in members {
                if id_at(member, "user_id").is_some_and(|user| self.users.contains_key(&user)) {
                    self.member(id, member);
                }
            }
        }
    }

    /// A guild object (gateway, REST or CLIENT_STATE_V2 shape); its id.
    fn guild(&mut self, guild: &Value) -> Option<u64> {
        let properties = guild.get("properties").filter(|p| p.is_object());
        let id = id_at(guild, "id").or_else(|| properties.and_then(|p| id_at(p, "id")))?;
        let state = self.guilds.entry(id).or_default();
        for source in [Some(guild), properties].into_iter().flatten() {
            if let Some(fields) = source.as_object() {
                for (key, value) in fields {
                    if !GUILD_LISTS.contains(&key.as_str()) && !is_redacted(value) {
                        state.props.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        let lists = |key: &str| -> Vec<Value> {
            let mut out = list(guild, key).to_vec();
            if let Some(p) = properties {
                out.extend(list(p, key).iter().cloned());
            }
            out
        };
        for role in lists("roles") {
            self.role(id, &role);
        }
        for key in ["emojis", "stickers"] {
            let items = lists(key);
            if guild.get(key).is_some() {
                self.replace_expressions(id, key, &items);
            }
        }
        for channel in lists("channels").iter().chain(lists("threads").iter()) {
            self.channel(channel, Some(id), None);
        }
        for member in lists("members") {
            self.member(id, &member);
        }
        if guild.get("data_mode").and_then(Value::as_str) == Some("partial") {
            self.partial_guild(id, guild.get("partial_updates"));
        }
        Some(id)
    }

    /// A READY guild in `data_mode: partial`: the client had it cached, so only what changed
    /// since is sent (`partial_updates`: changed fields, channels, roles, emojis and
    /// stickers, and the ids deleted), merged into what earlier recordings told.
    fn partial_guild(&mut self, id: u64, updates: Option<&Value>) {
        let known = self
            .guilds
            .get(&id)
            .is_some_and(|g| g.props.contains_key("name"));
        let Some(updates) = updates.filter(|u| u.is_object()) else {
            if !known {
                self.notes.add(
                    "guilds sent partial in READY without an earlier full sample: only what later events and fetches tell is known",
                );
            }
            return;
        };
        if let Some(properties) = updates.get("properties") {
            let state = self.guilds.entry(id).or_default();
            merge(&mut state.props, properties);
        }
        for role in list(updates, "roles") {
            self.role(id, role);
        }
        for channel in list(updates, "channels")
            .iter()
            .chain(list(updates, "threads"))
        {
            self.channel(channel, Some(id), None);
        }
        for key in ["emojis", "stickers"] {
            for item in list(updates, key) {
                if let Some(item_id) = id_at(item, "id") {
                    let state = self.guilds.entry(id).or_default();
                    let map = if key == "emojis" {
                        &mut state.emojis
                    } else {
                        &mut state.stickers
                    };
                    merge(map.entry(item_id).or_default(), item);
                }
            }
        }
        let deleted = |key: &str| -> Vec<u64> {
            list(updates, key)
                .iter()
                .filter_map(|v| snowflake(Some(v)))
                .collect()
        };
        for channel in deleted("deleted_channel_ids") {
            self.delete_channel(Some(channel));
        }
        let state = self.guilds.entry(id).or_default();
        for role in deleted("deleted_role_ids") {
            state.roles.remove(&role);
        }
        for emoji in deleted("deleted_emoji_ids") {
            state.emojis.remove(&emoji);
        }
        for sticker in deleted("deleted_sticker_ids") {
            state.stickers.remove(&sticker);
        }
        if !known {
            self.notes.add(
                "guilds sent partial in READY without an earlier full sample: only what later events and fetches tell is known",
            );
        }
    }

    /// PASSIVE_UPDATE_V1/V2 (a guild the client is not looking at): its members, and what
    /// changed of channels already known (their last message and pin).
    fn passive(&mut self, guild: u64, d: &Value) {
        for member in list(d, "updated_members").iter().chain(list(d, "members")) {
            self.member(guild, member);
        }
        for channel in list(d, "updated_channels")
            .iter()
            .chain(list(d, "channels"))
        {
            let Some(id) = id_at(channel, "id") else {
                continue;
            };
            // Only a few fields of each channel come: never a channel of their own.
            if let Some(known) = self
                .guilds
                .get_mut(&guild)
                .and_then(|state| state.channels.get_mut(&id))
            {
                merge(known, channel);
            }
        }
    }

    /// The guild's whole emoji or sticker list, as GUILD_CREATE and *_UPDATE send it.
    fn replace_expressions(&mut self, guild: u64, key: &str, items: &[Value]) {
        let mut fresh = ById::new();
        for item in items {
            if let Some(id) = id_at(item, "id") {
                let mut object = Object::new();
                merge(&mut object, item);
                if let Some(user) = item.get("user") {
                    self.user(user);
                }
                fresh.insert(id, object);
            }
        }
        let state = self.guilds.entry(guild).or_default();
        if key == "emojis" {
            state.emojis = fresh;
        } else {
            state.stickers = fresh;
        }
    }

    /// A role of `guild`.
    fn role(&mut self, guild: u64, role: &Value) {
        if let Some(id) = id_at(role, "id") {
            let state = self.guilds.entry(guild).or_default();
            merge(state.roles.entry(id).or_default(), role);
        }
    }

    /// A member of `guild` (with `user` or `user_id`).
    pub(super) fn member(&mut self, guild: u64, member: &Value) {
        let id = match member.get("user") {
            Some(user) => self.user(user),
            None => id_at(member, "user_id"),
        };
        let Some(id) = id else {
            return;
        };
        let state = self.guilds.entry(guild).or_default();
        let slot = state.members.entry(id).or_default();
        merge(slot, member);
        slot.remove("user");
    }

    /// A channel, thread or DM; `guild` when the context names it, `owner` the account whose
    /// DM list it came from.
    pub(super) fn channel(&mut self, channel: &Value, guild: Option<u64>, owner: Option<u64>) {
        let Some(id) = id_at(channel, "id") else {
            return;
        };
        let kind = channel.get("type").and_then(Value::as_u64).unwrap_or(0);
        if kind == u64::from(channel_type::DM) {
            self.dm(id, channel, owner);
            return;
        }
        if kind == u64::from(channel_type::GROUP_DM) {
            self.group_dm(id, channel, owner);
            return;
        }
        let guild = id_at(channel, "guild_id")
            .or(guild)
            .or_else(|| self.channel_home.get(&id).copied());
        let Some(guild) = guild else {
            self.notes.add("channels of an unknown guild skipped");
            return;
        };
        self.channel_home.insert(id, guild);
        let state = self.guilds.entry(guild).or_default();
        merge(state.channels.entry(id).or_default(), channel);
    }

    /// A DM channel: its two people.
    fn dm(&mut self, id: u64, channel: &Value, owner: Option<u64>) {
        let mut others: Vec<u64> = Vec::new();
        for recipient in list(channel, "recipients") {
            if let Some(user) = self.user(recipient) {
                others.push(user);
            }
        }
        others.extend(
            list(channel, "recipient_ids")
                .iter()
                .filter_map(|v| snowflake(Some(v))),
        );
        let owner = owner.or_else(|| self.dms.get(&id).map(|dm| dm.owner));
        others.retain(|o| Some(*o) != owner);
        others.sort_unstable();
        others.dedup();
        match (owner, others.as_slice()) {
            (Some(owner), [other]) => {
                self.dms.insert(
                    id,
                    Dm {
                        owner,
                        other: *other,
                    },
                );
            }
            _ => self.notes.add("DMs whose two people are not known skipped"),
        }
    }

    /// A group DM: its people (recipients, and the account whose list it came from) and
    /// its fields.
    fn group_dm(&mut self, id: u64, channel: &Value, owner: Option<u64>) {
        let mut people: Vec<u64> = Vec::new();
        for recipient in list(channel, "recipients") {
            people.extend(self.user(recipient));
        }
        people.extend(
            list(channel, "recipient_ids")
                .iter()
                .filter_map(|v| snowflake(Some(v))),
        );
        let group = self.group_dms.entry(id).or_default();
        group.people.extend(people.into_iter().chain(owner));
        for key in ["name", "icon", "owner_id"] {
            if let Some(value) = channel.get(key).filter(|v| !is_redacted(v)) {
                group.props.insert(key.into(), value.clone());
            }
        }
    }

    /// CHANNEL_RECIPIENT_ADD / _REMOVE: someone joined or left a group DM.
    fn group_recipient(&mut self, d: &Value, added: bool) {
        let user = d.get("user").and_then(|u| self.user(u));
        let (Some(channel), Some(user)) = (id_at(d, "channel_id"), user) else {
            return;
        };
        if let Some(group) = self.group_dms.get_mut(&channel) {
            if added {
                group.people.insert(user);
            } else {
                group.people.remove(&user);
            }
        }
    }

    /// A relationship of `account` (`user` or `user_id` names the other person).
    fn relationship(&mut self, account: u64, relationship: &Value) {
        let other = relationship
            .get("user")
            .and_then(|u| self.user(u))
            .or_else(|| id_at(relationship, "user_id"))
            .or_else(|| id_at(relationship, "id"));
        if let Some(other) = other {
            let slot = self.relationships.entry((account, other)).or_default();
            merge(slot, relationship);
            slot.remove("user");
        }
    }

    /// A message (full or partial): merged into what is known of it.
    pub(super) fn message(&mut self, message: &Value, channel: Option<u64>) {
        let (Some(id), Some(channel)) = (
            id_at(message, "id"),
            id_at(message, "channel_id").or(channel),
        ) else {
            return;
        };
        let author = message.get("author").and_then(|a| self.user(a));
        for mentioned in list(message, "mentions") {
            self.user(mentioned);
        }
        let member = message.get("member").and_then(Value::as_object);
        if let (Some(guild), Some(author), Some(member)) =
            (id_at(message, "guild_id"), author, member)
        {
            let mut member = member.clone();
            member.insert("user_id".into(), Value::String(author.to_string()));
            self.member(guild, &Value::Object(member));
        }
        if let Some(guild) = id_at(message, "guild_id") {
            self.channel_home.entry(channel).or_insert(guild);
        }
        let slot = self
            .messages
            .entry(channel)
            .or_default()
            .entry(id)
            .or_default();
        merge(slot, message);
        slot.insert("channel_id".into(), Value::String(channel.to_string()));
        for key in ["member", "referenced_message", "thread"] {
            slot.remove(key);
        }
    }

    /// Forgets a message.
    fn delete_message(&mut self, channel: Option<u64>, id: Option<u64>) {
        if let (Some(channel), Some(id)) = (channel, id) {
            if let Some(messages) = self.messages.get_mut(&channel) {
                messages.remove(&id);
            }
        }
    }

    /// Forgets a channel (and its messages).
    fn delete_channel(&mut self, id: Option<u64>) {
        let Some(id) = id else { return };
        if let Some(guild) = self.channel_home.remove(&id) {
            if let Some(state) = self.guilds.get_mut(&guild) {
                state.channels.remove(&id);
            }
        }
        self.dms.remove(&id);
        self.group_dms.remove(&id);
        self.messages.remove(&id);
    }

    /// A member-list update (op 14/37's answer): the members in SYNC, INSERT and UPDATE items.
    fn member_list(&mut self, d: &Value) {
        let Some(guild) = id_at(d, "guild_id") else {
            return;
        };
        for op in list(d, "ops") {
            let items = list(op, "items").iter().chain(op.get("item"));
            let members: Vec<Value> = items.filter_map(|i| i.get("member").cloned()).collect();
            for member in members {
                self.member(guild, &member);
            }
        }
    }

    /// A gateway dispatch.
    fn dispatch(&mut self, session: u64, event: &str, d: &Value) {
        let guild = id_at(d, "guild_id");
        match event {
            "READY" => self.ready(session, d),
            "READY_SUPPLEMENTAL" => self.supplemental(session, d),
            "GUILD_CREATE" | "GUILD_UPDATE" => {
                self.guild(d);
            }
            "GUILD_DELETE" if d.get("unavailable").and_then(Value::as_bool) != Some(true) => {
                if let Some(id) = id_at(d, "id") {
                    self.guilds.remove(&id);
                }
            }
            "CHANNEL_CREATE" | "CHANNEL_UPDATE" | "THREAD_CREATE" | "THREAD_UPDATE" => {
                let owner = self.account_of_session(session);
                self.channel(d, guild, owner);
            }
            "CHANNEL_DELETE" | "THREAD_DELETE" => self.delete_channel(id_at(d, "id")),
            "THREAD_LIST_SYNC" => {
                for thread in list(d, "threads") {
                    self.channel(thread, guild, None);
                }
            }
            "GUILD_ROLE_CREATE" | "GUILD_ROLE_UPDATE" => {
                if let (Some(guild), Some(role)) = (guild, d.get("role")) {
                    self.role(guild, role);
                }
            }
            "GUILD_ROLE_DELETE" => {
                if let (Some(guild), Some(role)) = (guild, id_at(d, "role_id")) {
                    if let Some(state) = self.guilds.get_mut(&guild) {
                        state.roles.remove(&role);
                    }
                }
            }
            _ => self.dispatch_more(session, event, d, guild),
        }
    }

    /// Members, expressions, messages, relationships and users.
    fn dispatch_more(&mut self, session: u64, event: &str, d: &Value, guild: Option<u64>) {
        match (event, guild) {
            ("GUILD_MEMBER_ADD" | "GUILD_MEMBER_UPDATE", Some(guild)) => self.member(guild, d),
            ("GUILD_MEMBER_REMOVE", Some(guild)) => {
                let user = d.get("user").and_then(|u| id_at(u, "id"));
                if let (Some(state), Some(user)) = (self.guilds.get_mut(&guild), user) {
                    state.members.remove(&user);
                }
            }
            ("GUILD_MEMBERS_CHUNK", Some(guild)) => {
                for member in list(d, "members") {
                    self.member(guild, member);
                }
            }
            ("GUILD_MEMBER_LIST_UPDATE", _) => self.member_list(d),
            ("GUILD_EMOJIS_UPDATE", Some(guild)) => {
                self.replace_expressions(guild, "emojis", list(d, "emojis"));
            }
            ("GUILD_STICKERS_UPDATE", Some(guild)) => {
                self.replace_expressions(guild, "stickers", list(d, "stickers"));
            }
            ("MESSAGE_CREATE" | "MESSAGE_UPDATE", _) => self.message(d, None),
            ("MESSAGE_DELETE", _) => self.delete_message(id_at(d, "channel_id"), id_at(d, "id")),
            ("MESSAGE_DELETE_BULK", _) => {
                for id in list(d, "ids") {
                    self.delete_message(id_at(d, "channel_id"), snowflake(Some(id)));
                }
            }
            ("RELATIONSHIP_ADD" | "RELATIONSHIP_UPDATE", _) => {
                if let Some(account) = self.account_of_session(session) {
                    self.relationship(account, d);
                }
            }
            ("RELATIONSHIP_REMOVE", _) => {
                if let (Some(account), Some(other)) =
                    (self.account_of_session(session), id_at(d, "id"))
                {
                    self.relationships.remove(&(account, other));
                }
            }
            ("USER_UPDATE", _) => {
                self.user(d);
            }
            ("CHANNEL_RECIPIENT_ADD", _) => self.group_recipient(d, true),
            ("CHANNEL_RECIPIENT_REMOVE", _) => self.group_recipient(d, false),
            ("PASSIVE_UPDATE_V1" | "PASSIVE_UPDATE_V2", Some(guild)) => self.passive(guild, d),
            _ => {}
        }
    }

    /// A REST answer (2xx).
    fn rest(&mut self, method: &str, path: &str, auth: Option<&str>, body: &Value) {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let id = |i: usize| segments.get(i).and_then(|s| s.parse::<u64>().ok());
        match (method, segments.as_slice()) {
            ("GET", ["users", "@me"]) => {
                self.account(body, account::users_me_account(method, path, 200, body));
            }
            ("GET", ["users", _]) => {
                self.user(body);
            }
            ("GET" | "POST", ["users", "@me", "channels"]) => {
                let owner = self.account_of(auth);
                for channel in body
                    .as_array()
                    .map_or(std::slice::from_ref(body), Vec::as_slice)
                {
                    self.channel(channel, None, owner);
                }
            }
            ("GET", ["users", "@me", "relationships"]) => {
                if let Some(account) = self.account_of(auth) {
                    for relationship in body.as_array().into_iter().flatten() {
                        self.relationship(account, relationship);
                    }
                }
            }
            ("GET", ["users", "@me", "guilds"]) => self.partial_guilds(auth, body),
            ("GET", ["guilds", _]) => {
                self.guild(body);
            }
            _ => self.rest_guild_parts(method, &segments, id(1), body),
        }
    }

    /// `/users/@me/guilds`: names and icons of guilds not otherwise recorded.
    fn partial_guilds(&mut self, auth: Option<&str>, body: &Value) {
        let account = self.account_of(auth);
        for guild in body.as_array().into_iter().flatten() {
            let Some(id) = id_at(guild, "id") else {
                continue;
            };
            let state = self.guilds.entry(id).or_default();
            for key in ["name", "icon", "features"] {
                if let Some(value) = guild.get(key).filter(|v| !is_redacted(v)) {
                    state.props.entry(key).or_insert_with(|| value.clone());
                }
            }
            if let (Some(true), Some(account)) =
                (guild.get("owner").and_then(Value::as_bool), account)
            {
                state
                    .props
                    .entry("owner_id")
                    .or_insert_with(|| Value::String(account.to_string()));
            }
        }
    }

    /// Guild lists, channels and messages over REST.
    fn rest_guild_parts(&mut self, method: &str, segments: &[&str], id: Option<u64>, body: &Value) {
        let each = |body: &Value| body.as_array().cloned().unwrap_or_default();
        match (method, segments, id) {
            ("GET", ["guilds", _, "channels"], Some(guild)) => {
                for channel in each(body) {
                    self.channel(&channel, Some(guild), None);
                }
            }
            ("GET", ["guilds", _, "roles"], Some(guild)) => {
                for role in each(body) {
                    self.role(guild, &role);
                }
            }
            ("GET", ["guilds", _, "members"] | ["guilds", _, "members", "search"], Some(guild)) => {
                for member in each(body) {
                    self.member(guild, &member);
                }
            }
            ("GET", ["guilds", _, "members", _], Some(guild)) => self.member(guild, body),
            ("GET", ["guilds", _, key @ ("emojis" | "stickers")], Some(guild)) => {
                for item in each(body) {
                    if let Some(item_id) = id_at(&item, "id") {
                        let state = self.guilds.entry(guild).or_default();
                        let map = if *key == "emojis" {
                            &mut state.emojis
                        } else {
                            &mut state.stickers
                        };
                        merge(map.entry(item_id).or_default(), &item);
                    }
                }
            }
            (
                "GET",
                ["guilds", _, "threads", "active"]
                | ["channels", _, "threads", ..]
                | ["channels", _, "users", "@me", "threads", ..],
                guild,
            ) => {
                let guild = if segments[0] == "guilds" { guild } else { None };
                for thread in list(body, "threads") {
                    self.channel(thread, guild, None);
                }
            }
            ("GET" | "PATCH", ["channels", _], _) => self.channel(body, None, None),
            ("GET", ["channels", _, "messages"] | ["channels", _, "pins"], channel) => {
                for message in each(body) {
                    self.message(&message, channel);
                }
            }
            ("GET", ["channels", _, "messages", "pins"], channel) => {
                for item in list(body, "items") {
                    if let Some(message) = item.get("message").and_then(Value::as_object) {
                        let mut message = message.clone();
                        message.insert("pinned".into(), Value::Bool(true));
                        self.message(&Value::Object(message), channel);
                    }
                }
            }
            ("GET" | "PATCH", ["channels", _, "messages", _], channel)
            | ("POST", ["channels", _, "messages"], channel) => self.message(body, channel),
            ("DELETE", ["channels", _, "messages", message], channel) => {
                self.delete_message(channel, message.parse().ok());
            }
            _ => {}
        }
    }
}
