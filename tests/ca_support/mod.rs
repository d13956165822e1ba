//! Helpers for the `ca` integration tests: a temp HOME + CA dir, running the built binary,
//! temporary NSS databases and a temporary Debian-style system store.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A sandbox: temp dir holding `home/`, `ca/` and optionally `root/` (a system root prefix).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub ca_dir: PathBuf,
    pub system_root: Option<PathBuf>,
    pub path_env: Option<String>,
}

/// What a run of the binary printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn fails(self) -> Self {
        assert_ne!(
            self.code, 0,
            "expected failure\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn says(&self, needle: &str) -> &Self {
        assert!(
            self.all().contains(needle),
            "expected output to contain {needle:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let ca_dir = dir.path().join("ca");
        Sandbox {
            home,
            ca_dir,
            dir,
            system_root: None,
            path_env: None,
        }
    }

    /// A sandbox with a CA already made by `ca init`.
    pub fn with_ca() -> Self {
        let sandbox = Self::new();
        sandbox.run(&["ca", "init"]).ok();
        sandbox
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_discord-mitm"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DISCORD_MITM_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", &self.home)
            .env("DISCORD_MITM_CA_DIR", &self.ca_dir)
            .env_remove("RUST_LOG")
            .env_remove("SUDO_USER")
            .args(args);
        if let Some(root) = &self.system_root {
            cmd.env("DISCORD_MITM_SYSTEM_ROOT", root);
        } else {
            // Keep tests away from the machine's real system store unless a test opts in.
            cmd.env(
                "DISCORD_MITM_SYSTEM_ROOT",
                self.dir.path().join("no-system-root"),
            );
        }
        if let Some(path) = &self.path_env {
            cmd.env("PATH", path);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args)
            .output()
            .expect("run discord-mitm")
            .into()
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.ca_dir.join("discord-mitm-ca.pem")
    }

    pub fn ca_key(&self) -> PathBuf {
        self.ca_dir.join("discord-mitm-ca.key")
    }

    pub fn ca_cer(&self) -> PathBuf {
        self.ca_dir.join("discord-mitm-ca.cer")
    }

    /// The CA's subject CN (also its NSS nickname), read with openssl.
    pub fn ca_common_name(&self) -> String {
        let out = tool(
            "openssl",
            &["x509", "-noout", "-subject", "-nameopt", "multiline", "-in"],
            &[self.ca_pem().as_os_str()],
        );
        out.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("commonName")
                    .map(|v| v.trim().trim_start_matches('=').trim().to_string())
            })
            .expect("CN in subject")
    }

    /// Creates an empty NSS database (what Chromium makes on first start) at `dir`.
    pub fn make_nss_db(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let db = format!("sql:{}", dir.display());
        tool("certutil", &["-N", "--empty-password", "-d", &db], &[]);
    }

    /// `certutil -L` listing of a database.
    pub fn nss_listing(&self, dir: &Path) -> String {
        tool(
            "certutil",
            &["-L", "-d", &format!("sql:{}", dir.display())],
            &[],
        )
    }

    /// A Debian-style system store under `root/`: ca-certificates.conf listing one unrelated CA
    /// (so the bundle is never empty), and an initial bundle built by the real update-ca-certificates.
    pub fn make_debian_root(&mut self) -> PathBuf {
        let root = self.dir.path().join("root");
        for dir in [
            "etc/ssl/certs",
            "usr/share/ca-certificates/other",
            "usr/local/share/ca-certificates",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(
            root.join("etc/os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
        )
        .unwrap();
        let other = self.dir.path().join("other-ca");
        let out = self
            .command(&["ca", "init", "--ca-dir", other.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::copy(
            other.join("discord-mitm-ca.pem"),
            root.join("usr/share/ca-certificates/other/other.crt"),
        )
        .unwrap();
        std::fs::write(root.join("etc/ca-certificates.conf"), "other/other.crt\n").unwrap();
        let p = |s: &str| root.join(s).to_string_lossy().into_owned();
        tool(
            "update-ca-certificates",
            &[
                "--certsconf",
                &p("etc/ca-certificates.conf"),
                "--certsdir",
                &p("usr/share/ca-certificates"),
                "--localcertsdir",
                &p("usr/local/share/ca-certificates"),
                "--etccertsdir",
                &p("etc/ssl/certs"),
                "--hooksdir",
                &p("etc/ca-certificates/update.d"),
            ],
            &[],
        );
        self.system_root = Some(root.clone());
        root
    }
}

/// Runs a third-party tool and returns its stdout; panics (with its output) when it fails.
#[track_caller]
pub fn tool(program: &str, args: &[&str], extra: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(find(program))
        .args(args)
        .args(extra)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run {program}: {err} (scripts/setup-test-deps installs it)")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Finds a tool on PATH or in the sbin directories.
pub fn find(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(program))
}

/// Certificates (DER) in a PEM bundle.
pub fn bundle_ders(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut reader = bytes.as_slice();
    rustls_pemfile::certs(&mut reader)
        .map(|c| c.unwrap().to_vec())
        .collect()
}

/// The CA certificate's DER.
pub fn der_of(pem: &Path) -> Vec<u8> {
    bundle_ders(pem).remove(0)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid() == 0
    }
}
