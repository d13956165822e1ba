//! Signing in and out: `/auth/login` (with the MFA ticket flow), `/auth/mfa/{type}`,
//! `/auth/register`, `/auth/logout`, `/auth/location-metadata`, `/auth/fingerprint`,
//! `/auth/verify`, the SMS code (`/auth/mfa/sms/send`; nothing is really sent), passwordless
//! WebAuthn logins (`/auth/passwordless/start`, `/auth/conditional/start|finish`), and the
//! account's TOTP, SMS and security keys under `/users/@me/mfa` (registering, listing,
//! renaming and deleting WebAuthn authenticators, with AUTHENTICATOR_CREATE/UPDATE/DELETE).
use axum::extract::{Path, State};
use axum::routing::{get, patch, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, no_content, ok, ApiResult};
use crate::backend::accounts;
use crate::backend::error::{ApiError, Validator};
use crate::backend::events::Dispatch;
use crate::backend::extract::{Auth, Body, Ids, MaybeAuth};
use crate::backend::model::User;
use crate::backend::services::auth::{self as service, LoginOutcome};
use crate::backend::services::webauthn;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/mfa/sms/send", post(send_sms))
        .route("/auth/mfa/{authenticator_type}", post(verify_mfa))
        .route("/auth/passwordless/start", post(webauthn_start))
        .route("/auth/conditional/start", post(webauthn_conditional_start))
        .route("/auth/conditional/finish", post(webauthn_finish))
        .route("/users/@me/mfa/sms/{switch}", post(switch_sms))
        .route(
            "/users/@me/mfa/webauthn/credentials",
            get(webauthn_credentials).post(webauthn_register),
        )
        .route(
            "/users/@me/mfa/webauthn/credentials/{authenticator_id}",
            patch(webauthn_rename).delete(webauthn_delete),
        )
        .route("/auth/register", post(register))
        .route("/auth/logout", post(logout))
        .route("/auth/location-metadata", get(location_metadata))
        .route("/auth/fingerprint", post(fingerprint))
        .route("/auth/verify", post(verify_email))
        .route("/auth/verify/resend", post(verify_resend))
        .route("/users/@me/mfa/totp/enable", post(enable_totp))
        .route("/users/@me/mfa/totp/disable", post(disable_totp))
        .route("/users/@me/mfa/codes-verification", post(backup_codes))
}

/// The partial settings a completed login carries.
fn login_settings(state: &AppState, user: &User) -> Value {
    let legacy = crate::backend::services::settings::legacy_settings(state, user)
        .unwrap_or_else(|_| json!({}));
    json!({
        "locale": legacy.get("locale").cloned().unwrap_or_else(|| json!(user.locale)),
        "theme": legacy.get("theme").cloned().unwrap_or_else(|| json!("dark")),
    })
}

#[derive(Deserialize)]
struct Login {
    login: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

async fn login(State(state): State<AppState>, Body(body): Body<Login>) -> ApiResult {
    let login = body.login.or(body.email);
    let mut checks = Validator::default();
    checks.required("login", login.as_ref());
    checks.required("password", body.password.as_ref());
    checks.finish()?;
    let (login, password) = (login.unwrap_or_default(), body.password.unwrap_or_default());
    match service::login(&state, &login, &password)? {
        Some(LoginOutcome::Token(user, token)) => Ok(ok(json!({
            "user_id": user.id,
            "token": token,
            "user_settings": login_settings(&state, &user),
        }))),
        Some(LoginOutcome::Mfa(mfa)) => Ok(ok(json!({
            "user_id": mfa.user.id,
            "mfa": true,
            "sms": mfa.sms,
            "totp": mfa.totp,
            "backup": true,
            "webauthn": mfa.webauthn,
            "ticket": mfa.ticket,
        }))),
        None => {
            let mut checks = Validator::default();
            checks.add("login", "INVALID_LOGIN", "Login or password is invalid.");
            checks.add("password", "INVALID_LOGIN", "Login or password is invalid.");
            Err(checks.finish().err().unwrap_or(ApiError::Unauthorized))
        }
    }
}

#[derive(Deserialize)]
struct VerifyMfa {
    ticket: Option<String>,
    code: Option<String>,
}

async fn verify_mfa(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Body(body): Body<VerifyMfa>,
) -> ApiResult {
    if !matches!(kind.as_str(), "totp" | "backup" | "sms" | "webauthn") {
        return Err(ApiError::NoRoute);
    }
    let mut checks = Validator::default();
    checks.required("ticket", body.ticket.as_ref());
    checks.required("code", body.code.as_ref());
    checks.finish()?;
    let (ticket, code) = (
        body.ticket.unwrap_or_default(),
        body.code.unwrap_or_default(),
    );
    let (user, token) = service::complete_mfa(&state, &kind, &ticket, &code)?;
    Ok(ok(json!({
        "token": token,
        "user_settings": login_settings(&state, &user),
    })))
}

#[derive(Deserialize)]
struct Register {
    username: Option<String>,
    global_name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    date_of_birth: Option<String>,
    #[serde(default)]
    consent: Option<bool>,
}

/// Checks a registration form; 50035 with every problem at once.
fn check_register(state: &AppState, body: &Register) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    if body.username.is_none() && body.global_name.is_none() {
        checks.required("username", body.username.as_ref());
    }
    checks.length("username", body.username.as_deref(), 2, 32);
    checks.length("global_name", body.global_name.as_deref(), 1, 32);
    checks.length("password", body.password.as_deref(), 8, 72);
    if body.consent == Some(false) {
        checks.add(
            "consent",
            "CONSENT_REQUIRED",
            "You must agree to Discord's Terms of Service and Privacy Policy.",
        );
    }
    if let Some(birth) = &body.date_of_birth {
        let valid = birth.len() == 10
            && birth.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !valid {
            checks.add(
                "date_of_birth",
                "DATE_OF_BIRTH_INVALID",
                "Not a valid date of birth.",
            );
        }
    }
    if let Some(email) = &body.email {
        if !email.contains('@') {
            checks.add(
                "email",
                "EMAIL_TYPE_INVALID_EMAIL",
                "Not a well formed email address.",
            );
        } else if state.store.emails.get(&email.to_lowercase())?.is_some() {
            checks.add(
                "email",
                "EMAIL_ALREADY_REGISTERED",
                "Email is already registered.",
            );
        }
    }
    checks.finish()
}

async fn register(State(state): State<AppState>, Body(body): Body<Register>) -> ApiResult {
    check_register(&state, &body)?;
    let id = state.store.next_id();
    // No username: one derived from the display name (or the id), as Discord picks one.
    let username = body.username.clone().unwrap_or_else(|| {
        let base: String = body
            .global_name
            .as_deref()
            .unwrap_or("user")
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .take(24)
            .collect();
        format!(
            "{}{}",
            if base.len() < 2 { "user" } else { &base },
            id.0 % 10_000
        )
    });
    let (user, token) = accounts::create_user(
        &state.store,
        accounts::NewUser {
            id,
            username,
            global_name: body.global_name,
            bot: false,
            token: None,
            email: body.email,
            password: body.password,
        },
    )?;
    state.store.flush_async().await?;
    Ok(created(json!({"token": token, "user_id": user.id})))
}

async fn logout(State(state): State<AppState>, auth: Auth) -> ApiResult {
    if auth.user.bot {
        return Err(ApiError::Unauthorized);
    }
    service::rotate_token(&state, auth.id())?;
    state.store.flush_async().await?;
    Ok(no_content())
}

async fn location_metadata() -> ApiResult {
    Ok(ok(json!({
        "consent_required": false,
        "country_code": "US",
        "promotional_email_opt_in": {"required": false, "pre_checked": false},
    })))
}

async fn fingerprint(State(state): State<AppState>) -> ApiResult {
    let id = state.store.next_id();
    Ok(ok(json!({"fingerprint": service::fingerprint(id)})))
}

#[derive(Deserialize)]
struct VerifyEmail {
    token: Option<String>,
}

/// Email verification: a local backend sends no mail, so a caller's email counts as verified
/// once they ask; the answer carries their token as Discord's does.
async fn verify_email(
    State(state): State<AppState>,
    MaybeAuth(user): MaybeAuth,
    Body(body): Body<VerifyEmail>,
) -> ApiResult {
    let Some(user) = user else {
        return Err(ApiError::invalid_field(
            "token",
            "TOKEN_INVALID",
            "Invalid verification token",
        ));
    };
    let _ = body.token;
    let user_id = service::mark_verified(&state, user.id)?;
    let token = state
        .store
        .credentials
        .get(user_id)?
        .map(|c| c.token)
        .ok_or(ApiError::Unauthorized)?;
    Ok(ok(json!({"token": token, "user_id": user_id})))
}

async fn verify_resend(_auth: Auth) -> ApiResult {
    Ok(no_content())
}

#[derive(Deserialize)]
struct EnableTotp {
    password: Option<String>,
    secret: Option<String>,
    code: Option<String>,
}

async fn enable_totp(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<EnableTotp>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("password", body.password.as_ref());
    checks.finish()?;
    if !service::password_matches(&state, &auth.user, body.password.as_deref().unwrap_or(""))? {
        return Err(ApiError::invalid_field(
            "password",
            "PASSWORD_DOES_NOT_MATCH",
            "Password does not match.",
        ));
    }
    if state
        .store
        .account
        .mfa
        .get(auth.id())?
        .is_some_and(|mfa| service::totp_enabled(&mfa))
    {
        return Err(service::mfa_already_enabled());
    }
    let (Some(secret), Some(code)) = (body.secret, body.code) else {
        // The password is right: Discord answers 60005 so the client shows the secret.
        return Err(ApiError::bad_request(
            60005,
            "Two factor is required for this operation",
        ));
    };
    let mfa = service::enable_totp(&state, auth.id(), &secret, &code)?;
    let token = service::rotate_token(&state, auth.id())?;
    state.store.flush_async().await?;
    Ok(ok(json!({
        "token": token,
        "backup_codes": service::backup_codes_json(auth.id(), &mfa.backup_codes),
    })))
}

#[derive(Deserialize)]
struct DisableTotp {
    code: Option<String>,
}

async fn disable_totp(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<DisableTotp>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("code", body.code.as_ref());
    checks.finish()?;
    service::disable_totp(&state, auth.id(), body.code.as_deref().unwrap_or(""))?;
    let token = service::rotate_token(&state, auth.id())?;
    state.store.flush_async().await?;
    Ok(ok(json!({"token": token})))
}

#[derive(Deserialize)]
struct CodesVerification {
    #[serde(default)]
    regenerate: bool,
    password: Option<String>,
}

/// The account's backup codes (regenerated on request); the password stands in for the
/// emailed verification key of the real flow.
async fn backup_codes(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<CodesVerification>,
) -> ApiResult {
    if let Some(password) = &body.password {
        if !service::password_matches(&state, &auth.user, password)? {
            return Err(ApiError::invalid_field(
                "password",
                "PASSWORD_DOES_NOT_MATCH",
                "Password does not match.",
            ));
        }
    }
    let codes = service::backup_codes(&state, auth.id(), body.regenerate)?;
    Ok(created(json!({
        "backup_codes": service::backup_codes_json(auth.id(), &codes),
    })))
}

#[derive(Deserialize)]
struct SendSms {
    ticket: Option<String>,
}

/// `POST /auth/mfa/sms/send`: no SMS leaves the machine; the code is the fixture's or the
/// control API's (`POST /_mitm/sms`).
async fn send_sms(State(state): State<AppState>, Body(body): Body<SendSms>) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("ticket", body.ticket.as_ref());
    checks.finish()?;
    let phone = service::send_sms(&state, body.ticket.as_deref().unwrap_or(""))?;
    Ok(ok(json!({"phone": phone})))
}

#[derive(Deserialize)]
struct PasswordOnly {
    password: Option<String>,
}

/// Checks the password a settings change is confirmed with.
fn confirm_password(state: &AppState, user: &User, password: Option<&str>) -> Result<(), ApiError> {
    let mut checks = Validator::default();
    checks.required("password", password.as_ref());
    checks.finish()?;
    if !service::password_matches(state, user, password.unwrap_or(""))? {
        return Err(ApiError::invalid_field(
            "password",
            "PASSWORD_DOES_NOT_MATCH",
            "Password does not match.",
        ));
    }
    Ok(())
}

/// `POST /users/@me/mfa/sms/enable|disable {password}`: 204.
async fn switch_sms(
    State(state): State<AppState>,
    auth: Auth,
    Path(switch): Path<String>,
    Body(body): Body<PasswordOnly>,
) -> ApiResult {
    let enabled = match switch.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return Err(ApiError::NoRoute),
    };
    confirm_password(&state, &auth.user, body.password.as_deref())?;
    service::set_sms_enabled(&state, auth.id(), enabled)?;
    Ok(no_content())
}

/// Security keys are for user accounts: 20001 for a bot.
fn users_only(auth: &Auth) -> Result<(), ApiError> {
    if auth.user.bot {
        return Err(ApiError::forbidden(20001, "Bots cannot use this endpoint"));
    }
    Ok(())
}

/// `GET /users/@me/mfa/webauthn/credentials`: the user's authenticators.
async fn webauthn_credentials(State(state): State<AppState>, auth: Auth) -> ApiResult {
    users_only(&auth)?;
    let keys = webauthn::keys(&state, auth.id())?;
    Ok(ok(Value::Array(
        keys.iter().map(webauthn::render).collect(),
    )))
}

#[derive(Deserialize)]
struct WebauthnRegister {
    name: Option<String>,
    ticket: Option<String>,
    credential: Option<String>,
}

/// `POST /users/@me/mfa/webauthn/credentials`: without a credential, a registration ticket and
/// the creation options; with `ticket`, `credential` (the attestation) and `name`, the new
/// authenticator and the account's backup codes (MFA turns on with the first factor).
/// AUTHENTICATOR_CREATE, and USER_UPDATE when MFA turned on.
async fn webauthn_register(
    State(state): State<AppState>,
    auth: Auth,
    Body(body): Body<WebauthnRegister>,
) -> ApiResult {
    users_only(&auth)?;
    let Some(credential) = body.credential else {
        return Ok(ok(webauthn::registration_challenge(&state, &auth.user)?));
    };
    let mut checks = Validator::default();
    checks.required("ticket", body.ticket.as_ref());
    checks.finish()?;
    let (key, codes) = service::add_security_key(
        &state,
        &auth.user,
        body.ticket.as_deref().unwrap_or_default(),
        &credential,
        body.name.as_deref(),
    )?;
    state.store.flush_async().await?;
    state.publish(Dispatch::users(
        "AUTHENTICATOR_CREATE",
        vec![auth.id()],
        0,
        webauthn::render(&key),
    ));
    Ok(ok(json!({
        "id": key.id,
        "type": 1,
        "name": key.name,
        "backup_codes": service::backup_codes_json(auth.id(), &codes),
    })))
}

#[derive(Deserialize)]
struct WebauthnRename {
    name: Option<String>,
}

/// `PATCH /users/@me/mfa/webauthn/credentials/{id} {name}`: the renamed authenticator;
/// AUTHENTICATOR_UPDATE.
async fn webauthn_rename(
    State(state): State<AppState>,
    auth: Auth,
    Ids(key_id): Ids<Snowflake>,
    Body(body): Body<WebauthnRename>,
) -> ApiResult {
    users_only(&auth)?;
    let key = webauthn::rename(&state, auth.id(), key_id, body.name.as_deref())?;
    state.store.flush_async().await?;
    let rendered = webauthn::render(&key);
    state.publish(Dispatch::users(
        "AUTHENTICATOR_UPDATE",
        vec![auth.id()],
        0,
        rendered.clone(),
    ));
    Ok(ok(rendered))
}

/// `DELETE /users/@me/mfa/webauthn/credentials/{id}`: 204; AUTHENTICATOR_DELETE, and
/// USER_UPDATE when that was the account's last factor (MFA off).
async fn webauthn_delete(
    State(state): State<AppState>,
    auth: Auth,
    Ids(key_id): Ids<Snowflake>,
) -> ApiResult {
    users_only(&auth)?;
    service::remove_security_key(&state, auth.id(), key_id)?;
    state.store.flush_async().await?;
    state.publish(Dispatch::users(
        "AUTHENTICATOR_DELETE",
        vec![auth.id()],
        0,
        json!({"id": key_id, "type": 1}),
    ));
    Ok(no_content())
}

/// A WebAuthn login challenge (`/auth/passwordless/start`): a fresh ticket and the request
/// options, stringified as Discord sends them.
async fn webauthn_start() -> ApiResult {
    Ok(ok(webauthn::passwordless_challenge(false)))
}

/// The conditional-UI form of [`webauthn_start`] (`mediation: conditional`).
async fn webauthn_conditional_start() -> ApiResult {
    Ok(ok(webauthn::passwordless_challenge(true)))
}

#[derive(Deserialize)]
struct WebauthnFinish {
    ticket: Option<String>,
    credential: Option<String>,
}

/// `/auth/conditional/finish`: the assertion of a registered key (user verification
/// required) over the ticket's challenge signs its owner in; 60008 otherwise.
async fn webauthn_finish(
    State(state): State<AppState>,
    Body(body): Body<WebauthnFinish>,
) -> ApiResult {
    let mut checks = Validator::default();
    checks.required("ticket", body.ticket.as_ref());
    checks.required("credential", body.credential.as_ref());
    checks.finish()?;
    let user_id = webauthn::finish_passwordless(
        &state,
        body.ticket.as_deref().unwrap_or_default(),
        body.credential.as_deref().unwrap_or_default(),
    )?;
    state.store.flush_async().await?;
    let (user, token) = service::token_of(&state, user_id)?;
    Ok(ok(json!({
        "user_id": user.id,
        "token": token,
        "user_settings": login_settings(&state, &user),
    })))
}
