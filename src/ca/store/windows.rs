//! The Windows "Trusted Root Certification Authorities" store, through Windows' `certutil`.
use super::{run_program, HostOs, Operation, Plan, Presence, ProgramRun, Step, StoreEnv};
use crate::ca::{CaCertificate, CaFiles};

/// The store's display name.
pub const NAME: &str = "Windows Trusted Root Certification Authorities (machine)";

/// `certutil -addstore -f Root <cer>` to install, `certutil -delstore Root <serial>` to remove.
pub(crate) fn plan(op: Operation, ca: &CaCertificate, files: &CaFiles) -> Plan {
    let cer = files.cert_der.to_string_lossy().into_owned();
    let run = match op {
        Operation::Install => ProgramRun::new("certutil", ["-addstore", "-f", "Root", &cer]),
        Operation::Uninstall => ProgramRun::new("certutil", ["-delstore", "Root", ca.serial_hex()]),
    };
    Plan {
        steps: vec![Step::Run(run)],
        notes: vec!["needs an elevated (Run as administrator) prompt".into()],
    }
}

pub(crate) fn status(env: &StoreEnv, ca: &CaCertificate) -> Presence {
    if env.os != HostOs::Windows {
        return Presence::Unknown("only checkable on Windows".into());
    }
    let run = ProgramRun::new("certutil", ["-store", "Root", ca.serial_hex()]);
    match run_program(&run) {
        Ok(out) if out.success => Presence::Installed("Root".into()),
        Ok(_) => Presence::Absent,
        Err(problem) => Presence::Unknown(problem),
    }
}
