//! `discord-mitm record`: arguments and dispatch.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::app::record;
use crate::app::ProxyOptions;
use crate::proxy::{HostMatcher, DISCORD_DOMAINS};
use crate::store::RecorderOptions;
use crate::upstream::{DnsChoice, ResolveOverride, UpstreamConfig};

/// Options shared by everything that talks to upstream (`record`, later `serve`).
#[derive(Debug, Clone, Args)]
pub struct UpstreamArgs {
    /// Pin a host to an address: HOST=IP:PORT (repeatable). Used instead of DNS for that host.
    #[arg(long = "resolve", value_name = "HOST=IP:PORT")]
    pub resolve: Vec<ResolveOverride>,
    /// Also trust the certificates in this PEM file for upstream TLS (repeatable).
    #[arg(long = "upstream-ca", value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,
    /// DNS servers for upstream names (or one server, IP[:PORT]); never the hosts file.
    #[arg(
        long,
        value_name = "system|cloudflare|google|IP[:PORT]",
        default_value = "system"
    )]
    pub dns: DnsChoice,
    /// Seconds allowed for DNS + connect + TLS to upstream.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub connect_timeout: f64,
    /// Seconds allowed for upstream's response headers.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub response_timeout: f64,
}

impl UpstreamArgs {
    /// The upstream client configuration.
    pub fn config(&self) -> UpstreamConfig {
        UpstreamConfig {
            resolve: self.resolve.clone(),
            extra_ca_files: self.upstream_ca.clone(),
            dns: self.dns,
            connect_timeout: Duration::from_secs_f64(self.connect_timeout.max(0.001)),
            response_timeout: Duration::from_secs_f64(self.response_timeout.max(0.001)),
        }
    }
}

/// Limits of every listener (`record`, `serve`, `gateway-proxy`): no client holds a connection
/// forever.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Seconds a client may take to send a complete request head, counted from when the server
    /// starts waiting for it: also closes idle keep-alive connections, connections that send
    /// nothing, and stalled WebSocket upgrade requests after that long. 0 turns the deadline
    /// off, for comparisons only: any client can then hold a connection forever.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::listen::DEFAULT_HEAD_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub head_timeout: u64,
    /// Connections open at once per listener; more wait in the accept backlog.
    #[arg(long, value_name = "N", default_value_t = crate::listen::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
}

impl LimitArgs {
    /// The listeners' limits.
    pub(crate) fn limits(&self) -> crate::listen::Limits {
        crate::listen::Limits {
            head_timeout: Duration::from_secs(self.head_timeout),
            max_connections: self.max_connections.max(1),
        }
    }
}

/// `--ui` on `record` and `serve --listen`.
#[derive(Debug, Clone, Default, Args)]
pub struct UiArgs {
    /// Also serve the live web explorer here (e.g. 127.0.0.1:8081); the address to open is
    /// printed at start-up. Loopback only unless --ui-allow-remote.
    #[arg(long, value_name = "ADDR", value_parser = super::parse_socket_addr)]
    pub ui: Option<SocketAddr>,
    /// Let --ui listen on a non-loopback address (the explorer shows recorded traffic).
    #[arg(long, requires = "ui")]
    pub ui_allow_remote: bool,
}

impl UiArgs {
    /// The explorer's address, refused when it is not loopback and that was not allowed.
    pub(crate) fn checked(&self) -> anyhow::Result<Option<SocketAddr>> {
        if let Some(addr) = self.ui {
            crate::app::explore::check_addr(addr, self.ui_allow_remote)?;
        }
        Ok(self.ui)
    }

    /// `serve` without `--listen` records nothing, so it has no explorer to serve.
    pub(crate) fn refuse_without_listen(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.ui.is_none(),
            "--ui needs --listen (the explorer shows what the proxy records)"
        );
        Ok(())
    }
}

/// Run the recording MITM proxy.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Address of the explicit proxy (HTTPS_PROXY=http://ADDR): IP:PORT, [IPv6]:PORT or
    /// localhost:PORT.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = super::parse_socket_addr)]
    pub listen: SocketAddr,
    /// The root CA that signs the leaves clients see.
    #[command(flatten)]
    pub ca_dir: super::CaDirArg,
    /// Recordings database directory.
    #[arg(long, default_value = "recordings")]
    pub recordings: PathBuf,
    /// How to reach Discord.
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// Record secrets (Authorization, cookies, tokens, passwords) instead of redacting them.
    #[arg(long)]
    pub keep_secrets: bool,
    /// Proxy without recording anything.
    #[arg(long)]
    pub no_store: bool,
    /// Also listen for TLS here (e.g. 127.0.0.1:443) and pick the leaf by SNI, for hosts-file redirects.
    #[arg(long, value_name = "ADDR", value_parser = super::parse_socket_addr)]
    pub transparent: Option<SocketAddr>,
    /// Domains to intercept (with subdomains); default Discord's. Repeatable.
    #[arg(long = "intercept", value_name = "DOMAIN")]
    pub intercept: Vec<String>,
    /// Largest body recorded per request or response, in bytes (longer ones are cut).
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    pub max_body: usize,
    /// Listener limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The live web explorer.
    #[command(flatten)]
    pub ui: UiArgs,
}

/// Runs `record`.
pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    // Everything `record` writes holds tokens: owner-only, whatever the umask.
    crate::store::private::restrict_umask();
    let intercept = if args.intercept.is_empty() {
        HostMatcher::new(DISCORD_DOMAINS.iter().map(|d| d.to_string()))
    } else {
        HostMatcher::new(args.intercept.clone())
    };
    let config = ProxyOptions {
        listen: args.listen,
        transparent: args.transparent,
        recordings: args.recordings.clone(),
        no_store: args.no_store,
        recorder: RecorderOptions {
            keep_secrets: args.keep_secrets,
            max_body: args.max_body,
            ..RecorderOptions::default()
        },
        upstream: args.upstream.config(),
        intercept,
        ca_dir: args.ca_dir.path(),
        limits: args.limits.limits(),
        ui: args.ui.checked()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let recordings = (!args.no_store).then(|| args.recordings.display().to_string());
    let ca_pem = crate::ca::CaFiles::in_dir(&args.ca_dir.path()).cert_pem;
    let ca_flag = args.ca_dir.flag();
    runtime.block_on(record::run(
        config,
        move |proxy, transparent| {
            let banner = banner(proxy, transparent, recordings.as_deref(), &ca_pem, &ca_flag);
            let _ = crate::store::stdio::write_stdout(banner.as_bytes());
        },
        crate::app::shutdown_signal(false),
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// What `record` prints once it listens: where, what to set in a client's environment, and
/// where the exchanges go.
fn banner(
    proxy: SocketAddr,
    transparent: Option<SocketAddr>,
    recordings: Option<&str>,
    ca_pem: &std::path::Path,
    ca_flag: &str,
) -> String {
    use std::fmt::Write as _;
    let ca_pem = std::path::absolute(ca_pem).unwrap_or_else(|_| ca_pem.to_path_buf());
    let ca_pem = super::shell_word(&ca_pem.to_string_lossy());
    let mut out = String::new();
    let _ = writeln!(out, "discord-mitm record: proxy listening on {proxy}");
    if let Some(addr) = transparent {
        let _ = writeln!(
            out,
            "discord-mitm record: transparent TLS listening on {addr}"
        );
    }
    match recordings {
        Some(dir) => {
            let _ = writeln!(out, "discord-mitm record: recording into {dir}");
        }
        None => {
            let _ = writeln!(out, "discord-mitm record: not recording (--no-store)");
        }
    }
    let _ = writeln!(
        out,
        "  a client (bot, curl, Python, Node) uses the proxy with:\n    \
         export HTTPS_PROXY=http://{proxy} SSL_CERT_FILE={ca_pem}\n    \
         (Node: NODE_EXTRA_CA_CERTS={ca_pem}; a client trusting the system store needs \
         `discord-mitm ca install{ca_flag}`)"
    );
    let _ = writeln!(
        out,
        "  desktop client: start Discord with --proxy-server=http://{proxy} after `discord-mitm ca install{ca_flag}`"
    );
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    out
}
