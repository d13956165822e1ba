//! The live member lists of the gateway: built from the store on first subscription, kept up
//! to date from the event bus (member joins, leaves and updates, presence changes, role
//! changes), and turned into GUILD_MEMBER_LIST_UPDATE payloads for the sessions that follow them.
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::member_list::{ops_for_ranges, ListMember, MemberList, Op, Row};
use super::registry::Registry;
use super::Inner;
use crate::backend::events::Event;
use crate::backend::model::{Channel, Member};
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;
use crate::backend::store::{Store, StoreError};
use crate::gateway::wire::Prepared;

/// A built list and who may be in it.
struct LiveList {
    list: MemberList,
    /// The channel whose viewers the list holds (`None`: the whole guild).
    channel: Option<Snowflake>,
}

/// Every live list by `(guild id, list id)`.
#[derive(Default)]
pub(crate) struct Lists {
    lists: Mutex<HashMap<(Snowflake, String), LiveList>>,
}

/// Nick, else global name, else username.
fn display_name(store: &Store, member: &Member) -> Result<String, StoreError> {
    if let Some(nick) = &member.nick {
        return Ok(nick.clone());
    }
    Ok(match store.user(member.user_id)? {
        Some(user) => user.global_name.unwrap_or(user.username),
        None => String::new(),
    })
}

/// The list's view of `member`.
pub(crate) fn list_member(
    store: &Store,
    registry: &Registry,
    member: &Member,
) -> Result<ListMember, StoreError> {
    Ok(ListMember {
        user_id: member.user_id,
        display_name: display_name(store, member)?,
        roles: member.roles.clone(),
        status: registry
            .presence(member.user_id)
            .map_or_else(|| "offline".to_string(), |p| p.status),
    })
}

/// Whether `user_id` may be in the list of `channel` (`None`: everyone in the guild).
fn may_view(state: &AppState, channel: Option<Snowflake>, user_id: Snowflake) -> bool {
    let Some(channel) = channel else {
        return true;
    };
    match state.store.user(user_id) {
        Ok(Some(user)) => state.channel_access(channel, &user).is_ok(),
        _ => false,
    }
}

/// Builds the list of `guild_id` for `channel` from the store.
pub(crate) fn build(
    state: &AppState,
    registry: &Registry,
    guild_id: Snowflake,
    channel: Option<Snowflake>,
) -> Result<MemberList, StoreError> {
    let store = &state.store;
    let roles = store.guild_roles(guild_id)?;
    let mut members = Vec::new();
    for member in store.members.values(guild_id)? {
        if may_view(state, channel, member.user_id) {
            members.push(list_member(store, registry, &member)?);
        }
    }
    Ok(MemberList::build(&roles, members))
}

/// The `everyone` permissions of a guild (its @everyone role).
fn everyone_permissions(store: &Store, guild_id: Snowflake) -> u64 {
    store
        .role(guild_id, guild_id)
        .ok()
        .flatten()
        .and_then(|r| r.permissions.parse().ok())
        .unwrap_or(0)
}

/// The list id of `channel`.
pub(crate) fn list_id_of(store: &Store, channel: &Channel) -> String {
    let guild_id = channel.guild_id.unwrap_or(Snowflake(0));
    super::member_list::list_id(channel, everyone_permissions(store, guild_id))
}

/// One row as GUILD_MEMBER_LIST_UPDATE carries it.
fn render_row(
    store: &Store,
    registry: &Registry,
    guild_id: Snowflake,
    row: &Row,
) -> Result<Value, StoreError> {
    Ok(match row {
        Row::Group(id, count) => json!({"group": {"id": id.wire(), "count": count}}),
        Row::Member(user_id, status) => {
            let mut member = match store.member(guild_id, *user_id)? {
                Some(member) => crate::backend::render::member(store, &member)?,
                None => json!({"user": {"id": user_id}}),
            };
            let presence = registry.presence(*user_id);
            member["presence"] = json!({
                "user": {"id": user_id},
                "status": status,
                "activities": presence.as_ref().map_or(Value::Array(Vec::new()), |p| json!(p.activities)),
                "client_status": presence.and_then(|p| p.client_status).unwrap_or_else(|| json!({})),
            });
            json!({ "member": member })
        }
    })
}

/// The wire form of list operations.
fn render_ops(
    store: &Store,
    registry: &Registry,
    guild_id: Snowflake,
    ops: &[Op],
) -> Result<Vec<Value>, StoreError> {
    ops.iter()
        .map(|op| {
            Ok(match op {
                Op::Sync((start, end), rows) => json!({
                    "op": "SYNC",
                    "range": [start, end],
                    "items": rows.iter().map(|r| render_row(store, registry, guild_id, r)).collect::<Result<Vec<_>, _>>()?,
                }),
                Op::Insert(index, row) => json!({"op": "INSERT", "index": index,
                    "item": render_row(store, registry, guild_id, row)?}),
                Op::Update(index, row) => json!({"op": "UPDATE", "index": index,
                    "item": render_row(store, registry, guild_id, row)?}),
                Op::Delete(index) => json!({"op": "DELETE", "index": index}),
                Op::Invalidate((start, end)) => json!({"op": "INVALIDATE", "range": [start, end]}),
            })
        })
        .collect()
}

/// A GUILD_MEMBER_LIST_UPDATE payload.
pub(crate) fn update_payload(
    store: &Store,
    registry: &Registry,
    guild_id: Snowflake,
    list_id: &str,
    list: &MemberList,
    ops: &[Op],
) -> Result<Value, StoreError> {
    Ok(json!({
        "guild_id": guild_id,
        "id": list_id,
        "member_count": list.member_count(),
        "online_count": list.online_count(),
        "groups": list.groups().iter().map(|(id, count)| json!({"id": id.wire(), "count": count})).collect::<Vec<_>>(),
        "ops": render_ops(store, registry, guild_id, ops)?,
    }))
}

impl Lists {
    /// Forgets every live list (a reset of the world; their sessions are ended too).
    pub(crate) fn clear(&self) {
        self.lists.lock().clear();
    }

    /// SYNC of `ranges` of the list of `channel` (built if needed): the list id and the
    /// GUILD_MEMBER_LIST_UPDATE payload.
    pub(crate) fn sync(
        &self,
        state: &AppState,
        registry: &Registry,
        channel: &Channel,
        ranges: &[(usize, usize)],
    ) -> Result<(String, Value), StoreError> {
        let guild_id = channel.guild_id.unwrap_or(Snowflake(0));
        let list_id = list_id_of(&state.store, channel);
        let mut lists = self.lists.lock();
        let key = (guild_id, list_id.clone());
        if !lists.contains_key(&key) {
            let scope = (list_id != "everyone").then_some(channel.id);
            let list = build(state, registry, guild_id, scope)?;
            lists.insert(
                key.clone(),
                LiveList {
                    list,
                    channel: scope,
                },
            );
        }
        let Some(live) = lists.get(&key) else {
            return Ok((list_id, Value::Null));
        };
        let ops: Vec<Op> = ranges
            .iter()
            .map(|&(start, end)| Op::Sync((start, end), live.list.rows(start, end)))
            .collect();
        let payload = update_payload(&state.store, registry, guild_id, &list_id, &live.list, &ops)?;
        Ok((list_id, payload))
    }

    /// Applies a bus event to the guild's live lists and sends the resulting updates.
    pub(crate) fn on_event(&self, inner: &Inner, event: &Event) {
        let Some(guild_id) = event.guild_id() else {
            return;
        };
        let user_id = event
            .data
            .get("user")
            .and_then(|u| u.get("id"))
            .and_then(Value::as_str)
            .and_then(Snowflake::parse);
        let rebuild = matches!(
            event.name,
            "GUILD_ROLE_CREATE" | "GUILD_ROLE_UPDATE" | "GUILD_ROLE_DELETE" | "CHANNEL_UPDATE"
        );
        let relevant = matches!(
            event.name,
            "GUILD_MEMBER_ADD" | "GUILD_MEMBER_UPDATE" | "GUILD_MEMBER_REMOVE" | "PRESENCE_UPDATE"
        );
        if !(rebuild || relevant && user_id.is_some()) {
            return;
        }
        let mut lists = self.lists.lock();
        if lists.keys().all(|(g, _)| *g != guild_id) {
            return;
        }
        for ((g, list_id), live) in lists.iter_mut() {
            if *g != guild_id {
                continue;
            }
            let result = if rebuild {
                rebuild_list(inner, guild_id, live)
            } else {
                change(
                    inner,
                    event,
                    guild_id,
                    user_id.unwrap_or(Snowflake(0)),
                    live,
                )
            };
            match result {
                Ok(ops) if !ops.is_empty() => deliver(inner, guild_id, list_id, &live.list, &ops),
                Ok(_) => {}
                Err(e) => tracing::error!("cannot update member list: {e}"),
            }
        }
    }
}

/// The ops one member event causes in one list.
fn change(
    inner: &Inner,
    event: &Event,
    guild_id: Snowflake,
    user_id: Snowflake,
    live: &mut LiveList,
) -> Result<Vec<Op>, StoreError> {
    let store = &inner.state.store;
    if event.name == "GUILD_MEMBER_REMOVE" {
        return Ok(live.list.remove(user_id));
    }
    if event.name == "PRESENCE_UPDATE" {
        let Some(mut member) = live.list.member(user_id).cloned() else {
            return Ok(Vec::new());
        };
        member.status = event
            .data
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("offline")
            .to_string();
        return Ok(live.list.upsert(member));
    }
    let Some(member) = store.member(guild_id, user_id)? else {
        return Ok(live.list.remove(user_id));
    };
    if !may_view(&inner.state, live.channel, user_id) {
        return Ok(live.list.remove(user_id));
    }
    let member = list_member(store, &inner.registry, &member)?;
    Ok(live.list.upsert(member))
}

/// Rebuilds a list whose roles or channel changed; the SYNC of its first rows.
fn rebuild_list(
    inner: &Inner,
    guild_id: Snowflake,
    live: &mut LiveList,
) -> Result<Vec<Op>, StoreError> {
    live.list = build(&inner.state, &inner.registry, guild_id, live.channel)?;
    Ok(vec![
        Op::Invalidate((0, 99)),
        Op::Sync((0, 99), live.list.rows(0, 99)),
    ])
}

/// Offers every session following list `list_id` of `guild_id` what `ops` change in the ranges
/// it subscribed to (one payload per distinct set of ranges).
fn deliver(inner: &Inner, guild_id: Snowflake, list_id: &str, list: &MemberList, ops: &[Op]) {
    let limits = inner.registry.limits;
    let mut by_ranges: HashMap<Vec<(usize, usize)>, Option<Arc<Prepared>>> = HashMap::new();
    for record in inner.registry.all() {
        let mut record = record.lock();
        let Some(ranges) = record.subscriptions.ranges_of(guild_id, list_id) else {
            continue;
        };
        let payload = by_ranges.entry(ranges).or_insert_with_key(|ranges| {
            let ops = ops_for_ranges(list, ops, ranges);
            if ops.is_empty() {
                return None;
            }
            match update_payload(
                &inner.state.store,
                &inner.registry,
                guild_id,
                list_id,
                list,
                &ops,
            ) {
                Ok(payload) => Some(Prepared::new("GUILD_MEMBER_LIST_UPDATE", payload)),
                Err(e) => {
                    tracing::error!("cannot render member list update: {e}");
                    None
                }
            }
        });
        if let Some(payload) = payload {
            record.offer(payload, &limits);
        }
    }
}
