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
    use super::api_path;

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
