//! Files that hold tokens stay with their owner: the directories we create are 0700 and the
//! files in them 0600 whatever the umask, and an existing directory that lets others in gets a
//! warning (as `ca show` warns about a readable key) instead of a silent change.
use std::io;
use std::path::Path;

/// Why a private directory could not be made or tightened.
#[derive(Debug, thiserror::Error)]
#[error("cannot prepare {path} (owner-only directory): {source}")]
pub struct PrivateDirError {
    /// The directory.
    pub path: String,
    /// The failure.
    #[source]
    pub source: io::Error,
}

/// Makes `dir` (and missing parents) with mode 0700 when it does not exist; when it does and
/// group or others may enter it, logs a warning with the fix. Returns the warning, if any.
pub fn prepare_dir(dir: &Path) -> Result<Option<String>, PrivateDirError> {
    let fail = |source| PrivateDirError {
        path: dir.display().to_string(),
        source,
    };
    if dir.is_dir() {
        let warning = wider_than_owner(dir).map(|mode| {
            format!(
                "{} is open to other users (mode {mode:o}) and holds tokens: run `chmod 700 {}`",
                dir.display(),
                dir.display()
            )
        });
        if let Some(text) = &warning {
            tracing::warn!("{text}");
        }
        return Ok(warning);
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    match create_owner_only(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(err) => return Err(fail(err)),
    }
    set_mode(dir, 0o700).map_err(fail)?;
    Ok(None)
}

/// Sets every file under `dir` to 0600 and every directory below it to 0700 (sled made them
/// with the umask's modes before this process restricted it, or an older version did).
pub fn tighten_files(dir: &Path) -> Result<(), PrivateDirError> {
    let fail = |source| PrivateDirError {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let kind = entry.file_type().map_err(fail)?;
        let path = entry.path();
        if kind.is_dir() {
            set_mode(&path, 0o700).map_err(fail)?;
            tighten_files(&path)?;
        } else if kind.is_file() {
            set_mode(&path, 0o600).map_err(fail)?;
        }
    }
    Ok(())
}

/// Restricts this process's umask to owner-only, so every file the storage engine creates
/// later (snapshots, blobs, logs) is 0600 and every directory 0700. For the long-running
/// commands (`record`, `serve`, `gateway-proxy`), which write nothing meant for others.
pub fn restrict_umask() {
    #[cfg(unix)]
    #[allow(unsafe_code)]
    // SAFETY: umask only swaps the process's file-creation mask; it has no memory effects.
    unsafe {
        libc::umask(0o077);
    }
}

#[cfg(unix)]
fn create_owner_only(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_owner_only(dir: &Path) -> io::Result<()> {
    std::fs::create_dir(dir)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn wider_than_owner(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn wider_than_owner(_dir: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_dirs_are_0700_and_files_tightened_to_0600() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/data");
        assert_eq!(prepare_dir(&dir).unwrap(), None);
        assert_eq!(mode(&dir), 0o700);
        std::fs::create_dir(dir.join("blobs")).unwrap();
        std::fs::set_permissions(dir.join("blobs"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(dir.join("db"), b"x").unwrap();
        std::fs::write(dir.join("blobs/1"), b"x").unwrap();
        std::fs::set_permissions(dir.join("db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.join("blobs/1"), std::fs::Permissions::from_mode(0o666))
            .unwrap();
        tighten_files(&dir).unwrap();
        assert_eq!(mode(&dir.join("db")), 0o600);
        assert_eq!(mode(&dir.join("blobs")), 0o700);
        assert_eq!(mode(&dir.join("blobs/1")), 0o600);
    }

    #[test]
    fn an_existing_wide_dir_is_warned_about_not_changed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let warning = prepare_dir(&dir).unwrap().unwrap();
        assert!(warning.contains("mode 755"), "{warning}");
        assert!(warning.contains("chmod 700"), "{warning}");
        assert_eq!(mode(&dir), 0o755);
    }
}
