//! `discord-mitm export har`: arguments and dispatch.
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::paths::Output;
use crate::store::filter::Filter;
use crate::store::har;

/// Export recordings for other tools.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The format to export to.
    #[command(subcommand)]
    pub format: ExportFormat,
}

/// Export formats.
#[derive(Debug, Clone, Subcommand)]
pub enum ExportFormat {
    /// HAR 1.2 (Chrome DevTools, mitmproxy); gateway frames as `_webSocketMessages`.
    Har {
        /// Recordings database directory.
        #[arg(long, default_value = "recordings")]
        recordings: PathBuf,
        /// The HAR file to write (`-` = standard output).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only entries matching, e.g. `host~discord.com status>=400 kind=rest` (fields: method,
        /// host, path, url, route, status, source, kind, id; ops = != ~ !~ > >= < <=).
        #[arg(long, value_name = "EXPR")]
        filter: Option<String>,
    },
}

/// Runs `export`.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let ExportFormat::Har {
        recordings,
        out,
        filter,
    } = args.format;
    let filter = Filter::parse(filter.as_deref().unwrap_or(""))?;
    let store = super::recordings::open(&recordings)?;
    let out = Output::from_arg(&out);
    let mut writer = out.writer()?;
    let bar = super::progress::bar(0, "entries");
    let summary = har::export(&store, &filter, &mut writer, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    writer
        .flush()
        .with_context(|| format!("cannot write {}", out.name()))?;
    eprintln!(
        "wrote {} ({} exchanges, {} gateway sessions)",
        out.name(),
        summary.exchanges,
        summary.sessions
    );
    Ok(ExitCode::SUCCESS)
}
