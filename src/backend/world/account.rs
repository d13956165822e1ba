//! The official client's account state in fixtures: relationships, notes, read states, a
//! user's TOTP secret and backup codes (`mfa`) and legacy settings (`settings`, mirrored into
//! the settings proto as the REST routes do).
use std::collections::HashMap;

use serde_json::Value;

use super::fixture::{Fixture, FixtureUser};

/// A problem found while planning: JSON path and reason.
type PlanError = (String, String);
use crate::backend::services::auth::base32_decode;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, Snowflake};
use crate::backend::store::{Store, StoreError};
use crate::backend::user_state::{
    read_state_type, relationship_type as kind, BackupCode, MfaState, ReadState, Relationship,
};

/// The account records a fixture writes.
#[derive(Default)]
pub(super) struct AccountPlan {
    relationships: Vec<(Snowflake, Relationship)>,
    notes: Vec<(Snowflake, Snowflake, String)>,
    read_states: Vec<(Snowflake, ReadState)>,
    mfa: Vec<(Snowflake, MfaState)>,
    settings: Vec<(Snowflake, serde_json::Map<String, Value>)>,
}

fn side(other: Snowflake, relationship: u8, nickname: Option<String>) -> Relationship {
    Relationship {
        id: other,
        kind: relationship,
        nickname,
        since: iso8601_from_ms(now_ms()),
        is_spam_request: false,
        stranger_request: false,
        user_ignored: false,
    }
}

/// Checks the fixture's account parts against its users; what to write.
pub(super) fn plan_account(
    fixture: &Fixture,
    users: &HashMap<Snowflake, &FixtureUser>,
) -> Result<AccountPlan, PlanError> {
    let mut plan = AccountPlan::default();
    let known = |path: String, id: Snowflake| -> Result<(), PlanError> {
        if users.contains_key(&id) {
            Ok(())
        } else {
            Err((path, format!("unknown user {id}")))
        }
    };
    for (i, rel) in fixture.relationships.iter().enumerate() {
        known(format!("$.relationships[{i}].user_id"), rel.user_id)?;
        known(format!("$.relationships[{i}].other_id"), rel.other_id)?;
        let (mine, theirs) = match rel.kind {
            kind::FRIEND => (kind::FRIEND, Some(kind::FRIEND)),
            kind::BLOCKED => (kind::BLOCKED, None),
            kind::OUTGOING_REQUEST => (kind::OUTGOING_REQUEST, Some(kind::INCOMING_REQUEST)),
            other => {
                return Err((
                    format!("$.relationships[{i}].type"),
                    format!("{other} is not 1 (friends), 2 (blocked) or 4 (request)"),
                ))
            }
        };
        plan.relationships
            .push((rel.user_id, side(rel.other_id, mine, rel.nickname.clone())));
        if let Some(theirs) = theirs {
            plan.relationships
                .push((rel.other_id, side(rel.user_id, theirs, None)));
        }
    }
    for (i, note) in fixture.notes.iter().enumerate() {
        known(format!("$.notes[{i}].user_id"), note.user_id)?;
        known(format!("$.notes[{i}].target_id"), note.target_id)?;
        plan.notes
            .push((note.user_id, note.target_id, note.note.clone()));
    }
    for (i, state) in fixture.read_states.iter().enumerate() {
        known(format!("$.read_states[{i}].user_id"), state.user_id)?;
        plan.read_states.push((
            state.user_id,
            ReadState {
                id: state.channel_id,
                read_state_type: read_state_type::CHANNEL,
                last_message_id: Some(state.last_message_id),
                mention_count: state.mention_count,
                ..ReadState::default()
            },
        ));
    }
    for (i, user) in fixture.users.iter().enumerate() {
        if let Some(mfa) = &user.mfa {
            if base32_decode(&mfa.totp_secret).is_none_or(|key| key.len() < 10) {
                return Err((
                    format!("$.users[{i}].mfa.totp_secret"),
                    "not a base32 secret of at least 16 characters".into(),
                ));
            }
            let e164 = |p: &str| {
                p.strip_prefix('+').is_some_and(|digits| {
                    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
                })
            };
            if mfa.phone.as_deref().is_some_and(|p| !e164(p)) {
                return Err((
                    format!("$.users[{i}].mfa.phone"),
                    "not an E.164 phone number (+ and 7 to 15 digits)".into(),
                ));
            }
            plan.mfa.push((
                user.id,
                MfaState {
                    totp_secret: mfa.totp_secret.to_ascii_uppercase(),
                    backup_codes: mfa
                        .backup_codes
                        .iter()
                        .map(|code| BackupCode {
                            code: code.to_ascii_lowercase(),
                            consumed: false,
                        })
                        .collect(),
                    phone: mfa.phone.clone(),
                    sms_enabled: mfa.phone.is_some(),
                    sms_code: mfa.sms_code.clone(),
                },
            ));
        }
        if let Some(settings) = &user.settings {
            let Some(object) = settings.as_object() else {
                return Err((format!("$.users[{i}].settings"), "not an object".into()));
            };
            plan.settings.push((user.id, object.clone()));
        }
    }
    Ok(plan)
}

/// Writes the planned account records (users already written).
pub(super) fn write_account(store: &Store, plan: &AccountPlan) -> Result<(), StoreError> {
    let tables = &store.account;
    for (owner, rel) in &plan.relationships {
        tables.relationships.put((*owner, rel.id), rel)?;
    }
    for (owner, target, note) in &plan.notes {
        tables.notes.put((*owner, *target), note)?;
    }
    for (user, state) in &plan.read_states {
        tables.read_states.put(
            (
                *user,
                Snowflake(u64::from(read_state_type::CHANNEL)),
                state.id,
            ),
            state,
        )?;
    }
    for (user, mfa) in &plan.mfa {
        tables.mfa.put(*user, mfa)?;
        if let Some(mut record) = store.users.get(*user)? {
            record.mfa_enabled = true;
            store.users.put(*user, &record)?;
        }
    }
    for (user, settings) in &plan.settings {
        crate::backend::services::settings::store_legacy(store, *user, settings)
            .map_err(|e| StoreError::Corrupt(serde::de::Error::custom(e.to_string())))?;
    }
    Ok(())
}

/// The demo world's second person: `friend` (friend@example.com / friend-password), a friend
/// of the demo user, who logs in with MFA (TOTP secret [`DEMO_TOTP_SECRET`], backup codes
/// `demo1234` and `demo5678`). Also a member of `guild_id`.
pub(crate) fn add_demo_friend(
    store: &Store,
    demo_user: Snowflake,
    guild_id: Snowflake,
) -> Result<(), StoreError> {
    let (friend, _) = crate::backend::accounts::create_user(
        store,
        crate::backend::accounts::NewUser {
            id: store.next_id(),
            username: "friend".into(),
            global_name: Some("Demo Friend".into()),
            bot: false,
            token: None,
            email: Some("friend@example.com".into()),
            password: Some("friend-password".into()),
        },
    )?;
    let mut plan = AccountPlan::default();
    plan.relationships
        .push((demo_user, side(friend.id, kind::FRIEND, None)));
    plan.relationships
        .push((friend.id, side(demo_user, kind::FRIEND, None)));
    plan.mfa.push((
        friend.id,
        MfaState {
            totp_secret: DEMO_TOTP_SECRET.into(),
            backup_codes: ["demo1234", "demo5678"]
                .iter()
                .map(|code| BackupCode {
                    code: (*code).into(),
                    consumed: false,
                })
                .collect(),
            ..MfaState::default()
        },
    ));
    write_account(store, &plan)?;
    let member = crate::backend::model::Member::new(friend.id, now_ms());
    store.put_member(guild_id, &member)
}

/// The demo friend's TOTP secret (base32), printed nowhere secret: it is a demo.
pub(crate) const DEMO_TOTP_SECRET: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";
