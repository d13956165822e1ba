//! WebAuthn security keys end to end on the built binary, driven by a software authenticator
//! written here (a P-256 key from `ring`, `clientDataJSON`, authenticator data with the RP id
//! hash, flags and counter, a `none` attestation object in CBOR, ES256 assertion signatures):
//! registering a key (challenge, attestation, AUTHENTICATOR_CREATE and MFA turning on), listing,
//! renaming and deleting it (AUTHENTICATOR_UPDATE/DELETE, MFA off with the last factor), the MFA
//! login it finishes (`/auth/login` → `webauthn` options → `/auth/mfa/webauthn`), passwordless
//! logins (`/auth/conditional/finish`), the key surviving a restart, and the refusals: a wrong
//! signature, a wrong challenge, a replayed challenge, a counter going backwards, another
//! origin, a non-ES256 key, a missing presence flag (60008), spent tickets (60006) and unknown
//! authenticators (10093).
mod account_support;
mod serve_routes_gateway_support;
mod serve_support;

use account_support::{totp_now, TOTP_SECRET};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ciborium::value::Value as Cbor;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};
use serve_routes_gateway_support::{call, next_dispatch, session, Rest, Socket};
use serve_support::*;
use sha2::{Digest, Sha256};

/// Intents a user client does not send; user sessions get their events regardless.
const NO_INTENTS: u64 = 0;
/// Where Discord's web app runs: the origin the browser writes into the client data.
const ORIGIN: &str = "https://discord.com";
/// Authenticator data flags: user present, user verified, attested credential data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn cbor(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).expect("CBOR encodes");
    out
}

/// What a ceremony's client data says; each field can be made wrong on purpose.
struct ClientData<'a> {
    kind: &'a str,
    challenge: &'a str,
    origin: &'a str,
}

impl ClientData<'_> {
    fn json(&self) -> Vec<u8> {
        json!({
            "type": self.kind,
            "challenge": self.challenge,
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }
}

/// A security key in software: one P-256 credential and its signature counter.
struct Authenticator {
    key: EcdsaKeyPair,
    credential_id: Vec<u8>,
    counter: u32,
    rng: SystemRandom,
}

impl Authenticator {
    fn new() -> Authenticator {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut credential_id = vec![0u8; 32];
        rng.fill(&mut credential_id).unwrap();
        Authenticator {
            key,
            credential_id,
            counter: 0,
            rng,
        }
    }

    fn id(&self) -> String {
        b64(&self.credential_id)
    }

    /// The credential's COSE_Key: EC2, ES256 (or `alg`), P-256, x and y.
    fn cose_key(&self, alg: i64) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        assert_eq!(
            (point.len(), point[0]),
            (65, 4),
            "an uncompressed P-256 point"
        );
        cbor(&Cbor::Map(vec![
            (Cbor::from(1), Cbor::from(2)),
            (Cbor::from(3), Cbor::from(alg)),
            (Cbor::from(-1), Cbor::from(1)),
            (Cbor::from(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::from(-3), Cbor::Bytes(point[33..].to_vec())),
        ]))
    }

    /// Authenticator data: SHA-256 of the RP id, flags, counter, then (with AT) the attested
    /// credential data: a zero AAGUID, the id's length and the id, the COSE key.
    fn auth_data(&self, rp_id: &str, flags: u8, counter: u32, alg: i64) -> Vec<u8> {
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&counter.to_be_bytes());
        if flags & AT != 0 {
            data.extend_from_slice(&[0u8; 16]);
            let length = u16::try_from(self.credential_id.len()).unwrap();
            data.extend_from_slice(&length.to_be_bytes());
            data.extend_from_slice(&self.credential_id);
            data.extend_from_slice(&self.cose_key(alg));
        }
        data
    }

    /// `navigator.credentials.create()` answered with a `none` attestation, as
    /// `PublicKeyCredential.toJSON()` sends it; the credential JSON as a string.
    fn create(&self, client: &ClientData, flags: u8, alg: i64) -> String {
        let auth_data = self.auth_data("discord.com", flags, 0, alg);
        let attestation = cbor(&Cbor::Map(vec![
            (Cbor::from("fmt"), Cbor::from("none")),
            (Cbor::from("attStmt"), Cbor::Map(vec![])),
            (Cbor::from("authData"), Cbor::Bytes(auth_data)),
        ]));
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client.json()),
                "attestationObject": b64(&attestation),
                "transports": ["usb"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "cross-platform",
        })
        .to_string()
    }

    /// `navigator.credentials.get()`: the next counter value, the ES256 signature over the
    /// authenticator data and the client data's hash.
    fn get(&mut self, client: &ClientData, flags: u8) -> String {
        self.counter += 1;
        self.assert_with(client, flags, self.counter, &self.key)
    }

    /// An assertion with every part chosen: counter and the key that signs.
    fn assert_with(
        &self,
        client: &ClientData,
        flags: u8,
        counter: u32,
        signer: &EcdsaKeyPair,
    ) -> String {
        let auth_data = self.auth_data("discord.com", flags, counter, -7);
        let client_json = client.json();
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_json));
        let signature = signer.sign(&self.rng, &signed).unwrap();
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_json),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_ref()),
                "userHandle": null,
            },
            "clientExtensionResults": {},
        })
        .to_string()
    }
}

const KEYS: &str = "/users/@me/mfa/webauthn/credentials";

/// The publicKey options inside a stringified `challenge`/`webauthn` field.
fn options(stringified: &Value) -> Value {
    let text = stringified.as_str().expect("stringified options");
    serde_json::from_str::<Value>(text).expect("options are JSON")["publicKey"].clone()
}

/// The next `name` dispatch on `ws` that `wanted` accepts.
async fn wait_for(ws: &mut Socket, name: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        let (data, _) = next_dispatch(ws, |n| n == name).await;
        if wanted(&data) {
            return data;
        }
    }
}

/// Alice's password login; the MFA answer.
async fn login(rest: &Rest) -> Value {
    let body = json!({"login": "alice@example.com", "password": "hunter2"});
    rest.expect("POST", "/auth/login", "", body, 200).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_keys_register_finish_mfa_logins_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            Server::start_in(&data, Some(FIXTURE), &["--rate-limit", "off"]).unwrap()
        })
        .await
        .unwrap()
    };
    let rest = Rest {
        base: server.base(),
    };
    let mut alice = session(&server.addr, ALICE, NO_INTENTS).await;
    let mut key = Authenticator::new();
    let key_id = register(&rest, &mut alice, &key).await;
    rename(&rest, &mut alice, &key_id).await;
    mfa_login(&rest, &mut key).await;
    passwordless(&rest, &mut key).await;
    drop(alice);

    // The key, its name and its counter survive a restart; then deleting it turns MFA off.
    let server = server.restart_async(&data, &["--rate-limit", "off"]).await;
    let rest = Rest {
        base: server.base(),
    };
    let listed = rest.expect("GET", KEYS, ALICE, json!({}), 200).await;
    assert_eq!(listed[0]["name"], "desk key", "{listed}");
    assert!(listed[0]["last_used"].is_string(), "{listed}");
    let answer = login(&rest).await;
    let ticket = answer["ticket"].clone();
    let challenge = options(&answer["webauthn"])["challenge"].clone();
    let client = ClientData {
        kind: "webauthn.get",
        challenge: challenge.as_str().unwrap(),
        origin: ORIGIN,
    };
    // The counter stored before the restart still guards against a cloned key.
    let stale = key.assert_with(&client, UP, 1, &key.key);
    let body = |code: String| json!({"ticket": ticket, "code": code});
    rest.refuse("POST", "/auth/mfa/webauthn", "", body(stale), 400, 60008)
        .await;
    let fresh = key.get(&client, UP);
    rest.expect("POST", "/auth/mfa/webauthn", "", body(fresh), 200)
        .await;
    let mut alice = session(&server.addr, ALICE, NO_INTENTS).await;
    delete(&rest, &mut alice, &key_id).await;
}

/// Registration: the creation options, the refusals, then a key that registers (MFA on, backup
/// codes, AUTHENTICATOR_CREATE and USER_UPDATE on alice's session). The authenticator's id.
async fn register(rest: &Rest, alice: &mut Socket, key: &Authenticator) -> String {
    assert_eq!(
        rest.expect("GET", KEYS, ALICE, json!({}), 200).await,
        json!([])
    );
    rest.refuse("GET", KEYS, BOT, json!({}), 403, 20001).await;
    let start = rest.expect("POST", KEYS, ALICE, json!({}), 200).await;
    let ticket = start["ticket"].as_str().unwrap().to_string();
    let create = options(&start["challenge"]);
    assert_eq!(create["rp"]["id"], "discord.com");
    assert_eq!(create["pubKeyCredParams"][0]["alg"], -7);
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(create["user"]["id"].as_str().unwrap())
            .unwrap(),
        ALICE_ID.as_bytes()
    );
    let challenge = create["challenge"].as_str().unwrap().to_string();
    let good = ClientData {
        kind: "webauthn.create",
        challenge: &challenge,
        origin: ORIGIN,
    };
    let send = |credential: String, name: &str| json!({"ticket": ticket, "credential": credential, "name": name});
    let other_challenge = b64(&[7u8; 32]);
    for (why, credential) in [
        (
            "another challenge",
            key.create(
                &ClientData {
                    challenge: &other_challenge,
                    ..good
                },
                UP | AT,
                -7,
            ),
        ),
        (
            "another origin",
            key.create(
                &ClientData {
                    origin: "https://discord.com.evil.example",
                    ..good
                },
                UP | AT,
                -7,
            ),
        ),
        (
            "an assertion's type",
            key.create(
                &ClientData {
                    kind: "webauthn.get",
                    ..good
                },
                UP | AT,
                -7,
            ),
        ),
        ("RS256, not ES256", key.create(&good, UP | AT, -257)),
        ("no user presence", key.create(&good, AT, -7)),
        ("not JSON", "{".to_string()),
    ] {
        let (status, answer) = call(
            &rest.base,
            "POST",
            KEYS.into(),
            ALICE,
            send(credential, "k"),
        )
        .await;
        assert_eq!(
            (status, answer["code"].clone()),
            (400, json!(60008)),
            "{why}: {answer}"
        );
    }
    let valid = key.create(&good, UP | AT, -7);
    rest.refuse(
        "POST",
        KEYS,
        ALICE,
        send(valid.clone(), &"x".repeat(33)),
        400,
        50035,
    )
    .await;
    let wrong_ticket = json!({"ticket": "nope", "credential": valid, "name": "k"});
    rest.refuse("POST", KEYS, ALICE, wrong_ticket, 400, 60006)
        .await;
    // Bob cannot answer alice's registration challenge.
    rest.refuse("POST", KEYS, BOB, send(valid.clone(), "k"), 400, 60006)
        .await;
    let created = rest
        .expect("POST", KEYS, ALICE, send(valid.clone(), "yubikey"), 200)
        .await;
    assert_eq!(
        (created["type"].clone(), created["name"].clone()),
        (json!(1), json!("yubikey"))
    );
    assert_eq!(created["backup_codes"].as_array().unwrap().len(), 10);
    let id = created["id"].as_str().unwrap().to_string();
    // MFA turns on (USER_UPDATE), then the key is announced.
    wait_for(alice, "USER_UPDATE", |u| u["mfa_enabled"] == true).await;
    let event = wait_for(alice, "AUTHENTICATOR_CREATE", |_| true).await;
    assert_eq!(
        (event["id"].as_str(), event["cred_id"].as_str()),
        (Some(id.as_str()), Some(key.id().as_str()))
    );
    // The challenge is spent: the same attestation cannot register twice.
    rest.refuse("POST", KEYS, ALICE, send(valid, "again"), 400, 60006)
        .await;
    let listed = rest.expect("GET", KEYS, ALICE, json!({}), 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        (
            listed[0]["cred_id"].as_str(),
            listed[0]["last_used"].clone()
        ),
        (Some(key.id().as_str()), Value::Null)
    );
    // A second registration lists the key as excluded.
    let again = rest.expect("POST", KEYS, ALICE, json!({}), 200).await;
    assert_eq!(
        options(&again["challenge"])["excludeCredentials"][0]["id"],
        key.id().as_str()
    );
    id
}

/// Renaming: AUTHENTICATOR_UPDATE; bad names and unknown ids refused.
async fn rename(rest: &Rest, alice: &mut Socket, id: &str) {
    let at = format!("{KEYS}/{id}");
    let renamed = rest
        .expect("PATCH", &at, ALICE, json!({"name": "desk key"}), 200)
        .await;
    assert_eq!(renamed["name"], "desk key");
    let event = wait_for(alice, "AUTHENTICATOR_UPDATE", |_| true).await;
    assert_eq!(event["name"], "desk key");
    rest.refuse("PATCH", &at, ALICE, json!({"name": ""}), 400, 50035)
        .await;
    rest.refuse("PATCH", &at, BOB, json!({"name": "mine"}), 404, 10093)
        .await;
    rest.refuse(
        "PATCH",
        &format!("{KEYS}/12"),
        ALICE,
        json!({"name": "x"}),
        404,
        10093,
    )
    .await;
}

/// The MFA login: the answer offers the key (and no TOTP); a wrong signature, a wrong
/// challenge, a counter going backwards, a replayed assertion and a spent ticket are refused;
/// the right assertion signs alice in.
async fn mfa_login(rest: &Rest, key: &mut Authenticator) {
    let answer = login(rest).await;
    assert_eq!(
        (
            answer["mfa"].clone(),
            answer["totp"].clone(),
            answer["backup"].clone()
        ),
        (json!(true), json!(false), json!(true)),
        "{answer}"
    );
    let request = options(&answer["webauthn"]);
    assert_eq!(request["rpId"], "discord.com");
    assert_eq!(request["allowCredentials"][0]["id"], key.id().as_str());
    let ticket = answer["ticket"].clone();
    let body = |code: String| json!({"ticket": ticket, "code": code});
    let challenge = request["challenge"].as_str().unwrap().to_string();
    let good = ClientData {
        kind: "webauthn.get",
        challenge: &challenge,
        origin: ORIGIN,
    };
    let impostor = Authenticator::new();
    let other_challenge = b64(&[9u8; 32]);
    for (why, assertion) in [
        (
            "signed by another key",
            key.assert_with(&good, UP, 5, &impostor.key),
        ),
        (
            "over another challenge",
            key.assert_with(
                &ClientData {
                    challenge: &other_challenge,
                    ..good
                },
                UP,
                5,
                &key.key,
            ),
        ),
        (
            "without user presence",
            key.assert_with(&good, 0, 5, &key.key),
        ),
        (
            "from another origin",
            key.assert_with(
                &ClientData {
                    origin: "https://example.com",
                    ..good
                },
                UP,
                5,
                &key.key,
            ),
        ),
        (
            "an unregistered credential",
            impostor.assert_with(&good, UP, 5, &impostor.key),
        ),
    ] {
        let (status, answer) = call(
            &rest.base,
            "POST",
            "/auth/mfa/webauthn".into(),
            "",
            body(assertion),
        )
        .await;
        assert_eq!(
            (status, answer["code"].clone()),
            (400, json!(60008)),
            "{why}: {answer}"
        );
    }
    // A TOTP code cannot finish an account without an authenticator app.
    rest.refuse(
        "POST",
        "/auth/mfa/totp",
        "",
        body("123456".into()),
        400,
        60008,
    )
    .await;
    let assertion = key.get(&good, UP);
    let done = rest
        .expect(
            "POST",
            "/auth/mfa/webauthn",
            "",
            body(assertion.clone()),
            200,
        )
        .await;
    let token = done["token"].as_str().unwrap();
    let me = rest
        .expect("GET", "/users/@me", token, json!({}), 200)
        .await;
    assert_eq!(
        (me["id"].as_str(), me["mfa_enabled"].clone()),
        (Some(ALICE_ID), json!(true))
    );
    // Replays: the same assertion on the spent ticket, then on a fresh ticket (whose challenge
    // differs), are refused.
    rest.refuse(
        "POST",
        "/auth/mfa/webauthn",
        "",
        body(assertion.clone()),
        400,
        60006,
    )
    .await;
    let next = login(rest).await;
    let replay = json!({"ticket": next["ticket"], "code": assertion});
    rest.refuse("POST", "/auth/mfa/webauthn", "", replay, 400, 60008)
        .await;
    // A counter that goes backwards (a cloned key) is refused; the next real one passes.
    let challenge = options(&next["webauthn"])["challenge"].clone();
    let client = ClientData {
        kind: "webauthn.get",
        challenge: challenge.as_str().unwrap(),
        origin: ORIGIN,
    };
    let next_body = |code: String| json!({"ticket": next["ticket"], "code": code});
    let cloned = key.assert_with(&client, UP, key.counter - 1, &key.key);
    rest.refuse(
        "POST",
        "/auth/mfa/webauthn",
        "",
        next_body(cloned),
        400,
        60008,
    )
    .await;
    let same = key.assert_with(&client, UP, key.counter, &key.key);
    rest.refuse(
        "POST",
        "/auth/mfa/webauthn",
        "",
        next_body(same),
        400,
        60008,
    )
    .await;
    let real = key.get(&client, UP);
    rest.expect("POST", "/auth/mfa/webauthn", "", next_body(real), 200)
        .await;
}

/// Passwordless: the key (with user verification) signs alice in without her password.
async fn passwordless(rest: &Rest, key: &mut Authenticator) {
    let start = rest
        .expect("POST", "/auth/conditional/start", "", json!({}), 200)
        .await;
    let request = options(&start["challenge"]);
    assert_eq!(request["userVerification"], "required");
    let challenge = request["challenge"].as_str().unwrap().to_string();
    let client = ClientData {
        kind: "webauthn.get",
        challenge: &challenge,
        origin: ORIGIN,
    };
    let finish = |credential: String| json!({"ticket": start["ticket"], "credential": credential});
    let unverified = key.get(&client, UP);
    rest.refuse(
        "POST",
        "/auth/conditional/finish",
        "",
        finish(unverified),
        400,
        60008,
    )
    .await;
    let verified = key.get(&client, UP | UV);
    let done = rest
        .expect(
            "POST",
            "/auth/conditional/finish",
            "",
            finish(verified.clone()),
            200,
        )
        .await;
    assert_eq!(done["user_id"], ALICE_ID);
    let me = rest
        .expect(
            "GET",
            "/users/@me",
            done["token"].as_str().unwrap(),
            json!({}),
            200,
        )
        .await;
    assert_eq!(me["id"], ALICE_ID);
    rest.refuse(
        "POST",
        "/auth/conditional/finish",
        "",
        finish(verified),
        400,
        60006,
    )
    .await;
    rest.refuse(
        "POST",
        "/auth/conditional/finish",
        "",
        json!({}),
        400,
        50035,
    )
    .await;
}

/// Deleting the only key turns MFA off (AUTHENTICATOR_DELETE, USER_UPDATE): the password
/// alone signs in again.
async fn delete(rest: &Rest, alice: &mut Socket, id: &str) {
    let at = format!("{KEYS}/{id}");
    rest.refuse("DELETE", &at, BOB, json!({}), 404, 10093).await;
    rest.expect("DELETE", &at, ALICE, json!({}), 204).await;
    wait_for(alice, "USER_UPDATE", |u| u["mfa_enabled"] == false).await;
    let event = wait_for(alice, "AUTHENTICATOR_DELETE", |_| true).await;
    assert_eq!(
        (event["id"].as_str(), event["type"].clone()),
        (Some(id), json!(1))
    );
    rest.refuse("DELETE", &at, ALICE, json!({}), 404, 10093)
        .await;
    let answer = login(rest).await;
    assert!(answer["token"].is_string(), "{answer}");
    assert_eq!(
        rest.expect("GET", KEYS, ALICE, json!({}), 200).await,
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_beside_totp_and_discords_mfa_error_codes() {
    let mut fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    fixture["users"][0]["mfa"] = json!({"totp_secret": TOTP_SECRET});
    let text = fixture.to_string();
    let server =
        tokio::task::spawn_blocking(move || Server::start(Some(&text), &["--rate-limit", "off"]))
            .await
            .unwrap();
    let rest = Rest {
        base: server.base(),
    };
    // Discord's codes: SMS needs a phone (70007); bob has no MFA at all (60002).
    let sms = json!({"password": "hunter2"});
    rest.refuse("POST", "/users/@me/mfa/sms/enable", ALICE, sms, 400, 70007)
        .await;
    rest.refuse(
        "POST",
        "/users/@me/mfa/codes-verification",
        BOB,
        json!({}),
        400,
        60002,
    )
    .await;
    let key = Authenticator::new();
    let start = rest.expect("POST", KEYS, ALICE, json!({}), 200).await;
    let challenge = options(&start["challenge"])["challenge"].clone();
    let client = ClientData {
        kind: "webauthn.create",
        challenge: challenge.as_str().unwrap(),
        origin: ORIGIN,
    };
    let created = rest
        .expect(
            "POST",
            KEYS,
            ALICE,
            json!({"ticket": start["ticket"], "credential": key.create(&client, UP | AT, -7), "name": "k"}),
            200,
        )
        .await;
    // MFA was already on: the account's backup codes come back as they were (the fixture gave
    // it none); no new set is drawn.
    assert_eq!(created["backup_codes"], json!([]), "{created}");
    let answer = login(&rest).await;
    assert_eq!(
        (answer["totp"].clone(), answer["webauthn"].is_string()),
        (json!(true), true),
        "{answer}"
    );
    // Enabling TOTP again is Discord's 60001 (already enrolled).
    let enable =
        json!({"password": "hunter2", "secret": TOTP_SECRET, "code": totp_now(TOTP_SECRET)});
    rest.refuse(
        "POST",
        "/users/@me/mfa/totp/enable",
        ALICE,
        enable,
        400,
        60001,
    )
    .await;
    // The app goes, the key stays: MFA stays on and the login offers the key alone.
    let disable = json!({"code": totp_now(TOTP_SECRET)});
    let disabled = rest
        .expect("POST", "/users/@me/mfa/totp/disable", ALICE, disable, 200)
        .await;
    let token = disabled["token"].as_str().unwrap();
    let me = rest
        .expect("GET", "/users/@me", token, json!({}), 200)
        .await;
    assert_eq!(me["mfa_enabled"], true);
    let answer = login(&rest).await;
    assert_eq!(
        (
            answer["mfa"].clone(),
            answer["totp"].clone(),
            answer["webauthn"].is_string()
        ),
        (json!(true), json!(false), true),
        "{answer}"
    );
    // With no app left, disabling it again is 60002.
    let again = json!({"code": totp_now(TOTP_SECRET)});
    rest.refuse(
        "POST",
        "/users/@me/mfa/totp/disable",
        token,
        again,
        400,
        60002,
    )
    .await;
}
