//! Durable storage: every change is appended to a change log under
//! `storage.data_dir/log` before its reply leaves; a background
//! checkpointer folds full log segments into an embedded LSM engine
//! (fjall), which holds every entry (tombstones included) and the HLC
//! high-water mark. The serving copy and the Merkle index live in memory
//! and are rebuilt from the engine plus the log at start-up.
//!
//! * [`lock`]: one process per data directory (`LOCK`, holding the pid).
//! * [`engine`] / [`entry_record`]: the fjall database and the record format.
//! * [`log_frame`] / [`log_segments`]: the change log's frames and files.
//! * [`queue`] / [`group_commit`]: the store records each change into an
//!   in-memory queue; it reaches the log before the reply (appended by the
//!   connection itself, or by the group-commit thread that also fsyncs
//!   under `fsync = "always"`).
//! * [`checkpoint`]: folds sealed segments into the engine.
//! * [`recovery`] / [`replay`]: load the engine, then replay the log.
//!
//! See `docs/durability.md` for what each fsync policy guarantees.

pub mod checkpoint;
pub mod clean_marker;
pub mod engine;
pub mod entry_record;
pub mod error;
pub mod group_commit;
pub mod lock;
pub mod log_frame;
pub mod log_segments;
pub mod metrics;
pub mod queue;
pub mod recovery;
pub mod replay;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use crate::hooks::Hooks;
use crate::store::Store;
use crate::subsystem::{Attached, StartUp};
use checkpoint::Checkpointer;
use engine::Engine;
use error::PersistenceError;
use group_commit::GroupCommit;
use lock::DataDirLock;
use log_segments::{LogWriter, LOG_DIR};
use metrics::StorageMetrics;
use queue::WriteQueue;
use recovery::RecoveryReport;
use replay::ReplayReport;

/// Opens the data directory, loads it into the store, and from then on
/// records every change durably. With `storage.persistence = false` the
/// node stays purely in memory.
pub async fn attach(start: StartUp<'_>) -> anyhow::Result<Attached> {
    let storage = &start.config.storage;
    if !storage.persistence {
        tracing::info!("persistence off: data lives in memory only");
        return Ok(Attached {
            data_dir: Some("in-memory".into()),
            ..Attached::default()
        });
    }
    let policy = storage.fsync;
    let dir = start.config.data_dir();
    let store = start.store.clone();
    let opened = tokio::task::spawn_blocking(move || open_and_recover(&dir, &store))
        .await
        .context("storage start-up task failed")??;
    let Opened {
        dir,
        lock,
        engine,
        report,
        replayed,
        unclean,
        open_elapsed,
    } = opened;
    let total = open_elapsed + report.elapsed + replayed.elapsed;
    // What the store holds now: the engine's entries with the log replayed.
    let entries = start.store.root().count;
    let keys = start.store.len();
    tracing::info!(
        data_dir = %dir.display(),
        entries,
        keys,
        replayed = replayed.changes,
        open_ms = open_elapsed.as_millis() as u64,
        load_ms = report.elapsed.as_millis() as u64,
        replay_ms = replayed.elapsed.as_millis() as u64,
        fsync = policy.as_str(),
        "recovered {} keys ({} entries incl. tombstones) in {:.3} s (engine open {:.3} s, load and \
         index {:.3} s, change-log replay of {} changes {:.3} s)",
        keys,
        entries,
        total.as_secs_f64(),
        open_elapsed.as_secs_f64(),
        report.elapsed.as_secs_f64(),
        replayed.changes,
        replayed.elapsed.as_secs_f64()
    );

    let metrics = StorageMetrics::default();
    metrics.recovery_seconds.set(total.as_secs_f64());
    metrics.recovered_entries.set(entries as i64);
    metrics.replayed_changes.set(replayed.changes as i64);
    metrics.unclean_start.set(i64::from(unclean));
    // What recovery loaded is on disk: the first save is the start.
    metrics.saved_now();
    let saves: Arc<dyn crate::hooks::SaveClock> = Arc::new(metrics.clone());
    let engine = Arc::new(engine);
    let queue = Arc::new(WriteQueue::default());
    // A garbage-collected tombstone recovered from disk may carry the
    // newest version: the high-water frames written for removals start
    // from what recovery restored.
    queue.observe_hlc(start.store.clock().peek());
    let log_dir = dir.join(LOG_DIR);
    metrics.register(
        start.registry,
        queue.clone(),
        engine.clone(),
        log_dir.clone(),
    );
    let next_seq = replayed
        .next_seq()
        .context("change-log segment numbers are exhausted; rename the segments in log/")?;
    let checkpointer = Checkpointer::start(
        engine.clone(),
        log_dir.clone(),
        metrics.clone(),
        replayed.segments,
    )
    .context("cannot start the storage checkpoint thread")?;
    let segment_bytes = storage.log_segment_mb.saturating_mul(1 << 20);
    let writer = LogWriter::create(&log_dir, next_seq, segment_bytes, checkpointer.sink())
        .with_context(|| format!("cannot create the change log in {}", log_dir.display()))?;
    let commit = GroupCommit::start(queue.clone(), writer, checkpointer, engine, policy, metrics)
        .context("cannot start the storage writer thread")?;
    if !start.store.attach_log(queue.clone()) {
        anyhow::bail!("a durable log is already attached to the store");
    }
    report_versions_ahead(start.store, &dir)?;
    let hooks = Hooks {
        durability: Some(commit.durability()),
        saves: Some(saves),
        ..Hooks::default()
    };
    let data_dir = Some(dir.display().to_string());

    let store = start.store.clone();
    let stop: crate::subsystem::StopStep = Box::new(move || {
        Box::pin(async move {
            let started = Instant::now();
            let final_high_water = store.clock().peek();
            let stopped = tokio::task::spawn_blocking(move || commit.stop(final_high_water)).await;
            match stopped {
                Ok(Ok(())) => {
                    mark_clean(&store, &dir);
                    tracing::info!(
                        data_dir = %dir.display(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "storage flushed"
                    )
                }
                Ok(Err(e)) => {
                    tracing::error!(data_dir = %dir.display(), "storage flush failed: {e}")
                }
                Err(e) => {
                    tracing::error!(data_dir = %dir.display(), "storage flush task failed: {e}")
                }
            }
            drop(lock);
        })
    });
    Ok(Attached {
        hooks,
        stop: Some(stop),
        data_dir,
        ..Attached::default()
    })
}

/// A test entry: version `(hlc, node)`, `value` or a tombstone.
#[cfg(test)]
pub(crate) fn test_entry(hlc: u64, node: u64, value: Option<&[u8]>) -> crate::store::Entry {
    crate::store::Entry {
        expires_at: None,
        version: crate::store::Version::new(hlc, node),
        value: value.map(Into::into),
    }
}

/// Reports what recovery found beyond the clock's bound (a poisoned data
/// directory: a peer or a wall clock far in the future wrote it) and, with
/// `storage.restamp_future_versions`, writes those entries again with
/// fresh versions through the now attached log.
fn report_versions_ahead(store: &Store, dir: &Path) -> anyhow::Result<()> {
    let ahead = store.refusals().future_versions();
    let mark_bounded = store.clock().restores_bounded();
    if ahead == 0 && mark_bounded == 0 {
        return Ok(());
    }
    let restamped = store
        .restamp_recovered()
        .context("cannot re-stamp the entries recovered beyond the clock's bound")?;
    if restamped > 0 {
        tracing::warn!(
            data_dir = %dir.display(),
            restamped,
            "re-stamped {restamped} recovered entries whose versions lay beyond the clock's bound \
             (storage.max_clock_skew_ms) with fresh versions"
        );
    } else if ahead > 0 {
        tracing::warn!(
            data_dir = %dir.display(),
            entries = ahead,
            "left out {ahead} recovered entries whose versions lie beyond the clock's bound \
             (storage.max_clock_skew_ms past the wall clock; INFO refused_future_versions); \
             restart with --restamp-future-versions to keep them with fresh versions"
        );
    }
    if mark_bounded > 0 {
        tracing::warn!(
            data_dir = %dir.display(),
            "the persisted clock lay beyond the clock's bound and was restored to the bound \
             (INFO clock_restores_bounded)"
        );
    }
    Ok(())
}

/// Writes the clean-shutdown marker for the store as flushed.
fn mark_clean(store: &Store, dir: &Path) {
    // Barrier: a mutation that passed the (now closed) log before the final
    // flush finishes under its shard lock; a scan takes every shard lock in
    // turn, so afterwards the index matches what was written.
    let _ = store.scan(&[0xff; 16]);
    if let Err(e) = clean_marker::write(dir, store.root()) {
        tracing::warn!(data_dir = %dir.display(), "cannot write the clean-shutdown marker: {e}");
    }
}

/// What start-up produced.
struct Opened {
    dir: PathBuf,
    lock: DataDirLock,
    engine: Engine,
    report: RecoveryReport,
    replayed: ReplayReport,
    /// The previous run ended without a clean shutdown.
    unclean: bool,
    /// Time the engine took to open (journal replay included).
    open_elapsed: std::time::Duration,
}

/// Creates and locks the directory, opens the engine and loads the store.
/// A panic inside the engine (damaged files it did not expect) becomes an
/// error naming the directory instead of a crash.
fn open_and_recover(dir: &Path, store: &Store) -> Result<Opened, PersistenceError> {
    std::fs::create_dir_all(dir).map_err(|source| PersistenceError::DataDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let lock = DataDirLock::acquire(&dir)?;
    let existed = dir.join(engine::ENGINE_DIR).join("version").exists();
    let started = Instant::now();
    let engine = contain_panic(&dir, || Engine::open(&dir))?;
    let open_elapsed = started.elapsed();
    let report = contain_panic(&dir, || recovery::recover(&engine, store))?;
    let replayed = replay::replay(&dir.join(LOG_DIR), store)?;
    let marker = clean_marker::read(&dir)?;
    let unclean = (existed || !replayed.segments.is_empty()) && marker.is_none();
    match marker {
        Some(expected) => {
            // With the entries left out for a version beyond the clock's
            // bound (reported once the log is attached): what the disk held.
            let found = store.root().combine(store.left_out_on_recovery());
            if found != expected {
                return Err(PersistenceError::Changed {
                    dir,
                    expected_entries: expected.count,
                    found_entries: found.count,
                });
            }
        }
        None if unclean => tracing::warn!(
            data_dir = %dir.display(),
            "the node did not shut down cleanly last time: recovered every complete write batch \
             (an incomplete last batch, never acknowledged under fsync = \"always\", is dropped)"
        ),
        None => {}
    }
    replay::cut_torn_tails(&replayed)?;
    // From here on new writes may reach the disk: the old marker no longer
    // describes it.
    clean_marker::clear(&dir).map_err(|source| PersistenceError::DataDir {
        dir: dir.clone(),
        source,
    })?;
    Ok(Opened {
        dir,
        lock,
        engine,
        report,
        replayed,
        unclean,
        open_elapsed,
    })
}

fn contain_panic<T>(
    dir: &Path,
    f: impl FnOnce() -> Result<T, PersistenceError>,
) -> Result<T, PersistenceError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown failure".into());
            Err(PersistenceError::Open {
                dir: dir.join(engine::ENGINE_DIR),
                reason: format!("the storage engine failed while reading its files ({what})"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::engine::LogOp;
    use crate::store::{StoreOptions, Summary, WriteOp};
    use fjall::PersistMode;

    /// A data directory an older release left poisoned: a clean shutdown,
    /// one entry at `hlc = u64::MAX` and one sane entry, in the engine.
    fn poisoned_dir() -> tempfile::TempDir {
        poisoned_dir_with_marker(|both| both)
    }

    /// The same, with the clean-shutdown marker the release wrote (the
    /// summary of both entries) passed through `marker`.
    fn poisoned_dir_with_marker(marker: impl FnOnce(Summary) -> Summary) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let source = Store::new(StoreOptions::default()).expect("store");
        source
            .apply_local(WriteOp::Set {
                key: b"sane",
                value: b"1",
            })
            .expect("set");
        {
            std::fs::create_dir_all(tmp.path()).expect("mkdir");
            let engine = Engine::open(tmp.path()).expect("open");
            let ops = vec![
                LogOp::put(b"sane", &source.entry(b"sane").expect("entry")).expect("op"),
                LogOp::put(b"z", &test_entry(u64::MAX, u64::MAX, Some(b"poison"))).expect("op"),
            ];
            engine
                .commit(ops, Some(u64::MAX), PersistMode::SyncData)
                .expect("commit");
        }
        // The marker a clean shutdown wrote, over both entries.
        let sane = source.root();
        let poison = test_entry(u64::MAX, u64::MAX, Some(b"poison"));
        let z = Summary {
            hash: crate::store::entry_digest(b"z", poison.version, poison.value.as_deref()),
            count: 1,
        };
        clean_marker::write(tmp.path(), marker(sane.combine(z))).expect("marker");
        tmp
    }

    #[test]
    fn a_poisoned_data_dir_that_also_lost_data_is_still_refused() {
        // The clean-shutdown check still holds with entries left out: the
        // marker here claims one entry more than the disk has.
        let tmp = poisoned_dir_with_marker(|both| Summary {
            count: both.count + 1,
            ..both
        });
        let store = Store::new(StoreOptions::default()).expect("store");
        let refused = open_and_recover(tmp.path(), &store).err().expect("refused");
        assert!(
            matches!(refused, PersistenceError::Changed { .. }),
            "{refused}"
        );
    }

    #[test]
    fn a_poisoned_data_dir_starts_without_the_entries_beyond_the_bound() {
        let tmp = poisoned_dir();
        let store = Store::new(StoreOptions::default()).expect("store");
        let opened = open_and_recover(tmp.path(), &store).expect("starts");
        drop(opened);
        assert_eq!(store.get(b"sane"), Some(b"1".to_vec()));
        assert_eq!(store.get(b"z"), None);
        assert_eq!(store.refusals().future_versions(), 1);
        assert_eq!(store.clock().restores_bounded(), 1);
        assert!(store.clock().peek() <= store.clock().bound());
        // Writes to the poisoned key work and win.
        store
            .apply_local(WriteOp::Set {
                key: b"z",
                value: b"fresh",
            })
            .expect("set");
        assert_eq!(store.get(b"z"), Some(b"fresh".to_vec()));
    }

    #[test]
    fn restamping_keeps_the_entries_with_fresh_versions() {
        let tmp = poisoned_dir();
        let store = Store::new(StoreOptions {
            restamp_future_versions: true,
            ..StoreOptions::default()
        })
        .expect("store");
        let opened = open_and_recover(tmp.path(), &store).expect("starts");
        drop(opened);
        assert_eq!(store.get(b"z"), None, "left out until the log is attached");
        assert_eq!(store.restamp_recovered(), Ok(1));
        assert_eq!(store.get(b"z"), Some(b"poison".to_vec()));
        let version = store.entry(b"z").expect("entry").version;
        assert!(version.hlc <= store.clock().bound());
        assert_eq!(version.node, store.node_number());
        assert_eq!(store.restamp_recovered(), Ok(0), "once");
    }
}
