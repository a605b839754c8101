//! The checkpointer: folds sealed change-log segments into the engine.
//!
//! For each sealed segment, oldest first, one background thread fsyncs
//! it, reads it, keeps only the last change per key (a key written many
//! times between checkpoints costs the engine one write), writes those to
//! the engine in batches, fsyncs the engine and then deletes the segment.
//! A crash at any point leaves the segment in place and the next start
//! replays it over what the engine already holds, which ends in the same
//! state (replay applies the segment's changes in order).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use fjall::PersistMode;
use parking_lot::{Condvar, Mutex};

use super::engine::{describe, Engine, LogOp};
use super::log_frame::{FrameEnd, Frames, LogRecord};
use super::log_segments::{sync_dir, SealedSink, Segment};
use super::metrics::StorageMetrics;

/// Changes written to the engine per batch.
const BATCH_CHANGES: usize = 8192;

/// Why folding a segment failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading, syncing or deleting the segment failed.
    #[error("change-log segment {path}: {source}")]
    Io {
        /// The segment.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The segment's bytes are damaged.
    #[error("change-log segment {path} is damaged at byte {offset} ({reason})")]
    Damaged {
        /// The segment.
        path: PathBuf,
        /// Where the damage starts.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// The engine refused the write.
    #[error("storage engine: {0}")]
    Engine(String),
}

/// What one fold did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldStats {
    /// Changes read from the segment.
    pub changes: u64,
    /// Keys written to the engine (the last change of each).
    pub keys: u64,
}

#[derive(Debug, Default)]
struct Pending {
    segments: VecDeque<Segment>,
    /// Fold what is pending, then exit.
    finishing: bool,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    ready: Condvar,
}

impl SealedSink for Shared {
    fn sealed(&self, segment: Segment) {
        self.pending.lock().segments.push_back(segment);
        self.ready.notify_one();
    }
}

/// The running checkpointer thread.
#[derive(Debug)]
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; `backlog` (segments of earlier runs) is folded
    /// first.
    pub fn start(
        engine: Arc<Engine>,
        log_dir: PathBuf,
        metrics: StorageMetrics,
        backlog: Vec<Segment>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        shared.pending.lock().segments.extend(backlog);
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("merklekv-checkpoint".into())
            .spawn(move || run(&worker, &engine, &log_dir, &metrics))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Where the log writer hands sealed segments.
    pub fn sink(&self) -> Arc<dyn SealedSink> {
        self.shared.clone()
    }

    /// Folds every pending segment, then ends the thread. Blocking.
    pub fn finish(mut self) {
        self.shared.pending.lock().finishing = true;
        self.shared.ready.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the checkpoint thread panicked; the next start replays the log");
            }
        }
    }
}

fn run(shared: &Shared, engine: &Engine, log_dir: &Path, metrics: &StorageMetrics) {
    loop {
        let segment = {
            let mut pending = shared.pending.lock();
            while pending.segments.is_empty() && !pending.finishing {
                shared.ready.wait(&mut pending);
            }
            match pending.segments.front() {
                Some(segment) => segment.clone(),
                None => return,
            }
        };
        let started = Instant::now();
        match fold(engine, log_dir, &segment) {
            Ok(stats) => {
                shared.pending.lock().segments.pop_front();
                metrics.checkpoints.inc();
                metrics.saved_now();
                metrics
                    .checkpoint_seconds
                    .observe(started.elapsed().as_secs_f64());
                tracing::debug!(
                    segment = %segment.path.display(),
                    changes = stats.changes,
                    keys = stats.keys,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "change-log segment folded into the engine"
                );
            }
            Err(e) => {
                metrics.checkpoint_failures.inc();
                tracing::error!(
                    "checkpoint failed: {e}; the change log is kept (it is durable on its own) \
                     and grows until the node restarts, which replays it"
                );
                return;
            }
        }
    }
}

/// Folds `segment` into `engine` and deletes it.
pub fn fold(
    engine: &Engine,
    log_dir: &Path,
    segment: &Segment,
) -> Result<FoldStats, CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: segment.path.clone(),
        source,
    };
    let engine_error = |e: fjall::Error| CheckpointError::Engine(describe(&e));
    std::fs::File::open(&segment.path)
        .and_then(|f| f.sync_data())
        .map_err(io)?;
    let bytes = std::fs::read(&segment.path).map_err(io)?;
    let mut latest: HashMap<&[u8], Option<&[u8]>, foldhash::fast::RandomState> = HashMap::default();
    let mut high_water: Option<u64> = None;
    let mut changes = 0u64;
    let mut frames = Frames::new(&bytes);
    for record in frames.by_ref() {
        match record {
            LogRecord::Put { key, record } => {
                changes += 1;
                latest.insert(key, Some(record));
            }
            LogRecord::Remove { key } => {
                changes += 1;
                latest.insert(key, None);
            }
            LogRecord::HighWater(hlc) => high_water = high_water.max(Some(hlc)),
        }
    }
    if let FrameEnd::Damaged { offset, reason } = frames.end() {
        return Err(CheckpointError::Damaged {
            path: segment.path.clone(),
            offset,
            reason,
        });
    }
    let keys = latest.len() as u64;
    let mut ops = Vec::with_capacity(latest.len());
    for (key, record) in latest {
        let op = match record {
            Some(record) => LogOp::put_record(key, record),
            None => LogOp::remove(key),
        };
        // Keys were length-checked when they were logged.
        ops.push(op.map_err(|e| CheckpointError::Engine(e.to_string()))?);
    }
    // In stored-key order, each insert's skip-list search walks nodes the
    // previous one just touched (cache-warm) instead of a random path.
    ops.sort_unstable_by(|a, b| a.stored_key().cmp(b.stored_key()));
    let high_water = match high_water {
        Some(hlc) => {
            let stored = engine
                .high_water()
                .map_err(|e| CheckpointError::Engine(e.to_string()))?;
            Some(hlc.max(stored.unwrap_or(0)))
        }
        None => None,
    };
    let mut ops = ops.into_iter();
    loop {
        let batch: Vec<LogOp> = ops.by_ref().take(BATCH_CHANGES).collect();
        if ops.len() > 0 {
            engine
                .commit(batch, None, PersistMode::Buffer)
                .map_err(engine_error)?;
            continue;
        }
        // The last batch carries the high-water mark.
        if !batch.is_empty() || high_water.is_some() {
            engine
                .commit(batch, high_water, PersistMode::Buffer)
                .map_err(engine_error)?;
        }
        break;
    }
    engine.persist(PersistMode::SyncAll).map_err(engine_error)?;
    std::fs::remove_file(&segment.path).map_err(io)?;
    sync_dir(log_dir).map_err(io)?;
    Ok(FoldStats { changes, keys })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::log_frame::{encode_high_water, encode_put, encode_remove};
    use crate::persistence::log_segments::segment_path;
    use crate::persistence::test_entry;
    use crate::store::Entry;

    fn entry(hlc: u64, value: Option<&[u8]>) -> Entry {
        test_entry(hlc, 3, value)
    }

    fn scan(engine: &Engine) -> Vec<(Vec<u8>, Entry)> {
        let mut seen = Vec::new();
        engine
            .scan(|k, e| seen.push((k.to_vec(), e)))
            .expect("scan");
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        seen
    }

    #[test]
    fn a_segment_folds_to_the_last_change_per_key_and_is_deleted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(tmp.path()).expect("engine");
        let log_dir = tmp.path().join("log");
        std::fs::create_dir(&log_dir).expect("mkdir");
        let mut bytes = Vec::new();
        encode_put(&mut bytes, b"a", &entry(1, Some(b"1"))).expect("put");
        encode_put(&mut bytes, b"a", &entry(2, Some(b"2"))).expect("put");
        encode_put(&mut bytes, b"b", &entry(3, None)).expect("put");
        encode_put(&mut bytes, b"c", &entry(4, None)).expect("put");
        encode_remove(&mut bytes, b"c").expect("remove");
        encode_high_water(&mut bytes, 500);
        let segment = Segment {
            seq: 1,
            path: segment_path(&log_dir, 1),
        };
        std::fs::write(&segment.path, &bytes).expect("write");
        let stats = fold(&engine, &log_dir, &segment).expect("fold");
        assert_eq!(
            stats,
            FoldStats {
                changes: 5,
                keys: 3
            }
        );
        assert!(!segment.path.exists(), "folded segments are deleted");
        assert_eq!(
            scan(&engine),
            vec![
                (b"a".to_vec(), entry(2, Some(b"2"))),
                (b"b".to_vec(), entry(3, None)),
            ]
        );
        assert_eq!(engine.high_water().expect("hw"), Some(500));

        // A lower high-water mark never replaces a higher one.
        let mut bytes = Vec::new();
        encode_high_water(&mut bytes, 7);
        std::fs::write(&segment.path, &bytes).expect("write");
        fold(&engine, &log_dir, &segment).expect("fold");
        assert_eq!(engine.high_water().expect("hw"), Some(500));
    }

    #[test]
    fn a_damaged_segment_is_kept_and_reported() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(tmp.path()).expect("engine");
        let log_dir = tmp.path().join("log");
        std::fs::create_dir(&log_dir).expect("mkdir");
        let mut bytes = Vec::new();
        encode_put(&mut bytes, b"a", &entry(1, Some(b"first"))).expect("put");
        encode_put(&mut bytes, b"b", &entry(2, Some(b"second"))).expect("put");
        let pos = bytes.windows(5).position(|w| w == b"first").expect("value");
        bytes[pos] ^= 0xff;
        let segment = Segment {
            seq: 4,
            path: segment_path(&log_dir, 4),
        };
        std::fs::write(&segment.path, &bytes).expect("write");
        let err = fold(&engine, &log_dir, &segment).expect_err("damaged");
        assert!(err.to_string().contains("damaged at byte 0"), "{err}");
        assert!(segment.path.exists(), "a damaged segment stays");
        assert!(scan(&engine).is_empty(), "nothing of it is written");
    }
}
