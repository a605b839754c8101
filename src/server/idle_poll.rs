//! Idle polling: keeping one runtime worker awake for a moment after client
//! requests, so the next request does not have to wake a sleeping thread.
//!
//! When a worker runs out of tasks it sleeps in `epoll_wait`, and the
//! client's next `send` then pays for waking it (a cross-CPU wake-up, and in
//! a virtual machine an exit to the hypervisor). Under a steady stream of
//! requests from many connections the node sleeps and is woken thousands of
//! times a second, each time at the cost of the client's CPU and of
//! latency. The poller is a task that, while requests keep coming, yields
//! back to the runtime instead of letting it sleep; the runtime then polls
//! its I/O driver without blocking (`epoll_wait` with a zero timeout) and
//! picks up the next request as soon as it lands. ScyllaDB's Seastar does
//! the same (`--idle-poll-time-us`).
//!
//! Polling burns CPU, so it is paid for by the requests: every client read
//! grants [`IdlePoller::credit_per_read`] of polling, credit adds up to at
//! most [`IdlePoller::max_credit`] (ten reads' worth), and polling spends it
//! by wall-clock time; with none left the poller sleeps until a read wakes
//! it. So polling costs at most the credit per read in CPU (20 µs by
//! default: 2 % of a core at 1,000 requests a second), an idle node does
//! not poll at all, and a busy one, whose requests come faster than it
//! spends the credit, never sleeps. The default was chosen among credits
//! of 10, 20 and 50 µs and a 200 µs window on the machine of
//! docs/benchmarks.md ("Idle polling").
//!
//! Waking the poller costs the read path one relaxed load of a flag that
//! stays clear while the poller runs. The poller only decides whether a
//! worker sleeps: requests are served by the runtime either way, so a
//! wake-up it misses (a read racing with the poller going to sleep) delays
//! polling until the next read and loses nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::striped::StripedCounter;

/// Credit adds up to this many reads' worth.
const MAX_CREDIT_READS: u32 = 10;

/// The polling budget and the state shared between the read path and the
/// polling task.
#[derive(Debug)]
pub struct IdlePoller {
    credit_per_read: Duration,
    /// Client reads so far (the poller's measure of activity).
    reads: StripedCounter,
    /// Set by the poller before it sleeps; a read that finds it set clears
    /// it and wakes the poller.
    asleep: AtomicBool,
    wake: Notify,
    /// Nanoseconds spent polling so far (for INFO and metrics).
    polled_nanos: AtomicU64,
}

impl IdlePoller {
    /// A poller granting `credit_per_read` of polling per client read;
    /// `None` when that is zero (polling off).
    pub fn new(credit_per_read: Duration) -> Option<Self> {
        if credit_per_read.is_zero() {
            return None;
        }
        Some(Self {
            credit_per_read,
            reads: StripedCounter::default(),
            asleep: AtomicBool::new(true),
            wake: Notify::new(),
            polled_nanos: AtomicU64::new(0),
        })
    }

    /// The polling one client read pays for.
    pub fn credit_per_read(&self) -> Duration {
        self.credit_per_read
    }

    /// The most credit the poller holds: how long it polls after the last
    /// read at the most.
    pub fn max_credit(&self) -> Duration {
        self.credit_per_read.saturating_mul(MAX_CREDIT_READS)
    }

    /// Total time spent polling so far.
    pub fn polled(&self) -> Duration {
        Duration::from_nanos(self.polled_nanos.load(Ordering::Relaxed))
    }

    /// Called by a connection after each read from its socket.
    pub fn on_read(&self) {
        self.reads.incr();
        if self.asleep.load(Ordering::Relaxed) && self.asleep.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// The polling task: runs until `shutdown` turns `true`.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut seen = self.reads.get();
        loop {
            // Sleep until a read clears the flag. A read that clears it
            // before the wait starts leaves a permit, so the wait returns.
            self.asleep.store(true, Ordering::Release);
            if self.reads.get() == seen {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            self.asleep.store(false, Ordering::Relaxed);
            seen = self.poll_while_active(seen).await;
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Yields to the runtime while credit lasts; returns the read count
    /// last seen.
    async fn poll_while_active(&self, mut seen: u64) -> u64 {
        let max_credit = self.max_credit();
        // The reads since `seen` (the one that woke us among them) bring
        // the first credit.
        let mut credit = Duration::ZERO;
        let mut counted = Instant::now();
        loop {
            let now = Instant::now();
            let spent = now - counted;
            counted = now;
            // Counted as it goes, so STATS shows a polling spell that is
            // still running (only this task writes the counter).
            self.polled_nanos.fetch_add(
                u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            let reads = self.reads.get();
            let new_reads = u32::try_from(reads.wrapping_sub(seen)).unwrap_or(u32::MAX);
            seen = reads;
            credit = credit
                .saturating_sub(spent)
                .saturating_add(self.credit_per_read.saturating_mul(new_reads))
                .min(max_credit);
            if credit.is_zero() {
                break;
            }
            tokio::task::yield_now().await;
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn zero_credit_turns_polling_off() {
        assert!(IdlePoller::new(Duration::ZERO).is_none());
        let poller = IdlePoller::new(Duration::from_micros(20)).expect("credit");
        assert_eq!(poller.max_credit(), Duration::from_micros(200));
    }

    /// The poller sleeps when idle, polls after a burst of reads for its
    /// capped credit, then sleeps again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn polls_for_the_credit_reads_bought_and_sleeps_when_idle() {
        let credit = Duration::from_millis(1);
        let poller = Arc::new(IdlePoller::new(credit).expect("credit"));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn({
            let poller = poller.clone();
            async move { poller.run(stopped).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(poller.polled(), Duration::ZERO, "idle: no polling");

        // A burst of 100 reads buys the capped credit (10 reads' worth),
        // then polling stops (the generous upper bound allows for a
        // preempted thread on a busy machine; a poller that never stopped
        // would exceed it).
        for _ in 0..100 {
            poller.on_read();
        }
        let mut polled = poller.polled();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = poller.polled();
            if now == polled && now > Duration::ZERO {
                break;
            }
            polled = now;
        }
        assert!(polled >= credit, "polled {polled:?}");
        assert!(
            polled < poller.max_credit() + Duration::from_secs(1),
            "polled {polled:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(poller.polled(), polled, "polling continued while idle");

        stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("poller stops on shutdown")
            .expect("poller task");
    }
}
