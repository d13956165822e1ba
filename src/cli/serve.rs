//! `discord-mitm serve` arguments and their mapping onto the backend's options.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::backend::ratelimit::{Limit, RateLimitConfig};
use crate::backend::server::{self, ServeOptions};
use crate::backend::Config;

/// Run the reimplemented Discord backend (REST on `--api`, state in sled under `--data`).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address for the HTTP API (`/api`, `/api/v6` … `/api/v10`) and the gateway.
    #[arg(long, env = "DISCORD_MITM_API", default_value = "127.0.0.1:3000")]
    pub api: SocketAddr,
    /// Directory of the backend's own sled database (never the recordings').
    #[arg(long, env = "DISCORD_MITM_DATA", default_value = "data")]
    pub data: PathBuf,
    /// JSON fixture to seed the world from (validated whole before anything is written).
    #[arg(long, env = "DISCORD_MITM_FIXTURE")]
    pub fixture: Option<PathBuf>,
    /// Delete the data directory first (only if it is a discord-mitm data directory).
    #[arg(long)]
    pub reset: bool,
    /// Per-route rate limit as LIMIT/SECONDS, or `off`.
    #[arg(long, env = "DISCORD_MITM_RATE_LIMIT", default_value = "50/1")]
    pub rate_limit: String,
    /// Global (per token) rate limit as LIMIT/SECONDS, or `off`.
    #[arg(long, env = "DISCORD_MITM_GLOBAL_RATE_LIMIT", default_value = "off")]
    pub global_rate_limit: String,
    /// Largest accepted request body in bytes (413 above).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_body: usize,
    /// Deepest accepted JSON nesting (50035 above).
    #[arg(long, default_value_t = 32)]
    pub max_json_depth: usize,
    /// WebSocket URL advertised by /gateway and /gateway/bot (default: ws://<Host used>).
    #[arg(long, env = "DISCORD_MITM_GATEWAY_URL")]
    pub gateway_url: Option<String>,
    /// Stop when standard input closes (for supervisors and test harnesses).
    #[arg(long, hide = true)]
    pub exit_on_stdin_close: bool,
    /// Print which operations of this OpenAPI spec serve answers natively, then exit.
    #[arg(long, value_name = "SPEC")]
    pub coverage: Option<PathBuf>,
}

fn parse_limit(text: &str) -> anyhow::Result<Option<Limit>> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse::<Limit>()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("invalid rate limit {text:?}: {e}"))
}

/// Runs the command.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(spec_path) = &args.coverage {
        let text = std::fs::read(spec_path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", spec_path.display()))?;
        let spec: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", spec_path.display()))?;
        let coverage = runtime.block_on(crate::backend::coverage::measure(&spec))?;
        print!("{}", crate::backend::coverage::report(&coverage));
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config {
        gateway_url: args.gateway_url,
        rate_limits: RateLimitConfig {
            per_route: parse_limit(&args.rate_limit)?,
            global: parse_limit(&args.global_rate_limit)?,
        },
        max_body_bytes: args.max_body,
        max_json_depth: args.max_json_depth,
        ..Config::default()
    };
    let options = ServeOptions {
        api: args.api,
        data: args.data,
        fixture: args.fixture,
        reset: args.reset,
        config,
        exit_on_stdin_close: args.exit_on_stdin_close,
    };
    runtime.block_on(server::run(options))?;
    Ok(ExitCode::SUCCESS)
}
