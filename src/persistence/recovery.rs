//! Start-up recovery: every stored entry back into the store.
//!
//! The engine replays its own journal when it opens; this module then
//! reads every record (tombstones included) into the store through
//! [`Store::restore`], which rebuilds the Merkle index as it goes, and
//! restores the HLC high-water mark so versions never go backwards even
//! when the newest entries were tombstones that garbage collection removed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fjall::Slice;
use parking_lot::Mutex;

use super::engine::Engine;
use super::error::PersistenceError;
use crate::store::Store;

/// What recovery found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Entries read (values and tombstones).
    pub entries: u64,
    /// Live keys afterwards.
    pub live_keys: u64,
    /// The persisted HLC high-water mark, if one was stored.
    pub high_water: Option<u64>,
    /// Time spent reading and indexing.
    pub elapsed: Duration,
}

/// Entries handed to a restore thread at a time.
const CHUNK: usize = 4096;

/// Loads everything `engine` holds into `store`. The engine is read on the
/// calling thread while other threads decode and index what it read (one
/// per core, at most four). A damaged record stops recovery with an error.
pub fn recover(engine: &Engine, store: &Store) -> Result<RecoveryReport, PersistenceError> {
    let started = Instant::now();
    let high_water = engine.high_water()?;
    // Capped: an overcount only costs memory that the maps keep.
    store.reserve(engine.approximate_entries().min(1 << 28));
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4);
    let entries = if workers == 1 {
        engine.scan(|key, entry| store.restore(key, entry))?
    } else {
        restore_in_parallel(engine, store, workers)?
    };
    if let Some(hlc) = high_water {
        store.clock().restore(hlc);
    }
    Ok(RecoveryReport {
        entries,
        live_keys: store.len(),
        high_water,
        elapsed: started.elapsed(),
    })
}

type Chunk = Vec<(Slice, Slice)>;

/// Reads on this thread, decodes and indexes on `workers` threads.
fn restore_in_parallel(
    engine: &Engine,
    store: &Store,
    workers: usize,
) -> Result<u64, PersistenceError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(workers * 2);
    let rx = Mutex::new(rx);
    let failure: Mutex<Option<PersistenceError>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    let scanned = std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                // The lock is held only to take one chunk.
                let next = rx.lock().recv();
                let Ok(chunk) = next else { break };
                for (key, record) in chunk {
                    match engine.decode(&key, &record) {
                        Ok((user_key, entry)) => store.restore(user_key, entry),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            failure.lock().get_or_insert(e);
                            break;
                        }
                    }
                }
            });
        }
        let mut chunk: Chunk = Vec::with_capacity(CHUNK);
        let scanned = engine.scan_raw(|key, record| {
            chunk.push((key, record));
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                // Workers only stop once `tx` is dropped, so this cannot fail.
                let _ = tx.send(full);
            }
            !failed.load(Ordering::Relaxed)
        });
        if !chunk.is_empty() {
            let _ = tx.send(chunk);
        }
        drop(tx);
        scanned
    })?;
    match failure.into_inner() {
        Some(e) => Err(e),
        None => Ok(scanned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::engine::LogOp;
    use crate::store::{StoreOptions, WriteOp};
    use fjall::PersistMode;

    #[test]
    fn entries_tombstones_and_the_clock_come_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = Store::new(StoreOptions::default()).expect("store");
        original
            .apply_local(WriteOp::Set {
                key: b"a",
                value: b"1",
            })
            .expect("set");
        original
            .apply_local(WriteOp::Set {
                key: b"b",
                value: b"2",
            })
            .expect("set");
        original
            .apply_local(WriteOp::Delete { key: b"b" })
            .expect("del");
        // 30 s ahead: within the default 60 s bound, so restored as is.
        let far_future = original.clock().peek() + (30_000 << 16);
        {
            let engine = Engine::open(dir.path()).expect("open");
            let ops = [b"a", b"b"]
                .iter()
                .map(|k| LogOp::put(*k, &original.entry(*k).expect("entry")).expect("op"))
                .collect();
            engine
                .commit(ops, Some(far_future), PersistMode::SyncData)
                .expect("commit");
        }
        let engine = Engine::open(dir.path()).expect("reopen");
        let restored = Store::new(StoreOptions::default()).expect("store");
        let report = recover(&engine, &restored).expect("recover");
        assert_eq!(report.entries, 2);
        assert_eq!(report.live_keys, 1);
        assert_eq!(report.high_water, Some(far_future));
        assert_eq!(restored.root(), original.root());
        assert_eq!(restored.get(b"a"), Some(b"1".to_vec()));
        assert!(restored.entry(b"b").expect("tombstone").is_tombstone());
        assert!(restored.clock().now().expect("within bound") > far_future);
    }

    #[test]
    fn an_empty_engine_recovers_to_an_empty_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let store = Store::new(StoreOptions::default()).expect("store");
        let report = recover(&engine, &store).expect("recover");
        assert_eq!(report.entries, 0);
        assert_eq!(report.high_water, None);
        assert!(store.is_empty());
    }

    #[test]
    fn a_damaged_record_among_many_stops_recovery_with_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let source = Store::new(StoreOptions::default()).expect("store");
        let mut ops = Vec::new();
        for i in 0..(3 * CHUNK) {
            let key = format!("k{i:06}");
            source
                .apply_local(WriteOp::Set {
                    key: key.as_bytes(),
                    value: b"v",
                })
                .expect("set");
            let entry = source.entry(key.as_bytes()).expect("entry");
            ops.push(LogOp::put(key.as_bytes(), &entry).expect("op"));
        }
        ops.push(LogOp::Put {
            key: fjall::Slice::from(&b"kk005000x"[..]),
            record: fjall::Slice::from(&[1u8, 0xff][..]),
        });
        engine
            .commit(ops, None, PersistMode::Buffer)
            .expect("commit");
        let store = Store::new(StoreOptions::default()).expect("store");
        let err = recover(&engine, &store).expect_err("damaged record");
        let msg = err.to_string();
        assert!(msg.contains("k005000x"), "{msg}");
        assert!(msg.contains("Move the directory aside"), "{msg}");
    }
}
