//! The root CA on disk: creation (`ca init`) and validated loading.
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PublicKeyData, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::CaError;

/// How long a new root CA is valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;
const CERT_PEM_NAME: &str = "discord-mitm-ca.pem";
const KEY_NAME: &str = "discord-mitm-ca.key";
const CERT_DER_NAME: &str = "discord-mitm-ca.cer";

/// The three files that make up a CA in its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    /// The CA directory (absolute).
    pub dir: PathBuf,
    /// `discord-mitm-ca.pem`: the certificate, PEM.
    pub cert_pem: PathBuf,
    /// `discord-mitm-ca.key`: the private key, PKCS#8 PEM, mode 0600.
    pub key: PathBuf,
    /// `discord-mitm-ca.cer`: the certificate, DER (Windows, Android).
    pub cert_der: PathBuf,
}

impl CaFiles {
    /// The file names inside `dir`, made absolute so printed commands work from anywhere.
    pub fn in_dir(dir: &Path) -> Self {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        CaFiles {
            cert_pem: dir.join(CERT_PEM_NAME),
            key: dir.join(KEY_NAME),
            cert_der: dir.join(CERT_DER_NAME),
            dir,
        }
    }
}

/// The CA certificate (no key): enough to show, install and uninstall it.
#[derive(Clone)]
pub struct CaCertificate {
    der: CertificateDer<'static>,
    pem: String,
    subject: String,
    common_name: String,
    serial_hex: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    sha256: [u8; 32],
    sha1: [u8; 20],
    spki: Vec<u8>,
}

impl fmt::Debug for CaCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaCertificate")
            .field("subject", &self.subject)
            .field("sha256", &self.sha256_fingerprint())
            .finish()
    }
}

impl CaCertificate {
    /// Loads and validates `discord-mitm-ca.pem` from a CA directory.
    pub fn load(files: &CaFiles) -> Result<Self, CaError> {
        let pem = match fs::read(&files.cert_pem) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(CaError::Missing {
                    dir: files.dir.clone(),
                    file: files.cert_pem.clone(),
                })
            }
            Err(err) => return Err(CaError::io("read", &files.cert_pem, err)),
        };
        Self::from_pem(&pem, &files.cert_pem)
    }

    /// Parses and validates a PEM CA certificate; `path` names it in errors.
    pub fn from_pem(pem: &[u8], path: &Path) -> Result<Self, CaError> {
        let invalid = |problem: String| CaError::Invalid {
            path: path.to_path_buf(),
            problem,
            fix: format!(
                "restore the file from a backup, or run `discord-mitm ca init --force{}` to make a \
                 new CA (and install it again)",
                flag_of(path)
            ),
        };
        let mut reader = pem;
        let der = match rustls_pemfile::certs(&mut reader).next() {
            Some(Ok(der)) => der,
            Some(Err(err)) => return Err(invalid(format!("not a readable PEM file ({err})"))),
            None => {
                return Err(invalid(
                    "no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block)"
                        .into(),
                ))
            }
        };
        Self::from_der(der.into_owned(), path)
    }

    /// Parses and validates a DER CA certificate; `path` names it in errors.
    pub fn from_der(der: CertificateDer<'static>, path: &Path) -> Result<Self, CaError> {
        let fix_new = format!(
            "point --ca-dir at a directory made by `discord-mitm ca init`, or run \
             `discord-mitm ca init --force{}` to make a new CA",
            flag_of(path)
        );
        let invalid = |problem: String| CaError::Invalid {
            path: path.to_path_buf(),
            problem,
            fix: fix_new.clone(),
        };
        let (_, x509) = x509_parser::parse_x509_certificate(&der)
            .map_err(|err| invalid(format!("not a valid X.509 certificate ({err})")))?;
        match x509.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => {}
            Ok(_) => {
                return Err(invalid(
                    "not a CA certificate (basicConstraints CA:TRUE is missing), so it cannot sign leaves"
                        .into(),
                ))
            }
            Err(err) => return Err(invalid(format!("unreadable basicConstraints ({err})"))),
        }
        if let Ok(Some(ku)) = x509.key_usage() {
            if !ku.value.key_cert_sign() {
                return Err(invalid(
                    "its key usage does not allow signing certificates (keyCertSign)".into(),
                ));
            }
        }
        let not_before = x509.validity().not_before.to_datetime();
        let not_after = x509.validity().not_after.to_datetime();
        let common_name = x509
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_string();
        let subject = x509.subject().to_string();
        let serial_hex = hex::encode_upper(x509.raw_serial());
        let spki = x509.public_key().raw.to_vec();
        let sha256: [u8; 32] = Sha256::digest(&der).into();
        let sha1_digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        let mut sha1 = [0u8; 20];
        sha1.copy_from_slice(sha1_digest.as_ref());
        let pem = pem_encode(&der);
        Ok(CaCertificate {
            der,
            pem,
            subject,
            common_name,
            serial_hex,
            not_before,
            not_after,
            sha256,
            sha1,
            spki,
        })
    }

    /// The certificate, DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// The certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The subject as an RFC 4514-style string.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject common name ("discord-mitm CA <host> <random>"); also the NSS nickname.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The serial number, upper-case hex.
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    /// Start of validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Whether the certificate's validity has ended.
    pub fn is_expired(&self) -> bool {
        self.not_after < OffsetDateTime::now_utc()
    }

    /// SHA-256 fingerprint as colon-separated upper-case hex (what browsers show).
    pub fn sha256_fingerprint(&self) -> String {
        self.sha256
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// SHA-1 thumbprint, upper-case hex without separators (what macOS `security -Z` and Windows use).
    pub fn sha1_thumbprint(&self) -> String {
        hex::encode_upper(self.sha1)
    }

    /// A short stable id for file names in trust stores (first 8 bytes of the SHA-256, hex).
    pub fn short_id(&self) -> String {
        hex::encode(&self.sha256[..8])
    }

    /// The DER SubjectPublicKeyInfo.
    pub(crate) fn spki(&self) -> &[u8] {
        &self.spki
    }
}

/// The CA key is readable by other users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWarning {
    /// The key file.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
}

impl fmt::Display for KeyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "warning: CA key {} is readable by group/others (mode {:04o}); anyone who can read it can \
             impersonate any site to machines that trust this CA\n  fix: chmod 600 {}",
            self.path.display(),
            self.mode & 0o7777,
            self.path.display()
        )
    }
}

/// An existing CA `ca init` found (and what it mended in it).
#[derive(Debug)]
pub struct Mended {
    /// The CA's certificate.
    pub certificate: CaCertificate,
    /// What was repaired, one sentence each (empty when nothing needed it).
    pub repaired: Vec<String>,
}

/// Half a CA: the certificate without its key (`has_certificate`), or the key without its
/// certificate.
fn half_made(files: &CaFiles, has_certificate: bool) -> CaError {
    let flag = crate::ca::ca_dir_flag(&files.dir);
    let (present, missing, why, restore) = if has_certificate {
        (
            &files.cert_pem,
            &files.key,
            "without its key no certificate can be signed",
            "the key",
        )
    } else {
        (
            &files.key,
            &files.cert_pem,
            "a key alone cannot be trusted by clients",
            "the certificate",
        )
    };
    CaError::Invalid {
        path: files.dir.clone(),
        problem: format!(
            "half a CA: {} is there but {} is not ({why})",
            present.display(),
            missing.display()
        ),
        fix: format!(
            "restore {restore} from a backup, or run `discord-mitm ca init --force{flag}` to make a \
             new CA (then `discord-mitm ca install{flag}` again)"
        ),
    }
}

/// Sets `path`'s permission bits.
fn set_mode(path: &Path, mode: u32) -> Result<(), CaError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|err| CaError::io("change the permissions of", path, err))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// The loaded root CA: certificate plus its (validated, matching) private key.
pub struct RootCa {
    files: CaFiles,
    certificate: CaCertificate,
    key: KeyPair,
    key_warning: Option<KeyWarning>,
}

impl fmt::Debug for RootCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootCa")
            .field("files", &self.files)
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// What `ca init` did.
#[derive(Debug)]
pub struct InitReport {
    /// The new CA's certificate.
    pub certificate: CaCertificate,
    /// Where it was written.
    pub files: CaFiles,
    /// The CA that was replaced (with `--force`), if it could be read.
    pub replaced: Option<CaCertificate>,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "created a new root CA")?;
        writeln!(f, "  subject:     {}", self.certificate.subject())?;
        writeln!(
            f,
            "  sha256:      {}",
            self.certificate.sha256_fingerprint()
        )?;
        writeln!(
            f,
            "  valid until: {}",
            format_time(self.certificate.not_after())
        )?;
        writeln!(f, "  certificate: {}", self.files.cert_pem.display())?;
        writeln!(f, "  key:         {} (mode 0600)", self.files.key.display())?;
        writeln!(f, "  DER copy:    {}", self.files.cert_der.display())?;
        if let Some(old) = &self.replaced {
            writeln!(
                f,
                "replaced CA {} ({}); it stays trusted wherever it was installed until you remove it there",
                old.common_name(),
                old.sha256_fingerprint()
            )?;
        }
        Ok(())
    }
}

impl RootCa {
    /// Creates a new CA in `dir` (`ca init`); refuses to replace existing files unless `force`.
    pub fn init(dir: &Path, force: bool) -> Result<InitReport, CaError> {
        let files = CaFiles::in_dir(dir);
        let mut replaced = None;
        for path in [&files.cert_pem, &files.key, &files.cert_der] {
            if fs::symlink_metadata(path).is_ok() {
                if !force {
                    return Err(CaError::AlreadyExists { path: path.clone() });
                }
                if path == &files.cert_pem {
                    replaced = CaCertificate::load(&files).ok();
                }
            }
        }
        fs::create_dir_all(&files.dir)
            .map_err(|err| CaError::io("create directory", &files.dir, err))?;

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|err| CaError::crypto("generating the CA key", err))?;
        let params = root_params();
        let cert = params
            .self_signed(&key)
            .map_err(|err| CaError::crypto("self-signing the CA certificate", err))?;
        let certificate = CaCertificate::from_der(cert.der().clone(), &files.cert_pem)?;

        // Everything is generated before anything is written, so a failure leaves the old files alone.
        write_atomically(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
        write_atomically(&files.cert_pem, certificate.pem().as_bytes(), 0o644)?;
        write_atomically(&files.cert_der, certificate.der(), 0o644)?;
        Ok(InitReport {
            certificate,
            files,
            replaced,
        })
    }

    /// For `ca init` without `--force`: `Ok(None)` when `dir` holds no CA file (make one). When
    /// the certificate and its key are there and match, the CA, after mending what can be mended
    /// without changing it (a key readable by others made 0600, a missing or stale DER copy
    /// rewritten, a missing PEM certificate rewritten from the DER copy). Otherwise an error that
    /// names the file that is missing or wrong, with the fix.
    pub fn mend(dir: &Path) -> Result<Option<Mended>, CaError> {
        let files = CaFiles::in_dir(dir);
        let exists = |path: &Path| fs::symlink_metadata(path).is_ok();
        let (pem, key, der) = (
            exists(&files.cert_pem),
            exists(&files.key),
            exists(&files.cert_der),
        );
        if !pem && !key && !der {
            return Ok(None);
        }
        let mut repaired = Vec::new();
        if !pem && der && key {
            let bytes = fs::read(&files.cert_der)
                .map_err(|err| CaError::io("read", &files.cert_der, err))?;
            let certificate =
                CaCertificate::from_der(CertificateDer::from(bytes), &files.cert_der)?;
            write_atomically(&files.cert_pem, certificate.pem().as_bytes(), 0o644)?;
            repaired.push(format!(
                "wrote the missing certificate {} from its DER copy",
                files.cert_pem.display()
            ));
        } else if !pem || !key {
            return Err(half_made(&files, pem));
        }
        if let Some(warning) = key_permission_warning(&files.key) {
            set_mode(&files.key, 0o600)?;
            repaired.push(format!(
                "the key {} was mode {:04o}, readable by others; it is now 0600",
                files.key.display(),
                warning.mode & 0o7777
            ));
        }
        let ca = RootCa::load(dir)?;
        let stale = fs::read(&files.cert_der).map_or(true, |bytes| {
            bytes.as_slice() != ca.certificate.der().as_ref()
        });
        if stale {
            write_atomically(&files.cert_der, ca.certificate.der(), 0o644)?;
            repaired.push(format!(
                "wrote the {} DER copy {}",
                if der { "stale" } else { "missing" },
                files.cert_der.display()
            ));
        }
        Ok(Some(Mended {
            certificate: ca.certificate,
            repaired,
        }))
    }

    /// Loads the CA from `dir`, checking the certificate is a usable CA and the key matches it.
    pub fn load(dir: &Path) -> Result<Self, CaError> {
        let files = CaFiles::in_dir(dir);
        let certificate = CaCertificate::load(&files)?;
        if certificate.is_expired() {
            // Leaves signed by an expired CA are rejected everywhere; uninstall still works on it.
            return Err(CaError::Invalid {
                path: files.cert_pem.clone(),
                problem: format!("the CA expired on {}", format_time(certificate.not_after())),
                fix: {
                    let flag = crate::ca::ca_dir_flag(&files.dir);
                    format!(
                        "run `discord-mitm ca uninstall{flag}`, then `discord-mitm ca init --force{flag}` \
                         and `discord-mitm ca install{flag}`"
                    )
                },
            });
        }
        let key_warning = key_permission_warning(&files.key);
        let key_pem = match fs::read_to_string(&files.key) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(CaError::Missing {
                    dir: files.dir.clone(),
                    file: files.key.clone(),
                })
            }
            Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                return Err(CaError::Invalid {
                    path: files.key.clone(),
                    problem: "not a PEM private key (not text)".into(),
                    fix: key_fix(&files.dir),
                })
            }
            Err(err) => return Err(CaError::io("read", &files.key, err)),
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|err| CaError::Invalid {
            path: files.key.clone(),
            problem: format!("not a usable PEM private key ({err})"),
            fix: key_fix(&files.dir),
        })?;
        if key.subject_public_key_info() != certificate.spki() {
            return Err(CaError::Invalid {
                path: files.key.clone(),
                problem: format!(
                    "this key does not belong to the certificate {}",
                    files.cert_pem.display()
                ),
                fix: key_fix(&files.dir),
            });
        }
        if let Some(warning) = &key_warning {
            tracing::warn!("{warning}");
        }
        Ok(RootCa {
            files,
            certificate,
            key,
            key_warning,
        })
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &CaCertificate {
        &self.certificate
    }

    /// Where the CA lives.
    pub fn files(&self) -> &CaFiles {
        &self.files
    }

    /// Set when the key file is readable by group or others.
    pub fn key_warning(&self) -> Option<&KeyWarning> {
        self.key_warning.as_ref()
    }

    /// The CA's signing key.
    pub fn key_pair(&self) -> &KeyPair {
        &self.key
    }

    pub(crate) fn into_parts(self) -> (CaCertificate, KeyPair) {
        (self.certificate, self.key)
    }
}

fn key_fix(dir: &Path) -> String {
    format!(
        "restore the key that belongs to this certificate, or run `discord-mitm ca init --force{}` \
         to make a new CA (and install it again)",
        crate::ca::ca_dir_flag(dir)
    )
}

/// ` --ca-dir DIR` for the CA directory holding `path` (nothing for the default directory).
fn flag_of(path: &Path) -> String {
    path.parent()
        .map(crate::ca::ca_dir_flag)
        .unwrap_or_default()
}

/// Returns a warning when the key exists and group/other permission bits are set.
pub(crate) fn key_permission_warning(path: &Path) -> Option<KeyWarning> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| KeyWarning {
            path: path.to_path_buf(),
            mode,
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn root_params() -> CertificateParams {
    let mut random = [0u8; 20];
    rand::fill(&mut random);
    random[0] &= 0x7f; // positive serial
    let suffix = hex::encode(&random[16..20]);
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "discord-mitm");
    name.push(
        DnType::CommonName,
        format!("discord-mitm CA {} {suffix}", short_hostname()),
    );
    params.distinguished_name = name;
    params.serial_number = Some(SerialNumber::from_slice(&random[..16]));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Back-date a little so clients with slightly slow clocks accept it immediately.
    let not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    params.not_before = not_before;
    params.not_after = not_before + Duration::days(CA_VALIDITY_DAYS);
    params
}

/// The machine's host name, reduced to characters that are safe in a subject and a file name.
fn short_hostname() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(32)
        .collect();
    if cleaned.is_empty() {
        "localhost".into()
    } else {
        cleaned
    }
}

/// Writes via a temporary file in the same directory and a rename; the temporary file is created
/// with `mode` from the start, so a key is never readable by others, not even briefly.
pub(crate) fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut tag = [0u8; 6];
    rand::fill(&mut tag);
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(tag)));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&tmp);
        return Err(CaError::io("write", path, err));
    }
    Ok(())
}

fn pem_encode(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Formats a time as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_time(t: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let report = RootCa::init(dir.path(), false).unwrap();
        let ca = RootCa::load(dir.path()).unwrap();
        assert_eq!(ca.certificate().der(), report.certificate.der());
        assert!(ca
            .certificate()
            .common_name()
            .starts_with("discord-mitm CA "));
        assert!(ca.key_warning().is_none());
        let days = (ca.certificate().not_after() - ca.certificate().not_before()).whole_days();
        assert_eq!(days, CA_VALIDITY_DAYS);
    }

    #[test]
    fn two_inits_have_different_subjects() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let a = RootCa::init(a.path(), false).unwrap().certificate;
        let b = RootCa::init(b.path(), false).unwrap().certificate;
        assert_ne!(a.subject(), b.subject());
        assert_ne!(a.serial_hex(), b.serial_hex());
    }

    #[test]
    fn init_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let first = RootCa::init(dir.path(), false).unwrap().certificate;
        let err = RootCa::init(dir.path(), false).unwrap_err();
        assert!(matches!(err, CaError::AlreadyExists { .. }), "{err}");
        let still = RootCa::load(dir.path()).unwrap();
        assert_eq!(still.certificate().der(), first.der());
        let replaced = RootCa::init(dir.path(), true).unwrap();
        assert_ne!(replaced.certificate.der(), first.der());
        assert_eq!(replaced.replaced.unwrap().der(), first.der());
    }

    #[test]
    fn garbage_pem_is_a_clear_error() {
        let err = CaCertificate::from_pem(b"hello", Path::new("x.pem")).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn key_is_created_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let report = RootCa::init(dir.path(), false).unwrap();
        let mode = fs::metadata(&report.files.key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
