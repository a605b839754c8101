//! Active expiry: values whose deadline has passed become their expired
//! tombstones (same version, same deadline, so every replica reaches the
//! same entry, and the same Merkle root, without sending anything).
//!
//! Reads never need this (an expired value reads as absent at once); it
//! frees the memory and settles the digests. Work is bounded and spread
//! thin, so a mass expiry does not arrive in bursts that client requests
//! queue behind: a thread of its own at the lowest scheduling priority
//! (it runs on what the client threads leave), ticks every [`TICK`] of at
//! most [`TICK_BUDGET`], each visiting a few lock shards. A shard is
//! scanned (under its read lock) only once its earliest deadline has
//! passed; the keys found due are kept and converted [`BATCH`] per hold of
//! its write lock over as many ticks as that takes — a shard is never
//! rescanned for the rest of its keys.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Prior, Store, StoreError};

/// Keys converted per hold of a shard's write lock.
pub const BATCH: usize = 64;
/// How often the cycle runs: short ticks, so the work of a mass expiry is
/// spread out instead of arriving in bursts client requests queue behind.
pub const TICK: Duration = Duration::from_millis(5);
/// Time one tick may spend: with [`TICK`], a tenth of one core (Redis' slow
/// cycle allows a quarter).
pub const TICK_BUDGET: Duration = Duration::from_micros(500);
/// Ticks per round over the shards: each shard is looked at once a second.
const TICKS_PER_ROUND: usize = 200;
/// The most due keys one scan of a shard collects; the shard is scanned
/// again for the rest once these are converted.
const MAX_DUE_PER_SCAN: usize = 4096;

/// Where the cycle is: the next shard to visit, and the keys of the shard
/// it is in the middle of.
#[derive(Debug, Default)]
pub struct ExpiryCursor {
    next_shard: usize,
    /// Keys of shard `next_shard` found due and not converted yet.
    pending: Vec<Box<[u8]>>,
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
                    if due.len() == MAX_DUE_PER_SCAN {
                        // The rest on the next scan.
                        earliest_left = now_ms;
                        break;
                    }
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

    /// One tick of the cycle, run to completion on this thread: goes on
    /// with the keys the last tick left, then visits the next shards (1/200
    /// of them a tick) until `budget` is spent. Returns how many values
    /// expired.
    pub fn expire_tick(
        &self,
        cursor: &mut ExpiryCursor,
        budget: Duration,
    ) -> Result<usize, StoreError> {
        let stop_at = Instant::now() + budget;
        let mut expired = 0;
        let mut batches = 0;
        for _ in 0..self.shards.len().div_ceil(TICKS_PER_ROUND) {
            let shard = cursor.next_shard % self.shards.len();
            if cursor.pending.is_empty() {
                if let Some(due) = self.due_in_shard(shard, self.now_ms()) {
                    cursor.pending = due;
                }
            }
            while !cursor.pending.is_empty() {
                if batches > 0 && Instant::now() >= stop_at {
                    return Ok(expired);
                }
                batches += 1;
                let from = cursor.pending.len().saturating_sub(BATCH);
                let batch = cursor.pending.split_off(from);
                expired += self.expire_keys(shard, &batch, self.now_ms())?;
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

/// Runs the expiry cycle every [`TICK`] until `shutdown` turns `true`, on
/// a thread of its own at the lowest scheduling priority; `expired` is
/// told how many values each tick expired (when any). Measured against
/// ticks of 2 ms every 20 ms on the blocking pool at normal priority, this
/// disturbed clients less during a mass expiry (docs/benchmarks.md).
pub async fn run_expiry(
    store: Arc<Store>,
    expired: impl Fn(usize) + Send + 'static,
    shutdown: watch::Receiver<bool>,
) {
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("merklekv-expiry".into())
        .spawn(move || {
            if !crate::process::lower_this_thread_priority() {
                tracing::debug!("the expiry thread runs at normal priority");
            }
            let mut cursor = ExpiryCursor::default();
            while !*shutdown.borrow() {
                std::thread::sleep(TICK);
                if store.expiring_count() == 0 {
                    continue;
                }
                match store.expire_tick(&mut cursor, TICK_BUDGET) {
                    Ok(0) => {}
                    Ok(n) => expired(n),
                    Err(e) => tracing::warn!(error = %e, "active expiry failed"),
                }
            }
            let _ = done.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = finished.await;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start the expiry thread; expired values stay until rewritten")
        }
    }
}
