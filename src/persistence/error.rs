//! Errors of durable storage, each naming the data directory involved.

use std::path::PathBuf;

use super::entry_record::DecodeError;

/// What can go wrong opening, recovering or writing durable storage.
#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    /// The data directory could not be created or opened.
    #[error(
        "cannot use data directory {dir}: {source} (check storage.data_dir and its permissions)"
    )]
    DataDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another process holds the data directory's lock.
    #[error(
        "data directory {dir} is in use by another merklekv process{} (lock file {lock}); \
         stop that process or give this node another storage.data_dir",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The pid recorded by the holder, when readable.
        holder: Option<u32>,
    },
    /// The storage engine refused to open the directory.
    #[error(
        "cannot open the storage engine in {dir}: {reason}. The files may be damaged: \
         move the directory aside (keep it for inspection) and start the node with an \
         empty one; anti-entropy then refills it from the other replicas"
    )]
    Open {
        /// The directory.
        dir: PathBuf,
        /// What the engine reported.
        reason: String,
    },
    /// A stored record could not be read back.
    #[error(
        "damaged record in {dir} (key {key}): {source}. Move the directory aside (keep it \
         for inspection) and start the node with an empty one; anti-entropy then refills \
         it from the other replicas"
    )]
    Damaged {
        /// The directory.
        dir: PathBuf,
        /// The key (lossy UTF-8, shortened), or `?` when unreadable.
        key: String,
        /// What was wrong.
        source: DecodeError,
    },
    /// A change-log segment is damaged in a way no crash leaves behind.
    #[error(
        "the change log {path} is damaged at byte {offset} ({reason}) and more data follows, \
         so this is not an interrupted write: move the directory aside (keep it for \
         inspection) and start the node with an empty one; anti-entropy then refills it from \
         the other replicas"
    )]
    LogDamaged {
        /// The segment file.
        path: PathBuf,
        /// Where the damage starts.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// What was recovered differs from what the last clean shutdown left.
    #[error(
        "data in {dir} differs from what the last clean shutdown left: expected {expected_entries} \
         entries, found {found_entries}{}. Files were damaged or replaced while the node was down. \
         Move the directory aside (keep it for inspection) and start with an empty one \
         (anti-entropy refills it from the other replicas), or, to accept the data as recovered, \
         delete {dir}/CLEAN and start again",
        if expected_entries == found_entries { " with different contents" } else { "" }
    )]
    Changed {
        /// The directory.
        dir: PathBuf,
        /// Entries recorded at the clean shutdown.
        expected_entries: u64,
        /// Entries recovered now.
        found_entries: u64,
    },
    /// The clean-shutdown marker is unreadable.
    #[error("the clean-shutdown marker {path} is garbled; delete it to start (the data is then checked no further)")]
    BadMarker {
        /// The marker file.
        path: PathBuf,
    },
    /// Reading or writing through the engine failed.
    #[error("storage engine error in {dir}: {reason}")]
    Engine {
        /// The directory.
        dir: PathBuf,
        /// What the engine reported.
        reason: String,
    },
}
