//! Log output: the level from -v/-q (or RUST_LOG), text or JSON lines on stderr, colour only on a
//! terminal, and hudsucker's ERROR lines about clients' mistakes turned into our own WARN lines.
use std::fmt::Write as _;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{filter_fn, EnvFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
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
    // hudsucker's own lines never reach the output; `Relevel` says them again as ours.
    let output = output
        .with_filter(filter)
        .with_filter(filter_fn(|meta| !meta.target().starts_with("hudsucker")));
    let relevel = Relevel.with_filter(Targets::new().with_target("hudsucker", Level::WARN));
    let installed = Registry::default()
        .with(output)
        .with(relevel)
        .try_init()
        .is_ok();
    if installed && !user_chose {
        let _ = DEFAULT_LOG_LEVEL.set(Box::new(move |level| {
            let _ = handle.reload(default_filter(level));
        }));
    }
}

/// Says hudsucker's ERROR and WARN lines again as a WARN of `discord_mitm::proxy`: what it
/// reports (a client that sent something other than HTTP, reset its connection, refused a
/// tunnel) is a client's doing, not our failure.
struct Relevel;

impl<S: Subscriber> Layer<S> for Relevel {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = Fields::default();
        event.record(&mut text);
        tracing::warn!(
            target: "discord_mitm::proxy",
            "proxy connection: {}{}",
            text.message,
            text.rest
        );
    }
}

/// An event's message and its other fields as `: value` text.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, ": {value:?}");
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.rest, ": {value}");
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(self.rest, ": {cause}");
            source = cause.source();
        }
        let _ = field;
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, ": {value}");
        }
    }
}
