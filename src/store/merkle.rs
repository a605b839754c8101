//! The Merkle index: a fixed-shape tree addressed by the hash of the key.
//!
//! The tree has `fanout^depth` leaves; a key lives in the leaf given by the
//! top bits of its stable hash, so a write touches exactly one root-to-leaf
//! path. A node's summary is the wrapping sum of its entries' 128-bit digests
//! plus their count. Sums are additive: a write adds `new - old` along its
//! path with lock-free atomics — no rebuild, no allocation — and the same
//! set of entries gives the same root on every node, in any order.
//!
//! Only the wide levels are kept as counters: the leaves and the levels
//! above them down to [`MIN_STORED_NODES`] nodes (with the default shape,
//! levels 3 and 4). The narrow levels near the root are summed from the
//! widest of those on read. Every write on every core would otherwise add to
//! the root and its children, and those few cache lines would move between
//! cores on each write; reading the root instead sums a few thousand
//! counters, once per anti-entropy round or HASH.

use std::sync::atomic::{AtomicU64, Ordering};

use super::error::StoreError;

/// The shape of the tree, exchanged by peers before they compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeShape {
    /// Children per inner node (a power of two, 2..=256).
    pub fanout: u32,
    /// Levels below the root (leaves are at level `depth`).
    pub depth: u32,
}

impl TreeShape {
    /// The default shape: fan-out 16, depth 4 (65,536 leaves).
    pub const DEFAULT: TreeShape = TreeShape {
        fanout: 16,
        depth: 4,
    };

    /// Checks the shape is usable: fanout a power of two in 2..=256,
    /// depth 1..=8, at most 2^24 leaves.
    pub fn validate(self) -> Result<Self, StoreError> {
        let ok_fanout = self.fanout.is_power_of_two() && (2..=256).contains(&self.fanout);
        let ok_depth = (1..=8).contains(&self.depth);
        if !ok_fanout || !ok_depth || self.bits_per_level() * self.depth > 24 {
            return Err(StoreError::InvalidShape {
                fanout: self.fanout,
                depth: self.depth,
            });
        }
        Ok(self)
    }

    /// log2(fanout).
    pub fn bits_per_level(self) -> u32 {
        self.fanout.trailing_zeros()
    }

    /// Bits of the key hash that address a leaf.
    pub fn leaf_bits(self) -> u32 {
        self.bits_per_level() * self.depth
    }

    /// Number of leaves.
    pub fn leaf_count(self) -> u64 {
        1u64 << self.leaf_bits()
    }

    /// Number of nodes at `level` (0 = root).
    pub fn nodes_at(self, level: u32) -> u64 {
        1u64 << (self.bits_per_level() * level)
    }

    /// The leaf a key hash falls into.
    pub fn leaf_of(self, key_hash: u64) -> u64 {
        key_hash >> (64 - self.leaf_bits())
    }

    /// The ancestor at `level` of a leaf.
    pub fn ancestor(self, leaf: u64, level: u32) -> u64 {
        leaf >> (self.bits_per_level() * (self.depth - level))
    }
}

/// The summary of one tree node. The 128-bit hash is two 64-bit lanes
/// (low, high), each the wrapping sum of the entries' digest lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Wrapping sum of the digests of the entries below.
    pub hash: u128,
    /// Number of entries below (tombstones included).
    pub count: u64,
}

impl Summary {
    /// Adds two summaries the way the index does: the hash as two
    /// independent 64-bit lanes, each a wrapping sum, and the counts.
    pub fn combine(self, other: Summary) -> Summary {
        let lo = (self.hash as u64).wrapping_add(other.hash as u64);
        let hi = ((self.hash >> 64) as u64).wrapping_add((other.hash >> 64) as u64);
        Summary {
            hash: ((hi as u128) << 64) | lo as u128,
            count: self.count + other.count,
        }
    }

    /// The hash as 16 little-endian bytes (wire form).
    pub fn hash_bytes(&self) -> [u8; 16] {
        self.hash.to_le_bytes()
    }

    /// The hash as 32 lowercase hex digits.
    pub fn hash_hex(&self) -> String {
        self.hash_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// One tree node's counters. The 128-bit hash is kept as two independent
/// 64-bit lanes (each a wrapping sum): still additive, and each lane is one
/// atomic add.
#[derive(Default)]
struct Cell {
    lo: AtomicU64,
    hi: AtomicU64,
    count: AtomicU64,
}

impl Cell {
    fn add(&self, digest: u128) {
        self.lo.fetch_add(digest as u64, Ordering::Relaxed);
        self.hi.fetch_add((digest >> 64) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn sub(&self, digest: u128) {
        self.lo.fetch_sub(digest as u64, Ordering::Relaxed);
        self.hi.fetch_sub((digest >> 64) as u64, Ordering::Relaxed);
        self.count.fetch_sub(1, Ordering::Relaxed);
    }

    fn replace(&self, old: u128, new: u128) {
        self.lo
            .fetch_add((new as u64).wrapping_sub(old as u64), Ordering::Relaxed);
        self.hi.fetch_add(
            ((new >> 64) as u64).wrapping_sub((old >> 64) as u64),
            Ordering::Relaxed,
        );
    }

    fn summary(&self) -> Summary {
        let lo = self.lo.load(Ordering::Relaxed) as u128;
        let hi = self.hi.load(Ordering::Relaxed) as u128;
        Summary {
            hash: (hi << 64) | lo,
            count: self.count.load(Ordering::Relaxed),
        }
    }

    fn reset(&self) {
        self.lo.store(0, Ordering::Relaxed);
        self.hi.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
    }
}

/// The narrowest level kept as counters has at least this many nodes (or
/// is the leaf level); narrower levels are summed from it on read.
pub const MIN_STORED_NODES: u64 = 1024;

/// The incrementally maintained Merkle index.
pub struct MerkleIndex {
    shape: TreeShape,
    /// The first level kept as counters; the ones above are computed.
    first_stored: u32,
    /// `levels[i]` holds the `fanout^(first_stored + i)` nodes of level
    /// `first_stored + i`, down to the leaves.
    levels: Vec<Box<[Cell]>>,
}

impl std::fmt::Debug for MerkleIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleIndex")
            .field("shape", &self.shape)
            .field("root", &self.root())
            .finish()
    }
}

impl MerkleIndex {
    /// An empty index of the given (validated) shape.
    pub fn new(shape: TreeShape) -> Result<Self, StoreError> {
        let shape = shape.validate()?;
        let first_stored = (0..=shape.depth)
            .find(|&l| shape.nodes_at(l) >= MIN_STORED_NODES)
            .unwrap_or(shape.depth);
        let levels = (first_stored..=shape.depth)
            .map(|l| {
                (0..shape.nodes_at(l))
                    .map(|_| Cell::default())
                    .collect::<Vec<_>>()
                    .into_boxed_slice()
            })
            .collect();
        Ok(Self {
            shape,
            first_stored,
            levels,
        })
    }

    /// The tree's shape.
    pub fn shape(&self) -> TreeShape {
        self.shape
    }

    /// The stored counters a write to `leaf` changes.
    fn path(&self, leaf: u64) -> impl Iterator<Item = &Cell> {
        (self.first_stored..=self.shape.depth).map(move |l| {
            &self.levels[(l - self.first_stored) as usize][self.shape.ancestor(leaf, l) as usize]
        })
    }

    /// Adds a new entry's digest along its leaf's path.
    pub fn insert(&self, leaf: u64, digest: u128) {
        self.path(leaf).for_each(|c| c.add(digest));
    }

    /// Removes an entry's digest along its leaf's path.
    pub fn remove(&self, leaf: u64, digest: u128) {
        self.path(leaf).for_each(|c| c.sub(digest));
    }

    /// Replaces an entry's digest (an overwrite) along its leaf's path.
    pub fn replace(&self, leaf: u64, old: u128, new: u128) {
        self.path(leaf).for_each(|c| c.replace(old, new));
    }

    /// The root summary.
    pub fn root(&self) -> Summary {
        self.summary_of(0, 0)
    }

    /// The summary of node `index` at `level`, if it exists.
    pub fn node(&self, level: u32, index: u64) -> Option<Summary> {
        (level <= self.shape.depth && index < self.shape.nodes_at(level))
            .then(|| self.summary_of(level, index))
    }

    /// The `fanout` child summaries of node `index` at `level` (which must be
    /// above the leaves).
    pub fn children(&self, level: u32, index: u64) -> Option<Vec<Summary>> {
        if level >= self.shape.depth || index >= self.shape.nodes_at(level) {
            return None;
        }
        let fanout = u64::from(self.shape.fanout);
        Some(
            (index * fanout..(index + 1) * fanout)
                .map(|child| self.summary_of(level + 1, child))
                .collect(),
        )
    }

    /// The children of several nodes of `level` at once, in order (the
    /// `fanout` children of each index in turn), or `None` if any index is
    /// not a node above the leaves. The children's level is summed at most
    /// once for the whole call, so a request naming the same narrow-level
    /// node many times costs no more than one pass over the stored level.
    pub fn children_of_many(&self, level: u32, indexes: &[u64]) -> Option<Vec<Summary>> {
        if level >= self.shape.depth
            || indexes
                .iter()
                .any(|&index| index >= self.shape.nodes_at(level))
        {
            return None;
        }
        let fanout = u64::from(self.shape.fanout);
        let child_level = level + 1;
        let computed = (child_level < self.first_stored).then(|| self.level_summaries(child_level));
        let mut out = Vec::with_capacity(indexes.len() * fanout as usize);
        for &index in indexes {
            for child in index * fanout..(index + 1) * fanout {
                out.push(match &computed {
                    Some(level) => level[child as usize],
                    None => self.summary_of(child_level, child),
                });
            }
        }
        Some(out)
    }

    /// Every node's summary at a level above the first stored one, in one
    /// pass over that stored level.
    fn level_summaries(&self, level: u32) -> Vec<Summary> {
        let shift = self.shape.bits_per_level() * (self.first_stored - level);
        let mut out = vec![Summary::default(); self.shape.nodes_at(level) as usize];
        for (i, cell) in self.levels[0].iter().enumerate() {
            let node = &mut out[i >> shift];
            *node = node.combine(cell.summary());
        }
        out
    }

    /// The summary of an existing node: its counter when the level is
    /// stored, else the sum of its descendants on the first stored level.
    fn summary_of(&self, level: u32, index: u64) -> Summary {
        let stored = &self.levels[level.saturating_sub(self.first_stored) as usize];
        if level >= self.first_stored {
            return stored[index as usize].summary();
        }
        let span = 1usize << (self.shape.bits_per_level() * (self.first_stored - level));
        let start = index as usize * span;
        stored[start..start + span]
            .iter()
            .map(Cell::summary)
            .fold(Summary::default(), Summary::combine)
    }

    /// Empties the index.
    pub fn clear(&self) {
        self.levels
            .iter()
            .flat_map(|l| l.iter())
            .for_each(Cell::reset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::entry::{entry_digest, key_hash, Version};

    /// Every node's summary, level by level (computed levels included).
    fn snapshot(index: &MerkleIndex) -> Vec<Vec<Summary>> {
        let shape = index.shape();
        (0..=shape.depth)
            .map(|l| {
                (0..shape.nodes_at(l))
                    .map(|i| index.node(l, i).expect("node"))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn shape_validation() {
        assert!(TreeShape::DEFAULT.validate().is_ok());
        assert!(TreeShape {
            fanout: 3,
            depth: 2
        }
        .validate()
        .is_err());
        assert!(TreeShape {
            fanout: 16,
            depth: 0
        }
        .validate()
        .is_err());
        assert!(TreeShape {
            fanout: 256,
            depth: 4
        }
        .validate()
        .is_err());
        assert_eq!(TreeShape::DEFAULT.leaf_count(), 65_536);
    }

    #[test]
    fn one_write_changes_exactly_depth_plus_one_nodes() {
        let index = MerkleIndex::new(TreeShape::DEFAULT).expect("shape");
        for i in 0..1000u32 {
            let k = format!("k{i}");
            index.insert(
                TreeShape::DEFAULT.leaf_of(key_hash(k.as_bytes())),
                entry_digest(k.as_bytes(), Version::new(1, 1), Some(b"v")),
            );
        }
        let before = snapshot(&index);
        let leaf = TreeShape::DEFAULT.leaf_of(key_hash(b"new"));
        index.insert(leaf, entry_digest(b"new", Version::new(2, 1), Some(b"x")));
        let after = snapshot(&index);
        let changed: usize = before
            .iter()
            .zip(&after)
            .map(|(b, a)| b.iter().zip(a).filter(|(x, y)| x != y).count())
            .sum();
        assert_eq!(changed, TreeShape::DEFAULT.depth as usize + 1);
    }

    #[test]
    fn insertion_order_does_not_matter_and_removal_restores() {
        let shape = TreeShape {
            fanout: 4,
            depth: 3,
        };
        let a = MerkleIndex::new(shape).expect("shape");
        let b = MerkleIndex::new(shape).expect("shape");
        let items: Vec<(u64, u128)> = (0..200u32)
            .map(|i| {
                let k = i.to_string();
                (
                    shape.leaf_of(key_hash(k.as_bytes())),
                    entry_digest(k.as_bytes(), Version::new(i as u64, 7), Some(b"v")),
                )
            })
            .collect();
        items.iter().for_each(|(l, d)| a.insert(*l, *d));
        items.iter().rev().for_each(|(l, d)| b.insert(*l, *d));
        assert_eq!(a.root(), b.root());
        assert_eq!(snapshot(&a), snapshot(&b));
        let empty = MerkleIndex::new(shape).expect("shape").root();
        items.iter().for_each(|(l, d)| a.remove(*l, *d));
        assert_eq!(a.root(), empty);
    }

    #[test]
    fn replace_equals_remove_then_insert() {
        let shape = TreeShape::DEFAULT;
        let a = MerkleIndex::new(shape).expect("shape");
        let b = MerkleIndex::new(shape).expect("shape");
        let leaf = 1234;
        a.insert(leaf, 5);
        b.insert(leaf, 5);
        a.replace(leaf, 5, u128::MAX);
        b.remove(leaf, 5);
        b.insert(leaf, u128::MAX);
        assert_eq!(snapshot(&a), snapshot(&b));
    }

    #[test]
    fn children_sum_to_their_parent() {
        let shape = TreeShape {
            fanout: 16,
            depth: 2,
        };
        let index = MerkleIndex::new(shape).expect("shape");
        for i in 0..500u64 {
            index.insert(
                i % shape.leaf_count(),
                (i as u128) * 0x9e37_79b9_7f4a_7c15_f39c,
            );
        }
        let kids = index.children(0, 0).expect("children");
        let sum = kids
            .iter()
            .fold(Summary::default(), |acc, s| acc.combine(*s));
        assert_eq!(sum, index.root());
        assert!(index.children(2, 0).is_none());
        assert!(index.children(0, 1).is_none());
    }

    #[test]
    fn computed_levels_agree_with_the_stored_ones() {
        for shape in [
            TreeShape::DEFAULT,
            TreeShape {
                fanout: 256,
                depth: 3,
            },
            TreeShape {
                fanout: 2,
                depth: 8,
            },
        ] {
            let index = MerkleIndex::new(shape).expect("shape");
            for i in 0..3000u32 {
                let k = format!("key:{i}");
                index.insert(
                    shape.leaf_of(key_hash(k.as_bytes())),
                    entry_digest(k.as_bytes(), Version::new(u64::from(i), 3), Some(b"v")),
                );
            }
            assert_eq!(index.root().count, 3000, "{shape:?}");
            for level in 0..shape.depth {
                for node in [0, shape.nodes_at(level) / 2, shape.nodes_at(level) - 1] {
                    let kids = index.children(level, node).expect("children");
                    assert_eq!(kids.len(), shape.fanout as usize);
                    let sum = kids.iter().fold(Summary::default(), |a, s| a.combine(*s));
                    assert_eq!(
                        Some(sum),
                        index.node(level, node),
                        "{shape:?} {level}/{node}"
                    );
                }
            }
            assert!(index.node(shape.depth + 1, 0).is_none());
            assert!(index.node(0, 1).is_none());
            // Many nodes at once give the same children as one by one.
            for level in 0..shape.depth {
                let last = shape.nodes_at(level) - 1;
                let asked = [last, 0, last / 2, 0];
                let one_by_one: Vec<Summary> = asked
                    .iter()
                    .flat_map(|&i| index.children(level, i).expect("children"))
                    .collect();
                assert_eq!(index.children_of_many(level, &asked), Some(one_by_one));
                assert!(index.children_of_many(level, &[0, last + 1]).is_none());
            }
            assert!(index.children_of_many(shape.depth, &[0]).is_none());
        }
    }
}
