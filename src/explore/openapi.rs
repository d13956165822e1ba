//! `routes --openapi`: an OpenAPI 3.1 document of every recorded REST route, with request and
//! response schemas inferred by merging every observed body ([`super::schema`]).
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::catalog::Spec;
use super::schema::Schema;
use crate::store::filter::Filter;
use crate::store::route::route_template;
use crate::store::{Exchange, Store, StoreError};

/// Request headers worth describing when a client sends them.
const NOTABLE_HEADERS: &[&str] = &[
    "x-super-properties",
    "x-discord-locale",
    "x-discord-timezone",
    "x-fingerprint",
    "x-debug-options",
    "x-context-properties",
    "x-audit-log-reason",
    "authorization",
];
/// Example recording ids kept per operation.
const EXAMPLES: usize = 5;

/// Everything observed of one method on one route template.
#[derive(Debug, Default)]
pub struct Operation {
    /// Exchanges seen.
    pub samples: u64,
    first_us: i64,
    last_us: i64,
    examples: Vec<u64>,
    query: BTreeMap<String, u64>,
    headers: BTreeSet<String>,
    request: BTreeMap<String, Schema>,
    responses: BTreeMap<u16, BTreeMap<String, Schema>>,
    hosts: BTreeSet<String>,
}

/// Every operation by (template, method).
#[derive(Debug, Default)]
pub struct Inferred {
    /// Operations by route template, then method.
    pub operations: BTreeMap<String, BTreeMap<String, Operation>>,
    templates: std::collections::HashMap<String, String>,
}

impl Inferred {
    /// Adds one exchange.
    pub fn observe(&mut self, exchange: &Exchange) {
        let path = exchange.path();
        let template = match self.templates.get(path) {
            Some(t) => t.clone(),
            None => {
                let t = route_template(path);
                if self.templates.len() < 100_000 {
                    self.templates.insert(path.to_string(), t.clone());
                }
                t
            }
        };
        let op = self
            .operations
            .entry(template)
            .or_default()
            .entry(exchange.method.clone())
            .or_default();
        if op.samples == 0 || exchange.started_at_us < op.first_us {
            op.first_us = exchange.started_at_us;
        }
        op.last_us = op.last_us.max(exchange.started_at_us);
        op.samples += 1;
        if op.examples.len() < EXAMPLES {
            op.examples.push(exchange.id);
        }
        op.hosts.insert(exchange.host.clone());
        if let Some((_, query)) = exchange.path_and_query.split_once('?') {
            for (name, _) in form_urlencoded::parse(query.as_bytes()) {
                *op.query.entry(name.into_owned()).or_default() += 1;
            }
        }
        for header in &exchange.request_headers {
            if NOTABLE_HEADERS.contains(&header.name.as_str()) {
                op.headers.insert(header.name.clone());
            }
        }
        let req_type = content_type(&exchange.request_headers);
        observe_body(&mut op.request, &req_type, &exchange.request_body.data);
        if let Some(response) = &exchange.response {
            let res_type = content_type(&response.headers);
            let by_type = op.responses.entry(response.status).or_default();
            observe_body(by_type, &res_type, &response.body.data);
        }
    }
}

fn content_type(headers: &[crate::store::Header]) -> String {
    headers
        .iter()
        .find(|h| h.name == "content-type")
        .map(|h| {
            let v = h.value_str();
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn observe_body(by_type: &mut BTreeMap<String, Schema>, media: &str, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let looks_json =
        media.contains("json") || (media.is_empty() && matches!(data.first(), Some(b'{' | b'[')));
    let media = if looks_json && media.is_empty() {
        "application/json"
    } else if media.is_empty() {
        "application/octet-stream"
    } else {
        media
    };
    if !by_type.contains_key(media) {
        by_type.insert(media.to_owned(), Schema::default());
    }
    let Some(schema) = by_type.get_mut(media) else {
        return;
    };
    if looks_json {
        let mut sample = Schema::default();
        if sample.observe_json(data).is_ok() {
            schema.merge(&sample);
            return;
        }
    }
    schema.seen += 1;
}

/// Options of `routes --openapi`.
#[derive(Debug, Default)]
pub(crate) struct OpenApiOptions<'a> {
    /// Discord's spec, to mark documented routes and list fields it lacks.
    pub(crate) spec: Option<&'a Spec>,
    /// Only routes the spec does not (fully) document.
    pub(crate) only_undocumented: bool,
    /// Only exchanges matching.
    pub(crate) filter: Option<&'a Filter>,
}

/// Reads every exchange of `store` and builds the OpenAPI document.
pub(crate) fn from_store(store: &Store, options: &OpenApiOptions<'_>) -> Result<Value, StoreError> {
    let mut inferred = Inferred::default();
    for exchange in store.exchanges() {
        let exchange = exchange?;
        if options.filter.is_none_or(|f| f.matches_exchange(&exchange)) {
            inferred.observe(&exchange);
        }
    }
    Ok(document(&inferred, options))
}

/// The OpenAPI 3.1 document of what was inferred.
pub(crate) fn document(inferred: &Inferred, options: &OpenApiOptions<'_>) -> Value {
    let mut paths = Map::new();
    let mut hosts = BTreeSet::new();
    for (template, methods) in &inferred.operations {
        let (path, params) = openapi_path(template);
        let mut item = Map::new();
        for (method, op) in methods {
            let (documented, missing) = documented(options.spec, method, template, op);
            if options.only_undocumented && documented == "true" {
                continue;
            }
            hosts.extend(op.hosts.iter().cloned());
            let mut operation = operation(op, &params);
            operation.insert(
                "x-discord-mitm".into(),
                json!({
                    "samples": op.samples,
                    "first_seen": rfc3339(op.first_us),
                    "last_seen": rfc3339(op.last_us),
                    "example_ids": op.examples,
                    "documented": documented,
                    "fields_not_in_spec": missing,
                }),
            );
            operation.insert("operationId".into(), json!(operation_id(method, template)));
            item.insert(method.to_ascii_lowercase(), Value::Object(operation));
        }
        if !item.is_empty() {
            paths.insert(path, Value::Object(item));
        }
    }
    let servers: Vec<Value> = hosts
        .iter()
        .map(|h| json!({"url": format!("https://{h}")}))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Discord API as observed by discord-mitm",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Inferred from recorded traffic: schemas merge every observed body.",
        },
        "servers": servers,
        "paths": paths,
    })
}

fn operation_id(method: &str, template: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for c in template.chars() {
        id.push(if c.is_ascii_alphanumeric() { c } else { '_' });
    }
    id
}

fn rfc3339(us: i64) -> String {
    let nanos = i128::from(us) * 1000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The template with repeated parameter names made unique, and its parameters.
fn openapi_path(template: &str) -> (String, Vec<Value>) {
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut params = Vec::new();
    let segments: Vec<String> = template
        .split('/')
        .map(|segment| {
            let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                return segment.to_string();
            };
            let n = seen.entry(name.to_string()).or_default();
            *n += 1;
            let name = if *n > 1 {
                format!("{name}_{n}")
            } else {
                name.to_string()
            };
            params.push(path_parameter(&name));
            format!("{{{name}}}")
        })
        .collect();
    (segments.join("/"), params)
}

fn path_parameter(name: &str) -> Value {
    let schema = if name == "id" || name.ends_with("_id") || name.contains("_id_") {
        json!({"type": "string", "format": "snowflake", "pattern": "^(0|[1-9][0-9]{0,19})$"})
    } else if name.contains("token") {
        json!({"type": "string", "x-secret": true})
    } else {
        json!({"type": "string"})
    };
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn operation(op: &Operation, path_params: &[Value]) -> Map<String, Value> {
    let mut parameters: Vec<Value> = path_params.to_vec();
    for (name, count) in &op.query {
        parameters.push(json!({
            "name": name, "in": "query", "required": false, "schema": {"type": "string"},
            "x-discord-mitm-samples": count,
        }));
    }
    for name in &op.headers {
        if name == "authorization" {
            continue;
        }
        parameters.push(
            json!({"name": name, "in": "header", "required": false, "schema": {"type": "string"}}),
        );
    }
    let mut out = Map::new();
    if !parameters.is_empty() {
        out.insert("parameters".into(), Value::Array(parameters));
    }
    if op.headers.contains("authorization") {
        out.insert("security".into(), json!([{"authorization": []}]));
    }
    if !op.request.is_empty() {
        out.insert(
            "requestBody".into(),
            json!({"content": content(&op.request)}),
        );
    }
    let mut responses = Map::new();
    for (status, by_type) in &op.responses {
        let mut response = Map::new();
        response.insert("description".into(), json!(format!("observed {status}")));
        if !by_type.is_empty() {
            response.insert("content".into(), content(by_type));
        }
        responses.insert(status.to_string(), Value::Object(response));
    }
    if responses.is_empty() {
        responses.insert(
            "default".into(),
            json!({"description": "no response was recorded"}),
        );
    }
    out.insert("responses".into(), Value::Object(responses));
    out
}

fn content(by_type: &BTreeMap<String, Schema>) -> Value {
    let mut out = Map::new();
    for (media, schema) in by_type {
        let body = if schema.type_names().is_empty() {
            json!({})
        } else {
            schema.to_json_schema()
        };
        out.insert(media.clone(), json!({"schema": body}));
    }
    Value::Object(out)
}

/// `true`, `partial` (fields the spec lacks) or `false`, and the fields it lacks.
fn documented(
    spec: Option<&Spec>,
    method: &str,
    template: &str,
    op: &Operation,
) -> (&'static str, Vec<String>) {
    let Some(spec) = spec else {
        return ("unknown", Vec::new());
    };
    let Some(spec_path) = spec.documents(method, template) else {
        return ("false", Vec::new());
    };
    let known = spec.response_fields(spec_path, method);
    let mut missing = BTreeSet::new();
    for (status, by_type) in &op.responses {
        if !(200..300).contains(status) {
            continue;
        }
        for schema in by_type.values() {
            for field in top_level_fields(schema) {
                if !known.contains(&field) {
                    missing.insert(field);
                }
            }
        }
    }
    if missing.is_empty() {
        ("true", Vec::new())
    } else {
        ("partial", missing.into_iter().collect())
    }
}

/// Field names of an object body, or of an array body's objects.
fn top_level_fields(schema: &Schema) -> Vec<String> {
    let object = schema
        .object
        .as_ref()
        .or_else(|| schema.array.as_ref().and_then(|a| a.items.object.as_ref()));
    object
        .map(|o| o.fields.iter().map(|(name, _)| name.clone()).collect())
        .unwrap_or_default()
}
