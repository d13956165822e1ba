//! A high-water mark kept beside a sled database, so that a database which lost writes that had
//! reached the disk is refused instead of opened as if nothing happened.
//!
//! sled recovers a damaged log by keeping the longest readable prefix: a truncated or corrupted
//! file opens without an error, as an older (often empty) database. To notice, the owner bumps a
//! generation counter inside the database about once a second (when anything was written since
//! the last time), flushes, and only then writes the counter to a small file next to it. A database whose counter is below the file's has lost data
//! that was on disk. A crash between the flush and the file write leaves the file behind the
//! database, never ahead, so `kill -9` never trips the check.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The file beside the database holding the last generation known to be on disk.
pub const FILE: &str = "discord-mitm-watermark";

/// Where the generation lives inside the database (sled's default tree).
const KEY: &[u8] = b"discord-mitm/watermark";

/// How often a running owner advances the mark.
const EVERY: Duration = Duration::from_secs(1);

/// Why a database was refused.
#[derive(Debug, thiserror::Error)]
pub enum WatermarkError {
    /// The database holds less than what was flushed before.
    #[error(
        "it lost data that was already on disk (it holds writes up to mark {held}, but mark \
         {flushed} had been flushed): a file in it is truncated or corrupted"
    )]
    Lost {
        /// The generation found in the database.
        held: u64,
        /// The generation the file says was flushed.
        flushed: u64,
    },
    /// The mark file itself cannot be read.
    #[error("its integrity file {path} cannot be read ({reason}); delete that file to open the database without the check")]
    Unreadable {
        /// The mark file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The database could not be read or written.
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
}

/// Refuses `db` (opened from `dir`) when it holds less than its mark file says was flushed.
pub fn check(db: &sled::Db, dir: &Path) -> Result<(), WatermarkError> {
    let path = dir.join(FILE);
    let flushed = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|e| WatermarkError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(WatermarkError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        }
    };
    let held = generation(db)?;
    if held < flushed {
        return Err(WatermarkError::Lost { held, flushed });
    }
    Ok(())
}

/// Bumps the generation, flushes the database, then records the generation in the mark file.
pub fn advance(db: &sled::Db, dir: &Path) -> Result<(), WatermarkError> {
    let next = generation(db)? + 1;
    db.insert(KEY, &next.to_be_bytes())?;
    db.flush()?;
    write_file(dir, next).map_err(|e| WatermarkError::Unreadable {
        path: dir.join(FILE).display().to_string(),
        reason: e.to_string(),
    })
}

fn generation(db: &sled::Db) -> Result<u64, sled::Error> {
    Ok(db
        .get(KEY)?
        .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

/// Written to a temporary name and renamed, so the file is never seen half-written.
fn write_file(dir: &Path, generation: u64) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&tmp)?, generation.to_string().as_bytes())?;
    std::fs::rename(&tmp, dir.join(FILE))
}

/// The size and modification time of sled's log file (`db`): unchanged means nothing was
/// flushed to it since it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogStamp {
    len: u64,
    modified: std::time::SystemTime,
}

impl LogStamp {
    fn of(dir: &Path) -> Option<LogStamp> {
        let meta = std::fs::metadata(dir.join("db")).ok()?;
        Some(LogStamp {
            len: meta.len(),
            modified: meta.modified().ok()?,
        })
    }
}

/// Advances the mark of an open database about once a second while writes reach its log, and
/// once more when dropped.
pub struct Keeper {
    stop: Option<mpsc::Sender<()>>,
    finished: std::sync::Mutex<mpsc::Receiver<()>>,
    halted: Arc<AtomicBool>,
}

impl Keeper {
    /// Starts keeping the mark of `db`, opened from `dir`.
    pub fn start(db: sled::Db, dir: PathBuf) -> Keeper {
        let (stop, stopped) = mpsc::channel::<()>();
        let (finish, finished) = mpsc::channel::<()>();
        let halted = Arc::new(AtomicBool::new(false));
        let halt = Arc::clone(&halted);
        let shown = dir.display().to_string();
        let spawned = std::thread::Builder::new()
            .name("watermark".into())
            .spawn(move || {
                let mut marked = None;
                loop {
                    let last = matches!(
                        stopped.recv_timeout(EVERY),
                        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected)
                    );
                    if halt.load(Ordering::SeqCst) {
                        break;
                    }
                    // Nothing reached the disk since the last mark: no flush, no file write
                    // (an idle server does not touch the disk every second). The final mark
                    // is always taken.
                    let stamp = LogStamp::of(&dir);
                    if !last && stamp.is_some() && stamp == marked {
                        continue;
                    }
                    if let Err(e) = advance(&db, &dir) {
                        // Said once: a full disk would repeat it every second. The last good
                        // mark stays valid (the database only grows past it).
                        tracing::warn!(
                            "cannot advance the integrity mark of {}: {e}",
                            dir.display()
                        );
                        break;
                    }
                    if last {
                        break;
                    }
                    marked = LogStamp::of(&dir);
                }
                // Released before saying so: whoever waits may reopen the database next.
                drop(db);
                let _ = finish.send(());
            });
        if let Err(e) = spawned {
            tracing::warn!("no integrity mark for {shown}: {e}");
        }
        Keeper {
            stop: Some(stop),
            finished: std::sync::Mutex::new(finished),
            halted,
        }
    }

    /// Whether a writer reported a failed write.
    pub fn halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// A flag that stops this keeper from elsewhere: set by a writer that saw a write fail,
    /// since sled's flush never returns after an I/O error. The last mark written stays valid.
    pub fn halt_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.halted)
    }
}

impl Drop for Keeper {
    /// Takes the final mark, waiting a bounded time: a flush stuck on a failed disk must not
    /// hold up shutdown.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Ok(finished) = self.finished.lock() {
            let _ = finished.recv_timeout(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_behind_its_mark_is_refused_and_one_at_or_ahead_opens() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        check(&db, dir.path()).unwrap();
        advance(&db, dir.path()).unwrap();
        advance(&db, dir.path()).unwrap();
        check(&db, dir.path()).unwrap();
        // The database ahead of the file (a crash between flush and file write) is fine.
        db.insert(KEY, &5u64.to_be_bytes()).unwrap();
        check(&db, dir.path()).unwrap();
        // Behind it is not.
        db.insert(KEY, &1u64.to_be_bytes()).unwrap();
        let err = check(&db, dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                WatermarkError::Lost {
                    held: 1,
                    flushed: 2
                }
            ),
            "{err}"
        );
        db.remove(KEY).unwrap();
        assert!(matches!(
            check(&db, dir.path()),
            Err(WatermarkError::Lost { held: 0, .. })
        ));
        std::fs::write(dir.path().join(FILE), "not a number").unwrap();
        let err = check(&db, dir.path()).unwrap_err();
        assert!(err.to_string().contains("delete that file"), "{err}");
    }

    #[test]
    fn the_keeper_marks_only_after_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let keeper = Keeper::start(db.clone(), dir.path().to_path_buf());
        std::thread::sleep(EVERY * 3 + EVERY / 2);
        // One mark for the start (the log was new), none while idle.
        assert_eq!(generation(&db).unwrap(), 1);
        db.insert(b"written", b"x").unwrap();
        db.flush().unwrap();
        std::thread::sleep(EVERY + EVERY / 2);
        assert_eq!(generation(&db).unwrap(), 2);
        std::thread::sleep(EVERY * 2);
        assert_eq!(generation(&db).unwrap(), 2);
        drop(keeper);
        assert_eq!(generation(&db).unwrap(), 3);
    }

    #[test]
    fn the_keeper_advances_once_more_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        drop(Keeper::start(db.clone(), dir.path().to_path_buf()));
        assert_eq!(generation(&db).unwrap(), 1);
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert_eq!(text, "1");
    }
}
