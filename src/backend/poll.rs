//! Message polls: the stored poll, the create-request validation, the votes table's record and
//! the rendered poll object (with `results`) and poll-result notification embed.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::snowflake::{iso8601_from_ms, Snowflake};

/// Longest a poll may run: 32 days, in hours.
pub(crate) const MAX_DURATION_HOURS: i64 = 32 * 24;
/// Most answers a poll may have.
pub(crate) const MAX_ANSWERS: usize = 10;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
