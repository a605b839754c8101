//! Entries that come from elsewhere: another replica's (merged by
//! last-writer-wins), the storage engine's at start-up (restored) and the
//! change log's (replayed).

use super::{Entry, MergeOutcome, Prior, Store, StoreError};

impl Store {
    /// Merges a remote entry by last-writer-wins. Idempotent; the same set of
    /// merges in any order leaves every replica in the same state.
    pub fn merge(&self, key: &[u8], entry: Entry) -> Result<MergeOutcome, StoreError> {
        self.clock.observe(entry.version.hlc);
        let loc = self.locate(key);
        let mut shard = self.shards[loc.shard].write();
        let slot = shard.get(key);
        if slot.is_some_and(|s| s.entry.version >= entry.version) {
            return Ok(MergeOutcome::Stale);
        }
        let prior = Prior::of(key, slot);
        self.write_slot(&mut shard, loc, key, entry, prior, true, true)?;
        Ok(MergeOutcome::Applied)
    }

    /// Loads an entry recovered from disk: like [`Store::merge`] but not
    /// written back to the log and not subject to the memory limit.
    pub fn restore(&self, key: &[u8], entry: Entry) {
        self.clock.restore(entry.version.hlc);
        let loc = self.locate(key);
        let mut shard = self.shards[loc.shard].write();
        let slot = shard.get(key);
        if slot.is_some_and(|s| s.entry.version >= entry.version) {
            return;
        }
        let prior = Prior::of(key, slot);
        // Cannot fail: no log is consulted and no memory limit applies.
        let _ = self.write_slot(&mut shard, loc, key, entry, prior, false, false);
    }

    /// Replays a change read back from the change log: `Some(entry)`
    /// replaces whatever `key` holds, `None` drops the key entirely. The log
    /// holds changes in the order this store applied them, so no version
    /// comparison is made; like [`Store::restore`] nothing is logged again
    /// and no memory limit applies.
    pub fn replay(&self, key: &[u8], entry: Option<Entry>) {
        let loc = self.locate(key);
        let mut shard = self.shards[loc.shard].write();
        match entry {
            Some(entry) => {
                self.clock.restore(entry.version.hlc);
                let prior = Prior::of(key, shard.get(key));
                // Cannot fail: no log is consulted and no memory limit applies.
                let _ = self.write_slot(&mut shard, loc, key, entry, prior, false, false);
            }
            None => {
                self.remove_slot(&mut shard, loc.leaf, key);
            }
        }
    }
}
