//! Application commands: global and guild CRUD, bulk overwrite, and per-guild command
//! permissions (with APPLICATION_COMMAND_PERMISSIONS_UPDATE).
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, ApiResult};
use crate::backend::error::{json_response, ApiError, Unknown, Validator};
use crate::backend::events::Dispatch;
use crate::backend::extract::{Auth, Body, Ids};
use crate::backend::model::{
    Application, ApplicationCommand, CommandPermission, CommandPermissions,
};
use crate::backend::permissions::bits;
use crate::backend::services::commands::{
    build_command, check_limits, render, scope_commands, scope_key,
};
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Permission entry types.
const PERMISSION_ROLE: u8 = 1;
const PERMISSION_USER: u8 = 2;
const PERMISSION_CHANNEL: u8 = 3;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    // Global and guild commands share their handlers; the path says the scope.
    let mut router = Router::new();
    for base in [
        "/applications/{application_id}",
        "/applications/{application_id}/guilds/{guild_id}",
    ] {
        router = router
            .route(
                &format!("{base}/commands"),
                get(list).post(create).put(overwrite),
            )
            .route(
                &format!("{base}/commands/{{command_id}}"),
                get(fetch).patch(edit).delete(remove),
            );
    }
    router
        .route(
            "/applications/{application_id}/guilds/{guild_id}/commands/permissions",
            get(list_permissions),
        )
        .route(
            "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}/permissions",
            get(get_permissions).put(put_permissions),
        )
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

/// The path of a command collection: global when `guild_id` is absent.
#[derive(Deserialize)]
struct CommandScope {
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
}

/// The path of one command: global when `guild_id` is absent.
#[derive(Deserialize)]
struct CommandPath {
    application_id: Snowflake,
    guild_id: Option<Snowflake>,
    command_id: Snowflake,
}

/// A command route's path: its application and, for guild commands, its guild.
trait ScopePath: DeserializeOwned + Send {
    /// The application and the guild (None: global commands).
    fn scope(&self) -> (Snowflake, Option<Snowflake>);
}

impl ScopePath for CommandScope {
    fn scope(&self) -> (Snowflake, Option<Snowflake>) {
        (self.application_id, self.guild_id)
    }
}

impl ScopePath for CommandPath {
    fn scope(&self) -> (Snowflake, Option<Snowflake>) {
        (self.application_id, self.guild_id)
    }
}

/// A command route's path `P` once the caller owns its application (and a guild scope holds
/// the application's bot), plus the request body `B` when there is one. Discord's order: 401,
/// path 50035, the body's 50035/50109, then 10002/10004/50001 for the scope.
struct InCommandScope<P, B = ()>(AppState, (Snowflake, Option<Snowflake>), P, B);

/// A command collection route (global or one guild's).
type Scope<B = ()> = InCommandScope<CommandScope, B>;
/// A route of one command.
type OneCommand<B = ()> = InCommandScope<CommandPath, B>;

/// The caller must own the application; a guild scope must also hold its bot.
fn check_scope(state: &AppState, auth: &Auth, path: &impl ScopePath) -> Result<(), ApiError> {
    let (application_id, guild_id) = path.scope();
    let app = state.own_application(application_id, &auth.user)?;
    if let Some(guild_id) = guild_id {
        guild_scope(state, &app, guild_id)?;
    }
    Ok(())
}

impl<P: ScopePath> FromRequestParts<AppState> for InCommandScope<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        let Ids(path) = Ids::<P>::from_request_parts(parts, state).await?;
        check_scope(state, &auth, &path)?;
        Ok(InCommandScope(state.clone(), path.scope(), path, ()))
    }
}

impl<P: ScopePath, B> FromRequest<AppState> for InCommandScope<P, B>
where
    B: FromRequest<AppState>,
    ApiError: From<B::Rejection>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let auth = Auth::from_request_parts(&mut parts, state).await?;
        let Ids(path) = Ids::<P>::from_request_parts(&mut parts, state).await?;
        let body = B::from_request(Request::from_parts(parts, body), state).await?;
        check_scope(state, &auth, &path)?;
        Ok(InCommandScope(state.clone(), path.scope(), path, body))
    }
}

async fn list(InCommandScope(state, (application_id, guild_id), _, _): Scope) -> ApiResult {
    let state = &state;
    let commands = scope_commands(state, application_id, guild_id)?;
    Ok(ok(Value::Array(commands.iter().map(render).collect())))
}

async fn create(
    InCommandScope(state, (application_id, guild_id), _, Body(body)): Scope<Body<Value>>,
) -> ApiResult {
    let state = &state;
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
    state
        .store
        .commands
        .put((application_id, scope_key(guild_id), command.id), &command)?;
    let body = render(&command);
    Ok(if status == StatusCode::CREATED {
        created(body)
    } else {
        json_response(status, &body)
    })
}

async fn overwrite(
    InCommandScope(state, (application_id, guild_id), _, Body(body)): Scope<Body<Value>>,
) -> ApiResult {
    let state = &state;
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
                .remove((application_id, scope_key(guild_id), old.id))?;
            if let Some(guild_id) = guild_id {
                state
                    .store
                    .command_permissions
                    .remove((application_id, guild_id, old.id))?;
            }
        }
    }
    for command in &kept {
        state
            .store
            .commands
            .put((application_id, scope_key(guild_id), command.id), command)?;
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
        .get((application_id, scope_key(guild_id), command_id))?
        .ok_or(ApiError::NotFound(Unknown::ApplicationCommand))
}

async fn fetch(
    InCommandScope(state, (application_id, guild_id), path, _): OneCommand,
) -> ApiResult {
    let command_id = path.command_id;
    let state = &state;
    let command = load_command(state, application_id, guild_id, command_id)?;
    Ok(ok(render(&command)))
}

async fn edit(
    InCommandScope(state, (application_id, guild_id), path, Body(body)): OneCommand<Body<Value>>,
) -> ApiResult {
    let command_id = path.command_id;
    let state = &state;
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
    state
        .store
        .commands
        .put((application_id, scope_key(guild_id), command_id), &command)?;
    Ok(ok(render(&command)))
}

async fn remove(
    InCommandScope(state, (application_id, guild_id), path, _): OneCommand,
) -> ApiResult {
    let command_id = path.command_id;
    let state = &state;
    state
        .store
        .commands
        .remove((application_id, scope_key(guild_id), command_id))?
        .ok_or(ApiError::NotFound(Unknown::ApplicationCommand))?;
    if let Some(guild_id) = guild_id {
        state
            .store
            .command_permissions
            .remove((application_id, guild_id, command_id))?;
    }
    Ok(no_content())
}

/// Who may read an application's command permissions in a guild: its bot/owner, or a member
/// who could edit them.
fn permission_reader(
    state: &AppState,
    auth: &Auth,
    application_id: Snowflake,
    guild_id: Snowflake,
) -> Result<Application, ApiError> {
    let app = state.application(application_id)?;
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
        .values((application_id, guild_id))?;
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
        .get((application_id, guild_id, command_id))?
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
    let app = state.application(application_id)?;
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
    let key = (application_id, guild_id, command_id);
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
}
