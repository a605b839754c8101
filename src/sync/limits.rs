//! Sizes that keep every gRPC message bounded, and the client's tuning knobs.

use std::time::Duration;

/// Largest page (digests or entries) a server sends, in encoded bytes. Well
/// below gRPC's customary 4 MiB message limit; a page still holds one entry
/// when that entry alone is larger.
pub const MAX_PAGE_BYTES: usize = 3 * 1024 * 1024;

/// Most child summaries in one `GetChildren` response (~24 bytes each).
pub const MAX_CHILDREN_PER_CALL: usize = 131_072;

/// Most subtrees in one `ListDigests` / `FetchKeys` request.
pub const MAX_SUBTREES_PER_CALL: usize = 65_536;

/// Most keys in one `FetchKeys` request.
pub const MAX_KEYS_PER_CALL: usize = 65_536;

/// Most pages one listing or transfer may take before the round gives up
/// (a peer that never finishes cannot keep a round alive forever).
pub const MAX_PAGES_PER_LISTING: usize = 1_000_000;

/// The decoding limit for a gRPC message, on both ends: a full page plus
/// one value of the largest size a client can write.
pub fn max_message_bytes(max_value_bytes: usize) -> usize {
    (4 * 1024 * 1024usize)
        .max(MAX_PAGE_BYTES.saturating_add(max_value_bytes.saturating_add(64 * 1024)))
}

/// How a round behaves; the defaults suit production, tests shrink them to
/// exercise paging and descent on small data.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Page size asked of the peer and used for pushes (bytes).
    pub page_bytes: usize,
    /// A differing subtree holding at most this many entries on both sides
    /// is listed whole instead of descended into. Listing costs ~40 bytes
    /// per entry; descending costs ~34 bytes per child summary plus a round
    /// trip, so with fanout 16 the break-even lies near 16 entries.
    pub small_subtree: u64,
    /// Keys collected before a `FetchKeys` call is made mid-round.
    pub fetch_batch_keys: usize,
    /// Tombstones older than this are treated as gone when the other side
    /// has nothing for the key (they are about to be garbage-collected).
    pub tombstone_grace: Option<Duration>,
    /// Per-RPC deadline and connect timeout.
    pub rpc_timeout: Duration,
    /// Decoding limit for responses.
    pub max_message_bytes: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            page_bytes: MAX_PAGE_BYTES,
            small_subtree: 16,
            fetch_batch_keys: 32_768,
            tombstone_grace: None,
            rpc_timeout: Duration::from_secs(10),
            max_message_bytes: max_message_bytes(1024 * 1024),
        }
    }
}
