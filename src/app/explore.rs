//! The live explorer's listener: `explore --listen`, and the one a running `record` or
//! `serve --listen` starts beside its recordings (on `--ui`, or on a free loopback port for
//! the CLI's reads). Whoever holds the database writes the listener's address and token into
//! its live file, so `recordings`, `routes` and `export` read through it.
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::explore::web::{new_token, Explorer};
use crate::listen::Limits;
use crate::store::remote::{LiveFile, LiveFileGuard};
use crate::store::{Store, StoreError};

/// Why the explorer could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExploreError {
    /// A non-loopback address without the flag that allows it.
    #[error("{addr} is not a loopback address: the explorer shows recorded traffic, so it listens on loopback only\n  fix: use 127.0.0.1:PORT, or pass --ui-allow-remote (explore: --allow-remote) to listen there anyway")]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Binding failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The live file could not be written.
    #[error("cannot write the live file beside {dir}: {source}")]
    LiveFile {
        /// The recordings directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The recordings could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refuses a non-loopback listen address unless `allow_remote`.
pub(crate) fn check_addr(addr: SocketAddr, allow_remote: bool) -> Result<(), ExploreError> {
    if addr.ip().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(ExploreError::NotLoopback { addr })
    }
}

/// A running explorer listener; stops (and removes the live file) when dropped.
pub(crate) struct LiveApi {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its access token.
    pub(crate) token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _live_file: Option<LiveFileGuard>,
}

impl LiveApi {
    /// The address to open in a browser (it carries the token).
    pub(crate) fn url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.token)
    }
}

impl Drop for LiveApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the explorer of `store` on `at` (the live file is written when this process holds
/// the database).
pub(crate) async fn start(
    store: Arc<Store>,
    at: SocketAddr,
    limits: Limits,
) -> Result<LiveApi, ExploreError> {
    start_comparing(store, None, at, limits).await
}

/// [`start`], with another recordings database the diff view can compare against.
async fn start_comparing(
    store: Arc<Store>,
    compare: Option<Arc<Store>>,
    at: SocketAddr,
    limits: Limits,
) -> Result<LiveApi, ExploreError> {
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .map_err(|source| ExploreError::Bind { addr: at, source })?;
    let addr = listener.local_addr().unwrap_or(at);
    let token = new_token();
    let live_file = if store.is_remote() {
        None
    } else {
        let dir = store.path().to_path_buf();
        let live = LiveFile {
            addr,
            token: token.clone(),
            pid: std::process::id(),
        };
        Some(
            live.write(&dir)
                .map_err(|source| ExploreError::LiveFile { dir, source })?,
        )
    };
    let mut explorer = Explorer::new(store, token.clone());
    if let Some(other) = compare {
        explorer = explorer.with_compare(other);
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(super::listener::serve_api(
        listener,
        explorer.router(),
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(LiveApi {
        addr,
        token,
        stop: Some(stop),
        _live_file: live_file,
    })
}

/// `explore`: the explorer of the recordings in `dir` (or of the process holding them) on
/// `listen` until `shutdown`, with `compare` (another recordings directory) as a second side
/// for its diff view; `on_ready` gets the address to open.
pub(crate) async fn run(
    dir: PathBuf,
    compare: Option<PathBuf>,
    listen: SocketAddr,
    limits: Limits,
    on_ready: impl FnOnce(&str, bool),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ExploreError> {
    let store = tokio::task::spawn_blocking(move || Store::open_for_reading(&dir))
        .await
        .map_err(|err| StoreError::Encode(err.to_string()))??;
    let remote = store.is_remote();
    let compare = match compare {
        Some(dir) => Some(Arc::new(
            tokio::task::spawn_blocking(move || Store::open_for_reading(&dir))
                .await
                .map_err(|err| StoreError::Encode(err.to_string()))??,
        )),
        None => None,
    };
    let api = start_comparing(Arc::new(store), compare, listen, limits).await?;
    on_ready(&api.url(), remote);
    shutdown.await;
    drop(api);
    Ok(())
}
