//! What every listener shares (`serve`'s API, `record`'s explicit proxy, `gateway-proxy`): the
//! limits (a deadline for each request head, which also closes idle keep-alive connections, and
//! a cap on connections open at once), the accept loop that applies them, and Discord's JSON on
//! the answers hyper makes up itself.
mod head_timer;
pub(crate) mod hyper_errors;
mod limits;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;

pub use limits::{Limits, DEFAULT_HEAD_TIMEOUT_SECS, DEFAULT_MAX_CONNECTIONS};

use hyper_errors::{DiscordErrors, ServiceCalls};

/// One accepted connection, as the service for it is built.
pub(crate) struct Accepted {
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// The service notes each request here (see [`hyper_errors`]).
    pub(crate) calls: ServiceCalls,
    /// The connection's slot under the cap: whoever holds a clone keeps it taken (a tunnel
    /// outliving the HTTP connection, say).
    pub(crate) permit: Arc<OwnedSemaphorePermit>,
}

/// How a listener runs.
pub(crate) struct Listener<'a> {
    /// Names the listener in log lines ("proxy", "API", "gateway-proxy").
    pub(crate) name: &'static str,
    /// The HTTP server, limits applied.
    pub(crate) server: &'a Builder<TokioExecutor>,
    /// Connections open at once.
    pub(crate) max_connections: usize,
    /// How long a new connection may stay silent before its first byte (then hyper's head
    /// deadline takes over); `None` waits as long as the client likes.
    pub(crate) first_byte: Option<Duration>,
    /// How long open requests get to finish once `shutdown` completes.
    pub(crate) drain: Duration,
}

impl Listener<'_> {
    /// Serves `listener` until `shutdown` completes, each connection with the service `make`
    /// builds for it, then lets open requests finish for [`Listener::drain`].
    pub(crate) async fn run<S, B, M>(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        mut make: M,
    ) where
        M: FnMut(Accepted) -> S,
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let permits = Arc::new(tokio::sync::Semaphore::new(self.max_connections.max(1)));
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // At the cap, further clients wait in the accept backlog.
            let permit = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        tracing::warn!("{} listener accept: {err}", self.name);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Answers are small and written whole; do not let Nagle hold them back.
            let _ = tcp.set_nodelay(true);
            let calls = ServiceCalls::default();
            let io = DiscordErrors::new(tcp, calls.clone());
            let permit = Arc::new(permit);
            let service = make(Accepted {
                peer,
                calls,
                permit: Arc::clone(&permit),
            });
            let server = self.server.clone();
            let watcher = graceful.watcher();
            let (name, first_byte) = (self.name, self.first_byte);
            tokio::spawn(async move {
                // hyper's head deadline starts at the first byte (its HTTP/2 sniffing waits
                // before it): a client that connects and sends nothing gets the same deadline.
                let mut probe = [0u8; 1];
                let peeked = match first_byte {
                    Some(deadline) => {
                        tokio::time::timeout(deadline, io.get_ref().peek(&mut probe)).await
                    }
                    None => Ok(io.get_ref().peek(&mut probe).await),
                };
                match peeked {
                    Ok(Ok(read)) if read > 0 => {}
                    _ => return,
                }
                let connection = server
                    .serve_connection_with_upgrades(TokioIo::new(io), service)
                    .into_owned();
                if let Err(err) = watcher.watch(connection).await {
                    log_connection_error(name, peer, err.as_ref());
                }
                drop(permit);
            });
        }
        drop(listener);
        let _ = tokio::time::timeout(self.drain, graceful.shutdown()).await;
    }
}

/// A failed client connection in one line with the client's address. A request hyper could not
/// parse is the client's mistake (WARN); a client that went away or was cut at the head
/// deadline is ordinary (DEBUG).
fn log_connection_error(name: &str, peer: SocketAddr, err: &(dyn std::error::Error + 'static)) {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if find_hyper_error(err).is_some_and(|err| err.is_parse() || err.is_parse_too_large()) {
        tracing::warn!(client_addr = %peer, "{name} connection from {peer}: {text}");
    } else {
        tracing::debug!(client_addr = %peer, "{name} connection from {peer} ended: {text}");
    }
}

/// The hyper error inside what the auto server returned, if any.
pub(crate) fn find_hyper_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a hyper::Error> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(hyper_err) = err.downcast_ref::<hyper::Error>() {
            return Some(hyper_err);
        }
        current = err.source();
    }
    None
}

/// Reads and drops what a client is still sending (the rest of an oversized WebSocket frame)
/// until it closes, for at most 2 s and 64 MiB. Closing a socket with unread data sends a TCP
/// reset, and a reset makes the client's kernel drop our close frame before the client reads it.
pub(crate) async fn drain_unread<S: tokio::io::AsyncRead + Unpin>(socket: &mut S) {
    use tokio::io::AsyncReadExt;
    const LIMIT: usize = 64 << 20;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while total < LIMIT {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => total += n,
            _ => return,
        }
    }
}
