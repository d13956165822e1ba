//! READY for user accounts, shaped by the session's capabilities as userdoccers' READY table
//! and footnotes describe: full guilds (or the CLIENT_STATE_V2 shape), deduplicated users and
//! `merged_members`, private channels, relationships, versioned read states and guild settings,
//! the settings proto or legacy settings, sessions; and READY_SUPPLEMENTAL under
//! PRIORITIZED_READY_PAYLOAD.
use std::collections::HashMap;
use std::ops::Range;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::ready_channels;
use super::ready_channels::ChannelDigest;
use super::ready_guilds::{GuildDigest, ReadyGuilds, Rendered, Shape, Template};
use super::registry::Registry;
use crate::backend::model::{channel_type, Guild, Member, User};
use crate::backend::render;
use crate::backend::snowflake::Snowflake;
use crate::backend::store::{Store, StoreError};
use crate::backend::user_state::{relationship_type, settings_proto_type, UserGuildSettings};
use crate::gateway::capabilities::{self as caps, Capabilities};

/// Guilds with more members than this are `large`.
const LARGE: usize = 250;
/// Fields of a gateway guild that stay outside `properties` under CLIENT_STATE_V2.
const OUTSIDE_PROPERTIES: [&str; 5] = ["roles", "emojis", "stickers", "channels", "threads"];

/// What user READY needs to know about the session.
pub(crate) struct UserReadyInfo<'a> {
    /// Gateway version of the connection.
    pub version: u8,
    /// The user.
    pub user: &'a User,
    /// READY's `session_id`.
    pub session_id: &'a str,
    /// READY's `resume_gateway_url`.
    pub resume_gateway_url: &'a str,
    /// The user's guilds.
    pub guild_ids: &'a [Snowflake],
    /// The session's capabilities.
    pub capabilities: Capabilities,
    /// READY's `sessions` array.
    pub sessions: Value,
    /// `client_state.guild_versions` of IDENTIFY: the guild versions the client holds.
    pub guild_versions: &'a HashMap<Snowflake, u64>,
}

/// Where user READY reads from.
pub(crate) struct ReadyContext<'a> {
    /// The store.
    pub store: &'a Store,
    /// Presences and voice states.
    pub registry: &'a Registry,
    /// The rendered guilds.
    pub guilds: &'a ReadyGuilds,
    /// The session.
    pub info: &'a UserReadyInfo<'a>,
}

/// READY and, under PRIORITIZED_READY_PAYLOAD, READY_SUPPLEMENTAL.
pub(crate) struct UserReady {
    /// READY's payload, as JSON.
    pub ready: Vec<u8>,
    /// READY_SUPPLEMENTAL's payload, when the capabilities ask for it.
    pub supplemental: Option<Value>,
}

/// User objects met while building, for the `users` array.
struct Users<'a> {
    store: &'a Store,
    dedupe: bool,
    seen: HashMap<Snowflake, Value>,
    order: Vec<Snowflake>,
}

impl Users<'_> {
    /// The user object of `id`, recorded for `users`.
    fn note(&mut self, id: Snowflake) -> Result<Value, StoreError> {
        if let Some(user) = self.seen.get(&id) {
            return Ok(user.clone());
        }
        let user = render::user_by_id(self.store, id)?;
        self.seen.insert(id, user.clone());
        self.order.push(id);
        Ok(user)
    }

    fn into_array(mut self) -> Value {
        Value::Array(
            self.order
                .iter()
                .filter_map(|id| self.seen.remove(id))
                .collect(),
        )
    }
}

/// A member for READY: with `user_id` when deduplicating, else with its `user`.
fn ready_member(users: &mut Users<'_>, member: &Member) -> Result<Value, StoreError> {
    let mut out = render::member_partial(member);
    if users.dedupe {
        users.note(member.user_id)?;
        out["user_id"] = json!(member.user_id);
    } else {
        out["user"] = users.note(member.user_id)?;
    }
    Ok(out)
}

/// Keys a READY guild leaves open for the session: the viewer's `joined_at`, the live voice
/// states, the viewer's member.
const HOLES: [&str; 3] = ["joined_at", "voice_states", "members"];
/// Keys a partial guild (CLIENT_STATE_V2, version the client holds) omits.
const NOT_IN_PARTIAL: [&str; 7] = [
    "members",
    "channels",
    "presences",
    "voice_states",
    "activity_instances",
    "stage_instances",
    "guild_scheduled_events",
];

/// Writes `list` of channels as a JSON array to `out`; returns their digests and where each
/// one's JSON is in `out`.
fn write_channels(
    store: &Store,
    list: &[std::sync::Arc<crate::backend::model::Channel>],
    out: &mut Vec<u8>,
) -> Result<Vec<(ChannelDigest, Range<usize>)>, StoreError> {
    let mut written = Vec::with_capacity(list.len());
    out.push(b'[');
    for (i, channel) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let start = out.len();
        let digest = ready_channels::write(store, channel, out)?;
        written.push((digest, start..out.len()));
    }
    out.push(b']');
    Ok(written)
}

/// `(id, hash of its JSON)` of each object of a JSON array (roles, emojis).
fn digest_array(value: Option<&Value>) -> Result<Vec<(Snowflake, u64)>, StoreError> {
    let mut out = Vec::new();
    for item in value.and_then(Value::as_array).into_iter().flatten() {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .and_then(Snowflake::parse)
            .unwrap_or_default();
        out.push((id, ready_channels::hash_bytes(&serde_json::to_vec(item)?)));
    }
    Ok(out)
}

/// What changed in one kind of item (roles, emojis) since `then`: the items of `now` that
/// are new or different, and the ids that went.
fn changed_items(
    items: Option<&Value>,
    now: &[(Snowflake, u64)],
    then: &[(Snowflake, u64)],
) -> (Vec<Value>, Vec<Snowflake>) {
    let items = items.and_then(Value::as_array);
    let written = now
        .iter()
        .enumerate()
        .filter(|(_, item)| !then.contains(item))
        .filter_map(|(i, _)| items.and_then(|items| items.get(i)).cloned())
        .collect();
    let deleted = then
        .iter()
        .filter(|(id, _)| !now.iter().any(|(now_id, _)| now_id == id))
        .map(|(id, _)| *id)
        .collect();
    (written, deleted)
}

/// The `partial_updates` of a guild the client holds as `then` (JSON bytes: the changed
/// channels are copied from `channels_json`), and its `channel_updates`. `then` is `None`
/// when the client holds the current version: nothing changed.
fn partial_updates(
    now: &GuildDigest,
    then: Option<&GuildDigest>,
    channels_json: &[u8],
    ranges: &[Range<usize>],
    roles: Option<&Value>,
    emojis: Option<&Value>,
) -> Result<(Vec<u8>, Value), StoreError> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"channels\":[");
    let mut channel_updates = Vec::new();
    let mut rest = json!({
        "deleted_channel_ids": [],
        "emojis": [],
        "deleted_emoji_ids": [],
        "roles": [],
        "deleted_role_ids": [],
        "stickers": [],
        "deleted_sticker_ids": [],
    });
    if let Some(then) = then {
        let mut first = true;
        for (digest, range) in now.channels.iter().zip(ranges) {
            match then.channels.iter().find(|c| c.id == digest.id) {
                // The same channel: only its unread state may have moved.
                Some(old) if old.hash == digest.hash => {
                    if let Some(unread) = digest
                        .unread
                        .as_ref()
                        .filter(|_| old.unread != digest.unread)
                    {
                        channel_updates.push(unread.to_value(digest.id));
                    }
                }
                _ => {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(channels_json.get(range.clone()).unwrap_or_default());
                }
            }
        }
        let deleted_channels: Vec<Snowflake> = then
            .channels
            .iter()
            .filter(|old| !now.channels.iter().any(|c| c.id == old.id))
            .map(|old| old.id)
            .collect();
        let (roles, deleted_roles) = changed_items(roles, &now.roles, &then.roles);
        let (emojis, deleted_emojis) = changed_items(emojis, &now.emojis, &then.emojis);
        rest["deleted_channel_ids"] = json!(deleted_channels);
        rest["roles"] = Value::Array(roles);
        rest["deleted_role_ids"] = json!(deleted_roles);
        rest["emojis"] = Value::Array(emojis);
        rest["deleted_emoji_ids"] = json!(deleted_emojis);
    }
    out.push(b']');
    // `rest` as `,"key":value...}`, after the channels.
    let rest = serde_json::to_vec(&rest)?;
    out.push(b',');
    out.extend_from_slice(rest.get(1..).unwrap_or(b"}"));
    Ok((out, Value::Array(channel_updates)))
}

/// A guild's channels and its threads, shared from the store's cache.
type SharedChannels = Vec<std::sync::Arc<crate::backend::model::Channel>>;
fn guild_channels(
    store: &Store,
    guild_id: Snowflake,
) -> Result<(SharedChannels, SharedChannels), StoreError> {
    let mut threads = Vec::new();
    let mut channels = Vec::new();
    for &id in store.guild_channels.ids_shared(guild_id)?.iter() {
        if let Some(channel) = store.channels.get_shared(id)? {
            if channel_type::is_thread(channel.kind) {
                threads.push(channel);
            } else {
                channels.push(channel);
            }
        }
    }
    Ok((channels, threads))
}

/// One guild for READY in `shape` (the full gateway guild, or its CLIENT_STATE_V2 form; the
/// partial form when the shape says the client holds a version), with the session's parts
/// left as holes (see [`HOLES`]), and its digest.
fn ready_guild(
    store: &Store,
    guild: &Guild,
    shape: Shape,
    version: u64,
    held: Option<&GuildDigest>,
) -> Result<Rendered, StoreError> {
    let Value::Object(mut properties) = render::guild(store, guild, false)? else {
        let stub = json!({"id": guild.id, "unavailable": true});
        let template = Template::of(stub.as_object().unwrap_or(&Map::new()), &[])?;
        return Ok(Rendered {
            template,
            digest: GuildDigest::default(),
        });
    };
    let (channels, threads) = guild_channels(store, guild.id)?;
    let mut channels_json = Vec::with_capacity(channels.len() * 256 + 2);
    let (channel_digests, ranges): (Vec<_>, Vec<_>) =
        write_channels(store, &channels, &mut channels_json)?
            .into_iter()
            .unzip();
    let mut threads_json = Vec::with_capacity(threads.len() * 256 + 2);
    write_channels(store, &threads, &mut threads_json)?;
    let digest = GuildDigest {
        channels: channel_digests,
        roles: digest_array(properties.get("roles"))?,
        emojis: digest_array(properties.get("emojis"))?,
    };
    let mut partial_json = Vec::new();
    let mut channel_updates = Value::Null;
    if shape.partial.is_some() {
        (partial_json, channel_updates) = partial_updates(
            &digest,
            held,
            &channels_json,
            &ranges,
            properties.get("roles"),
            properties.get("emojis"),
        )?;
    }
    let member_count = store.member_count(guild.id);
    let mut out = Map::new();
    out.insert("id".into(), json!(guild.id));
    // Written as bytes (see `ready_channels`); these keep the keys' places.
    out.insert("channels".into(), Value::Null);
    out.insert("threads".into(), Value::Null);
    out.insert("joined_at".into(), Value::Null);
    out.insert("large".into(), json!(member_count > LARGE));
    out.insert("lazy".into(), json!(true));
    out.insert("member_count".into(), json!(member_count));
    out.insert(
        "premium_subscription_count".into(),
        json!(guild.premium_subscription_count),
    );
    out.insert("presences".into(), json!([]));
    out.insert("stage_instances".into(), json!([]));
    out.insert("guild_scheduled_events".into(), json!([]));
    out.insert("application_command_counts".into(), json!({}));
    if !shape.prioritized {
        out.insert("voice_states".into(), Value::Null);
        out.insert("activity_instances".into(), json!([]));
    }
    if shape.v2 {
        for key in OUTSIDE_PROPERTIES {
            if let Some(value) = properties.remove(key) {
                out.insert(key.into(), value);
            }
        }
        out.insert("properties".into(), Value::Object(properties));
        let mode = if shape.partial.is_some() {
            "partial"
        } else {
            "full"
        };
        out.insert("data_mode".into(), json!(mode));
        out.insert("version".into(), json!(version));
    } else {
        for (key, value) in properties {
            out.entry(key).or_insert(value);
        }
        out.insert("soundboard_sounds".into(), json!([]));
    }
    if !shape.dedupe {
        out.insert("members".into(), Value::Null);
    }
    if shape.partial.is_some() {
        for key in NOT_IN_PARTIAL {
            out.shift_remove(key);
        }
        // Written as bytes below.
        out.insert("partial_updates".into(), Value::Null);
        out.insert("channel_updates".into(), channel_updates);
        out.insert("unable_to_sync_deletes".into(), json!(false));
    }
    let template = Template::of_with(&out, &HOLES, |key| match key {
        "channels" => Some(channels_json.as_slice()),
        "threads" => Some(threads_json.as_slice()),
        "partial_updates" => Some(partial_json.as_slice()),
        _ => None,
    })?;
    Ok(Rendered { template, digest })
}

/// READY's guilds as a JSON array written to `out`, the members (under
/// DEDUPE_USER_OBJECTS) and READY_SUPPLEMENTAL's guilds (under PRIORITIZED_READY_PAYLOAD);
/// returns how many guilds were written.
fn write_guilds(
    context: &ReadyContext<'_>,
    users: &mut Users<'_>,
    merged_members: &mut Vec<Value>,
    supplemental_guilds: &mut Vec<Value>,
    out: &mut Vec<u8>,
) -> Result<usize, StoreError> {
    let (store, info) = (context.store, context.info);
    let capabilities = info.capabilities;
    let shape = Shape {
        v2: capabilities.has(caps::CLIENT_STATE_V2),
        prioritized: capabilities.has(caps::PRIORITIZED_READY_PAYLOAD),
        dedupe: users.dedupe,
        partial: None,
    };
    let mut count = 0;
    out.push(b'[');
    for guild_id in info.guild_ids {
        let known = info.guild_versions.get(guild_id).copied();
        let template =
            context
                .guilds
                .template(*guild_id, shape, known, |version, shape, held| match store
                    .guild(*guild_id)?
                {
                    Some(guild) => ready_guild(store, &guild, shape, version, held).map(Some),
                    None => Ok(None),
                })?;
        let Some(template) = template else {
            continue;
        };
        let own = store.member(*guild_id, info.user.id)?;
        let members: Vec<Value> = own
            .iter()
            .map(|m| ready_member(users, m))
            .collect::<Result<_, _>>()?;
        let voice = |store: &Store| -> Result<Value, StoreError> {
            let states: Vec<Value> = context
                .registry
                .voice_states(*guild_id)
                .iter()
                .map(|v| crate::backend::voice::render(store, v, false))
                .collect::<Result<_, _>>()?;
            Ok(Value::Array(states))
        };
        if count > 0 {
            out.push(b',');
        }
        template.write(out, |key, out| {
            let value = match key {
                "joined_at" => json!(own.as_ref().map(|m| &m.joined_at)),
                "voice_states" => voice(store)?,
                _ => Value::Array(members.clone()),
            };
            serde_json::to_writer(out, &value).map_err(StoreError::from)
        })?;
        if shape.dedupe {
            merged_members.push(Value::Array(members));
        }
        if shape.prioritized {
            supplemental_guilds.push(
                json!({"id": guild_id, "voice_states": voice(store)?, "activity_instances": []}),
            );
        }
        count += 1;
    }
    out.push(b']');
    Ok(count)
}

/// Wraps `entries` in the versioned shape when `versioned`.
fn versioned(entries: Vec<Value>, versioned: bool, version: u64) -> Value {
    if versioned {
        json!({"entries": entries, "partial": false, "version": version})
    } else {
        Value::Array(entries)
    }
}

/// The user's DMs and group DMs, without the viewer among the recipients.
fn private_channels(
    store: &Store,
    users: &mut Users<'_>,
    viewer: Snowflake,
) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    for channel_id in store.user_dms.ids(viewer)? {
        let Some(channel) = store.channel(channel_id)? else {
            continue;
        };
        let mut value = render::channel(store, &channel)?;
        let others: Vec<Snowflake> = channel
            .recipient_ids
            .iter()
            .flatten()
            .copied()
            .filter(|id| *id != viewer)
            .collect();
        if let Some(object) = value.as_object_mut() {
            if users.dedupe {
                object.remove("recipients");
                for id in &others {
                    users.note(*id)?;
                }
                object.insert("recipient_ids".into(), json!(others));
            } else {
                let recipients = others
                    .iter()
                    .map(|id| users.note(*id))
                    .collect::<Result<Vec<_>, _>>()?;
                object.insert("recipients".into(), Value::Array(recipients));
            }
        }
        out.push(value);
    }
    Ok(out)
}

/// The user's relationships (with `user_id` when deduplicating, else `user`).
fn relationships(
    store: &Store,
    users: &mut Users<'_>,
    viewer: Snowflake,
) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    for relationship in store.account.relationships.values(viewer)? {
        let mut value = serde_json::to_value(&relationship).unwrap_or_default();
        if users.dedupe {
            users.note(relationship.id)?;
            value["user_id"] = json!(relationship.id);
        } else {
            value["user"] = users.note(relationship.id)?;
        }
        out.push(value);
    }
    Ok(out)
}

/// Ids of the user's friends.
pub(crate) fn friend_ids(store: &Store, user_id: Snowflake) -> Vec<Snowflake> {
    store
        .account
        .relationships
        .values(user_id)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.kind == relationship_type::FRIEND)
        .map(|r| r.id)
        .collect()
}

/// Presences of the user's friends who are not offline (with `user_id` when deduplicating).
fn friend_presences(store: &Store, registry: &Registry, viewer: Snowflake, dedupe: bool) -> Value {
    let presences: Vec<Value> = friend_ids(store, viewer)
        .into_iter()
        .filter_map(|id| {
            let presence = registry.presence(id)?;
            let mut value = super::builders::presence(id, None, &presence);
            if dedupe {
                if let Some(object) = value.as_object_mut() {
                    object.remove("user");
                    object.insert("user_id".into(), json!(id));
                }
            }
            Some(value)
        })
        .collect();
    Value::Array(presences)
}

/// The account fields: settings, read states, guild settings, notes.
fn account_fields(
    store: &Store,
    user: &User,
    capabilities: Capabilities,
    guild_ids: &[Snowflake],
    ready: &mut Map<String, Value>,
) -> Result<(), StoreError> {
    let versions = store.account.versions.get(user.id)?.unwrap_or_default();
    let read_states: Vec<Value> = store
        .account
        .read_states
        .values(user.id)?
        .iter()
        .filter(|r| {
            capabilities.has(caps::NON_CHANNEL_READ_STATES)
                || r.read_state_type == crate::backend::user_state::read_state_type::CHANNEL
        })
        .map(|r| serde_json::to_value(r).unwrap_or_default())
        .collect();
    ready.insert(
        "read_state".into(),
        versioned(
            read_states,
            capabilities.has(caps::VERSIONED_READ_STATES),
            versions.read_state,
        ),
    );
    let stored = store.account.guild_settings.values(user.id)?;
    let mut settings: Vec<Value> = stored
        .iter()
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .collect();
    for guild_id in guild_ids {
        if !stored.iter().any(|s| s.guild_id == Some(*guild_id)) {
            let default = UserGuildSettings {
                guild_id: Some(*guild_id),
                ..UserGuildSettings::default()
            };
            settings.push(serde_json::to_value(&default).unwrap_or_default());
        }
    }
    ready.insert(
        "user_guild_settings".into(),
        versioned(
            settings,
            capabilities.has(caps::VERSIONED_USER_GUILD_SETTINGS),
            versions.user_guild_settings,
        ),
    );
    if capabilities.has(caps::USER_SETTINGS_PROTO) {
        let proto = store
            .account
            .settings_proto
            .get((
                user.id,
                Snowflake(u64::from(settings_proto_type::PRELOADED)),
            ))?
            .unwrap_or_default();
        ready.insert(
            "user_settings_proto".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(proto)),
        );
    } else {
        let legacy = store.account.legacy_settings.get(user.id)?;
        ready.insert(
            "user_settings".into(),
            legacy.unwrap_or_else(|| json!({"locale": user.locale, "status": "online"})),
        );
    }
    Ok(())
}

/// READY's `notes`: the user's notes about every user the payload mentions.
fn notes(store: &Store, owner: Snowflake, users: &Users<'_>) -> Result<Value, StoreError> {
    let mut notes = Map::new();
    for id in &users.order {
        if let Some(note) = store.account.notes.get((owner, *id))? {
            notes.insert(id.to_string(), json!(note));
        }
    }
    Ok(Value::Object(notes))
}

/// The fixed per-session fields every user READY carries.
fn session_fields(info: &UserReadyInfo<'_>, ready: &mut Map<String, Value>) {
    let fields = json!({
        "_trace": ["[\"discord-mitm-gateway\",{\"micros\":0}]"],
        "v": info.version,
        "user": render::user_private(info.user),
        "session_id": info.session_id,
        "session_type": "normal",
        "sessions": info.sessions,
        "resume_gateway_url": info.resume_gateway_url,
        "static_client_session_id": super::builders::random_hex(16),
        "auth_session_id_hash": base64::engine::general_purpose::STANDARD
            .encode(super::builders::random_hex(16)),
        "analytics_token": super::builders::random_hex(16),
        "auth": {"authenticator_types": []},
        "country_code": "US",
        "geo_ordered_rtc_regions": ["local"],
        "consents": {"personalization": {"consented": false}},
        "tutorial": null,
        "experiments": [],
        "guild_experiments": [],
        "connected_accounts": [],
        "guild_join_requests": [],
        "game_relationships": [],
        "friend_suggestion_count": 0,
        "linked_users": [],
        "notification_settings": {"flags": 0},
        "api_code_version": 1,
        "explicit_content_scan_version": 2,
        "broadcaster_user_ids": [],
        "ad_personalization_toggles_disabled": false,
        "regional_feature_config": {"age_gated_features": 0, "teen_by_default_settings": 0},
    });
    if let Value::Object(fields) = fields {
        ready.extend(fields);
    }
}

/// Builds user READY (and READY_SUPPLEMENTAL) for the context's session.
pub(crate) fn build(context: &ReadyContext<'_>) -> Result<UserReady, StoreError> {
    let (store, registry, info) = (context.store, context.registry, context.info);
    let capabilities = info.capabilities;
    let dedupe = capabilities.has(caps::DEDUPE_USER_OBJECTS);
    let prioritized = capabilities.has(caps::PRIORITIZED_READY_PAYLOAD);
    let mut users = Users {
        store,
        dedupe,
        seen: HashMap::new(),
        order: Vec::new(),
    };
    let mut ready = Map::new();
    session_fields(info, &mut ready);
    // Written straight to JSON below (see `write_guilds`); this keeps the key's place.
    ready.insert("guilds".into(), Value::Null);
    let mut guilds = Vec::with_capacity(1 << 20);
    let mut merged_members = Vec::with_capacity(info.guild_ids.len());
    let mut supplemental_guilds = Vec::new();
    let guild_count = write_guilds(
        context,
        &mut users,
        &mut merged_members,
        &mut supplemental_guilds,
        &mut guilds,
    )?;
    let private = private_channels(store, &mut users, info.user.id)?;
    ready.insert("private_channels".into(), Value::Array(private));
    let relations = relationships(store, &mut users, info.user.id)?;
    ready.insert("relationships".into(), Value::Array(relations));
    account_fields(store, info.user, capabilities, info.guild_ids, &mut ready)?;
    let friends = friend_presences(store, registry, info.user.id, dedupe);
    let guild_presences = Value::Array(vec![json!([]); guild_count]);
    let mut supplemental = None;
    if dedupe {
        ready.insert("merged_members".into(), Value::Array(merged_members));
        let merged = json!({"friends": friends, "guilds": guild_presences});
        if prioritized {
            supplemental = Some(json!({
                "guilds": supplemental_guilds,
                "merged_members": vec![json!([]); guild_count],
                "merged_presences": merged,
                "lazy_private_channels": [],
                "disclose": [],
                "game_invites": [],
            }));
        } else {
            ready.insert("merged_presences".into(), merged);
        }
    } else {
        ready.insert("presences".into(), friends);
    }
    if !capabilities.has(caps::LAZY_USER_NOTES) {
        ready.insert("notes".into(), notes(store, info.user.id, &users)?);
    }
    if dedupe {
        ready.insert("users".into(), users.into_array());
    }
    let mut out = Vec::with_capacity(guilds.len() + 64 * 1024);
    Template::of(&ready, &["guilds"])?.write(&mut out, |_, out| {
        out.extend_from_slice(&guilds);
        Ok::<(), StoreError>(())
    })?;
    Ok(UserReady {
        ready: out,
        supplemental,
    })
}

/// INITIAL_GUILD's payload: the full gateway guild `guild_id` in the session's shape.
pub(crate) fn initial_guild(
    context: &ReadyContext<'_>,
    guild_id: Snowflake,
) -> Result<Option<Vec<u8>>, StoreError> {
    let info = context.info;
    let one = [guild_id];
    let full = UserReadyInfo {
        guild_ids: &one,
        sessions: Value::Null,
        guild_versions: &HashMap::new(),
        ..*info
    };
    let mut users = Users {
        store: context.store,
        // Its own event: the viewer's member goes inline.
        dedupe: false,
        seen: HashMap::new(),
        order: Vec::new(),
    };
    let mut out = Vec::new();
    let written = write_guilds(
        &ReadyContext {
            info: &full,
            ..*context
        },
        &mut users,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut out,
    )?;
    // `[guild]` without its brackets.
    Ok((written == 1).then(|| out[1..out.len() - 1].to_vec()))
}
