//! How an entry sits in the store's map: 48 bytes whether or not it has a
//! deadline, so keys without a time to live cost exactly what they did
//! before expiry existed.
//!
//! The version's timestamp carries two flag bits at the top (no stored
//! timestamp reaches them: they stand for the year 4199 and later, and the
//! clock's bound refuses anything past the wall clock plus the allowed
//! skew). With [`HAS_DEADLINE`] the deadline (unix ms, 8 bytes little
//! endian) is the last 8 bytes of the value's allocation; with
//! [`DEADLINE_ONLY`] as well, the entry is a tombstone whose allocation is
//! just the deadline (an expired value).

use std::num::NonZeroU64;

use super::{Entry, Version};

/// The value's allocation ends with the deadline.
const HAS_DEADLINE: u64 = 1 << 63;
/// A tombstone whose allocation holds only its deadline.
const DEADLINE_ONLY: u64 = 1 << 62;
const FLAGS: u64 = HAS_DEADLINE | DEADLINE_ONLY;
const DEADLINE_BYTES: usize = 8;
/// The largest timestamp a slot can hold.
pub(super) const MAX_STORED_HLC: u64 = DEADLINE_ONLY - 1;

/// An entry as the map holds it, with its cached digest.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// The timestamp with the flag bits.
    hlc: u64,
    node: u64,
    bytes: Option<Box<[u8]>>,
    /// The entry's digest (subtracted from the index on overwrite).
    pub(super) digest: u128,
}

/// A borrowed entry: what a listing sees of each slot without copying the
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryView<'a> {
    /// The version.
    pub version: Version,
    /// The value; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// The deadline, if any.
    pub expires_at: Option<NonZeroU64>,
}

impl EntryView<'_> {
    /// Whether this is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// An owned copy.
    pub fn to_entry(&self) -> Entry {
        Entry {
            version: self.version,
            value: self.value.map(Box::from),
            expires_at: self.expires_at,
        }
    }
}

impl Slot {
    /// Packs `entry` (its timestamp at most [`MAX_STORED_HLC`], which the
    /// caller checks).
    #[inline]
    pub(super) fn new(entry: Entry, digest: u128) -> Self {
        debug_assert!(entry.version.hlc <= MAX_STORED_HLC);
        match entry.expires_at {
            None => Self {
                hlc: entry.version.hlc,
                node: entry.version.node,
                bytes: entry.value,
                digest,
            },
            Some(deadline) => Self::with_deadline(entry.version, entry.value, deadline, digest),
        }
    }

    #[cold]
    fn with_deadline(
        version: Version,
        value: Option<Box<[u8]>>,
        deadline: NonZeroU64,
        digest: u128,
    ) -> Self {
        let (flags, bytes) = match value {
            Some(value) => {
                let mut packed = Vec::with_capacity(value.len() + DEADLINE_BYTES);
                packed.extend_from_slice(&value);
                packed.extend_from_slice(&deadline.get().to_le_bytes());
                (HAS_DEADLINE, packed.into_boxed_slice())
            }
            None => (
                HAS_DEADLINE | DEADLINE_ONLY,
                Box::from(&deadline.get().to_le_bytes()[..]),
            ),
        };
        Self {
            hlc: version.hlc | flags,
            node: version.node,
            bytes: Some(bytes),
            digest,
        }
    }

    /// The version.
    #[inline]
    pub(super) fn version(&self) -> Version {
        Version::new(self.hlc & !FLAGS, self.node)
    }

    /// The value, expired or not; `None` for a tombstone.
    #[inline]
    pub(super) fn value(&self) -> Option<&[u8]> {
        let bytes = self.bytes.as_deref()?;
        match self.hlc & FLAGS {
            0 => Some(bytes),
            HAS_DEADLINE => bytes.get(..bytes.len().saturating_sub(DEADLINE_BYTES)),
            _ => None,
        }
    }

    /// Whether this is a tombstone (a delete, or an expired value).
    #[inline]
    pub(super) fn is_tombstone(&self) -> bool {
        self.value().is_none()
    }

    /// The deadline, if any.
    #[inline]
    pub(super) fn expires_at(&self) -> Option<NonZeroU64> {
        if self.hlc & HAS_DEADLINE == 0 {
            return None;
        }
        let bytes = self.bytes.as_deref()?;
        let tail = bytes.get(bytes.len().checked_sub(DEADLINE_BYTES)?..)?;
        let mut raw = [0u8; DEADLINE_BYTES];
        raw.copy_from_slice(tail);
        NonZeroU64::new(u64::from_le_bytes(raw))
    }

    /// Whether the entry has a deadline (a value's or an expired one's).
    #[inline]
    pub(super) fn has_deadline(&self) -> bool {
        self.hlc & HAS_DEADLINE != 0
    }

    /// Whether a value with a deadline is stored (live or expired).
    #[inline]
    pub(super) fn is_expiring_value(&self) -> bool {
        self.hlc & FLAGS == HAS_DEADLINE
    }

    /// A borrowed view of the entry.
    pub(super) fn view(&self) -> EntryView<'_> {
        EntryView {
            version: self.version(),
            value: self.value(),
            expires_at: self.expires_at(),
        }
    }

    /// The expired tombstone this entry becomes (see [`Entry::expired`]),
    /// without copying the value.
    pub(super) fn expired_entry(&self) -> Entry {
        Entry {
            version: self.version(),
            value: None,
            expires_at: self.expires_at(),
        }
    }

    /// A copy of the entry.
    pub(super) fn to_entry(&self) -> Entry {
        Entry {
            version: self.version(),
            value: self.value().map(Box::from),
            expires_at: self.expires_at(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_entry_packs_and_unpacks() {
        let d = NonZeroU64::new(1_900_000_000_123);
        let top = Version::new(MAX_STORED_HLC, u64::MAX);
        for version in [Version::new(7, 3), top] {
            for value in [Some(&b"value"[..]), Some(b""), None] {
                for expires_at in [None, d] {
                    let entry = Entry {
                        version,
                        value: value.map(Box::from),
                        expires_at,
                    };
                    let slot = Slot::new(entry.clone(), 42);
                    assert_eq!(slot.to_entry(), entry);
                    assert_eq!(slot.is_tombstone(), value.is_none());
                    assert_eq!(slot.is_expiring_value(), value.is_some() && d == expires_at);
                    assert_eq!(slot.digest, 42);
                }
            }
        }
        assert_eq!(std::mem::size_of::<Slot>(), 48);
    }
}
