//! A passive view of one recorded gateway connection: fed the payloads of both directions, it
//! follows the session (HELLO, IDENTIFY/RESUME, READY/RESUMED, heartbeats) and notes what a
//! reverse engineer wants flagged: latency, sequence gaps, late or unanswered heartbeats,
//! reconnect requests, and what a close code means. It never acts.
use std::time::{Duration, Instant};

use serde_json::Value;

use super::close::{CloseCode, CloseDisposition};
use super::payload::{GatewayPayload, OpCode};

/// Which end sent something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client (official client, bot).
    Client,
    /// The gateway.
    Server,
}

/// Where the observed session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservedPhase {
    /// Nothing but perhaps HELLO yet.
    Handshake,
    /// IDENTIFY sent, no READY yet.
    Identifying,
    /// RESUME sent, no RESUMED yet.
    Resuming,
    /// READY or RESUMED seen.
    Active,
    /// The connection closed.
    Closed,
}

/// Something worth annotating in a recording.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// HELLO with its heartbeat interval.
    Hello {
        /// The interval the gateway asked for.
        heartbeat_interval: Duration,
    },
    /// The client started a new session.
    Identify,
    /// The client resumed `session_id` from `seq`.
    Resume {
        /// The session resumed.
        session_id: String,
        /// The last sequence number the client had.
        seq: Option<u64>,
    },
    /// READY: the session's id and where to resume it.
    Ready {
        /// `session_id`, if present.
        session_id: Option<String>,
        /// `resume_gateway_url`, if present.
        resume_gateway_url: Option<String>,
    },
    /// RESUMED: replay finished.
    Resumed,
    /// Time from a client heartbeat to the gateway's ACK.
    HeartbeatLatency(Duration),
    /// The client heartbeated later than the interval allows.
    LateHeartbeat {
        /// How far past the interval it came.
        late_by: Duration,
    },
    /// The client heartbeated again without an ACK for the previous one (a zombied link).
    UnansweredHeartbeat,
    /// A dispatch skipped or repeated sequence numbers.
    SequenceGap {
        /// The number that should have come.
        expected: u64,
        /// The number that came.
        got: u64,
    },
    /// The gateway asked the client to reconnect (op 7).
    ReconnectRequested,
    /// The gateway invalidated the session (op 9).
    InvalidSession {
        /// Whether it may be resumed.
        resumable: bool,
    },
    /// The connection closed.
    Closed {
        /// Who closed it.
        by: Side,
        /// The close code, if a close frame carried one.
        code: Option<CloseCode>,
        /// What the code means for the session.
        disposition: CloseDisposition,
    },
}

/// Follows one gateway connection from recorded payloads.
#[derive(Debug, Clone)]
pub struct SessionObserver {
    phase: ObservedPhase,
    heartbeat_interval: Option<Duration>,
    hello_at: Option<Instant>,
    last_client_heartbeat: Option<Instant>,
    unacked_heartbeat: Option<Instant>,
    last_seq: Option<u64>,
    session_id: Option<String>,
    resume_gateway_url: Option<String>,
}

impl Default for SessionObserver {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionObserver {
    /// An observer for a connection that just opened.
    pub fn new() -> Self {
        SessionObserver {
            phase: ObservedPhase::Handshake,
            heartbeat_interval: None,
            hello_at: None,
            last_client_heartbeat: None,
            unacked_heartbeat: None,
            last_seq: None,
            session_id: None,
            resume_gateway_url: None,
        }
    }

    /// Where the session is.
    pub fn phase(&self) -> ObservedPhase {
        self.phase
    }

    /// The session id from READY or RESUME.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// `resume_gateway_url` from READY.
    pub fn resume_gateway_url(&self) -> Option<&str> {
        self.resume_gateway_url.as_deref()
    }

    /// The last dispatch sequence number seen.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Takes in one payload sent by `side` at `at`.
    pub fn observe(&mut self, side: Side, payload: &GatewayPayload, at: Instant) -> Vec<Note> {
        let mut notes = Vec::new();
        if self.phase == ObservedPhase::Closed {
            return notes;
        }
        match (side, payload.op) {
            (Side::Server, OpCode::Hello) => {
                if let Some(ms) = payload.d.get("heartbeat_interval").and_then(Value::as_u64) {
                    let heartbeat_interval = Duration::from_millis(ms);
                    self.heartbeat_interval = Some(heartbeat_interval);
                    notes.push(Note::Hello { heartbeat_interval });
                }
                self.hello_at = Some(at);
            }
            (Side::Client, OpCode::Heartbeat) => self.client_heartbeat(at, &mut notes),
            (Side::Client, op) if op.code() == 40 => self.client_heartbeat(at, &mut notes),
            (Side::Server, OpCode::HeartbeatAck) => {
                if let Some(sent) = self.unacked_heartbeat.take() {
                    notes.push(Note::HeartbeatLatency(at.saturating_duration_since(sent)));
                }
            }
            (Side::Client, OpCode::Identify) => {
                self.phase = ObservedPhase::Identifying;
                self.last_seq = None;
                notes.push(Note::Identify);
            }
            (Side::Client, OpCode::Resume) => {
                let session_id = payload
                    .d
                    .get("session_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let seq = payload.d.get("seq").and_then(Value::as_u64);
                self.phase = ObservedPhase::Resuming;
                self.session_id = Some(session_id.clone());
                self.last_seq = seq;
                notes.push(Note::Resume { session_id, seq });
            }
            (Side::Server, OpCode::Dispatch) => self.dispatch(payload, &mut notes),
            (Side::Server, OpCode::Reconnect) => notes.push(Note::ReconnectRequested),
            (Side::Server, OpCode::InvalidSession) => {
                let resumable = payload.d.as_bool() == Some(true);
                self.phase = ObservedPhase::Handshake;
                notes.push(Note::InvalidSession { resumable });
            }
            _ => {}
        }
        notes
    }

    /// The connection closed, by `by`, with `code` (None: no close frame or no code).
    pub fn observe_close(&mut self, by: Side, code: Option<u16>) -> Vec<Note> {
        if self.phase == ObservedPhase::Closed {
            return Vec::new();
        }
        self.phase = ObservedPhase::Closed;
        let code = code.map(CloseCode::from_u16);
        let disposition = match (by, code) {
            (_, None) => CloseDisposition::Resume,
            // A client ending with 1000/1001 ends its session; any other code keeps it.
            (Side::Client, Some(code)) if code.keeps_session_when_sent_by_client() => {
                CloseDisposition::Resume
            }
            (Side::Client, Some(_)) => CloseDisposition::NewSession,
            (Side::Server, Some(code)) => code.disposition(),
        };
        vec![Note::Closed {
            by,
            code,
            disposition,
        }]
    }

    fn client_heartbeat(&mut self, at: Instant, notes: &mut Vec<Note>) {
        if self.unacked_heartbeat.is_some() {
            notes.push(Note::UnansweredHeartbeat);
        }
        if let (Some(interval), Some(since)) = (
            self.heartbeat_interval,
            self.last_client_heartbeat.or(self.hello_at),
        ) {
            // A tenth of the interval covers timer slop and network latency.
            let allowed = interval + interval / 10;
            let gap = at.saturating_duration_since(since);
            if gap > allowed {
                notes.push(Note::LateHeartbeat {
                    late_by: gap - interval,
                });
            }
        }
        self.last_client_heartbeat = Some(at);
        self.unacked_heartbeat = Some(at);
    }

    fn dispatch(&mut self, payload: &GatewayPayload, notes: &mut Vec<Note>) {
        if let Some(got) = payload.s {
            if let Some(last) = self.last_seq {
                let expected = last.saturating_add(1);
                if got != expected {
                    notes.push(Note::SequenceGap { expected, got });
                }
            }
            self.last_seq = Some(got);
        }
        match payload.t.as_deref() {
            Some("READY") => {
                let session_id = payload
                    .d
                    .get("session_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let resume_gateway_url = payload
                    .d
                    .get("resume_gateway_url")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.session_id.clone_from(&session_id);
                self.resume_gateway_url.clone_from(&resume_gateway_url);
                self.phase = ObservedPhase::Active;
                notes.push(Note::Ready {
                    session_id,
                    resume_gateway_url,
                });
            }
            Some("RESUMED") => {
                self.phase = ObservedPhase::Active;
                notes.push(Note::Resumed);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(value: serde_json::Value) -> GatewayPayload {
        serde_json::from_value(value).expect("payload")
    }

    #[test]
    fn a_recorded_session_is_annotated() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut observer = SessionObserver::new();
        let script: Vec<(Side, u64, serde_json::Value, Vec<Note>)> = vec![
            (
                Side::Server,
                0,
                json!({"op": 10, "d": {"heartbeat_interval": 1000}}),
                vec![Note::Hello {
                    heartbeat_interval: Duration::from_millis(1000),
                }],
            ),
            (
                Side::Client,
                5,
                json!({"op": 2, "d": {"token": "t"}}),
                vec![Note::Identify],
            ),
            (
                Side::Server,
                50,
                json!({"op": 0, "s": 1, "t": "READY", "d": {"session_id": "abc", "resume_gateway_url": "wss://r"}}),
                vec![Note::Ready {
                    session_id: Some("abc".into()),
                    resume_gateway_url: Some("wss://r".into()),
                }],
            ),
            (Side::Client, 400, json!({"op": 1, "d": 1}), vec![]),
            (
                Side::Server,
                430,
                json!({"op": 11}),
                vec![Note::HeartbeatLatency(Duration::from_millis(30))],
            ),
            (
                Side::Server,
                500,
                json!({"op": 0, "s": 2, "t": "GUILD_CREATE", "d": {}}),
                vec![],
            ),
            (
                Side::Server,
                600,
                json!({"op": 0, "s": 4, "t": "MESSAGE_CREATE", "d": {}}),
                vec![Note::SequenceGap {
                    expected: 3,
                    got: 4,
                }],
            ),
            (
                Side::Client,
                1400,
                json!({"op": 40, "d": {"seq": 4, "qos": {}}}),
                vec![],
            ),
            (
                Side::Client,
                2700,
                json!({"op": 1, "d": 4}),
                vec![
                    Note::UnansweredHeartbeat,
                    Note::LateHeartbeat {
                        late_by: Duration::from_millis(300),
                    },
                ],
            ),
            (
                Side::Server,
                2800,
                json!({"op": 7, "d": null}),
                vec![Note::ReconnectRequested],
            ),
        ];
        for (side, at, payload, expected) in script {
            assert_eq!(
                observer.observe(side, &p(payload.clone()), ms(at)),
                expected,
                "{payload}"
            );
        }
        assert_eq!(observer.phase(), ObservedPhase::Active);
        assert_eq!(observer.session_id(), Some("abc"));
        assert_eq!(observer.resume_gateway_url(), Some("wss://r"));
        assert_eq!(observer.last_seq(), Some(4));
        assert_eq!(
            observer.observe_close(Side::Client, Some(4000)),
            [Note::Closed {
                by: Side::Client,
                code: Some(CloseCode::UnknownError),
                disposition: CloseDisposition::Resume
            }]
        );
        assert!(observer
            .observe(Side::Server, &p(json!({"op": 11})), ms(3000))
            .is_empty());
        assert!(observer.observe_close(Side::Server, Some(4009)).is_empty());
    }

    #[test]
    fn a_resumed_session_continues_from_the_resume_seq() {
        let t0 = Instant::now();
        let mut observer = SessionObserver::new();
        let resume = json!({"op": 6, "d": {"token": "t", "session_id": "abc", "seq": 10}});
        assert_eq!(
            observer.observe(Side::Client, &p(resume), t0),
            [Note::Resume {
                session_id: "abc".into(),
                seq: Some(10)
            }]
        );
        assert_eq!(observer.phase(), ObservedPhase::Resuming);
        assert!(observer
            .observe(
                Side::Server,
                &p(json!({"op": 0, "s": 11, "t": "MESSAGE_CREATE", "d": {}})),
                t0
            )
            .is_empty());
        assert_eq!(
            observer.observe(
                Side::Server,
                &p(json!({"op": 0, "s": 12, "t": "RESUMED", "d": {}})),
                t0
            ),
            [Note::Resumed]
        );
        assert_eq!(observer.phase(), ObservedPhase::Active);
    }

    #[test]
    fn close_notes_classify_by_who_closed() {
        let cases: [(Side, Option<u16>, CloseDisposition); 6] = [
            (Side::Server, Some(4004), CloseDisposition::Fatal),
            (Side::Server, Some(4007), CloseDisposition::NewSession),
            (Side::Server, Some(4000), CloseDisposition::Resume),
            (Side::Server, None, CloseDisposition::Resume),
            (Side::Client, Some(1000), CloseDisposition::NewSession),
            (Side::Client, Some(4004), CloseDisposition::Resume),
        ];
        for (by, code, disposition) in cases {
            let mut observer = SessionObserver::new();
            assert_eq!(
                observer.observe_close(by, code),
                [Note::Closed {
                    by,
                    code: code.map(CloseCode::from_u16),
                    disposition
                }],
                "{by:?} {code:?}"
            );
            assert_eq!(observer.phase(), ObservedPhase::Closed);
        }
    }

    #[test]
    fn invalid_session_returns_to_the_handshake() {
        let t0 = Instant::now();
        let mut observer = SessionObserver::new();
        observer.observe(Side::Client, &p(json!({"op": 2, "d": {}})), t0);
        assert_eq!(
            observer.observe(Side::Server, &p(json!({"op": 9, "d": false})), t0),
            [Note::InvalidSession { resumable: false }]
        );
        assert_eq!(observer.phase(), ObservedPhase::Handshake);
    }
}
