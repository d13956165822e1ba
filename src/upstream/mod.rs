//! The one client to real Discord: HTTP and WebSocket over TLS, resolved by our own DNS
//! (never /etc/hosts, so a hosts-file redirect to us cannot loop back), with `--resolve` pins.
mod connect;
mod resolve;
mod trust;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

pub(crate) use connect::{note_own_listener, UpstreamConnector, UpstreamStream};
pub(crate) use resolve::{DnsChoice, Resolver};

/// Error type carried by bodies sent upstream.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type the upstream client sends.
pub(crate) type UpstreamBody = BoxBody<Bytes, BoxError>;

/// Why talking to upstream failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot connect to {host} ({addrs}): {reason}")]
    Connect {
        host: String,
        addrs: String,
        reason: String,
    },
    #[error(
        "{host} resolves to {addr}, where this process itself listens; refusing to loop \
         (pin the real address with --resolve {host}=IP:PORT)"
    )]
    Loop { host: String, addr: SocketAddr },
    #[error("connecting to {host} timed out after {timeout:?}")]
    ConnectTimeout { host: String, timeout: Duration },
    #[error(
        "TLS handshake with {host} failed: {reason}{}",
        if *certificate { format!(" ({})", trust::CERTIFICATE_HINT) } else { String::new() }
    )]
    Tls {
        host: String,
        reason: String,
        /// The server's certificate was the problem (not trusted, wrong name, expired).
        certificate: bool,
    },
    #[error("request to {url} failed: {reason}")]
    Request { url: String, reason: String },
    #[error("{url} sent no response headers within {timeout:?}")]
    ResponseTimeout { url: String, timeout: Duration },
    #[error("WebSocket handshake with {url} failed: {reason}")]
    WebSocket { url: String, reason: String },
    #[error("bad upstream URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot load upstream CA {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
}

impl UpstreamError {
    /// The failure without any hint and without the URL's path and query (which can hold a
    /// webhook token): the 502's `message`, and the log's.
    pub fn reason(&self) -> String {
        match self {
            UpstreamError::Tls { host, reason, .. } => {
                format!("TLS handshake with {host} failed: {reason}")
            }
            UpstreamError::Request { url, reason } => {
                format!("request to {} failed: {reason}", origin_of(url))
            }
            UpstreamError::ResponseTimeout { url, timeout } => {
                format!(
                    "{} sent no response headers within {timeout:?}",
                    origin_of(url)
                )
            }
            UpstreamError::WebSocket { url, reason } => {
                format!(
                    "WebSocket handshake with {} failed: {reason}",
                    origin_of(url)
                )
            }
            UpstreamError::BadUrl { url, reason } => {
                format!("bad upstream URL {}: {reason}", origin_of(url))
            }
            other => other.to_string(),
        }
    }

    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            UpstreamError::Tls {
                certificate: true, ..
            } => trust::CERTIFICATE_HINT.to_string(),
            UpstreamError::Tls { host, .. } => {
                format!("check that {host} speaks TLS on that port (or pin another with --resolve HOST=IP:PORT)")
            }
            UpstreamError::Resolve { host, .. } => format!(
                "check the name, pick other DNS servers with --dns, or pin an address with \
                 --resolve {host}=IP:PORT"
            ),
            UpstreamError::Connect { host, .. } => format!(
                "is the upstream running and reachable? pin another address with --resolve {host}=IP:PORT"
            ),
            UpstreamError::ConnectTimeout { host, .. } => format!(
                "raise --connect-timeout SECONDS, or pin a reachable address with --resolve {host}=IP:PORT"
            ),
            UpstreamError::ResponseTimeout { .. } => {
                "the upstream accepted the request but did not answer: raise --response-timeout SECONDS"
                    .to_string()
            }
            UpstreamError::Loop { .. }
            | UpstreamError::Request { .. }
            | UpstreamError::WebSocket { .. }
            | UpstreamError::BadUrl { .. }
            | UpstreamError::CaFile { .. } => return None,
        })
    }
}

/// `scheme://authority` of a URL: what may be shown of it anywhere.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    match url[after_scheme..].find(['/', '?']) {
        Some(end) => &url[..after_scheme + end],
        None => url,
    }
}

/// `HOST=IP:PORT`: connect to this address whenever HOST is asked for, whatever port the URL had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOverride {
    /// Host name, lower case, without port.
    pub host: String,
    /// Where connections to that host go.
    pub addr: SocketAddr,
}

impl FromStr for ResolveOverride {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (host, addr) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}` is not HOST=IP:PORT"))?;
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("`{text}` has no host before `=`"));
        }
        let addr = addr
            .trim()
            .parse::<SocketAddr>()
            .map_err(|err| format!("`{addr}` in `{text}` is not IP:PORT ({err})"))?;
        Ok(ResolveOverride { host, addr })
    }
}

impl fmt::Display for ResolveOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.host, self.addr)
    }
}

/// How to reach upstream.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Host pins (`--resolve`).
    pub resolve: Vec<ResolveOverride>,
    /// Extra PEM files whose certificates are trusted besides the webpki roots (`--upstream-ca`),
    /// each as a CA and as a pinned server certificate (see `trust`).
    pub extra_ca_files: Vec<PathBuf>,
    /// Which DNS servers answer (`--dns`).
    pub dns: DnsChoice,
    /// Limit for DNS + TCP connect + TLS handshake.
    pub connect_timeout: Duration,
    /// Limit for the response headers after the request was sent.
    pub response_timeout: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            resolve: Vec::new(),
            extra_ca_files: Vec::new(),
            dns: DnsChoice::System,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
        }
    }
}

/// Where a response came from: the socket address upstream, in the response's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UpstreamAddr(pub SocketAddr);

/// A WebSocket connected upstream, with the handshake response and the peer's address.
pub struct UpstreamWebSocket {
    /// The connected socket.
    pub socket: WebSocketStream<UpstreamStream>,
    /// Upstream's 101 response (headers are passed on to the client).
    pub response: Response<Option<Vec<u8>>>,
    /// The address connected to.
    pub peer: SocketAddr,
}

/// The upstream client; cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    client: Client<UpstreamConnector, UpstreamBody>,
    connector: UpstreamConnector,
    response_timeout: Duration,
}

impl Upstream {
    /// Builds the client: trust store, resolver, connector and pool.
    pub fn new(config: &UpstreamConfig) -> Result<Upstream, UpstreamError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut pinned = Vec::new();
        for path in &config.extra_ca_files {
            for cert in load_pem_certs(path)? {
                // A certificate that cannot anchor a chain (an end entity) is still a pin.
                let _ = roots.add(cert.clone());
                pinned.push(cert);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls_error = |reason: String| UpstreamError::Tls {
            host: "*".into(),
            reason,
            certificate: false,
        };
        let verifier = trust::UpstreamVerifier::new(roots, pinned, Arc::clone(&provider))
            .map_err(tls_error)?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| tls_error(err.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let resolver = Resolver::new(config.dns, config.resolve.clone())?;
        let connector = UpstreamConnector::new(resolver, Arc::new(tls), config.connect_timeout);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(connector.clone());
        Ok(Upstream {
            client,
            connector,
            response_timeout: config.response_timeout,
        })
    }

    /// Sends one HTTP request (absolute URI) upstream; the response carries [`UpstreamAddr`].
    pub async fn request(
        &self,
        req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        // Kept for error messages only; cheap to clone (shared bytes), unlike formatting.
        let uri = req.uri().clone();
        match tokio::time::timeout(self.response_timeout, self.client.request(req)).await {
            Err(_) => Err(UpstreamError::ResponseTimeout {
                url: uri.to_string(),
                timeout: self.response_timeout,
            }),
            Ok(Ok(res)) => Ok(res),
            Ok(Err(err)) => Err(connect::classify_client_error(&uri.to_string(), err)),
        }
    }

    /// Opens a WebSocket upstream with the given handshake request (`wss://` or `ws://` URI).
    pub async fn websocket(
        &self,
        req: Request<()>,
        config: WebSocketConfig,
    ) -> Result<UpstreamWebSocket, UpstreamError> {
        let url = req.uri().to_string();
        let uri = req.uri().clone();
        let tls = match uri.scheme_str() {
            Some("wss") | Some("https") => true,
            Some("ws") | Some("http") => false,
            other => {
                return Err(UpstreamError::BadUrl {
                    url,
                    reason: format!("scheme {other:?} is not ws or wss"),
                })
            }
        };
        let host = uri.host().ok_or_else(|| UpstreamError::BadUrl {
            url: url.clone(),
            reason: "no host".into(),
        })?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let stream = self.connector.dial(host, port, tls).await?;
        let peer = stream.peer();
        let handshake = tokio_tungstenite::client_async_with_config(req, stream, Some(config));
        match tokio::time::timeout(self.response_timeout, handshake).await {
            Err(_) => Err(UpstreamError::ResponseTimeout {
                url,
                timeout: self.response_timeout,
            }),
            Ok(Err(err)) => Err(UpstreamError::WebSocket {
                url,
                reason: err.to_string(),
            }),
            Ok(Ok((socket, response))) => Ok(UpstreamWebSocket {
                socket,
                response,
                peer,
            }),
        }
    }
}

fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, UpstreamError> {
    let ca_err = |reason: String| UpstreamError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let data = std::fs::read(path).map_err(|err| ca_err(err.to_string()))?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| ca_err(format!("not PEM: {err}")))?;
    if certs.is_empty() {
        return Err(ca_err("no CERTIFICATE block in the file".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resolve_overrides() {
        let pin: ResolveOverride = "Discord.com.=127.0.0.1:8443".parse().unwrap();
        assert_eq!(pin.host, "discord.com");
        assert_eq!(pin.addr, "127.0.0.1:8443".parse().unwrap());
        let v6: ResolveOverride = "gateway.discord.gg=[::1]:443".parse().unwrap();
        assert_eq!(v6.addr.port(), 443);
        assert!("discord.com".parse::<ResolveOverride>().is_err());
        assert!("discord.com=127.0.0.1".parse::<ResolveOverride>().is_err());
        assert!("=127.0.0.1:1".parse::<ResolveOverride>().is_err());
    }

    #[test]
    fn missing_ca_file_is_a_clear_error() {
        let config = UpstreamConfig {
            extra_ca_files: vec!["/nonexistent/ca.pem".into()],
            ..UpstreamConfig::default()
        };
        let err = Upstream::new(&config).err().unwrap();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
