//! The on-disk encoding of one entry.
//!
//! Keys are stored as `HASHED_KEY_TAG ++ hash ++ key`, where `hash` is the
//! first [`KEY_HASH_BYTES`] bytes (big endian) of the key's stable hash.
//! The tag lets the empty key exist, which the engine forbids, and leaves
//! room for other record kinds. The hash in front makes stored keys differ
//! in their first bytes: the engine's memtable and tables compare keys on
//! every insert, and user keys often share long prefixes (`user:0000…`),
//! which made each comparison a full `memcmp` instead of a look at the
//! 4-byte prefix (tag + 3 hash bytes) the engine keeps inline.
//!
//! Releases before this layout stored `KEY_TAG ++ key`; such records are
//! still read, and keys too long for the hashed layout are still written
//! that way. Removing a key removes both layouts (see
//! [`stored_key_layouts`]), so an old record can never outlive a newer one.
//! Values are a small versioned record:
//!
//! ```text
//! byte 0      format (FORMAT_V1)
//! byte 1      flags  (bit 0: tombstone; bit 1: deadline; others zero)
//! bytes 2..10 hlc    (u64, little endian)
//! bytes 10..18 node  (u64, little endian)
//! bytes 18..26 deadline (unix ms, u64 little endian; only with bit 1)
//! then        value  (absent for a tombstone)
//! ```
//!
//! A record without a deadline is byte for byte what releases before
//! expiry wrote, so keys without a time to live cost nothing more on disk.
//!
//! Decoding never panics: damaged bytes give a [`DecodeError`].

use crate::store::{key_hash, Entry, LogError, Version};

/// The first byte of a stored key in the original layout, `KEY_TAG ++ key`.
pub const KEY_TAG: u8 = b'k';
/// The first byte of a stored key in the hashed layout,
/// `HASHED_KEY_TAG ++ hash ++ key`.
pub const HASHED_KEY_TAG: u8 = b'h';
/// Bytes of the key's hash in a hashed stored key. Three, so that with the
/// tag they fill the engine's 4-byte inline key prefix, and a 16-byte user
/// key still fits the engine's 20-byte inline key storage.
pub const KEY_HASH_BYTES: usize = 3;
/// The longest user key stored in the hashed layout (the engine's limit is
/// 65535 bytes); longer keys, up to [`MAX_KEY_BYTES`], use the original one.
pub const MAX_HASHED_KEY_BYTES: usize = u16::MAX as usize - 1 - KEY_HASH_BYTES;
/// The current record format.
pub const FORMAT_V1: u8 = 1;
/// Bytes before the value in a V1 record.
pub const HEADER_BYTES: usize = 18;
/// The longest user key the engine can hold (its limit is 65535 bytes,
/// one of which is the tag).
pub const MAX_KEY_BYTES: usize = u16::MAX as usize - 1;
/// The longest value the engine can hold.
pub const MAX_VALUE_BYTES: usize = u32::MAX as usize - HEADER_BYTES;

const FLAG_TOMBSTONE: u8 = 1;
const FLAG_DEADLINE: u8 = 2;
/// Bytes of the deadline that follows the header when `FLAG_DEADLINE` is set.
const DEADLINE_BYTES: usize = 8;

/// The bytes stored before an entry's value: the fixed header and, for an
/// entry with a deadline, the deadline.
#[derive(Debug, Clone, Copy)]
pub struct EntryHeader {
    bytes: [u8; HEADER_BYTES + DEADLINE_BYTES],
    len: usize,
}

impl std::ops::Deref for EntryHeader {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Why a stored record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The stored key lacks the entry tag.
    #[error("stored key does not start with the entry tag (first byte {first:?})")]
    BadKeyTag {
        /// The first byte found, if any.
        first: Option<u8>,
    },
    /// A hashed stored key whose hash does not match its key.
    #[error("stored key's hash does not match the key")]
    BadKeyHash,
    /// The record is shorter than its header.
    #[error("record is {len} bytes, shorter than the {HEADER_BYTES}-byte header")]
    Truncated {
        /// Bytes found.
        len: usize,
    },
    /// A format this build does not know (written by a newer release, or damaged).
    #[error("unknown record format {0} (this build reads format {FORMAT_V1})")]
    UnknownFormat(u8),
    /// Flag bits this format does not define.
    #[error("invalid flags {0:#04x}")]
    BadFlags(u8),
    /// A deadline flag without the deadline's bytes, or a zero deadline.
    #[error("record's deadline is missing or zero")]
    BadDeadline,
    /// A tombstone that carries value bytes.
    #[error("tombstone record carries {0} value bytes")]
    TombstoneWithValue(usize),
}

/// Why an entry cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The key exceeds the engine's key limit.
    #[error("key of {0} bytes is longer than the {MAX_KEY_BYTES} bytes durable storage can hold")]
    KeyTooLong(usize),
    /// The value exceeds the engine's value limit.
    #[error("value of {0} bytes is longer than durable storage can hold")]
    ValueTooLong(usize),
}

impl From<EncodeError> for LogError {
    fn from(e: EncodeError) -> Self {
        match e {
            EncodeError::KeyTooLong(len) => LogError::KeyTooLong {
                len,
                max: MAX_KEY_BYTES,
            },
            EncodeError::ValueTooLong(len) => LogError::ValueTooLong(len),
        }
    }
}

/// The bytes stored in front of `key` in its stored key: the hashed
/// layout's tag and hash, or (for a key too long for that) the original
/// layout's tag. Returns the buffer and how many of its bytes are used.
pub fn key_prefix(key: &[u8]) -> Result<([u8; 1 + KEY_HASH_BYTES], usize), EncodeError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(EncodeError::KeyTooLong(key.len()));
    }
    let mut prefix = [0u8; 1 + KEY_HASH_BYTES];
    if key.len() > MAX_HASHED_KEY_BYTES {
        prefix[0] = KEY_TAG;
        return Ok((prefix, 1));
    }
    prefix[0] = HASHED_KEY_TAG;
    prefix[1..].copy_from_slice(&key_hash_bytes(key));
    Ok((prefix, prefix.len()))
}

/// The stored key of `key` (hashed layout when it fits).
pub fn encode_key(key: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let (prefix, used) = key_prefix(key)?;
    let mut out = Vec::with_capacity(used + key.len());
    out.extend_from_slice(&prefix[..used]);
    out.extend_from_slice(key);
    Ok(out)
}

/// Every stored key `key` may have been written under: the current layout
/// and, when it differs, the original one an older release wrote. Removing
/// a key removes all of them.
pub fn stored_key_layouts(key: &[u8]) -> Result<Vec<Vec<u8>>, EncodeError> {
    let current = encode_key(key)?;
    if current.first() == Some(&KEY_TAG) {
        return Ok(vec![current]);
    }
    let mut original = Vec::with_capacity(1 + key.len());
    original.push(KEY_TAG);
    original.extend_from_slice(key);
    Ok(vec![current, original])
}

/// The user key inside a stored key, in either layout.
pub fn decode_key(stored: &[u8]) -> Result<&[u8], DecodeError> {
    match stored.split_first() {
        Some((&KEY_TAG, rest)) => Ok(rest),
        Some((&HASHED_KEY_TAG, rest)) if rest.len() >= KEY_HASH_BYTES => {
            let (hash, key) = rest.split_at(KEY_HASH_BYTES);
            if hash == key_hash_bytes(key) {
                Ok(key)
            } else {
                Err(DecodeError::BadKeyHash)
            }
        }
        other => Err(DecodeError::BadKeyTag {
            first: other.map(|(b, _)| *b),
        }),
    }
}

/// The first bytes of the key's stable hash (the store's `key_hash`).
fn key_hash_bytes(key: &[u8]) -> [u8; KEY_HASH_BYTES] {
    let mut out = [0u8; KEY_HASH_BYTES];
    out.copy_from_slice(&key_hash(key).to_be_bytes()[..KEY_HASH_BYTES]);
    out
}

/// The header of `entry`'s stored record (the value bytes follow it).
pub fn entry_header(entry: &Entry) -> Result<EntryHeader, EncodeError> {
    let value_len = entry.value.as_deref().map_or(0, <[u8]>::len);
    if value_len > MAX_VALUE_BYTES {
        return Err(EncodeError::ValueTooLong(value_len));
    }
    let mut out = EntryHeader {
        bytes: [0u8; HEADER_BYTES + DEADLINE_BYTES],
        len: HEADER_BYTES,
    };
    out.bytes[0] = FORMAT_V1;
    let mut flags = if entry.is_tombstone() {
        FLAG_TOMBSTONE
    } else {
        0
    };
    out.bytes[2..10].copy_from_slice(&entry.version.hlc.to_le_bytes());
    out.bytes[10..18].copy_from_slice(&entry.version.node.to_le_bytes());
    if let Some(deadline) = entry.expires_at {
        flags |= FLAG_DEADLINE;
        out.bytes[HEADER_BYTES..].copy_from_slice(&deadline.get().to_le_bytes());
        out.len = HEADER_BYTES + DEADLINE_BYTES;
    }
    out.bytes[1] = flags;
    Ok(out)
}

/// The stored record of `entry`.
#[cfg(test)]
pub fn encode_entry(entry: &Entry) -> Result<Vec<u8>, EncodeError> {
    let header = entry_header(entry)?;
    let value = entry.value.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER_BYTES + value.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(value);
    Ok(out)
}

/// Reads a stored record back.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, DecodeError> {
    let Some(&format) = bytes.first() else {
        return Err(DecodeError::Truncated { len: 0 });
    };
    if format != FORMAT_V1 {
        return Err(DecodeError::UnknownFormat(format));
    }
    let (header, value) = bytes
        .split_at_checked(HEADER_BYTES)
        .ok_or(DecodeError::Truncated { len: bytes.len() })?;
    let flags = header[1];
    if flags & !(FLAG_TOMBSTONE | FLAG_DEADLINE) != 0 {
        return Err(DecodeError::BadFlags(flags));
    }
    let version = Version::new(read_u64(&header[2..10]), read_u64(&header[10..18]));
    let (expires_at, value) = if flags & FLAG_DEADLINE != 0 {
        let (deadline, rest) = value
            .split_at_checked(DEADLINE_BYTES)
            .ok_or(DecodeError::BadDeadline)?;
        let deadline =
            std::num::NonZeroU64::new(read_u64(deadline)).ok_or(DecodeError::BadDeadline)?;
        (Some(deadline), rest)
    } else {
        (None, value)
    };
    let value = if flags & FLAG_TOMBSTONE != 0 {
        if !value.is_empty() {
            return Err(DecodeError::TombstoneWithValue(value.len()));
        }
        None
    } else {
        Some(value.into())
    };
    Ok(Entry {
        version,
        value,
        expires_at,
    })
}

/// Encodes the HLC high-water mark stored in the meta keyspace.
pub fn encode_high_water(hlc: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = FORMAT_V1;
    out[1..].copy_from_slice(&hlc.to_le_bytes());
    out
}

/// Reads the HLC high-water mark back.
pub fn decode_high_water(bytes: &[u8]) -> Result<u64, DecodeError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, rest)) if rest.len() == 8 => Ok(read_u64(rest)),
        Some((&FORMAT_V1, rest)) => Err(DecodeError::Truncated {
            len: rest.len() + 1,
        }),
        Some((&other, _)) => Err(DecodeError::UnknownFormat(other)),
        None => Err(DecodeError::Truncated { len: 0 }),
    }
}

/// Little-endian u64 from exactly eight bytes (callers slice exactly 8).
fn read_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hlc: u64, node: u64, value: Option<&[u8]>) -> Entry {
        Entry {
            expires_at: None,
            version: Version::new(hlc, node),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn values_and_tombstones_round_trip() {
        for e in [
            entry(1, 2, Some(b"hello")),
            entry(u64::MAX, u64::MAX, Some(b"")),
            entry(42, 7, None),
        ] {
            let bytes = encode_entry(&e).expect("encode");
            assert_eq!(decode_entry(&bytes), Ok(e));
        }
    }

    #[test]
    fn deadlines_round_trip_and_cost_nothing_without_one() {
        let plain = entry(1, 2, Some(b"hello"));
        let plain_bytes = encode_entry(&plain).expect("encode");
        assert_eq!(
            plain_bytes.len(),
            HEADER_BYTES + 5,
            "the old layout, byte for byte"
        );
        for value in [Some(&b"hello"[..]), Some(b""), None] {
            let mut e = entry(1, 2, value);
            e.expires_at = std::num::NonZeroU64::new(1_900_000_000_123);
            let bytes = encode_entry(&e).expect("encode");
            assert_eq!(
                bytes.len(),
                plain_bytes.len() - 5 + value.map_or(0, <[u8]>::len) + 8
            );
            assert_eq!(decode_entry(&bytes), Ok(e));
        }
        // A deadline flag without its bytes, or a zero deadline, is damage.
        let mut cut = plain_bytes[..HEADER_BYTES].to_vec();
        cut[1] |= FLAG_DEADLINE;
        assert_eq!(decode_entry(&cut), Err(DecodeError::BadDeadline));
        cut.extend_from_slice(&[0; 8]);
        assert_eq!(decode_entry(&cut), Err(DecodeError::BadDeadline));
    }

    #[test]
    fn empty_value_and_tombstone_differ() {
        let live = encode_entry(&entry(1, 1, Some(b""))).expect("encode");
        let dead = encode_entry(&entry(1, 1, None)).expect("encode");
        assert_ne!(live, dead);
    }

    #[test]
    fn keys_round_trip_including_the_empty_key() {
        for k in [&b""[..], b"a", b"key with spaces"] {
            let stored = encode_key(k).expect("encode");
            assert_eq!(stored[0], HASHED_KEY_TAG);
            assert_eq!(decode_key(&stored), Ok(k));
        }
        // The original layout of older releases still reads.
        assert_eq!(decode_key(b"kuser:1"), Ok(&b"user:1"[..]));
        // Keys that share a long prefix differ in their first stored bytes.
        let (a, b) = (
            encode_key(b"user:000000000001").expect("a"),
            encode_key(b"user:000000000002").expect("b"),
        );
        assert_ne!(a[..1 + KEY_HASH_BYTES], b[..1 + KEY_HASH_BYTES]);
        // A key too long for the hashed layout keeps the original one.
        let long = vec![b'x'; MAX_HASHED_KEY_BYTES + 1];
        let stored = encode_key(&long).expect("long");
        assert_eq!(stored[0], KEY_TAG);
        assert_eq!(decode_key(&stored), Ok(&long[..]));
        assert_eq!(encode_key(&long[1..]).expect("fits")[0], HASHED_KEY_TAG);
        assert!(matches!(
            encode_key(&vec![b'x'; MAX_KEY_BYTES + 1]),
            Err(EncodeError::KeyTooLong(_))
        ));
        assert!(encode_key(&vec![b'x'; MAX_KEY_BYTES]).is_ok());
        assert_eq!(decode_key(b""), Err(DecodeError::BadKeyTag { first: None }));
        assert_eq!(
            decode_key(b"zz"),
            Err(DecodeError::BadKeyTag { first: Some(b'z') })
        );
        // A hashed key whose hash was damaged, or too short to hold one.
        let mut stored = encode_key(b"user:1").expect("encode");
        stored[2] ^= 0xff;
        assert_eq!(decode_key(&stored), Err(DecodeError::BadKeyHash));
        assert_eq!(
            decode_key(b"hab"),
            Err(DecodeError::BadKeyTag {
                first: Some(HASHED_KEY_TAG)
            })
        );
    }

    #[test]
    fn removing_a_key_covers_both_layouts() {
        let layouts = stored_key_layouts(b"user:1").expect("layouts");
        assert_eq!(layouts.len(), 2);
        assert_eq!(layouts[0], encode_key(b"user:1").expect("encode"));
        assert_eq!(layouts[1], b"kuser:1".to_vec());
        let long = vec![b'x'; MAX_KEY_BYTES];
        assert_eq!(stored_key_layouts(&long).expect("long").len(), 1);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let good = encode_entry(&entry(5, 6, Some(b"value"))).expect("encode");
        for len in 0..HEADER_BYTES {
            assert!(decode_entry(&good[..len]).is_err(), "prefix of {len} bytes");
        }
        let mut bad = good.clone();
        bad[0] = 9;
        assert_eq!(decode_entry(&bad), Err(DecodeError::UnknownFormat(9)));
        let mut bad = good.clone();
        bad[1] = 0x80;
        assert_eq!(decode_entry(&bad), Err(DecodeError::BadFlags(0x80)));
        let mut bad = encode_entry(&entry(5, 6, None)).expect("encode");
        bad.push(1);
        assert_eq!(decode_entry(&bad), Err(DecodeError::TombstoneWithValue(1)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for len in 0..200usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decode_entry(&bytes);
            let _ = decode_key(&bytes);
            let _ = decode_high_water(&bytes);
        }
    }

    #[test]
    fn high_water_round_trips() {
        assert_eq!(decode_high_water(&encode_high_water(77)), Ok(77));
        assert!(decode_high_water(&[FORMAT_V1, 1, 2]).is_err());
        assert!(decode_high_water(&[]).is_err());
    }
}
