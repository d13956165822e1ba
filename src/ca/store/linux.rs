//! The Linux system trust store, in its distribution-specific flavours.
use std::path::PathBuf;

use super::{
    bundle_certificates, find_program, Operation, Outcome, Plan, Presence, ProgramRun, Step,
    StoreEnv, StoreError,
};
use crate::ca::CaCertificate;

/// How a distribution manages its system store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Debian, Ubuntu and derivatives: `/usr/local/share/ca-certificates` + `update-ca-certificates`.
    Debian,
    /// Fedora, RHEL, CentOS: `/etc/pki/ca-trust/source/anchors` + `update-ca-trust`.
    Fedora,
    /// Arch and derivatives: `/etc/ca-certificates/trust-source/anchors` + `trust extract-compat`.
    Arch,
    /// openSUSE/SLES: `/etc/pki/trust/anchors` + `update-ca-certificates`.
    Suse,
}

impl Flavor {
    fn label(self) -> &'static str {
        match self {
            Flavor::Debian => "Debian/Ubuntu: update-ca-certificates",
            Flavor::Fedora => "Fedora/RHEL: update-ca-trust",
            Flavor::Arch => "Arch: trust",
            Flavor::Suse => "openSUSE: update-ca-certificates",
        }
    }

    fn anchor_dir(self) -> &'static str {
        match self {
            Flavor::Debian => "/usr/local/share/ca-certificates",
            Flavor::Fedora => "/etc/pki/ca-trust/source/anchors",
            Flavor::Arch => "/etc/ca-certificates/trust-source/anchors",
            Flavor::Suse => "/etc/pki/trust/anchors",
        }
    }

    fn anchor_extension(self) -> &'static str {
        // update-ca-certificates on Debian only picks up `*.crt`.
        match self {
            Flavor::Debian | Flavor::Arch => "crt",
            Flavor::Fedora | Flavor::Suse => "pem",
        }
    }

    /// The PEM bundles TLS clients on this flavour read.
    fn bundles(self) -> &'static [&'static str] {
        match self {
            Flavor::Debian | Flavor::Arch => &["/etc/ssl/certs/ca-certificates.crt"],
            Flavor::Fedora => &[
                "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                "/etc/pki/tls/certs/ca-bundle.crt",
            ],
            Flavor::Suse => &["/etc/ssl/ca-bundle.pem"],
        }
    }

    fn refresh_program(self) -> &'static str {
        match self {
            Flavor::Debian | Flavor::Suse => "update-ca-certificates",
            Flavor::Fedora => "update-ca-trust",
            Flavor::Arch => "trust",
        }
    }

    /// Picks the flavour from os-release `ID` / `ID_LIKE`.
    pub fn from_os_release(text: &str) -> Option<Self> {
        let mut ids = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key.trim() == "ID" || key.trim() == "ID_LIKE" {
                let value = value.trim().trim_matches('"').trim_matches('\'');
                ids.extend(value.split_whitespace().map(str::to_ascii_lowercase));
            }
        }
        ids.iter().find_map(|id| match id.as_str() {
            "debian" | "ubuntu" | "linuxmint" | "pop" | "raspbian" | "kali" | "elementary" => {
                Some(Flavor::Debian)
            }
            "fedora" | "rhel" | "centos" | "rocky" | "almalinux" | "ol" | "amzn" => {
                Some(Flavor::Fedora)
            }
            "arch" | "archlinux" | "manjaro" | "endeavouros" | "garuda" => Some(Flavor::Arch),
            id if id.starts_with("opensuse") || id == "suse" || id == "sles" => Some(Flavor::Suse),
            _ => None,
        })
    }
}

/// The system store of this machine (or of a system root prefix in tests).
#[derive(Debug, Clone)]
pub struct SystemStore {
    /// The flavour.
    pub flavor: Flavor,
    /// Where our anchor file goes.
    pub anchor: PathBuf,
    /// Bundles that clients read, under the system root.
    pub bundles: Vec<PathBuf>,
    /// The system root prefix ("/" normally).
    pub root: PathBuf,
    prefixed: bool,
}

impl SystemStore {
    /// Detects the flavour from `<root>/etc/os-release` (falling back to which tool is installed).
    pub fn detect(env: &StoreEnv, ca: &CaCertificate) -> Result<Self, (String, Outcome)> {
        let name = "system store".to_string();
        let os_release = std::fs::read_to_string(env.system_path("/etc/os-release"))
            .or_else(|_| std::fs::read_to_string(env.system_path("/usr/lib/os-release")))
            .unwrap_or_default();
        let flavor = Flavor::from_os_release(&os_release).or_else(|| {
            if env.has_system_prefix() {
                return None;
            }
            if find_program("update-ca-trust").is_some() {
                Some(Flavor::Fedora)
            } else if find_program("trust").is_some()
                && find_program("update-ca-certificates").is_none()
            {
                Some(Flavor::Arch)
            } else if find_program("update-ca-certificates").is_some() {
                Some(Flavor::Debian)
            } else {
                None
            }
        });
        let Some(flavor) = flavor else {
            let id = os_release
                .lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .unwrap_or("an unknown system")
                .trim_matches('"')
                .to_string();
            return Err((
                name.clone(),
                Outcome::Failed(StoreError {
                    store: name,
                    problem: format!("don't know how {id} manages its trust store"),
                    fix: "add the certificate (discord-mitm-ca.pem) to your distribution's trust anchors by hand, \
                          or use --store nss / firefox"
                        .into(),
                }),
            ));
        };
        let file = format!(
            "discord-mitm-{}.{}",
            ca.short_id(),
            flavor.anchor_extension()
        );
        Ok(SystemStore {
            flavor,
            anchor: env.system_path(flavor.anchor_dir()).join(file),
            bundles: flavor
                .bundles()
                .iter()
                .map(|b| env.system_path(b))
                .collect(),
            root: env.system_root.clone(),
            prefixed: env.has_system_prefix(),
        })
    }

    /// "system store (Debian/Ubuntu: update-ca-certificates)".
    pub fn name(&self) -> String {
        if self.prefixed {
            format!(
                "system store ({}; root {})",
                self.flavor.label(),
                self.root.display()
            )
        } else {
            format!("system store ({})", self.flavor.label())
        }
    }

    fn refresh(&self, op: Operation) -> ProgramRun {
        match self.flavor {
            Flavor::Debian => {
                let mut args: Vec<String> = Vec::new();
                if op == Operation::Uninstall {
                    // --fresh also drops the now-dangling symlink in /etc/ssl/certs.
                    args.push("--fresh".into());
                }
                if self.prefixed {
                    let p = |path: &str| {
                        self.root
                            .join(path.trim_start_matches('/'))
                            .to_string_lossy()
                            .into_owned()
                    };
                    for (flag, path) in [
                        ("--certsconf", "/etc/ca-certificates.conf"),
                        ("--certsdir", "/usr/share/ca-certificates"),
                        ("--localcertsdir", "/usr/local/share/ca-certificates"),
                        ("--etccertsdir", "/etc/ssl/certs"),
                        ("--hooksdir", "/etc/ca-certificates/update.d"),
                    ] {
                        args.push(flag.into());
                        args.push(p(path));
                    }
                }
                ProgramRun::new("update-ca-certificates", args)
            }
            Flavor::Suse => ProgramRun::new("update-ca-certificates", Vec::<String>::new()),
            Flavor::Fedora => ProgramRun::new("update-ca-trust", ["extract"]),
            Flavor::Arch => ProgramRun::new("trust", ["extract-compat"]),
        }
    }

    pub(crate) fn plan(&self, op: Operation, _env: &StoreEnv, ca: &CaCertificate) -> Plan {
        let mut plan = Plan::default();
        if self.prefixed && self.flavor != Flavor::Debian {
            plan.notes.push(format!(
                "{} cannot be pointed at {}; a real run would change this machine's store",
                self.flavor.refresh_program(),
                self.root.display()
            ));
        }
        match op {
            Operation::Install => {
                if let Some(dir) = self.anchor.parent() {
                    if !dir.is_dir() {
                        plan.steps.push(Step::CreateDir(dir.to_path_buf()));
                    }
                }
                plan.steps.push(Step::WriteFile {
                    path: self.anchor.clone(),
                    contents: ca.pem().as_bytes().to_vec(),
                    mode: 0o644,
                    what: "the CA certificate, PEM".into(),
                });
            }
            Operation::Uninstall => {
                if !self.anchor.exists() {
                    plan.notes.push(format!(
                        "{} is not there; the store is refreshed anyway",
                        self.anchor.display()
                    ));
                }
                plan.steps.push(Step::RemoveFile(self.anchor.clone()));
            }
        }
        plan.steps.push(Step::Run(self.refresh(op)));
        plan
    }

    pub(crate) fn status(&self, ca: &CaCertificate) -> Presence {
        let anchor = self.anchor.exists();
        let bundle = self.bundles.iter().find(|b| b.exists());
        let in_bundle = bundle
            .and_then(|b| bundle_certificates(b).ok())
            .is_some_and(|certs| certs.iter().any(|c| c.as_slice() == ca.der().as_ref()));
        match (anchor, in_bundle, bundle) {
            (true, true, Some(b)) => {
                Presence::Installed(format!("{} and {}", self.anchor.display(), b.display()))
            }
            (false, true, Some(b)) => {
                Presence::Installed(format!("in {}, added by other means", b.display()))
            }
            (true, false, _) => Presence::Partial(format!(
                "{} exists but the bundle does not contain it; run `{}`",
                self.anchor.display(),
                self.refresh(Operation::Install)
            )),
            (false, false, Some(_)) => Presence::Absent,
            (false, _, None) => Presence::Unknown(format!(
                "no CA bundle found ({})",
                self.bundles
                    .iter()
                    .map(|b| b.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            (true, true, None) => Presence::Absent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_from_os_release() {
        let cases = [
            ("ID=debian\n", Flavor::Debian),
            ("ID=ubuntu\nID_LIKE=debian\n", Flavor::Debian),
            (
                "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n",
                Flavor::Fedora,
            ),
            ("ID=fedora\n", Flavor::Fedora),
            ("ID=arch\n", Flavor::Arch),
            ("ID=endeavouros\nID_LIKE=arch\n", Flavor::Arch),
            (
                "ID=\"opensuse-tumbleweed\"\nID_LIKE=\"opensuse suse\"\n",
                Flavor::Suse,
            ),
        ];
        for (text, flavor) in cases {
            assert_eq!(Flavor::from_os_release(text), Some(flavor), "{text}");
        }
        assert_eq!(Flavor::from_os_release("ID=plan9\n"), None);
    }
}
