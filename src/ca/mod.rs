//! Our own root CA: create and load it, issue leaf certificates for intercepted hosts, and
//! install it in (or remove it from) the trust stores clients use.
//!
//! - [`RootCa`] / [`CaCertificate`]: the CA on disk (`discord-mitm-ca.pem`, `.key`, `.cer`), validated on load.
//! - [`LeafAuthority`]: issues and caches per-host leaves; per-host rustls configs for the proxy and SNI-picked ones for TLS listeners.
//! - [`store`]: trust stores (Linux system store, NSS/Firefox, macOS, Windows): plan, install, uninstall, status.
//! - [`store::verify`]: a throwaway loopback TLS server that checks whether each store trusts the CA.
use std::path::PathBuf;

mod leaf;
mod root;
pub mod store;

pub use leaf::{LeafAuthority, DEFAULT_LEAF_CACHE_CAPACITY, LEAF_VALIDITY};
pub use root::{CaCertificate, CaFiles, InitReport, KeyWarning, Mended, RootCa, CA_VALIDITY_DAYS};

/// ` --ca-dir DIR` for a CA directory other than the default `ca`, for suggested commands.
pub fn ca_dir_flag(dir: &std::path::Path) -> String {
    if dir == std::path::Path::new("ca") {
        String::new()
    } else {
        format!(" --ca-dir {}", store::shell_quote(&dir.to_string_lossy()))
    }
}

/// Everything that can go wrong with the CA files or leaf issuance.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A CA file that should exist does not.
    #[error(
        "no CA in {dir}: {file} does not exist\n  fix: run `discord-mitm ca init{flag}` \
         (or point --ca-dir / DISCORD_MITM_CA_DIR at an existing CA)",
        dir = dir.display(),
        file = file.display(),
        flag = ca_dir_flag(dir)
    )]
    Missing {
        /// The CA directory.
        dir: PathBuf,
        /// The missing file.
        file: PathBuf,
    },
    /// `ca init` would overwrite an existing CA file.
    #[error(
        "{path} already exists; refusing to overwrite the CA\n  fix: keep using it, or run \
         `discord-mitm ca init --force{flag}` to replace it (then install the new CA in your trust stores again)",
        path = path.display(),
        flag = path.parent().map(ca_dir_flag).unwrap_or_default()
    )]
    AlreadyExists {
        /// The file that exists.
        path: PathBuf,
    },
    /// A CA file exists but is unusable.
    #[error("{path}: {problem}\n  fix: {fix}", path = path.display())]
    Invalid {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What the user should do.
        fix: String,
    },
    /// Reading or writing a CA file failed.
    #[error("cannot {action} {path}: {error}{hint}", path = path.display(), hint = io_hint(error))]
    Io {
        /// What we were doing ("read", "write", ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error (shown in the message, so not chained as a source).
        error: std::io::Error,
    },
    /// Key generation or signing failed inside rcgen/rustls.
    #[error("{what}: {reason}")]
    Crypto {
        /// What we were doing.
        what: &'static str,
        /// The library's message.
        reason: String,
    },
    /// A leaf cannot be issued for this host name.
    #[error("cannot issue a certificate for host {host:?}: {reason}")]
    BadHost {
        /// The host as received.
        host: String,
        /// Why it was refused.
        reason: String,
    },
}

fn io_hint(err: &std::io::Error) -> &'static str {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "\n  fix: run as the user that owns the CA directory, or fix its permissions"
        }
        _ => "",
    }
}

impl CaError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        error: std::io::Error,
    ) -> Self {
        CaError::Io {
            action,
            path: path.into(),
            error,
        }
    }

    pub(crate) fn crypto(what: &'static str, err: impl std::fmt::Display) -> Self {
        CaError::Crypto {
            what,
            reason: err.to_string(),
        }
    }
}
