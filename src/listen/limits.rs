//! Limits every listener applies, so no client holds a connection forever: a deadline for a
//! request head (which also bounds how long an idle keep-alive connection waits for its next
//! request, since the clock starts when the server starts waiting) and a cap on connections
//! open at once per listener.
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder as ServerBuilder;

use super::head_timer::HeadTimer;

/// A listener's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection may take to send a complete request head, counted from when the
    /// server starts waiting for it (so an idle keep-alive connection is closed after it too).
    /// Zero means no deadline (`--head-timeout 0`, for comparisons only).
    pub head_timeout: Duration,
    /// Connections open at once per listener; further clients wait in the accept backlog.
    pub max_connections: usize,
}

/// `--head-timeout`'s default, in seconds.
pub const DEFAULT_HEAD_TIMEOUT_SECS: u64 = 30;
/// `--max-connections`' default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head_timeout: Duration::from_secs(DEFAULT_HEAD_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Limits {
    /// Applies the head deadline to an HTTP/1 server builder (hyper needs a timer for it; with
    /// a timer and no deadline given it would apply its own 30 s, so "none" is said outright).
    /// The timer is [`HeadTimer`]: hyper arms one sleep per request head, which with tokio's
    /// timer meant an entry in and out of the runtime's one locked timer wheel per request.
    pub(crate) fn apply(&self, server: &mut ServerBuilder<TokioExecutor>) {
        server
            .http1()
            .timer(HeadTimer::default())
            .header_read_timeout(self.head_deadline());
    }

    /// The head deadline, or `None` when it is off.
    pub(crate) fn head_deadline(&self) -> Option<Duration> {
        (!self.head_timeout.is_zero()).then_some(self.head_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_head_timeout_is_no_deadline_and_any_other_is_itself() {
        let off = Limits {
            head_timeout: Duration::ZERO,
            ..Limits::default()
        };
        assert_eq!(off.head_deadline(), None);
        assert_eq!(
            Limits::default().head_deadline(),
            Some(Duration::from_secs(DEFAULT_HEAD_TIMEOUT_SECS))
        );
    }
}
