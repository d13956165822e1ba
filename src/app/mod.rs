//! Start-up for each command: assembles the proxy, the pipeline's chain, the backend and the
//! recordings store, runs them until shutdown and flushes what they hold.
//!
//! - [`record::run`] — `record`: the proxy in front of upstream, exchanges recorded;
//! - [`server::run`] — `serve`: the backend on `--api` alone;
//! - [`serve::run_with_proxy`] — `serve --listen`: the backend plus the proxy in front of it.
pub(crate) mod durable;
pub(crate) mod explore;
pub(crate) mod listener;
pub(crate) mod record;
pub(crate) mod serve;
pub(crate) mod server;
pub(crate) mod world;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::pipeline::Pipeline;
use crate::proxy::{self, HostMatcher, LeafAuthority, Listeners};
use crate::store::{Recorder, RecorderOptions, Store};
use crate::upstream::UpstreamConfig;

/// Why the proxy side of `record` or `serve --listen` could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyRunError {
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Proxy(#[from] proxy::ProxyError),
    #[error(transparent)]
    Explore(#[from] explore::ExploreError),
}

/// What a chain builder hands back: the pipeline, the recorder it started and the store.
pub(crate) type Built = (Pipeline, Option<Recorder>, Option<Arc<Store>>);

/// What the proxy in front of a chain needs, the same for `record` and `serve --listen`.
#[derive(Debug, Clone)]
pub(crate) struct ProxyOptions {
    /// Explicit proxy address.
    pub(crate) listen: SocketAddr,
    /// Transparent TLS listener address.
    pub(crate) transparent: Option<SocketAddr>,
    /// Hosts intercepted.
    pub(crate) intercept: HostMatcher,
    /// Root CA directory.
    pub(crate) ca_dir: PathBuf,
    /// Recordings database directory.
    pub(crate) recordings: PathBuf,
    /// Record nothing.
    pub(crate) no_store: bool,
    /// Recorder options (secrets, body limit).
    pub(crate) recorder: RecorderOptions,
    /// Upstream client options.
    pub(crate) upstream: UpstreamConfig,
    /// Head deadline and connection cap of the proxy's listeners.
    pub(crate) limits: crate::listen::Limits,
    /// `--ui`: where the live explorer listens (else a free loopback port, for the CLI's reads
    /// while this process holds the recordings).
    pub(crate) ui: Option<SocketAddr>,
}

/// Starts the recorder on `store` unless recording is off.
fn start_recorder(
    store: Option<&Arc<Store>>,
    no_store: bool,
    options: &RecorderOptions,
) -> Option<Recorder> {
    match (store, no_store) {
        (Some(store), false) => Some(Recorder::start(Arc::clone(store), options.clone())),
        _ => None,
    }
}

/// Loads the CA, builds the chain with `build` (which also hands back the recorder it started),
/// binds the proxy's listeners, reports their addresses to `on_ready` (proxy, transparent) and
/// serves until `shutdown`; the recorder comes back flushed.
async fn run_proxy(
    at: &ProxyOptions,
    build: impl FnOnce() -> Result<Built, ProxyRunError>,
    on_ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Option<Recorder>, ProxyRunError> {
    let leaves = Arc::new(LeafAuthority::from_ca_dir(&at.ca_dir)?);
    let (pipeline, recorder, store) = build()?;
    let listeners = Listeners::bind(at.listen, at.transparent).await?;
    let live = match store {
        Some(store) => {
            let ui = at
                .ui
                .unwrap_or(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)));
            let live = explore::start(store, ui, at.limits).await?;
            if at.ui.is_some() {
                let line = format!("discord-mitm: explorer at {}\n", live.url());
                let _ = crate::store::stdio::write_stdout(line.as_bytes());
            }
            Some(live)
        }
        None => {
            if at.ui.is_some() {
                tracing::warn!(
                    "--ui: no recordings are open (--no-store), so there is no explorer to serve"
                );
            }
            None
        }
    };
    let proxy_addr = listeners.proxy.local_addr().unwrap_or(at.listen);
    let transparent_addr = listeners
        .transparent
        .as_ref()
        .map(|l| l.local_addr().ok())
        .and_then(|a| a.or(at.transparent));
    on_ready(proxy_addr, transparent_addr);
    proxy::serve(
        listeners,
        leaves,
        at.intercept.clone(),
        Arc::new(pipeline),
        at.limits,
        shutdown,
    )
    .await?;
    drop(live);
    if let Some(recorder) = &recorder {
        recorder.flush();
    }
    Ok(recorder)
}

/// Ctrl-C, SIGTERM, or (when asked) standard input closing.
pub(crate) async fn shutdown_signal(watch_stdin: bool) {
    let stdin_closed = async move {
        if !watch_stdin {
            return std::future::pending::<()>().await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = tx.send(());
        });
        let _ = rx.await;
    };
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
        _ = stdin_closed => {},
    }
}
