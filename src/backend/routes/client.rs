//! Routes the official desktop client calls while starting: the update checks (`/updates`,
//! the distributed-app manifest), the native module list and downloads (`/modules`: we publish
//! no modules, so the list is empty and a download goes down `serve --listen`'s chain) and telemetry (`/science`,
//! `/track`).
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::backend::error::ApiError;

/// The version of the desktop host the update check offers.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    /// Dotted version, e.g. `0.0.309`; clients at or above it are told they are current.
    pub version: String,
    /// RFC 3339 publication time reported with it.
    pub pub_date: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            version: "0.0.309".into(),
            pub_date: "2024-01-01T00:00:00".into(),
        }
    }
}

/// `/api/updates/{channel}`, `/api/science` and their versioned forms; anything else is
/// answered as unrouted, so the caller can try the next router.
pub(crate) fn router(config: ClientConfig) -> Router {
    routes(config).fallback(crate::backend::error::no_route_handler)
}

/// The updater routes alone (no fallback), to merge beside the backend's router on `--api`.
pub(crate) fn routes(config: ClientConfig) -> Router {
    let config = Arc::new(config);
    let mut router = Router::new()
        .route("/api/updates/{channel}", axum::routing::get(updates))
        .route(
            "/api/updates/distributions/app/manifests/latest",
            axum::routing::get(manifest),
        )
        .route("/api/science", post(science))
        .route("/api/track", post(science));
    for prefix in
        std::iter::once("/api".to_string()).chain((6..=10u8).map(|v| format!("/api/v{v}")))
    {
        router = router
            .route(
                &format!("{prefix}/modules/{{channel}}/versions.json"),
                axum::routing::get(module_versions),
            )
            .route(
                &format!("{prefix}/modules/{{channel}}/{{module}}/{{version}}"),
                axum::routing::get(module_download),
            );
    }
    for version in 6..=10u8 {
        router = router
            .route(
                &format!("/api/v{version}/updates/{{channel}}"),
                axum::routing::get(updates),
            )
            .route(&format!("/api/v{version}/science"), post(science))
            .route(&format!("/api/v{version}/track"), post(science));
    }
    router.with_state(config)
}

#[derive(Debug, Deserialize)]
struct UpdateQuery {
    version: Option<String>,
    platform: Option<String>,
}

/// Dotted numeric version for ordering; anything unparsable counts as oldest.
fn version_key(text: &str) -> Vec<u64> {
    text.split('.')
        .map(|part| part.trim().parse::<u64>().unwrap_or(0))
        .collect()
}

async fn updates(
    State(config): State<Arc<ClientConfig>>,
    Path(channel): Path<String>,
    Query(query): Query<UpdateQuery>,
) -> Response {
    if !matches!(
        channel.as_str(),
        "stable" | "ptb" | "canary" | "development"
    ) {
        return ApiError::NoRoute.into_response();
    }
    // userdoccers: the platform defaults to `osx`.
    let platform = query.platform.unwrap_or_else(|| "osx".into());
    if !matches!(platform.as_str(), "osx" | "win" | "linux") {
        return ApiError::NoRoute.into_response();
    }
    let current = query
        .version
        .as_deref()
        .is_some_and(|v| version_key(v) >= version_key(&config.version));
    if current {
        return StatusCode::NO_CONTENT.into_response();
    }
    let body = if platform == "osx" {
        json!({
            "name": config.version,
            "pub_date": config.pub_date,
            "url": format!("https://dl.discordapp.net/apps/osx/{}/Discord.zip", config.version),
            "notes": "",
        })
    } else {
        json!({"name": config.version, "pub_date": config.pub_date})
    };
    Json(body).into_response()
}

#[derive(Debug, Deserialize)]
struct ManifestQuery {
    channel: Option<String>,
    platform: Option<String>,
}

/// The distributed-app manifest: the configured host version, no deltas and no native
/// modules to fetch (a client that has them keeps them).
async fn manifest(
    State(config): State<Arc<ClientConfig>>,
    Query(query): Query<ManifestQuery>,
) -> Response {
    let channel = query.channel.unwrap_or_else(|| "stable".into());
    let platform = query.platform.unwrap_or_else(|| "osx".into());
    if !matches!(
        channel.as_str(),
        "stable" | "ptb" | "canary" | "development"
    ) || !matches!(platform.as_str(), "osx" | "win" | "linux")
    {
        return ApiError::NoRoute.into_response();
    }
    let host_version: Vec<u64> = version_key(&config.version);
    Json(json!({
        "full": {
            "host_version": host_version,
            "package_sha256": "",
            "url": format!("https://dl.discordapp.net/distro/app/{channel}/{platform}/x64/{}/full.distro", config.version),
        },
        "deltas": [],
        "modules": {},
        "required_modules": [],
        "metadata_version": null,
        "required_update": false,
    }))
    .into_response()
}

/// A desktop release channel's name.
fn is_release_channel(channel: &str) -> bool {
    matches!(channel, "stable" | "ptb" | "canary" | "development")
}

#[derive(Debug, Deserialize)]
struct ModuleQuery {
    platform: Option<String>,
    host_version: Option<String>,
}

impl ModuleQuery {
    /// Whether the platform (default `osx`, as userdoccers says) is one Discord ships.
    fn platform_ok(&self) -> bool {
        matches!(
            self.platform.as_deref().unwrap_or("osx"),
            "osx" | "win" | "linux"
        )
    }
}

/// `GET /modules/{channel}/versions.json`: the native modules for the host version; we publish
/// none, so the map is empty, which Discord answers for a host version it does not know too.
async fn module_versions(
    Path(channel): Path<String>,
    Query(query): Query<ModuleQuery>,
) -> Response {
    // `host_version` defaults to `0`; every host version gets the same (empty) answer.
    let _host_version = query.host_version.as_deref().unwrap_or("0");
    if !is_release_channel(&channel) || !query.platform_ok() {
        return ApiError::NoRoute.into_response();
    }
    Json(json!({})).into_response()
}

/// `GET /modules/{channel}/{module}/{version}`: Discord redirects to the module's ZIP when it
/// has it; no module is published here, so a download is not ours: through `serve --listen` it
/// goes down the chain (a recorded or real module), on `--api` it is a 404.
async fn module_download(
    Path((_channel, _module, _version)): Path<(String, String, String)>,
    Query(_query): Query<ModuleQuery>,
) -> Response {
    crate::backend::error::unrouted()
}

/// Telemetry is accepted and dropped.
async fn science() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        assert!(version_key("0.0.310") > version_key("0.0.309"));
        assert!(version_key("0.1.0") > version_key("0.0.999"));
        assert!(version_key("garbage") < version_key("0.0.1"));
    }
}
