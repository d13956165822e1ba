//! Whose recordings these are: the recorded account's user id, read from a recorded
//! `GET /users/@me` answer or, failing that, a recorded READY. `serve` replaces it with the
//! local caller's id in replayed bodies; a world built from recordings knows its own user by it.
//!
//! This module is the one owner of what names a recorded account ([`users_me_account`],
//! [`ready_account`]); the world builder and the replay both ask it.
use serde_json::Value;

use super::{Direction, Store, StoreError};

/// Discord's API hosts a recorded `/users/@me` may have gone to.
const API_HOSTS: &[&str] = &[
    "discord.com",
    "discordapp.com",
    "canary.discord.com",
    "ptb.discord.com",
];
/// The `/users/@me` paths of every API version.
const ME_PATHS: &[&str] = &[
    "/api/users/@me",
    "/api/v6/users/@me",
    "/api/v7/users/@me",
    "/api/v8/users/@me",
    "/api/v9/users/@me",
    "/api/v10/users/@me",
];
/// Server-to-client frames of one session looked at for READY (it comes second or third).
const READY_WITHIN: usize = 16;

/// Where a recorded account id was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSource {
    /// A recorded `GET /users/@me` answer (the exchange id).
    UsersMe(u64),
    /// A recorded READY (the gateway session id).
    Ready(u64),
}

/// The recorded account: its user id and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAccount {
    /// The account's user id (a snowflake, as text).
    pub user_id: String,
    /// Where it was read.
    pub source: AccountSource,
}

impl Store {
    /// The account these recordings were made with: the newest `GET /users/@me` that real
    /// Discord answered 200 (and `serve` did not rewrite), else the newest recorded READY.
    pub fn recorded_account(&self) -> Result<Option<RecordedAccount>, StoreError> {
        // Newest first across hosts and versions; the first usable answer wins.
        let mut candidates: Vec<u64> = Vec::new();
        for host in API_HOSTS {
            for path in ME_PATHS {
                for id in self.exchange_ids_for_route("GET", host, path) {
                    candidates.push(id?);
                }
            }
        }
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        for id in candidates {
            let Some(exchange) = self.exchange(id)? else {
                continue;
            };
            let answered = exchange.source == "upstream"
                && exchange.rewrites.is_empty()
                && exchange.status() == Some(200);
            let user_id = exchange
                .response
                .as_ref()
                .filter(|_| answered)
                .and_then(|res| serde_json::from_slice::<Value>(&res.body.data).ok())
                .and_then(|body| {
                    users_me_account("GET", path_of(&exchange.path_and_query), 200, &body)
                });
            if let Some(user_id) = user_id {
                return Ok(Some(RecordedAccount {
                    user_id,
                    source: AccountSource::UsersMe(id),
                }));
            }
        }
        self.recorded_ready_account()
    }

    /// The user of the newest recorded READY that upstream sent.
    fn recorded_ready_account(&self) -> Result<Option<RecordedAccount>, StoreError> {
        let mut sessions: Vec<u64> = Vec::new();
        for session in self.sessions() {
            let session = session?;
            // Sessions the in-process gateway served have no upstream address.
            if session.upstream_addr.is_some() {
                sessions.push(session.id);
            }
        }
        for session_id in sessions.into_iter().rev() {
            for frame in self
                .frames_in(session_id, Direction::ServerToClient)
                .take(READY_WITHIN)
            {
                let frame = frame?;
                if frame.t.as_deref() != Some("READY") {
                    continue;
                }
                let user_id = frame
                    .payload
                    .as_deref()
                    .and_then(|text| serde_json::from_str::<Value>(text).ok())
                    .and_then(|payload| ready_account(&payload["d"]));
                if let Some(user_id) = user_id {
                    return Ok(Some(RecordedAccount {
                        user_id,
                        source: AccountSource::Ready(session_id),
                    }));
                }
            }
        }
        Ok(None)
    }
}

/// The path of a `path?query`.
fn path_of(path_and_query: &str) -> &str {
    path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path)
}

/// Whether `path` is `/users/@me`, with or without `/api[/vN]` (and a trailing slash).
pub fn is_users_me_path(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    path == "/users/@me" || ME_PATHS.contains(&path)
}

/// The account a recorded answer names: a successful `GET /users/@me` (any API version)
/// names the account that asked.
pub fn users_me_account(method: &str, path: &str, status: u16, body: &Value) -> Option<String> {
    let asked = method.eq_ignore_ascii_case("GET") && is_users_me_path(path);
    (asked && (200..300).contains(&status))
        .then(|| snowflake_text(&body["id"]))
        .flatten()
}

/// The account a READY's `d` names: its `user`.
pub fn ready_account(d: &Value) -> Option<String> {
    snowflake_text(&d["user"]["id"])
}

/// A snowflake as Discord sends it (a string; ETF sessions decode it as a number).
fn snowflake_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            Some(text.clone())
        }
        Value::Number(number) => number.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{Frame, FrameKind, GatewaySession};
    use crate::store::tests::sample_exchange;

    fn me(store: &Store, path: &str, status: u16, body: &str, source: &str) {
        let mut exchange = sample_exchange(path);
        exchange.source = source.into();
        if let Some(response) = exchange.response.as_mut() {
            response.status = status;
            response.body.data = body.as_bytes().to_vec();
        }
        store.insert_exchange(&mut exchange).unwrap();
    }

    fn ready_session(store: &Store, user_id: &str) {
        let id = store.next_session_id();
        store
            .put_session(&GatewaySession {
                id,
                started_at_us: 0,
                ended_at_us: None,
                client_addr: "127.0.0.1:1".into(),
                upstream_addr: Some("127.0.0.1:443".into()),
                url: "wss://gateway.discord.gg/".into(),
                host: "gateway.discord.gg".into(),
                version: None,
                encoding: None,
                compress: None,
                request_headers: vec![],
                status: Some(101),
                closes: vec![],
                frames_sent: 0,
                frames_received: 2,
                error: None,
                redactions: vec![],
                rewrites: vec![],
            })
            .unwrap();
        for (seq, t, payload) in [
            (
                0,
                None,
                r#"{"op":10,"d":{"heartbeat_interval":41250}}"#.to_string(),
            ),
            (
                1,
                Some("READY".to_string()),
                format!(r#"{{"op":0,"t":"READY","s":1,"d":{{"user":{{"id":"{user_id}"}}}}}}"#),
            ),
        ] {
            store
                .insert_frame(&Frame {
                    session_id: id,
                    direction: Direction::ServerToClient,
                    seq,
                    at_us: 0,
                    kind: FrameKind::Text,
                    raw_size: 0,
                    op: None,
                    t,
                    s: None,
                    payload: Some(payload),
                    raw: None,
                    decode_error: None,
                    redacted: false,
                })
                .unwrap();
        }
    }

    #[test]
    fn what_names_an_account_is_decided_here() {
        let me = serde_json::json!({"id": "111", "username": "a"});
        for path in [
            "/users/@me",
            "/api/v9/users/@me",
            "/api/users/@me/",
            "/api/v10/users/@me",
        ] {
            assert_eq!(
                users_me_account("GET", path, 200, &me).as_deref(),
                Some("111"),
                "{path}"
            );
        }
        assert_eq!(users_me_account("PATCH", "/users/@me", 200, &me), None);
        assert_eq!(users_me_account("GET", "/users/@me", 401, &me), None);
        assert_eq!(users_me_account("GET", "/users/@me/guilds", 200, &me), None);
        assert_eq!(users_me_account("GET", "/users/111", 200, &me), None);
        assert_eq!(
            users_me_account("GET", "/users/@me", 200, &serde_json::json!({"id": "x1"})),
            None
        );
        let ready = serde_json::json!({"user": {"id": 222u64}});
        assert_eq!(ready_account(&ready).as_deref(), Some("222"));
        assert_eq!(ready_account(&serde_json::json!({})), None);
    }

    #[test]
    fn the_newest_real_users_me_answer_names_the_account_else_ready_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.recorded_account().unwrap(), None);
        ready_session(&store, "555");
        let ready = store.recorded_account().unwrap().unwrap();
        assert_eq!(ready.user_id, "555");
        assert!(matches!(ready.source, AccountSource::Ready(_)));
        me(
            &store,
            "/api/v9/users/@me",
            200,
            r#"{"id":"111"}"#,
            "upstream",
        );
        me(
            &store,
            "/api/v10/users/@me",
            200,
            r#"{"id":"222"}"#,
            "upstream",
        );
        // Not real Discord's, or not an answer: never the account.
        me(
            &store,
            "/api/v9/users/@me",
            401,
            r#"{"id":"333"}"#,
            "upstream",
        );
        me(
            &store,
            "/api/v9/users/@me",
            200,
            r#"{"id":"444"}"#,
            "backend",
        );
        me(&store, "/api/v9/users/@me", 200, "not json", "upstream");
        let account = store.recorded_account().unwrap().unwrap();
        assert_eq!(account.user_id, "222");
        assert!(matches!(account.source, AccountSource::UsersMe(_)));
    }
}
