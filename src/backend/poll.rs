//! Message polls: the stored poll, the create-request validation, the votes table's record and
//! the rendered poll object (with `results`) and poll-result notification embed.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::{ApiError, Validator};
use super::snowflake::{iso8601_from_ms, Snowflake};

/// Longest a poll may run: 32 days, in hours.
pub const MAX_DURATION_HOURS: i64 = 32 * 24;
/// Most answers a poll may have.
pub const MAX_ANSWERS: usize = 10;

/// A poll attached to a message (immutable after creation except for finalisation).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Poll {
    /// `{"text": ...}`.
    pub question: Value,
    pub answers: Vec<PollAnswer>,
    /// When voting closes (set to the moment it was ended early by `/expire`).
    pub expiry_ms: u64,
    #[serde(default)]
    pub allow_multiselect: bool,
    #[serde(default = "default_layout")]
    pub layout_type: u8,
    /// Set once the poll has ended and its result notification was posted.
    #[serde(default)]
    pub finalized: bool,
}

/// One answer: its id (1, 2, ... in order) and its media (`text`, optional `emoji`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PollAnswer {
    pub answer_id: u32,
    pub poll_media: Value,
}

/// The votes of one poll: answer id → voters, each list sorted by user id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PollVotes {
    pub answers: BTreeMap<u32, Vec<Snowflake>>,
}

impl PollVotes {
    /// The answers `user` voted for, in id order.
    pub fn of_user(&self, user: Snowflake) -> Vec<u32> {
        self.answers
            .iter()
            .filter(|(_, voters)| voters.binary_search(&user).is_ok())
            .map(|(answer, _)| *answer)
            .collect()
    }

    /// Replaces `user`'s choice with `chosen`; returns (added, removed) answer ids.
    pub fn replace(&mut self, user: Snowflake, chosen: &[u32]) -> (Vec<u32>, Vec<u32>) {
        let before = self.of_user(user);
        let removed: Vec<u32> = before
            .iter()
            .copied()
            .filter(|a| !chosen.contains(a))
            .collect();
        let added: Vec<u32> = chosen
            .iter()
            .copied()
            .filter(|a| !before.contains(a))
            .collect();
        for answer in &removed {
            if let Some(voters) = self.answers.get_mut(answer) {
                if let Ok(at) = voters.binary_search(&user) {
                    voters.remove(at);
                }
            }
        }
        for answer in &added {
            let voters = self.answers.entry(*answer).or_default();
            if let Err(at) = voters.binary_search(&user) {
                voters.insert(at, user);
            }
        }
        self.answers.retain(|_, voters| !voters.is_empty());
        (added, removed)
    }

    /// Votes for one answer.
    pub fn count(&self, answer: u32) -> usize {
        self.answers.get(&answer).map_or(0, Vec::len)
    }

    /// Every vote cast (a multiselect voter counts once per answer, as Discord's total does).
    pub fn total(&self) -> usize {
        self.answers.values().map(Vec::len).sum()
    }
}

/// A poll that still has to be finalised when it expires.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct OpenPoll {
    pub channel_id: Snowflake,
    pub message_id: Snowflake,
    pub expiry_ms: u64,
}

fn default_layout() -> u8 {
    1
}

impl Poll {
    /// True once voting has closed (ended early, finalised, or past its expiry).
    pub fn is_closed(&self, now_ms: u64) -> bool {
        self.finalized || now_ms >= self.expiry_ms
    }

    /// Whether `answer_id` is one of this poll's answers.
    pub fn has_answer(&self, answer_id: u32) -> bool {
        self.answers.iter().any(|a| a.answer_id == answer_id)
    }

    /// The poll object as the API shows it to `viewer` (`me_voted`), with `results`.
    pub fn render(&self, votes: &PollVotes, viewer: Option<Snowflake>) -> Value {
        let answer_counts: Vec<Value> = self
            .answers
            .iter()
            .filter(|a| votes.count(a.answer_id) > 0)
            .map(|a| {
                let voters = votes.answers.get(&a.answer_id);
                json!({
                    "id": a.answer_id,
                    "count": votes.count(a.answer_id),
                    "me_voted": viewer
                        .zip(voters)
                        .is_some_and(|(me, voters)| voters.binary_search(&me).is_ok()),
                })
            })
            .collect();
        json!({
            "question": self.question,
            "answers": self.answers,
            "expiry": iso8601_from_ms(self.expiry_ms),
            "allow_multiselect": self.allow_multiselect,
            "layout_type": self.layout_type,
            "results": {"is_finalized": self.finalized, "answer_counts": answer_counts},
        })
    }

    /// The `poll_result` embed of the POLL_RESULT notification: the winner only when exactly
    /// one answer has the most votes (and at least one).
    pub fn result_embed(&self, votes: &PollVotes) -> Value {
        let field =
            |name: &str, value: String| json!({"name": name, "value": value, "inline": false});
        let best = self
            .answers
            .iter()
            .map(|a| votes.count(a.answer_id))
            .max()
            .unwrap_or(0);
        let leaders: Vec<&PollAnswer> = self
            .answers
            .iter()
            .filter(|a| votes.count(a.answer_id) == best)
            .collect();
        let mut fields = vec![
            field(
                "poll_question_text",
                self.question["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ),
            field("victor_answer_votes", best.to_string()),
            field("total_votes", votes.total().to_string()),
        ];
        if let [winner] = leaders.as_slice() {
            if best > 0 {
                fields.push(field("victor_answer_id", winner.answer_id.to_string()));
                if let Some(text) = winner.poll_media["text"].as_str() {
                    fields.push(field("victor_answer_text", text.to_string()));
                }
                let emoji = &winner.poll_media["emoji"];
                if let Some(id) = emoji["id"].as_str() {
                    fields.push(field("victor_answer_emoji_id", id.to_string()));
                }
                if let Some(name) = emoji["name"].as_str() {
                    fields.push(field("victor_answer_emoji_name", name.to_string()));
                }
                if let Some(animated) = emoji["animated"].as_bool() {
                    fields.push(field("victor_answer_emoji_animated", animated.to_string()));
                }
            }
        }
        json!({"type": "poll_result", "fields": fields})
    }
}

/// Validates a poll create request (`poll` of a message body) into a poll expiring
/// `duration` hours after `now_ms`; every problem is reported under `poll.…` in one 50035.
pub fn parse_request(body: &Value, now_ms: u64) -> Result<Poll, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn votes_replace_a_users_choice_and_report_the_difference() {
        let mut votes = PollVotes::default();
        let alice = Snowflake(1);
        let bob = Snowflake(2);
        assert_eq!(votes.replace(alice, &[1, 2]), (vec![1, 2], vec![]));
        assert_eq!(votes.replace(bob, &[1]), (vec![1], vec![]));
        assert_eq!(votes.replace(alice, &[2, 3]), (vec![3], vec![1]));
        assert_eq!(votes.count(1), 1);
        assert_eq!(votes.total(), 3);
        assert_eq!(votes.replace(alice, &[]), (vec![], vec![2, 3]));
        assert_eq!(votes.of_user(alice), Vec::<u32>::new());
        assert!(!votes.answers.contains_key(&3));
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
