//! Hinted handoff: writes for a replica that is down are kept here, on the
//! coordinator, and handed to the replica once it is seen up again. Hints
//! never count toward a write's W (no sloppy quorum): they only shorten how
//! long a returning replica stays behind.
//!
//! Bounded by `cluster.max_hint_bytes` (a full store drops new hints) and
//! `cluster.max_hint_age_seconds` (older hints are dropped at delivery),
//! both counted. With persistence on they are also kept on disk
//! ([`super::hint_log`]), so a coordinator that restarts still hands them
//! over.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::hint_log::{HintLog, LoadedHint};
use crate::store::Entry;

/// Bytes counted per hint on top of key and value.
const HINT_OVERHEAD_BYTES: u64 = 64;

/// One write waiting for its replica.
pub struct Hint {
    /// When it was stored.
    pub at: Instant,
    /// The key.
    pub key: Box<[u8]>,
    /// The coordinator-stamped entry.
    pub entry: Entry,
}

impl Hint {
    fn bytes(&self) -> u64 {
        (self.key.len() + self.entry.value.as_ref().map_or(0, |v| v.len())) as u64
            + HINT_OVERHEAD_BYTES
    }
}

/// Counters of hinted handoff (`merklekv_cluster_hints_*`).
#[derive(Debug, Clone, Default)]
pub struct HintMetrics {
    /// Hints stored.
    pub stored: Counter,
    /// Hints handed to their replica.
    pub delivered: Counter,
    /// Hints dropped, by reason (`full`, `expired`).
    pub dropped: Family<[(&'static str, &'static str); 1], Counter>,
    /// Bytes held now.
    pub bytes: Gauge,
}

impl HintMetrics {
    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        let r = registry.sub_registry_with_prefix("cluster_hints");
        r.register(
            "stored",
            "Hints stored for replicas that were down",
            self.stored.clone(),
        );
        r.register(
            "delivered",
            "Hints handed to their replica",
            self.delivered.clone(),
        );
        r.register(
            "dropped",
            "Hints dropped, by reason (full, expired)",
            self.dropped.clone(),
        );
        r.register("bytes", "Bytes of hints held", self.bytes.clone());
    }
}

/// The hints this node holds, per replica (node id).
pub struct Hints {
    by_replica: Mutex<HashMap<String, VecDeque<Hint>>>,
    bytes: AtomicU64,
    max_bytes: u64,
    max_age: Duration,
    metrics: HintMetrics,
    /// Where hints survive a restart (`None`: persistence off).
    log: Option<HintLog>,
}

impl Hints {
    /// An empty store holding at most `max_bytes`, each hint at most
    /// `max_age`.
    pub fn new(max_bytes: u64, max_age: Duration, metrics: HintMetrics) -> Self {
        Self {
            by_replica: Mutex::new(HashMap::new()),
            bytes: AtomicU64::new(0),
            max_bytes,
            max_age,
            metrics,
            log: None,
        }
    }

    /// Keeps hints in `log` too, starting with the ones it read back
    /// (`loaded`: they are on disk already). Returns how many were kept.
    pub fn with_log(mut self, log: HintLog, loaded: Vec<LoadedHint>) -> (Self, usize) {
        let now = Instant::now();
        let mut kept = 0;
        {
            let mut by = self.by_replica.lock();
            for l in loaded {
                let hint = Hint {
                    at: now.checked_sub(l.age).unwrap_or(now),
                    key: l.key,
                    entry: l.entry,
                };
                if self.admit(&hint) {
                    kept += 1;
                    by.entry(l.replica).or_default().push_back(hint);
                }
            }
        }
        self.log = Some(log);
        (self, kept)
    }

    /// Writes hints buffered for disk to the OS.
    pub fn flush(&self) {
        if let Some(log) = &self.log {
            log.flush();
        }
    }

    /// Keeps `entry` for `replica`; dropped (and counted) when the store is
    /// full.
    pub fn store(&self, replica: &str, key: &[u8], entry: &Entry) {
        let hint = Hint {
            at: Instant::now(),
            key: key.into(),
            entry: entry.clone(),
        };
        if self.admit(&hint) {
            self.metrics.stored.inc();
            let mut by = self.by_replica.lock();
            if let Some(log) = &self.log {
                log.append(replica, key, entry, Duration::ZERO);
            }
            by.entry(replica.to_owned()).or_default().push_back(hint);
        }
    }

    /// Counts `hint`'s bytes in, or counts it dropped when they do not fit.
    fn admit(&self, hint: &Hint) -> bool {
        let bytes = hint.bytes();
        if self.bytes.load(Ordering::Relaxed) + bytes > self.max_bytes {
            self.metrics
                .dropped
                .get_or_create(&[("reason", "full")])
                .inc();
            return false;
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.metrics.bytes.inc_by(bytes as i64);
        true
    }

    /// Whether hints wait for `replica`.
    pub fn has(&self, replica: &str) -> bool {
        self.by_replica
            .lock()
            .get(replica)
            .is_some_and(|q| !q.is_empty())
    }

    /// Takes up to `max` of `replica`'s hints, oldest first; expired ones
    /// are dropped (and counted) instead.
    pub fn take(&self, replica: &str, max: usize) -> Vec<Hint> {
        let mut taken = Vec::new();
        let mut released = 0u64;
        let mut expired = 0u64;
        {
            let mut by = self.by_replica.lock();
            let Some(queue) = by.get_mut(replica) else {
                return taken;
            };
            while taken.len() < max {
                let Some(hint) = queue.pop_front() else { break };
                released += hint.bytes();
                if hint.at.elapsed() > self.max_age {
                    expired += 1;
                    continue;
                }
                taken.push(hint);
            }
            if queue.is_empty() {
                by.remove(replica);
                if taken.is_empty() {
                    // Every one had expired: nothing is in flight either.
                    self.clear_log(replica);
                }
            }
        }
        self.release(released);
        if expired > 0 {
            self.metrics
                .dropped
                .get_or_create(&[("reason", "expired")])
                .inc_by(expired);
        }
        taken
    }

    /// Puts back hints that could not be delivered (their bytes count
    /// again; a full store drops them).
    pub fn put_back(&self, replica: &str, hints: Vec<Hint>) {
        let kept: Vec<Hint> = hints.into_iter().filter(|h| self.admit(h)).collect();
        let mut by = self.by_replica.lock();
        if let Some(log) = &self.log {
            for h in &kept {
                log.append(replica, &h.key, &h.entry, h.at.elapsed());
            }
        }
        let queue = by.entry(replica.to_owned()).or_default();
        for hint in kept.into_iter().rev() {
            queue.push_front(hint);
        }
    }

    /// Counts `n` hints handed to `replica`; once none wait for it, its
    /// file on disk goes.
    pub fn delivered(&self, replica: &str, n: usize) {
        self.metrics.delivered.inc_by(n as u64);
        let by = self.by_replica.lock();
        if !by.contains_key(replica) {
            self.clear_log(replica);
        }
    }

    /// Removes `replica`'s hint file (call with `by_replica` locked, so no
    /// hint is appended to it meanwhile).
    fn clear_log(&self, replica: &str) {
        if let Some(log) = &self.log {
            log.clear(replica);
        }
    }

    fn release(&self, bytes: u64) {
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.metrics.bytes.dec_by(bytes as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Version;

    fn entry(v: &[u8]) -> Entry {
        Entry {
            expires_at: None,
            version: Version::new(1, 1),
            value: Some(v.into()),
        }
    }

    #[test]
    fn hints_are_bounded_by_bytes_and_age_and_come_back_in_order() {
        let metrics = HintMetrics::default();
        let hints = Hints::new(
            3 * (HINT_OVERHEAD_BYTES + 2),
            Duration::from_secs(60),
            metrics.clone(),
        );
        for k in [b"a", b"b", b"c", b"d"] {
            hints.store("n2", k, &entry(b"v"));
        }
        assert_eq!(metrics.stored.get(), 3);
        assert_eq!(
            metrics.dropped.get_or_create(&[("reason", "full")]).get(),
            1
        );
        let first = hints.take("n2", 2);
        assert_eq!(
            first.iter().map(|h| &*h.key).collect::<Vec<_>>(),
            [b"a", b"b"]
        );
        hints.put_back("n2", first);
        let all = hints.take("n2", 10);
        assert_eq!(
            all.iter().map(|h| &*h.key).collect::<Vec<_>>(),
            [b"a", b"b", b"c"]
        );
        assert!(!hints.has("n2"));
        assert_eq!(metrics.bytes.get(), 0);

        let old = Hints::new(1 << 20, Duration::ZERO, HintMetrics::default());
        old.store("n3", b"k", &entry(b"v"));
        std::thread::sleep(Duration::from_millis(2));
        assert!(old.take("n3", 10).is_empty(), "expired hints are dropped");
    }
}
