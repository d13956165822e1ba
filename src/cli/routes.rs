//! `discord-mitm routes`: arguments and dispatch.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::explore::catalog::{Catalog, Spec};
use crate::explore::openapi::{self, OpenApiOptions};
use crate::explore::report;
use crate::store::filter::Filter;

/// The route catalog of a recording: templated routes, counts, statuses, documented or not.
#[derive(Debug, Clone, Args)]
pub struct RoutesArgs {
    /// Recordings database directory.
    #[arg(long, default_value = "recordings")]
    pub recordings: PathBuf,
    /// Discord's OpenAPI spec, to flag undocumented routes (e.g. ../shared/discord-openapi.json).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Only routes the spec does not document (needs --spec).
    #[arg(long, requires = "spec")]
    pub undocumented: bool,
    /// Write an OpenAPI 3.1 document of every observed route, schemas inferred from all bodies
    /// (`-` = stdout).
    #[arg(long, value_name = "FILE")]
    pub openapi: Option<PathBuf>,
    /// With --openapi: `undocumented` keeps only routes the spec does not fully document.
    #[arg(long, value_name = "WHICH", value_parser = ["undocumented"], requires = "spec")]
    pub only: Option<String>,
    /// With --openapi: only exchanges matching (the `export har --filter` syntax).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
}

/// Runs `routes`.
pub fn run(args: RoutesArgs) -> anyhow::Result<ExitCode> {
    let spec = args.spec.as_deref().map(Spec::load).transpose()?;
    let store = super::recordings::open(&args.recordings)?;
    if let Some(out) = &args.openapi {
        let filter = args.filter.as_deref().map(Filter::parse).transpose()?;
        let options = OpenApiOptions {
            spec: spec.as_ref(),
            only_undocumented: args.only.is_some() || args.undocumented,
            filter: filter.as_ref(),
        };
        let document = openapi::from_store(&store, &options)?;
        write_document(out, &document)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut catalog = Catalog::build(&store, spec.as_ref())?;
    if args.undocumented {
        catalog.undocumented_only();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&catalog)?);
    } else {
        print!("{}", report::catalog_text(&catalog));
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a JSON document to FILE, or stdout for `-`.
pub(crate) fn write_document(out: &Path, document: &serde_json::Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(document)?;
    text.push(b'\n');
    if out == Path::new("-") {
        std::io::stdout().lock().write_all(&text)?;
    } else {
        std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}
