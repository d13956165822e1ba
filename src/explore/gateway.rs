//! Gateway inference: every recorded gateway frame merged per message kind (direction and
//! opcode, and for dispatches the event name `t`) into one [`Schema`], plus the encodings,
//! compressions and hosts seen. `routes --asyncapi` and `recordings diff` read it.
use std::collections::{BTreeMap, BTreeSet};

use super::range::TimeRange;
use super::schema::Schema;
use crate::store::{Direction, Frame, GatewaySession, Store, StoreError};

/// The built-in table of documented opcodes and events (`scripts/gen-documented-events`).
const DOCUMENTED_EVENTS: &str = include_str!("documented_events.txt");
/// Example frame ids kept per message kind.
const EXAMPLES: usize = 5;
/// Distinct message kinds kept (a hostile recording cannot grow this without bound).
const MAX_KINDS: usize = 4096;

/// Which messages a frame belongs to: its direction, opcode and (dispatches) event name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageKind {
    /// `send` (client to server) or `receive`.
    pub direction: &'static str,
    /// The opcode.
    pub op: u8,
    /// The dispatch event name (op 0 only).
    pub t: Option<String>,
}

impl MessageKind {
    /// A stable name: `receive MESSAGE_CREATE`, `send op 2`.
    pub fn label(&self) -> String {
        match &self.t {
            Some(t) => format!("{} {t}", self.direction),
            None => format!("{} op {}", self.direction, self.op),
        }
    }
}

/// Everything seen of one message kind.
#[derive(Debug, Clone, Default)]
pub struct MessageStats {
    /// Frames seen.
    pub samples: u64,
    /// First seen, µs since the epoch.
    pub first_us: i64,
    /// Last seen, µs since the epoch.
    pub last_us: i64,
    /// Frame ids of the first few (`gw:SESSION:DIRECTION:SEQ`).
    pub examples: Vec<String>,
    /// The whole payloads (`op`, `d`, `s`, `t`) merged.
    pub payload: Schema,
}

/// What the gateway sessions of a recording hold.
#[derive(Debug, Clone, Default)]
pub struct GatewayInferred {
    /// Sessions read.
    pub sessions: u64,
    /// Frames that could not be decoded.
    pub undecoded: u64,
    /// `encoding` values with session counts (`json` when absent).
    pub encodings: BTreeMap<String, u64>,
    /// `compress` values with session counts (`none` when absent).
    pub compressions: BTreeMap<String, u64>,
    /// `v` values with session counts.
    pub versions: BTreeMap<String, u64>,
    /// Hosts connected to.
    pub hosts: BTreeSet<String>,
    /// Message kinds.
    pub messages: BTreeMap<MessageKind, MessageStats>,
}

/// The frame id `gw:SESSION:send|receive:SEQ` (what `recordings search` prints).
pub fn frame_id(frame: &Frame) -> String {
    format!(
        "gw:{}:{}:{}",
        frame.session_id,
        frame.direction.har_type(),
        frame.seq
    )
}

impl GatewayInferred {
    /// Reads every session (those started in `range`) and its frames.
    pub fn from_store(
        store: &Store,
        range: &TimeRange,
        mut progress: impl FnMut(u64),
    ) -> Result<GatewayInferred, StoreError> {
        let mut out = GatewayInferred::default();
        for session in store.sessions() {
            let session = session?;
            if !range.contains(session.started_at_us) {
                continue;
            }
            out.observe_session(&session);
            for frame in store.frames(session.id)? {
                out.observe_frame(&frame);
            }
            progress(out.sessions);
        }
        Ok(out)
    }

    /// Counts one session's connection parameters.
    pub fn observe_session(&mut self, session: &GatewaySession) {
        self.sessions += 1;
        let count = |map: &mut BTreeMap<String, u64>, value: Option<&str>, none: &str| {
            let value = value.filter(|v| !v.is_empty()).unwrap_or(none);
            if map.len() < 64 || map.contains_key(value) {
                *map.entry(value.to_string()).or_default() += 1;
            }
        };
        count(&mut self.encodings, session.encoding.as_deref(), "json");
        count(&mut self.compressions, session.compress.as_deref(), "none");
        count(&mut self.versions, session.version.as_deref(), "unknown");
        if self.hosts.len() < 64 {
            self.hosts.insert(session.host.clone());
        }
    }

    /// Merges one frame.
    pub fn observe_frame(&mut self, frame: &Frame) {
        if frame.decode_error.is_some() {
            self.undecoded += 1;
        }
        let (Some(op), Some(payload)) = (frame.op, frame.payload.as_deref()) else {
            return;
        };
        let kind = MessageKind {
            direction: frame.direction.har_type(),
            op,
            t: if op == 0 { frame.t.clone() } else { None },
        };
        if !self.messages.contains_key(&kind) && self.messages.len() >= MAX_KINDS {
            return;
        }
        let stats = self.messages.entry(kind).or_default();
        if stats.samples == 0 || frame.at_us < stats.first_us {
            stats.first_us = frame.at_us;
        }
        stats.last_us = stats.last_us.max(frame.at_us);
        stats.samples += 1;
        if stats.examples.len() < EXAMPLES {
            stats.examples.push(frame_id(frame));
        }
        let mut sample = Schema::default();
        if sample.observe_json(payload.as_bytes()).is_ok() {
            stats.payload.merge(&sample);
        }
    }
}

/// Discord's documented gateway opcodes (per direction) and dispatch events.
#[derive(Debug, Clone, Default)]
pub struct DocumentedEvents {
    ops: BTreeMap<(&'static str, u8), String>,
    events: BTreeSet<String>,
}

impl DocumentedEvents {
    /// The table built in (generated from Discord's API documentation).
    pub fn builtin() -> DocumentedEvents {
        let mut out = DocumentedEvents::default();
        for line in DOCUMENTED_EVENTS.lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("op"), Some(code), Some(direction), Some(name)) => {
                    let direction = if direction == "send" {
                        Direction::ClientToServer
                    } else {
                        Direction::ServerToClient
                    };
                    if let Ok(code) = code.parse() {
                        out.ops
                            .insert((direction.har_type(), code), name.to_string());
                    }
                }
                (Some("event"), Some(name), None, None) => {
                    out.events.insert(name.to_string());
                }
                _ => {}
            }
        }
        out
    }

    /// The documented name of an opcode in a direction.
    pub fn op_name(&self, direction: &str, op: u8) -> Option<&str> {
        self.ops
            .iter()
            .find(|((d, o), _)| *d == direction && *o == op)
            .map(|(_, name)| name.as_str())
    }

    /// The name of an opcode in either direction (for opcodes seen the other way round).
    pub fn any_op_name(&self, op: u8) -> Option<&str> {
        self.ops
            .iter()
            .find(|((_, o), _)| *o == op)
            .map(|(_, name)| name.as_str())
    }

    /// Whether a message kind is documented: its opcode in its direction, and for dispatches
    /// the event name.
    pub fn documents(&self, kind: &MessageKind) -> bool {
        self.op_name(kind.direction, kind.op).is_some()
            && kind.t.as_ref().is_none_or(|t| self.events.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_knows_the_basics() {
        let docs = DocumentedEvents::builtin();
        assert_eq!(docs.op_name("receive", 10), Some("HELLO"));
        assert_eq!(docs.op_name("send", 2), Some("IDENTIFY"));
        assert_eq!(docs.op_name("receive", 2), None);
        let dispatch = |t: &str| MessageKind {
            direction: "receive",
            op: 0,
            t: Some(t.into()),
        };
        assert!(docs.documents(&dispatch("MESSAGE_CREATE")));
        assert!(docs.documents(&dispatch("READY")));
        assert!(!docs.documents(&dispatch("READY_SUPPLEMENTAL")));
        assert!(!docs.documents(&MessageKind {
            direction: "send",
            op: 14,
            t: None
        }));
    }
}
