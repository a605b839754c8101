//! Checks on what a peer sends: nothing from the wire is trusted. Keys must
//! lie where they were asked for, pages must advance in listing order,
//! sizes must match what was requested.

use std::ops::RangeInclusive;

use super::convert::{entry_from_proto, version_from_proto};
use super::error::SyncError;
use super::ranges::{Listed, Position};
use crate::proto;
use crate::store::{key_hash, Entry, TreeShape};

/// Entries with their keys, as fetched.
pub type KeyedEntries = Vec<(Box<[u8]>, Entry)>;

/// Checks a page of digests from the peer and turns it into listing items:
/// every key must fall into `ranges` (sorted, disjoint) and the page must be
/// strictly increasing in listing order, after `after`.
pub fn check_digests(
    shape: TreeShape,
    digests: Vec<proto::EntryDigest>,
    ranges: &[RangeInclusive<u64>],
    after: Option<&Position>,
) -> Result<Vec<Listed>, SyncError> {
    let mut out: Vec<Listed> = Vec::with_capacity(digests.len());
    for d in digests {
        let leaf = shape.leaf_of(key_hash(&d.key));
        let pos = ranges.partition_point(|r| *r.end() < leaf);
        if !ranges.get(pos).is_some_and(|r| r.contains(&leaf)) {
            return Err(SyncError::protocol(
                "ListDigests",
                "listed a key outside the requested subtrees",
            ));
        }
        let version = version_from_proto(d.version.as_ref())
            .map_err(|e| SyncError::protocol("ListDigests", e.to_string()))?;
        let in_order = match out.last() {
            Some(prev) => (prev.leaf, &*prev.key) < (leaf, &d.key[..]),
            None => after.is_none_or(|p| (p.leaf, &*p.key) < (leaf, &d.key[..])),
        };
        if !in_order {
            return Err(SyncError::protocol(
                "ListDigests",
                "digests out of order or repeated",
            ));
        }
        out.push(Listed {
            leaf,
            key: d.key.into_boxed_slice(),
            version,
            tombstone: d.tombstone,
            value_len: 0,
        });
    }
    Ok(out)
}

/// Checks `ListDigestsResponse.listed`: strictly increasing positions of
/// the request.
pub fn check_listed(listed: &[u32], asked: usize) -> Result<Vec<usize>, SyncError> {
    let ok = listed.windows(2).all(|w| w[0] < w[1])
        && listed.last().is_none_or(|&i| (i as usize) < asked);
    if !ok {
        return Err(SyncError::protocol(
            "ListDigests",
            "listed positions out of order or out of range",
        ));
    }
    Ok(listed.iter().map(|&i| i as usize).collect())
}

/// Entries fetched by key must be among the keys asked for, in order.
pub fn check_fetched_keys(
    entries: Vec<proto::Entry>,
    asked: &[Box<[u8]>],
) -> Result<KeyedEntries, SyncError> {
    let mut next = 0;
    let mut out = Vec::with_capacity(entries.len().min(asked.len()));
    for e in entries {
        let Some(offset) = asked[next..].iter().position(|k| **k == e.key[..]) else {
            return Err(SyncError::protocol(
                "FetchKeys",
                "returned a key that was not asked for (or out of order)",
            ));
        };
        next += offset + 1;
        out.push(entry_from_proto(e).map_err(|e| SyncError::protocol("FetchKeys", e.to_string()))?);
    }
    Ok(out)
}

/// Entries fetched by subtree must lie in the subtrees, in listing order.
pub fn check_fetched_subtrees(
    shape: TreeShape,
    entries: Vec<proto::Entry>,
    ranges: &[RangeInclusive<u64>],
    after: Option<&Position>,
) -> Result<KeyedEntries, SyncError> {
    let bad = |r: &str| SyncError::protocol("FetchKeys", r);
    let mut out: KeyedEntries = Vec::with_capacity(entries.len());
    let mut prev: Option<(u64, Box<[u8]>)> = after.map(|p| (p.leaf, p.key.clone()));
    for e in entries {
        let leaf = shape.leaf_of(key_hash(&e.key));
        let pos = ranges.partition_point(|r| *r.end() < leaf);
        if !ranges.get(pos).is_some_and(|r| r.contains(&leaf)) {
            return Err(bad("returned a key outside the requested subtrees"));
        }
        if prev
            .as_ref()
            .is_some_and(|(l, k)| (*l, &k[..]) >= (leaf, &e.key[..]))
        {
            return Err(bad("entries out of order or repeated"));
        }
        let (key, entry) = entry_from_proto(e).map_err(|e| bad(&e.to_string()))?;
        prev = Some((leaf, key.clone()));
        out.push((key, entry));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::ranges::Node;
    use super::*;

    #[test]
    fn refuses_bad_pages() {
        let shape = TreeShape::DEFAULT;
        let d = |k: &str| proto::EntryDigest {
            key: k.as_bytes().to_vec(),
            version: Some(proto::Version { hlc: 1, node: 1 }),
            tombstone: false,
        };
        let all = [Node::ROOT.leaves(shape)];
        assert!(check_digests(shape, vec![d("a"), d("a")], &all, None).is_err());
        let leaf = shape.leaf_of(key_hash(b"a"));
        let elsewhere = if leaf == 0 { [1..=1] } else { [0..=0] };
        assert!(check_digests(shape, vec![d("a")], &elsewhere, None).is_err());
        let no_version = proto::EntryDigest {
            key: b"a".to_vec(),
            ..Default::default()
        };
        assert!(check_digests(shape, vec![no_version], &all, None).is_err());
        assert_eq!(
            check_digests(shape, vec![d("a")], &all, None)
                .expect("ok")
                .len(),
            1
        );
    }
}
