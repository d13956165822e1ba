//! Polls: validating a poll request, and a poll's life once its message is stored (opened,
//! finalised at expiry or early, forgotten with its message).
use std::time::Duration;

use serde_json::{json, Value};

use super::publish::publish_message;
use crate::backend::error::{ApiError, Unknown, Validator};
use crate::backend::model::{Message, MessageReference};
use crate::backend::poll::{OpenPoll, Poll, PollAnswer, MAX_ANSWERS, MAX_DURATION_HOURS};
use crate::backend::render;
use crate::backend::snowflake::{now_ms, Snowflake};
use crate::backend::state::AppState;
use crate::backend::store::StoreError;
use crate::{backend::events::Dispatch, gateway::intents};

/// Message type of the notification posted when a poll ends.
const POLL_RESULT: u8 = 46;

/// Validates a poll create request (`poll` of a message body) into a poll expiring
/// `duration` hours after `now_ms`; every problem is reported under `poll.…` in one 50035.
pub(crate) fn parse_request(body: &Value, now_ms: u64) -> Result<Poll, ApiError> {
    let mut checks = Validator::default();
    let parsed = parse_into(&mut checks, body, now_ms);
    checks.finish()?;
    parsed.ok_or_else(|| ApiError::invalid_field("poll", "MODEL_TYPE_CONVERT", "Invalid poll"))
}

fn parse_into(checks: &mut Validator, body: &Value, now_ms: u64) -> Option<Poll> {
    let Some(object) = body.as_object() else {
        checks.add(
            "poll",
            "MODEL_TYPE_CONVERT",
            "Only dictionaries may be used in a ModelType",
        );
        return None;
    };
    let question = media(checks, object.get("question"), "poll.question", 300, false);
    let mut answers = Vec::new();
    match object.get("answers") {
        None | Some(Value::Null) => {
            checks.add(
                "poll.answers",
                "BASE_TYPE_REQUIRED",
                "This field is required",
            );
        }
        Some(Value::Array(items)) => {
            if items.is_empty() || items.len() > MAX_ANSWERS {
                checks.add(
                    "poll.answers",
                    "BASE_TYPE_BAD_LENGTH",
                    format!("Must be between 1 and {MAX_ANSWERS} in length."),
                );
            }
            for (index, item) in items.iter().enumerate().take(MAX_ANSWERS) {
                let path = format!("poll.answers.{index}.poll_media");
                if let Some(media) = media(checks, item.get("poll_media"), &path, 55, true) {
                    answers.push(PollAnswer {
                        answer_id: index as u32 + 1,
                        poll_media: media,
                    });
                }
            }
        }
        Some(_) => checks.add("poll.answers", "BASE_TYPE_ARRAY", "Must be an array."),
    }
    let duration = integer_field(checks, object.get("duration"), "poll.duration").unwrap_or(24);
    if !(1..=MAX_DURATION_HOURS).contains(&duration) {
        checks.add(
            "poll.duration",
            "NUMBER_TYPE_OUT_OF_RANGE",
            format!("int value should be between 1 and {MAX_DURATION_HOURS}."),
        );
    }
    let layout_type =
        integer_field(checks, object.get("layout_type"), "poll.layout_type").unwrap_or(1);
    if layout_type != 1 {
        checks.add(
            "poll.layout_type",
            "BASE_TYPE_CHOICES",
            "Value must be one of {1}.",
        );
    }
    let allow_multiselect = match object.get("allow_multiselect") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => {
            checks.add(
                "poll.allow_multiselect",
                "BASE_TYPE_BOOLEAN",
                "Must be either true or false.",
            );
            false
        }
    };
    Some(Poll {
        question: question?,
        answers,
        expiry_ms: now_ms.saturating_add(duration.max(1) as u64 * 3_600_000),
        allow_multiselect,
        layout_type: 1,
        finalized: false,
    })
}

fn integer_field(checks: &mut Validator, value: Option<&Value>, path: &str) -> Option<i64> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(_) => {
            checks.add(path, "NUMBER_TYPE_COERCE", "Value is not int.");
            None
        }
    }
}

/// A poll media object: `text` of 1..=`max` characters, and (answers only) an `emoji` given by
/// `id` or `name`. Returns the normalised media.
fn media(
    checks: &mut Validator,
    value: Option<&Value>,
    path: &str,
    max: usize,
    emoji_allowed: bool,
) -> Option<Value> {
    let Some(object) = value.and_then(Value::as_object) else {
        checks.add(path, "BASE_TYPE_REQUIRED", "This field is required");
        return None;
    };
    let text = match object.get("text") {
        Some(Value::String(text)) => text.trim().to_string(),
        None | Some(Value::Null) => String::new(),
        Some(_) => {
            checks.add(
                &format!("{path}.text"),
                "BASE_TYPE_STRING",
                "Must be a string.",
            );
            return None;
        }
    };
    let count = text.chars().count();
    if count == 0 || count > max {
        checks.add(
            &format!("{path}.text"),
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between 1 and {max} in length."),
        );
        return None;
    }
    let mut out = json!({"text": text});
    match object.get("emoji") {
        None | Some(Value::Null) => {}
        Some(emoji) if emoji_allowed => {
            let id = match &emoji["id"] {
                Value::String(id) => Snowflake::parse(id).map(|id| id.to_string()),
                Value::Number(n) => n.as_u64().map(|id| id.to_string()),
                _ => None,
            };
            let name = emoji["name"].as_str().filter(|n| !n.is_empty());
            match (id, name) {
                (Some(id), _) => {
                    out["emoji"] = json!({"id": id, "name": name.unwrap_or_default()});
                    if let Some(animated) = emoji["animated"].as_bool() {
                        out["emoji"]["animated"] = json!(animated);
                    }
                }
                (None, Some(name)) => out["emoji"] = json!({"id": null, "name": name}),
                (None, None) => checks.add(
                    &format!("{path}.emoji"),
                    "POLL_MEDIA_EMOJI_INVALID",
                    "An emoji needs an id or a name.",
                ),
            }
        }
        Some(_) => checks.add(
            &format!("{path}.emoji"),
            "POLL_QUESTION_EMOJI_UNSUPPORTED",
            "Poll questions cannot have an emoji.",
        ),
    }
    Some(out)
}

pub(crate) fn expired() -> ApiError {
    ApiError::bad_request(520001, "Poll expired")
}

/// The poll message, or 10008 when it does not exist.
pub(crate) fn load(
    state: &AppState,
    channel_id: Snowflake,
    message_id: Snowflake,
) -> Result<Message, ApiError> {
    state
        .store
        .message(channel_id, message_id)?
        .ok_or(ApiError::NotFound(Unknown::Message))
}

/// Records a new poll as open and arms its finaliser (called once its message is stored).
pub(crate) fn opened(state: &AppState, message: &Message) -> Result<(), ApiError> {
    if let Some(poll) = &message.poll {
        let open = OpenPoll {
            channel_id: message.channel_id,
            message_id: message.id,
            expiry_ms: poll.expiry_ms,
        };
        state
            .store
            .extra
            .open_polls
            .put((message.channel_id, message.id), &open)?;
        schedule(state, open);
    }
    Ok(())
}

/// Drops a deleted message's votes and open-poll record.
pub(crate) fn forget(state: &AppState, message: &Message) -> Result<(), ApiError> {
    if message.poll.is_some() {
        let key = (message.channel_id, message.id);
        state.store.extra.poll_votes.remove(key)?;
        state.store.extra.open_polls.remove(key)?;
    }
    Ok(())
}

/// Finalises `open` at its expiry, on the current Tokio runtime (nothing happens outside one).
fn schedule(state: &AppState, open: OpenPoll) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let state = state.clone();
    runtime.spawn(async move {
        // The clock may be frozen or moved (test control): sleep until it shows the expiry,
        // looking again at least once a second.
        loop {
            let wait = open.expiry_ms.saturating_sub(now_ms());
            if wait == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(wait.min(1000))).await;
        }
        if let Err(error) = finalise(&state, open.channel_id, open.message_id, false) {
            tracing::warn!(%error, message_id = %open.message_id, "poll finaliser failed");
        }
    });
}

/// Finalises every open poll whose expiry the clock has passed (after the test-control clock
/// moved: the timers armed by [`schedule`] sleep in real time). Returns how many ended.
pub(crate) fn finalise_due(state: &AppState) -> Result<usize, ApiError> {
    let now = now_ms();
    let mut ended = 0;
    for open in state.store.extra.open_polls.all()? {
        if open.expiry_ms <= now
            && finalise(state, open.channel_id, open.message_id, false)?.is_some()
        {
            ended += 1;
        }
    }
    Ok(ended)
}

/// Arms the finaliser of every poll still open in the store (at start-up; polls that expired
/// while `serve` was down are finalised straight away). Returns how many were armed.
pub(crate) fn resume_finalisers(state: &AppState) -> Result<usize, StoreError> {
    let open = state.store.extra.open_polls.all()?;
    for poll in &open {
        schedule(state, *poll);
    }
    Ok(open.len())
}

/// Ends a poll (`early`: now, even before its expiry): marks it finalised, publishes
/// MESSAGE_UPDATE and posts the POLL_RESULT notification. `None` if it was already final or
/// its message is gone.
pub(crate) fn finalise(
    state: &AppState,
    channel_id: Snowflake,
    message_id: Snowflake,
    early: bool,
) -> Result<Option<Message>, ApiError> {
    let store = &state.store;
    let key = (channel_id, message_id);
    let (message, poll) = {
        let _guard = store.lock();
        let Some(mut message) = store.message(channel_id, message_id)? else {
            store.extra.open_polls.remove(key)?;
            return Ok(None);
        };
        let Some(poll) = message.poll.as_deref_mut() else {
            return Ok(None);
        };
        if poll.finalized {
            return Ok(None);
        }
        if early {
            poll.expiry_ms = poll.expiry_ms.min(now_ms());
        }
        poll.finalized = true;
        let poll: Poll = poll.clone();
        store.put_message(&message)?;
        store.extra.open_polls.remove(key)?;
        (message, poll)
    };
    let votes = store.extra.poll_votes.get(key)?.unwrap_or_default();
    let author = store.user(message.author_id)?;
    let access = match &author {
        Some(author) if message.webhook.is_none() => state.channel_access(channel_id, author).ok(),
        _ => None,
    };
    let channel = store
        .channel(channel_id)?
        .ok_or(ApiError::NotFound(Unknown::Channel))?;
    let publish = |name: &'static str, message: &Message| -> Result<(), ApiError> {
        let rendered = render::message(store, message, None)?;
        match &access {
            Some(access) => publish_message(state, name, access, message, rendered),
            None => {
                state.publish(
                    Dispatch::for_channel(
                        name,
                        &channel,
                        intents::GUILD_MESSAGES,
                        intents::DIRECT_MESSAGES,
                        rendered,
                    )
                    .with_message_content(),
                );
                Ok(())
            }
        }
    };
    publish("MESSAGE_UPDATE", &message)?;
    let notice = Message {
        webhook: message.webhook.clone(),
        kind: POLL_RESULT,
        embeds: vec![poll.result_embed(&votes)],
        message_reference: Some(MessageReference::to(&message)),
        ..Message::new(
            store.next_id(),
            channel_id,
            message.guild_id,
            message.author_id,
        )
    };
    store.put_message(&notice)?;
    publish("MESSAGE_CREATE", &notice)?;
    Ok(Some(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::poll::PollVotes;

    fn poll(body: Value) -> Result<Poll, Value> {
        parse_request(&body, 1_000).map_err(|err| err.body())
    }

    #[test]
    fn a_valid_request_becomes_a_poll_with_sequential_answer_ids() {
        let parsed = poll(json!({
            "question": {"text": " Lunch? "},
            "answers": [{"poll_media": {"text": "Pizza", "emoji": {"name": "🍕"}}},
                        {"poll_media": {"text": "Salad"}}],
            "duration": 2, "allow_multiselect": true,
        }))
        .unwrap();
        assert_eq!(parsed.question, json!({"text": "Lunch?"}));
        assert_eq!(parsed.answers[1].answer_id, 2);
        assert_eq!(
            parsed.answers[0].poll_media["emoji"],
            json!({"id": null, "name": "🍕"})
        );
        assert_eq!(parsed.expiry_ms, 1_000 + 2 * 3_600_000);
        assert!(parsed.allow_multiselect);
    }

    #[test]
    fn every_problem_is_reported_under_its_path() {
        let errors = poll(json!({
            "question": {"text": ""},
            "answers": [{"poll_media": {"text": "x".repeat(56)}}],
            "duration": 800, "layout_type": 2,
        }))
        .unwrap_err();
        assert_eq!(errors["code"], 50035);
        let tree = &errors["errors"]["poll"];
        assert!(tree["question"]["text"]["_errors"].is_array(), "{errors}");
        assert!(tree["answers"]["0"]["poll_media"]["text"]["_errors"].is_array());
        assert!(tree["duration"]["_errors"].is_array());
        assert!(tree["layout_type"]["_errors"].is_array());
        let missing = poll(json!({"question": {"text": "q"}})).unwrap_err();
        assert!(missing["errors"]["poll"]["answers"]["_errors"].is_array());
    }

    #[test]
    fn results_and_the_winner() {
        let parsed = poll(json!({"question": {"text": "q"},
            "answers": [{"poll_media": {"text": "a"}}, {"poll_media": {"text": "b"}}]}))
        .unwrap();
        let mut votes = PollVotes::default();
        votes.replace(Snowflake(5), &[2]);
        let rendered = parsed.render(&votes, Some(Snowflake(5)));
        assert_eq!(
            rendered["results"],
            json!({"is_finalized": false, "answer_counts": [{"id": 2, "count": 1, "me_voted": true}]})
        );
        let embed = parsed.result_embed(&votes);
        let fields = embed["fields"].as_array().unwrap();
        assert!(
            fields.contains(&json!({"name": "victor_answer_text", "value": "b", "inline": false}))
        );
        votes.replace(Snowflake(6), &[1]);
        let tied = parsed.result_embed(&votes);
        assert!(!tied.to_string().contains("victor_answer_id"));
        assert!(
            tied.to_string().contains("\"total_votes\",\"value\":\"2\"")
                || tied["fields"][2]["value"] == "2"
        );
    }
}
