//! Lets a RESUME wait until the dispatcher has routed every event published before it.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::Inner;
use crate::backend::events::{Dispatch, Event};

/// Waiters for [`Dispatch::route_barrier`] events, so a RESUME can wait until every event
/// published before it (a REST write that already answered) has reached its session.
#[derive(Default)]
pub(super) struct RouteBarriers {
    next_key: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

impl RouteBarriers {
    /// Waits (at most `limit`) until the dispatcher has routed everything published so far.
    /// Returns whether it got there; a dispatcher that fell behind gives up on the sessions
    /// anyway, so a timeout only means the caller carries on with what has arrived.
    pub(super) async fn wait_routed(inner: &Inner, limit: std::time::Duration) -> bool {
        let barriers = &inner.barriers;
        let key = barriers.next_key.fetch_add(1, Ordering::Relaxed);
        let (done, routed) = oneshot::channel();
        barriers.waiting.lock().insert(key, done);
        inner.state.publish(Dispatch::route_barrier(key));
        let reached = matches!(tokio::time::timeout(limit, routed).await, Ok(Ok(())));
        barriers.waiting.lock().remove(&key);
        reached
    }

    /// Whether nobody is waiting.
    #[cfg(test)]
    pub(super) fn is_idle(&self) -> bool {
        self.waiting.lock().is_empty()
    }

    /// Frees the waiter of barrier `event` (the dispatcher has just routed it).
    pub(super) fn reached(&self, event: &Event) {
        if let Some(done) = event
            .data
            .as_u64()
            .and_then(|key| self.waiting.lock().remove(&key))
        {
            let _ = done.send(());
        }
    }
}
