//! The fixture's per-user `upstream_token`s: real Discord credentials `serve --listen` sends
//! upstream for those users. Read from the fixture file at start and kept in memory only.
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use super::fixture::Fixture;
use super::FixtureError;

/// Upstream tokens by local user id (a snowflake, as text). Never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct UpstreamTokens(pub(crate) HashMap<String, String>);

impl fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UpstreamTokens({} users, <redacted>)", self.0.len())
    }
}

/// The `upstream_token` of every fixture user that has one.
pub(crate) fn fixture_upstream_tokens(path: &Path) -> Result<UpstreamTokens, FixtureError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| FixtureError::Read {
        path: file.clone(),
        source,
    })?;
    upstream_tokens_of(&bytes, &file)
}

fn upstream_tokens_of(bytes: &[u8], file: &str) -> Result<UpstreamTokens, FixtureError> {
    let fixture: Fixture = serde_json::from_slice(bytes).map_err(|err| FixtureError::Invalid {
        file: file.to_string(),
        path: "$".into(),
        reason: err.to_string(),
    })?;
    let mut tokens = HashMap::new();
    for (index, user) in fixture.users.iter().enumerate() {
        let Some(token) = &user.upstream_token else {
            continue;
        };
        let start = token.trim_start();
        let bare = start.strip_prefix("Bot ").unwrap_or(start).trim_end();
        if bare.is_empty() || !bare.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FixtureError::Invalid {
                file: file.to_string(),
                path: format!("$.users[{index}].upstream_token"),
                reason: "must be a real Discord token: non-empty visible ASCII (`Bot <token>` for a bot)".into(),
            });
        }
        tokens.insert(user.id.to_string(), token.trim().to_string());
    }
    Ok(UpstreamTokens(tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_per_user_checked_and_never_printed() {
        let json = br#"{"users": [
            {"id": "1", "username": "a", "upstream_token": "real-secret"},
            {"id": "2", "username": "b"}
        ]}"#;
        let tokens = upstream_tokens_of(json, "f.json").unwrap();
        assert_eq!(tokens.0.get("1").map(String::as_str), Some("real-secret"));
        assert_eq!(tokens.0.len(), 1);
        assert!(!format!("{tokens:?}").contains("real-secret"));
        let bad = br#"{"users": [{"id": "1", "username": "a", "upstream_token": " "}]}"#;
        let err = upstream_tokens_of(bad, "f.json").unwrap_err().to_string();
        assert!(err.contains("$.users[0].upstream_token"), "{err}");
    }
}
