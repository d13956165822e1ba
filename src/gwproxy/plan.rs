//! What GET /gateway/bot says and which shards this proxy runs: pure functions, no I/O.
use serde::Deserialize;

use super::config::Config;

/// `session_start_limit` from GET /gateway/bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SessionStartLimit {
    /// IDENTIFYs allowed per reset period.
    pub total: u32,
    /// IDENTIFYs left in this period.
    pub remaining: u32,
    /// Milliseconds until `remaining` resets.
    pub reset_after: u64,
    /// Shards that may IDENTIFY at the same time (bucket = shard_id % max_concurrency).
    #[serde(default = "one")]
    pub max_concurrency: u32,
}

fn one() -> u32 {
    1
}

/// The body of GET /gateway/bot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GatewayBot {
    /// The gateway URL for new sessions.
    pub url: String,
    /// Discord's recommended shard count.
    pub shards: u32,
    /// IDENTIFY budget and concurrency.
    pub session_start_limit: SessionStartLimit,
}

/// Why the shard plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// GET /gateway/bot did not answer with the documented shape.
    #[error("GET /gateway/bot answered something unexpected: {0}")]
    BadGatewayBot(String),
    /// The shard range from the config does not fit the shard count.
    #[error("config field `{field}`: {message}")]
    ShardRange {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Starting the shards would need more IDENTIFYs than Discord has left.
    #[error(
        "{needed} shards must IDENTIFY but session_start_limit has {remaining} of {total} left \
         (resets in {reset_after_ms} ms)"
    )]
    SessionStartLimit {
        /// Shards that must IDENTIFY.
        needed: u32,
        /// IDENTIFYs Discord has left.
        remaining: u32,
        /// IDENTIFYs per reset period.
        total: u32,
        /// Milliseconds until the limit resets.
        reset_after_ms: u64,
    },
}

/// Which shards this proxy runs and where they connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlan {
    /// Total shard count of the bot (IDENTIFY `shard[1]`).
    pub total: u32,
    /// First shard id run here.
    pub start: u32,
    /// Shard id this proxy stops before.
    pub end: u32,
    /// Gateway URL for new sessions.
    pub gateway_url: String,
    /// Identify concurrency.
    pub max_concurrency: u32,
}

impl GatewayBot {
    /// Parses a GET /gateway/bot body.
    pub fn parse(body: &[u8]) -> Result<GatewayBot, PlanError> {
        let bot: GatewayBot = serde_json::from_slice(body)
            .map_err(|err| PlanError::BadGatewayBot(err.to_string()))?;
        if bot.shards == 0 {
            return Err(PlanError::BadGatewayBot("shards is 0".into()));
        }
        Ok(bot)
    }
}

impl ShardPlan {
    /// The plan for `config` given upstream's answer. `fresh_identifies` is how many shards
    /// will IDENTIFY (the rest resume persisted sessions) and is checked against the budget.
    pub fn new(
        config: &Config,
        bot: &GatewayBot,
        fresh_identifies: Option<u32>,
    ) -> Result<ShardPlan, PlanError> {
        let total = config.total_shards().unwrap_or(bot.shards);
        let (start, end) = config.shard_bounds();
        let end = end.unwrap_or(total);
        if end > total {
            return Err(PlanError::ShardRange {
                field: "shard_end",
                message: format!("{end} exceeds the shard count {total}"),
            });
        }
        if start >= end {
            return Err(PlanError::ShardRange {
                field: "shard_start",
                message: format!("{start} leaves no shards below {end}"),
            });
        }
        let needed = fresh_identifies.unwrap_or(end - start);
        let limit = bot.session_start_limit;
        if needed > limit.remaining {
            return Err(PlanError::SessionStartLimit {
                needed,
                remaining: limit.remaining,
                total: limit.total,
                reset_after_ms: limit.reset_after,
            });
        }
        Ok(ShardPlan {
            total,
            start,
            end,
            gateway_url: config
                .upstream_gateway
                .clone()
                .unwrap_or_else(|| bot.url.clone()),
            max_concurrency: limit.max_concurrency.max(1),
        })
    }

    /// The shard ids run here, in order.
    pub fn shard_ids(&self) -> std::ops::Range<u32> {
        self.start..self.end
    }

    /// Whether a client's IDENTIFY `shard` names a shard this proxy serves.
    pub fn serves(&self, shard_id: u32, count: u32) -> bool {
        count == self.total && self.shard_ids().contains(&shard_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bot(shards: u32, remaining: u32, concurrency: u32) -> GatewayBot {
        GatewayBot::parse(
            format!(
                r#"{{"url":"wss://gateway.discord.gg","shards":{shards},
                "session_start_limit":{{"total":1000,"remaining":{remaining},
                "reset_after":5000,"max_concurrency":{concurrency}}}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    fn config(extra: &str) -> Config {
        Config::parse(&format!(r#"{{"token":"t","intents":1{extra}}}"#))
            .unwrap()
            .config
    }

    #[test]
    fn recommended_shard_count_is_used_when_config_has_none() {
        let plan = ShardPlan::new(&config(""), &bot(3, 1000, 16), None).unwrap();
        assert_eq!(plan.shard_ids(), 0..3);
        assert_eq!(plan.total, 3);
        assert_eq!(plan.max_concurrency, 16);
        assert_eq!(plan.gateway_url, "wss://gateway.discord.gg");
        assert!(plan.serves(2, 3));
        assert!(!plan.serves(3, 3));
        assert!(!plan.serves(0, 4));
    }

    #[test]
    fn configured_range_and_gateway_override_apply() {
        let plan = ShardPlan::new(
            &config(
                r#","shards":8,"shard_start":4,"shard_end":6,"upstream_gateway":"ws://127.0.0.1:9/""#,
            ),
            &bot(1, 1000, 1),
            None,
        )
        .unwrap();
        assert_eq!(plan.shard_ids(), 4..6);
        assert_eq!(plan.total, 8);
        assert_eq!(plan.gateway_url, "ws://127.0.0.1:9/");
        assert!(!plan.serves(3, 8));
    }

    #[test]
    fn shard_start_beyond_recommended_count_is_rejected() {
        let err =
            ShardPlan::new(&config(r#","shard_start":5"#), &bot(2, 1000, 1), None).unwrap_err();
        assert!(matches!(
            err,
            PlanError::ShardRange {
                field: "shard_start",
                ..
            }
        ));
        let err = ShardPlan::new(&config(r#","shard_end":5"#), &bot(2, 1000, 1), None).unwrap_err();
        assert!(matches!(
            err,
            PlanError::ShardRange {
                field: "shard_end",
                ..
            }
        ));
    }

    #[test]
    fn exhausted_session_start_limit_is_refused_unless_shards_resume() {
        let err = ShardPlan::new(&config(""), &bot(4, 2, 1), None).unwrap_err();
        assert!(err.to_string().contains("4 shards must IDENTIFY"));
        assert!(ShardPlan::new(&config(""), &bot(4, 2, 1), Some(2)).is_ok());
    }

    #[test]
    fn malformed_gateway_bot_bodies_are_errors() {
        assert!(GatewayBot::parse(b"{}").is_err());
        assert!(GatewayBot::parse(b"not json").is_err());
        assert!(GatewayBot::parse(
            br#"{"url":"x","shards":0,"session_start_limit":{"total":1,"remaining":1,"reset_after":0}}"#
        )
        .is_err());
        let bot = GatewayBot::parse(
            br#"{"url":"x","shards":1,"session_start_limit":{"total":1,"remaining":1,"reset_after":0}}"#,
        )
        .unwrap();
        assert_eq!(bot.session_start_limit.max_concurrency, 1);
    }
}
