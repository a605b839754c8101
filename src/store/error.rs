//! Errors of store operations.

use std::sync::Arc;

/// What a store operation can fail with. `Display` describes the failure
/// for logs and operators; what a client reads is the server's choice
/// (`server/replies.rs`).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// INC/DEC on a value that is not a decimal i64.
    #[error("value of key '{key}' is not a decimal integer")]
    NotANumber {
        /// The key (lossy UTF-8), for the message.
        key: String,
    },
    /// INCRBYFLOAT on a value, or with an increment, that is not a
    /// number Redis reads as a `long double`.
    #[error("value is not a valid float")]
    NotAFloat,
    /// INCRBYFLOAT would give an infinite or NaN result.
    #[error("increment would produce NaN or Infinity")]
    NotFinite,
    /// RENAME/RENAMENX of a key that does not exist.
    #[error("no such key")]
    NoSuchKey,
    /// INC/DEC would leave the i64 range.
    #[error("increment or decrement would overflow")]
    Overflow,
    /// The write would exceed `storage.memory_limit_mb`.
    #[error("memory limit reached (storage.memory_limit_mb)")]
    StorageFull,
    /// APPEND/PREPEND would grow a value past the largest value a client
    /// may send (`network.max_line_bytes`), which replication and
    /// anti-entropy are sized for.
    #[error("value would exceed the maximum size of {limit} bytes")]
    ValueTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// An APPEND/PREPEND that asked for a single-line result (the text
    /// protocol replies with the new value on one line) on a value holding
    /// `\r`/`\n`: refused rather than applied with an unreadable reply.
    #[error("the joined value would hold a line break")]
    NotLineSafe,
    /// The tree shape is not usable.
    #[error("invalid Merkle tree shape: fanout {fanout} (power of two 2..=256), depth {depth} (1..=8, at most 2^24 leaves)")]
    InvalidShape {
        /// Requested fanout.
        fanout: u32,
        /// Requested depth.
        depth: u32,
    },
    /// The key's current version lies further in the future than
    /// `storage.max_clock_skew_ms`: a newer version cannot be stamped
    /// without passing the clock's bound, so the write is refused.
    #[error("the version of key '{key}' is {ahead_ms} ms ahead of this node's clock (storage.max_clock_skew_ms)")]
    ClockAhead {
        /// The key (lossy UTF-8), for the message.
        key: String,
        /// How far past the wall clock the new version would have been.
        ahead_ms: u64,
    },
    /// The durable log refused the write.
    #[error("storage error: {0}")]
    Log(#[from] LogError),
}

/// Why the durable change log refused a write or could not confirm it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LogError {
    /// Writing or fsyncing the change log failed; every later write is
    /// refused until the node restarts.
    #[error("storage error {during}: {reason}")]
    WriteFailed {
        /// What the writer was doing (`writing the change log`, …).
        during: &'static str,
        /// The operating system's description of the failure.
        reason: Arc<str>,
    },
    /// Shutdown has begun: no change is accepted any more.
    #[error("durable storage is shut down")]
    ShutDown,
    /// The queue stayed full for too long (the disk does not keep up).
    #[error(
        "durable storage is not keeping up: {queued_mib} MiB waited {waited_secs} s to be written"
    )]
    Backlog {
        /// The queue's limit in MiB.
        queued_mib: usize,
        /// How long the writer waited, in seconds.
        waited_secs: u64,
    },
    /// The key is longer than the storage engine can hold.
    #[error("key of {len} bytes is longer than the {max} bytes durable storage can hold")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The engine's limit.
        max: usize,
    },
    /// The value is longer than the storage engine can hold.
    #[error("value of {0} bytes is longer than durable storage can hold")]
    ValueTooLong(usize),
    /// The write was not confirmed on disk within the stall limit.
    #[error("write not confirmed durable within {waited_secs} s")]
    Unconfirmed {
        /// How long the connection waited, in seconds.
        waited_secs: u64,
    },
    /// The write did not reach the change log (an earlier batch failed).
    #[error("write not confirmed in the change log")]
    NotWritten,
    /// Durable storage stopped before confirming the write.
    #[error("durable storage stopped")]
    Stopped,
    /// The change-log writer thread died.
    #[error("the change-log writer thread panicked")]
    WriterPanicked,
}
