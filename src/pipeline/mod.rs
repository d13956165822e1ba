//! The per-request path behind the proxy: a chain of responders tried in order (for `record`
//! just upstream; for `serve` backend → recordings → upstream), with every answered exchange
//! teed into the recorder. Which links a chain has is decided in [`chain`] and nowhere else.
pub mod access;
pub mod backend;
pub mod chain;
pub mod gateway_identity;
pub mod identity;
pub mod replay;
pub mod replay_status;
mod tee;
pub mod upstream;
pub mod websocket;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};

use crate::store::capture::{version_name, Addr, CapturedBody, ExchangeCapture, ExchangeEnd};
use crate::store::recorder::now_us;
use crate::store::{Recorder, Rewrite};
use crate::upstream::BoxError;
pub use tee::{BodyEnd, CaptureSlot, TeeBody};

/// Body type flowing through the pipeline.
pub type PipeBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;
/// Boxed future returned by responders.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Header naming who answered (serve mode adds it; record stays transparent).
pub const SOURCE_HEADER: &str = "x-discord-mitm-source";

/// Who answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The reimplemented backend.
    Backend,
    /// A recorded response.
    Recording,
    /// Real Discord.
    Upstream,
    /// Nobody: the chain ran out (Discord's 404).
    None,
    /// The proxy itself (an error it made, e.g. 502).
    Proxy,
}

impl Source {
    /// Lower-case name as used in the header, the log and recordings.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Backend => "backend",
            Source::Recording => "recording",
            Source::Upstream => "upstream",
            Source::None => "none",
            Source::Proxy => "proxy",
        }
    }
}

/// What the pipeline knows about a request besides the request itself.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client's socket address.
    pub client_addr: SocketAddr,
    /// `https` for intercepted TLS, `http` for plain proxy requests.
    pub scheme: &'static str,
    /// The host the client wanted (lower case, no port).
    pub host: String,
    /// Port the client wanted.
    pub port: u16,
    /// Arrival time (monotonic) for durations.
    pub arrived: Instant,
    /// Arrival time, µs since the epoch.
    pub arrived_at_us: i64,
}

impl RequestContext {
    /// A context for a request that just arrived.
    pub fn new(client_addr: SocketAddr, scheme: &'static str, host: &str, port: u16) -> Self {
        RequestContext {
            client_addr,
            scheme,
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port,
            arrived: Instant::now(),
            arrived_at_us: now_us(),
        }
    }

    /// `host` or `host:port` when the port is not the scheme's default.
    pub fn authority(&self) -> String {
        if self.port_is_default() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn port_is_default(&self) -> bool {
        self.port == if self.scheme == "https" { 443 } else { 80 }
    }
}

/// An answer from a responder.
pub struct Answer {
    /// The response to send (body may stream).
    pub response: Response<PipeBody>,
    /// Who answered.
    pub source: Source,
    /// Upstream socket address, when upstream was involved.
    pub upstream_addr: Option<SocketAddr>,
    /// What went wrong, for the recording (the response is then an error we made).
    pub error: Option<String>,
    /// False for answers that record themselves (WebSocket upgrades record a gateway session).
    pub record: bool,
    /// What the identity rules changed on the way (listed in the exchange's recording).
    pub rewrites: Vec<Rewrite>,
}

/// What a responder did with a request.
pub enum Outcome {
    /// It answered.
    Answered(Answer),
    /// It does not handle this request; the next responder gets it back.
    Declined(Request<PipeBody>),
}

/// One link of the chain (backend, recordings, upstream).
pub trait Responder: Send + Sync + 'static {
    /// Answers `req` or hands it back.
    fn respond(
        &self,
        ctx: &RequestContext,
        req: Request<PipeBody>,
    ) -> impl Future<Output = Outcome> + Send;
}

/// A [`Responder`] as the chain holds it: the links are different types, so each one's future
/// is boxed here, in one place, instead of in every responder.
pub(crate) trait ChainLink: Send + Sync {
    /// [`Responder::respond`], boxed.
    fn respond_boxed<'a>(
        &'a self,
        ctx: &'a RequestContext,
        req: Request<PipeBody>,
    ) -> BoxFuture<'a, Outcome>;
}

impl<R: Responder> ChainLink for R {
    fn respond_boxed<'a>(
        &'a self,
        ctx: &'a RequestContext,
        req: Request<PipeBody>,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(self.respond(ctx, req))
    }
}

/// The chain plus the recorder.
pub struct Pipeline {
    chain: Vec<Arc<dyn ChainLink>>,
    recorder: Option<Recorder>,
    tag_source: bool,
}

impl Pipeline {
    /// A pipeline trying `chain` in order; records answers when `recorder` is set; adds
    /// [`SOURCE_HEADER`] to responses when `tag_source`.
    pub(crate) fn new(
        chain: Vec<Arc<dyn ChainLink>>,
        recorder: Option<Recorder>,
        tag_source: bool,
    ) -> Self {
        Pipeline {
            chain,
            recorder,
            tag_source,
        }
    }

    /// The recorder, if recording.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    /// Handles one request end to end; never fails (errors become Discord-style responses).
    pub async fn handle(&self, ctx: RequestContext, req: Request<PipeBody>) -> Response<PipeBody> {
        let Some(recorder) = &self.recorder else {
            return self.run_chain(&ctx, req).await.response;
        };
        let (parts, body) = req.into_parts();
        let max_body = recorder.max_body();
        // Bodiless requests (most of them: GETs) need no tee and nowhere to put its capture.
        let request_slot: Option<CaptureSlot> =
            (!body.is_end_stream()).then(|| Arc::new(Mutex::new(None)));
        let body = match &request_slot {
            None => body,
            Some(slot) => {
                let slot = Arc::clone(slot);
                PipeBody::new(TeeBody::new(body, max_body, move |captured, end| {
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some((captured, end));
                    }
                }))
            }
        };
        // The request head is copied now, into the buffer the whole capture will use.
        let capture = ExchangeCapture::request(
            parts.method.as_str(),
            parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
            version_name(parts.version),
            &parts.headers,
            // Room for a typical response head, so adding it does not move the buffer.
            2048,
        );
        let req = Request::from_parts(parts, body);
        let answer = self.run_chain(&ctx, req).await;
        if !answer.record {
            return answer.response;
        }
        let wait_us = Some(ctx.arrived.elapsed().as_micros() as u64);
        let (mut parts, body) = answer.response.into_parts();
        let body_hint = body
            .size_hint()
            .exact()
            .map_or(0, |len| len.min(max_body as u64) as usize);
        let captured = capture.response_head(parts.status.as_u16(), &parts.headers, body_hint);
        strip_for_client(&mut parts.headers);
        let recorder = recorder.clone();
        let source = answer.source.as_str();
        let upstream_addr = answer.upstream_addr;
        let error = answer.error;
        let rewrites = answer.rewrites;
        let body = TeeBody::appending(body, max_body, captured, move |captured, end| {
            let request = request_slot.and_then(|slot| slot.lock().ok().and_then(|mut s| s.take()));
            let (request_body, request_end) =
                request.unwrap_or_else(|| (CapturedBody::default(), BodyEnd::Complete));
            let error = error.or(match (request_end, end) {
                (_, BodyEnd::Failed(reason)) => Some(format!("response body failed: {reason}")),
                (_, BodyEnd::Abandoned) => {
                    Some("client went away before the response body ended".into())
                }
                (BodyEnd::Failed(reason), _) => Some(format!("request body failed: {reason}")),
                _ => None,
            });
            let capture = ExchangeCapture::response_body_end(captured).finish(&ExchangeEnd {
                request_body: &request_body,
                started_at_us: ctx.arrived_at_us,
                wait_us,
                duration_us: ctx.arrived.elapsed().as_micros() as u64,
                client_addr: Addr::Socket(ctx.client_addr),
                upstream_addr: upstream_addr.map(Addr::Socket),
                source,
                scheme: ctx.scheme,
                host: &ctx.host,
                port: (!ctx.port_is_default()).then_some(ctx.port),
                error: error.as_deref(),
                rewrites: &rewrites,
            });
            recorder.capture(&capture);
        });
        Response::from_parts(parts, PipeBody::new(body))
    }

    async fn run_chain(&self, ctx: &RequestContext, mut req: Request<PipeBody>) -> Answer {
        // Only while access lines are written: this runs on every request.
        let pending = access::Pending::begin(
            req.method(),
            req.uri().path(),
            req.headers(),
            Some(&ctx.host),
        );
        for responder in &self.chain {
            match responder.respond_boxed(ctx, req).await {
                Outcome::Answered(mut answer) => {
                    if let Some(pending) = pending {
                        pending.finish(
                            answer.response.status(),
                            answer.source.as_str(),
                            answer.response.extensions(),
                            Some(ctx.client_addr),
                        );
                    }
                    if self.tag_source {
                        answer.response.headers_mut().insert(
                            SOURCE_HEADER,
                            HeaderValue::from_static(answer.source.as_str()),
                        );
                    }
                    return answer;
                }
                Outcome::Declined(back) => req = back,
            }
        }
        let mut response = discord_error(StatusCode::NOT_FOUND, "404: Not Found", 0);
        if let Some(pending) = pending {
            pending.finish(
                response.status(),
                Source::None.as_str(),
                response.extensions(),
                Some(ctx.client_addr),
            );
        }
        if self.tag_source {
            response
                .headers_mut()
                .insert(SOURCE_HEADER, HeaderValue::from_static("none"));
        }
        Answer {
            response,
            source: Source::None,
            upstream_addr: None,
            error: None,
            record: true,
            rewrites: Vec::new(),
        }
    }
}

/// Makes upstream's headers the client's: minus Alt-Svc (so clients don't leave for HTTP/3
/// where we can't see them) and minus hop-by-hop headers.
fn strip_for_client(headers: &mut HeaderMap) {
    // Found in one pass and removed by name only when present (upstreams nearly always send
    // `connection`, rarely anything else): removing each candidate by its text measured as
    // the largest part of what capturing cost on the proxy threads.
    const _: () = assert!(HOP_BY_HOP.len() < 9, "room for every name and alt-svc");
    let mut found: [Option<http::header::HeaderName>; 9] = Default::default();
    let strippable = headers
        .keys()
        .filter(|name| *name == http::header::ALT_SVC || HOP_BY_HOP.contains(&name.as_str()));
    for (slot, name) in found.iter_mut().zip(strippable) {
        *slot = Some(name.clone());
    }
    for name in found.into_iter().flatten() {
        headers.remove(name);
    }
}

/// Headers that belong to one connection, never forwarded.
pub(crate) const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// A Discord-shaped JSON error: `{"message": "...", "code": N}`.
pub fn discord_error(status: StatusCode, message: &str, code: u32) -> Response<PipeBody> {
    let body = serde_json::json!({ "message": message, "code": code }).to_string();
    let mut response = Response::new(full_body(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Field of a 502's JSON body that says what to do about the failure.
pub const HINT_FIELD: &str = "discord_mitm_hint";

/// The 502 for an upstream failure: Discord's error shape, the reason in `message`, and what to
/// do about it in [`HINT_FIELD`].
pub(crate) fn bad_gateway(reason: &str, hint: Option<&str>) -> http::Response<PipeBody> {
    let mut body = serde_json::json!({
        "message": format!("502: Bad Gateway ({reason})"),
        "code": 0,
    });
    if let Some(hint) = hint {
        body[HINT_FIELD] = serde_json::Value::from(hint);
    }
    let mut response = http::Response::new(full_body(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Why a request body could not be buffered.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// Longer than the limit.
    #[error("body longer than {0} bytes")]
    TooLarge(usize),
    /// The client's body failed.
    #[error("body failed: {0}")]
    Failed(String),
}

/// Buffers a whole body, up to `limit` bytes.
pub fn buffer_body(body: PipeBody, limit: usize) -> BoxFuture<'static, Result<Bytes, BufferError>> {
    // Boxed here so callers' futures stay `Send` without higher-ranked error lifetimes.
    Box::pin(async move {
        let mut body = body;
        let mut buffered = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| BufferError::Failed(err.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if buffered.len() + data.len() > limit {
                    return Err(BufferError::TooLarge(limit));
                }
                buffered.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(buffered))
    })
}

/// A complete body.
pub fn full_body(bytes: Bytes) -> PipeBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// An empty body.
pub fn empty_body() -> PipeBody {
    full_body(Bytes::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_headers_lose_alt_svc_and_hop_by_hop_and_keep_the_rest() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("connection", "keep-alive"),
            ("alt-svc", "h3=\":443\""),
            ("set-cookie", "a=1"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("set-cookie", "b=2"),
            ("upgrade", "h2c"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        strip_for_client(&mut headers);
        let left: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let expected = [
            ("content-type", "application/json"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()));
        assert_eq!(left, expected);
        let mut plain = HeaderMap::new();
        plain.insert("content-length", HeaderValue::from_static("2"));
        strip_for_client(&mut plain);
        assert_eq!(plain.len(), 1);
    }
}
