//! Guild integrations: every bot in a guild is a `discord` integration of its application
//! (this backend has no Twitch/YouTube connections or role subscriptions). Deleting one
//! removes the bot, as Discord does when an app is uninstalled from a server.
use axum::extract::State;
use axum::routing::{delete, get};
use axum::Router;
use serde_json::{json, Value};

use super::{no_content, ok_list, ApiResult};
use crate::backend::error::{ApiError, OrUnknown, Unknown};
use crate::backend::extract::{Auth, Ids, InGuild, Reason};
use crate::backend::model::Application;
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::members::publish_member_removed;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;
use crate::{backend::events::Dispatch, gateway::intents};

/// Audit-log action of an integration removal.
const INTEGRATION_DELETE: u16 = 82;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/guilds/{guild_id}/integrations", get(list))
        .route(
            "/guilds/{guild_id}/integrations/{integration_id}",
            delete(remove),
        )
}

/// The applications whose bots are members of `guild_id`, by id. An integration's id is its
/// application's id here (Discord gives integrations their own; nothing else refers to it).
fn installed(state: &AppState, guild_id: Snowflake) -> Result<Vec<Application>, ApiError> {
    let mut apps = Vec::new();
    for member in state.store.members.values(guild_id)? {
        if let Some(app) = state.store.applications.get(member.user_id)? {
            apps.push(app);
        }
    }
    apps.sort_by_key(|app| app.id);
    Ok(apps)
}

fn integration(state: &AppState, app: &Application) -> Result<Value, ApiError> {
    let bot = render::user_by_id(&state.store, app.bot_id)?;
    Ok(json!({
        "id": app.id,
        "type": "discord",
        "name": app.name,
        "enabled": true,
        "account": {"id": app.id.to_string(), "name": app.name},
        "application": {
            "id": app.id,
            "name": app.name,
            "icon": app.icon,
            "description": app.description,
            "type": null,
            "bot": bot,
        },
        "scopes": ["bot", "applications.commands"],
    }))
}

async fn list(
    State(state): State<AppState>,
    _: Auth,
    Ids(guild_id): Ids<Snowflake>,
    _: InGuild<{ bits::MANAGE_GUILD }>,
) -> ApiResult {
    ok_list(installed(&state, guild_id)?.iter(), |app| {
        integration(&state, app)
    })
}

async fn remove(
    State(state): State<AppState>,
    auth: Auth,
    Ids((guild_id, integration_id)): Ids<(Snowflake, Snowflake)>,
    Reason(reason): Reason,
    _: InGuild<{ bits::MANAGE_GUILD }>,
) -> ApiResult {
    let app = installed(&state, guild_id)?
        .into_iter()
        .find(|app| app.id == integration_id)
        .ok_or(ApiError::NotFound(Unknown::Integration))?;
    let bot = state.store.user(app.bot_id).or_unknown(Unknown::User)?;
    state.store.remove_member(guild_id, bot.id)?;
    state.audit(
        guild_id,
        auth.id(),
        INTEGRATION_DELETE,
        Some(app.id),
        vec![],
        None,
        reason,
    )?;
    publish_member_removed(&state, guild_id, &bot, Some(auth.id()))?;
    state.publish(Dispatch::guild(
        "INTEGRATION_DELETE",
        guild_id,
        intents::GUILD_INTEGRATIONS,
        json!({"id": app.id, "guild_id": guild_id, "application_id": app.id}),
    ));
    state.publish(Dispatch::guild(
        "GUILD_INTEGRATIONS_UPDATE",
        guild_id,
        intents::GUILD_INTEGRATIONS,
        json!({ "guild_id": guild_id }),
    ));
    Ok(no_content())
}
