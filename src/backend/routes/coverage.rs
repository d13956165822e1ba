//! Coverage of Discord's OpenAPI operations, derived from the live router: every operation is
//! sent (unauthenticated, so nothing changes) and counts as native unless the router's
//! no-route or wrong-method fallback answered.
use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::Value;
use tower::ServiceExt;

use crate::backend::error::Unrouted;
use crate::backend::state::{AppState, Config};
use crate::backend::store::{Store, StoreError};

/// One operation of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operation {
    pub method: String,
    pub path: String,
}

/// Which operations `serve` answers natively.
#[derive(Debug, Clone, Default)]
pub(crate) struct Coverage {
    pub native: Vec<Operation>,
    pub missing: Vec<Operation>,
}

impl Coverage {
    /// Total operations in the spec.
    pub(crate) fn total(&self) -> usize {
        self.native.len() + self.missing.len()
    }
}

/// Every operation (method + path template) in an OpenAPI document.
pub(crate) fn operations(spec: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "put", "post", "delete", "patch"] {
                if item.get(method).is_some() {
                    out.push(Operation {
                        method: method.to_uppercase(),
                        path: path.clone(),
                    });
                }
            }
        }
    }
    out
}

/// A concrete path for a template: ids become a snowflake, other parameters a word.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                if segment.ends_with("_id}") || segment == "{user_id_1}" || segment == "{user_id_2}"
                {
                    "1".to_string()
                } else {
                    "probe".to_string()
                }
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Probes the router with every operation of `spec`.
pub(crate) async fn measure(spec: &Value) -> Result<Coverage, StoreError> {
    let state = AppState::new(Store::temporary()?, Config::default());
    let router = super::router(state);
    let mut coverage = Coverage::default();
    for operation in operations(spec) {
        let method = Method::from_bytes(operation.method.as_bytes()).unwrap_or(Method::GET);
        let request = Request::builder()
            .method(method)
            .uri(format!("/api/v10{}", concrete(&operation.path)))
            .header("content-type", "application/json")
            .body(Body::from("{}"));
        let Ok(request) = request else {
            coverage.missing.push(operation);
            continue;
        };
        let routed = match router.clone().oneshot(request).await {
            Ok(response) => {
                response.extensions().get::<Unrouted>().is_none()
                    && response.status() != axum::http::StatusCode::METHOD_NOT_ALLOWED
            }
            Err(never) => match never {},
        };
        if routed {
            coverage.native.push(operation);
        } else {
            coverage.missing.push(operation);
        }
    }
    Ok(coverage)
}

/// The human-readable report printed by `serve --coverage`.
pub(crate) fn report(coverage: &Coverage) -> String {
    let mut out = format!(
        "serve answers {} of {} operations in the OpenAPI spec natively ({:.0}%)\n",
        coverage.native.len(),
        coverage.total(),
        100.0 * coverage.native.len() as f64 / coverage.total().max(1) as f64
    );
    out.push_str(&format!("\nnative ({}):\n", coverage.native.len()));
    for op in &coverage.native {
        out.push_str(&format!("  {:6} {}\n", op.method, op.path));
    }
    out.push_str(&format!("\nmissing ({}):\n", coverage.missing.len()));
    for op in &coverage.missing {
        out.push_str(&format!("  {:6} {}\n", op.method, op.path));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn implemented_routes_count_and_unknown_ones_do_not() {
        let spec = json!({"paths": {
            "/users/@me": {"get": {}, "patch": {}, "put": {}},
            "/channels/{channel_id}/messages": {"post": {}},
            "/partner-sdk/token/bot": {"post": {}},
            "/partner-sdk/token": {"post": {}},
        }});
        let coverage = measure(&spec).await.unwrap();
        let native: Vec<String> = coverage
            .native
            .iter()
            .map(|o| format!("{} {}", o.method, o.path))
            .collect();
        assert_eq!(
            native,
            vec![
                "GET /users/@me",
                "PATCH /users/@me",
                "POST /channels/{channel_id}/messages"
            ]
        );
        assert_eq!(coverage.missing.len(), 3);
        assert!(report(&coverage).starts_with("serve answers 3 of 6"));
    }
}
