//! Auto-moderation rules: list, create, get, edit, delete (MANAGE_GUILD), with
//! AUTO_MODERATION_RULE_* dispatches to sessions holding AUTO_MODERATION_CONFIGURATION.
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, ApiResult};
use crate::backend::error::{ApiError, Validator};
use crate::backend::extract::{Auth, Body, Ids, InGuild, Reason};
use crate::backend::model::AutoModRule;
use crate::backend::permissions::bits;
use crate::backend::services::patch::set_if_present;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::{changes, AppState, GuildAccess};
use crate::{backend::events::Dispatch, gateway::intents};

/// Trigger types.
const KEYWORD: u8 = 1;
const SPAM: u8 = 3;
const KEYWORD_PRESET: u8 = 4;
const MENTION_SPAM: u8 = 5;
const MEMBER_PROFILE: u8 = 6;
/// Action types.
const BLOCK_MESSAGE: u64 = 1;
const SEND_ALERT_MESSAGE: u64 = 2;
const TIMEOUT: u64 = 3;
const BLOCK_MEMBER_INTERACTION: u64 = 4;
/// Audit log actions.
const RULE_CREATE: u16 = 140;
const RULE_UPDATE: u16 = 141;
const RULE_DELETE: u16 = 142;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/guilds/{guild_id}/auto-moderation/rules",
            get(list_rules).post(create_rule),
        )
        .route(
            "/guilds/{guild_id}/auto-moderation/rules/{rule_id}",
            get(get_rule).patch(edit_rule).delete(delete_rule),
        )
}

fn unknown_rule() -> ApiError {
    // Discord documents no JSON code for this 404; it answers with the message alone.
    ApiError::Coded {
        status: StatusCode::NOT_FOUND,
        code: 0,
        message: "Unknown Auto Moderation Rule".into(),
    }
}

fn render_rule(rule: &AutoModRule) -> Value {
    json!({
        "id": rule.id,
        "guild_id": rule.guild_id,
        "creator_id": rule.creator_id,
        "name": rule.name,
        "event_type": rule.event_type,
        "trigger_type": rule.trigger_type,
        "trigger_metadata": rule.trigger_metadata,
        "actions": rule.actions,
        "enabled": rule.enabled,
        "exempt_roles": rule.exempt_roles,
        "exempt_channels": rule.exempt_channels,
    })
}

fn load(
    state: &AppState,
    guild_id: Snowflake,
    rule_id: Snowflake,
) -> Result<AutoModRule, ApiError> {
    state
        .store
        .automod_rules
        .get((guild_id, rule_id))?
        .ok_or_else(unknown_rule)
}

fn publish(state: &AppState, name: &'static str, rule: &AutoModRule) {
    state.publish(
        Dispatch::guild(
            name,
            rule.guild_id,
            intents::AUTO_MODERATION_CONFIGURATION,
            render_rule(rule),
        )
        .requiring(bits::MANAGE_GUILD),
    );
}

fn string_list(
    checks: &mut Validator,
    path: &str,
    value: Option<&Value>,
    max_items: usize,
    max_len: usize,
) -> Vec<String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        checks.add(path, "BASE_TYPE_ARRAY", "Must be an array.");
        return Vec::new();
    };
    if items.len() > max_items {
        checks.add(
            path,
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {max_items} or fewer in length."),
        );
    }
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(text) => {
                checks.length(&format!("{path}.{index}"), Some(text), 1, max_len);
                out.push(text.to_string());
            }
            None => checks.add(
                &format!("{path}.{index}"),
                "BASE_TYPE_STRING",
                "Must be a string.",
            ),
        }
    }
    out
}

/// Normalises trigger metadata for a trigger type, collecting errors.
fn trigger_metadata(checks: &mut Validator, trigger_type: u8, given: &Value) -> Value {
    let field = |name: &str| given.get(name);
    let path = |name: &str| format!("trigger_metadata.{name}");
    match trigger_type {
        KEYWORD | MEMBER_PROFILE => {
            let keyword_filter = string_list(
                checks,
                &path("keyword_filter"),
                field("keyword_filter"),
                1000,
                60,
            );
            let regex_patterns = string_list(
                checks,
                &path("regex_patterns"),
                field("regex_patterns"),
                10,
                260,
            );
            for (index, pattern) in regex_patterns.iter().enumerate() {
                if regex::Regex::new(pattern).is_err() {
                    checks.add(
                        &format!("trigger_metadata.regex_patterns.{index}"),
                        "AUTO_MODERATION_INVALID_REGEX",
                        "Invalid regex pattern.",
                    );
                }
            }
            let allow_list = string_list(checks, &path("allow_list"), field("allow_list"), 100, 60);
            if keyword_filter.is_empty() && regex_patterns.is_empty() {
                checks.add(
                    &path("keyword_filter"),
                    "AUTO_MODERATION_TRIGGER_METADATA_REQUIRED",
                    "A keyword filter or a regex pattern is required.",
                );
            }
            json!({"keyword_filter": keyword_filter, "regex_patterns": regex_patterns, "allow_list": allow_list})
        }
        KEYWORD_PRESET => {
            let presets: Vec<u64> = field("presets")
                .and_then(Value::as_array)
                .map(|p| p.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            if presets.is_empty() || presets.iter().any(|p| !(1..=3).contains(p)) {
                checks.add(
                    &path("presets"),
                    "BASE_TYPE_CHOICES",
                    "Presets must be among {1, 2, 3}.",
                );
            }
            let allow_list =
                string_list(checks, &path("allow_list"), field("allow_list"), 1000, 60);
            json!({"presets": presets, "allow_list": allow_list})
        }
        MENTION_SPAM => {
            let limit = field("mention_total_limit").and_then(Value::as_i64);
            match limit {
                Some(n) if (1..=50).contains(&n) => {}
                _ => checks.add(
                    &path("mention_total_limit"),
                    "NUMBER_TYPE_OUT_OF_RANGE",
                    "int value should be between 1 and 50.",
                ),
            }
            let raid = field("mention_raid_protection_enabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            json!({"mention_total_limit": limit.unwrap_or(0), "mention_raid_protection_enabled": raid})
        }
        _ => json!({}),
    }
}

/// Normalises and checks actions (timeouts only for keyword and mention-spam rules).
fn actions(
    state: &AppState,
    checks: &mut Validator,
    guild_id: Snowflake,
    trigger_type: u8,
    given: &[Value],
) -> Result<Vec<Value>, ApiError> {
    if given.is_empty() || given.len() > 5 {
        checks.add(
            "actions",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 5 in length.",
        );
    }
    let mut out = Vec::new();
    for (index, action) in given.iter().enumerate() {
        let path = format!("actions.{index}");
        let metadata = action.get("metadata").cloned().unwrap_or_else(|| json!({}));
        match action.get("type").and_then(Value::as_u64) {
            Some(BLOCK_MESSAGE) => {
                let message = metadata.get("custom_message").and_then(Value::as_str);
                checks.length(&format!("{path}.metadata.custom_message"), message, 0, 150);
                let metadata = match message {
                    Some(text) => json!({"custom_message": text}),
                    None => json!({}),
                };
                out.push(json!({"type": BLOCK_MESSAGE, "metadata": metadata}));
            }
            Some(SEND_ALERT_MESSAGE) => {
                let channel = metadata
                    .get("channel_id")
                    .and_then(|c| serde_json::from_value::<Snowflake>(c.clone()).ok());
                let valid = match channel {
                    Some(id) => state
                        .store
                        .channel(id)?
                        .is_some_and(|c| c.guild_id == Some(guild_id)),
                    None => false,
                };
                if !valid {
                    checks.add(
                        &format!("{path}.metadata.channel_id"),
                        "AUTO_MODERATION_ACTION_CHANNEL_INVALID",
                        "A channel of this guild is required.",
                    );
                }
                out.push(json!({"type": SEND_ALERT_MESSAGE, "metadata": {"channel_id": channel}}));
            }
            Some(TIMEOUT) => {
                let seconds = metadata.get("duration_seconds").and_then(Value::as_i64);
                if !seconds.is_some_and(|s| (1..=2_419_200).contains(&s)) {
                    checks.add(
                        &format!("{path}.metadata.duration_seconds"),
                        "NUMBER_TYPE_OUT_OF_RANGE",
                        "int value should be between 1 and 2419200.",
                    );
                }
                if !matches!(trigger_type, KEYWORD | MENTION_SPAM | MEMBER_PROFILE) {
                    checks.add(
                        &format!("{path}.type"),
                        "AUTO_MODERATION_ACTION_NOT_ALLOWED",
                        "Timeouts are only allowed for keyword and mention spam rules.",
                    );
                }
                out.push(json!({"type": TIMEOUT, "metadata": {"duration_seconds": seconds.unwrap_or(0)}}));
            }
            Some(BLOCK_MEMBER_INTERACTION) => {
                out.push(json!({"type": BLOCK_MEMBER_INTERACTION, "metadata": {}}));
            }
            _ => checks.add(
                &format!("{path}.type"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2, 3, 4}.",
            ),
        }
    }
    Ok(out)
}

#[derive(Deserialize, Default)]
struct RuleBody {
    name: Option<String>,
    event_type: Option<u8>,
    trigger_type: Option<u8>,
    trigger_metadata: Option<Value>,
    actions: Option<Vec<Value>>,
    enabled: Option<bool>,
    exempt_roles: Option<Vec<Snowflake>>,
    exempt_channels: Option<Vec<Snowflake>>,
}

/// Applies a body to a rule (trigger type is fixed after creation) and validates the whole.
fn apply(
    state: &AppState,
    access: &GuildAccess,
    rule: &mut AutoModRule,
    body: RuleBody,
) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    checks.length("name", body.name.as_deref(), 1, 100);
    set_if_present(&mut rule.name, body.name);
    if let Some(event_type) = body.event_type {
        if !(1..=2).contains(&event_type) {
            checks.add(
                "event_type",
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2}.",
            );
        }
        rule.event_type = event_type;
    }
    let expected_event = if rule.trigger_type == MEMBER_PROFILE {
        2
    } else {
        1
    };
    if rule.event_type != expected_event {
        checks.add(
            "event_type",
            "AUTO_MODERATION_INVALID_EVENT_TYPE",
            "This event type does not fit the trigger type.",
        );
    }
    if let Some(metadata) = body.trigger_metadata {
        rule.trigger_metadata = trigger_metadata(&mut checks, rule.trigger_type, &metadata);
    } else if rule.trigger_metadata.is_null() {
        rule.trigger_metadata = trigger_metadata(&mut checks, rule.trigger_type, &json!({}));
    }
    if let Some(given) = body.actions {
        rule.actions = actions(state, &mut checks, rule.guild_id, rule.trigger_type, &given)?;
    } else if rule.actions.is_empty() {
        checks.required("actions", None::<&()>);
    }
    set_if_present(&mut rule.enabled, body.enabled);
    if let Some(roles) = body.exempt_roles {
        if roles.len() > 20 {
            checks.add(
                "exempt_roles",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 20 or fewer in length.",
            );
        }
        for (index, role) in roles.iter().enumerate() {
            if !access.roles.iter().any(|r| r.id == *role) {
                checks.add(
                    &format!("exempt_roles.{index}"),
                    "AUTO_MODERATION_INVALID_ROLE",
                    "Unknown role.",
                );
            }
        }
        rule.exempt_roles = roles;
    }
    if let Some(channels) = body.exempt_channels {
        if channels.len() > 50 {
            checks.add(
                "exempt_channels",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 50 or fewer in length.",
            );
        }
        for (index, channel) in channels.iter().enumerate() {
            let in_guild = state
                .store
                .channel(*channel)?
                .is_some_and(|c| c.guild_id == Some(rule.guild_id));
            if !in_guild {
                checks.add(
                    &format!("exempt_channels.{index}"),
                    "AUTO_MODERATION_INVALID_CHANNEL",
                    "Unknown channel.",
                );
            }
        }
        rule.exempt_channels = channels;
    }
    checks.finish()
}

async fn list_rules(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    _: InGuild<{ bits::MANAGE_GUILD }>,
) -> ApiResult {
    let rules = state.store.automod_rules.values(guild_id)?;
    Ok(ok(Value::Array(rules.iter().map(render_rule).collect())))
}

async fn get_rule(
    State(state): State<AppState>,
    _: Auth,
    Ids((guild_id, rule_id)): Ids<(Snowflake, Snowflake)>,
    _: InGuild<{ bits::MANAGE_GUILD }>,
) -> ApiResult {
    Ok(ok(render_rule(&load(&state, guild_id, rule_id)?)))
}

async fn create_rule(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<{ bits::MANAGE_GUILD }, Body<RuleBody>>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("name", body.name.as_ref());
    checks.required("event_type", body.event_type.as_ref());
    checks.required("trigger_type", body.trigger_type.as_ref());
    let trigger_type = body.trigger_type.unwrap_or(KEYWORD);
    if ![KEYWORD, SPAM, KEYWORD_PRESET, MENTION_SPAM, MEMBER_PROFILE].contains(&trigger_type) {
        checks.add(
            "trigger_type",
            "BASE_TYPE_CHOICES",
            "Value must be one of {1, 3, 4, 5, 6}.",
        );
    }
    checks.finish()?;
    let _guard = state.store.lock();
    let existing = state.store.automod_rules.values(guild_id)?;
    let same_type = existing
        .iter()
        .filter(|r| r.trigger_type == trigger_type)
        .count();
    let max = if trigger_type == KEYWORD { 6 } else { 1 };
    if same_type >= max {
        return Err(ApiError::invalid_field(
            "trigger_type",
            "AUTO_MODERATION_MAX_RULES_OF_TYPE_EXCEEDED",
            format!("Maximum number of rules of this type reached ({max})."),
        ));
    }
    let mut rule = AutoModRule {
        id: state.store.next_id(),
        guild_id,
        creator_id: auth.id(),
        name: String::new(),
        event_type: 1,
        trigger_type,
        trigger_metadata: Value::Null,
        actions: Vec::new(),
        enabled: false,
        exempt_roles: Vec::new(),
        exempt_channels: Vec::new(),
    };
    apply(&state, &access, &mut rule, body)?;
    state.store.automod_rules.put((guild_id, rule.id), &rule)?;
    drop(_guard);
    state.audit(
        guild_id,
        auth.id(),
        RULE_CREATE,
        Some(rule.id),
        changes(vec![("name", Value::Null, json!(rule.name))]),
        None,
        reason,
    )?;
    publish(&state, "AUTO_MODERATION_RULE_CREATE", &rule);
    Ok(ok(render_rule(&rule)))
}

async fn edit_rule(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, rule_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    InGuild(access, Body(body)): InGuild<{ bits::MANAGE_GUILD }, Body<RuleBody>>,
) -> ApiResult {
    let (old, rule) = {
        let _guard = state.store.lock();
        let mut rule = load(&state, guild_id, rule_id)?;
        let old = rule.clone();
        if body.trigger_type.is_some_and(|t| t != rule.trigger_type) {
            return Err(ApiError::invalid_field(
                "trigger_type",
                "AUTO_MODERATION_TRIGGER_TYPE_IMMUTABLE",
                "The trigger type of a rule cannot change.",
            ));
        }
        apply(&state, &access, &mut rule, body)?;
        state.store.automod_rules.put((guild_id, rule_id), &rule)?;
        (old, rule)
    };
    state.audit(
        guild_id,
        auth.id(),
        RULE_UPDATE,
        Some(rule_id),
        changes(vec![
            ("name", json!(old.name), json!(rule.name)),
            ("enabled", json!(old.enabled), json!(rule.enabled)),
        ]),
        None,
        reason,
    )?;
    publish(&state, "AUTO_MODERATION_RULE_UPDATE", &rule);
    Ok(ok(render_rule(&rule)))
}

async fn delete_rule(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, rule_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    _: InGuild<{ bits::MANAGE_GUILD }>,
) -> ApiResult {
    let rule = state
        .store
        .automod_rules
        .remove((guild_id, rule_id))?
        .ok_or_else(unknown_rule)?;
    state.audit(
        guild_id,
        auth.id(),
        RULE_DELETE,
        Some(rule_id),
        changes(vec![("name", json!(rule.name), Value::Null)]),
        None,
        reason,
    )?;
    publish(&state, "AUTO_MODERATION_RULE_DELETE", &rule);
    Ok(no_content())
}
