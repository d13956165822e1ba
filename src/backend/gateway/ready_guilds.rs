//! READY's guilds rendered once and reused: each guild's gateway object is serialized to JSON
//! bytes per shape (capabilities that change it, full or partial), with holes for what differs
//! between sessions (`joined_at`, `voice_states`, `members`). Any event that may change what a
//! guild renders to drops its templates and gives it a new version (CLIENT_STATE_V2's guild
//! `version`, which a re-identifying client sends back in `client_state.guild_versions`).
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};

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
                None => serde_json::to_writer(&mut raw, value)?,
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
    /// The client holds this version: only what it cannot have cached is sent.
    pub partial: bool,
}

#[derive(Debug, Default)]
struct Entry {
    version: u64,
    templates: HashMap<Shape, Arc<Template>>,
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
    /// The guild's template in the shape `shape_for(version)` picks, rendered by `render`
    /// (given the version and shape) when not cached. `render` returning `None` (the guild is
    /// gone) caches nothing.
    pub(crate) fn template<E>(
        &self,
        guild_id: Snowflake,
        shape_for: impl FnOnce(u64) -> Shape,
        render: impl FnOnce(u64, Shape) -> Result<Option<Template>, E>,
    ) -> Result<Option<Arc<Template>>, E> {
        let (version, shape) = {
            let mut entries = self.entries.lock();
            if !entries.guilds.contains_key(&guild_id) {
                let version = entries.next_version();
                entries.guilds.insert(
                    guild_id,
                    Entry {
                        version,
                        templates: HashMap::new(),
                    },
                );
            }
            let Some(entry) = entries.guilds.get(&guild_id) else {
                return Ok(None);
            };
            let shape = shape_for(entry.version);
            if let Some(template) = entry.templates.get(&shape) {
                return Ok(Some(template.clone()));
            }
            (entry.version, shape)
        };
        let Some(template) = render(version, shape)? else {
            return Ok(None);
        };
        let template = Arc::new(template);
        let mut entries = self.entries.lock();
        // A change while rendering gave the guild a new version: this rendering may be stale.
        if let Some(entry) = entries.guilds.get_mut(&guild_id) {
            if entry.version == version {
                entry.templates.insert(shape, template.clone());
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
            partial: false,
        };
        let render = |version: u64, _| {
            Template::of(json!({"version": version}).as_object().unwrap(), &[]).map(Some)
        };
        let mut seen = 0;
        let first = cache
            .template(
                guild,
                |v| {
                    seen = v;
                    shape
                },
                render,
            )
            .unwrap()
            .unwrap();
        let again = cache.template(guild, |_| shape, render).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        cache.on_event("TYPING_START", Some(guild));
        let same = cache.template(guild, |_| shape, render).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &same));
        cache.on_event("CHANNEL_UPDATE", Some(guild));
        let mut newer = 0;
        let changed = cache
            .template(
                guild,
                |v| {
                    newer = v;
                    shape
                },
                render,
            )
            .unwrap()
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(newer > seen);
    }
}
