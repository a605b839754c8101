//! Versions, entries and their digests.

use std::num::NonZeroU64;

use xxhash_rust::xxh3::Xxh3;

/// A write's version: hybrid logical clock timestamp, then the numeric id of
/// the node that made the write. Ordered lexicographically, so every replica
/// picks the same last writer; equal timestamps break by node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// Hybrid logical clock timestamp.
    pub hlc: u64,
    /// Numeric id of the writing node (see [`node_number`]).
    pub node: u64,
}

impl Version {
    /// A version from its parts.
    pub const fn new(hlc: u64, node: u64) -> Self {
        Self { hlc, node }
    }
}

/// The numeric node id used inside versions: a stable 64-bit hash of the
/// configured `node_id` string (the same on every platform and release).
pub fn node_number(node_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(node_id.as_bytes())
}

/// One stored entry: a value or a tombstone, with its version and, for a
/// key with a time to live, its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The version that wrote this state.
    pub version: Version,
    /// The value; `None` is a tombstone (a delete that is kept and synced).
    pub value: Option<Box<[u8]>>,
    /// When the value expires: unix milliseconds, compared with the hybrid
    /// clock's physical time (see docs/expiry.md). On a tombstone it is the
    /// deadline of the value that expired into it (its garbage-collection
    /// age counts from there). `None`: no time to live.
    pub expires_at: Option<NonZeroU64>,
}

impl Entry {
    /// Whether this entry records a delete (or an expired value).
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Whether the value's deadline is at or before `now_ms`.
    pub fn is_expired_at(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|d| d.get() <= now_ms)
    }

    /// What this entry turns into once its deadline passes: a tombstone
    /// with the same version and deadline, the same on every replica.
    pub fn expired(&self) -> Self {
        Self {
            version: self.version,
            value: None,
            expires_at: self.expires_at,
        }
    }

    /// This entry's digest under `key` (see [`entry_digest_at`]).
    pub fn digest(&self, key: &[u8]) -> u128 {
        entry_digest_at(key, self.version, self.value.as_deref(), self.expires_at)
    }
}

/// A 128-bit digest of one entry, the unit the Merkle index sums up.
///
/// XXH3-128 over the key, the version, the tombstone flag and the value, with
/// lengths framed so no two different entries share an input. XXH3 is a
/// fixed, specified hash (the same on every platform and release). It is not
/// cryptographic — neither is an additive sum of digests, whatever the digest
/// — and it is 3.6x cheaper than SHA-256 even on CPUs with SHA extensions,
/// which matters because every write computes one (see docs/design.md).
pub fn entry_digest(key: &[u8], version: Version, value: Option<&[u8]>) -> u128 {
    digest_one_shot(key, version, value, None)
}

/// [`entry_digest`] of an entry that may carry a deadline. Without one the
/// digest is exactly [`entry_digest`]'s (entries written before expiry
/// existed keep theirs); with one, the presence byte is 2 (value) or 3
/// (tombstone) and the deadline's 8 bytes follow the value, so a replica
/// that missed an EXPIRE, or has not yet expired a value, differs.
pub fn entry_digest_at(
    key: &[u8],
    version: Version,
    value: Option<&[u8]>,
    expires_at: Option<NonZeroU64>,
) -> u128 {
    match expires_at {
        None => entry_digest(key, version, value),
        Some(_) => digest_one_shot(key, version, value, expires_at),
    }
}

/// The digest input: key length, key, version, then a presence byte and
/// the value with its length, then the deadline when there is one. Most
/// entries are small: hash them in one shot from a stack buffer (XXH3's
/// one-shot and streaming forms give the same digest for the same bytes,
/// and one-shot is several times cheaper for short input).
#[inline(always)]
fn digest_one_shot(
    key: &[u8],
    version: Version,
    value: Option<&[u8]>,
    expires_at: Option<NonZeroU64>,
) -> u128 {
    const SMALL: usize = 512;
    let extra = if expires_at.is_some() { 8 } else { 0 };
    let len = 8 + key.len() + 16 + 1 + value.map_or(0, |v| 8 + v.len()) + extra;
    if len > SMALL {
        return entry_digest_streaming(key, version, value, expires_at);
    }
    let mut buf = [0u8; SMALL];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&(key.len() as u64).to_le_bytes());
    put(key);
    put(&version.hlc.to_le_bytes());
    put(&version.node.to_le_bytes());
    put(&[presence(value.is_some(), expires_at.is_some())]);
    if let Some(v) = value {
        put(&(v.len() as u64).to_le_bytes());
        put(v);
    }
    if let Some(deadline) = expires_at {
        put(&deadline.get().to_le_bytes());
    }
    xxhash_rust::xxh3::xxh3_128(&buf[..at])
}

/// The digest's presence byte: 1 a value, 0 a tombstone; 2 and 3 the same
/// with a deadline after the value.
fn presence(has_value: bool, has_deadline: bool) -> u8 {
    match (has_value, has_deadline) {
        (true, false) => 1,
        (false, false) => 0,
        (true, true) => 2,
        (false, true) => 3,
    }
}

/// [`entry_digest`] over the same bytes, fed piece by piece.
fn entry_digest_streaming(
    key: &[u8],
    version: Version,
    value: Option<&[u8]>,
    expires_at: Option<NonZeroU64>,
) -> u128 {
    let mut hasher = Xxh3::new();
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update(&version.hlc.to_le_bytes());
    hasher.update(&version.node.to_le_bytes());
    hasher.update(&[presence(value.is_some(), expires_at.is_some())]);
    if let Some(v) = value {
        hasher.update(&(v.len() as u64).to_le_bytes());
        hasher.update(v);
    }
    if let Some(deadline) = expires_at {
        hasher.update(&deadline.get().to_le_bytes());
    }
    hasher.digest128()
}

/// A stable 64-bit hash of a key; its top bits address the key's Merkle leaf
/// and store shard.
pub fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_hlc_then_node() {
        assert!(Version::new(2, 0) > Version::new(1, u64::MAX));
        assert!(Version::new(5, 2) > Version::new(5, 1));
        assert_eq!(Version::new(5, 2), Version::new(5, 2));
    }

    #[test]
    fn digest_covers_every_field() {
        let v = Version::new(10, 1);
        let base = entry_digest(b"k", v, Some(b"v"));
        assert_ne!(base, entry_digest(b"k2", v, Some(b"v")));
        assert_ne!(base, entry_digest(b"k", Version::new(11, 1), Some(b"v")));
        assert_ne!(base, entry_digest(b"k", Version::new(10, 2), Some(b"v")));
        assert_ne!(base, entry_digest(b"k", v, Some(b"w")));
        assert_ne!(base, entry_digest(b"k", v, None));
        assert_ne!(
            entry_digest(b"k", v, Some(b"")),
            entry_digest(b"k", v, None)
        );
        let d = NonZeroU64::new(5);
        assert_ne!(base, entry_digest_at(b"k", v, Some(b"v"), d));
        assert_ne!(
            entry_digest_at(b"k", v, Some(b"v"), d),
            entry_digest_at(b"k", v, Some(b"v"), NonZeroU64::new(6))
        );
        assert_ne!(
            entry_digest_at(b"k", v, None, d),
            entry_digest(b"k", v, None)
        );
        assert_eq!(base, entry_digest_at(b"k", v, Some(b"v"), None));
        // Framing: moving bytes between key and value changes the digest.
        assert_ne!(
            entry_digest(b"ab", v, Some(b"c")),
            entry_digest(b"a", v, Some(b"bc"))
        );
    }

    #[test]
    fn hashes_are_stable_across_processes() {
        // Fixed expectations: these must never change, or replicas running
        // different builds would disagree about every tree node.
        // (Values recorded from the release that first shipped them.)
        assert_eq!(key_hash(b"hello"), 0x9555_e855_5c62_dcfd);
        assert_eq!(node_number("node1"), 0x5203_9e36_9c1b_4eb7);
        // Fixed digests: a change here changes every root on the wire.
        assert_eq!(
            entry_digest(b"k", Version::new(1, 2), Some(b"v")),
            0x358f_6a40_7552_a3e5_fbe5_cf81_3d72_2f43
        );
        assert_eq!(
            entry_digest(b"k", Version::new(1, 2), None),
            0x837b_16b5_251b_c024_5155_ba8d_222c_f68b
        );
        assert_ne!(node_number("node1"), node_number("node2"));
    }

    #[test]
    fn one_shot_and_streaming_digests_agree_at_every_size() {
        let v = Version::new(0x0123_4567_89ab_cdef, 42);
        for key_len in [0usize, 1, 16, 200, 600] {
            let key = vec![b'k'; key_len];
            for deadline in [None, NonZeroU64::new(1_900_000_000_000)] {
                assert_eq!(
                    entry_digest_at(&key, v, None, deadline),
                    entry_digest_streaming(&key, v, None, deadline)
                );
                for value_len in 0..700 {
                    let value = vec![(value_len % 251) as u8; value_len];
                    assert_eq!(
                        entry_digest_at(&key, v, Some(&value), deadline),
                        entry_digest_streaming(&key, v, Some(&value), deadline),
                        "key {key_len} value {value_len}"
                    );
                }
            }
        }
    }
}
