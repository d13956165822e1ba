//! NSS databases (Chromium, Electron apps and the Discord desktop client on Linux, and Firefox),
//! changed through NSS's `certutil`.
use std::path::{Path, PathBuf};

use super::{
    find_program, missing_program_fix, run_program, Operation, Plan, Presence, ProgramRun, Step,
    StoreEnv, StoreError, StoreKind,
};
use crate::ca::{CaCertificate, CaFiles};

/// Trust flags: a CA trusted to issue TLS server certificates.
const TRUST_FLAGS: &str = "C,,";

/// One NSS certificate database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NssDb {
    /// Its directory.
    pub dir: PathBuf,
    /// Who uses it ("Chromium, Electron apps, Discord desktop", "Firefox profile x").
    pub used_by: String,
    /// Whether it holds a database yet (cert9.db or cert8.db).
    pub exists: bool,
    /// `sql:` (cert9.db) or `dbm:` (legacy cert8.db).
    pub scheme: &'static str,
}

impl NssDb {
    fn at(dir: PathBuf, used_by: String) -> Self {
        let (exists, scheme) = if dir.join("cert9.db").is_file() {
            (true, "sql:")
        } else if dir.join("cert8.db").is_file() {
            (true, "dbm:")
        } else {
            (false, "sql:")
        };
        NssDb {
            dir,
            used_by,
            exists,
            scheme,
        }
    }

    /// The `-d` argument for certutil.
    pub fn db_arg(&self) -> String {
        format!("{}{}", self.scheme, self.dir.display())
    }

    /// "NSS database /home/u/.pki/nssdb (Chromium, ...)".
    pub fn name(&self) -> String {
        format!("NSS database {} ({})", self.dir.display(), self.used_by)
    }

    pub(crate) fn plan(
        &self,
        op: Operation,
        _env: &StoreEnv,
        ca: &CaCertificate,
        files: &CaFiles,
    ) -> Result<Plan, StoreError> {
        let nickname = ca.common_name().to_string();
        let mut plan = Plan::default();
        if find_program("certutil").is_none() {
            plan.notes.push(format!(
                "certutil is not installed: {}",
                missing_program_fix("certutil")
            ));
        }
        match op {
            Operation::Install => {
                if !self.exists {
                    plan.notes.push("no database yet: creating an empty one (what Chromium does on first start)".into());
                    if !self.dir.is_dir() {
                        plan.steps.push(Step::CreateDir(self.dir.clone()));
                    }
                    plan.steps.push(Step::Run(ProgramRun::new(
                        "certutil",
                        [
                            "-N".to_string(),
                            "-d".into(),
                            self.db_arg(),
                            "--empty-password".into(),
                        ],
                    )));
                }
                plan.steps.push(Step::Run(ProgramRun::new(
                    "certutil",
                    [
                        "-A".to_string(),
                        "-d".into(),
                        self.db_arg(),
                        "-t".into(),
                        TRUST_FLAGS.into(),
                        "-n".into(),
                        nickname,
                        "-i".into(),
                        files.cert_pem.to_string_lossy().into_owned(),
                    ],
                )));
            }
            Operation::Uninstall => {
                let delete = ProgramRun::new(
                    "certutil",
                    [
                        "-D".to_string(),
                        "-d".into(),
                        self.db_arg(),
                        "-n".into(),
                        nickname,
                    ],
                );
                match self.stored_der(ca) {
                    Ok(Some(_)) => plan.steps.push(Step::Run(delete)),
                    Ok(None) => plan
                        .notes
                        .push("not installed here; nothing to remove".into()),
                    Err(_) => {
                        // Unknown state (e.g. no certutil): show the command a real run would try.
                        plan.steps.push(Step::Run(delete));
                    }
                }
            }
        }
        if find_program("certutil").is_none() {
            // A dry run still prints the plan; a real run must stop here with the package to install.
            plan.notes
                .push("a real run fails until certutil is installed".into());
        }
        Ok(plan)
    }

    /// The DER of the certificate stored under our nickname, if any.
    fn stored_der(&self, ca: &CaCertificate) -> Result<Option<Vec<u8>>, String> {
        if !self.exists {
            return Ok(None);
        }
        let run = ProgramRun::new(
            "certutil",
            [
                "-L".to_string(),
                "-d".into(),
                self.db_arg(),
                "-n".into(),
                ca.common_name().into(),
                "-r".into(),
            ],
        );
        let output = run_program(&run)?;
        Ok(output.success.then_some(output.stdout))
    }

    /// The trust flags on our nickname (e.g. "C,,"), read from `certutil -L`.
    pub fn trust_flags(&self, ca: &CaCertificate) -> Result<Option<String>, String> {
        let run = ProgramRun::new("certutil", ["-L".to_string(), "-d".into(), self.db_arg()]);
        let output = run_program(&run)?;
        if !output.success {
            return Err(format!("`{run}` failed: {}", output.stderr.trim()));
        }
        let listing = String::from_utf8_lossy(&output.stdout);
        Ok(listing.lines().find_map(|line| {
            let rest = line.strip_prefix(ca.common_name())?;
            let flags = rest.trim();
            (rest.starts_with(' ') && !flags.contains(' ')).then(|| flags.to_string())
        }))
    }

    pub(crate) fn status(&self, env: &StoreEnv, ca: &CaCertificate) -> Presence {
        if !self.exists {
            return Presence::Absent;
        }
        match self.stored_der(ca) {
            Err(problem) => Presence::Unknown(format!("{problem}; {}", missing_program_fix("certutil"))),
            Ok(None) => Presence::Absent,
            Ok(Some(der)) if der != ca.der().as_ref() => Presence::Partial(format!(
                "a different certificate is stored under the nickname {:?}",
                ca.common_name()
            )),
            Ok(Some(_)) => match self.trust_flags(ca) {
                Ok(Some(flags)) if flags.split(',').next().is_some_and(|ssl| ssl.contains('C')) => {
                    Presence::Installed(format!("trust {flags}"))
                }
                Ok(Some(flags)) => Presence::Partial(format!(
                    "present but not trusted for TLS servers (trust {flags}); run `discord-mitm ca install --store nss{}`",
                    env.ca_flag
                )),
                Ok(None) => Presence::Partial("present but its trust flags could not be read".into()),
                Err(problem) => Presence::Unknown(problem),
            },
        }
    }
}

/// NSS databases of one kind, and where we looked.
#[derive(Debug, Default)]
pub struct Found {
    /// Databases to act on.
    pub dbs: Vec<NssDb>,
    /// Places that were searched.
    pub looked_in: Vec<PathBuf>,
}

impl Found {
    pub(crate) fn none_reason(&self, kind: StoreKind) -> String {
        let places = self
            .looked_in
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        match kind {
            StoreKind::Firefox => format!("no Firefox profile found (looked in {places})"),
            _ => format!("no NSS database found (looked in {places})"),
        }
    }

    pub(crate) fn none_error(&self, kind: StoreKind) -> StoreError {
        if kind == StoreKind::Nss && find_program("certutil").is_none() {
            return StoreError {
                store: group_name(kind).into(),
                problem: format!(
                    "{}, and certutil (needed to create one) is not installed",
                    self.none_reason(kind)
                ),
                fix: missing_program_fix("certutil"),
            };
        }
        StoreError {
            store: group_name(kind).into(),
            problem: self.none_reason(kind),
            fix: match kind {
                StoreKind::Firefox => "start Firefox once so it creates its profile, then run this again".into(),
                _ => "start Chromium (or the Discord client) once so it creates ~/.pki/nssdb, then run this again; \
                      or check that HOME points at your home directory"
                    .into(),
            },
        }
    }
}

/// The group name used when nothing of a kind is found.
pub(crate) fn group_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Firefox => "Firefox",
        _ => "NSS databases",
    }
}

/// Finds the NSS databases of a kind (`Nss`: Chromium/Electron ones; `Firefox`: every profile).
///
/// For installing, `~/.pki/nssdb` is included even before it exists (it is created), provided
/// certutil is there to create it.
pub fn databases(env: &StoreEnv, kind: StoreKind, for_install: bool) -> Found {
    let mut found = Found::default();
    let home = env.home.clone();
    if kind == StoreKind::Firefox {
        let Some(home) = home else { return found };
        for root in [
            ".mozilla/firefox",
            "snap/firefox/common/.mozilla/firefox",
            ".var/app/org.mozilla.firefox/.mozilla/firefox",
            ".config/mozilla/firefox",
        ] {
            let root = home.join(root);
            found.looked_in.push(root.clone());
            for profile in firefox_profiles(&root) {
                let db = NssDb::at(
                    profile.clone(),
                    format!("Firefox profile {}", profile_label(&root, &profile)),
                );
                if db.exists && !found.dbs.iter().any(|d: &NssDb| d.dir == db.dir) {
                    found.dbs.push(db);
                }
            }
        }
        return found;
    }
    if let Some(home) = &home {
        let main = home.join(".pki/nssdb");
        found.looked_in.push(main.clone());
        let db = NssDb::at(main, "Chromium, Electron apps, Discord desktop".into());
        if db.exists || (for_install && find_program("certutil").is_some()) {
            found.dbs.push(db);
        }
        let snap = home.join("snap/chromium/current/.pki/nssdb");
        found.looked_in.push(snap.clone());
        let db = NssDb::at(snap, "snap Chromium".into());
        if db.exists {
            found.dbs.push(db);
        }
    }
    let system = env.system_path("/etc/pki/nssdb");
    found.looked_in.push(system.clone());
    let db = NssDb::at(system, "system-wide NSS".into());
    if db.exists {
        found.dbs.push(db);
    }
    found
}

fn profile_label(root: &Path, profile: &Path) -> String {
    profile
        .strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| profile.display().to_string())
}

/// Profile directories listed in `<root>/profiles.ini`, plus any directory there holding a cert DB.
pub fn firefox_profiles(root: &Path) -> Vec<PathBuf> {
    let mut profiles = Vec::new();
    if let Ok(ini) = std::fs::read_to_string(root.join("profiles.ini")) {
        profiles.extend(
            parse_profiles_ini(&ini)
                .into_iter()
                .map(|(path, relative)| {
                    if relative {
                        root.join(path)
                    } else {
                        PathBuf::from(path)
                    }
                }),
        );
    }
    if let Ok(entries) = std::fs::read_dir(root) {
        let mut extra: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("cert9.db").is_file() || p.join("cert8.db").is_file())
            .filter(|p| !profiles.contains(p))
            .collect();
        extra.sort();
        profiles.extend(extra);
    }
    profiles
}

/// `(Path, IsRelative)` of each `[Profile*]` section.
fn parse_profiles_ini(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut in_profile = false;
    let mut path: Option<String> = None;
    let mut relative = true;
    let mut flush = |path: &mut Option<String>, relative: &mut bool| {
        if let Some(p) = path.take() {
            out.push((p, *relative));
        }
        *relative = true;
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            flush(&mut path, &mut relative);
            in_profile = line.starts_with("[Profile");
        } else if in_profile {
            if let Some((key, value)) = line.split_once('=') {
                match key.trim() {
                    "Path" => path = Some(value.trim().to_string()),
                    "IsRelative" => relative = value.trim() != "0",
                    _ => {}
                }
            }
        }
    }
    flush(&mut path, &mut relative);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_ini_sections() {
        let ini = "[Install4F96D1932A9F858E]\nDefault=abc.default-release\n\n[Profile1]\nName=default\nIsRelative=1\nPath=xyz.default\n\n[Profile0]\nName=work\nIsRelative=0\nPath=/srv/ff/work\n\n[General]\nVersion=2\n";
        assert_eq!(
            parse_profiles_ini(ini),
            vec![
                ("xyz.default".to_string(), true),
                ("/srv/ff/work".to_string(), false)
            ]
        );
    }
}
