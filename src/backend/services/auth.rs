//! Signing in the official client's way: password login, the MFA ticket and its second step
//! (RFC 6238 TOTP, a one-time backup code, or an SMS code that is never really sent), enabling
//! and disabling TOTP and SMS, and logout (the token stops working and its gateway sessions
//! close with 4004).
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
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::AppState;
use crate::backend::user_state::{BackupCode, MfaState};

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
    /// A second factor is needed: the user and the ticket for `/auth/mfa/{type}`.
    Mfa(User, String),
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
    if state.store.account.mfa.get(user.id)?.is_none() {
        return Ok(Some(LoginOutcome::Token(user, token)));
    }
    let ticket = issue_ticket(user.id);
    Ok(Some(LoginOutcome::Mfa(user, ticket)))
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

/// The user a live MFA ticket belongs to; 50035 at `ticket` otherwise.
fn ticket_user(ticket: &str) -> Result<Snowflake, ApiError> {
    let tickets = TICKETS.lock();
    match tickets.get(ticket) {
        Some((user_id, issued)) if issued.elapsed() < TICKET_LIFETIME => Ok(*user_id),
        _ => Err(ApiError::invalid_field(
            "ticket",
            "TICKET_INVALID",
            "Invalid ticket",
        )),
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

/// The account has no SMS second factor (the 60001 family of "MFA is not enabled").
fn sms_not_enabled() -> ApiError {
    ApiError::bad_request(60001, "SMS two-factor authentication is not enabled")
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

/// 60001: the account has no MFA at all.
fn mfa_not_enabled() -> ApiError {
    ApiError::bad_request(60001, "This account does not have MFA enabled")
}

/// Turns the SMS second factor on or off (`/users/@me/mfa/sms/enable|disable`): needs TOTP
/// (60001 without) and, to enable, a phone number on the account (50035 at `phone` without).
pub(crate) fn set_sms_enabled(
    state: &AppState,
    user_id: Snowflake,
    enabled: bool,
) -> Result<(), ApiError> {
    change_mfa(state, user_id, mfa_not_enabled, |mfa| {
        if enabled && mfa.phone.is_none() {
            return Err(ApiError::invalid_field(
                "phone",
                "PHONE_REQUIRED",
                "A verified phone number is required.",
            ));
        }
        mfa.sms_enabled = enabled;
        Ok(())
    })
}

/// Whether the user's MFA login offers SMS codes.
pub(crate) fn sms_enabled(state: &AppState, user_id: Snowflake) -> Result<bool, ApiError> {
    Ok(state
        .store
        .account
        .mfa
        .get(user_id)?
        .is_some_and(|mfa| mfa.sms_enabled && mfa.phone.is_some()))
}

/// A WebAuthn login challenge as Discord words it: a ticket and the stringified public key
/// credential request options (a fresh random challenge, no allowed credentials).
pub(crate) fn webauthn_challenge(conditional: bool) -> serde_json::Value {
    let mut challenge = [0u8; 32];
    crate::backend::clock::fill_random(&mut challenge);
    let mut ticket = [0u8; 16];
    crate::backend::clock::fill_random(&mut ticket);
    let mut options = serde_json::json!({
        "publicKey": {
            "challenge": URL_SAFE_NO_PAD.encode(challenge),
            "timeout": 60000,
            "rpId": "discord.com",
            "allowCredentials": [],
            "userVerification": "required",
            "extensions": {"uvm": true},
        }
    });
    if conditional {
        options["mediation"] = serde_json::json!("conditional");
    }
    serde_json::json!({
        "ticket": URL_SAFE_NO_PAD.encode(ticket),
        "challenge": options.to_string(),
    })
}

/// Completes an MFA login: `code` is a TOTP code (`kind` "totp"), a backup code ("backup")
/// or the SMS code sent for this ticket ("sms"). The ticket is spent only on success, as
/// Discord lets the user retry a typo. WebAuthn is refused: no authenticator can be
/// registered here.
pub(crate) fn complete_mfa(
    state: &AppState,
    kind: &str,
    ticket: &str,
    code: &str,
) -> Result<(User, String), ApiError> {
    let user_id = ticket_user(ticket)?;
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

/// Turns TOTP on with `secret` once `code` proves the user's app has it; the new MFA state.
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
    if !verify_totp(&secret, code, now_ms() / 1000) {
        return Err(invalid_code());
    }
    let mfa = MfaState {
        totp_secret: secret,
        backup_codes: new_backup_codes(),
        ..MfaState::default()
    };
    set_mfa_flag(state, user_id, Some(&mfa))?;
    Ok(mfa)
}

/// Turns TOTP off after checking `code` (TOTP or an unused backup code).
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
    let totp_ok = verify_totp(&mfa.totp_secret, code, now_ms() / 1000);
    if !totp_ok && !consume_backup_code(state, user_id, mfa, code)? {
        return Err(invalid_code());
    }
    set_mfa_flag(state, user_id, None)
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

/// The user's backup codes, a fresh set when `regenerate`; 60001 without MFA.
pub(crate) fn backup_codes(
    state: &AppState,
    user_id: Snowflake,
    regenerate: bool,
) -> Result<Vec<BackupCode>, ApiError> {
    let _guard = state.store.lock();
    let mut mfa =
        state.store.account.mfa.get(user_id)?.ok_or_else(|| {
            ApiError::bad_request(60001, "This account does not have MFA enabled")
        })?;
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
