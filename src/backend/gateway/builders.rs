//! The gateway-only payloads built from the store: READY, GUILD_CREATE (with the live presences
//! and voice states the gateway owns), GUILD_MEMBERS_CHUNK, PRESENCE_UPDATE, VOICE_STATE_UPDATE.
use serde_json::{json, Value};

use super::registry::{Presence, Registry, VoiceState};
use crate::backend::model::{Application, Guild, Member, User};
use crate::backend::render;
use crate::backend::services::guilds::guild_create_payload;
use crate::backend::snowflake::Snowflake;
use crate::backend::store::{Store, StoreError};
use crate::gateway::intents;
use crate::gateway::server::ShardInfo;

/// Members per GUILD_MEMBERS_CHUNK, as Discord sends them.
pub(crate) const CHUNK_SIZE: usize = 1000;
/// Discord's default `large_threshold`.
pub(crate) const DEFAULT_LARGE_THRESHOLD: u64 = 50;

/// Whether guild `guild_id` belongs to `shard` (`(guild_id >> 22) % num_shards`).
pub(crate) fn on_shard(guild_id: Snowflake, shard: Option<ShardInfo>) -> bool {
    match shard {
        None => true,
        Some(shard) => (guild_id.0 >> 22) % u64::from(shard.count) == u64::from(shard.id),
    }
}

/// Whether a session with `intents` (user accounts: `None`) has any of `wanted`.
pub(crate) fn has_intent(intents: Option<u64>, wanted: u64) -> bool {
    intents.is_none_or(|bits| bits & wanted != 0)
}

/// The application a bot user belongs to.
pub(crate) fn application_of(store: &Store, bot: &User) -> Result<Option<Application>, StoreError> {
    if let Some(app) = store.applications.get(bot.id)? {
        return Ok(Some(app));
    }
    Ok(store
        .applications
        .all()?
        .into_iter()
        .find(|app| app.bot_id == bot.id))
}

/// What READY needs to know about the session.
pub(crate) struct ReadyInfo<'a> {
    pub version: u8,
    pub user: &'a User,
    pub application: Option<&'a Application>,
    pub session_id: &'a str,
    pub resume_gateway_url: &'a str,
    pub shard: Option<ShardInfo>,
    pub guild_ids: &'a [Snowflake],
}

/// The READY payload: guilds as unavailable stubs (their GUILD_CREATEs follow).
pub(crate) fn ready(store: &Store, info: &ReadyInfo<'_>) -> Result<Value, StoreError> {
    let mut private_channels = Vec::new();
    if !info.user.bot {
        for channel_id in store.user_dms.ids(info.user.id)? {
            if let Some(channel) = store.channel(channel_id)? {
                private_channels.push(render::channel(store, &channel)?);
            }
        }
    }
    let mut ready = json!({
        "v": info.version,
        "user": render::user_private(info.user),
        "user_settings": {},
        "guilds": info.guild_ids.iter().map(|id| json!({"id": id, "unavailable": true})).collect::<Vec<_>>(),
        "session_id": info.session_id,
        "session_type": "normal",
        "resume_gateway_url": info.resume_gateway_url,
        "relationships": [],
        "private_channels": private_channels,
        "presences": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": ["local"],
        "auth": {},
        "_trace": ["[\"discord-mitm-gateway\",{\"micros\":0}]"],
    });
    if let Some(shard) = info.shard {
        ready["shard"] = json!([shard.id, shard.count]);
    }
    if let Some(app) = info.application {
        ready["application"] = json!({"id": app.id, "flags": app.flags});
    }
    Ok(ready)
}

/// A presence object as PRESENCE_UPDATE and GUILD_CREATE carry it.
pub(crate) fn presence(
    user_id: Snowflake,
    guild_id: Option<Snowflake>,
    presence: &Presence,
) -> Value {
    let mut out = json!({
        "user": {"id": user_id},
        "status": presence.status,
        "activities": presence.activities,
        "client_status": presence.client_status.clone().unwrap_or_else(|| json!({"web": presence.status})),
    });
    if let Some(guild_id) = guild_id {
        out["guild_id"] = json!(guild_id);
    }
    out
}

/// `bytes` random bytes as lowercase hex (voice tokens).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut random = vec![0u8; bytes];
    crate::backend::clock::fill_random(&mut random);
    hex::encode(random)
}

/// A voice state object, with the member when known.
pub(crate) fn voice_state(
    store: &Store,
    state: &VoiceState,
    with_guild_id: bool,
) -> Result<Value, StoreError> {
    crate::backend::voice::render(store, state, with_guild_id)
}

/// GUILD_CREATE for `viewer`: the full guild, members and presences as its intents allow.
pub(crate) fn guild_create(
    store: &Store,
    registry: &Registry,
    guild: &Guild,
    viewer: &User,
    session_intents: Option<u64>,
    large_threshold: u64,
) -> Result<Value, StoreError> {
    let mut payload = guild_create_payload(store, guild, viewer.id)?;
    let members: Vec<Member> = store.members.values(guild.id)?;
    let large = members.len() as u64 > large_threshold;
    payload["large"] = json!(large);
    let online = |m: &Member| registry.presence(m.user_id).is_some();
    // Without GUILD_MEMBERS a bot sees itself only; in a large guild only online members come.
    let listed: Vec<&Member> = members
        .iter()
        .filter(|m| {
            m.user_id == viewer.id
                || (has_intent(session_intents, intents::GUILD_MEMBERS) && (!large || online(m)))
        })
        .collect();
    payload["members"] = Value::Array(
        listed
            .iter()
            .map(|m| render::member(store, m))
            .collect::<Result<_, _>>()?,
    );
    let presences: Vec<Value> = if has_intent(session_intents, intents::GUILD_PRESENCES) {
        members
            .iter()
            .filter_map(|m| {
                registry
                    .presence(m.user_id)
                    .map(|p| presence(m.user_id, None, &p))
            })
            .collect()
    } else {
        Vec::new()
    };
    payload["presences"] = Value::Array(presences);
    payload["voice_states"] = Value::Array(
        registry
            .voice_states(guild.id)
            .iter()
            .map(|v| voice_state(store, v, false))
            .collect::<Result<_, _>>()?,
    );
    Ok(payload)
}

/// What op 8 asked for, as far as one guild goes.
pub(crate) struct MemberRequest<'a> {
    pub query: Option<&'a str>,
    pub limit: u64,
    pub user_ids: &'a [u64],
    pub presences: bool,
    pub nonce: Option<&'a str>,
}

/// The GUILD_MEMBERS_CHUNK payloads answering `request` for `guild_id`.
pub(crate) fn member_chunks(
    store: &Store,
    registry: &Registry,
    guild_id: Snowflake,
    request: &MemberRequest<'_>,
) -> Result<Vec<Value>, StoreError> {
    let mut found: Vec<Member> = Vec::new();
    let mut not_found: Vec<Snowflake> = Vec::new();
    if !request.user_ids.is_empty() {
        for id in request.user_ids.iter().map(|id| Snowflake(*id)) {
            match store.member(guild_id, id)? {
                Some(member) => found.push(member),
                None => not_found.push(id),
            }
        }
    } else {
        let query = request.query.unwrap_or("").to_lowercase();
        // A query with limit 0 means "all of them"; a name query caps at 100 like Discord.
        let cap = match (query.is_empty(), request.limit) {
            (true, 0) => usize::MAX,
            (false, 0) => 100,
            (_, limit) => usize::try_from(limit)
                .unwrap_or(usize::MAX)
                .min(if query.is_empty() { usize::MAX } else { 100 }),
        };
        for member in store.members.values(guild_id)? {
            if found.len() >= cap {
                break;
            }
            if query.is_empty() {
                found.push(member);
                continue;
            }
            let user = store.user(member.user_id)?;
            let names = [
                user.as_ref().map(|u| u.username.to_lowercase()),
                user.as_ref()
                    .and_then(|u| u.global_name.as_ref().map(|n| n.to_lowercase())),
                member.nick.as_ref().map(|n| n.to_lowercase()),
            ];
            if names.iter().flatten().any(|name| name.starts_with(&query)) {
                found.push(member);
            }
        }
    }
    let chunk_count = found.len().div_ceil(CHUNK_SIZE).max(1);
    let mut chunks = Vec::with_capacity(chunk_count);
    for index in 0..chunk_count {
        let slice = found.get(index * CHUNK_SIZE..).unwrap_or(&[]);
        let slice = &slice[..slice.len().min(CHUNK_SIZE)];
        let mut chunk = json!({
            "guild_id": guild_id,
            "members": slice.iter().map(|m| render::member(store, m)).collect::<Result<Vec<_>, _>>()?,
            "chunk_index": index,
            "chunk_count": chunk_count,
        });
        if index == 0 && !not_found.is_empty() {
            chunk["not_found"] = json!(not_found);
        }
        if request.presences {
            chunk["presences"] = Value::Array(
                slice
                    .iter()
                    .filter_map(|m| {
                        registry
                            .presence(m.user_id)
                            .map(|p| presence(m.user_id, None, &p))
                    })
                    .collect(),
            );
        }
        if let Some(nonce) = request.nonce {
            chunk["nonce"] = json!(nonce);
        }
        chunks.push(chunk);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_routing_follows_discords_formula() {
        let guild = Snowflake(200_000_000_000_000_001);
        let shard_of = (guild.0 >> 22) % 3;
        for id in 0..3 {
            let shard = Some(ShardInfo { id, count: 3 });
            assert_eq!(on_shard(guild, shard), u64::from(id) == shard_of);
        }
        assert!(on_shard(guild, None));
    }
}
