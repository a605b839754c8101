//! The data directory lock: one process per directory.
//!
//! `LOCK` in the data directory is locked exclusively (`flock`) for the
//! life of the process and holds its pid, so a second process pointed at
//! the same directory is refused with a message naming the holder. The
//! operating system releases the lock when the process ends, however it
//! ends (`kill -9` included), so a stale file never blocks a restart.
//!
//! `File::try_lock` is stable since Rust 1.89; the crate's declared MSRV
//! is older, but fjall 3 (which it depends on) already needs 1.90.
#![allow(clippy::incompatible_msrv)]

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::error::PersistenceError;

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Holds the data directory's lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
}

impl DataDirLock {
    /// Locks `dir` (which must exist) for this process.
    pub fn acquire(dir: &Path) -> Result<Self, PersistenceError> {
        let path = dir.join(LOCK_FILE);
        let io_error = |source| PersistenceError::DataDir {
            dir: dir.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(PersistenceError::Locked {
                    dir: dir.to_path_buf(),
                    holder: read_pid(&mut file),
                    lock: path,
                })
            }
            Err(TryLockError::Error(e)) => return Err(io_error(e)),
        }
        file.set_len(0).map_err(io_error)?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        writeln!(file, "{}", std::process::id()).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        Ok(Self { file })
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The pid written by the process holding the lock, if readable.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDirLock::acquire(dir.path()).expect("first lock");
        let err = DataDirLock::acquire(dir.path()).expect_err("second lock must fail");
        match &err {
            PersistenceError::Locked { holder, dir: d, .. } => {
                assert_eq!(*holder, Some(std::process::id()));
                assert_eq!(d, dir.path());
            }
            other => panic!("unexpected error {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("in use by another merklekv process"),
            "{message}"
        );
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).expect("lock again after release");
    }
}
