//! Friends, requests and blocks (both sides stored, RELATIONSHIP_ADD/UPDATE/REMOVE to each
//! side's sessions) and the private notes users keep on each other (USER_NOTE_UPDATE).
use serde_json::{json, Value};

use crate::backend::error::{ApiError, Unknown};
use crate::backend::events::Dispatch;
use crate::backend::model::User;
use crate::backend::render;
use crate::backend::snowflake::{iso8601_from_ms, now_ms, Snowflake};
use crate::backend::state::AppState;
use crate::backend::user_state::{relationship_type as kind, Relationship};

fn coded(code: u32, message: &str) -> ApiError {
    ApiError::bad_request(code, message)
}

/// The wire shape of a relationship: the stored side plus the other user.
pub(crate) fn render_relationship(state: &AppState, rel: &Relationship) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(rel).map_err(|e| ApiError::Internal(e.to_string()))?;
    value["user"] = render::user_by_id(&state.store, rel.id)?;
    Ok(value)
}

/// Every relationship of `user_id`, rendered.
pub(crate) fn list(state: &AppState, user_id: Snowflake) -> Result<Vec<Value>, ApiError> {
    state
        .store
        .account
        .relationships
        .values(user_id)?
        .iter()
        .map(|rel| render_relationship(state, rel))
        .collect()
}

fn side(
    state: &AppState,
    owner: Snowflake,
    other: Snowflake,
) -> Result<Option<Relationship>, ApiError> {
    Ok(state.store.account.relationships.get((owner, other))?)
}

fn new_side(other: Snowflake, relationship: u8) -> Relationship {
    Relationship {
        id: other,
        kind: relationship,
        nickname: None,
        since: iso8601_from_ms(now_ms()),
        is_spam_request: false,
        stranger_request: false,
        user_ignored: false,
    }
}

/// The events a change produces, sent once the store is written.
#[derive(Default)]
struct Outbox(Vec<(&'static str, Snowflake, Value)>);

impl Outbox {
    fn add(
        &mut self,
        state: &AppState,
        owner: Snowflake,
        rel: &Relationship,
        notify: bool,
    ) -> Result<(), ApiError> {
        let mut data = render_relationship(state, rel)?;
        if notify {
            data["should_notify"] = json!(true);
        }
        self.0.push(("RELATIONSHIP_ADD", owner, data));
        Ok(())
    }

    fn remove(&mut self, owner: Snowflake, rel: &Relationship) {
        self.0.push((
            "RELATIONSHIP_REMOVE",
            owner,
            json!({"id": rel.id, "type": rel.kind, "since": rel.since, "nickname": rel.nickname}),
        ));
    }

    fn send(self, state: &AppState) {
        for (name, owner, data) in self.0 {
            state.publish(Dispatch::users(name, vec![owner], 0, data));
        }
    }
}

fn put_side(state: &AppState, owner: Snowflake, rel: &Relationship) -> Result<(), ApiError> {
    state
        .store
        .account
        .relationships
        .put((owner, rel.id), rel)?;
    Ok(())
}

/// Sends (or accepts) a friend request from `me` to `target`, Discord's errors included.
pub(crate) fn request_friend(
    state: &AppState,
    me: &User,
    target_id: Snowflake,
) -> Result<(), ApiError> {
    if target_id == me.id {
        return Err(coded(80003, "Cannot send friend request to self"));
    }
    let target = state
        .store
        .user(target_id)?
        .ok_or(ApiError::NotFound(Unknown::User))?;
    if target.bot || me.bot {
        return Err(coded(80002, "Bots cannot have friends"));
    }
    let mut outbox = Outbox::default();
    {
        let _guard = state.store.lock();
        let theirs = side(state, target_id, me.id)?;
        if theirs.as_ref().is_some_and(|r| r.kind == kind::BLOCKED) {
            return Err(coded(80001, "Friend request blocked"));
        }
        let mine = side(state, me.id, target_id)?;
        match mine.as_ref().map(|r| r.kind) {
            Some(kind::FRIEND) => {
                return Err(coded(80007, "You are already friends with that user."))
            }
            Some(kind::OUTGOING_REQUEST) => return Ok(()),
            Some(kind::INCOMING_REQUEST) => {
                // Accepting: both sides become friends.
                let mut mine = new_side(target_id, kind::FRIEND);
                mine.nickname = None;
                let theirs = new_side(me.id, kind::FRIEND);
                put_side(state, me.id, &mine)?;
                put_side(state, target_id, &theirs)?;
                outbox.add(state, me.id, &mine, false)?;
                outbox.add(state, target_id, &theirs, false)?;
            }
            _ => {
                let mine = new_side(target_id, kind::OUTGOING_REQUEST);
                let theirs = new_side(me.id, kind::INCOMING_REQUEST);
                put_side(state, me.id, &mine)?;
                put_side(state, target_id, &theirs)?;
                outbox.add(state, me.id, &mine, false)?;
                outbox.add(state, target_id, &theirs, true)?;
            }
        }
    }
    outbox.send(state);
    Ok(())
}

/// `me` blocks `target`: any friendship or request ends on both sides.
pub(crate) fn block(state: &AppState, me: &User, target_id: Snowflake) -> Result<(), ApiError> {
    if target_id == me.id {
        return Err(coded(80003, "Cannot send friend request to self"));
    }
    state
        .store
        .user(target_id)?
        .ok_or(ApiError::NotFound(Unknown::User))?;
    let mut outbox = Outbox::default();
    {
        let _guard = state.store.lock();
        if let Some(theirs) = side(state, target_id, me.id)? {
            if theirs.kind != kind::BLOCKED {
                state
                    .store
                    .account
                    .relationships
                    .remove((target_id, me.id))?;
                outbox.remove(target_id, &theirs);
            }
        }
        if let Some(mine) = side(state, me.id, target_id)? {
            if mine.kind == kind::BLOCKED {
                return Ok(());
            }
            outbox.remove(me.id, &mine);
        }
        let mine = new_side(target_id, kind::BLOCKED);
        put_side(state, me.id, &mine)?;
        outbox.add(state, me.id, &mine, false)?;
    }
    outbox.send(state);
    Ok(())
}

/// Removes `me`'s relationship with `target` (unfriend, cancel, decline or unblock).
pub(crate) fn remove(
    state: &AppState,
    me: Snowflake,
    target_id: Snowflake,
) -> Result<(), ApiError> {
    let mut outbox = Outbox::default();
    {
        let _guard = state.store.lock();
        let Some(mine) = state.store.account.relationships.remove((me, target_id))? else {
            return Err(ApiError::NotFound(Unknown::User));
        };
        outbox.remove(me, &mine);
        if mine.kind != kind::BLOCKED {
            if let Some(theirs) = side(state, target_id, me)? {
                if theirs.kind != kind::BLOCKED {
                    state.store.account.relationships.remove((target_id, me))?;
                    outbox.remove(target_id, &theirs);
                }
            }
        }
    }
    outbox.send(state);
    Ok(())
}

/// Sets `me`'s private nickname for `target` (RELATIONSHIP_UPDATE to `me`).
pub(crate) fn set_nickname(
    state: &AppState,
    me: Snowflake,
    target_id: Snowflake,
    nickname: Option<String>,
) -> Result<(), ApiError> {
    let rel = {
        let _guard = state.store.lock();
        let mut rel = side(state, me, target_id)?.ok_or(ApiError::NotFound(Unknown::User))?;
        rel.nickname = nickname.filter(|n| !n.is_empty());
        put_side(state, me, &rel)?;
        rel
    };
    state.publish(Dispatch::users(
        "RELATIONSHIP_UPDATE",
        vec![me],
        0,
        json!({"id": rel.id, "type": rel.kind, "nickname": rel.nickname, "since": rel.since}),
    ));
    Ok(())
}

/// Finds a user by username (case-insensitive), for requests sent by name.
pub(crate) fn user_by_username(state: &AppState, username: &str) -> Result<Option<User>, ApiError> {
    let wanted = username.to_lowercase();
    Ok(state
        .store
        .users
        .all()?
        .into_iter()
        .find(|u| u.username.to_lowercase() == wanted))
}

/// Whether `a` and `b` are friends.
pub(crate) fn are_friends(state: &AppState, a: Snowflake, b: Snowflake) -> Result<bool, ApiError> {
    Ok(side(state, a, b)?.is_some_and(|r| r.kind == kind::FRIEND))
}

/// Whether `owner` blocked `other`.
pub(crate) fn has_blocked(
    state: &AppState,
    owner: Snowflake,
    other: Snowflake,
) -> Result<bool, ApiError> {
    Ok(side(state, owner, other)?.is_some_and(|r| r.kind == kind::BLOCKED))
}

/// Sets (or, when empty, clears) `owner`'s note on `target` and sends USER_NOTE_UPDATE.
pub(crate) fn set_note(
    state: &AppState,
    owner: Snowflake,
    target: Snowflake,
    note: &str,
) -> Result<(), ApiError> {
    state
        .store
        .user(target)?
        .ok_or(ApiError::NotFound(Unknown::User))?;
    if note.is_empty() {
        state.store.account.notes.remove((owner, target))?;
    } else {
        state
            .store
            .account
            .notes
            .put((owner, target), &note.to_string())?;
    }
    state.publish(Dispatch::users(
        "USER_NOTE_UPDATE",
        vec![owner],
        0,
        json!({"id": target, "note": note}),
    ));
    Ok(())
}

/// Whether `a` blocked `b` or `b` blocked `a` (a 1:1 DM between them takes no messages).
pub(crate) fn blocked_either_way(
    state: &AppState,
    a: Snowflake,
    b: Snowflake,
) -> Result<bool, ApiError> {
    Ok(has_blocked(state, a, b)? || has_blocked(state, b, a)?)
}
