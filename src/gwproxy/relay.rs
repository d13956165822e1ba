//! The relay: applies what the shards report to the status board, hands dispatches to the
//! clients' hub and, with NATS, publishes each one to JetStream.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::mpsc;

use super::clients::Hub;
use super::nats_publish::{Outgoing, PublishHandle};
use super::shard::ShardEvent;
use super::status::ShardBoard;
use crate::gateway::client::ResumeState;
use crate::gateway::GatewayPayload;

/// The NATS side of the relay.
pub struct NatsRelay {
    /// Where dispatches are queued for JetStream.
    pub publish: PublishHandle,
    /// Each shard's current upstream session id (the dedup ids are built from it).
    pub sessions: HashMap<u32, Arc<str>>,
    /// Per shard, the session and sequence number the hub's clients have already seen: a shard
    /// that RESUMEd from an older NATS checkpoint replays those to NATS only.
    pub seen_by_clients: HashMap<u32, (Arc<str>, u64)>,
}

impl NatsRelay {
    /// A relay publishing through `publish`, for shards resuming with `resumes`; `seen` is the
    /// sessions' state the clients were saved with.
    pub fn new(
        publish: PublishHandle,
        resumes: &HashMap<u32, ResumeState>,
        seen: &HashMap<u32, ResumeState>,
    ) -> NatsRelay {
        let sessions = resumes
            .iter()
            .map(|(shard_id, state)| (*shard_id, Arc::from(state.session_id.as_str())))
            .collect();
        let seen_by_clients = seen
            .iter()
            .filter_map(|(shard_id, state)| {
                let seq = state.seq?;
                Some((*shard_id, (Arc::from(state.session_id.as_str()), seq)))
            })
            .collect();
        NatsRelay {
            publish,
            sessions,
            seen_by_clients,
        }
    }

    /// The outgoing message for a dispatch; tracks the shard's session on READY. Returns
    /// whether the hub should get it too.
    fn prepare(&mut self, shard_id: u32, payload: &GatewayPayload) -> (Outgoing, bool) {
        let event = payload.t.clone().unwrap_or_default();
        let seq = payload.s.unwrap_or(0);
        let mut resume_url = None;
        if event == "READY" {
            if let Some(session_id) = payload.d.get("session_id").and_then(Value::as_str) {
                self.sessions.insert(shard_id, Arc::from(session_id));
            }
            resume_url = payload
                .d
                .get("resume_gateway_url")
                .and_then(Value::as_str)
                .map(str::to_owned);
            self.seen_by_clients.remove(&shard_id);
        }
        let session = self
            .sessions
            .get(&shard_id)
            .cloned()
            .unwrap_or_else(|| Arc::from("unknown"));
        let to_hub = match self.seen_by_clients.get(&shard_id) {
            Some((seen_session, seen_seq)) => *seen_session != session || seq > *seen_seq,
            None => true,
        };
        let outgoing = Outgoing {
            shard_id,
            seq,
            session,
            guild_id: guild_of(&event, &payload.d),
            event,
            resume_url,
            payload: serde_json::to_vec(&payload.d).unwrap_or_default().into(),
            received: Instant::now(),
        };
        (outgoing, to_hub)
    }
}

/// The guild a dispatch concerns: `guild_id`, or `id` for the guild events themselves.
pub fn guild_of(event: &str, d: &Value) -> Option<String> {
    let field = match event {
        "GUILD_CREATE" | "GUILD_UPDATE" | "GUILD_DELETE" => "id",
        _ => "guild_id",
    };
    d.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// Applies what the shards report until every shard has dropped its sender.
pub async fn relay_events(
    mut events_rx: mpsc::Receiver<ShardEvent>,
    board: Arc<ShardBoard>,
    hub: Arc<Hub>,
    mut nats: Option<NatsRelay>,
) {
    while let Some(event) = events_rx.recv().await {
        match event {
            ShardEvent::State { shard_id, state } => board.set_state(shard_id, state),
            ShardEvent::Identified { shard_id } => board.count_identify(shard_id),
            ShardEvent::Latency { shard_id, latency } => board.set_latency(shard_id, latency),
            ShardEvent::Dispatch { shard_id, payload } => {
                board.count_event(shard_id, payload.t.as_deref().unwrap_or("?"));
                match &mut nats {
                    Some(nats) => {
                        let (outgoing, to_hub) = nats.prepare(shard_id, &payload);
                        if to_hub {
                            hub.relay(shard_id, payload);
                        }
                        nats.publish.submit(outgoing).await;
                    }
                    None => hub.relay(shard_id, payload),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guild_events_name_their_guild_by_id() {
        assert_eq!(
            guild_of("GUILD_CREATE", &json!({"id": "5"})).as_deref(),
            Some("5")
        );
        assert_eq!(
            guild_of("MESSAGE_CREATE", &json!({"id": "1", "guild_id": "7"})).as_deref(),
            Some("7")
        );
        assert_eq!(guild_of("READY", &json!({})), None);
    }
}
