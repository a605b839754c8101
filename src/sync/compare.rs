//! Comparing a peer's key digests with our entries: a merge-join in listing
//! order that decides, per key, who needs what.
//!
//! * only the peer has it, or the peer's version is newer → fetch it;
//! * only we have it, or our version is newer → push it;
//! * equal versions → nothing (a version is written once, so the entries
//!   are identical).
//!
//! A tombstone older than the grace period that the other side does not
//! have at all is left alone: it is about to be garbage-collected, and
//! copying it would only make the two sides trade it back and forth.

use std::ops::RangeInclusive;

use super::ranges::{for_each_between, Listed, Position};
use crate::store::hash_ranges::HashRange;
use crate::store::Store;

/// What a comparison decided.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decisions {
    /// Keys to fetch from the peer.
    pub fetch: Vec<Box<[u8]>>,
    /// Keys to push to the peer, with their value length (for page sizing).
    pub push: Vec<(Box<[u8]>, usize)>,
}

/// Compares `theirs` (checked, in listing order, covering exactly the span
/// `(after, upto]` of `ranges`) with our entries in the same span.
/// `hashes`: only keys whose hash lies in one of these ranges count.
/// `expired_before` is the HLC below which a tombstone counts as expired.
pub fn compare_span(
    store: &Store,
    ranges: &[RangeInclusive<u64>],
    hashes: Option<&[HashRange]>,
    after: Option<&Position>,
    upto: Option<&Position>,
    theirs: &[Listed],
    expired_before: Option<u64>,
) -> Decisions {
    let expired = |l: &Listed| l.tombstone && expired_before.is_some_and(|c| l.version.hlc < c);
    let mut out = Decisions::default();
    let mut t = theirs.iter().peekable();
    let _ = for_each_between::<()>(store, ranges, hashes, after, upto, |ours| {
        for o in ours {
            while let Some(d) = t.next_if(|d| (d.leaf, &d.key) < (o.leaf, &o.key)) {
                if !expired(d) {
                    out.fetch.push(d.key.clone());
                }
            }
            match t.next_if(|d| d.key == o.key) {
                Some(d) if d.version > o.version => out.fetch.push(d.key.clone()),
                Some(d) if d.version < o.version => out.push.push((o.key, o.value_len)),
                Some(_) => {}
                None if expired(&o) => {}
                None => out.push.push((o.key, o.value_len)),
            }
        }
        Ok(())
    });
    for d in t {
        if !expired(d) {
            out.fetch.push(d.key.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::ranges::Node;
    use super::*;
    use crate::store::{key_hash, Entry, StoreOptions, TreeShape, Version};

    fn listed(shape: TreeShape, key: &str, hlc: u64, tombstone: bool) -> Listed {
        Listed {
            leaf: shape.leaf_of(key_hash(key.as_bytes())),
            key: key.as_bytes().into(),
            version: Version::new(hlc, 2),
            tombstone,
            value_len: 0,
        }
    }

    #[test]
    fn decides_each_direction() {
        let shape = TreeShape::DEFAULT;
        let store = Store::new(StoreOptions::default()).expect("store");
        let put = |k: &str, hlc: u64, value: Option<&[u8]>| {
            store
                .merge(
                    k.as_bytes(),
                    Entry {
                        expires_at: None,
                        version: Version::new(hlc, 1),
                        value: value.map(Into::into),
                    },
                )
                .expect("merge");
        };
        put("same", 5, Some(b"v"));
        put("ours-newer", 9, Some(b"v"));
        put("theirs-newer", 3, Some(b"v"));
        put("only-ours", 4, Some(b"vvv"));
        put("old-tomb-ours", 1, None);
        let mut theirs = vec![
            Listed {
                version: Version::new(5, 1),
                ..listed(shape, "same", 0, false)
            },
            listed(shape, "ours-newer", 8, false),
            listed(shape, "theirs-newer", 4, false),
            listed(shape, "only-theirs", 4, false),
            listed(shape, "old-tomb-theirs", 1, true),
            listed(shape, "fresh-tomb-theirs", 100, true),
        ];
        theirs.sort_by(|a, b| (a.leaf, &a.key).cmp(&(b.leaf, &b.key)));
        let all = [Node::ROOT.leaves(shape)];
        let d = compare_span(&store, &all, None, None, None, &theirs, Some(50));
        let mut fetch: Vec<&[u8]> = d.fetch.iter().map(|k| &k[..]).collect();
        fetch.sort();
        assert_eq!(
            fetch,
            vec![&b"fresh-tomb-theirs"[..], b"only-theirs", b"theirs-newer"]
        );
        let mut push: Vec<(&[u8], usize)> = d.push.iter().map(|(k, n)| (&k[..], *n)).collect();
        push.sort();
        assert_eq!(push, vec![(&b"only-ours"[..], 3), (b"ours-newer", 1)]);
    }
}
