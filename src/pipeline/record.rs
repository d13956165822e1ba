//! `record` mode: the proxy in front of upstream, every intercepted exchange recorded.
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::upstream::UpstreamResponder;
use super::websocket::WebSocketRelay;
use super::{Pipeline, Responder};
use crate::proxy::{self, HostMatcher, LeafAuthority, Listeners};
use crate::store::{Recorder, RecorderOptions, Store};
use crate::upstream::{Upstream, UpstreamConfig};

/// Everything `record` needs.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// Explicit proxy address.
    pub listen: SocketAddr,
    /// Transparent TLS listener address.
    pub transparent: Option<SocketAddr>,
    /// Recordings database directory.
    pub recordings: PathBuf,
    /// Proxy without recording.
    pub no_store: bool,
    /// Recorder options (secrets, body limit).
    pub recorder: RecorderOptions,
    /// Upstream client options.
    pub upstream: UpstreamConfig,
    /// Hosts intercepted.
    pub intercept: HostMatcher,
    /// Root CA directory.
    pub ca_dir: PathBuf,
}

/// Why `record` could not run.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Proxy(#[from] proxy::ProxyError),
}

/// The chain `record` uses: upstream only. `serve` builds a longer one from the same parts.
pub fn record_pipeline(upstream: Upstream, recorder: Option<Recorder>) -> Pipeline {
    let relay = Arc::new(WebSocketRelay::new(recorder.clone()));
    let chain: Vec<Arc<dyn Responder>> = vec![Arc::new(UpstreamResponder::new(upstream, relay))];
    Pipeline::new(chain, recorder, false)
}

/// Runs `record` until `shutdown`; `on_ready` gets the bound addresses (proxy, transparent).
pub async fn run(
    config: RecordConfig,
    on_ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RecordError> {
    let leaves = Arc::new(LeafAuthority::from_ca_dir(&config.ca_dir)?);
    let upstream = Upstream::new(&config.upstream)?;
    let recorder = if config.no_store {
        None
    } else {
        let store = Arc::new(Store::open(&config.recordings)?);
        Some(Recorder::start(store, config.recorder.clone()))
    };
    let pipeline = Arc::new(record_pipeline(upstream, recorder.clone()));
    let listeners = Listeners::bind(config.listen, config.transparent).await?;
    let proxy_addr = listeners.proxy.local_addr().unwrap_or(config.listen);
    let transparent_addr = listeners
        .transparent
        .as_ref()
        .map(|l| l.local_addr().ok())
        .and_then(|a| a.or(config.transparent));
    on_ready(proxy_addr, transparent_addr);
    proxy::serve(listeners, leaves, config.intercept, pipeline, shutdown).await?;
    if let Some(recorder) = recorder {
        recorder.flush();
        let dropped = recorder.dropped();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "events were dropped because the recorder fell behind"
            );
        }
    }
    Ok(())
}
