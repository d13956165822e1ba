//! Trust stores: where the CA gets installed, how (a plan of exact steps), whether it is there,
//! and ([`verify`]) whether a client trusting each store accepts our leaves.
//!
//! Every operation is first a [`Plan`] — files to write or remove and commands to run — so
//! `--dry-run` prints exactly what a real run does.
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::root::{format_time, key_permission_warning, write_atomically};
use super::{CaCertificate, CaError, CaFiles};

pub mod linux;
pub mod macos;
pub mod nss;
pub mod verify;
pub mod windows;

/// Which stores a command acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreChoice {
    /// The operating system's store (Linux: chosen from /etc/os-release).
    System,
    /// NSS databases used by Chromium, Electron apps and the Discord desktop client on Linux.
    Nss,
    /// Every Firefox profile (including snap and flatpak installs).
    Firefox,
    /// The macOS System keychain.
    Macos,
    /// The Windows "Trusted Root Certification Authorities" store.
    Windows,
    /// Every store that applies to this OS.
    All,
}

/// What kind of store a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A Linux system store.
    System,
    /// An NSS database (Chromium, Electron).
    Nss,
    /// A Firefox profile's NSS database.
    Firefox,
    /// The macOS keychain.
    Macos,
    /// The Windows root store.
    Windows,
}

/// The operating system this binary runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOs {
    /// Linux.
    Linux,
    /// macOS.
    Macos,
    /// Windows.
    Windows,
    /// Anything else.
    Other,
}

impl HostOs {
    /// The OS this binary was built for.
    pub fn current() -> Self {
        if cfg!(target_os = "linux") {
            HostOs::Linux
        } else if cfg!(target_os = "macos") {
            HostOs::Macos
        } else if cfg!(windows) {
            HostOs::Windows
        } else {
            HostOs::Other
        }
    }
}

impl fmt::Display for HostOs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostOs::Linux => "Linux",
            HostOs::Macos => "macOS",
            HostOs::Windows => "Windows",
            HostOs::Other => "another OS",
        })
    }
}

/// Where stores are looked for; overridable so tests can use temporary directories.
#[derive(Debug, Clone)]
pub struct StoreEnv {
    /// Prefix for system paths (`/etc/os-release`, the anchor directories, `/etc/pki/nssdb`); `/` normally.
    pub system_root: PathBuf,
    /// The user's home (NSS and Firefox databases live under it).
    pub home: Option<PathBuf>,
    /// The OS we run on.
    pub os: HostOs,
    /// The CA directory as given on the command line (used in suggested commands).
    pub ca_dir_arg: PathBuf,
    /// ` --ca-dir DIR` as given (empty for the default `ca`), for suggested commands that run
    /// where the user is.
    pub ca_flag: String,
    /// The invoking user when running as root through sudo (their NSS databases must not be
    /// touched by root, or Chromium can no longer open them).
    pub sudo_user: Option<String>,
}

impl StoreEnv {
    /// The real machine: `/`, `$HOME`, this OS.
    pub fn from_process(system_root: Option<PathBuf>, ca_dir_arg: &Path) -> Self {
        StoreEnv {
            system_root: system_root.unwrap_or_else(|| PathBuf::from("/")),
            home: std::env::var_os("HOME")
                .or_else(|| std::env::var_os("USERPROFILE"))
                .map(PathBuf::from),
            os: HostOs::current(),
            ca_dir_arg: std::path::absolute(ca_dir_arg).unwrap_or_else(|_| ca_dir_arg.into()),
            ca_flag: crate::ca::ca_dir_flag(ca_dir_arg),
            sudo_user: std::env::var("SUDO_USER")
                .ok()
                .filter(|user| !user.is_empty() && user != "root" && is_root()),
        }
    }

    /// `path` (absolute, e.g. `/etc/os-release`) under the system root.
    pub fn system_path(&self, path: &str) -> PathBuf {
        self.system_root.join(path.trim_start_matches('/'))
    }

    /// Whether system paths are redirected into a prefix.
    pub fn has_system_prefix(&self) -> bool {
        self.system_root != Path::new("/")
    }

    fn sudo_hint(&self, args: &str) -> String {
        format!(
            "needs root: run `sudo discord-mitm ca {args} --ca-dir {}`",
            shell_quote(&self.ca_dir_arg.to_string_lossy())
        )
    }
}

/// One store the CA can be installed in.
#[derive(Debug, Clone)]
pub struct Target {
    /// What kind of store it is.
    pub kind: StoreKind,
    /// Human-readable name, e.g. "NSS database /home/u/.pki/nssdb (Chromium, Electron apps, Discord)".
    pub name: String,
    detail: TargetDetail,
}

#[derive(Debug, Clone)]
enum TargetDetail {
    System(linux::SystemStore),
    Nss(nss::NssDb),
    Macos,
    Windows,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create a directory (and its parents).
    CreateDir(PathBuf),
    /// Write a file (atomically) with the given mode.
    WriteFile {
        /// Destination.
        path: PathBuf,
        /// Contents.
        contents: Vec<u8>,
        /// Unix permission bits.
        mode: u32,
        /// What the contents are, for the printout.
        what: String,
    },
    /// Remove a file.
    RemoveFile(PathBuf),
    /// Run a program.
    Run(ProgramRun),
}

/// A command line to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramRun {
    /// Program name as looked up on PATH.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
}

impl ProgramRun {
    /// A program with arguments.
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ProgramRun {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

impl fmt::Display for ProgramRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", shell_quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CreateDir(path) => write!(f, "mkdir  {}", path.display()),
            Step::WriteFile {
                path, mode, what, ..
            } => write!(f, "write  {} (mode {mode:04o}, {what})", path.display()),
            Step::RemoveFile(path) => write!(f, "remove {}", path.display()),
            Step::Run(run) => write!(f, "run    {run}"),
        }
    }
}

/// The exact steps for one store.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Remarks shown with the plan (e.g. "already installed").
    pub notes: Vec<String>,
}

/// A failure in one store, naming the store and the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{store}: {problem}\n  fix: {fix}")]
pub struct StoreError {
    /// The store's name.
    pub store: String,
    /// What went wrong.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

/// Install or uninstall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Add the CA and trust it.
    Install,
    /// Remove the CA.
    Uninstall,
}

impl Operation {
    fn verb(self) -> &'static str {
        match self {
            Operation::Install => "install",
            Operation::Uninstall => "uninstall",
        }
    }
}

/// What happened in one store.
#[derive(Debug)]
pub enum Outcome {
    /// Dry run: the plan that would run.
    Planned(Plan),
    /// The plan ran.
    Done(Plan),
    /// The store already was as asked (installed for install, absent for uninstall): nothing ran.
    Unchanged,
    /// Nothing to do here (e.g. no Firefox profile), with the reason.
    Skipped(String),
    /// It failed.
    Failed(StoreError),
}

/// The result of `ca install` / `ca uninstall`.
#[derive(Debug)]
pub struct StoreReport {
    /// Install or uninstall.
    pub operation: Operation,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The CA concerned.
    pub ca_name: String,
    /// Per store: its name and outcome.
    pub results: Vec<(String, Outcome)>,
}

impl StoreReport {
    /// Number of stores that failed.
    pub fn failures(&self) -> usize {
        self.results
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
            .count()
    }
}

impl fmt::Display for StoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            writeln!(
                f,
                "dry run: nothing is changed; a real `ca {}` of {} runs exactly these steps:",
                self.operation.verb(),
                self.ca_name
            )?;
        }
        for (name, outcome) in &self.results {
            writeln!(f, "{name}")?;
            match outcome {
                Outcome::Planned(plan) | Outcome::Done(plan) => {
                    for note in &plan.notes {
                        writeln!(f, "  note: {note}")?;
                    }
                    for step in &plan.steps {
                        writeln!(f, "  {step}")?;
                    }
                    if matches!(outcome, Outcome::Done(_)) {
                        let what = match self.operation {
                            Operation::Install => "installed",
                            Operation::Uninstall => "removed",
                        };
                        writeln!(f, "  ok: {what}")?;
                    }
                }
                Outcome::Unchanged => match self.operation {
                    Operation::Install => writeln!(f, "  ok: already present (nothing changed)")?,
                    Operation::Uninstall => writeln!(f, "  ok: not present (nothing to remove)")?,
                },
                Outcome::Skipped(reason) => writeln!(f, "  skipped: {reason}")?,
                Outcome::Failed(err) => {
                    writeln!(f, "  FAILED: {}", err.problem)?;
                    writeln!(f, "  fix: {}", err.fix)?;
                }
            }
        }
        Ok(())
    }
}

/// Targets for a choice: found stores, plus stores that were looked for and skipped or failed.
pub(crate) fn targets(
    choice: StoreChoice,
    env: &StoreEnv,
    ca: &CaCertificate,
    for_install: bool,
) -> Vec<Result<Target, (String, Outcome)>> {
    let mut out = Vec::new();
    let kinds: Vec<StoreKind> = match choice {
        StoreChoice::System => vec![match env.os {
            HostOs::Macos => StoreKind::Macos,
            HostOs::Windows => StoreKind::Windows,
            HostOs::Linux | HostOs::Other => StoreKind::System,
        }],
        StoreChoice::Nss => vec![StoreKind::Nss],
        StoreChoice::Firefox => vec![StoreKind::Firefox],
        StoreChoice::Macos => vec![StoreKind::Macos],
        StoreChoice::Windows => vec![StoreKind::Windows],
        StoreChoice::All => match env.os {
            HostOs::Linux | HostOs::Other => {
                vec![StoreKind::System, StoreKind::Nss, StoreKind::Firefox]
            }
            HostOs::Macos => vec![StoreKind::Macos, StoreKind::Firefox],
            HostOs::Windows => vec![StoreKind::Windows],
        },
    };
    let explicit = choice != StoreChoice::All;
    for kind in kinds {
        match kind {
            StoreKind::System => {
                out.push(linux::SystemStore::detect(env, ca).map(|store| Target {
                    kind,
                    name: store.name(),
                    detail: TargetDetail::System(store),
                }))
            }
            StoreKind::Nss | StoreKind::Firefox if env.sudo_user.is_some() => {
                let user = env.sudo_user.clone().unwrap_or_default();
                let flag = if kind == StoreKind::Nss {
                    "nss"
                } else {
                    "firefox"
                };
                let problem = format!(
                    "running as root through sudo: {user}'s NSS databases would end up owned by root"
                );
                let fix = format!(
                    "run `discord-mitm ca {} --store {flag} --ca-dir {}` as {user}, without sudo",
                    if for_install { "install" } else { "uninstall" },
                    shell_quote(&env.ca_dir_arg.to_string_lossy())
                );
                let outcome = if explicit {
                    Outcome::Failed(StoreError {
                        store: nss::group_name(kind).into(),
                        problem,
                        fix,
                    })
                } else {
                    Outcome::Skipped(format!("{problem}; {fix}"))
                };
                out.push(Err((nss::group_name(kind).to_string(), outcome)));
            }
            StoreKind::Nss | StoreKind::Firefox => {
                let found = nss::databases(env, kind, for_install);
                if found.dbs.is_empty() {
                    let outcome = if explicit {
                        Outcome::Failed(found.none_error(kind))
                    } else {
                        Outcome::Skipped(found.none_reason(kind))
                    };
                    out.push(Err((nss::group_name(kind).to_string(), outcome)));
                }
                for db in found.dbs {
                    out.push(Ok(Target {
                        kind,
                        name: db.name(),
                        detail: TargetDetail::Nss(db),
                    }));
                }
            }
            StoreKind::Macos => out.push(Ok(Target {
                kind,
                name: macos::NAME.into(),
                detail: TargetDetail::Macos,
            })),
            StoreKind::Windows => out.push(Ok(Target {
                kind,
                name: windows::NAME.into(),
                detail: TargetDetail::Windows,
            })),
        }
    }
    out
}

impl Target {
    /// The steps that would install (or uninstall) the CA here, given the store's current state.
    pub fn plan(
        &self,
        op: Operation,
        env: &StoreEnv,
        ca: &CaCertificate,
        files: &CaFiles,
    ) -> Result<Plan, StoreError> {
        match &self.detail {
            TargetDetail::System(store) => Ok(store.plan(op, env, ca)),
            TargetDetail::Nss(db) => db.plan(op, env, ca, files),
            TargetDetail::Macos => Ok(macos::plan(op, ca, files)),
            TargetDetail::Windows => Ok(windows::plan(op, ca, files)),
        }
    }

    /// Whether the CA is installed here.
    pub fn status(&self, env: &StoreEnv, ca: &CaCertificate) -> Presence {
        match &self.detail {
            TargetDetail::System(store) => store.status(ca),
            TargetDetail::Nss(db) => db.status(env, ca),
            TargetDetail::Macos => macos::status(env, ca),
            TargetDetail::Windows => windows::status(env, ca),
        }
    }

    /// Whether `op` has nothing to do here: the CA is fully installed (install) or not there at
    /// all (uninstall). Stores of another OS are never checked (they fail as before).
    fn already_done(&self, op: Operation, env: &StoreEnv, ca: &CaCertificate) -> bool {
        if self.native_os().is_some_and(|os| os != env.os) {
            return false;
        }
        matches!(
            (op, self.status(env, ca)),
            (Operation::Install, Presence::Installed(_)) | (Operation::Uninstall, Presence::Absent)
        )
    }

    pub(crate) fn detail_system(&self) -> Option<&linux::SystemStore> {
        match &self.detail {
            TargetDetail::System(store) => Some(store),
            _ => None,
        }
    }

    pub(crate) fn detail_nss(&self) -> Option<&nss::NssDb> {
        match &self.detail {
            TargetDetail::Nss(db) => Some(db),
            _ => None,
        }
    }

    fn native_os(&self) -> Option<HostOs> {
        match self.kind {
            StoreKind::System | StoreKind::Nss | StoreKind::Firefox => None,
            StoreKind::Macos => Some(HostOs::Macos),
            StoreKind::Windows => Some(HostOs::Windows),
        }
    }

    fn execute(&self, plan: &Plan, env: &StoreEnv, op: Operation) -> Result<(), StoreError> {
        if let Some(os) = self.native_os() {
            if os != env.os {
                return Err(self.error(
                    format!("this store exists only on {os}; this machine runs {}", env.os),
                    format!(
                        "run `discord-mitm ca {} --store {}` on that machine, or add --dry-run to print the commands",
                        op.verb(),
                        if os == HostOs::Macos { "macos" } else { "windows" }
                    ),
                ));
            }
        }
        for step in &plan.steps {
            self.run_step(step, env, op)?;
        }
        Ok(())
    }

    fn run_step(&self, step: &Step, env: &StoreEnv, op: Operation) -> Result<(), StoreError> {
        let store_flag = match self.kind {
            StoreKind::System => "system",
            StoreKind::Nss => "nss",
            StoreKind::Firefox => "firefox",
            StoreKind::Macos => "macos",
            StoreKind::Windows => "windows",
        };
        let permission_fix = |path: &Path| match self.kind {
            StoreKind::System => env.sudo_hint(&format!("{} --store {store_flag}", op.verb())),
            StoreKind::Macos => "needs administrator rights: run it with sudo".into(),
            StoreKind::Windows => {
                "needs administrator rights: run it from an elevated (Run as administrator) prompt"
                    .into()
            }
            StoreKind::Nss | StoreKind::Firefox => format!(
                "{} is not writable by you: run as the user who owns it{}",
                path.display(),
                if path.starts_with(env.system_path("/etc")) {
                    " (root: use sudo)"
                } else {
                    ""
                }
            ),
        };
        match step {
            Step::CreateDir(path) => std::fs::create_dir_all(path).map_err(|err| {
                let fix = if err.kind() == std::io::ErrorKind::PermissionDenied {
                    permission_fix(path)
                } else {
                    format!("create {} yourself, then retry", path.display())
                };
                self.error(format!("cannot create {}: {err}", path.display()), fix)
            }),
            Step::WriteFile {
                path,
                contents,
                mode,
                ..
            } => write_atomically(path, contents, *mode).map_err(|err| {
                let fix = match &err {
                    CaError::Io { error, .. }
                        if error.kind() == std::io::ErrorKind::PermissionDenied =>
                    {
                        permission_fix(path)
                    }
                    _ => format!("check that {} is writable", path.display()),
                };
                self.error(first_line(&err.to_string()), fix)
            }),
            Step::RemoveFile(path) => match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(err) => {
                    let fix = if err.kind() == std::io::ErrorKind::PermissionDenied {
                        permission_fix(path)
                    } else {
                        format!("remove {} by hand", path.display())
                    };
                    Err(self.error(format!("cannot remove {}: {err}", path.display()), fix))
                }
            },
            Step::Run(run) => {
                let output = run_program(run)
                    .map_err(|problem| self.error(problem, missing_program_fix(&run.program)))?;
                if output.success {
                    return Ok(());
                }
                let detail = output.stderr_tail();
                let looks_like_permissions =
                    detail.to_ascii_lowercase().contains("permission denied")
                        || detail.contains("SEC_ERROR_READ_ONLY")
                        || (!is_root()
                            && matches!(
                                self.kind,
                                StoreKind::System | StoreKind::Macos | StoreKind::Windows
                            ));
                let fix = if looks_like_permissions {
                    let path = self
                        .detail_nss()
                        .map(|db| db.dir.clone())
                        .unwrap_or_else(|| env.system_root.clone());
                    permission_fix(&path)
                } else {
                    format!("run `{run}` by hand to see the whole error")
                };
                Err(self.error(format!("`{run}` failed ({}): {detail}", output.status), fix))
            }
        }
    }

    fn error(&self, problem: impl Into<String>, fix: impl Into<String>) -> StoreError {
        StoreError {
            store: self.name.clone(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Whether the CA is present in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Installed and trusted for TLS servers.
    Installed(String),
    /// Not there.
    Absent,
    /// Partly there (e.g. file copied but bundle not rebuilt), with what is missing.
    Partial(String),
    /// Could not be checked, and why.
    Unknown(String),
    /// The store does not exist on this machine.
    NoStore(String),
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Presence::Installed(how) if how.is_empty() => write!(f, "installed"),
            Presence::Installed(how) => write!(f, "installed ({how})"),
            Presence::Absent => write!(f, "not installed"),
            Presence::Partial(what) => write!(f, "partly installed: {what}"),
            Presence::Unknown(why) => write!(f, "unknown: {why}"),
            Presence::NoStore(why) => write!(f, "not present: {why}"),
        }
    }
}

/// Installs or uninstalls the CA in the chosen stores (`ca install` / `ca uninstall`).
pub fn apply(
    ca_dir: &Path,
    choice: StoreChoice,
    op: Operation,
    dry_run: bool,
    env: &StoreEnv,
) -> Result<StoreReport, CaError> {
    let files = CaFiles::in_dir(ca_dir);
    let ca = CaCertificate::load(&files)?;
    if let Some(warning) = key_permission_warning(&files.key) {
        eprintln!("{warning}");
    }
    let mut results = Vec::new();
    for target in targets(choice, env, &ca, op == Operation::Install) {
        let target = match target {
            Ok(target) => target,
            Err(entry) => {
                results.push(entry);
                continue;
            }
        };
        let outcome = match target.plan(op, env, &ca, &files) {
            Err(err) => Outcome::Failed(err),
            Ok(_) if !dry_run && target.already_done(op, env, &ca) => Outcome::Unchanged,
            Ok(plan) if dry_run => Outcome::Planned(plan),
            Ok(plan) => match target.execute(&plan, env, op) {
                Ok(()) => Outcome::Done(plan),
                Err(err) => Outcome::Failed(err),
            },
        };
        results.push((target.name.clone(), outcome));
    }
    Ok(StoreReport {
        operation: op,
        dry_run,
        ca_name: ca.common_name().to_string(),
        results,
    })
}

/// What `ca show` prints.
#[derive(Debug)]
pub struct ShowReport {
    /// The CA certificate.
    pub certificate: CaCertificate,
    /// Its files.
    pub files: CaFiles,
    /// Set when the key is readable by others, or missing.
    pub key_problem: Option<String>,
    /// Per store: name and whether the CA is there.
    pub stores: Vec<(String, Presence)>,
}

impl fmt::Display for ShowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.certificate;
        writeln!(f, "subject:      {}", c.subject())?;
        writeln!(f, "sha256:       {}", c.sha256_fingerprint())?;
        writeln!(f, "sha1:         {}", c.sha1_thumbprint())?;
        writeln!(f, "serial:       {}", c.serial_hex())?;
        writeln!(f, "valid from:   {}", format_time(c.not_before()))?;
        writeln!(
            f,
            "valid until:  {}{}",
            format_time(c.not_after()),
            if c.is_expired() {
                " (EXPIRED: make a new CA with `ca init --force`)"
            } else {
                ""
            }
        )?;
        writeln!(f, "certificate:  {}", self.files.cert_pem.display())?;
        writeln!(f, "key:          {}", self.files.key.display())?;
        writeln!(
            f,
            "DER copy:     {}{}",
            self.files.cert_der.display(),
            if self.files.cert_der.exists() {
                ""
            } else {
                " (missing)"
            }
        )?;
        if let Some(problem) = &self.key_problem {
            writeln!(f, "{problem}")?;
        }
        writeln!(f, "trust stores:")?;
        for (name, presence) in &self.stores {
            writeln!(f, "  {name}: {presence}")?;
        }
        Ok(())
    }
}

/// Reads the CA and reports, per store, whether it is installed (`ca show`).
pub fn show(ca_dir: &Path, env: &StoreEnv) -> Result<ShowReport, CaError> {
    let files = CaFiles::in_dir(ca_dir);
    let certificate = CaCertificate::load(&files)?;
    let key_problem = if !files.key.exists() {
        Some(format!(
            "warning: the key {} is missing: leaves cannot be issued\n  fix: restore it, or run `discord-mitm ca init --force`",
            files.key.display()
        ))
    } else {
        key_permission_warning(&files.key).map(|w| w.to_string())
    };
    let choice = StoreChoice::All;
    let mut stores = Vec::new();
    for target in targets(choice, env, &certificate, false) {
        match target {
            Ok(target) => {
                let presence = target.status(env, &certificate);
                stores.push((target.name.clone(), presence));
            }
            Err((name, Outcome::Skipped(reason))) => stores.push((name, Presence::NoStore(reason))),
            Err((name, Outcome::Failed(err))) => {
                stores.push((name, Presence::Unknown(err.problem)))
            }
            Err((name, _)) => stores.push((name, Presence::NoStore("not found".into()))),
        }
    }
    // The other OSes' stores are listed so users see every place this CA can go.
    for (kind, name) in [
        (HostOs::Macos, macos::NAME),
        (HostOs::Windows, windows::NAME),
    ] {
        if env.os != kind {
            stores.push((
                name.to_string(),
                Presence::NoStore(format!("not on this machine (use `ca install --store {} --dry-run` to see the commands)", if kind == HostOs::Macos { "macos" } else { "windows" })),
            ));
        }
    }
    Ok(ShowReport {
        certificate,
        files,
        key_problem,
        stores,
    })
}

/// Output of a finished program.
pub(crate) struct ProgramOutput {
    pub success: bool,
    pub status: String,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl ProgramOutput {
    fn stderr_tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            String::from_utf8_lossy(&self.stdout).into_owned()
        } else {
            self.stderr.clone()
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(3)..].join(" / ")
    }
}

/// Runs a program found on PATH (or the sbin directories), capturing its output.
pub(crate) fn run_program(run: &ProgramRun) -> Result<ProgramOutput, String> {
    let path = find_program(&run.program)
        .ok_or_else(|| format!("`{}` was not found on PATH", run.program))?;
    tracing::info!("running {run}");
    let output = Command::new(&path)
        .args(run.args.iter().map(OsString::from))
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", path.display()))?;
    tracing::debug!(
        "{} exited with {}: {}{}",
        run.program,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(ProgramOutput {
        success: output.status.success(),
        status: output.status.to_string(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Looks a program up on PATH, then in the sbin directories (often missing from a user's PATH).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let sbin = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    path_dirs
        .into_iter()
        .chain(sbin)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        path.is_file() || path.with_extension("exe").is_file()
    }
}

/// Which package provides a program, for "not found" messages.
pub fn missing_program_fix(program: &str) -> String {
    match program {
        "certutil" | "tstclnt" => {
            "install NSS's tools: `sudo apt install libnss3-tools` (Debian/Ubuntu), \
             `sudo dnf install nss-tools` (Fedora/RHEL), `sudo pacman -S nss` (Arch), \
             `sudo zypper install mozilla-nss-tools` (openSUSE)"
                .into()
        }
        "update-ca-certificates" => {
            "install the ca-certificates package (`sudo apt install ca-certificates`)".into()
        }
        "update-ca-trust" => {
            "install the ca-certificates package (`sudo dnf install ca-certificates`)".into()
        }
        "trust" => "install p11-kit (`sudo pacman -S p11-kit`)".into(),
        "security" => "`security` ships with macOS; run this on a Mac".into(),
        other => format!("install `{other}` or put it on PATH"),
    }
}

pub(crate) fn is_root() -> bool {
    #[cfg(unix)]
    {
        // The crate's one unsafe block: std has no effective-uid query. SAFETY: geteuid has no
        // preconditions and cannot fail.
        #[allow(unsafe_code)]
        let euid = unsafe { libc::geteuid() };
        euid == 0
    }
    #[cfg(not(unix))]
    {
        false
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// Quotes a word for a POSIX shell when it needs it, so printed commands can be pasted.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Reads every certificate (DER) in a PEM bundle; unreadable blocks are skipped.
pub(crate) fn bundle_certificates(path: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path)?;
    let mut reader = bytes.as_slice();
    Ok(rustls_pemfile::certs(&mut reader)
        .filter_map(Result::ok)
        .map(|der| der.to_vec())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_only_quotes_when_needed() {
        assert_eq!(shell_quote("sql:/a/b"), "sql:/a/b");
        assert_eq!(shell_quote("C,,"), "C,,");
        assert_eq!(shell_quote("discord-mitm CA x"), "'discord-mitm CA x'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
