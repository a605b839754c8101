//! Conversions between the wire types (`merklekv.v1`) and store types.
//!
//! Everything coming from a peer is checked here: missing fields and
//! malformed summaries are errors, never defaults.

use super::error::ConvertError;
use crate::proto;
use crate::store::{Entry, Summary, TreeShape, Version};

/// A summary in wire form.
pub fn summary_to_proto(s: Summary) -> proto::NodeSummary {
    proto::NodeSummary {
        hash: s.hash_bytes().to_vec(),
        count: s.count,
    }
}

/// A summary from the wire; the hash must be exactly 16 bytes.
pub fn summary_from_proto(p: &proto::NodeSummary) -> Result<Summary, ConvertError> {
    let bytes: [u8; 16] = p
        .hash
        .as_slice()
        .try_into()
        .map_err(|_| ConvertError::HashLength(p.hash.len()))?;
    Ok(Summary {
        hash: u128::from_le_bytes(bytes),
        count: p.count,
    })
}

/// A tree shape in wire form.
pub fn shape_to_proto(s: TreeShape) -> proto::TreeShape {
    proto::TreeShape {
        fanout: s.fanout,
        depth: s.depth,
    }
}

/// A tree shape from the wire (not validated: callers compare it with
/// their own, which is).
pub fn shape_from_proto(p: &proto::TreeShape) -> TreeShape {
    TreeShape {
        fanout: p.fanout,
        depth: p.depth,
    }
}

/// A version in wire form.
pub fn version_to_proto(v: Version) -> proto::Version {
    proto::Version {
        hlc: v.hlc,
        node: v.node,
    }
}

/// A version from the wire; absent is an error.
pub fn version_from_proto(p: Option<&proto::Version>) -> Result<Version, ConvertError> {
    let p = p.ok_or(ConvertError::Missing("version"))?;
    Ok(Version::new(p.hlc, p.node))
}

/// An entry in wire form.
pub fn entry_to_proto(key: &[u8], entry: &Entry) -> proto::Entry {
    proto::Entry {
        key: key.to_vec(),
        value: entry
            .value
            .as_deref()
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
        tombstone: entry.is_tombstone(),
        version: Some(version_to_proto(entry.version)),
        expires_at_unix_ms: entry.expires_at.map_or(0, |d| d.get()),
    }
}

/// An entry from the wire: `(key, entry)`.
pub fn entry_from_proto(p: proto::Entry) -> Result<(Box<[u8]>, Entry), ConvertError> {
    let version = version_from_proto(p.version.as_ref())?;
    let value = if p.tombstone {
        if !p.value.is_empty() {
            return Err(ConvertError::TombstoneWithValue);
        }
        None
    } else {
        Some(p.value.into_boxed_slice())
    };
    Ok((
        p.key.into_boxed_slice(),
        Entry {
            version,
            value,
            expires_at: std::num::NonZeroU64::new(p.expires_at_unix_ms),
        },
    ))
}

/// A key digest in wire form.
pub fn digest_to_proto(key: &[u8], version: Version, tombstone: bool) -> proto::EntryDigest {
    proto::EntryDigest {
        key: key.to_vec(),
        version: Some(version_to_proto(version)),
        tombstone,
    }
}

/// Bytes an entry adds to a page (protobuf encoding, closely estimated
/// without encoding it).
pub fn entry_wire_bytes(key_len: usize, value_len: usize) -> usize {
    // key + value (tag + length varint each), version (tag, len, 2 fixed64),
    // tombstone flag, entry envelope (tag + length).
    key_len + value_len + 2 * varint_len(key_len.max(value_len)) + 2 + 20 + 2 + 4
}

/// Bytes a key digest adds to a page.
pub fn digest_wire_bytes(key_len: usize) -> usize {
    key_len + varint_len(key_len) + 1 + 20 + 2 + 3
}

fn varint_len(n: usize) -> usize {
    ((usize::BITS - n.max(1).leading_zeros()) as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn round_trips() {
        let s = Summary {
            hash: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            count: 42,
        };
        assert_eq!(summary_from_proto(&summary_to_proto(s)), Ok(s));
        let e = Entry {
            expires_at: None,
            version: Version::new(7, 9),
            value: Some(b"v".to_vec().into()),
        };
        let (k, back) = entry_from_proto(entry_to_proto(b"k", &e)).expect("entry");
        assert_eq!((&*k, back), (&b"k"[..], e));
        let t = Entry {
            expires_at: None,
            version: Version::new(8, 9),
            value: None,
        };
        let (_, back) = entry_from_proto(entry_to_proto(b"k", &t)).expect("tombstone");
        assert_eq!(back, t);
    }

    #[test]
    fn refuses_malformed_input() {
        let bad = proto::NodeSummary {
            hash: vec![1, 2, 3],
            count: 1,
        };
        assert_eq!(summary_from_proto(&bad), Err(ConvertError::HashLength(3)));
        let no_version = proto::Entry {
            key: b"k".to_vec(),
            ..Default::default()
        };
        assert!(entry_from_proto(no_version).is_err());
        let tomb_with_value = proto::Entry {
            expires_at_unix_ms: 0,
            key: b"k".to_vec(),
            value: b"x".to_vec(),
            tombstone: true,
            version: Some(version_to_proto(Version::new(1, 1))),
        };
        assert_eq!(
            entry_from_proto(tomb_with_value),
            Err(ConvertError::TombstoneWithValue)
        );
    }

    #[test]
    fn size_estimates_are_upper_bounds() {
        for (k, v) in [(0usize, 0usize), (16, 100), (200, 70_000), (1, 1 << 20)] {
            let e = entry_to_proto(
                &vec![b'k'; k],
                &Entry {
                    expires_at: None,
                    version: Version::new(u64::MAX, u64::MAX),
                    value: Some(vec![b'v'; v].into()),
                },
            );
            let framed = e.encoded_len() + 1 + varint_len(e.encoded_len());
            assert!(entry_wire_bytes(k, v) >= framed, "{k} {v}");
            let d = digest_to_proto(&vec![b'k'; k], Version::new(u64::MAX, 1), true);
            let framed = d.encoded_len() + 1 + varint_len(d.encoded_len());
            assert!(digest_wire_bytes(k) >= framed, "{k}");
        }
    }
}
