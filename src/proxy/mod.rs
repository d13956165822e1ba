//! The MITM proxy: hudsucker for explicit-proxy clients (CONNECT), a transparent TLS listener
//! for hosts-file redirects, leaf certificates by host, and the decision of which hosts are
//! intercepted (Discord's) and which are tunnelled untouched. Everything intercepted goes to
//! the pipeline; nothing here knows Discord's API.
pub(crate) mod hosts;
pub(crate) mod hostsfile;
mod intercept;
pub(crate) mod limits;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request};
use http_body_util::BodyExt;
use hudsucker::{HttpContext, HttpHandler, RequestOrResponse};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub(crate) use crate::ca::LeafAuthority;
pub(crate) use hosts::{HostMatcher, DISCORD_DOMAINS};

use crate::pipeline::{PipeBody, Pipeline, RequestContext};
use crate::upstream::BoxError;

use intercept::{Interceptor, Target};
use limits::Limits;

/// Why the proxy could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("{0}")]
    Bind(String),
    #[error("proxy failed: {0}")]
    Proxy(String),
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
    let server = intercept::http1_server(&limits);
    let handler = MitmHandler {
        pipeline,
        intercept: Arc::new(intercept),
        interceptor,
    };
    let mut stop_for_proxy = stop_rx.clone();
    let proxy = hudsucker::Proxy::builder()
        .with_listener(listeners.proxy)
        .with_ca(HudsuckerCa(leaves))
        .with_http_connector(HttpConnector::new())
        .with_http_handler(handler)
        .with_server(server)
        .with_graceful_shutdown(async move {
            let _ = stop_for_proxy.wait_for(|stop| *stop).await;
        })
        .build()
        .map_err(|err| ProxyError::Proxy(err.to_string()))?;
    let proxy_task = tokio::spawn(proxy.start());
    shutdown.await;
    let _ = stop_tx.send(true);
    // Open connections get a moment to finish; long-lived ones (gateway) are cut.
    let _ = tokio::time::timeout(Duration::from_secs(3), proxy_task).await;
    if let Some(task) = transparent {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    Ok(())
}

/// Our leaf authority, shared with the transparent listener, as hudsucker's CA.
struct HudsuckerCa(Arc<LeafAuthority>);

impl hudsucker::certificate_authority::CertificateAuthority for HudsuckerCa {
    fn gen_server_config(
        &self,
        authority: &http::uri::Authority,
    ) -> impl Future<Output = Arc<rustls::ServerConfig>> + Send {
        self.0.gen_server_config(authority)
    }
}

#[derive(Clone)]
struct MitmHandler {
    pipeline: Arc<Pipeline>,
    intercept: Arc<HostMatcher>,
    interceptor: Arc<Interceptor>,
}

/// Host and port a proxied request is for: the absolute URI's authority, else the Host header.
fn target<B>(req: &Request<B>) -> Option<(String, u16, &'static str)> {
    let https = req.uri().scheme_str() == Some("https");
    let scheme = if https { "https" } else { "http" };
    let default_port = if https { 443 } else { 80 };
    if let Some(authority) = req.uri().authority() {
        return Some((
            authority.host().to_string(),
            authority.port_u16().unwrap_or(default_port),
            scheme,
        ));
    }
    let host = req.headers().get(http::header::HOST)?.to_str().ok()?;
    let authority: http::uri::Authority = host.parse().ok()?;
    Some((
        authority.host().to_string(),
        authority.port_u16().unwrap_or(default_port),
        scheme,
    ))
}

fn to_pipe_body(body: hudsucker::Body) -> PipeBody {
    body.map_err(|err| Box::new(err) as BoxError).boxed()
}

fn to_hudsucker_body(body: PipeBody) -> hudsucker::Body {
    hudsucker::Body::from(
        body.map_err(|err| hudsucker::Error::Io(std::io::Error::other(err)))
            .boxed(),
    )
}

impl MitmHandler {
    /// CONNECT to a Discord host is answered and served by us (hudsucker would fall back to a
    /// raw tunnel through the system resolver); others go to hudsucker's untouched tunnel.
    fn connect(&self, ctx: &HttpContext, mut req: Request<hudsucker::Body>) -> RequestOrResponse {
        let Some(authority) = req.uri().authority().cloned() else {
            return req.into();
        };
        if !self.intercept.matches(authority.host()) {
            return req.into();
        }
        let target = Target {
            host: authority.host().trim_end_matches('.').to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(443),
            known: true,
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let interceptor = Arc::clone(&self.interceptor);
        let client_addr = ctx.client_addr;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    interceptor
                        .tunnel(TokioIo::new(upgraded), client_addr, target)
                        .await
                }
                Err(err) => tracing::debug!(%client_addr, "CONNECT upgrade failed: {err}"),
            }
        });
        hyper::Response::new(hudsucker::Body::empty()).into()
    }
}

impl HttpHandler for MitmHandler {
    async fn handle_request(
        &mut self,
        ctx: &HttpContext,
        req: Request<hudsucker::Body>,
    ) -> RequestOrResponse {
        if req.method() == Method::CONNECT {
            return self.connect(ctx, req);
        }
        let Some((host, port, scheme)) = target(&req) else {
            return crate::pipeline::discord_error(
                http::StatusCode::BAD_REQUEST,
                "400: Bad Request",
                0,
            )
            .map(to_hudsucker_body)
            .into();
        };
        if !self.intercept.matches(&host) {
            // Plain HTTP to someone else: hudsucker forwards it untouched and unrecorded.
            return req.into();
        }
        let request_ctx = RequestContext::new(ctx.client_addr, scheme, &host, port);
        let response = self
            .pipeline
            .handle(request_ctx, req.map(to_pipe_body))
            .await;
        response.map(to_hudsucker_body).into()
    }

    async fn should_intercept_connect(
        &mut self,
        _ctx: &HttpContext,
        req: &Request<hudsucker::Body>,
    ) -> bool {
        let intercept = req
            .uri()
            .authority()
            .is_some_and(|authority| self.intercept.matches(authority.host()));
        if !intercept {
            tracing::debug!(target_host = ?req.uri().authority(), "tunnelling untouched");
        }
        intercept
    }
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
