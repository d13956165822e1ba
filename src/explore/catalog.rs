//! The route catalog: every recorded route templated, with counts, statuses, first/last seen
//! and whether Discord's OpenAPI spec documents it; plus gateway opcodes and dispatch names.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::store::route::{route_template, strip_api_prefix};
use crate::store::{Direction, Exchange, Store, StoreError};

/// Why the catalog could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CatalogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the OpenAPI spec {path}: {reason}")]
    Spec { path: PathBuf, reason: String },
}

/// The built-in table of documented routes (see [`Spec::builtin`]).
const DOCUMENTED_ROUTES: &str = include_str!("documented_routes.txt");

/// Documented paths and their methods, from an OpenAPI document.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spec {
    paths: Vec<(String, BTreeSet<String>)>,
    /// The whole document, for response schemas.
    doc: Value,
}

impl Spec {
    /// Loads `paths` from an OpenAPI JSON file.
    pub(crate) fn load(path: &Path) -> Result<Spec, CatalogError> {
        let err = |reason: String| CatalogError::Spec {
            path: path.to_path_buf(),
            reason,
        };
        let text = crate::store::stdio::read(path).map_err(|e| err(e.to_string()))?;
        let doc: Value =
            serde_json::from_slice(&text).map_err(|e| err(format!("not JSON: {e}")))?;
        Spec::from_document(&doc).map_err(err)
    }

    /// The documented routes built in: every operation's method and path template of Discord's
    /// OpenAPI spec (`documented_routes.txt`, made by `scripts/gen-documented-routes`), without
    /// the schemas.
    pub(crate) fn builtin() -> Spec {
        let mut paths: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for line in DOCUMENTED_ROUTES.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((method, path)) = line.split_once(' ') {
                paths
                    .entry(path.trim())
                    .or_default()
                    .insert(method.to_ascii_uppercase());
            }
        }
        Spec {
            paths: paths
                .into_iter()
                .map(|(path, methods)| (path.to_string(), methods))
                .collect(),
            doc: Value::Null,
        }
    }

    /// Reads `paths` from a parsed OpenAPI document.
    pub(crate) fn from_document(doc: &Value) -> Result<Spec, String> {
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("no `paths` object: not an OpenAPI document")?;
        const METHODS: &[&str] = &[
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ];
        Ok(Spec {
            paths: paths
                .iter()
                .map(|(path, item)| {
                    let methods = item
                        .as_object()
                        .map(|ops| {
                            ops.keys()
                                .filter(|k| METHODS.contains(&k.as_str()))
                                .map(|k| k.to_ascii_uppercase())
                                .collect()
                        })
                        .unwrap_or_default();
                    (path.clone(), methods)
                })
                .collect(),
            doc: doc.clone(),
        })
    }

    /// Property names the spec's 2xx JSON responses of `method path` declare (following `$ref`,
    /// `allOf`/`oneOf`/`anyOf` and array items).
    pub(crate) fn response_fields(&self, path: &str, method: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let responses = &self.doc["paths"][path][method.to_ascii_lowercase()]["responses"];
        if let Some(responses) = responses.as_object() {
            for (status, response) in responses {
                if !status.starts_with('2') {
                    continue;
                }
                let response = self.resolve(response, 0);
                if let Some(content) = response["content"].as_object() {
                    for media in content.values() {
                        self.collect_fields(&media["schema"], &mut out, 0);
                    }
                }
            }
        }
        out
    }

    fn resolve<'a>(&'a self, value: &'a Value, depth: usize) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) if depth < 16 => {
                let pointer = reference.trim_start_matches('#');
                self.doc
                    .pointer(pointer)
                    .map_or(&Value::Null, |v| self.resolve(v, depth + 1))
            }
            _ => value,
        }
    }

    fn collect_fields(&self, schema: &Value, out: &mut BTreeSet<String>, depth: usize) {
        if depth > 8 {
            return;
        }
        let schema = self.resolve(schema, 0);
        if let Some(props) = schema["properties"].as_object() {
            out.extend(props.keys().cloned());
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for part in schema[key].as_array().into_iter().flatten() {
                self.collect_fields(part, out, depth + 1);
            }
        }
        if schema.get("items").is_some() {
            self.collect_fields(&schema["items"], out, depth + 1);
        }
    }

    /// The spec path documenting `method template`, if any (template with or without /api/vN).
    pub(crate) fn documents(&self, method: &str, template: &str) -> Option<&str> {
        let bare = strip_api_prefix(template);
        self.paths
            .iter()
            .filter(|(path, methods)| methods.contains(method) && matches_spec_path(bare, path))
            // Prefer the most literal match: `/users/@me` over `/users/{user_id}`.
            .min_by_key(|(path, _)| path.matches('{').count())
            .map(|(path, _)| path.as_str())
    }
}

/// One templated route as recorded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct RouteEntry {
    /// HTTP method.
    pub method: String,
    /// Host.
    pub host: String,
    /// Path template (`/api/v9/channels/{channel_id}/messages`).
    pub template: String,
    /// Exchanges recorded.
    pub count: u64,
    /// Status codes seen, with counts.
    pub statuses: BTreeMap<u16, u64>,
    /// First seen, µs since the epoch.
    pub first_seen_us: i64,
    /// Last seen, µs since the epoch.
    pub last_seen_us: i64,
    /// The spec path that documents it; absent when undocumented or no spec was given.
    pub documented_as: Option<String>,
}

/// Gateway opcode / event counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub(crate) struct GatewayCounts {
    /// Sessions recorded.
    pub sessions: u64,
    /// Client-to-server frames by opcode.
    pub sent_ops: BTreeMap<u8, u64>,
    /// Server-to-client frames by opcode.
    pub received_ops: BTreeMap<u8, u64>,
    /// Dispatch event names with counts.
    pub dispatches: BTreeMap<String, u64>,
}

/// Routes folded one exchange at a time (the live explorer keeps one and adds what is new).
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteFold {
    routes: BTreeMap<(String, String, String), RouteEntry>,
}

impl RouteFold {
    /// Counts one exchange.
    pub(crate) fn add(&mut self, exchange: &Exchange, spec: Option<&Spec>) {
        let template = route_template(exchange.path());
        let key = (
            template.clone(),
            exchange.method.clone(),
            exchange.host.clone(),
        );
        let entry = self.routes.entry(key).or_insert_with(|| RouteEntry {
            method: exchange.method.clone(),
            host: exchange.host.clone(),
            documented_as: spec
                .and_then(|s| s.documents(&exchange.method, &template))
                .map(str::to_string),
            template,
            count: 0,
            statuses: BTreeMap::new(),
            first_seen_us: exchange.started_at_us,
            last_seen_us: exchange.started_at_us,
        });
        entry.count += 1;
        if let Some(status) = exchange.status() {
            *entry.statuses.entry(status).or_default() += 1;
        }
        entry.first_seen_us = entry.first_seen_us.min(exchange.started_at_us);
        entry.last_seen_us = entry.last_seen_us.max(exchange.started_at_us);
    }

    /// The routes, sorted by template, method and host.
    pub(crate) fn entries(&self) -> Vec<RouteEntry> {
        self.routes.values().cloned().collect()
    }
}

impl GatewayCounts {
    /// Counts every recorded gateway session's frames.
    pub(crate) fn read(store: &Store) -> Result<GatewayCounts, StoreError> {
        let mut gateway = GatewayCounts::default();
        for session in store.sessions() {
            let session = session?;
            gateway.sessions += 1;
            for frame in store.frames(session.id)? {
                let Some(op) = frame.op else { continue };
                let ops = match frame.direction {
                    Direction::ClientToServer => &mut gateway.sent_ops,
                    Direction::ServerToClient => &mut gateway.received_ops,
                };
                *ops.entry(op).or_default() += 1;
                if let Some(t) = frame.t {
                    *gateway.dispatches.entry(t).or_default() += 1;
                }
            }
        }
        Ok(gateway)
    }
}

/// The whole catalog.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Catalog {
    /// Routes, sorted by template then method.
    pub routes: Vec<RouteEntry>,
    /// Gateway side.
    pub gateway: GatewayCounts,
    /// Whether a spec was consulted (otherwise `documented_as` is always absent).
    pub spec_checked: bool,
}

impl Catalog {
    /// Builds the catalog from a store, checking routes against `spec` if given.
    pub(crate) fn build(store: &Store, spec: Option<&Spec>) -> Result<Catalog, CatalogError> {
        let mut routes = RouteFold::default();
        for exchange in store.exchanges() {
            routes.add(&exchange?, spec);
        }
        Ok(Catalog {
            routes: routes.entries(),
            gateway: GatewayCounts::read(store)?,
            spec_checked: spec.is_some(),
        })
    }

    /// Keeps only the routes the spec does not document.
    pub(crate) fn undocumented_only(&mut self) {
        self.routes.retain(|r| r.documented_as.is_none());
    }
}

/// Whether a recorded template (prefix already stripped) matches a spec path template:
/// parameters match anything, literals must be equal.
pub(crate) fn matches_spec_path(recorded: &str, spec: &str) -> bool {
    let recorded: Vec<&str> = recorded.trim_end_matches('/').split('/').collect();
    let spec: Vec<&str> = spec.trim_end_matches('/').split('/').collect();
    recorded.len() == spec.len()
        && recorded.iter().zip(&spec).all(|(have, want)| {
            let want_param = want.starts_with('{') && want.ends_with('}');
            let have_param = have.starts_with('{') && have.ends_with('}');
            want_param || (!have_param && have == want)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_documents_by_method_and_shape() {
        let spec = Spec::from_document(&json!({"paths": {
            "/channels/{channel_id}/messages": {"parameters": [], "get": {}, "post": {}},
            "/users/@me": {"get": {}},
            "/users/{user_id}": {"get": {}},
        }}))
        .unwrap();
        assert_eq!(
            spec.documents("GET", "/api/v9/channels/{channel_id}/messages"),
            Some("/channels/{channel_id}/messages")
        );
        assert_eq!(
            spec.documents("DELETE", "/api/v9/channels/{channel_id}/messages"),
            None
        );
        assert_eq!(
            spec.documents("GET", "/api/v9/users/@me"),
            Some("/users/@me")
        );
        assert_eq!(
            spec.documents("GET", "/api/v9/users/@me/affinities/guilds"),
            None
        );
        assert!(Spec::from_document(&json!({"openapi": "3.1.0"})).is_err());
    }

    #[test]
    fn spec_paths_match_by_shape() {
        assert!(matches_spec_path(
            "/channels/{channel_id}/messages",
            "/channels/{channel_id}/messages"
        ));
        assert!(matches_spec_path("/users/@me/guilds", "/users/@me/guilds"));
        assert!(matches_spec_path("/users/@me", "/users/{user_id}"));
        assert!(!matches_spec_path("/users/{user_id}", "/users/@me"));
        assert!(!matches_spec_path(
            "/channels/{channel_id}/secret",
            "/channels/{channel_id}/messages"
        ));
    }
}
