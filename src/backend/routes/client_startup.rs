//! What the official client asks for while starting, answered natively with Discord's shapes
//! (the recordings or upstream would answer with someone else's account): `/experiments`,
//! affinities, billing, entitlements, detectable games, consent, survey, harvest, profiles and
//! premium subscription slots.
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, ApiResult};
use crate::backend::error::{ApiError, Unknown};
use crate::backend::extract::{Auth, Ids, MaybeAuth, Q};
use crate::backend::render;
use crate::backend::services::auth::fingerprint;
use crate::backend::services::relationships;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/experiments", get(experiments))
        .route("/users/@me/affinities/users", get(user_affinities))
        .route("/users/@me/affinities/guilds", get(guild_affinities))
        .route("/users/@me/billing/country-code", get(country_code))
        .route("/users/@me/billing/{*rest}", get(empty_list))
        .route("/users/@me/entitlements", get(empty_list))
        .route("/users/@me/entitlements/gifts", get(empty_list))
        .route("/applications/detectable", get(detectable))
        .route("/users/@me/consent", get(consent).post(set_consent))
        .route("/users/@me/survey", get(survey))
        .route("/users/@me/harvest", get(harvest))
        .route("/users/{user_id}/profile", get(profile))
        .route(
            "/users/@me/guilds/premium/subscription-slots",
            get(empty_list),
        )
}

#[derive(Deserialize)]
struct ExperimentQuery {
    #[serde(default)]
    with_guild_experiments: bool,
}

/// No experiment assignments (the client runs its defaults); a fingerprint for anonymous
/// callers, as Discord hands out before login.
async fn experiments(
    State(state): State<AppState>,
    MaybeAuth(user): MaybeAuth,
    Q(query): Q<ExperimentQuery>,
) -> ApiResult {
    let mut out = json!({"assignments": []});
    if user.is_none() {
        out["fingerprint"] = json!(fingerprint(state.store.next_id()));
    }
    if query.with_guild_experiments {
        out["guild_experiments"] = json!([]);
    }
    Ok(ok(out))
}

/// Friends first, each with an affinity score (the client sorts by it).
async fn user_affinities(State(state): State<AppState>, auth: Auth) -> ApiResult {
    let friends: Vec<Value> = state
        .store
        .account
        .relationships
        .values(auth.id())?
        .into_iter()
        .filter(|r| r.kind == crate::backend::user_state::relationship_type::FRIEND)
        .map(|r| json!({"user_id": r.id, "affinity": 1.0}))
        .collect();
    let ids: Vec<Value> = friends.iter().map(|f| f["user_id"].clone()).collect();
    Ok(ok(json!({
        "user_affinities": friends,
        "inverse_user_affinities": [],
        "user_ids": ids,
    })))
}

async fn guild_affinities(State(state): State<AppState>, auth: Auth) -> ApiResult {
    let guilds: Vec<Value> = state
        .store
        .guild_ids_of(auth.id())?
        .into_iter()
        .map(|id| json!({"guild_id": id, "affinity": 1.0}))
        .collect();
    Ok(ok(json!({"guild_affinities": guilds})))
}

async fn country_code(_auth: Auth) -> ApiResult {
    Ok(ok(json!({"country_code": "US"})))
}

async fn empty_list(_auth: Auth) -> ApiResult {
    Ok(ok(json!([])))
}

async fn detectable() -> ApiResult {
    Ok(ok(json!([])))
}

async fn consent(_auth: Auth) -> ApiResult {
    Ok(ok(json!({
        "usage_statistics": {"consented": false},
        "personalization": {"consented": false},
    })))
}

async fn set_consent(_auth: Auth) -> ApiResult {
    Ok(no_content())
}

async fn survey(_auth: Auth) -> ApiResult {
    Ok(ok(json!({"survey": null})))
}

/// No data harvest was requested: 204, as Discord answers then.
async fn harvest(_auth: Auth) -> ApiResult {
    Ok(no_content())
}

/// A user's profile: the user, the profile fields, guilds in common (with the nickname there)
/// and friends in common.
async fn profile(
    State(state): State<AppState>,
    auth: Auth,
    Ids(user_id): Ids<Snowflake>,
) -> ApiResult {
    let user = state
        .store
        .user(user_id)?
        .ok_or(ApiError::NotFound(Unknown::User))?;
    let theirs = state.store.guild_ids_of(user_id)?;
    let mut mutual_guilds = Vec::new();
    if user_id != auth.id() {
        for guild_id in state.store.guild_ids_of(auth.id())? {
            if theirs.contains(&guild_id) {
                let nick = state.store.member(guild_id, user_id)?.and_then(|m| m.nick);
                mutual_guilds.push(json!({"id": guild_id, "nick": nick}));
            }
        }
    }
    let mut mutual_friends = Vec::new();
    for rel in state.store.account.relationships.values(auth.id())? {
        if rel.id != user_id
            && relationships::are_friends(&state, user_id, rel.id)?
            && relationships::are_friends(&state, auth.id(), rel.id)?
        {
            mutual_friends.push(render::user_by_id(&state.store, rel.id)?);
        }
    }
    Ok(ok(json!({
        "user": render::user(&user),
        "user_profile": {
            "bio": user.extra.get("bio").cloned().unwrap_or(json!("")),
            "accent_color": user.accent_color,
            "banner": user.banner,
            "pronouns": "",
            "theme_colors": null,
            "popout_animation_particle_type": null,
            "emoji": null,
        },
        "badges": [],
        "connected_accounts": [],
        "premium_type": null,
        "premium_since": null,
        "premium_guild_since": null,
        "mutual_guilds": mutual_guilds,
        "mutual_friends_count": mutual_friends.len(),
        "mutual_friends": mutual_friends,
    })))
}
