//! The wire form of replication messages, as defined in
//! `proto/merklekv.proto`: [`proto::ChangeBatch`] on `{topic_prefix}/updates`
//! and [`proto::Presence`] on `{topic_prefix}/presence/{node_id}`.
//!
//! Every change carries the *result* of a write (the new value or a
//! tombstone, with its version), never the command, so applying it is a
//! last-writer-wins merge that is harmless to repeat.

use bytes::Bytes;
use prost::Message;

use crate::proto;
use crate::store::{Change, Entry, Version};

/// Upper bound of the protobuf framing around one change (field tags,
/// length prefixes, tombstone flag, version, deadline): added to key and value
/// lengths to estimate a change's encoded size from above.
pub const CHANGE_FRAMING_BYTES: usize = 64;

/// Why a payload is not a usable message.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Not valid protobuf for the expected message.
    #[error("undecodable protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A change batch without an origin node.
    #[error("change batch without origin_node")]
    MissingOrigin,
    /// A change batch without changes.
    #[error("change batch without changes")]
    Empty,
    /// A change without a version.
    #[error("change {index} has no version")]
    MissingVersion {
        /// Position of the change in its batch.
        index: usize,
    },
    /// A tombstone that carries a value.
    #[error("change {index} is a tombstone but carries a value")]
    TombstoneWithValue {
        /// Position of the change in its batch.
        index: usize,
    },
    /// A presence message whose node id is not the one in its topic.
    #[error("presence for node {found:?} published under node {topic:?}")]
    PresenceMismatch {
        /// The node id in the topic.
        topic: String,
        /// The node id in the payload.
        found: String,
    },
}

/// A decoded and validated change batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBatch {
    /// `node_id` of the node that made the changes.
    pub origin_node: String,
    /// The changes, in the order they were made.
    pub changes: Vec<Change>,
}

/// Converts a store change into its wire form without copying the key or
/// the value.
pub fn change_to_proto(change: Change) -> proto::Entry {
    let Change { key, entry } = change;
    proto::Entry {
        key: key.into_vec(),
        tombstone: entry.value.is_none(),
        value: entry.value.map(<[u8]>::into_vec).unwrap_or_default(),
        version: Some(proto::Version {
            hlc: entry.version.hlc,
            node: entry.version.node,
        }),
        expires_at_unix_ms: entry.expires_at.map_or(0, |d| d.get()),
    }
}

/// Converts a wire entry back into a store change, checking it is well formed.
fn change_from_proto(entry: proto::Entry, index: usize) -> Result<Change, CodecError> {
    let version = entry.version.ok_or(CodecError::MissingVersion { index })?;
    let value = if entry.tombstone {
        if !entry.value.is_empty() {
            return Err(CodecError::TombstoneWithValue { index });
        }
        None
    } else {
        Some(entry.value.into_boxed_slice())
    };
    Ok(Change {
        key: entry.key.into_boxed_slice(),
        entry: Entry {
            version: Version::new(version.hlc, version.node),
            value,
            expires_at: std::num::NonZeroU64::new(entry.expires_at_unix_ms),
        },
    })
}

/// An upper bound of the encoded size of `change` inside a batch.
pub fn estimated_change_len(change: &Change) -> usize {
    change.key.len() + change.entry.value.as_ref().map_or(0, |v| v.len()) + CHANGE_FRAMING_BYTES
}

/// Encoded size of the batch fields other than the changes.
pub fn batch_header_len(origin_node: &str, origin_node_num: u64) -> usize {
    proto::ChangeBatch {
        origin_node: origin_node.to_owned(),
        origin_node_num,
        changes: Vec::new(),
    }
    .encoded_len()
}

/// Encodes one batch of changes made on `origin_node`.
pub fn encode_batch(origin_node: &str, origin_node_num: u64, changes: Vec<Change>) -> Bytes {
    let batch = proto::ChangeBatch {
        origin_node: origin_node.to_owned(),
        origin_node_num,
        changes: changes.into_iter().map(change_to_proto).collect(),
    };
    Bytes::from(batch.encode_to_vec())
}

/// Decodes and validates a change batch. Any defect rejects the whole
/// batch: a sender that writes one malformed change is not trusted for the
/// others.
pub fn decode_batch(payload: &[u8]) -> Result<DecodedBatch, CodecError> {
    let batch = proto::ChangeBatch::decode(payload)?;
    if batch.origin_node.is_empty() {
        return Err(CodecError::MissingOrigin);
    }
    if batch.changes.is_empty() {
        return Err(CodecError::Empty);
    }
    let changes = batch
        .changes
        .into_iter()
        .enumerate()
        .map(|(index, entry)| change_from_proto(entry, index))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DecodedBatch {
        origin_node: batch.origin_node,
        changes,
    })
}

/// The `origin_node` of an encoded batch, read without decoding the rest,
/// when it is the first field of the payload (as protobuf encoders that
/// follow field order write it). Lets a node skip its own batches cheaply.
pub fn peek_origin(payload: &[u8]) -> Option<&[u8]> {
    // Field 1, wire type 2 (length-delimited).
    let rest = payload.strip_prefix(&[0x0A])?;
    let mut cursor = rest;
    let len = prost::decode_length_delimiter(&mut cursor).ok()?;
    cursor.get(..len)
}

/// Encodes a presence message.
pub fn encode_presence(presence: &proto::Presence) -> Bytes {
    Bytes::from(presence.encode_to_vec())
}

/// Decodes a presence message published under `topic_node_id`.
pub fn decode_presence(topic_node_id: &str, payload: &[u8]) -> Result<proto::Presence, CodecError> {
    let presence = proto::Presence::decode(payload)?;
    if presence.node_id != topic_node_id {
        return Err(CodecError::PresenceMismatch {
            topic: topic_node_id.to_owned(),
            found: presence.node_id,
        });
    }
    Ok(presence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, value: Option<&[u8]>, hlc: u64) -> Change {
        Change {
            key: key.as_bytes().into(),
            entry: Entry {
                expires_at: None,
                version: Version::new(hlc, 7),
                value: value.map(Into::into),
            },
        }
    }

    #[test]
    fn batches_round_trip_values_and_tombstones() {
        let changes = vec![
            change("a", Some(b"1"), 10),
            change("b", None, 11),
            change("c", Some(b""), 12),
        ];
        let payload = encode_batch("n1", 42, changes.clone());
        let decoded = decode_batch(&payload).expect("decodes");
        assert_eq!(decoded.origin_node, "n1");
        assert_eq!(decoded.changes, changes);
    }

    #[test]
    fn origin_is_peeked_without_decoding() {
        let payload = encode_batch("node-17", 1, vec![change("k", Some(b"v"), 1)]);
        assert_eq!(peek_origin(&payload), Some(&b"node-17"[..]));
        assert_eq!(peek_origin(b""), None);
        assert_eq!(
            peek_origin(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
            None
        );
        assert_eq!(peek_origin(b"\x0a\x05ab"), None);
    }

    #[test]
    fn estimate_bounds_the_encoded_size() {
        for (key_len, value_len) in [(1, 0), (1, 1), (200, 70_000), (3, 1 << 20)] {
            let key = "k".repeat(key_len);
            let value = vec![b'x'; value_len];
            let c = Change {
                key: key.as_bytes().into(),
                entry: Entry {
                    expires_at: None,
                    version: Version::new(u64::MAX, u64::MAX),
                    value: Some(value.into()),
                },
            };
            let estimate = estimated_change_len(&c);
            let header = batch_header_len("n", u64::MAX);
            let encoded = encode_batch("n", u64::MAX, vec![c]).len();
            assert!(
                encoded <= header + estimate,
                "{encoded} > {header} + {estimate}"
            );
        }
    }

    #[test]
    fn garbage_and_malformed_batches_are_rejected() {
        assert!(decode_batch(b"not protobuf at all").is_err());
        assert!(matches!(decode_batch(b""), Err(CodecError::MissingOrigin)));
        let empty = proto::ChangeBatch {
            origin_node: "n".into(),
            origin_node_num: 1,
            changes: vec![],
        };
        assert!(matches!(
            decode_batch(&empty.encode_to_vec()),
            Err(CodecError::Empty)
        ));
        let no_version = proto::ChangeBatch {
            origin_node: "n".into(),
            origin_node_num: 1,
            changes: vec![proto::Entry {
                expires_at_unix_ms: 0,
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                tombstone: false,
                version: None,
            }],
        };
        assert!(matches!(
            decode_batch(&no_version.encode_to_vec()),
            Err(CodecError::MissingVersion { index: 0 })
        ));
        let bad_tombstone = proto::ChangeBatch {
            origin_node: "n".into(),
            origin_node_num: 1,
            changes: vec![proto::Entry {
                expires_at_unix_ms: 0,
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                tombstone: true,
                version: Some(proto::Version { hlc: 1, node: 1 }),
            }],
        };
        assert!(matches!(
            decode_batch(&bad_tombstone.encode_to_vec()),
            Err(CodecError::TombstoneWithValue { index: 0 })
        ));
    }

    #[test]
    fn presence_must_match_its_topic() {
        let p = proto::Presence {
            node_id: "n1".into(),
            client_addr: "127.0.0.1:7379".into(),
            sync_addr: "127.0.0.1:7380".into(),
            incarnation: 5,
            started_unix_ms: 1,
        };
        let bytes = encode_presence(&p);
        assert_eq!(decode_presence("n1", &bytes).expect("decodes"), p);
        assert!(matches!(
            decode_presence("n2", &bytes),
            Err(CodecError::PresenceMismatch { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_batch(&bytes);
            let _ = peek_origin(&bytes);
            let _ = decode_presence("n", &bytes);
        }
    }
}
