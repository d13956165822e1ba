//! `discord-mitm serve` arguments and their mapping onto the backend's options.
use crate::app::durable::Durability;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::app::serve::ServeProxyConfig;
use crate::app::server::{self, FixtureSource, ServeOptions};
use crate::app::ProxyOptions;
use crate::backend::control::ControlSettings;
use crate::backend::gateway::GatewayConfig;
use crate::backend::ratelimit::{Limit, RateLimitConfig};
use crate::backend::routes::client::ClientConfig;
use crate::backend::Config;
use crate::pipeline::chain::Fallback;
use crate::pipeline::identity::UpstreamToken;
use crate::pipeline::replay::ReplayOptions;
use crate::pipeline::replay_status::ReplayStatus;
use crate::proxy::{HostMatcher, DISCORD_DOMAINS};
use crate::store::RecorderOptions;

use super::record::UpstreamArgs;

/// What `serve --help` says about identity through the fallback chain.
pub const IDENTITY_HELP: &str = "\
Identity (serve --listen): the caller is one person, whoever answers.
  - Tokens serve issued never go upstream. A forwarded request's Authorization becomes the
    caller's upstream token (the fixture user's \"upstream_token\", else --upstream-token), or
    is removed (logged once per route). A relayed gateway IDENTIFY/RESUME gets the same token.
  - The real account's id (from a relayed READY or upstream's /users/@me for that token)
    reads as the caller's local id in forwarded answers and in relayed gateway messages (JSON
    or ETF, zlib-stream or zstd-stream), and the local id as the real one in forwarded paths,
    JSON bodies and the client's later gateway messages.
  - Replay: only 2xx and 304 recordings are replayed unless --replay-status widens it; the
    recorded account's id (from a recorded /users/@me or READY) becomes the caller's id.
  - Every change is listed in the exchange's or gateway session's recording (ids only,
    never tokens); `discord-mitm recordings show ID` (or gw:ID) marks rewritten ones.";

/// Run the reimplemented Discord backend (REST on `--api`, state in sled under `--data`).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address for the HTTP API (`/api`, `/api/v6` … `/api/v10`) and the gateway: IP:PORT,
    /// [IPv6]:PORT or localhost:PORT.
    #[arg(long, value_name = "ADDR", env = "DISCORD_MITM_API", default_value = "127.0.0.1:3000", value_parser = super::parse_socket_addr)]
    pub api: SocketAddr,
    /// Directory of the backend's own sled database (never the recordings').
    #[arg(long, env = "DISCORD_MITM_DATA", default_value = "data")]
    pub data: PathBuf,
    /// JSON fixture to seed the world from (validated whole before anything is written; `-` =
    /// standard input).
    #[arg(long, value_name = "FILE", env = "DISCORD_MITM_FIXTURE")]
    pub fixture: Option<PathBuf>,
    /// Build the world from what `record` stored in DIR (READY, guilds, channels, roles,
    /// members, fetched messages, DMs…) and seed it like a fixture; the recorded accounts get
    /// new local tokens, printed on stderr. `world export` writes the same world to a file.
    #[arg(long, value_name = "DIR", conflicts_with = "fixture")]
    pub from_recordings: Option<PathBuf>,
    /// Delete the data directory first (only if it is a discord-mitm data directory).
    #[arg(long)]
    pub reset: bool,
    /// Per-route rate limit as LIMIT/SECONDS, or `off`.
    #[arg(long, env = "DISCORD_MITM_RATE_LIMIT", default_value = "50/1")]
    pub rate_limit: String,
    /// Global (per token) rate limit as LIMIT/SECONDS, or `off`.
    #[arg(long, env = "DISCORD_MITM_GLOBAL_RATE_LIMIT", default_value = "off")]
    pub global_rate_limit: String,
    /// Largest accepted request body in bytes (413 above).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_body: usize,
    /// Deepest accepted JSON nesting (50035 above).
    #[arg(long, default_value_t = 32)]
    pub max_json_depth: usize,
    /// Shard count GET /gateway/bot recommends to bots.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub gateway_bot_shards: u32,

    /// When a write is acknowledged: `durable` answers a mutating request once its writes are
    /// on disk (group commit: one flush covers every request that finished meanwhile);
    /// `relaxed` answers at once and the store writes out within ~500 ms (benchmarks).
    #[arg(
        long,
        value_enum,
        env = "DISCORD_MITM_DURABILITY",
        default_value = "durable"
    )]
    pub durability: DurabilityArg,
    /// Origin of the attachment URLs the API hands out and stores (e.g. https://cdn.example.test);
    /// default `http://` + the --api address. Never taken from a request's Host header.
    #[arg(long, value_name = "URL", env = "DISCORD_MITM_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Listener limits (the API and the proxy).
    #[command(flatten)]
    pub limits: super::record::LimitArgs,
    /// The live web explorer (with --listen).
    #[command(flatten)]
    pub ui: super::record::UiArgs,
    /// WebSocket URL advertised by /gateway and /gateway/bot (default: ws://<Host used>).
    #[arg(long, env = "DISCORD_MITM_GATEWAY_URL")]
    pub gateway_url: Option<String>,
    /// Stop when standard input closes (for supervisors and test harnesses).
    #[arg(long, hide = true)]
    pub exit_on_stdin_close: bool,
    /// Print which operations of this OpenAPI spec (`-` = standard input) serve answers
    /// natively, then exit.
    #[arg(long, value_name = "SPEC")]
    pub coverage: Option<PathBuf>,
    /// Print the JSON Schema of the --fixture format, then exit.
    #[arg(long)]
    pub fixture_schema: bool,
    /// Also run the MITM proxy here (HTTPS_PROXY=http://ADDR): Discord's API hosts reach this
    /// backend, the rest goes down --fallback.
    #[arg(long, value_name = "ADDR", value_parser = super::parse_socket_addr)]
    pub listen: Option<SocketAddr>,
    /// Also listen for TLS here and pick the leaf by SNI, for hosts-file redirects (needs --listen).
    #[arg(long, value_name = "ADDR", requires = "listen", value_parser = super::parse_socket_addr)]
    pub transparent: Option<SocketAddr>,
    /// The root CA that signs the proxy's leaves (with --listen).
    #[command(flatten)]
    pub ca_dir: super::CaDirArg,
    /// Recordings database replayed from, and where everything through the proxy (exchanges,
    /// gateway sessions) is recorded unless --no-store.
    #[arg(long, default_value = "recordings")]
    pub recordings: PathBuf,
    /// Record nothing that passes through the proxy (replay from --recordings still works).
    #[arg(long, requires = "listen")]
    pub no_store: bool,
    /// What answers what the backend does not: recorded,forward | recorded | forward | none.
    #[arg(long, default_value = "recorded,forward")]
    pub fallback: Fallback,
    /// Query parameter ignored when matching recordings (repeatable; default: _, cb, nocache).
    #[arg(long = "replay-ignore-param", value_name = "NAME")]
    pub replay_ignore_param: Vec<String>,
    /// Match recordings on the request body too.
    #[arg(long)]
    pub replay_match_body: bool,
    /// Also replay recordings answered with these statuses: comma-separated statuses (401),
    /// classes (4xx) or `all`. 2xx and 304 are always replayed; other recorded errors are
    /// skipped (the chain goes on to upstream or 404).
    #[arg(long, value_name = "LIST")]
    pub replay_status: Vec<ReplayStatus>,
    /// Real Discord credential forwarded requests and relayed gateway IDENTIFYs carry
    /// (`Bot <token>` for a bot, the bare token for a user account). Tokens serve issued
    /// never go upstream: without this (or a fixture user's `upstream_token`), forwarded
    /// requests go without Authorization. Never printed, logged or recorded.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "DISCORD_MITM_UPSTREAM_TOKEN",
        hide_env_values = true,
        value_parser = parse_upstream_token
    )]
    pub upstream_token: Option<UpstreamToken>,
    /// How to reach Discord for what the backend does not answer.
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// Record secrets of forwarded exchanges instead of redacting them.
    #[arg(long)]
    pub keep_secrets: bool,
    /// Domains to intercept (with subdomains); default Discord's. Repeatable.
    #[arg(long = "intercept", value_name = "DOMAIN")]
    pub intercept: Vec<String>,
    /// Desktop client version the update check serves (older clients are offered it).
    #[arg(long, value_name = "VERSION", default_value = "0.0.309")]
    pub client_version: String,
    /// Options of the backend gateway.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// Test control.
    #[command(flatten)]
    pub control: ControlArgs,
}

/// The test-control API for bot test suites (docs/testing-your-bot.md).
#[derive(Debug, Clone, Default, Args)]
pub struct ControlArgs {
    /// Turn on the test-control API under /_mitm/ (reset, act as a user, event log, clock),
    /// for loopback clients holding the control token the banner prints.
    #[arg(long)]
    pub control: bool,
    /// The control token to require instead of a random one (for harnesses that start serve).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "DISCORD_MITM_CONTROL_TOKEN",
        hide_env_values = true
    )]
    pub control_token: Option<String>,
    /// Entries the control API's event log keeps (oldest dropped first).
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub control_log_size: u64,
    /// Deterministic mode: ids, session ids and issued tokens from this seed, and the clock
    /// frozen at 2026-01-01T00:00:00Z, moved only by POST /_mitm/clock.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

impl ControlArgs {
    /// The control settings these flags ask for (`None`: off).
    pub fn settings(&self) -> anyhow::Result<Option<ControlSettings>> {
        if !self.control {
            return Ok(None);
        }
        let token = match &self.control_token {
            Some(token) if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) => {
                anyhow::bail!("--control-token must be at least 16 printable characters")
            }
            Some(token) => token.clone(),
            None => {
                let mut random = [0u8; 24];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut random);
                hex::encode(random)
            }
        };
        Ok(Some(ControlSettings {
            token,
            log_capacity: self.control_log_size as usize,
        }))
    }
}

/// Tunables of `serve`'s gateway (defaults are Discord's where Discord has one).
#[derive(Debug, Clone, Default, Args)]
pub struct GatewayArgs {
    /// `heartbeat_interval` announced in HELLO, in milliseconds [default: 41250].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1_000..=600_000))]
    pub gateway_heartbeat_interval: Option<u64>,
    /// How long a disconnected gateway session can still RESUME, in seconds [default: 180].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub gateway_resume_window: Option<u64>,
    /// Dispatches kept per gateway session to replay on RESUME [default: 1000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub gateway_replay_buffer: Option<u64>,
    /// Events queued for one gateway connection before it counts as too slow and is closed
    /// (resumably) [default: 1024].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub gateway_queue: Option<u64>,
    /// zlib level (0-9) of zlib-stream and payload compression [default: 1].
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(u32).range(0..=9))]
    pub gateway_zlib_level: Option<u32>,
    /// zlib-stream with a compressor per connection (history across messages): several times
    /// smaller output for ~250 KiB per session and deflate work per session in fan-out.
    /// Default: each message deflated once, shared by every session.
    #[arg(long)]
    pub gateway_zlib_history: bool,
    /// Pace bots' IDENTIFYs as Discord does: one per `max_concurrency` bucket (1 here) per 5 s;
    /// a faster one gets op 9.
    #[arg(long)]
    pub gateway_identify_pacing: bool,
    /// `host:port` sent as VOICE_SERVER_UPDATE's endpoint after op 4 [default: the gateway's
    /// host]. No voice server runs: bots get the events they wait for, no media.
    #[arg(long, value_name = "HOST:PORT")]
    pub voice_endpoint: Option<String>,
}

impl GatewayArgs {
    /// The gateway settings these flags ask for, over the defaults.
    pub fn config(&self) -> GatewayConfig {
        let mut config = GatewayConfig::default();
        if let Some(ms) = self.gateway_heartbeat_interval {
            let interval = Duration::from_millis(ms);
            config.session.heartbeat_interval = interval;
            // Discord gives a new connection one interval to identify.
            config.session.handshake_timeout = interval;
        }
        if let Some(secs) = self.gateway_resume_window {
            config.limits.resume_window = Duration::from_secs(secs);
        }
        if let Some(n) = self.gateway_replay_buffer {
            config.limits.replay = n as usize;
        }
        if let Some(n) = self.gateway_queue {
            config.queue_capacity = n as usize;
        }
        if let Some(level) = self.gateway_zlib_level {
            config.zlib_level = level;
        }
        config.zlib_history = self.gateway_zlib_history;
        config.identify_pacing = self.gateway_identify_pacing;
        config.voice_endpoint = self.voice_endpoint.clone();
        config
    }
}

fn parse_limit(text: &str) -> anyhow::Result<Option<Limit>> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse::<Limit>()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("invalid rate limit {text:?}: {e}"))
}

/// `--upstream-token`: a credential that can go in a header.
fn parse_upstream_token(text: &str) -> Result<UpstreamToken, String> {
    UpstreamToken::new(text).map_err(|err| err.to_string())
}

/// `--public-url`: an http(s) origin without a trailing slash.
fn parse_public_url(text: &str) -> Result<String, String> {
    let trimmed = text.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("needs a host (http://HOST[:PORT][/PATH])".into());
    }
    Ok(trimmed.to_string())
}

/// `--durability`: when `serve` acknowledges a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// Once it is on disk (group commit).
    Durable,
    /// At once; written out within ~500 ms.
    Relaxed,
}

impl From<DurabilityArg> for Durability {
    fn from(arg: DurabilityArg) -> Durability {
        match arg {
            DurabilityArg::Durable => Durability::Durable,
            DurabilityArg::Relaxed => Durability::Relaxed,
        }
    }
}

/// `serve --coverage SPEC`: which operations of an OpenAPI spec the backend serves.
fn print_coverage(
    runtime: &tokio::runtime::Runtime,
    spec_path: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let name = crate::store::stdio::input_name(spec_path);
    let text = crate::store::stdio::read(spec_path)
        .map_err(|e| anyhow::anyhow!("cannot read {name}: {e}"))?;
    let spec: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| anyhow::anyhow!("{name} is not JSON: {e}"))?;
    let coverage = runtime.block_on(crate::backend::routes::coverage::measure(&spec))?;
    print!("{}", crate::backend::routes::coverage::report(&coverage));
    Ok(ExitCode::SUCCESS)
}

/// The world to seed: a fixture file, standard input, or one built from recordings.
fn fixture_source(args: &ServeArgs) -> anyhow::Result<Option<FixtureSource>> {
    Ok(match (&args.fixture, &args.from_recordings) {
        // Standard input can be read only once: read it here, as a fixture built in memory.
        (Some(path), _) if crate::store::stdio::is_dash(path) => Some(FixtureSource::Built {
            origin: "fixture from standard input".to_string(),
            json: crate::store::stdio::read(path)?,
        }),
        (Some(path), _) => Some(FixtureSource::File(path.clone())),
        (None, Some(dir)) => {
            let (built, report) = crate::app::world::build_from_recordings(dir)?;
            eprint!("{report}");
            Some(FixtureSource::Built {
                origin: format!("the world recorded in {}", dir.display()),
                json: serde_json::to_vec(&built.fixture)?,
            })
        }
        (None, None) => None,
    })
}

/// Runs the command.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.fixture_schema {
        print!("{}", crate::backend::world::fixture_schema());
        return Ok(ExitCode::SUCCESS);
    }
    // Everything `serve` writes holds tokens: owner-only, whatever the umask.
    crate::store::private::restrict_umask();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(spec_path) = &args.coverage {
        return print_coverage(&runtime, spec_path);
    }
    if args.exit_on_stdin_close
        && args
            .fixture
            .as_deref()
            .is_some_and(crate::store::stdio::is_dash)
    {
        anyhow::bail!(
            "--fixture - reads standard input, which --exit-on-stdin-close watches: use a file"
        );
    }
    // Behind the proxy the pipeline tells the backend to advertise Discord's gateway; direct
    // clients of --api keep getting ws://<Host>.
    let config = Config {
        gateway_url: args.gateway_url.clone(),
        rate_limits: RateLimitConfig {
            per_route: parse_limit(&args.rate_limit)?,
            global: parse_limit(&args.global_rate_limit)?,
        },
        max_body_bytes: args.max_body,
        max_json_depth: args.max_json_depth,
        recommended_shards: args.gateway_bot_shards,
        control: args.control.settings()?,
    };
    if let Some(seed) = args.control.seed {
        crate::backend::clock::seed(seed);
    }
    let fixture = fixture_source(&args)?;
    let options = ServeOptions {
        api: args.api,
        data: args.data.clone(),
        fixture,
        reset: args.reset,
        config,
        exit_on_stdin_close: args.exit_on_stdin_close,
        gateway: args.gateway.config(),
        client: ClientConfig {
            version: args.client_version.clone(),
            ..ClientConfig::default()
        },
        durability: args.durability.into(),
        limits: args.limits.limits(),
        public_url: args.public_url.clone(),
    };
    let Some(listen) = args.listen else {
        args.ui.refuse_without_listen()?;
        runtime.block_on(server::run(options))?;
        return Ok(ExitCode::SUCCESS);
    };
    let intercept = if args.intercept.is_empty() {
        HostMatcher::new(DISCORD_DOMAINS.iter().map(|d| d.to_string()))
    } else {
        HostMatcher::new(args.intercept.clone())
    };
    let mut replay = ReplayOptions {
        match_body: args.replay_match_body,
        max_body: args.max_body,
        ..ReplayOptions::default()
    };
    if !args.replay_ignore_param.is_empty() {
        replay.ignored_params = args.replay_ignore_param.clone();
    }
    for more in &args.replay_status {
        replay.statuses = replay.statuses.widened(more);
    }
    let proxy = ServeProxyConfig {
        proxy: ProxyOptions {
            listen,
            transparent: args.transparent,
            intercept,
            ca_dir: args.ca_dir.path(),
            recordings: args.recordings.clone(),
            no_store: args.no_store,
            recorder: RecorderOptions {
                keep_secrets: args.keep_secrets,
                ..RecorderOptions::default()
            },
            upstream: args.upstream.config(),
            limits: args.limits.limits(),
            ui: args.ui.checked()?,
        },
        fallback: args.fallback,
        replay,
        client: ClientConfig {
            version: args.client_version.clone(),
            ..ClientConfig::default()
        },
        durability: args.durability.into(),
        upstream_token: args.upstream_token.clone(),
    };
    runtime.block_on(crate::app::serve::run_with_proxy(options, proxy))?;
    Ok(ExitCode::SUCCESS)
}
