//! `discord-mitm gateway-proxy`: arguments and dispatch.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::record::UpstreamArgs;
use crate::gwproxy::config::Config;

/// Hold a bot's gateway shards open so the bot restarts without re-identifying.
#[derive(Debug, Clone, Args)]
pub struct GatewayProxyArgs {
    /// The gateway-proxy JSON config (the seed project's fields plus upstream_api/upstream_gateway).
    #[arg(long, value_name = "FILE", default_value = "config.json")]
    pub config: PathBuf,
    /// Where shard sessions and caches are saved on shutdown and resumed from on start.
    #[arg(long, value_name = "FILE", default_value = "gateway-proxy-state.json")]
    pub state: PathBuf,
    /// Neither read nor write the state file (every start identifies afresh).
    #[arg(long)]
    pub no_state: bool,
    /// How to reach Discord.
    #[command(flatten)]
    pub upstream: UpstreamArgs,
}

/// Runs the gateway proxy until Ctrl-C/SIGTERM.
pub fn run(args: GatewayProxyArgs) -> anyhow::Result<ExitCode> {
    let loaded = Config::load(&args.config)?;
    super::apply_config_log_level(loaded.config.log_level.as_str());
    for field in &loaded.ignored_fields {
        tracing::warn!(field = %field, "config field not used by this proxy; ignored");
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(crate::gwproxy::run(
        loaded.config,
        args.upstream.config(),
        (!args.no_state).then_some(args.state),
        crate::app::shutdown_signal(false),
    ))?;
    Ok(ExitCode::SUCCESS)
}
