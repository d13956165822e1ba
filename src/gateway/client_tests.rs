//! Table-driven tests of the client-side session: every transition and the reaction to every
//! close code.
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::gateway::table_tests::{self, row};

const GATEWAY: &str = "wss://gw.test";
const RESUME_URL: &str = "wss://resume.test";

/// HELLO with a 1000 ms interval: 60 heartbeats a minute, so 120 - 61 = 59 commands a minute.
fn config() -> ClientConfig {
    let mut config = ClientConfig::new("tok", GATEWAY);
    config.intents = Some(513);
    config.properties = serde_json::from_value(json!({"os": "test"})).expect("map");
    config.hello_timeout = Duration::from_millis(2000);
    config.backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(8),
    };
    config.jitter_seed = 42;
    config
}

fn saved_session() -> ResumeState {
    ResumeState {
        session_id: "old".into(),
        seq: Some(5),
        resume_url: Some(RESUME_URL.into()),
    }
}

/// When an input happens: at an offset from the start, or when the session asked to be polled.
#[derive(Debug, Clone, Copy)]
enum At {
    Ms(u64),
    Due,
}

#[derive(Debug, Clone)]
enum In {
    Connected,
    ConnectFailed,
    Closed(Option<u16>),
    Payload(Value),
    Tick,
    Permit,
    Command(Value),
    Shutdown,
    DisconnectResumable,
}

fn payload(value: Value) -> GatewayPayload {
    serde_json::from_value(value).expect("test payload")
}

fn describe(action: &ClientAction) -> String {
    match action {
        ClientAction::Connect { url, resume } => format!("connect {url} resume={resume}"),
        ClientAction::Send(p) => format!("send {}", serde_json::to_string(p).expect("json")),
        ClientAction::Close(code) => format!("close {}", code.code()),
        ClientAction::RequestIdentify {
            shard_id,
            bucket_key,
        } => format!("request-identify shard={shard_id} bucket={bucket_key}"),
        ClientAction::Fatal(code) => format!("fatal {}", code.code()),
        ClientAction::Finished(code) => format!("finished {}", code.code()),
    }
}

struct Driver {
    t0: Instant,
    now: Instant,
    session: ClientSession,
}

impl Driver {
    fn new(resume: Option<ResumeState>) -> (Self, Vec<String>) {
        let t0 = Instant::now();
        let (session, actions) = match resume {
            Some(resume) => ClientSession::with_session(config(), resume, t0),
            None => ClientSession::new(config(), t0),
        };
        let driver = Driver {
            t0,
            now: t0,
            session,
        };
        (driver, actions.iter().map(describe).collect())
    }

    fn apply(&mut self, at: At, input: &In) -> Vec<String> {
        self.now = match at {
            At::Ms(ms) => self.t0 + Duration::from_millis(ms),
            At::Due => self.session.poll_at().unwrap_or(self.now),
        };
        let now = self.now;
        let session = &mut self.session;
        let actions = match input {
            In::Connected => session.on_connected(now),
            In::ConnectFailed => session.on_connect_failed(now),
            In::Closed(code) => session.on_closed(*code, now),
            In::Payload(value) => session.on_payload(&payload(value.clone()), now),
            In::Tick => session.on_tick(now),
            In::Permit => session.identify_permitted(now),
            In::Command(value) => match session.send(payload(value.clone()), now) {
                Ok(actions) => actions,
                Err(error) => return vec![format!("error {error}")],
            },
            In::Shutdown => session.shutdown(now),
            In::DisconnectResumable => session.disconnect_resumable(now),
        };
        actions.iter().map(describe).collect()
    }
}

fn hello() -> In {
    In::Payload(json!({"op": 10, "d": {"heartbeat_interval": 1000}}))
}

fn ready() -> In {
    In::Payload(json!({"op": 0, "s": 1, "t": "READY", "d": {
        "session_id": "sess", "resume_gateway_url": RESUME_URL, "v": 10
    }}))
}

fn ack() -> In {
    In::Payload(json!({"op": 11}))
}

fn awaiting_permission() -> Vec<(At, In)> {
    vec![(At::Ms(0), In::Connected), (At::Ms(0), hello())]
}

fn identifying() -> Vec<(At, In)> {
    let mut steps = awaiting_permission();
    steps.push((At::Ms(0), In::Permit));
    steps
}

fn active() -> Vec<(At, In)> {
    let mut steps = identifying();
    steps.push((At::Ms(10), ready()));
    steps
}

fn then(mut steps: Vec<(At, In)>, more: &[(At, In)]) -> Vec<(At, In)> {
    steps.extend_from_slice(more);
    steps
}

const IDENTIFY: &str = r#"send {"op":2,"d":{"token":"tok","properties":{"os":"test"},"intents":513,"compress":false},"s":null,"t":null}"#;
const RESUME: &str =
    r#"send {"op":6,"d":{"token":"tok","session_id":"old","seq":5},"s":null,"t":null}"#;
const HEARTBEAT_NULL: &str = r#"send {"op":1,"d":null,"s":null,"t":null}"#;
const HEARTBEAT_1: &str = r#"send {"op":1,"d":1,"s":null,"t":null}"#;
const CONNECT_NEW: &str = "connect wss://gw.test resume=false";
const CONNECT_RESUME: &str = "connect wss://resume.test resume=true";

/// A client transition row, starting from a saved session to resume when `start` holds one.
type Row = table_tests::Row<At, In, ClientState, Option<ResumeState>>;

impl Row {
    /// The same row for a client that starts with a saved session to resume.
    fn resuming(self) -> Row {
        Row {
            start: Some(saved_session()),
            ..self
        }
    }
}

fn rows() -> Vec<Row> {
    use ClientState::*;
    let none: Vec<(At, In)> = Vec::new();
    let ms = At::Ms;
    let command =
        json!({"op": 3, "d": {"status": "idle", "since": null, "activities": [], "afk": false}});
    let command_sent: &'static str = r#"send {"op":3,"d":{"status":"idle","since":null,"activities":[],"afk":false},"s":null,"t":null}"#;
    vec![
        // --- connecting ---
        row(
            "socket open -> wait for HELLO",
            none.clone(),
            ms(5),
            In::Connected,
            &[],
            AwaitingHello,
        ),
        row(
            "first connect failure retries at once",
            none.clone(),
            ms(5),
            In::ConnectFailed,
            &[CONNECT_NEW],
            Connecting,
        ),
        row(
            "second connect failure backs off",
            vec![(ms(0), In::ConnectFailed)],
            ms(5),
            In::ConnectFailed,
            &[],
            Disconnected,
        ),
        row(
            "backed-off reconnect fires when due",
            vec![(ms(0), In::ConnectFailed), (ms(5), In::ConnectFailed)],
            At::Due,
            In::Tick,
            &[CONNECT_NEW],
            Connecting,
        ),
        row(
            "a close while connecting is a connect failure",
            vec![(ms(0), In::ConnectFailed)],
            ms(5),
            In::Closed(Some(4000)),
            &[],
            Disconnected,
        ),
        row(
            "payloads before the socket opened are ignored",
            none.clone(),
            ms(5),
            hello(),
            &[],
            Connecting,
        ),
        row(
            "identify permission before HELLO is ignored",
            none.clone(),
            ms(5),
            In::Permit,
            &[],
            Connecting,
        ),
        row(
            "ticks while connecting do nothing",
            none.clone(),
            ms(50_000),
            In::Tick,
            &[],
            Connecting,
        ),
        // --- awaiting HELLO ---
        row(
            "HELLO without a session asks to identify",
            vec![(ms(0), In::Connected)],
            ms(5),
            hello(),
            &["request-identify shard=0 bucket=0"],
            AwaitingIdentifyPermission,
        ),
        row(
            "HELLO with interval 0 -> close and reconnect",
            vec![(ms(0), In::Connected)],
            ms(5),
            In::Payload(json!({"op": 10, "d": {"heartbeat_interval": 0}})),
            &["close 4000", CONNECT_NEW],
            Connecting,
        ),
        row(
            "HELLO without d -> close and reconnect",
            vec![(ms(0), In::Connected)],
            ms(5),
            In::Payload(json!({"op": 10})),
            &["close 4000", CONNECT_NEW],
            Connecting,
        ),
        row(
            "no HELLO yet",
            vec![(ms(0), In::Connected)],
            ms(1999),
            In::Tick,
            &[],
            AwaitingHello,
        ),
        row(
            "no HELLO in time -> close and reconnect",
            vec![(ms(0), In::Connected)],
            ms(2000),
            In::Tick,
            &["close 4000", CONNECT_NEW],
            Connecting,
        ),
        row(
            "dispatch before HELLO only moves seq",
            vec![(ms(0), In::Connected)],
            ms(5),
            In::Payload(json!({"op": 0, "s": 3, "t": "X", "d": {}})),
            &[],
            AwaitingHello,
        ),
        // --- awaiting identify permission ---
        row(
            "permission -> IDENTIFY",
            awaiting_permission(),
            ms(5),
            In::Permit,
            &[IDENTIFY],
            Identifying,
        ),
        row(
            "a second HELLO is ignored",
            awaiting_permission(),
            ms(5),
            hello(),
            &[],
            AwaitingIdentifyPermission,
        ),
        row(
            "first heartbeat comes after interval * jitter",
            awaiting_permission(),
            At::Due,
            In::Tick,
            &[HEARTBEAT_NULL],
            AwaitingIdentifyPermission,
        ),
        row(
            "commands wait for the session",
            awaiting_permission(),
            ms(5),
            In::Command(command.clone()),
            &[],
            AwaitingIdentifyPermission,
        ),
        // --- identifying ---
        row(
            "READY -> active",
            identifying(),
            ms(5),
            ready(),
            &[],
            Active,
        ),
        row(
            "stale permission is ignored",
            identifying(),
            ms(5),
            In::Permit,
            &[],
            Identifying,
        ),
        row(
            "queued commands go out on READY",
            then(identifying(), &[(ms(1), In::Command(command.clone()))]),
            ms(5),
            ready(),
            &[command_sent],
            Active,
        ),
        row(
            "op 9 false while identifying -> close 1000, wait",
            identifying(),
            ms(5),
            In::Payload(json!({"op": 9, "d": false})),
            &["close 1000"],
            Disconnected,
        ),
        row(
            "...then identify on a new connection",
            then(
                identifying(),
                &[(ms(5), In::Payload(json!({"op": 9, "d": false})))],
            ),
            At::Due,
            In::Tick,
            &[CONNECT_NEW],
            Connecting,
        ),
        row(
            "op 9 true without a session -> new identify",
            identifying(),
            ms(5),
            In::Payload(json!({"op": 9, "d": true})),
            &["close 1000"],
            Disconnected,
        ),
        row(
            "bad token while identifying -> fatal",
            identifying(),
            ms(5),
            In::Closed(Some(4004)),
            &["fatal 4004"],
            Fatal,
        ),
        row(
            "zombie before READY -> reconnect",
            then(identifying(), &[(At::Due, In::Tick)]),
            At::Due,
            In::Tick,
            &["close 4000", CONNECT_NEW],
            Connecting,
        ),
        // --- active ---
        row(
            "dispatch moves seq",
            active(),
            ms(20),
            In::Payload(json!({"op": 0, "s": 2, "t": "GUILD_CREATE", "d": {}})),
            &[],
            Active,
        ),
        row(
            "heartbeat carries the last seq",
            active(),
            At::Due,
            In::Tick,
            &[HEARTBEAT_1],
            Active,
        ),
        row(
            "no ACK since the last heartbeat -> zombie, resume",
            then(active(), &[(At::Due, In::Tick)]),
            At::Due,
            In::Tick,
            &["close 4000", CONNECT_RESUME],
            Connecting,
        ),
        row(
            "ACK keeps the heartbeats going",
            then(active(), &[(At::Due, In::Tick), (ms(1200), ack())]),
            At::Due,
            In::Tick,
            &[HEARTBEAT_1],
            Active,
        ),
        row(
            "an unrequested ACK changes nothing",
            active(),
            ms(20),
            ack(),
            &[],
            Active,
        ),
        row(
            "op 1 -> immediate heartbeat",
            active(),
            ms(20),
            In::Payload(json!({"op": 1, "d": null})),
            &[HEARTBEAT_1],
            Active,
        ),
        row(
            "op 7 -> close non-1000, resume at resume_gateway_url",
            active(),
            ms(20),
            In::Payload(json!({"op": 7, "d": null})),
            &["close 4000", CONNECT_RESUME],
            Connecting,
        ),
        row(
            "op 9 true -> resume",
            active(),
            ms(20),
            In::Payload(json!({"op": 9, "d": true})),
            &["close 4000", CONNECT_RESUME],
            Connecting,
        ),
        row(
            "op 9 false -> close 1000 and wait",
            active(),
            ms(20),
            In::Payload(json!({"op": 9, "d": false})),
            &["close 1000"],
            Disconnected,
        ),
        row(
            "op 9 without a bool counts as false",
            active(),
            ms(20),
            In::Payload(json!({"op": 9})),
            &["close 1000"],
            Disconnected,
        ),
        row(
            "unknown opcodes are ignored",
            active(),
            ms(20),
            In::Payload(json!({"op": 42, "d": {}})),
            &[],
            Active,
        ),
        row(
            "a command goes out",
            active(),
            ms(20),
            In::Command(command.clone()),
            &[command_sent],
            Active,
        ),
        row(
            "dropped without a close frame -> resume",
            active(),
            ms(20),
            In::Closed(None),
            &[CONNECT_RESUME],
            Connecting,
        ),
        row(
            "reconnect right after a drop is immediate",
            then(active(), &[(ms(20), In::Closed(None))]),
            ms(21),
            In::Connected,
            &[],
            AwaitingHello,
        ),
        row(
            "resume URL failing falls back to the gateway URL",
            then(
                active(),
                &[(ms(20), In::Closed(None)), (ms(21), In::ConnectFailed)],
            ),
            At::Due,
            In::Tick,
            &["connect wss://gw.test resume=true"],
            Connecting,
        ),
        row(
            "shutdown closes with 1000",
            active(),
            ms(20),
            In::Shutdown,
            &["close 1000"],
            Stopped,
        ),
        row(
            "resumable disconnect closes with 4000",
            active(),
            ms(20),
            In::DisconnectResumable,
            &["close 4000"],
            Stopped,
        ),
        row(
            "shutdown while disconnected has nothing to close",
            vec![(ms(0), In::ConnectFailed), (ms(5), In::ConnectFailed)],
            ms(10),
            In::Shutdown,
            &[],
            Stopped,
        ),
        row(
            "shutdown while connecting closes the opening socket",
            none.clone(),
            ms(10),
            In::Shutdown,
            &["close 1000"],
            Stopped,
        ),
        // --- resuming a saved session ---
        row(
            "HELLO with a session -> RESUME",
            vec![(ms(0), In::Connected)],
            ms(5),
            hello(),
            &[RESUME],
            Resuming,
        )
        .resuming(),
        row(
            "RESUMED -> active",
            vec![(ms(0), In::Connected), (ms(0), hello())],
            ms(5),
            In::Payload(json!({"op": 0, "s": 9, "t": "RESUMED", "d": {}})),
            &[],
            Active,
        )
        .resuming(),
        row(
            "op 9 false while resuming -> new session",
            vec![(ms(0), In::Connected), (ms(0), hello())],
            ms(5),
            In::Payload(json!({"op": 9, "d": false})),
            &["close 1000"],
            Disconnected,
        )
        .resuming(),
        row(
            "...on the gateway URL",
            vec![
                (ms(0), In::Connected),
                (ms(0), hello()),
                (ms(5), In::Payload(json!({"op": 9, "d": false}))),
            ],
            At::Due,
            In::Tick,
            &[CONNECT_NEW],
            Connecting,
        )
        .resuming(),
        row(
            "op 9 true while resuming -> resume again",
            vec![(ms(0), In::Connected), (ms(0), hello())],
            ms(5),
            In::Payload(json!({"op": 9, "d": true})),
            &["close 4000", CONNECT_RESUME],
            Connecting,
        )
        .resuming(),
        row(
            "4007 while resuming -> new session",
            vec![(ms(0), In::Connected), (ms(0), hello())],
            ms(5),
            In::Closed(Some(4007)),
            &[CONNECT_NEW],
            Connecting,
        )
        .resuming(),
        row(
            "heartbeat while resuming carries the saved seq",
            vec![(ms(0), In::Connected), (ms(0), hello())],
            At::Due,
            In::Tick,
            &[r#"send {"op":1,"d":5,"s":null,"t":null}"#],
            Resuming,
        )
        .resuming(),
        // --- stopped and fatal: nothing more ---
        row(
            "stopped ignores payloads",
            then(active(), &[(ms(20), In::Shutdown)]),
            ms(30),
            In::Payload(json!({"op": 1})),
            &[],
            Stopped,
        ),
        row(
            "stopped ignores ticks",
            then(active(), &[(ms(20), In::Shutdown)]),
            ms(90_000),
            In::Tick,
            &[],
            Stopped,
        ),
        row(
            "stopped ignores closes",
            then(active(), &[(ms(20), In::Shutdown)]),
            ms(30),
            In::Closed(Some(4000)),
            &[],
            Stopped,
        ),
        row(
            "stopped ignores a second shutdown",
            then(active(), &[(ms(20), In::Shutdown)]),
            ms(30),
            In::Shutdown,
            &[],
            Stopped,
        ),
        row(
            "stopped refuses commands",
            then(active(), &[(ms(20), In::Shutdown)]),
            ms(30),
            In::Command(command.clone()),
            &["error the gateway session has stopped (Stopped)"],
            Stopped,
        ),
        row(
            "fatal ignores payloads",
            then(identifying(), &[(ms(5), In::Closed(Some(4014)))]),
            ms(30),
            hello(),
            &[],
            Fatal,
        ),
        row(
            "fatal ignores connects",
            then(identifying(), &[(ms(5), In::Closed(Some(4014)))]),
            ms(30),
            In::Connected,
            &[],
            Fatal,
        ),
        row(
            "fatal ignores ticks",
            then(identifying(), &[(ms(5), In::Closed(Some(4014)))]),
            ms(90_000),
            In::Tick,
            &[],
            Fatal,
        ),
        row(
            "fatal refuses commands",
            then(identifying(), &[(ms(5), In::Closed(Some(4014)))]),
            ms(30),
            In::Command(command),
            &["error the gateway session has stopped (Fatal)"],
            Fatal,
        ),
    ]
}

#[test]
fn every_transition_in_the_table() {
    table_tests::check_rows(
        rows(),
        |resume| Driver::new(resume.clone()).0,
        |driver, at, input| driver.apply(at, input),
        |driver| driver.session.state(),
    );
}

#[test]
fn every_close_code_while_active() {
    let mut codes: Vec<Option<u16>> = CloseCode::KNOWN.iter().map(|c| Some(c.code())).collect();
    codes.extend([Some(4999), Some(4017), Some(3000), Some(1006), None]);
    for code in codes {
        let (mut driver, _) = Driver::new(None);
        for (at, input) in active() {
            driver.apply(at, &input);
        }
        let got = driver.apply(At::Ms(20), &In::Closed(code));
        let disposition = code.map_or(CloseDisposition::Resume, |c| {
            CloseCode::from_u16(c).disposition()
        });
        let (expect, state, resumable) = match disposition {
            CloseDisposition::Resume => (
                vec![CONNECT_RESUME.to_owned()],
                ClientState::Connecting,
                true,
            ),
            CloseDisposition::NewSession => {
                (vec![CONNECT_NEW.to_owned()], ClientState::Connecting, false)
            }
            CloseDisposition::Fatal => (
                vec![format!("fatal {}", code.unwrap_or(0))],
                ClientState::Fatal,
                true,
            ),
            CloseDisposition::Finished => (
                vec![format!("finished {}", code.unwrap_or(0))],
                ClientState::Stopped,
                true,
            ),
        };
        assert_eq!(got, expect, "close {code:?}");
        assert_eq!(driver.session.state(), state, "close {code:?}");
        assert_eq!(
            driver.session.resume_state().is_some(),
            resumable,
            "close {code:?}"
        );
        if matches!(
            disposition,
            CloseDisposition::Fatal | CloseDisposition::Finished
        ) {
            assert_eq!(driver.session.stop_code(), code.map(CloseCode::from_u16));
            assert_eq!(driver.session.poll_at(), None);
        }
    }
}

#[test]
fn close_code_classification_table() {
    use CloseDisposition::*;
    let table: [(u16, &str, CloseDisposition); 21] = [
        (1000, "Normal closure", NewSession),
        (1001, "Going away", NewSession),
        (4000, "Unknown error", Resume),
        (4001, "Unknown opcode", Resume),
        (4002, "Decode error", Resume),
        (4003, "Not authenticated", Resume),
        (4004, "Authentication failed", Fatal),
        (4005, "Already authenticated", Resume),
        (4006, "Session no longer valid", NewSession),
        (4007, "Invalid seq", NewSession),
        (4008, "Rate limited", Resume),
        (4009, "Session timed out", NewSession),
        (4010, "Invalid shard", Fatal),
        (4011, "Sharding required", Fatal),
        (4012, "Invalid API version", Fatal),
        (4013, "Invalid intent(s)", Fatal),
        (4014, "Disallowed intent(s)", Fatal),
        (4015, "Too many sessions", NewSession),
        (4016, "Connection request canceled", Finished),
        (4017, "Unknown close code", Resume),
        (1006, "Unknown close code", Resume),
    ];
    for (number, description, disposition) in table {
        let code = CloseCode::from(number);
        assert_eq!(u16::from(code), number);
        assert_eq!(code.description(), description, "{number}");
        assert_eq!(code.disposition(), disposition, "{number}");
        assert_eq!(code.is_fatal(), disposition == Fatal, "{number}");
        assert_eq!(code.can_resume(), disposition == Resume, "{number}");
        assert_eq!(
            code.can_reconnect(),
            matches!(disposition, Resume | NewSession),
            "{number}"
        );
        assert_eq!(
            code.is_known(),
            description != "Unknown close code",
            "{number}"
        );
        assert_eq!(
            code.keeps_session_when_sent_by_client(),
            number != 1000 && number != 1001
        );
        assert!(code
            .to_string()
            .starts_with(&format!("{number} {description}: ")));
    }
    assert_eq!(table.len() - 2, CloseCode::KNOWN.len());
}

#[test]
fn ready_captures_the_session_and_resume_url() {
    let (mut driver, first) = Driver::new(None);
    assert_eq!(first, [CONNECT_NEW]);
    for (at, input) in active() {
        driver.apply(at, &input);
    }
    assert_eq!(
        driver.session.resume_state(),
        Some(ResumeState {
            session_id: "sess".into(),
            seq: Some(1),
            resume_url: Some(RESUME_URL.into())
        })
    );
    assert_eq!(
        driver.session.heartbeat_interval(),
        Some(Duration::from_millis(1000))
    );
    assert_eq!(driver.session.attempts(), 0);
}

#[test]
fn saved_session_connects_to_its_resume_url() {
    let (_, first) = Driver::new(Some(saved_session()));
    assert_eq!(first, [CONNECT_RESUME]);
    let without_url = ResumeState {
        resume_url: None,
        ..saved_session()
    };
    let (_, first) = Driver::new(Some(without_url));
    assert_eq!(first, ["connect wss://gw.test resume=true"]);
}

/// A session with jitter seed `seed` that connected and got HELLO (1000 ms interval) at `t0`.
fn hello_with_seed(seed: u64, t0: Instant) -> ClientSession {
    let mut config = config();
    config.jitter_seed = seed;
    let (mut session, _) = ClientSession::new(config, t0);
    session.on_connected(t0);
    session.on_payload(
        &payload(json!({"op": 10, "d": {"heartbeat_interval": 1000}})),
        t0,
    );
    session
}

#[test]
fn first_heartbeat_is_jittered_within_the_interval() {
    let mut offsets = Vec::new();
    for seed in 0..50 {
        let t0 = Instant::now();
        let mut session = hello_with_seed(seed, t0);
        let due = session.poll_at().expect("heartbeat scheduled") - t0;
        assert!(due < Duration::from_millis(1000), "seed {seed}: {due:?}");
        offsets.push(due);
        // Later heartbeats follow at the full interval.
        session.on_tick(t0 + due);
        session.on_payload(&payload(json!({"op": 11})), t0 + due);
        assert_eq!(
            session.poll_at(),
            Some(t0 + due + Duration::from_millis(1000))
        );
    }
    offsets.sort();
    offsets.dedup();
    assert!(offsets.len() > 40, "jitter should vary with the seed");
}

#[test]
fn latency_is_measured_from_heartbeat_to_ack() {
    let (mut driver, _) = Driver::new(None);
    for (at, input) in active() {
        driver.apply(at, &input);
    }
    driver.apply(At::Due, &In::Tick);
    let sent = driver.now;
    driver.session.on_payload(
        &payload(json!({"op": 11})),
        sent + Duration::from_millis(42),
    );
    assert_eq!(driver.session.latency(), Some(Duration::from_millis(42)));
}

#[test]
fn invalid_session_waits_one_to_five_seconds() {
    for seed in 0..30 {
        let t0 = Instant::now();
        let mut session = hello_with_seed(seed, t0);
        session.identify_permitted(t0);
        let actions = session.on_payload(&payload(json!({"op": 9, "d": false})), t0);
        assert_eq!(actions, [ClientAction::Close(CloseCode::Normal)]);
        let wait = session.poll_at().expect("reconnect scheduled") - t0;
        assert!(
            wait >= Duration::from_secs(1) && wait <= Duration::from_secs(5),
            "{wait:?}"
        );
        assert!(session
            .on_tick(t0 + wait - Duration::from_millis(1))
            .is_empty());
        assert_eq!(
            session.on_tick(t0 + wait),
            [ClientAction::Connect {
                url: GATEWAY.into(),
                resume: false
            }]
        );
    }
}

#[test]
fn identify_bucket_and_shard_follow_max_concurrency() {
    let t0 = Instant::now();
    let mut config = config();
    config.shard = Some(ShardInfo { id: 5, count: 8 });
    config.max_concurrency = 4;
    config.large_threshold = Some(250);
    config.compress = true;
    config.presence = Some(json!({"status": "dnd"}));
    config
        .identify_extra
        .insert("capabilities".into(), json!(16381));
    let (mut session, _) = ClientSession::new(config, t0);
    session.on_connected(t0);
    let actions = session.on_payload(
        &payload(json!({"op": 10, "d": {"heartbeat_interval": 41250}})),
        t0,
    );
    assert_eq!(
        actions,
        [ClientAction::RequestIdentify {
            shard_id: 5,
            bucket_key: 1
        }]
    );
    let actions = session.identify_permitted(t0);
    let [ClientAction::Send(identify)] = actions.as_slice() else {
        panic!("expected IDENTIFY, got {actions:?}");
    };
    assert_eq!(
        identify.d,
        json!({
            "token": "tok", "properties": {"os": "test"}, "intents": 513, "shard": [5, 8],
            "compress": true, "large_threshold": 250, "presence": {"status": "dnd"},
            "capabilities": 16381
        })
    );
}

#[test]
fn commands_are_rate_limited_with_room_for_heartbeats() {
    let (mut driver, _) = Driver::new(None);
    for (at, input) in active() {
        driver.apply(at, &input);
    }
    let command = json!({"op": 3, "d": {}});
    // 1000 ms heartbeats: 60 a minute, plus one spare for op 1 requests; IDENTIFY used one.
    let mut sent = 0;
    for _ in 0..70 {
        sent += driver
            .apply(At::Ms(20), &In::Command(command.clone()))
            .len();
    }
    assert_eq!(sent, 120 - 61 - 1);
    assert_eq!(driver.session.queued(), 70 - sent);
    // Heartbeats still go out while commands wait.
    assert_eq!(driver.apply(At::Due, &In::Tick), [HEARTBEAT_1]);
    driver.apply(At::Ms(1100), &ack());
    // The next command permit comes back 60 s after the first command was sent.
    let mut released = 0;
    let mut guard = 0;
    while driver.session.queued() > 0 && guard < 1000 {
        guard += 1;
        let due = driver.session.poll_at().expect("something scheduled");
        let out = driver.apply(At::Due, &In::Tick);
        for action in &out {
            if action == HEARTBEAT_1 {
                driver.session.on_payload(&payload(json!({"op": 11})), due);
            } else {
                assert!(
                    due - driver.t0 >= Duration::from_millis(60_000),
                    "command at {:?}",
                    due - driver.t0
                );
                released += 1;
            }
        }
    }
    assert_eq!(released, 70 - sent);
}

#[test]
fn backoff_grows_over_consecutive_failures_and_resets_on_ready() {
    let t0 = Instant::now();
    let (mut session, _) = ClientSession::new(config(), t0);
    let backoff = config().backoff;
    let mut now = t0;
    for attempt in 0..10u32 {
        let actions = session.on_connect_failed(now);
        let delay = match actions.as_slice() {
            [ClientAction::Connect { .. }] => Duration::ZERO,
            [] => session.poll_at().expect("reconnect scheduled") - now,
            other => panic!("unexpected {other:?}"),
        };
        assert!(
            delay <= backoff.ceiling(attempt),
            "attempt {attempt}: {delay:?}"
        );
        assert!(delay <= backoff.cap);
        now += delay;
        session.on_tick(now);
        assert_eq!(session.state(), ClientState::Connecting);
        assert_eq!(session.attempts(), attempt + 1);
    }
    session.on_connected(now);
    session.on_payload(
        &payload(json!({"op": 10, "d": {"heartbeat_interval": 1000}})),
        now,
    );
    session.identify_permitted(now);
    session.on_payload(
        &payload(json!({"op": 0, "s": 1, "t": "READY", "d": {"session_id": "s"}})),
        now,
    );
    assert_eq!(session.attempts(), 0);
    // READY without resume_gateway_url: resume on the main gateway URL.
    assert_eq!(
        session.on_closed(Some(4000), now),
        [ClientAction::Connect {
            url: GATEWAY.into(),
            resume: true
        }]
    );
}

fn arbitrary_input() -> impl Strategy<Value = (u64, In)> {
    let op = prop_oneof![0u8..=11, any::<u8>()];
    let d = prop_oneof![
        Just(Value::Null),
        Just(json!(true)),
        Just(json!(false)),
        Just(json!({"heartbeat_interval": 1000})),
        Just(json!({"heartbeat_interval": "x"})),
        Just(json!({"session_id": "s", "resume_gateway_url": "wss://r"})),
        any::<u64>().prop_map(Value::from),
    ];
    let t = prop_oneof![
        Just(None),
        Just(Some("READY")),
        Just(Some("RESUMED")),
        Just(Some("X"))
    ];
    let server_payload = (op, d, proptest::option::of(any::<u64>()), t)
        .prop_map(|(op, d, s, t)| In::Payload(json!({"op": op, "d": d, "s": s, "t": t})));
    let input = prop_oneof![
        8 => server_payload,
        3 => Just(In::Tick),
        2 => Just(In::Connected),
        1 => Just(In::ConnectFailed),
        1 => proptest::option::of(prop_oneof![4000u16..4020, Just(1000u16), Just(1001u16)]).prop_map(In::Closed),
        2 => Just(In::Permit),
        1 => Just(In::Command(json!({"op": 3, "d": {}}))),
        1 => Just(In::Shutdown),
        1 => Just(In::DisconnectResumable),
    ];
    (0u64..5000, input)
}

proptest! {
    #[test]
    fn random_inputs_never_panic_and_nothing_follows_a_stop(
        steps in proptest::collection::vec(arbitrary_input(), 1..80)
    ) {
        let (mut driver, _) = Driver::new(None);
        let mut now_ms = 0;
        let mut stopped = false;
        for (delta, input) in steps {
            now_ms += delta;
            let before = driver.session.state();
            let actions = driver.apply(At::Ms(now_ms), &input);
            if stopped {
                let only_refusals = actions.iter().all(|a| a.starts_with("error "));
                prop_assert!(only_refusals, "emitted {:?} after stopping", actions);
            }
            // A close is the first action of a call; a connect, if any, the last.
            for (i, action) in actions.iter().enumerate() {
                if action.starts_with("close ") {
                    prop_assert_eq!(i, 0);
                }
                if action.starts_with("connect ") {
                    prop_assert_eq!(i, actions.len() - 1);
                }
                if action.starts_with("send ") {
                    prop_assert!(before != ClientState::Disconnected && before != ClientState::Connecting,
                        "sent {} while {:?}", action, before);
                }
            }
            if matches!(driver.session.state(), ClientState::Stopped | ClientState::Fatal) {
                stopped = true;
            }
        }
    }
}
