//! READY's guilds rendered once and reused: each guild's gateway object is serialized to JSON
//! bytes per shape (capabilities that change it, full or partial), with holes for what differs
//! between sessions (`joined_at`, `voice_states`, `members`). Any event that may change what a
//! guild renders to drops its templates and gives it a new version (CLIENT_STATE_V2's guild
//! `version`, which a re-identifying client sends back in `client_state.guild_versions`).
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::ready_channels::ChannelDigest;
use crate::backend::snowflake::Snowflake;

/// Guild events that change nothing a READY guild shows (presences and voice states are not
/// part of the cached object; members only through `member_count`, which joins and leaves
/// change).
const NEUTRAL: [&str; 12] = [
    "PRESENCE_UPDATE",
    "TYPING_START",
    "GUILD_MEMBER_UPDATE",
    "GUILD_MEMBER_LIST_UPDATE",
    "GUILD_MEMBERS_CHUNK",
    "VOICE_STATE_UPDATE",
    "VOICE_SERVER_UPDATE",
    "MESSAGE_REACTION_ADD",
    "MESSAGE_REACTION_REMOVE",
    "MESSAGE_REACTION_REMOVE_ALL",
    "MESSAGE_REACTION_REMOVE_EMOJI",
    "THREAD_MEMBER_UPDATE",
];

/// One piece of a template: bytes written as they are, or a hole named by its key.
#[derive(Debug)]
enum Piece {
    Raw(Vec<u8>),
    Hole(&'static str),
}

/// A JSON object serialized once, with some values left open (filled per use).
#[derive(Debug)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
    len: usize,
}

impl Template {
    /// Serializes `object` as `serde_json` does (compact, keys in order), leaving the values
    /// of the keys in `holes` open.
    pub(crate) fn of(
        object: &Map<String, Value>,
        holes: &[&'static str],
    ) -> Result<Template, serde_json::Error> {
        Template::of_with(object, holes, |_| None)
    }

    /// [`Template::of`], writing the JSON bytes `raw(key)` gives (serialized already) as the
    /// values of those keys instead of the object's values.
    pub(crate) fn of_with<'r>(
        object: &Map<String, Value>,
        holes: &[&'static str],
        raw_value: impl Fn(&str) -> Option<&'r [u8]>,
    ) -> Result<Template, serde_json::Error> {
        let mut pieces = Vec::new();
        let mut raw = Vec::with_capacity(4096);
        raw.push(b'{');
        for (i, (key, value)) in object.iter().enumerate() {
            if i > 0 {
                raw.push(b',');
            }
            serde_json::to_writer(&mut raw, key)?;
            raw.push(b':');
            match holes.iter().find(|h| **h == key.as_str()) {
                Some(hole) => {
                    pieces.push(Piece::Raw(std::mem::take(&mut raw)));
                    pieces.push(Piece::Hole(hole));
                }
                None => match raw_value(key) {
                    Some(bytes) => raw.extend_from_slice(bytes),
                    None => serde_json::to_writer(&mut raw, value)?,
                },
            }
        }
        raw.push(b'}');
        pieces.push(Piece::Raw(raw));
        let len = pieces
            .iter()
            .map(|p| match p {
                Piece::Raw(bytes) => bytes.len(),
                Piece::Hole(_) => 0,
            })
            .sum();
        Ok(Template { pieces, len })
    }

    /// Writes the object to `out`, `fill` writing each hole's value.
    pub(crate) fn write<E>(
        &self,
        out: &mut Vec<u8>,
        mut fill: impl FnMut(&'static str, &mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        out.reserve(self.len + 64);
        for piece in &self.pieces {
            match piece {
                Piece::Raw(bytes) => out.extend_from_slice(bytes),
                Piece::Hole(key) => fill(key, out)?,
            }
        }
        Ok(())
    }
}

/// A guild rendered by [`ReadyGuilds::template`]'s `render`: its template and its digest.
pub(crate) struct Rendered {
    pub template: Template,
    pub digest: GuildDigest,
}

/// Which rendering of a guild: the capabilities that change it, and whether the client's
/// cache already holds it (CLIENT_STATE_V2 `partial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Shape {
    /// CLIENT_STATE_V2: `properties`, `data_mode`, `version`.
    pub v2: bool,
    /// PRIORITIZED_READY_PAYLOAD: voice states move to READY_SUPPLEMENTAL.
    pub prioritized: bool,
    /// DEDUPE_USER_OBJECTS: members move to `merged_members`.
    pub dedupe: bool,
    /// The client holds this version of the guild (the current one, or an earlier one this
    /// process rendered): what it has cached is left out, what changed since is sent as
    /// `partial_updates` and `channel_updates` (CLIENT_STATE_V2 `data_mode: "partial"`).
    pub partial: Option<u64>,
}

/// What one rendered version of a guild held, enough to tell a client holding that version
/// what changed since: its channels (threads aside), roles and emojis, each by id with a hash
/// of its JSON (channels also with their unread state).
#[derive(Debug, Default)]
pub(crate) struct GuildDigest {
    pub channels: Vec<ChannelDigest>,
    pub roles: Vec<(Snowflake, u64)>,
    pub emojis: Vec<(Snowflake, u64)>,
}

/// Rendered versions of a guild remembered for partial READYs (older ones get it in full).
const HISTORY: usize = 8;

#[derive(Debug, Default)]
struct Entry {
    version: u64,
    templates: HashMap<Shape, Arc<Template>>,
    /// Digests of the last rendered versions, oldest first.
    history: VecDeque<(u64, Arc<GuildDigest>)>,
}

impl Entry {
    fn digest(&self, version: u64) -> Option<Arc<GuildDigest>> {
        self.history
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, digest)| digest.clone())
    }

    fn remember(&mut self, version: u64, digest: GuildDigest) {
        if self.history.iter().any(|(v, _)| *v == version) {
            return;
        }
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((version, Arc::new(digest)));
    }
}

#[derive(Debug, Default)]
struct Entries {
    guilds: HashMap<Snowflake, Entry>,
    /// The last version handed out (versions only grow, across guilds and resets).
    last_version: u64,
}

impl Entries {
    /// A new version: the backend's clock in microseconds, or one more than the last (so a
    /// restarted process never repeats a version an earlier one gave out, short of a clock
    /// going back; a seeded run's frozen clock makes the versions repeatable).
    fn next_version(&mut self) -> u64 {
        let now = crate::backend::clock::now_ms().saturating_mul(1000);
        self.last_version = now.max(self.last_version + 1);
        self.last_version
    }
}

/// The rendered READY guilds of the gateway, by guild.
#[derive(Debug, Default)]
pub(crate) struct ReadyGuilds {
    entries: Mutex<Entries>,
}

impl ReadyGuilds {
    /// The guild's template in `shape`, rendered by `render` when not cached. Under
    /// CLIENT_STATE_V2, a client that holds version `known` of the guild (the current one or
    /// a remembered one) gets it partial: `render` is given the shape, the current version
    /// and the digest of `known` (`None` when `known` is the current version and no digest of
    /// it is kept: nothing changed). `render` returning `None` (the guild is gone) caches
    /// nothing; its digest is remembered for the version it rendered.
    pub(crate) fn template<E>(
        &self,
        guild_id: Snowflake,
        shape: Shape,
        known: Option<u64>,
        render: impl FnOnce(u64, Shape, Option<&GuildDigest>) -> Result<Option<Rendered>, E>,
    ) -> Result<Option<Arc<Template>>, E> {
        let (version, shape, base) = {
            let mut entries = self.entries.lock();
            if !entries.guilds.contains_key(&guild_id) {
                let version = entries.next_version();
                entries.guilds.insert(
                    guild_id,
                    Entry {
                        version,
                        ..Entry::default()
                    },
                );
            }
            let Some(entry) = entries.guilds.get(&guild_id) else {
                return Ok(None);
            };
            let base = known.filter(|_| shape.v2).and_then(|known| {
                let digest = entry.digest(known);
                (known == entry.version || digest.is_some()).then_some((known, digest))
            });
            let shape = Shape {
                partial: base.as_ref().map(|(known, _)| *known),
                ..shape
            };
            if let Some(template) = entry.templates.get(&shape) {
                return Ok(Some(template.clone()));
            }
            (entry.version, shape, base.and_then(|(_, digest)| digest))
        };
        let Some(rendered) = render(version, shape, base.as_deref())? else {
            return Ok(None);
        };
        let template = Arc::new(rendered.template);
        let mut entries = self.entries.lock();
        // A change while rendering gave the guild a new version: this rendering may be stale.
        if let Some(entry) = entries.guilds.get_mut(&guild_id) {
            if entry.version == version {
                entry.templates.insert(shape, template.clone());
                entry.remember(version, rendered.digest);
            }
        }
        Ok(Some(template))
    }

    /// Forgets the guild's renderings and gives it a new version.
    pub(crate) fn invalidate(&self, guild_id: Snowflake) {
        let mut entries = self.entries.lock();
        if entries.guilds.contains_key(&guild_id) {
            let version = entries.next_version();
            if let Some(entry) = entries.guilds.get_mut(&guild_id) {
                entry.version = version;
                entry.templates.clear();
            }
        }
    }

    /// Forgets every guild (a reset of the world); versions keep growing.
    pub(crate) fn clear(&self) {
        self.entries.lock().guilds.clear();
    }

    /// Drops what a bus event named `name` about `guild` may have changed.
    pub(crate) fn on_event(&self, name: &str, guild: Option<Snowflake>) {
        if let Some(guild) = guild {
            if !NEUTRAL.contains(&name) {
                self.invalidate(guild);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_template_with_its_holes_filled_is_what_serde_json_writes() {
        let value = json!({"id": "1", "joined_at": "2020", "name": "a\"b", "nested": {"x": [1, 2.5, null]},
            "voice_states": [{"user_id": "2"}], "members": []});
        let Value::Object(object) = &value else {
            unreachable!()
        };
        let template = Template::of(object, &["joined_at", "voice_states", "members"]).unwrap();
        let mut out = Vec::new();
        template
            .write(&mut out, |key, out| serde_json::to_writer(out, &value[key]))
            .unwrap();
        assert_eq!(out, serde_json::to_vec(&value).unwrap());
        let empty = Template::of(&Map::new(), &[]).unwrap();
        let mut out = Vec::new();
        empty
            .write(&mut out, |_, _| Ok::<(), serde_json::Error>(()))
            .unwrap();
        assert_eq!(out, b"{}");
    }

    #[test]
    fn changes_give_new_versions_and_neutral_events_keep_the_rendering() {
        let cache = ReadyGuilds::default();
        let guild = Snowflake(7);
        let shape = Shape {
            v2: true,
            prioritized: true,
            dedupe: true,
            partial: None,
        };
        let seen = std::cell::Cell::new(0);
        let render = |version: u64, _, _: Option<&GuildDigest>| {
            seen.set(version);
            Template::of(json!({"version": version}).as_object().unwrap(), &[]).map(|template| {
                Some(Rendered {
                    template,
                    digest: GuildDigest::default(),
                })
            })
        };
        let first = cache.template(guild, shape, None, render).unwrap().unwrap();
        let v1 = seen.get();
        let again = cache.template(guild, shape, None, render).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        cache.on_event("TYPING_START", Some(guild));
        let same = cache.template(guild, shape, None, render).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &same));
        cache.on_event("CHANNEL_UPDATE", Some(guild));
        let changed = cache.template(guild, shape, None, render).unwrap().unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(seen.get() > v1);
    }

    #[test]
    fn a_held_version_is_partial_while_it_is_remembered() {
        let cache = ReadyGuilds::default();
        let guild = Snowflake(7);
        let shape = Shape {
            v2: true,
            prioritized: true,
            dedupe: true,
            partial: None,
        };
        // Each rendering records (version, shape.partial, whether a held digest was given).
        let calls = std::cell::RefCell::new(Vec::new());
        let render = |version: u64, shape: Shape, held: Option<&GuildDigest>| {
            calls
                .borrow_mut()
                .push((version, shape.partial, held.is_some()));
            Template::of(&Map::new(), &[]).map(|template| {
                Some(Rendered {
                    template,
                    digest: GuildDigest::default(),
                })
            })
        };
        cache.template(guild, shape, None, render).unwrap();
        let v1 = calls.borrow()[0].0;
        // The current version: partial (against its own digest: nothing changed).
        cache.template(guild, shape, Some(v1), render).unwrap();
        assert_eq!(calls.borrow()[1], (v1, Some(v1), true));
        cache.on_event("MESSAGE_CREATE", Some(guild));
        // An older, remembered version: partial against its digest.
        cache.template(guild, shape, Some(v1), render).unwrap();
        let (v2, partial, held) = calls.borrow()[2];
        assert!(v2 > v1);
        assert_eq!((partial, held), (Some(v1), true));
        // A version never handed out, or one without CLIENT_STATE_V2: full.
        cache.template(guild, shape, Some(v1 - 1), render).unwrap();
        assert_eq!(calls.borrow()[3].1, None);
        let v1_shape = Shape { v2: false, ..shape };
        cache.template(guild, v1_shape, Some(v1), render).unwrap();
        assert_eq!(calls.borrow()[4].1, None);
        // Only the last HISTORY versions are remembered.
        for _ in 0..HISTORY {
            cache.on_event("CHANNEL_UPDATE", Some(guild));
            cache.template(guild, shape, None, render).unwrap();
        }
        cache.template(guild, shape, Some(v1), render).unwrap();
        assert_eq!(calls.borrow().last().unwrap().1, None);
    }
}
