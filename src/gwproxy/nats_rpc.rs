//! Request/reply for workers: gateway commands for a shard (`<prefix>.rpc.<shard>.command`) and
//! cache lookups answered by the process that owns the guild's shard
//! (`<prefix>.rpc.cache.query`). Both live under `rpc` so they stay outside the dispatch
//! stream's `<prefix>.*.*` subjects (a request captured by the stream would be answered by
//! JetStream's publish ack instead of by the proxy).
use std::sync::Arc;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::clients::Hub;
use super::nats::{Nats, NatsError};
use super::plan::ShardPlan;
use crate::gateway::{GatewayPayload, OpCode};

/// The command subject of `shard_id`.
pub fn command_subject(prefix: &str, shard_id: u32) -> String {
    format!("{prefix}.rpc.{shard_id}.command")
}

/// The cache query subject.
pub fn cache_subject(prefix: &str) -> String {
    format!("{prefix}.rpc.cache.query")
}

/// A worker's command: a gateway payload a client could send.
#[derive(Debug, Deserialize)]
struct CommandRequest {
    op: u8,
    d: Value,
}

/// What a cache query asks for.
#[derive(Debug, Deserialize)]
struct CacheRequest {
    kind: String,
    guild_id: String,
    #[serde(default)]
    id: Option<String>,
}

/// Subscribes to the command subjects of the shards run here and to the cache query subject;
/// each answers until the connection closes or the tasks are aborted.
pub async fn serve(
    nats: &Nats,
    hub: Arc<Hub>,
    plan: &ShardPlan,
    process: String,
) -> Result<JoinSet<()>, NatsError> {
    let mut tasks = JoinSet::new();
    let prefix = nats.config.subject_prefix.clone();
    for shard_id in plan.shard_ids() {
        let subject = command_subject(&prefix, shard_id);
        let mut subscription = subscribe(nats, &subject).await?;
        let (client, hub, stats) = (nats.client.clone(), hub.clone(), nats.stats.clone());
        tasks.spawn(async move {
            while let Some(message) = subscription.next().await {
                let answer = command(&hub, shard_id, &message.payload);
                if answer["ok"] == true {
                    stats.count_command();
                }
                if let Some(reply) = message.reply {
                    let _ = client.publish(reply, answer.to_string().into()).await;
                }
            }
        });
    }
    let mut subscription = subscribe(nats, &cache_subject(&prefix)).await?;
    let (client, stats, total) = (nats.client.clone(), nats.stats.clone(), plan.total);
    let plan = plan.clone();
    tasks.spawn(async move {
        while let Some(message) = subscription.next().await {
            let Some(answer) = cache_query(&hub, &plan, total, &process, &message.payload) else {
                // Another process owns the guild's shard and answers.
                continue;
            };
            stats.count_cache_query();
            if let Some(reply) = message.reply {
                let _ = client.publish(reply, answer.to_string().into()).await;
            }
        }
    });
    Ok(tasks)
}

async fn subscribe(nats: &Nats, subject: &str) -> Result<async_nats::Subscriber, NatsError> {
    nats.client
        .subscribe(subject.to_owned())
        .await
        .map_err(|err| NatsError::Subscribe {
            subject: subject.to_owned(),
            reason: err.to_string(),
        })
}

fn refusal(message: &str) -> Value {
    json!({"ok": false, "error": message})
}

/// Checks a worker's command and queues it on the shard (within the shard's send budget).
fn command(hub: &Hub, shard_id: u32, body: &[u8]) -> Value {
    let request: CommandRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(err) => return refusal(&format!("expected {{\"op\": 3|4|8, \"d\": {{…}}}}: {err}")),
    };
    let op = match request.op {
        3 => OpCode::PresenceUpdate,
        4 => OpCode::VoiceStateUpdate,
        8 => OpCode::RequestGuildMembers,
        other => {
            return refusal(&format!(
                "op {other} is not a worker command (3 presence, 4 voice state, 8 request guild members)"
            ))
        }
    };
    if !request.d.is_object() {
        return refusal("`d` must be an object");
    }
    let payload = GatewayPayload {
        op,
        d: request.d,
        s: None,
        t: None,
    };
    if hub.shard_command(shard_id, payload) {
        json!({"ok": true, "shard": shard_id})
    } else {
        refusal("the shard is not running")
    }
}

/// The shard of `guild_id` under `total` shards (Discord's `(id >> 22) % total`).
pub fn shard_of(guild_id: u64, total: u32) -> u32 {
    u32::try_from((guild_id >> 22) % u64::from(total.max(1))).unwrap_or(0)
}

/// Answers a cache query for a guild on a shard run here; `None` when another process owns it.
fn cache_query(
    hub: &Hub,
    plan: &ShardPlan,
    total: u32,
    process: &str,
    body: &[u8],
) -> Option<Value> {
    let request: CacheRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        // Every process would say the same; the first one to say it is enough.
        Err(err) if plan.start == 0 => {
            return Some(refusal(&format!(
                "expected {{\"kind\": \"guild|channel|member|role\", \"guild_id\": \"…\", \"id\": \"…\"}}: {err}"
            )))
        }
        Err(_) => return None,
    };
    let guild_id: u64 = request.guild_id.parse().ok()?;
    let shard_id = shard_of(guild_id, total);
    if !plan.shard_ids().contains(&shard_id) {
        return None;
    }
    let guild = hub.cached_guild(shard_id, &request.guild_id);
    let found = match (request.kind.as_str(), guild, request.id.as_deref()) {
        ("guild", guild, _) => guild,
        ("channel", Some(guild), Some(id)) => find(&guild, &["channels", "threads"], id, None),
        ("role", Some(guild), Some(id)) => find(&guild, &["roles"], id, None),
        ("member", Some(guild), Some(id)) => find(&guild, &["members"], id, Some("user")),
        ("channel" | "role" | "member", _, _) => None,
        (other, _, _) => {
            return Some(refusal(&format!(
                "kind `{other}` is not guild, channel, member or role"
            )))
        }
    };
    Some(json!({
        "ok": true,
        "shard": shard_id,
        "process": process,
        "found": found.is_some(),
        "data": found,
    }))
}

/// The element of `guild[list]` (for any of `lists`) whose id (or `inner.id`) is `id`.
fn find(guild: &Value, lists: &[&str], id: &str, inner: Option<&str>) -> Option<Value> {
    lists
        .iter()
        .filter_map(|list| guild.get(*list).and_then(Value::as_array))
        .flatten()
        .find(|item| {
            let holder = match inner {
                Some(field) => item.get(field).unwrap_or(&Value::Null),
                None => item,
            };
            holder.get("id").and_then(Value::as_str) == Some(id)
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_follow_discords_formula_and_lookups_find_nested_ids() {
        let guild_id: u64 = 200_000_000_000_000_001;
        assert_eq!(shard_of(guild_id, 4), ((guild_id >> 22) % 4) as u32);
        assert_eq!(shard_of(guild_id, 0), 0);
        let guild = json!({"channels": [{"id": "1"}], "threads": [{"id": "2"}],
                           "members": [{"user": {"id": "3"}}]});
        assert_eq!(
            find(&guild, &["channels", "threads"], "2", None),
            Some(json!({"id": "2"}))
        );
        assert!(find(&guild, &["members"], "3", Some("user")).is_some());
        assert!(find(&guild, &["roles"], "3", None).is_none());
        assert_eq!(command_subject("d", 2), "d.rpc.2.command");
    }
}
