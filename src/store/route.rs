//! Route templates: `/api/v9/channels/81384788765712384/messages` →
//! `/api/v9/channels/{channel_id}/messages`. The store indexes and filters recordings by them;
//! replay matching and the route catalog (`explore`) use them too.

/// Templates a request path (no query). Numeric segments become `{<thing>_id}` named after the
/// segment before them; invite codes, webhook/interaction tokens, reaction emojis and long
/// random-looking segments get their own names. Literal segments are kept as they are.
pub fn route_template(path: &str) -> String {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let segments: Vec<&str> = path.split('/').collect();
    let mut out: Vec<String> = Vec::with_capacity(segments.len());
    for (index, segment) in segments.iter().enumerate() {
        let previous = if index > 0 { segments[index - 1] } else { "" };
        let before_previous = if index > 1 { segments[index - 2] } else { "" };
        out.push(template_segment(
            segment,
            previous,
            before_previous,
            out.last(),
        ));
    }
    out.join("/")
}

fn template_segment(
    segment: &str,
    previous: &str,
    before_previous: &str,
    previous_out: Option<&String>,
) -> String {
    if segment.is_empty() || segment == "@me" || is_api_prefix(segment, previous) {
        return segment.to_string();
    }
    let previous_is_param = previous_out.is_some_and(|p| p.starts_with('{'));
    match previous {
        "invites" | "invite" if !previous_is_param => return "{invite_code}".into(),
        "templates" if !is_numeric(segment) => return "{template_code}".into(),
        "reactions" => return "{emoji}".into(),
        _ => {}
    }
    if previous_is_param && !is_numeric(segment) {
        match before_previous {
            "webhooks" => return "{webhook_token}".into(),
            "interactions" => return "{interaction_token}".into(),
            _ => {}
        }
    }
    if is_numeric(segment) {
        if previous_is_param {
            // `/reactions/{emoji}/123` and similar: the second id is a user.
            return if previous_out.is_some_and(|p| p == "{emoji}") {
                "{user_id}".into()
            } else {
                "{id}".into()
            };
        }
        return format!("{{{}}}", id_name(previous));
    }
    if looks_random(segment) {
        return "{token}".into();
    }
    segment.to_string()
}

fn is_api_prefix(segment: &str, previous: &str) -> bool {
    previous == "api"
        && segment.len() > 1
        && segment.starts_with('v')
        && segment[1..].bytes().all(|b| b.is_ascii_digit())
}

fn is_numeric(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

/// Long segments mixing letters and digits (hashes, tokens) are values, not route words.
fn looks_random(segment: &str) -> bool {
    let core = segment.split('.').next().unwrap_or(segment);
    core.len() >= 24
        && core.bytes().any(|b| b.is_ascii_digit())
        && core.bytes().any(|b| b.is_ascii_alphabetic())
        && core
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `channels` → `channel_id`, `members` → `user_id`, `scheduled-events` → `guild_scheduled_event_id`.
fn id_name(previous: &str) -> String {
    let known = match previous {
        "members" | "bans" | "recipients" | "relationships" | "notes" | "thread-members"
        | "avatars" | "users" => "user",
        "pins" | "messages" => "message",
        "scheduled-events" => "guild_scheduled_event",
        "rules" => "auto_moderation_rule",
        "permissions" => "overwrite",
        "stage-instances" => "channel",
        "icons" | "splashes" | "banners" | "guilds" => "guild",
        "emojis" => "emoji",
        "soundboard-sounds" => "sound",
        "entitlements" => "entitlement",
        "" => "id",
        _ => "",
    };
    if !known.is_empty() {
        return if known == "id" {
            "id".into()
        } else {
            format!("{known}_id")
        };
    }
    let singular = previous
        .strip_suffix("ies")
        .map(|stem| format!("{stem}y"))
        .or_else(|| previous.strip_suffix('s').map(str::to_string))
        .unwrap_or_else(|| previous.to_string());
    format!("{}_id", singular.replace('-', "_"))
}

/// The template without `/api` or `/api/vN`, as Discord's OpenAPI spec writes paths.
pub fn strip_api_prefix(template: &str) -> &str {
    let Some(rest) = template.strip_prefix("/api") else {
        return template;
    };
    if let Some(after_v) = rest.strip_prefix("/v") {
        let digits = after_v.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && (after_v.len() == digits || after_v.as_bytes()[digits] == b'/') {
            return &after_v[digits..];
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_discord_routes() {
        let cases = [
            (
                "/api/v9/channels/81384788765712384/messages",
                "/api/v9/channels/{channel_id}/messages",
            ),
            (
                "/api/v10/guilds/1/members/2",
                "/api/v10/guilds/{guild_id}/members/{user_id}",
            ),
            ("/api/v9/users/@me/guilds", "/api/v9/users/@me/guilds"),
            (
                "/api/v9/channels/1/messages/2/reactions/%F0%9F%91%8D/@me",
                "/api/v9/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            ),
            (
                "/api/v9/channels/1/messages/2/reactions/x:3/4",
                "/api/v9/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}",
            ),
            (
                "/api/v9/invites/discord-developers",
                "/api/v9/invites/{invite_code}",
            ),
            (
                "/api/webhooks/5/aBcD-efGh_ijkl",
                "/api/webhooks/{webhook_id}/{webhook_token}",
            ),
            (
                "/api/v10/interactions/5/aW50ZXJhY3Rpb246MTIz/callback",
                "/api/v10/interactions/{interaction_id}/{interaction_token}/callback",
            ),
            (
                "/api/v9/guilds/1/scheduled-events/2",
                "/api/v9/guilds/{guild_id}/scheduled-events/{guild_scheduled_event_id}",
            ),
            (
                "/api/v9/applications/1/commands/2",
                "/api/v9/applications/{application_id}/commands/{command_id}",
            ),
            (
                "/api/v9/entitlements/1",
                "/api/v9/entitlements/{entitlement_id}",
            ),
            ("/api/v9/categories/1", "/api/v9/categories/{category_id}"),
            (
                "/avatars/1/a_0123456789abcdef0123456789abcdef.png",
                "/avatars/{user_id}/{token}",
            ),
            ("/api/updates/stable", "/api/updates/stable"),
            ("/", "/"),
        ];
        for (path, want) in cases {
            assert_eq!(route_template(path), want, "{path}");
        }
    }

    #[test]
    fn strips_api_prefixes() {
        assert_eq!(
            strip_api_prefix("/api/v9/channels/{channel_id}"),
            "/channels/{channel_id}"
        );
        assert_eq!(
            strip_api_prefix("/api/channels/{channel_id}"),
            "/channels/{channel_id}"
        );
        assert_eq!(strip_api_prefix("/api/v10"), "");
        assert_eq!(strip_api_prefix("/api/vault"), "/vault");
        assert_eq!(strip_api_prefix("/app"), "/app");
    }
}
