//! Helpers for `serve_routes_*` tests: validate answers against the response schemas of
//! Discord's OpenAPI spec (`../shared/discord-openapi.json`), and read audit logs. Test crates
//! that use it also include `serve_support`.
#![allow(dead_code)]

use serde_json::{json, Value};

use crate::serve_support::{expect, Reply};

/// The OpenAPI spec, parsed.
pub fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/discord-openapi.json"
    );
    let text =
        std::fs::read_to_string(path).expect("the OpenAPI spec at ../shared/discord-openapi.json");
    serde_json::from_str(&text).expect("spec is JSON")
}

/// Problems with `body` as the answer `status` to `method template` (empty: it conforms).
pub fn violations(
    spec: &Value,
    method: &str,
    template: &str,
    status: u16,
    body: &Value,
) -> Vec<String> {
    let schema = &spec["paths"][template][method.to_lowercase()]["responses"][status.to_string()]
        ["content"]["application/json"]["schema"];
    if schema.is_null() {
        return vec![format!(
            "the spec has no JSON {status} answer for {method} {template}"
        )];
    }
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": spec["components"],
        "$defs": {"answer": schema},
        "$ref": "#/$defs/answer",
    });
    let validator = jsonschema::options()
        .build(&root)
        .expect("the spec's schema compiles");
    validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Asserts `body` conforms to the documented answer.
#[track_caller]
pub fn conforms(spec: &Value, method: &str, template: &str, status: u16, body: &Value) {
    let problems = violations(spec, method, template, status, body);
    assert!(
        problems.is_empty(),
        "{method} {template} answer does not match the spec: {problems:?}\n{body}"
    );
}

/// Asserts `reply`'s status and that its body is the spec's `status` answer to
/// `method template`; returns the body.
#[track_caller]
pub fn expect_documented(
    spec: &Value,
    reply: &Reply,
    status: u16,
    method: &str,
    template: &str,
) -> Value {
    let body = expect(reply, status).clone();
    conforms(spec, method, template, status, &body);
    body
}

/// The `action_type` of every entry of an audit log answer, in order.
pub fn audit_actions(audit: &Value) -> Vec<i64> {
    audit["audit_log_entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action_type"].as_i64())
        .collect()
}
