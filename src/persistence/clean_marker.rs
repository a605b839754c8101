//! The clean-shutdown marker.
//!
//! A graceful shutdown writes `CLEAN` into the data directory after the
//! final flush: the number of entries and the sum of their digests (the
//! Merkle root's hash, which does not depend on the tree shape). The next
//! start compares what it recovered with it — a mismatch means files were
//! damaged or replaced while the node was down, and the start is refused
//! instead of silently serving less data — and removes the marker before
//! any new write. A start without the marker after earlier runs means the
//! node crashed: the engine then keeps every complete write batch and cuts
//! off a torn one, which is logged.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;

use super::error::PersistenceError;
use crate::store::Summary;

/// Name of the marker file inside the data directory.
pub const CLEAN_FILE: &str = "CLEAN";
const TMP_FILE: &str = "CLEAN.tmp";

/// Reads the marker, if present.
pub fn read(dir: &Path) -> Result<Option<Summary>, PersistenceError> {
    let path = dir.join(CLEAN_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistenceError::DataDir {
                dir: dir.to_path_buf(),
                source,
            })
        }
    };
    parse(&text)
        .map(Some)
        .ok_or_else(|| PersistenceError::BadMarker { path: path.clone() })
}

fn parse(text: &str) -> Option<Summary> {
    let mut entries = None;
    let mut digest = None;
    for line in text.lines().take(16) {
        match line.split_once(' ') {
            Some(("format", "1")) => {}
            Some(("entries", n)) => entries = n.parse().ok(),
            Some(("digest_sum", h)) => digest = u128::from_str_radix(h, 16).ok(),
            _ => return None,
        }
    }
    Some(Summary {
        hash: digest?,
        count: entries?,
    })
}

/// Writes the marker atomically (temp file, fsync, rename, fsync dir).
pub fn write(dir: &Path, root: Summary) -> std::io::Result<()> {
    let tmp = dir.join(TMP_FILE);
    let mut file = File::create(&tmp)?;
    write!(
        file,
        "format 1\nentries {}\ndigest_sum {:032x}\n",
        root.count, root.hash
    )?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(CLEAN_FILE))?;
    sync_dir(dir)
}

/// Removes the marker (before the first new write can reach the disk).
pub fn clear(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(CLEAN_FILE)) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_round_trips_and_clears() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read(dir.path()).expect("read").is_none());
        let root = Summary {
            hash: u128::MAX - 5,
            count: 12,
        };
        write(dir.path(), root).expect("write");
        assert_eq!(read(dir.path()).expect("read"), Some(root));
        clear(dir.path()).expect("clear");
        assert!(read(dir.path()).expect("read").is_none());
        clear(dir.path()).expect("clearing twice is fine");
    }

    #[test]
    fn a_garbled_marker_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(CLEAN_FILE), "entries lots\n").expect("write");
        let err = read(dir.path()).expect_err("garbled");
        assert!(err.to_string().contains(CLEAN_FILE), "{err}");
    }
}
