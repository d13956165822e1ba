//! The official client's member list (GUILD_MEMBER_LIST_UPDATE): a guild's members grouped by
//! their highest hoisted role while online, then `online` and `offline`, each group sorted by
//! display name as the client sorts it. [`MemberList`] is the pure model: it answers SYNC for
//! ranges and turns every change (join, leave, roles, nickname, presence) into the INSERT /
//! UPDATE / DELETE operations that keep a client's copy equal to a fresh SYNC.
//!
//! Also here: the session's subscriptions (op 14 / op 37), range normalisation and the
//! member-list id of a channel (`everyone`, or the hash of its VIEW_CHANNEL overwrites).
use std::collections::HashMap;

use serde_json::{json, Value};

use crate::backend::model::{Channel, Role};
use crate::backend::snowflake::Snowflake;

/// VIEW_CHANNEL.
const VIEW_CHANNEL: u64 = 1 << 10;
/// Largest range span the gateway accepts (userdoccers' range parsing).
const MAX_SPAN: u64 = 300;
/// Ranges per channel subscription.
const MAX_RANGES: usize = 3;

/// A group of the list: a hoisted role, or the synthetic `online` / `offline` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum GroupId {
    /// Online members whose highest hoisted role is this one.
    Role(Snowflake),
    /// Online members without a hoisted role.
    Online,
    /// Offline members.
    Offline,
}

impl GroupId {
    /// The wire `id`: the role id or `online` / `offline`.
    pub(crate) fn wire(self) -> Value {
        match self {
            GroupId::Role(id) => json!(id),
            GroupId::Online => json!("online"),
            GroupId::Offline => json!("offline"),
        }
    }
}

/// One member as the list needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListMember {
    /// The member's user id.
    pub user_id: Snowflake,
    /// Nick, else global name, else username.
    pub display_name: String,
    /// The member's role ids.
    pub roles: Vec<Snowflake>,
    /// `online`, `idle`, `dnd` or `offline`.
    pub status: String,
}

/// A row of the list as a client holds it (for tests and diffing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Row {
    /// A group header with its member count.
    Group(GroupId, usize),
    /// A member with its status.
    Member(Snowflake, String),
}

/// One list operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// The rows of `range` (inclusive).
    Sync((usize, usize), Vec<Row>),
    /// A row inserted at an index.
    Insert(usize, Row),
    /// The row at an index replaced.
    Update(usize, Row),
    /// The row at an index removed.
    Delete(usize),
    /// The rows of a range are no longer tracked.
    Invalidate((usize, usize)),
}

/// Sort key of a member inside a group: lowercase display name, then user id.
type SortKey = (String, Snowflake);

#[derive(Debug, Clone)]
struct Group {
    id: GroupId,
    members: Vec<SortKey>,
}

/// Where a member is.
#[derive(Debug, Clone)]
struct Placed {
    member: ListMember,
    group: usize,
    key: SortKey,
}

/// A guild's member list (one per member-list id).
#[derive(Debug, Clone)]
pub(crate) struct MemberList {
    /// Hoisted roles by display order, then online, then offline.
    groups: Vec<Group>,
    group_of_role: HashMap<Snowflake, usize>,
    placed: HashMap<Snowflake, Placed>,
    online: usize,
}

impl MemberList {
    /// An empty list for a guild with `roles` (only hoisted ones make groups).
    pub(crate) fn new(roles: &[Role]) -> MemberList {
        let mut hoisted: Vec<&Role> = roles.iter().filter(|r| r.hoist).collect();
        hoisted.sort_by_key(|r| (std::cmp::Reverse(r.position), r.id));
        let mut groups: Vec<Group> = hoisted
            .iter()
            .map(|r| Group {
                id: GroupId::Role(r.id),
                members: Vec::new(),
            })
            .collect();
        groups.push(Group {
            id: GroupId::Online,
            members: Vec::new(),
        });
        groups.push(Group {
            id: GroupId::Offline,
            members: Vec::new(),
        });
        let group_of_role = hoisted.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        MemberList {
            groups,
            group_of_role,
            placed: HashMap::new(),
            online: 0,
        }
    }

    /// A list of `members` with `roles`.
    pub(crate) fn build(roles: &[Role], members: Vec<ListMember>) -> MemberList {
        let mut list = MemberList::new(roles);
        for member in members {
            let (group, key) = list.place(&member);
            if member.status != "offline" {
                list.online += 1;
            }
            list.groups[group].members.push(key.clone());
            list.placed
                .insert(member.user_id, Placed { member, group, key });
        }
        for group in &mut list.groups {
            group.members.sort_unstable();
        }
        list
    }

    /// Members in the list.
    pub(crate) fn member_count(&self) -> usize {
        self.placed.len()
    }

    /// Members not offline.
    pub(crate) fn online_count(&self) -> usize {
        self.online
    }

    /// The member `user_id` as the list holds it.
    pub(crate) fn member(&self, user_id: Snowflake) -> Option<&ListMember> {
        self.placed.get(&user_id).map(|p| &p.member)
    }

    /// Number of rows (headers of non-empty groups plus members).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.groups
            .iter()
            .filter(|g| !g.members.is_empty())
            .map(|g| g.members.len() + 1)
            .sum()
    }

    /// The non-empty groups with their counts, as GUILD_MEMBER_LIST_UPDATE's `groups`.
    pub(crate) fn groups(&self) -> Vec<(GroupId, usize)> {
        self.groups
            .iter()
            .filter(|g| !g.members.is_empty())
            .map(|g| (g.id, g.members.len()))
            .collect()
    }

    fn place(&self, member: &ListMember) -> (usize, SortKey) {
        let key = (member.display_name.to_lowercase(), member.user_id);
        if member.status == "offline" {
            return (self.groups.len() - 1, key);
        }
        let hoisted = member
            .roles
            .iter()
            .filter_map(|r| self.group_of_role.get(r).copied())
            .min();
        (hoisted.unwrap_or(self.groups.len() - 2), key)
    }

    /// Index of group `group`'s header (where it is or would be).
    fn header_index(&self, group: usize) -> usize {
        self.groups[..group]
            .iter()
            .filter(|g| !g.members.is_empty())
            .map(|g| g.members.len() + 1)
            .sum()
    }

    /// The rows in `start..=end` (clamped to the list).
    pub(crate) fn rows(&self, start: usize, end: usize) -> Vec<Row> {
        let mut out = Vec::new();
        let mut index = 0usize;
        for group in self.groups.iter().filter(|g| !g.members.is_empty()) {
            let size = group.members.len() + 1;
            if index + size <= start {
                index += size;
                continue;
            }
            if index > end {
                break;
            }
            if index >= start {
                out.push(Row::Group(group.id, group.members.len()));
            }
            let first = start.saturating_sub(index + 1);
            for (rank, key) in group.members.iter().enumerate().skip(first) {
                let at = index + 1 + rank;
                if at > end {
                    break;
                }
                if at >= start {
                    let status = self
                        .placed
                        .get(&key.1)
                        .map_or(String::new(), |p| p.member.status.clone());
                    out.push(Row::Member(key.1, status));
                }
            }
            index += size;
        }
        out
    }

    /// Every row.
    #[cfg(test)]
    pub(crate) fn all_rows(&self) -> Vec<Row> {
        self.rows(0, usize::MAX - 1)
    }

    /// Removes `user_id`; the operations that tell a client.
    pub(crate) fn remove(&mut self, user_id: Snowflake) -> Vec<Op> {
        let Some(placed) = self.placed.remove(&user_id) else {
            return Vec::new();
        };
        if placed.member.status != "offline" {
            self.online -= 1;
        }
        self.take_out(placed.group, &placed.key)
    }

    fn take_out(&mut self, group: usize, key: &SortKey) -> Vec<Op> {
        let header = self.header_index(group);
        let id = self.groups[group].id;
        let members = &mut self.groups[group].members;
        let Ok(rank) = members.binary_search(key) else {
            return Vec::new();
        };
        members.remove(rank);
        let mut ops = vec![Op::Delete(header + 1 + rank)];
        if members.is_empty() {
            ops.push(Op::Delete(header));
        } else {
            ops.push(Op::Update(header, Row::Group(id, members.len())));
        }
        ops
    }

    fn put_in(&mut self, group: usize, key: SortKey, status: &str) -> Vec<Op> {
        let header = self.header_index(group);
        let was_empty = self.groups[group].members.is_empty();
        let members = &mut self.groups[group].members;
        let rank = members.binary_search(&key).unwrap_or_else(|at| at);
        let user_id = key.1;
        members.insert(rank, key);
        let count = members.len();
        let id = self.groups[group].id;
        let member = Row::Member(user_id, status.to_string());
        if was_empty {
            vec![
                Op::Insert(header, Row::Group(id, count)),
                Op::Insert(header + 1, member),
            ]
        } else {
            vec![
                Op::Insert(header + 1 + rank, member),
                Op::Update(header, Row::Group(id, count)),
            ]
        }
    }

    /// Adds or changes a member; the operations that tell a client (none when nothing it
    /// shows changed).
    pub(crate) fn upsert(&mut self, member: ListMember) -> Vec<Op> {
        let (group, key) = self.place(&member);
        let old = self.placed.get(&member.user_id).cloned();
        if let Some(old) = &old {
            if old.member == member {
                return Vec::new();
            }
            if old.group == group && old.key == key {
                let header = self.header_index(group);
                let rank = self.groups[group]
                    .members
                    .binary_search(&key)
                    .unwrap_or_default();
                let status = member.status.clone();
                self.placed.insert(
                    member.user_id,
                    Placed {
                        member,
                        group,
                        key: key.clone(),
                    },
                );
                return vec![Op::Update(header + 1 + rank, Row::Member(key.1, status))];
            }
        }
        let mut ops = Vec::new();
        if let Some(old) = old {
            if old.member.status != "offline" {
                self.online -= 1;
            }
            ops.extend(self.take_out(old.group, &old.key));
        }
        if member.status != "offline" {
            self.online += 1;
        }
        ops.extend(self.put_in(group, key.clone(), &member.status));
        self.placed
            .insert(member.user_id, Placed { member, group, key });
        ops
    }
}

/// What a follower holding `ranges` (sorted, disjoint) should receive of `ops`, the operations
/// one change made to `list` (`list` is the state after them): operations inside a range as
/// they are when they keep the follower's copy of that range whole, a SYNC of the range when
/// they cannot (a row comes in from after it, or an insertion or deletion before it), and
/// nothing for what happens after its ranges. An INVALIDATE (a rebuilt list) becomes
/// INVALIDATE and SYNC of each range.
pub(crate) fn ops_for_ranges(list: &MemberList, ops: &[Op], ranges: &[(usize, usize)]) -> Vec<Op> {
    if ops
        .iter()
        .any(|op| matches!(op, Op::Invalidate(_) | Op::Sync(..)))
    {
        return ranges
            .iter()
            .flat_map(|&(start, end)| {
                [
                    Op::Invalidate((start, end)),
                    Op::Sync((start, end), list.rows(start, end)),
                ]
            })
            .collect();
    }
    let index = |op: &Op| match op {
        Op::Insert(i, _) | Op::Update(i, _) | Op::Delete(i) => *i,
        Op::Sync(..) | Op::Invalidate(_) => 0,
    };
    let mut out = Vec::new();
    let mut syncs = Vec::new();
    for &(start, end) in ranges {
        match range_effect(ops, start, end) {
            Effect::None => {}
            Effect::Ops => out.extend(
                ops.iter()
                    .filter(|op| (start..=end).contains(&index(op)))
                    .cloned(),
            ),
            Effect::Sync => syncs.push(Op::Sync((start, end), list.rows(start, end))),
        }
    }
    out.extend(syncs);
    out
}

/// How a change reaches one range of a follower.
enum Effect {
    /// It does not touch the range.
    None,
    /// Its operations inside the range keep the follower's copy whole.
    Ops,
    /// The range must be sent again.
    Sync,
}

/// Follows which rows of `start..=end` the follower still holds right while `ops` apply. A
/// deletion inside the range pulls in the row after it, which the follower may not hold (or
/// holds from before, stale): unknown until an insertion pushes it out again.
fn range_effect(ops: &[Op], start: usize, end: usize) -> Effect {
    let mut known = vec![true; end - start + 1];
    let mut touched = false;
    for op in ops {
        let (at, shifts) = match op {
            Op::Insert(i, _) => (*i, 1i8),
            Op::Delete(i) => (*i, -1),
            Op::Update(i, _) => (*i, 0),
            Op::Sync(..) | Op::Invalidate(_) => return Effect::Sync,
        };
        if at > end {
            continue;
        }
        touched = true;
        if at < start {
            if shifts != 0 {
                return Effect::Sync;
            }
            continue;
        }
        let slot = at - start;
        match shifts {
            1 => {
                known.pop();
                known.insert(slot, true);
            }
            -1 => {
                known.remove(slot);
                known.push(false);
            }
            _ => known[slot] = true,
        }
    }
    match (touched, known.iter().all(|k| *k)) {
        (false, _) => Effect::None,
        (true, true) => Effect::Ops,
        (true, false) => Effect::Sync,
    }
}

/// Normalises requested ranges as the gateway does: at most three, each at most 300 wide,
/// widened to whole chunks of 100 and deduplicated; `None` when invalid.
pub(crate) fn normalise_ranges(ranges: &[(u64, u64)]) -> Option<Vec<(usize, usize)>> {
    if ranges.is_empty() || ranges.len() > MAX_RANGES {
        return None;
    }
    let mut out = Vec::new();
    for &(a, b) in ranges {
        let (start, end) = (a.min(b), a.max(b));
        if end - start > MAX_SPAN {
            return None;
        }
        for chunk in start / 100..=end / 100 {
            let first = usize::try_from(chunk * 100).ok()?;
            out.push((first, first + 99));
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// The member-list id of `channel`: `everyone` when @everyone may view it and no overwrite
/// denies VIEW_CHANNEL, else the unsigned 32-bit MurmurHash3 of the sorted `allow:ID` /
/// `deny:ID` overwrites that touch VIEW_CHANNEL.
pub(crate) fn list_id(channel: &Channel, everyone_permissions: u64) -> String {
    let overwrites = channel.permission_overwrites.as_deref().unwrap_or(&[]);
    let bits = |s: &str| s.parse::<u64>().unwrap_or(0);
    let open = everyone_permissions & VIEW_CHANNEL == VIEW_CHANNEL
        && overwrites
            .iter()
            .all(|o| bits(&o.deny) & VIEW_CHANNEL != VIEW_CHANNEL);
    if open {
        return "everyone".to_string();
    }
    let mut parts: Vec<String> = overwrites
        .iter()
        .filter_map(|o| {
            if bits(&o.allow) & VIEW_CHANNEL == VIEW_CHANNEL {
                Some(format!("allow:{}", o.id))
            } else if bits(&o.deny) & VIEW_CHANNEL == VIEW_CHANNEL {
                Some(format!("deny:{}", o.id))
            } else {
                None
            }
        })
        .collect();
    parts.sort();
    murmur3_32(parts.join(",").as_bytes(), 0).to_string()
}

/// MurmurHash3 (x86, 32-bit).
pub(crate) fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, byte) in tail.iter().enumerate() {
            k |= u32::from(*byte) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= u32::try_from(data.len()).unwrap_or(u32::MAX);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// What a session subscribed to in one guild (op 14 / op 37).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct GuildSubscription {
    /// Typing and message events of the guild.
    pub typing: bool,
    /// Thread sync.
    pub threads: bool,
    /// Embedded activities.
    pub activities: bool,
    /// Member events.
    pub member_updates: bool,
    /// Members whose events the session wants.
    pub members: Vec<Snowflake>,
    /// Channel id → (list id, normalised ranges).
    pub channels: HashMap<Snowflake, (String, Vec<(usize, usize)>)>,
    /// Threads whose member lists the session wants.
    pub thread_member_lists: Vec<Snowflake>,
}

/// A session's subscriptions by guild.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Subscriptions {
    /// Guild id → what the session subscribed to there.
    pub guilds: HashMap<Snowflake, GuildSubscription>,
}

impl Subscriptions {
    /// The ranges the session follows of list `list_id` of `guild_id` (sorted, across its
    /// channels with that list), or `None` when it does not follow the list.
    pub(crate) fn ranges_of(
        &self,
        guild_id: Snowflake,
        list_id: &str,
    ) -> Option<Vec<(usize, usize)>> {
        let guild = self.guilds.get(&guild_id)?;
        let mut ranges: Vec<(usize, usize)> = guild
            .channels
            .values()
            .filter(|(id, _)| id == list_id)
            .flat_map(|(_, ranges)| ranges.iter().copied())
            .collect();
        if ranges.is_empty() {
            return None;
        }
        ranges.sort_unstable();
        ranges.dedup();
        Some(ranges)
    }
}

/// One guild's subscription request as op 14 / op 37 carry it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SubscriptionRequest {
    /// `typing`, if sent.
    pub typing: Option<bool>,
    /// `threads`, if sent.
    pub threads: Option<bool>,
    /// `activities`, if sent.
    pub activities: Option<bool>,
    /// `member_updates`, if sent.
    pub member_updates: Option<bool>,
    /// `members`.
    pub members: Vec<Snowflake>,
    /// Channel id → requested ranges.
    pub channels: Vec<(Snowflake, Vec<(u64, u64)>)>,
    /// `thread_member_lists`.
    pub thread_member_lists: Vec<Snowflake>,
}

/// Why a subscription request is refused (the connection closes with 4001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubscriptionError {
    /// A field has the wrong type.
    #[error("malformed guild subscription")]
    Malformed,
}

fn ids(value: Option<&Value>) -> Result<Vec<Snowflake>, SubscriptionError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .and_then(Snowflake::parse)
                    .or_else(|| v.as_u64().map(Snowflake))
                    .ok_or(SubscriptionError::Malformed)
            })
            .collect(),
        Some(_) => Err(SubscriptionError::Malformed),
    }
}

fn flag(value: Option<&Value>) -> Result<Option<bool>, SubscriptionError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(SubscriptionError::Malformed),
    }
}

fn ranges(value: &Value) -> Result<Vec<(u64, u64)>, SubscriptionError> {
    let items = value.as_array().ok_or(SubscriptionError::Malformed)?;
    items
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([a, b]) => match (a.as_u64(), b.as_u64()) {
                (Some(a), Some(b)) => Ok((a, b)),
                _ => Err(SubscriptionError::Malformed),
            },
            _ => Err(SubscriptionError::Malformed),
        })
        .collect()
}

impl SubscriptionRequest {
    /// Reads one guild's subscription object.
    pub(crate) fn parse(d: &Value) -> Result<SubscriptionRequest, SubscriptionError> {
        let d = d.as_object().ok_or(SubscriptionError::Malformed)?;
        let mut channels = Vec::new();
        match d.get("channels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (id, value) in map {
                    let id = Snowflake::parse(id).ok_or(SubscriptionError::Malformed)?;
                    channels.push((id, ranges(value)?));
                }
            }
            Some(_) => return Err(SubscriptionError::Malformed),
        }
        Ok(SubscriptionRequest {
            typing: flag(d.get("typing"))?,
            threads: flag(d.get("threads"))?,
            activities: flag(d.get("activities"))?,
            member_updates: flag(d.get("member_updates"))?,
            members: ids(d.get("members"))?,
            channels,
            thread_member_lists: ids(d.get("thread_member_lists"))?,
        })
    }

    /// Op 37's `subscriptions` map: guild id → request.
    pub(crate) fn parse_bulk(
        d: &Value,
    ) -> Result<Vec<(Snowflake, SubscriptionRequest)>, SubscriptionError> {
        let map = d
            .get("subscriptions")
            .and_then(Value::as_object)
            .ok_or(SubscriptionError::Malformed)?;
        map.iter()
            .map(|(id, sub)| {
                let id = Snowflake::parse(id).ok_or(SubscriptionError::Malformed)?;
                Ok((id, SubscriptionRequest::parse(sub)?))
            })
            .collect()
    }

    /// Op 14: the request plus its `guild_id`.
    pub(crate) fn parse_single(
        d: &Value,
    ) -> Result<(Snowflake, SubscriptionRequest), SubscriptionError> {
        let guild_id = d
            .get("guild_id")
            .and_then(|v| {
                v.as_str()
                    .and_then(Snowflake::parse)
                    .or(v.as_u64().map(Snowflake))
            })
            .ok_or(SubscriptionError::Malformed)?;
        Ok((guild_id, SubscriptionRequest::parse(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn role(id: u64, position: i64, hoist: bool) -> Role {
        serde_json::from_value(
            json!({"id": id.to_string(), "name": "r", "position": position,
            "hoist": hoist, "permissions": "0"}),
        )
        .unwrap()
    }

    fn member(id: u64, name: &str, roles: &[u64], status: &str) -> ListMember {
        ListMember {
            user_id: Snowflake(id),
            display_name: name.to_string(),
            roles: roles.iter().map(|r| Snowflake(*r)).collect(),
            status: status.to_string(),
        }
    }

    /// A client's copy of the list, changed only by the operations it receives.
    fn apply(model: &mut Vec<Row>, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Sync((start, _), rows) => {
                    model.truncate(*start);
                    model.extend(rows.iter().cloned());
                }
                Op::Insert(at, row) => model.insert(*at, row.clone()),
                Op::Update(at, row) => model[*at] = row.clone(),
                Op::Delete(at) => {
                    model.remove(*at);
                }
                Op::Invalidate(_) => {}
            }
        }
    }

    #[test]
    fn groups_follow_hoisted_roles_then_online_then_offline_sorted_by_name() {
        let roles = [role(10, 1, true), role(11, 2, true), role(12, 3, false)];
        let list = MemberList::build(
            &roles,
            vec![
                member(1, "bob", &[10], "online"),
                member(2, "Alice", &[10, 11], "dnd"),
                member(3, "carol", &[12], "idle"),
                member(4, "dave", &[11], "offline"),
                member(5, "Aaron", &[], "online"),
            ],
        );
        assert_eq!(
            list.all_rows(),
            vec![
                Row::Group(GroupId::Role(Snowflake(11)), 1),
                Row::Member(Snowflake(2), "dnd".into()),
                Row::Group(GroupId::Role(Snowflake(10)), 1),
                Row::Member(Snowflake(1), "online".into()),
                Row::Group(GroupId::Online, 2),
                Row::Member(Snowflake(5), "online".into()),
                Row::Member(Snowflake(3), "idle".into()),
                Row::Group(GroupId::Offline, 1),
                Row::Member(Snowflake(4), "offline".into()),
            ]
        );
        assert_eq!((list.member_count(), list.online_count()), (5, 4));
        assert_eq!(list.rows(2, 4).len(), 3);
        assert_eq!(
            list.rows(2, 4)[0],
            Row::Group(GroupId::Role(Snowflake(10)), 1)
        );
    }

    #[test]
    fn ranges_are_widened_to_chunks_and_bounded() {
        assert_eq!(normalise_ranges(&[(0, 99)]), Some(vec![(0, 99)]));
        assert_eq!(
            normalise_ranges(&[(150, 120), (0, 10)]),
            Some(vec![(0, 99), (100, 199)])
        );
        assert_eq!(normalise_ranges(&[(0, 301)]), None);
        assert_eq!(normalise_ranges(&[]), None);
        assert_eq!(normalise_ranges(&[(0, 1), (0, 1), (0, 1), (0, 1)]), None);
    }

    #[test]
    fn murmur3_matches_the_reference_vectors() {
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn subscriptions_parse_both_opcodes() {
        let bulk = json!({"subscriptions": {"5": {"typing": true, "activities": true,
            "threads": true, "channels": {"6": [[0, 99]]}, "member_updates": false}}});
        let parsed = SubscriptionRequest::parse_bulk(&bulk).unwrap();
        assert_eq!(parsed[0].0, Snowflake(5));
        assert_eq!(parsed[0].1.channels, vec![(Snowflake(6), vec![(0, 99)])]);
        assert_eq!(parsed[0].1.typing, Some(true));
        let single = json!({"guild_id": "5", "channels": {"6": [[0, 99]]}, "members": ["7"]});
        let (guild, request) = SubscriptionRequest::parse_single(&single).unwrap();
        assert_eq!((guild, request.members), (Snowflake(5), vec![Snowflake(7)]));
        assert!(
            SubscriptionRequest::parse_bulk(&json!({"subscriptions": {"5": {"typing": 1}}}))
                .is_err()
        );
    }

    #[derive(Debug, Clone)]
    enum Change {
        Join(u64, u8, u8, u8),
        Leave(u64),
        Roles(u64, u8),
        Nick(u64, u8),
        Presence(u64, u8),
    }

    const NAMES: [&str; 6] = ["ann", "Bob", "bob", "cy", "Dee", "eve"];
    const STATUSES: [&str; 4] = ["online", "idle", "dnd", "offline"];
    const ROLE_SETS: [&[u64]; 5] = [&[], &[10], &[11], &[10, 11], &[12]];

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            (0u64..12, 0u8..6, 0u8..5, 0u8..4).prop_map(|(u, n, r, s)| Change::Join(u, n, r, s)),
            (0u64..12).prop_map(Change::Leave),
            (0u64..12, 0u8..5).prop_map(|(u, r)| Change::Roles(u, r)),
            (0u64..12, 0u8..6).prop_map(|(u, n)| Change::Nick(u, n)),
            (0u64..12, 0u8..4).prop_map(|(u, s)| Change::Presence(u, s)),
        ]
    }

    /// A follower's copy of its ranges of the list (index → row), changed only by the
    /// operations it receives.
    fn apply_sparse(model: &mut std::collections::BTreeMap<usize, Row>, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Sync((start, end), rows) => {
                    model.retain(|i, _| !(start..=end).contains(&i));
                    for (i, row) in rows.iter().enumerate() {
                        model.insert(start + i, row.clone());
                    }
                }
                Op::Insert(at, row) => {
                    let moved: Vec<(usize, Row)> = model.split_off(at).into_iter().collect();
                    model.extend(moved.into_iter().map(|(i, r)| (i + 1, r)));
                    model.insert(*at, row.clone());
                }
                Op::Update(at, row) => {
                    model.insert(*at, row.clone());
                }
                Op::Delete(at) => {
                    let moved: Vec<(usize, Row)> = model.split_off(at).into_iter().collect();
                    model.extend(
                        moved
                            .into_iter()
                            .filter(|(i, _)| i != at)
                            .map(|(i, r)| (i - 1, r)),
                    );
                }
                Op::Invalidate((start, end)) => {
                    model.retain(|i, _| !(start..=end).contains(&i));
                }
            }
        }
    }

    fn apply_change(list: &mut MemberList, change: Change) -> Vec<Op> {
        match change {
            Change::Join(u, n, r, s) => list.upsert(member(
                u,
                NAMES[n as usize],
                ROLE_SETS[r as usize],
                STATUSES[s as usize],
            )),
            Change::Leave(u) => list.remove(Snowflake(u)),
            Change::Roles(u, r) => match list.member(Snowflake(u)).cloned() {
                Some(mut m) => {
                    m.roles = ROLE_SETS[r as usize]
                        .iter()
                        .map(|r| Snowflake(*r))
                        .collect();
                    list.upsert(m)
                }
                None => Vec::new(),
            },
            Change::Nick(u, n) => match list.member(Snowflake(u)).cloned() {
                Some(mut m) => {
                    m.display_name = NAMES[n as usize].to_string();
                    list.upsert(m)
                }
                None => Vec::new(),
            },
            Change::Presence(u, s) => match list.member(Snowflake(u)).cloned() {
                Some(mut m) => {
                    m.status = STATUSES[s as usize].to_string();
                    list.upsert(m)
                }
                None => Vec::new(),
            },
        }
    }

    const RANGE_SETS: [&[(usize, usize)]; 4] =
        [&[(0, 3)], &[(4, 7)], &[(0, 2), (6, 9)], &[(3, 5), (10, 13)]];

    proptest! {
        #[test]
        fn a_follower_of_some_ranges_always_holds_them_as_a_fresh_sync(
            changes in proptest::collection::vec(change(), 1..60),
            which in 0usize..4,
        ) {
            let roles = [role(10, 1, true), role(11, 2, true), role(12, 3, false)];
            let ranges = RANGE_SETS[which];
            let mut list = MemberList::new(&roles);
            let mut model = std::collections::BTreeMap::new();
            for change in changes {
                let ops = apply_change(&mut list, change);
                if ops.is_empty() {
                    continue;
                }
                let sent = ops_for_ranges(&list, &ops, ranges);
                // Only what lies inside the follower's ranges reaches it.
                for op in &sent {
                    let inside = match op {
                        Op::Insert(i, _) | Op::Update(i, _) | Op::Delete(i) =>
                            ranges.iter().any(|(s, e)| (s..=e).contains(&i)),
                        Op::Sync(range, _) | Op::Invalidate(range) => ranges.contains(range),
                    };
                    prop_assert!(inside, "{:?} outside {:?}", op, ranges);
                }
                apply_sparse(&mut model, &sent);
                for &(start, end) in ranges {
                    let fresh = list.rows(start, end);
                    let held: Vec<Row> = (start..=end).filter_map(|i| model.get(&i).cloned()).collect();
                    prop_assert_eq!(&held, &fresh, "range {:?}", (start, end));
                }
            }
        }
    }

    proptest! {
        #[test]
        fn a_client_applying_every_op_always_equals_a_fresh_sync(
            changes in proptest::collection::vec(change(), 1..60)
        ) {
            let roles = [role(10, 1, true), role(11, 2, true), role(12, 3, false)];
            let mut list = MemberList::new(&roles);
            let mut model: Vec<Row> = Vec::new();
            for change in changes {
                let ops = apply_change(&mut list, change);
                apply(&mut model, &ops);
                let fresh = list.all_rows();
                prop_assert_eq!(&model, &fresh);
                prop_assert_eq!(fresh.len(), list.len());
                let online = fresh.iter().filter(|r| matches!(r, Row::Member(_, s) if s != "offline")).count();
                prop_assert_eq!(online, list.online_count());
            }
        }
    }
}
