//! The store: the single owner of a node's state.
//!
//! Entries live in hash-sharded maps behind per-shard locks (shard = top bits
//! of the key's stable hash, so a Merkle leaf never spans two shards). Every
//! mutation goes through [`Store::apply_local`] (a client write: stamps a new
//! version, returns the result and the changes to replicate) or
//! [`Store::merge`] (a remote entry: last-writer-wins, idempotent). Each
//! mutation updates the Merkle index and the durable log while the key's
//! shard lock is held, so per key the index and the log see writes in
//! version order.

mod entry;
mod entry_rule;
mod error;
mod expiry;
mod forget;
pub mod hash_ranges;
mod long_double;
mod merkle;
mod ops;
mod reads;
mod refusals;
mod remote;
mod slot;
mod tombstone_gc;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

pub use entry::{entry_digest, entry_digest_at, key_hash, node_number, Entry, Version};
pub use entry_rule::{is_line_safe, EntryRule};
pub use error::{LogError, StoreError};
pub use expiry::{run_expiry, ExpiryCursor};
pub use merkle::{MerkleIndex, Summary, TreeShape};
pub use ops::{ExpireWhen, SetWhen, Ttl, WriteOp, WriteResult};
pub use refusals::{Refusal, Refusals};
pub use slot::EntryView;
use slot::{Slot, MAX_STORED_HLC};
pub use tombstone_gc::{collect_tombstones, gc_interval};

use crate::clock::HybridClock;

/// Bytes of bookkeeping counted per entry on top of key and value length
/// when enforcing `memory_limit_mb` (map slot, version, digest, allocator).
pub const ENTRY_OVERHEAD_BYTES: u64 = 96;

/// A state change to replicate: the key and its new entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The key written.
    pub key: Box<[u8]>,
    /// Its new state (value or tombstone) and version.
    pub entry: Entry,
}

/// A durable home for entries, written under the key's shard lock.
pub trait EntryLog: Send + Sync + 'static {
    /// Records `key`'s new entry (value or tombstone).
    fn record(&self, key: &[u8], entry: &Entry) -> Result<(), StoreError>;
    /// Forgets `key` entirely (a garbage-collected tombstone, or a flush).
    fn forget(&self, key: &[u8]) -> Result<(), StoreError>;
}

/// A key and its entry.
type KeyedEntry = (Box<[u8]>, Entry);

/// How a store is set up.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The configured node id; versions carry its [`node_number`].
    pub node_id: String,
    /// Shape of the Merkle index.
    pub shape: TreeShape,
    /// How far ahead of the wall clock a remote version may drag the HLC.
    pub max_clock_skew_ms: u64,
    /// Refuse writes beyond this many bytes (0 = unlimited).
    pub memory_limit_bytes: u64,
    /// Largest value APPEND/PREPEND may produce (0 = unlimited).
    pub max_value_bytes: u64,
    /// Maintain the Merkle index (digest + path update on every write).
    /// Always `true` in a node; `false` exists only so benchmarks can
    /// measure what the index costs a write (`benches/merkle_index.rs`):
    /// without it the tree stays empty, so `HASH`, anti-entropy and entry
    /// counts are meaningless.
    pub merkle_index: bool,
    /// Keep entries recovered from disk whose version lies beyond the
    /// clock's bound, to be re-stamped with a fresh version once the log
    /// is attached ([`Store::restamp_recovered`]), instead of leaving
    /// them out.
    pub restamp_future_versions: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            node_id: "node1".into(),
            shape: TreeShape::DEFAULT,
            max_clock_skew_ms: 60_000,
            memory_limit_bytes: 0,
            max_value_bytes: 0,
            merkle_index: true,
            restamp_future_versions: false,
        }
    }
}

/// Keys up to this many bytes live inside the map's bucket; longer ones
/// spill to the heap. Inline keys save an allocation per key and, on every
/// lookup, the cache miss of following a pointer to compare the key
/// (`memcmp` was 12 % of a pipelined SET's CPU with boxed keys).
const INLINE_KEY_BYTES: usize = 24;

/// A stored key (32 bytes in the bucket: 24 inline, or a heap pointer).
type StoredKey = smallvec::SmallVec<[u8; INLINE_KEY_BYTES]>;

type Map = HashMap<StoredKey, Slot, foldhash::fast::RandomState>;

/// What a key held before a write (read during the caller's lookup, so the
/// write itself needs no second search for it).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Prior {
    /// Whether a value was stored (expired or not: the live-key count
    /// drops when the expiry cycle turns it into a tombstone).
    live: bool,
    /// Whether that value has a deadline (counted per shard for the
    /// expiry cycle).
    expiring: bool,
    /// Accounted bytes of the previous entry (0 when absent).
    cost: u64,
    /// The previous entry's cached digest (0 when absent or without an
    /// index).
    digest: u128,
}

impl Prior {
    fn of(key: &[u8], slot: Option<&Slot>) -> Self {
        slot.map_or_else(Prior::default, |s| {
            let value = s.value();
            Prior {
                live: value.is_some(),
                expiring: s.is_expiring_value(),
                cost: cost(key, value),
                digest: s.digest,
            }
        })
    }
}

/// A key's location: its hash, leaf and shard.
#[derive(Debug, Clone, Copy)]
struct Location {
    leaf: u64,
    shard: usize,
}

/// The key-value store with its Merkle index and clock.
pub struct Store {
    shards: Box<[RwLock<Map>]>,
    shard_bits: u32,
    index: MerkleIndex,
    clock: HybridClock,
    node_id: String,
    node: u64,
    live_keys: AtomicU64,
    /// Per shard: values with a deadline (the expiry cycle skips shards
    /// without any).
    expiring: Box<[AtomicU64]>,
    /// Per shard: a deadline at or before the earliest one of its values
    /// (`u64::MAX`: none); the expiry cycle scans a shard only once it has
    /// passed.
    next_deadline: Box<[AtomicU64]>,
    memory_used: AtomicU64,
    memory_limit: u64,
    entry_rule: EntryRule,
    refusals: Refusals,
    merkle_index: bool,
    log: std::sync::OnceLock<Arc<dyn EntryLog>>,
    /// Recovered entries beyond the clock's bound, kept for re-stamping
    /// (`None`: `restamp_future_versions` is off, they are left out).
    recovered_ahead: Option<parking_lot::Mutex<Vec<KeyedEntry>>>,
    /// The summary of every recovered entry left out for lying beyond the
    /// clock's bound: with the root, what the disk held.
    left_out: parking_lot::Mutex<Summary>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("node_id", &self.node_id)
            .field("keys", &self.len())
            .field("root", &self.root())
            .finish()
    }
}

/// Result of [`Store::merge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The remote entry was newer and replaced ours (or was new).
    Applied,
    /// We already had this version or a newer one.
    Stale,
    /// Not stored: the entry breaks the store's rules (counted in
    /// [`Store::refusals`]).
    Refused(Refusal),
}

impl Store {
    /// An empty store.
    pub fn new(options: StoreOptions) -> Result<Self, StoreError> {
        let index = MerkleIndex::new(options.shape)?;
        let shard_bits = index.shape().leaf_bits().min(8);
        let shards = (0..1usize << shard_bits)
            .map(|_| RwLock::new(Map::default()))
            .collect();
        let expiring = (0..1usize << shard_bits)
            .map(|_| AtomicU64::new(0))
            .collect();
        let next_deadline = (0..1usize << shard_bits)
            .map(|_| AtomicU64::new(u64::MAX))
            .collect();
        Ok(Self {
            shards,
            shard_bits,
            index,
            clock: HybridClock::new(options.max_clock_skew_ms),
            node: node_number(&options.node_id),
            node_id: options.node_id,
            live_keys: AtomicU64::new(0),
            expiring,
            next_deadline,
            memory_used: AtomicU64::new(0),
            memory_limit: options.memory_limit_bytes,
            entry_rule: EntryRule {
                max_value_bytes: options.max_value_bytes,
            },
            refusals: Refusals::default(),
            merkle_index: options.merkle_index,
            left_out: parking_lot::Mutex::new(Summary::default()),
            recovered_ahead: options
                .restamp_future_versions
                .then(|| parking_lot::Mutex::new(Vec::new())),
            log: std::sync::OnceLock::new(),
        })
    }

    /// Attaches the durable log every later mutation is recorded in (once;
    /// a second call is ignored and returns `false`).
    pub fn attach_log(&self, log: Arc<dyn EntryLog>) -> bool {
        self.log.set(log).is_ok()
    }

    /// Makes room for about `entries` more entries, spread over the shards,
    /// so a bulk load (start-up recovery) does not rehash as the maps grow.
    pub fn reserve(&self, entries: u64) {
        let per_shard = usize::try_from(entries)
            .unwrap_or(usize::MAX)
            .div_ceil(self.shards.len());
        for shard in self.shards.iter() {
            shard.write().reserve(per_shard);
        }
    }

    fn locate(&self, key: &[u8]) -> Location {
        let hash = key_hash(key);
        Location {
            leaf: self.index.shape().leaf_of(hash),
            shard: (hash >> (64 - self.shard_bits)) as usize,
        }
    }

    fn shard_of_leaf(&self, leaf: u64) -> usize {
        (leaf >> (self.index.shape().leaf_bits() - self.shard_bits)) as usize
    }

    /// The configured node id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The numeric node id carried in this node's versions.
    pub fn node_number(&self) -> u64 {
        self.node
    }

    /// Now, as deadlines are compared: the hybrid clock's physical time
    /// in unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.clock.physical_now_ms()
    }

    /// The node's hybrid logical clock.
    pub fn clock(&self) -> &HybridClock {
        &self.clock
    }

    /// What the store refused to take, by reason.
    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// Number of live (non-tombstone) keys.
    pub fn len(&self) -> u64 {
        self.live_keys.load(Ordering::Relaxed)
    }

    /// Whether there are no live keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate bytes held by entries (keys, values, bookkeeping).
    pub fn memory_used(&self) -> u64 {
        self.memory_used.load(Ordering::Relaxed)
    }

    /// Number of entries including tombstones.
    pub fn entry_count(&self) -> u64 {
        self.index.root().count
    }

    /// The tree shape.
    pub fn shape(&self) -> TreeShape {
        self.index.shape()
    }

    /// The root summary.
    pub fn root(&self) -> Summary {
        self.index.root()
    }

    /// The Merkle index (read-only view).
    pub fn index(&self) -> &MerkleIndex {
        &self.index
    }

    /// Number of lock shards (full-state exchange pages through them).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Applies a client write: stamps new versions, updates state, and
    /// returns the result plus the changes to replicate.
    pub fn apply_local(&self, op: WriteOp<'_>) -> Result<(WriteResult, Vec<Change>), StoreError> {
        let mut changes = Vec::new();
        let (result, _) = ops::apply(self, op, Some(&mut changes));
        result.map(|r| (r, changes))
    }

    /// Applies a client write like [`Store::apply_local`], pushing each
    /// change to `changes` as its key is written, or copying none out when
    /// `changes` is `None` (a node that does not replicate needs none).
    /// Returns the result and how many keys were written, also when the
    /// write failed part-way (MSET, FLUSH): those keys did change.
    pub fn apply_local_into(
        &self,
        op: WriteOp<'_>,
        changes: Option<&mut Vec<Change>>,
    ) -> (Result<WriteResult, StoreError>, usize) {
        ops::apply(self, op, changes)
    }

    /// Drops `key`'s entry entirely (index, memory and live-key accounts
    /// included); returns whether there was one. The caller holds the
    /// shard lock.
    fn remove_slot(&self, shard: &mut Map, leaf: u64, key: &[u8]) -> bool {
        let Some(slot) = shard.remove(key) else {
            return false;
        };
        if self.merkle_index {
            self.index.remove(leaf, slot.digest);
        }
        self.memory_used
            .fetch_sub(cost(key, slot.value()), Ordering::Relaxed);
        if !slot.is_tombstone() {
            self.live_keys.fetch_sub(1, Ordering::Relaxed);
            if slot.is_expiring_value() {
                self.expiring[self.shard_of_leaf(leaf)].fetch_sub(1, Ordering::Relaxed);
            }
        }
        true
    }

    /// Writes `entry` for `key`. The caller holds the shard lock, has
    /// decided the entry wins, and read `prior` in its own lookup.
    #[allow(clippy::too_many_arguments)]
    fn write_slot(
        &self,
        shard: &mut Map,
        loc: Location,
        key: &[u8],
        entry: Entry,
        prior: Prior,
        enforce_limit: bool,
        log_it: bool,
    ) -> Result<(), StoreError> {
        if entry.version.hlc > MAX_STORED_HLC {
            // Unreachable through the clock's bound (every way in checks
            // it); refused rather than stored with its top bits lost.
            self.refusals.count_clock_ahead();
            return Err(StoreError::ClockAhead {
                key: String::from_utf8_lossy(key).into_owned(),
                ahead_ms: crate::clock::physical_ms(entry.version.hlc)
                    .saturating_sub(crate::clock::wall_clock_ms()),
            });
        }
        let new_cost = cost(key, entry.value.as_deref());
        let old_cost = prior.cost;
        if enforce_limit
            && self.memory_limit > 0
            && new_cost > old_cost
            && !entry.is_tombstone()
            && self.memory_used() + (new_cost - old_cost) > self.memory_limit
        {
            return Err(StoreError::StorageFull);
        }
        if log_it {
            if let Some(log) = self.log.get() {
                log.record(key, &entry)?;
            }
        }
        let digest = match (self.merkle_index, entry.expires_at) {
            (false, _) => 0,
            (true, None) => entry_digest(key, entry.version, entry.value.as_deref()),
            (true, Some(_)) => entry.digest(key),
        };
        let is_live = !entry.is_tombstone();
        let was_live = prior.live;
        if entry.expires_at.is_some() || prior.expiring {
            self.count_expiring(loc.shard, &entry, prior.expiring);
        }
        match shard.get_mut(key) {
            Some(slot) => {
                if self.merkle_index {
                    self.index.replace(loc.leaf, prior.digest, digest);
                }
                *slot = Slot::new(entry, digest);
            }
            None => {
                if self.merkle_index {
                    self.index.insert(loc.leaf, digest);
                }
                shard.insert(StoredKey::from_slice(key), Slot::new(entry, digest));
            }
        }
        if new_cost >= old_cost {
            self.memory_used
                .fetch_add(new_cost - old_cost, Ordering::Relaxed);
        } else {
            self.memory_used
                .fetch_sub(old_cost - new_cost, Ordering::Relaxed);
        }
        match (was_live, is_live) {
            (false, true) => {
                self.live_keys.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                self.live_keys.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        Ok(())
    }
}

impl Store {
    /// Keeps the expiry cycle's per-shard accounts when a value with a
    /// deadline is written or replaced.
    #[cold]
    fn count_expiring(&self, shard: usize, entry: &Entry, was_expiring: bool) {
        let is_expiring = !entry.is_tombstone() && entry.expires_at.is_some();
        if is_expiring != was_expiring {
            let count = &self.expiring[shard];
            if is_expiring {
                count.fetch_add(1, Ordering::Relaxed);
            } else {
                count.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if let Some(deadline) = entry.expires_at.filter(|_| is_expiring) {
            self.next_deadline[shard].fetch_min(deadline.get(), Ordering::Relaxed);
        }
    }
}

fn cost(key: &[u8], value: Option<&[u8]>) -> u64 {
    (key.len() + value.map_or(0, <[u8]>::len)) as u64 + ENTRY_OVERHEAD_BYTES
}

#[cfg(test)]
mod bounded_tests;
#[cfg(test)]
mod expiry_tests;
#[cfg(test)]
mod tests;
