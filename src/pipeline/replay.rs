//! The second link of `serve`'s chain: answers from recorded upstream responses.
//!
//! Matching (after mitmproxy's server replay): candidates share the method, the host and the
//! route template (ids normalized as `routes` shows them); with `--replay-match-body` their
//! request body must also be byte-equal. Queries are compared with their parameters decoded and
//! sorted and the ignorable ones (`--replay-ignore-param`, cache busters) dropped. Among the
//! candidates the best match wins, and among equally good ones the most recent:
//! 1. `exact` — same path (ids included) and same query;
//! 2. `template` — other ids, same query;
//! 3. `loose` — a query that differs in a parameter that is not ignored.
//!
//! Only complete responses that really came from upstream are replayed, and only with a status
//! the policy allows (2xx and 304 unless `--replay-status` widens it: a recorded 401 is not the
//! route's answer). The replayed response names its recording and match in
//! `X-Discord-Mitm-Replay: <exchange id> <match>`.
//!
//! Id substitution: for every template parameter where the live path and the recorded path
//! differ (`/channels/{channel_id}` with 111 recorded and 222 asked), every JSON string in the
//! replayed body equal to the recorded value becomes the live value; and the recorded
//! account's id ([`Store::recorded_account`]) becomes the caller's (identity rules). Each
//! substitution made is listed in the exchange's recording. Other bodies are replayed byte for
//! byte.
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};

use super::identity::{self, Identity};
use super::replay_status::ReplayStatus;
use super::{full_body, Answer, Outcome, PipeBody, RequestContext, Responder, Source};
use crate::store::route::route_template;
use crate::store::{Exchange, Rewrite, Store};

/// Query parameters ignored by default when matching (cache busters).
pub const DEFAULT_IGNORED_PARAMS: &[&str] = &["_", "cb", "nocache"];

/// How recordings are matched.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Query parameters left out of the key.
    pub ignored_params: Vec<String>,
    /// Whether the request body is part of the key.
    pub match_body: bool,
    /// Largest request body buffered for body matching.
    pub max_body: usize,
    /// Which recorded statuses are replayed.
    pub statuses: ReplayStatus,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            ignored_params: DEFAULT_IGNORED_PARAMS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            match_body: false,
            max_body: 8 * 1024 * 1024,
            statuses: ReplayStatus::default(),
        }
    }
}

/// Replays recorded responses out of a recordings store.
pub struct ReplayResponder {
    store: Arc<Store>,
    options: ReplayOptions,
    /// What matching needs of each recording, per `method host template`, so a lookup reads
    /// only the winner from the store (not every candidate). Filled on first use of a route and
    /// topped up with what was recorded since.
    candidates: Mutex<HashMap<String, RouteCandidates>>,
    /// The identity rules: whose id a replayed body gets.
    identity: Option<Arc<Identity>>,
    /// The recorded account's id, with the next exchange id when it was looked up (looked up
    /// again once more was recorded, while it is still unknown).
    account: Mutex<Option<(u64, Option<String>)>>,
}

/// The matching facts of one route's recordings, oldest first.
#[derive(Default)]
struct RouteCandidates {
    list: Vec<Candidate>,
    newest_id: Option<u64>,
}

/// The matching facts of one recording.
struct Candidate {
    id: u64,
    /// Replayable at all: from upstream, complete, without error, with an allowed status.
    usable: bool,
    path: String,
    query: Vec<(String, String)>,
    /// Hash of the request body, or `None` when it was truncated (never matched by body).
    body_hash: Option<u64>,
}

impl Candidate {
    fn of(exchange: &Exchange, options: &ReplayOptions) -> Candidate {
        let ignored = &options.ignored_params;
        let usable = exchange.source == "upstream"
            && exchange.error.is_none()
            && exchange.response.as_ref().is_some_and(|response| {
                !response.body.truncated && options.statuses.allows(response.status)
            });
        let (path, query) = exchange
            .path_and_query
            .split_once('?')
            .map_or((exchange.path_and_query.as_str(), None), |(p, q)| {
                (p, Some(q))
            });
        Candidate {
            id: exchange.id,
            usable,
            path: path.to_string(),
            query: normalized_query(query, ignored),
            body_hash: (!exchange.request_body.truncated)
                .then(|| body_hash(&exchange.request_body.data)),
        }
    }

    /// How this recording matches the live request, if it is a candidate at all.
    fn classify(
        &self,
        live_path: &str,
        live_query: &[(String, String)],
        live_body_hash: Option<u64>,
    ) -> Option<MatchKind> {
        if !self.usable {
            return None;
        }
        if live_body_hash.is_some() && self.body_hash != live_body_hash {
            return None;
        }
        Some(if self.query != live_query {
            MatchKind::Loose
        } else if self.path == live_path {
            MatchKind::Exact
        } else {
            MatchKind::Template
        })
    }
}

fn body_hash(body: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
}

/// Header naming the replayed recording and how it matched.
pub const REPLAY_HEADER: &str = "x-discord-mitm-replay";

/// How a recording matched, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchKind {
    /// Same path, ids included, and same query.
    Exact,
    /// Same route template and query; the ids differ (and are substituted).
    Template,
    /// Same route template; a parameter that is not ignored differs.
    Loose,
}

impl MatchKind {
    /// Name used in [`REPLAY_HEADER`] and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Template => "template",
            MatchKind::Loose => "loose",
        }
    }
}

impl ReplayResponder {
    /// Replays out of `store` (shared with the recorder: sled allows one opener).
    pub fn new(store: Arc<Store>, options: ReplayOptions) -> Self {
        ReplayResponder {
            store,
            options,
            candidates: Mutex::new(HashMap::new()),
            identity: None,
            account: Mutex::new(None),
        }
    }

    /// Gives replayed bodies the caller's id instead of the recorded account's.
    pub fn with_identity(mut self, identity: Arc<Identity>) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The recorded account's id (see [`Store::recorded_account`]), looked up once and again
    /// only while unknown and after more was recorded.
    fn recorded_account(&self) -> Option<String> {
        let stored = self.store.next_exchange_id();
        let mut cached = self.account.lock().ok()?;
        match &*cached {
            Some((_, Some(id))) => return Some(id.clone()),
            Some((count, None)) if *count == stored => return None,
            _ => {}
        }
        let found = match self.store.recorded_account() {
            Ok(found) => found.map(|account| account.user_id),
            Err(err) => {
                tracing::warn!("looking up the recorded account: {err}");
                None
            }
        };
        if let Some(id) = &found {
            tracing::info!(recorded_account = %id, "replayed bodies give user {id}'s id to the caller");
        }
        *cached = Some((stored, found.clone()));
        found
    }

    /// The (recorded account, caller) ids to swap in what is replayed to `req`'s caller.
    fn account_swap<B>(&self, req: &Request<B>) -> Option<(String, String)> {
        let identity = self.identity.as_ref()?;
        let authorization = req
            .headers()
            .get(http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let caller = identity.caller(authorization)?;
        let recorded = self.recorded_account()?;
        (recorded != caller.id).then_some((recorded, caller.id))
    }

    /// The best recording for a request (the most recent among equally good ones), if any.
    fn find(
        &self,
        method: &str,
        authority: &str,
        path: &str,
        query: Option<&str>,
        body: Option<&[u8]>,
    ) -> Option<(Exchange, MatchKind)> {
        let template = route_template(path);
        let live_query = normalized_query(query, &self.options.ignored_params);
        let live_body_hash = body.map(body_hash);
        let best = {
            let mut cache = self.candidates.lock().ok()?;
            let route = cache
                .entry(format!("{method} {authority} {template}"))
                .or_default();
            self.top_up(route, method, authority, &template)?;
            let mut best: Option<(u64, MatchKind)> = None;
            // Newest first, so a later candidate only wins by matching better.
            for candidate in route.list.iter().rev() {
                let Some(kind) = candidate.classify(path, &live_query, live_body_hash) else {
                    continue;
                };
                if best.is_none_or(|(_, found)| kind < found) {
                    best = Some((candidate.id, kind));
                }
                if kind == MatchKind::Exact {
                    break;
                }
            }
            best
        };
        let (id, kind) = best?;
        let exchange = match self.store.exchange(id) {
            Ok(Some(exchange)) => exchange,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(id, "recording unreadable: {err}");
                return None;
            }
        };
        // The hash picked it; the bytes decide.
        if body.is_some_and(|body| exchange.request_body.data != body) {
            return None;
        }
        Some((exchange, kind))
    }

    /// Adds the route's recordings newer than the ones already known (all of them at first).
    fn top_up(
        &self,
        route: &mut RouteCandidates,
        method: &str,
        authority: &str,
        template: &str,
    ) -> Option<()> {
        let known = route.newest_id;
        let mut newest_seen = known;
        let mut fresh = Vec::new();
        for id in self
            .store
            .exchange_ids_for_route(method, authority, template)
        {
            let id = match id {
                Ok(id) => id,
                Err(err) => {
                    tracing::warn!("recordings index: {err}");
                    return None;
                }
            };
            if known.is_some_and(|newest| id <= newest) {
                break;
            }
            match self.store.exchange(id) {
                Ok(Some(exchange)) => fresh.push(Candidate::of(&exchange, &self.options)),
                Ok(None) => {}
                Err(err) => tracing::warn!(id, "recording unreadable: {err}"),
            }
            newest_seen = newest_seen.max(Some(id));
        }
        // Only now, so an index error part-way leaves the cache as it was.
        route.newest_id = newest_seen;
        route.list.extend(fresh.into_iter().rev());
        Some(())
    }
}

/// Query pairs, percent-decoded, without ignored parameters, sorted.
pub fn normalized_query(query: Option<&str>, ignored: &[String]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = query
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .filter(|(name, _)| !ignored.iter().any(|i| i == name))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    pairs
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

/// Pairs (recorded value → live value) for the template parameters whose values differ.
pub fn id_bindings(recorded_path: &str, live_path: &str) -> Vec<(String, String)> {
    let template = route_template(live_path);
    let mut out = Vec::new();
    for ((slot, recorded), live) in template
        .split('/')
        .zip(recorded_path.split('/'))
        .zip(live_path.split('/'))
    {
        if slot.starts_with('{') && recorded != live && !recorded.is_empty() {
            out.push((recorded.to_string(), live.to_string()));
        }
    }
    out
}

/// Headers never replayed: the body is stored decoded and re-framed here, and the rest belongs
/// to the original connection.
const NOT_REPLAYED: &[&str] = &[
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "alt-svc",
    "set-cookie",
    "date",
];

/// The recorded response as replayed to `live_path`, with the ids substituted (see the module
/// docs) and the substitutions made.
fn replayed_response(
    exchange: &Exchange,
    live_path: &str,
    account: Option<(String, String)>,
) -> Option<(Response<PipeBody>, Vec<Rewrite>)> {
    let recorded = exchange.response.as_ref()?;
    let mut bindings = id_bindings(exchange.path(), live_path);
    let template_bindings = bindings.len();
    if let Some(account) = account {
        // A path id already bound wins: the caller asked for it.
        if !bindings.iter().any(|(from, _)| *from == account.0) {
            bindings.push(account);
        }
    }
    let mut rewrites = Vec::new();
    let body = match identity::swap_ids(&recorded.body.data, &bindings) {
        Some((body, hits)) => {
            for (index, ((from, to), hit)) in bindings.iter().zip(hits).enumerate() {
                if hit {
                    let kind = if index < template_bindings {
                        identity::TEMPLATE_ID
                    } else {
                        identity::REPLAY_ID
                    };
                    rewrites.push(identity::rewrite(kind, from, to));
                }
            }
            body
        }
        None => recorded.body.data.clone(),
    };
    let mut response = Response::new(full_body(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(recorded.status).ok()?;
    for header in &recorded.headers {
        if NOT_REPLAYED.contains(&header.name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(&header.value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    Some((response, rewrites))
}

impl Responder for ReplayResponder {
    async fn respond(&self, ctx: &RequestContext, req: Request<PipeBody>) -> Outcome {
        if super::websocket::is_upgrade(&req) {
            return Outcome::Declined(req);
        }
        let method = req.method().to_string();
        let authority = ctx.authority();
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);
        let (req, body) = if self.options.match_body {
            let (parts, body) = req.into_parts();
            match super::buffer_body(body, self.options.max_body).await {
                Ok(bytes) => (
                    Request::from_parts(parts, full_body(bytes.clone())),
                    Some(bytes),
                ),
                // The body is gone now; say so rather than pass on a truncated request.
                Err(err) => return Outcome::Answered(super::backend::body_error(err)),
            }
        } else {
            (req, None)
        };
        let account = self.account_swap(&req);
        let found = self.find(
            &method,
            &authority,
            &path,
            query.as_deref(),
            body.as_deref(),
        );
        let Some((exchange, kind)) = found else {
            return Outcome::Declined(req);
        };
        match replayed_response(&exchange, &path, account) {
            Some((mut response, rewrites)) => {
                let replay = format!("{} {}", exchange.id, kind.as_str());
                tracing::debug!(id = exchange.id, kind = kind.as_str(), "replaying");
                if let Ok(value) = HeaderValue::from_str(&replay) {
                    response.headers_mut().insert(REPLAY_HEADER, value);
                }
                Outcome::Answered(Answer {
                    response,
                    source: Source::Recording,
                    upstream_addr: None,
                    error: None,
                    record: true,
                    rewrites,
                })
            }
            None => Outcome::Declined(req),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BodyRecord, ResponseRecord};
    use serde_json::Value;

    fn record(store: &Store, source: &str, path_and_query: &str, request: &str, answer: &str) {
        record_status(store, source, path_and_query, request, answer, 200);
    }

    fn record_status(
        store: &Store,
        source: &str,
        path_and_query: &str,
        request: &str,
        answer: &str,
        status: u16,
    ) {
        let mut exchange = Exchange {
            id: 0,
            started_at_us: 0,
            wait_us: None,
            duration_us: 0,
            client_addr: "127.0.0.1:1".into(),
            upstream_addr: None,
            source: source.into(),
            method: "POST".into(),
            scheme: "https".into(),
            host: "discord.com".into(),
            path_and_query: path_and_query.into(),
            http_version: "HTTP/1.1".into(),
            request_headers: vec![],
            request_body: BodyRecord {
                data: request.as_bytes().to_vec(),
                ..BodyRecord::default()
            },
            response: Some(ResponseRecord {
                status,
                headers: vec![],
                body: BodyRecord {
                    data: answer.as_bytes().to_vec(),
                    ..BodyRecord::default()
                },
            }),
            error: None,
            redactions: vec![],
            rewrites: Vec::new(),
        };
        store.insert_exchange(&mut exchange).unwrap();
    }

    #[test]
    fn lookups_rank_matches_and_see_recordings_made_after_the_first_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let path = "/api/v9/channels/81384788765712384/messages";
        let other = "/api/v9/channels/81384788765712385/messages";
        record(&store, "upstream", &format!("{path}?a=1"), "x", "first");
        let replay = ReplayResponder::new(Arc::clone(&store), ReplayOptions::default());
        let body_of = |(exchange, kind): (Exchange, MatchKind)| {
            let body = exchange.response.unwrap().body.data;
            (String::from_utf8(body).unwrap(), kind)
        };
        let find = |path: &str, query: &str, body: Option<&[u8]>| {
            replay
                .find("POST", "discord.com", path, Some(query), body)
                .map(body_of)
        };
        assert_eq!(
            find(path, "a=1", None),
            Some(("first".into(), MatchKind::Exact))
        );
        // Recorded after the route was first looked up: seen, and the most recent wins.
        record(&store, "upstream", &format!("{path}?a=1"), "y", "second");
        record(
            &store,
            "backend",
            &format!("{path}?a=1"),
            "y",
            "not replayed",
        );
        assert_eq!(
            find(path, "a=1", None),
            Some(("second".into(), MatchKind::Exact))
        );
        assert_eq!(
            find(path, "_=9&a=1", None),
            Some(("second".into(), MatchKind::Exact))
        );
        assert_eq!(
            find(other, "a=1", None),
            Some(("second".into(), MatchKind::Template))
        );
        assert_eq!(
            find(path, "a=2", None),
            Some(("second".into(), MatchKind::Loose))
        );
        // An exact match beats a newer template match.
        record(&store, "upstream", &format!("{other}?a=1"), "z", "third");
        assert_eq!(
            find(path, "a=1", None),
            Some(("second".into(), MatchKind::Exact))
        );
        assert_eq!(
            find(path, "a=2", None),
            Some(("third".into(), MatchKind::Loose))
        );
        // Bodies, when matched, pick their own recording and never another's.
        assert_eq!(
            find(path, "a=1", Some(b"x")),
            Some(("first".into(), MatchKind::Exact))
        );
        assert_eq!(
            find(other, "a=1", Some(b"x")),
            Some(("first".into(), MatchKind::Template))
        );
        assert_eq!(find(path, "a=1", Some(b"nobody")), None);
        assert_eq!(find("/api/v9/users/@me", "", None), None);
    }

    #[test]
    fn error_answers_are_replayed_only_when_the_policy_allows_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let path = "/api/v9/users/@me/affinities/users";
        record_status(&store, "upstream", path, "", "refused", 401);
        record_status(&store, "upstream", path, "", "limited", 429);
        let strict = ReplayResponder::new(Arc::clone(&store), ReplayOptions::default());
        assert!(strict
            .find("POST", "discord.com", path, None, None)
            .is_none());
        let widened = ReplayOptions {
            statuses: ReplayStatus::default().widened(&"4xx".parse().unwrap()),
            ..ReplayOptions::default()
        };
        let loose = ReplayResponder::new(Arc::clone(&store), widened);
        let (exchange, _) = loose.find("POST", "discord.com", path, None, None).unwrap();
        assert_eq!(exchange.status(), Some(429));
        record_status(&store, "upstream", path, "", "fine", 200);
        let (exchange, _) = strict
            .find("POST", "discord.com", path, None, None)
            .unwrap();
        assert_eq!(exchange.status(), Some(200));
    }

    #[test]
    fn the_recorded_account_becomes_the_caller_and_every_substitution_is_listed() {
        let mut exchange = Exchange {
            path_and_query: "/api/v9/guilds/111/members/80351110224678912".into(),
            ..crate::store::tests::sample_exchange("/")
        };
        exchange.response.as_mut().unwrap().body.data =
            br#"{"guild_id":"111","user":{"id":"80351110224678912"},"other":"5"}"#.to_vec();
        let account = Some(("80351110224678912".to_string(), "100".to_string()));
        let (response, rewrites) = replayed_response(
            &exchange,
            "/api/v9/guilds/222/members/80351110224678912",
            account,
        )
        .unwrap();
        assert_eq!(
            rewrites,
            vec![
                identity::rewrite(identity::TEMPLATE_ID, "111", "222"),
                identity::rewrite(identity::REPLAY_ID, "80351110224678912", "100"),
            ]
        );
        let body =
            futures::executor::block_on(http_body_util::BodyExt::collect(response.into_body()))
                .unwrap()
                .to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["guild_id"], "222");
        assert_eq!(body["user"]["id"], "100");
        assert_eq!(body["other"], "5");
    }

    #[test]
    fn queries_are_sorted_decoded_and_ignorable_parameters_dropped() {
        let ignored = vec!["_".to_string()];
        assert_eq!(
            normalized_query(Some("b=2&a=x%20y&_=123"), &ignored),
            vec![("a".into(), "x y".into()), ("b".into(), "2".into())]
        );
        assert_eq!(
            normalized_query(Some("a=%zz"), &ignored),
            vec![("a".into(), "%zz".into())]
        );
        assert!(normalized_query(None, &ignored).is_empty());
    }

    #[test]
    fn ids_bound_by_the_template_are_substituted_in_json_strings_only() {
        let bindings = id_bindings(
            "/api/v9/channels/111/messages",
            "/api/v9/channels/222/messages",
        );
        assert_eq!(bindings, vec![("111".to_string(), "222".to_string())]);
        let body = br#"[{"id":"5","channel_id":"111","content":"111 stays","n":111}]"#;
        let (out, hits) = identity::swap_ids(body, &bindings).unwrap();
        assert_eq!(hits, vec![true]);
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value[0]["channel_id"], "222");
        assert_eq!(value[0]["content"], "111 stays");
        assert_eq!(value[0]["n"], 111);
        assert!(identity::swap_ids(b"not json", &bindings).is_none());
        assert!(id_bindings("/api/v9/channels/1", "/api/v9/channels/1").is_empty());
    }
}
