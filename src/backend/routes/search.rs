//! Search: a guild's messages (content words, authors, mentions, `has`, pins, id ranges,
//! channels) and a forum's threads (name, tags, archived), over the channels the caller may
//! read. Results are exact (the store is scanned; there is no index to wait for, so never 202).
use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::{ok, ApiResult};
use crate::backend::error::{ApiError, Validator};
use crate::backend::extract::{Auth, Ids, InChannel, InGuild};
use crate::backend::model::{channel_type, Channel, Message};
use crate::backend::params::number_text;
use crate::backend::permissions::bits;
use crate::backend::render;
use crate::backend::services::publish::EPHEMERAL;
use crate::backend::snowflake::Snowflake;
use crate::backend::state::AppState;

/// Routes of this family.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/guilds/{guild_id}/messages/search", get(search_messages))
        .route("/channels/{channel_id}/threads/search", get(search_threads))
}

/// A query string as (name, value) pairs; repeated names (`author_id=1&author_id=2`) kept.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Params {
        Params(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name || key.strip_suffix("[]") == Some(name))
            .map(|(_, value)| value.as_str())
    }

    fn one<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.all(name).next()
    }

    fn snowflakes(&self, checks: &mut Validator, name: &str) -> Vec<Snowflake> {
        self.all(name)
            .enumerate()
            .filter_map(|(index, value)| {
                let id = Snowflake::parse(number_text(value));
                if id.is_none() {
                    checks.add(
                        &format!("{name}.{index}"),
                        "NUMBER_TYPE_COERCE",
                        format!("Value \"{value}\" is not snowflake."),
                    );
                }
                id
            })
            .collect()
    }

    fn snowflake(&self, checks: &mut Validator, name: &str) -> Option<Snowflake> {
        self.snowflakes(checks, name).into_iter().next()
    }

    fn integer(&self, checks: &mut Validator, name: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.one(name)?;
        match number_text(value).parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(_) => {
                checks.range(name, Some(min - 1), min, max);
                None
            }
            Err(_) => {
                checks.add(
                    name,
                    "NUMBER_TYPE_COERCE",
                    format!("Value \"{value}\" is not int."),
                );
                None
            }
        }
    }

    fn boolean(&self, checks: &mut Validator, name: &str) -> Option<bool> {
        let value = self.one(name)?;
        let parsed = crate::backend::params::boolean(value);
        if parsed.is_none() {
            checks.add(
                name,
                "BASE_TYPE_BOOLEAN",
                format!("Value \"{value}\" is not boolean."),
            );
        }
        parsed
    }

    /// The values of `name`, each one of `choices` (else a 50035 at `name.N`).
    fn choices(&self, checks: &mut Validator, name: &str, choices: &[&str]) -> Vec<String> {
        self.all(name)
            .enumerate()
            .filter_map(|(index, value)| {
                if choices.contains(&value) {
                    Some(value.to_string())
                } else {
                    checks.add(
                        &format!("{name}.{index}"),
                        "BASE_TYPE_CHOICES",
                        format!("Value must be one of {choices:?}."),
                    );
                    None
                }
            })
            .collect()
    }
}

/// Lower-cased words of a search string (Discord matches every word, in any order).
fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_lowercase).collect()
}

const HAS: [&str; 18] = [
    "link",
    "embed",
    "file",
    "image",
    "video",
    "sound",
    "sticker",
    "poll",
    "snapshot",
    "-link",
    "-embed",
    "-file",
    "-image",
    "-video",
    "-sound",
    "-sticker",
    "-poll",
    "-snapshot",
];
const AUTHOR_TYPES: [&str; 6] = ["user", "bot", "webhook", "-user", "-bot", "-webhook"];

/// Whether a message has `what` (`link`, `image`...).
fn has(message: &Message, what: &str) -> bool {
    let attachment_kind = |prefix: &str| {
        message.attachments.iter().any(|a| {
            a["content_type"]
                .as_str()
                .is_some_and(|t| t.starts_with(prefix))
        })
    };
    match what {
        "link" => message.content.contains("http://") || message.content.contains("https://"),
        "embed" => !message.embeds.is_empty(),
        "file" => !message.attachments.is_empty(),
        "image" => {
            attachment_kind("image/") || message.embeds.iter().any(|e| e["image"].is_object())
        }
        "video" => {
            attachment_kind("video/") || message.embeds.iter().any(|e| e["video"].is_object())
        }
        "sound" => attachment_kind("audio/"),
        "sticker" => !message.sticker_items.is_empty(),
        "poll" => message.poll.is_some(),
        "snapshot" => message
            .message_reference
            .as_ref()
            .is_some_and(|r| r.kind == 1),
        _ => false,
    }
}

/// The filters of a message search, validated.
struct MessageFilter {
    words: Vec<String>,
    authors: Vec<Snowflake>,
    author_types: Vec<String>,
    mentions: Vec<Snowflake>,
    mention_roles: Vec<Snowflake>,
    replied_to_users: Vec<Snowflake>,
    replied_to_messages: Vec<Snowflake>,
    mention_everyone: Option<bool>,
    pinned: Option<bool>,
    has: Vec<String>,
    min_id: Option<Snowflake>,
    max_id: Option<Snowflake>,
    channels: Vec<Snowflake>,
}

impl MessageFilter {
    fn matches(
        &self,
        state: &AppState,
        message: &Message,
    ) -> Result<bool, crate::backend::store::StoreError> {
        let store = &state.store;
        if self.min_id.is_some_and(|min| message.id <= min)
            || self.max_id.is_some_and(|max| message.id >= max)
        {
            return Ok(false);
        }
        if !self.words.is_empty() {
            let mut text = message.content.to_lowercase();
            for embed in &message.embeds {
                for key in ["title", "description"] {
                    if let Some(part) = embed[key].as_str() {
                        text.push(' ');
                        text.push_str(&part.to_lowercase());
                    }
                }
            }
            if !self.words.iter().all(|w| text.contains(w.as_str())) {
                return Ok(false);
            }
        }
        if !self.authors.is_empty() && !self.authors.contains(&message.author_id) {
            return Ok(false);
        }
        if !self.author_types.is_empty() {
            let kind = if message.webhook.is_some() {
                "webhook"
            } else if store.user(message.author_id)?.is_some_and(|u| u.bot) {
                "bot"
            } else {
                "user"
            };
            for wanted in &self.author_types {
                let matches = match wanted.strip_prefix('-') {
                    Some(excluded) => excluded != kind,
                    None => wanted == kind,
                };
                if !matches {
                    return Ok(false);
                }
            }
        }
        if !self.mentions.iter().all(|id| message.mentions.contains(id))
            || !self
                .mention_roles
                .iter()
                .all(|id| message.mention_roles.contains(id))
        {
            return Ok(false);
        }
        if self
            .mention_everyone
            .is_some_and(|wanted| wanted != message.mention_everyone)
            || self.pinned.is_some_and(|wanted| wanted != message.pinned)
        {
            return Ok(false);
        }
        let reply_to = message
            .message_reference
            .as_ref()
            .filter(|_| message.kind == 19);
        if !self.replied_to_messages.is_empty()
            && !reply_to
                .and_then(|r| r.message_id)
                .is_some_and(|id| self.replied_to_messages.contains(&id))
        {
            return Ok(false);
        }
        if !self.replied_to_users.is_empty() {
            let replied_author = match reply_to.and_then(|r| r.channel_id.zip(r.message_id)) {
                Some((channel_id, message_id)) => {
                    store.message(channel_id, message_id)?.map(|m| m.author_id)
                }
                None => None,
            };
            if !replied_author.is_some_and(|id| self.replied_to_users.contains(&id)) {
                return Ok(false);
            }
        }
        for wanted in &self.has {
            let ok = match wanted.strip_prefix('-') {
                Some(excluded) => !has(message, excluded),
                None => has(message, wanted),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Threads of `channels` the caller is a member of, as thread member objects.
fn own_thread_members(
    state: &AppState,
    threads: &[Channel],
    user_id: Snowflake,
) -> Result<Vec<Value>, ApiError> {
    let mut members = Vec::new();
    for thread in threads {
        if let Some(member) = state.store.thread_members.get((thread.id, user_id))? {
            members.push(render::thread_member(&member));
        }
    }
    Ok(members)
}

async fn search_messages(
    State(state): State<AppState>,
    auth: Auth,
    Ids(guild_id): Ids<Snowflake>,
    RawQuery(raw): RawQuery,
    InGuild(access, _): InGuild,
) -> ApiResult {
    let params = Params::parse(raw);
    let mut checks = Validator::default();
    let content = params.one("content").unwrap_or_default();
    checks.length("content", Some(content), 0, 1024);
    let filter = MessageFilter {
        words: words(content),
        authors: params.snowflakes(&mut checks, "author_id"),
        author_types: params.choices(&mut checks, "author_type", &AUTHOR_TYPES),
        mentions: params.snowflakes(&mut checks, "mentions"),
        mention_roles: params.snowflakes(&mut checks, "mentions_role_id"),
        replied_to_users: params.snowflakes(&mut checks, "replied_to_user_id"),
        replied_to_messages: params.snowflakes(&mut checks, "replied_to_message_id"),
        mention_everyone: params.boolean(&mut checks, "mention_everyone"),
        pinned: params.boolean(&mut checks, "pinned"),
        has: params.choices(&mut checks, "has", &HAS),
        min_id: params.snowflake(&mut checks, "min_id"),
        max_id: params.snowflake(&mut checks, "max_id"),
        channels: params.snowflakes(&mut checks, "channel_id"),
    };
    let limit = params.integer(&mut checks, "limit", 1, 25).unwrap_or(25) as usize;
    let offset = params.integer(&mut checks, "offset", 0, 9975).unwrap_or(0) as usize;
    let ascending = params
        .choices(&mut checks, "sort_order", &["asc", "desc"])
        .first()
        == Some(&"asc".to_string());
    params.choices(&mut checks, "sort_by", &["timestamp", "relevance"]);
    let include_nsfw = params.boolean(&mut checks, "include_nsfw").unwrap_or(false);
    checks.finish()?;

    // Channels (and threads) the caller can read history in.
    let mut readable = Vec::new();
    for channel in state.store.guild_channel_list(guild_id)? {
        if !channel_type::is_textual(channel.kind)
            || (!filter.channels.is_empty() && !filter.channels.contains(&channel.id))
            || (channel.nsfw.unwrap_or(false) && !include_nsfw)
        {
            continue;
        }
        let permissions = state.permissions_in(&access, &channel)?;
        if permissions & (bits::VIEW_CHANNEL | bits::READ_MESSAGE_HISTORY)
            == bits::VIEW_CHANNEL | bits::READ_MESSAGE_HISTORY
        {
            readable.push(channel);
        }
    }
    let mut hits = Vec::new();
    for channel in &readable {
        for message in state.store.messages.values(channel.id)? {
            // Ephemeral interaction responses are not channel history.
            let ephemeral = message.flags & EPHEMERAL != 0;
            if !ephemeral && filter.matches(&state, &message)? {
                hits.push(message);
            }
        }
    }
    hits.sort_by_key(|m| m.id);
    if !ascending {
        hits.reverse();
    }
    let total = hits.len();
    let mut messages = Vec::new();
    let mut threads: Vec<Channel> = Vec::new();
    for message in hits.iter().skip(offset).take(limit) {
        let mut rendered = render::message(&state.store, message, Some(auth.id()))?;
        rendered["hit"] = json!(true);
        messages.push(json!([rendered]));
        if let Some(thread) = readable
            .iter()
            .find(|c| c.id == message.channel_id && channel_type::is_thread(c.kind))
        {
            if !threads.iter().any(|t| t.id == thread.id) {
                threads.push(thread.clone());
            }
        }
    }
    let members = own_thread_members(&state, &threads, auth.id())?;
    let threads = threads
        .iter()
        .map(|t| render::channel(&state.store, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(json!({
        "messages": messages,
        "total_results": total,
        "doing_deep_historical_index": false,
        "threads": threads,
        "members": members,
    })))
}

/// A thread search's query: name words, tags, archived state, id range, order and page.
struct ThreadQuery {
    name_words: Vec<String>,
    tags: Vec<Snowflake>,
    match_all: bool,
    archived: Option<bool>,
    min_id: Option<Snowflake>,
    max_id: Option<Snowflake>,
    sort_by: String,
    ascending: bool,
    limit: usize,
    offset: usize,
}

impl ThreadQuery {
    /// Reads the query string; 50035 with every bad parameter.
    fn parse(raw: Option<String>) -> Result<ThreadQuery, ApiError> {
        let params = Params::parse(raw);
        let mut checks = Validator::default();
        let name = params.one("name").unwrap_or_default();
        checks.length("name", Some(name), 0, 100);
        let tags = params.snowflakes(&mut checks, "tag");
        let match_all = params
            .choices(&mut checks, "tag_setting", &["match_all", "match_some"])
            .first()
            .is_some_and(|s| s == "match_all");
        let archived = params.boolean(&mut checks, "archived");
        let sort_by = params
            .choices(
                &mut checks,
                "sort_by",
                &[
                    "relevance",
                    "creation_time",
                    "last_message_time",
                    "archive_time",
                ],
            )
            .pop()
            .unwrap_or_else(|| "last_message_time".into());
        let ascending = params
            .choices(&mut checks, "sort_order", &["asc", "desc"])
            .first()
            == Some(&"asc".to_string());
        let min_id = params.snowflake(&mut checks, "min_id");
        let max_id = params.snowflake(&mut checks, "max_id");
        let limit = params.integer(&mut checks, "limit", 1, 25).unwrap_or(25) as usize;
        let offset = params.integer(&mut checks, "offset", 0, 9975).unwrap_or(0) as usize;
        checks.finish()?;
        Ok(ThreadQuery {
            name_words: words(name),
            tags,
            match_all,
            archived,
            min_id,
            max_id,
            sort_by,
            ascending,
            limit,
            offset,
        })
    }

    /// Whether `thread` fits the name, tag, archived and id conditions.
    fn matches(&self, thread: &Channel) -> bool {
        let lower = thread.name.clone().unwrap_or_default().to_lowercase();
        let applied = thread.applied_tags.clone().unwrap_or_default();
        let is_archived = thread.thread_metadata.as_ref().is_some_and(|m| m.archived);
        let tags_ok = self.tags.is_empty()
            || if self.match_all {
                self.tags.iter().all(|t| applied.contains(t))
            } else {
                self.tags.iter().any(|t| applied.contains(t))
            };
        self.name_words.iter().all(|w| lower.contains(w.as_str()))
            && tags_ok
            && self.archived.is_none_or(|wanted| wanted == is_archived)
            && self.min_id.is_none_or(|min| thread.id > min)
            && self.max_id.is_none_or(|max| thread.id < max)
    }

    /// Orders `found` by the requested key and direction.
    fn sort(&self, state: &AppState, found: &mut [Channel]) {
        let last_activity = |t: &Channel| {
            state
                .store
                .last_message_id(t.id)
                .ok()
                .flatten()
                .unwrap_or(t.id)
        };
        match self.sort_by.as_str() {
            "creation_time" | "relevance" => found.sort_by_key(|t| t.id),
            "archive_time" => found.sort_by(|a, b| {
                let stamp = |t: &Channel| {
                    t.thread_metadata
                        .as_ref()
                        .map(|m| m.archive_timestamp.clone())
                        .unwrap_or_default()
                };
                stamp(a).cmp(&stamp(b))
            }),
            _ => found.sort_by_key(|t| last_activity(t)),
        }
        if !self.ascending {
            found.reverse();
        }
    }
}

async fn search_threads(
    State(state): State<AppState>,
    auth: Auth,
    Ids(channel_id): Ids<Snowflake>,
    RawQuery(raw): RawQuery,
    InChannel(access, _): InChannel<{ bits::READ_MESSAGE_HISTORY }>,
) -> ApiResult {
    let Some(guild) = &access.guild else {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    };
    if !matches!(
        access.channel.kind,
        channel_type::GUILD_TEXT
            | channel_type::GUILD_ANNOUNCEMENT
            | channel_type::GUILD_FORUM
            | channel_type::GUILD_MEDIA
    ) {
        return Err(ApiError::bad_request(
            50024,
            "Cannot execute action on this channel type",
        ));
    }
    let query = ThreadQuery::parse(raw)?;
    let private_visible = access.permissions & bits::MANAGE_THREADS != 0;
    let mut found = Vec::new();
    for thread in state.store.guild_channel_list(guild.guild.id)? {
        if thread.parent_id != Some(channel_id) || !channel_type::is_thread(thread.kind) {
            continue;
        }
        // Private threads: only to their members and thread managers.
        if thread.kind == channel_type::PRIVATE_THREAD
            && !private_visible
            && !state
                .store
                .thread_members
                .contains((thread.id, auth.id()))?
        {
            continue;
        }
        if query.matches(&thread) {
            found.push(thread);
        }
    }
    query.sort(&state, &mut found);
    let total = found.len();
    let (offset, limit) = (query.offset, query.limit);
    let page: Vec<Channel> = found.into_iter().skip(offset).take(limit).collect();
    let mut first_messages = Vec::new();
    for thread in &page {
        // A forum post's starter message shares the thread's id.
        if let Some(first) = state.store.message(thread.id, thread.id)? {
            first_messages.push(render::message(&state.store, &first, Some(auth.id()))?);
        }
    }
    let members = own_thread_members(&state, &page, auth.id())?;
    let threads = page
        .iter()
        .map(|t| render::channel(&state.store, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok(json!({
        "threads": threads,
        "members": members,
        "has_more": offset + threads.len() < total,
        "total_results": total,
        "first_messages": first_messages,
    })))
}
