//! A body wrapper that passes bytes through untouched while copying them for the recorder,
//! and reports once when the body ended, failed, or was dropped half-read.
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::store::recorder::CapturedBody;
use crate::upstream::BoxError;

/// How a teed body finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEnd {
    /// All of it went through.
    Complete,
    /// The body stream failed (upstream reset, client gone).
    Failed(String),
    /// It was dropped before the end (the reader went away).
    Abandoned,
}

/// Shared capture slot: filled by the tee, read by whoever records.
pub type CaptureSlot = Arc<Mutex<Option<(CapturedBody, BodyEnd)>>>;

/// Passes `inner` through, copying up to `limit` bytes; calls `on_end` exactly once.
pub struct TeeBody<B, F: FnOnce(CapturedBody, BodyEnd)> {
    inner: B,
    captured: CapturedBody,
    limit: usize,
    /// Exact length announced up front (Content-Length, or 0 for an empty body).
    expected: Option<u64>,
    on_end: Option<F>,
}

impl<B: Body, F: FnOnce(CapturedBody, BodyEnd)> TeeBody<B, F> {
    /// Wraps `inner`.
    pub fn new(inner: B, limit: usize, on_end: F) -> Self {
        Self::appending(inner, limit, CapturedBody::default(), on_end)
    }

    /// Wraps `inner`, appending what goes through to `captured` (see [`CapturedBody::start`]).
    pub fn appending(inner: B, limit: usize, captured: CapturedBody, on_end: F) -> Self {
        let expected = if inner.is_end_stream() {
            Some(0)
        } else {
            inner.size_hint().exact()
        };
        TeeBody {
            inner,
            captured,
            limit,
            expected,
            on_end: Some(on_end),
        }
    }
}

impl<B, F: FnOnce(CapturedBody, BodyEnd)> TeeBody<B, F> {
    fn finish(&mut self, end: BodyEnd) {
        if let Some(on_end) = self.on_end.take() {
            on_end(std::mem::take(&mut self.captured), end);
        }
    }
}

impl<B, F> Body for TeeBody<B, F>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
    F: FnOnce(CapturedBody, BodyEnd) + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let captured = &mut this.captured;
                    captured.wire_size += data.len() as u64;
                    let room = this.limit.saturating_sub(captured.kept());
                    if captured.kept() == 0 {
                        // Usually the whole body in one allocation: its announced length.
                        let announced = this.expected.unwrap_or(0).min(this.limit as u64);
                        captured
                            .data
                            .reserve((announced as usize).max(data.len().min(room)));
                    }
                    if data.len() <= room {
                        captured.data.extend_from_slice(data);
                    } else {
                        captured.data.extend_from_slice(&data[..room]);
                        captured.truncated = true;
                    }
                }
                if this.inner.is_end_stream() {
                    this.finish(BodyEnd::Complete);
                }
            }
            Poll::Ready(Some(Err(err))) => {
                let reason = err.to_string();
                this.finish(BodyEnd::Failed(reason));
            }
            Poll::Ready(None) => this.finish(BodyEnd::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B, F: FnOnce(CapturedBody, BodyEnd)> Drop for TeeBody<B, F> {
    fn drop(&mut self) {
        if self.on_end.is_none() {
            return;
        }
        // A body whose announced length all went through is complete even if nobody polled
        // the final empty frame (hyper stops at Content-Length).
        let end = if self.expected == Some(self.captured.wire_size) {
            BodyEnd::Complete
        } else {
            BodyEnd::Abandoned
        };
        self.finish(end);
    }
}
