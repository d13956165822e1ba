//! Command-line interface: clap definitions, option merging and dispatch. No logic lives here.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub mod ca;
pub mod export;
pub mod gateway_proxy;
pub mod hosts;
pub mod record;
pub mod recordings;
pub mod routes;
pub mod serve;
pub mod world;

/// Record, replay and reimplement Discord: a MITM proxy, a local Discord backend and a gateway proxy.
#[derive(Debug, Parser)]
#[command(name = "discord-mitm", version, about, propagate_version = true)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts; each can also be set with a `DISCORD_MITM_*` variable.
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// Directory holding the root CA (certificate, key, DER copy).
    #[arg(long, global = true, env = "DISCORD_MITM_CA_DIR", default_value = "ca")]
    pub ca_dir: PathBuf,
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, env = "DISCORD_MITM_VERBOSE")]
    pub verbose: u8,
    /// Less log output (-q errors only, -qq nothing).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, env = "DISCORD_MITM_QUIET")]
    pub quiet: u8,
    /// Colour in log output: `auto` only when stderr is a terminal (and NO_COLOR is unset).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "DISCORD_MITM_COLOR",
        default_value = "auto"
    )]
    pub color: ColorChoice,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// When stderr is a terminal and NO_COLOR is unset.
    Auto,
    /// Always (e.g. through `less -R`).
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether log lines carry ANSI colour codes.
    fn ansi(self) -> bool {
        use std::io::IsTerminal as _;
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// The commands. Each one's arguments live beside the module that does the work.
#[derive(Debug, Subcommand)]
// Parsed once per run; boxing the big argument structs would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Root CA: create, show, install in trust stores, verify.
    Ca(ca::CaArgs),
    /// Run the reimplemented Discord backend (REST API v6–v10 on sled).
    #[command(after_long_help = serve::IDENTITY_HELP)]
    Serve(serve::ServeArgs),
    /// MITM proxy that records Discord REST and gateway traffic.
    Record(record::RecordArgs),
    /// List, show and count what was recorded.
    Recordings(recordings::RecordingsArgs),
    /// Export recordings (HAR).
    Export(export::ExportArgs),
    /// The route catalog: templated routes, counts, documented or not; gateway opcodes.
    Routes(routes::RoutesArgs),
    /// Print, apply or remove the /etc/hosts lines for the transparent listener.
    Hosts(hosts::HostsArgs),
    /// Worlds for `serve`: `world export` builds a fixture from recordings.
    World(world::WorldArgs),
    /// Hold a bot's gateway shards open upstream so the bot restarts without re-identifying.
    GatewayProxy(gateway_proxy::GatewayProxyArgs),
}

/// Entry point used by the binary: parse, set up logging, run, map errors to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.global);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: a cause whose text its parent already includes
/// (`cannot open X: E` caused by `E`) is not repeated.
fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Ca(args) => ca::run(&cli.global.ca_dir, args),
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Record(args) => record::run(&cli.global, args),
        Command::Recordings(args) => recordings::run(args),
        Command::Export(args) => export::run(args),
        Command::Routes(args) => routes::run(args),
        Command::Hosts(args) => hosts::run(args),
        Command::World(args) => world::run(args),
        Command::GatewayProxy(args) => gateway_proxy::run(args),
    }
}

/// Replaces the log filter when the user chose no level (no RUST_LOG, no -v/-q).
type LogLevelSetter = Box<dyn Fn(&str) + Send + Sync>;
static DEFAULT_LOG_LEVEL: std::sync::OnceLock<LogLevelSetter> = std::sync::OnceLock::new();

/// Sets our log level from a config file (gateway-proxy's `log_level`) unless RUST_LOG or
/// -v/-q chose one, which win.
pub fn apply_config_log_level(level: &str) {
    if let Some(set) = DEFAULT_LOG_LEVEL.get() {
        set(level);
    }
}

fn init_tracing(global: &GlobalOptions) {
    use tracing_subscriber::EnvFilter;
    let level = match (global.verbose as i16) - (global.quiet as i16) {
        i16::MIN..=-2 => "off",
        -1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let default_filter = |level: &str| {
        EnvFilter::new(format!(
            "discord_mitm={level},{}",
            if level == "trace" { "debug" } else { "warn" }
        ))
    };
    let from_env = EnvFilter::try_from_default_env().ok();
    let user_chose = from_env.is_some() || global.verbose > 0 || global.quiet > 0;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(from_env.unwrap_or_else(|| default_filter(level)))
        .with_writer(std::io::stderr)
        .with_ansi(global.color.ansi())
        .with_filter_reloading();
    let handle = builder.reload_handle();
    if builder.try_init().is_ok() && !user_chose {
        let _ = DEFAULT_LOG_LEVEL.set(Box::new(move |level| {
            let _ = handle.reload(default_filter(level));
        }));
    }
}
