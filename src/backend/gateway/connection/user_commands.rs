//! The official client's side of a connection: its session (capabilities, client info, status),
//! user READY and READY_SUPPLEMENTAL, SESSIONS_REPLACE and the aggregate presence, and every
//! client opcode userdoccers lists as sent by clients: answered as Discord answers it
//! (GUILD_MEMBER_LIST_UPDATE, GUILD_MEMBERS_CHUNK, LAST_MESSAGES, ...) or accepted and ignored
//! where Discord sends nothing back.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;

use super::super::calls::{self, CallVoice};
use super::super::member_list::{normalise_ranges, SubscriptionRequest};
use super::super::registry::SessionRecord;
use super::super::sessions::{self, UserSession};
use super::super::user_ready::{self, ReadyContext, UserReadyInfo};
use super::super::Inner;
use super::{publish_presence, Connection};
use crate::backend::events::Dispatch;
use crate::backend::model::User;
use crate::backend::snowflake::Snowflake;
use crate::backend::store::StoreError;
use crate::gateway::capabilities::Capabilities;
use crate::gateway::close::CloseCode;
use crate::gateway::events::{PresenceUpdate, VoiceStateUpdate};
use crate::gateway::server::{IdentifyInfo, ServerAction};
use crate::gateway::wire::Prepared;
use crate::gateway::{GatewayPayload, OpCode};

/// Orders status changes across sessions (larger is later).
static CHANGES: AtomicU64 = AtomicU64::new(1);

/// What the gateway does with a client opcode once the session is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// Handled by the bot-era code (3, 4, 8) or the session machine (1, 2, 6, 40).
    Existing,
    /// Answered with this dispatch.
    Dispatch(&'static str),
    /// Accepted; Discord sends nothing back (or nothing this backend can produce: no voice or
    /// stream servers, no lobbies, no remote sessions).
    Ignored,
    /// Not a client opcode: the session machine closes with 4001.
    Refused,
}

/// The answer to each opcode (the table userdoccers' opcode page lists as "Send").
pub(super) fn answer(op: OpCode) -> Answer {
    match op.code() {
        1 | 2 | 3 | 4 | 6 | 8 | 40 => Answer::Existing,
        13 => Answer::Dispatch("CALL_CREATE"),
        14 | 37 => Answer::Dispatch("GUILD_MEMBER_LIST_UPDATE"),
        28 => Answer::Dispatch("FORUM_UNREADS"),
        34 => Answer::Dispatch("LAST_MESSAGES"),
        35 => Answer::Dispatch("GUILD_MEMBERS_CHUNK"),
        36 => Answer::Dispatch("CHANNEL_STATUSES"),
        39 => Answer::Dispatch("CHANNEL_MEMBER_COUNT_UPDATE"),
        43 => Answer::Dispatch("CHANNEL_INFO"),
        5 | 12 | 15..=27 | 29..=33 | 38 | 41 | 42 => Answer::Ignored,
        _ => Answer::Refused,
    }
}

fn snowflake_of(value: Option<&Value>) -> Option<Snowflake> {
    let value = value?;
    value
        .as_str()
        .and_then(Snowflake::parse)
        .or_else(|| value.as_u64().map(Snowflake))
}

/// What IDENTIFY's `client_state` says the client has cached.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ClientState {
    /// Guild id → the version of it the client holds.
    pub guild_versions: HashMap<Snowflake, u64>,
    /// The guild to send INITIAL_GUILD for.
    pub initial_guild_id: Option<Snowflake>,
}

impl ClientState {
    /// Reads `client_state` (absent or malformed parts count as nothing cached).
    pub(super) fn of(value: Option<&Value>) -> ClientState {
        let Some(value) = value else {
            return ClientState::default();
        };
        let guild_versions = value
            .get("guild_versions")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(id, version)| {
                        let version = version
                            .as_u64()
                            .or_else(|| version.as_str().and_then(|s| s.parse().ok()))?;
                        Some((Snowflake::parse(id)?, version))
                    })
                    .collect()
            })
            .unwrap_or_default();
        ClientState {
            guild_versions,
            initial_guild_id: snowflake_of(value.get("initial_guild_id")),
        }
    }
}

/// Publishes SESSIONS_REPLACE to the user's sessions and, when it changed, the user's aggregate
/// presence to its guilds and friends.
pub(in crate::backend::gateway) fn refresh_presence(inner: &Inner, user_id: Snowflake) {
    let list = inner.registry.user_sessions(user_id, Instant::now());
    inner.state.publish(Dispatch::users(
        "SESSIONS_REPLACE",
        vec![user_id],
        0,
        sessions::sessions_json(&list),
    ));
    let aggregate = sessions::aggregate(&list);
    if inner.registry.set_presence(user_id, aggregate.clone()) {
        publish_presence(inner, user_id, aggregate.as_ref());
    }
}

impl Connection {
    /// Records what a user session adds (capabilities, client info, initial presence) and
    /// publishes its sessions and presence.
    pub(super) fn start_user_session(
        &mut self,
        info: &IdentifyInfo,
        user: &User,
        record: &Arc<Mutex<SessionRecord>>,
    ) {
        let capabilities = info
            .extra
            .get("capabilities")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let (client, os) = sessions::client_info(&info.properties);
        let presence = info
            .presence
            .as_ref()
            .and_then(|p| serde_json::from_value::<PresenceUpdate>(p.clone()).ok());
        let (status, activities) = match presence {
            Some(p) => (sessions::requested_status(&p.status), p.activities),
            None => ("online", Vec::new()),
        };
        record.lock().user_session = Some(UserSession {
            capabilities: Capabilities(capabilities),
            client,
            os,
            status: status.to_string(),
            activities,
            changed: CHANGES.fetch_add(1, Ordering::Relaxed),
            by_intents: info.intents.is_some(),
        });
        refresh_presence(&self.inner, user.id);
    }

    /// INITIAL_GUILD (when `client_state.initial_guild_id` asks for it), READY and
    /// READY_SUPPLEMENTAL of a user session.
    pub(super) fn build_user_ready(
        &self,
        user: &User,
        session_id: &str,
        guild_ids: &[Snowflake],
        identify: &IdentifyInfo,
    ) -> Result<Vec<Arc<Prepared>>, StoreError> {
        let capabilities = self
            .record
            .as_ref()
            .and_then(|r| r.lock().user_session.as_ref().map(|s| s.capabilities))
            .unwrap_or_default();
        let client_state = ClientState::of(identify.extra.get("client_state"));
        let list = self.inner.registry.user_sessions(user.id, Instant::now());
        let info = UserReadyInfo {
            version: self.version,
            user,
            session_id,
            resume_gateway_url: &self.advertised_url,
            guild_ids,
            capabilities,
            sessions: sessions::sessions_json(&list),
            guild_versions: &client_state.guild_versions,
        };
        let context = ReadyContext {
            store: &self.inner.state.store,
            registry: &self.inner.registry,
            guilds: &self.inner.ready_guilds,
            info: &info,
        };
        let mut own = Vec::new();
        if let Some(initial) = client_state
            .initial_guild_id
            .filter(|id| guild_ids.contains(id))
        {
            if let Some(guild) = user_ready::initial_guild(&context, initial)? {
                own.push(Prepared::from_json("INITIAL_GUILD", guild));
            }
        }
        let built = user_ready::build(&context)?;
        own.push(Prepared::from_json("READY", built.ready));
        if let Some(supplemental) = built.supplemental {
            own.push(Prepared::new("READY_SUPPLEMENTAL", supplemental));
        }
        Ok(own)
    }

    /// Runs a client opcode the bot-era code does not; `None` hands it back.
    pub(super) async fn on_user_command<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        user: &User,
        payload: &GatewayPayload,
    ) -> Option<Vec<ServerAction>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        if payload.op == OpCode::PresenceUpdate && !user.bot {
            if payload.view::<PresenceUpdate>().is_err() {
                return Some(self.session.close(CloseCode::UnknownOpcode));
            }
            self.user_presence(user, &payload.d);
            return Some(Vec::new());
        }
        if payload.op == OpCode::VoiceStateUpdate && !user.bot {
            match payload.view::<VoiceStateUpdate>() {
                Ok(update) if update.guild_id.is_none() => {
                    self.call_voice(user, &update);
                    return Some(Vec::new());
                }
                Ok(_) => return None,
                Err(_) => return Some(self.session.close(CloseCode::UnknownOpcode)),
            }
        }
        let answer = answer(payload.op);
        let Answer::Dispatch(_) = answer else {
            return match answer {
                Answer::Ignored => Some(Vec::new()),
                _ => None,
            };
        };
        let replies = match self.answer_command(user, payload) {
            Ok(replies) => replies,
            Err(code) => return Some(self.session.close(code)),
        };
        self.send_dispatches(ws, replies).await;
        Some(Vec::new())
    }

    /// Op 4 without a guild: join, change or leave a call in a DM or group DM.
    fn call_voice(&self, user: &User, update: &VoiceStateUpdate) {
        let session_id = self
            .record
            .as_ref()
            .map(|r| r.lock().id.clone())
            .unwrap_or_default();
        let joined = self.inner.calls.voice(
            &self.inner.state,
            &CallVoice {
                user_id: user.id,
                session_id: &session_id,
                channel_id: update.channel_id.map(Snowflake),
                self_mute: update.self_mute,
                self_deaf: update.self_deaf,
            },
        );
        if let (true, Some(record)) = (joined, &self.record) {
            let server = Prepared::new(
                "VOICE_SERVER_UPDATE",
                json!({
                    "token": super::builders::random_hex(8),
                    "guild_id": null,
                    "channel_id": update.channel_id.map(Snowflake),
                    "endpoint": self.voice_endpoint(),
                }),
            );
            let limits = self.inner.registry.limits;
            record.lock().offer(&server, &limits);
        }
    }

    /// Op 3 of a user session: the session's status and activities, then the aggregate.
    fn user_presence(&self, user: &User, d: &Value) {
        let Ok(update) = serde_json::from_value::<PresenceUpdate>(d.clone()) else {
            return;
        };
        if let Some(record) = &self.record {
            if let Some(session) = record.lock().user_session.as_mut() {
                session.status = sessions::requested_status(&update.status).to_string();
                session.activities = update.activities;
                session.changed = CHANGES.fetch_add(1, Ordering::Relaxed);
            }
        }
        refresh_presence(&self.inner, user.id);
    }

    /// The dispatches answering an opcode, or the close code a malformed one deserves.
    fn answer_command(
        &mut self,
        user: &User,
        payload: &GatewayPayload,
    ) -> Result<Vec<Arc<Prepared>>, CloseCode> {
        let d = &payload.d;
        if !d.is_object() {
            return Err(CloseCode::UnknownOpcode);
        }
        let guild_id = snowflake_of(d.get("guild_id"));
        let member_of = |guild_id: Option<Snowflake>| {
            guild_id.filter(|g| matches!(self.inner.state.store.member(*g, user.id), Ok(Some(_))))
        };
        let reply = |name: &'static str, data: Value| vec![Prepared::new(name, data)];
        Ok(match payload.op.code() {
            14 => {
                let (guild, request) =
                    SubscriptionRequest::parse_single(d).map_err(|_| CloseCode::UnknownOpcode)?;
                self.subscribe(user, guild, request)
            }
            37 => {
                let requests =
                    SubscriptionRequest::parse_bulk(d).map_err(|_| CloseCode::UnknownOpcode)?;
                let mut out = Vec::new();
                for (guild, request) in requests {
                    out.extend(self.subscribe(user, guild, request));
                }
                out
            }
            35 => match member_of(guild_id) {
                Some(guild) => self.recent_members(guild, d),
                None => Vec::new(),
            },
            34 => match member_of(guild_id) {
                Some(guild) => reply(
                    "LAST_MESSAGES",
                    json!({"guild_id": guild, "messages": self.last_messages(user, d)}),
                ),
                None => Vec::new(),
            },
            36 | 43 => match member_of(guild_id) {
                Some(guild) => {
                    let name = if payload.op.code() == 36 {
                        "CHANNEL_STATUSES"
                    } else {
                        "CHANNEL_INFO"
                    };
                    reply(
                        name,
                        json!({"guild_id": guild, "channels": self.voice_statuses(guild)}),
                    )
                }
                None => Vec::new(),
            },
            39 => self.channel_member_count(user, d),
            28 => match member_of(guild_id) {
                Some(guild) => reply(
                    "FORUM_UNREADS",
                    json!({"guild_id": guild, "channel_id": d.get("channel_id"), "threads": []}),
                ),
                None => Vec::new(),
            },
            13 => {
                let channel = snowflake_of(d.get("channel_id"))
                    .and_then(|id| calls::private_channel(&self.inner.state, id, user.id));
                match channel.and_then(|c| self.inner.calls.existing(c.id)) {
                    Some(call) => reply("CALL_CREATE", call),
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        })
    }

    /// Op 14 / 37 for one guild: records the subscription and SYNCs each channel's ranges.
    fn subscribe(
        &mut self,
        user: &User,
        guild_id: Snowflake,
        request: SubscriptionRequest,
    ) -> Vec<Arc<Prepared>> {
        let state = &self.inner.state;
        if !matches!(state.store.member(guild_id, user.id), Ok(Some(_))) {
            return Vec::new();
        }
        let mut replies = Vec::new();
        let mut channels = Vec::new();
        for (channel_id, ranges) in request.channels.iter().take(5) {
            let Some(ranges) = normalise_ranges(ranges) else {
                continue;
            };
            let Ok(access) = state.channel_access(*channel_id, user) else {
                continue;
            };
            if access.channel.guild_id != Some(guild_id) {
                continue;
            }
            match self
                .inner
                .lists
                .sync(state, &self.inner.registry, &access.channel, &ranges)
            {
                Ok((list_id, payload)) => {
                    replies.push(Prepared::new("GUILD_MEMBER_LIST_UPDATE", payload));
                    channels.push((*channel_id, (list_id, ranges)));
                }
                Err(e) => tracing::error!("cannot build member list: {e}"),
            }
        }
        for thread_id in &request.thread_member_lists {
            if let Some(update) = self.thread_member_list(user, guild_id, *thread_id) {
                replies.push(update);
            }
        }
        let threads_before = self.record.as_ref().is_some_and(|r| {
            r.lock()
                .subscriptions
                .guilds
                .get(&guild_id)
                .is_some_and(|s| s.threads)
        });
        if request.threads == Some(true) && !threads_before {
            replies.push(self.thread_list_sync(user, guild_id));
        }
        if let Some(record) = &self.record {
            let mut record = record.lock();
            let sub = record.subscriptions.guilds.entry(guild_id).or_default();
            sub.typing |= request.typing.unwrap_or(false);
            sub.threads = request.threads.unwrap_or(sub.threads);
            sub.activities = request.activities.unwrap_or(sub.activities);
            sub.member_updates = request.member_updates.unwrap_or(sub.member_updates);
            for member in request.members {
                if !sub.members.contains(&member) {
                    sub.members.push(member);
                }
            }
            if !request.channels.is_empty() {
                sub.channels = channels.into_iter().collect();
            }
            sub.thread_member_lists = request.thread_member_lists;
        }
        replies
    }

    /// THREAD_LIST_SYNC of every thread of the guild the user can see (sent when a
    /// subscription turns `threads` on), with the user's own thread memberships.
    fn thread_list_sync(&self, user: &User, guild_id: Snowflake) -> Arc<Prepared> {
        let state = &self.inner.state;
        let store = &state.store;
        let mut threads = Vec::new();
        let mut members = Vec::new();
        for channel in store.guild_channel_list(guild_id).unwrap_or_default() {
            if !crate::backend::model::channel_type::is_thread(channel.kind)
                || state.channel_access(channel.id, user).is_err()
            {
                continue;
            }
            if let Ok(Some(member)) = store.thread_members.get((channel.id, user.id)) {
                members.push(serde_json::to_value(&member).unwrap_or_default());
            }
            if let Ok(value) = crate::backend::render::channel(store, &channel) {
                threads.push(value);
            }
        }
        Prepared::new(
            "THREAD_LIST_SYNC",
            json!({"guild_id": guild_id, "threads": threads, "members": members}),
        )
    }

    /// THREAD_MEMBER_LIST_UPDATE for a thread the user can see.
    fn thread_member_list(
        &self,
        user: &User,
        guild_id: Snowflake,
        thread_id: Snowflake,
    ) -> Option<Arc<Prepared>> {
        let state = &self.inner.state;
        state.channel_access(thread_id, user).ok()?;
        let mut members = Vec::new();
        for tm in state.store.thread_members.values(thread_id).ok()? {
            let Ok(Some(member)) = state.store.member(guild_id, tm.user_id) else {
                continue;
            };
            let presence = self.inner.registry.presence(tm.user_id);
            members.push(json!({
                "user_id": tm.user_id,
                "member": crate::backend::render::member(&state.store, &member).ok()?,
                "presence": presence.map(|p| super::builders::presence(tm.user_id, None, &p)),
            }));
        }
        Some(Prepared::new(
            "THREAD_MEMBER_LIST_UPDATE",
            json!({"guild_id": guild_id, "thread_id": thread_id, "members": members}),
        ))
    }

    /// Op 35: the most recently joined members (matching `query`), newest first.
    fn recent_members(&self, guild_id: Snowflake, d: &Value) -> Vec<Arc<Prepared>> {
        let store = &self.inner.state.store;
        let query = d
            .get("query")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        let mut members = store.members.values(guild_id).unwrap_or_default();
        members.sort_by(|a, b| b.joined_at.cmp(&a.joined_at));
        if let Some(after) = snowflake_of(d.get("continuation_token")) {
            if let Some(at) = members.iter().position(|m| m.user_id == after) {
                members.drain(..=at);
            }
        }
        let limit = if query.is_empty() { 1000 } else { 1 };
        let found: Vec<Value> = members
            .iter()
            .filter(|m| {
                query.is_empty()
                    || m.nick
                        .as_ref()
                        .is_some_and(|n| n.to_lowercase().starts_with(&query))
                    || store.user(m.user_id).ok().flatten().is_some_and(|u| {
                        u.username.to_lowercase().starts_with(&query)
                            || u.global_name
                                .is_some_and(|g| g.to_lowercase().starts_with(&query))
                    })
            })
            .take(limit)
            .filter_map(|m| crate::backend::render::member(store, m).ok())
            .collect();
        let mut chunk = json!({"guild_id": guild_id, "members": found,
            "chunk_index": 0, "chunk_count": 1});
        if let Some(nonce) = d.get("nonce").and_then(Value::as_str) {
            if nonce.len() <= 32 {
                chunk["nonce"] = json!(nonce);
            }
        }
        vec![Prepared::new("GUILD_MEMBERS_CHUNK", chunk)]
    }

    /// Op 34: the last message of each requested channel the user can read.
    fn last_messages(&self, user: &User, d: &Value) -> Vec<Value> {
        let state = &self.inner.state;
        let ids = d
            .get("channel_ids")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        ids.iter()
            .take(100)
            .filter_map(|id| snowflake_of(Some(id)))
            .filter_map(|id| {
                state.channel_access(id, user).ok()?;
                let last = state.store.last_message_id(id).ok()??;
                let message = state.store.message(id, last).ok()??;
                crate::backend::render::message(&state.store, &message, Some(user.id)).ok()
            })
            .collect()
    }

    /// Op 36 / 43: the voice channels' statuses.
    fn voice_statuses(&self, guild_id: Snowflake) -> Vec<Value> {
        let store = &self.inner.state.store;
        store
            .guild_channel_list(guild_id)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| {
                let status = store.extra.voice_statuses.get(c.id).ok()??;
                Some(json!({"id": c.id, "status": status}))
            })
            .collect()
    }

    /// Op 39: how many members can view the channel, and how many of them are online.
    fn channel_member_count(&self, user: &User, d: &Value) -> Vec<Arc<Prepared>> {
        let state = &self.inner.state;
        let Some(channel_id) = snowflake_of(d.get("channel_id")) else {
            return Vec::new();
        };
        let Ok(access) = state.channel_access(channel_id, user) else {
            return Vec::new();
        };
        let Some(guild_id) = access.channel.guild_id else {
            return Vec::new();
        };
        let (mut members, mut online) = (0usize, 0usize);
        for member in state.store.members.values(guild_id).unwrap_or_default() {
            let Ok(Some(viewer)) = state.store.user(member.user_id) else {
                continue;
            };
            if state.channel_access(channel_id, &viewer).is_ok() {
                members += 1;
                if self.inner.registry.presence(member.user_id).is_some() {
                    online += 1;
                }
            }
        }
        vec![Prepared::new(
            "CHANNEL_MEMBER_COUNT_UPDATE",
            json!({"guild_id": guild_id, "channel_id": channel_id,
                "member_count": members, "presence_count": online}),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::server::{IdentifyVerdict, ServerConfig, ServerSession};

    /// Every opcode number: what the session machine does with it after IDENTIFY, and what
    /// the connection answers.
    #[test]
    fn every_client_opcode_is_handled_and_other_numbers_close_with_4001() {
        let client_sent: Vec<u8> = (1..=6).chain(8..=8).chain(12..=43).collect();
        for code in 0..=u8::MAX {
            let now = Instant::now();
            let (mut session, _) = ServerSession::new(ServerConfig::default(), now);
            session.on_payload(
                &GatewayPayload::new(OpCode::Identify, json!({"token": "t"})),
                10,
                now,
            );
            session.complete_identify(IdentifyVerdict::Accept, now);
            let d = if code == 1 { Value::Null } else { json!({}) };
            let actions =
                session.on_payload(&GatewayPayload::new(OpCode::from_code(code), d), 10, now);
            let closed_4001 = actions.contains(&ServerAction::Close(CloseCode::UnknownOpcode));
            let answer = answer(OpCode::from_code(code));
            if client_sent.contains(&code) {
                assert!(!closed_4001 || code == 2 || code == 6, "op {code} closed");
                assert_ne!(answer, Answer::Refused, "op {code}");
            } else {
                assert!(closed_4001, "op {code} not refused");
                assert_eq!(answer, Answer::Refused, "op {code}");
            }
        }
        assert_eq!(
            answer(OpCode::from_code(37)),
            Answer::Dispatch("GUILD_MEMBER_LIST_UPDATE")
        );
        assert_eq!(
            answer(OpCode::from_code(35)),
            Answer::Dispatch("GUILD_MEMBERS_CHUNK")
        );
        assert_eq!(
            answer(OpCode::from_code(34)),
            Answer::Dispatch("LAST_MESSAGES")
        );
        assert_eq!(
            answer(OpCode::from_code(39)),
            Answer::Dispatch("CHANNEL_MEMBER_COUNT_UPDATE")
        );
        assert_eq!(answer(OpCode::from_code(41)), Answer::Ignored);
    }
}
