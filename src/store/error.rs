//! Errors of store operations.

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// INC/DEC on a value that is not a decimal i64.
    #[error("Value for key '{key}' is not a valid number")]
    NotANumber {
        /// The key (lossy UTF-8), for the message.
        key: String,
    },
    /// INC/DEC would leave the i64 range.
    #[error("increment or decrement would overflow")]
    Overflow,
    /// The write would exceed `storage.memory_limit_mb`.
    #[error("Storage full")]
    StorageFull,
    /// APPEND/PREPEND would grow a value past the largest value a client
    /// may send (`network.max_line_bytes`), which replication and
    /// anti-entropy are sized for.
    #[error("value would exceed the maximum size of {limit} bytes")]
    ValueTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A text-protocol APPEND/PREPEND on a value holding `\r`/`\n` (written
    /// through RESP): its reply could not be sent as one line, so the write
    /// is refused rather than applied with an unreadable reply.
    #[error("value contains CR or LF and cannot be sent as a text line: read it over RESP")]
    NotLineSafe,
    /// The tree shape is not usable.
    #[error("invalid Merkle tree shape: fanout {fanout} (power of two 2..=256), depth {depth} (1..=8, at most 2^24 leaves)")]
    InvalidShape {
        /// Requested fanout.
        fanout: u32,
        /// Requested depth.
        depth: u32,
    },
    /// The durable log refused the write.
    #[error("storage error: {0}")]
    Persistence(String),
}
