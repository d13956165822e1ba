//! `serve --listen`: the MITM proxy in front of the in-process backend, with recordings and
//! upstream behind it (the chain itself is [`crate::pipeline::chain::serve_chain`]).
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use super::durable::{backend_router, Durability};
use super::server::{self, Backend, ServeError, ServeOptions};
use super::{run_proxy, shutdown_signal, start_recorder, ProxyOptions, ProxyRunError};
use crate::backend::gateway::Gateway;
use crate::backend::routes::client::{self, ClientConfig};
use crate::pipeline::backend::{BackendResponder, ADVERTISED_CDN, ADVERTISED_GATEWAY};
use crate::pipeline::chain::{serve_chain, Fallback, ServeLinks};
use crate::pipeline::identity::{
    CallerLookup, Identity, IdentityConfig, LocalCaller, UpstreamToken,
};
use crate::pipeline::replay::ReplayOptions;
use crate::store::Store;
use crate::upstream::Upstream;

/// Everything the proxy side of `serve` needs: the proxy itself (its recordings are replayed
/// from, and forwarded exchanges and gateway sessions recorded into them unless `no_store`)
/// plus the chain behind it.
#[derive(Debug, Clone)]
pub(crate) struct ServeProxyConfig {
    /// Listeners, CA, recordings, recorder and upstream client.
    pub(crate) proxy: ProxyOptions,
    /// The chain after the backend.
    pub(crate) fallback: Fallback,
    /// How recordings are matched.
    pub(crate) replay: ReplayOptions,
    /// What the desktop client's update check is told.
    pub(crate) client: ClientConfig,
    /// When the backend's writes are acknowledged.
    pub(crate) durability: Durability,
    /// `--upstream-token`: the real credential forwarded requests carry.
    pub(crate) upstream_token: Option<UpstreamToken>,
}

/// Runs the proxy in front of `state`'s backend until `shutdown`; `on_ready` gets the bound
/// addresses (proxy, transparent).
pub(crate) async fn run(
    config: ServeProxyConfig,
    state: crate::backend::AppState,
    identity: Arc<Identity>,
    gateway: Gateway,
    on_ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyRunError> {
    let at = &config.proxy;
    let build = || {
        let needs_store = config.fallback.recorded || !at.no_store;
        let store = if needs_store {
            Some(Arc::new(Store::open(&at.recordings)?))
        } else {
            None
        };
        let upstream = if config.fallback.forward {
            Some(Upstream::new(&at.upstream)?)
        } else {
            None
        };
        let recorder = start_recorder(store.as_ref(), at.no_store, &at.recorder);
        let max_body = state.config.max_body_bytes;
        let routers = vec![
            client::router(config.client.clone()),
            backend_router(state, config.durability, None),
        ];
        let backend = BackendResponder::new(routers, gateway, max_body).recording(recorder.clone());
        let pipeline = serve_chain(
            backend,
            ServeLinks {
                fallback: config.fallback,
                recordings: store.clone(),
                replay: config.replay.clone(),
                upstream,
                recorder: recorder.clone(),
                identity: Arc::clone(&identity),
            },
        );
        Ok((pipeline, recorder, store))
    };
    run_proxy(at, build, on_ready, shutdown).await?;
    Ok(())
}

/// `serve` with `--listen`: the backend on `--api` as usual plus the proxy in front of it, both
/// over one state and one gateway, stopped together.
pub(crate) async fn run_with_proxy(
    options: ServeOptions,
    proxy_config: ServeProxyConfig,
) -> Result<(), ServeError> {
    let backend = Backend::open(&options).await?;
    // The backend's part now; the proxy's lines and the one "Press Ctrl-C" once it is bound.
    print!(
        "{}",
        server::banner_details(
            &backend.store,
            backend.addr,
            &backend.origin,
            options.durability,
            options.config.control.as_ref(),
        )?
    );
    let recording = (!proxy_config.proxy.no_store).then(|| proxy_config.proxy.recordings.clone());
    let identity = Arc::new(Identity::new(
        local_callers(backend.state.clone()),
        identity_config(&options, &proxy_config)?,
    ));
    let identity_lines = identity.banner_lines();
    let (gateway, app) = backend.start_gateway(&options);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let api_gateway = gateway.clone();
    let api_stop = stopped(stop_rx.clone());
    let listener = backend.listener;
    let limits = options.limits;
    let api = tokio::spawn(super::listener::serve_api(
        listener,
        app,
        limits,
        async move {
            api_stop.await;
            api_gateway
                .shutdown(std::time::Duration::from_secs(2))
                .await;
        },
    ));
    let exit_on_stdin_close = options.exit_on_stdin_close;
    tokio::spawn(async move {
        shutdown_signal(exit_on_stdin_close).await;
        let _ = stop_tx.send(true);
    });
    let proxy_result = run(
        proxy_config,
        backend.state,
        identity,
        gateway,
        |proxy, transparent| {
            print!(
                "{}",
                proxy_banner(proxy, transparent, recording.as_deref(), &identity_lines)
            );
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
        },
        stopped(stop_rx),
    )
    .await;
    let _ = api.await;
    // After a failed write (said when it happened) there is nothing more to flush.
    if !backend.store.write_halted() {
        backend.store.flush()?;
    }
    proxy_result?;
    Ok(())
}

/// Finds the local user behind a token the backend issued.
fn local_callers(state: crate::backend::AppState) -> CallerLookup {
    Arc::new(move |authorization: &str| {
        crate::backend::extract::authenticate(&state, authorization)
            .ok()
            .map(|user| LocalCaller {
                id: user.id.to_string(),
                bot: user.bot,
            })
    })
}

/// `--upstream-token` and the fixture's per-user `upstream_token`s.
fn identity_config(
    options: &ServeOptions,
    proxy: &ServeProxyConfig,
) -> Result<IdentityConfig, ServeError> {
    let mut config = IdentityConfig {
        upstream_token: proxy.upstream_token.clone(),
        ..IdentityConfig::default()
    };
    // A world built from recordings has no upstream tokens (the recorded ones are redacted).
    if let Some(super::server::FixtureSource::File(fixture)) = &options.fixture {
        let tokens = crate::backend::world::fixture_upstream_tokens(fixture)?;
        for (user_id, token) in tokens.0 {
            // Checked by the same rule when the fixture was read; skipped if it changed since.
            if let Ok(token) = UpstreamToken::new(&token) {
                config.per_user.insert(user_id, token);
            }
        }
    }
    Ok(config)
}

/// The proxy's part of `serve --listen`'s banner, ending with the one "Press Ctrl-C" line.
pub(crate) fn proxy_banner(
    proxy: SocketAddr,
    transparent: Option<SocketAddr>,
    recording: Option<&std::path::Path>,
    identity: &[String],
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
    let _ = writeln!(
        out,
        "  desktop client: start Discord with --proxy-server=http://{proxy} (Chromium/Electron) after trusting the CA"
    );
    match transparent {
        Some(addr) => {
            let _ = writeln!(out, "  transparent TLS on {addr}");
            let _ = writeln!(
                out,
                "            or point discord.com and gateway.discord.gg at {} in the hosts file (`discord-mitm hosts`)",
                addr.ip()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "            or hosts-file mode: `discord-mitm hosts` with the TLS listener on (see `serve --help`)"
            );
        }
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
    for line in identity {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_banner_names_the_proxy_and_recording_and_says_ctrl_c_once() {
        let proxy: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let tls: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let identity = vec!["  identity: one self".to_string()];
        let text = proxy_banner(
            proxy,
            Some(tls),
            Some(std::path::Path::new("rec")),
            &identity,
        );
        assert!(
            text.contains("  identity: one self\nPress Ctrl-C"),
            "{text}"
        );
        assert!(text.contains("proxy:    http://127.0.0.1:8080"), "{text}");
        assert!(text.contains("transparent TLS on 127.0.0.1:8443"), "{text}");
        assert!(
            text.contains("--proxy-server=http://127.0.0.1:8080"),
            "{text}"
        );
        assert!(text.contains("hosts file"), "{text}");
        assert!(text.contains("into rec"), "{text}");
        assert_eq!(text.matches("Press Ctrl-C").count(), 1, "{text}");
        assert!(text.ends_with("Press Ctrl-C to stop.\n"), "{text}");
        let quiet = proxy_banner(proxy, None, None, &[]);
        assert!(quiet.contains("not recording (--no-store)"), "{quiet}");
        assert!(!quiet.contains("transparent"), "{quiet}");
    }
}
