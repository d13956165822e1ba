//! Recorded items from a recordings database, through the store's typed readers (the store
//! stays the only owner of sled): 2xx JSON answers of Discord's API and the dispatches the
//! gateway sent, decoded. What cannot be used is counted, never fatal.
use std::collections::BTreeMap;

use serde_json::Value;

use super::{ItemKind, RecordedItem};
use crate::store::records::{Direction, Exchange};
use crate::store::{Store, StoreError};

/// What reading found, besides the items.
#[derive(Debug, Default)]
pub(crate) struct ReadReport {
    /// Why records were passed over, with how often.
    pub skipped: BTreeMap<&'static str, usize>,
    /// Exchanges and frames looked at.
    pub exchanges: usize,
    /// Gateway frames looked at.
    pub frames: usize,
}

impl ReadReport {
    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }
}

/// `/api/v10/channels/1` → `/channels/1`; nothing for paths outside the API.
fn api_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api")?;
    let rest = match rest.strip_prefix("/v") {
        Some(versioned) => {
            let digits = versioned.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            &versioned[digits..]
        }
        None => rest,
    };
    rest.starts_with('/').then_some(rest)
}

/// One exchange as an item, when it is a usable API answer.
fn exchange_item(exchange: &Exchange, report: &mut ReadReport) -> Option<RecordedItem> {
    let path = api_path(exchange.path())?;
    let response = exchange.response.as_ref()?;
    if !(200..300).contains(&response.status) {
        return None;
    }
    let body = if response.status == 204 || response.body.data.is_empty() {
        Value::Null
    } else if response.body.truncated || response.body.decode_error.is_some() {
        report.skip("answers cut at the recording limit or not decodable");
        return None;
    } else {
        match serde_json::from_slice(&response.body.data) {
            Ok(body) => body,
            Err(_) => return None,
        }
    };
    let auth = exchange
        .request_headers
        .iter()
        .find(|h| h.name == "authorization")
        .map(|h| h.value_str().into_owned());
    Some(RecordedItem {
        at_us: exchange.started_at_us,
        kind: ItemKind::Rest {
            method: exchange.method.to_ascii_uppercase(),
            path: path.trim_end_matches('/').to_string(),
            status: response.status,
            auth,
            body,
        },
    })
}

/// The dispatches of one gateway session.
fn session_items(
    store: &Store,
    session: u64,
    items: &mut Vec<RecordedItem>,
    report: &mut ReadReport,
) -> Result<(), StoreError> {
    for frame in store.frames_in(session, Direction::ServerToClient) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(StoreError::Corrupt { .. }) => {
                report.skip("gateway frames that could not be read");
                continue;
            }
            Err(other) => return Err(other),
        };
        report.frames += 1;
        let used = frame
            .t
            .as_deref()
            .is_some_and(|t| super::ingest::USED_EVENTS.contains(&t));
        if frame.op != Some(0) || !used {
            continue;
        }
        let Some(payload) = frame.payload.as_deref() else {
            report.skip("dispatches recorded without a decoded payload");
            continue;
        };
        let Ok(mut payload) = serde_json::from_str::<Value>(payload) else {
            report.skip("dispatches whose payload is not JSON");
            continue;
        };
        let (Some(event), Some(data)) = (
            payload.get("t").and_then(Value::as_str).map(str::to_string),
            payload.get_mut("d").map(Value::take),
        ) else {
            continue;
        };
        items.push(RecordedItem {
            at_us: frame.at_us,
            kind: ItemKind::Dispatch {
                session,
                event,
                data,
            },
        });
    }
    Ok(())
}

/// Every usable item of the recordings in `store`.
pub(crate) fn items_from_store(
    store: &Store,
) -> Result<(Vec<RecordedItem>, ReadReport), StoreError> {
    let mut report = ReadReport::default();
    let mut items = Vec::new();
    for exchange in store.exchanges() {
        let exchange = match exchange {
            Ok(exchange) => exchange,
            Err(StoreError::Corrupt { .. }) => {
                report.skip("exchanges that could not be read");
                continue;
            }
            Err(other) => return Err(other),
        };
        report.exchanges += 1;
        if let Some(item) = exchange_item(&exchange, &mut report) {
            items.push(item);
        }
    }
    let mut sessions = Vec::new();
    for session in store.sessions() {
        match session {
            Ok(session) => sessions.push(session.id),
            Err(StoreError::Corrupt { .. }) => {
                report.skip("gateway sessions that could not be read")
            }
            Err(other) => return Err(other),
        }
    }
    for session in sessions {
        session_items(store, session, &mut items, &mut report)?;
    }
    Ok((items, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{Frame, FrameKind, GatewaySession};
    use crate::store::tests::sample_exchange;

    fn answer(path: &str, status: u16, body: &str) -> Exchange {
        let mut exchange = sample_exchange(path);
        if let Some(response) = exchange.response.as_mut() {
            response.status = status;
            response.body.data = body.as_bytes().to_vec();
        }
        exchange
    }

    fn frame(session: u64, seq: u64, payload: Option<&str>, t: Option<&str>) -> Frame {
        Frame {
            session_id: session,
            direction: Direction::ServerToClient,
            seq,
            at_us: 1_700_000_000_000_000 + seq as i64,
            kind: FrameKind::Text,
            raw_size: 10,
            op: Some(0),
            t: t.map(str::to_string),
            s: Some(seq),
            payload: payload.map(str::to_string),
            raw: None,
            decode_error: None,
            redacted: false,
        }
    }

    #[test]
    fn a_real_recordings_database_gives_usable_items_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut cut = answer("/api/v10/channels/5/messages", 200, "[{\"id\":");
        if let Some(response) = cut.response.as_mut() {
            response.body.truncated = true;
        }
        for mut exchange in [
            answer(
                "/api/v10/users/@me",
                200,
                r#"{"id": "1", "username": "alice"}"#,
            ),
            answer(
                "/api/v10/users/@me/guilds",
                401,
                r#"{"message": "401: Unauthorized"}"#,
            ),
            answer("/api/v10/channels/5/messages", 200, "not json"),
            answer("/assets/app.js", 200, "{}"),
            cut,
        ] {
            store.insert_exchange(&mut exchange).unwrap();
        }
        let session = GatewaySession {
            id: store.next_session_id(),
            started_at_us: 0,
            ended_at_us: None,
            client_addr: String::new(),
            upstream_addr: None,
            url: "wss://gateway.discord.gg/".into(),
            host: "gateway.discord.gg".into(),
            version: Some("10".into()),
            encoding: Some("json".into()),
            compress: None,
            request_headers: vec![],
            status: Some(101),
            closes: vec![],
            frames_sent: 0,
            frames_received: 4,
            error: None,
            redactions: vec![],
            rewrites: vec![],
        };
        store.put_session(&session).unwrap();
        for frame in [
            frame(
                session.id,
                0,
                Some(r#"{"op":0,"t":"READY","s":1,"d":{"user":{"id":"1"}}}"#),
                Some("READY"),
            ),
            frame(
                session.id,
                1,
                Some(r#"{"op":0,"t":"TYPING_START","s":2,"d":{}}"#),
                Some("TYPING_START"),
            ),
            frame(session.id, 2, None, Some("GUILD_CREATE")),
            frame(session.id, 3, Some("{broken"), Some("MESSAGE_CREATE")),
        ] {
            store.insert_frame(&frame).unwrap();
        }
        let (items, report) = items_from_store(&store).unwrap();
        let kinds: Vec<String> = items
            .iter()
            .map(|item| match &item.kind {
                ItemKind::Rest { path, .. } => format!("rest {path}"),
                ItemKind::Dispatch { event, .. } => format!("dispatch {event}"),
            })
            .collect();
        assert_eq!(kinds, ["rest /users/@me", "dispatch READY"]);
        assert_eq!((report.exchanges, report.frames), (5, 4));
        assert_eq!(report.skipped.len(), 3, "{:?}", report.skipped);
    }

    #[test]
    fn api_paths_lose_their_prefix_and_version() {
        for (path, want) in [
            ("/api/v10/channels/1/messages", Some("/channels/1/messages")),
            ("/api/channels/1", Some("/channels/1")),
            ("/api/v9/users/@me", Some("/users/@me")),
            ("/assets/app.js", None),
            ("/api/vx/users", None),
            ("/apix/users", None),
        ] {
            assert_eq!(api_path(path), want, "{path}");
        }
    }
}
