//! A world built from recordings: the decoded REST answers and gateway dispatches of a
//! recording in, a fixture (the format `serve --fixture` loads) out. `build` is sans-I/O;
//! `read` turns a recordings database into items through the store's typed readers.
//!
//! Items are applied oldest first and objects merged field by field, so the newest sample of
//! anything wins. Snowflakes are kept. Redacted values (`[redacted by discord-mitm …]`) are
//! never taken as data, and the recorded accounts get new local tokens.
use std::collections::BTreeMap;

use serde_json::Value;

mod emit;
mod ingest;
mod read;

pub(crate) use read::items_from_store;

/// One decoded thing from a recording.
#[derive(Debug, Clone)]
pub(crate) struct RecordedItem {
    /// When it was recorded (µs since the Unix epoch): the newest sample wins.
    pub at_us: i64,
    /// What it is.
    pub kind: ItemKind,
}

/// A REST answer or a gateway dispatch.
#[derive(Debug, Clone)]
pub(crate) enum ItemKind {
    /// A REST answer of the server.
    Rest {
        /// HTTP method, upper case.
        method: String,
        /// The path without `/api[/vN]` and without the query (`/channels/1/messages`).
        path: String,
        /// Response status (only 2xx answers are used).
        status: u16,
        /// The request's `Authorization` as recorded (redacted: a fingerprint), which tells
        /// the recorded accounts apart.
        auth: Option<String>,
        /// The response body.
        body: Value,
    },
    /// A dispatch (op 0) the server sent on gateway session `session`.
    Dispatch {
        /// The recording's gateway session id.
        session: u64,
        /// `t`.
        event: String,
        /// `d`.
        data: Value,
    },
}

/// A recorded account, now a local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalAccount {
    /// Its (recorded) id.
    pub id: u64,
    /// Its username.
    pub username: String,
    /// The new local token (never the recorded one).
    pub token: String,
    /// A bot account.
    pub bot: bool,
}

/// What a build produced.
#[derive(Debug)]
pub(crate) struct BuiltWorld {
    /// The fixture document.
    pub fixture: Value,
    /// The recorded accounts, newest first.
    pub accounts: Vec<LocalAccount>,
    /// How many of each thing the fixture holds (users, guilds, channels, …).
    pub counts: BTreeMap<&'static str, usize>,
    /// What was left out and why, with how often.
    pub warnings: Vec<String>,
}

impl BuiltWorld {
    /// One line of counts: `3 users, 1 guilds, …`.
    pub(crate) fn summary(&self) -> String {
        self.counts
            .iter()
            .map(|(what, n)| format!("{n} {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why no world could be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordedWorldError {
    #[error("the recordings hold no account (no READY and no GET /users/@me answer) and no guild to build a world from ({items} usable items read)")]
    Empty { items: usize },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Builds the fixture from `items` (any order); `new_token` makes each recorded account's
/// local token from its id.
pub(crate) fn build(
    mut items: Vec<RecordedItem>,
    new_token: &dyn Fn(u64) -> String,
) -> Result<BuiltWorld, RecordedWorldError> {
    items.sort_by_key(|item| item.at_us);
    let count = items.len();
    let mut world = ingest::World::default();
    world.learn_tokens(&items);
    for item in &items {
        world.apply(item);
    }
    if world.accounts.is_empty() && world.guilds.is_empty() {
        return Err(RecordedWorldError::Empty { items: count });
    }
    Ok(emit::emit(world, new_token))
}

#[cfg(test)]
#[path = "recorded_tests.rs"]
mod tests;
