//! What the store accepts as a key and a value: at most `max_value_bytes`
//! each (the largest bulk string a client may send, which replication and
//! anti-entropy are sized for) and, for a read-modify-write whose caller
//! needs the result on one line, no `\r` or `\n`. Client writes and every
//! repair path (MQTT changes, `PushEntries`, `FetchKeys` pulls) are held to
//! the same rule: [`EntryRule::check_remote`] is what `Store::merge` asks.

use super::refusals::Refusal;
use super::StoreError;

/// The entry rule of one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRule {
    /// Largest value in bytes (`0` = unlimited).
    pub max_value_bytes: u64,
}

impl EntryRule {
    /// Whether a value of `len` bytes is within the size limit.
    pub fn fits(&self, len: usize) -> bool {
        self.max_value_bytes == 0 || len as u64 <= self.max_value_bytes
    }

    /// Whether an entry from elsewhere obeys the rule a client write obeys:
    /// key and value each within `max_value_bytes` (a client cannot send
    /// a longer bulk string).
    pub fn check_remote(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), Refusal> {
        if !self.fits(key.len()) {
            return Err(Refusal::OversizedKey);
        }
        if value.is_some_and(|v| !self.fits(v.len())) {
            return Err(Refusal::OversizedValue);
        }
        Ok(())
    }

    /// Whether `added` may be joined to `old` (APPEND/PREPEND): the result
    /// must fit the size limit and, with `line_safe`, hold no line break.
    pub fn check_joined(
        &self,
        old: Option<&[u8]>,
        added: &[u8],
        line_safe: bool,
    ) -> Result<(), StoreError> {
        let len = old.map_or(0, <[u8]>::len) + added.len();
        if !self.fits(len) {
            return Err(StoreError::ValueTooLarge {
                limit: self.max_value_bytes,
            });
        }
        if line_safe && !(old.is_none_or(is_line_safe) && is_line_safe(added)) {
            return Err(StoreError::NotLineSafe);
        }
        Ok(())
    }
}

/// Whether `v` holds no `\r` or `\n`.
pub fn is_line_safe(v: &[u8]) -> bool {
    memchr::memchr2(b'\r', b'\n', v).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_values_respect_size_and_line_rules() {
        let rule = EntryRule { max_value_bytes: 4 };
        assert_eq!(rule.check_joined(Some(b"ab"), b"cd", true), Ok(()));
        assert_eq!(
            rule.check_joined(Some(b"ab"), b"cde", false),
            Err(StoreError::ValueTooLarge { limit: 4 })
        );
        assert_eq!(
            rule.check_joined(Some(b"a\n"), b"b", true),
            Err(StoreError::NotLineSafe)
        );
        assert_eq!(rule.check_joined(Some(b"a\n"), b"b", false), Ok(()));
        assert!(EntryRule { max_value_bytes: 0 }.fits(usize::MAX));
    }

    #[test]
    fn remote_entries_obey_the_client_size_caps() {
        let rule = EntryRule { max_value_bytes: 4 };
        assert_eq!(rule.check_remote(b"k", Some(b"1234")), Ok(()));
        assert_eq!(rule.check_remote(b"k", None), Ok(()));
        assert_eq!(rule.check_remote(b"", Some(b"")), Ok(()));
        assert_eq!(
            rule.check_remote(b"k", Some(b"12345")),
            Err(Refusal::OversizedValue)
        );
        assert_eq!(
            rule.check_remote(b"12345", None),
            Err(Refusal::OversizedKey)
        );
    }
}
