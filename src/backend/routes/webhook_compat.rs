//! Slack- and GitHub-compatible webhook execution: the payloads those services send are turned
//! into a Discord message (content and embeds) and posted through the webhook like any other
//! execution (same validation, MESSAGE_CREATE, `thread_id`).
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, ApiResult};
use crate::backend::error::ApiError;
use crate::backend::extract::{parse_json_body, Ids, Q};
use crate::backend::services::messages::{post_as_webhook, CreateMessage};
use crate::backend::services::webhooks::{load_with_token, target_channel};
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/webhooks/{webhook_id}/{webhook_token}/slack",
            post(execute_slack),
        )
        .route(
            "/webhooks/{webhook_id}/{webhook_token}/github",
            post(execute_github),
        )
}

#[derive(Deserialize)]
struct ExecuteQuery {
    #[serde(default)]
    wait: bool,
    thread_id: Option<Snowflake>,
}

/// Posts `body` through webhook `id` (checked against `token`), into `thread_id` if given.
fn execute_as_webhook(
    state: &AppState,
    id: Snowflake,
    token: &str,
    thread_id: Option<Snowflake>,
    body: CreateMessage,
    headers: &HeaderMap,
) -> Result<Value, ApiError> {
    let hook = load_with_token(state, id, token)?;
    let channel_id = target_channel(state, &hook, thread_id)?;
    let username = body
        .username
        .clone()
        .filter(|name| !name.trim().is_empty())
        .map(|name| name.chars().take(80).collect::<String>())
        .unwrap_or_else(|| hook.name.clone());
    let origin = crate::backend::services::common::origin(headers);
    post_as_webhook(state, &hook, channel_id, username, body, &[], &origin)
}

/// The request's JSON: the body itself, or (form posts, as Slack clients send) its `payload`
/// field, or the form's fields as a flat object.
fn slack_payload(state: &AppState, headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let is_form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return parse_json_body(bytes, state.config.max_json_depth);
    }
    let fields: Vec<(String, String)> = form_urlencoded::parse(bytes).into_owned().collect();
    if let Some((_, payload)) = fields.iter().find(|(name, _)| name == "payload") {
        return parse_json_body(payload.as_bytes(), state.config.max_json_depth);
    }
    Ok(Value::Object(
        fields
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect(),
    ))
}

/// Slack's mrkdwn links (`<url|label>`, `<url>`) as Discord markdown; `&amp;` etc. unescaped.
fn slack_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('>') {
            Some(end) => {
                let inner = &after[..end];
                match inner.split_once('|') {
                    Some((url, label)) if url.contains("://") => {
                        out.push_str(&format!("[{label}]({url})"))
                    }
                    Some((_, label)) => out.push_str(label),
                    None => out.push_str(inner.trim_start_matches(['@', '#', '!'])),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn string(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|s| !s.is_empty())
        .map(ToString::to_string)
}

/// A Slack colour (`#rrggbb`, `good`, `warning`, `danger`) as an embed colour.
fn slack_color(color: &str) -> Option<u32> {
    match color {
        "good" => Some(0x2EB886),
        "warning" => Some(0xDAA038),
        "danger" => Some(0xA30200),
        hex => u32::from_str_radix(hex.trim_start_matches('#'), 16)
            .ok()
            .filter(|c| *c <= 0xFF_FFFF),
    }
}

/// One Slack attachment as an embed.
fn slack_embed(attachment: &Value) -> Value {
    let mut embed = json!({"type": "rich"});
    if let Some(title) = string(&attachment["title"]) {
        embed["title"] = json!(slack_text(&title));
    }
    if let Some(url) = string(&attachment["title_link"]) {
        embed["url"] = json!(url);
    }
    let description = [&attachment["pretext"], &attachment["text"]]
        .iter()
        .filter_map(|v| string(v))
        .map(|t| slack_text(&t))
        .collect::<Vec<_>>()
        .join("\n");
    if !description.is_empty() {
        embed["description"] = json!(description);
    }
    if let Some(color) = attachment["color"].as_str().and_then(slack_color) {
        embed["color"] = json!(color);
    }
    if let Some(name) = string(&attachment["author_name"]) {
        embed["author"] = json!({"name": name});
        if let Some(url) = string(&attachment["author_link"]) {
            embed["author"]["url"] = json!(url);
        }
        if let Some(icon) = string(&attachment["author_icon"]) {
            embed["author"]["icon_url"] = json!(icon);
        }
    }
    let fields: Vec<Value> = attachment["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|field| {
            let name = string(&field["title"]).unwrap_or_else(|| "\u{200b}".into());
            let value = string(&field["value"])?;
            Some(json!({"name": name, "value": slack_text(&value),
                        "inline": field["short"].as_bool().unwrap_or(false)}))
        })
        .collect();
    if !fields.is_empty() {
        embed["fields"] = json!(fields);
    }
    if let Some(url) = string(&attachment["image_url"]) {
        embed["image"] = json!({ "url": url });
    }
    if let Some(url) = string(&attachment["thumb_url"]) {
        embed["thumbnail"] = json!({ "url": url });
    }
    if let Some(text) = string(&attachment["footer"]) {
        embed["footer"] = json!({ "text": text });
        if let Some(icon) = string(&attachment["footer_icon"]) {
            embed["footer"]["icon_url"] = json!(icon);
        }
    }
    if let Some(ts) = attachment["ts"]
        .as_f64()
        .or_else(|| attachment["ts"].as_str().and_then(|s| s.parse().ok()))
    {
        if ts > 0.0 {
            embed["timestamp"] = json!(crate::backend::snowflake::iso8601_from_ms(
                (ts * 1000.0) as u64
            ));
        }
    }
    embed
}

/// A Slack message payload as a Discord message body (`text` → content, attachments → embeds).
fn from_slack(payload: &Value) -> Result<CreateMessage, ApiError> {
    if !payload.is_object() {
        return Err(ApiError::bad_request(
            50109,
            "The request body contains invalid JSON.",
        ));
    }
    let embeds: Vec<Value> = payload["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .take(10)
        .map(slack_embed)
        .collect();
    Ok(CreateMessage {
        content: payload["text"].as_str().map(slack_text),
        embeds: (!embeds.is_empty()).then_some(embeds),
        username: string(&payload["username"]),
        ..CreateMessage::default()
    })
}

async fn execute_slack(
    State(state): State<AppState>,
    Ids((id, token)): Ids<(Snowflake, String)>,
    Q(query): Q<ExecuteQuery>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    let payload = slack_payload(&state, &headers, &bytes)?;
    let body = from_slack(&payload)?;
    execute_as_webhook(&state, id, &token, query.thread_id, body, &headers)?;
    // Slack clients expect the literal answer "ok".
    Ok(ok(json!("ok")))
}

/// Colours of GitHub notices, as Discord's GitHub integration uses them.
mod color {
    pub(super) const NEUTRAL: u32 = 0x7289DA;
    pub(super) const OPENED: u32 = 0x009800;
    pub(super) const CLOSED: u32 = 0x000000;
    pub(super) const COMMENT: u32 = 0xE68D60;
}

fn short(text: &str, max: usize) -> String {
    let first_line = text.lines().next().unwrap_or_default();
    if first_line.chars().count() <= max {
        first_line.to_string()
    } else {
        let cut: String = first_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// A GitHub notice before it becomes an embed: title, link, description and colour.
type Notice = (String, Value, Option<String>, u32);

/// The first seven characters of a commit id (its short form).
fn short_sha(sha: &str) -> String {
    sha.chars().take(7).collect()
}

/// The embed for one GitHub event, or `None` for events Discord does not post (ping,
/// unsupported ones, uninteresting actions).
fn github_embed(event: &str, payload: &Value) -> Option<Value> {
    let repo = payload["repository"]["full_name"].as_str().unwrap_or("?");
    let sender = &payload["sender"];
    let author = json!({
        "name": sender["login"].as_str().unwrap_or("GitHub"),
        "url": sender["html_url"],
        "icon_url": sender["avatar_url"],
    });
    let action = payload["action"].as_str().unwrap_or_default();
    let (title, url, description, colour) = match event {
        "push" => push_notice(repo, payload)?,
        "issues" | "pull_request" => item_notice(repo, event, action, payload)?,
        "issue_comment" | "commit_comment" | "pull_request_review_comment" => {
            comment_notice(repo, event, action, payload)?
        }
        _ => repository_notice(repo, event, action, payload)?,
    };
    let mut embed = json!({
        "type": "rich",
        "title": short(&title, 256),
        "color": colour,
        "author": author,
    });
    if url.is_string() {
        embed["url"] = url;
    }
    if let Some(description) = description.filter(|d| !d.is_empty()) {
        embed["description"] = json!(description);
    }
    Some(embed)
}

/// A push: the branch, the commit count and up to five commits (none: not posted).
fn push_notice(repo: &str, payload: &Value) -> Option<Notice> {
    let commits = payload["commits"].as_array()?;
    if commits.is_empty() {
        return None;
    }
    let branch = payload["ref"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("refs/heads/");
    let noun = if commits.len() == 1 {
        "commit"
    } else {
        "commits"
    };
    let lines: Vec<String> = commits
        .iter()
        .take(5)
        .map(|c| {
            format!(
                "[`{}`]({}) {} - {}",
                short_sha(c["id"].as_str().unwrap_or_default()),
                c["url"].as_str().unwrap_or_default(),
                short(c["message"].as_str().unwrap_or_default(), 50),
                c["author"]["username"]
                    .as_str()
                    .or(c["author"]["name"].as_str())
                    .unwrap_or_default()
            )
        })
        .collect();
    Some((
        format!("[{repo}:{branch}] {} new {noun}", commits.len()),
        payload["compare"].clone(),
        Some(lines.join("\n")),
        color::NEUTRAL,
    ))
}

/// An issue or pull request opened, closed (merged) or reopened; other actions not posted.
fn item_notice(repo: &str, event: &str, action: &str, payload: &Value) -> Option<Notice> {
    if !matches!(action, "opened" | "closed" | "reopened") {
        return None;
    }
    let (key, kind) = if event == "issues" {
        ("issue", "Issue")
    } else {
        ("pull_request", "Pull request")
    };
    let item = &payload[key];
    let verb = if event == "pull_request"
        && action == "closed"
        && item["merged"].as_bool() == Some(true)
    {
        "merged"
    } else {
        action
    };
    Some((
        format!(
            "[{repo}] {kind} {verb}: #{} {}",
            item["number"],
            item["title"].as_str().unwrap_or_default()
        ),
        item["html_url"].clone(),
        (action == "opened")
            .then(|| item["body"].as_str().map(|b| short(b, 500)))
            .flatten(),
        if action == "closed" {
            color::CLOSED
        } else {
            color::OPENED
        },
    ))
}

/// A new comment on an issue, a pull request or a commit.
fn comment_notice(repo: &str, event: &str, action: &str, payload: &Value) -> Option<Notice> {
    if action != "created" && !action.is_empty() {
        return None;
    }
    let comment = &payload["comment"];
    let on = match event {
        "issue_comment" => format!(
            "issue #{}: {}",
            payload["issue"]["number"],
            payload["issue"]["title"].as_str().unwrap_or_default()
        ),
        "pull_request_review_comment" => format!(
            "pull request #{}: {}",
            payload["pull_request"]["number"],
            payload["pull_request"]["title"]
                .as_str()
                .unwrap_or_default()
        ),
        _ => format!(
            "commit `{}`",
            short_sha(comment["commit_id"].as_str().unwrap_or_default())
        ),
    };
    Some((
        format!("[{repo}] New comment on {on}"),
        comment["html_url"].clone(),
        comment["body"].as_str().map(|b| short(b, 500)),
        color::COMMENT,
    ))
}

/// Branch/tag creation and deletion, forks, stars and releases; other events not posted.
fn repository_notice(repo: &str, event: &str, action: &str, payload: &Value) -> Option<Notice> {
    Some(match event {
        "create" | "delete" => {
            let kind = payload["ref_type"].as_str().unwrap_or("ref");
            let name = payload["ref"].as_str().unwrap_or_default();
            let verb = if event == "create" {
                "created"
            } else {
                "deleted"
            };
            (
                format!("[{repo}] New {kind} {verb}: {name}"),
                payload["repository"]["html_url"].clone(),
                None,
                color::NEUTRAL,
            )
        }
        "fork" => (
            format!(
                "[{repo}] Fork created: {}",
                payload["forkee"]["full_name"].as_str().unwrap_or_default()
            ),
            payload["forkee"]["html_url"].clone(),
            None,
            color::NEUTRAL,
        ),
        "watch" | "star" if action == "started" || action == "created" => (
            format!("[{repo}] New star added"),
            payload["repository"]["html_url"].clone(),
            None,
            color::NEUTRAL,
        ),
        "release" if action == "published" => (
            format!(
                "[{repo}] New release published: {}",
                payload["release"]["tag_name"].as_str().unwrap_or_default()
            ),
            payload["release"]["html_url"].clone(),
            payload["release"]["body"].as_str().map(|b| short(b, 500)),
            color::NEUTRAL,
        ),
        _ => return None,
    })
}

async fn execute_github(
    State(state): State<AppState>,
    Ids((id, token)): Ids<(Snowflake, String)>,
    Q(query): Q<ExecuteQuery>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    let hook = load_with_token(&state, id, &token)?;
    let payload: Value = parse_json_body(&bytes, state.config.max_json_depth)?;
    if !payload["sender"].is_object() {
        return Err(ApiError::invalid_field(
            "sender",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    }
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Events Discord does not render (ping included) are accepted and dropped, as on Discord.
    let Some(embed) = github_embed(event, &payload) else {
        return Ok(no_content());
    };
    let body = CreateMessage {
        embeds: Some(vec![embed]),
        username: Some("GitHub".into()),
        ..CreateMessage::default()
    };
    let rendered = execute_as_webhook(&state, hook.id, &token, query.thread_id, body, &headers)?;
    if query.wait {
        Ok(ok(rendered))
    } else {
        Ok(no_content())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_markup_becomes_discord_markdown() {
        assert_eq!(
            slack_text("see <https://example.com|the docs> &amp; <https://x.y> <@U123>"),
            "see [the docs](https://example.com) & https://x.y U123"
        );
        assert_eq!(slack_text("a < b"), "a < b");
    }

    #[test]
    fn slack_attachments_become_embeds() {
        let body = from_slack(
            &json!({"text": "deploy", "username": "ci", "attachments": [{
            "color": "danger", "title": "Build 42", "title_link": "https://ci/42",
            "text": "failed", "fields": [{"title": "Branch", "value": "main", "short": true}],
            "footer": "ci", "ts": 1_700_000_000}]}),
        )
        .unwrap();
        assert_eq!(body.content.as_deref(), Some("deploy"));
        let embed = &body.embeds.unwrap()[0];
        assert_eq!(embed["color"], 0xA30200);
        assert_eq!(embed["url"], "https://ci/42");
        assert_eq!(
            embed["fields"][0],
            json!({"name": "Branch", "value": "main", "inline": true})
        );
        assert_eq!(embed["timestamp"], "2023-11-14T22:13:20.000000+00:00");
    }

    #[test]
    fn github_events_are_summarised_or_dropped() {
        let sender = json!({"login": "octo", "html_url": "https://github.com/octo",
                            "avatar_url": "https://avatars/octo"});
        let push = github_embed(
            "push",
            &json!({
            "ref": "refs/heads/main", "compare": "https://github.com/o/r/compare/a...b",
            "repository": {"full_name": "o/r"}, "sender": sender,
            "commits": [{"id": "0123456789abcdef", "url": "https://github.com/o/r/commit/0123456",
                         "message": "Fix it\n\nlong body", "author": {"username": "octo"}}]}),
        )
        .unwrap();
        assert_eq!(push["title"], "[o/r:main] 1 new commit");
        assert_eq!(
            push["description"],
            "[`0123456`](https://github.com/o/r/commit/0123456) Fix it - octo"
        );
        assert_eq!(push["author"]["name"], "octo");
        let merged = github_embed(
            "pull_request",
            &json!({"action": "closed",
            "repository": {"full_name": "o/r"}, "sender": sender,
            "pull_request": {"number": 7, "title": "Add", "merged": true,
                             "html_url": "https://github.com/o/r/pull/7"}}),
        )
        .unwrap();
        assert_eq!(merged["title"], "[o/r] Pull request merged: #7 Add");
        assert!(github_embed("ping", &json!({"sender": sender})).is_none());
        assert!(github_embed("issues", &json!({"action": "labeled", "sender": sender})).is_none());
    }
}
