//! Log output: the level from -v/-q (or RUST_LOG), text or JSON lines on stderr, colour only on a
//! terminal.
use std::sync::OnceLock;

use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, Layer, Registry};

use super::{GlobalOptions, LogFormat};

/// Replaces the log filter when the user chose no level (no RUST_LOG, no -v/-q).
type LogLevelSetter = Box<dyn Fn(&str) + Send + Sync>;
static DEFAULT_LOG_LEVEL: OnceLock<LogLevelSetter> = OnceLock::new();

/// Sets our log level from a config file unless RUST_LOG or -v/-q chose one, which win.
pub(super) fn apply_config_log_level(level: &str) {
    if let Some(set) = DEFAULT_LOG_LEVEL.get() {
        set(level);
    }
}

/// The level -v/-q ask for.
fn level_name(global: &GlobalOptions) -> &'static str {
    match (global.verbose as i16) - (global.quiet as i16) {
        i16::MIN..=-2 => "off",
        -1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// Our crate at `level`, everyone else at warn (debug at trace).
fn default_filter(level: &str) -> EnvFilter {
    EnvFilter::new(format!(
        "discord_mitm={level},{}",
        if level == "trace" { "debug" } else { "warn" }
    ))
}

/// Installs the global subscriber.
pub(super) fn init(global: &GlobalOptions) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let user_chose = from_env.is_some() || global.verbose > 0 || global.quiet > 0;
    let (filter, handle) =
        reload::Layer::new(from_env.unwrap_or_else(|| default_filter(level_name(global))));
    let ansi = global.color.ansi() && global.log_format == LogFormat::Text;
    let output = match global.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .boxed(),
    };
    let installed = Registry::default()
        .with(output.with_filter(filter))
        .try_init()
        .is_ok();
    if installed && !user_chose {
        let _ = DEFAULT_LOG_LEVEL.set(Box::new(move |level| {
            let _ = handle.reload(default_filter(level));
        }));
    }
}
