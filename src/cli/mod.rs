//! Command-line interface: clap definitions, option merging and dispatch. No logic lives here.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub mod ca;
pub mod docs;
pub mod explore;
pub mod export;
pub mod gateway_proxy;
pub mod hosts;
mod logging;
pub mod paths;
mod progress;
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

/// Options every command accepts (they all log); each can also be set with a `DISCORD_MITM_*`
/// variable. Options only some commands use live on those commands.
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// More log output (-v info: one line per request; -vv debug, -vvv trace). RUST_LOG overrides.
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
    /// Log line format: `text` for people, `json` (one object per line) for machines.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "DISCORD_MITM_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// `--ca-dir`, on the commands that use the root CA (`ca`, `record`, `serve`).
#[derive(Debug, Clone, Default, Args)]
pub struct CaDirArg {
    /// Directory holding the root CA (certificate, key, DER copy) [default: ca].
    #[arg(long, global = true, value_name = "DIR", env = "DISCORD_MITM_CA_DIR")]
    pub ca_dir: Option<PathBuf>,
}

impl CaDirArg {
    /// The CA directory: the one given, else `ca`.
    pub fn path(&self) -> PathBuf {
        self.ca_dir.clone().unwrap_or_else(|| PathBuf::from("ca"))
    }

    /// ` --ca-dir DIR` when the user chose a directory, for the commands hints suggest.
    pub fn flag(&self) -> String {
        match &self.ca_dir {
            Some(dir) => format!(" --ca-dir {}", shell_word(&dir.to_string_lossy())),
            None => String::new(),
        }
    }
}

/// A listen address: `IP:PORT`, `[IPv6]:PORT`, or `NAME:PORT` (`localhost` is 127.0.0.1; another
/// name is looked up and its first address used).
pub(crate) fn parse_socket_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs as _};
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "`{text}` is not HOST:PORT (e.g. 127.0.0.1:3000, localhost:3000, [::1]:3000)"
        ));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` in `{text}` is not a port number (0-65535)"))?;
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if host.is_empty() || host.starts_with('[') {
        return Err(format!(
            "`{text}` is not HOST:PORT (e.g. 127.0.0.1:3000, localhost:3000, [::1]:3000)"
        ));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            format!("cannot resolve `{host}` (use an IP address, e.g. 127.0.0.1:{port})")
        })
}

/// A word as a POSIX shell reads it back: quoted only when it has to be.
pub(crate) fn shell_word(word: &str) -> String {
    crate::ca::store::shell_quote(word)
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `TIME LEVEL target: message key=value…`.
    Text,
    /// One JSON object per line (tracing-subscriber's JSON format).
    Json,
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
    /// The live web explorer: routes with inferred schemas, exchanges and gateway frames.
    Explore(explore::ExploreArgs),
    /// Print, apply or remove the /etc/hosts lines for the transparent listener.
    Hosts(hosts::HostsArgs),
    /// Worlds for `serve`: `world export` builds a fixture from recordings.
    World(world::WorldArgs),
    /// Hold a bot's gateway shards open upstream so the bot restarts without re-identifying.
    GatewayProxy(gateway_proxy::GatewayProxyArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// e.g. `discord-mitm completions bash > ~/.local/share/bash-completion/completions/discord-mitm`
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff), or write one per command with --dir.
    ///
    /// e.g. `discord-mitm man | man -l -`
    Man(docs::ManArgs),
}

/// Entry point used by the binary: parse, set up logging, run, map errors to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.global);
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
        Command::Ca(args) => ca::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Record(args) => record::run(args),
        Command::Recordings(args) => recordings::run(args),
        Command::Export(args) => export::run(args),
        Command::Routes(args) => routes::run(args),
        Command::Explore(args) => explore::run(args),
        Command::Hosts(args) => hosts::run(args),
        Command::World(args) => world::run(args),
        Command::GatewayProxy(args) => gateway_proxy::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}

/// Sets our log level from a config file (gateway-proxy's `log_level`) unless RUST_LOG or
/// -v/-q chose one, which win.
pub fn apply_config_log_level(level: &str) {
    logging::apply_config_log_level(level);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_take_ips_bracketed_ipv6_and_localhost() {
        let parse = |text| parse_socket_addr(text).map(|a| a.to_string());
        assert_eq!(parse("127.0.0.1:3000").unwrap(), "127.0.0.1:3000");
        assert_eq!(parse("[::1]:3000").unwrap(), "[::1]:3000");
        assert_eq!(parse("localhost:3000").unwrap(), "127.0.0.1:3000");
        assert_eq!(parse("LOCALHOST:0").unwrap(), "127.0.0.1:0");
        assert!(parse("localhost").unwrap_err().contains("HOST:PORT"));
        assert!(parse("localhost:99999")
            .unwrap_err()
            .contains("not a port number"));
        assert!(parse(":3000").is_err());
    }

    #[test]
    fn the_ca_dir_flag_is_repeated_only_when_given() {
        assert_eq!(CaDirArg::default().flag(), "");
        assert_eq!(CaDirArg::default().path(), PathBuf::from("ca"));
        let given = CaDirArg {
            ca_dir: Some(PathBuf::from("my ca")),
        };
        assert_eq!(given.flag(), " --ca-dir 'my ca'");
        assert_eq!(
            crate::ca::ca_dir_flag(std::path::Path::new("ca")),
            String::new()
        );
        assert_eq!(
            crate::ca::ca_dir_flag(std::path::Path::new("/srv/ca")),
            " --ca-dir /srv/ca"
        );
    }
}
