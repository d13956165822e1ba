//! READY's guild channels written straight to JSON bytes (the cold READY's hot loop: a user in
//! 100 guilds of 50 channels renders 5,000 of them). The bytes are what
//! [`crate::backend::render::channel`] followed by READY's `permission_overwrites: []` gives,
//! key for key and in the same order, without building a `serde_json::Value` per channel;
//! channels of a shape the fast path does not cover (threads, channels with recipients) go
//! through the general renderer.
//!
//! Each channel also yields its digest: a hash of everything but its unread state
//! (`last_message_id`, `last_pin_timestamp`), and that unread state, so a CLIENT_STATE_V2
//! client holding an older version of the guild is sent only what changed
//! (`partial_updates.channels` and `channel_updates`).
use std::hash::Hasher;

use serde_json::{json, Value};

use crate::backend::model::{channel_type, Channel};
use crate::backend::render;
use crate::backend::snowflake::{iso8601_from_ms, Snowflake};
use crate::backend::store::{Store, StoreError};

/// A channel's unread state, as `channel_updates` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unread {
    pub last_message_id: Option<Snowflake>,
    pub last_pin_timestamp: Option<String>,
    /// Whether the channel type carries `last_pin_timestamp`.
    pub has_pins: bool,
}

impl Unread {
    /// The channel unread object (`{id, last_message_id, last_pin_timestamp?}`).
    pub(crate) fn to_value(&self, id: Snowflake) -> Value {
        let mut out = json!({"id": id, "last_message_id": self.last_message_id});
        if self.has_pins {
            out["last_pin_timestamp"] = json!(self.last_pin_timestamp);
        }
        out
    }
}

/// What READY remembers of one rendered channel: its id, a hash of its JSON without the
/// unread state, and the unread state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelDigest {
    pub id: Snowflake,
    pub hash: u64,
    pub unread: Option<Unread>,
}

/// A 64-bit hasher of byte strings, eight bytes at a time with a folded multiply (as wyhash
/// and foldhash mix): stable within a process, which is all digests need, and cheap enough to
/// run over every channel of a cold READY.
pub(crate) struct WordHasher {
    state: u64,
    len: u64,
}

const SEED: u64 = 0x243f_6a88_85a3_08d3;
const MULTIPLE: u64 = 0x9e37_79b9_7f4a_7c15;

fn fold(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    // The two halves of the 128-bit product.
    (full as u64) ^ ((full >> 64) as u64)
}

impl Default for WordHasher {
    fn default() -> Self {
        WordHasher {
            state: SEED,
            len: 0,
        }
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        fold(self.state ^ self.len, MULTIPLE)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.state = fold(self.state ^ u64::from_le_bytes(word), MULTIPLE);
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            // The tail's length keeps "a" and "a\0" apart.
            self.state = fold(
                self.state ^ u64::from_le_bytes(word) ^ ((tail.len() as u64) << 59),
                MULTIPLE,
            );
        }
        self.len = self.len.wrapping_add(bytes.len() as u64);
    }
}

/// The hash of some JSON bytes.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = WordHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

fn push_key(out: &mut Vec<u8>, key: &str) {
    out.push(b',');
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

fn push_id(out: &mut Vec<u8>, id: Option<Snowflake>) {
    match id {
        Some(id) => {
            out.push(b'"');
            out.extend_from_slice(id.0.to_string().as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// The latest pin of a channel, as an ISO 8601 timestamp.
fn last_pin(store: &Store, channel_id: Snowflake) -> Result<Option<String>, StoreError> {
    let pins = store.pins.values_shared(channel_id)?;
    Ok(pins.iter().max().map(|ms| iso8601_from_ms(*ms)))
}

/// Whether the fast path writes `channel` (a guild channel that is no thread and has no
/// recipients; everything else goes through [`render::channel`]).
fn fast(channel: &Channel) -> bool {
    channel.guild_id.is_some()
        && channel.recipient_ids.is_none()
        && !channel_type::is_thread(channel.kind)
}

/// Writes `channel` as READY sends it to `out` and returns its digest.
pub(crate) fn write(
    store: &Store,
    channel: &Channel,
    out: &mut Vec<u8>,
) -> Result<ChannelDigest, StoreError> {
    if !fast(channel) {
        return write_general(store, channel, out);
    }
    let start = out.len();
    serde_json::to_writer(&mut *out, channel)?;
    // The struct always has `id` and `type`: the object is not empty, keys follow with ','.
    out.pop();
    let kind = channel.kind;
    if kind == channel_type::GUILD_VOICE {
        if let Some(status) = store.extra.voice_statuses.get(channel.id)? {
            push_key(out, "status");
            serde_json::to_writer(&mut *out, &status)?;
        }
    }
    let mut hasher = WordHasher::default();
    let mut unread = None;
    let textual = channel_type::is_textual(kind) || kind == channel_type::GUILD_FORUM;
    let pinned = kind == channel_type::GUILD_TEXT || kind == channel_type::GUILD_ANNOUNCEMENT;
    if textual {
        let last = store.last_message_id(channel.id)?;
        hasher.write(&out[start..]);
        push_key(out, "last_message_id");
        push_id(out, last);
        let mark = out.len();
        if pinned && channel.topic.is_none() {
            push_key(out, "topic");
            out.extend_from_slice(b"null");
        }
        hasher.write(&out[mark..]);
        let pin = if pinned {
            let pin = last_pin(store, channel.id)?;
            push_key(out, "last_pin_timestamp");
            serde_json::to_writer(&mut *out, &pin)?;
            pin
        } else {
            None
        };
        unread = Some(Unread {
            last_message_id: last,
            last_pin_timestamp: pin,
            has_pins: pinned,
        });
    } else {
        hasher.write(&out[start..]);
    }
    let mark = out.len();
    if matches!(
        kind,
        channel_type::GUILD_VOICE | channel_type::GUILD_STAGE_VOICE
    ) && channel.rtc_region.is_none()
    {
        push_key(out, "rtc_region");
        out.extend_from_slice(b"null");
    }
    if channel.parent_id.is_none() {
        push_key(out, "parent_id");
        out.extend_from_slice(b"null");
    }
    // Discord always sends guild channels' overwrites as an array.
    if channel.permission_overwrites.is_none() {
        push_key(out, "permission_overwrites");
        out.extend_from_slice(b"[]");
    }
    out.push(b'}');
    hasher.write(&out[mark..]);
    Ok(ChannelDigest {
        id: channel.id,
        hash: hasher.finish(),
        unread,
    })
}

/// [`write`] for the shapes the fast path leaves out, through the general renderer.
fn write_general(
    store: &Store,
    channel: &Channel,
    out: &mut Vec<u8>,
) -> Result<ChannelDigest, StoreError> {
    let mut value = render(store, channel)?;
    serde_json::to_writer(&mut *out, &value)?;
    let pinned = channel.kind == channel_type::GUILD_TEXT
        || channel.kind == channel_type::GUILD_ANNOUNCEMENT;
    let unread = match value.as_object_mut() {
        Some(object) if object.contains_key("last_message_id") => {
            let last = object.remove("last_message_id");
            let pin = object.remove("last_pin_timestamp");
            Some(Unread {
                last_message_id: last
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(Snowflake::parse),
                last_pin_timestamp: pin.as_ref().and_then(Value::as_str).map(str::to_string),
                has_pins: pinned,
            })
        }
        _ => None,
    };
    Ok(ChannelDigest {
        id: channel.id,
        hash: hash_bytes(&serde_json::to_vec(&value)?),
        unread,
    })
}

/// One channel as READY sends it, as a `Value` (the general renderer, with guild channels'
/// overwrites always an array).
pub(crate) fn render(store: &Store, channel: &Channel) -> Result<Value, StoreError> {
    let mut value = render::channel(store, channel)?;
    if !channel_type::is_thread(channel.kind)
        && value
            .get("permission_overwrites")
            .is_none_or(Value::is_null)
    {
        value["permission_overwrites"] = json!([]);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::model::Overwrite;

    fn channels(guild: Snowflake) -> Vec<Channel> {
        let mut out = Vec::new();
        for (i, kind) in [
            channel_type::GUILD_TEXT,
            channel_type::GUILD_VOICE,
            channel_type::GUILD_CATEGORY,
            channel_type::GUILD_ANNOUNCEMENT,
            channel_type::GUILD_STAGE_VOICE,
            channel_type::GUILD_FORUM,
            channel_type::PUBLIC_THREAD,
        ]
        .into_iter()
        .enumerate()
        {
            let mut channel = Channel::new(Snowflake(100 + i as u64), kind);
            channel.guild_id = Some(guild);
            channel.name = Some(format!("c\"{i}\u{e9}"));
            out.push(channel.clone());
            channel.id = Snowflake(200 + i as u64);
            channel.topic = Some("a topic".into());
            channel.parent_id = Some(Snowflake(100));
            channel.rtc_region = Some("local".into());
            channel.position = Some(-3);
            channel.permission_overwrites = Some(vec![Overwrite {
                id: guild,
                kind: 0,
                allow: "0".into(),
                deny: "1024".into(),
            }]);
            out.push(channel);
        }
        out
    }

    #[test]
    fn the_fast_path_writes_what_the_general_renderer_writes() {
        let store = Store::temporary().unwrap();
        let guild = Snowflake(1);
        let list = channels(guild);
        for channel in &list {
            store.put_channel(channel).unwrap();
        }
        // Unread state on some of them: a message, a pin, a voice status.
        let mut message = crate::backend::model::Message::new(
            Snowflake(9_000),
            Snowflake(200),
            Some(Snowflake(1)),
            Snowflake(5),
        );
        store.put_message(&message).unwrap();
        message.channel_id = Snowflake(101);
        store.put_message(&message).unwrap();
        store
            .pins
            .put((Snowflake(100), Snowflake(9_000)), &1_700_000_000_000)
            .unwrap();
        store
            .extra
            .voice_statuses
            .put(Snowflake(101), &"playing".to_string())
            .unwrap();
        for channel in &list {
            let mut fast = Vec::new();
            let digest = write(&store, channel, &mut fast).unwrap();
            let general = serde_json::to_vec(&render(&store, channel).unwrap()).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(general).unwrap(),
                "channel of type {}",
                channel.kind
            );
            assert_eq!(digest.id, channel.id);
        }
        let text = &list[0];
        let digest = write(&store, text, &mut Vec::new()).unwrap();
        let unread = digest.unread.clone().unwrap();
        assert_eq!(unread.last_message_id, None);
        assert!(unread.last_pin_timestamp.is_some());
    }

    #[test]
    fn a_new_message_changes_the_unread_state_not_the_hash() {
        let store = Store::temporary().unwrap();
        let list = channels(Snowflake(1));
        for channel in &list {
            store.put_channel(channel).unwrap();
        }
        for channel in &list {
            let before = write(&store, channel, &mut Vec::new()).unwrap();
            let message = crate::backend::model::Message::new(
                Snowflake(9_000 + channel.id.0),
                channel.id,
                Some(Snowflake(1)),
                Snowflake(5),
            );
            store.put_message(&message).unwrap();
            let after = write(&store, channel, &mut Vec::new()).unwrap();
            // Threads count their messages (`message_count`): a message changes them.
            if !channel_type::is_thread(channel.kind) {
                assert_eq!(before.hash, after.hash, "type {}", channel.kind);
            }
            if let Some(unread) = &after.unread {
                assert_eq!(unread.last_message_id, Some(message.id));
                assert_ne!(before.unread, after.unread);
            }
            let mut renamed = channel.clone();
            renamed.name = Some("renamed".into());
            store.put_channel(&renamed).unwrap();
            let changed = write(&store, &renamed, &mut Vec::new()).unwrap();
            assert_ne!(after.hash, changed.hash, "type {}", channel.kind);
        }
    }
}
