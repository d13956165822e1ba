//! Intercepted connections, end to end: the CONNECT tunnel to a Discord host and the transparent TLS listener. TLS with our leaf (or plain HTTP inside the
//! tunnel) is served straight into the pipeline; whatever fails before a request exists (TLS
//! refused by the client, bytes that are neither TLS nor HTTP, oversized or malformed request
//! heads) is logged and recorded as an error exchange. Nothing here dials out: requests reach
//! Discord only through the pipeline's upstream client, never the system resolver.
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio_rustls::LazyConfigAcceptor;

use super::LeafAuthority;
use crate::listen::find_hyper_error;
use crate::listen::hyper_errors::{DiscordErrors, ServiceCalls};
use crate::listen::Limits;
use crate::pipeline::{Pipeline, RequestContext};
use crate::store::recorder::{now_us, CapturedBody, CapturedExchange, CapturedResponse};
use crate::upstream::BoxError;

/// Limit for a client's first bytes and TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a CONNECT tunnel may stay unused (browsers open them ahead of need).
const IDLE_TUNNEL_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest request head (request line + headers) accepted; larger ones get 431.
pub(crate) const MAX_HEAD_BYTES: usize = 256 * 1024;
/// How much of a request head is kept to name the request in an error record.
const HEAD_SAMPLE: usize = 2048;
/// After we close, how long (and how much) the client's unread input is drained, so it reads
/// our final answer (e.g. 431) instead of a reset.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 16 * 1024 * 1024;

/// Serves intercepted connections into the pipeline.
pub(crate) struct Interceptor {
    leaves: Arc<LeafAuthority>,
    pipeline: Arc<Pipeline>,
    server: ServerBuilder<TokioExecutor>,
}

/// Where an intercepted connection was headed.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Host, lower case, no port.
    pub host: String,
    /// Port.
    pub port: u16,
    /// False when neither CONNECT nor SNI named the host (each request's Host header does).
    pub known: bool,
}

/// The HTTP server the proxy answers clients with, on the explicit port and inside TLS alike:
/// HTTP/1 with keep-alive, header case as sent, heads up to [`MAX_HEAD_BYTES`].
pub(crate) fn http1_server(limits: &Limits) -> ServerBuilder<TokioExecutor> {
    let mut server = ServerBuilder::new(TokioExecutor::new());
    server
        .http1()
        .title_case_headers(false)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES);
    limits.apply(&mut server);
    server
}

impl Interceptor {
    pub(crate) fn new(
        leaves: Arc<LeafAuthority>,
        pipeline: Arc<Pipeline>,
        limits: &Limits,
    ) -> Interceptor {
        Interceptor {
            leaves,
            pipeline,
            server: http1_server(limits),
        }
    }

    /// Runs a CONNECT tunnel to `target` whose client stream is `io` (already answered 200).
    pub(crate) async fn tunnel<S>(&self, io: S, client_addr: SocketAddr, target: Target)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut io = io;
        let mut first = [0u8; 8];
        let read = match tokio::time::timeout(IDLE_TUNNEL_TIMEOUT, io.read(&mut first)).await {
            // An idle tunnel (a browser's preconnect, say) is not an error worth recording.
            Err(_) => {
                tracing::debug!(%client_addr, host = %target.host, "tunnel idle for 2 minutes, closing");
                return;
            }
            Ok(Err(err)) => {
                tracing::debug!(%client_addr, host = %target.host, "reading after CONNECT: {err}");
                return;
            }
            // The client gave up on the tunnel without using it; nothing to record.
            Ok(Ok(0)) => return,
            Ok(Ok(n)) => n,
        };
        let first = Bytes::copy_from_slice(&first[..read]);
        let io = Prefixed::new(first.clone(), io);
        if first[0] == 0x16 {
            self.serve_tls(io, client_addr, Some(target)).await;
        } else if looks_like_http(&first) {
            self.serve_http(io, client_addr, "http", target).await;
        } else {
            // Not tunnelled anywhere: a raw tunnel would dial a Discord host outside our
            // upstream client (and unrecorded); the client is told by the connection closing.
            let reason = format!(
                "client sent neither TLS nor HTTP after CONNECT (first bytes {}); connection closed",
                hex_preview(&first)
            );
            self.connection_error(client_addr, &target, "https", reason);
        }
    }

    /// TLS with our leaf for the client's SNI (else `target`'s host), then HTTP into the pipeline.
    pub(crate) async fn serve_tls<S>(&self, io: S, client_addr: SocketAddr, target: Option<Target>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
        let fallback = || Target {
            host: "unknown".into(),
            port: 443,
            known: false,
        };
        let start = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor).await {
            Ok(Ok(start)) => start,
            Ok(Err(err)) => {
                let target = target.unwrap_or_else(fallback);
                self.connection_error(
                    client_addr,
                    &target,
                    "https",
                    format!("TLS ClientHello unreadable: {err}"),
                );
                return;
            }
            Err(_) => {
                let target = target.unwrap_or_else(fallback);
                self.connection_error(
                    client_addr,
                    &target,
                    "https",
                    "TLS ClientHello not received within 10s".into(),
                );
                return;
            }
        };
        let sni = start
            .client_hello()
            .server_name()
            .map(|name| name.trim_end_matches('.').to_ascii_lowercase());
        let target = match (target, sni) {
            (Some(target), _) => target,
            (None, Some(host)) => Target {
                host,
                port: 443,
                known: true,
            },
            (None, None) => fallback(),
        };
        let leaf_host = start
            .client_hello()
            .server_name()
            .map(str::to_string)
            .or_else(|| target.known.then(|| target.host.clone()));
        let config = match &leaf_host {
            Some(leaf_host) => match self.leaves.server_config_for(leaf_host) {
                Ok(config) => config,
                Err(err) => {
                    let reason = format!("no leaf certificate for {leaf_host}: {err}");
                    self.connection_error(client_addr, &target, "https", reason);
                    return;
                }
            },
            // No SNI on the transparent listener: the default host's leaf, if one is set.
            None => self.leaves.sni_server_config(),
        };
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, start.into_stream(config)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                self.connection_error(
                    client_addr,
                    &target,
                    "https",
                    format!("TLS handshake failed: {err}"),
                );
                return;
            }
            Err(_) => {
                self.connection_error(
                    client_addr,
                    &target,
                    "https",
                    "TLS handshake not finished within 10s".into(),
                );
                return;
            }
        };
        self.serve_http(tls, client_addr, "https", target).await;
    }

    /// Serves HTTP/1.1 requests on `io` into the pipeline, all for `target`.
    async fn serve_http<S>(
        &self,
        io: S,
        client_addr: SocketAddr,
        scheme: &'static str,
        target: Target,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let head = Arc::new(Mutex::new(Vec::new()));
        let calls = ServiceCalls::default();
        let io = DiscordErrors::new(Lingering::new(io, Arc::clone(&head)), calls.clone());
        let pipeline = Arc::clone(&self.pipeline);
        let host = target.host.clone();
        let known = target.known;
        let port = target.port;
        let service = service_fn(move |req: Request<hyper::body::Incoming>| {
            calls.note();
            let pipeline = Arc::clone(&pipeline);
            let host = if known {
                host.as_str()
            } else {
                req.headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map_or(host.as_str(), |h| {
                        h.rsplit_once(':').map_or(h, |(host, _)| host)
                    })
            };
            let ctx = RequestContext::new(client_addr, scheme, host, port);
            async move {
                let req = req.map(|body| body.map_err(|err| Box::new(err) as BoxError).boxed());
                Ok::<_, Infallible>(pipeline.handle(ctx, req).await)
            }
        });
        let started = Instant::now();
        let started_at_us = now_us();
        let served = self
            .server
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .await;
        let Err(err) = served else { return };
        let Some(hyper_err) = find_hyper_error(err.as_ref()) else {
            tracing::debug!(%client_addr, host = %target.host, "intercepted connection: {err}");
            return;
        };
        let status = if hyper_err.is_parse_too_large() {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        } else if hyper_err.is_parse() {
            if hyper_err.to_string().contains("URI too long") {
                StatusCode::URI_TOO_LONG
            } else {
                StatusCode::BAD_REQUEST
            }
        } else {
            tracing::debug!(%client_addr, host = %target.host, "intercepted connection: {err}");
            return;
        };
        let head = head.lock().map(|head| head.clone()).unwrap_or_default();
        let (method, path) = request_line(&head);
        let reason = if status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE {
            format!(
                "request head larger than {} KiB or over 100 headers; answered 431",
                MAX_HEAD_BYTES / 1024
            )
        } else {
            format!(
                "malformed request ({hyper_err}); answered {}",
                status.as_u16()
            )
        };
        tracing::warn!(%client_addr, host = %target.host, "{method} {path}: {reason}");
        let Some(recorder) = self.pipeline.recorder() else {
            return;
        };
        recorder.exchange(CapturedExchange {
            started_at_us,
            wait_us: Some(started.elapsed().as_micros() as u64),
            duration_us: started.elapsed().as_micros() as u64,
            client_addr: client_addr.to_string(),
            upstream_addr: None,
            source: "proxy",
            method,
            scheme: scheme.to_string(),
            host: authority(scheme, &target),
            path_and_query: path,
            http_version: "HTTP/1.1".into(),
            request_headers: HeaderMap::new(),
            request_body: CapturedBody::default(),
            response: Some(CapturedResponse {
                status: status.as_u16(),
                headers: HeaderMap::new(),
                body: CapturedBody::default(),
            }),
            error: Some(reason),
        });
    }

    /// Logs and records a failure before any request (TLS refused, garbage): method `CONNECT`,
    /// no response.
    fn connection_error(
        &self,
        client_addr: SocketAddr,
        target: &Target,
        scheme: &str,
        reason: String,
    ) {
        tracing::warn!(%client_addr, host = %target.host, port = target.port, "intercepted connection failed: {reason}");
        let Some(recorder) = self.pipeline.recorder() else {
            return;
        };
        recorder.exchange(CapturedExchange {
            started_at_us: now_us(),
            wait_us: None,
            duration_us: 0,
            client_addr: client_addr.to_string(),
            upstream_addr: None,
            source: "proxy",
            method: "CONNECT".into(),
            scheme: scheme.to_string(),
            host: authority(scheme, target),
            path_and_query: String::new(),
            http_version: "HTTP/1.1".into(),
            request_headers: HeaderMap::new(),
            request_body: CapturedBody::default(),
            response: None,
            error: Some(reason),
        });
    }
}

fn authority(scheme: &str, target: &Target) -> String {
    let default = if scheme == "https" { 443 } else { 80 };
    if target.port == default {
        target.host.clone()
    } else {
        format!("{}:{}", target.host, target.port)
    }
}

/// Whether the first bytes start an HTTP/1 request (a method in capitals, then a space).
fn looks_like_http(first: &[u8]) -> bool {
    const METHODS: &[&[u8]] = &[
        b"GET ", b"POST", b"PUT ", b"PATC", b"DELE", b"HEAD", b"OPTI", b"TRAC",
    ];
    METHODS
        .iter()
        .any(|m| first.starts_with(m) || (first.len() < m.len() && m.starts_with(first)))
}

fn hex_preview(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Method and path from the start of a request head, as far as they are readable.
fn request_line(head: &[u8]) -> (String, String) {
    let line_end = head
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(head.len());
    let line = String::from_utf8_lossy(&head[..line_end]);
    let mut parts = line.split(' ');
    let method = parts
        .next()
        .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()))
        .unwrap_or("?")
        .to_string();
    let path = parts
        .next()
        .filter(|p| p.starts_with('/'))
        .unwrap_or("/")
        .to_string();
    (method, path)
}

/// A stream whose first bytes were already read: they are returned again first.
pub(crate) struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Bytes, inner: S) -> Self {
        Prefixed { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The client stream as the HTTP server sees it. It keeps the start of the request head being
/// read (to name a request hyper refuses), and on shutdown drains what the client still sends
/// for a moment, so a client that was still writing (e.g. oversized headers) reads our answer
/// instead of a connection reset.
struct Lingering<S> {
    inner: S,
    /// Start of the current request head (reset after each response write).
    sample: Vec<u8>,
    /// A response was written since `sample` was taken: the next read starts a new request.
    wrote: bool,
    /// Filled with `sample` when dropped.
    head_out: Arc<Mutex<Vec<u8>>>,
    drain: Option<Drain>,
}

struct Drain {
    deadline: Pin<Box<tokio::time::Sleep>>,
    drained: u64,
}

impl<S> Lingering<S> {
    fn new(inner: S, head_out: Arc<Mutex<Vec<u8>>>) -> Self {
        Lingering {
            inner,
            sample: Vec::new(),
            wrote: false,
            head_out,
            drain: None,
        }
    }
}

impl<S> Drop for Lingering<S> {
    fn drop(&mut self) {
        if let Ok(mut out) = self.head_out.lock() {
            *out = std::mem::take(&mut self.sample);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = &buf.filled()[before..];
            if this.wrote && !new.is_empty() {
                this.wrote = false;
                this.sample.clear();
            }
            let room = HEAD_SAMPLE.saturating_sub(this.sample.len());
            if room > 0 {
                this.sample.extend_from_slice(&new[..new.len().min(room)]);
            }
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.wrote = true;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.wrote = true;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.drain.is_none() {
            // Our side first: the client sees the end of our answer (close_notify, FIN).
            std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.drain = Some(Drain {
                deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                drained: 0,
            });
        }
        let Some(drain) = this.drain.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let mut scratch = [0u8; 8192];
        loop {
            if drain.deadline.as_mut().poll(cx).is_ready() || drain.drained >= LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => drain.drained += buf.filled().len() as u64,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_http_and_names_requests() {
        assert!(looks_like_http(b"GET / HT"));
        assert!(looks_like_http(b"PATCH /a"));
        assert!(looks_like_http(b"GE"));
        assert!(!looks_like_http(b"\x16\x03\x01"));
        assert!(!looks_like_http(b"garbage!"));
        assert_eq!(
            request_line(b"POST /api/v9/x?y=1 HTTP/1.1\r\nHost: a\r\n"),
            ("POST".to_string(), "/api/v9/x?y=1".to_string())
        );
        assert_eq!(
            request_line(b"\x00\x01"),
            ("?".to_string(), "/".to_string())
        );
    }

    #[tokio::test]
    async fn prefixed_replays_the_first_bytes() {
        let (mut a, b) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt;
        a.write_all(b" world").await.unwrap();
        drop(a);
        let mut prefixed = Prefixed::new(Bytes::from_static(b"hello"), b);
        let mut out = String::new();
        prefixed.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }

    #[tokio::test]
    async fn lingering_shutdown_drains_unread_input() {
        let (mut client, server) = tokio::io::duplex(1024);
        let head = Arc::new(Mutex::new(Vec::new()));
        let mut lingering = Lingering::new(server, Arc::clone(&head));
        use tokio::io::AsyncWriteExt;
        client.write_all(b"GET /big HTTP/1.1\r\n").await.unwrap();
        let mut first = [0u8; 8];
        lingering.read_exact(&mut first).await.unwrap();
        // The client keeps writing more than the pipe holds; shutdown must read it away.
        let writer = tokio::spawn(async move {
            client.write_all(&vec![b'a'; 64 * 1024]).await.unwrap();
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.unwrap();
            answer
        });
        lingering.write_all(b"HTTP/1.1 431 \r\n\r\n").await.unwrap();
        lingering.shutdown().await.unwrap();
        drop(lingering);
        let answer = writer.await.unwrap();
        assert_eq!(answer, b"HTTP/1.1 431 \r\n\r\n");
        assert!(head.lock().unwrap().starts_with(b"GET /big"));
    }
}
