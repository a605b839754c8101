//! Hybrid logical clock (HLC).
//!
//! A timestamp is `unix_ms << 16 | counter`: 48 bits of wall-clock
//! milliseconds and a 16-bit logical counter. Timestamps handed out by one
//! clock strictly increase, even if the wall clock steps backwards; remote
//! timestamps are observed so causally later writes get larger timestamps;
//! a remote clock running far ahead is still merged by the store but does not
//! drag this clock further than `max_skew_ms` past the local wall clock
//! (each such observation is counted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the logical counter.
pub const COUNTER_BITS: u32 = 16;

/// Milliseconds since the unix epoch, read from the wall clock.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The wall-clock milliseconds part of an HLC timestamp.
pub fn physical_ms(hlc: u64) -> u64 {
    hlc >> COUNTER_BITS
}

/// The HLC timestamp for a wall-clock instant with counter zero.
pub fn from_physical_ms(ms: u64) -> u64 {
    ms << COUNTER_BITS
}

/// A thread-safe hybrid logical clock.
#[derive(Debug)]
pub struct HybridClock {
    last: AtomicU64,
    max_skew_ms: u64,
    skew_rejections: AtomicU64,
}

impl HybridClock {
    /// A clock that refuses to be dragged more than `max_skew_ms` ahead of
    /// the local wall clock by remote timestamps.
    pub fn new(max_skew_ms: u64) -> Self {
        Self {
            last: AtomicU64::new(0),
            max_skew_ms,
            skew_rejections: AtomicU64::new(0),
        }
    }

    /// A fresh timestamp, strictly greater than every one handed out or
    /// observed before.
    pub fn now(&self) -> u64 {
        self.next_after(0)
    }

    /// A fresh timestamp strictly greater than `floor` and than every
    /// timestamp handed out or observed before (used for overwrites:
    /// `max(now, old.hlc + 1)`).
    pub fn next_after(&self, floor: u64) -> u64 {
        let physical = from_physical_ms(wall_clock_ms());
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = physical
                .max(last.saturating_add(1))
                .max(floor.saturating_add(1));
            match self.last.compare_exchange_weak(
                last,
                candidate,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return candidate,
                Err(actual) => last = actual,
            }
        }
    }

    /// Observes a remote timestamp so later local timestamps exceed it —
    /// unless it lies more than `max_skew_ms` in the future, in which case the
    /// clock advances only to the skew bound and the rejection is counted.
    pub fn observe(&self, remote: u64) {
        let bound = from_physical_ms(wall_clock_ms().saturating_add(self.max_skew_ms));
        let target = if remote > bound {
            self.skew_rejections.fetch_add(1, Ordering::Relaxed);
            bound
        } else {
            remote
        };
        self.last.fetch_max(target, Ordering::AcqRel);
    }

    /// Restores a persisted high-water mark so a restarted node never hands
    /// out a timestamp it may already have used.
    pub fn restore(&self, high_water: u64) {
        self.last.fetch_max(high_water, Ordering::AcqRel);
    }

    /// The largest timestamp handed out or observed so far (no new tick).
    pub fn peek(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// How many remote timestamps were too far in the future to follow.
    pub fn skew_rejections(&self) -> u64 {
        self.skew_rejections.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_timestamps_strictly_increase() {
        let clock = HybridClock::new(1000);
        let mut prev = 0;
        for _ in 0..100_000 {
            let t = clock.now();
            assert!(t > prev);
            prev = t;
        }
    }

    #[test]
    fn timestamps_track_the_wall_clock() {
        let clock = HybridClock::new(1000);
        let wall = wall_clock_ms();
        let t = physical_ms(clock.now());
        assert!(t >= wall && t <= wall + 1000);
    }

    #[test]
    fn next_after_exceeds_the_floor() {
        let clock = HybridClock::new(1000);
        let floor = from_physical_ms(wall_clock_ms() + 500) + 7;
        assert_eq!(clock.next_after(floor), floor + 1);
        assert!(clock.now() > floor + 1);
    }

    #[test]
    fn observing_a_remote_timestamp_moves_the_clock_past_it() {
        let clock = HybridClock::new(60_000);
        let remote = from_physical_ms(wall_clock_ms() + 5_000) + 3;
        clock.observe(remote);
        assert!(clock.now() > remote);
        assert_eq!(clock.skew_rejections(), 0);
    }

    #[test]
    fn a_remote_clock_far_ahead_is_bounded_and_counted() {
        let clock = HybridClock::new(1_000);
        let remote = from_physical_ms(wall_clock_ms() + 3_600_000);
        clock.observe(remote);
        assert_eq!(clock.skew_rejections(), 1);
        assert!(clock.now() < remote);
        assert!(physical_ms(clock.peek()) <= wall_clock_ms() + 1_000);
    }

    #[test]
    fn restore_never_goes_backwards() {
        let clock = HybridClock::new(1_000);
        let future = from_physical_ms(wall_clock_ms() + 10_000);
        clock.restore(future);
        clock.restore(1);
        assert!(clock.now() > future);
    }

    #[test]
    fn concurrent_timestamps_are_unique() {
        let clock = std::sync::Arc::new(HybridClock::new(1_000));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = clock.clone();
                std::thread::spawn(move || (0..10_000).map(|_| c.now()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
