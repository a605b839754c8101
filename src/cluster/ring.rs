//! Consistent hashing with virtual nodes.
//!
//! Every member places `vnodes` tokens on a 64-bit ring: token `i` of
//! member `m` is `xxh3_64_with_seed(m, i)`, so every node that knows the
//! same members builds the same ring, whatever order it learned them in.
//! A key (hashed with the store's stable [`key_hash`]) belongs to the
//! first token at or after its hash, clockwise; its replicas are the
//! first `replication_factor` distinct members from there. Adding or
//! removing one member moves only the keys next to that member's tokens:
//! about 1/N of them.
//!
//! Lookups are a binary search over the sorted tokens plus a short walk;
//! they allocate nothing.

use crate::store::key_hash;

pub use crate::config::MAX_REPLICATION_FACTOR;

/// One token: a point on the ring and the member that placed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Token {
    point: u64,
    member: u32,
}

/// The ring of one membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    /// Member node ids, sorted and distinct.
    members: Vec<String>,
    /// Every member's tokens, sorted by point.
    tokens: Vec<Token>,
}

impl Ring {
    /// The ring of `members` (node ids; duplicates and order do not
    /// matter) with `vnodes` tokens each (at least one).
    pub fn new<I, S>(members: I, vnodes: u32) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut members: Vec<String> = members.into_iter().map(Into::into).collect();
        members.sort_unstable();
        members.dedup();
        let vnodes = vnodes.max(1);
        let mut tokens = Vec::with_capacity(members.len() * vnodes as usize);
        for (index, member) in members.iter().enumerate() {
            let member_index = u32::try_from(index).unwrap_or(u32::MAX);
            for i in 0..vnodes {
                tokens.push(Token {
                    point: xxhash_rust::xxh3::xxh3_64_with_seed(member.as_bytes(), u64::from(i)),
                    member: member_index,
                });
            }
        }
        tokens.sort_unstable();
        Self { members, tokens }
    }

    /// The members, sorted.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The replicas of `key`: the first `replication_factor` distinct
    /// members clockwise from its hash (`0`, or at least the member count,
    /// = every member: the full-replica cluster), primary first. A factor
    /// above [`MAX_REPLICATION_FACTOR`] (and below the member count) is
    /// served as that maximum.
    pub fn replicas(&self, key: &[u8], replication_factor: usize) -> Replicas<'_> {
        self.replicas_of_hash(key_hash(key), replication_factor)
    }

    /// [`Ring::replicas`] for an already hashed key.
    pub fn replicas_of_hash(&self, hash: u64, replication_factor: usize) -> Replicas<'_> {
        let members = self.members.len();
        let every = replication_factor == 0 || replication_factor >= members;
        let wanted = if every {
            members
        } else {
            replication_factor.min(MAX_REPLICATION_FACTOR)
        };
        let start = self.tokens.partition_point(|t| t.point < hash);
        Replicas {
            ring: self,
            next: start,
            walked: 0,
            wanted,
            found: [0; MAX_REPLICATION_FACTOR],
            found_len: 0,
            all: every,
        }
    }

    /// The share of the hash space each member replicates with
    /// `replication_factor` (1: the share it is primary for), in member
    /// order; the shares sum to the replication factor (capped at the
    /// member count).
    pub fn ownership(&self, replication_factor: usize) -> Vec<f64> {
        let mut share = vec![0f64; self.members.len()];
        if self.members.len() == 1 {
            share[0] = 1.0;
            return share;
        }
        let Some(last) = self.tokens.last() else {
            return share;
        };
        let mut previous = last.point;
        for token in &self.tokens {
            // The arc (previous, point] belongs to this token's replicas.
            let arc = token.point.wrapping_sub(previous) as f64 / 18_446_744_073_709_551_616.0;
            for member in self.replicas_of_hash(token.point, replication_factor) {
                if let Ok(i) = self.members.binary_search_by(|m| m.as_str().cmp(member)) {
                    share[i] += arc;
                }
            }
            previous = token.point;
        }
        share
    }
}

/// One token range of the ring and who replicates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRange<'a> {
    /// The range starts after this point (the previous token)…
    pub after: u64,
    /// …and ends at this point (this range's token), inclusive; the first
    /// range wraps around zero.
    pub through: u64,
    /// Its replicas, primary first.
    pub replicas: Vec<&'a str>,
}

impl Ring {
    /// Every token range in ring order, with its replicas.
    pub fn ranges(&self, replication_factor: usize) -> Vec<TokenRange<'_>> {
        let Some(last) = self.tokens.last() else {
            return Vec::new();
        };
        let mut previous = last.point;
        self.tokens
            .iter()
            .map(|token| {
                let range = TokenRange {
                    after: previous,
                    through: token.point,
                    replicas: self
                        .replicas_of_hash(token.point, replication_factor)
                        .collect(),
                };
                previous = token.point;
                range
            })
            .collect()
    }
}

/// The replicas of one key, primary first; allocates nothing.
#[derive(Debug, Clone)]
pub struct Replicas<'a> {
    ring: &'a Ring,
    next: usize,
    walked: usize,
    wanted: usize,
    found: [u32; MAX_REPLICATION_FACTOR],
    found_len: usize,
    /// Every member is wanted: the primary, then the others in member
    /// order, without the distinctness array.
    all: bool,
}

impl Replicas<'_> {
    /// The next replica as an index into [`Ring::members`].
    pub fn next_index(&mut self) -> Option<usize> {
        let ring = self.ring;
        if self.all {
            // The full-replica case: every member, starting from the primary.
            if self.walked >= self.wanted {
                return None;
            }
            let primary = ring
                .tokens
                .get(self.next % ring.tokens.len().max(1))?
                .member as usize;
            let member = (primary + self.walked) % ring.members.len();
            self.walked += 1;
            return Some(member);
        }
        while self.found_len < self.wanted && self.walked < ring.tokens.len() {
            let token = ring.tokens[self.next % ring.tokens.len()];
            self.next += 1;
            self.walked += 1;
            if self.found[..self.found_len].contains(&token.member) {
                continue;
            }
            self.found[self.found_len] = token.member;
            self.found_len += 1;
            return Some(token.member as usize);
        }
        None
    }
}

impl<'a> Iterator for Replicas<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let ring = self.ring;
        self.next_index().map(|i| ring.members[i].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node{i}")).collect()
    }

    fn keys(n: usize) -> impl Iterator<Item = Vec<u8>> {
        (0..n).map(|i| format!("key:{i:08}").into_bytes())
    }

    #[test]
    fn every_key_has_rf_distinct_replicas() {
        let ring = Ring::new(names(5), 256);
        for key in keys(10_000) {
            let replicas: Vec<&str> = ring.replicas(&key, 3).collect();
            assert_eq!(replicas.len(), 3);
            let mut distinct = replicas.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), 3, "{replicas:?}");
        }
    }

    #[test]
    fn replication_factor_zero_or_above_the_members_means_every_member() {
        let ring = Ring::new(names(4), 16);
        for rf in [0, 4, 9] {
            let mut all: Vec<&str> = ring.replicas(b"k", rf).collect();
            all.sort_unstable();
            assert_eq!(all, ["node0", "node1", "node2", "node3"], "rf {rf}");
        }
        assert_eq!(
            Ring::new(Vec::<String>::new(), 8).replicas(b"k", 3).count(),
            0
        );
        assert_eq!(
            Ring::new(["solo"], 8).replicas(b"k", 3).collect::<Vec<_>>(),
            ["solo"]
        );
    }

    #[test]
    fn the_same_members_in_any_order_give_the_same_ring() {
        let a = Ring::new(["b", "a", "c", "a"], 64);
        let b = Ring::new(["c", "b", "a"], 64);
        assert_eq!(a, b);
        for key in keys(1_000) {
            assert!(a.replicas(&key, 2).eq(b.replicas(&key, 2)));
        }
    }

    /// Keys whose primary differs between two rings, as a share.
    fn moved(before: &Ring, after: &Ring, n: usize) -> f64 {
        let moved = keys(n)
            .filter(|k| before.replicas(k, 1).next() != after.replicas(k, 1).next())
            .count();
        moved as f64 / n as f64
    }

    #[test]
    fn adding_or_removing_a_node_moves_about_one_nth_of_the_keys() {
        for n in [3usize, 5, 10] {
            let before = Ring::new(names(n), 256);
            let grown = Ring::new(names(n + 1), 256);
            let share = moved(&before, &grown, 50_000);
            let bound = 1.2 / (n + 1) as f64;
            assert!(share <= bound, "join of node {n}: {share:.3} > {bound:.3}");
            let shrunk = Ring::new(names(n - 1), 256);
            let share = moved(&before, &shrunk, 50_000);
            let bound = 1.2 / n as f64;
            assert!(
                share <= bound,
                "leave of one of {n}: {share:.3} > {bound:.3}"
            );
        }
    }

    #[test]
    fn ten_nodes_with_256_vnodes_store_within_ten_percent_of_the_mean() {
        // What a node stores is its replica share (RF 3): within ±10 % of
        // the mean. The primary share alone spreads wider (±1/sqrt(256),
        // about 6 % standard deviation: up to ~12 % here), as with any
        // randomly placed vnodes.
        let ring = Ring::new(names(10), 256);
        let mean = 3.0 / 10.0;
        let shares = ring.ownership(3);
        for (member, share) in ring.members().iter().zip(&shares) {
            assert!(
                (share - mean).abs() <= 0.1 * mean,
                "{member} stores {share:.4} of the keys (mean {mean})"
            );
        }
        let total: f64 = shares.iter().sum();
        assert!((total - 3.0).abs() < 1e-9, "{total}");
        let primary: f64 = ring.ownership(1).iter().sum();
        assert!((primary - 1.0).abs() < 1e-9, "{primary}");
        // Counting real keys agrees with the arcs.
        let mut counts = [0usize; 10];
        for key in keys(100_000) {
            for m in ring.replicas(&key, 3) {
                counts[ring.members().iter().position(|x| x == m).expect("member")] += 1;
            }
        }
        for (count, share) in counts.iter().zip(&shares) {
            let measured = *count as f64 / 100_000.0;
            assert!((measured - share).abs() < 0.01, "{measured} vs {share}");
        }
    }
}
