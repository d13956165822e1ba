//! Application commands as data: validating a command definition into a stored command, its
//! v10 JSON shape, and the per-scope lists and limits; shared by the command routes and the
//! fixtures (`world`).
use serde_json::{json, Map, Value};

use crate::backend::error::{ApiError, Validator};
use crate::backend::model::ApplicationCommand;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Command types: CHAT_INPUT, USER, MESSAGE.
const CHAT_INPUT: u8 = 1;
/// Option types that nest other options.
const SUB_COMMAND: u64 = 1;
const SUB_COMMAND_GROUP: u64 = 2;
/// Option types that may carry choices.
const STRING: u64 = 3;
const INTEGER: u64 = 4;
const CHANNEL: u64 = 7;
const NUMBER: u64 = 10;
/// The middle key segment of a command: its guild, or 0 for global commands.
pub(crate) fn scope_key(guild_id: Option<Snowflake>) -> Snowflake {
    guild_id.unwrap_or_default()
}

fn scope_prefix(application_id: Snowflake, guild_id: Option<Snowflake>) -> (Snowflake, Snowflake) {
    (application_id, scope_key(guild_id))
}

pub(crate) fn scope_commands(
    state: &AppState,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
) -> Result<Vec<ApplicationCommand>, ApiError> {
    Ok(state
        .store
        .commands
        .values(scope_prefix(application_id, guild_id))?)
}

/// The v10 JSON shape of a command.
pub(crate) fn render(command: &ApplicationCommand) -> Value {
    let mut value = json!({
        "id": command.id,
        "application_id": command.application_id,
        "version": command.version,
        "default_member_permissions": command.default_member_permissions,
        "type": command.kind,
        "name": command.name,
        "name_localizations": command.name_localizations,
        "description": command.description,
        "description_localizations": command.description_localizations,
        "nsfw": command.nsfw,
        "integration_types": command.integration_types,
        "contexts": command.contexts,
    });
    if !command.options.is_empty() {
        value["options"] = Value::Array(command.options.clone());
    }
    match command.guild_id {
        Some(guild_id) => value["guild_id"] = json!(guild_id),
        None => value["dm_permission"] = json!(command.dm_permission.unwrap_or(true)),
    }
    value
}

/// Whether `name` is a valid CHAT_INPUT / option name: 1–32 lowercase letters, digits, `-`, `_`.
fn valid_slash_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=32).contains(&count)
        && name.chars().all(|c| {
            (c.is_alphanumeric() || c == '-' || c == '_') && c.to_lowercase().eq(std::iter::once(c))
        })
}

fn check_localizations(checks: &mut Validator, path: &str, value: Option<&Value>, max: usize) {
    let Some(value) = value else { return };
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (locale, text) in map {
                match text.as_str() {
                    Some(text) => checks.length(&format!("{path}.{locale}"), Some(text), 1, max),
                    None => checks.add(
                        &format!("{path}.{locale}"),
                        "BASE_TYPE_STRING",
                        "Must be a string.",
                    ),
                }
            }
        }
        _ => checks.add(
            path,
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        ),
    }
}

/// Validates one option (at `path`) and returns it in the response shape.
fn build_option(checks: &mut Validator, path: &str, option: &Value, depth: usize) -> Option<Value> {
    let Some(map) = option.as_object() else {
        checks.add(
            path,
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        );
        return None;
    };
    let kind = check_option_head(checks, path, map);
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    for key in ["name", "description"] {
        let text = map.get(key).and_then(Value::as_str).unwrap_or_default();
        out.insert(key.into(), json!(text));
    }
    for key in ["name_localizations", "description_localizations"] {
        if let Some(value @ Value::Object(_)) = map.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    if kind == SUB_COMMAND || kind == SUB_COMMAND_GROUP {
        build_nested_options(checks, path, map, kind, depth, &mut out);
        return Some(Value::Object(out));
    }
    if map.get("options").is_some_and(given) {
        checks.add(
            &format!("{path}.options"),
            "APPLICATION_COMMAND_OPTION_OPTIONS_NOT_ALLOWED",
            "Only subcommands and subcommand groups may have options",
        );
    }
    match map.get("required") {
        Some(Value::Bool(required)) => {
            out.insert("required".into(), json!(required));
        }
        None | Some(Value::Null) => {}
        Some(_) => checks.add(
            &format!("{path}.required"),
            "BASE_TYPE_BOOLEAN",
            "Must be either true or false.",
        ),
    }
    build_choices(checks, path, map, kind, &mut out);
    build_bounds(checks, path, map, kind, &mut out);
    if let Some(types) = map.get("channel_types").filter(|v| given(v)) {
        match types.as_array() {
            Some(list)
                if kind == CHANNEL && list.iter().all(|t| t.as_u64().is_some_and(|t| t <= 16)) =>
            {
                out.insert("channel_types".into(), types.clone());
            }
            _ => checks.add(
                &format!("{path}.channel_types"),
                "BASE_TYPE_CHOICES",
                "Only channel options may restrict channel types, to known types",
            ),
        }
    }
    Some(Value::Object(out))
}

/// Checks an option's type, name, description and their localizations; returns its type (0
/// when missing).
fn check_option_head(checks: &mut Validator, path: &str, map: &Map<String, Value>) -> u64 {
    let kind = map.get("type").and_then(Value::as_u64);
    let name = map.get("name").and_then(Value::as_str);
    let description = map.get("description").and_then(Value::as_str);
    match kind {
        Some(1..=11) => {}
        Some(_) => checks.add(
            &format!("{path}.type"),
            "BASE_TYPE_CHOICES",
            "Value must be one of {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}.",
        ),
        None => checks.required(&format!("{path}.type"), None::<&()>),
    }
    match name {
        Some(name) if !valid_slash_name(name) => checks.add(
            &format!("{path}.name"),
            "APPLICATION_COMMAND_INVALID_NAME",
            "Command name is invalid",
        ),
        Some(_) => {}
        None => checks.required(&format!("{path}.name"), None::<&()>),
    }
    match description {
        Some(text) => checks.length(&format!("{path}.description"), Some(text), 1, 100),
        None => checks.required(&format!("{path}.description"), None::<&()>),
    }
    check_localizations(
        checks,
        &format!("{path}.name_localizations"),
        map.get("name_localizations"),
        32,
    );
    check_localizations(
        checks,
        &format!("{path}.description_localizations"),
        map.get("description_localizations"),
        100,
    );
    kind.unwrap_or(0)
}

/// The options of a subcommand or subcommand group: nesting depth checked, children built.
fn build_nested_options(
    checks: &mut Validator,
    path: &str,
    map: &Map<String, Value>,
    kind: u64,
    depth: usize,
    out: &mut Map<String, Value>,
) {
    if kind == SUB_COMMAND_GROUP && depth > 0 {
        checks.add(
            &format!("{path}.type"),
            "APPLICATION_COMMAND_OPTION_INVALID_NESTING",
            "Subcommand groups can only be nested at the top level",
        );
    }
    if kind == SUB_COMMAND && depth > 1 {
        checks.add(
            &format!("{path}.type"),
            "APPLICATION_COMMAND_OPTION_INVALID_NESTING",
            "Subcommands can only be nested twice",
        );
    }
    let children = build_options(
        checks,
        &format!("{path}.options"),
        map.get("options"),
        depth + 1,
        Some(kind),
    );
    if !children.is_empty() {
        out.insert("options".into(), Value::Array(children));
    }
}

/// An option's `choices` and `autocomplete`: allowed only on string, integer and number options,
/// never both.
fn build_choices(
    checks: &mut Validator,
    path: &str,
    map: &Map<String, Value>,
    kind: u64,
    out: &mut Map<String, Value>,
) {
    let choosable = kind == STRING || kind == INTEGER || kind == NUMBER;
    let autocomplete = map
        .get("autocomplete")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(choices) = map.get("choices").filter(|c| given(c)) {
        let path = format!("{path}.choices");
        if !choosable {
            checks.add(
                &path,
                "APPLICATION_COMMAND_OPTION_CHOICES_NOT_ALLOWED",
                "Only string, integer and number options may have choices",
            );
        } else if autocomplete {
            checks.add(
                &path,
                "APPLICATION_COMMAND_AUTOCOMPLETE_CHOICES",
                "Autocomplete cannot be enabled on an option with choices",
            );
        }
        match choices.as_array() {
            Some(list) if list.len() > 25 => checks.add(
                &path,
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ),
            Some(list) => {
                let mut rendered = Vec::new();
                for (index, choice) in list.iter().enumerate() {
                    rendered.push(build_choice(
                        checks,
                        &format!("{path}.{index}"),
                        choice,
                        kind,
                    ));
                }
                if choosable {
                    out.insert("choices".into(), Value::Array(rendered));
                }
            }
            None => checks.add(&path, "BASE_TYPE_ARRAY", "Must be an array."),
        }
    }
    if autocomplete {
        if choosable {
            out.insert("autocomplete".into(), json!(true));
        } else {
            checks.add(
                &format!("{path}.autocomplete"),
                "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
                "Only string, integer and number options may autocomplete",
            );
        }
    }
}

/// One choice (at `path`): its name, and a value of the option's type.
fn build_choice(checks: &mut Validator, path: &str, choice: &Value, kind: u64) -> Value {
    let choice_name = choice.get("name").and_then(Value::as_str);
    match choice_name {
        Some(text) => checks.length(&format!("{path}.name"), Some(text), 1, 100),
        None => checks.required(&format!("{path}.name"), None::<&()>),
    }
    let value = choice.get("value").cloned().unwrap_or(Value::Null);
    let fits = match kind {
        STRING => value
            .as_str()
            .is_some_and(|s| (1..=100).contains(&s.chars().count())),
        INTEGER => value.is_i64() || value.is_u64(),
        _ => value.is_number(),
    };
    if !fits {
        checks.add(
            &format!("{path}.value"),
            "APPLICATION_COMMAND_OPTION_CHOICE_VALUE_INVALID",
            "Choice value does not match the option type",
        );
    }
    let mut entry = json!({"name": choice_name.unwrap_or_default(), "value": value});
    if let Some(loc @ Value::Object(_)) = choice.get("name_localizations") {
        entry["name_localizations"] = loc.clone();
    }
    entry
}

/// An option's `min_value`/`max_value` (integer and number options) and
/// `min_length`/`max_length` (string options).
fn build_bounds(
    checks: &mut Validator,
    path: &str,
    map: &Map<String, Value>,
    kind: u64,
    out: &mut Map<String, Value>,
) {
    for key in ["min_value", "max_value"] {
        if let Some(value) = map.get(key).filter(|v| !v.is_null()) {
            if (kind == INTEGER && (value.is_i64() || value.is_u64()))
                || (kind == NUMBER && value.is_number())
            {
                out.insert(key.into(), value.clone());
            } else {
                checks.add(
                    &format!("{path}.{key}"),
                    "BASE_TYPE_NUMBER",
                    "Only integer and number options may have bounds of their type",
                );
            }
        }
    }
    if let (Some(min), Some(max)) = (
        out.get("min_value").and_then(Value::as_f64),
        out.get("max_value").and_then(Value::as_f64),
    ) {
        if min > max {
            checks.add(
                &format!("{path}.min_value"),
                "NUMBER_TYPE_MAX",
                "min_value must not exceed max_value",
            );
        }
    }
    for key in ["min_length", "max_length"] {
        if let Some(value) = map.get(key).filter(|v| !v.is_null()) {
            match value.as_i64() {
                Some(n) if kind == STRING && (0..=6000).contains(&n) => {
                    out.insert(key.into(), json!(n));
                }
                _ => checks.add(
                    &format!("{path}.{key}"),
                    "NUMBER_TYPE_OUT_OF_RANGE",
                    "int value should be between 0 and 6000.",
                ),
            }
        }
    }
}

/// Whether an option field is really set: serenity sends `"options": []`, `"choices": []` and
/// `"channel_types": []` on every option, which Discord takes as absent.
fn given(value: &Value) -> bool {
    !value.is_null() && value.as_array().is_none_or(|list| !list.is_empty())
}

/// Validates a list of options (top level when `parent` is None).
fn build_options(
    checks: &mut Validator,
    path: &str,
    options: Option<&Value>,
    depth: usize,
    parent: Option<u64>,
) -> Vec<Value> {
    let list = match options {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(list)) => list,
        Some(_) => {
            checks.add(path, "BASE_TYPE_ARRAY", "Must be an array.");
            return Vec::new();
        }
    };
    if list.len() > 25 {
        checks.add(
            path,
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        );
        return Vec::new();
    }
    let mut built = Vec::new();
    for (index, option) in list.iter().enumerate() {
        if let Some(option) = build_option(checks, &format!("{path}.{index}"), option, depth) {
            built.push(option);
        }
    }
    let kinds: Vec<u64> = built.iter().filter_map(|o| o["type"].as_u64()).collect();
    let nesting = kinds
        .iter()
        .filter(|k| **k == SUB_COMMAND || **k == SUB_COMMAND_GROUP)
        .count();
    if parent == Some(SUB_COMMAND_GROUP) && nesting != kinds.len() {
        checks.add(
            path,
            "APPLICATION_COMMAND_OPTION_INVALID_NESTING",
            "Subcommand groups may only contain subcommands",
        );
    } else if parent == Some(SUB_COMMAND) && nesting > 0 {
        checks.add(
            path,
            "APPLICATION_COMMAND_OPTION_INVALID_NESTING",
            "Subcommands cannot contain subcommands",
        );
    } else if nesting != 0 && nesting != kinds.len() {
        checks.add(
            path,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Options cannot mix subcommands with other option types",
        );
    }
    let mut seen_optional = false;
    for (index, option) in built.iter().enumerate() {
        let required = option["required"].as_bool().unwrap_or(false);
        if required && seen_optional {
            checks.add(
                &format!("{path}.{index}.required"),
                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                "Required options must be placed before non-required options",
            );
        }
        seen_optional |= !required;
        let name = option["name"].as_str().unwrap_or_default();
        if built[..index]
            .iter()
            .any(|o| o["name"].as_str() == Some(name))
        {
            checks.add(
                &format!("{path}.{index}.name"),
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            );
        }
    }
    built
}

/// Validates a command definition (Discord's create-command body, at `prefix`: `""`, or `"N."`
/// in a bulk list) into a stored command (id and version left for the caller); problems go to
/// `checks`. `guild_id` decides which global-only fields apply.
pub(crate) fn build_command(
    checks: &mut Validator,
    prefix: &str,
    body: &Value,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
) -> Option<ApplicationCommand> {
    let Some(map) = body.as_object() else {
        checks.add(
            prefix.trim_end_matches('.'),
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        );
        return None;
    };
    let kind = command_kind(checks, prefix, map);
    let (name, description) = check_command_texts(checks, prefix, map, kind);
    let options_path = format!("{prefix}options");
    let options = build_options(checks, &options_path, map.get("options"), 0, None);
    if kind != CHAT_INPUT && !options.is_empty() {
        checks.add(
            &options_path,
            "APPLICATION_COMMAND_OPTIONS_NOT_ALLOWED",
            "User and message commands cannot have options",
        );
    }
    let default_member_permissions = member_permissions(checks, prefix, map);
    let integration_types = small_set(checks, prefix, map, "integration_types", 1).flatten();
    let contexts = small_set(checks, prefix, map, "contexts", 2).flatten();
    let dm_permission = flag(checks, prefix, map, "dm_permission");
    let nsfw = flag(checks, prefix, map, "nsfw").unwrap_or(false);
    let localizations = |name: &str| map.get(name).and_then(Value::as_object).cloned();
    Some(ApplicationCommand {
        id: Snowflake::default(),
        application_id,
        guild_id,
        kind,
        name: name.to_string(),
        name_localizations: localizations("name_localizations"),
        description: description.to_string(),
        description_localizations: localizations("description_localizations"),
        options,
        default_member_permissions,
        dm_permission: if guild_id.is_some() {
            None
        } else {
            Some(dm_permission.unwrap_or(true))
        },
        nsfw,
        integration_types: integration_types.unwrap_or_else(|| vec![0]),
        contexts: if guild_id.is_some() { None } else { contexts },
        version: Snowflake::default(),
    })
}

/// A command's `type` (CHAT_INPUT when absent or invalid).
fn command_kind(checks: &mut Validator, prefix: &str, map: &Map<String, Value>) -> u8 {
    match map.get("type") {
        None | Some(Value::Null) => CHAT_INPUT,
        Some(value) => match value.as_u64() {
            Some(kind @ 1..=3) => kind as u8,
            _ => {
                checks.add(
                    &format!("{prefix}type"),
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {1, 2, 3}.",
                );
                CHAT_INPUT
            }
        },
    }
}

/// Checks a command's name, description and their localizations for its type; returns the name
/// and description (empty when missing).
fn check_command_texts<'a>(
    checks: &mut Validator,
    prefix: &str,
    map: &'a Map<String, Value>,
    kind: u8,
) -> (&'a str, &'a str) {
    let field = |name: &str| format!("{prefix}{name}");
    let name = map.get("name").and_then(Value::as_str);
    match name {
        None => checks.required(&field("name"), None::<&()>),
        Some(name) if kind == CHAT_INPUT && !valid_slash_name(name) => checks.add(
            &field("name"),
            "APPLICATION_COMMAND_INVALID_NAME",
            "Command name is invalid",
        ),
        Some(name) => checks.length(&field("name"), Some(name), 1, 32),
    }
    let description = map
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind == CHAT_INPUT {
        checks.length(&field("description"), Some(description), 1, 100);
    } else if !description.is_empty() {
        checks.add(
            &field("description"),
            "APPLICATION_COMMAND_DESCRIPTION_NOT_ALLOWED",
            "User and message commands cannot have a description",
        );
    }
    check_localizations(
        checks,
        &field("name_localizations"),
        map.get("name_localizations"),
        32,
    );
    check_localizations(
        checks,
        &field("description_localizations"),
        map.get("description_localizations"),
        100,
    );
    (name.unwrap_or_default(), description)
}

/// A command's `default_member_permissions`: a permission bit set, as a string or a number.
fn member_permissions(
    checks: &mut Validator,
    prefix: &str,
    map: &Map<String, Value>,
) -> Option<String> {
    match map.get("default_member_permissions") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.parse::<u64>().is_ok() => Some(text.clone()),
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(_) => {
            checks.add(
                &format!("{prefix}default_member_permissions"),
                "BASE_TYPE_INVALID",
                "Invalid permission value",
            );
            None
        }
    }
}

/// A set of small numbers (`integration_types`, `contexts`) each at most `max`, duplicates
/// dropped: None when absent or not an array, `Some(None)` when null.
fn small_set(
    checks: &mut Validator,
    prefix: &str,
    map: &Map<String, Value>,
    name: &str,
    max: u64,
) -> Option<Option<Vec<u8>>> {
    match map.get(name) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Array(items)) => {
            let mut out: Vec<u8> = Vec::new();
            for (index, item) in items.iter().enumerate() {
                match item.as_u64() {
                    Some(n) if n <= max => {
                        if !out.contains(&(n as u8)) {
                            out.push(n as u8)
                        }
                    }
                    _ => checks.add(
                        &format!("{prefix}{name}.{index}"),
                        "BASE_TYPE_CHOICES",
                        format!("Value must be between 0 and {max}."),
                    ),
                }
            }
            Some(Some(out))
        }
        Some(_) => {
            checks.add(
                &format!("{prefix}{name}"),
                "BASE_TYPE_ARRAY",
                "Must be an array.",
            );
            None
        }
    }
}

/// A boolean field of a command body (None when absent or null).
fn flag(
    checks: &mut Validator,
    prefix: &str,
    map: &Map<String, Value>,
    name: &str,
) -> Option<bool> {
    match map.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(value)) => Some(*value),
        Some(_) => {
            checks.add(
                &format!("{prefix}{name}"),
                "BASE_TYPE_BOOLEAN",
                "Must be either true or false.",
            );
            None
        }
    }
}

/// 30032 when a scope would hold more commands of one type than Discord allows.
pub(crate) fn check_limits(commands: &[ApplicationCommand]) -> Result<(), ApiError> {
    for (kind, max) in [(1u8, 100usize), (2, 15), (3, 15)] {
        if commands.iter().filter(|c| c.kind == kind).count() > max {
            return Err(ApiError::bad_request(
                30032,
                format!("Maximum number of application commands reached ({max})"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_slash_name;

    #[test]
    fn slash_names_follow_discords_rule() {
        assert!(valid_slash_name("ping"));
        assert!(valid_slash_name("set-mode_2"));
        assert!(valid_slash_name("über"));
        assert!(!valid_slash_name("Ping"));
        assert!(!valid_slash_name("two words"));
        assert!(!valid_slash_name(""));
        assert!(!valid_slash_name(&"a".repeat(33)));
    }
}
