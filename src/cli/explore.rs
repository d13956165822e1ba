//! `discord-mitm explore` and the `--ui` flags of `record` and `serve`: arguments and dispatch.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::app::explore;

/// The live web explorer of a recordings directory (or of the `record`/`serve` holding it).
#[derive(Debug, Clone, Args)]
pub struct ExploreArgs {
    /// Recordings database directory.
    #[arg(long, default_value = "recordings")]
    pub recordings: PathBuf,
    /// Where the explorer listens: IP:PORT, [IPv6]:PORT or localhost:PORT (port 0: any free).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8765", value_parser = super::parse_socket_addr)]
    pub listen: SocketAddr,
    /// Another recordings directory the diff view can compare against (side `compare`).
    #[arg(long, value_name = "DIR")]
    pub compare: Option<PathBuf>,
    /// Listen on a non-loopback address (the explorer shows recorded traffic).
    #[arg(long)]
    pub allow_remote: bool,
    /// Listener limits.
    #[command(flatten)]
    pub limits: super::record::LimitArgs,
}

/// Runs `explore`.
pub fn run(args: ExploreArgs) -> anyhow::Result<ExitCode> {
    explore::check_addr(args.listen, args.allow_remote)?;
    super::recordings::open_check(&args.recordings)?;
    if let Some(other) = &args.compare {
        super::recordings::open_check(other)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = args.recordings.display().to_string();
    runtime.block_on(explore::run(
        args.recordings.clone(),
        args.compare.clone(),
        args.listen,
        args.limits.limits(),
        move |url, remote| {
            let through = if remote {
                " (through the discord-mitm process recording into it)"
            } else {
                ""
            };
            let banner = format!(
                "discord-mitm explore: {dir}{through}\ndiscord-mitm explore: open {url}\nPress Ctrl-C to stop.\n"
            );
            let _ = crate::store::stdio::write_stdout(banner.as_bytes());
        },
        crate::app::shutdown_signal(false),
    ))?;
    Ok(ExitCode::SUCCESS)
}
