//! `ca verify`: serve a `discord.com` leaf on loopback and ask, per trust store, whether a client
//! trusting that store accepts it.
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{self as store, find_program, HostOs, StoreChoice, StoreEnv, StoreKind, Target};
use crate::ca::{CaCertificate, CaError, LeafAuthority, RootCa};

/// The host name the throwaway server presents a leaf for.
pub const VERIFY_HOST: &str = "discord.com";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether one store's client accepted the leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted; how it was checked.
    Trusted(String),
    /// Rejected; the client's reason.
    Untrusted(String),
    /// Could not be checked here, and why.
    NotChecked(String),
}

/// The result of `ca verify`.
#[derive(Debug)]
pub struct VerifyReport {
    /// Where the throwaway server listened.
    pub server: SocketAddr,
    /// The CA's name.
    pub ca_name: String,
    /// Control: does a client trusting only this CA accept the leaf?
    pub control: Verdict,
    /// Per store: name and verdict.
    pub results: Vec<(String, Verdict)>,
    /// ` --ca-dir DIR` as the user gave it, for the suggested command (empty for the default).
    pub ca_flag: String,
}

impl VerifyReport {
    /// True when at least one store was checked and every checked store trusts the CA.
    pub fn all_trusted(&self) -> bool {
        let checked: Vec<_> = self
            .results
            .iter()
            .filter(|(_, v)| !matches!(v, Verdict::NotChecked(_)))
            .collect();
        matches!(self.control, Verdict::Trusted(_))
            && !checked.is_empty()
            && checked
                .iter()
                .all(|(_, v)| matches!(v, Verdict::Trusted(_)))
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "served a {VERIFY_HOST} leaf signed by {} on {}",
            self.ca_name, self.server
        )?;
        for (name, verdict) in std::iter::once(&("the CA itself".to_string(), self.control.clone()))
            .chain(&self.results)
        {
            match verdict {
                Verdict::Trusted(how) => writeln!(f, "  trusted     {name}: {how}")?,
                Verdict::Untrusted(why) => writeln!(f, "  UNTRUSTED   {name}: {why}")?,
                Verdict::NotChecked(why) => writeln!(f, "  not checked {name}: {why}")?,
            }
        }
        if !self
            .results
            .iter()
            .any(|(_, v)| !matches!(v, Verdict::NotChecked(_)))
        {
            write!(f, "no trust store could be checked here")
        } else if self.all_trusted() {
            write!(f, "every checked store trusts the CA")
        } else {
            write!(
                f,
                "not every store trusts the CA: run `discord-mitm ca install{}` (see `ca show`)",
                self.ca_flag
            )
        }
    }
}

/// Runs the check for the chosen stores.
pub fn verify(ca_dir: &Path, choice: StoreChoice, env: &StoreEnv) -> Result<VerifyReport, CaError> {
    // RootCa::load logs a too-open key as a warning.
    let root = RootCa::load(ca_dir)?;
    let ca_name = root.certificate().common_name().to_string();
    let ca_cert = root.certificate().clone();
    let authority = LeafAuthority::new(root)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|err| CaError::crypto("starting the TLS test server", err))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|err| CaError::io("listen on", "127.0.0.1:0", err))?;
    let server = listener
        .local_addr()
        .map_err(|err| CaError::io("listen on", "127.0.0.1:0", err))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(authority.sni_server_config());
    runtime.spawn(serve(listener, acceptor));

    // A control: a client trusting only this CA must accept the leaf, or nothing else matters.
    let mut only_ours = RootCertStore::empty();
    let _ = only_ours.add(ca_cert.der().clone());
    let control = match rustls_handshake(only_ours, server) {
        Ok(()) => Verdict::Trusted(
            "a rustls client trusting only discord-mitm-ca.pem accepts the leaf".into(),
        ),
        Err(err) => Verdict::Untrusted(format!(
            "even a client trusting only this CA rejects its leaf: {err}"
        )),
    };
    let mut results = Vec::new();

    let leaf = authority
        .certified_key(VERIFY_HOST)
        .map(|k| k.cert[0].clone())?;
    for target in store::targets(choice, env, &ca_cert, false) {
        match target {
            Ok(target) => {
                let verdict = check_target(&target, env, server, &ca_cert, &leaf);
                results.push((target.name.clone(), verdict));
            }
            Err((name, outcome)) => {
                let why = match outcome {
                    store::Outcome::Skipped(reason) => reason,
                    store::Outcome::Failed(err) => format!("{}; {}", err.problem, err.fix),
                    _ => "not found".into(),
                };
                results.push((name, Verdict::NotChecked(why)));
            }
        }
    }
    runtime.shutdown_background();
    Ok(VerifyReport {
        server,
        ca_name,
        control,
        results,
        ca_flag: env.ca_flag.clone(),
    })
}

async fn serve(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(Ok(mut tls)) = tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let mut buf = [0u8; 2048];
            let _ = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await;
            let _ = tls
                .write_all(
                    b"HTTP/1.1 204 No Content\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
            let _ = tls.shutdown().await;
        });
    }
}

fn check_target(
    target: &Target,
    env: &StoreEnv,
    server: SocketAddr,
    ca: &CaCertificate,
    leaf: &rustls::pki_types::CertificateDer<'static>,
) -> Verdict {
    match target.kind {
        StoreKind::System => {
            let Some(system) = target.detail_system() else {
                return Verdict::NotChecked("no system store".into());
            };
            let Some(bundle) = system.bundles.iter().find(|b| b.is_file()) else {
                return Verdict::NotChecked(format!(
                    "no CA bundle at {}",
                    system
                        .bundles
                        .iter()
                        .map(|b| b.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            let mut roots = RootCertStore::empty();
            match store::bundle_certificates(bundle) {
                Ok(certs) => {
                    for der in certs {
                        let _ = roots.add(der.into());
                    }
                }
                Err(err) => {
                    return Verdict::NotChecked(format!("cannot read {}: {err}", bundle.display()))
                }
            }
            match rustls_handshake(roots, server) {
                Ok(()) => Verdict::Trusted(format!(
                    "a rustls client using {} accepts the leaf",
                    bundle.display()
                )),
                Err(err) => Verdict::Untrusted(format!(
                    "a rustls client using {} says: {err}",
                    bundle.display()
                )),
            }
        }
        StoreKind::Nss | StoreKind::Firefox => {
            let Some(db) = target.detail_nss() else {
                return Verdict::NotChecked("no database".into());
            };
            if find_program("tstclnt").is_some() {
                nss_handshake(&db.db_arg(), server)
            } else {
                nss_trust_bits(db, ca)
            }
        }
        StoreKind::Macos => {
            if env.os != HostOs::Macos {
                return Verdict::NotChecked("only checkable on macOS".into());
            }
            macos_verify(leaf)
        }
        StoreKind::Windows => Verdict::NotChecked(
            "open https://discord.com in Edge with the proxy on to check the Windows store".into(),
        ),
    }
}

/// A full TLS handshake with rustls trusting exactly `roots`.
fn rustls_handshake(roots: RootCertStore, server: SocketAddr) -> Result<(), String> {
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = ServerName::try_from(VERIFY_HOST).map_err(|e| e.to_string())?;
    let mut conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut sock =
        TcpStream::connect_timeout(&server, CLIENT_TIMEOUT).map_err(|e| e.to_string())?;
    let _ = sock.set_read_timeout(Some(CLIENT_TIMEOUT));
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let _ = tls.write_all(b"GET / HTTP/1.1\r\nHost: discord.com\r\n\r\n");
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    Ok(())
}

/// A real NSS TLS client (`tstclnt`) using the database: the same code path Chromium and Firefox use.
fn nss_handshake(db_arg: &str, server: SocketAddr) -> Verdict {
    let Some(tstclnt) = find_program("tstclnt") else {
        return Verdict::NotChecked("tstclnt not found".into());
    };
    let port = server.port().to_string();
    let mut child = match Command::new(tstclnt)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-a",
            VERIFY_HOST,
            "-d",
            db_arg,
            "-Q",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => return Verdict::NotChecked(format!("cannot run tstclnt: {err}")),
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > CLIENT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Verdict::NotChecked("tstclnt did not finish within 10 s".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => return Verdict::NotChecked(format!("waiting for tstclnt: {err}")),
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let reason = stderr
        .lines()
        .find(|l| l.contains("SEC_ERROR") || l.contains("SSL_ERROR") || l.contains("failed"))
        .unwrap_or_else(|| stderr.lines().last().unwrap_or("no output"))
        .trim()
        .to_string();
    if status.success() {
        Verdict::Trusted(
            "NSS (tstclnt) completes a TLS handshake for discord.com using this database".into(),
        )
    } else {
        Verdict::Untrusted(format!("NSS (tstclnt) rejects the leaf: {reason}"))
    }
}

/// Without tstclnt: ask certutil whether our CA is a trusted TLS CA in the database.
fn nss_trust_bits(db: &store::nss::NssDb, ca: &CaCertificate) -> Verdict {
    if find_program("certutil").is_none() {
        return Verdict::NotChecked(format!(
            "certutil not found: {}",
            store::missing_program_fix("certutil")
        ));
    }
    let db_arg = db.db_arg();
    let run = store::ProgramRun::new(
        "certutil",
        [
            "-V",
            "-d",
            db_arg.as_str(),
            "-n",
            ca.common_name(),
            "-u",
            "L",
        ],
    );
    match store::run_program(&run) {
        Ok(out) if out.success => Verdict::Trusted(
            "`certutil -V -u L` says the CA is trusted for TLS (tstclnt is not installed, so no handshake was tried)".into(),
        ),
        Ok(out) => {
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr);
            Verdict::Untrusted(format!("`certutil -V` says: {}", text.trim().lines().last().unwrap_or("not trusted")))
        }
        Err(problem) => Verdict::NotChecked(problem),
    }
}

fn macos_verify(leaf: &rustls::pki_types::CertificateDer<'static>) -> Verdict {
    let mut tag = [0u8; 6];
    rand::fill(&mut tag);
    let path = std::env::temp_dir().join(format!("discord-mitm-verify-{}.cer", hex::encode(tag)));
    if let Err(err) = std::fs::write(&path, leaf.as_ref()) {
        return Verdict::NotChecked(format!("cannot write {}: {err}", path.display()));
    }
    let path_arg = path.to_string_lossy().into_owned();
    let run = store::ProgramRun::new(
        "security",
        [
            "verify-cert",
            "-c",
            path_arg.as_str(),
            "-p",
            "ssl",
            "-s",
            VERIFY_HOST,
        ],
    );
    let verdict = match store::run_program(&run) {
        Ok(out) if out.success => {
            Verdict::Trusted("`security verify-cert -p ssl` accepts the leaf".into())
        }
        Ok(out) => Verdict::Untrusted(format!(
            "`security verify-cert` says: {}",
            out.stderr.trim()
        )),
        Err(problem) => Verdict::NotChecked(problem),
    };
    let _ = std::fs::remove_file(&path);
    verdict
}
