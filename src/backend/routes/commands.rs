//! Application commands: global and guild CRUD, bulk overwrite, and per-guild command
//! permissions (with APPLICATION_COMMAND_PERMISSIONS_UPDATE).
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{created, no_content, ok, ApiResult};
use crate::backend::error::{json_response, ApiError, Unknown, Validator};
use crate::backend::events::Dispatch;
use crate::backend::extract::{Auth, Body, Ids};
use crate::backend::model::{
    Application, ApplicationCommand, CommandPermission, CommandPermissions, User,
};
use crate::backend::permissions::bits;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;
use crate::backend::store::key3;

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
/// Permission entry types.
const PERMISSION_ROLE: u8 = 1;
const PERMISSION_USER: u8 = 2;
const PERMISSION_CHANNEL: u8 = 3;

/// Routes of this family.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/applications/{application_id}/commands",
            get(list_global).post(create_global).put(overwrite_global),
        )
        .route(
            "/applications/{application_id}/commands/{command_id}",
            get(get_global).patch(edit_global).delete(delete_global),
        )
        .route(
            "/applications/{application_id}/guilds/{guild_id}/commands",
            get(list_guild).post(create_guild).put(overwrite_guild),
        )
        .route(
            "/applications/{application_id}/guilds/{guild_id}/commands/permissions",
            get(list_permissions),
        )
        .route(
            "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
            get(get_guild).patch(edit_guild).delete(delete_guild),
        )
        .route(
            "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}/permissions",
            get(get_permissions).put(put_permissions),
        )
}

/// The application, if the caller is its bot or its owner (10002 unknown, 50001 otherwise).
fn owned_application(
    state: &AppState,
    application_id: Snowflake,
    caller: &User,
) -> Result<Application, ApiError> {
    let app = state
        .store
        .applications
        .get(application_id.be())?
        .ok_or(ApiError::NotFound(Unknown::Application))?;
    if caller.id != app.bot_id && caller.id != app.owner_id {
        return Err(ApiError::MissingAccess);
    }
    Ok(app)
}

/// The guild scope of a command: 10004 for an unknown guild, 50001 when the application's
/// bot is not in it (Discord's answer when the app lacks the applications.commands scope).
fn guild_scope(state: &AppState, app: &Application, guild_id: Snowflake) -> Result<(), ApiError> {
    state
        .store
        .guild(guild_id)?
        .ok_or(ApiError::NotFound(Unknown::Guild))?;
    if state.store.member(guild_id, app.bot_id)?.is_none() {
        return Err(ApiError::MissingAccess);
    }
    Ok(())
}

/// The scope key segment: the guild id, or 0 for global commands.
/// The middle key segment of a command: its guild, or 0 for global commands.
pub fn scope_key(guild_id: Option<Snowflake>) -> Snowflake {
    guild_id.unwrap_or_default()
}

fn scope_prefix(application_id: Snowflake, guild_id: Option<Snowflake>) -> [u8; 16] {
    crate::backend::store::key2(application_id, scope_key(guild_id))
}

fn scope_commands(
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
pub fn render(command: &ApplicationCommand) -> Value {
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
    let kind = kind.unwrap_or(0);
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    out.insert("name".into(), json!(name.unwrap_or_default()));
    out.insert("description".into(), json!(description.unwrap_or_default()));
    for key in ["name_localizations", "description_localizations"] {
        if let Some(value @ Value::Object(_)) = map.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    let nests = kind == SUB_COMMAND || kind == SUB_COMMAND_GROUP;
    if nests {
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
                    let choice_path = format!("{path}.{index}");
                    let choice_name = choice.get("name").and_then(Value::as_str);
                    match choice_name {
                        Some(text) => {
                            checks.length(&format!("{choice_path}.name"), Some(text), 1, 100)
                        }
                        None => checks.required(&format!("{choice_path}.name"), None::<&()>),
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
                            &format!("{choice_path}.value"),
                            "APPLICATION_COMMAND_OPTION_CHOICE_VALUE_INVALID",
                            "Choice value does not match the option type",
                        );
                    }
                    let mut entry =
                        json!({"name": choice_name.unwrap_or_default(), "value": value});
                    if let Some(loc @ Value::Object(_)) = choice.get("name_localizations") {
                        entry["name_localizations"] = loc.clone();
                    }
                    rendered.push(entry);
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

/// Validates a full command body (at `prefix`, `""` or `"N."` in a bulk list) into a command
/// with no id yet. `guild_id` decides which global-only fields apply.
/// Validates a command definition (Discord's create-command body) into a stored command
/// (id and version left for the caller); problems go to `checks` under `prefix`.
pub fn build_command(
    checks: &mut Validator,
    prefix: &str,
    body: &Value,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
) -> Option<ApplicationCommand> {
    let field = |name: &str| format!("{prefix}{name}");
    let Some(map) = body.as_object() else {
        checks.add(
            prefix.trim_end_matches('.'),
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        );
        return None;
    };
    let kind = match map.get("type") {
        None | Some(Value::Null) => CHAT_INPUT,
        Some(value) => match value.as_u64() {
            Some(kind @ 1..=3) => kind as u8,
            _ => {
                checks.add(
                    &field("type"),
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {1, 2, 3}.",
                );
                CHAT_INPUT
            }
        },
    };
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
    let options = build_options(checks, &field("options"), map.get("options"), 0, None);
    if kind != CHAT_INPUT && !options.is_empty() {
        checks.add(
            &field("options"),
            "APPLICATION_COMMAND_OPTIONS_NOT_ALLOWED",
            "User and message commands cannot have options",
        );
    }
    let default_member_permissions = match map.get("default_member_permissions") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.parse::<u64>().is_ok() => Some(text.clone()),
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(_) => {
            checks.add(
                &field("default_member_permissions"),
                "BASE_TYPE_INVALID",
                "Invalid permission value",
            );
            None
        }
    };
    let small_set = |name: &str, max: u64, checks: &mut Validator| -> Option<Option<Vec<u8>>> {
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
                checks.add(&field(name), "BASE_TYPE_ARRAY", "Must be an array.");
                None
            }
        }
    };
    let integration_types = small_set("integration_types", 1, checks).flatten();
    let contexts = small_set("contexts", 2, checks).flatten();
    let flag = |name: &str, checks: &mut Validator| -> Option<bool> {
        match map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(value)) => Some(*value),
            Some(_) => {
                checks.add(
                    &field(name),
                    "BASE_TYPE_BOOLEAN",
                    "Must be either true or false.",
                );
                None
            }
        }
    };
    let dm_permission = flag("dm_permission", checks);
    let nsfw = flag("nsfw", checks).unwrap_or(false);
    let localizations = |name: &str| map.get(name).and_then(Value::as_object).cloned();
    Some(ApplicationCommand {
        id: Snowflake::default(),
        application_id,
        guild_id,
        kind,
        name: name.unwrap_or_default().to_string(),
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

/// 30032 when a scope would hold more commands of one type than Discord allows.
fn check_limits(commands: &[ApplicationCommand]) -> Result<(), ApiError> {
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

async fn list(
    state: &AppState,
    auth: &Auth,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
) -> ApiResult {
    let app = owned_application(state, application_id, &auth.user)?;
    if let Some(guild_id) = guild_id {
        guild_scope(state, &app, guild_id)?;
    }
    let commands = scope_commands(state, application_id, guild_id)?;
    Ok(ok(Value::Array(commands.iter().map(render).collect())))
}

async fn create(
    state: &AppState,
    auth: &Auth,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
    body: Value,
) -> ApiResult {
    let app = owned_application(state, application_id, &auth.user)?;
    if let Some(guild_id) = guild_id {
        guild_scope(state, &app, guild_id)?;
    }
    let mut checks = Validator::default();
    let command = build_command(&mut checks, "", &body, application_id, guild_id);
    checks.finish()?;
    let Some(mut command) = command else {
        return Err(ApiError::Internal("command body vanished".into()));
    };
    let _guard = state.store.lock();
    let mut existing = scope_commands(state, application_id, guild_id)?;
    // Same name and type in the scope: Discord overwrites that command and answers 200.
    let replaced = existing
        .iter()
        .position(|c| c.name == command.name && c.kind == command.kind);
    command.version = state.store.next_id();
    let status = match replaced {
        Some(index) => {
            command.id = existing[index].id;
            existing[index] = command.clone();
            StatusCode::OK
        }
        None => {
            command.id = state.store.next_id();
            existing.push(command.clone());
            StatusCode::CREATED
        }
    };
    check_limits(&existing)?;
    state.store.commands.put(
        key3(application_id, scope_key(guild_id), command.id),
        &command,
    )?;
    let body = render(&command);
    Ok(if status == StatusCode::CREATED {
        created(body)
    } else {
        json_response(status, &body)
    })
}

async fn overwrite(
    state: &AppState,
    auth: &Auth,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
    body: Value,
) -> ApiResult {
    let app = owned_application(state, application_id, &auth.user)?;
    if let Some(guild_id) = guild_id {
        guild_scope(state, &app, guild_id)?;
    }
    let Some(items) = body.as_array() else {
        return Err(ApiError::invalid_field(
            "",
            "BASE_TYPE_ARRAY",
            "Must be an array.",
        ));
    };
    let mut checks = Validator::default();
    let mut built: Vec<(Option<Snowflake>, ApplicationCommand)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if let Some(command) = build_command(
            &mut checks,
            &format!("{index}."),
            item,
            application_id,
            guild_id,
        ) {
            if built
                .iter()
                .any(|(_, c)| c.name == command.name && c.kind == command.kind)
            {
                checks.add(
                    &format!("{index}.name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                );
            }
            built.push((
                item.get("id")
                    .and_then(Value::as_str)
                    .and_then(Snowflake::parse),
                command,
            ));
        }
    }
    checks.finish()?;
    let commands: Vec<ApplicationCommand> = built.iter().map(|(_, c)| c.clone()).collect();
    check_limits(&commands)?;
    let _guard = state.store.lock();
    let existing = scope_commands(state, application_id, guild_id)?;
    let mut kept = Vec::new();
    for (id, mut command) in built {
        // Keep the id of the command this one replaces (by explicit id, else by name + type).
        let previous = existing.iter().find(|c| Some(c.id) == id).or_else(|| {
            existing
                .iter()
                .find(|c| c.name == command.name && c.kind == command.kind)
        });
        command.id = previous.map_or_else(|| state.store.next_id(), |c| c.id);
        command.version = match previous {
            Some(old) if same_definition(old, &command) => old.version,
            _ => state.store.next_id(),
        };
        kept.push(command);
    }
    for old in &existing {
        if !kept.iter().any(|c| c.id == old.id) {
            state
                .store
                .commands
                .remove(key3(application_id, scope_key(guild_id), old.id))?;
            if let Some(guild_id) = guild_id {
                state
                    .store
                    .command_permissions
                    .remove(key3(application_id, guild_id, old.id))?;
            }
        }
    }
    for command in &kept {
        state.store.commands.put(
            key3(application_id, scope_key(guild_id), command.id),
            command,
        )?;
    }
    Ok(ok(Value::Array(kept.iter().map(render).collect())))
}

/// Whether two commands differ only in id and version.
fn same_definition(a: &ApplicationCommand, b: &ApplicationCommand) -> bool {
    let strip = |c: &ApplicationCommand| ApplicationCommand {
        id: Snowflake::default(),
        version: Snowflake::default(),
        ..c.clone()
    };
    strip(a) == strip(b)
}

fn load_command(
    state: &AppState,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
    command_id: Snowflake,
) -> Result<ApplicationCommand, ApiError> {
    state
        .store
        .commands
        .get(key3(application_id, scope_key(guild_id), command_id))?
        .ok_or(ApiError::NotFound(Unknown::ApplicationCommand))
}

async fn fetch(
    state: &AppState,
    auth: &Auth,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
    command_id: Snowflake,
) -> ApiResult {
    let app = owned_application(state, application_id, &auth.user)?;
    if let Some(guild_id) = guild_id {
        guild_scope(state, &app, guild_id)?;
    }
    let command = load_command(state, application_id, guild_id, command_id)?;
    Ok(ok(render(&command)))
}

async fn edit(
    state: &AppState,
    auth: &Auth,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
    command_id: Snowflake,
    body: Value,
) -> ApiResult {
    let app = owned_application(state, application_id, &auth.user)?;
    if let Some(guild_id) = guild_id {
        guild_scope(state, &app, guild_id)?;
    }
    let Some(patch) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "",
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        ));
    };
    let _guard = state.store.lock();
    let old = load_command(state, application_id, guild_id, command_id)?;
    // Apply the patch over the stored definition, then validate the result as a whole.
    let mut merged = render(&old);
    if let Some(target) = merged.as_object_mut() {
        for (key, value) in patch {
            if key == "type" {
                continue;
            }
            target.insert(key.clone(), value.clone());
        }
    }
    let mut checks = Validator::default();
    let command = build_command(&mut checks, "", &merged, application_id, guild_id);
    if let Some(command) = &command {
        let taken = scope_commands(state, application_id, guild_id)?
            .iter()
            .any(|c| c.id != command_id && c.name == command.name && c.kind == old.kind);
        if taken {
            return Err(ApiError::bad_request(
                40041,
                "An application command with that name already exists",
            ));
        }
    }
    checks.finish()?;
    let Some(mut command) = command else {
        return Err(ApiError::Internal("command body vanished".into()));
    };
    command.id = old.id;
    command.kind = old.kind;
    command.version = if same_definition(&old, &command) {
        old.version
    } else {
        state.store.next_id()
    };
    state.store.commands.put(
        key3(application_id, scope_key(guild_id), command_id),
        &command,
    )?;
    Ok(ok(render(&command)))
}

async fn remove(
    state: &AppState,
    auth: &Auth,
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
    command_id: Snowflake,
) -> ApiResult {
    let app = owned_application(state, application_id, &auth.user)?;
    if let Some(guild_id) = guild_id {
        guild_scope(state, &app, guild_id)?;
    }
    state
        .store
        .commands
        .remove(key3(application_id, scope_key(guild_id), command_id))?
        .ok_or(ApiError::NotFound(Unknown::ApplicationCommand))?;
    if let Some(guild_id) = guild_id {
        state
            .store
            .command_permissions
            .remove(key3(application_id, guild_id, command_id))?;
    }
    Ok(no_content())
}

async fn list_global(
    State(state): State<AppState>,
    auth: Auth,
    Ids(application_id): Ids<Snowflake>,
) -> ApiResult {
    list(&state, &auth, application_id, None).await
}

async fn create_global(
    State(state): State<AppState>,
    auth: Auth,
    Ids(application_id): Ids<Snowflake>,
    Body(body): Body<Value>,
) -> ApiResult {
    create(&state, &auth, application_id, None, body).await
}

async fn overwrite_global(
    State(state): State<AppState>,
    auth: Auth,
    Ids(application_id): Ids<Snowflake>,
    Body(body): Body<Value>,
) -> ApiResult {
    overwrite(&state, &auth, application_id, None, body).await
}

async fn get_global(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, command_id)): Ids<(Snowflake, Snowflake)>,
) -> ApiResult {
    fetch(&state, &auth, application_id, None, command_id).await
}

async fn edit_global(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, command_id)): Ids<(Snowflake, Snowflake)>,
    Body(body): Body<Value>,
) -> ApiResult {
    edit(&state, &auth, application_id, None, command_id, body).await
}

async fn delete_global(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, command_id)): Ids<(Snowflake, Snowflake)>,
) -> ApiResult {
    remove(&state, &auth, application_id, None, command_id).await
}

async fn list_guild(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, guild_id)): Ids<(Snowflake, Snowflake)>,
) -> ApiResult {
    list(&state, &auth, application_id, Some(guild_id)).await
}

async fn create_guild(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, guild_id)): Ids<(Snowflake, Snowflake)>,
    Body(body): Body<Value>,
) -> ApiResult {
    create(&state, &auth, application_id, Some(guild_id), body).await
}

async fn overwrite_guild(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, guild_id)): Ids<(Snowflake, Snowflake)>,
    Body(body): Body<Value>,
) -> ApiResult {
    overwrite(&state, &auth, application_id, Some(guild_id), body).await
}

async fn get_guild(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, guild_id, command_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
) -> ApiResult {
    fetch(&state, &auth, application_id, Some(guild_id), command_id).await
}

async fn edit_guild(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, guild_id, command_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
    Body(body): Body<Value>,
) -> ApiResult {
    edit(
        &state,
        &auth,
        application_id,
        Some(guild_id),
        command_id,
        body,
    )
    .await
}

async fn delete_guild(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, guild_id, command_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
) -> ApiResult {
    remove(&state, &auth, application_id, Some(guild_id), command_id).await
}

/// Who may read an application's command permissions in a guild: its bot/owner, or a member
/// who could edit them.
fn permission_reader(
    state: &AppState,
    auth: &Auth,
    application_id: Snowflake,
    guild_id: Snowflake,
) -> Result<Application, ApiError> {
    let app = state
        .store
        .applications
        .get(application_id.be())?
        .ok_or(ApiError::NotFound(Unknown::Application))?;
    if auth.id() == app.bot_id || auth.id() == app.owner_id {
        guild_scope(state, &app, guild_id)?;
    } else {
        state.guild_access_requiring(guild_id, auth.id(), bits::MANAGE_GUILD)?;
        guild_scope(state, &app, guild_id)?;
    }
    Ok(app)
}

fn render_permissions(permissions: &CommandPermissions) -> Value {
    json!({
        "id": permissions.id,
        "application_id": permissions.application_id,
        "guild_id": permissions.guild_id,
        "permissions": permissions.permissions,
    })
}

async fn list_permissions(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, guild_id)): Ids<(Snowflake, Snowflake)>,
) -> ApiResult {
    permission_reader(&state, &auth, application_id, guild_id)?;
    let all = state
        .store
        .command_permissions
        .values(crate::backend::store::key2(application_id, guild_id))?;
    Ok(ok(Value::Array(
        all.iter().map(render_permissions).collect(),
    )))
}

async fn get_permissions(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, guild_id, command_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
) -> ApiResult {
    permission_reader(&state, &auth, application_id, guild_id)?;
    let permissions = state
        .store
        .command_permissions
        .get(key3(application_id, guild_id, command_id))?
        .ok_or(ApiError::NotFound(Unknown::CommandPermissions))?;
    Ok(ok(render_permissions(&permissions)))
}

#[derive(Deserialize)]
struct PermissionsBody {
    permissions: Vec<PermissionEntry>,
}

#[derive(Deserialize)]
struct PermissionEntry {
    id: Snowflake,
    #[serde(rename = "type")]
    kind: u8,
    permission: bool,
}

/// Edits a command's permissions in a guild. Discord only accepts this from a user (an OAuth2
/// bearer with applications.commands.permissions.update) who holds MANAGE_GUILD and
/// MANAGE_ROLES; a bot token gets 20001.
async fn put_permissions(
    State(state): State<AppState>,
    auth: Auth,
    Ids((application_id, guild_id, command_id)): Ids<(Snowflake, Snowflake, Snowflake)>,
    Body(body): Body<PermissionsBody>,
) -> ApiResult {
    if auth.user.bot {
        return Err(ApiError::forbidden(20001, "Bots cannot use this endpoint"));
    }
    let app = state
        .store
        .applications
        .get(application_id.be())?
        .ok_or(ApiError::NotFound(Unknown::Application))?;
    state.guild_access_requiring(guild_id, auth.id(), bits::MANAGE_GUILD | bits::MANAGE_ROLES)?;
    guild_scope(&state, &app, guild_id)?;
    // The application's own id stands for "every command"; anything else must be a command
    // of this application, global or in this guild.
    if command_id != application_id
        && load_command(&state, application_id, Some(guild_id), command_id).is_err()
        && load_command(&state, application_id, None, command_id).is_err()
    {
        return Err(ApiError::NotFound(Unknown::ApplicationCommand));
    }
    let mut checks = Validator::default();
    if body.permissions.len() > 100 {
        checks.add(
            "permissions",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 100 or fewer in length.",
        );
    }
    // The guild id minus one means "every channel", as on Discord.
    let all_channels = Snowflake(guild_id.0.saturating_sub(1));
    for (index, entry) in body.permissions.iter().enumerate() {
        let path = format!("permissions.{index}.id");
        let known = match entry.kind {
            PERMISSION_ROLE => state.store.role(guild_id, entry.id)?.is_some(),
            PERMISSION_USER => {
                state.store.member(guild_id, entry.id)?.is_some()
                    || state.store.user(entry.id)?.is_some()
            }
            PERMISSION_CHANNEL => {
                entry.id == all_channels
                    || state
                        .store
                        .channel(entry.id)?
                        .is_some_and(|c| c.guild_id == Some(guild_id))
            }
            _ => {
                checks.add(
                    &format!("permissions.{index}.type"),
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {1, 2, 3}.",
                );
                true
            }
        };
        if !known {
            checks.add(
                &path,
                "APPLICATION_COMMAND_PERMISSIONS_INVALID_ID",
                "Unknown role, user or channel",
            );
        }
    }
    checks.finish()?;
    let permissions = CommandPermissions {
        id: command_id,
        application_id,
        guild_id,
        permissions: body
            .permissions
            .into_iter()
            .map(|e| CommandPermission {
                id: e.id,
                kind: e.kind,
                permission: e.permission,
            })
            .collect(),
    };
    let key = key3(application_id, guild_id, command_id);
    if permissions.permissions.is_empty() {
        state.store.command_permissions.remove(key)?;
    } else {
        state.store.command_permissions.put(key, &permissions)?;
    }
    let data = render_permissions(&permissions);
    state.publish(Dispatch::users(
        "APPLICATION_COMMAND_PERMISSIONS_UPDATE",
        vec![app.bot_id],
        0,
        data.clone(),
    ));
    Ok(ok(data))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::valid_slash_name;
    use crate::backend::events::Audience;
    use crate::backend::routes::test_support::call;
    use crate::backend::snowflake::Snowflake;
    use crate::backend::state::{AppState, Config};
    use crate::backend::store::Store;
    use crate::backend::world::load_fixture_bytes;

    const FIXTURE: &str = r#"{"users": [
      {"id": "11", "username": "alice", "token": "alice"},
      {"id": "12", "username": "pingbot", "bot": true, "token": "bot"}],
     "guilds": [{"id": "100", "name": "Guild", "owner_id": "11",
       "channels": [{"id": "110", "name": "general", "type": 0}],
       "members": [{"user_id": "11"}, {"user_id": "12"}]}]}"#;

    #[tokio::test]
    async fn permission_edits_notify_the_application_bot() {
        let store = Store::temporary().unwrap();
        load_fixture_bytes(&store, FIXTURE.as_bytes(), "fixture").unwrap();
        let state = AppState::new(store, Config::default());
        let mut events = state.bus.subscribe();
        let (status, command) = call(
            &state,
            "POST",
            "/applications/12/guilds/100/commands",
            "Bot bot",
            json!({"name": "ping", "description": "p"}),
        )
        .await;
        assert_eq!(status, 201, "{command}");
        assert!(events.try_recv().is_err(), "command CRUD sends no dispatch");
        let id = command["id"].as_str().unwrap();
        let (status, body) = call(
            &state,
            "PUT",
            &format!("/applications/12/guilds/100/commands/{id}/permissions"),
            "alice",
            json!({"permissions": [{"id": "100", "type": 1, "permission": false},
                                   {"id": "99", "type": 3, "permission": true}]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let event = events.try_recv().unwrap();
        assert_eq!(event.name, "APPLICATION_COMMAND_PERMISSIONS_UPDATE");
        assert_eq!(event.audience, Audience::Users(vec![Snowflake(12)]));
        assert_eq!(event.data, body);
        assert_eq!(
            event.data["permissions"][1]["id"], "99",
            "guild id - 1 = all channels"
        );
    }

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
