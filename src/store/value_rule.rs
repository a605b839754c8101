//! What the store accepts as a value: at most `max_value_bytes` (the
//! largest value a client may send, which replication and anti-entropy
//! are sized for) and, for a read-modify-write whose caller needs the
//! result on one line, no `\r` or `\n`. The client path and the repair
//! paths check values with the same rule.

use super::StoreError;

/// The value rule of one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueRule {
    /// Largest value in bytes (`0` = unlimited).
    pub max_value_bytes: u64,
}

impl ValueRule {
    /// Whether a value of `len` bytes is within the size limit.
    pub fn fits(&self, len: usize) -> bool {
        self.max_value_bytes == 0 || len as u64 <= self.max_value_bytes
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
        let rule = ValueRule { max_value_bytes: 4 };
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
        assert!(ValueRule { max_value_bytes: 0 }.fits(usize::MAX));
    }
}
