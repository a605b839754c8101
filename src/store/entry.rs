//! Versions, entries and their digests.

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

/// One stored entry: a value or a tombstone, with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The version that wrote this state.
    pub version: Version,
    /// The value; `None` is a tombstone (a delete that is kept and synced).
    pub value: Option<Box<[u8]>>,
}

impl Entry {
    /// Whether this entry records a delete.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
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
    // The digest input: key length, key, version, then a presence byte and
    // the value with its length. Most entries are small: hash them in one
    // shot from a stack buffer (XXH3's one-shot and streaming forms give
    // the same digest for the same bytes, and one-shot is several times
    // cheaper for short input).
    const SMALL: usize = 512;
    let len = 8 + key.len() + 16 + 1 + value.map_or(0, |v| 8 + v.len());
    if len > SMALL {
        return entry_digest_streaming(key, version, value);
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
    match value {
        Some(v) => {
            put(&[1u8]);
            put(&(v.len() as u64).to_le_bytes());
            put(v);
        }
        None => put(&[0u8]),
    }
    xxhash_rust::xxh3::xxh3_128(&buf[..at])
}

/// [`entry_digest`] over the same bytes, fed piece by piece.
fn entry_digest_streaming(key: &[u8], version: Version, value: Option<&[u8]>) -> u128 {
    let mut hasher = Xxh3::new();
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update(&version.hlc.to_le_bytes());
    hasher.update(&version.node.to_le_bytes());
    match value {
        Some(v) => {
            hasher.update(&[1u8]);
            hasher.update(&(v.len() as u64).to_le_bytes());
            hasher.update(v);
        }
        None => hasher.update(&[0u8]),
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
            assert_eq!(
                entry_digest(&key, v, None),
                entry_digest_streaming(&key, v, None)
            );
            for value_len in 0..700 {
                let value = vec![(value_len % 251) as u8; value_len];
                assert_eq!(
                    entry_digest(&key, v, Some(&value)),
                    entry_digest_streaming(&key, v, Some(&value)),
                    "key {key_len} value {value_len}"
                );
            }
        }
    }
}
