//! `--filter EXPR` for exports: space-separated conditions that must all hold, each
//! `FIELD OP VALUE` with OP one of `=`, `!=`, `~` (contains), `!~`, `>`, `>=`, `<`, `<=`.
//! Fields: method, host, path, url, route, status, source, kind (rest|ws), id.
//! A bare word means `url~WORD`. Example: `host~discord.com status>=400 kind=rest`.
use super::records::{Exchange, GatewaySession};
use super::route::route_template;

/// A parsed filter; the empty filter matches everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
struct Condition {
    field: Field,
    op: Op,
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Method,
    Host,
    Path,
    Url,
    Route,
    Status,
    Source,
    Kind,
    Id,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Contains,
    NotContains,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A filter expression that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("bad filter `{term}`: {reason}")]
pub struct FilterError {
    term: String,
    reason: String,
}

impl Filter {
    /// Parses an expression.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        let mut conditions = Vec::new();
        for term in expr.split_whitespace() {
            let bad = |reason: &str| FilterError {
                term: term.to_string(),
                reason: reason.to_string(),
            };
            let ops = [
                ("!=", Op::Ne),
                ("!~", Op::NotContains),
                (">=", Op::Ge),
                ("<=", Op::Le),
                ("=", Op::Eq),
                ("~", Op::Contains),
                (">", Op::Gt),
                ("<", Op::Lt),
            ];
            let found = ops
                .iter()
                .filter_map(|(text, op)| term.find(text).map(|at| (at, *text, *op)))
                .min_by_key(|(at, text, _)| (*at, std::cmp::Reverse(text.len())));
            let Some((at, text, op)) = found else {
                conditions.push(Condition {
                    field: Field::Url,
                    op: Op::Contains,
                    value: term.to_string(),
                });
                continue;
            };
            let field =
                match term[..at].to_ascii_lowercase().as_str() {
                    "method" => Field::Method,
                    "host" => Field::Host,
                    "path" => Field::Path,
                    "url" => Field::Url,
                    "route" => Field::Route,
                    "status" => Field::Status,
                    "source" => Field::Source,
                    "kind" => Field::Kind,
                    "id" => Field::Id,
                    _ => return Err(bad(
                        "unknown field (method, host, path, url, route, status, source, kind, id)",
                    )),
                };
            let value = term[at + text.len()..].to_string();
            let numeric = matches!(field, Field::Status | Field::Id);
            if matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le) && !numeric {
                return Err(bad("<, <=, >, >= only work on status and id"));
            }
            if numeric && matches!(op, Op::Contains | Op::NotContains) {
                return Err(bad("~ does not work on numbers"));
            }
            if numeric && value.parse::<u64>().is_err() {
                return Err(bad("expected a number"));
            }
            conditions.push(Condition { field, op, value });
        }
        Ok(Filter { conditions })
    }

    /// Whether a REST exchange passes.
    pub fn matches_exchange(&self, exchange: &Exchange) -> bool {
        self.conditions.iter().all(|c| {
            let text = match c.field {
                Field::Method => exchange.method.clone(),
                Field::Host => exchange.host.clone(),
                Field::Path => exchange.path().to_string(),
                Field::Url => exchange.url(),
                Field::Route => route_template(exchange.path()),
                Field::Source => exchange.source.clone(),
                Field::Kind => "rest".into(),
                Field::Status => return c.number(exchange.status().map(u64::from)),
                Field::Id => return c.number(Some(exchange.id)),
            };
            c.text(&text)
        })
    }

    /// Whether a gateway session passes (status is its handshake status, method GET).
    pub fn matches_session(&self, session: &GatewaySession) -> bool {
        let path = session
            .url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("/");
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        self.conditions.iter().all(|c| {
            let text = match c.field {
                Field::Method => "GET".to_string(),
                Field::Host => session.host.clone(),
                Field::Path => path.to_string(),
                Field::Url => session.url.clone(),
                Field::Route => route_template(path),
                Field::Source => "upstream".into(),
                Field::Kind => "ws".into(),
                Field::Status => return c.number(session.status.map(u64::from)),
                Field::Id => return c.number(Some(session.id)),
            };
            c.text(&text)
        })
    }
}

impl Condition {
    fn text(&self, have: &str) -> bool {
        let have = have.to_ascii_lowercase();
        let want = self.value.to_ascii_lowercase();
        match self.op {
            Op::Eq => have == want,
            Op::Ne => have != want,
            Op::Contains => have.contains(&want),
            Op::NotContains => !have.contains(&want),
            _ => false,
        }
    }

    fn number(&self, have: Option<u64>) -> bool {
        let (Some(have), Ok(want)) = (have, self.value.parse::<u64>()) else {
            return self.op == Op::Ne;
        };
        match self.op {
            Op::Eq => have == want,
            Op::Ne => have != want,
            Op::Gt => have > want,
            Op::Ge => have >= want,
            Op::Lt => have < want,
            Op::Le => have <= want,
            Op::Contains | Op::NotContains => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(method: &str, path: &str, status: u16) -> Exchange {
        let mut e = crate::store::tests::sample_exchange(path);
        e.method = method.into();
        if let Some(res) = e.response.as_mut() {
            res.status = status;
        }
        e
    }

    #[test]
    fn conditions_combine() {
        let f = Filter::parse("host~discord method=post status>=400").unwrap();
        assert!(f.matches_exchange(&exchange("POST", "/api/v9/x", 429)));
        assert!(!f.matches_exchange(&exchange("POST", "/api/v9/x", 200)));
        assert!(!f.matches_exchange(&exchange("GET", "/api/v9/x", 500)));
        let route =
            Filter::parse("route=/api/v9/channels/{channel_id}/messages kind=rest").unwrap();
        assert!(route.matches_exchange(&exchange(
            "GET",
            "/api/v9/channels/123/messages?limit=1",
            200
        )));
        assert!(Filter::parse("")
            .unwrap()
            .matches_exchange(&exchange("GET", "/", 200)));
        assert!(Filter::parse("users/@me")
            .unwrap()
            .matches_exchange(&exchange("GET", "/api/v9/users/@me", 200)));
    }

    #[test]
    fn bad_filters_say_why() {
        for (expr, why) in [
            ("colour=red", "unknown field"),
            ("host>3", "only work on"),
            ("status=abc", "number"),
            ("status~4", "numbers"),
        ] {
            let err = Filter::parse(expr).unwrap_err().to_string();
            assert!(err.contains(why), "{expr}: {err}");
        }
    }
}
