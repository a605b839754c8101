//! The storage engine: a fjall database in `<data_dir>/engine` with two
//! keyspaces, `entries` (one record per key, tombstones included, see
//! [`super::entry_record`]) and `meta` (the HLC high-water mark).
//!
//! Only the group-commit writer thread writes here, in batches: one journal
//! append per batch, followed by an `fdatasync` when the policy asks for it.

use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Slice};

use super::entry_record::{self, EncodeError};
use super::error::PersistenceError;
use crate::store::Entry;

/// Sub-directory of the data directory that holds the engine's files.
pub const ENGINE_DIR: &str = "engine";
const ENTRIES_KEYSPACE: &str = "entries";
const META_KEYSPACE: &str = "meta";
const HIGH_WATER_KEY: &[u8] = b"hlc_high_water";
/// Block cache: only the start-up scan reads from the engine.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// One change waiting to be written.
#[derive(Debug, Clone)]
pub enum LogOp {
    /// Store a key's record (value or tombstone).
    Put {
        /// Stored key.
        key: Slice,
        /// Encoded record.
        record: Slice,
    },
    /// Drop a key entirely (garbage-collected tombstone), under every
    /// stored layout it may have been written with.
    Remove {
        /// Stored keys (the current layout, then the original one).
        keys: Vec<Slice>,
    },
}

impl LogOp {
    /// The write of `entry` for `key`.
    #[cfg(test)]
    pub fn put(key: &[u8], entry: &Entry) -> Result<Self, EncodeError> {
        let header = entry_record::entry_header(entry)?;
        let value = entry.value.as_deref().unwrap_or_default();
        Ok(LogOp::Put {
            key: stored_key(key)?,
            record: concat(&header, value),
        })
    }

    /// The write of an already encoded `record` for `key` (a change read
    /// back from the change log).
    pub fn put_record(key: &[u8], record: &[u8]) -> Result<Self, EncodeError> {
        Ok(LogOp::Put {
            key: stored_key(key)?,
            record: Slice::from(record),
        })
    }

    /// The removal of `key`: under its current stored layout and under the
    /// original one an older release may have written it with.
    pub fn remove(key: &[u8]) -> Result<Self, EncodeError> {
        Ok(LogOp::Remove {
            keys: entry_record::stored_key_layouts(key)?
                .iter()
                .map(|stored| Slice::from(&stored[..]))
                .collect(),
        })
    }

    /// The (first) stored key this change writes.
    pub fn stored_key(&self) -> &[u8] {
        match self {
            LogOp::Put { key, .. } => key,
            LogOp::Remove { keys } => keys.first().map_or(&[][..], |k| &k[..]),
        }
    }
}

fn stored_key(key: &[u8]) -> Result<Slice, EncodeError> {
    let (prefix, used) = entry_record::key_prefix(key)?;
    Ok(concat(&prefix[..used], key))
}

/// `a ++ b` as a slice.
fn concat(a: &[u8], b: &[u8]) -> Slice {
    Slice::from([a, b].concat())
}

/// The open engine.
pub struct Engine {
    db: Database,
    entries: Keyspace,
    meta: Keyspace,
    dir: PathBuf,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("dir", &self.dir).finish()
    }
}

impl Engine {
    /// Opens (or creates) the engine under `data_dir`. Replays the
    /// engine's journal; a torn tail (a crash mid-append) is cut off at the
    /// last complete batch, any other damage is an error.
    pub fn open(data_dir: &Path) -> Result<Self, PersistenceError> {
        let dir = data_dir.join(ENGINE_DIR);
        let open_error = |e: fjall::Error| PersistenceError::Open {
            dir: dir.clone(),
            reason: describe(&e),
        };
        let db = Database::builder(&dir)
            .cache_size(CACHE_BYTES)
            .open()
            .map_err(open_error)?;
        let entries = db
            .keyspace(ENTRIES_KEYSPACE, KeyspaceCreateOptions::default)
            .map_err(open_error)?;
        let meta = db
            .keyspace(META_KEYSPACE, KeyspaceCreateOptions::default)
            .map_err(open_error)?;
        Ok(Self {
            db,
            entries,
            meta,
            dir,
        })
    }

    /// Writes `ops` (and the high-water mark, when given) as one atomic
    /// batch: one journal append, then `mode` (`Buffer` hands the bytes to
    /// the OS, `SyncData` also waits for the disk).
    pub fn commit(
        &self,
        ops: Vec<LogOp>,
        high_water: Option<u64>,
        mode: PersistMode,
    ) -> Result<(), fjall::Error> {
        let mut batch = self.db.batch().durability(Some(mode));
        for op in ops {
            match op {
                LogOp::Put { key, record } => batch.insert(&self.entries, key, record),
                LogOp::Remove { keys } => {
                    for key in keys {
                        batch.remove(&self.entries, key);
                    }
                }
            }
        }
        if let Some(hlc) = high_water {
            batch.insert(
                &self.meta,
                HIGH_WATER_KEY,
                &entry_record::encode_high_water(hlc)[..],
            );
        }
        if batch.is_empty() {
            return self.db.persist(mode);
        }
        batch.commit()
    }

    /// Flushes the journal with `mode`.
    pub fn persist(&self, mode: PersistMode) -> Result<(), fjall::Error> {
        self.db.persist(mode)
    }

    /// Writes the in-memory part of the entries (the memtable) to a table
    /// file and waits up to `timeout` for it, so the next start reads
    /// tables instead of replaying the journal. Returns whether it finished
    /// in time (the journal still holds everything either way).
    pub fn flush_memtable(&self, timeout: std::time::Duration) -> Result<bool, fjall::Error> {
        if !self.entries.rotate_memtable()? {
            return Ok(true);
        }
        let deadline = std::time::Instant::now() + timeout;
        while self.entries.sealed_memtable_count() > 0 {
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(true)
    }

    /// The persisted HLC high-water mark, if any.
    pub fn high_water(&self) -> Result<Option<u64>, PersistenceError> {
        let raw = self
            .meta
            .get(HIGH_WATER_KEY)
            .map_err(|e| self.engine_error(&e))?;
        raw.map(|bytes| {
            entry_record::decode_high_water(&bytes).map_err(|source| PersistenceError::Damaged {
                dir: self.dir.clone(),
                key: "<hlc high-water mark>".into(),
                source,
            })
        })
        .transpose()
    }

    /// Calls `f` with every stored entry, in key order; returns how many.
    /// Stops at the first unreadable or damaged record.
    pub fn scan(&self, mut f: impl FnMut(&[u8], Entry)) -> Result<u64, PersistenceError> {
        let mut failure = None;
        let n = self.scan_raw(|key, record| match self.decode(&key, &record) {
            Ok((user_key, entry)) => {
                f(user_key, entry);
                true
            }
            Err(e) => {
                failure = Some(e);
                false
            }
        })?;
        failure.map_or(Ok(n), Err)
    }

    /// Calls `f` with every stored (key, record) pair, undecoded, in key
    /// order, until it returns `false`; returns how many it was given.
    pub fn scan_raw(
        &self,
        mut f: impl FnMut(Slice, Slice) -> bool,
    ) -> Result<u64, PersistenceError> {
        let mut n = 0u64;
        for guard in self.entries.iter() {
            let (key, record) = guard.into_inner().map_err(|e| self.engine_error(&e))?;
            n += 1;
            if !f(key, record) {
                break;
            }
        }
        Ok(n)
    }

    /// Decodes one stored pair from [`Engine::scan_raw`].
    pub fn decode<'k>(
        &self,
        key: &'k [u8],
        record: &[u8],
    ) -> Result<(&'k [u8], Entry), PersistenceError> {
        let damaged = |source| PersistenceError::Damaged {
            dir: self.dir.clone(),
            key: printable(key),
            source,
        };
        let user_key = entry_record::decode_key(key).map_err(damaged)?;
        let entry = entry_record::decode_entry(record).map_err(damaged)?;
        Ok((user_key, entry))
    }

    /// About how many entries are stored (cheap; may overcount).
    pub fn approximate_entries(&self) -> u64 {
        self.entries.approximate_len() as u64
    }

    /// Bytes the engine occupies on disk (journals and tables).
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    fn engine_error(&self, e: &fjall::Error) -> PersistenceError {
        PersistenceError::Engine {
            dir: self.dir.clone(),
            reason: describe(e),
        }
    }
}

/// A readable description of an engine error.
pub fn describe(e: &fjall::Error) -> String {
    use fjall::LsmError;
    match e {
        fjall::Error::Io(io) | fjall::Error::Storage(LsmError::Io(io)) => {
            format!("i/o error: {io}")
        }
        fjall::Error::JournalRecovery(r) => {
            format!("the journal is damaged: a complete write batch failed its check ({r:?})")
        }
        fjall::Error::Storage(LsmError::ChecksumMismatch { .. }) => {
            "a data file failed its checksum".into()
        }
        fjall::Error::Storage(LsmError::Unrecoverable) => {
            "table or manifest files are missing or damaged".into()
        }
        fjall::Error::Storage(
            LsmError::InvalidTag(_)
            | LsmError::InvalidTrailer
            | LsmError::InvalidHeader(_)
            | LsmError::Decompress(_)
            | LsmError::Utf8(_),
        )
        | fjall::Error::InvalidTag(_)
        | fjall::Error::InvalidTrailer
        | fjall::Error::Decompress(_) => format!("a data file is damaged ({e:?})"),
        fjall::Error::InvalidVersion(_) | fjall::Error::Storage(LsmError::InvalidVersion(_)) => {
            format!("the format version marker is missing, damaged or unsupported ({e:?})")
        }
        fjall::Error::Locked => "the engine directory is locked by another process".into(),
        fjall::Error::Poisoned => {
            "an earlier write or fsync failed (disk error); restart the node".into()
        }
        other => format!("{other:?}"),
    }
}

/// A key for messages: lossy UTF-8, at most 64 characters.
fn printable(key: &[u8]) -> String {
    let key = entry_record::decode_key(key).unwrap_or(key);
    let text = String::from_utf8_lossy(key);
    if text.chars().count() > 64 {
        format!("{}…", text.chars().take(64).collect::<String>())
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::test_entry;

    fn entry(hlc: u64, value: Option<&[u8]>) -> Entry {
        test_entry(hlc, 9, value)
    }

    /// Every stored entry, sorted by user key (the engine orders them by
    /// stored key, whose hash prefix scrambles the user order).
    fn scan_all(engine: &Engine) -> Vec<(Vec<u8>, Entry)> {
        let mut out = Vec::new();
        engine.scan(|k, e| out.push((k.to_vec(), e))).expect("scan");
        out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.version.cmp(&b.1.version)));
        out
    }

    #[test]
    fn records_of_the_original_layout_are_read_and_removed_with_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        // What an older release wrote: `k ++ key`.
        let legacy = |key: &[u8], e: &Entry| {
            let header = entry_record::entry_header(e).expect("header");
            let mut record = header.to_vec();
            record.extend_from_slice(e.value.as_deref().unwrap_or_default());
            let mut stored = vec![entry_record::KEY_TAG];
            stored.extend_from_slice(key);
            LogOp::Put {
                key: Slice::from(&stored[..]),
                record: Slice::from(&record[..]),
            }
        };
        let ops = vec![
            legacy(b"old", &entry(1, Some(b"from before"))),
            legacy(b"both", &entry(2, Some(b"stale"))),
            LogOp::put(b"both", &entry(3, Some(b"newer"))).expect("op"),
        ];
        engine
            .commit(ops, None, PersistMode::Buffer)
            .expect("commit");
        // Both layouts are read; recovery keeps the newest version of a key.
        assert_eq!(
            scan_all(&engine),
            vec![
                (b"both".to_vec(), entry(2, Some(b"stale"))),
                (b"both".to_vec(), entry(3, Some(b"newer"))),
                (b"old".to_vec(), entry(1, Some(b"from before"))),
            ]
        );
        // Forgetting a key (a collected tombstone) removes every layout, so
        // the stale record cannot come back after the newer one is gone.
        let removals = vec![
            LogOp::remove(b"both").expect("remove"),
            LogOp::remove(b"old").expect("remove"),
        ];
        engine
            .commit(removals, None, PersistMode::Buffer)
            .expect("commit");
        assert_eq!(scan_all(&engine), vec![]);
    }

    #[test]
    fn committed_entries_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let engine = Engine::open(dir.path()).expect("open");
            let ops = vec![
                LogOp::put(b"a", &entry(1, Some(b"one"))).expect("op"),
                LogOp::put(b"", &entry(2, Some(b"empty key"))).expect("op"),
                LogOp::put(b"dead", &entry(3, None)).expect("op"),
                LogOp::put(b"gone", &entry(4, Some(b"x"))).expect("op"),
                LogOp::remove(b"gone").expect("op"),
            ];
            engine
                .commit(ops, Some(99), PersistMode::SyncData)
                .expect("commit");
        }
        let engine = Engine::open(dir.path()).expect("reopen");
        assert_eq!(engine.high_water().expect("high water"), Some(99));
        assert_eq!(
            scan_all(&engine),
            vec![
                (b"".to_vec(), entry(2, Some(b"empty key"))),
                (b"a".to_vec(), entry(1, Some(b"one"))),
                (b"dead".to_vec(), entry(3, None)),
            ]
        );
    }

    #[test]
    fn a_damaged_record_is_reported_with_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        engine
            .commit(
                vec![LogOp::Put {
                    key: Slice::from(&b"kbroken"[..]),
                    record: Slice::from(&[7u8, 0, 1][..]),
                }],
                None,
                PersistMode::Buffer,
            )
            .expect("commit");
        let err = engine.scan(|_, _| {}).expect_err("damaged");
        let msg = err.to_string();
        assert!(msg.contains("broken"), "{msg}");
        assert!(msg.contains("unknown record format 7"), "{msg}");
    }

    #[test]
    fn oversized_keys_are_refused_not_panicked_on() {
        let key = vec![b'k'; entry_record::MAX_KEY_BYTES + 1];
        assert!(LogOp::put(&key, &entry(1, Some(b"v"))).is_err());
        assert!(LogOp::remove(&key).is_err());
    }
}
