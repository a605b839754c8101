//! Merkle summaries of key-hash ranges, for anti-entropy that compares only
//! the ring ranges two replicas share.
//!
//! Ring positions and Merkle leaves come from the same key hash, so a ring
//! range `(after, through]` covers a contiguous run of leaves: the leaves
//! inside it are summed from the index (no key is touched), the at most two
//! leaves it cuts are summed key by key. The cut leaves of every range asked
//! at once are visited in one pass, each lock shard scanned once.

use std::ops::RangeInclusive;

use super::{key_hash, Store, Summary};

/// An inclusive range of key hashes (`start..=end`, never wrapping).
pub type HashRange = RangeInclusive<u64>;

/// Whether `hash` lies in one of `ranges` (sorted, disjoint).
pub fn contains(ranges: &[HashRange], hash: u64) -> bool {
    let i = ranges.partition_point(|r| *r.end() < hash);
    ranges.get(i).is_some_and(|r| r.contains(&hash))
}

impl Store {
    /// The summary (digest sum and count, tombstones included) of the
    /// entries whose key hash lies in each of `ranges` (sorted, disjoint),
    /// in order.
    pub fn hash_range_summaries(&self, ranges: &[HashRange]) -> Vec<Summary> {
        let shape = self.index.shape();
        let bits = shape.leaf_bits();
        let leaf_first = |leaf: u64| leaf << (64 - bits);
        let leaf_last = |leaf: u64| leaf_first(leaf) | (u64::MAX >> bits);
        let mut out = vec![Summary::default(); ranges.len()];
        // Leaves a range only partly covers, with the range they belong to.
        let mut cut: Vec<(u64, usize)> = Vec::new();
        for (i, r) in ranges.iter().enumerate() {
            let (first, last) = (shape.leaf_of(*r.start()), shape.leaf_of(*r.end()));
            for leaf in first..=last {
                let whole = *r.start() <= leaf_first(leaf) && leaf_last(leaf) <= *r.end();
                if whole {
                    if let Some(s) = self.index.node(shape.depth, leaf) {
                        out[i] = out[i].combine(s);
                    }
                } else {
                    cut.push((leaf, i));
                }
            }
        }
        if cut.is_empty() {
            return out;
        }
        cut.sort_unstable();
        // A leaf can be cut by two neighbouring ranges: visit it once.
        let mut leaves: Vec<RangeInclusive<u64>> = cut.iter().map(|(l, _)| *l..=*l).collect();
        leaves.dedup();
        self.visit_slots(&leaves, |leaf, key, digest| {
            let hash = key_hash(key);
            let from = cut.partition_point(|(l, _)| *l < leaf);
            for (_, i) in cut[from..].iter().take_while(|(l, _)| *l == leaf) {
                if ranges[*i].contains(&hash) {
                    out[*i] = out[*i].combine(Summary {
                        hash: digest,
                        count: 1,
                    });
                }
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Entry, StoreOptions, Version};

    #[test]
    fn range_summaries_equal_the_sum_over_their_keys() {
        let store = Store::new(StoreOptions::default()).expect("store");
        let mut hashes = Vec::new();
        for i in 0..5000u64 {
            let key = format!("k{i}");
            let value = (i % 7 != 0).then(|| b"v".to_vec().into_boxed_slice());
            store
                .merge(
                    key.as_bytes(),
                    Entry {
                        expires_at: None,
                        version: Version::new(i + 1, 1),
                        value,
                    },
                )
                .expect("merge");
            let digest = crate::store::entry_digest(
                key.as_bytes(),
                Version::new(i + 1, 1),
                (i % 7 != 0).then_some(&b"v"[..]),
            );
            hashes.push((key_hash(key.as_bytes()), digest));
        }
        // Ranges cutting leaves anywhere, one inside a single leaf, one
        // covering whole leaves only, neighbours sharing a cut leaf.
        let leaf_span = 1u64 << (64 - store.shape().leaf_bits());
        let ranges: Vec<HashRange> = vec![
            0..=12345,
            12346..=(leaf_span * 900 + 17),
            (leaf_span * 1000)..=(leaf_span * 1000 + 7),
            (leaf_span * 10_000)..=u64::MAX / 3,
            (leaf_span * 40_000)..=(leaf_span * 40_100 - 1),
            (u64::MAX / 3 * 2)..=(u64::MAX / 3 * 2 + 5 * leaf_span),
            (u64::MAX - 99)..=u64::MAX,
        ];
        let mut sorted = ranges.clone();
        sorted.sort_by_key(|r| *r.start());
        let got = store.hash_range_summaries(&sorted);
        let everything = store.hash_range_summaries(&[0..=u64::MAX]);
        assert_eq!(everything[0], store.root());
        for (r, summary) in sorted.iter().zip(&got) {
            let expected = hashes
                .iter()
                .filter(|(h, _)| r.contains(h))
                .fold(Summary::default(), |s, (_, d)| {
                    s.combine(Summary { hash: *d, count: 1 })
                });
            assert_eq!(*summary, expected, "{r:?}");
        }
        // Splitting a range in two sums to the whole.
        let halves = store.hash_range_summaries(&[0..=u64::MAX / 2, u64::MAX / 2 + 1..=u64::MAX]);
        assert_eq!(halves[0].combine(halves[1]), store.root());
        assert!(contains(&sorted, 5) && !contains(&sorted, u64::MAX / 3 + 1));
        assert!(got.iter().filter(|s| s.count > 0).count() >= 3);
    }
}
