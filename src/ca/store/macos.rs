//! The macOS System keychain, through `security`.
use super::{run_program, HostOs, Operation, Plan, Presence, ProgramRun, Step, StoreEnv};
use crate::ca::{CaCertificate, CaFiles};

/// The store's display name.
pub const NAME: &str = "macOS System keychain";
/// The keychain admin trust settings are written for.
pub const KEYCHAIN: &str = "/Library/Keychains/System.keychain";

/// `security add-trusted-cert` to install; `remove-trusted-cert` plus `delete-certificate` to remove
/// both the trust setting and the certificate itself.
pub(crate) fn plan(op: Operation, ca: &CaCertificate, files: &CaFiles) -> Plan {
    let pem = files.cert_pem.to_string_lossy().into_owned();
    let steps = match op {
        Operation::Install => vec![ProgramRun::new(
            "security",
            [
                "add-trusted-cert",
                "-d",
                "-r",
                "trustRoot",
                "-k",
                KEYCHAIN,
                &pem,
            ],
        )],
        Operation::Uninstall => vec![
            ProgramRun::new("security", ["remove-trusted-cert", "-d", &pem]),
            ProgramRun::new(
                "security",
                ["delete-certificate", "-Z", &ca.sha1_thumbprint(), KEYCHAIN],
            ),
        ],
    };
    Plan {
        steps: steps.into_iter().map(Step::Run).collect(),
        notes: vec!["needs an administrator: run with sudo".into()],
    }
}

pub(crate) fn status(env: &StoreEnv, ca: &CaCertificate) -> Presence {
    if env.os != HostOs::Macos {
        return Presence::Unknown("only checkable on macOS".into());
    }
    let run = ProgramRun::new("security", ["find-certificate", "-a", "-Z", KEYCHAIN]);
    match run_program(&run) {
        Ok(out) if out.success => {
            let listing = String::from_utf8_lossy(&out.stdout).to_ascii_uppercase();
            if listing.contains(&ca.sha1_thumbprint()) {
                Presence::Installed(KEYCHAIN.into())
            } else {
                Presence::Absent
            }
        }
        Ok(out) => Presence::Unknown(format!("`{run}` failed: {}", out.stderr.trim())),
        Err(problem) => Presence::Unknown(problem),
    }
}
