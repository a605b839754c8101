//! Hints on disk, so a coordinator that restarts still hands over the
//! writes its replicas missed: one append-only file per replica,
//! `<data_dir>/hints/<node id>.hints`, of length-delimited
//! [`proto::StoredHint`] records.
//!
//! * Appends go to a buffer that a task flushes to the OS every
//!   [`FLUSH_INTERVAL`] (and on shutdown): a process crash loses at most
//!   that much, a power loss what the OS had not written (hints are a
//!   shortcut to convergence, never the only copy of an acknowledged write:
//!   W replicas acknowledged it).
//! * A replica's file is removed once every hint for it was delivered or
//!   expired; hints put back after a failed delivery are appended again.
//! * At start the files are read back; a torn tail (a crash mid-append) or
//!   a damaged record is cut off with everything after it, and reported.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use prost::Message;

use crate::proto;
use crate::store::Entry;

/// How often buffered hints are written to the OS.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

const SUFFIX: &str = "hints";

/// A hint read back from disk.
pub struct LoadedHint {
    /// The replica it is for.
    pub replica: String,
    /// How long ago it was stored.
    pub age: Duration,
    /// The key.
    pub key: Box<[u8]>,
    /// The coordinator-stamped entry.
    pub entry: Entry,
}

/// The hint files of this node.
pub struct HintLog {
    dir: PathBuf,
    files: Mutex<HashMap<String, BufWriter<File>>>,
}

impl HintLog {
    /// Opens (creates) `dir` and reads back every hint in it.
    pub fn open(dir: &Path) -> std::io::Result<(Self, Vec<LoadedHint>)> {
        std::fs::create_dir_all(dir)?;
        let mut loaded = Vec::new();
        for item in std::fs::read_dir(dir)? {
            let path = item?.path();
            let Some(replica) = replica_of(&path) else {
                continue;
            };
            read_file(&path, &replica, &mut loaded)?;
        }
        let log = Self {
            dir: dir.to_owned(),
            files: Mutex::new(HashMap::new()),
        };
        Ok((log, loaded))
    }

    /// Appends a hint for `replica` (buffered; see [`HintLog::flush`]).
    pub fn append(&self, replica: &str, key: &[u8], entry: &Entry, age: Duration) {
        if !crate::config::is_node_id(replica) {
            return; // never a path out of the directory
        }
        let now = SystemTime::now();
        let stored_at = now
            .checked_sub(age)
            .unwrap_or(now)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let record = proto::StoredHint {
            stored_at_unix_ms: stored_at,
            entry: Some(crate::sync::convert::entry_to_proto(key, entry)),
        };
        let mut files = self.files.lock();
        let file = match files.get_mut(replica) {
            Some(file) => file,
            None => match self.open_for_append(replica) {
                Ok(file) => files.entry(replica.to_owned()).or_insert(file),
                Err(e) => {
                    tracing::warn!(%replica, error = %e, "cannot open the hint file; the hint is kept in memory only");
                    return;
                }
            },
        };
        if let Err(e) = file.write_all(&record.encode_length_delimited_to_vec()) {
            tracing::warn!(%replica, error = %e, "cannot write a hint to disk; it is kept in memory only");
        }
    }

    /// Removes `replica`'s file: nothing waits for it any more.
    pub fn clear(&self, replica: &str) {
        self.files.lock().remove(replica);
        let path = self.path(replica);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a hint file")
            }
        }
    }

    /// Writes buffered hints to the OS.
    pub fn flush(&self) {
        for (replica, file) in self.files.lock().iter_mut() {
            if let Err(e) = file.flush() {
                tracing::warn!(%replica, error = %e, "cannot write hints to disk");
            }
        }
    }

    fn path(&self, replica: &str) -> PathBuf {
        self.dir.join(format!("{replica}.{SUFFIX}"))
    }

    fn open_for_append(&self, replica: &str) -> std::io::Result<BufWriter<File>> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(replica))?;
        Ok(BufWriter::with_capacity(64 << 10, file))
    }
}

/// The replica a hint file is for (`None`: not a hint file).
fn replica_of(path: &Path) -> Option<String> {
    if path.extension()? != SUFFIX {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    crate::config::is_node_id(stem).then(|| stem.to_owned())
}

/// Reads `path`'s hints into `out`; cuts a torn tail off.
fn read_file(path: &Path, replica: &str, out: &mut Vec<LoadedHint>) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut rest = &bytes[..];
    let mut good = 0usize;
    let mut bad = None;
    while !rest.is_empty() {
        let record = match proto::StoredHint::decode_length_delimited(&mut rest) {
            Ok(record) => record,
            Err(e) => {
                bad = Some(e.to_string());
                break;
            }
        };
        good = bytes.len() - rest.len();
        let Some(wire) = record.entry else {
            bad = Some("a record without an entry".into());
            break;
        };
        match crate::sync::convert::entry_from_proto(wire) {
            Ok((key, entry)) => out.push(LoadedHint {
                replica: replica.to_owned(),
                age: Duration::from_millis(now_ms.saturating_sub(record.stored_at_unix_ms)),
                key,
                entry,
            }),
            Err(e) => {
                bad = Some(e.to_string());
                break;
            }
        }
    }
    if let Some(reason) = bad {
        let cut = bytes.len() - good;
        tracing::warn!(
            path = %path.display(),
            kept = good,
            cut,
            %reason,
            "hint file ends in a torn or damaged record; cut off"
        );
        OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(good as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Version;

    fn entry(v: &[u8]) -> Entry {
        Entry {
            expires_at: None,
            version: Version::new(7, 1),
            value: Some(v.into()),
        }
    }

    #[test]
    fn hints_come_back_after_a_restart_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, loaded) = HintLog::open(dir.path()).expect("open");
        assert!(loaded.is_empty());
        log.append("n2", b"a", &entry(b"1"), Duration::ZERO);
        log.append("n2", b"b", &entry(b"2"), Duration::from_secs(60));
        log.append("n3", b"c", &entry(b"3"), Duration::ZERO);
        log.flush();
        drop(log);
        // A crash in the middle of the next record.
        let path = dir.path().join("n2.hints");
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(&[40, 1, 2, 3]).expect("write");
        drop(f);
        std::fs::write(dir.path().join("notes.txt"), b"not a hint file").expect("write");

        let (log, mut loaded) = HintLog::open(dir.path()).expect("reopen");
        loaded.sort_by(|a, b| (&a.replica, &a.key).cmp(&(&b.replica, &b.key)));
        let got: Vec<_> = loaded
            .iter()
            .map(|h| (h.replica.as_str(), &*h.key, h.entry.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("n2", &b"a"[..], entry(b"1")),
                ("n2", &b"b"[..], entry(b"2")),
                ("n3", &b"c"[..], entry(b"3")),
            ]
        );
        assert!(
            loaded[1].age >= Duration::from_secs(59),
            "{:?}",
            loaded[1].age
        );
        assert!(loaded[0].age < Duration::from_secs(59));
        // The torn tail is gone: appending after it reads back cleanly.
        log.append("n2", b"d", &entry(b"4"), Duration::ZERO);
        log.flush();
        log.clear("n3");
        drop(log);
        let (_, loaded) = HintLog::open(dir.path()).expect("reopen");
        let keys: Vec<_> = loaded
            .iter()
            .map(|h| (h.replica.clone(), h.key.to_vec()))
            .collect();
        assert_eq!(keys.len(), 3);
        assert!(keys.contains(&("n2".into(), b"d".to_vec())));
        assert!(!keys.iter().any(|(r, _)| r == "n3"));
        // A replica id that is not a node id never names a file.
        let (log, _) = HintLog::open(dir.path()).expect("reopen");
        log.append("../escape", b"k", &entry(b"v"), Duration::ZERO);
        log.flush();
        assert!(!dir.path().join("../escape.hints").exists());
    }
}
