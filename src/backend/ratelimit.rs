//! Discord-style rate limits: per-route buckets (keyed by the caller, the route template and its
//! major parameter) plus an optional global limit per caller. Every answer carries the
//! X-RateLimit-* headers; an exhausted bucket answers 429 with `retry_after`, `global` and `Via`.
use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use parking_lot::Mutex;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::json_response;
use super::snowflake::now_ms;

/// `LIMIT/SECONDS`, e.g. `5/5` (five requests per five seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub requests: u32,
    pub window: Duration,
}

impl FromStr for Limit {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (requests, seconds) = text
            .split_once('/')
            .ok_or_else(|| format!("expected LIMIT/SECONDS (like 50/1), got {text:?}"))?;
        let requests: u32 = requests
            .trim()
            .parse()
            .map_err(|_| format!("{requests:?} is not a request count"))?;
        let seconds: f64 = seconds
            .trim()
            .parse()
            .map_err(|_| format!("{seconds:?} is not a number of seconds"))?;
        if requests == 0 || !(seconds > 0.0 && seconds <= 86_400.0) {
            return Err("the limit must be at least 1 request per 0..86400 seconds".into());
        }
        Ok(Limit {
            requests,
            window: Duration::from_secs_f64(seconds),
        })
    }
}

/// Which limits apply; `None` switches that limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitConfig {
    pub per_route: Option<Limit>,
    pub global: Option<Limit>,
}

impl RateLimitConfig {
    /// No limits and no headers.
    pub fn off() -> Self {
        RateLimitConfig {
            per_route: None,
            global: None,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    remaining: u32,
    resets_at: Instant,
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub global: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_after: Duration,
    pub bucket: String,
}

/// Shared bucket table.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    buckets: Mutex<HashMap<(u64, String), Bucket>>,
    globals: Mutex<HashMap<u64, Bucket>>,
}

impl RateLimiter {
    /// A limiter with `config`.
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimiter {
            config,
            buckets: Mutex::new(HashMap::new()),
            globals: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets every bucket (a reset of the world).
    pub fn clear(&self) {
        self.buckets.lock().clear();
        self.globals.lock().clear();
    }

    /// Whether any limit is on.
    pub fn enabled(&self) -> bool {
        self.config.per_route.is_some() || self.config.global.is_some()
    }

    /// Takes one request from the caller's global bucket and the route bucket.
    pub fn check(&self, caller: u64, bucket: &str, major: &str, now: Instant) -> Option<Decision> {
        if let Some(limit) = self.config.global {
            let mut globals = self.globals.lock();
            let state = globals.entry(caller).or_insert(Bucket {
                remaining: limit.requests,
                resets_at: now + limit.window,
            });
            refill(state, limit, now);
            if state.remaining == 0 {
                return Some(Decision {
                    allowed: false,
                    global: true,
                    limit: limit.requests,
                    remaining: 0,
                    reset_after: state.resets_at.saturating_duration_since(now),
                    bucket: bucket.to_string(),
                });
            }
            state.remaining -= 1;
            if globals.len() > 100_000 {
                globals.retain(|_, b| b.resets_at > now);
            }
        }
        let limit = self.config.per_route?;
        let mut buckets = self.buckets.lock();
        let state = buckets
            .entry((caller, format!("{bucket}:{major}")))
            .or_insert(Bucket {
                remaining: limit.requests,
                resets_at: now + limit.window,
            });
        refill(state, limit, now);
        let allowed = state.remaining > 0;
        if allowed {
            state.remaining -= 1;
        }
        let decision = Decision {
            allowed,
            global: false,
            limit: limit.requests,
            remaining: state.remaining,
            reset_after: state.resets_at.saturating_duration_since(now),
            bucket: bucket.to_string(),
        };
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| b.resets_at > now);
        }
        Some(decision)
    }
}

fn refill(bucket: &mut Bucket, limit: Limit, now: Instant) {
    if now >= bucket.resets_at {
        bucket.remaining = limit.requests;
        bucket.resets_at = now + limit.window;
    }
}

/// A stable opaque bucket id for a route template (Discord's are opaque hashes too).
pub(crate) fn bucket_hash(method: &str, template: &str) -> String {
    let digest = Sha256::digest(format!("{method} {template}").as_bytes());
    hex::encode(&digest[..8])
}

fn caller_key(headers: &HeaderMap) -> u64 {
    let mut hasher = Sha256::new();
    match headers.get(axum::http::header::AUTHORIZATION) {
        Some(value) => hasher.update(value.as_bytes()),
        None => hasher.update(b"anonymous"),
    }
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

/// The route's major parameter (channel, guild or webhook id), which splits buckets.
/// Segments are aligned from the end: inside a nested router the path has lost its prefix.
fn major_parameter(template: &str, path: &str) -> String {
    let mut major = String::new();
    for (pattern, actual) in template.rsplit('/').zip(path.rsplit('/')) {
        if matches!(pattern, "{channel_id}" | "{guild_id}" | "{webhook_id}") {
            major = actual.to_string();
        }
    }
    major
}

impl RateLimiter {
    /// The decision for one request: `template` is the matched route, `path` the request's
    /// path (`None` when no limit applies to it).
    pub fn check_request(
        &self,
        method: &str,
        template: &str,
        path: &str,
        headers: &HeaderMap,
        now: Instant,
    ) -> Option<Decision> {
        let caller = caller_key(headers);
        let major = major_parameter(template, path);
        let bucket = bucket_hash(method, template);
        self.check(caller, &bucket, &major, now)
    }
}

/// The 429 answer for a refused request (its `x-ratelimit-*` headers come from [`stamp`]).
pub(crate) fn too_many_requests(decision: &Decision) -> Response {
    let retry_after = (decision.reset_after.as_secs_f64() * 1000.0).ceil() / 1000.0;
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": decision.global,
        }),
    );
    let headers = response.headers_mut();
    headers.insert("via", HeaderValue::from_static("1.1 google"));
    insert_number(headers, "retry-after", retry_after.ceil().max(1.0));
    if decision.global {
        headers.insert("x-ratelimit-global", HeaderValue::from_static("true"));
    }
    response
}

/// Adds the `x-ratelimit-*` headers of `decision` to an answer.
pub(crate) fn stamp(headers: &mut HeaderMap, decision: Decision) {
    insert_number(headers, "x-ratelimit-limit", f64::from(decision.limit));
    insert_number(
        headers,
        "x-ratelimit-remaining",
        f64::from(decision.remaining),
    );
    let reset_after = decision.reset_after.as_secs_f64();
    let reset_at = now_ms() as f64 / 1000.0 + reset_after;
    insert_text(headers, "x-ratelimit-reset", format!("{reset_at:.3}"));
    insert_text(
        headers,
        "x-ratelimit-reset-after",
        format!("{reset_after:.3}"),
    );
    insert_text(headers, "x-ratelimit-bucket", decision.bucket);
    headers.insert(
        "x-ratelimit-scope",
        HeaderValue::from_static(if decision.global { "global" } else { "user" }),
    );
}

fn insert_number(headers: &mut HeaderMap, name: &'static str, value: f64) {
    insert_text(headers, name, format!("{value}"));
}

fn insert_text(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_reject_nonsense() {
        assert_eq!(
            "5/2".parse::<Limit>().unwrap(),
            Limit {
                requests: 5,
                window: Duration::from_secs(2)
            }
        );
        assert!("0/1".parse::<Limit>().is_err());
        assert!("5".parse::<Limit>().is_err());
        assert!("5/-1".parse::<Limit>().is_err());
    }

    #[test]
    fn a_bucket_empties_then_refills_after_its_window() {
        let limiter = RateLimiter::new(RateLimitConfig {
            per_route: Some(Limit {
                requests: 2,
                window: Duration::from_secs(1),
            }),
            global: None,
        });
        let start = Instant::now();
        let first = limiter.check(1, "b", "10", start).unwrap();
        assert!(first.allowed);
        assert_eq!(first.remaining, 1);
        assert!(limiter.check(1, "b", "10", start).unwrap().allowed);
        let third = limiter.check(1, "b", "10", start).unwrap();
        assert!(!third.allowed);
        assert!(!third.global);
        // Another channel (major parameter) and another caller have their own buckets.
        assert!(limiter.check(1, "b", "11", start).unwrap().allowed);
        assert!(limiter.check(2, "b", "10", start).unwrap().allowed);
        let later = start + Duration::from_millis(1001);
        assert!(limiter.check(1, "b", "10", later).unwrap().allowed);
    }

    #[test]
    fn the_global_limit_spans_routes() {
        let limiter = RateLimiter::new(RateLimitConfig {
            per_route: None,
            global: Some(Limit {
                requests: 1,
                window: Duration::from_secs(1),
            }),
        });
        let now = Instant::now();
        assert!(limiter.check(1, "a", "", now).is_none());
        let second = limiter.check(1, "b", "", now).unwrap();
        assert!(!second.allowed && second.global);
    }

    #[test]
    fn major_parameters_come_from_the_template() {
        assert_eq!(
            major_parameter(
                "/api/v10/channels/{channel_id}/messages",
                "/api/v10/channels/42/messages"
            ),
            "42"
        );
        assert_eq!(major_parameter("/api/users/@me", "/api/users/@me"), "");
        assert_eq!(
            major_parameter(
                "/api/v9/guilds/{guild_id}/channels/{channel_id}",
                "/guilds/1/channels/2"
            ),
            "1"
        );
    }
}
