//! What the store refused, counted by reason (INFO and the metrics
//! endpoint report these).

use std::sync::atomic::{AtomicU64, Ordering};

/// Why an entry from elsewhere (a replica, the change log, the storage
/// engine) was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its version lies beyond the clock's bound (`max_clock_skew_ms` past
    /// the local wall clock): storing it would freeze the key's versions.
    FutureVersion,
    /// Its key is longer than a client may send.
    OversizedKey,
    /// Its value is longer than a client may send.
    OversizedValue,
}

impl Refusal {
    /// A short label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::FutureVersion => "future_version",
            Refusal::OversizedKey => "oversized_key",
            Refusal::OversizedValue => "oversized_value",
        }
    }
}

/// The counters.
#[derive(Debug, Default)]
pub struct Refusals {
    future_versions: AtomicU64,
    oversized: AtomicU64,
    clock_ahead_writes: AtomicU64,
}

impl Refusals {
    /// Counts one refused entry.
    pub fn count(&self, refusal: Refusal) {
        let counter = match refusal {
            Refusal::FutureVersion => &self.future_versions,
            Refusal::OversizedKey | Refusal::OversizedValue => &self.oversized,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one client write refused because the key's version lies
    /// beyond the clock's bound.
    pub fn count_clock_ahead(&self) {
        self.clock_ahead_writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Entries refused for a version beyond the bound.
    pub fn future_versions(&self) -> u64 {
        self.future_versions.load(Ordering::Relaxed)
    }

    /// Entries refused for a key or value longer than a client may send.
    pub fn oversized(&self) -> u64 {
        self.oversized.load(Ordering::Relaxed)
    }

    /// Client writes refused because the key's version lies beyond the
    /// bound.
    pub fn clock_ahead_writes(&self) -> u64 {
        self.clock_ahead_writes.load(Ordering::Relaxed)
    }
}
