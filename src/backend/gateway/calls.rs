//! Calls in DMs and group DMs (op 4 with no guild): who is in the call and who is being rung,
//! and the CALL_CREATE / CALL_UPDATE / CALL_DELETE and VOICE_STATE_UPDATE events that tell the
//! channel's recipients. No media server runs: clients get the events they wait for.
use std::collections::HashMap;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::backend::events::Dispatch;
use crate::backend::model::{channel_type, Channel};
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// One user in a call.
#[derive(Debug, Clone, PartialEq)]
struct InCall {
    session_id: String,
    self_mute: bool,
    self_deaf: bool,
}

/// A call in a private channel.
#[derive(Debug, Clone)]
struct Call {
    message_id: Snowflake,
    ringing: Vec<Snowflake>,
    members: Vec<(Snowflake, InCall)>,
}

/// Every live call by channel id.
#[derive(Default)]
pub(crate) struct Calls {
    calls: Mutex<HashMap<Snowflake, Call>>,
}

/// What op 4 asked for in a private channel.
pub(crate) struct CallVoice<'a> {
    /// The user.
    pub user_id: Snowflake,
    /// Its session.
    pub session_id: &'a str,
    /// The DM to join, or `None` to leave every call.
    pub channel_id: Option<Snowflake>,
    /// Self-muted.
    pub self_mute: bool,
    /// Self-deafened.
    pub self_deaf: bool,
}

fn recipients(channel: &Channel) -> Vec<Snowflake> {
    channel.recipient_ids.clone().unwrap_or_default()
}

fn voice_state(channel_id: Option<Snowflake>, user_id: Snowflake, who: &InCall) -> Value {
    json!({
        "guild_id": null,
        "channel_id": channel_id,
        "user_id": user_id,
        "session_id": who.session_id,
        "deaf": false,
        "mute": false,
        "self_deaf": who.self_deaf,
        "self_mute": who.self_mute,
        "self_video": false,
        "suppress": false,
        "request_to_speak_timestamp": null,
    })
}

fn call_payload(channel_id: Snowflake, call: &Call, with_states: bool) -> Value {
    let mut out = json!({
        "channel_id": channel_id,
        "message_id": call.message_id,
        "region": "local",
        "ringing": call.ringing,
    });
    if with_states {
        out["voice_states"] = Value::Array(
            call.members
                .iter()
                .map(|(id, who)| voice_state(Some(channel_id), *id, who))
                .collect(),
        );
    }
    out
}

/// The private channel `channel_id` if `user_id` is one of its recipients.
pub(crate) fn private_channel(
    state: &AppState,
    channel_id: Snowflake,
    user_id: Snowflake,
) -> Option<Channel> {
    let channel = state.store.channel(channel_id).ok()??;
    let private = matches!(channel.kind, channel_type::DM | channel_type::GROUP_DM);
    (private && recipients(&channel).contains(&user_id)).then_some(channel)
}

impl Calls {
    /// Forgets every call (a reset of the world).
    pub(crate) fn clear(&self) {
        self.calls.lock().clear();
    }

    /// Applies op 4 in a private channel and publishes what the recipients must see; returns
    /// whether the user joined a call (its session then needs a VOICE_SERVER_UPDATE).
    pub(crate) fn voice(&self, state: &AppState, request: &CallVoice<'_>) -> bool {
        let mut calls = self.calls.lock();
        let mut events: Vec<Dispatch> = Vec::new();
        // Leave the call the user is in, unless it is the one it stays in.
        let current: Vec<Snowflake> = calls
            .iter()
            .filter(|(id, call)| {
                Some(**id) != request.channel_id
                    && call.members.iter().any(|(u, _)| *u == request.user_id)
            })
            .map(|(id, _)| *id)
            .collect();
        for channel_id in current {
            let Some(channel) = private_channel(state, channel_id, request.user_id) else {
                calls.remove(&channel_id);
                continue;
            };
            let to = recipients(&channel);
            let Some(call) = calls.get_mut(&channel_id) else {
                continue;
            };
            let left = call.members.iter().position(|(u, _)| *u == request.user_id);
            if let Some(at) = left {
                let (_, who) = call.members.remove(at);
                events.push(Dispatch::users(
                    "VOICE_STATE_UPDATE",
                    to.clone(),
                    0,
                    voice_state(None, request.user_id, &who),
                ));
            }
            if call.members.is_empty() {
                calls.remove(&channel_id);
                events.push(Dispatch::users(
                    "CALL_DELETE",
                    to,
                    0,
                    json!({"channel_id": channel_id}),
                ));
            } else {
                let payload = call_payload(channel_id, call, false);
                events.push(Dispatch::users("CALL_UPDATE", to, 0, payload));
            }
        }
        let mut joined = false;
        if let Some(channel) = request
            .channel_id
            .and_then(|id| private_channel(state, id, request.user_id))
        {
            let to = recipients(&channel);
            let who = InCall {
                session_id: request.session_id.to_string(),
                self_mute: request.self_mute,
                self_deaf: request.self_deaf,
            };
            let created = !calls.contains_key(&channel.id);
            let call = calls.entry(channel.id).or_insert_with(|| Call {
                message_id: state.store.next_id(),
                ringing: to
                    .iter()
                    .copied()
                    .filter(|u| *u != request.user_id)
                    .collect(),
                members: Vec::new(),
            });
            call.ringing.retain(|u| *u != request.user_id);
            match call.members.iter_mut().find(|(u, _)| *u == request.user_id) {
                Some((_, existing)) => *existing = who.clone(),
                None => {
                    call.members.push((request.user_id, who.clone()));
                    joined = true;
                }
            }
            let name = if created {
                "CALL_CREATE"
            } else {
                "CALL_UPDATE"
            };
            let payload = call_payload(channel.id, call, created);
            events.push(Dispatch::users(name, to.clone(), 0, payload));
            let state_payload = voice_state(Some(channel.id), request.user_id, &who);
            events.push(Dispatch::users("VOICE_STATE_UPDATE", to, 0, state_payload));
        }
        drop(calls);
        for event in events {
            state.publish(event);
        }
        joined
    }

    /// CALL_CREATE of the call in `channel_id`, if there is one (op 13).
    pub(crate) fn existing(&self, channel_id: Snowflake) -> Option<Value> {
        let calls = self.calls.lock();
        calls
            .get(&channel_id)
            .map(|call| call_payload(channel_id, call, true))
    }
}
