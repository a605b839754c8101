//! Reads: single keys, prefixes and the Merkle leaves anti-entropy lists.
//! Each read takes one shard's read lock at a time.

use super::{key_hash, Entry, EntryView, Slot, Store, Version};

impl Store {
    /// Calls `f` with the live value of `key` (or `None`) under the shard's
    /// read lock, without copying the value.
    #[inline]
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        let loc = self.locate(key);
        let shard = self.shards[loc.shard].read();
        f(shard.get(key).and_then(|s| self.live_value(s)))
    }

    /// The slot's value unless it is a tombstone or has expired (the clock
    /// is read only for a value with a deadline).
    #[inline]
    pub(super) fn live_value<'s>(&self, slot: &'s Slot) -> Option<&'s [u8]> {
        if !slot.has_deadline() {
            return slot.value();
        }
        self.unexpired_value(slot)
    }

    /// [`Store::live_value`] of a slot with a deadline.
    fn unexpired_value<'s>(&self, slot: &'s Slot) -> Option<&'s [u8]> {
        let value = slot.value()?;
        if slot.expires_at().is_some_and(|d| d.get() <= self.now_ms()) {
            return None;
        }
        Some(value)
    }

    /// `key`'s deadline in unix milliseconds: `None` when the key is absent
    /// or expired, `Some(None)` when it has no time to live.
    pub fn deadline(&self, key: &[u8]) -> Option<Option<u64>> {
        let loc = self.locate(key);
        let shard = self.shards[loc.shard].read();
        let slot = shard.get(key)?;
        self.live_value(slot)?;
        Some(slot.expires_at().map(|d| d.get()))
    }

    /// A live key chosen at random (`RANDOMKEY`), or `None` when there is
    /// none: a random shard first, then a random entry of the first shard
    /// from there that holds a live one.
    pub fn random_key(&self) -> Option<Box<[u8]>> {
        use rand::Rng;
        if self.is_empty() {
            return None;
        }
        let mut rng = rand::rng();
        let first = rng.random_range(0..self.shards.len());
        for i in 0..self.shards.len() {
            let map = self.shards[(first + i) % self.shards.len()].read();
            let live: Vec<&[u8]> = map
                .iter()
                .filter(|(_, s)| self.live_value(s).is_some())
                .map(|(k, _)| k.as_slice())
                .collect();
            if !live.is_empty() {
                return Some(Box::from(live[rng.random_range(0..live.len())]));
            }
        }
        None
    }

    /// One page of `SCAN`: the live keys whose hash is at or after
    /// `cursor`, in key-hash order, about `count` of them (every key of the
    /// last hash taken is included), and the cursor of the next page (`0`
    /// when this was the last). Keys are ordered by their stable hash,
    /// which a write never changes, so a key present for a whole scan is
    /// returned by it, whatever else is written meanwhile (Redis'
    /// guarantee); a key written or deleted meanwhile may or may not be.
    /// The lock shards split the hash space in order, so a page reads one
    /// shard after another from the cursor's.
    pub fn scan_page(&self, cursor: u64, count: usize) -> (Vec<Box<[u8]>>, u64) {
        let count = count.max(1);
        let mut page: Vec<(u64, Box<[u8]>)> = Vec::new();
        let mut shard = (cursor >> (64 - self.shard_bits)) as usize;
        while shard < self.shards.len() && page.len() < count {
            let map = self.shards[shard].read();
            let mut here: Vec<(u64, &[u8])> = map
                .iter()
                .map(|(k, s)| (key_hash(k), k.as_slice(), s))
                .filter(|(hash, _, s)| *hash >= cursor && self.live_value(s).is_some())
                .map(|(hash, k, _)| (hash, k))
                .collect();
            here.sort_unstable();
            // Only what this page can take is copied out: the keys up to
            // `count`, and those sharing the last one's hash.
            let room = count - page.len();
            let take = here.get(room..).map_or(here.len(), |rest| {
                let last = here[room.saturating_sub(1)].0;
                room + rest.iter().take_while(|(h, _)| *h == last).count()
            });
            let more = here.len() > take;
            page.extend(here[..take].iter().map(|(h, k)| (*h, Box::from(*k))));
            if let Some((next, _)) = more.then(|| here[take]) {
                return (page.into_iter().map(|(_, k)| k).collect(), next);
            }
            shard += 1;
        }
        // Every shard from the cursor's on was read and the page is not
        // full, or it filled exactly at a shard's end: go on after its last
        // key (`0` once the hash space is done).
        let next = match page.last() {
            Some((hash, _)) if shard < self.shards.len() && *hash < u64::MAX => hash + 1,
            _ => 0,
        };
        (page.into_iter().map(|(_, k)| k).collect(), next)
    }

    /// A copy of the live value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get_with(key, |v| v.map(<[u8]>::to_vec))
    }

    /// Whether `key` has a live value.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.get_with(key, |v| v.is_some())
    }

    /// The stored entry for `key`, tombstones included; a value whose
    /// deadline has passed comes as its expired tombstone (what the expiry
    /// cycle turns it into).
    pub fn entry(&self, key: &[u8]) -> Option<Entry> {
        let loc = self.locate(key);
        self.shards[loc.shard].read().get(key).map(|s| {
            if !s.is_tombstone() && self.live_value(s).is_none() {
                s.expired_entry()
            } else {
                s.to_entry()
            }
        })
    }

    /// Live keys starting with `prefix`, sorted bytewise.
    pub fn scan(&self, prefix: &[u8]) -> Vec<Box<[u8]>> {
        let mut keys = self.collect_prefixed(prefix, |key, slot| {
            self.live_value(slot).map(|_| Box::from(key))
        });
        keys.sort_unstable();
        keys
    }

    /// A digest of the live and deleted entries whose keys start with
    /// `prefix`: SHA-256 over their (key, version, value) in key order.
    pub fn prefix_digest(&self, prefix: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut entries: Vec<(Box<[u8]>, u128)> =
            self.collect_prefixed(prefix, |key, slot| Some((Box::from(key), slot.digest)));
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut hasher = Sha256::new();
        for (_, digest) in entries {
            hasher.update(digest.to_le_bytes());
        }
        hasher.finalize().into()
    }

    /// `pick(key, slot)` for every entry whose key starts with `prefix`
    /// (tombstones included), one shard's read lock at a time, unordered.
    fn collect_prefixed<T>(
        &self,
        prefix: &[u8],
        pick: impl Fn(&[u8], &Slot) -> Option<T>,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let map = shard.read();
            out.extend(
                map.iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .filter_map(|(k, s)| pick(k, s)),
            );
        }
        out
    }

    /// The leaf a key belongs to.
    pub fn leaf_of_key(&self, key: &[u8]) -> u64 {
        self.locate(key).leaf
    }

    /// Every entry (tombstones included) in `leaf`, sorted by key.
    pub fn leaf_entries(&self, leaf: u64) -> Vec<(Box<[u8]>, Entry)> {
        let shape = self.index.shape();
        let shard = self.shards[self.shard_of_leaf(leaf)].read();
        let mut out: Vec<(Box<[u8]>, Entry)> = shard
            .iter()
            .filter(|(k, _)| shape.leaf_of(key_hash(k)) == leaf)
            .map(|(k, s)| (Box::from(k.as_slice()), s.to_entry()))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Versions (no values) of every entry in `leaf`, sorted by key:
    /// `(key, version, is_tombstone)`.
    pub fn leaf_versions(&self, leaf: u64) -> Vec<(Box<[u8]>, Version, bool)> {
        let shape = self.index.shape();
        let shard = self.shards[self.shard_of_leaf(leaf)].read();
        let mut out: Vec<(Box<[u8]>, Version, bool)> = shard
            .iter()
            .filter(|(k, _)| shape.leaf_of(key_hash(k)) == leaf)
            .map(|(k, s)| (Box::from(k.as_slice()), s.version(), s.is_tombstone()))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Calls `f(leaf, key, entry)` for every entry (tombstones included)
    /// whose Merkle leaf lies in one of `ranges` (inclusive leaf ranges,
    /// sorted and disjoint). Each lock shard the ranges touch is scanned once
    /// under its read lock; order within a shard is unspecified, shards come
    /// in leaf order. Out-of-range leaves are ignored.
    pub fn visit_leaves(
        &self,
        ranges: &[std::ops::RangeInclusive<u64>],
        mut f: impl FnMut(u64, &[u8], EntryView<'_>),
    ) {
        self.visit_leaf_slots(ranges, |leaf, key, slot| f(leaf, key, slot.view()));
    }

    /// [`Store::visit_leaves`] with each entry's digest instead.
    pub(super) fn visit_slots(
        &self,
        ranges: &[std::ops::RangeInclusive<u64>],
        mut f: impl FnMut(u64, &[u8], u128),
    ) {
        self.visit_leaf_slots(ranges, |leaf, key, slot| f(leaf, key, slot.digest));
    }

    fn visit_leaf_slots(
        &self,
        ranges: &[std::ops::RangeInclusive<u64>],
        mut f: impl FnMut(u64, &[u8], &Slot),
    ) {
        let shape = self.index.shape();
        let last_leaf = shape.leaf_count() - 1;
        let per_shard_bits = shape.leaf_bits() - self.shard_bits;
        let mut in_shard: Vec<std::ops::RangeInclusive<u64>> = Vec::new();
        // Leaves below `visited` have been scanned already.
        let mut visited = 0u64;
        let mut i = 0;
        while i < ranges.len() {
            let start = (*ranges[i].start()).max(visited);
            if start > *ranges[i].end() {
                i += 1;
                continue;
            }
            if start > last_leaf {
                break;
            }
            let shard = start >> per_shard_bits;
            let shard_last = ((shard + 1) << per_shard_bits) - 1;
            // The parts of ranges i.. that fall into this shard.
            in_shard.clear();
            while i < ranges.len() {
                let from = (*ranges[i].start()).max(start);
                if from > shard_last {
                    break;
                }
                in_shard.push(from..=(*ranges[i].end()).min(shard_last));
                if *ranges[i].end() > shard_last {
                    break; // continues in the next shard
                }
                i += 1;
            }
            let map = self.shards[shard as usize].read();
            for (key, slot) in map.iter() {
                let leaf = shape.leaf_of(key_hash(key));
                let pos = in_shard.partition_point(|r| *r.end() < leaf);
                if in_shard.get(pos).is_some_and(|r| r.contains(&leaf)) {
                    f(leaf, key, slot);
                }
            }
            drop(map);
            visited = shard_last + 1;
        }
    }
}
