//! What survives a proxy restart: each shard's upstream session (to RESUME instead of
//! IDENTIFY), the cache READY/GUILD_CREATE are crafted from, and every client session with its
//! replay buffer (so bots RESUME against the restarted proxy and lose nothing).
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::gateway::client::ResumeState;

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The state file.
        path: String,
        /// Why reading or writing failed.
        source: std::io::Error,
    },
    /// The file is not a state file of this version.
    #[error("state file {path} is not usable: {reason}")]
    Format {
        /// The state file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One shard's saved state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedShard {
    /// The upstream session to resume, if the shard had one.
    pub session: Option<ResumeState>,
    /// [`super::cache::ShardCache::snapshot`].
    pub cache: Value,
}

/// The state file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SavedState {
    /// Format version.
    pub version: u32,
    /// Total shard count the sessions belong to (a different count cannot resume them).
    pub total_shards: u32,
    /// Shards by id.
    pub shards: BTreeMap<u32, SavedShard>,
    /// Client sessions (absent in files written before sessions were saved).
    #[serde(default)]
    pub clients: Vec<SavedClient>,
}

/// One client session: what a RESUME against the restarted proxy needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedClient {
    /// The `session_id` the client got in its READY.
    pub session_id: String,
    /// The shard it identified on.
    pub shard_id: u32,
    /// The intents it identified with (`None`: everything the shard receives).
    #[serde(default)]
    pub intents: Option<u64>,
    /// Its highest sequence number.
    pub last_seq: u64,
    /// Newest sequence number no longer in `events` (0: nothing dropped).
    pub dropped_through: u64,
    /// The replay buffer, oldest first.
    pub events: Vec<SavedEvent>,
}

/// One numbered dispatch of a replay buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedEvent {
    /// Sequence number.
    pub s: u64,
    /// Event name.
    pub t: String,
    /// Event data.
    pub d: Value,
}

/// The current format version.
pub const STATE_VERSION: u32 = 1;

impl SavedState {
    /// Reads the state file; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<SavedState>, PersistError> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(PersistError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let state: SavedState =
            serde_json::from_slice(&text).map_err(|err| PersistError::Format {
                path: path.display().to_string(),
                reason: err.to_string(),
            })?;
        if state.version != STATE_VERSION {
            return Err(PersistError::Format {
                path: path.display().to_string(),
                reason: format!("version {} (expected {STATE_VERSION})", state.version),
            });
        }
        Ok(Some(state))
    }

    /// Writes the state file atomically (temporary file, then rename), readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<(), PersistError> {
        let io = |source| PersistError::Io {
            path: path.display().to_string(),
            source,
        };
        let body = serde_json::to_vec(self).map_err(|err| PersistError::Format {
            path: path.display().to_string(),
            reason: err.to_string(),
        })?;
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write as _;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                // Session ids let anyone holding the token take the sessions over.
                options.mode(0o600);
            }
            let mut file = options.open(&tmp).map_err(io)?;
            file.write_all(&body).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(SavedState::load(&path).unwrap().is_none());
        let mut state = SavedState {
            version: STATE_VERSION,
            total_shards: 2,
            shards: BTreeMap::new(),
            clients: vec![SavedClient {
                session_id: "client".into(),
                shard_id: 1,
                intents: Some(513),
                last_seq: 7,
                dropped_through: 5,
                events: vec![SavedEvent {
                    s: 6,
                    t: "MESSAGE_CREATE".into(),
                    d: serde_json::json!({"id": "1"}),
                }],
            }],
        };
        state.shards.insert(
            1,
            SavedShard {
                session: Some(ResumeState {
                    session_id: "abc".into(),
                    seq: Some(42),
                    resume_url: Some("ws://127.0.0.1:1".into()),
                }),
                cache: serde_json::json!({"ready": null, "guilds": []}),
            },
        );
        state.save(&path).unwrap();
        assert_eq!(SavedState::load(&path).unwrap(), Some(state));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn state_files_without_client_sessions_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, br#"{"version":1,"total_shards":1,"shards":{}}"#).unwrap();
        assert!(SavedState::load(&path).unwrap().unwrap().clients.is_empty());
    }

    #[test]
    fn garbage_or_other_version_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"nope").unwrap();
        assert!(matches!(
            SavedState::load(&path),
            Err(PersistError::Format { .. })
        ));
        std::fs::write(&path, br#"{"version":99,"total_shards":1,"shards":{}}"#).unwrap();
        let err = SavedState::load(&path).unwrap_err();
        assert!(err.to_string().contains("version 99"));
    }
}
