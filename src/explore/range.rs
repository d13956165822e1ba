//! `--since/--until`: a time range of a recording, given as RFC 3339 date-times or as µs since
//! the epoch.
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A half-open time range `[since, until)` in µs since the epoch; unbounded sides are `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// First instant included.
    pub since_us: Option<i64>,
    /// First instant excluded.
    pub until_us: Option<i64>,
}

/// A `--since`/`--until` value that is neither a date-time nor a number.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a time: give an RFC 3339 date-time (2026-12-06T14:00:00Z) or microseconds since the epoch")]
pub struct BadTime(String);

impl TimeRange {
    /// Parses the two optional bounds.
    pub fn parse(since: Option<&str>, until: Option<&str>) -> Result<TimeRange, BadTime> {
        Ok(TimeRange {
            since_us: since.map(parse_time).transpose()?,
            until_us: until.map(parse_time).transpose()?,
        })
    }

    /// Whether `at_us` lies in the range.
    pub fn contains(&self, at_us: i64) -> bool {
        self.since_us.is_none_or(|since| at_us >= since)
            && self.until_us.is_none_or(|until| at_us < until)
    }

    /// Whether the range is unbounded on both sides.
    pub fn is_all(&self) -> bool {
        self.since_us.is_none() && self.until_us.is_none()
    }
}

fn parse_time(text: &str) -> Result<i64, BadTime> {
    let text = text.trim();
    if let Ok(us) = text.parse::<i64>() {
        return Ok(us);
    }
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| BadTime(text.to_string()))?;
    i64::try_from(at.unix_timestamp_nanos() / 1000).map_err(|_| BadTime(text.to_string()))
}

/// µs since the epoch as RFC 3339 (empty if out of range).
pub fn rfc3339(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_and_contain() {
        let range =
            TimeRange::parse(Some("2026-12-06T14:00:00Z"), Some("1796565600000001")).unwrap();
        assert_eq!(range.since_us, Some(1_796_565_600_000_000));
        assert!(range.contains(1_796_565_600_000_000));
        assert!(!range.contains(1_796_565_600_000_001));
        assert!(!range.contains(1));
        assert!(TimeRange::default().is_all());
        assert!(TimeRange::parse(Some("yesterday"), None)
            .unwrap_err()
            .to_string()
            .contains("RFC 3339"));
        assert_eq!(rfc3339(1_796_565_600_000_000), "2026-12-06T14:00:00Z");
    }
}
