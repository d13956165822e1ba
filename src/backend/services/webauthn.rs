//! WebAuthn security keys as Discord uses them for MFA: registering one (a creation challenge
//! from `POST /users/@me/mfa/webauthn/credentials`, then the authenticator's attestation sent
//! back to the same route), listing, renaming and deleting them, and the assertions that finish
//! an MFA login (`/auth/mfa/webauthn`, the challenge riding in the login answer's `webauthn`)
//! or a passwordless one (`/auth/passwordless/start` or `/auth/conditional/start`, then
//! `/auth/conditional/finish`).
//!
//! The checks are the relying party's of WebAuthn level 2 (§7.1 and §7.2): the client data's
//! type, challenge and origin (`https://discord.com` or a subdomain), the authenticator data's
//! RP id hash (`discord.com`), user-presence flag and signature counter (a counter that does
//! not grow is a cloned key and is refused), and the ES256 signature over the authenticator
//! data and the client data's hash, verified with `ring`. Attestation objects and COSE keys are
//! CBOR, read with `ciborium`; the `none` attestation format is accepted, and `packed`
//! self-attestation (signed by the new key itself). Only ES256 (P-256) keys register.
//!
//! Every failed check answers Discord's 60008 (the credential stands in for the MFA code); the
//! reason is logged at debug level.
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use ciborium::value::Value as Cbor;
use parking_lot::Mutex;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::backend::error::{ApiError, Unknown, Validator};
use crate::backend::model::User;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, Snowflake};
use crate::backend::state::AppState;
use crate::backend::user_state::WebauthnKey;

/// The relying party id: Discord's.
pub(crate) const RP_ID: &str = "discord.com";
/// How long a challenge stays valid (the options say 60 s; a little slack for slow keys).
const CHALLENGE_LIFETIME: Duration = Duration::from_secs(300);
/// The `timeout` the options carry, in milliseconds.
const TIMEOUT_MS: u64 = 60_000;
/// COSE algorithm id of ES256.
const ES256: i128 = -7;

/// Authenticator data flags (WebAuthn §6.1).
mod flag {
    /// User present.
    pub(super) const UP: u8 = 0x01;
    /// User verified.
    pub(super) const UV: u8 = 0x04;
    /// Attested credential data included.
    pub(super) const AT: u8 = 0x40;
    /// Extension data included.
    pub(super) const ED: u8 = 0x80;
}

/// What a pending challenge may finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Registering a new key for this user.
    Register(Snowflake),
    /// The second factor of this user's password login (keyed by the login's MFA ticket).
    Mfa(Snowflake),
    /// A passwordless login: whoever's key answers.
    Passwordless,
}

struct Pending {
    purpose: Purpose,
    challenge: [u8; 32],
    issued: Instant,
}

/// Challenges in flight by ticket.
static PENDING: LazyLock<Mutex<HashMap<String, Pending>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Discord's 60008, the answer to every credential that does not check out.
fn refused(reason: &str) -> ApiError {
    tracing::debug!(reason, "webauthn credential refused");
    ApiError::bad_request(60008, "Invalid two-factor code")
}

/// Discord's 60006: no live challenge under this ticket.
pub(crate) fn invalid_ticket() -> ApiError {
    ApiError::bad_request(60006, "Invalid two-factor auth ticket")
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    crate::backend::clock::fill_random(&mut out);
    out
}

/// Stores a fresh challenge for `purpose` under `ticket`; the challenge.
fn remember(ticket: &str, purpose: Purpose) -> [u8; 32] {
    let challenge = random_bytes::<32>();
    let now = Instant::now();
    let mut pending = PENDING.lock();
    pending.retain(|_, p| now.duration_since(p.issued) < CHALLENGE_LIFETIME);
    pending.insert(
        ticket.to_string(),
        Pending {
            purpose,
            challenge,
            issued: now,
        },
    );
    challenge
}

/// The live challenge under `ticket` when it was issued for `purpose`.
fn challenge_for(ticket: &str, purpose: Purpose) -> Result<[u8; 32], ApiError> {
    let pending = PENDING.lock();
    match pending.get(ticket) {
        Some(p) if p.purpose == purpose && p.issued.elapsed() < CHALLENGE_LIFETIME => {
            Ok(p.challenge)
        }
        _ => Err(invalid_ticket()),
    }
}

/// Spends the challenge under `ticket` if it is still `challenge`: false when another request
/// spent it first (a replay racing the original).
fn spend(ticket: &str, challenge: &[u8; 32]) -> bool {
    let mut pending = PENDING.lock();
    match pending.get(ticket) {
        Some(p) if &p.challenge == challenge => {
            pending.remove(ticket);
            true
        }
        _ => false,
    }
}

/// Base64url (or standard base64), padding optional: how browsers and libraries send binary
/// fields of a credential.
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim().trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .ok()
}

/// The user handle the creation options carry: the user id's decimal digits.
fn user_handle(user_id: Snowflake) -> String {
    URL_SAFE_NO_PAD.encode(user_id.to_string())
}

/// The wire shape of an authenticator (userdoccers' Authenticator object; type 1 = WEBAUTHN).
pub(crate) fn render(key: &WebauthnKey) -> Value {
    json!({
        "id": key.id,
        "type": 1,
        "name": key.name,
        "last_used": key.last_used_ms.map(iso8601_from_ms),
        "cred_id": key.credential_id,
    })
}

/// The user's authenticators, oldest first.
pub(crate) fn keys(state: &AppState, user_id: Snowflake) -> Result<Vec<WebauthnKey>, ApiError> {
    Ok(state.store.account.webauthn.values(user_id)?)
}

fn descriptors(keys: &[WebauthnKey]) -> Value {
    Value::Array(
        keys.iter()
            .map(|k| json!({"type": "public-key", "id": k.credential_id}))
            .collect(),
    )
}

/// `POST /users/@me/mfa/webauthn/credentials` without a credential: a registration ticket and
/// the stringified creation options (ES256, no attestation wanted, the user's keys excluded).
pub(crate) fn registration_challenge(state: &AppState, user: &User) -> Result<Value, ApiError> {
    let existing = keys(state, user.id)?;
    let ticket = URL_SAFE_NO_PAD.encode(random_bytes::<24>());
    let challenge = remember(&ticket, Purpose::Register(user.id));
    let options = json!({
        "publicKey": {
            "challenge": URL_SAFE_NO_PAD.encode(challenge),
            "timeout": TIMEOUT_MS,
            "rp": {"id": RP_ID, "name": "Discord"},
            "user": {
                "id": user_handle(user.id),
                "name": user.username,
                "displayName": user.global_name.as_deref().unwrap_or(&user.username),
            },
            "pubKeyCredParams": [{"type": "public-key", "alg": ES256}],
            "excludeCredentials": descriptors(&existing),
            "authenticatorSelection": {"userVerification": "preferred"},
            "attestation": "none",
        }
    });
    Ok(json!({"ticket": ticket, "challenge": options.to_string()}))
}

/// The `webauthn` field of an MFA login answer for `user_id` (the request options with their
/// keys allowed, the challenge bound to the login's `ticket`); `None` without keys.
pub(crate) fn login_options(
    state: &AppState,
    user_id: Snowflake,
    ticket: &str,
) -> Result<Option<String>, ApiError> {
    let existing = keys(state, user_id)?;
    if existing.is_empty() {
        return Ok(None);
    }
    let challenge = remember(ticket, Purpose::Mfa(user_id));
    let options = json!({
        "publicKey": {
            "challenge": URL_SAFE_NO_PAD.encode(challenge),
            "timeout": TIMEOUT_MS,
            "rpId": RP_ID,
            "allowCredentials": descriptors(&existing),
            "userVerification": "preferred",
        }
    });
    Ok(Some(options.to_string()))
}

/// A passwordless login challenge (`/auth/passwordless/start`, or with `conditional` the
/// `/auth/conditional/start` form with `mediation: conditional`): a ticket and the
/// stringified request options (no keys listed: the authenticator offers its discoverable
/// ones; user verification required).
pub(crate) fn passwordless_challenge(conditional: bool) -> Value {
    let ticket = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
    let challenge = remember(&ticket, Purpose::Passwordless);
    let mut options = json!({
        "publicKey": {
            "challenge": URL_SAFE_NO_PAD.encode(challenge),
            "timeout": TIMEOUT_MS,
            "rpId": RP_ID,
            "allowCredentials": [],
            "userVerification": "required",
            "extensions": {"uvm": true},
        }
    });
    if conditional {
        options["mediation"] = json!("conditional");
    }
    json!({"ticket": ticket, "challenge": options.to_string()})
}

/// `PublicKeyCredential.toJSON()`, the parts either ceremony reads.
#[derive(Deserialize)]
struct CredentialJson {
    id: Option<String>,
    #[serde(rename = "rawId")]
    raw_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    response: Option<ResponseJson>,
}

#[derive(Deserialize)]
struct ResponseJson {
    #[serde(rename = "clientDataJSON")]
    client_data_json: Option<String>,
    #[serde(rename = "attestationObject")]
    attestation_object: Option<String>,
    #[serde(rename = "authenticatorData")]
    authenticator_data: Option<String>,
    signature: Option<String>,
    #[serde(rename = "userHandle")]
    user_handle: Option<String>,
}

/// A credential's decoded fields.
struct Credential {
    id: Vec<u8>,
    client_data: Vec<u8>,
    response: ResponseJson,
}

fn parse_credential(text: &str) -> Result<Credential, ApiError> {
    let parsed: CredentialJson =
        serde_json::from_str(text).map_err(|_| refused("credential is not JSON"))?;
    if parsed.kind.as_deref().is_some_and(|k| k != "public-key") {
        return Err(refused("credential type is not public-key"));
    }
    let id = parsed
        .raw_id
        .as_deref()
        .or(parsed.id.as_deref())
        .and_then(decode_b64)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| refused("credential id missing"))?;
    let response = parsed
        .response
        .ok_or_else(|| refused("credential response missing"))?;
    let client_data = response
        .client_data_json
        .as_deref()
        .and_then(decode_b64)
        .ok_or_else(|| refused("clientDataJSON missing"))?;
    Ok(Credential {
        id,
        client_data,
        response,
    })
}

#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: bool,
}

/// Whether a client data origin is Discord's web app (`https://discord.com` or one of its
/// subdomains, such as canary and ptb).
fn origin_allowed(origin: &str) -> bool {
    let Some(host) = origin.strip_prefix("https://") else {
        return false;
    };
    host == RP_ID
        || host.strip_suffix(".discord.com").is_some_and(|sub| {
            !sub.is_empty()
                && sub
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
}

/// Checks the client data of a `kind` ceremony ("webauthn.create" or "webauthn.get") over
/// `challenge`.
fn check_client_data(bytes: &[u8], kind: &str, challenge: &[u8; 32]) -> Result<(), ApiError> {
    let data: ClientData =
        serde_json::from_slice(bytes).map_err(|_| refused("clientDataJSON is not JSON"))?;
    if data.kind != kind {
        return Err(refused("client data type"));
    }
    if decode_b64(&data.challenge).as_deref() != Some(challenge.as_slice()) {
        return Err(refused("challenge does not match"));
    }
    if !origin_allowed(&data.origin) || data.cross_origin {
        return Err(refused("origin not allowed"));
    }
    Ok(())
}

/// Authenticator data (WebAuthn §6.1), checked against the RP id and user presence.
struct AuthData {
    flags: u8,
    sign_count: u32,
    /// The credential id and public key (uncompressed P-256 point), on registration.
    attested: Option<(Vec<u8>, Vec<u8>)>,
}

fn parse_auth_data(bytes: &[u8], registering: bool) -> Result<AuthData, ApiError> {
    if bytes.len() < 37 {
        return Err(refused("authenticator data too short"));
    }
    if bytes[..32] != Sha256::digest(RP_ID.as_bytes())[..] {
        return Err(refused("RP id hash does not match"));
    }
    let flags = bytes[32];
    if flags & flag::UP == 0 {
        return Err(refused("user not present"));
    }
    let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
    let rest = &bytes[37..];
    let attested = if registering {
        if flags & flag::AT == 0 {
            return Err(refused("no attested credential data"));
        }
        Some(parse_attested(rest, flags)?)
    } else {
        if flags & flag::AT != 0 || (flags & flag::ED == 0 && !rest.is_empty()) {
            return Err(refused("unexpected data after the counter"));
        }
        None
    };
    Ok(AuthData {
        flags,
        sign_count,
        attested,
    })
}

/// Attested credential data: AAGUID (16), id length (2), id, COSE key (then extensions when
/// ED is set). The credential id and the uncompressed public key.
fn parse_attested(rest: &[u8], flags: u8) -> Result<(Vec<u8>, Vec<u8>), ApiError> {
    if rest.len() < 18 {
        return Err(refused("attested credential data too short"));
    }
    let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
    if id_len == 0 || id_len > 1023 || rest.len() < 18 + id_len {
        return Err(refused("credential id length"));
    }
    let credential_id = rest[18..18 + id_len].to_vec();
    let key_bytes = &rest[18 + id_len..];
    let mut cursor = Cursor::new(key_bytes);
    let cose: Cbor =
        ciborium::de::from_reader(&mut cursor).map_err(|_| refused("COSE key is not CBOR"))?;
    let used = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
    if used < key_bytes.len() && flags & flag::ED == 0 {
        return Err(refused("trailing bytes after the COSE key"));
    }
    Ok((credential_id, es256_point(&cose)?))
}

fn cbor_int(value: &Cbor) -> Option<i128> {
    match value {
        Cbor::Integer(i) => Some(i128::from(*i)),
        _ => None,
    }
}

/// The uncompressed P-256 point (`04 || x || y`) of an ES256 COSE_Key.
fn es256_point(key: &Cbor) -> Result<Vec<u8>, ApiError> {
    let Cbor::Map(entries) = key else {
        return Err(refused("COSE key is not a map"));
    };
    let field = |label: i128| {
        entries
            .iter()
            .find(|(k, _)| cbor_int(k) == Some(label))
            .map(|(_, v)| v)
    };
    // kty 2 (EC2), alg -7 (ES256), crv 1 (P-256).
    if field(1).and_then(cbor_int) != Some(2)
        || field(3).and_then(cbor_int) != Some(ES256)
        || field(-1).and_then(cbor_int) != Some(1)
    {
        return Err(refused("not an ES256 P-256 key"));
    }
    let coordinate = |label: i128| match field(label) {
        Some(Cbor::Bytes(b)) if b.len() == 32 => Some(b.clone()),
        _ => None,
    };
    let (Some(x), Some(y)) = (coordinate(-2), coordinate(-3)) else {
        return Err(refused("key coordinates"));
    };
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// Verifies an ES256 (ASN.1 DER) signature of `message` by the uncompressed P-256 `point`.
fn signature_valid(point: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
        .verify(message, signature)
        .is_ok()
}

fn map_field<'a>(entries: &'a [(Cbor, Cbor)], name: &str) -> Option<&'a Cbor> {
    entries
        .iter()
        .find(|(k, _)| matches!(k, Cbor::Text(t) if t == name))
        .map(|(_, v)| v)
}

/// Reads an attestation object (`{fmt, attStmt, authData}`) and checks its statement (`none`,
/// or `packed` self-attestation); the credential id, public key and counter.
fn check_attestation(
    bytes: &[u8],
    client_data_hash: &[u8],
) -> Result<(Vec<u8>, Vec<u8>, u32), ApiError> {
    let object: Cbor =
        ciborium::de::from_reader(bytes).map_err(|_| refused("attestation object is not CBOR"))?;
    let Cbor::Map(entries) = &object else {
        return Err(refused("attestation object is not a map"));
    };
    let (Some(Cbor::Text(fmt)), Some(Cbor::Map(statement)), Some(Cbor::Bytes(auth_bytes))) = (
        map_field(entries, "fmt"),
        map_field(entries, "attStmt"),
        map_field(entries, "authData"),
    ) else {
        return Err(refused("attestation object fields"));
    };
    let auth = parse_auth_data(auth_bytes, true)?;
    let Some((credential_id, point)) = auth.attested else {
        return Err(refused("no attested credential data"));
    };
    match fmt.as_str() {
        "none" if statement.is_empty() => {}
        "packed" => {
            // Self-attestation only: signed by the new key, no certificate chain.
            if map_field(statement, "x5c").is_some() {
                return Err(refused("attestation certificates are not accepted"));
            }
            if map_field(statement, "alg").and_then(cbor_int) != Some(ES256) {
                return Err(refused("packed attestation algorithm"));
            }
            let Some(Cbor::Bytes(signature)) = map_field(statement, "sig") else {
                return Err(refused("packed attestation signature missing"));
            };
            let mut signed = auth_bytes.clone();
            signed.extend_from_slice(client_data_hash);
            if !signature_valid(&point, &signed, signature) {
                return Err(refused("packed attestation signature"));
            }
        }
        _ => return Err(refused("attestation format not accepted")),
    }
    Ok((credential_id, point, auth.sign_count))
}

/// Checks a registration name (1-32 characters); 50035 at `name` otherwise.
fn check_name(name: Option<&str>) -> Result<String, ApiError> {
    let mut checks = Validator::default();
    checks.required("name", name.as_ref());
    checks.length("name", name, 1, 32);
    checks.finish()?;
    Ok(name.unwrap_or_default().to_string())
}

/// Registers the key `credential` attests, answering the registration challenge under
/// `ticket`; the new key. The caller turns MFA on when this is the account's first factor.
pub(crate) fn register(
    state: &AppState,
    user: &User,
    ticket: &str,
    credential: &str,
    name: Option<&str>,
) -> Result<WebauthnKey, ApiError> {
    let name = check_name(name)?;
    let challenge = challenge_for(ticket, Purpose::Register(user.id))?;
    let parsed = parse_credential(credential)?;
    check_client_data(&parsed.client_data, "webauthn.create", &challenge)?;
    let attestation = parsed
        .response
        .attestation_object
        .as_deref()
        .and_then(decode_b64)
        .ok_or_else(|| refused("attestationObject missing"))?;
    let client_data_hash = Sha256::digest(&parsed.client_data);
    let (credential_id, point, sign_count) = check_attestation(&attestation, &client_data_hash)?;
    if credential_id != parsed.id {
        return Err(refused("credential id differs from the attested one"));
    }
    let credential_id = URL_SAFE_NO_PAD.encode(&credential_id);
    let _guard = state.store.lock();
    if state
        .store
        .account
        .webauthn
        .all()?
        .iter()
        .any(|k| k.credential_id == credential_id)
    {
        return Err(refused("credential already registered"));
    }
    if !spend(ticket, &challenge) {
        return Err(invalid_ticket());
    }
    let key = WebauthnKey {
        id: state.store.next_id(),
        user_id: user.id,
        name,
        credential_id,
        public_key: URL_SAFE_NO_PAD.encode(&point),
        sign_count,
        last_used_ms: None,
    };
    state.store.account.webauthn.put((user.id, key.id), &key)?;
    Ok(key)
}

/// Renames one of the user's keys; the updated key. 10093 when it is not theirs.
pub(crate) fn rename(
    state: &AppState,
    user_id: Snowflake,
    key_id: Snowflake,
    name: Option<&str>,
) -> Result<WebauthnKey, ApiError> {
    let name = check_name(name)?;
    let _guard = state.store.lock();
    let mut key = state
        .store
        .account
        .webauthn
        .get((user_id, key_id))?
        .ok_or(ApiError::NotFound(Unknown::WebauthnAuthenticator))?;
    key.name = name;
    state.store.account.webauthn.put((user_id, key_id), &key)?;
    Ok(key)
}

/// Deletes one of the user's keys; how many remain. 10093 when it is not theirs.
pub(crate) fn delete(
    state: &AppState,
    user_id: Snowflake,
    key_id: Snowflake,
) -> Result<usize, ApiError> {
    let _guard = state.store.lock();
    state
        .store
        .account
        .webauthn
        .remove((user_id, key_id))?
        .ok_or(ApiError::NotFound(Unknown::WebauthnAuthenticator))?;
    Ok(state.store.account.webauthn.count(user_id))
}

/// Checks an assertion against `key` and `challenge` (user verification required when
/// `require_uv`); the new signature counter.
fn check_assertion(
    key: &WebauthnKey,
    credential: &Credential,
    challenge: &[u8; 32],
    require_uv: bool,
) -> Result<u32, ApiError> {
    check_client_data(&credential.client_data, "webauthn.get", challenge)?;
    let auth_bytes = credential
        .response
        .authenticator_data
        .as_deref()
        .and_then(decode_b64)
        .ok_or_else(|| refused("authenticatorData missing"))?;
    let signature = credential
        .response
        .signature
        .as_deref()
        .and_then(decode_b64)
        .ok_or_else(|| refused("signature missing"))?;
    let auth = parse_auth_data(&auth_bytes, false)?;
    if require_uv && auth.flags & flag::UV == 0 {
        return Err(refused("user not verified"));
    }
    let point = decode_b64(&key.public_key).ok_or_else(|| refused("stored key unreadable"))?;
    let mut signed = auth_bytes;
    signed.extend_from_slice(&Sha256::digest(&credential.client_data));
    if !signature_valid(&point, &signed, &signature) {
        return Err(refused("signature does not verify"));
    }
    // §7.2 step 21: a counter that does not grow means a cloned authenticator.
    if (auth.sign_count != 0 || key.sign_count != 0) && auth.sign_count <= key.sign_count {
        return Err(refused("signature counter did not increase"));
    }
    Ok(auth.sign_count)
}

/// Verifies `credential` (from one of `user_id`'s keys) and spends the challenge under
/// `ticket` for `purpose`; stores the new counter and the time of use.
fn finish(
    state: &AppState,
    ticket: &str,
    purpose: Purpose,
    user_id: Option<Snowflake>,
    credential: &str,
) -> Result<Snowflake, ApiError> {
    let challenge = match challenge_for(ticket, purpose) {
        // A live MFA ticket without a WebAuthn challenge: the account has no key to answer it.
        Err(_) if user_id.is_some() => return Err(refused("no WebAuthn challenge for the ticket")),
        other => other?,
    };
    let parsed = parse_credential(credential)?;
    let credential_id = URL_SAFE_NO_PAD.encode(&parsed.id);
    let _guard = state.store.lock();
    let candidates = match user_id {
        Some(user_id) => keys(state, user_id)?,
        None => state.store.account.webauthn.all()?,
    };
    let Some(mut key) = candidates
        .into_iter()
        .find(|k| k.credential_id == credential_id)
    else {
        return Err(refused("unknown credential"));
    };
    if let Some(handle) = parsed.response.user_handle.as_deref() {
        if !handle.is_empty() && decode_b64(handle) != Some(key.user_id.to_string().into_bytes()) {
            return Err(refused("user handle does not match"));
        }
    }
    let sign_count = check_assertion(&key, &parsed, &challenge, user_id.is_none())?;
    if !spend(ticket, &challenge) {
        return Err(refused("challenge already used"));
    }
    key.sign_count = sign_count;
    key.last_used_ms = Some(now_ms());
    state
        .store
        .account
        .webauthn
        .put((key.user_id, key.id), &key)?;
    Ok(key.user_id)
}

/// Finishes `user_id`'s MFA login whose ticket is `ticket` with a WebAuthn assertion.
pub(crate) fn finish_mfa(
    state: &AppState,
    user_id: Snowflake,
    ticket: &str,
    credential: &str,
) -> Result<(), ApiError> {
    finish(
        state,
        ticket,
        Purpose::Mfa(user_id),
        Some(user_id),
        credential,
    )
    .map(|_| ())
}

/// Finishes a passwordless login (`/auth/conditional/finish`): whose key signed; user
/// verification is required.
pub(crate) fn finish_passwordless(
    state: &AppState,
    ticket: &str,
    credential: &str,
) -> Result<Snowflake, ApiError> {
    finish(state, ticket, Purpose::Passwordless, None, credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_discords_web_app_only() {
        for good in [
            "https://discord.com",
            "https://canary.discord.com",
            "https://ptb.discord.com",
        ] {
            assert!(origin_allowed(good), "{good}");
        }
        for bad in [
            "http://discord.com",
            "https://discord.com.evil.org",
            "https://evildiscord.com",
            "https://.discord.com",
            "https://discord.com:8443",
            "android:apk-key-hash:abc",
        ] {
            assert!(!origin_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn base64_fields_decode_url_safe_or_standard_with_or_without_padding() {
        assert_eq!(decode_b64("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_b64("+/8=").unwrap(), [0xfb, 0xff]);
        assert!(decode_b64("not base64!").is_none());
    }

    #[test]
    fn cose_keys_other_than_es256_p256_are_refused() {
        let key = |alg: i64, crv: i64, x_len: usize| {
            Cbor::Map(vec![
                (Cbor::from(1), Cbor::from(2)),
                (Cbor::from(3), Cbor::from(alg)),
                (Cbor::from(-1), Cbor::from(crv)),
                (Cbor::from(-2), Cbor::Bytes(vec![1; x_len])),
                (Cbor::from(-3), Cbor::Bytes(vec![2; 32])),
            ])
        };
        let point = es256_point(&key(-7, 1, 32)).unwrap();
        assert_eq!((point.len(), point[0], point[1], point[64]), (65, 4, 1, 2));
        assert!(es256_point(&key(-257, 1, 32)).is_err(), "RS256");
        assert!(es256_point(&key(-7, 2, 32)).is_err(), "P-384");
        assert!(es256_point(&key(-7, 1, 31)).is_err(), "short x");
        assert!(es256_point(&Cbor::Array(vec![])).is_err());
    }

    #[test]
    fn authenticator_data_needs_discords_rp_hash_and_presence() {
        let mut data = Sha256::digest(RP_ID.as_bytes()).to_vec();
        data.push(flag::UP);
        data.extend_from_slice(&7u32.to_be_bytes());
        let parsed = parse_auth_data(&data, false).unwrap();
        assert_eq!(parsed.sign_count, 7);
        let mut absent = data.clone();
        absent[32] = 0;
        assert!(parse_auth_data(&absent, false).is_err());
        let mut other_rp = data.clone();
        other_rp[0] ^= 1;
        assert!(parse_auth_data(&other_rp, false).is_err());
        assert!(parse_auth_data(&data[..36], false).is_err());
        // Registration needs attested credential data.
        assert!(parse_auth_data(&data, true).is_err());
    }
}
