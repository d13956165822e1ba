//! The gateway-proxy configuration file: the seed project's JSON fields with the same meaning
//! and defaults, plus where upstream lives. Unknown fields are reported, not fatal, so an
//! existing gateway-proxy config works unchanged.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Discord's REST base, used when `upstream_api` is absent.
pub const DEFAULT_UPSTREAM_API: &str = "https://discord.com/api/v10";
/// The seed's listening port.
pub const DEFAULT_PORT: u16 = 7878;
/// The seed's per-client queue limit.
pub const DEFAULT_BACKPRESSURE: usize = 100;

/// Top-level fields this file understands (others are ignored with a warning).
const KNOWN_FIELDS: &[&str] = &[
    "log_level",
    "token",
    "intents",
    "port",
    "shards",
    "shard_count",
    "shard_start",
    "shard_end",
    "activity",
    "status",
    "backpressure",
    "validate_token",
    "externally_accessible_url",
    "cache",
    "upstream_api",
    "upstream_gateway",
    "nats",
];

/// Why a configuration file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not JSON or a field has the wrong type.
    #[error("config {path}: field `{field}`: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// Path of the offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A field parsed but its value is not allowed.
    #[error("config field `{field}`: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong with its value.
        message: String,
    },
}

/// A presence status as the gateway spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Green.
    #[default]
    Online,
    /// Yellow moon.
    Idle,
    /// Do not disturb.
    Dnd,
    /// Shown offline while connected.
    Invisible,
    /// Offline.
    Offline,
}

impl Status {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Idle => "idle",
            Status::Dnd => "dnd",
            Status::Invisible => "invisible",
            Status::Offline => "offline",
        }
    }
}

/// The bot's activity sent in each shard's IDENTIFY presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Activity name; `{{shard}}` is replaced with the shard id.
    pub name: String,
    /// Activity type: 0 playing, 1 streaming, 2 listening, 3 watching, 4 custom, 5 competing.
    #[serde(rename = "type", default)]
    pub kind: u8,
    /// Stream URL (type 1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Custom status text (type 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// Which resources the per-shard cache keeps (what READY/GUILD_CREATE to clients can carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// Guild channels and threads.
    pub channels: bool,
    /// Presences.
    pub presences: bool,
    /// Custom emojis.
    pub emojis: bool,
    /// The bot's own member object in each guild (even when `members` is off).
    pub current_member: bool,
    /// Guild members.
    pub members: bool,
    /// Roles.
    pub roles: bool,
    /// Guild scheduled events.
    pub scheduled_events: bool,
    /// Stage instances.
    pub stage_instances: bool,
    /// Stickers.
    pub stickers: bool,
    /// Users other than the bot (kept with members and presences).
    pub users: bool,
    /// Voice states.
    pub voice_states: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            channels: true,
            presences: false,
            emojis: false,
            current_member: true,
            members: false,
            roles: true,
            scheduled_events: false,
            stage_instances: false,
            stickers: false,
            users: false,
            voice_states: false,
        }
    }
}

/// A log level as the seed accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Problems only.
    Warn,
    /// Errors only.
    Error,
}

impl LogLevel {
    /// The `tracing` filter directive for this level.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

fn deserialize_log_level<'de, D: serde::Deserializer<'de>>(de: D) -> Result<LogLevel, D::Error> {
    let text = String::deserialize(de)?;
    match text.to_ascii_lowercase().as_str() {
        "trace" => Ok(LogLevel::Trace),
        "debug" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        "warn" | "warning" => Ok(LogLevel::Warn),
        "error" => Ok(LogLevel::Error),
        _ => Err(serde::de::Error::custom(format!(
            "`{text}` is not one of trace, debug, info, warn, error"
        ))),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Log verbosity (overridden by RUST_LOG and -v/-q).
    #[serde(default, deserialize_with = "deserialize_log_level")]
    pub log_level: LogLevel,
    /// The bot token (with or without the `Bot ` prefix).
    pub token: String,
    /// Gateway intents for every shard.
    pub intents: u64,
    /// Port clients connect to (HTTP + WebSocket), on loopback.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The seed's total shard count, or this process's inclusive `[first, last]` shard range.
    #[serde(default)]
    pub shards: Option<Shards>,
    /// Total shard count of the bot; absent = a numeric `shards`, else GET /gateway/bot's.
    #[serde(default)]
    pub shard_count: Option<u32>,
    /// First shard id this proxy runs (inclusive).
    #[serde(default)]
    pub shard_start: Option<u32>,
    /// Shard id this proxy stops before (exclusive); absent = `shards`.
    #[serde(default)]
    pub shard_end: Option<u32>,
    /// Activity in each shard's presence.
    #[serde(default)]
    pub activity: Option<Activity>,
    /// Status in each shard's presence.
    #[serde(default)]
    pub status: Status,
    /// Most events queued for one client before it is closed (resumably).
    #[serde(default = "default_backpressure")]
    pub backpressure: usize,
    /// Whether a client's IDENTIFY token must equal `token` (4004 otherwise).
    #[serde(default = "default_true")]
    pub validate_token: bool,
    /// The proxy's URL as clients reach it; sent as READY `resume_gateway_url`.
    #[serde(default)]
    pub externally_accessible_url: Option<String>,
    /// What the state cache keeps.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Upstream REST base including the version (`https://discord.com/api/v10`).
    #[serde(default = "default_upstream_api")]
    pub upstream_api: String,
    /// Upstream gateway URL; absent = the `url` from GET /gateway/bot.
    #[serde(default)]
    pub upstream_gateway: Option<String>,
    /// Dispatches on NATS JetStream, identify pacing and RPC across processes; absent = none.
    #[serde(default)]
    pub nats: Option<NatsConfig>,
}

/// `shards`: the seed's total count, or an inclusive range of shard ids run by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Shards {
    /// Total shard count of the bot (the seed's meaning).
    Count(u32),
    /// `[first, last]`: the shard ids this process runs, both inclusive.
    Range([u32; 2]),
}

/// Default JetStream stream name.
pub const DEFAULT_NATS_STREAM: &str = "discord";
/// Default subject prefix (`<prefix>.<shard>.<EVENT_NAME>`).
pub const DEFAULT_NATS_PREFIX: &str = "discord";
/// Default bound on dispatches waiting for NATS (queued plus in flight).
pub const DEFAULT_NATS_BUFFER: usize = 65_536;
/// Default bound on publishes awaiting their JetStream ack.
pub const DEFAULT_NATS_IN_FLIGHT: usize = 4096;

/// Where and how dispatches go to NATS JetStream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatsConfig {
    /// Server URL(s), comma separated (`nats://127.0.0.1:4222`).
    pub url: String,
    /// Stream the dispatches are stored in (created when missing).
    #[serde(default = "default_nats_stream")]
    pub stream: String,
    /// First subject token: dispatches on `<prefix>.<shard>.<EVENT_NAME>`, RPC on `<prefix>.rpc.…`.
    #[serde(default = "default_nats_prefix")]
    pub subject_prefix: String,
    /// Dispatches held while NATS is slow or down before new ones are dropped (and counted).
    #[serde(default = "default_nats_buffer")]
    pub buffer: usize,
    /// Publishes awaiting their JetStream ack at once.
    #[serde(default = "default_nats_in_flight")]
    pub max_in_flight: usize,
}

fn default_nats_stream() -> String {
    DEFAULT_NATS_STREAM.to_owned()
}
fn default_nats_prefix() -> String {
    DEFAULT_NATS_PREFIX.to_owned()
}
fn default_nats_buffer() -> usize {
    DEFAULT_NATS_BUFFER
}
fn default_nats_in_flight() -> usize {
    DEFAULT_NATS_IN_FLIGHT
}

impl NatsConfig {
    /// The JetStream KV bucket holding identify buckets and shard checkpoints.
    pub fn kv_bucket(&self) -> String {
        format!("{}-gateway", self.stream)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if !self
            .url
            .split(',')
            .all(|url| url.trim().parse::<http::Uri>().is_ok() && !url.trim().is_empty())
        {
            return invalid("nats.url", "must be a NATS URL (nats://host:port)");
        }
        let token_ok = |text: &str| {
            !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !token_ok(&self.stream) {
            return invalid("nats.stream", "must be letters, digits, `_` or `-`");
        }
        if !token_ok(&self.subject_prefix) {
            return invalid(
                "nats.subject_prefix",
                "must be one subject token: letters, digits, `_` or `-`",
            );
        }
        if self.buffer == 0 {
            return invalid("nats.buffer", "must be at least 1");
        }
        if self.max_in_flight == 0 {
            return invalid("nats.max_in_flight", "must be at least 1");
        }
        Ok(())
    }
}

fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_backpressure() -> usize {
    DEFAULT_BACKPRESSURE
}
fn default_true() -> bool {
    true
}
fn default_upstream_api() -> String {
    DEFAULT_UPSTREAM_API.to_owned()
}

/// A loaded configuration and the top-level fields it ignored.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The validated configuration.
    pub config: Config,
    /// Top-level keys this proxy does not know (e.g. the seed's `twilight_http_proxy`).
    pub ignored_fields: Vec<String>,
}

impl Config {
    /// Reads, parses and validates the file at `path` (`-`: standard input).
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = crate::store::stdio::read(path)
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|err| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, err.utf8_error())
                })
            })
            .map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
        Config::parse(&text).map_err(|err| match err {
            ConfigError::Parse { field, message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                field,
                message,
            },
            other => other,
        })
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
        let parse_error = |field: String, message: String| ConfigError::Parse {
            path: PathBuf::new(),
            field,
            message,
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|err| parse_error("(file)".into(), format!("not JSON: {err}")))?;
        let Some(object) = value.as_object() else {
            return Err(parse_error("(file)".into(), "must be a JSON object".into()));
        };
        let ignored_fields = object
            .keys()
            .filter(|key| !KNOWN_FIELDS.contains(&key.as_str()))
            .cloned()
            .collect();
        let config: Config = serde_path_to_error::deserialize(&value).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner().to_string();
            // serde names a missing field only in its message; point at it.
            let field = match (path.as_str(), inner.strip_prefix("missing field `")) {
                (".", Some(rest)) => rest.trim_end_matches('`').to_owned(),
                (".", None) => "(file)".to_owned(),
                _ => path,
            };
            parse_error(field, inner)
        })?;
        config.validate()?;
        Ok(LoadedConfig {
            config,
            ignored_fields,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if self.bare_token().is_empty() {
            return invalid("token", "must not be empty");
        }
        if self
            .bare_token()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return invalid("token", "must not contain whitespace");
        }
        if self.intents >= 1 << 26 {
            return invalid(
                "intents",
                "has bits set above the highest known intent (1 << 25)",
            );
        }
        if self.port == 0 {
            return invalid("port", "must be 1-65535");
        }
        self.validate_shards()?;
        if let Some(activity) = &self.activity {
            if activity.kind > 5 {
                return invalid("activity.type", "must be 0-5");
            }
            if activity.name.is_empty() {
                return invalid("activity.name", "must not be empty");
            }
        }
        if self.backpressure == 0 {
            return invalid("backpressure", "must be at least 1");
        }
        if let Some(url) = &self.externally_accessible_url {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return invalid(
                    "externally_accessible_url",
                    "must start with ws:// or wss://",
                );
            }
            if url.parse::<http::Uri>().is_err() {
                return invalid("externally_accessible_url", "is not a valid URL");
            }
        }
        if !(self.upstream_api.starts_with("http://") || self.upstream_api.starts_with("https://"))
            || self.upstream_api.parse::<http::Uri>().is_err()
        {
            return invalid("upstream_api", "must be an http:// or https:// URL");
        }
        if let Some(url) = &self.upstream_gateway {
            if !(url.starts_with("ws://") || url.starts_with("wss://"))
                || url.parse::<http::Uri>().is_err()
            {
                return invalid("upstream_gateway", "must be a ws:// or wss:// URL");
            }
        }
        if let Some(nats) = &self.nats {
            nats.validate()?;
        }
        Ok(())
    }

    fn validate_shards(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if let (Some(Shards::Count(count)), Some(total)) = (self.shards, self.shard_count) {
            if count != total {
                return invalid("shard_count", "differs from the numeric `shards`");
            }
        }
        if let Some(Shards::Range([first, last])) = self.shards {
            if first > last {
                return invalid("shards", "[first, last] needs first <= last");
            }
            if self.shard_start.is_some() || self.shard_end.is_some() {
                return invalid(
                    "shards",
                    "a [first, last] range excludes shard_start/shard_end",
                );
            }
        }
        if self.total_shards() == Some(0) {
            return invalid("shards", "must be at least 1");
        }
        let (start, end) = self.shard_bounds();
        let end_field = match self.shards {
            Some(Shards::Range(_)) => "shards",
            _ => "shard_end",
        };
        if let Some(end) = end {
            if end <= start {
                return invalid(end_field, "must be greater than shard_start");
            }
            if let Some(total) = self.total_shards() {
                if end > total {
                    return invalid(end_field, "must not exceed the shard count");
                }
            }
        } else if let Some(total) = self.total_shards() {
            if start >= total {
                return invalid("shard_start", "must be below shards");
            }
        }
        Ok(())
    }

    /// This config with command-line overrides applied (a `[first, last]` range replaces
    /// `shards`/`shard_start`/`shard_end`), validated again.
    pub fn with_overrides(
        mut self,
        range: Option<[u32; 2]>,
        shard_count: Option<u32>,
        nats_url: Option<String>,
    ) -> Result<Config, ConfigError> {
        if let Some(count) = shard_count {
            if let Some(Shards::Count(_)) = self.shards {
                self.shards = None;
            }
            self.shard_count = Some(count);
        }
        if let Some(range) = range {
            if let Some(Shards::Count(count)) = self.shards {
                self.shard_count.get_or_insert(count);
            }
            self.shards = Some(Shards::Range(range));
            self.shard_start = None;
            self.shard_end = None;
        }
        if let Some(url) = nats_url {
            match &mut self.nats {
                Some(nats) => nats.url = url,
                None => {
                    self.nats = Some(NatsConfig {
                        url,
                        stream: default_nats_stream(),
                        subject_prefix: default_nats_prefix(),
                        buffer: DEFAULT_NATS_BUFFER,
                        max_in_flight: DEFAULT_NATS_IN_FLIGHT,
                    })
                }
            }
        }
        self.validate()?;
        Ok(self)
    }

    /// The bot's total shard count when configured (`shard_count` or a numeric `shards`).
    pub fn total_shards(&self) -> Option<u32> {
        match self.shards {
            Some(Shards::Count(count)) => Some(count),
            _ => self.shard_count,
        }
    }

    /// The first shard run here and the one it stops before (absent: up to the total).
    pub fn shard_bounds(&self) -> (u32, Option<u32>) {
        match self.shards {
            Some(Shards::Range([first, last])) => (first, Some(last.saturating_add(1))),
            _ => (self.shard_start.unwrap_or(0), self.shard_end),
        }
    }

    /// The token without a `Bot ` prefix, as IDENTIFY carries it.
    pub fn bare_token(&self) -> &str {
        let token = self.token.trim();
        token
            .strip_prefix("Bot ")
            .or_else(|| token.strip_prefix("bot "))
            .unwrap_or(token)
    }

    /// The `Authorization` header value for upstream REST.
    pub fn authorization(&self) -> String {
        format!("Bot {}", self.bare_token())
    }

    /// What clients are told to resume at: `externally_accessible_url`, else this port on loopback.
    pub fn resume_url(&self) -> String {
        self.externally_accessible_url
            .clone()
            .unwrap_or_else(|| format!("ws://127.0.0.1:{}", self.port))
    }

    /// The IDENTIFY `presence` for `shard_id`, from `status` and `activity`.
    pub fn presence(&self, shard_id: u32) -> serde_json::Value {
        let activities: Vec<serde_json::Value> = self
            .activity
            .iter()
            .map(|activity| {
                let mut activity = activity.clone();
                activity.name = activity.name.replace("{{shard}}", &shard_id.to_string());
                serde_json::to_value(activity).unwrap_or(serde_json::Value::Null)
            })
            .collect();
        serde_json::json!({
            "status": self.status.as_str(),
            "since": null,
            "afk": false,
            "activities": activities,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
        Config::parse(text)
    }

    #[test]
    fn seed_example_config_loads_with_seed_defaults() {
        let loaded = parse(
            r#"{"log_level":"info","token":"abc.def","intents":32511,
                "cache":{"channels":false,"presences":false,"emojis":false,"members":false,
                "roles":false,"stage_instances":false,"stickers":false,"users":false,
                "voice_states":false}}"#,
        )
        .unwrap();
        let config = loaded.config;
        assert_eq!(config.port, 7878);
        assert_eq!(config.backpressure, 100);
        assert!(config.validate_token);
        assert_eq!(config.status, Status::Online);
        assert_eq!(config.shards, None);
        assert_eq!(config.total_shards(), None);
        assert!(!config.cache.channels);
        // Fields the seed's example leaves out keep their defaults.
        assert!(config.cache.current_member);
        assert_eq!(config.upstream_api, DEFAULT_UPSTREAM_API);
        assert_eq!(config.resume_url(), "ws://127.0.0.1:7878");
        assert!(loaded.ignored_fields.is_empty());
    }

    #[test]
    fn full_config_round_trips_every_field() {
        let loaded = parse(
            r#"{"log_level":"DEBUG","token":"Bot abc","intents":513,"port":9000,"shards":4,
                "shard_start":2,"shard_end":4,"activity":{"type":3,"name":"shard {{shard}}"},
                "status":"dnd","backpressure":5,"validate_token":false,
                "externally_accessible_url":"wss://proxy.example/gw",
                "cache":{"members":true},"upstream_api":"http://127.0.0.1:1/api/v10",
                "upstream_gateway":"ws://127.0.0.1:1/","twilight_http_proxy":"x"}"#,
        )
        .unwrap();
        let config = &loaded.config;
        assert_eq!(config.log_level, LogLevel::Debug);
        assert_eq!(config.bare_token(), "abc");
        assert_eq!(config.authorization(), "Bot abc");
        assert_eq!((config.shard_start, config.shard_end), (Some(2), Some(4)));
        assert_eq!(config.status, Status::Dnd);
        assert!(config.cache.members && config.cache.channels && config.cache.roles);
        assert_eq!(config.resume_url(), "wss://proxy.example/gw");
        assert_eq!(
            loaded.ignored_fields,
            vec!["twilight_http_proxy".to_owned()]
        );
        let presence = config.presence(3);
        assert_eq!(presence["status"], "dnd");
        assert_eq!(presence["activities"][0]["name"], "shard 3");
        assert_eq!(presence["activities"][0]["type"], 3);
    }

    fn rejected_field(text: &str) -> String {
        match parse(text).unwrap_err() {
            ConfigError::Parse { field, .. } => field,
            ConfigError::Invalid { field, .. } => field.to_owned(),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn invalid_configs_name_the_field() {
        assert_eq!(rejected_field(r#"{"intents":1}"#), "token");
        assert_eq!(rejected_field(r#"{"token":"t"}"#), "intents");
        assert_eq!(rejected_field(r#"{"token":"t","intents":"x"}"#), "intents");
        assert_eq!(rejected_field(r#"{"token":"","intents":1}"#), "token");
        // Each extra field below, added to a valid config, is rejected naming that field.
        for (extra, field) in [
            (r#""port":70000"#, "port"),
            (r#""status":"busy""#, "status"),
            (r#""log_level":"loud""#, "log_level"),
            (r#""cache":{"members":"yes"}"#, "cache.members"),
            (r#""shards":2,"shard_end":3"#, "shard_end"),
            (r#""shard_start":2,"shard_end":2"#, "shard_end"),
            (r#""shards":2,"shard_start":2"#, "shard_start"),
            (r#""shards":[3,1]"#, "shards"),
            (r#""shards":[0,1],"shard_start":1"#, "shards"),
            (r#""shards":[2,4],"shard_count":4"#, "shards"),
            (r#""shards":2,"shard_count":3"#, "shard_count"),
            (r#""shards":"all""#, "shards"),
            (r#""backpressure":0"#, "backpressure"),
            (
                r#""externally_accessible_url":"http://x""#,
                "externally_accessible_url",
            ),
            (r#""upstream_api":"ftp://x""#, "upstream_api"),
            (r#""activity":{"type":9,"name":"x"}"#, "activity.type"),
            (r#""nats":{}"#, "nats"),
            (
                r#""nats":{"url":"nats://x","subject_prefix":"a.b"}"#,
                "nats.subject_prefix",
            ),
            (r#""nats":{"url":"nats://x","stream":"a b"}"#, "nats.stream"),
            (r#""nats":{"url":"nats://x","buffer":0}"#, "nats.buffer"),
        ] {
            let text = format!(r#"{{"token":"t","intents":1,{extra}}}"#);
            assert_eq!(rejected_field(&text), field, "{text}");
        }
        assert_eq!(rejected_field("[1]"), "(file)");
        assert_eq!(rejected_field("{not json"), "(file)");
    }

    #[test]
    fn shard_ranges_and_nats_settings_parse() {
        let config = parse(
            r#"{"token":"t","intents":1,"shards":[2,3],"shard_count":4,
                "nats":{"url":"nats://127.0.0.1:4222"}}"#,
        )
        .unwrap()
        .config;
        assert_eq!(config.total_shards(), Some(4));
        assert_eq!(config.shard_bounds(), (2, Some(4)));
        let nats = config.nats.unwrap();
        assert_eq!(
            (nats.stream.as_str(), nats.subject_prefix.as_str()),
            ("discord", "discord")
        );
        assert_eq!(nats.kv_bucket(), "discord-gateway");
        let seed = parse(r#"{"token":"t","intents":1,"shards":4,"shard_start":1}"#)
            .unwrap()
            .config;
        assert_eq!(seed.total_shards(), Some(4));
        assert_eq!(seed.shard_bounds(), (1, None));
        let from_discord = parse(r#"{"token":"t","intents":1,"shards":[0,1]}"#)
            .unwrap()
            .config;
        assert_eq!(from_discord.total_shards(), None);
        assert_eq!(from_discord.shard_bounds(), (0, Some(2)));
    }

    #[test]
    fn command_line_overrides_replace_the_files_shards_and_nats_url() {
        let config = parse(r#"{"token":"t","intents":1,"shards":4,"shard_start":1}"#)
            .unwrap()
            .config;
        let config = config
            .with_overrides(Some([2, 3]), None, Some("nats://127.0.0.1:1".into()))
            .unwrap();
        assert_eq!(config.total_shards(), Some(4));
        assert_eq!(config.shard_bounds(), (2, Some(4)));
        assert_eq!(config.nats.as_ref().unwrap().url, "nats://127.0.0.1:1");
        let err = config.with_overrides(None, Some(3), None).unwrap_err();
        assert!(err.to_string().contains("shards"), "{err}");
    }

    #[test]
    fn missing_file_is_a_read_error_naming_the_path() {
        let err = Config::load(Path::new("/nonexistent/gwproxy.json")).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/gwproxy.json"));
    }
}
