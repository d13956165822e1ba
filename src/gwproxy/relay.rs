//! The relay: applies what the shards report to the status board, hands dispatches to the
//! clients' hub and, with NATS, publishes each one to JetStream.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::mpsc;

use super::clients::Hub;
use super::nats_publish::{Outgoing, PublishHandle};
use super::shard::{Dispatch, ShardEvent};
use super::status::ShardBoard;
use crate::gateway::client::ResumeState;

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
    fn prepare(&mut self, shard_id: u32, dispatch: &mut Dispatch) -> (Outgoing, bool) {
        let event = dispatch.name.clone();
        let seq = dispatch.seq.unwrap_or(0);
        let mut resume_url = None;
        if event == "READY" {
            let d = dispatch.value();
            if let Some(session_id) = d.get("session_id").and_then(Value::as_str) {
                self.sessions.insert(shard_id, Arc::from(session_id));
            }
            resume_url = d
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
            guild_id: dispatch.str_field(guild_field(&event)),
            event,
            resume_url,
            payload: dispatch.raw.clone(),
            received: Instant::now(),
        };
        (outgoing, to_hub)
    }
}

/// The field naming the guild a dispatch concerns: `guild_id`, or `id` for the guild events
/// themselves.
pub fn guild_field(event: &str) -> &'static str {
    match event {
        "GUILD_CREATE" | "GUILD_UPDATE" | "GUILD_DELETE" => "id",
        _ => "guild_id",
    }
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
            ShardEvent::Dispatch {
                shard_id,
                mut dispatch,
            } => {
                board.count_event(shard_id, &dispatch.name);
                // The data is parsed only when the cache or a client session needs it.
                let hub_needs = hub.needs(shard_id, &dispatch.name);
                match &mut nats {
                    Some(nats) => {
                        let (outgoing, to_hub) = nats.prepare(shard_id, &mut dispatch);
                        if to_hub && hub_needs {
                            hub.relay(shard_id, dispatch.into_payload());
                        }
                        nats.publish.submit(outgoing).await;
                    }
                    None if hub_needs => hub.relay(shard_id, dispatch.into_payload()),
                    None => {}
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
        let raw = |text: &str| Dispatch::new("X".into(), None, text.to_owned().into(), None);
        let guild = raw(r#"{"id": "5", "name": "g"}"#);
        assert_eq!(
            guild.str_field(guild_field("GUILD_CREATE")).as_deref(),
            Some("5")
        );
        let message = raw(r#"{"id": "1", "nested": {"guild_id": "9"}, "guild_id": "7"}"#);
        assert_eq!(
            message.str_field(guild_field("MESSAGE_CREATE")).as_deref(),
            Some("7")
        );
        // Parsed or not, the answer is the same; non-strings and non-objects give none.
        let mut parsed = raw(r#"{"guild_id": "7"}"#);
        parsed.value();
        assert_eq!(parsed.str_field("guild_id").as_deref(), Some("7"));
        assert_eq!(raw(r#"{"guild_id": 7}"#).str_field("guild_id"), None);
        assert_eq!(raw("[1, 2]").str_field("guild_id"), None);
        assert_eq!(raw("{}").str_field(guild_field("READY")), None);
        assert_eq!(raw("{").value(), &json!(null));
    }
}
