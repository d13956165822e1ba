//! The explicit proxy's front door: our own accept loop (the listener limits: a cap on
//! connections open at once, which counts CONNECT tunnels until they close, and the head
//! deadline, which also closes idle keep-alive connections) and the per-request decision.
//! CONNECT to an intercepted host is served by the [`Interceptor`]; CONNECT to any other host
//! is a plain byte tunnel; plain HTTP to an intercepted host goes to the pipeline, to any other
//! host it is forwarded untouched (WebSocket upgrades included).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;

use super::hosts::HostMatcher;
use super::intercept::{http1_server, Interceptor, Target};
use crate::listen::{Accepted, Limits, Listener};
use crate::pipeline::{PipeBody, Pipeline, RequestContext};
use crate::upstream::BoxError;

/// How long a tunnel to a host we do not intercept may take to connect.
const TUNNEL_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open requests get to finish once the proxy is stopped.
const DRAIN: Duration = Duration::from_secs(3);

/// What every connection of the explicit proxy shares.
pub(crate) struct Front {
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) intercept: HostMatcher,
    pub(crate) interceptor: Arc<Interceptor>,
    /// Forwards plain HTTP for hosts we do not intercept.
    pub(crate) passthrough: Client<HttpConnector, Incoming>,
}

impl Front {
    /// The shared parts; plain HTTP to other hosts goes out through the system resolver.
    pub(crate) fn new(
        pipeline: Arc<Pipeline>,
        intercept: HostMatcher,
        interceptor: Arc<Interceptor>,
    ) -> Front {
        let passthrough = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        Front {
            pipeline,
            intercept,
            interceptor,
            passthrough,
        }
    }
}

/// Serves the explicit proxy on `listener` until `stop` turns true, then lets open requests
/// finish for a moment.
pub(crate) async fn serve_explicit(
    listener: TcpListener,
    front: Arc<Front>,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let server = http1_server(&limits);
    let at = Listener {
        name: "proxy",
        server: &server,
        max_connections: limits.max_connections,
        first_byte: limits.head_deadline(),
        drain: DRAIN,
    };
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    at.run(listener, stopped, |accepted: Accepted| {
        let front = Arc::clone(&front);
        // The permit is held by the connection and by the tunnel a CONNECT opens, whichever
        // ends last.
        hyper::service::service_fn(move |req| {
            accepted.calls.note();
            let front = Arc::clone(&front);
            let permit = Arc::clone(&accepted.permit);
            let peer = accepted.peer;
            async move { Ok::<_, std::convert::Infallible>(front.handle(peer, req, permit).await) }
        })
    })
    .await;
}

impl Front {
    /// One request on the explicit proxy.
    async fn handle(
        &self,
        client_addr: SocketAddr,
        req: Request<Incoming>,
        permit: Arc<OwnedSemaphorePermit>,
    ) -> Response<PipeBody> {
        if req.method() == Method::CONNECT {
            return self.connect(client_addr, req, permit);
        }
        let Some((host, port, scheme)) = target(&req) else {
            return bad_request();
        };
        if !self.intercept.matches(&host) {
            return self
                .pass_through(client_addr, req, &host, port, permit)
                .await;
        }
        let ctx = RequestContext::new(client_addr, scheme, &host, port);
        let req = req.map(|body| body.map_err(|err| Box::new(err) as BoxError).boxed());
        self.pipeline.handle(ctx, req).await
    }

    /// CONNECT: answered 200 at once; the tunnel is ours (intercepted) or plain bytes.
    fn connect(
        &self,
        client_addr: SocketAddr,
        mut req: Request<Incoming>,
        permit: Arc<OwnedSemaphorePermit>,
    ) -> Response<PipeBody> {
        let Some(authority) = req.uri().authority().cloned() else {
            return bad_request();
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let intercepted = self.intercept.matches(authority.host());
        let interceptor = Arc::clone(&self.interceptor);
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => TokioIo::new(upgraded),
                Err(err) => {
                    tracing::debug!(%client_addr, "CONNECT upgrade failed: {err}");
                    return;
                }
            };
            if intercepted {
                let target = Target {
                    host: authority.host().trim_end_matches('.').to_ascii_lowercase(),
                    port: authority.port_u16().unwrap_or(443),
                    known: true,
                };
                interceptor.tunnel(upgraded, client_addr, target).await;
            } else {
                tracing::debug!(%client_addr, %authority, "tunnelling untouched");
                raw_tunnel(upgraded, client_addr, authority.as_str()).await;
            }
            drop(permit);
        });
        Response::new(empty_body())
    }

    /// Plain HTTP for a host we do not intercept: forwarded untouched and unrecorded; an
    /// upgrade (WebSocket) the server accepts is joined byte for byte.
    async fn pass_through(
        &self,
        client_addr: SocketAddr,
        mut req: Request<Incoming>,
        host: &str,
        port: u16,
        permit: Arc<OwnedSemaphorePermit>,
    ) -> Response<PipeBody> {
        if req.uri().authority().is_none() {
            let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
            match format!("http://{host}:{port}{path}").parse() {
                Ok(uri) => *req.uri_mut() = uri,
                Err(_) => return bad_request(),
            }
        }
        req.headers_mut().remove("proxy-connection");
        let client_upgrade = hyper::upgrade::on(&mut req);
        let mut response = match self.passthrough.request(req).await {
            Ok(response) => response,
            Err(err) => {
                tracing::warn!(%client_addr, "forwarding to {host}:{port} failed: {err}");
                return crate::pipeline::discord_error(
                    StatusCode::BAD_GATEWAY,
                    "502: Bad Gateway",
                    0,
                );
            }
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let server_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                if let (Ok(client), Ok(server)) = (client_upgrade.await, server_upgrade.await) {
                    let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
                drop(permit);
            });
        }
        response.map(|body| body.map_err(|err| Box::new(err) as BoxError).boxed())
    }
}

/// Joins the client's tunnel to `authority` byte for byte.
async fn raw_tunnel(
    mut client: TokioIo<hyper::upgrade::Upgraded>,
    client_addr: SocketAddr,
    authority: &str,
) {
    let server =
        match tokio::time::timeout(TUNNEL_CONNECT_TIMEOUT, TcpStream::connect(authority)).await {
            Ok(Ok(server)) => server,
            Ok(Err(err)) => {
                tracing::warn!(%client_addr, "tunnel to {authority} failed: {err}");
                return;
            }
            Err(_) => {
                tracing::warn!(%client_addr, "tunnel to {authority}: no connection within 10s");
                return;
            }
        };
    let mut server = server;
    if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
        tracing::debug!(%client_addr, "tunnel to {authority} ended: {err}");
    }
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

fn bad_request() -> Response<PipeBody> {
    crate::pipeline::discord_error(StatusCode::BAD_REQUEST, "400: Bad Request", 0)
}

fn empty_body() -> PipeBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}
