//! Entries that come from elsewhere: another replica's (merged by
//! last-writer-wins), the storage engine's at start-up (restored) and the
//! change log's (replayed). Every one is held to the same rules
//! ([`Store::admit`]): a version beyond the clock's bound, or a key or value
//! longer than a client may send, is refused and counted, never stored.

use super::{Entry, MergeOutcome, Prior, Refusal, Slot, Store, StoreError, Summary};

/// Last-writer-wins: whether `incoming` replaces `current`. A newer
/// version wins; at the same version only the expired form of a value
/// (its tombstone, same version and deadline) replaces it, so a replica
/// that expired a key first and one that has not yet agree once they meet.
fn replaces(incoming: &Entry, current: &Slot) -> bool {
    let version = current.version();
    incoming.version > version
        || (incoming.version == version
            && incoming.is_tombstone()
            && !current.is_tombstone()
            && incoming.expires_at.is_some()
            && incoming.expires_at == current.expires_at())
}

impl Store {
    /// Whether an entry from elsewhere may be stored (counted when not);
    /// an admitted version is observed by the clock, one wall-clock read
    /// for both.
    fn admit(&self, key: &[u8], entry: &Entry) -> Result<(), Refusal> {
        let verdict = self
            .entry_rule
            .check_remote(key, entry.value.as_deref())
            .and_then(|()| {
                if self.clock.observe(entry.version.hlc) {
                    Ok(())
                } else {
                    Err(Refusal::FutureVersion)
                }
            });
        if let Err(refusal) = verdict {
            self.refusals.count(refusal);
        }
        verdict
    }

    /// Merges a remote entry by last-writer-wins. Idempotent; the same set of
    /// merges in any order leaves every replica in the same state. An entry
    /// that breaks the store's rules is refused ([`MergeOutcome::Refused`]).
    pub fn merge(&self, key: &[u8], entry: Entry) -> Result<MergeOutcome, StoreError> {
        self.merge_observed(key, entry).map(|(outcome, _)| outcome)
    }

    /// [`Store::merge`], also telling whether `key` held a live value
    /// just before (what a partitioned DEL counts).
    pub fn merge_observed(
        &self,
        key: &[u8],
        entry: Entry,
    ) -> Result<(MergeOutcome, bool), StoreError> {
        if let Err(refusal) = self.admit(key, &entry) {
            return Ok((MergeOutcome::Refused(refusal), false));
        }
        // A value whose deadline has passed arrives as what it has become
        // everywhere: its expired tombstone.
        let entry = if entry.value.is_some() && entry.is_expired_at(self.now_ms()) {
            entry.expired()
        } else {
            entry
        };
        let loc = self.locate(key);
        let mut shard = self.shards[loc.shard].write();
        let slot = shard.get(key);
        let was_live = slot.is_some_and(|s| !s.is_tombstone());
        if slot.is_some_and(|s| !replaces(&entry, s)) {
            return Ok((MergeOutcome::Stale, was_live));
        }
        let prior = Prior::of(key, slot);
        self.write_slot(&mut shard, loc, key, entry, prior, true, true)?;
        Ok((MergeOutcome::Applied, was_live))
    }

    /// Loads an entry recovered from disk: like [`Store::merge`] but not
    /// written back to the log and not subject to the memory limit. An
    /// entry beyond the clock's bound (a poisoned data directory) is left
    /// out and counted, as a replica's would be; the disk keeps it until
    /// the key is written again.
    pub fn restore(&self, key: &[u8], entry: Entry) {
        let Some(entry) = self.admit_recovered(key, entry) else {
            return;
        };
        self.clock.restore(entry.version.hlc);
        let loc = self.locate(key);
        let mut shard = self.shards[loc.shard].write();
        let slot = shard.get(key);
        if slot.is_some_and(|s| !replaces(&entry, s)) {
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
        match entry.map(|e| self.admit_recovered(key, e)) {
            Some(None) => {}
            Some(Some(entry)) => {
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

    /// The version rule for entries read back from this node's own disk
    /// (sizes were checked when they were written): `None` when the entry
    /// lies beyond the clock's bound — counted, and kept for re-stamping
    /// when `restamp_future_versions` is on.
    fn admit_recovered(&self, key: &[u8], entry: Entry) -> Option<Entry> {
        if self.clock.within_bound(entry.version.hlc) {
            return Some(entry);
        }
        self.refusals.count(Refusal::FutureVersion);
        let digest = entry.digest(key);
        let mut left_out = self.left_out.lock();
        *left_out = left_out.combine(Summary {
            hash: digest,
            count: 1,
        });
        drop(left_out);
        if let Some(kept) = &self.recovered_ahead {
            let mut kept = kept.lock();
            // Restore and replay may both hold the key: the last one read
            // is the newest (replay follows restore).
            kept.retain(|(k, _)| k.as_ref() != key);
            kept.push((key.into(), entry));
        }
        None
    }

    /// The summary of the recovered entries left out for lying beyond the
    /// clock's bound: the root combined with it is the summary of what the
    /// disk held (the clean-shutdown check compares that).
    pub fn left_out_on_recovery(&self) -> Summary {
        *self.left_out.lock()
    }

    /// Writes every recovered entry that lay beyond the clock's bound
    /// again, with a fresh version from this node's clock (its value, or
    /// a tombstone), through the durable log once it is attached: the
    /// operator's way out of a poisoned data directory
    /// (`--restamp-future-versions`). Call it at start-up, before clients
    /// connect. Returns how many were re-stamped.
    pub fn restamp_recovered(&self) -> Result<usize, StoreError> {
        let Some(kept) = &self.recovered_ahead else {
            return Ok(0);
        };
        let entries = std::mem::take(&mut *kept.lock());
        let mut restamped = 0;
        for (key, entry) in entries {
            let loc = self.locate(&key);
            let mut shard = self.shards[loc.shard].write();
            self.stamp_and_write(&mut shard, loc, &key, entry.value, entry.expires_at, false)?;
            restamped += 1;
        }
        Ok(restamped)
    }
}
