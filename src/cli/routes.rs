//! `discord-mitm routes`: arguments and dispatch.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::paths::Output;
use crate::explore::asyncapi;
use crate::explore::catalog::{Catalog, Spec};
use crate::explore::gateway::{DocumentedEvents, GatewayInferred};
use crate::explore::openapi::{self, OpenApiOptions};
use crate::explore::range::TimeRange;
use crate::explore::report;
use crate::store::filter::Filter;

/// The route catalog of a recording: templated routes, counts, statuses, documented or not.
#[derive(Debug, Clone, Args)]
pub struct RoutesArgs {
    /// Recordings database directory.
    #[arg(long, default_value = "recordings")]
    pub recordings: PathBuf,
    /// Discord's OpenAPI spec (`-` = standard input), to name the spec path of each route and
    /// flag undocumented ones. Without it, routes are marked from the table of documented
    /// routes built in (generated from Discord's OpenAPI).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Only routes the spec (or the built-in table) does not document.
    #[arg(long)]
    pub undocumented: bool,
    /// Write an OpenAPI 3.1 document of every observed route, schemas inferred from all bodies
    /// (`-` = stdout).
    #[arg(long, value_name = "FILE")]
    pub openapi: Option<PathBuf>,
    /// Write an AsyncAPI 3.0 document of the gateway as recorded: every opcode per direction
    /// and every dispatch event with its payload schema inferred from all frames (`-` = stdout).
    #[arg(long, value_name = "FILE")]
    pub asyncapi: Option<PathBuf>,
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
    if let Some(out) = &args.asyncapi {
        let bar = super::progress::bar(store.stats()?.sessions, "gateway sessions");
        let inferred = GatewayInferred::from_store(&store, &TimeRange::default(), |done| {
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        let document = asyncapi::document(&inferred, &DocumentedEvents::builtin());
        write_document(out, &document)?;
        if args.openapi.is_none() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if let Some(out) = &args.openapi {
        let filter = args.filter.as_deref().map(Filter::parse).transpose()?;
        let options = OpenApiOptions {
            spec: spec.as_ref(),
            only_undocumented: args.only.is_some() || args.undocumented,
            filter: filter.as_ref(),
        };
        let bar = super::progress::bar(0, "exchanges");
        let document = openapi::from_store(&store, &options, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        write_document(out, &document)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (spec, spec_name) = match spec {
        Some(spec) => (
            spec,
            args.spec.as_deref().map(crate::store::stdio::input_name),
        ),
        None => (Spec::builtin(), None),
    };
    let mut catalog = Catalog::build(&store, Some(&spec))?;
    if args.undocumented {
        catalog.undocumented_only();
    }
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&catalog)?;
        json.push('\n');
        json
    } else {
        let mut table = report::catalog_text(&catalog);
        let source = spec_name.map_or_else(
            || "the built-in table of Discord's documented routes (--spec FILE for another)".into(),
            |name| format!("the spec {name}"),
        );
        table.push_str(&format!(
            "DOC: yes = documented in {source}; NO = not documented\n"
        ));
        table
    };
    crate::store::stdio::write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a JSON document to FILE, or stdout for `-`.
pub(crate) fn write_document(out: &Path, document: &serde_json::Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(document)?;
    text.push(b'\n');
    Output::from_arg(out).write_all(&text)
}
