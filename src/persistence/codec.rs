//! The on-disk encoding of one entry.
//!
//! Keys are stored as `KEY_TAG ++ key` (the tag lets the empty key exist,
//! which the engine forbids, and leaves room for other record kinds).
//! Values are a small versioned record:
//!
//! ```text
//! byte 0      format (FORMAT_V1)
//! byte 1      flags  (bit 0: tombstone; other bits must be zero)
//! bytes 2..10 hlc    (u64, little endian)
//! bytes 10..18 node  (u64, little endian)
//! bytes 18..  value  (absent for a tombstone)
//! ```
//!
//! Decoding never panics: damaged bytes give a [`DecodeError`].

use crate::store::{Entry, Version};

/// The first byte of every stored key of an entry.
pub const KEY_TAG: u8 = b'k';
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

/// Why a stored record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The stored key lacks the entry tag.
    #[error("stored key does not start with the entry tag (first byte {first:?})")]
    BadKeyTag {
        /// The first byte found, if any.
        first: Option<u8>,
    },
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

/// The stored key of `key`.
pub fn encode_key(key: &[u8]) -> Result<Vec<u8>, EncodeError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(EncodeError::KeyTooLong(key.len()));
    }
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(KEY_TAG);
    out.extend_from_slice(key);
    Ok(out)
}

/// The user key inside a stored key.
pub fn decode_key(stored: &[u8]) -> Result<&[u8], DecodeError> {
    match stored.split_first() {
        Some((&KEY_TAG, rest)) => Ok(rest),
        other => Err(DecodeError::BadKeyTag {
            first: other.map(|(b, _)| *b),
        }),
    }
}

/// The header of `entry`'s stored record (the value bytes follow it).
pub fn entry_header(entry: &Entry) -> Result<[u8; HEADER_BYTES], EncodeError> {
    let value_len = entry.value.as_deref().map_or(0, <[u8]>::len);
    if value_len > MAX_VALUE_BYTES {
        return Err(EncodeError::ValueTooLong(value_len));
    }
    let mut out = [0u8; HEADER_BYTES];
    out[0] = FORMAT_V1;
    out[1] = if entry.is_tombstone() {
        FLAG_TOMBSTONE
    } else {
        0
    };
    out[2..10].copy_from_slice(&entry.version.hlc.to_le_bytes());
    out[10..18].copy_from_slice(&entry.version.node.to_le_bytes());
    Ok(out)
}

/// The stored record of `entry`.
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
    if flags & !FLAG_TOMBSTONE != 0 {
        return Err(DecodeError::BadFlags(flags));
    }
    let version = Version::new(read_u64(&header[2..10]), read_u64(&header[10..18]));
    let value = if flags & FLAG_TOMBSTONE != 0 {
        if !value.is_empty() {
            return Err(DecodeError::TombstoneWithValue(value.len()));
        }
        None
    } else {
        Some(value.into())
    };
    Ok(Entry { version, value })
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
    fn empty_value_and_tombstone_differ() {
        let live = encode_entry(&entry(1, 1, Some(b""))).expect("encode");
        let dead = encode_entry(&entry(1, 1, None)).expect("encode");
        assert_ne!(live, dead);
    }

    #[test]
    fn keys_round_trip_including_the_empty_key() {
        for k in [&b""[..], b"a", b"key with spaces"] {
            let stored = encode_key(k).expect("encode");
            assert_eq!(decode_key(&stored), Ok(k));
        }
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
