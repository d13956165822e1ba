//! `routes --openapi`: an OpenAPI 3.1 document of every recorded REST route, with request and
//! response schemas inferred by merging every observed body ([`super::schema`]).
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::catalog::Spec;
use super::range::{rfc3339, TimeRange};
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
    multipart: Option<MultipartStats>,
    responses: BTreeMap<u16, BTreeMap<String, Schema>>,
    hosts: BTreeSet<String>,
}

/// Distinct part names kept per operation's multipart bodies.
const MAX_PARTS: usize = 64;

/// What was seen of one operation's `multipart/form-data` request bodies.
#[derive(Debug, Default)]
pub struct MultipartStats {
    /// Bodies seen.
    pub bodies: u64,
    /// Parts by name template (`files[0]`, `files[1]` → `files[n]`).
    pub parts: BTreeMap<String, PartStats>,
}

/// What was seen of one multipart part name.
#[derive(Debug, Default)]
pub struct PartStats {
    /// Bodies holding this part at least once.
    pub bodies: u64,
    /// Times it was a file upload (had a file name).
    pub files: u64,
    /// Part content types seen.
    pub content_types: BTreeSet<String>,
    /// JSON parts (`payload_json`) and text fields, merged.
    pub value: Schema,
}

impl MultipartStats {
    /// Adds one body's parts.
    pub fn observe(&mut self, parts: &[crate::store::multipart::Part<'_>]) {
        self.bodies += 1;
        let mut in_this_body = BTreeSet::new();
        for part in parts {
            let name = crate::store::multipart::name_template(&part.name);
            if !self.parts.contains_key(name.as_ref()) && self.parts.len() >= MAX_PARTS {
                continue;
            }
            let stats = self.parts.entry(name.to_string()).or_default();
            if in_this_body.insert(name.to_string()) {
                stats.bodies += 1;
            }
            if !part.content_type.is_empty() && stats.content_types.len() < MAX_PARTS {
                stats.content_types.insert(part.content_type.clone());
            }
            if part.filename.is_some() {
                stats.files += 1;
            } else if part.name == "payload_json" || part.content_type.contains("json") {
                let mut sample = Schema::default();
                if sample.observe_json(part.data).is_ok() {
                    stats.value.merge(&sample);
                }
            } else {
                let text = String::from_utf8_lossy(part.data);
                stats.value.observe_value(&Value::String(text.into_owned()));
            }
        }
    }

    /// The OpenAPI media type object: an object schema with one property per part (indexed
    /// names as a pattern), and each fixed part's content type.
    pub fn media_type(&self) -> Value {
        let mut properties = Map::new();
        let mut patterns = Map::new();
        let mut required = Vec::new();
        let mut encoding = Map::new();
        for (name, part) in &self.parts {
            let schema = part.schema();
            if let Some(prefix) = name.strip_suffix("[n]") {
                let pattern = format!("^{}\\[[0-9]+\\]$", regex::escape(prefix));
                patterns.insert(pattern, schema);
                continue;
            }
            if part.bodies >= self.bodies {
                required.push(json!(name));
            }
            if let Some(media) = part.encoding() {
                encoding.insert(name.clone(), json!({"contentType": media}));
            }
            properties.insert(name.clone(), schema);
        }
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        if !properties.is_empty() {
            schema.insert("properties".into(), Value::Object(properties));
        }
        if !patterns.is_empty() {
            schema.insert("patternProperties".into(), Value::Object(patterns));
        }
        if !required.is_empty() {
            schema.insert("required".into(), Value::Array(required));
        }
        let mut media = Map::new();
        media.insert("schema".into(), Value::Object(schema));
        if !encoding.is_empty() {
            media.insert("encoding".into(), Value::Object(encoding));
        }
        media.insert(
            "x-discord-mitm".into(),
            json!({"samples": self.bodies, "part_names": self.parts.keys().collect::<Vec<_>>()}),
        );
        Value::Object(media)
    }
}

impl PartStats {
    /// A file part is binary; a JSON or text part has its merged schema.
    fn schema(&self) -> Value {
        if self.files > 0 && self.value.seen == 0 {
            let mut schema = json!({"type": "string", "format": "binary"});
            if let [only] = self.content_types.iter().collect::<Vec<_>>()[..] {
                schema["contentMediaType"] = json!(only);
            }
            return schema;
        }
        let mut schema = self.value.to_json_schema();
        if self.files > 0 {
            schema = json!({"anyOf": [schema, {"type": "string", "format": "binary"}]});
        }
        schema
    }

    /// The content type to declare, when the part always had one.
    fn encoding(&self) -> Option<String> {
        (!self.content_types.is_empty()).then(|| {
            self.content_types
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

impl Operation {
    /// Every body schema seen, labelled `request application/json`, `request multipart
    /// payload_json`, `response 200 application/json`.
    pub fn bodies(&self) -> Vec<(String, &Schema)> {
        let mut out: Vec<(String, &Schema)> = self
            .request
            .iter()
            .map(|(media, schema)| (format!("request {media}"), schema))
            .collect();
        if let Some(multipart) = &self.multipart {
            for (name, part) in &multipart.parts {
                if part.value.seen > 0 {
                    out.push((format!("request multipart {name}"), &part.value));
                }
            }
        }
        for (status, by_type) in &self.responses {
            for (media, schema) in by_type {
                out.push((format!("response {status} {media}"), schema));
            }
        }
        out
    }
}

/// Every operation by (template, method).
#[derive(Debug, Default)]
pub struct Inferred {
    /// Operations by route template, then method.
    pub operations: BTreeMap<String, BTreeMap<String, Operation>>,
    templates: std::collections::HashMap<String, String>,
}

impl Inferred {
    /// Reads the exchanges of `store` that match `filter` and started in `range`; `progress`
    /// hears (exchanges read, exchanges in the store) every 256 exchanges and at the end.
    pub fn from_store(
        store: &Store,
        filter: Option<&Filter>,
        range: &TimeRange,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Inferred, StoreError> {
        let total = store.exchange_count() as u64;
        let mut inferred = Inferred::default();
        let mut read = 0u64;
        for exchange in store.exchanges() {
            let exchange = exchange?;
            read += 1;
            if read % 256 == 0 {
                progress(read, total.max(read));
            }
            if range.contains(exchange.started_at_us)
                && filter.is_none_or(|f| f.matches_exchange(&exchange))
            {
                inferred.observe(&exchange);
            }
        }
        progress(read, total.max(read));
        Ok(inferred)
    }

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
        if !exchange.request_body.data.is_empty() && !observe_multipart(op, exchange) {
            let req_type = content_type(&exchange.request_headers);
            observe_body(&mut op.request, &req_type, &exchange.request_body.data);
        }
        if let Some(response) = &exchange.response {
            let res_type = content_type(&response.headers);
            let by_type = op.responses.entry(response.status).or_default();
            observe_body(by_type, &res_type, &response.body.data);
        }
    }
}

/// Reads a `multipart/form-data` request body into the operation's part summary; false when
/// the request is not one (or holds no parts).
fn observe_multipart(op: &mut Operation, exchange: &Exchange) -> bool {
    let Some(header) = exchange
        .request_headers
        .iter()
        .find(|h| h.name == "content-type")
    else {
        return false;
    };
    let value = header.value_str();
    if !crate::store::multipart::is_form_data(&value) {
        return false;
    }
    let Some(parts) = crate::store::multipart::boundary(&value)
        .and_then(|b| crate::store::multipart::parse(b, &exchange.request_body.data))
    else {
        return false;
    };
    op.multipart
        .get_or_insert_with(Default::default)
        .observe(&parts);
    true
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

/// Reads every exchange of `store` and builds the OpenAPI document; `progress` hears
/// (exchanges read, exchanges in the store).
pub(crate) fn from_store(
    store: &Store,
    options: &OpenApiOptions<'_>,
    progress: impl FnMut(u64, u64),
) -> Result<Value, StoreError> {
    let inferred = Inferred::from_store(store, options.filter, &TimeRange::default(), progress)?;
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
    if !op.request.is_empty() || op.multipart.is_some() {
        let mut body = content(&op.request);
        if let (Some(multipart), Value::Object(map)) = (&op.multipart, &mut body) {
            map.insert("multipart/form-data".into(), multipart.media_type());
        }
        out.insert("requestBody".into(), json!({ "content": body }));
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
