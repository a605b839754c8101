//! The bounded queue between the write path and the publisher.
//!
//! [`ChangeQueue::submit`] (the [`ChangeSink`] the command path calls after
//! every successful write) never blocks and never awaits: when the queue
//! already holds `queue_size` changes or [`MAX_QUEUED_BYTES`], the new
//! changes are dropped and counted, and anti-entropy repairs the replicas
//! later. One command's changes are admitted whole whenever the queue is
//! below its limits, so a FLUSH or a large MSET is not cut in half.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::codec::estimated_change_len;
use super::log_limit::LogLimit;
use super::metrics::ReplicationMetrics;
use crate::hooks::ChangeSink;
use crate::store::Change;

/// Cap on the estimated bytes queued, whatever `queue_size` says, so that
/// large values cannot pile up without bound while the broker is away.
pub const MAX_QUEUED_BYTES: usize = 256 << 20;

/// Milliseconds between two "changes dropped" warnings.
const DROP_WARNING_INTERVAL_MS: u64 = 10_000;

#[derive(Debug, Default)]
struct Inner {
    changes: VecDeque<Change>,
    bytes: usize,
}

/// Bounded, non-blocking queue of changes waiting to be published.
#[derive(Debug)]
pub struct ChangeQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    capacity: usize,
    max_bytes: usize,
    accepting: AtomicBool,
    drop_warning: LogLimit,
    metrics: Arc<ReplicationMetrics>,
}

impl ChangeQueue {
    /// An empty queue holding up to `capacity` changes; it refuses
    /// changes until [`ChangeQueue::set_accepting`] turns it on.
    pub fn new(capacity: usize, metrics: Arc<ReplicationMetrics>) -> Self {
        Self::with_byte_limit(capacity, MAX_QUEUED_BYTES, metrics)
    }

    /// Like [`ChangeQueue::new`] with an explicit byte cap.
    pub fn with_byte_limit(
        capacity: usize,
        max_bytes: usize,
        metrics: Arc<ReplicationMetrics>,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
            max_bytes: max_bytes.max(1),
            accepting: AtomicBool::new(false),
            drop_warning: LogLimit::new(DROP_WARNING_INTERVAL_MS),
            metrics,
        }
    }

    /// Starts (`true`) or stops (`false`) accepting changes. Changes
    /// submitted while stopped are counted as dropped (`reason="disabled"`).
    pub fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::SeqCst);
    }

    /// Whether changes are accepted.
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Number of queued changes.
    pub fn len(&self) -> usize {
        self.inner.lock().changes.len()
    }

    /// Estimated encoded bytes of the queued changes.
    pub fn queued_bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().changes.is_empty()
    }

    /// Resolves after the next submit (or at once if one happened since
    /// the last wake-up).
    pub async fn wait_for_changes(&self) {
        self.notify.notified().await;
    }

    /// Removes the oldest changes whose estimated encoded size adds up to at
    /// most `budget` bytes (always at least one change when any is queued).
    pub fn pop_batch(&self, budget: usize) -> Vec<Change> {
        let mut inner = self.inner.lock();
        let mut out = Vec::new();
        let mut used = 0usize;
        while let Some(front) = inner.changes.front() {
            let len = estimated_change_len(front);
            if !out.is_empty() && used + len > budget {
                break;
            }
            let Some(change) = inner.changes.pop_front() else {
                break;
            };
            used += len;
            inner.bytes = inner.bytes.saturating_sub(len);
            out.push(change);
        }
        self.metrics.queue_depth.set(inner.changes.len() as i64);
        out
    }

    /// Drops every queued change, counting them as not published because
    /// replication is disabled. Returns how many were dropped.
    pub fn clear(&self) -> usize {
        let dropped = {
            let mut inner = self.inner.lock();
            let n = inner.changes.len();
            inner.changes.clear();
            inner.bytes = 0;
            n
        };
        self.metrics.dropped_disabled.inc_by(dropped as u64);
        self.metrics.queue_depth.set(0);
        dropped
    }

    fn warn_dropped(&self, n: usize) {
        if self.drop_warning.allow() {
            tracing::warn!(
                dropped = n,
                dropped_total = self.metrics.dropped_queue_full.get(),
                capacity = self.capacity,
                "replication queue full (broker down or slow): changes dropped, \
                 anti-entropy will repair the replicas"
            );
        }
    }
}

impl ChangeSink for ChangeQueue {
    fn submit(&self, changes: Vec<Change>) {
        let n = changes.len();
        if n == 0 {
            return;
        }
        if !self.is_accepting() {
            self.metrics.dropped_disabled.inc_by(n as u64);
            return;
        }
        let admitted = {
            let mut inner = self.inner.lock();
            if inner.changes.len() >= self.capacity || inner.bytes >= self.max_bytes {
                false
            } else {
                for change in changes {
                    inner.bytes += estimated_change_len(&change);
                    inner.changes.push_back(change);
                }
                self.metrics.queue_depth.set(inner.changes.len() as i64);
                true
            }
        };
        if admitted {
            self.notify.notify_one();
        } else {
            self.metrics.dropped_queue_full.inc_by(n as u64);
            self.warn_dropped(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Entry, Version};

    fn change(i: u64, value_len: usize) -> Change {
        Change {
            key: format!("k{i}").into_bytes().into(),
            entry: Entry {
                expires_at: None,
                version: Version::new(i, 1),
                value: Some(vec![b'v'; value_len].into()),
            },
        }
    }

    fn queue(capacity: usize) -> (ChangeQueue, Arc<ReplicationMetrics>) {
        let metrics = Arc::new(ReplicationMetrics::default());
        let q = ChangeQueue::new(capacity, metrics.clone());
        q.set_accepting(true);
        (q, metrics)
    }

    #[test]
    fn refuses_while_not_accepting() {
        let (q, m) = queue(4);
        q.set_accepting(false);
        q.submit(vec![change(1, 1), change(2, 1)]);
        assert_eq!(q.len(), 0);
        assert_eq!(m.dropped_disabled.get(), 2);
    }

    #[test]
    fn drops_and_counts_when_full() {
        let (q, m) = queue(3);
        for i in 0..3 {
            q.submit(vec![change(i, 1)]);
        }
        q.submit(vec![change(9, 1), change(10, 1)]);
        assert_eq!(q.len(), 3);
        assert_eq!(m.dropped_queue_full.get(), 2);
        assert_eq!(m.queue_depth.get(), 3);
    }

    #[test]
    fn admits_a_whole_command_below_the_limit() {
        let (q, m) = queue(3);
        q.submit((0..10).map(|i| change(i, 1)).collect());
        assert_eq!(q.len(), 10);
        assert_eq!(m.dropped_queue_full.get(), 0);
        q.submit(vec![change(11, 1)]);
        assert_eq!(m.dropped_queue_full.get(), 1);
    }

    #[test]
    fn byte_limit_applies() {
        let metrics = Arc::new(ReplicationMetrics::default());
        let q = ChangeQueue::with_byte_limit(1000, 1000, metrics.clone());
        q.set_accepting(true);
        q.submit(vec![change(1, 2000)]);
        q.submit(vec![change(2, 1)]);
        assert_eq!(q.len(), 1);
        assert_eq!(metrics.dropped_queue_full.get(), 1);
    }

    #[test]
    fn batches_respect_the_budget_in_order() {
        let (q, _) = queue(100);
        q.submit((0..10).map(|i| change(i, 100)).collect());
        let per_change = estimated_change_len(&change(0, 100));
        let first = q.pop_batch(per_change * 4);
        assert_eq!(first.len(), 4);
        assert_eq!(first[0].entry.version.hlc, 0);
        let rest = q.pop_batch(usize::MAX);
        assert_eq!(rest.len(), 6);
        assert_eq!(rest[0].entry.version.hlc, 4);
        assert!(q.pop_batch(10).is_empty());
    }

    #[test]
    fn an_oversized_change_still_comes_out_alone() {
        let (q, _) = queue(100);
        q.submit(vec![change(1, 5000), change(2, 1)]);
        assert_eq!(q.pop_batch(100).len(), 1);
        assert_eq!(q.pop_batch(100).len(), 1);
    }

    #[test]
    fn clear_counts_as_disabled() {
        let (q, m) = queue(100);
        q.submit((0..5).map(|i| change(i, 1)).collect());
        assert_eq!(q.clear(), 5);
        assert!(q.is_empty());
        assert_eq!(m.dropped_disabled.get(), 5);
    }
}
