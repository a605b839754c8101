//! Capped exponential backoff with jitter between reconnect attempts.

use std::time::Duration;

/// Delays between reconnect attempts: `min`, doubling up to `max`, each
/// spread by ±20 % so that a cluster does not reconnect in lock step.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff starting at `min` and capped at `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The delay before the next attempt; later delays grow.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let factor = rand::random_range(0.8..1.2);
        base.mul_f64(factor).min(self.max)
    }

    /// Starts again from `min` (after a connection proved stable).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(3);
        let mut b = Backoff::new(min, max);
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
        let mut last = first;
        for _ in 0..20 {
            last = b.next_delay();
            assert!(last <= max);
        }
        assert!(last >= Duration::from_millis(2400));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }
}
