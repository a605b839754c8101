//! Forgetting a key this node no longer replicates (the partitioned
//! cluster's cleanup): the entry goes without a tombstone, so nothing is
//! deleted anywhere else.

use super::{Store, StoreError, Version};

impl Store {
    /// Removes `key` from this node only, if it still holds `version` (a
    /// newer write since keeps it). Logged like a collected tombstone, so a
    /// restart does not bring it back. Returns whether it was removed.
    pub fn forget_if_version(&self, key: &[u8], version: Version) -> Result<bool, StoreError> {
        let at = self.locate(key);
        let mut map = self.shards[at.shard].write();
        if map.get(key).is_none_or(|slot| slot.version() != version) {
            return Ok(false);
        }
        if let Some(log) = self.log.get() {
            log.forget(key)?;
        }
        Ok(self.remove_slot(&mut map, at.leaf, key))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Entry, Store, StoreOptions, Version};

    #[test]
    fn forgets_only_the_version_it_was_told() {
        let store = Store::new(StoreOptions::default()).expect("store");
        let put = |hlc| {
            store
                .merge(
                    b"k",
                    Entry {
                        expires_at: None,
                        version: Version::new(hlc, 1),
                        value: Some(b"v".to_vec().into_boxed_slice()),
                    },
                )
                .expect("merge");
        };
        put(5);
        assert!(!store
            .forget_if_version(b"k", Version::new(4, 1))
            .expect("forget"));
        assert!(store.contains(b"k"));
        assert!(store
            .forget_if_version(b"k", Version::new(5, 1))
            .expect("forget"));
        assert!(store.entry(b"k").is_none(), "no tombstone either");
        assert_eq!(store.root().count, 0);
        assert!(!store
            .forget_if_version(b"absent", Version::new(5, 1))
            .expect("forget"));
    }
}
