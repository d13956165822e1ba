//! A user's gateway sessions as the official client sees them: each session's client info
//! (from IDENTIFY's properties), status and activities; READY's `sessions` and SESSIONS_REPLACE;
//! and the user's own presence, the aggregate of its sessions.
use serde_json::{json, Map, Value};

use crate::gateway::capabilities::Capabilities;

/// A user's presence as the gateway knows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Presence {
    pub status: String,
    pub activities: Vec<Value>,
    /// Status per platform for user accounts; `None`: `{"web": status}` (bots).
    pub client_status: Option<Value>,
}

/// What a user (not bot) session adds to its record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserSession {
    /// The capabilities IDENTIFY asked for.
    pub capabilities: Capabilities,
    /// `desktop`, `web`, `mobile` or `unknown`.
    pub client: &'static str,
    /// `windows`, `osx`, `linux`, `android`, `ios` or `unknown`.
    pub os: &'static str,
    /// `online`, `idle`, `dnd` or `invisible`.
    pub status: String,
    /// The session's activities (raw).
    pub activities: Vec<Value>,
    /// When the status last changed (larger is later), to pick the aggregate.
    pub changed: u64,
    /// IDENTIFY sent `intents` (a user-account library, not the official client): events
    /// reach it by those as before capabilities and guild subscriptions existed.
    pub by_intents: bool,
}

/// The kind of client and its operating system, from IDENTIFY's `properties`.
pub(crate) fn client_info(properties: &Map<String, Value>) -> (&'static str, &'static str) {
    let text = |key: &str| {
        properties
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let os = match text("os").as_str() {
        "windows" => "windows",
        "mac os x" | "macos" | "osx" => "osx",
        "linux" => "linux",
        "android" => "android",
        "ios" => "ios",
        "playstation" => "playstation",
        "xbox" => "xbox",
        _ => "unknown",
    };
    let browser = text("browser");
    let client = if matches!(os, "android" | "ios") || browser.contains("android") {
        "mobile"
    } else if browser == "discord client" || browser.contains("desktop") {
        "desktop"
    } else if browser.is_empty() {
        "unknown"
    } else {
        "web"
    };
    (client, os)
}

/// The status IDENTIFY's or op 3's presence asks for (`unknown` and nonsense: online).
pub(crate) fn requested_status(status: &str) -> &'static str {
    match status {
        "idle" => "idle",
        "dnd" => "dnd",
        "invisible" | "offline" => "invisible",
        _ => "online",
    }
}

/// The `client_status` key of a client kind.
fn platform(client: &str) -> &'static str {
    match client {
        "desktop" => "desktop",
        "mobile" => "mobile",
        _ => "web",
    }
}

/// The user's presence as others see it, from all its sessions: the status of the session that
/// changed last among those not idle (idle only when every session is), invisible as offline
/// (`None`), the activities of every session, and the status per platform.
pub(crate) fn aggregate(sessions: &[(String, UserSession)]) -> Option<Presence> {
    let chosen = sessions
        .iter()
        .filter(|(_, s)| s.status != "idle")
        .max_by_key(|(_, s)| s.changed)
        .or_else(|| sessions.iter().max_by_key(|(_, s)| s.changed))?;
    if chosen.1.status == "invisible" {
        return None;
    }
    let mut activities: Vec<Value> = Vec::new();
    let mut client_status = Map::new();
    let mut by_recency: Vec<&(String, UserSession)> = sessions.iter().collect();
    by_recency.sort_by_key(|(_, s)| std::cmp::Reverse(s.changed));
    for (_, session) in by_recency {
        if session.status == "invisible" {
            continue;
        }
        for activity in &session.activities {
            if !activities.contains(activity) {
                activities.push(activity.clone());
            }
        }
        client_status
            .entry(platform(session.client))
            .or_insert_with(|| json!(session.status));
    }
    Some(Presence {
        status: chosen.1.status.clone(),
        activities,
        client_status: Some(Value::Object(client_status)),
    })
}

/// READY's `sessions` / SESSIONS_REPLACE's payload: every session, and with more than one the
/// `all` session carrying the aggregate.
pub(crate) fn sessions_json(sessions: &[(String, UserSession)]) -> Value {
    let mut out: Vec<Value> = Vec::with_capacity(sessions.len() + 1);
    if sessions.len() > 1 {
        let (status, activities) = match aggregate(sessions) {
            Some(p) => (p.status, p.activities),
            None => ("invisible".to_string(), Vec::new()),
        };
        out.push(json!({
            "session_id": "all",
            "client_info": {"client": "unknown", "os": "unknown", "version": 0},
            "status": status,
            "activities": activities,
            "hidden_activities": [],
            "active": true,
        }));
    }
    for (id, session) in sessions.iter().take(15) {
        out.push(json!({
            "session_id": id,
            "client_info": {"client": session.client, "os": session.os, "version": 0},
            "status": session.status,
            "activities": session.activities,
            "hidden_activities": [],
            "active": true,
        }));
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(client: &'static str, status: &str, changed: u64) -> UserSession {
        UserSession {
            capabilities: Capabilities(0),
            client,
            os: "linux",
            status: status.into(),
            activities: vec![json!({"name": client, "type": 0})],
            changed,
            by_intents: false,
        }
    }

    #[test]
    fn the_aggregate_prefers_the_latest_active_session_and_lists_platforms() {
        let sessions = vec![
            ("a".to_string(), session("desktop", "dnd", 1)),
            ("b".to_string(), session("mobile", "idle", 2)),
        ];
        let presence = aggregate(&sessions).unwrap();
        assert_eq!(presence.status, "dnd");
        assert_eq!(presence.activities.len(), 2);
        assert_eq!(
            presence.client_status,
            Some(json!({"desktop": "dnd", "mobile": "idle"}))
        );
        let all_idle = vec![("b".to_string(), session("web", "idle", 2))];
        assert_eq!(aggregate(&all_idle).unwrap().status, "idle");
        let hidden = vec![("c".to_string(), session("web", "invisible", 3))];
        assert!(aggregate(&hidden).is_none());
        let listed = sessions_json(&sessions);
        assert_eq!(listed[0]["session_id"], "all");
        assert_eq!(listed[1]["client_info"]["client"], "desktop");
    }

    #[test]
    fn client_info_reads_the_super_properties() {
        let props = |os: &str, browser: &str| {
            json!({"os": os, "browser": browser})
                .as_object()
                .cloned()
                .unwrap()
        };
        assert_eq!(
            client_info(&props("Windows", "Discord Client")),
            ("desktop", "windows")
        );
        assert_eq!(client_info(&props("Linux", "Firefox")), ("web", "linux"));
        assert_eq!(
            client_info(&props("Android", "Discord Android")),
            ("mobile", "android")
        );
        assert_eq!(requested_status("unknown"), "online");
    }
}
