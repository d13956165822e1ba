//! `discord-mitm world export`: arguments and dispatch.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Worlds for `serve`, built from recordings.
#[derive(Debug, Clone, Args)]
pub struct WorldArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: WorldAction,
}

/// The `world` actions.
#[derive(Debug, Clone, Subcommand)]
pub enum WorldAction {
    /// Write the world recorded in --recordings as a fixture file (`serve --fixture FILE`
    /// loads it): the recorded accounts with new local tokens, guilds, channels with
    /// overwrites, roles, members, messages, emojis, stickers, threads, DMs, relationships.
    /// What was imported (and left out) is told on stderr.
    Export {
        /// Recordings database directory (only read).
        #[arg(long, default_value = "recordings")]
        recordings: PathBuf,
        /// Fixture file to write (`-` = stdout).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Runs `world`.
pub fn run(args: WorldArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        WorldAction::Export { recordings, out } => {
            crate::store::private::restrict_umask();
            let (built, report) = crate::app::world::build_from_recordings(&recordings)?;
            crate::app::world::write_fixture(&out, &built)?;
            eprint!("{report}");
            if out.as_os_str() != "-" {
                eprintln!(
                    "  wrote {}; start it with `discord-mitm serve --fixture {} --reset`",
                    out.display(),
                    out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
