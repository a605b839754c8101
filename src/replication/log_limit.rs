//! Keeps repetitive warnings (a flood of garbage payloads, an unreachable
//! broker) from flooding the log: at most one line per interval.

use std::sync::atomic::{AtomicU64, Ordering};

/// Allows one event per `interval_ms`.
#[derive(Debug)]
pub struct LogLimit {
    interval_ms: u64,
    last_ms: AtomicU64,
}

impl LogLimit {
    /// A limiter allowing one event per `interval_ms` milliseconds.
    pub const fn new(interval_ms: u64) -> Self {
        Self {
            interval_ms,
            last_ms: AtomicU64::new(0),
        }
    }

    /// Whether an event may be logged now (and if so, starts a new interval).
    pub fn allow(&self) -> bool {
        let now = crate::clock::wall_clock_ms();
        let last = self.last_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= self.interval_ms
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_one_event_per_interval() {
        let limit = LogLimit::new(60_000);
        assert!(limit.allow());
        assert!(!limit.allow());
        let unlimited = LogLimit::new(0);
        assert!(unlimited.allow());
    }
}
