//! `world export` and `serve --from-recordings`: a recordings database read through the store,
//! the world built from it (`backend::world::recorded`), and what was imported told on stderr.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::backend::accounts::generate_token;
use crate::backend::snowflake::Snowflake;
use crate::backend::world::recorded::{self, BuiltWorld, RecordedWorldError};
use crate::store::{Store, StoreError};

/// Why no world came out of a recordings directory.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorldError {
    #[error("no recordings in {0} (record some with `discord-mitm record --recordings {0}`)")]
    NoRecordings(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{dir}: {source}")]
    Build {
        dir: String,
        #[source]
        source: RecordedWorldError,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Builds the world recorded in `dir` (opened only to read; closed before this returns, so
/// `serve` can then open it for replay) and returns it with its report for stderr.
pub(crate) fn build_from_recordings(dir: &Path) -> Result<(BuiltWorld, String), WorldError> {
    if !dir.join("conf").exists() && !dir.join("db").exists() {
        return Err(WorldError::NoRecordings(dir.display().to_string()));
    }
    let (items, read) = {
        let store = Store::open(dir)?;
        recorded::items_from_store(&store)?
    };
    let usable = items.len();
    let built = recorded::build(items, &|id| generate_token(Snowflake(id))).map_err(|source| {
        WorldError::Build {
            dir: dir.display().to_string(),
            source,
        }
    })?;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "world from {}: read {} exchanges and {} gateway frames ({usable} usable answers and dispatches)",
        dir.display(),
        read.exchanges,
        read.frames
    );
    let _ = writeln!(report, "  imported: {}", built.summary());
    for (reason, n) in &read.skipped {
        let _ = writeln!(report, "  warning: {n} × {reason}");
    }
    for warning in &built.warnings {
        let _ = writeln!(report, "  warning: {warning}");
    }
    for account in &built.accounts {
        let header = if account.bot {
            format!("Authorization: Bot {}", account.token)
        } else {
            format!("Authorization: {}", account.token)
        };
        let _ = writeln!(
            report,
            "  recorded {} {} (id {}) is a local {} now; new local token: {header}",
            if account.bot { "bot" } else { "account" },
            account.username,
            account.id,
            if account.bot { "bot" } else { "user" },
        );
    }
    Ok((built, report))
}

/// Writes the fixture as pretty JSON to `out` (owner-only), or stdout for `-`.
pub(crate) fn write_fixture(out: &Path, built: &BuiltWorld) -> Result<(), WorldError> {
    let mut text = serde_json::to_vec_pretty(&built.fixture).unwrap_or_default();
    text.push(b'\n');
    let failed = |source| WorldError::Write {
        path: out.to_path_buf(),
        source,
    };
    if out == Path::new("-") {
        use std::io::Write as _;
        return std::io::stdout().lock().write_all(&text).map_err(failed);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(out).map_err(failed)?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on open: tighten it before the tokens go in.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
    }
    use std::io::Write as _;
    file.write_all(&text).map_err(failed)
}
