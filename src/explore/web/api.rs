//! The explorer's JSON API (documented in docs/explore-web.md). Store reads run on the blocking
//! pool; answers built from every record (catalog, OpenAPI) are cached until the next write.
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::live::ItemSummary;
use super::Explorer;
use crate::explore::asyncapi;
use crate::explore::catalog::{Catalog, GatewayCounts, RouteFold, Spec};
use crate::explore::diff::{Diff, Shapes};
use crate::explore::gateway::{DocumentedEvents, GatewayInferred};
use crate::explore::openapi::{self, OpenApiOptions};
use crate::explore::range::{rfc3339, TimeRange};
use crate::explore::{report, search};
use crate::store::{remote, Direction, Frame, Store};

/// Rows `GET /api/v1/items` returns by default, and at most.
const ITEMS_DEFAULT: usize = 500;
const ITEMS_MAX: usize = 10_000;

/// One cached answer and the write count it was built at.
type Slot = Mutex<Option<(u64, Bytes)>>;

/// Whole-store answers, each with the write count it was built at.
#[derive(Default)]
pub(super) struct Cache {
    routes: Slot,
    openapi: Slot,
    asyncapi: Slot,
    catalog: Mutex<LiveCatalog>,
}

/// The route catalog kept up to date: new exchanges are folded in as they come (a write does
/// not mean decoding every record again); gateway counts are re-read when the sessions
/// changed or one is open.
#[derive(Default)]
struct LiveCatalog {
    routes: RouteFold,
    next_exchange: u64,
    gateway: GatewayCounts,
    /// (sessions, frames recorded) when `gateway` was read.
    gateway_at: Option<(u64, u64)>,
}

impl LiveCatalog {
    /// Brings the catalog up to date with `store` and answers it as JSON.
    fn answer(&mut self, store: &Store) -> Result<Vec<u8>, String> {
        let spec = builtin_spec();
        for exchange in store.exchanges_from(self.next_exchange) {
            let exchange = exchange.map_err(|e| e.to_string())?;
            self.next_exchange = exchange.id + 1;
            self.routes.add(&exchange, Some(spec));
        }
        let (mut sessions, mut frames, mut open) = (0, 0, false);
        for session in store.sessions() {
            let session = session.map_err(|e| e.to_string())?;
            sessions += 1;
            frames += session.frames_sent + session.frames_received;
            open |= session.ended_at_us.is_none();
        }
        if open || self.gateway_at != Some((sessions, frames)) {
            self.gateway = GatewayCounts::read(store).map_err(|e| e.to_string())?;
            self.gateway_at = Some((sessions, frames));
        }
        let catalog = Catalog {
            routes: self.routes.entries(),
            gateway: self.gateway.clone(),
            spec_checked: true,
        };
        serde_json::to_vec(&catalog).map_err(|e| e.to_string())
    }
}

pub(super) fn routes() -> Router<Explorer> {
    Router::new()
        .route("/api/v1/routes", get(route_catalog))
        .route("/api/v1/items", get(items))
        .route("/api/v1/exchanges/{id}", get(exchange))
        .route("/api/v1/sessions/{id}", get(session))
        .route("/api/v1/events", get(events))
        .route("/api/v1/openapi.json", get(openapi_document))
        .route("/api/v1/export.har", get(har))
        .route("/api/v1/asyncapi.json", get(asyncapi_document))
        .route("/api/v1/diff", get(diff_api))
        .route("/api/v1/diff/sources", get(diff_sources))
        .route("/api/v1/search", get(search_api))
        .route("/api/v1/store/{endpoint}", get(store_endpoint))
}

/// A JSON error answer.
fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({"message": message.to_string()}))).into_response()
}

fn json_bytes(bytes: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Runs `work` on the blocking pool with the store.
async fn blocking<T: Send + 'static>(
    explorer: &Explorer,
    work: impl FnOnce(&Store) -> T + Send + 'static,
) -> Result<T, Response> {
    let store = Arc::clone(&explorer.store);
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|err| error(StatusCode::INTERNAL_SERVER_ERROR, err))
}

/// A whole-store answer from `slot`, rebuilt by `build` when something was written since.
async fn cached(
    explorer: &Explorer,
    pick: fn(&Cache) -> &Slot,
    build: fn(&Cache, &Store) -> Result<Vec<u8>, String>,
) -> Response {
    let cache = Arc::clone(&explorer.cache);
    let answer = blocking(explorer, move |store| {
        let writes = store.write_count();
        if let Some((at, bytes)) = pick(&cache).lock().as_ref() {
            if *at == writes {
                return Ok::<Bytes, String>(bytes.clone());
            }
        }
        let bytes = Bytes::from(build(&cache, store)?);
        *pick(&cache).lock() = Some((writes, bytes.clone()));
        Ok(bytes)
    })
    .await;
    match answer {
        Ok(Ok(bytes)) => json_bytes(bytes),
        Ok(Err(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(response) => response,
    }
}

fn builtin_spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(Spec::builtin)
}

/// `GET /api/v1/routes`: the route catalog (as `routes --json`).
async fn route_catalog(State(explorer): State<Explorer>) -> Response {
    cached(
        &explorer,
        |c| &c.routes,
        |cache, store| cache.catalog.lock().answer(store),
    )
    .await
}

/// `GET /api/v1/openapi.json`: the inferred OpenAPI document (as `routes --openapi`).
async fn openapi_document(State(explorer): State<Explorer>) -> Response {
    cached(
        &explorer,
        |c| &c.openapi,
        |_, store| {
            let options = OpenApiOptions {
                spec: Some(builtin_spec()),
                ..OpenApiOptions::default()
            };
            let document =
                openapi::from_store(store, &options, |_, _| {}).map_err(|e| e.to_string())?;
            serde_json::to_vec(&document).map_err(|e| e.to_string())
        },
    )
    .await
}

/// `GET /api/v1/asyncapi.json`: the inferred AsyncAPI document (as `routes --asyncapi`).
async fn asyncapi_document(State(explorer): State<Explorer>) -> Response {
    cached(
        &explorer,
        |c| &c.asyncapi,
        |_, store| {
            let inferred = GatewayInferred::from_store(store, &TimeRange::default(), |_| {})
                .map_err(|e| e.to_string())?;
            let document = asyncapi::document(&inferred, &DocumentedEvents::builtin());
            serde_json::to_vec(&document).map_err(|e| e.to_string())
        },
    )
    .await
}

/// `?limit=N`.
#[derive(serde::Deserialize)]
struct Limit {
    limit: Option<usize>,
}

/// `GET /api/v1/items?limit=N`: the last N exchanges and gateway sessions, in time order.
async fn items(State(explorer): State<Explorer>, Query(query): Query<Limit>) -> Response {
    let limit = query.limit.unwrap_or(ITEMS_DEFAULT).min(ITEMS_MAX);
    let rows = blocking(
        &explorer,
        move |store| -> Result<Vec<ItemSummary>, String> {
            let first = store.next_exchange_id().saturating_sub(limit as u64);
            let mut rows: Vec<ItemSummary> = Vec::new();
            for exchange in store.exchanges_from(first) {
                rows.push(ItemSummary::of_exchange(
                    &exchange.map_err(|e| e.to_string())?,
                ));
            }
            for session in store.sessions() {
                rows.push(ItemSummary::of_session(
                    &session.map_err(|e| e.to_string())?,
                ));
            }
            rows.sort_by_key(|row| match row {
                ItemSummary::Rest { started_at_us, .. }
                | ItemSummary::Gateway { started_at_us, .. } => *started_at_us,
            });
            let skip = rows.len().saturating_sub(limit);
            Ok(rows.split_off(skip))
        },
    )
    .await;
    match rows {
        Ok(Ok(rows)) => axum::Json(rows).into_response(),
        Ok(Err(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(response) => response,
    }
}

/// `GET /api/v1/exchanges/{id}`: one exchange in full (as `recordings --json show ID`).
async fn exchange(State(explorer): State<Explorer>, Path(id): Path<u64>) -> Response {
    match blocking(&explorer, move |store| store.exchange(id)).await {
        Ok(Ok(Some(exchange))) => axum::Json(report::exchange_json(&exchange)).into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, format!("no exchange {id}")),
        Ok(Err(err)) => error(StatusCode::INTERNAL_SERVER_ERROR, err),
        Err(response) => response,
    }
}

/// `GET /api/v1/sessions/{id}`: one gateway session with its decoded frames (as
/// `recordings --json show gw:ID`), each frame's offset from the start, and the heartbeats'
/// round trips.
async fn session(State(explorer): State<Explorer>, Path(id): Path<u64>) -> Response {
    let found = blocking(&explorer, move |store| {
        let Some(session) = store.session(id)? else {
            return Ok(None);
        };
        let frames = store.frames(id)?;
        Ok::<_, crate::store::StoreError>(Some((session, frames)))
    })
    .await;
    match found {
        Ok(Ok(Some((session, frames)))) => {
            let mut value = report::session_json(&session, &frames);
            if let Some(rows) = value.get_mut("frames").and_then(Value::as_array_mut) {
                for (row, frame) in rows.iter_mut().zip(&frames) {
                    row["offset_ms"] = json!((frame.at_us - session.started_at_us) as f64 / 1000.0);
                }
            }
            value["heartbeats"] = heartbeats(&frames);
            axum::Json(value).into_response()
        }
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, format!("no gateway session {id}")),
        Ok(Err(err)) => error(StatusCode::INTERNAL_SERVER_ERROR, err),
        Err(response) => response,
    }
}

/// Each heartbeat (op 1 sent) with the time until its ACK (op 11 received), in ms.
fn heartbeats(frames: &[Frame]) -> Value {
    let mut out = Vec::new();
    let mut pending: Option<i64> = None;
    for frame in frames {
        match (frame.direction, frame.op) {
            (Direction::ClientToServer, Some(1)) => {
                if let Some(sent) = pending.replace(frame.at_us) {
                    out.push(json!({"sent_at_us": sent, "latency_ms": null}));
                }
            }
            (Direction::ServerToClient, Some(11)) => {
                if let Some(sent) = pending.take() {
                    out.push(json!({"sent_at_us": sent, "latency_ms": (frame.at_us - sent) as f64 / 1000.0}));
                }
            }
            _ => {}
        }
    }
    if let Some(sent) = pending {
        out.push(json!({"sent_at_us": sent, "latency_ms": null}));
    }
    Value::Array(out)
}

/// `GET /api/v1/events`: server-sent events `exchange`, `session` (rows as in `items`) and
/// `change` (something was written), and `reload` when this subscriber fell behind.
async fn events(
    State(explorer): State<Explorer>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = explorer.hub.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        use tokio::sync::broadcast::error::RecvError;
        let event = match rx.recv().await {
            Ok(live) => Event::default().event(live.name).data(&*live.data),
            Err(RecvError::Lagged(_)) => Event::default().event("reload").data("{}"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `GET /api/v1/export.har`: every exchange and session as HAR 1.2 (as `export har`).
async fn har(State(explorer): State<Explorer>) -> Response {
    let built = blocking(&explorer, |store| {
        let mut out = Vec::new();
        let filter = crate::store::filter::Filter::default();
        crate::store::har::export(store, &filter, &mut out, |_, _| {}).map(|_| out)
    })
    .await;
    match built {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"discord-mitm.har\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(err)) => error(StatusCode::INTERNAL_SERVER_ERROR, err),
        Err(response) => response,
    }
}

/// Hits `GET /api/v1/search` returns by default, and at most.
const HITS_DEFAULT: usize = 200;
const HITS_MAX: usize = 5_000;

/// The pairs of a query string (`where` may repeat).
fn query_pairs(uri: &axum::http::Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of `name`, if given.
fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// `GET /api/v1/search?q=TEXT&route=&event=&since=&until=&where=PATH=VALUE…&limit=N`: the hits
/// of `recordings search` (same query language), the first `limit`, and how many there are.
async fn search_api(State(explorer): State<Explorer>, uri: axum::http::Uri) -> Response {
    let pairs = query_pairs(&uri);
    let paths: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "where")
        .map(|(_, v)| v.clone())
        .collect();
    let query = match search::Query::parse(
        param(&pairs, "q"),
        param(&pairs, "route"),
        param(&pairs, "event"),
        param(&pairs, "since").as_deref(),
        param(&pairs, "until").as_deref(),
        &paths,
    ) {
        Ok(query) => query,
        Err(err) => return error(StatusCode::BAD_REQUEST, err),
    };
    let limit = match param(&pairs, "limit").filter(|l| !l.is_empty()) {
        None => HITS_DEFAULT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) => n.min(HITS_MAX),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("limit `{text}` is not a number"),
                )
            }
        },
    };
    let found = blocking(&explorer, move |store| {
        let mut hits = Vec::new();
        let total = search::search(store, &query, |hit| {
            if hits.len() < limit {
                hits.push(hit);
            }
        })?;
        Ok::<_, crate::store::StoreError>((hits, total))
    })
    .await;
    match found {
        Ok(Ok((hits, total))) => {
            axum::Json(json!({"total": total, "shown": hits.len(), "hits": hits})).into_response()
        }
        Ok(Err(err)) => error(StatusCode::INTERNAL_SERVER_ERROR, err),
        Err(response) => response,
    }
}

/// `GET /api/v1/diff/sources`: the databases the diff view can compare (`live`, and
/// `compare` when `explore --compare DIR` named one).
async fn diff_sources(State(explorer): State<Explorer>) -> Response {
    axum::Json(json!({
        "live": explorer.store.path().display().to_string(),
        "compare": explorer.compare.as_ref().map(|s| s.path().display().to_string()),
    }))
    .into_response()
}

/// One side of a diff as asked: which database, and which part of it.
struct Side {
    store: Arc<Store>,
    session: Option<u64>,
    since: Option<String>,
    until: Option<String>,
}

impl Side {
    /// Side `a` or `b` from the query (`a=live|compare`, `a_session=ID`, `a_since`, `a_until`).
    fn from_query(
        explorer: &Explorer,
        pairs: &[(String, String)],
        side: &str,
    ) -> Result<Side, String> {
        let given = |name: &str| param(pairs, &format!("{side}_{name}")).filter(|v| !v.is_empty());
        let store = match param(pairs, side).as_deref() {
            None | Some("" | "live") => Arc::clone(&explorer.store),
            Some("compare") => explorer.compare.clone().ok_or_else(|| {
                format!("{side}=compare: start the explorer with `explore --compare DIR` to diff against another recordings directory")
            })?,
            Some(other) => return Err(format!("{side}=`{other}`: give live or compare")),
        };
        let session = match given("session") {
            None => None,
            Some(text) => Some(
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{side}_session `{text}` is not a gateway session id"))?,
            ),
        };
        let (since, until) = (given("since"), given("until"));
        if session.is_some() && (since.is_some() || until.is_some()) {
            return Err(format!(
                "side {side}: give a gateway session or a time range, not both"
            ));
        }
        Ok(Side {
            store,
            session,
            since,
            until,
        })
    }

    /// The time range this side covers, and its name (`DIR`, `DIR session 3 (…)`,
    /// `DIR since … until …`).
    fn resolve(&self, store: &Store) -> Result<(TimeRange, String), String> {
        let mut name = store.path().display().to_string();
        let range = match self.session {
            Some(id) => {
                let session = store
                    .session(id)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no gateway session {id} in {name}"))?;
                name.push_str(&format!(
                    " gateway session {id} ({} to {})",
                    rfc3339(session.started_at_us),
                    session.ended_at_us.map_or("now".into(), rfc3339)
                ));
                TimeRange {
                    since_us: Some(session.started_at_us),
                    until_us: session.ended_at_us.map(|end| end.saturating_add(1)),
                }
            }
            None => {
                let range = TimeRange::parse(self.since.as_deref(), self.until.as_deref())
                    .map_err(|e| e.to_string())?;
                if let Some(since) = range.since_us {
                    name.push_str(&format!(" since {}", rfc3339(since)));
                }
                if let Some(until) = range.until_us {
                    name.push_str(&format!(" until {}", rfc3339(until)));
                }
                range
            }
        };
        Ok((range, name))
    }
}

/// Why a diff failed: the question (400) or reading (500).
enum DiffError {
    Bad(String),
    Store(crate::store::StoreError),
}

/// `GET /api/v1/diff?a=live|compare&a_since=&a_until=&a_session=&b=…`: what changed from side
/// A to side B, as `recordings diff --json` (each side the whole database, a time range of it or
/// the span of one gateway session).
async fn diff_api(State(explorer): State<Explorer>, uri: axum::http::Uri) -> Response {
    let pairs = query_pairs(&uri);
    let sides = Side::from_query(&explorer, &pairs, "a")
        .and_then(|a| Ok((a, Side::from_query(&explorer, &pairs, "b")?)));
    let (a, b) = match sides {
        Ok(sides) => sides,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let built = blocking(&explorer, move |_| {
        let (a_range, a_name) = a.resolve(&a.store).map_err(DiffError::Bad)?;
        let (b_range, b_name) = b.resolve(&b.store).map_err(DiffError::Bad)?;
        let a_shapes =
            Shapes::from_store(&a.store, &a_range, |_, _| {}).map_err(DiffError::Store)?;
        let b_shapes =
            Shapes::from_store(&b.store, &b_range, |_, _| {}).map_err(DiffError::Store)?;
        Ok::<_, DiffError>(Diff::new(a_name, &a_shapes, b_name, &b_shapes))
    })
    .await;
    match built {
        Ok(Ok(diff)) => axum::Json(diff).into_response(),
        Ok(Err(DiffError::Bad(message))) => error(StatusCode::BAD_REQUEST, message),
        Ok(Err(DiffError::Store(err))) => error(StatusCode::INTERNAL_SERVER_ERROR, err),
        Err(response) => response,
    }
}

/// `GET /api/v1/store/{endpoint}`: the reads of [`remote::Client`] (postcard).
async fn store_endpoint(
    State(explorer): State<Explorer>,
    Path(endpoint): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let query = uri.query().unwrap_or("").to_string();
    match blocking(&explorer, move |store| {
        remote::answer(store, &endpoint, &query)
    })
    .await
    {
        Ok(Ok(bytes)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Ok(Err(remote::AnswerError::BadRequest(message))) => {
            error(StatusCode::BAD_REQUEST, message)
        }
        Ok(Err(err)) => error(StatusCode::INTERNAL_SERVER_ERROR, err),
        Err(response) => response,
    }
}
