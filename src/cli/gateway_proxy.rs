//! `discord-mitm gateway-proxy`: arguments and dispatch.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::record::{LimitArgs, UpstreamArgs};
use crate::gwproxy::config::Config;

/// Hold a bot's gateway shards open so the bot restarts without re-identifying.
#[derive(Debug, Clone, Args)]
pub struct GatewayProxyArgs {
    /// The gateway-proxy JSON config (the seed project's fields plus upstream_api/upstream_gateway;
    /// `-` = standard input).
    #[arg(long, value_name = "FILE", default_value = "config.json")]
    pub config: PathBuf,
    /// Where shard sessions and caches are saved on shutdown and resumed from on start
    /// [default: gateway-proxy-state/state.json beside the config file, in a 0700 directory].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Neither read nor write the state file (every start identifies afresh).
    #[arg(long)]
    pub no_state: bool,
    /// The shards this process runs, `FIRST-LAST` inclusive (overrides the config's range).
    #[arg(long, value_name = "FIRST-LAST", value_parser = parse_shard_range)]
    pub shards: Option<[u32; 2]>,
    /// The bot's total shard count (overrides the config; default: GET /gateway/bot's).
    #[arg(long, value_name = "N")]
    pub shard_count: Option<u32>,
    /// NATS server URL: publish dispatches to JetStream and coordinate with other processes.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// How to reach Discord.
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// Limits of the client listener.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Runs the gateway proxy until Ctrl-C/SIGTERM.
pub fn run(args: GatewayProxyArgs) -> anyhow::Result<ExitCode> {
    let mut loaded = Config::load(&args.config)?;
    loaded.config =
        loaded
            .config
            .with_overrides(args.shards, args.shard_count, args.nats_url.clone())?;
    super::apply_config_log_level(loaded.config.log_level.as_str());
    for field in &loaded.ignored_fields {
        tracing::warn!(field = %field, "config field not used by this proxy; ignored");
    }
    // The state file holds session ids that resume a bot's sessions: owner-only.
    crate::store::private::restrict_umask();
    let state = if args.no_state {
        None
    } else {
        Some(state_path(&args.config, args.state)?)
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(crate::gwproxy::run(
        loaded.config,
        args.upstream.config(),
        state,
        args.limits.limits(),
        crate::app::shutdown_signal(false),
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Parses `FIRST-LAST` (or a single shard id) into an inclusive range.
fn parse_shard_range(text: &str) -> Result<[u32; 2], String> {
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let number = |part: &str| {
        part.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{text}` is not FIRST-LAST (e.g. 0-3)"))
    };
    let range = [number(first)?, number(last)?];
    if range[0] > range[1] {
        return Err(format!("`{text}`: FIRST must not exceed LAST"));
    }
    Ok(range)
}

/// The state file: `--state`, or `gateway-proxy-state/state.json` beside the config; its
/// directory is made 0700 when missing (and warned about when the default one is wider).
fn state_path(config: &Path, chosen: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let (path, is_default) = match chosen {
        Some(path) => (path, false),
        None => {
            let beside = config.parent().unwrap_or(Path::new(""));
            (beside.join("gateway-proxy-state").join("state.json"), true)
        }
    };
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if is_default || !dir.exists() {
            crate::store::private::prepare_dir(dir)?;
        }
    }
    Ok(path)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn default_state_lives_beside_the_config_in_an_owner_only_directory() {
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("bot/config.json");
        let path = state_path(&config, None).unwrap();
        assert_eq!(path, root.path().join("bot/gateway-proxy-state/state.json"));
        let dir = path.parent().unwrap();
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A chosen file is used as it is; a missing directory for it is made owner-only.
        let chosen = root.path().join("elsewhere/s.json");
        assert_eq!(state_path(&config, Some(chosen.clone())).unwrap(), chosen);
        let mode = std::fs::metadata(root.path().join("elsewhere"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }
}
