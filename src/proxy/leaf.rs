//! Leaf certificates for intercepted hosts, signed by our root CA (`ca/discord-mitm-ca.pem` +
//! `.key`). Interim adapter: the `ca` module's leaf authority replaces it once merged.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// Why leaves cannot be issued.
#[derive(Debug, thiserror::Error)]
pub enum LeafError {
    #[error("no CA in {dir}: {reason} (create one with `discord-mitm ca init --ca-dir {dir}`)")]
    MissingCa { dir: PathBuf, reason: String },
    #[error("the CA in {dir} is unusable: {reason}")]
    BadCa { dir: PathBuf, reason: String },
    #[error("cannot issue a certificate for {host}: {reason}")]
    Issue { host: String, reason: String },
}

/// Issues and caches one leaf per host name.
pub struct LeafAuthority {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    leaf_key: KeyPair,
    provider: Arc<rustls::crypto::CryptoProvider>,
    leaves: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    configs: RwLock<HashMap<String, Arc<ServerConfig>>>,
}

impl std::fmt::Debug for LeafAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafAuthority").finish_non_exhaustive()
    }
}

impl LeafAuthority {
    /// Loads the root CA from `dir`.
    pub fn load(dir: &Path) -> Result<LeafAuthority, LeafError> {
        let cert_path = dir.join("discord-mitm-ca.pem");
        let key_path = dir.join("discord-mitm-ca.key");
        let missing = |path: &Path, err: std::io::Error| LeafError::MissingCa {
            dir: dir.to_path_buf(),
            reason: format!("{}: {err}", path.display()),
        };
        let bad = |reason: String| LeafError::BadCa {
            dir: dir.to_path_buf(),
            reason,
        };
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(|e| missing(&cert_path, e))?;
        let key_pem = std::fs::read_to_string(&key_path).map_err(|e| missing(&key_path, e))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| bad(format!("key: {e}")))?;
        let ca_der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .next()
            .ok_or_else(|| bad("no certificate in discord-mitm-ca.pem".into()))?
            .map_err(|e| bad(format!("certificate: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| bad(format!("certificate: {e}")))?;
        let leaf_key = KeyPair::generate().map_err(|e| bad(format!("leaf key: {e}")))?;
        Ok(LeafAuthority {
            issuer,
            ca_der,
            leaf_key,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            leaves: RwLock::new(HashMap::new()),
            configs: RwLock::new(HashMap::new()),
        })
    }

    /// The leaf (chain + key) for `host`, issued on first use.
    pub fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, LeafError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(leaf) = self.leaves.read().ok().and_then(|m| m.get(&host).cloned()) {
            return Ok(leaf);
        }
        let issue = |reason: String| LeafError::Issue {
            host: host.clone(),
            reason,
        };
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| issue(e.to_string()))?;
        params.subject_alt_names = vec![match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.clone()
                    .try_into()
                    .map_err(|e: rcgen::Error| issue(e.to_string()))?,
            ),
        }];
        params
            .distinguished_name
            .push(DnType::CommonName, host.clone());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(90);
        let cert = params
            .signed_by(&self.leaf_key, &self.issuer)
            .map_err(|e| issue(e.to_string()))?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let signing_key = self
            .provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| issue(e.to_string()))?;
        let leaf = Arc::new(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_der.clone()],
            signing_key,
        ));
        if let Ok(mut leaves) = self.leaves.write() {
            leaves.insert(host, Arc::clone(&leaf));
        }
        Ok(leaf)
    }

    /// A TLS server config that presents the leaf for the client's SNI, or for `fallback_host`
    /// when the client sent none. HTTP/1.1 only.
    pub fn server_config(self: &Arc<Self>, fallback_host: &str) -> Arc<ServerConfig> {
        let fallback_host = fallback_host.to_ascii_lowercase();
        if let Some(config) = self
            .configs
            .read()
            .ok()
            .and_then(|m| m.get(&fallback_host).cloned())
        {
            return config;
        }
        let resolver = SniResolver {
            authority: Arc::clone(self),
            fallback_host: Some(fallback_host.clone()),
        };
        let config = Arc::new(self.build_config(resolver));
        if let Ok(mut configs) = self.configs.write() {
            configs.insert(fallback_host, Arc::clone(&config));
        }
        config
    }

    /// The config for the transparent listener: leaf by SNI only.
    pub fn sni_server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        Arc::new(self.build_config(SniResolver {
            authority: Arc::clone(self),
            fallback_host: None,
        }))
    }

    fn build_config(&self, resolver: SniResolver) -> ServerConfig {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| {
                ServerConfig::builder_with_provider(Arc::clone(&self.provider))
                    .with_protocol_versions(&[&rustls::version::TLS13])
                    .expect("TLS 1.3 is supported by the ring provider")
            })
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }
}

#[derive(Debug)]
struct SniResolver {
    authority: Arc<LeafAuthority>,
    fallback_host: Option<String>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let host = hello
            .server_name()
            .map(str::to_string)
            .or_else(|| self.fallback_host.clone())?;
        match self.authority.leaf(&host) {
            Ok(leaf) => Some(leaf),
            Err(err) => {
                tracing::warn!("{err}");
                None
            }
        }
    }
}

/// The leaf authority as hudsucker's certificate authority.
pub struct HudsuckerCa(pub Arc<LeafAuthority>);

impl hudsucker::certificate_authority::CertificateAuthority for HudsuckerCa {
    fn gen_server_config(
        &self,
        authority: &http::uri::Authority,
    ) -> impl std::future::Future<Output = Arc<ServerConfig>> + Send {
        let config = self.0.server_config(authority.host());
        async move { config }
    }
}

/// Writes a fresh CA into `dir` with the file names the `ca` module uses (tests and first runs
/// before `ca init` existed).
pub fn write_test_ca(dir: &Path) -> Result<(), LeafError> {
    let bad = |reason: String| LeafError::BadCa {
        dir: dir.to_path_buf(),
        reason,
    };
    let key = KeyPair::generate().map_err(|e| bad(e.to_string()))?;
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| bad(e.to_string()))?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "discord-mitm test CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).map_err(|e| bad(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    std::fs::write(dir.join("discord-mitm-ca.pem"), cert.pem()).map_err(|e| bad(e.to_string()))?;
    std::fs::write(dir.join("discord-mitm-ca.key"), key.serialize_pem())
        .map_err(|e| bad(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(
            dir.join("discord-mitm-ca.key"),
            std::fs::Permissions::from_mode(0o600),
        );
    }
    Ok(())
}
