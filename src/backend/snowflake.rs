//! Snowflake ids: Discord's 64-bit time-ordered ids, strings on the wire, `u64` in Rust.
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds between the Unix epoch and Discord's epoch (2015-01-01T00:00:00Z).
pub(crate) const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A Discord id: serialized as a numeric string, accepted as a string or a number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Snowflake(pub u64);

impl Snowflake {
    /// Milliseconds since the Unix epoch encoded in the id.
    pub fn timestamp_ms(self) -> u64 {
        (self.0 >> 22) + DISCORD_EPOCH_MS
    }

    /// The id's creation time as Discord's ISO 8601 timestamp.
    pub fn iso8601(self) -> String {
        iso8601_from_ms(self.timestamp_ms())
    }

    /// The smallest id that could have been created at `unix_ms`.
    pub fn from_timestamp_ms(unix_ms: u64) -> Self {
        Snowflake(unix_ms.saturating_sub(DISCORD_EPOCH_MS) << 22)
    }

    /// Parses a decimal id, as found in paths and bodies.
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Snowflake)
    }
}

impl fmt::Debug for Snowflake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Snowflake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for Snowflake {
    fn from(value: u64) -> Self {
        Snowflake(value)
    }
}

impl schemars::JsonSchema for Snowflake {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Snowflake".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A Discord id: a string of up to 20 digits, as Discord sends it, or a non-negative integer.",
            "anyOf": [
                {"type": "string", "pattern": "^[0-9]{1,20}$"},
                {"type": "integer", "minimum": 0}
            ]
        })
    }
}

impl Serialize for Snowflake {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Snowflake {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Snowflake;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a snowflake (a numeric string)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Snowflake, E> {
                Ok(Snowflake(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Snowflake, E> {
                u64::try_from(v)
                    .map(Snowflake)
                    .map_err(|_| E::custom(format!("Value \"{v}\" is not snowflake.")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Snowflake, E> {
                Snowflake::parse(v)
                    .ok_or_else(|| E::custom(format!("Value \"{v}\" is not snowflake.")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Hands out strictly increasing snowflakes with Discord's epoch, safe across threads.
#[derive(Debug)]
pub struct SnowflakeGenerator {
    last: AtomicU64,
    worker: u64,
}

impl SnowflakeGenerator {
    /// A generator whose ids are all greater than `floor` (the largest id already stored).
    pub fn new(worker: u8, floor: u64) -> Self {
        SnowflakeGenerator {
            last: AtomicU64::new(floor),
            worker: u64::from(worker & 0x1f),
        }
    }

    /// The last id handed out (or the floor).
    pub(crate) fn position(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// Rewinds (or moves) the generator to `position` (a reset of the world in deterministic
    /// mode hands out the same ids again).
    pub(crate) fn rewind(&self, position: u64) {
        self.last.store(position, Ordering::Release);
    }

    /// The next id: the current time in the top bits, never equal to or below a previous id.
    pub fn next(&self) -> Snowflake {
        let candidate = (now_ms().saturating_sub(DISCORD_EPOCH_MS) << 22) | (self.worker << 17);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Snowflake(next),
                Err(seen) => last = seen,
            }
        }
    }
}

/// Milliseconds since the Unix epoch now, on the backend's controllable clock
/// ([`super::clock`]: the system clock unless the test-control API moved or froze it).
pub(crate) fn now_ms() -> u64 {
    super::clock::now_ms()
}

/// Discord's timestamp format (`2015-04-26T06:26:56.936000+00:00`) for a Unix time in ms.
pub(crate) fn iso8601_from_ms(unix_ms: u64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000000+00:00".to_string())
}

/// Parses an ISO 8601 / RFC 3339 timestamp into Unix ms.
pub(crate) fn parse_iso8601_ms(text: &str) -> Option<u64> {
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_strictly_increasing_and_carry_the_time() {
        let generator = SnowflakeGenerator::new(1, 0);
        let before = now_ms();
        let mut last = Snowflake(0);
        for _ in 0..10_000 {
            let id = generator.next();
            assert!(id > last);
            last = id;
        }
        assert!(last.timestamp_ms() >= before);
        assert!(last.timestamp_ms() <= now_ms() + 10_000 / 4096 + 1);
    }

    #[test]
    fn a_floor_in_the_future_is_respected() {
        let floor = (now_ms() - DISCORD_EPOCH_MS + 60_000) << 22;
        let generator = SnowflakeGenerator::new(0, floor);
        assert_eq!(generator.next().0, floor + 1);
    }

    #[test]
    fn known_discord_id_decodes_to_its_documented_time() {
        // The example id in Discord's reference docs.
        let id = Snowflake(175928847299117063);
        assert_eq!(id.timestamp_ms(), 1_462_015_105_796);
        assert_eq!(id.iso8601(), "2016-04-30T11:18:25.796000+00:00");
    }

    #[test]
    fn serde_is_string_out_and_string_or_number_in() {
        assert_eq!(serde_json::to_string(&Snowflake(42)).unwrap(), "\"42\"");
        let parsed: Snowflake = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(parsed, Snowflake(42));
        let parsed: Snowflake = serde_json::from_str("42").unwrap();
        assert_eq!(parsed, Snowflake(42));
        assert!(serde_json::from_str::<Snowflake>("\"4x2\"").is_err());
        assert!(serde_json::from_str::<Snowflake>("-1").is_err());
    }

    #[test]
    fn timestamps_round_trip() {
        let ms = 1_700_000_000_123;
        assert_eq!(parse_iso8601_ms(&iso8601_from_ms(ms)), Some(ms));
    }
}
