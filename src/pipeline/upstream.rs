//! The last link of the chain: forward to real Discord through the one upstream client. In
//! `serve` the identity rules ([`super::identity`]) apply on the way: the credential is
//! replaced and the local and real user ids are swapped.
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, HOST};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;

use super::backend::API_HOSTS;
use super::identity::{self, Identity};
use super::websocket::{self, WebSocketRelay};
use super::{
    bad_gateway, buffer_body, discord_error, full_body, Answer, Outcome, PipeBody, RequestContext,
    Responder, Source, HOP_BY_HOP,
};
use crate::store::route::route_template;
use crate::store::Rewrite;
use crate::upstream::{Upstream, UpstreamAddr, UpstreamError};

/// Largest JSON body (request or answer) whose ids are swapped; larger ones pass untouched.
const MAX_SWAPPED_BODY: usize = 8 * 1024 * 1024;
/// Largest `/users/@me` answer read to learn a real account's id.
const MAX_ME_BODY: usize = 1024 * 1024;

/// Forwards every request (and WebSocket upgrade) upstream.
pub struct UpstreamResponder {
    upstream: Upstream,
    relay: Arc<WebSocketRelay>,
    unreachable_is_not_found: bool,
    identity: Option<Arc<Identity>>,
}

/// The ids swapped for one forwarded request: the caller's local id and the real account's.
struct IdSwap {
    local: String,
    real: String,
}

impl UpstreamResponder {
    /// Forwards through `upstream`; gateway sessions are tapped by `relay`.
    pub fn new(upstream: Upstream, relay: Arc<WebSocketRelay>) -> Self {
        UpstreamResponder {
            upstream,
            relay,
            unreachable_is_not_found: false,
            identity: None,
        }
    }

    /// Applies `serve`'s identity rules to what it forwards (see [`super::identity`]).
    pub fn with_identity(mut self, identity: Arc<Identity>) -> Self {
        self.identity = Some(identity);
        self
    }

    /// As the last link of `serve`'s chain: when upstream cannot be reached at all (no DNS, no
    /// route, refused), the chain ends in Discord's 404 (source `none`) instead of a 502.
    pub fn ending_the_chain(mut self) -> Self {
        self.unreachable_is_not_found = true;
        self
    }

    async fn forward(&self, ctx: &RequestContext, req: Request<PipeBody>) -> Answer {
        let (mut parts, mut body) = req.into_parts();
        let mut rewrites = Vec::new();
        let mut swap = None;
        if let Some(identity) = &self.identity {
            (body, swap) = self
                .apply_identity(identity, ctx, &mut parts, body, &mut rewrites)
                .await;
        }
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        let uri: Uri =
            match format!("{}://{}{}", ctx.scheme, ctx.authority(), path_and_query).parse() {
                Ok(uri) => uri,
                Err(err) => {
                    return Answer {
                        response: discord_error(StatusCode::BAD_REQUEST, "400: Bad Request", 0),
                        source: Source::Proxy,
                        upstream_addr: None,
                        error: Some(format!("cannot build upstream URL: {err}")),
                        record: true,
                        rewrites,
                    }
                }
            };
        parts.uri = uri;
        parts.version = http::Version::HTTP_11;
        for name in HOP_BY_HOP {
            parts.headers.remove(*name);
        }
        if !parts.headers.contains_key(HOST) {
            if let Ok(value) = ctx.authority().parse() {
                parts.headers.insert(HOST, value);
            }
        }
        match self
            .upstream
            .request(Request::from_parts(parts, body))
            .await
        {
            Ok(response) => {
                let upstream_addr = response.extensions().get::<UpstreamAddr>().map(|a| a.0);
                let mut response = response.map(|body| body.map_err(Into::into).boxed());
                if let Some(swap) = &swap {
                    response = swap_answer_ids(response, swap, &mut rewrites).await;
                }
                Answer {
                    response,
                    source: Source::Upstream,
                    upstream_addr,
                    error: None,
                    record: true,
                    rewrites,
                }
            }
            Err(err) if self.unreachable_is_not_found && is_unreachable(&err) => {
                tracing::info!(host = %ctx.host, "upstream unreachable, answering 404: {err}");
                Answer {
                    response: discord_error(StatusCode::NOT_FOUND, "404: Not Found", 0),
                    source: Source::None,
                    upstream_addr: None,
                    error: Some(err.to_string()),
                    record: true,
                    rewrites: rewrites.clone(),
                }
            }
            Err(err) => {
                let reason = err.reason();
                let hint = err.hint();
                tracing::warn!(
                    host = %ctx.host,
                    client = %ctx.client_addr,
                    "upstream failed, answering 502: {reason}{}",
                    hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default()
                );
                Answer {
                    response: bad_gateway(&reason, hint.as_deref()),
                    source: Source::Proxy,
                    upstream_addr: None,
                    error: Some(err.to_string()),
                    record: true,
                    rewrites: rewrites.clone(),
                }
            }
        }
    }
}

impl UpstreamResponder {
    /// Replaces the request's credential and swaps the caller's id for the real account's in
    /// its path and JSON body; returns the body to send and the swap to undo in the answer.
    async fn apply_identity(
        &self,
        identity: &Identity,
        ctx: &RequestContext,
        parts: &mut http::request::Parts,
        body: PipeBody,
        rewrites: &mut Vec<Rewrite>,
    ) -> (PipeBody, Option<IdSwap>) {
        let Some(original) = parts.headers.remove(AUTHORIZATION) else {
            return (body, None);
        };
        let credential = identity.forward(original.to_str().unwrap_or(""));
        rewrites.push(identity::credential_rewrite(
            credential.caller.as_ref(),
            credential.value.is_some(),
        ));
        let Some(value) = credential
            .value
            .and_then(|v| HeaderValue::from_str(&v).ok())
        else {
            let template = route_template(parts.uri.path());
            if identity.first_unauthenticated(&template) {
                tracing::warn!(
                    route = %template,
                    "forwarding {} {template} upstream without Authorization: serve's own tokens never go upstream and there is no upstream token (--upstream-token, or upstream_token in the fixture); said once per route",
                    parts.method
                );
            }
            return (body, None);
        };
        parts.headers.insert(AUTHORIZATION, value.clone());
        let Some(caller) = credential.caller else {
            return (body, None);
        };
        let Some(real) = self.real_id(identity, ctx, &value).await else {
            return (body, None);
        };
        if real == caller.id {
            return (body, None);
        }
        let swap = IdSwap {
            local: caller.id,
            real,
        };
        let mut swapped = swap_in_uri(&mut parts.uri, &swap);
        let body = if is_plain_json(&parts.headers) {
            match read_within(body, MAX_SWAPPED_BODY).await {
                Ok(bytes) => {
                    let pairs = [(swap.local.clone(), swap.real.clone())];
                    match identity::swap_ids(&bytes, &pairs) {
                        Some((out, _)) => {
                            swapped = true;
                            parts
                                .headers
                                .insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
                            full_body(Bytes::from(out))
                        }
                        None => full_body(bytes),
                    }
                }
                Err(untouched) => untouched,
            }
        } else {
            body
        };
        if swapped {
            rewrites.push(identity::rewrite(
                identity::REQUEST_ID,
                &swap.local,
                &swap.real,
            ));
        }
        // The answer's ids are swapped back, so it must come readable.
        parts
            .headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        (body, Some(swap))
    }

    /// The real account id behind the `Authorization` value `sent`: asked of upstream's
    /// `/users/@me` once, then remembered (failures too, so a bad token is asked once).
    async fn real_id(
        &self,
        identity: &Identity,
        ctx: &RequestContext,
        sent: &HeaderValue,
    ) -> Option<String> {
        let key = sent.to_str().ok()?;
        if let Some(known) = identity.known_real_id(key) {
            return known;
        }
        let host = if API_HOSTS.contains(&ctx.host.as_str()) {
            ctx.authority()
        } else {
            API_HOSTS[0].to_string()
        };
        let request = Request::get(format!("https://{host}/api/v9/users/@me"))
            .header(HOST, host.as_str())
            .header(AUTHORIZATION, sent.clone())
            .header(ACCEPT_ENCODING, "identity")
            .body(super::empty_body());
        let id = match request {
            Ok(request) => match self.upstream.request(request).await {
                Ok(response) if response.status() == StatusCode::OK => {
                    let body = response.into_body().map_err(Into::into).boxed();
                    match buffer_body(body, MAX_ME_BODY).await {
                        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                            .ok()
                            .and_then(|me| me["id"].as_str().map(str::to_string)),
                        Err(err) => {
                            tracing::warn!("reading upstream's /users/@me: {err}");
                            None
                        }
                    }
                }
                Ok(response) => {
                    tracing::warn!(
                        status = response.status().as_u16(),
                        "upstream's /users/@me refused the upstream token: ids are not swapped for it"
                    );
                    None
                }
                Err(err) => {
                    tracing::warn!("asking upstream's /users/@me: {err}");
                    None
                }
            },
            Err(err) => {
                tracing::warn!("building the /users/@me request: {err}");
                None
            }
        };
        if let Some(id) = &id {
            tracing::info!(real_id = %id, "the upstream token belongs to user {id}");
        }
        identity.remember_real_id(key, id.clone());
        id
    }
}

/// Swaps the local id for the real one in the path segments and query values of `uri`;
/// whether anything changed.
fn swap_in_uri(uri: &mut Uri, swap: &IdSwap) -> bool {
    let path = identity::swap_path_segments(uri.path(), &swap.local, &swap.real);
    let query = uri
        .query()
        .and_then(|q| identity::swap_query_values(q, &swap.local, &swap.real));
    if path.is_none() && query.is_none() {
        return false;
    }
    let path = path.unwrap_or_else(|| uri.path().to_string());
    let query = query
        .or_else(|| uri.query().map(str::to_string))
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    match format!("{path}{query}").parse() {
        Ok(swapped) => {
            *uri = swapped;
            true
        }
        Err(_) => false,
    }
}

/// Whether a body is JSON sent as is (no content coding).
fn is_plain_json(headers: &HeaderMap) -> bool {
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let coded = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"));
    json && !coded
}

/// The whole body if it ends within `limit` bytes; else (or if it fails) the body as it
/// would have come, the bytes already read first.
async fn read_within(mut body: PipeBody, limit: usize) -> Result<Bytes, PipeBody> {
    let mut buffered = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    buffered.extend_from_slice(&data);
                    if buffered.len() > limit {
                        let rest = http_body_util::BodyStream::new(body);
                        return Err(prefixed(buffered, rest));
                    }
                }
            }
            Err(err) => {
                return Err(prefixed(
                    buffered,
                    futures::stream::once(async move { Err(err) }),
                ));
            }
        }
    }
    Ok(Bytes::from(buffered))
}

/// A body of `prefix` then what `rest` yields.
fn prefixed<S>(prefix: Vec<u8>, rest: S) -> PipeBody
where
    S: futures::Stream<Item = Result<http_body::Frame<Bytes>, crate::upstream::BoxError>>
        + Send
        + Sync
        + 'static,
{
    use futures::StreamExt as _;
    let head =
        futures::stream::once(async move { Ok(http_body::Frame::data(Bytes::from(prefix))) });
    BodyExt::boxed(http_body_util::StreamBody::new(head.chain(rest)))
}

/// The answer with the real account's id swapped back to the caller's in its JSON body.
async fn swap_answer_ids(
    response: Response<PipeBody>,
    swap: &IdSwap,
    rewrites: &mut Vec<Rewrite>,
) -> Response<PipeBody> {
    if !is_plain_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match read_within(body, MAX_SWAPPED_BODY).await {
        Ok(bytes) => bytes,
        Err(untouched) => return Response::from_parts(parts, untouched),
    };
    let pairs = [(swap.real.clone(), swap.local.clone())];
    let body = match identity::swap_ids(&bytes, &pairs) {
        Some((out, _)) => {
            rewrites.push(identity::rewrite(
                identity::RESPONSE_ID,
                &swap.real,
                &swap.local,
            ));
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
            Bytes::from(out)
        }
        None => bytes,
    };
    Response::from_parts(parts, full_body(body))
}

/// Errors meaning nobody could be reached (as opposed to upstream failing mid-answer).
fn is_unreachable(err: &UpstreamError) -> bool {
    matches!(
        err,
        UpstreamError::Resolve { .. }
            | UpstreamError::Connect { .. }
            | UpstreamError::ConnectTimeout { .. }
            // A Discord host resolving back to this proxy: there is no upstream to reach.
            | UpstreamError::Loop { .. }
    )
}

impl Responder for UpstreamResponder {
    async fn respond(&self, ctx: &RequestContext, req: Request<PipeBody>) -> Outcome {
        if websocket::is_upgrade(&req) {
            return Outcome::Answered(self.relay.upgrade(&self.upstream, ctx, req).await);
        }
        Outcome::Answered(self.forward(ctx, req).await)
    }
}
