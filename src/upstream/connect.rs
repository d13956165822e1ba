//! Dialing upstream: resolve, TCP connect within a deadline, TLS, and the hyper connector on top.
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{Resolver, UpstreamAddr, UpstreamError};

/// Addresses this process accepts connections on (the proxy's listeners).
static OWN_LISTENERS: std::sync::RwLock<Vec<SocketAddr>> = std::sync::RwLock::new(Vec::new());

/// Marks `addr` as one of this process's listeners: upstream connections to it are refused,
/// so a hosts-file or DNS redirect of a Discord host to the proxy cannot loop.
pub(crate) fn note_own_listener(addr: SocketAddr) {
    if let Ok(mut own) = OWN_LISTENERS.write() {
        if !own.contains(&addr) {
            own.push(addr);
        }
    }
}

/// Whether dialing `addr` would reach one of our own listeners.
fn is_own_listener(addr: &SocketAddr) -> bool {
    let Ok(own) = OWN_LISTENERS.read() else {
        return false;
    };
    own.iter().any(|listener| {
        listener.port() == addr.port()
            && (listener.ip() == addr.ip()
                || (listener.ip().is_unspecified() && addr.ip().is_loopback())
                || (listener.ip().is_unspecified() && addr.ip().is_unspecified()))
    })
}

/// A connection to upstream, TLS or plain.
pub enum UpstreamStream {
    /// `http://` / `ws://`.
    Plain(TcpStream, SocketAddr),
    /// `https://` / `wss://`.
    Tls(Box<TlsStream<TcpStream>>, SocketAddr),
}

impl UpstreamStream {
    /// The address connected to.
    pub fn peer(&self) -> SocketAddr {
        match self {
            UpstreamStream::Plain(_, peer) | UpstreamStream::Tls(_, peer) => *peer,
        }
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(tcp, _) => Pin::new(tcp).poll_read(cx, buf),
            UpstreamStream::Tls(tls, _) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(tcp, _) => Pin::new(tcp).poll_write(cx, buf),
            UpstreamStream::Tls(tls, _) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(tcp, _) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(tls, _) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Plain(tcp, _) => tcp.is_write_vectored(),
            UpstreamStream::Tls(tls, _) => tls.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(tcp, _) => Pin::new(tcp).poll_flush(cx),
            UpstreamStream::Tls(tls, _) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(tcp, _) => Pin::new(tcp).poll_shutdown(cx),
            UpstreamStream::Tls(tls, _) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        Connected::new().extra(UpstreamAddr(self.peer()))
    }
}

/// Resolves, connects and does TLS; used by the pooled HTTP client and for WebSockets.
#[derive(Clone)]
pub(crate) struct UpstreamConnector {
    resolver: Resolver,
    tls: TlsConnector,
    connect_timeout: Duration,
}

impl UpstreamConnector {
    pub(super) fn new(
        resolver: Resolver,
        tls: Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
    ) -> Self {
        let mut config = (*tls).clone();
        // We speak HTTP/1.1 upstream (and WebSocket needs it); never let the server pick h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        UpstreamConnector {
            resolver,
            tls: TlsConnector::from(Arc::new(config)),
            connect_timeout,
        }
    }

    /// Connects to `host:port`, with TLS if asked; the whole thing within the connect timeout.
    pub(crate) async fn dial(
        &self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<UpstreamStream, UpstreamError> {
        let deadline = Instant::now() + self.connect_timeout;
        let timed_out = || UpstreamError::ConnectTimeout {
            host: host.to_string(),
            timeout: self.connect_timeout,
        };
        let addrs = tokio::time::timeout_at(deadline, self.resolver.lookup(host, port))
            .await
            .map_err(|_| timed_out())??;
        let mut last_err = String::new();
        let mut tcp = None;
        if let Some(own) = addrs.iter().find(|addr| is_own_listener(addr)) {
            return Err(UpstreamError::Loop {
                host: host.to_string(),
                addr: *own,
            });
        }
        for addr in &addrs {
            match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
                Err(_) => return Err(timed_out()),
                Ok(Ok(stream)) => {
                    tcp = Some((stream, *addr));
                    break;
                }
                Ok(Err(err)) => last_err = err.to_string(),
            }
        }
        let Some((tcp, peer)) = tcp else {
            return Err(UpstreamError::Connect {
                host: host.to_string(),
                addrs: addrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: last_err,
            });
        };
        let _ = tcp.set_nodelay(true);
        if !tls {
            return Ok(UpstreamStream::Plain(tcp, peer));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string()).map_err(|err| UpstreamError::Tls {
            host: host.to_string(),
            reason: err.to_string(),
            certificate: false,
        })?;
        match tokio::time::timeout_at(deadline, self.tls.connect(name, tcp)).await {
            Err(_) => Err(timed_out()),
            Ok(Err(err)) => {
                let reason = err.to_string();
                Err(UpstreamError::Tls {
                    host: host.to_string(),
                    certificate: super::trust::is_about_certificate(&reason),
                    reason,
                })
            }
            Ok(Ok(stream)) => Ok(UpstreamStream::Tls(Box::new(stream), peer)),
        }
    }
}

impl tower_service::Service<Uri> for UpstreamConnector {
    type Response = TokioIo<UpstreamStream>;
    type Error = UpstreamError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move {
            let bad = |reason: &str| UpstreamError::BadUrl {
                url: uri.to_string(),
                reason: reason.to_string(),
            };
            let tls = match uri.scheme_str() {
                Some("https") | Some("wss") => true,
                Some("http") | Some("ws") => false,
                _ => return Err(bad("scheme is not http or https")),
            };
            let host = uri.host().ok_or_else(|| bad("no host"))?;
            let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
            connector.dial(host, port, tls).await.map(TokioIo::new)
        })
    }
}

/// Turns the pooled client's error into ours, keeping a connect error's own words.
pub(super) fn classify_client_error(
    url: &str,
    err: hyper_util::client::legacy::Error,
) -> UpstreamError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    let mut reasons = Vec::new();
    while let Some(current) = source {
        if let Some(ours) = current.downcast_ref::<UpstreamError>() {
            return ours.clone();
        }
        reasons.push(current.to_string());
        source = current.source();
    }
    UpstreamError::Request {
        url: url.to_string(),
        reason: reasons.join(": "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_listeners_are_recognised() {
        note_own_listener("127.0.0.1:47001".parse().unwrap());
        note_own_listener("0.0.0.0:47002".parse().unwrap());
        assert!(is_own_listener(&"127.0.0.1:47001".parse().unwrap()));
        assert!(!is_own_listener(&"127.0.0.1:47003".parse().unwrap()));
        assert!(!is_own_listener(&"10.1.2.3:47001".parse().unwrap()));
        assert!(is_own_listener(&"127.0.0.1:47002".parse().unwrap()));
        assert!(is_own_listener(&"[::1]:47002".parse().unwrap()));
    }
}
