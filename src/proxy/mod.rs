//! The MITM proxy: our explicit proxy for clients that use one (CONNECT or plain HTTP), a transparent TLS listener
//! for hosts-file redirects, leaf certificates by host, and the decision of which hosts are
//! intercepted (Discord's) and which are tunnelled untouched. Everything intercepted goes to
//! the pipeline; nothing here knows Discord's API.
mod front;
pub(crate) mod hosts;
pub(crate) mod hostsfile;
mod intercept;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub(crate) use crate::ca::LeafAuthority;
pub(crate) use hosts::{HostMatcher, DISCORD_DOMAINS};

use crate::pipeline::Pipeline;

use crate::listen::Limits;
use intercept::Interceptor;

/// Why the proxy could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("{0}")]
    Bind(String),
}

/// The listeners, bound (so ports chosen by the OS are known before serving).
pub(crate) struct Listeners {
    /// The explicit proxy.
    pub proxy: TcpListener,
    /// The transparent TLS listener, if asked for.
    pub transparent: Option<TcpListener>,
}

impl Listeners {
    /// Binds `proxy` and, if given, `transparent`.
    pub(crate) async fn bind(
        proxy: SocketAddr,
        transparent: Option<SocketAddr>,
    ) -> Result<Listeners, ProxyError> {
        let bind = |addr: SocketAddr, flag: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|err| ProxyError::Bind(bind_error(addr, &err, flag)))
        };
        let proxy = bind(proxy, "--listen").await?;
        let transparent = match transparent {
            Some(addr) => Some(bind(addr, "--transparent").await?),
            None => None,
        };
        // Upstream must never dial these: a redirect (hosts file, DNS) to us would loop.
        for listener in std::iter::once(&proxy).chain(transparent.as_ref()) {
            if let Ok(addr) = listener.local_addr() {
                crate::upstream::note_own_listener(addr);
            }
        }
        Ok(Listeners { proxy, transparent })
    }
}

/// "cannot listen on ADDR: why; fix: what to do", in words, once: for `--listen`,
/// `--transparent` and `serve --api` alike.
pub(crate) fn bind_error(addr: SocketAddr, err: &std::io::Error, flag: &str) -> String {
    let (why, fix) = match err.kind() {
        std::io::ErrorKind::AddrInUse => (
            "the address is already in use".to_string(),
            format!(
                "stop the program listening there (perhaps another discord-mitm) or pass {flag} with another address"
            ),
        ),
        std::io::ErrorKind::PermissionDenied => (
            "permission denied".to_string(),
            format!(
                "ports below 1024 need root or CAP_NET_BIND_SERVICE: run with them or pass {flag} with a port above 1023"
            ),
        ),
        std::io::ErrorKind::AddrNotAvailable => (
            "no interface of this machine has that address".to_string(),
            format!("pass {flag} with one of this machine's addresses, e.g. 127.0.0.1:PORT"),
        ),
        _ => (
            plain_io_error(err),
            format!("pass {flag} with another address"),
        ),
    };
    format!("cannot listen on {addr}: {why}\n  fix: {fix}")
}

/// An I/O error's text without the `(os error N)` suffix.
fn plain_io_error(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Runs both listeners until `shutdown` completes.
pub(crate) async fn serve(
    listeners: Listeners,
    leaves: Arc<LeafAuthority>,
    intercept: HostMatcher,
    pipeline: Arc<Pipeline>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let interceptor = Arc::new(Interceptor::new(
        Arc::clone(&leaves),
        Arc::clone(&pipeline),
        &limits,
    ));
    let transparent = listeners.transparent.map(|listener| {
        let interceptor = Arc::clone(&interceptor);
        let stop = stop_rx.clone();
        tokio::spawn(serve_transparent(listener, interceptor, limits, stop))
    });
    let front = Arc::new(front::Front::new(pipeline, intercept, interceptor));
    let proxy_task = tokio::spawn(front::serve_explicit(
        listeners.proxy,
        front,
        limits,
        stop_rx,
    ));
    shutdown.await;
    let _ = stop_tx.send(true);
    // Open connections get a moment to finish; long-lived ones (gateway) are cut.
    let _ = tokio::time::timeout(Duration::from_secs(4), proxy_task).await;
    if let Some(task) = transparent {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    Ok(())
}

async fn serve_transparent(
    listener: TcpListener,
    interceptor: Arc<Interceptor>,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        // At the cap, further clients wait in the accept backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let (tcp, client_addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!("transparent listener accept: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let interceptor = Arc::clone(&interceptor);
        // The host comes from SNI (or each request's Host header); the client believes it
        // talks to the real host on 443.
        tokio::spawn(async move {
            interceptor.serve_tls(tcp, client_addr, None).await;
            drop(permit);
        });
    }
}
