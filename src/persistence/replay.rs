//! Start-up replay of the change log over what the engine held.
//!
//! The engine holds every change of the segments already folded into it;
//! the segments still in `<data_dir>/log` hold the rest, in the order the
//! store applied them. Replaying them in order, each change replacing the
//! key's entry, rebuilds exactly the state the node had, even over a
//! segment that a checkpoint had partly written to the engine when the
//! node died.
//!
//! An interrupted append at the end of a segment (a crash mid-write) is
//! cut off there: those changes were never acknowledged under
//! `fsync = "always"`. Damage followed by more data is refused: it is not
//! what a crash leaves behind.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::entry_record;
use super::error::PersistenceError;
use super::log_frame::{FrameEnd, Frames, LogRecord};
use super::log_segments::{self, Segment};
use crate::store::Store;

/// What replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// The segments read, oldest first (all of them still to be folded).
    pub segments: Vec<Segment>,
    /// Changes replayed.
    pub changes: u64,
    /// Bytes of interrupted appends to cut off.
    pub torn_bytes: u64,
    /// Where each torn segment's valid frames end ([`cut_torn_tails`] cuts
    /// them there once start-up has passed every check).
    pub torn: Vec<(PathBuf, u64)>,
    /// Time spent.
    pub elapsed: Duration,
}

impl ReplayReport {
    /// The sequence number the next segment takes (`None` once exhausted).
    pub fn next_seq(&self) -> Option<u64> {
        match self.segments.last() {
            Some(s) => s.seq.checked_add(1),
            None => Some(1),
        }
    }
}

/// Replays every segment in `log_dir` into `store`.
pub fn replay(log_dir: &Path, store: &Store) -> Result<ReplayReport, PersistenceError> {
    let started = Instant::now();
    let io = |path: &Path, source| PersistenceError::DataDir {
        dir: path.to_path_buf(),
        source,
    };
    let segments = log_segments::list(log_dir).map_err(|e| io(log_dir, e))?;
    let mut report = ReplayReport::default();
    let newest = segments.last().map(|s| s.seq);
    for segment in &segments {
        let bytes = std::fs::read(&segment.path).map_err(|e| io(&segment.path, e))?;
        let mut frames = Frames::new(&bytes);
        for record in frames.by_ref() {
            match record {
                LogRecord::Put { key, record } => {
                    let entry = entry_record::decode_entry(record).map_err(|source| {
                        PersistenceError::Damaged {
                            dir: segment.path.clone(),
                            key: String::from_utf8_lossy(&key[..key.len().min(64)]).into(),
                            source,
                        }
                    })?;
                    store.replay(key, Some(entry));
                    report.changes += 1;
                }
                LogRecord::Remove { key } => {
                    store.replay(key, None);
                    report.changes += 1;
                }
                LogRecord::HighWater(hlc) => store.clock().restore(hlc),
            }
        }
        match frames.end() {
            FrameEnd::Clean => {}
            FrameEnd::Torn { offset } => {
                let cut = bytes.len() - offset;
                if Some(segment.seq) == newest {
                    tracing::warn!(
                        segment = %segment.path.display(),
                        offset,
                        bytes = cut,
                        "the change log ends in an interrupted write; cutting it off there"
                    );
                } else {
                    // Only a power loss leaves this: a sealed segment whose
                    // tail had not reached the disk while a later one had.
                    tracing::warn!(
                        segment = %segment.path.display(),
                        offset,
                        bytes = cut,
                        "a sealed change-log segment ends in an interrupted write (power loss \
                         before its fsync); its tail is cut off and the later segments are \
                         replayed: up to the last second of writes before the loss may be missing"
                    );
                }
                report.torn.push((segment.path.clone(), offset as u64));
                report.torn_bytes += cut as u64;
            }
            FrameEnd::Damaged { offset, reason } => {
                return Err(PersistenceError::LogDamaged {
                    path: segment.path.clone(),
                    offset,
                    reason,
                })
            }
        }
    }
    report.segments = segments;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Cuts each torn segment at its last whole frame, so appends and
/// checkpoints never meet the torn bytes. Run once every start-up check
/// passed: a refused start leaves the directory as it found it.
pub fn cut_torn_tails(report: &ReplayReport) -> Result<(), PersistenceError> {
    for (path, offset) in &report.torn {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| {
                f.set_len(*offset)?;
                f.sync_all()
            })
            .map_err(|source| PersistenceError::DataDir {
                dir: path.clone(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::log_frame::{encode_high_water, encode_put, encode_remove};
    use crate::persistence::log_segments::segment_path;
    use crate::persistence::test_entry;
    use crate::store::{Entry, StoreOptions};

    fn entry(hlc: u64, value: Option<&[u8]>) -> Entry {
        test_entry(hlc, 3, value)
    }

    #[test]
    fn segments_replay_in_order_over_the_store() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log_dir = tmp.path().join("log");
        std::fs::create_dir(&log_dir).expect("mkdir");
        let mut first = Vec::new();
        encode_put(&mut first, b"a", &entry(5, Some(b"old"))).expect("put");
        encode_put(&mut first, b"gone", &entry(6, None)).expect("put");
        let mut second = Vec::new();
        encode_remove(&mut second, b"gone").expect("remove");
        encode_high_water(&mut second, 1 << 50);
        // A change with an older version after a removal: replay follows the
        // log's order, not the versions.
        encode_put(&mut second, b"a", &entry(2, Some(b"new"))).expect("put");
        std::fs::write(segment_path(&log_dir, 3), &first).expect("write");
        std::fs::write(segment_path(&log_dir, 4), &second).expect("write");

        let store = Store::new(StoreOptions::default()).expect("store");
        // What a partly finished checkpoint may have left in the engine.
        store.restore(b"a", entry(5, Some(b"old")));
        let report = replay(&log_dir, &store).expect("replay");
        assert_eq!(report.changes, 4);
        assert_eq!(report.next_seq(), Some(5));
        assert_eq!(report.torn_bytes, 0);
        assert_eq!(store.get(b"a"), Some(b"new".to_vec()));
        assert!(store.entry(b"gone").is_none());
        assert!(store.clock().now().expect("within bound") > 1 << 50);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_damage_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log_dir = tmp.path().join("log");
        std::fs::create_dir(&log_dir).expect("mkdir");
        let mut bytes = Vec::new();
        encode_put(&mut bytes, b"kept", &entry(1, Some(b"1"))).expect("put");
        let whole = bytes.len();
        encode_put(&mut bytes, b"torn", &entry(2, Some(b"2"))).expect("put");
        let path = segment_path(&log_dir, 1);
        std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("write");
        let store = Store::new(StoreOptions::default()).expect("store");
        let report = replay(&log_dir, &store).expect("replay");
        assert_eq!(report.changes, 1);
        assert_eq!(report.torn_bytes as usize, bytes.len() - 3 - whole);
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len() as usize,
            bytes.len() - 3,
            "nothing is cut before start-up passed its checks"
        );
        cut_torn_tails(&report).expect("cut");
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len() as usize,
            whole
        );
        assert_eq!(store.get(b"kept"), Some(b"1".to_vec()));
        assert!(store.entry(b"torn").is_none());

        let mut damaged = bytes.clone();
        damaged[12] ^= 0xff;
        std::fs::write(&path, &damaged).expect("write");
        let err = replay(
            &log_dir,
            &Store::new(StoreOptions::default()).expect("store"),
        )
        .expect_err("damaged");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("damaged at byte 0"), "{msg}");
    }
}
