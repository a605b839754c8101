//! Subtrees, listing positions, and reading the store in listing order.
//!
//! Listings (digests or entries) go in `(leaf, key)` order. A subtree covers
//! a contiguous range of leaves, and a lock shard of the store covers a
//! contiguous range of leaves too, so a listing walks the requested ranges
//! one shard at a time: each step scans one shard once, sorts what it found,
//! and stops when the page is full. Pages resume after the last position
//! sent, so no state is kept between calls.

use std::ops::RangeInclusive;

use crate::proto;
use crate::store::hash_ranges::{self, HashRange};
use crate::store::{key_hash, Store, Summary, TreeShape, Version};

use super::convert::summary_from_proto;

/// One node of the Merkle tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    /// Level, 0 = root, `shape.depth` = leaves.
    pub level: u32,
    /// Index within the level.
    pub index: u64,
}

impl Node {
    /// The root.
    pub const ROOT: Node = Node { level: 0, index: 0 };

    /// A node, if it exists in `shape`.
    pub fn checked(shape: TreeShape, level: u32, index: u64) -> Option<Node> {
        (level <= shape.depth && index < shape.nodes_at(level)).then_some(Node { level, index })
    }

    /// The leaves below this node.
    pub fn leaves(self, shape: TreeShape) -> RangeInclusive<u64> {
        let shift = shape.bits_per_level() * (shape.depth - self.level.min(shape.depth));
        (self.index << shift)..=(((self.index + 1) << shift) - 1)
    }

    /// This node's children (empty for a leaf).
    pub fn children(self, shape: TreeShape) -> impl Iterator<Item = Node> {
        let fanout = if self.level < shape.depth {
            u64::from(shape.fanout)
        } else {
            0
        };
        let level = self.level + 1;
        let first = self.index * fanout;
        (first..first + fanout).map(move |index| Node { level, index })
    }

    /// Wire form, with an optional summary.
    pub fn to_proto(self, summary: Option<Summary>) -> proto::Subtree {
        proto::Subtree {
            level: self.level,
            index: self.index,
            summary: summary.map(super::convert::summary_to_proto),
        }
    }
}

/// A subtree from the wire: checked against `shape`.
pub fn subtree_from_proto(
    shape: TreeShape,
    p: &proto::Subtree,
) -> Result<(Node, Option<Summary>), String> {
    let node = Node::checked(shape, p.level, p.index)
        .ok_or_else(|| format!("no node {} at level {}", p.index, p.level))?;
    let summary = p
        .summary
        .as_ref()
        .map(summary_from_proto)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok((node, summary))
}

/// Checks that leaf ranges are sorted and disjoint.
pub fn sorted_disjoint(ranges: &[RangeInclusive<u64>]) -> bool {
    ranges.windows(2).all(|w| w[0].end() < w[1].start())
}

/// A point in listing order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Leaf.
    pub leaf: u64,
    /// Key.
    pub key: Box<[u8]>,
}

impl Position {
    /// Wire form.
    pub fn to_proto(&self) -> proto::Position {
        proto::Position {
            leaf: self.leaf,
            key: self.key.to_vec(),
        }
    }

    /// From the wire.
    pub fn from_proto(p: &proto::Position) -> Self {
        Position {
            leaf: p.leaf,
            key: p.key.clone().into_boxed_slice(),
        }
    }

    fn is_before(&self, leaf: u64, key: &[u8]) -> bool {
        (self.leaf, &*self.key) < (leaf, key)
    }
}

/// One entry as a listing sees it (the value stays in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its leaf.
    pub leaf: u64,
    /// Its key.
    pub key: Box<[u8]>,
    /// Its version.
    pub version: Version,
    /// Whether it is a tombstone.
    pub tombstone: bool,
    /// Length of its value (0 for a tombstone).
    pub value_len: usize,
}

impl Listed {
    /// Its position in listing order.
    pub fn position(&self) -> Position {
        Position {
            leaf: self.leaf,
            key: self.key.clone(),
        }
    }
}

/// Leaves per lock shard of `store`.
fn leaves_per_shard(store: &Store) -> u64 {
    (store.shape().leaf_count() / store.shard_count().max(1) as u64).max(1)
}

/// The parts of `ranges` (sorted, disjoint) that lie in the first shard
/// holding a leaf `>= from`, and the first leaf of the next shard.
fn next_chunk(
    ranges: &[RangeInclusive<u64>],
    from: u64,
    per_shard: u64,
) -> Option<(Vec<RangeInclusive<u64>>, u64)> {
    let i = ranges.partition_point(|r| *r.end() < from);
    let first = ranges.get(i)?;
    let start = (*first.start()).max(from);
    let shard_last = (start / per_shard + 1) * per_shard - 1;
    let chunk = ranges[i..]
        .iter()
        .map_while(|r| {
            let s = (*r.start()).max(start);
            (s <= shard_last).then(|| s..=(*r.end()).min(shard_last))
        })
        .filter(|r| r.start() <= r.end())
        .collect();
    Some((chunk, shard_last + 1))
}

/// Entries of one shard chunk strictly after `after` and at or before
/// `upto`, in listing order.
fn list_chunk(
    store: &Store,
    chunk: &[RangeInclusive<u64>],
    after: Option<&Position>,
    upto: Option<&Position>,
    hashes: Option<&[HashRange]>,
) -> Vec<Listed> {
    let mut out = Vec::new();
    store.visit_leaves(chunk, |leaf, key, entry| {
        if after.is_some_and(|p| !p.is_before(leaf, key)) {
            return;
        }
        if hashes.is_some_and(|h| !hash_ranges::contains(h, key_hash(key))) {
            return;
        }
        if upto.is_some_and(|p| p.is_before(leaf, key)) {
            return;
        }
        out.push(Listed {
            leaf,
            key: key.into(),
            version: entry.version,
            tombstone: entry.is_tombstone(),
            value_len: entry.value.as_ref().map_or(0, |v| v.len()),
        });
    });
    out.sort_unstable_by(|a, b| (a.leaf, &a.key).cmp(&(b.leaf, &b.key)));
    out
}

/// One page of a listing: entries in `ranges` after `after`, in listing
/// order, until adding the next one would pass `budget` bytes (as measured
/// by `size`; a page holds at least one entry when any remain). Returns the
/// page and whether more entries remain. `hashes`: only keys whose hash
/// lies in one of these (sorted, disjoint) ranges.
pub fn collect_page(
    store: &Store,
    ranges: &[RangeInclusive<u64>],
    hashes: Option<&[HashRange]>,
    after: Option<&Position>,
    budget: usize,
    size: impl Fn(&Listed) -> usize,
) -> (Vec<Listed>, bool) {
    let per_shard = leaves_per_shard(store);
    let mut from = after.map_or(0, |p| p.leaf);
    let mut out = Vec::new();
    let mut bytes = 0usize;
    // At most one step per shard.
    for _ in 0..=store.shard_count() {
        let Some((chunk, next)) = next_chunk(ranges, from, per_shard) else {
            break;
        };
        for item in list_chunk(store, &chunk, after, None, hashes) {
            let s = size(&item);
            if !out.is_empty() && bytes.saturating_add(s) > budget {
                return (out, true);
            }
            bytes = bytes.saturating_add(s);
            out.push(item);
        }
        from = next;
    }
    (out, false)
}

/// One step of a walk over `ranges`: the entries of the first shard that
/// holds a leaf `>= from_leaf`, strictly after `after` and at or before
/// `upto` (no bound when `None`), in listing order; plus the leaf where the
/// next step starts. `None` when the walk is over.
pub fn next_batch(
    store: &Store,
    ranges: &[RangeInclusive<u64>],
    hashes: Option<&[HashRange]>,
    after: Option<&Position>,
    upto: Option<&Position>,
    from_leaf: u64,
) -> Option<(Vec<Listed>, u64)> {
    let from = from_leaf.max(after.map_or(0, |p| p.leaf));
    if upto.is_some_and(|p| from > p.leaf) {
        return None;
    }
    let (chunk, next) = next_chunk(ranges, from, leaves_per_shard(store))?;
    Some((list_chunk(store, &chunk, after, upto, hashes), next))
}

/// Calls `f` with the entries in `ranges` strictly after `after` and at or
/// before `upto` (no bound when `None`), one shard at a time, each batch in
/// listing order.
pub fn for_each_between<E>(
    store: &Store,
    ranges: &[RangeInclusive<u64>],
    hashes: Option<&[HashRange]>,
    after: Option<&Position>,
    upto: Option<&Position>,
    mut f: impl FnMut(Vec<Listed>) -> Result<(), E>,
) -> Result<(), E> {
    let mut from = 0;
    // At most one step per shard.
    for _ in 0..=store.shard_count() {
        let Some((batch, next)) = next_batch(store, ranges, hashes, after, upto, from) else {
            break;
        };
        f(batch)?;
        from = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreOptions, WriteOp};

    fn store(shape: TreeShape, keys: usize) -> Store {
        let s = Store::new(StoreOptions {
            shape,
            ..Default::default()
        })
        .expect("store");
        for i in 0..keys {
            let k = format!("key{i}");
            s.apply_local(WriteOp::Set {
                key: k.as_bytes(),
                value: b"value",
            })
            .expect("set");
        }
        s
    }

    #[test]
    fn node_geometry() {
        let shape = TreeShape {
            fanout: 16,
            depth: 4,
        };
        assert_eq!(Node::ROOT.leaves(shape), 0..=65_535);
        let n = Node { level: 2, index: 3 };
        assert_eq!(n.leaves(shape), 768..=1023);
        let kids: Vec<Node> = n.children(shape).collect();
        assert_eq!(kids.len(), 16);
        assert_eq!(
            kids[0],
            Node {
                level: 3,
                index: 48
            }
        );
        assert_eq!(Node { level: 4, index: 9 }.children(shape).count(), 0);
        assert!(Node::checked(shape, 5, 0).is_none());
        assert!(Node::checked(shape, 1, 16).is_none());
    }

    #[test]
    fn pages_cover_everything_once_in_order() {
        for shape in [
            TreeShape {
                fanout: 2,
                depth: 1,
            },
            TreeShape {
                fanout: 4,
                depth: 3,
            },
            TreeShape::DEFAULT,
        ] {
            let s = store(shape, 700);
            let ranges = vec![Node::ROOT.leaves(shape)];
            let mut after: Option<Position> = None;
            let mut seen = Vec::new();
            for _ in 0..10_000 {
                let (page, more) =
                    collect_page(&s, &ranges, None, after.as_ref(), 300, |l| l.key.len());
                assert!(!page.is_empty() || !more);
                if let Some(last) = page.last() {
                    after = Some(last.position());
                }
                seen.extend(page);
                if !more {
                    break;
                }
            }
            assert_eq!(seen.len(), 700);
            assert!(seen
                .windows(2)
                .all(|w| (w[0].leaf, &w[0].key) < (w[1].leaf, &w[1].key)));
        }
    }

    #[test]
    fn between_respects_bounds_and_ranges() {
        let shape = TreeShape::DEFAULT;
        let s = store(shape, 2000);
        let ranges = vec![100..=9000, 20_000..=20_100, 40_000..=65_535];
        let mut all = Vec::new();
        for_each_between::<()>(&s, &ranges, None, None, None, |b| {
            all.extend(b);
            Ok(())
        })
        .expect("visit");
        assert!(all
            .iter()
            .all(|l| ranges.iter().any(|r| r.contains(&l.leaf))));
        let a = all[10].position();
        let b = all[50].position();
        let mut mid = Vec::new();
        for_each_between::<()>(&s, &ranges, None, Some(&a), Some(&b), |x| {
            mid.extend(x);
            Ok(())
        })
        .expect("visit");
        assert_eq!(mid, all[11..=50].to_vec());
    }
}
