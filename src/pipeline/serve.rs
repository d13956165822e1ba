//! `serve --listen`: the MITM proxy in front of the in-process backend, with recordings and
//! upstream behind it. Which links the chain has is decided by [`serve_chain`] and nowhere else.
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use super::backend::{BackendResponder, ADVERTISED_CDN, ADVERTISED_GATEWAY};
use super::replay::{ReplayOptions, ReplayResponder};
use super::upstream::UpstreamResponder;
use super::websocket::WebSocketRelay;
use super::{Pipeline, Responder};
use crate::backend::gateway::Gateway;
use crate::backend::routes::client::{self, ClientConfig};
use crate::backend::server::{self, ServeError, ServeOptions};
use crate::proxy::{self, HostMatcher, LeafAuthority, Listeners};
use crate::store::{Recorder, RecorderOptions, Store};
use crate::upstream::{Upstream, UpstreamConfig};

/// What answers after the backend declines (`--fallback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// Recorded responses are replayed.
    pub recorded: bool,
    /// Requests are forwarded upstream (and recorded).
    pub forward: bool,
}

impl Default for Fallback {
    fn default() -> Self {
        Fallback {
            recorded: true,
            forward: true,
        }
    }
}

/// A `--fallback` value that is not one of the accepted forms.
#[derive(Debug, thiserror::Error)]
#[error("invalid fallback {0:?}: expected recorded,forward | recorded | forward | none")]
pub struct FallbackError(String);

impl FromStr for Fallback {
    type Err = FallbackError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut fallback = Fallback {
            recorded: false,
            forward: false,
        };
        if text.trim() == "none" {
            return Ok(fallback);
        }
        for part in text.split(',').map(str::trim) {
            match part {
                "recorded" if !fallback.recorded && !fallback.forward => fallback.recorded = true,
                "forward" if !fallback.forward => fallback.forward = true,
                _ => return Err(FallbackError(text.to_string())),
            }
        }
        Ok(fallback)
    }
}

/// Everything the proxy side of `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeProxyConfig {
    /// Explicit proxy address.
    pub listen: SocketAddr,
    /// Transparent TLS listener address.
    pub transparent: Option<SocketAddr>,
    /// Recordings database (replayed from, and where forwarded exchanges are recorded).
    pub recordings: PathBuf,
    /// The chain after the backend.
    pub fallback: Fallback,
    /// How recordings are matched.
    pub replay: ReplayOptions,
    /// Recorder options (secrets, body limit).
    pub recorder: RecorderOptions,
    /// Upstream client options.
    pub upstream: UpstreamConfig,
    /// Hosts intercepted.
    pub intercept: HostMatcher,
    /// Root CA directory.
    pub ca_dir: PathBuf,
    /// What the desktop client's update check is told.
    pub client: ClientConfig,
    /// Record nothing (exchanges and gateway sessions are recorded otherwise).
    pub no_store: bool,
}

/// Why the proxy side of `serve` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeProxyError {
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Proxy(#[from] proxy::ProxyError),
}

/// The one place the chain is decided: backend → recordings → upstream → Discord's 404
/// (added by [`Pipeline`]); every answer tagged with its source.
pub fn serve_chain(
    backend: BackendResponder,
    fallback: Fallback,
    recordings: Option<Arc<Store>>,
    replay: ReplayOptions,
    upstream: Option<Upstream>,
    recorder: Option<Recorder>,
) -> Pipeline {
    let mut chain: Vec<Arc<dyn Responder>> = vec![Arc::new(backend)];
    if fallback.recorded {
        if let Some(store) = recordings {
            chain.push(Arc::new(ReplayResponder::new(store, replay)));
        }
    }
    if fallback.forward {
        if let Some(upstream) = upstream {
            let relay = Arc::new(WebSocketRelay::new(recorder.clone()));
            chain.push(Arc::new(
                UpstreamResponder::new(upstream, relay).ending_the_chain(),
            ));
        }
    }
    Pipeline::new(chain, recorder, true)
}

/// Runs the proxy in front of `state`'s backend until `shutdown`; `on_ready` gets the bound
/// addresses (proxy, transparent).
pub async fn run(
    config: ServeProxyConfig,
    state: crate::backend::AppState,
    gateway: Gateway,
    on_ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeProxyError> {
    let leaves = Arc::new(LeafAuthority::from_ca_dir(&config.ca_dir)?);
    let needs_store = config.fallback.recorded || !config.no_store;
    let store = if needs_store {
        Some(Arc::new(Store::open(&config.recordings)?))
    } else {
        None
    };
    let upstream = if config.fallback.forward {
        Some(Upstream::new(&config.upstream)?)
    } else {
        None
    };
    let recorder = match (&store, config.no_store) {
        (Some(store), false) => Some(Recorder::start(Arc::clone(store), config.recorder.clone())),
        _ => None,
    };
    let max_body = state.config.max_body_bytes;
    let routers = vec![
        client::router(config.client.clone()),
        crate::backend::router(state),
    ];
    let backend = BackendResponder::new(routers, gateway, max_body).recording(recorder.clone());
    let pipeline = Arc::new(serve_chain(
        backend,
        config.fallback,
        store,
        config.replay.clone(),
        upstream,
        recorder.clone(),
    ));
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
    }
    Ok(())
}

/// `serve` with `--listen`: the backend on `--api` as usual plus the proxy in front of it, both
/// over one state and one gateway, stopped together.
pub async fn run_with_proxy(
    options: ServeOptions,
    proxy_config: ServeProxyConfig,
) -> Result<(), ServeWithProxyError> {
    let (store, origin) = server::prepare_store(&options)?;
    let state = crate::backend::AppState::new(store.clone(), options.config.clone());
    let listener = tokio::net::TcpListener::bind(options.api)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.api,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Io)?;
    // The backend's part now; the proxy's lines and the one "Press Ctrl-C" once it is bound.
    print!(
        "{}",
        server::banner_details(&store, addr, &origin).map_err(ServeError::Store)?
    );
    let recording = (!proxy_config.no_store).then(|| proxy_config.recordings.clone());
    let gateway = Gateway::start(state.clone(), options.gateway.clone());
    let app = crate::backend::router(state.clone()).merge(gateway.router());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let api_gateway = gateway.clone();
    let api_stop = stopped(stop_rx.clone());
    let api = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                api_stop.await;
                api_gateway
                    .shutdown(std::time::Duration::from_secs(2))
                    .await;
            })
            .await
    });
    let exit_on_stdin_close = options.exit_on_stdin_close;
    tokio::spawn(async move {
        server::shutdown_signal(exit_on_stdin_close).await;
        let _ = stop_tx.send(true);
    });
    let proxy_result = run(
        proxy_config,
        state,
        gateway,
        |proxy, transparent| {
            print!("{}", proxy_banner(proxy, transparent, recording.as_deref()));
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
        },
        stopped(stop_rx),
    )
    .await;
    let _ = api.await;
    store.flush().map_err(ServeError::Store)?;
    proxy_result?;
    Ok(())
}

/// The proxy's part of `serve --listen`'s banner, ending with the one "Press Ctrl-C" line.
pub fn proxy_banner(
    proxy: SocketAddr,
    transparent: Option<SocketAddr>,
    recording: Option<&std::path::Path>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  proxy:    http://{proxy}   (HTTPS_PROXY; trust the CA from `discord-mitm ca`)"
    );
    let _ = writeln!(
        out,
        "            through it: REST https://discord.com/api/v10, gateway {ADVERTISED_GATEWAY}, attachments {ADVERTISED_CDN}"
    );
    if let Some(addr) = transparent {
        let _ = writeln!(out, "  transparent TLS on {addr}");
    }
    match recording {
        Some(dir) => {
            let _ = writeln!(
                out,
                "  recording exchanges and gateway sessions into {}",
                dir.display()
            );
        }
        None => {
            let _ = writeln!(out, "  not recording (--no-store)");
        }
    }
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    out
}

/// Why `serve --listen` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeWithProxyError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Proxy(#[from] ServeProxyError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_accepts_the_documented_forms_only() {
        let parse = |t: &str| t.parse::<Fallback>().map(|f| (f.recorded, f.forward)).ok();
        assert_eq!(parse("recorded,forward"), Some((true, true)));
        assert_eq!(parse("recorded"), Some((true, false)));
        assert_eq!(parse("forward"), Some((false, true)));
        assert_eq!(parse("none"), Some((false, false)));
        assert_eq!(parse("forward,recorded"), None);
        assert_eq!(parse("upstream"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn the_proxy_banner_names_the_proxy_and_recording_and_says_ctrl_c_once() {
        let proxy: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let tls: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let text = proxy_banner(proxy, Some(tls), Some(std::path::Path::new("rec")));
        assert!(text.contains("proxy:    http://127.0.0.1:8080"), "{text}");
        assert!(text.contains("transparent TLS on 127.0.0.1:8443"), "{text}");
        assert!(text.contains("into rec"), "{text}");
        assert_eq!(text.matches("Press Ctrl-C").count(), 1, "{text}");
        assert!(text.ends_with("Press Ctrl-C to stop.\n"), "{text}");
        let quiet = proxy_banner(proxy, None, None);
        assert!(quiet.contains("not recording (--no-store)"), "{quiet}");
        assert!(!quiet.contains("transparent"), "{quiet}");
    }
}
