//! Redis-style glob patterns for `KEYS` and `SCAN … MATCH` (RESP).
//!
//! Supported: `*` (any run), `?` (one byte), `[abc]`, `[^abc]`, `[a-z]`
//! and `\x` (a literal `x`), matched byte by byte like Redis'
//! `stringmatchlen`. Matching is iterative (no recursion) and O(len ×
//! pattern) in the worst case.

/// The literal bytes a pattern starts with (before its first special
/// character): every matching key has this prefix, so a scan can be
/// narrowed to it before filtering.
pub fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pattern, p, text[t]),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == text[t]).then_some(p + 2),
            Some(&c) => (c == text[t]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                // Let the last `*` swallow one more byte and retry.
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&b| b == b'*')
}

/// Matches one byte against the class starting at `pattern[open] == b'['`;
/// returns the pattern index after the class when it matches.
fn class(pattern: &[u8], open: usize, byte: u8) -> Option<usize> {
    let mut i = open + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    loop {
        match pattern.get(i) {
            // An unterminated class ends at the pattern's end (as Redis).
            None => break,
            Some(b']') => {
                i += 1;
                break;
            }
            Some(b'\\') if i + 1 < pattern.len() => {
                hit |= pattern[i + 1] == byte;
                i += 2;
            }
            Some(&lo) if pattern.get(i + 1) == Some(&b'-') && i + 2 < pattern.len() => {
                let hi = pattern[i + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                hit |= (lo..=hi).contains(&byte);
                i += 3;
            }
            Some(&c) => {
                hit |= c == byte;
                i += 1;
            }
        }
    }
    (hit != negate).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, t: &str) -> bool {
        matches(p.as_bytes(), t.as_bytes())
    }

    #[test]
    fn redis_glob_semantics() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("user:*", "user:1"));
        assert!(!m("user:*", "use"));
        assert!(m("*:1", "user:1"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b*", "xxbxxaxx"));
        assert!(m("exact", "exact"));
        assert!(!m("exact", "exactly"));
    }

    #[test]
    fn literal_prefix_stops_at_the_first_special_byte() {
        assert_eq!(literal_prefix(b"user:*"), b"user:");
        assert_eq!(literal_prefix(b"a?c"), b"a");
        assert_eq!(literal_prefix(b"[ab]"), b"");
        assert_eq!(literal_prefix(b"plain"), b"plain");
    }

    proptest! {
        #[test]
        fn arbitrary_patterns_never_panic(p in proptest::collection::vec(any::<u8>(), 0..24),
                                          t in proptest::collection::vec(any::<u8>(), 0..24)) {
            let _ = matches(&p, &t);
        }

        #[test]
        fn a_key_matches_its_own_escaped_form(t in "[a-z*?\\[\\]]{0,12}") {
            let escaped: String = t.chars().flat_map(|c| ['\\', c]).collect();
            prop_assert!(matches(escaped.as_bytes(), t.as_bytes()));
            prop_assert!(t.as_bytes().starts_with(literal_prefix(escaped.as_bytes())));
        }
    }
}
