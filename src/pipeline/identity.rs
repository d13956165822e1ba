//! `serve`'s identity rules: whoever answers (backend, a recording, real Discord), the caller
//! sees one self.
//!
//! - **Forwarding.** A token `serve` issued never goes upstream. A forwarded request's
//!   `Authorization` becomes the caller's upstream token (the fixture's `upstream_token` for
//!   that user, else `--upstream-token`), or is dropped (logged once per route). The real
//!   account's user id (read from upstream's `/users/@me` for that token, cached) and the
//!   caller's local id are swapped both ways: local → real in the forwarded path and JSON
//!   body, real → local in the JSON answer. A relayed gateway IDENTIFY or RESUME gets the
//!   upstream token the same way, and the session's messages get the same id swap
//!   ([`super::gateway_identity`]), which also learns the real id from READY.
//! - **Replay.** The recorded account's id ([`crate::store::Store::recorded_account`])
//!   becomes the caller's id in replayed JSON bodies.
//!
//! Every change is listed as a [`Rewrite`] in the exchange's recording; ids only, never tokens.
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::gateway::etf;
use crate::store::Rewrite;

/// Rewrite kind: the forwarded request's `Authorization` was replaced or dropped.
pub const AUTHORIZATION: &str = "authorization";
/// Rewrite kind: the local user's id became the real account's in the forwarded request.
pub const REQUEST_ID: &str = "request-id";
/// Rewrite kind: the real account's id became the local user's in the forwarded answer.
pub const RESPONSE_ID: &str = "response-id";
/// Rewrite kind: the recorded account's id became the caller's in a replayed body.
pub const REPLAY_ID: &str = "replay-id";
/// Rewrite kind: a recorded path id became the asked one in a replayed body (template match).
pub const TEMPLATE_ID: &str = "template-id";
/// What a dropped credential is rewritten to.
pub const NO_CREDENTIAL: &str = "none";
/// What a replaced credential is rewritten to (the token itself is never written down).
pub const UPSTREAM_CREDENTIAL: &str = "upstream token";

/// A user of `serve`'s own world, as a token it issued names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCaller {
    /// The user's id (a snowflake, as text).
    pub id: String,
    /// Whether it is a bot.
    pub bot: bool,
}

/// Finds the local user a token `serve` issued belongs to (the token as an `Authorization`
/// value: `Bot …` for bots, bare for users); `None` for tokens it did not issue.
pub type CallerLookup = Arc<dyn Fn(&str) -> Option<LocalCaller> + Send + Sync>;

/// A real Discord credential: sent upstream, never logged, printed or recorded.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamToken(String);

/// An upstream token that cannot be sent as a header.
#[derive(Debug, thiserror::Error)]
#[error("an upstream token must be non-empty visible ASCII (`Bot <token>` for a bot, the bare token for a user account)")]
pub struct UpstreamTokenError;

impl UpstreamToken {
    /// Checks `text` can go in an `Authorization` header.
    pub fn new(text: &str) -> Result<UpstreamToken, UpstreamTokenError> {
        let text = text.trim_start();
        let bare = text
            .strip_prefix("Bot ")
            .or_else(|| text.strip_prefix("Bearer "))
            .unwrap_or(text)
            .trim_end();
        if bare.is_empty() || !bare.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UpstreamTokenError);
        }
        Ok(UpstreamToken(text.trim_end().to_string()))
    }

    /// The `Authorization` value: as given when it names its scheme (`Bot …`, `Bearer …`),
    /// else with the scheme the caller used (`Bot ` when the caller is a bot).
    fn header_value(&self, caller_is_bot: bool) -> String {
        if self.0.starts_with("Bot ") || self.0.starts_with("Bearer ") || !caller_is_bot {
            self.0.clone()
        } else {
            format!("Bot {}", self.0)
        }
    }

    /// The token as a gateway IDENTIFY carries it (no `Bot ` prefix).
    fn gateway_value(&self) -> &str {
        self.0.strip_prefix("Bot ").unwrap_or(&self.0)
    }
}

impl fmt::Debug for UpstreamToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpstreamToken(<redacted>)")
    }
}

/// A relayed IDENTIFY or RESUME after the identity rules: what goes upstream and as whom.
pub struct GatewayCredential {
    /// The message to send upstream (the upstream token in place of the client's).
    pub bytes: Vec<u8>,
    /// The [`AUTHORIZATION`] rewrite it made.
    pub rewrite: Rewrite,
    /// The local user the client's token belongs to, if `serve` issued it.
    pub caller: Option<LocalCaller>,
    /// The `Authorization` value REST would send for the upstream token (the key of the
    /// real-id cache, see [`Identity::known_real_id`]); `None` when there is no upstream token.
    pub upstream_key: Option<String>,
}

impl fmt::Debug for GatewayCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayCredential")
            .field("rewrite", &self.rewrite)
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

/// Which upstream credentials `serve` has.
#[derive(Debug, Clone, Default)]
pub struct IdentityConfig {
    /// `--upstream-token`: for every caller without one of their own.
    pub upstream_token: Option<UpstreamToken>,
    /// The fixture's `upstream_token` per local user id.
    pub per_user: HashMap<String, UpstreamToken>,
}

/// What a forwarded request's credential becomes.
#[derive(Debug, Clone)]
pub struct ForwardedCredential {
    /// The local user the request's token belongs to, if `serve` issued it.
    pub caller: Option<LocalCaller>,
    /// The `Authorization` value to send, if there is an upstream token for this caller.
    pub value: Option<String>,
}

/// The identity rules of one `serve`: its callers, their upstream tokens, the real ids seen.
pub struct Identity {
    lookup: CallerLookup,
    config: IdentityConfig,
    /// Real account ids by the `Authorization` value sent upstream (`None`: could not be read).
    real_ids: Mutex<HashMap<String, Option<String>>>,
    /// Route templates already logged as forwarded without credentials.
    unauthenticated: Mutex<HashSet<String>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Rules for callers found by `lookup`, with these upstream credentials.
    pub fn new(lookup: CallerLookup, config: IdentityConfig) -> Identity {
        Identity {
            lookup,
            config,
            real_ids: Mutex::new(HashMap::new()),
            unauthenticated: Mutex::new(HashSet::new()),
        }
    }

    /// The local user behind an `Authorization` value, if `serve` issued it.
    pub fn caller(&self, authorization: &str) -> Option<LocalCaller> {
        (self.lookup)(authorization.trim())
    }

    /// What a request that carried `authorization` sends upstream instead.
    pub fn forward(&self, authorization: &str) -> ForwardedCredential {
        let caller = self.caller(authorization);
        let token = caller
            .as_ref()
            .and_then(|c| self.config.per_user.get(&c.id))
            .or(self.config.upstream_token.as_ref());
        let caller_is_bot = caller
            .as_ref()
            .map_or(authorization.trim_start().starts_with("Bot "), |c| c.bot);
        ForwardedCredential {
            value: token.map(|t| t.header_value(caller_is_bot)),
            caller,
        }
    }

    /// True the first time a request for `template` goes upstream without credentials.
    pub fn first_unauthenticated(&self, template: &str) -> bool {
        self.unauthenticated
            .lock()
            .map(|mut seen| seen.insert(template.to_string()))
            .unwrap_or(false)
    }

    /// The real account id for the `Authorization` value `sent`: `None` when never asked,
    /// `Some(None)` when asking failed.
    pub fn known_real_id(&self, sent: &str) -> Option<Option<String>> {
        self.real_ids.lock().ok()?.get(sent).cloned()
    }

    /// Remembers the real account id behind `sent` (or that it could not be read).
    pub fn remember_real_id(&self, sent: &str, id: Option<String>) {
        if let Ok(mut ids) = self.real_ids.lock() {
            ids.insert(sent.to_string(), id);
        }
    }

    /// The upstream token a relayed IDENTIFY or RESUME carrying `client_token` should carry
    /// instead (`""` when there is none: upstream then refuses it, never sees ours).
    fn gateway_token(&self, client_token: &str) -> (Option<LocalCaller>, String) {
        let caller = self
            .caller(client_token)
            .or_else(|| self.caller(&format!("Bot {client_token}")));
        let token = caller
            .as_ref()
            .and_then(|c| self.config.per_user.get(&c.id))
            .or(self.config.upstream_token.as_ref())
            .map_or(String::new(), |t| t.gateway_value().to_string());
        (caller, token)
    }

    /// A client's gateway message with the token of an IDENTIFY (op 2) or RESUME (op 6)
    /// replaced (see [`Identity::gateway_token`]); `None` for every other message.
    pub fn rewrite_gateway_message(&self, data: &[u8], etf: bool) -> Option<(Vec<u8>, Rewrite)> {
        self.gateway_credential(data, etf)
            .map(|credential| (credential.bytes, credential.rewrite))
    }

    /// [`Identity::rewrite_gateway_message`] with who the session now speaks as.
    pub fn gateway_credential(&self, data: &[u8], etf: bool) -> Option<GatewayCredential> {
        let mut payload: Value = if etf {
            etf::decode(data, &etf::DecodeOptions::LENIENT).ok()?
        } else {
            serde_json::from_slice(data).ok()?
        };
        let op = payload.get("op").and_then(Value::as_u64)?;
        if op != 2 && op != 6 {
            return None;
        }
        let slot = payload.get_mut("d")?.get_mut("token")?;
        let (caller, token) = self.gateway_token(slot.as_str()?);
        let rewrite = credential_rewrite(caller.as_ref(), !token.is_empty());
        // The real-id cache is keyed by the `Authorization` value REST sends for this token.
        let upstream_key = (!token.is_empty()).then(|| {
            let bot = caller.as_ref().is_some_and(|c| c.bot);
            UpstreamToken(token.clone()).header_value(bot)
        });
        *slot = Value::String(token);
        let bytes = if etf {
            etf::encode(&payload).ok()?
        } else {
            serde_json::to_vec(&payload).ok()?
        };
        Some(GatewayCredential {
            bytes,
            rewrite,
            caller,
            upstream_key,
        })
    }

    /// The lines `serve`'s banner prints about these rules.
    pub fn banner_lines(&self) -> Vec<String> {
        let mut lines = vec!["  identity: tokens serve issued never go upstream;".to_string()];
        lines.push(match (&self.config.upstream_token, self.config.per_user.len()) {
            (Some(_), 0) => "            forwarded requests carry --upstream-token instead".into(),
            (Some(_), n) => format!("            forwarded requests carry the fixture's upstream_token ({n} of its users have one), else --upstream-token"),
            (None, 0) => "            no --upstream-token: forwarded requests go without Authorization".into(),
            (None, n) => format!("            forwarded requests carry the fixture's upstream_token ({n} of its users have one), else no Authorization"),
        });
        lines.push(
            "            the real account's id reads as yours in forwarded and replayed answers and relayed gateway sessions (rewrites are recorded)"
                .into(),
        );
        lines
    }
}

/// The [`AUTHORIZATION`] rewrite for a credential replaced (`sent`) or dropped.
pub fn credential_rewrite(caller: Option<&LocalCaller>, sent: bool) -> Rewrite {
    rewrite(
        AUTHORIZATION,
        caller.map_or("token not issued by serve", |c| c.id.as_str()),
        if sent {
            UPSTREAM_CREDENTIAL
        } else {
            NO_CREDENTIAL
        },
    )
}

/// A rewrite record.
pub fn rewrite(kind: &str, from: &str, to: &str) -> Rewrite {
    Rewrite {
        kind: kind.to_string(),
        from: from.to_string(),
        to: to.to_string(),
    }
}

/// `body` with every JSON string equal to a pair's first value replaced by its second, and
/// which pairs were found; `None` when it is not JSON or nothing was found.
pub fn swap_ids(body: &[u8], pairs: &[(String, String)]) -> Option<(Vec<u8>, Vec<bool>)> {
    if pairs.is_empty() {
        return None;
    }
    let mut value: Value = serde_json::from_slice(body).ok()?;
    let mut hits = vec![false; pairs.len()];
    fn walk(value: &mut Value, pairs: &[(String, String)], hits: &mut [bool]) {
        match value {
            Value::String(text) => {
                if let Some(index) = pairs.iter().position(|(from, _)| from == text) {
                    *text = pairs[index].1.clone();
                    hits[index] = true;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, pairs, hits)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, pairs, hits)),
            _ => {}
        }
    }
    walk(&mut value, pairs, &mut hits);
    if !hits.contains(&true) {
        return None;
    }
    Some((serde_json::to_vec(&value).ok()?, hits))
}

/// `path` with every segment equal to `from` replaced by `to`, if there was one.
pub fn swap_path_segments(path: &str, from: &str, to: &str) -> Option<String> {
    let mut found = false;
    let swapped: Vec<&str> = path
        .split('/')
        .map(|segment| {
            if segment == from {
                found = true;
                to
            } else {
                segment
            }
        })
        .collect();
    found.then(|| swapped.join("/"))
}

/// `query` with every parameter value equal to `from` replaced by `to`, if there was one.
pub fn swap_query_values(query: &str, from: &str, to: &str) -> Option<String> {
    let mut found = false;
    let swapped: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if value == from => {
                found = true;
                format!("{name}={to}")
            }
            _ => pair.to_string(),
        })
        .collect();
    found.then(|| swapped.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = "100000000000000001";
    const REAL: &str = "80351110224678912";

    fn identity(global: Option<&str>, per_user: &[(&str, &str)]) -> Identity {
        let lookup: CallerLookup = Arc::new(|auth: &str| match auth {
            "alice-token" => Some(LocalCaller {
                id: LOCAL.into(),
                bot: false,
            }),
            "Bot bot-token" => Some(LocalCaller {
                id: "100000000000000002".into(),
                bot: true,
            }),
            _ => None,
        });
        Identity::new(
            lookup,
            IdentityConfig {
                upstream_token: global.map(|t| UpstreamToken::new(t).unwrap()),
                per_user: per_user
                    .iter()
                    .map(|(id, t)| (id.to_string(), UpstreamToken::new(t).unwrap()))
                    .collect(),
            },
        )
    }

    #[test]
    fn credentials_are_replaced_per_user_then_globally_else_dropped() {
        let none = identity(None, &[]);
        let forwarded = none.forward("alice-token");
        assert_eq!(forwarded.caller.unwrap().id, LOCAL);
        assert_eq!(forwarded.value, None);
        let global = identity(Some("real-user-token"), &[]);
        assert_eq!(
            global.forward("alice-token").value.as_deref(),
            Some("real-user-token")
        );
        // A bot caller's token goes with the bot scheme; an explicit scheme is kept.
        assert_eq!(
            global.forward("Bot bot-token").value.as_deref(),
            Some("Bot real-user-token")
        );
        // Tokens serve did not issue are replaced too: nothing the client sent goes upstream.
        let unknown = global.forward("someone-else");
        assert!(unknown.caller.is_none());
        assert_eq!(unknown.value.as_deref(), Some("real-user-token"));
        let mixed = identity(Some("Bot global"), &[(LOCAL, "alice-real")]);
        assert_eq!(
            mixed.forward("alice-token").value.as_deref(),
            Some("alice-real")
        );
        assert_eq!(
            mixed.forward("Bot bot-token").value.as_deref(),
            Some("Bot global")
        );
        assert!(format!("{:?}", mixed).contains("<redacted>"));
        assert!(!format!("{:?}", mixed).contains("alice-real"));
        assert!(UpstreamToken::new("  ").is_err());
        assert!(UpstreamToken::new("Bot ").is_err());
        assert!(UpstreamToken::new("a\nb").is_err());
    }

    #[test]
    fn routes_are_reported_unauthenticated_once() {
        let none = identity(None, &[]);
        assert!(none.first_unauthenticated("/api/v9/a"));
        assert!(!none.first_unauthenticated("/api/v9/a"));
        assert!(none.first_unauthenticated("/api/v9/b"));
    }

    #[test]
    fn identify_and_resume_carry_the_upstream_token_in_json_and_etf() {
        let rules = identity(Some("Bot real-bot"), &[]);
        let identify = br#"{"op":2,"d":{"token":"bot-token","intents":1}}"#;
        let (out, rewrite) = rules.rewrite_gateway_message(identify, false).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["d"]["token"], "real-bot");
        assert_eq!(out["d"]["intents"], 1);
        assert_eq!(rewrite.from, "100000000000000002");
        assert_eq!(rewrite.to, UPSTREAM_CREDENTIAL);
        let resume = etf::encode(&serde_json::json!({"op": 6, "d": {"token": "alice-token", "session_id": "s", "seq": 3}})).unwrap();
        let (out, _) = rules.rewrite_gateway_message(&resume, true).unwrap();
        let out = etf::decode(&out, &etf::DecodeOptions::LENIENT).unwrap();
        assert_eq!(out["d"]["token"], "real-bot");
        assert_eq!(out["d"]["seq"], 3);
        assert!(rules
            .rewrite_gateway_message(br#"{"op":1,"d":3}"#, false)
            .is_none());
        let none = identity(None, &[]);
        let (out, rewrite) = none.rewrite_gateway_message(identify, false).unwrap();
        assert!(!String::from_utf8_lossy(&out).contains("bot-token"));
        assert_eq!(rewrite.to, NO_CREDENTIAL);
    }

    #[test]
    fn ids_are_swapped_in_json_strings_and_path_segments_only() {
        let pairs = vec![(REAL.to_string(), LOCAL.to_string())];
        let body = format!(
            r#"{{"id":"{REAL}","n":80351110224678912,"bio":"{REAL} here","list":["{REAL}"]}}"#
        );
        let (out, hits) = swap_ids(body.as_bytes(), &pairs).unwrap();
        assert_eq!(hits, vec![true]);
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["id"], LOCAL);
        assert_eq!(out["list"][0], LOCAL);
        assert_eq!(out["bio"], format!("{REAL} here"));
        assert!(out["n"].is_number());
        assert!(swap_ids(br#"{"id":"1"}"#, &pairs).is_none());
        assert!(swap_ids(b"not json", &pairs).is_none());
        assert_eq!(
            swap_path_segments(&format!("/api/v9/users/{LOCAL}/profile"), LOCAL, REAL),
            Some(format!("/api/v9/users/{REAL}/profile"))
        );
        assert_eq!(swap_path_segments("/api/v9/users/@me", LOCAL, REAL), None);
        assert_eq!(
            swap_query_values(&format!("limit=5&user_id={LOCAL}&x={LOCAL}0"), LOCAL, REAL),
            Some(format!("limit=5&user_id={REAL}&x={LOCAL}0"))
        );
        assert_eq!(swap_query_values("limit=5", LOCAL, REAL), None);
    }
}
