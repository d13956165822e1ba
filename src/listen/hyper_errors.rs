//! Discord's JSON on hyper's own answers. hyper's HTTP/1 server answers a request head it cannot
//! parse by itself (400 for a malformed request line or header, 414 for a request target over
//! its limit, 431 for a head over its buffer) with an empty body, without ever calling our
//! service. [`DiscordErrors`] wraps the connection's byte stream: when hyper writes such an
//! answer for a request our service never saw, the answer goes out as Discord's error JSON
//! instead. What hyper closes without any answer (a head cut off by the client or by the head
//! deadline) stays without one, and HTTP/2 errors are stream resets, not responses.
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Counts the requests a connection's service was called for; the service calls
/// [`ServiceCalls::note`] once per request.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceCalls(Arc<AtomicU64>);

impl ServiceCalls {
    /// Notes one request handed to the service.
    pub(crate) fn note(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A connection's byte stream whose hyper-made error answers are rewritten in Discord's JSON.
pub(crate) struct DiscordErrors<S> {
    inner: S,
    calls: ServiceCalls,
    /// Final answers written so far (by the service or by hyper).
    answered: u64,
    /// Bytes were read since the last write (or nothing was written yet): the next write
    /// starts an answer.
    answer_starts: bool,
    /// Our replacement answer, still to be written out.
    pending: Bytes,
}

impl<S> DiscordErrors<S> {
    /// Wraps `inner`; `calls` is the handle the connection's service notes each request on.
    pub(crate) fn new(inner: S, calls: ServiceCalls) -> Self {
        DiscordErrors {
            inner,
            calls,
            answered: 0,
            answer_starts: true,
            pending: Bytes::new(),
        }
    }

    /// The wrapped stream.
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Looks at the first bytes of a write: `Some(answer)` replaces it whole.
    fn inspect(&mut self, written: &[u8]) -> Option<Bytes> {
        if !std::mem::replace(&mut self.answer_starts, false) {
            return None;
        }
        if written.starts_with(b"HTTP/1.1 1") || !written.starts_with(b"HTTP/1.") {
            return None;
        }
        let unanswered_by_service = self.calls.count() <= self.answered;
        self.answered += 1;
        if !unanswered_by_service {
            return None;
        }
        hyper_error_status(written).map(discord_answer)
    }
}

/// The status of an answer hyper made up itself: a 400, 414 or 431 head with no body and no
/// header but `content-length: 0`, `date` and `connection: close`.
fn hyper_error_status(written: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(written).ok()?;
    let head = text.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let status = match status {
        "400" => 400,
        "414" => 414,
        "431" => 431,
        _ => return None,
    };
    let plain = lines.all(|line| {
        let lower = line.to_ascii_lowercase();
        lower == "content-length: 0" || lower == "connection: close" || lower.starts_with("date: ")
    });
    plain.then_some(status)
}

/// Discord's error answer for `status`, closing the connection.
fn discord_answer(status: u16) -> Bytes {
    let message = match status {
        414 => "414: URI Too Long",
        431 => "431: Request Header Fields Too Large",
        _ => "400: Bad Request",
    };
    let body = serde_json::json!({"message": message, "code": 0}).to_string();
    let reason = &message[5..];
    Bytes::from(format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

impl<S: AsyncWrite + Unpin> DiscordErrors<S> {
    /// Writes out what is pending; ready once nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DiscordErrors<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.answer_starts = true;
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DiscordErrors<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        if let Some(answer) = this.inspect(buf) {
            this.pending = answer;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        if this.answer_starts {
            if let Some(first) = bufs.iter().find(|buf| !buf.is_empty()) {
                if let Some(answer) = this.inspect(first) {
                    this.pending = answer;
                    return Poll::Ready(Ok(first.len()));
                }
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HYPER_400: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 14:00:00 GMT\r\n\r\n";

    async fn written(calls_before: u64, writes: &[&[u8]]) -> String {
        let (client, server) = tokio::io::duplex(4096);
        let calls = ServiceCalls::default();
        for _ in 0..calls_before {
            calls.note();
        }
        let mut wrapped = DiscordErrors::new(server, calls);
        let mut client = client;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut scratch = [0u8; 64];
        let _ = wrapped.read(&mut scratch).await.unwrap();
        for write in writes {
            wrapped.write_all(write).await.unwrap();
        }
        wrapped.shutdown().await.unwrap();
        drop(wrapped);
        let mut out = String::new();
        client.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn hyper_made_errors_become_discord_json() {
        let out = written(0, &[HYPER_400]).await;
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains(r#""message":"400: Bad Request""#), "{out}");
        assert!(out.contains(r#""code":0"#), "{out}");
    }

    #[tokio::test]
    async fn the_services_own_answers_pass_untouched() {
        // The service was called for this request: its empty 400 is its own.
        let out = written(1, &[HYPER_400]).await;
        assert_eq!(out.as_bytes(), HYPER_400);
        // An answer with any other header is never hyper's.
        let ours =
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(written(0, &[ours]).await.as_bytes(), ours);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(written(0, &[ok]).await.as_bytes(), ok);
    }
}
