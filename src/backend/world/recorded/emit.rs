//! The world learned from recordings written out as a fixture: only what the fixture format
//! accepts, every reference checked the way `serve --fixture` checks it (what would be refused
//! is left out and counted in the warnings).
use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::{json, Map, Value};

use super::ingest::{id_at, is_redacted, snowflake, GuildState, Object, World};
use super::{BuiltWorld, LocalAccount};
use crate::backend::model::channel_type;
use crate::backend::snowflake::parse_iso8601_ms;

use crate::backend::world::plan::{MESSAGE_TYPES, USER_MESSAGE_TYPES};
/// Thread auto-archive durations Discord accepts.
const ARCHIVE_DURATIONS: [u64; 4] = [60, 1440, 4320, 10080];

/// What the fixture refers to and holds, gathered while writing it.
#[derive(Default)]
struct Out {
    /// Users the fixture must list.
    users: BTreeSet<u64>,
    counts: BTreeMap<&'static str, usize>,
    /// Channels (and threads) written, so messages and read states can find theirs.
    channels: HashSet<u64>,
}

impl Out {
    fn count(&mut self, what: &'static str, n: usize) {
        *self.counts.entry(what).or_default() += n;
    }
}

/// A non-empty, non-redacted string field.
fn text(object: &Object, key: &str) -> Option<String> {
    object
        .get(key)
        .filter(|v| !is_redacted(v))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// An unsigned field that fits `T`.
fn number<T: TryFrom<u64>>(object: &Object, key: &str) -> Option<T> {
    object
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|n| T::try_from(n).ok())
}

fn flag(object: &Object, key: &str) -> bool {
    object.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Sets `key` when there is a value.
fn put(target: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        target.insert(key.into(), value);
    }
}

/// Writes the fixture.
pub(super) fn emit(mut world: World, new_token: &dyn Fn(u64) -> String) -> BuiltWorld {
    let mut out = Out::default();
    let guild_states = std::mem::take(&mut world.guilds);
    let mut guilds = Vec::new();
    for (id, state) in &guild_states {
        if let Some(guild) = guild(&mut world, &mut out, *id, state) {
            guilds.push(guild);
        }
    }
    let dms = dms(&mut world, &mut out);
    let group_dms = group_dms(&mut world, &mut out);
    let leftover: usize = world.messages.values().map(|m| m.len()).sum();
    if leftover > 0 {
        world.notes.0.insert(
            "messages of channels that were not recorded skipped".into(),
            leftover,
        );
    }
    let relationships = relationships(&mut world, &mut out);
    let read_states = read_states(&world, &out);
    for account in &world.accounts {
        out.users.insert(*account);
    }
    let (users, accounts) = users(&mut world, &mut out, new_token);
    out.count("users", users.len());
    out.count("accounts", accounts.len());
    out.count("guilds", guilds.len());
    out.count("dms", dms.len());
    out.count("group DMs", group_dms.len());
    out.count("relationships", relationships.len());
    let fixture = json!({
        "users": users,
        "guilds": guilds,
        "dms": dms,
        "group_dms": group_dms,
        "relationships": relationships,
        "read_states": read_states,
    });
    BuiltWorld {
        fixture,
        accounts,
        counts: out.counts,
        warnings: world
            .notes
            .0
            .iter()
            .map(|(reason, n)| format!("{n} × {reason}"))
            .collect(),
    }
}

/// Cuts or pads a name to `min..=max` characters.
fn fit(name: &str, min: usize, max: usize) -> String {
    let mut out: String = name.chars().take(max).collect();
    while out.chars().count() < min {
        out.push('_');
    }
    out
}

/// The users the fixture refers to; the recorded accounts get their local tokens.
fn users(
    world: &mut World,
    out: &mut Out,
    new_token: &dyn Fn(u64) -> String,
) -> (Vec<Value>, Vec<LocalAccount>) {
    let mut list = Vec::new();
    let mut accounts = Vec::new();
    let empty = Object::new();
    for id in &out.users {
        let user = world.users.get(id).unwrap_or(&empty);
        let username = match text(user, "username") {
            Some(name) => fit(&name, 2, 32),
            None => {
                world
                    .notes
                    .add("users known only by their id named user-ID");
                format!("user-{id}").chars().take(32).collect()
            }
        };
        let mut entry = Map::new();
        entry.insert("id".into(), json!(id.to_string()));
        entry.insert("username".into(), json!(username));
        for key in ["global_name", "discriminator", "avatar"] {
            put(&mut entry, key, text(user, key).map(Value::from));
        }
        for key in ["bot", "system"] {
            if flag(user, key) {
                entry.insert(key.into(), json!(true));
            }
        }
        put(
            &mut entry,
            "public_flags",
            number::<u64>(user, "public_flags").map(Value::from),
        );
        if world.accounts.contains(id) {
            let token = new_token(*id);
            entry.insert("token".into(), json!(token));
            put(&mut entry, "locale", text(user, "locale").map(Value::from));
            accounts.push(LocalAccount {
                id: *id,
                username,
                token,
                bot: flag(user, "bot"),
            });
        }
        list.push(Value::Object(entry));
    }
    let order: Vec<u64> = world.accounts.iter().rev().copied().collect();
    accounts.sort_by_key(|a| order.iter().position(|id| *id == a.id));
    (list, accounts)
}

/// One guild, or nothing when too little of it was recorded.
fn guild(world: &mut World, out: &mut Out, id: u64, state: &GuildState) -> Option<Value> {
    let Some(name) = text(&state.props, "name") else {
        world.notes.add("guilds known only by their id skipped");
        return None;
    };
    let Some(owner) = id_at(&Value::Object(state.props.clone()), "owner_id") else {
        world
            .notes
            .add("guilds whose owner was not recorded skipped");
        return None;
    };
    out.users.insert(owner);
    let mut guild = Map::new();
    guild.insert("id".into(), json!(id.to_string()));
    guild.insert("name".into(), json!(fit(&name, 2, 100)));
    guild.insert("owner_id".into(), json!(owner.to_string()));
    for key in ["icon", "description", "preferred_locale"] {
        put(&mut guild, key, text(&state.props, key).map(Value::from));
    }
    put(
        &mut guild,
        "verification_level",
        number::<u8>(&state.props, "verification_level").map(Value::from),
    );
    if let Some(features) = state.props.get("features").and_then(Value::as_array) {
        let features: Vec<&Value> = features.iter().filter(|f| f.is_string()).collect();
        guild.insert("features".into(), json!(features));
    }
    let roles = roles(world, state);
    let role_ids: HashSet<u64> = roles
        .iter()
        .filter_map(|r| id_at(r, "id"))
        .chain([id])
        .collect();
    let (members, mut member_ids) = members(out, id, state, &role_ids);
    member_ids.insert(owner);
    let access = Access {
        roles: &role_ids,
        members: &member_ids,
    };
    let channels = channels(world, out, state, &access);
    for key in ["system_channel_id", "rules_channel_id"] {
        let channel = id_at(&Value::Object(state.props.clone()), key);
        if let Some(channel) = channel.filter(|c| out.channels.contains(c)) {
            guild.insert(key.into(), json!(channel.to_string()));
        }
    }
    let threads = threads(world, out, state, &channels, &member_ids);
    out.count("roles", roles.len());
    out.count("members", members.len());
    out.count("channels", channels.len());
    out.count("threads", threads.len());
    guild.insert("roles".into(), Value::Array(roles));
    guild.insert("members".into(), Value::Array(members));
    guild.insert("channels".into(), Value::Array(channels));
    guild.insert("threads".into(), Value::Array(threads));
    let (emojis, stickers) = expressions(world, state);
    out.count("emojis", emojis.len());
    out.count("stickers", stickers.len());
    guild.insert("emojis".into(), Value::Array(emojis));
    guild.insert("stickers".into(), Value::Array(stickers));
    Some(Value::Object(guild))
}

/// The roles (the @everyone role has the guild's id).
fn roles(world: &mut World, state: &GuildState) -> Vec<Value> {
    let mut roles = Vec::new();
    for (id, role) in &state.roles {
        let Some(name) = text(role, "name") else {
            world.notes.add("roles without a name skipped");
            continue;
        };
        let mut entry = Map::new();
        entry.insert("id".into(), json!(id.to_string()));
        entry.insert("name".into(), json!(name));
        let permissions = match role.get("permissions") {
            Some(Value::String(bits)) if bits.parse::<u64>().is_ok() => Some(json!(bits)),
            Some(Value::Number(n)) => n.as_u64().map(|n| json!(n.to_string())),
            _ => None,
        };
        put(&mut entry, "permissions", permissions);
        put(
            &mut entry,
            "color",
            number::<u32>(role, "color").map(Value::from),
        );
        put(
            &mut entry,
            "position",
            role.get("position")
                .and_then(Value::as_i64)
                .map(Value::from),
        );
        for key in ["hoist", "mentionable"] {
            if flag(role, key) {
                entry.insert(key.into(), json!(true));
            }
        }
        roles.push(Value::Object(entry));
    }
    roles
}

/// The members (roles limited to the guild's); their ids.
fn members(
    out: &mut Out,
    guild: u64,
    state: &GuildState,
    role_ids: &HashSet<u64>,
) -> (Vec<Value>, HashSet<u64>) {
    let mut list = Vec::new();
    let mut ids = HashSet::new();
    for (user, member) in &state.members {
        out.users.insert(*user);
        ids.insert(*user);
        let roles: Vec<String> = member
            .get("roles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| snowflake(Some(r)))
            .filter(|r| *r != guild && role_ids.contains(r))
            .map(|r| r.to_string())
            .collect();
        let mut entry = Map::new();
        entry.insert("user_id".into(), json!(user.to_string()));
        entry.insert("roles".into(), json!(roles));
        put(&mut entry, "nick", text(member, "nick").map(Value::from));
        let joined = text(member, "joined_at").filter(|t| parse_iso8601_ms(t).is_some());
        put(&mut entry, "joined_at", joined.map(Value::from));
        for key in ["deaf", "mute"] {
            if flag(member, key) {
                entry.insert(key.into(), json!(true));
            }
        }
        list.push(Value::Object(entry));
    }
    (list, ids)
}

/// Who overwrites may name.
struct Access<'a> {
    roles: &'a HashSet<u64>,
    members: &'a HashSet<u64>,
}

/// The guild's channels (not threads), with overwrites and messages, in position order.
fn channels(
    world: &mut World,
    out: &mut Out,
    state: &GuildState,
    access: &Access<'_>,
) -> Vec<Value> {
    let mut chosen: Vec<(&u64, &Object, u8)> = Vec::new();
    for (id, channel) in &state.channels {
        let kind = number::<u8>(channel, "type").unwrap_or(0);
        if channel_type::is_thread(kind) {
            continue;
        }
        if !channel_type::is_guild_creatable(kind) {
            world.notes.add(format!(
                "channels of type {kind} skipped (not a fixture channel type)"
            ));
            continue;
        }
        if text(channel, "name").is_none_or(|n| n.trim().is_empty()) {
            world.notes.add("channels without a name skipped");
            continue;
        }
        chosen.push((id, channel, kind));
    }
    chosen.sort_by_key(|(id, channel, _)| {
        (
            channel.get("position").and_then(Value::as_i64).unwrap_or(0),
            **id,
        )
    });
    let categories: HashSet<u64> = chosen
        .iter()
        .filter(|(_, _, kind)| *kind == channel_type::GUILD_CATEGORY)
        .map(|(id, _, _)| **id)
        .collect();
    let mut list = Vec::new();
    for (position, (id, channel, kind)) in chosen.into_iter().enumerate() {
        let mut entry = Map::new();
        entry.insert("id".into(), json!(id.to_string()));
        entry.insert(
            "name".into(),
            json!(fit(&text(channel, "name").unwrap_or_default(), 1, 100)),
        );
        entry.insert("type".into(), json!(kind));
        entry.insert("position".into(), json!(position));
        let parent = id_at(&Value::Object(channel.clone()), "parent_id");
        if let Some(parent) =
            parent.filter(|p| categories.contains(p) && kind != channel_type::GUILD_CATEGORY)
        {
            entry.insert("parent_id".into(), json!(parent.to_string()));
        }
        put(&mut entry, "topic", text(channel, "topic").map(Value::from));
        if flag(channel, "nsfw") {
            entry.insert("nsfw".into(), json!(true));
        }
        for key in ["rate_limit_per_user", "bitrate", "user_limit"] {
            put(
                &mut entry,
                key,
                number::<u32>(channel, key).map(Value::from),
            );
        }
        entry.insert(
            "permission_overwrites".into(),
            Value::Array(overwrites(world, channel, access)),
        );
        if matches!(kind, channel_type::GUILD_FORUM | channel_type::GUILD_MEDIA) {
            let tags = forum_tags(world, channel);
            if !tags.is_empty() {
                entry.insert("available_tags".into(), Value::Array(tags));
            }
        }
        out.channels.insert(*id);
        if channel_type::is_textual(kind) {
            let messages = messages(world, out, *id, None);
            entry.insert("messages".into(), Value::Array(messages));
        }
        list.push(Value::Object(entry));
    }
    list
}

/// A forum or media channel's tags the fixture takes (a name of 1 to 20 characters, at most 20).
fn forum_tags(world: &mut World, channel: &Object) -> Vec<Value> {
    let mut tags = Vec::new();
    let recorded = channel.get("available_tags").and_then(Value::as_array);
    for tag in recorded.into_iter().flatten() {
        let Some(tag) = tag.as_object() else { continue };
        let as_value = Value::Object(tag.clone());
        let name = text(tag, "name").filter(|n| (1..=20).contains(&n.trim().chars().count()));
        let (Some(id), Some(name)) = (id_at(&as_value, "id"), name) else {
            world
                .notes
                .add("forum tags without an id or a usable name skipped");
            continue;
        };
        if tags.len() == 20 {
            world.notes.add("forum tags past the 20th skipped");
            continue;
        }
        let mut entry = json!({"id": id.to_string(), "name": name});
        if flag(tag, "moderated") {
            entry["moderated"] = json!(true);
        }
        if let Some(emoji) = id_at(&as_value, "emoji_id") {
            entry["emoji_id"] = json!(emoji.to_string());
        }
        put_in(&mut entry, "emoji_name", text(tag, "emoji_name"));
        tags.push(entry);
    }
    tags
}

/// Sets `key` of a JSON object when there is a text.
fn put_in(target: &mut Value, key: &str, value: Option<String>) {
    if let (Some(map), Some(value)) = (target.as_object_mut(), value) {
        map.insert(key.into(), Value::String(value));
    }
}

/// A channel's overwrites whose targets exist in the fixture.
fn overwrites(world: &mut World, channel: &Object, access: &Access<'_>) -> Vec<Value> {
    let mut list = Vec::new();
    for overwrite in channel
        .get("permission_overwrites")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(target) = id_at(overwrite, "id") else {
            continue;
        };
        let kind = match overwrite.get("type") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) if s == "role" => Some(0),
            Some(Value::String(s)) if s == "member" => Some(1),
            _ => None,
        };
        let known = match kind {
            Some(0) => access.roles.contains(&target),
            Some(1) => access.members.contains(&target),
            _ => false,
        };
        if !known {
            world
                .notes
                .add("permission overwrites for roles or members that were not recorded skipped");
            continue;
        }
        let bits = |key: &str| match overwrite.get(key) {
            Some(Value::String(s)) if s.parse::<u64>().is_ok() => json!(s),
            Some(Value::Number(n)) => json!(n.as_u64().unwrap_or(0).to_string()),
            _ => json!("0"),
        };
        list.push(json!({"id": target.to_string(), "type": kind, "allow": bits("allow"), "deny": bits("deny")}));
    }
    list
}

/// The messages of a channel, thread or DM (`people`: a DM's two people, who alone may post).
fn messages(
    world: &mut World,
    out: &mut Out,
    channel: u64,
    people: Option<[u64; 2]>,
) -> Vec<Value> {
    let Some(recorded) = world.messages.remove(&channel) else {
        return Vec::new();
    };
    let mut list = Vec::new();
    for (id, message) in recorded {
        let value = Value::Object(message);
        let Some(author) = value.get("author").and_then(|a| id_at(a, "id")) else {
            world
                .notes
                .add("messages without an author skipped (only edits were recorded)");
            continue;
        };
        let webhook = id_at(&value, "webhook_id").map(|hook| webhook_author(hook, &value));
        if webhook.is_some() && people.is_some() {
            world.notes.add("webhook messages outside guilds skipped");
            continue;
        }
        if webhook.is_none() && people.is_some_and(|p| !p.contains(&author)) {
            world
                .notes
                .add("DM messages by someone outside the DM skipped");
            continue;
        }
        let Some(mut message) = message_entry(world, id, author, &value) else {
            continue;
        };
        match webhook {
            Some(hook) => {
                message["webhook"] = hook;
                if let Some(entry) = message.as_object_mut() {
                    entry.remove("author_id");
                }
            }
            None => {
                out.users.insert(author);
            }
        }
        list.push(message);
    }
    out.count("messages", list.len());
    list
}

/// The author a webhook message shows (the webhook's id, name and avatar).
fn webhook_author(hook: u64, message: &Value) -> Value {
    let author = message.get("author").and_then(Value::as_object);
    let name = author
        .and_then(|a| text(a, "username"))
        .unwrap_or_else(|| "Webhook".into());
    let mut entry = json!({"id": hook.to_string(), "username": fit(&name, 1, 80)});
    if let Some(avatar) = author.and_then(|a| text(a, "avatar")) {
        entry["avatar"] = json!(avatar);
    }
    entry
}

/// One message in the fixture's shape, or nothing (with a note) when it cannot be one.
fn message_entry(world: &mut World, id: u64, author: u64, value: &Value) -> Option<Value> {
    let Value::Object(message) = value else {
        return None;
    };
    let kind = message.get("type").and_then(Value::as_u64).unwrap_or(0);
    let Some(kind) = u8::try_from(kind)
        .ok()
        .filter(|k| MESSAGE_TYPES.contains(k))
    else {
        world
            .notes
            .add(format!("messages of unknown type {kind} skipped"));
        return None;
    };
    let system = !USER_MESSAGE_TYPES.contains(&kind);
    let content = text(message, "content").unwrap_or_default();
    let objects = |key: &str| -> Vec<Value> {
        message
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.is_object())
            .cloned()
            .collect()
    };
    let (attachments, embeds, stickers) = (
        objects("attachments"),
        objects("embeds"),
        objects("sticker_items"),
    );
    if content.chars().count() > 2000 {
        world
            .notes
            .add("messages longer than 2000 characters skipped");
        return None;
    }
    if content.trim().is_empty()
        && !system
        && attachments.is_empty()
        && embeds.is_empty()
        && stickers.is_empty()
    {
        world
            .notes
            .add("messages without content, attachments, embeds or stickers skipped");
        return None;
    }
    let mut entry = Map::new();
    entry.insert("id".into(), json!(id.to_string()));
    entry.insert("author_id".into(), json!(author.to_string()));
    entry.insert("content".into(), json!(content));
    if kind != 0 {
        entry.insert("type".into(), json!(kind));
    }
    if flag(message, "pinned") {
        entry.insert("pinned".into(), json!(true));
    }
    let edited = text(message, "edited_timestamp").filter(|t| parse_iso8601_ms(t).is_some());
    put(&mut entry, "edited_timestamp", edited.map(Value::from));
    for (key, list) in [
        ("attachments", attachments),
        ("embeds", embeds),
        ("sticker_items", stickers),
    ] {
        if !list.is_empty() {
            entry.insert(key.into(), Value::Array(list));
        }
    }
    Some(Value::Object(entry))
}

/// The threads under channels the fixture has, with their messages.
fn threads(
    world: &mut World,
    out: &mut Out,
    state: &GuildState,
    channels: &[Value],
    members: &HashSet<u64>,
) -> Vec<Value> {
    let parent_kinds: BTreeMap<u64, u64> = channels
        .iter()
        .filter_map(|c| Some((id_at(c, "id")?, c.get("type")?.as_u64()?)))
        .collect();
    let parent_tags: BTreeMap<u64, Vec<u64>> = channels
        .iter()
        .filter_map(|c| {
            let tags = c.get("available_tags")?.as_array()?;
            Some((
                id_at(c, "id")?,
                tags.iter().filter_map(|t| id_at(t, "id")).collect(),
            ))
        })
        .collect();
    let mut list = Vec::new();
    for (id, thread) in &state.channels {
        let kind = number::<u8>(thread, "type").unwrap_or(0);
        if !channel_type::is_thread(kind) {
            continue;
        }
        let as_value = Value::Object(thread.clone());
        let parent = id_at(&as_value, "parent_id").and_then(|p| Some((p, *parent_kinds.get(&p)?)));
        let fits = |parent_kind: u64| match u8::try_from(parent_kind).unwrap_or(0) {
            channel_type::GUILD_ANNOUNCEMENT => kind == channel_type::ANNOUNCEMENT_THREAD,
            channel_type::GUILD_TEXT => kind != channel_type::ANNOUNCEMENT_THREAD,
            channel_type::GUILD_FORUM | channel_type::GUILD_MEDIA => {
                kind == channel_type::PUBLIC_THREAD
            }
            _ => false,
        };
        let (Some((parent, _)), Some(name)) =
            (parent.filter(|(_, k)| fits(*k)), text(thread, "name"))
        else {
            world
                .notes
                .add("threads whose parent channel was not recorded skipped");
            continue;
        };
        let meta = thread
            .get("thread_metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut entry = Map::new();
        entry.insert("id".into(), json!(id.to_string()));
        entry.insert("parent_id".into(), json!(parent.to_string()));
        entry.insert("name".into(), json!(fit(&name, 1, 100)));
        entry.insert("type".into(), json!(kind));
        let owner = id_at(&as_value, "owner_id").filter(|o| members.contains(o));
        put(&mut entry, "owner_id", owner.map(|o| json!(o.to_string())));
        for key in ["archived", "locked"] {
            if flag(&meta, key) {
                entry.insert(key.into(), json!(true));
            }
        }
        let duration = meta
            .get("auto_archive_duration")
            .and_then(Value::as_u64)
            .filter(|d| ARCHIVE_DURATIONS.contains(d));
        put(
            &mut entry,
            "auto_archive_duration",
            duration.map(Value::from),
        );
        put(
            &mut entry,
            "rate_limit_per_user",
            number::<u32>(thread, "rate_limit_per_user").map(Value::from),
        );
        let offered = parent_tags.get(&parent).map_or(&[][..], Vec::as_slice);
        let applied: Vec<Value> = thread
            .get("applied_tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| snowflake(Some(t)))
            .filter(|t| offered.contains(t))
            .take(5)
            .map(|t| json!(t.to_string()))
            .collect();
        if !applied.is_empty() {
            entry.insert("applied_tags".into(), Value::Array(applied));
        }
        out.channels.insert(*id);
        entry.insert(
            "messages".into(),
            Value::Array(messages(world, out, *id, None)),
        );
        list.push(Value::Object(entry));
    }
    list
}

/// The custom emojis and stickers.
fn expressions(world: &mut World, state: &GuildState) -> (Vec<Value>, Vec<Value>) {
    let mut emojis = Vec::new();
    for (id, emoji) in &state.emojis {
        match text(emoji, "name") {
            Some(name) => emojis.push(
                json!({"id": id.to_string(), "name": name, "animated": flag(emoji, "animated")}),
            ),
            None => world.notes.add("emojis without a name skipped"),
        }
    }
    let mut stickers = Vec::new();
    for (id, sticker) in &state.stickers {
        let name = text(sticker, "name").filter(|n| (2..=30).contains(&n.chars().count()));
        let format = number::<u8>(sticker, "format_type").filter(|f| (1..=4).contains(f));
        let (Some(name), Some(format)) = (name, format) else {
            world
                .notes
                .add("stickers without a usable name or format skipped");
            continue;
        };
        let mut entry = json!({"id": id.to_string(), "name": name, "format_type": format,
                               "tags": text(sticker, "tags").unwrap_or_default()});
        if let Some(description) = text(sticker, "description") {
            entry["description"] = json!(description);
        }
        stickers.push(entry);
    }
    (emojis, stickers)
}

/// The DMs (one per pair of people, never between two bots), with their messages.
fn dms(world: &mut World, out: &mut Out) -> Vec<Value> {
    let mut pairs = HashSet::new();
    let mut list = Vec::new();
    let dms: Vec<(u64, super::ingest::Dm)> = world.dms.iter().map(|(id, dm)| (*id, *dm)).collect();
    for (id, dm) in dms {
        let is_bot = |user: u64| world.users.get(&user).is_some_and(|u| flag(u, "bot"));
        if is_bot(dm.owner) && is_bot(dm.other) {
            world.notes.add("DMs between two bots skipped");
            continue;
        }
        if !pairs.insert((dm.owner.min(dm.other), dm.owner.max(dm.other))) {
            world
                .notes
                .add("second DMs between the same two people skipped");
            continue;
        }
        out.users.insert(dm.owner);
        out.users.insert(dm.other);
        out.channels.insert(id);
        let messages = messages(world, out, id, Some([dm.owner, dm.other]));
        list.push(json!({
            "id": id.to_string(),
            "recipients": [dm.owner.to_string(), dm.other.to_string()],
            "messages": messages,
        }));
    }
    list
}

/// The group DMs (2 to 10 people, the owner among them), with their messages.
fn group_dms(world: &mut World, out: &mut Out) -> Vec<Value> {
    let groups: Vec<(u64, super::ingest::GroupDm)> = world
        .group_dms
        .iter()
        .map(|(id, group)| (*id, group.clone()))
        .collect();
    let mut list = Vec::new();
    for (id, group) in groups {
        let people: Vec<u64> = group.people.iter().copied().collect();
        let owner = id_at(&Value::Object(group.props.clone()), "owner_id")
            .filter(|o| people.contains(o))
            .or_else(|| people.iter().copied().find(|p| world.accounts.contains(p)));
        let (Some(owner), 2..=10) = (owner, people.len()) else {
            world
                .notes
                .add("group DMs whose owner or 2 to 10 people are not known skipped");
            continue;
        };
        out.users.extend(people.iter().copied());
        out.channels.insert(id);
        let messages = group_messages(world, out, id, &people);
        let mut entry = json!({
            "id": id.to_string(),
            "owner_id": owner.to_string(),
            "recipients": people.iter().map(u64::to_string).collect::<Vec<_>>(),
            "messages": messages,
        });
        if let Some(name) = text(&group.props, "name") {
            entry["name"] = json!(fit(&name, 1, 100));
        }
        if let Some(icon) = text(&group.props, "icon") {
            entry["icon"] = json!(icon);
        }
        list.push(entry);
    }
    list
}

/// A group DM's messages by its people.
fn group_messages(world: &mut World, out: &mut Out, channel: u64, people: &[u64]) -> Vec<Value> {
    let Some(recorded) = world.messages.remove(&channel) else {
        return Vec::new();
    };
    let mut list = Vec::new();
    for (id, message) in recorded {
        let value = Value::Object(message);
        let author = value.get("author").and_then(|a| id_at(a, "id"));
        let Some(author) = author.filter(|a| people.contains(a)) else {
            world
                .notes
                .add("group DM messages by someone outside the group skipped");
            continue;
        };
        if let Some(entry) = message_entry(world, id, author, &value) {
            list.push(entry);
        }
    }
    out.count("messages", list.len());
    list
}

/// Relationships of the recorded accounts in the fixture's terms (friends once per pair).
fn relationships(world: &mut World, out: &mut Out) -> Vec<Value> {
    let mut list = Vec::new();
    let mut friends = HashSet::new();
    let recorded: Vec<((u64, u64), Object)> = world
        .relationships
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    for ((account, other), relationship) in recorded {
        let kind = relationship
            .get("type")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let (from, to, kind) = match kind {
            1 | 2 | 4 => (account, other, kind),
            3 => (other, account, 4),
            _ => {
                world
                    .notes
                    .add(format!("relationships of type {kind} skipped"));
                continue;
            }
        };
        if account == other || (kind == 1 && !friends.insert((from.min(to), from.max(to)))) {
            continue;
        }
        out.users.insert(account);
        out.users.insert(other);
        let mut entry =
            json!({"user_id": from.to_string(), "other_id": to.to_string(), "type": kind});
        if let Some(nickname) = text(&relationship, "nickname").filter(|_| from == account) {
            entry["nickname"] = json!(nickname);
        }
        list.push(entry);
    }
    list
}

/// The accounts' read states of channels the fixture has.
fn read_states(world: &World, out: &Out) -> Vec<Value> {
    let mut list = Vec::new();
    for ((account, channel), state) in &world.read_states {
        let last = id_at(&Value::Object(state.clone()), "last_message_id");
        if let Some(last) = last.filter(|_| out.channels.contains(channel)) {
            let mentions = state
                .get("mention_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            list.push(
                json!({"user_id": account.to_string(), "channel_id": channel.to_string(),
                             "last_message_id": last.to_string(), "mention_count": mentions}),
            );
        }
    }
    list
}
