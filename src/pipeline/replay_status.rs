//! Which recorded statuses `serve` replays (`--replay-status`): 2xx and 304 always; the flag
//! adds more. A recorded 401 or 429 is an answer to someone else's request at another moment,
//! not the route's answer, so errors are only replayed when asked for.
use std::fmt;
use std::str::FromStr;

/// The statuses replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayStatus {
    items: Vec<StatusItem>,
}

/// One item of a `--replay-status` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusItem {
    /// Every status.
    All,
    /// A class: 1 for 1xx … 5 for 5xx.
    Class(u16),
    /// One status.
    Exact(u16),
}

impl Default for ReplayStatus {
    /// 2xx and 304.
    fn default() -> Self {
        ReplayStatus {
            items: vec![StatusItem::Class(2), StatusItem::Exact(304)],
        }
    }
}

impl ReplayStatus {
    /// Whether a recording answered with `status` is replayed.
    pub fn allows(&self, status: u16) -> bool {
        self.items.iter().any(|item| match item {
            StatusItem::All => true,
            StatusItem::Class(class) => status / 100 == *class,
            StatusItem::Exact(exact) => status == *exact,
        })
    }

    /// The default widened by `more` (items already there are not repeated).
    pub fn widened(mut self, more: &ReplayStatus) -> ReplayStatus {
        for item in &more.items {
            if !self.items.contains(item) {
                self.items.push(*item);
            }
        }
        self
    }
}

impl fmt::Display for ReplayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .items
            .iter()
            .map(|item| match item {
                StatusItem::All => "all".to_string(),
                StatusItem::Class(class) => format!("{class}xx"),
                StatusItem::Exact(status) => status.to_string(),
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

/// A `--replay-status` value that is not a list of statuses.
#[derive(Debug, thiserror::Error)]
#[error("invalid --replay-status item {item:?} in {text:?}: expected a status (401), a class (4xx, 1xx to 5xx) or `all`, separated by commas")]
pub struct ReplayStatusError {
    item: String,
    text: String,
}

impl FromStr for ReplayStatus {
    type Err = ReplayStatusError;

    /// `2xx,4xx`, `401`, `all`, … (only the listed statuses; see [`ReplayStatus::widened`]).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |item: &str| ReplayStatusError {
            item: item.to_string(),
            text: text.to_string(),
        };
        let mut items = Vec::new();
        for part in text.split(',').map(str::trim) {
            let lower = part.to_ascii_lowercase();
            let item = if lower == "all" {
                StatusItem::All
            } else if let Some(class) = lower.strip_suffix("xx") {
                match class.parse::<u16>() {
                    Ok(class @ 1..=5) if lower.len() == 3 => StatusItem::Class(class),
                    _ => return Err(error(part)),
                }
            } else {
                match lower.parse::<u16>() {
                    Ok(status @ 100..=599) if lower.len() == 3 => StatusItem::Exact(status),
                    _ => return Err(error(part)),
                }
            };
            items.push(item);
        }
        Ok(ReplayStatus { items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_replays_successes_and_not_modified_only() {
        let default = ReplayStatus::default();
        for status in [200, 201, 204, 299, 304] {
            assert!(default.allows(status), "{status}");
        }
        for status in [101, 301, 400, 401, 404, 429, 500, 503] {
            assert!(!default.allows(status), "{status}");
        }
        assert_eq!(default.to_string(), "2xx,304");
    }

    #[test]
    fn lists_of_classes_statuses_and_all_widen_the_default() {
        let parse = |text: &str| ReplayStatus::default().widened(&text.parse().unwrap());
        let four = parse("4xx");
        assert!(four.allows(401) && four.allows(200) && !four.allows(500));
        let one = parse(" 401 ");
        assert!(one.allows(401) && !one.allows(403));
        let all = parse("ALL");
        assert!(all.allows(503) && all.allows(101));
        assert_eq!(parse("2xx,429,5xx").to_string(), "2xx,304,429,5xx");
    }

    #[test]
    fn anything_else_is_refused_in_words() {
        for bad in [
            "", "4x", "6xx", "0xx", "40", "4011", "600", "099", "x", "4xx,", "2xx;4xx",
        ] {
            let err = bad.parse::<ReplayStatus>().unwrap_err().to_string();
            assert!(err.contains("expected a status (401)"), "{bad}: {err}");
        }
    }
}
