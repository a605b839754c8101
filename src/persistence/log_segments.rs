//! The change log's files: numbered segments under `<data_dir>/log`, and
//! the writer that appends to the newest one.
//!
//! Segments are named by a sequence number (`00000000000000000001.log`, …).
//! The writer appends to the active segment; once it holds
//! `storage.log_segment_mb`, the writer seals it, starts the next one and
//! hands the sealed one to the checkpointer, which folds it into the
//! engine and deletes it. Each start of the node opens a new segment, so
//! the segments of earlier runs are all sealed.
//!
//! The writer never fsyncs by itself: [`LogWriter::sync_plan`] says what
//! needs it (sealed segments, the active one, the directory after a new
//! segment appeared), and the caller runs that plan without holding the
//! writer, so appends go on while an fsync waits for the disk.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Sub-directory of the data directory that holds the change log.
pub const LOG_DIR: &str = "log";
const SUFFIX: &str = ".log";

/// A segment file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    /// Its sequence number (later segments hold later changes).
    pub seq: u64,
    /// Its path.
    pub path: PathBuf,
}

/// The path of segment `seq` in `log_dir`.
pub fn segment_path(log_dir: &Path, seq: u64) -> PathBuf {
    log_dir.join(format!("{seq:020}{SUFFIX}"))
}

/// Every segment in `log_dir`, oldest first (none when the directory does
/// not exist). Other files are ignored.
pub fn list(log_dir: &Path) -> std::io::Result<Vec<Segment>> {
    let entries = match std::fs::read_dir(log_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut segments = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(SUFFIX))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            segments.push(Segment { seq, path });
        }
    }
    segments.sort();
    Ok(segments)
}

/// Total bytes of the segments in `log_dir` (0 when unreadable).
pub fn disk_bytes(log_dir: &Path) -> u64 {
    list(log_dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| std::fs::metadata(&s.path).ok())
        .map(|m| m.len())
        .sum()
}

/// fsyncs a directory, so the files created or removed in it stay so.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Receives each segment the writer seals (the checkpointer).
pub trait SealedSink: Send + Sync {
    /// `segment` is complete: nothing is appended to it any more.
    fn sealed(&self, segment: Segment);
}

/// Appends frames to the active segment and rotates segments.
pub struct LogWriter {
    dir: PathBuf,
    active: Arc<File>,
    active_seq: u64,
    active_bytes: u64,
    segment_limit: u64,
    /// Appended to since the last sync plan.
    active_dirty: bool,
    /// Sealed segments not fsynced yet.
    unsynced: Vec<Arc<File>>,
    /// A segment was created since the last sync plan.
    dir_dirty: bool,
    /// Set once the active segment was sealed for good (shutdown) or an
    /// append failed: every later append is refused.
    closed: bool,
    sink: Arc<dyn SealedSink>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("dir", &self.dir)
            .field("active_seq", &self.active_seq)
            .field("active_bytes", &self.active_bytes)
            .finish()
    }
}

impl LogWriter {
    /// Creates `log_dir` if needed and starts segment `first_seq` in it;
    /// segments of `segment_limit` bytes are sealed into `sink`.
    pub fn create(
        log_dir: &Path,
        first_seq: u64,
        segment_limit: u64,
        sink: Arc<dyn SealedSink>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(log_dir)?;
        let active = create_segment(log_dir, first_seq)?;
        if let Some(parent) = log_dir.parent() {
            sync_dir(parent)?;
        }
        sync_dir(log_dir)?;
        Ok(Self {
            dir: log_dir.to_path_buf(),
            active: Arc::new(active),
            active_seq: first_seq,
            active_bytes: 0,
            segment_limit: segment_limit.max(1),
            active_dirty: false,
            unsynced: Vec::new(),
            dir_dirty: false,
            closed: false,
            sink,
        })
    }

    /// Appends `frames` (whole frames) with one `write(2)`, then starts a
    /// new segment if the active one is full.
    pub fn append(&mut self, frames: &[u8]) -> std::io::Result<()> {
        if self.closed {
            return Err(std::io::Error::other("the change log is closed"));
        }
        if frames.is_empty() {
            return Ok(());
        }
        if let Err(e) = (&*self.active).write_all(frames) {
            // Part of a frame may be on disk now: cut the segment back to
            // the last whole frame and take no more appends, so nothing
            // acknowledged later can follow damage in the log.
            self.closed = true;
            let _ = self.active.set_len(self.active_bytes);
            return Err(e);
        }
        self.active_bytes += frames.len() as u64;
        self.active_dirty = true;
        if self.active_bytes >= self.segment_limit {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let next_seq = self
            .active_seq
            .checked_add(1)
            .ok_or_else(|| std::io::Error::other("change-log segment numbers exhausted"))?;
        let next = match create_segment(&self.dir, next_seq) {
            Ok(file) => Arc::new(file),
            Err(e) => {
                // The full segment stays active; appends stop until restart.
                self.closed = true;
                return Err(e);
            }
        };
        let sealed = std::mem::replace(&mut self.active, next);
        let sealed_seq = std::mem::replace(&mut self.active_seq, next_seq);
        self.active_bytes = 0;
        if std::mem::take(&mut self.active_dirty) {
            self.unsynced.push(sealed);
        }
        self.dir_dirty = true;
        self.sink.sealed(Segment {
            seq: sealed_seq,
            path: segment_path(&self.dir, sealed_seq),
        });
        Ok(())
    }

    /// Seals the active segment without starting another (shutdown): later
    /// appends fail.
    pub fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        if std::mem::take(&mut self.active_dirty) {
            self.unsynced.push(self.active.clone());
        }
        self.sink.sealed(Segment {
            seq: self.active_seq,
            path: segment_path(&self.dir, self.active_seq),
        });
    }

    /// What must be fsynced to make everything appended so far durable;
    /// afterwards the writer counts it as handed over.
    pub fn sync_plan(&mut self) -> SyncPlan {
        let mut files = std::mem::take(&mut self.unsynced);
        if std::mem::take(&mut self.active_dirty) {
            files.push(self.active.clone());
        }
        SyncPlan {
            files,
            dir: std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone()),
        }
    }
}

fn create_segment(dir: &Path, seq: u64) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(segment_path(dir, seq))
}

/// fsyncs to run, without holding the writer.
#[derive(Debug, Default)]
#[must_use = "a sync plan does nothing until it is run"]
pub struct SyncPlan {
    files: Vec<Arc<File>>,
    dir: Option<PathBuf>,
}

impl SyncPlan {
    /// Whether there is nothing to sync.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dir.is_none()
    }

    /// Runs the fsyncs (`fdatasync` per file, then the directory).
    pub fn run(self) -> std::io::Result<()> {
        for file in &self.files {
            file.sync_data()?;
        }
        if let Some(dir) = &self.dir {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<u64>>);

    impl SealedSink for Collect {
        fn sealed(&self, segment: Segment) {
            self.0.lock().push(segment.seq);
        }
    }

    #[test]
    fn full_segments_are_sealed_in_order_and_listed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(LOG_DIR);
        let sink = Arc::new(Collect::default());
        let mut writer = LogWriter::create(&dir, 7, 10, sink.clone()).expect("create");
        writer.append(b"12345").expect("append");
        assert!(sink.0.lock().is_empty());
        writer.append(b"678901").expect("append");
        assert_eq!(*sink.0.lock(), vec![7]);
        writer.append(b"abc").expect("append");
        let plan = writer.sync_plan();
        assert!(!plan.is_empty());
        plan.run().expect("sync");
        assert!(writer.sync_plan().is_empty(), "nothing new to sync");
        writer.close();
        assert_eq!(*sink.0.lock(), vec![7, 8]);
        assert!(writer.append(b"late").is_err());
        let listed: Vec<u64> = list(&dir).expect("list").iter().map(|s| s.seq).collect();
        assert_eq!(listed, vec![7, 8]);
        assert_eq!(
            std::fs::read(segment_path(&dir, 7)).expect("read"),
            b"12345678901"
        );
        assert_eq!(std::fs::read(segment_path(&dir, 8)).expect("read"), b"abc");
        assert_eq!(disk_bytes(&dir), 14);
    }

    #[test]
    fn a_missing_log_directory_has_no_segments() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert!(list(&tmp.path().join("nope")).expect("list").is_empty());
        std::fs::create_dir(tmp.path().join(LOG_DIR)).expect("mkdir");
        std::fs::write(tmp.path().join(LOG_DIR).join("notes.txt"), b"x").expect("write");
        assert!(list(&tmp.path().join(LOG_DIR)).expect("list").is_empty());
    }
}
