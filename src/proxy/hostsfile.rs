//! The hosts-file redirect: the lines that send Discord's names to the transparent listener,
//! added and taken out again exactly (each line carries a marker; nothing else is touched).
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Marker ending every line we add.
pub(crate) const MARKER: &str = "# added by discord-mitm";

/// The names the official client and bots connect to (a hosts file has no wildcards).
pub(crate) const REDIRECTED_NAMES: &[&str] = &[
    "discord.com",
    "www.discord.com",
    "canary.discord.com",
    "ptb.discord.com",
    "status.discord.com",
    "updates.discord.com",
    "discordapp.com",
    "canary.discordapp.com",
    "cdn.discordapp.com",
    "discord.gg",
    "gateway.discord.gg",
    "gateway-us-east1-b.discord.gg",
    "media.discordapp.net",
    "images-ext-1.discordapp.net",
    "images-ext-2.discordapp.net",
    "dl.discordapp.net",
    "latency.discord.media",
];

/// Hosts file trouble.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostsFileError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason} (editing the hosts file needs root / Administrator)")]
    Write { path: PathBuf, reason: String },
}

/// The lines for `address`.
pub(crate) fn lines(address: IpAddr) -> Vec<String> {
    REDIRECTED_NAMES
        .iter()
        .map(|name| format!("{address} {name} {MARKER}"))
        .collect()
}

fn read(path: &Path) -> Result<String, HostsFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(err) => Err(HostsFileError::Read {
            path: path.to_path_buf(),
            reason: err.to_string(),
        }),
    }
}

fn write(path: &Path, text: &str) -> Result<(), HostsFileError> {
    // In place, not rename: /etc/hosts is often a bind mount (containers) that cannot be replaced.
    std::fs::write(path, text).map_err(|err| HostsFileError::Write {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

fn is_ours(line: &str) -> bool {
    line.trim_end().ends_with(MARKER)
}

/// What `apply` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// This many lines were written.
    Added(usize),
    /// The file already held exactly these lines: nothing was written.
    AlreadyPresent(usize),
}

/// Adds the lines (replacing ours from an earlier run); the file is left untouched when it
/// already ends with exactly them.
pub(crate) fn apply(path: &Path, address: IpAddr) -> Result<Applied, HostsFileError> {
    let text = read(path)?;
    let mut kept: Vec<&str> = text.lines().filter(|l| !is_ours(l)).collect();
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    let ours = lines(address);
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    for line in &ours {
        out.push_str(line);
        out.push('\n');
    }
    if out == text {
        return Ok(Applied::AlreadyPresent(ours.len()));
    }
    write(path, &out)?;
    Ok(Applied::Added(ours.len()))
}

/// Takes our lines out, leaving every other line as it was; returns how many were removed.
pub(crate) fn remove(path: &Path) -> Result<usize, HostsFileError> {
    let text = read(path)?;
    let mut removed = 0;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if is_ours(line) {
            removed += 1;
        } else {
            out.push_str(line);
        }
    }
    if removed > 0 {
        write(path, &out)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_then_remove_restores_the_file_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        let original = "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n# keep me\n";
        std::fs::write(&path, original).unwrap();
        let n = apply(&path, "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(n, Applied::Added(REDIRECTED_NAMES.len()));
        let applied = std::fs::read_to_string(&path).unwrap();
        assert!(applied.starts_with(original));
        assert!(applied.contains("127.0.0.1 gateway.discord.gg # added by discord-mitm\n"));
        // Applying twice does not duplicate, and says so.
        assert_eq!(
            apply(&path, "127.0.0.1".parse().unwrap()).unwrap(),
            Applied::AlreadyPresent(REDIRECTED_NAMES.len())
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), applied);
        assert_eq!(remove(&path).unwrap(), REDIRECTED_NAMES.len());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
        assert_eq!(remove(&path).unwrap(), 0);
    }
}
