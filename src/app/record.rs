//! `record`: the proxy in front of upstream, every intercepted exchange recorded.
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::{run_proxy, start_recorder, ProxyListen, ProxyRunError};
use crate::pipeline::chain::record_chain;
use crate::proxy::HostMatcher;
use crate::store::{RecorderOptions, Store};
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

/// Runs `record` until `shutdown`; `on_ready` gets the bound addresses (proxy, transparent).
pub async fn run(
    config: RecordConfig,
    on_ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyRunError> {
    let at = ProxyListen {
        listen: config.listen,
        transparent: config.transparent,
        ca_dir: &config.ca_dir,
        intercept: config.intercept.clone(),
    };
    let build = || {
        let upstream = Upstream::new(&config.upstream)?;
        let store = if config.no_store {
            None
        } else {
            Some(Arc::new(Store::open(&config.recordings)?))
        };
        let recorder = start_recorder(store.as_ref(), config.no_store, &config.recorder);
        Ok((record_chain(upstream, recorder.clone()), recorder))
    };
    let recorder = run_proxy(at, build, on_ready, shutdown).await?;
    if let Some(recorder) = recorder {
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
