//! `routes --asyncapi`: an AsyncAPI 3.0 document of the gateway as recorded: one message per
//! opcode and direction and per dispatch event, each with the payload schema merged from every
//! frame ([`super::gateway`]), the encodings and compressions seen, and whether Discord's
//! documentation lists it.
use serde_json::{json, Map, Value};

use super::gateway::{DocumentedEvents, GatewayInferred, MessageKind, MessageStats};
use super::range::rfc3339;

/// The AsyncAPI 3.0 document of what was inferred.
pub fn document(inferred: &GatewayInferred, docs: &DocumentedEvents) -> Value {
    let mut servers = Map::new();
    for host in &inferred.hosts {
        servers.insert(
            component_key(host),
            json!({"host": host, "protocol": "wss", "description": format!("{host} as recorded")}),
        );
    }
    let server_refs: Vec<Value> = servers
        .keys()
        .map(|key| json!({"$ref": format!("#/servers/{key}")}))
        .collect();
    let mut channel_messages = Map::new();
    let mut components = Map::new();
    let mut sends = Vec::new();
    let mut receives = Vec::new();
    for (kind, stats) in &inferred.messages {
        let key = message_key(kind);
        components.insert(key.clone(), message(kind, stats, docs));
        channel_messages.insert(
            key.clone(),
            json!({"$ref": format!("#/components/messages/{key}")}),
        );
        let reference = json!({"$ref": format!("#/channels/gateway/messages/{key}")});
        if kind.direction == "send" {
            sends.push(reference);
        } else {
            receives.push(reference);
        }
    }
    let mut channel = Map::new();
    channel.insert("address".into(), json!("/"));
    channel.insert(
        "description".into(),
        json!("The gateway WebSocket: every message recorded on it, by opcode and event."),
    );
    if !server_refs.is_empty() {
        channel.insert("servers".into(), Value::Array(server_refs));
    }
    channel.insert("messages".into(), Value::Object(channel_messages));
    channel.insert("bindings".into(), json!({"ws": query_binding(inferred)}));
    let mut operations = Map::new();
    for (name, action, messages, what) in [
        ("send", "send", sends, "Messages the client sent."),
        (
            "receive",
            "receive",
            receives,
            "Messages the client received.",
        ),
    ] {
        if !messages.is_empty() {
            operations.insert(
                name.into(),
                json!({
                    "action": action,
                    "channel": {"$ref": "#/channels/gateway"},
                    "summary": what,
                    "messages": messages,
                }),
            );
        }
    }
    let mut doc = Map::new();
    doc.insert("asyncapi".into(), json!("3.0.0"));
    doc.insert(
        "info".into(),
        json!({
            "title": "Discord gateway as observed by discord-mitm",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Inferred from recorded gateway sessions: each message's payload schema merges every recorded frame of it. x-discord-mitm.documented says whether Discord's API documentation lists the opcode (in that direction) and the event.",
            "x-discord-mitm": {
                "sessions": inferred.sessions,
                "undecoded_frames": inferred.undecoded,
                "encodings": inferred.encodings,
                "compressions": inferred.compressions,
                "versions": inferred.versions,
            },
        }),
    );
    if !servers.is_empty() {
        doc.insert("servers".into(), Value::Object(servers));
    }
    doc.insert("channels".into(), json!({ "gateway": channel }));
    doc.insert("operations".into(), Value::Object(operations));
    doc.insert("components".into(), json!({ "messages": components }));
    Value::Object(doc)
}

/// The WebSocket binding: the query parameters clients connected with, values as seen.
fn query_binding(inferred: &GatewayInferred) -> Value {
    let values = |map: &std::collections::BTreeMap<String, u64>, skip: &str| -> Vec<Value> {
        map.keys()
            .filter(|v| v.as_str() != skip)
            .map(|v| json!(v))
            .collect()
    };
    let mut properties = Map::new();
    for (name, seen) in [
        ("v", values(&inferred.versions, "unknown")),
        ("encoding", values(&inferred.encodings, "")),
        ("compress", values(&inferred.compressions, "none")),
    ] {
        let mut schema = json!({"type": "string"});
        if !seen.is_empty() {
            schema["enum"] = Value::Array(seen);
        }
        properties.insert(name.into(), schema);
    }
    json!({
        "method": "GET",
        "query": {"type": "object", "properties": properties},
        "bindingVersion": "0.1.0",
    })
}

/// One message: its name, the payload schema (op and t pinned) and the marks.
fn message(kind: &MessageKind, stats: &MessageStats, docs: &DocumentedEvents) -> Value {
    let op_name = docs
        .op_name(kind.direction, kind.op)
        .or_else(|| docs.any_op_name(kind.op))
        .map_or_else(|| format!("OP_{}", kind.op), str::to_string);
    let name = kind.t.clone().unwrap_or_else(|| op_name.clone());
    let mut payload = stats.payload.to_json_schema();
    if let Some(properties) = payload.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert("op".into(), json!({"type": "integer", "const": kind.op}));
        if let Some(t) = &kind.t {
            properties.insert("t".into(), json!({"type": "string", "const": t}));
        }
    }
    let documented = docs.documents(kind);
    json!({
        "name": name,
        "title": format!("{name} (op {} {op_name}, {})", kind.op, kind.direction),
        "summary": format!(
            "{} {} frame(s) recorded; {}",
            stats.samples,
            kind.direction,
            if documented { "documented" } else { "not in Discord's documentation" }
        ),
        "contentType": "application/json",
        "payload": payload,
        "x-discord-mitm": {
            "direction": kind.direction,
            "op": kind.op,
            "t": kind.t,
            "samples": stats.samples,
            "first_seen": rfc3339(stats.first_us),
            "last_seen": rfc3339(stats.last_us),
            "example_frames": stats.examples,
            "documented": documented,
        },
    })
}

/// `receive_op10_HELLO`-style keys (AsyncAPI keys allow only `[A-Za-z0-9_.-]`).
fn message_key(kind: &MessageKind) -> String {
    match &kind.t {
        Some(t) => format!("{}_{}", kind.direction, component_key(t)),
        None => format!("{}_op{}", kind.direction, kind.op),
    }
}

fn component_key(text: &str) -> String {
    let key: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if key.is_empty() {
        "_".into()
    } else {
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Direction, Frame, FrameKind};

    fn frame(direction: Direction, seq: u64, payload: &str) -> Frame {
        let value: Value = serde_json::from_str(payload).unwrap();
        Frame {
            session_id: 1,
            direction,
            seq,
            at_us: 1_000 + seq as i64,
            kind: FrameKind::Text,
            raw_size: payload.len() as u64,
            op: value["op"].as_u64().map(|op| op as u8),
            t: value["t"].as_str().map(str::to_string),
            s: value["s"].as_u64(),
            payload: Some(payload.into()),
            raw: None,
            decode_error: None,
            redacted: false,
        }
    }

    #[test]
    fn messages_per_op_and_event_with_marks() {
        let mut inferred = GatewayInferred::default();
        for (seq, payload) in [
            r#"{"op":10,"d":{"heartbeat_interval":41250}}"#,
            r#"{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{"id":"130000000000000001","content":"a"}}"#,
            r#"{"op":0,"t":"MESSAGE_CREATE","s":2,"d":{"id":"130000000000000002","content":"b","flags":0}}"#,
            r#"{"op":0,"t":"SECRET_THING","s":3,"d":{}}"#,
        ]
        .iter()
        .enumerate()
        {
            inferred.observe_frame(&frame(Direction::ServerToClient, seq as u64, payload));
        }
        inferred.observe_frame(&frame(
            Direction::ClientToServer,
            0,
            r#"{"op":2,"d":{"token":"[redacted by discord-mitm sha256:00]"}}"#,
        ));
        let doc = document(&inferred, &DocumentedEvents::builtin());
        let messages = &doc["components"]["messages"];
        let create = &messages["receive_MESSAGE_CREATE"];
        assert_eq!(create["x-discord-mitm"]["documented"], true);
        assert_eq!(create["x-discord-mitm"]["samples"], 2);
        let d = &create["payload"]["properties"]["d"];
        assert_eq!(d["required"], json!(["content", "id"]));
        assert_eq!(d["properties"]["id"]["format"], "snowflake");
        assert_eq!(
            create["payload"]["properties"]["t"]["const"],
            "MESSAGE_CREATE"
        );
        assert_eq!(
            messages["receive_SECRET_THING"]["x-discord-mitm"]["documented"],
            false
        );
        assert_eq!(messages["receive_op10"]["name"], "HELLO");
        assert_eq!(messages["send_op2"]["name"], "IDENTIFY");
        assert_eq!(
            doc["operations"]["send"]["messages"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(!doc.to_string().contains("redacted by"));
    }
}
