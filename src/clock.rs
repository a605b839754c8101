//! Hybrid logical clock (HLC).
//!
//! A timestamp is `unix_ms << 16 | counter`: 48 bits of wall-clock
//! milliseconds and a 16-bit logical counter. Timestamps handed out by one
//! clock strictly increase, even if the wall clock steps backwards; remote
//! timestamps are observed so causally later writes get larger timestamps.
//!
//! Nothing moves the clock, or is stamped, past its **bound**: the local
//! wall clock plus `max_skew_ms`. A remote timestamp beyond it is refused
//! and leaves the clock alone (counted); a persisted high-water mark beyond it
//! is restored only to the bound (counted); a local timestamp that would
//! have to exceed it (because the key's current version lies beyond it) is
//! refused with [`ClockAhead`]. So no version can freeze the clock at
//! `u64::MAX`: every timestamp handed out is at most the bound, and the
//! bound stays below 2^64 for the next eight thousand years.

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

/// A timestamp was asked for past the clock's bound (a key's current
/// version lies further in the future than `max_skew_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the current version is {ahead_ms} ms ahead of this node's clock, more than storage.max_clock_skew_ms allows")]
pub struct ClockAhead {
    /// How far past the local wall clock the timestamp would have been.
    pub ahead_ms: u64,
}

/// Where a timestamp beyond `bound` is clamped to: the first tick of the
/// bound's millisecond, so the clock still has that millisecond's ticks to
/// hand out.
fn clamp(bound: u64) -> u64 {
    bound & !((1 << COUNTER_BITS) - 1)
}

/// A thread-safe hybrid logical clock.
#[derive(Debug)]
pub struct HybridClock {
    last: AtomicU64,
    max_skew_ms: u64,
    skew_rejections: AtomicU64,
    restores_bounded: AtomicU64,
}

impl HybridClock {
    /// A clock that refuses to be dragged more than `max_skew_ms` ahead of
    /// the local wall clock by remote timestamps.
    pub fn new(max_skew_ms: u64) -> Self {
        Self {
            last: AtomicU64::new(0),
            max_skew_ms,
            skew_rejections: AtomicU64::new(0),
            restores_bounded: AtomicU64::new(0),
        }
    }

    /// The largest timestamp this clock accepts right now: the last tick of
    /// the millisecond `max_skew_ms` after the local wall clock.
    pub fn bound(&self) -> u64 {
        self.bound_at(wall_clock_ms())
    }

    /// The bound when the wall clock reads `wall_ms`.
    fn bound_at(&self, wall_ms: u64) -> u64 {
        let ms = wall_ms.saturating_add(self.max_skew_ms);
        from_physical_ms(ms.min(u64::MAX >> COUNTER_BITS)) | ((1 << COUNTER_BITS) - 1)
    }

    /// Whether `hlc` lies within the bound (what the store recovers from
    /// disk beyond it is left out).
    pub fn within_bound(&self, hlc: u64) -> bool {
        hlc <= self.bound()
    }

    /// A fresh timestamp, strictly greater than every one handed out or
    /// observed before.
    pub fn now(&self) -> Result<u64, ClockAhead> {
        self.next_after(0)
    }

    /// A fresh timestamp strictly greater than `floor` and than every
    /// timestamp handed out or observed before (used for overwrites:
    /// `max(now, old.hlc + 1)`), or [`ClockAhead`] when that would lie past
    /// the bound.
    pub fn next_after(&self, floor: u64) -> Result<u64, ClockAhead> {
        let wall = wall_clock_ms();
        let physical = from_physical_ms(wall);
        let bound = self.bound_at(wall);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = physical
                .max(last.saturating_add(1))
                .max(floor.saturating_add(1));
            if candidate > bound {
                return Err(ClockAhead {
                    ahead_ms: physical_ms(candidate).saturating_sub(wall),
                });
            }
            match self.last.compare_exchange_weak(
                last,
                candidate,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(candidate),
                Err(actual) => last = actual,
            }
        }
    }

    /// Observes a remote timestamp so later local timestamps exceed it, and
    /// returns `true` — unless it lies beyond the bound: then the clock is
    /// left alone, the rejection is counted, and the caller must refuse
    /// what carries it (`false`).
    pub fn observe(&self, remote: u64) -> bool {
        if remote > self.bound() {
            self.skew_rejections.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.last.fetch_max(remote, Ordering::AcqRel);
        true
    }

    /// Restores a persisted high-water mark so a restarted node never hands
    /// out a timestamp it may already have used — up to the bound: a mark
    /// beyond it (a poisoned data directory, or a wall clock set back by
    /// more than `max_skew_ms`) is restored to the bound and counted.
    pub fn restore(&self, high_water: u64) {
        let bound = self.bound();
        let target = if high_water > bound {
            self.restores_bounded.fetch_add(1, Ordering::Relaxed);
            clamp(bound)
        } else {
            high_water
        };
        self.last.fetch_max(target, Ordering::AcqRel);
    }

    /// The largest timestamp handed out or observed so far (no new tick).
    pub fn peek(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// The clock's physical time in unix milliseconds: the wall clock, or
    /// the physical part of the largest timestamp handed out or observed
    /// when that is ahead. Deadlines are compared with this, so a node
    /// whose wall clock lags sees a key expire once it has seen a write
    /// from a node that is ahead (within `max_skew_ms`).
    pub fn physical_now_ms(&self) -> u64 {
        wall_clock_ms().max(physical_ms(self.peek()))
    }

    /// How many remote timestamps were refused for lying beyond the bound.
    pub fn skew_rejections(&self) -> u64 {
        self.skew_rejections.load(Ordering::Relaxed)
    }

    /// How many restored timestamps (high-water marks, recovered versions)
    /// lay beyond the bound.
    pub fn restores_bounded(&self) -> u64 {
        self.restores_bounded.load(Ordering::Relaxed)
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
            let t = clock.now().expect("within bound");
            assert!(t > prev);
            prev = t;
        }
    }

    #[test]
    fn timestamps_track_the_wall_clock() {
        let clock = HybridClock::new(1000);
        let wall = wall_clock_ms();
        let t = physical_ms(clock.now().expect("within bound"));
        assert!(t >= wall && t <= wall + 1000);
    }

    #[test]
    fn next_after_exceeds_the_floor() {
        let clock = HybridClock::new(1000);
        let floor = from_physical_ms(wall_clock_ms() + 500) + 7;
        assert_eq!(clock.next_after(floor), Ok(floor + 1));
        assert!(clock.now().expect("within bound") > floor + 1);
    }

    #[test]
    fn observing_a_remote_timestamp_moves_the_clock_past_it() {
        let clock = HybridClock::new(60_000);
        let remote = from_physical_ms(wall_clock_ms() + 5_000) + 3;
        assert!(clock.observe(remote));
        assert!(clock.now().expect("within bound") > remote);
        assert_eq!(clock.skew_rejections(), 0);
    }

    #[test]
    fn a_remote_clock_far_ahead_is_bounded_and_counted() {
        let clock = HybridClock::new(1_000);
        let remote = from_physical_ms(wall_clock_ms() + 3_600_000);
        let before = clock.peek();
        assert!(!clock.observe(remote), "refused");
        assert_eq!(clock.skew_rejections(), 1);
        assert_eq!(clock.peek(), before, "the clock is left alone");
        assert!(clock.now().expect("within bound") < remote);
        assert!(physical_ms(clock.peek()) <= wall_clock_ms() + 1_000);
    }

    #[test]
    fn restore_never_goes_backwards() {
        let clock = HybridClock::new(20_000);
        let future = from_physical_ms(wall_clock_ms() + 10_000);
        clock.restore(future);
        clock.restore(1);
        assert!(clock.now().expect("within bound") > future);
        assert_eq!(clock.restores_bounded(), 0);
    }

    #[test]
    fn a_restored_mark_beyond_the_bound_stops_at_the_bound() {
        let clock = HybridClock::new(1_000);
        clock.restore(u64::MAX);
        assert_eq!(clock.restores_bounded(), 1);
        assert!(physical_ms(clock.peek()) <= wall_clock_ms() + 1_000);
    }

    #[test]
    fn no_timestamp_is_handed_out_past_the_bound() {
        let clock = HybridClock::new(1_000);
        for floor in [
            u64::MAX,
            u64::MAX - 1,
            from_physical_ms(wall_clock_ms() + 5_000),
        ] {
            let refused = clock.next_after(floor).expect_err("beyond the bound");
            assert!(refused.ahead_ms > 1_000, "{refused:?}");
        }
        assert!(!clock.observe(u64::MAX));
        let t = clock.now().expect("the clock itself stays usable");
        assert!(t <= clock.bound() && t < u64::MAX);
    }

    #[test]
    fn concurrent_timestamps_are_unique() {
        let clock = std::sync::Arc::new(HybridClock::new(1_000));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = clock.clone();
                std::thread::spawn(move || {
                    (0..10_000)
                        .map(|_| c.now().expect("within bound"))
                        .collect::<Vec<_>>()
                })
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
