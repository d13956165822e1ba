//! `discord-mitm recordings list|show|stats`: arguments and dispatch.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::explore::report;
use crate::store::Store;

/// Read what `record` stored.
#[derive(Debug, Clone, Args)]
pub struct RecordingsArgs {
    /// Recordings database directory.
    #[arg(long, global = true, default_value = "recordings")]
    pub recordings: PathBuf,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do with the recordings.
    #[command(subcommand)]
    pub action: RecordingsAction,
}

/// What to show.
#[derive(Debug, Clone, Subcommand)]
pub enum RecordingsAction {
    /// Exchanges and gateway sessions in time order.
    List {
        /// Only the last N.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// One exchange (ID) or gateway session (gw:ID) in full.
    Show {
        /// Exchange id, or gw:ID for a gateway session.
        id: String,
    },
    /// Counts, sizes, hosts and status classes.
    Stats,
}

/// Opens a recordings database for reading, with a clear error when there is none; while a
/// running `record` or `serve` holds it, reads go through that process.
pub fn open(dir: &std::path::Path) -> anyhow::Result<Store> {
    open_check(dir)?;
    Ok(Store::open_for_reading(dir)?)
}

/// Fails with a clear error when `dir` holds no recordings.
pub fn open_check(dir: &std::path::Path) -> anyhow::Result<()> {
    // The integrity mark outlives a lost database file: then opening says what happened.
    let was_used = ["conf", "db", crate::store::watermark::FILE]
        .iter()
        .any(|name| dir.join(name).exists());
    if !was_used {
        anyhow::bail!(
            "no recordings in {} (record some with `discord-mitm record --recordings {}`)",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Runs `recordings`.
pub fn run(args: RecordingsArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.recordings)?;
    match args.action {
        RecordingsAction::List { limit } => print!("{}", report::list(&store, limit, args.json)?),
        RecordingsAction::Stats => print!("{}", report::stats(&store, args.json)?),
        RecordingsAction::Show { id } => {
            if let Some(session_id) = id
                .strip_prefix("gw:")
                .or_else(|| id.strip_prefix("gateway:"))
            {
                let session_id: u64 = session_id
                    .parse()
                    .with_context(|| format!("`{id}` is not gw:NUMBER"))?;
                let session = store.session(session_id)?.with_context(|| {
                    format!(
                        "no gateway session {session_id} in {}",
                        args.recordings.display()
                    )
                })?;
                let frames = store.frames(session_id)?;
                if args.json {
                    println!("{}", report::session_json(&session, &frames));
                } else {
                    print!("{}", report::session_text(&session, &frames));
                }
            } else {
                let exchange_id: u64 = id
                    .parse()
                    .with_context(|| format!("`{id}` is not an exchange id (or gw:ID)"))?;
                let exchange = store.exchange(exchange_id)?.with_context(|| {
                    format!("no exchange {exchange_id} in {}", args.recordings.display())
                })?;
                if args.json {
                    println!("{}", report::exchange_json(&exchange));
                } else {
                    print!("{}", report::exchange_text(&exchange));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
