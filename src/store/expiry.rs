//! Active expiry: values whose deadline has passed become their expired
//! tombstones (same version, same deadline, so every replica reaches the
//! same entry, and the same Merkle root, without sending anything).
//!
//! Reads never need this (an expired value reads as absent at once); it
//! frees the memory and settles the digests. Work is bounded: a tick visits
//! a tenth of the lock shards, scans a shard only once its earliest deadline
//! has passed, converts at most [`BATCH`] keys per lock hold, and stops
//! when its time budget is spent (the next tick goes on where it stopped).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Prior, Store, StoreError};

/// Keys converted per hold of a shard's write lock.
pub const BATCH: usize = 256;
/// How often the cycle runs.
pub const TICK: Duration = Duration::from_millis(100);
/// CPU time one tick may spend (a quarter of one core, as Redis' slow
/// cycle allows).
pub const TICK_BUDGET: Duration = Duration::from_millis(25);
/// Shards a tick visits: each shard is looked at once a second.
const TICKS_PER_ROUND: usize = 10;

/// Where the cycle is: the next shard to visit.
#[derive(Debug, Default)]
pub struct ExpiryCursor {
    next_shard: usize,
}

impl Store {
    /// Converts expired values in shard `shard` into tombstones, at most
    /// [`BATCH`] of them; returns how many, and whether the shard may hold
    /// more already expired.
    pub fn expire_in_shard(&self, shard: usize, now_ms: u64) -> Result<(usize, bool), StoreError> {
        if self.expiring[shard].load(Ordering::Relaxed) == 0
            || self.next_deadline[shard].load(Ordering::Relaxed) > now_ms
        {
            return Ok((0, false));
        }
        let mut map = self.shards[shard].write();
        let mut due: Vec<Box<[u8]>> = Vec::new();
        let mut earliest_left = u64::MAX;
        for (key, slot) in map.iter() {
            let Some(deadline) = slot.entry.expires_at.filter(|_| slot.entry.value.is_some())
            else {
                continue;
            };
            if deadline.get() <= now_ms && due.len() < BATCH {
                due.push(Box::from(key.as_slice()));
            } else {
                earliest_left = earliest_left.min(deadline.get());
            }
        }
        // Writes lower it under this lock too; nothing can slip in between.
        self.next_deadline[shard].store(earliest_left, Ordering::Relaxed);
        let mut converted = 0;
        for key in &due {
            let Some(slot) = map.get(&key[..]) else {
                continue;
            };
            let entry = slot.entry.expired();
            let prior = Prior::of(self, key, Some(slot));
            let loc = self.locate(key);
            self.write_slot(&mut map, loc, key, entry, prior, false, true)?;
            converted += 1;
        }
        Ok((converted, earliest_left <= now_ms))
    }

    /// One tick of the cycle: visits the next tenth of the shards (going on
    /// in a shard while it has more expired keys) until `budget` is spent.
    /// Returns how many values expired.
    pub fn expire_tick(
        &self,
        cursor: &mut ExpiryCursor,
        budget: Duration,
    ) -> Result<usize, StoreError> {
        let started = Instant::now();
        let shards = self.shards.len();
        let visits = shards.div_ceil(TICKS_PER_ROUND);
        let mut expired = 0;
        let mut visited = 0;
        while visited < visits {
            let shard = cursor.next_shard % shards;
            let (n, more) = self.expire_in_shard(shard, self.now_ms())?;
            expired += n;
            if started.elapsed() >= budget {
                if !more {
                    cursor.next_shard = (shard + 1) % shards;
                }
                break;
            }
            if !more {
                cursor.next_shard = (shard + 1) % shards;
                visited += 1;
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
/// `expired` is told how many values each tick expired (when any).
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
