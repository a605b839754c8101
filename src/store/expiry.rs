//! Active expiry: values whose deadline has passed become their expired
//! tombstones (same version, same deadline, so every replica reaches the
//! same entry, and the same Merkle root, without sending anything).
//!
//! Reads never need this (an expired value reads as absent at once); it
//! frees the memory and settles the digests. Work is bounded: a tick visits
//! 1/50 of the lock shards, scans a shard (under its read lock) only once
//! its earliest deadline has passed, converts at most [`BATCH`] keys per
//! hold of its write lock, and stops when its time budget is spent (the
//! next tick goes on where it stopped).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Prior, Store, StoreError};

/// Keys converted per hold of a shard's write lock.
pub const BATCH: usize = 64;
/// How often the cycle runs: short ticks, so the work of a mass expiry is
/// spread out instead of arriving in bursts client requests queue behind.
pub const TICK: Duration = Duration::from_millis(20);
/// Time one tick may spend: with [`TICK`], a tenth of one core (Redis' slow
/// cycle allows a quarter).
pub const TICK_BUDGET: Duration = Duration::from_millis(2);
/// Ticks per round over the shards: each shard is looked at once a second.
const TICKS_PER_ROUND: usize = 50;

/// Where the cycle is: the next shard to visit.
#[derive(Debug, Default)]
pub struct ExpiryCursor {
    next_shard: usize,
}

impl Store {
    /// The keys of shard `shard` whose values expired at or before
    /// `now_ms`, found in one scan under its read lock; `None` (no scan)
    /// while the shard's earliest deadline lies ahead.
    pub fn due_in_shard(&self, shard: usize, now_ms: u64) -> Option<Vec<Box<[u8]>>> {
        if self.expiring[shard].load(Ordering::Relaxed) == 0
            || self.next_deadline[shard].load(Ordering::Relaxed) > now_ms
        {
            return None;
        }
        // Writes from here on lower it again themselves (`fetch_min`).
        self.next_deadline[shard].store(u64::MAX, Ordering::Relaxed);
        let mut due = Vec::new();
        let mut earliest_left = u64::MAX;
        {
            let map = self.shards[shard].read();
            for (key, slot) in map.iter() {
                if !slot.is_expiring_value() {
                    continue;
                }
                let Some(deadline) = slot.expires_at() else {
                    continue;
                };
                if deadline.get() <= now_ms {
                    due.push(Box::from(key.as_slice()));
                } else {
                    earliest_left = earliest_left.min(deadline.get());
                }
            }
        }
        self.next_deadline[shard].fetch_min(earliest_left, Ordering::Relaxed);
        Some(due)
    }

    /// Turns the values of `keys` (in shard `shard`) that are still expired
    /// at `now_ms` into their expired tombstones, under one hold of the
    /// shard's write lock; keys rewritten since they were found are left
    /// alone. Returns how many it converted.
    pub fn expire_keys(
        &self,
        shard: usize,
        keys: &[Box<[u8]>],
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        let mut map = self.shards[shard].write();
        let mut converted = 0;
        for key in keys {
            let Some(slot) = map.get(&key[..]) else {
                continue;
            };
            if !slot.is_expiring_value() || slot.expires_at().is_none_or(|d| d.get() > now_ms) {
                continue;
            }
            let entry = slot.expired_entry();
            let prior = Prior::of(key, Some(slot));
            let loc = self.locate(key);
            self.write_slot(&mut map, loc, key, entry, prior, false, true)?;
            converted += 1;
        }
        Ok(converted)
    }

    /// Marks shard `shard` for another scan (a tick stopped before it
    /// converted every expired key found there).
    pub(super) fn rescan(&self, shard: usize, now_ms: u64) {
        self.next_deadline[shard].fetch_min(now_ms, Ordering::Relaxed);
    }

    /// One tick of the cycle, run to completion on this thread: visits the
    /// next 1/50 of the shards until `budget` is spent (the next tick goes
    /// on in the shard where this one stopped). Returns how many values
    /// expired.
    pub fn expire_tick(
        &self,
        cursor: &mut ExpiryCursor,
        budget: Duration,
    ) -> Result<usize, StoreError> {
        let stop_at = Instant::now() + budget;
        let mut expired = 0;
        for _ in 0..self.shards.len().div_ceil(TICKS_PER_ROUND) {
            let shard = cursor.next_shard % self.shards.len();
            let now = self.now_ms();
            if let Some(due) = self.due_in_shard(shard, now) {
                for (i, batch) in due.chunks(BATCH).enumerate() {
                    if i > 0 && Instant::now() >= stop_at {
                        self.rescan(shard, now);
                        return Ok(expired);
                    }
                    expired += self.expire_keys(shard, batch, now)?;
                }
            }
            cursor.next_shard = (shard + 1) % self.shards.len();
            if Instant::now() >= stop_at {
                break;
            }
        }
        Ok(expired)
    }

    /// Values with a deadline that have not expired into tombstones yet
    /// (Redis' `expires` in `INFO keyspace`).
    pub fn expiring_count(&self) -> u64 {
        self.expiring
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// Runs the expiry cycle every [`TICK`] until `shutdown` turns `true`;
/// `expired` is told how many values each tick expired (when any). Each
/// tick runs on the blocking pool: measured against running it between
/// client requests on the runtime's workers (yielding after each batch),
/// this disturbed clients less (docs/benchmarks.md).
pub async fn run_expiry(
    store: Arc<Store>,
    expired: impl Fn(usize) + Send + 'static,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cursor = Some(ExpiryCursor::default());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        if store.expiring_count() == 0 {
            continue;
        }
        let store = store.clone();
        let mut moved = cursor.take().unwrap_or_default();
        let done = tokio::task::spawn_blocking(move || {
            let result = store.expire_tick(&mut moved, TICK_BUDGET);
            (result, moved)
        })
        .await;
        match done {
            Ok((result, back)) => {
                cursor = Some(back);
                match result {
                    Ok(0) => {}
                    Ok(n) => expired(n),
                    Err(e) => tracing::warn!(error = %e, "active expiry failed"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "active expiry task failed"),
        }
    }
}
