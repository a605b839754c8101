//! The change log's record format.
//!
//! Every change the store makes is appended to the change log as one
//! frame:
//!
//! ```text
//! u32 LE payload length | u32 LE checksum (low 32 bits of XXH3-64 of the payload) | payload
//! ```
//!
//! and the payload starts with a tag:
//!
//! * `1` put: `u16 LE key length | key | entry record` (the engine's record
//!   format, [`super::entry_record::entry_header`] followed by the value);
//! * `2` remove: `key` (a garbage-collected tombstone, dropped entirely);
//! * `3` high-water mark: `u64 LE` HLC timestamp versions must stay above.
//!
//! Frames are written back to back; a reader stops at the first frame that
//! is incomplete or fails its checksum and reports where (see
//! [`Frames::end`]).

use xxhash_rust::xxh3::xxh3_64;

use super::entry_record::{self, EncodeError};
use crate::store::Entry;

/// Bytes before a frame's payload.
pub const FRAME_HEADER_BYTES: usize = 8;
/// Largest payload a frame may declare: a maximal key and value with room
/// to spare. A larger declared length is damage, not a record.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 31;

const TAG_PUT: u8 = 1;
const TAG_REMOVE: u8 = 2;
const TAG_HIGH_WATER: u8 = 3;

/// One decoded change, borrowing from the log's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRecord<'a> {
    /// The key's new entry, as the engine's encoded record.
    Put {
        /// The user key.
        key: &'a [u8],
        /// The encoded entry ([`entry_record::decode_entry`] reads it).
        record: &'a [u8],
    },
    /// The key is gone entirely.
    Remove {
        /// The user key.
        key: &'a [u8],
    },
    /// Versions must stay above this HLC timestamp after a restart.
    HighWater(u64),
}

/// Appends the frame of `key`'s new `entry` to `out`.
pub fn encode_put(out: &mut Vec<u8>, key: &[u8], entry: &Entry) -> Result<(), EncodeError> {
    if key.len() > entry_record::MAX_KEY_BYTES {
        return Err(EncodeError::KeyTooLong(key.len()));
    }
    let header = entry_record::entry_header(entry)?;
    let value = entry.value.as_deref().unwrap_or_default();
    if 3 + key.len() + header.len() + value.len() > MAX_PAYLOAD_BYTES {
        return Err(EncodeError::ValueTooLong(value.len()));
    }
    let key_len = (key.len() as u16).to_le_bytes();
    frame(out, &[&[TAG_PUT], &key_len, key, &header, value]);
    Ok(())
}

/// Appends the frame removing `key` to `out`.
pub fn encode_remove(out: &mut Vec<u8>, key: &[u8]) -> Result<(), EncodeError> {
    if key.len() > entry_record::MAX_KEY_BYTES {
        return Err(EncodeError::KeyTooLong(key.len()));
    }
    frame(out, &[&[TAG_REMOVE], key]);
    Ok(())
}

/// Appends a high-water-mark frame to `out`.
pub fn encode_high_water(out: &mut Vec<u8>, hlc: u64) {
    frame(out, &[&[TAG_HIGH_WATER], &hlc.to_le_bytes()]);
}

/// Writes one frame whose payload is the concatenation of `parts`.
fn frame(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    debug_assert!(len <= MAX_PAYLOAD_BYTES, "checked by the encoders");
    let start = out.len();
    out.reserve(FRAME_HEADER_BYTES + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    for part in parts {
        out.extend_from_slice(part);
    }
    let sum = checksum(&out[start + FRAME_HEADER_BYTES..]);
    out[start + 4..start + 8].copy_from_slice(&sum.to_le_bytes());
}

fn checksum(payload: &[u8]) -> u32 {
    xxh3_64(payload) as u32
}

/// Why reading stopped before the end of the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEnd {
    /// Every byte was a complete, valid frame.
    Clean,
    /// The rest looks like an interrupted append: the last frame is cut
    /// short, or only zero bytes follow. Nothing after it was valid.
    Torn {
        /// Where the valid frames end.
        offset: usize,
    },
    /// A frame in the middle is damaged (bad checksum, impossible length or
    /// unknown content) and more bytes follow it.
    Damaged {
        /// Where the damaged frame starts.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
}

/// Iterates the frames of a log segment's bytes.
#[derive(Debug)]
pub struct Frames<'a> {
    bytes: &'a [u8],
    offset: usize,
    end: FrameEnd,
    done: bool,
}

impl<'a> Frames<'a> {
    /// Reads frames from the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            end: FrameEnd::Clean,
            done: false,
        }
    }

    /// Where and why iteration stopped (meaningful once it returned `None`).
    pub fn end(&self) -> FrameEnd {
        self.end
    }

    /// Ends iteration at a frame that is not whole and valid. It is a torn
    /// tail when `torn_if_last`, or when only zero bytes follow from `after`
    /// on: what an interrupted or partly written-back append leaves.
    /// Anything else is damage.
    fn stop(
        &mut self,
        reason: &'static str,
        torn_if_last: bool,
        after: usize,
    ) -> Option<LogRecord<'a>> {
        let rest = self.bytes.get(after..).unwrap_or_default();
        self.done = true;
        self.end = if torn_if_last || rest.iter().all(|b| *b == 0) {
            FrameEnd::Torn {
                offset: self.offset,
            }
        } else {
            FrameEnd::Damaged {
                offset: self.offset,
                reason,
            }
        };
        None
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = LogRecord<'a>;

    fn next(&mut self) -> Option<LogRecord<'a>> {
        if self.done {
            return None;
        }
        let rest = &self.bytes[self.offset..];
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let Some((header, body)) = rest.split_at_checked(FRAME_HEADER_BYTES) else {
            return self.stop("cut-off frame header", true, self.bytes.len());
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let sum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let frame_end = self.offset + FRAME_HEADER_BYTES + len;
        if len == 0 || len > MAX_PAYLOAD_BYTES {
            // Zeros here (a page not written back) are a tear; the length
            // itself cannot be trusted, so the zeros must run from here.
            return self.stop("impossible frame length", false, self.offset);
        }
        let Some(payload) = body.get(..len) else {
            // Declared longer than what is there: an append cut short.
            return self.stop("cut-off frame", true, self.bytes.len());
        };
        if checksum(payload) != sum {
            // A torn append when nothing but zeros follows: its length
            // reached the disk before all of its payload did.
            return self.stop("checksum mismatch", false, frame_end);
        }
        let Some(record) = parse_payload(payload) else {
            return self.stop("unknown record", false, frame_end);
        };
        self.offset += FRAME_HEADER_BYTES + len;
        Some(record)
    }
}

fn parse_payload(payload: &[u8]) -> Option<LogRecord<'_>> {
    let (&tag, rest) = payload.split_first()?;
    match tag {
        TAG_PUT => {
            let (len, rest) = rest.split_at_checked(2)?;
            let key_len = u16::from_le_bytes([len[0], len[1]]) as usize;
            let (key, record) = rest.split_at_checked(key_len)?;
            Some(LogRecord::Put { key, record })
        }
        TAG_REMOVE => Some(LogRecord::Remove { key: rest }),
        TAG_HIGH_WATER => {
            let bytes: [u8; 8] = rest.try_into().ok()?;
            Some(LogRecord::HighWater(u64::from_le_bytes(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::test_entry;

    fn entry(hlc: u64, value: Option<&[u8]>) -> Entry {
        test_entry(hlc, 7, value)
    }

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        encode_put(&mut out, b"alpha", &entry(10, Some(b"one\r\n\0"))).expect("put");
        encode_put(&mut out, b"beta", &entry(11, None)).expect("tombstone");
        encode_remove(&mut out, b"beta").expect("remove");
        encode_high_water(&mut out, 99);
        out
    }

    #[test]
    fn frames_round_trip() {
        let bytes = sample();
        let mut frames = Frames::new(&bytes);
        let records: Vec<_> = frames.by_ref().collect();
        assert_eq!(frames.end(), FrameEnd::Clean);
        assert_eq!(records.len(), 4);
        let LogRecord::Put { key, record } = records[0] else {
            panic!("not a put: {:?}", records[0]);
        };
        assert_eq!(key, b"alpha");
        assert_eq!(
            entry_record::decode_entry(record).expect("decode"),
            entry(10, Some(b"one\r\n\0"))
        );
        let LogRecord::Put { key, record } = records[1] else {
            panic!("not a put: {:?}", records[1]);
        };
        assert_eq!(key, b"beta");
        assert!(entry_record::decode_entry(record)
            .expect("decode")
            .is_tombstone());
        assert_eq!(records[2], LogRecord::Remove { key: b"beta" });
        assert_eq!(records[3], LogRecord::HighWater(99));
    }

    #[test]
    fn a_cut_off_tail_is_torn_at_the_last_whole_frame() {
        let bytes = sample();
        // Where each frame ends.
        let mut boundaries = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("len")) as usize;
            at += FRAME_HEADER_BYTES + len;
            boundaries.push(at);
        }
        for cut in boundaries[0] + 1..bytes.len() {
            let mut frames = Frames::new(&bytes[..cut]);
            let n = frames.by_ref().count();
            let whole = boundaries.iter().filter(|b| **b <= cut).count();
            assert_eq!(n, whole, "cut at {cut}");
            match frames.end() {
                FrameEnd::Clean => assert!(boundaries.contains(&cut), "cut at {cut}"),
                FrameEnd::Torn { offset } => assert_eq!(offset, boundaries[whole - 1]),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn zeros_after_the_last_frame_are_a_torn_tail() {
        let mut bytes = sample();
        let len = bytes.len();
        bytes.extend_from_slice(&[0; 4096]);
        let mut frames = Frames::new(&bytes);
        assert_eq!(frames.by_ref().count(), 4);
        assert_eq!(frames.end(), FrameEnd::Torn { offset: len });
    }

    #[test]
    fn a_damaged_frame_followed_by_more_is_damage_not_a_tear() {
        let mut bytes = sample();
        let pos = bytes.windows(3).position(|w| w == b"one").expect("value");
        bytes[pos] ^= 0xff;
        let mut frames = Frames::new(&bytes);
        assert_eq!(frames.by_ref().count(), 0);
        assert_eq!(
            frames.end(),
            FrameEnd::Damaged {
                offset: 0,
                reason: "checksum mismatch"
            }
        );
    }

    #[test]
    fn a_half_written_frame_followed_by_zeros_is_a_torn_tail() {
        let mut bytes = sample();
        let whole = bytes.len();
        let mut last = Vec::new();
        encode_put(&mut last, b"late", &entry(12, Some(b"payload"))).expect("put");
        // Its header reached the disk, its payload's page did not.
        bytes.extend_from_slice(&last[..FRAME_HEADER_BYTES]);
        bytes.extend(std::iter::repeat_n(
            0u8,
            last.len() - FRAME_HEADER_BYTES + 4096,
        ));
        let mut frames = Frames::new(&bytes);
        assert_eq!(frames.by_ref().count(), 4);
        assert_eq!(frames.end(), FrameEnd::Torn { offset: whole });
    }

    #[test]
    fn a_value_too_large_for_a_frame_is_refused() {
        let mut out = Vec::new();
        let value = vec![0u8; MAX_PAYLOAD_BYTES];
        assert!(encode_put(&mut out, b"k", &entry(1, Some(&value))).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn a_damaged_last_frame_is_a_torn_tail() {
        let mut bytes = sample();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let mut frames = Frames::new(&bytes);
        assert_eq!(frames.by_ref().count(), 3);
        assert!(matches!(frames.end(), FrameEnd::Torn { .. }));
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x1234_5678_u64;
        for len in 0..600 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let mut frames = Frames::new(&bytes);
            let _ = frames.by_ref().count();
            let _ = frames.end();
        }
    }

    #[test]
    fn oversized_keys_are_refused() {
        let mut out = Vec::new();
        let key = vec![b'k'; entry_record::MAX_KEY_BYTES + 1];
        assert!(encode_put(&mut out, &key, &entry(1, Some(b"v"))).is_err());
        assert!(encode_remove(&mut out, &key).is_err());
        assert!(out.is_empty());
    }
}
