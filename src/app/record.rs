//! `record`: the proxy in front of upstream, every intercepted exchange recorded.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use super::{run_proxy, start_recorder, ProxyOptions, ProxyRunError};
use crate::pipeline::chain::record_chain;
use crate::store::Store;
use crate::upstream::Upstream;

/// Runs `record` until `shutdown`; `on_ready` gets the bound addresses (proxy, transparent).
pub(crate) async fn run(
    config: ProxyOptions,
    on_ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyRunError> {
    let build = || {
        let upstream = Upstream::new(&config.upstream)?;
        let store = if config.no_store {
            None
        } else {
            Some(Arc::new(Store::open(&config.recordings)?))
        };
        let recorder = start_recorder(store.as_ref(), config.no_store, &config.recorder);
        Ok((record_chain(upstream, recorder.clone()), recorder, store))
    };
    let recorder = run_proxy(&config, build, on_ready, shutdown).await?;
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
