//! `discord-mitm routes`: arguments and dispatch.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::explore::catalog::{Catalog, Spec};
use crate::explore::report;

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
}

/// Runs `routes`.
pub fn run(args: RoutesArgs) -> anyhow::Result<ExitCode> {
    let spec = args.spec.as_deref().map(Spec::load).transpose()?;
    let store = super::recordings::open(&args.recordings)?;
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
