//! Leaf certificates for intercepted hosts, signed by our root CA.
//!
//! One leaf key pair is generated per process and reused for every host, so issuing a leaf costs
//! one ECDSA signature; issued leaves are cached per host in a bounded cache.
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use moka::sync::Cache;
use rcgen::{
    string::Ia5String, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::ServerConfig;
use time::{Duration, OffsetDateTime};

use super::{CaCertificate, CaError, RootCa};

/// Total validity of an issued leaf (Apple and browsers reject leaves valid for 398 days or more).
pub const LEAF_VALIDITY: Duration = Duration::days(397);
/// How far a leaf's notBefore is back-dated, for clients whose clocks run slow.
const LEAF_BACKDATE: Duration = Duration::hours(1);
/// How long an issued leaf is served from the cache before a fresh one is issued.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// Default number of hosts whose leaves are kept.
pub const DEFAULT_LEAF_CACHE_CAPACITY: u64 = 4096;

/// One host's issued leaf and the rustls server config presenting it.
struct HostLeaf {
    certified: Arc<CertifiedKey>,
    config: Arc<ServerConfig>,
}

/// Issues leaf certificates for any host (DNS name or IP address), signed by our root CA.
///
/// Use it per host ([`LeafAuthority::server_config_for`]) for the MITM proxy, or as a rustls
/// [`ResolvesServerCert`] (via [`LeafAuthority::sni_server_config`])
/// for a TLS listener that picks the leaf from the client's SNI. Leaves carry the host in the
/// subjectAltName, the serverAuth EKU and a validity under 398 days; they are cached per host.
///
/// Cloning is cheap and clones share the key pair and the cache, so the proxy and the transparent
/// listener can hold one authority each and still issue every host's leaf once.
#[derive(Clone)]
pub struct LeafAuthority {
    core: Arc<Core>,
    cache: Cache<String, Arc<HostLeaf>>,
    capacity: u64,
    alpn: Vec<Vec<u8>>,
    default_host: Option<String>,
}

/// What every clone shares: the CA as issuer and the per-process leaf key.
struct Core {
    issuer: Issuer<'static, KeyPair>,
    ca: CaCertificate,
    leaf_key: KeyPair,
    signing_key: Arc<dyn SigningKey>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for LeafAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafAuthority")
            .field("ca", &self.core.ca.common_name())
            .field("cached_hosts", &self.cache.entry_count())
            .field("alpn", &self.alpn)
            .field("default_host", &self.default_host)
            .finish()
    }
}

impl LeafAuthority {
    /// Loads and validates the CA in `ca_dir`, then builds an authority on it.
    pub fn from_ca_dir(ca_dir: &Path) -> Result<Self, CaError> {
        Self::new(RootCa::load(ca_dir)?)
    }

    /// Builds an authority on a loaded CA: generates the per-process leaf key pair.
    ///
    /// Defaults: ALPN `http/1.1`, cache of [`DEFAULT_LEAF_CACHE_CAPACITY`] hosts, no default host.
    pub fn new(ca: RootCa) -> Result<Self, CaError> {
        let (certificate, ca_key) = ca.into_parts();
        let issuer = Issuer::from_ca_cert_der(certificate.der(), ca_key)
            .map_err(|err| CaError::crypto("reading the CA certificate as an issuer", err))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|err| CaError::crypto("generating the leaf key", err))?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signing_key = provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|err| CaError::crypto("loading the leaf key into rustls", err))?;
        Ok(LeafAuthority {
            core: Arc::new(Core {
                issuer,
                ca: certificate,
                leaf_key,
                signing_key,
                provider,
            }),
            cache: build_cache(DEFAULT_LEAF_CACHE_CAPACITY),
            capacity: DEFAULT_LEAF_CACHE_CAPACITY,
            alpn: vec![b"http/1.1".to_vec()],
            default_host: None,
        })
    }

    /// Sets how many hosts' leaves are cached (least recently/frequently used are dropped first).
    /// This handle gets its own cache; set it before cloning.
    pub fn with_cache_capacity(mut self, hosts: u64) -> Self {
        self.capacity = hosts;
        self.cache = build_cache(hosts);
        self
    }

    /// Sets the ALPN protocols the server configs offer (default: `http/1.1` only).
    /// This handle gets its own cache, since cached configs carry the old protocols.
    pub fn with_alpn(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.alpn = protocols;
        self.cache = build_cache(self.capacity);
        self
    }

    /// Sets the host whose leaf is presented when a client sends no SNI (default: refuse the handshake).
    pub fn with_default_host(mut self, host: impl Into<String>) -> Self {
        self.default_host = Some(host.into());
        self
    }

    /// The CA the leaves chain to.
    pub fn ca_certificate(&self) -> &CaCertificate {
        &self.core.ca
    }

    /// The leaf certificate and key for `host` (a DNS name, an IP address, `[v6]` or `host:port`),
    /// from the cache or freshly issued.
    pub fn certified_key(&self, host: &str) -> Result<Arc<CertifiedKey>, CaError> {
        Ok(self.host_leaf(host)?.certified.clone())
    }

    /// A rustls server config presenting `host`'s leaf, cached per host (what the proxy hands to
    /// each intercepted connection; session resumption works because the config is reused).
    pub fn server_config_for(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        Ok(self.host_leaf(host)?.config.clone())
    }

    /// A rustls server config that picks the leaf from the client's SNI (for a TLS listener that
    /// accepts connections for many hosts on one socket).
    pub fn sni_server_config(&self) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(self.core.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring provider supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        config.alpn_protocols = self.alpn.clone();
        Arc::new(config)
    }

    /// Issues a new leaf for `host`, bypassing the cache (DER; mostly for tests and `ca verify`).
    pub fn issue_der(&self, host: &str) -> Result<CertificateDer<'static>, CaError> {
        let host = normalize_host(host)?;
        self.sign_leaf(&host)
    }

    /// Number of hosts currently cached (approximate while evictions are pending).
    pub fn cached_hosts(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    fn host_leaf(&self, host: &str) -> Result<Arc<HostLeaf>, CaError> {
        let host = normalize_host(host)?;
        if let Some(hit) = self.cache.get(&host) {
            return Ok(hit);
        }
        let leaf = Arc::new(self.build_host_leaf(&host)?);
        // A concurrent miss for the same host may also have issued one; keep whichever is cached.
        Ok(self.cache.get_with(host, || leaf))
    }

    fn build_host_leaf(&self, host: &str) -> Result<HostLeaf, CaError> {
        let der = self.sign_leaf(host)?;
        let certified = Arc::new(CertifiedKey::new(vec![der], self.core.signing_key.clone()));
        let mut config = ServerConfig::builder_with_provider(self.core.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| CaError::crypto("building a TLS server config", err))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone())));
        config.alpn_protocols = self.alpn.clone();
        Ok(HostLeaf {
            certified,
            config: Arc::new(config),
        })
    }

    fn sign_leaf(&self, host: &str) -> Result<CertificateDer<'static>, CaError> {
        let mut params = CertificateParams::default();
        let mut serial = [0u8; 16];
        rand::fill(&mut serial);
        serial[0] &= 0x7f;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let not_before = OffsetDateTime::now_utc() - LEAF_BACKDATE;
        params.not_before = not_before;
        params.not_after = not_before + LEAF_VALIDITY;
        let mut name = DistinguishedName::new();
        // CN is limited to 64 characters; the SAN is what clients check anyway.
        if host.len() <= 64 {
            name.push(DnType::CommonName, host);
        }
        name.push(DnType::OrganizationName, "discord-mitm");
        params.distinguished_name = name;
        params.subject_alt_names = vec![match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => {
                SanType::DnsName(Ia5String::try_from(host).map_err(|err| CaError::BadHost {
                    host: host.into(),
                    reason: err.to_string(),
                })?)
            }
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&self.core.leaf_key, &self.core.issuer)
            .map_err(|err| CaError::crypto("signing a leaf certificate", err))?;
        Ok(cert.der().clone())
    }
}

fn build_cache(capacity: u64) -> Cache<String, Arc<HostLeaf>> {
    Cache::builder()
        .max_capacity(capacity)
        .time_to_live(CACHE_TTL)
        .build()
}

/// Lower-cases, strips a port, IPv6 brackets and a trailing dot, and rejects what cannot be a host.
fn normalize_host(raw: &str) -> Result<String, CaError> {
    let bad = |reason: &str| CaError::BadHost {
        host: raw.into(),
        reason: reason.into(),
    };
    let trimmed = raw.trim();
    let host = if let Some(rest) = trimmed.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else if trimmed.parse::<IpAddr>().is_ok() {
        trimmed
    } else {
        trimmed.rsplit_once(':').map_or(trimmed, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                trimmed
            }
        })
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err(bad("empty host name"));
    }
    if host.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*')
    };
    if !host.split('.').all(valid_label) {
        return Err(bad("not a valid DNS name or IP address"));
    }
    Ok(host)
}

impl ResolvesServerCert for LeafAuthority {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let host = client_hello
            .server_name()
            .map(str::to_owned)
            .or_else(|| self.default_host.clone())?;
        match self.certified_key(&host) {
            Ok(key) => Some(key),
            Err(err) => {
                tracing::warn!("TLS client asked for {host:?}: {err}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;

    fn authority() -> (tempfile::TempDir, LeafAuthority) {
        let dir = tempfile::tempdir().unwrap();
        RootCa::init(dir.path(), false).unwrap();
        let authority = LeafAuthority::from_ca_dir(dir.path()).unwrap();
        (dir, authority)
    }

    #[test]
    fn leaf_has_san_eku_and_short_validity() {
        let (_dir, ca) = authority();
        let der = ca.issue_der("Discord.com.").unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            san.value.general_names,
            vec![GeneralName::DNSName("discord.com")]
        );
        let eku = cert.extended_key_usage().unwrap().unwrap();
        assert!(eku.value.server_auth);
        let validity =
            cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
        assert!(validity < 398 * 86400, "{validity}");
        assert!(!cert.is_ca());
        let ca_subject = x509_parser::parse_x509_certificate(ca.ca_certificate().der())
            .unwrap()
            .1
            .subject()
            .to_string();
        assert_eq!(cert.issuer().to_string(), ca_subject);
    }

    #[test]
    fn ip_hosts_get_ip_sans() {
        let (_dir, ca) = authority();
        for (input, expected) in [("127.0.0.1", "127.0.0.1"), ("[::1]:443", "::1")] {
            let key = ca.certified_key(input).unwrap();
            let (_, cert) = x509_parser::parse_x509_certificate(&key.cert[0]).unwrap();
            let san = cert.subject_alternative_name().unwrap().unwrap();
            let ip: IpAddr = expected.parse().unwrap();
            let octets = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            assert_eq!(
                san.value.general_names,
                vec![GeneralName::IPAddress(&octets)]
            );
        }
    }

    #[test]
    fn leaves_are_cached_per_host_and_share_one_key() {
        let (_dir, ca) = authority();
        let a1 = ca.certified_key("discord.com").unwrap();
        let a2 = ca.certified_key("discord.com:443").unwrap();
        let b = ca.certified_key("gateway.discord.gg").unwrap();
        assert!(Arc::ptr_eq(&a1, &a2));
        assert_ne!(a1.cert[0], b.cert[0]);
        assert!(Arc::ptr_eq(&a1.key, &b.key));
        let c1 = ca.server_config_for("discord.com").unwrap();
        let c2 = ca.server_config_for("DISCORD.COM").unwrap();
        assert!(Arc::ptr_eq(&c1, &c2));
    }

    #[test]
    fn cache_is_bounded() {
        let (_dir, ca) = authority();
        let ca = ca.with_cache_capacity(8);
        for i in 0..50 {
            ca.certified_key(&format!("h{i}.example")).unwrap();
        }
        assert!(ca.cached_hosts() <= 8, "{}", ca.cached_hosts());
    }

    #[test]
    fn clones_share_the_cache() {
        let (_dir, ca) = authority();
        let other = ca.clone();
        let a = ca.certified_key("discord.com").unwrap();
        let b = other.certified_key("discord.com").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn bad_hosts_are_refused() {
        let (_dir, ca) = authority();
        for host in ["", "exa mple.com", "a..b", "ünï.com"] {
            let err = ca.certified_key(host).unwrap_err();
            assert!(matches!(err, CaError::BadHost { .. }), "{host}: {err}");
        }
    }

    #[test]
    fn per_host_configs_are_cached() {
        let (_dir, ca) = authority();
        let first = ca.server_config_for("discord.com").unwrap();
        let second = ca.server_config_for("discord.com").unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
