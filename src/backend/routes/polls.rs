//! Polls: answer voters, ending a poll early, the official client's vote route
//! (`PUT …/answers/@me`, MESSAGE_POLL_VOTE_ADD/REMOVE), and the finaliser that closes a poll at
//! its expiry (results marked `is_finalized`, MESSAGE_UPDATE, a POLL_RESULT notification).
use axum::extract::State;
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{no_content, ok, ApiResult};
use crate::backend::error::{ApiError, Validator};
use crate::backend::extract::{Auth, Body, Ids, InChannel, Q};
use crate::backend::model::Message;
use crate::backend::permissions::bits;
use crate::backend::poll::Poll;
use crate::backend::render;
use crate::backend::services::common::limit;
use crate::backend::services::polls::{expired, finalise, load};
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::{AppState, ChannelAccess};
use crate::{backend::events::Dispatch, gateway::intents};

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{channel_id}/polls/{message_id}/answers/@me",
            put(vote),
        )
        .route(
            "/channels/{channel_id}/polls/{message_id}/answers/{answer_id}",
            get(voters),
        )
        .route(
            "/channels/{channel_id}/polls/{message_id}/expire",
            post(expire),
        )
}

/// `POST /channels/{channel}/polls/{message}/expire`: the poll's author ends it now.
async fn expire(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
    InChannel(access, _): InChannel<{ bits::READ_MESSAGE_HISTORY }>,
) -> ApiResult {
    let message = load(&state, access.channel.id, message_id)?;
    let Some(poll) = &message.poll else {
        return Err(ApiError::bad_request(
            520006,
            "Cannot expire a non-poll message",
        ));
    };
    if message.author_id != auth.id() || message.webhook.is_some() {
        return Err(ApiError::forbidden(
            50005,
            "Cannot edit a message authored by another user",
        ));
    }
    if poll.finalized {
        return Err(expired());
    }
    let ended = finalise(&state, channel_id, message_id, true)?.ok_or_else(expired)?;
    Ok(ok(render::message(&state.store, &ended, Some(auth.id()))?))
}

#[derive(Deserialize)]
struct VotersQuery {
    after: Option<Snowflake>,
    limit: Option<i64>,
}

/// The poll of a message, or 50035 at `field` when the message has none.
fn poll_of<'m>(message: &'m Message, field: &str) -> Result<&'m Poll, ApiError> {
    message.poll.as_deref().ok_or_else(|| {
        ApiError::invalid_field(field, "POLL_NOT_FOUND", "This message has no poll.")
    })
}

/// `GET /channels/{channel}/polls/{message}/answers/{answer}`: who voted for an answer.
async fn voters(
    State(state): State<AppState>,
    _: Auth,
    Ids((channel_id, message_id, answer_id)): Ids<(Snowflake, Snowflake, u32)>,
    Q(query): Q<VotersQuery>,
    InChannel(access, _): InChannel<{ bits::READ_MESSAGE_HISTORY }>,
) -> ApiResult {
    let limit = limit(query.limit, 25, 100)?;
    let message = load(&state, access.channel.id, message_id)?;
    let poll = poll_of(&message, "answer_id")?;
    if !poll.has_answer(answer_id) {
        return Err(ApiError::invalid_field(
            "answer_id",
            "POLL_ANSWER_UNKNOWN",
            "Unknown poll answer.",
        ));
    }
    let votes = state
        .store
        .extra
        .poll_votes
        .get((channel_id, message_id))?
        .unwrap_or_default();
    let users = votes
        .answers
        .get(&answer_id)
        .into_iter()
        .flatten()
        .filter(|id| query.after.is_none_or(|after| **id > after))
        .take(limit)
        .map(|id| render::user_by_id(&state.store, *id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(json!({ "users": users })))
}

/// The answer ids of a vote body: numbers or numeric strings, known to the poll, no repeats,
/// at most one unless the poll allows several.
fn chosen_answers(poll: &Poll, body: &Value) -> Result<Vec<u32>, ApiError> {
    let mut checks = Validator::default();
    let mut chosen = Vec::new();
    match body.get("answer_ids") {
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                let id = match item {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                }
                .and_then(|id| u32::try_from(id).ok());
                let path = format!("answer_ids.{index}");
                match id {
                    Some(id) if poll.has_answer(id) => {
                        if chosen.contains(&id) {
                            checks.add(&path, "POLL_ANSWER_DUPLICATE", "Answers must be unique.");
                        } else {
                            chosen.push(id);
                        }
                    }
                    Some(_) => checks.add(&path, "POLL_ANSWER_UNKNOWN", "Unknown poll answer."),
                    None => checks.add(&path, "NUMBER_TYPE_COERCE", "Value is not int."),
                }
            }
            if chosen.len() > 1 && !poll.allow_multiselect {
                checks.add(
                    "answer_ids",
                    "POLL_MULTISELECT_DISABLED",
                    "This poll allows only one answer.",
                );
            }
        }
        None | Some(Value::Null) => {
            checks.add("answer_ids", "BASE_TYPE_REQUIRED", "This field is required")
        }
        Some(_) => checks.add("answer_ids", "BASE_TYPE_ARRAY", "Must be an array."),
    }
    checks.finish()?;
    chosen.sort_unstable();
    Ok(chosen)
}

/// `PUT /channels/{channel}/polls/{message}/answers/@me` (user accounts; apps cannot vote):
/// replaces the caller's choice (empty clears it), one dispatch per answer added or removed.
async fn vote(
    State(state): State<AppState>,
    auth: Auth,
    Ids((channel_id, message_id)): Ids<(Snowflake, Snowflake)>,
    Body(body): Body<Value>,
) -> ApiResult {
    if auth.user.bot {
        return Err(ApiError::forbidden(20001, "Bots cannot use this endpoint"));
    }
    let access =
        state.channel_access_requiring(channel_id, &auth.user, bits::READ_MESSAGE_HISTORY)?;
    let message = load(&state, access.channel.id, message_id)?;
    let poll = poll_of(&message, "answer_ids")?;
    let chosen = chosen_answers(poll, &body)?;
    let key = (channel_id, message_id);
    let (added, removed) = {
        let _guard = state.store.lock();
        // Re-read under the lock: the finaliser may have closed the poll meanwhile.
        let current = load(&state, channel_id, message_id)?;
        if current
            .poll
            .as_deref()
            .is_none_or(|poll| poll.is_closed(now_ms()))
        {
            return Err(expired());
        }
        let mut votes = state.store.extra.poll_votes.get(key)?.unwrap_or_default();
        let change = votes.replace(auth.id(), &chosen);
        state.store.extra.poll_votes.put(key, &votes)?;
        change
    };
    let events = removed
        .into_iter()
        .map(|answer| ("MESSAGE_POLL_VOTE_REMOVE", answer))
        .chain(
            added
                .into_iter()
                .map(|answer| ("MESSAGE_POLL_VOTE_ADD", answer)),
        );
    for (name, answer_id) in events {
        publish_vote(&state, &access, name, message_id, answer_id, auth.id());
    }
    Ok(no_content())
}

fn publish_vote(
    state: &AppState,
    access: &ChannelAccess,
    name: &'static str,
    message_id: Snowflake,
    answer_id: u32,
    user_id: Snowflake,
) {
    state.publish(Dispatch::for_channel(
        name,
        &access.channel,
        intents::GUILD_MESSAGE_POLLS,
        intents::DIRECT_MESSAGE_POLLS,
        json!({
            "user_id": user_id,
            "channel_id": access.channel.id,
            "message_id": message_id,
            "answer_id": answer_id,
        }),
    ));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::backend::routes::test_support::{alice_and_bob_guild, call, state_with};
    use crate::backend::services::polls::resume_finalisers;

    #[tokio::test]
    async fn polls_that_expired_while_down_are_finalised_by_the_resumed_finaliser() {
        let state = state_with(&alice_and_bob_guild("general", 0));
        let (status, message) = call(
            &state,
            "POST",
            "/channels/110/messages",
            "alice",
            json!({"poll": {"question": {"text": "Tea?"},
                "answers": [{"poll_media": {"text": "Yes"}}, {"poll_media": {"text": "No"}}]}}),
        )
        .await;
        assert_eq!(status, 200, "{message}");
        let id = Snowflake::parse(message["id"].as_str().unwrap()).unwrap();
        let (status, _) = call(
            &state,
            "PUT",
            &format!("/channels/110/polls/{id}/answers/@me"),
            "bob",
            json!({"answer_ids": [1]}),
        )
        .await;
        assert_eq!(status, 204);
        // Pretend `serve` was down past the expiry: the stored poll is already due.
        let key = (Snowflake(110), id);
        let mut stored = state.store.message(Snowflake(110), id).unwrap().unwrap();
        stored.poll.as_mut().unwrap().expiry_ms = now_ms() - 1_000;
        state.store.put_message(&stored).unwrap();
        let mut open = state.store.extra.open_polls.get(key).unwrap().unwrap();
        open.expiry_ms = now_ms() - 1_000;
        state.store.extra.open_polls.put(key, &open).unwrap();
        let mut bus = state.bus.subscribe();

        assert_eq!(resume_finalisers(&state).unwrap(), 1);
        let update = tokio::time::timeout(Duration::from_secs(5), bus.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(update.name, "MESSAGE_UPDATE");
        assert_eq!(update.data["poll"]["results"]["is_finalized"], true);
        assert_eq!(
            update.data["poll"]["results"]["answer_counts"],
            json!([{"id": 1, "count": 1, "me_voted": false}])
        );
        let notice = tokio::time::timeout(Duration::from_secs(5), bus.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(notice.name, "MESSAGE_CREATE");
        assert_eq!(notice.data["type"], 46);
        assert_eq!(
            notice.data["message_reference"]["message_id"],
            id.to_string()
        );
        assert_eq!(notice.data["embeds"][0]["type"], "poll_result");
        assert!(state.store.extra.open_polls.get(key).unwrap().is_none());
        assert_eq!(resume_finalisers(&state).unwrap(), 0);
        // Voting on a finalised poll is refused.
        let (status, error) = call(
            &state,
            "PUT",
            &format!("/channels/110/polls/{id}/answers/@me"),
            "bob",
            json!({"answer_ids": [2]}),
        )
        .await;
        assert_eq!((status, error["code"].clone()), (400, json!(520001)));
    }
}
