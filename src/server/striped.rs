//! A counter that many threads bump without sharing a cache line.
//!
//! One relaxed `fetch_add` on a shared counter is cheap on one core, but
//! when every request on every worker thread bumps the same counters the
//! cache line moves between cores on each command. Each thread adds to its
//! own padded stripe instead; reading sums the stripes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes per counter: enough that worker threads rarely share one.
const STRIPES: usize = 16;

/// One stripe on its own cache line (128 bytes: adjacent-line prefetch).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicU64);

/// A monotonically increasing counter, striped across threads.
#[derive(Debug, Default)]
pub struct StripedCounter {
    stripes: [Stripe; STRIPES],
}

impl StripedCounter {
    /// Adds one on the calling thread's stripe.
    pub fn incr(&self) {
        self.stripes[stripe_of_this_thread()]
            .0
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The current total (a sum of relaxed loads: exact once writers stop,
    /// never behind by more than the adds in flight).
    pub fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// The stripe this thread adds to, handed out round-robin on first use.
fn stripe_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn adds_from_many_threads_all_count() {
        let c = Arc::new(StripedCounter::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.incr()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().expect("join"));
        c.incr();
        assert_eq!(c.get(), 8001);
    }
}
