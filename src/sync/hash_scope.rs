//! Key-hash ranges on the wire: what range-scoped anti-entropy (the
//! partitioned cluster's) compares and lists instead of whole subtrees.

use std::ops::RangeInclusive;

use crate::proto;
use crate::store::hash_ranges::HashRange;
use crate::store::TreeShape;

/// Most ranges one call carries.
pub const MAX_RANGES_PER_CALL: usize = 65_536;

/// Checked ranges from the wire: each `start <= end`, sorted, not
/// overlapping, at most [`MAX_RANGES_PER_CALL`].
pub fn ranges_from_proto(wire: &[proto::HashRange]) -> Result<Vec<HashRange>, String> {
    if wire.len() > MAX_RANGES_PER_CALL {
        return Err(format!(
            "at most {MAX_RANGES_PER_CALL} hash ranges per call, got {}",
            wire.len()
        ));
    }
    let ranges: Vec<HashRange> = wire.iter().map(|r| r.start..=r.end).collect();
    if ranges.iter().any(|r| r.start() > r.end()) {
        return Err("a hash range ends before it starts".into());
    }
    if !ranges.windows(2).all(|w| w[0].end() < w[1].start()) {
        return Err("hash ranges must be sorted and must not overlap".into());
    }
    Ok(ranges)
}

/// Ranges for the wire.
pub fn ranges_to_proto(ranges: &[HashRange]) -> Vec<proto::HashRange> {
    ranges
        .iter()
        .map(|r| proto::HashRange {
            start: *r.start(),
            end: *r.end(),
        })
        .collect()
}

/// The Merkle leaves `ranges` (sorted, disjoint) touch, as sorted,
/// disjoint leaf ranges (neighbours that share a leaf merged).
pub fn leaf_spans(shape: TreeShape, ranges: &[HashRange]) -> Vec<RangeInclusive<u64>> {
    let mut out: Vec<RangeInclusive<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        let (first, last) = (shape.leaf_of(*r.start()), shape.leaf_of(*r.end()));
        match out.last_mut() {
            Some(prev) if *prev.end() + 1 >= first => *prev = *prev.start()..=last.max(*prev.end()),
            _ => out.push(first..=last),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ranges_are_checked_and_leaf_spans_merge() {
        let ok = [
            proto::HashRange { start: 1, end: 5 },
            proto::HashRange { start: 6, end: 9 },
        ];
        assert_eq!(ranges_from_proto(&ok).expect("ok"), vec![1..=5, 6..=9]);
        let backwards = [proto::HashRange { start: 5, end: 1 }];
        assert!(ranges_from_proto(&backwards).is_err());
        let overlapping = [
            proto::HashRange { start: 1, end: 5 },
            proto::HashRange { start: 5, end: 9 },
        ];
        assert!(ranges_from_proto(&overlapping).is_err());
        let shape = TreeShape::DEFAULT; // 16 leaf bits
        let leaf = 1u64 << 48;
        let spans = leaf_spans(shape, &[0..=10, 11..=leaf + 3, 5 * leaf..=(7 * leaf - 1)]);
        assert_eq!(spans, vec![0..=1, 5..=6]);
    }
}
