//! The timer hyper arms for every request head (`--head-timeout`), made cheap.
//!
//! hyper asks its timer for a new sleep each time it starts waiting for a request head, so on
//! a keep-alive connection every request registers and drops one. With tokio's timer that is a
//! boxed timer entry taken in and out of the runtime's one timer wheel under its lock (an A/B
//! of busy proxies with and without it put that at 0.5–3% of their CPU, close to what two
//! identical proxies differ by).
//! A head deadline is coarse by nature (30 s by default), so here a sleep is a slot in a
//! table, and one thread per timer looks the table over every [`TICK`] and wakes the sleeps
//! whose deadline has passed: a deadline fires at most one tick late, never early.
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// How often the table is looked over while sleeps are waiting.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// How long the ticker thread waits with nothing to watch before checking whether its timer
/// is still in use (it ends once every server holding the timer is gone).
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// A [`hyper::rt::Timer`] for head deadlines; clones share one table and one ticker thread.
#[derive(Clone, Default)]
pub(crate) struct HeadTimer {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    table: Mutex<Table>,
    /// Signalled when the first sleep of an empty table registers.
    work: Condvar,
}

#[derive(Default)]
struct Table {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Slots in use.
    live: usize,
    /// Whether the ticker thread is running.
    ticking: bool,
}

struct Slot {
    deadline: Instant,
    waker: Waker,
    fired: bool,
}

impl Table {
    fn insert(&mut self, slot: Slot) -> usize {
        self.live += 1;
        match self.free.pop() {
            Some(index) => {
                self.slots[index] = Some(slot);
                index
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, index: usize) {
        if let Some(entry) = self.slots.get_mut(index) {
            if entry.take().is_some() {
                self.live -= 1;
                self.free.push(index);
            }
        }
    }

    /// The wakers of the sleeps due at `now` (each is woken once).
    fn due(&mut self, now: Instant) -> Vec<Waker> {
        self.slots
            .iter_mut()
            .flatten()
            .filter(|slot| !slot.fired && slot.deadline <= now)
            .map(|slot| {
                slot.fired = true;
                slot.waker.clone()
            })
            .collect()
    }
}

impl HeadTimer {
    /// Sleeps waiting in the table (for tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.shared.table.lock().live
    }

    fn register(&self, deadline: Instant, waker: Waker) -> usize {
        let mut table = self.shared.table.lock();
        let index = table.insert(Slot {
            deadline,
            waker,
            fired: false,
        });
        if !table.ticking {
            table.ticking = true;
            let weak = Arc::downgrade(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("head-deadlines".into())
                .spawn(move || tick(&weak));
            if let Err(err) = spawned {
                // Without the thread no head deadline fires; say so, and try again next time.
                table.ticking = false;
                tracing::error!("cannot start the head-deadline thread: {err}");
            }
        } else if table.live == 1 {
            self.shared.work.notify_one();
        }
        index
    }
}

/// The ticker thread: wakes due sleeps every [`TICK`]; ends when its timer is dropped.
fn tick(shared: &Weak<Shared>) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let due = {
            let mut table = shared.table.lock();
            if table.live == 0 {
                shared.work.wait_for(&mut table, IDLE_CHECK);
                continue;
            }
            table.due(Instant::now())
        };
        drop(shared);
        for waker in due {
            waker.wake();
        }
        std::thread::sleep(TICK);
    }
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep {
            deadline,
            timer: self.clone(),
            slot: None,
        })
    }
}

/// One sleep: registered in the table when first polled before its deadline.
struct HeadSleep {
    deadline: Instant,
    timer: HeadTimer,
    /// Its slot and the waker last registered there.
    slot: Option<(usize, Waker)>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            return Poll::Ready(());
        }
        match &mut this.slot {
            Some((_, waker)) if waker.will_wake(cx.waker()) => {}
            Some((index, waker)) => {
                let mut table = this.timer.shared.table.lock();
                if let Some(Some(slot)) = table.slots.get_mut(*index) {
                    slot.waker = cx.waker().clone();
                }
                *waker = cx.waker().clone();
            }
            None => {
                let index = this.timer.register(this.deadline, cx.waker().clone());
                this.slot = Some((index, cx.waker().clone()));
            }
        }
        Poll::Pending
    }
}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        if let Some((index, _)) = self.slot.take() {
            self.timer.shared.table.lock().remove(index);
        }
    }
}

impl hyper::rt::Sleep for HeadSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    #[tokio::test]
    async fn a_sleep_ends_at_its_deadline_at_most_a_tick_late_and_frees_its_slot() {
        let timer = HeadTimer::default();
        let start = Instant::now();
        let deadline = Duration::from_millis(300);
        timer.sleep(deadline).await;
        let took = start.elapsed();
        assert!(took >= deadline, "early: {took:?}");
        assert!(took < deadline + TICK * 3, "late: {took:?}");
        assert_eq!(timer.waiting(), 0);
    }

    #[tokio::test]
    async fn dropped_sleeps_leave_the_table_and_many_end_in_deadline_order() {
        let timer = HeadTimer::default();
        // Registered (polled once), then dropped: the slot goes.
        let mut pending = timer.sleep(Duration::from_secs(60));
        assert!(pending
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending());
        assert_eq!(timer.waiting(), 1);
        drop(pending);
        assert_eq!(timer.waiting(), 0);
        // Sleeps of different lengths, started together, end in order and none early.
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for ms in [450u64, 150, 300] {
            let (timer, tx) = (timer.clone(), tx.clone());
            tokio::spawn(async move {
                timer.sleep(Duration::from_millis(ms)).await;
                let _ = tx.send((ms, start.elapsed()));
            });
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some((ms, took)) = rx.recv().await {
            assert!(
                took >= Duration::from_millis(ms),
                "{ms} ms sleep ended at {took:?}"
            );
            order.push(ms);
        }
        assert_eq!(order, [150, 300, 450]);
        assert_eq!(timer.waiting(), 0);
        // A deadline already past is ready at once, without a slot.
        timer.sleep_until(Instant::now()).await;
        assert_eq!(timer.waiting(), 0);
    }
}
