//! Signing in the official client's way: password login, the MFA ticket and its second step
//! (RFC 6238 TOTP, a one-time backup code, an SMS code that is never really sent, or a WebAuthn
//! assertion, see [`super::webauthn`]), enabling and disabling TOTP, SMS and security keys, and
//! logout (the token stops working and its gateway sessions close with 4004).
//!
//! Error codes are Discord's (its datamined table): 60001 already enrolled in MFA, 60002 not
//! enrolled, 60006 an invalid ticket, 60008 a wrong code or credential, 60010 not enrolled in
//! SMS, 70007 a phone number needed.
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use parking_lot::Mutex;
use ring::hmac;

use crate::backend::accounts;
use crate::backend::error::{ApiError, Unknown};
use crate::backend::events::Dispatch;
use crate::backend::model::User;
use crate::backend::render;
use crate::backend::services::webauthn;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::AppState;
use crate::backend::user_state::{BackupCode, MfaState, WebauthnKey};

/// How long an MFA ticket from `/auth/login` stays valid.
const TICKET_LIFETIME: Duration = Duration::from_secs(300);
/// Seconds per TOTP step (RFC 6238's default).
const TOTP_STEP: u64 = 30;
/// Backup codes handed out when TOTP is enabled or the codes are regenerated.
const BACKUP_CODES: usize = 10;

/// MFA tickets in flight: ticket → (user, when it was issued).
static TICKETS: LazyLock<Mutex<HashMap<String, (Snowflake, Instant)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Discord's 60008 for a wrong second factor.
pub(crate) fn invalid_code() -> ApiError {
    ApiError::bad_request(60008, "Invalid two-factor code")
}

/// What a correct email and password lead to.
#[derive(Debug)]
pub(crate) enum LoginOutcome {
    /// Signed in: the user and their token.
    Token(User, String),
    /// A second factor is needed.
    Mfa(MfaChallenge),
}

/// The MFA answer of a login: which factors the account offers and the ticket to finish with.
#[derive(Debug)]
pub(crate) struct MfaChallenge {
    /// Who is signing in.
    pub user: User,
    /// The ticket for `/auth/mfa/{type}`.
    pub ticket: String,
    /// TOTP codes are offered (the account has an authenticator app).
    pub totp: bool,
    /// SMS codes are offered.
    pub sms: bool,
    /// The stringified WebAuthn request options when the account has security keys.
    pub webauthn: Option<String>,
}

/// Checks a login (email) and password; `None` when they do not match an account.
pub(crate) fn login(
    state: &AppState,
    login: &str,
    password: &str,
) -> Result<Option<LoginOutcome>, ApiError> {
    let Some((user, token)) = accounts::check_login(&state.store, login, password)? else {
        return Ok(None);
    };
    let Some(mfa) = state.store.account.mfa.get(user.id)? else {
        return Ok(Some(LoginOutcome::Token(user, token)));
    };
    let ticket = issue_ticket(user.id);
    let webauthn = webauthn::login_options(state, user.id, &ticket)?;
    Ok(Some(LoginOutcome::Mfa(MfaChallenge {
        totp: totp_enabled(&mfa),
        sms: mfa.sms_enabled && mfa.phone.is_some(),
        webauthn,
        ticket,
        user,
    })))
}

/// Whether the account has an authenticator app (a TOTP secret); an account whose only factor
/// is a security key has MFA state without one.
pub(crate) fn totp_enabled(mfa: &MfaState) -> bool {
    !mfa.totp_secret.is_empty()
}

fn issue_ticket(user_id: Snowflake) -> String {
    let mut random = [0u8; 24];
    crate::backend::clock::fill_random(&mut random);
    let ticket = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(user_id.to_string()),
        URL_SAFE_NO_PAD.encode(random)
    );
    let now = Instant::now();
    let mut tickets = TICKETS.lock();
    tickets.retain(|_, (_, issued)| now.duration_since(*issued) < TICKET_LIFETIME);
    tickets.insert(ticket.clone(), (user_id, now));
    ticket
}

/// The user a live MFA ticket belongs to; Discord's 60006 otherwise.
fn ticket_user(ticket: &str) -> Result<Snowflake, ApiError> {
    let tickets = TICKETS.lock();
    match tickets.get(ticket) {
        Some((user_id, issued)) if issued.elapsed() < TICKET_LIFETIME => Ok(*user_id),
        _ => Err(webauthn::invalid_ticket()),
    }
}

/// Tickets an SMS code was "sent" for: only those may finish with `/auth/mfa/sms`.
static SMS_SENT: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// A phone number as Discord shows where an SMS went: `+`, stars, the last four digits.
pub(crate) fn redact_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let keep = digits.len().min(4);
    let stars = "*".repeat(digits.len() - keep);
    let tail: String = digits[digits.len() - keep..].iter().collect();
    format!("+{stars}{tail}")
}

/// Discord's 60010: the account has no SMS second factor.
fn sms_not_enabled() -> ApiError {
    ApiError::bad_request(60010, "This account is not enrolled in SMS authentication")
}

/// Loads the user's MFA state under the store's lock (`missing` when they have none), lets
/// `change` edit it, and stores it; what `change` answered.
fn change_mfa<T>(
    state: &AppState,
    user_id: Snowflake,
    missing: fn() -> ApiError,
    change: impl FnOnce(&mut MfaState) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let _guard = state.store.lock();
    let mut mfa = state.store.account.mfa.get(user_id)?.ok_or_else(missing)?;
    let out = change(&mut mfa)?;
    state.store.account.mfa.put(user_id, &mfa)?;
    Ok(out)
}

/// `POST /auth/mfa/sms/send`: "sends" the user's SMS code for the ticket (nothing leaves the
/// machine: the code is the one the fixture or the control API set, or one drawn now and
/// readable through the control API); the redacted phone number.
pub(crate) fn send_sms(state: &AppState, ticket: &str) -> Result<String, ApiError> {
    let user_id = ticket_user(ticket)?;
    let phone = change_mfa(state, user_id, sms_not_enabled, |mfa| {
        let phone = mfa
            .phone
            .clone()
            .filter(|_| mfa.sms_enabled)
            .ok_or_else(sms_not_enabled)?;
        mfa.sms_code.get_or_insert_with(draw_sms_code);
        Ok(phone)
    })?;
    SMS_SENT.lock().insert(ticket.to_string());
    Ok(redact_phone(&phone))
}

/// Six random digits.
fn draw_sms_code() -> String {
    let mut random = [0u8; 4];
    crate::backend::clock::fill_random(&mut random);
    format!("{:06}", u32::from_le_bytes(random) % 1_000_000)
}

/// Sets (or, with `None`, draws anew) the code `user_id`'s SMS carries; the code, and the
/// phone it goes to. For the control API.
pub(crate) fn set_sms_code(
    state: &AppState,
    user_id: Snowflake,
    code: Option<String>,
) -> Result<(String, Option<String>), ApiError> {
    change_mfa(state, user_id, sms_not_enabled, |mfa| {
        let code = code.unwrap_or_else(draw_sms_code);
        mfa.sms_code = Some(code.clone());
        Ok((code, mfa.phone.clone()))
    })
}

/// Discord's 60002: the account has no MFA at all.
pub(crate) fn mfa_not_enabled() -> ApiError {
    ApiError::bad_request(
        60002,
        "This account is not enrolled in two factor authentication",
    )
}

/// Discord's 60001: the account already has this factor.
pub(crate) fn mfa_already_enabled() -> ApiError {
    ApiError::bad_request(
        60001,
        "This account is already enrolled in two factor authentication",
    )
}

/// Turns the SMS second factor on or off (`/users/@me/mfa/sms/enable|disable`): needs MFA
/// (60002 without) and, to enable, a phone number on the account (70007 without).
pub(crate) fn set_sms_enabled(
    state: &AppState,
    user_id: Snowflake,
    enabled: bool,
) -> Result<(), ApiError> {
    change_mfa(state, user_id, mfa_not_enabled, |mfa| {
        if enabled && mfa.phone.is_none() {
            return Err(ApiError::bad_request(
                70007,
                "You need to verify your phone number in order to perform this action.",
            ));
        }
        mfa.sms_enabled = enabled;
        Ok(())
    })
}

/// Completes an MFA login: `code` is a TOTP code (`kind` "totp"), a backup code ("backup"),
/// the SMS code sent for this ticket ("sms") or the stringified WebAuthn assertion
/// ("webauthn") over the challenge the login answer carried. The ticket is spent only on
/// success, as Discord lets the user retry a typo.
pub(crate) fn complete_mfa(
    state: &AppState,
    kind: &str,
    ticket: &str,
    code: &str,
) -> Result<(User, String), ApiError> {
    let user_id = ticket_user(ticket)?;
    if kind == "webauthn" {
        webauthn::finish_mfa(state, user_id, ticket, code)?;
        TICKETS.lock().remove(ticket);
        return token_of(state, user_id);
    }
    let _guard = state.store.lock();
    let mfa = state
        .store
        .account
        .mfa
        .get(user_id)?
        .ok_or_else(invalid_code)?;
    let accepted = match kind {
        "totp" => verify_totp(&mfa.totp_secret, code, now_ms() / 1000),
        "backup" => consume_backup_code(state, user_id, mfa, code)?,
        "sms" => {
            mfa.sms_enabled
                && SMS_SENT.lock().contains(ticket)
                && mfa.sms_code.as_deref() == Some(code.trim())
        }
        _ => false,
    };
    if !accepted {
        return Err(invalid_code());
    }
    TICKETS.lock().remove(ticket);
    SMS_SENT.lock().remove(ticket);
    token_of(state, user_id)
}

/// The user and their token, for an answer that signs them in.
pub(crate) fn token_of(state: &AppState, user_id: Snowflake) -> Result<(User, String), ApiError> {
    let user = state
        .store
        .user(user_id)?
        .ok_or(ApiError::NotFound(Unknown::User))?;
    let credentials = state
        .store
        .credentials
        .get(user_id)?
        .ok_or(ApiError::Unauthorized)?;
    Ok((user, credentials.token))
}

/// Marks `code` used when it is an unused backup code of the user; whether it was.
fn consume_backup_code(
    state: &AppState,
    user_id: Snowflake,
    mut mfa: MfaState,
    code: &str,
) -> Result<bool, ApiError> {
    let typed: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let Some(slot) = mfa
        .backup_codes
        .iter_mut()
        .find(|slot| !slot.consumed && slot.code == typed)
    else {
        return Ok(false);
    };
    slot.consumed = true;
    state.store.account.mfa.put(user_id, &mfa)?;
    Ok(true)
}

/// The RFC 6238 code (HMAC-SHA1, 6 digits) of `secret` for time step `step`.
pub(crate) fn totp_code(secret: &[u8], step: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let digest = tag.as_ref();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let word = [
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ];
    format!("{:06}", u32::from_be_bytes(word) % 1_000_000)
}

/// Whether `code` is the TOTP code of the base32 `secret` at `unix_seconds`, one step of clock
/// drift either way allowed (RFC 6238 §5.2).
pub(crate) fn verify_totp(secret: &str, code: &str, unix_seconds: u64) -> bool {
    let Some(key) = base32_decode(secret) else {
        return false;
    };
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let step = unix_seconds / TOTP_STEP;
    [step.saturating_sub(1), step, step + 1]
        .iter()
        .any(|candidate| totp_code(&key, *candidate) == code)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (what authenticator apps take).
#[cfg(test)]
pub(crate) fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32 (case, spaces and padding ignored); `None` on any other character.
pub(crate) fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
    {
        let value = BASE32
            .iter()
            .position(|b| char::from(*b) == c.to_ascii_uppercase())?;
        buffer = ((buffer << 5) | value as u32) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A fresh set of backup codes (eight lowercase letters and digits each).
pub(crate) fn new_backup_codes() -> Vec<BackupCode> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..BACKUP_CODES)
        .map(|_| BackupCode {
            code: crate::backend::clock::random_string(ALPHABET, 8),
            consumed: false,
        })
        .collect()
}

/// The wire shape of backup codes (`{user_id, code, consumed}`).
pub(crate) fn backup_codes_json(user_id: Snowflake, codes: &[BackupCode]) -> serde_json::Value {
    serde_json::Value::Array(
        codes
            .iter()
            .map(
                |c| serde_json::json!({"user_id": user_id, "code": c.code, "consumed": c.consumed}),
            )
            .collect(),
    )
}

/// Checks the caller's password (60005-style flows need it first); false when it is wrong.
pub(crate) fn password_matches(
    state: &AppState,
    user: &User,
    password: &str,
) -> Result<bool, ApiError> {
    let Some(email) = &user.email else {
        return Ok(false);
    };
    Ok(accounts::check_login(&state.store, email, password)?.is_some())
}

/// Gives the user a new token (the old one stops working) and closes every gateway session
/// opened with the old one (close code 4004). Returns the new token.
pub(crate) fn rotate_token(state: &AppState, user_id: Snowflake) -> Result<String, ApiError> {
    let new_token = {
        let _guard = state.store.lock();
        let mut credentials = state
            .store
            .credentials
            .get(user_id)?
            .ok_or(ApiError::Unauthorized)?;
        let user = state.store.user(user_id)?.ok_or(ApiError::Unauthorized)?;
        credentials.token = accounts::generate_token(user_id);
        state.store.put_user(&user, &credentials)?;
        credentials.token
    };
    state.publish(Dispatch::sessions_revoked(user_id));
    Ok(new_token)
}

/// Turns TOTP on with `secret` once `code` proves the user's app has it (60001 when the
/// account has an authenticator app already; an account with only security keys gains one);
/// the new MFA state, with fresh backup codes.
pub(crate) fn enable_totp(
    state: &AppState,
    user_id: Snowflake,
    secret: &str,
    code: &str,
) -> Result<MfaState, ApiError> {
    let secret: String = secret
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if base32_decode(&secret).is_none_or(|key| key.len() < 10) {
        return Err(ApiError::invalid_field(
            "secret",
            "BASE_TYPE_BAD_SECRET",
            "Invalid TOTP secret",
        ));
    }
    let existing = state.store.account.mfa.get(user_id)?;
    if existing.as_ref().is_some_and(totp_enabled) {
        return Err(mfa_already_enabled());
    }
    if !verify_totp(&secret, code, now_ms() / 1000) {
        return Err(invalid_code());
    }
    let mfa = MfaState {
        totp_secret: secret,
        backup_codes: new_backup_codes(),
        ..existing.unwrap_or_default()
    };
    set_mfa_flag(state, user_id, Some(&mfa))?;
    Ok(mfa)
}

/// Turns TOTP off after checking `code` (TOTP or an unused backup code). MFA stays on (with
/// SMS off, as SMS needs the app) while security keys remain; otherwise it goes off.
pub(crate) fn disable_totp(
    state: &AppState,
    user_id: Snowflake,
    code: &str,
) -> Result<(), ApiError> {
    let mfa = state
        .store
        .account
        .mfa
        .get(user_id)?
        .ok_or_else(mfa_not_enabled)?;
    if !totp_enabled(&mfa) {
        return Err(mfa_not_enabled());
    }
    let totp_ok = verify_totp(&mfa.totp_secret, code, now_ms() / 1000);
    if !totp_ok && !consume_backup_code(state, user_id, mfa.clone(), code)? {
        return Err(invalid_code());
    }
    if state.store.account.webauthn.count(user_id) == 0 {
        return set_mfa_flag(state, user_id, None);
    }
    let keys_only = MfaState {
        backup_codes: state
            .store
            .account
            .mfa
            .get(user_id)?
            .map(|m| m.backup_codes)
            .unwrap_or(mfa.backup_codes),
        ..MfaState::default()
    };
    set_mfa_flag(state, user_id, Some(&keys_only))
}

/// Registers a security key (see [`webauthn::register`]); an account without MFA gets it
/// turned on, with fresh backup codes (USER_UPDATE). The key and the account's backup codes.
pub(crate) fn add_security_key(
    state: &AppState,
    user: &User,
    ticket: &str,
    credential: &str,
    name: Option<&str>,
) -> Result<(WebauthnKey, Vec<BackupCode>), ApiError> {
    let key = webauthn::register(state, user, ticket, credential, name)?;
    let codes = match state.store.account.mfa.get(user.id)? {
        Some(mfa) => mfa.backup_codes,
        None => {
            let mfa = MfaState {
                backup_codes: new_backup_codes(),
                ..MfaState::default()
            };
            set_mfa_flag(state, user.id, Some(&mfa))?;
            mfa.backup_codes
        }
    };
    Ok((key, codes))
}

/// Deletes a security key (10093 when it is not the user's); the last factor gone turns MFA
/// off (USER_UPDATE). Whether MFA went off.
pub(crate) fn remove_security_key(
    state: &AppState,
    user_id: Snowflake,
    key_id: Snowflake,
) -> Result<bool, ApiError> {
    let remaining = webauthn::delete(state, user_id, key_id)?;
    let mfa = state.store.account.mfa.get(user_id)?;
    if remaining == 0 && mfa.as_ref().is_some_and(|m| !totp_enabled(m)) {
        set_mfa_flag(state, user_id, None)?;
        return Ok(true);
    }
    Ok(false)
}

/// Stores (or removes) the MFA state, sets `mfa_enabled` and sends USER_UPDATE.
fn set_mfa_flag(
    state: &AppState,
    user_id: Snowflake,
    mfa: Option<&MfaState>,
) -> Result<(), ApiError> {
    // The MFA row and the user's flag change under one lock, so they never disagree.
    change_user(state, user_id, |user| {
        match mfa {
            Some(mfa) => state.store.account.mfa.put(user_id, mfa)?,
            None => {
                state.store.account.mfa.remove(user_id)?;
            }
        }
        user.mfa_enabled = mfa.is_some();
        Ok(())
    })
}

/// Changes the stored user (and whatever `change` writes beside it) under the store's lock,
/// then sends USER_UPDATE to their sessions.
fn change_user(
    state: &AppState,
    user_id: Snowflake,
    change: impl FnOnce(&mut crate::backend::model::User) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let user = {
        let _guard = state.store.lock();
        let mut user = state.store.user(user_id)?.ok_or(ApiError::Unauthorized)?;
        change(&mut user)?;
        state.store.users.put(user_id, &user)?;
        user
    };
    state.publish(Dispatch::users(
        "USER_UPDATE",
        vec![user_id],
        0,
        render::user_private(&user),
    ));
    Ok(())
}

/// An `/auth/fingerprint` value: `{id}.{random}`, as Discord shapes them.
pub(crate) fn fingerprint(id: Snowflake) -> String {
    let mut random = [0u8; 20];
    crate::backend::clock::fill_random(&mut random);
    format!("{id}.{}", URL_SAFE_NO_PAD.encode(random))
}

/// Marks the user's email verified (USER_UPDATE); returns their id.
pub(crate) fn mark_verified(state: &AppState, user_id: Snowflake) -> Result<Snowflake, ApiError> {
    change_user(state, user_id, |user| {
        user.verified = true;
        Ok(())
    })?;
    Ok(user_id)
}

/// The user's backup codes, a fresh set when `regenerate`; 60002 without MFA.
pub(crate) fn backup_codes(
    state: &AppState,
    user_id: Snowflake,
    regenerate: bool,
) -> Result<Vec<BackupCode>, ApiError> {
    let _guard = state.store.lock();
    let mut mfa = state
        .store
        .account
        .mfa
        .get(user_id)?
        .ok_or_else(mfa_not_enabled)?;
    if regenerate {
        mfa.backup_codes = new_backup_codes();
        state.store.account.mfa.put(user_id, &mfa)?;
    }
    Ok(mfa.backup_codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B: the ASCII secret "12345678901234567890", 8 digits truncated to
        // the last six here.
        let key = b"12345678901234567890";
        for (time, eight) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            assert_eq!(totp_code(key, time / 30), eight[2..]);
        }
    }

    #[test]
    fn base32_round_trips_and_verification_allows_one_step_of_drift() {
        let key = b"12345678901234567890";
        let secret = base32_encode(key);
        assert_eq!(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32_decode(&secret).unwrap(), key);
        assert!(base32_decode("not base32!").is_none());
        let code = totp_code(key, 1111111111 / 30);
        assert!(verify_totp(&secret, &code, 1111111111));
        assert!(verify_totp(&secret, &code, 1111111111 + 30));
        assert!(!verify_totp(&secret, &code, 1111111111 + 90));
        assert!(!verify_totp(&secret, "12345", 1111111111));
    }

    #[test]
    fn backup_codes_are_distinct_and_eight_characters() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), BACKUP_CODES);
        assert!(codes.iter().all(|c| c.code.len() == 8 && !c.consumed));
    }
}
