//! Tombstone garbage collection: a deleted key's tombstone is kept for
//! `storage.tombstone_grace_seconds` (so every replica learns of the
//! delete through replication or anti-entropy), then removed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{key_hash, Store, StoreError};
use crate::clock;

impl Store {
    /// Removes tombstones whose version is older than `grace_ms` before
    /// `now_ms`. Returns how many were removed.
    pub fn gc_tombstones(&self, now_ms: u64, grace_ms: u64) -> Result<usize, StoreError> {
        let cutoff = clock::from_physical_ms(now_ms.saturating_sub(grace_ms));
        let log = self.log.get().cloned();
        let shape = self.index.shape();
        let mut removed = 0;
        for lock in self.shards.iter() {
            let mut map = lock.write();
            let expired: Vec<Box<[u8]>> = map
                .iter()
                .filter(|(_, s)| {
                    s.is_tombstone() && deleted_at(s.version().hlc, s.expires_at()) < cutoff
                })
                .map(|(k, _)| Box::from(k.as_slice()))
                .collect();
            for key in expired {
                if let Some(log) = &log {
                    log.forget(&key)?;
                }
                if self.remove_slot(&mut map, shape.leaf_of(key_hash(&key)), &key) {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// When a tombstone came to be, as an HLC timestamp: its version's, or for
/// an expired value the deadline's when that is later (the grace period
/// counts from the expiry, not from the write that set it).
fn deleted_at(hlc: u64, expires_at: Option<std::num::NonZeroU64>) -> u64 {
    expires_at.map_or(hlc, |d| hlc.max(clock::from_physical_ms(d.get())))
}

/// How often tombstones are collected for a given grace period.
pub fn gc_interval(grace: Duration) -> Duration {
    (grace / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Removes tombstones older than `grace` every [`gc_interval`] until
/// `shutdown` turns `true`; `collected` is told how many each sweep
/// removed (when any).
pub async fn collect_tombstones(
    store: Arc<Store>,
    grace: Duration,
    collected: impl Fn(usize) + Send + 'static,
    mut shutdown: watch::Receiver<bool>,
) {
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval(gc_interval(grace));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        let store = store.clone();
        let swept = tokio::task::spawn_blocking(move || {
            store.gc_tombstones(clock::wall_clock_ms(), grace_ms)
        })
        .await;
        match swept {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                collected(n);
                tracing::debug!(removed = n, "tombstones collected");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "tombstone collection failed"),
            Err(e) => tracing::warn!(error = %e, "tombstone collection task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_runs_often_enough() {
        assert_eq!(
            gc_interval(Duration::from_secs(86_400)),
            Duration::from_secs(60)
        );
        assert_eq!(gc_interval(Duration::from_secs(0)), Duration::from_secs(1));
        assert_eq!(gc_interval(Duration::from_secs(50)), Duration::from_secs(5));
    }
}
