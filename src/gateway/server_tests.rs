//! Table-driven tests of the server-side session: every transition, every close code it sends.
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::gateway::table_tests::{self, row};

/// Short timings so deadlines are easy to reason about: heartbeat deadline 1500 ms after the
/// last heartbeat, handshake deadline 5000 ms after HELLO, forced close 300 ms after op 7.
fn config() -> ServerConfig {
    ServerConfig {
        heartbeat_interval: Duration::from_millis(1000),
        heartbeat_grace: Duration::from_millis(500),
        handshake_timeout: Duration::from_millis(5000),
        reconnect_close_delay: Duration::from_millis(300),
        rate_limit: 5,
        ..ServerConfig::default()
    }
}

/// One input to the session, at a time offset in milliseconds.
#[derive(Debug, Clone)]
enum In {
    /// A client payload given as JSON, with its wire size taken from the JSON text.
    Json(Value),
    /// A client payload with an explicit wire size.
    Sized(Value, usize),
    Undecodable,
    Tick,
    Identify(IdentifyVerdict),
    Resume(ResumeVerdict),
    RequestHeartbeat,
    RequestReconnect,
    Invalidate(bool),
    Close(CloseCode),
    /// Dispatch an event called this (its actions are the produced payload, or the error).
    Dispatch(&'static str),
}

fn payload(value: Value) -> GatewayPayload {
    serde_json::from_value(value).expect("test payload")
}

fn describe(action: &ServerAction) -> String {
    match action {
        ServerAction::Send(p) => format!("send {}", serde_json::to_string(p).expect("json")),
        ServerAction::Close(code) => format!("close {}", code.code()),
        ServerAction::ValidateIdentify(info) => format!("validate-identify {}", info.token),
        ServerAction::ValidateResume(info) => {
            format!("validate-resume {} {:?}", info.session_id, info.seq)
        }
        ServerAction::Command(p) => format!("command op={}", p.op.code()),
    }
}

fn apply(session: &mut ServerSession, t0: Instant, at_ms: u64, input: &In) -> Vec<String> {
    let now = t0 + Duration::from_millis(at_ms);
    let actions = match input {
        In::Json(value) => {
            let len = value.to_string().len();
            session.on_payload(&payload(value.clone()), len, now)
        }
        In::Sized(value, len) => session.on_payload(&payload(value.clone()), *len, now),
        In::Undecodable => session.on_undecodable(now),
        In::Tick => session.on_tick(now),
        In::Identify(verdict) => session.complete_identify(*verdict, now),
        In::Resume(verdict) => session.complete_resume(*verdict, now),
        In::RequestHeartbeat => session.request_heartbeat(),
        In::RequestReconnect => session.request_reconnect(now),
        In::Invalidate(resumable) => session.invalidate_session(*resumable, now),
        In::Close(code) => session.close(*code),
        In::Dispatch(event) => {
            return vec![match session.dispatch(*event, json!({})) {
                Ok(p) => format!("dispatch {}", serde_json::to_string(&p).expect("json")),
                Err(error) => format!("error {error}"),
            }]
        }
    };
    actions.iter().map(describe).collect()
}

fn identify_json() -> Value {
    json!({"op": 2, "d": {
        "token": "Bot abc", "intents": 513, "shard": [0, 1],
        "properties": {"os": "linux", "browser": "disco", "device": "disco"},
        "compress": true, "large_threshold": 100,
        "presence": {"status": "online", "afk": false, "since": null, "activities": []},
        "capabilities": 16381
    }})
}

fn identify_with(field: &str, value: Value) -> In {
    let mut identify = identify_json();
    identify["d"][field] = value;
    In::Json(identify)
}

fn resume_json(seq: Value) -> Value {
    json!({"op": 6, "d": {"token": "Bot abc", "session_id": "sess", "seq": seq}})
}

const ACK: &str = r#"send {"op":11,"d":null,"s":null,"t":null}"#;

fn identified() -> Vec<(u64, In)> {
    vec![
        (0, In::Json(identify_json())),
        (0, In::Identify(IdentifyVerdict::Accept)),
    ]
}

fn resume_pending(seq: u64) -> Vec<(u64, In)> {
    vec![(0, In::Json(resume_json(json!(seq))))]
}

/// A server transition row: times in milliseconds after HELLO.
type Row = table_tests::Row<u64, In, ServerState>;

fn rows() -> Vec<Row> {
    use ServerState::*;
    let none: Vec<(u64, In)> = Vec::new();
    let closed_4009 = vec![(2000, In::Tick)];
    vec![
        // --- awaiting IDENTIFY/RESUME ---
        row(
            "heartbeat before identify is acked",
            none.clone(),
            10,
            In::Json(json!({"op": 1, "d": null})),
            &[ACK],
            AwaitingHandshake,
        ),
        row(
            "heartbeat with a seq is acked",
            none.clone(),
            10,
            In::Json(json!({"op": 1, "d": 5})),
            &[ACK],
            AwaitingHandshake,
        ),
        row(
            "heartbeat with a bad d -> 4001",
            none.clone(),
            10,
            In::Json(json!({"op": 1, "d": "x"})),
            &["close 4001"],
            Closed,
        ),
        row(
            "QoS heartbeat (op 40) is acked",
            none.clone(),
            10,
            In::Json(json!({"op": 40, "d": {"seq": 3, "qos": {"active": true}}})),
            &[ACK],
            AwaitingHandshake,
        ),
        row(
            "QoS heartbeat without an object -> 4001",
            none.clone(),
            10,
            In::Json(json!({"op": 40, "d": 3})),
            &["close 4001"],
            Closed,
        ),
        row(
            "identify asks the owner",
            none.clone(),
            10,
            In::Json(identify_json()),
            &["validate-identify Bot abc"],
            IdentifyPending,
        ),
        row(
            "identify without token -> 4004",
            none.clone(),
            10,
            identify_with("token", Value::Null),
            &["close 4004"],
            Closed,
        ),
        row(
            "identify with empty token -> 4004",
            none.clone(),
            10,
            identify_with("token", json!("")),
            &["close 4004"],
            Closed,
        ),
        row(
            "identify d not an object -> 4001",
            none.clone(),
            10,
            In::Json(json!({"op": 2, "d": "token"})),
            &["close 4001"],
            Closed,
        ),
        row(
            "identify intents not a number -> 4013",
            none.clone(),
            10,
            identify_with("intents", json!("513")),
            &["close 4013"],
            Closed,
        ),
        row(
            "identify negative intents -> 4013",
            none.clone(),
            10,
            identify_with("intents", json!(-1)),
            &["close 4013"],
            Closed,
        ),
        row(
            "identify shard id >= count -> 4010",
            none.clone(),
            10,
            identify_with("shard", json!([2, 2])),
            &["close 4010"],
            Closed,
        ),
        row(
            "identify shard count 0 -> 4010",
            none.clone(),
            10,
            identify_with("shard", json!([0, 0])),
            &["close 4010"],
            Closed,
        ),
        row(
            "identify shard not a pair -> 4010",
            none.clone(),
            10,
            identify_with("shard", json!([0, 1, 2])),
            &["close 4010"],
            Closed,
        ),
        row(
            "identify properties not an object -> 4001",
            none.clone(),
            10,
            identify_with("properties", json!(5)),
            &["close 4001"],
            Closed,
        ),
        row(
            "identify compress not a bool -> 4001",
            none.clone(),
            10,
            identify_with("compress", json!("yes")),
            &["close 4001"],
            Closed,
        ),
        row(
            "identify large_threshold negative -> 4001",
            none.clone(),
            10,
            identify_with("large_threshold", json!(-1)),
            &["close 4001"],
            Closed,
        ),
        row(
            "identify presence not an object -> 4001",
            none.clone(),
            10,
            identify_with("presence", json!(5)),
            &["close 4001"],
            Closed,
        ),
        row(
            "resume asks the owner",
            none.clone(),
            10,
            In::Json(resume_json(json!(7))),
            &["validate-resume sess Some(7)"],
            ResumePending,
        ),
        row(
            "resume with null seq asks the owner",
            none.clone(),
            10,
            In::Json(resume_json(Value::Null)),
            &["validate-resume sess None"],
            ResumePending,
        ),
        row(
            "resume without session_id -> 4001",
            none.clone(),
            10,
            In::Json(json!({"op": 6, "d": {"token": "t", "seq": 1}})),
            &["close 4001"],
            Closed,
        ),
        row(
            "resume with a bad seq -> 4001",
            none.clone(),
            10,
            In::Json(resume_json(json!("7"))),
            &["close 4001"],
            Closed,
        ),
        row(
            "presence update first -> 4003",
            none.clone(),
            10,
            In::Json(json!({"op": 3, "d": {}})),
            &["close 4003"],
            Closed,
        ),
        row(
            "request guild members first -> 4003",
            none.clone(),
            10,
            In::Json(json!({"op": 8, "d": {}})),
            &["close 4003"],
            Closed,
        ),
        row(
            "voice state update first -> 4003",
            none.clone(),
            10,
            In::Json(json!({"op": 4, "d": {}})),
            &["close 4003"],
            Closed,
        ),
        row(
            "official-client op 14 first -> 4003",
            none.clone(),
            10,
            In::Json(json!({"op": 14, "d": {}})),
            &["close 4003"],
            Closed,
        ),
        row(
            "client sends dispatch (op 0) -> 4001",
            none.clone(),
            10,
            In::Json(json!({"op": 0, "d": {}})),
            &["close 4001"],
            Closed,
        ),
        row(
            "client sends reconnect (op 7) -> 4001",
            none.clone(),
            10,
            In::Json(json!({"op": 7})),
            &["close 4001"],
            Closed,
        ),
        row(
            "client sends invalid session (op 9) -> 4001",
            none.clone(),
            10,
            In::Json(json!({"op": 9, "d": false})),
            &["close 4001"],
            Closed,
        ),
        row(
            "client sends hello (op 10) -> 4001",
            none.clone(),
            10,
            In::Json(json!({"op": 10, "d": {}})),
            &["close 4001"],
            Closed,
        ),
        row(
            "client sends heartbeat ack (op 11) -> 4001",
            none.clone(),
            10,
            In::Json(json!({"op": 11})),
            &["close 4001"],
            Closed,
        ),
        row(
            "unknown opcode -> 4001",
            none.clone(),
            10,
            In::Json(json!({"op": 99, "d": {}})),
            &["close 4001"],
            Closed,
        ),
        row(
            "unknown opcode even when identified -> 4001",
            identified(),
            10,
            In::Json(json!({"op": 250})),
            &["close 4001"],
            Closed,
        ),
        row(
            "4096-byte payload is accepted",
            none.clone(),
            10,
            In::Sized(json!({"op": 1, "d": null}), 4096),
            &[ACK],
            AwaitingHandshake,
        ),
        row(
            "4097-byte payload -> 4002",
            none.clone(),
            10,
            In::Sized(json!({"op": 1, "d": null}), 4097),
            &["close 4002"],
            Closed,
        ),
        row(
            "undecodable frame -> 4002",
            none.clone(),
            10,
            In::Undecodable,
            &["close 4002"],
            Closed,
        ),
        row(
            "tick before any deadline does nothing",
            none.clone(),
            1499,
            In::Tick,
            &[],
            AwaitingHandshake,
        ),
        row(
            "no heartbeat within interval + grace -> 4009",
            none.clone(),
            1500,
            In::Tick,
            &["close 4009"],
            Closed,
        ),
        row(
            "heartbeating but no identify within the handshake timeout -> 4009",
            vec![
                (1000, In::Json(json!({"op": 1}))),
                (2000, In::Json(json!({"op": 1}))),
                (3000, In::Json(json!({"op": 1}))),
                (4000, In::Json(json!({"op": 1}))),
            ],
            5000,
            In::Tick,
            &["close 4009"],
            Closed,
        ),
        row(
            "a heartbeat moves the heartbeat deadline",
            vec![(1000, In::Json(json!({"op": 1})))],
            2499,
            In::Tick,
            &[],
            AwaitingHandshake,
        ),
        row(
            "...to interval + grace after it",
            vec![(1000, In::Json(json!({"op": 1})))],
            2500,
            In::Tick,
            &["close 4009"],
            Closed,
        ),
        row(
            "verdicts without a pending request are ignored",
            none.clone(),
            10,
            In::Identify(IdentifyVerdict::Accept),
            &[],
            AwaitingHandshake,
        ),
        row(
            "resume verdict without a pending resume is ignored",
            none.clone(),
            10,
            In::Resume(ResumeVerdict::Accept { last_seq: 1 }),
            &[],
            AwaitingHandshake,
        ),
        row(
            "no dispatch before the session is active",
            none.clone(),
            10,
            In::Dispatch("READY"),
            &["error the session is not active yet (state AwaitingHandshake)"],
            AwaitingHandshake,
        ),
        // --- IDENTIFY pending ---
        row(
            "accepted identify makes the session active",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Identify(IdentifyVerdict::Accept),
            &[],
            Active,
        ),
        row(
            "identify concurrency -> op 9 false",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Identify(IdentifyVerdict::InvalidSession),
            &[r#"send {"op":9,"d":false,"s":null,"t":null}"#],
            AwaitingHandshake,
        ),
        row(
            "after op 9 the client may identify again",
            vec![
                (0, In::Json(identify_json())),
                (10, In::Identify(IdentifyVerdict::InvalidSession)),
            ],
            20,
            In::Json(identify_json()),
            &["validate-identify Bot abc"],
            IdentifyPending,
        ),
        row(
            "after op 9 the handshake deadline restarts",
            vec![
                (0, In::Json(identify_json())),
                (4000, In::Json(json!({"op": 1}))),
                (4000, In::Identify(IdentifyVerdict::InvalidSession)),
                (5000, In::Json(json!({"op": 1}))),
            ],
            6000,
            In::Tick,
            &[],
            AwaitingHandshake,
        ),
        row(
            "bad token -> 4004",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Identify(IdentifyVerdict::Close(CloseCode::AuthenticationFailed)),
            &["close 4004"],
            Closed,
        ),
        row(
            "invalid shard -> 4010",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Identify(IdentifyVerdict::Close(CloseCode::InvalidShard)),
            &["close 4010"],
            Closed,
        ),
        row(
            "sharding required -> 4011",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Identify(IdentifyVerdict::Close(CloseCode::ShardingRequired)),
            &["close 4011"],
            Closed,
        ),
        row(
            "invalid API version -> 4012",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Identify(IdentifyVerdict::Close(CloseCode::InvalidApiVersion)),
            &["close 4012"],
            Closed,
        ),
        row(
            "invalid intents -> 4013",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Identify(IdentifyVerdict::Close(CloseCode::InvalidIntents)),
            &["close 4013"],
            Closed,
        ),
        row(
            "disallowed intents -> 4014",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Identify(IdentifyVerdict::Close(CloseCode::DisallowedIntents)),
            &["close 4014"],
            Closed,
        ),
        row(
            "too many sessions -> 4015",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Identify(IdentifyVerdict::Close(CloseCode::TooManySessions)),
            &["close 4015"],
            Closed,
        ),
        row(
            "second identify while pending -> 4005",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Json(identify_json()),
            &["close 4005"],
            Closed,
        ),
        row(
            "resume while identify pending -> 4005",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Json(resume_json(json!(1))),
            &["close 4005"],
            Closed,
        ),
        row(
            "command while identify pending -> 4003",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Json(json!({"op": 3, "d": {}})),
            &["close 4003"],
            Closed,
        ),
        row(
            "heartbeat while identify pending is acked",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Json(json!({"op": 1, "d": null})),
            &[ACK],
            IdentifyPending,
        ),
        row(
            "resume verdict while identify pending is ignored",
            vec![(0, In::Json(identify_json()))],
            10,
            In::Resume(ResumeVerdict::Accept { last_seq: 3 }),
            &[],
            IdentifyPending,
        ),
        // --- RESUME pending ---
        row(
            "accepted resume makes the session active",
            resume_pending(7),
            10,
            In::Resume(ResumeVerdict::Accept { last_seq: 10 }),
            &[],
            Active,
        ),
        row(
            "resume at the session's last seq is fine",
            resume_pending(10),
            10,
            In::Resume(ResumeVerdict::Accept { last_seq: 10 }),
            &[],
            Active,
        ),
        row(
            "resume beyond the session's last seq -> 4007",
            resume_pending(11),
            10,
            In::Resume(ResumeVerdict::Accept { last_seq: 10 }),
            &["close 4007"],
            Closed,
        ),
        row(
            "owner says invalid seq -> 4007",
            resume_pending(7),
            10,
            In::Resume(ResumeVerdict::Close(CloseCode::InvalidSeq)),
            &["close 4007"],
            Closed,
        ),
        row(
            "owner says bad token on resume -> 4004",
            resume_pending(7),
            10,
            In::Resume(ResumeVerdict::Close(CloseCode::AuthenticationFailed)),
            &["close 4004"],
            Closed,
        ),
        row(
            "unknown session -> op 9 false",
            resume_pending(7),
            10,
            In::Resume(ResumeVerdict::InvalidSession { resumable: false }),
            &[r#"send {"op":9,"d":false,"s":null,"t":null}"#],
            AwaitingHandshake,
        ),
        row(
            "resumable invalid session -> op 9 true",
            resume_pending(7),
            10,
            In::Resume(ResumeVerdict::InvalidSession { resumable: true }),
            &[r#"send {"op":9,"d":true,"s":null,"t":null}"#],
            AwaitingHandshake,
        ),
        row(
            "identify while resume pending -> 4005",
            resume_pending(7),
            10,
            In::Json(identify_json()),
            &["close 4005"],
            Closed,
        ),
        row(
            "identify verdict while resume pending is ignored",
            resume_pending(7),
            10,
            In::Identify(IdentifyVerdict::Accept),
            &[],
            ResumePending,
        ),
        row(
            "dispatch after resume continues the session's numbering",
            vec![
                (0, In::Json(resume_json(json!(7)))),
                (10, In::Resume(ResumeVerdict::Accept { last_seq: 10 })),
            ],
            20,
            In::Dispatch("RESUMED"),
            &[r#"dispatch {"op":0,"d":{},"s":11,"t":"RESUMED"}"#],
            Active,
        ),
        // --- active ---
        row(
            "first dispatch is numbered 1",
            identified(),
            10,
            In::Dispatch("READY"),
            &[r#"dispatch {"op":0,"d":{},"s":1,"t":"READY"}"#],
            Active,
        ),
        row(
            "dispatches are numbered in order",
            vec![
                (0, In::Json(identify_json())),
                (0, In::Identify(IdentifyVerdict::Accept)),
                (1, In::Dispatch("READY")),
                (2, In::Dispatch("GUILD_CREATE")),
            ],
            10,
            In::Dispatch("MESSAGE_CREATE"),
            &[r#"dispatch {"op":0,"d":{},"s":3,"t":"MESSAGE_CREATE"}"#],
            Active,
        ),
        row(
            "presence update is a command",
            identified(),
            10,
            In::Json(json!({"op": 3, "d": {"status": "idle"}})),
            &["command op=3"],
            Active,
        ),
        row(
            "voice state update is a command",
            identified(),
            10,
            In::Json(json!({"op": 4, "d": {}})),
            &["command op=4"],
            Active,
        ),
        row(
            "request guild members is a command",
            identified(),
            10,
            In::Json(json!({"op": 8, "d": {}})),
            &["command op=8"],
            Active,
        ),
        row(
            "soundboard request is a command",
            identified(),
            10,
            In::Json(json!({"op": 31, "d": {}})),
            &["command op=31"],
            Active,
        ),
        row(
            "official-client op 37 is a command",
            identified(),
            10,
            In::Json(json!({"op": 37, "d": {}})),
            &["command op=37"],
            Active,
        ),
        row(
            "second identify -> 4005",
            identified(),
            10,
            In::Json(identify_json()),
            &["close 4005"],
            Closed,
        ),
        row(
            "resume on an identified session -> 4005",
            identified(),
            10,
            In::Json(resume_json(json!(1))),
            &["close 4005"],
            Closed,
        ),
        row(
            "heartbeat when active is acked",
            identified(),
            10,
            In::Json(json!({"op": 1, "d": 0})),
            &[ACK],
            Active,
        ),
        row(
            "missing heartbeat when active -> 4009",
            identified(),
            1500,
            In::Tick,
            &["close 4009"],
            Closed,
        ),
        row(
            "the handshake deadline no longer applies",
            vec![
                (0, In::Json(identify_json())),
                (0, In::Identify(IdentifyVerdict::Accept)),
                (1000, In::Json(json!({"op": 1}))),
                (2000, In::Json(json!({"op": 1}))),
                (3000, In::Json(json!({"op": 1}))),
                (4000, In::Json(json!({"op": 1}))),
            ],
            5000,
            In::Tick,
            &[],
            Active,
        ),
        row(
            "op 1 request carries null before any dispatch",
            identified(),
            10,
            In::RequestHeartbeat,
            &[r#"send {"op":1,"d":null,"s":null,"t":null}"#],
            Active,
        ),
        row(
            "op 1 request carries the last seq",
            vec![
                (0, In::Json(identify_json())),
                (0, In::Identify(IdentifyVerdict::Accept)),
                (1, In::Dispatch("READY")),
            ],
            10,
            In::RequestHeartbeat,
            &[r#"send {"op":1,"d":1,"s":null,"t":null}"#],
            Active,
        ),
        row(
            "op 7 request",
            identified(),
            10,
            In::RequestReconnect,
            &[r#"send {"op":7,"d":null,"s":null,"t":null}"#],
            Active,
        ),
        row(
            "client has time to close after op 7",
            vec![
                (0, In::Json(identify_json())),
                (0, In::Identify(IdentifyVerdict::Accept)),
                (10, In::RequestReconnect),
            ],
            309,
            In::Tick,
            &[],
            Active,
        ),
        row(
            "after op 7 the server closes with 4000",
            vec![
                (0, In::Json(identify_json())),
                (0, In::Identify(IdentifyVerdict::Accept)),
                (10, In::RequestReconnect),
            ],
            310,
            In::Tick,
            &["close 4000"],
            Closed,
        ),
        row(
            "invalidate session (not resumable)",
            identified(),
            10,
            In::Invalidate(false),
            &[r#"send {"op":9,"d":false,"s":null,"t":null}"#],
            AwaitingHandshake,
        ),
        row(
            "invalidate session (resumable)",
            identified(),
            10,
            In::Invalidate(true),
            &[r#"send {"op":9,"d":true,"s":null,"t":null}"#],
            AwaitingHandshake,
        ),
        row(
            "owner closes with a code",
            identified(),
            10,
            In::Close(CloseCode::UnknownError),
            &["close 4000"],
            Closed,
        ),
        // --- rate limit: 5 per 60 s in this config, heartbeats included, fixed window ---
        row(
            "fifth payload in the window is fine",
            vec![
                (0, In::Json(identify_json())),
                (0, In::Identify(IdentifyVerdict::Accept)),
                (1, In::Json(json!({"op": 1}))),
                (2, In::Json(json!({"op": 3, "d": {}}))),
                (3, In::Json(json!({"op": 1}))),
            ],
            4,
            In::Json(json!({"op": 3, "d": {}})),
            &["command op=3"],
            Active,
        ),
        row(
            "sixth payload in the window -> 4008",
            vec![
                (0, In::Json(identify_json())),
                (0, In::Identify(IdentifyVerdict::Accept)),
                (1, In::Json(json!({"op": 1}))),
                (2, In::Json(json!({"op": 3, "d": {}}))),
                (3, In::Json(json!({"op": 1}))),
                (4, In::Json(json!({"op": 3, "d": {}}))),
            ],
            5,
            In::Json(json!({"op": 1})),
            &["close 4008"],
            Closed,
        ),
        // --- closed: nothing more ---
        row(
            "closed ignores payloads",
            closed_4009.clone(),
            2001,
            In::Json(json!({"op": 1})),
            &[],
            Closed,
        ),
        row(
            "closed ignores identify",
            closed_4009.clone(),
            2001,
            In::Json(identify_json()),
            &[],
            Closed,
        ),
        row(
            "closed ignores ticks",
            closed_4009.clone(),
            9000,
            In::Tick,
            &[],
            Closed,
        ),
        row(
            "closed ignores undecodable frames",
            closed_4009.clone(),
            2001,
            In::Undecodable,
            &[],
            Closed,
        ),
        row(
            "closed ignores op 1 requests",
            closed_4009.clone(),
            2001,
            In::RequestHeartbeat,
            &[],
            Closed,
        ),
        row(
            "closed ignores op 7 requests",
            closed_4009.clone(),
            2001,
            In::RequestReconnect,
            &[],
            Closed,
        ),
        row(
            "closed ignores invalidation",
            closed_4009.clone(),
            2001,
            In::Invalidate(true),
            &[],
            Closed,
        ),
        row(
            "closed ignores a second close",
            closed_4009.clone(),
            2001,
            In::Close(CloseCode::Normal),
            &[],
            Closed,
        ),
        row(
            "closed refuses dispatches",
            closed_4009,
            2001,
            In::Dispatch("READY"),
            &["error the session is closed"],
            Closed,
        ),
    ]
}

#[test]
fn every_transition_in_the_table() {
    table_tests::check_rows(
        rows(),
        |()| {
            let t0 = Instant::now();
            let (session, hello) = ServerSession::new(config(), t0);
            assert_eq!(
                hello.iter().map(describe).collect::<Vec<_>>(),
                [r#"send {"op":10,"d":{"heartbeat_interval":1000},"s":null,"t":null}"#]
            );
            (session, t0)
        },
        |(session, t0), at_ms, input| apply(session, *t0, at_ms, input),
        |(session, _)| session.state(),
    );
}

#[test]
fn every_close_code_the_server_sends_is_in_the_table() {
    let table = rows();
    let sent: Vec<String> = table
        .iter()
        .flat_map(|row| row.expect.clone())
        .map(str::to_owned)
        .collect();
    for code in [
        4000, 4001, 4002, 4003, 4004, 4005, 4007, 4008, 4009, 4010, 4011, 4012, 4013, 4014,
    ] {
        assert!(
            sent.contains(&format!("close {code}")),
            "no table row makes the server close with {code}"
        );
    }
}

#[test]
fn hello_uses_discords_default_interval() {
    let (session, hello) = ServerSession::new(ServerConfig::default(), Instant::now());
    assert_eq!(
        hello,
        [ServerAction::Send(GatewayPayload::new(
            OpCode::Hello,
            json!({"heartbeat_interval": 41250})
        ))]
    );
    assert_eq!(session.config().max_payload_bytes, 4096);
    assert_eq!(session.config().rate_limit, 120);
}

#[test]
fn identify_details_are_exposed_for_the_backend() {
    let t0 = Instant::now();
    let (mut session, _) = ServerSession::new(config(), t0);
    session.on_payload(&payload(identify_json()), 100, t0);
    let info = session.identify().expect("identify kept").clone();
    assert_eq!(info.token, "Bot abc");
    assert_eq!(info.intents, Some(513));
    assert_eq!(info.shard, Some(ShardInfo { id: 0, count: 1 }));
    assert_eq!(info.properties["browser"], "disco");
    assert!(info.compress);
    assert_eq!(info.large_threshold, Some(100));
    assert_eq!(
        info.presence.as_ref().expect("presence")["status"],
        "online"
    );
    assert_eq!(info.extra["capabilities"], 16381);
    session.complete_identify(IdentifyVerdict::Accept, t0);
    assert_eq!(session.identify(), Some(&info));
}

#[test]
fn resume_details_and_client_seq_are_exposed() {
    let t0 = Instant::now();
    let (mut session, _) = ServerSession::new(config(), t0);
    session.on_payload(&payload(resume_json(json!(7))), 100, t0);
    assert_eq!(
        session.resume(),
        Some(&ResumeInfo {
            token: "Bot abc".into(),
            session_id: "sess".into(),
            seq: Some(7)
        })
    );
    assert_eq!(session.client_seq(), Some(7));
    session.complete_resume(ResumeVerdict::Accept { last_seq: 9 }, t0);
    assert_eq!(session.seq(), 9);
    // Replayed events keep their numbers, at or below the session's counter.
    let replayed = GatewayPayload::dispatch("MESSAGE_CREATE", 8, json!({}));
    assert_eq!(session.replay(replayed.clone()), Ok(replayed));
    assert_eq!(
        session.replay(GatewayPayload::dispatch("MESSAGE_CREATE", 10, json!({}))),
        Err(ServerSessionError::BadReplay {
            got: Some(10),
            current: 9
        })
    );
    session.on_payload(&payload(json!({"op": 1, "d": 9})), 10, t0);
    assert_eq!(session.client_seq(), Some(9));
}

#[test]
fn poll_at_follows_the_nearest_deadline() {
    let t0 = Instant::now();
    let (mut session, _) = ServerSession::new(config(), t0);
    assert_eq!(session.poll_at(), Some(t0 + Duration::from_millis(1500)));
    session.on_payload(
        &payload(json!({"op": 1})),
        10,
        t0 + Duration::from_millis(4000),
    );
    assert_eq!(session.poll_at(), Some(t0 + Duration::from_millis(5000)));
    session.on_payload(
        &payload(identify_json()),
        100,
        t0 + Duration::from_millis(4100),
    );
    session.complete_identify(IdentifyVerdict::Accept, t0 + Duration::from_millis(4100));
    assert_eq!(session.poll_at(), Some(t0 + Duration::from_millis(5500)));
    session.request_reconnect(t0 + Duration::from_millis(4200));
    assert_eq!(session.poll_at(), Some(t0 + Duration::from_millis(4500)));
    session.close(CloseCode::Normal);
    assert_eq!(session.poll_at(), None);
    assert_eq!(session.close_code(), Some(CloseCode::Normal));
}

#[test]
fn client_close_decides_whether_the_session_survives() {
    let cases: [(&str, bool, Option<u16>, bool); 6] = [
        ("active, 1000 ends it", true, Some(1000), false),
        ("active, 1001 ends it", true, Some(1001), false),
        ("active, 4000 keeps it", true, Some(4000), true),
        ("active, 3000 keeps it", true, Some(3000), true),
        ("active, no close frame keeps it", true, None, true),
        (
            "never identified, nothing to keep",
            false,
            Some(4000),
            false,
        ),
    ];
    for (name, identify, code, keep) in cases {
        let t0 = Instant::now();
        let (mut session, _) = ServerSession::new(config(), t0);
        if identify {
            session.on_payload(&payload(identify_json()), 100, t0);
            session.complete_identify(IdentifyVerdict::Accept, t0);
        }
        assert_eq!(session.on_client_closed(code), keep, "{name}");
        assert_eq!(session.state(), ServerState::Closed, "{name}");
        assert_eq!(
            session.close_code(),
            code.map(CloseCode::from_u16),
            "{name}"
        );
        assert!(session.on_tick(t0 + Duration::from_secs(100)).is_empty());
    }
}

#[test]
fn sliding_window_is_available_and_stricter() {
    let t0 = Instant::now();
    let config = ServerConfig {
        rate_limit: 2,
        rate_window: WindowKind::Sliding,
        ..config()
    };
    let (mut session, _) = ServerSession::new(config, t0);
    let heartbeat = payload(json!({"op": 1}));
    assert_eq!(
        session
            .on_payload(&heartbeat, 10, t0 + Duration::from_secs(50))
            .len(),
        1
    );
    assert_eq!(
        session
            .on_payload(&heartbeat, 10, t0 + Duration::from_secs(51))
            .len(),
        1
    );
    // A fixed window starting at 50 s would still be full; a sliding one is full until 110 s.
    assert_eq!(
        session.on_payload(&heartbeat, 10, t0 + Duration::from_secs(109)),
        [ServerAction::Close(CloseCode::RateLimited)]
    );
}

#[test]
fn default_rate_limit_is_120_per_60_seconds() {
    let t0 = Instant::now();
    let (mut session, _) = ServerSession::new(ServerConfig::default(), t0);
    let heartbeat = payload(json!({"op": 1}));
    for i in 0..120u64 {
        let actions = session.on_payload(&heartbeat, 10, t0 + Duration::from_millis(i * 100));
        assert_eq!(actions.len(), 1, "payload {i}");
        assert!(matches!(actions[0], ServerAction::Send(_)), "payload {i}");
    }
    assert_eq!(
        session.on_payload(&heartbeat, 10, t0 + Duration::from_millis(12_000)),
        [ServerAction::Close(CloseCode::RateLimited)]
    );
}

fn arbitrary_input() -> impl Strategy<Value = (u64, In)> {
    let op = prop_oneof![0u8..=14, Just(31u8), Just(37u8), Just(40u8), any::<u8>()];
    let d = prop_oneof![
        Just(Value::Null),
        any::<u64>().prop_map(Value::from),
        Just(json!("x")),
        Just(json!({"token": "t", "session_id": "s", "seq": 3})),
        Just(identify_json()["d"].clone()),
        Just(json!({"seq": 1})),
    ];
    let payload =
        (op, d, 0usize..6000).prop_map(|(op, d, len)| In::Sized(json!({"op": op, "d": d}), len));
    let code = prop_oneof![Just(4004u16), Just(4010u16), 4000u16..4020];
    let input = prop_oneof![
        6 => payload,
        1 => Just(In::Undecodable),
        3 => Just(In::Tick),
        1 => Just(In::Identify(IdentifyVerdict::Accept)),
        1 => Just(In::Identify(IdentifyVerdict::InvalidSession)),
        1 => code.clone().prop_map(|c| In::Identify(IdentifyVerdict::Close(CloseCode::from_u16(c)))),
        1 => (0u64..20).prop_map(|last_seq| In::Resume(ResumeVerdict::Accept { last_seq })),
        1 => any::<bool>().prop_map(|resumable| In::Resume(ResumeVerdict::InvalidSession { resumable })),
        1 => Just(In::RequestHeartbeat),
        1 => Just(In::RequestReconnect),
        1 => any::<bool>().prop_map(In::Invalidate),
        1 => Just(In::Dispatch("MESSAGE_CREATE")),
        1 => code.prop_map(|c| In::Close(CloseCode::from_u16(c))),
    ];
    (0u64..3000, input)
}

proptest! {
    #[test]
    fn random_inputs_never_panic_and_nothing_follows_a_close(
        steps in proptest::collection::vec(arbitrary_input(), 1..60)
    ) {
        let t0 = Instant::now();
        let (mut session, _) = ServerSession::new(config(), t0);
        let mut now_ms = 0;
        let mut closed = false;
        for (delta, input) in steps {
            now_ms += delta;
            let actions = apply(&mut session, t0, now_ms, &input);
            if closed {
                let allowed = actions.is_empty()
                    || actions == ["error the session is closed".to_owned()];
                prop_assert!(allowed, "emitted {:?} after close", actions);
            }
            let closes = actions.iter().filter(|a| a.starts_with("close ")).count();
            prop_assert!(closes <= 1);
            if closes == 1 {
                prop_assert_eq!(actions.last().map(|a| a.starts_with("close ")), Some(true));
                closed = true;
            }
            prop_assert_eq!(closed, session.state() == ServerState::Closed);
        }
    }
}

#[test]
fn intents_policy_table() {
    let no_privileged = IntentsPolicy {
        privileged_allowed: 0,
        ..IntentsPolicy::default()
    };
    let cases: [(&str, IntentsPolicy, Option<u64>, Option<CloseCode>); 8] = [
        ("user accounts send none", no_privileged, None, None),
        ("zero", no_privileged, Some(0), None),
        ("GUILDS | GUILD_MESSAGES", no_privileged, Some(513), None),
        (
            "every documented bit, privileged allowed",
            IntentsPolicy::default(),
            Some(intents::ALL),
            None,
        ),
        (
            "an undocumented bit",
            IntentsPolicy::default(),
            Some(1 << 17),
            Some(CloseCode::InvalidIntents),
        ),
        (
            "beyond 32 bits",
            IntentsPolicy::default(),
            Some(1 << 40),
            Some(CloseCode::InvalidIntents),
        ),
        (
            "MESSAGE_CONTENT not approved",
            no_privileged,
            Some(1 << 15),
            Some(CloseCode::DisallowedIntents),
        ),
        (
            "GUILD_MEMBERS not approved",
            no_privileged,
            Some(513 | 2),
            Some(CloseCode::DisallowedIntents),
        ),
    ];
    for (name, policy, intents, expected) in cases {
        assert_eq!(policy.check(intents), expected, "{name}");
    }
    assert_eq!(intents::ALL, 53_608_447);
}

#[test]
fn next_seq_numbers_self_encoded_dispatches_in_line_with_dispatch() {
    let t0 = Instant::now();
    let (mut session, _) = ServerSession::new(config(), t0);
    assert_eq!(
        session.next_seq(),
        Err(ServerSessionError::NotActive(
            ServerState::AwaitingHandshake
        ))
    );
    session.on_payload(&payload(identify_json()), 100, t0);
    session.complete_identify(IdentifyVerdict::Accept, t0);
    assert_eq!(session.dispatch("READY", json!({})).unwrap().s, Some(1));
    assert_eq!(session.next_seq(), Ok(2));
    assert_eq!(session.dispatch("X", json!({})).unwrap().s, Some(3));
    assert_eq!(session.seq(), 3);
    session.close(CloseCode::UnknownError);
    assert_eq!(session.next_seq(), Err(ServerSessionError::Closed));
}
