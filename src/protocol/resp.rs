//! RESP2 requests (arrays of bulk strings) and their mapping to [`Command`].

use std::ops::Range;

use super::command::{Command, CommandError};
use super::commands::{admin, breadth, client, expiry, keyspace, strings, transaction};
use super::request::RespRequest;

/// Largest number of elements accepted in one request array.
pub const MAX_ARRAY_LEN: usize = 1 << 20;
/// The fewest bytes one array element takes (`$0\r\n\r\n`).
const MIN_ELEMENT_BYTES: usize = 6;
/// Arrays up to this many elements are parsed as soon as any of them
/// arrived; larger ones once enough bytes for all of them did.
const EAGER_ELEMENTS: usize = 1024;
/// Longest `*n` / `$n` header line accepted.
const MAX_HEADER: usize = 32;

/// A framing error; the connection answers `-ERR Protocol error: …` and
/// closes, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Request not starting with `*`.
    #[error("Protocol error: expected '*', got '{0}'")]
    ExpectedArray(char),
    /// Bulk string not starting with `$`.
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// Bad or oversized array length.
    #[error("Protocol error: invalid multibulk length")]
    BadArrayLength,
    /// Bad or oversized bulk length.
    #[error("Protocol error: invalid bulk length")]
    BadBulkLength,
    /// Missing `\r\n` after a bulk string.
    #[error("Protocol error: bulk string not terminated by CRLF")]
    MissingCrlf,
}

/// Parses one request from the front of `buf`. On success returns the bytes
/// consumed and fills `args` with the byte ranges of the arguments; `None`
/// means more input is needed. Bulk strings longer than `max_bulk` are
/// refused before they are buffered. Blank lines between requests (`\r\n`,
/// which `redis-cli --pipe` sends before its closing `ECHO`) are consumed
/// with no arguments, as Redis skips empty inline commands.
pub fn parse_request(
    buf: &[u8],
    max_bulk: usize,
    args: &mut Vec<Range<usize>>,
) -> Result<Option<usize>, FrameError> {
    args.clear();
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first == b'\r' || first == b'\n' {
        let blank = buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        return Ok(Some(blank));
    }
    if first != b'*' {
        return Err(FrameError::ExpectedArray(first as char));
    }
    let Some((count, mut pos)) = header(buf, 1, FrameError::BadArrayLength)? else {
        return Ok(None);
    };
    if count <= 0 {
        return Ok(Some(pos));
    }
    let count = count as usize;
    if count > MAX_ARRAY_LEN {
        return Err(FrameError::BadArrayLength);
    }
    // A large array that cannot be complete yet (every element takes at
    // least `$0\r\n\r\n`) is not parsed, nor its arguments recorded, on
    // every read while it arrives: an unfinished request pins only its
    // bytes. Small arrays are parsed at once, so bad framing is reported
    // as soon as it is sent.
    if count > EAGER_ELEMENTS && buf.len() - pos < count.saturating_mul(MIN_ELEMENT_BYTES) {
        return Ok(None);
    }
    for _ in 0..count {
        let Some(&tag) = buf.get(pos) else {
            return Ok(None);
        };
        if tag != b'$' {
            return Err(FrameError::ExpectedBulk(tag as char));
        }
        let Some((len, start)) = header(buf, pos + 1, FrameError::BadBulkLength)? else {
            return Ok(None);
        };
        if len < 0 || len as usize > max_bulk {
            return Err(FrameError::BadBulkLength);
        }
        let end = start + len as usize;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(FrameError::MissingCrlf);
        }
        args.push(start..end);
        pos = end + 2;
    }
    Ok(Some(pos))
}

/// Reads a decimal header terminated by `\r\n` starting at `start`: an
/// optional sign and at least one digit, within `MAX_HEADER` bytes.
/// `Ok(None)` while the header may still be arriving.
fn header(buf: &[u8], start: usize, err: FrameError) -> Result<Option<(i64, usize)>, FrameError> {
    let end = buf.len().min(start.saturating_add(MAX_HEADER));
    let mut pos = start;
    let negative = buf.get(pos) == Some(&b'-');
    if negative || buf.get(pos) == Some(&b'+') {
        pos += 1;
    }
    let digits_start = pos;
    // Accumulated with its sign, so i64::MIN (whose magnitude is not an
    // i64) still parses, as it did with `str::parse`.
    let mut n: i64 = 0;
    while pos < end && buf[pos].is_ascii_digit() {
        let digit = i64::from(buf[pos] - b'0');
        let next = n.checked_mul(10).and_then(|n| {
            if negative {
                n.checked_sub(digit)
            } else {
                n.checked_add(digit)
            }
        });
        let Some(next) = next else {
            return Err(err);
        };
        n = next;
        pos += 1;
    }
    if pos >= end {
        // No terminator yet: wait for more, unless the header is too long.
        return if end.saturating_sub(start) >= MAX_HEADER {
            Err(err)
        } else {
            Ok(None)
        };
    }
    if buf[pos] != b'\r' || pos == digits_start {
        return Err(err);
    }
    match buf.get(pos + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((n, pos + 2))),
        Some(_) => Err(err),
    }
}

/// Redis' message for an unknown command: the name and the first
/// arguments, each quoted, cut near 128 bytes.
fn unknown(name: &[u8], args: &[&[u8]]) -> CommandError {
    let cut = |b: &[u8], max: usize| String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned();
    let mut shown = String::new();
    for a in args {
        if shown.len() >= 128 {
            break;
        }
        shown.push('\'');
        shown.push_str(&cut(a, 128 - shown.len()));
        shown.push_str("' ");
    }
    CommandError::UnknownResp(format!(
        "unknown command '{}', with args beginning with: {shown}",
        cut(name, 128)
    ))
}

/// Maps a parsed request to a command (Redis reply and error conventions).
/// Each command family parses its own names ([`commands`](super::commands)).
pub fn to_command<'a>(buf: &'a [u8], ranges: &[Range<usize>]) -> Result<Command<'a>, CommandError> {
    let Some(first) = ranges.first() else {
        return Err(CommandError::Empty);
    };
    let name = &buf[first.clone()];
    // The hot commands with their usual arity, without collecting the
    // arguments into a vector first.
    let arg = |i: usize| &buf[ranges[i + 1].clone()];
    match (name, ranges.len() - 1) {
        (b"GET" | b"get", 1) => return Ok(Command::Get(arg(0))),
        (b"SET" | b"set", 2) => return Ok(Command::Set(arg(0), arg(1))),
        _ => {}
    }
    let args: Vec<&'a [u8]> = ranges[1..].iter().map(|r| &buf[r.clone()]).collect();
    let mut request = RespRequest::new(name, args);
    if let Some(parsed) = strings::resp(&mut request)
        .or_else(|| expiry::resp(&mut request))
        .or_else(|| breadth::resp(&mut request))
        .or_else(|| keyspace::resp(&mut request))
        .or_else(|| client::resp(&mut request))
        .or_else(|| admin::resp(&mut request))
        .or_else(|| transaction::resp(&mut request))
    {
        return parsed;
    }
    Err(unknown(name, &request.args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Parsed = Option<(usize, Vec<Vec<u8>>)>;

    fn parse(buf: &[u8]) -> Result<Parsed, FrameError> {
        let mut r = Vec::new();
        Ok(parse_request(buf, 1 << 20, &mut r)?
            .map(|n| (n, r.iter().map(|x| buf[x.clone()].to_vec()).collect())))
    }

    #[test]
    fn blank_lines_between_requests_are_skipped() {
        assert_eq!(parse(b"\r\n*1\r\n$4\r\nPING\r\n"), Ok(Some((2, vec![]))));
        assert_eq!(parse(b"\n\r\n\n"), Ok(Some((4, vec![]))));
        assert_eq!(
            parse(b"*1\r\n$4\r\nPING\r\n"),
            Ok(Some((14, vec![b"PING".to_vec()])))
        );
        assert_eq!(parse(b" x"), Err(FrameError::ExpectedArray(' ')));
    }

    #[test]
    fn parses_complete_requests_and_waits_for_partial_ones() {
        let req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\n\0b\r\n";
        let (n, args) = parse(req).expect("ok").expect("complete");
        assert_eq!(n, req.len());
        assert_eq!(
            args,
            vec![b"SET".to_vec(), b"k".to_vec(), b"a\r\n\0b".to_vec()]
        );
        for cut in 0..req.len() {
            assert_eq!(
                parse(&req[..cut]).expect("prefix is fine"),
                None,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn framing_errors() {
        assert_eq!(parse(b"+x\r\n"), Err(FrameError::ExpectedArray('+')));
        assert_eq!(parse(b"*1\r\n:1\r\n"), Err(FrameError::ExpectedBulk(':')));
        assert_eq!(parse(b"*x\r\n"), Err(FrameError::BadArrayLength));
        assert_eq!(parse(b"*1\r\n$-5\r\n"), Err(FrameError::BadBulkLength));
        assert_eq!(parse(b"*1\r\n$2\r\nabXY"), Err(FrameError::MissingCrlf));
        assert_eq!(parse(b"*99999999999\r\n"), Err(FrameError::BadArrayLength));
        let mut r = Vec::new();
        assert_eq!(
            parse_request(b"*1\r\n$100\r\n", 10, &mut r),
            Err(FrameError::BadBulkLength)
        );
        assert_eq!(parse(&[b'*'; 40]), Err(FrameError::BadArrayLength));
    }

    #[test]
    fn a_large_array_waits_for_enough_bytes_before_it_is_parsed() {
        let mut r = Vec::new();
        let mut buf = b"*2000\r\n".to_vec();
        buf.extend(b"$0\r\n\r\n".repeat(1999));
        assert_eq!(parse_request(&buf, 10, &mut r), Ok(None));
        assert!(
            r.is_empty(),
            "no arguments recorded while it cannot be complete"
        );
        buf.extend(b"$0\r\n\r\n");
        assert_eq!(parse_request(&buf, 10, &mut r), Ok(Some(buf.len())));
        assert_eq!(r.len(), 2000);
        // Bad framing in a large array is found once it is all there.
        let mut bad = b"*2000\r\n".to_vec();
        bad.extend(b"$0\r\n\r\n".repeat(1999));
        bad.extend(b":1\r\n\r\n");
        assert_eq!(
            parse_request(&bad, 10, &mut r),
            Err(FrameError::ExpectedBulk(':'))
        );
    }

    #[test]
    fn headers_are_signed_decimals_within_32_bytes() {
        let mut r = Vec::new();
        let mut p = |b: &[u8]| parse_request(b, 1 << 20, &mut r);
        assert_eq!(p(b"*0\r\n"), Ok(Some(4)));
        assert_eq!(p(b"*-1\r\n"), Ok(Some(5)));
        assert_eq!(p(b"*+1\r\n$1\r\nx\r\n"), Ok(Some(12)));
        // Still arriving.
        for partial in [&b"*"[..], b"*1", b"*12", b"*1\r", b"*1\r\n$", b"*1\r\n$3\r"] {
            assert_eq!(p(partial), Ok(None), "{partial:?}");
        }
        // No digits, junk before or instead of the terminator, overflow.
        for bad in [&b"*\r\n"[..], b"*-\r\n", b"*1x\r\n", b"*1\rx", b"* 1\r\n"] {
            assert_eq!(p(bad), Err(FrameError::BadArrayLength), "{bad:?}");
        }
        assert_eq!(
            p(b"*99999999999999999999\r\n"),
            Err(FrameError::BadArrayLength)
        );
        // The extremes of i64 parse (a negative count is an empty request,
        // as in Redis); one past either end does not.
        assert_eq!(p(b"*-9223372036854775808\r\n"), Ok(Some(23)));
        assert_eq!(
            p(b"*-9223372036854775809\r\n"),
            Err(FrameError::BadArrayLength)
        );
        assert_eq!(
            p(b"*9223372036854775808\r\n"),
            Err(FrameError::BadArrayLength)
        );
        assert_eq!(
            p(b"*1\r\n$-9223372036854775808\r\n"),
            Err(FrameError::BadBulkLength)
        );
        assert_eq!(p(b"*1\r\n$\r\n"), Err(FrameError::BadBulkLength));
        assert_eq!(p(b"*1\r\n$1x\r\n"), Err(FrameError::BadBulkLength));
        // 32 digits without a terminator can no longer be a header.
        let mut long = b"*".to_vec();
        long.extend([b'0'; 32]);
        assert_eq!(p(&long), Err(FrameError::BadArrayLength));
        assert_eq!(p(&long[..31]), Ok(None));
    }

    fn cmd(parts: &[&[u8]]) -> Result<String, String> {
        let mut buf = format!("*{}\r\n", parts.len()).into_bytes();
        for p in parts {
            buf.extend(format!("${}\r\n", p.len()).bytes());
            buf.extend_from_slice(p);
            buf.extend(b"\r\n");
        }
        let mut r = Vec::new();
        parse_request(&buf, 1 << 20, &mut r)
            .expect("frame")
            .expect("complete");
        to_command(&buf, &r)
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn maps_redis_commands() {
        assert!(cmd(&[b"get", b"k"]).expect("get").starts_with("Get"));
        assert!(cmd(&[b"INCRBY", b"k", b"5"]).expect("incrby").contains("5"));
        assert!(cmd(&[b"DECRBY", b"k", b"5"])
            .expect("decrby")
            .contains("-5"));
        assert_eq!(
            cmd(&[b"GET"]),
            Err("wrong number of arguments for 'get' command".into())
        );
        assert_eq!(
            cmd(&[b"MSET", b"a"]),
            Err("wrong number of arguments for 'mset' command".into())
        );
        assert_eq!(
            cmd(&[b"INCRBY", b"k", b"x"]),
            Err("value is not an integer or out of range".into())
        );
        assert_eq!(
            cmd(&[b"SET", b"k", b"v", b"EX", b"1", b"PX", b"1"]),
            Err("syntax error".into())
        );
        assert!(cmd(&[b"NOPE"])
            .expect_err("unknown")
            .starts_with("unknown command 'NOPE'"));
        assert!(cmd(&[b"KEYS", b"user:*"])
            .expect("keys")
            .starts_with("Keys"));
        assert_eq!(
            cmd(&[b"NOPE", b"a", b"b"]),
            Err("unknown command 'NOPE', with args beginning with: 'a' 'b' ".into())
        );
        assert_eq!(
            cmd(&[b"SCAN", b"0", b"MATCH", b"u*", b"COUNT", b"10"]),
            Ok("ScanCursor { cursor: 0, pattern: Some([117, 42]), count: 10 }".into())
        );
        assert_eq!(
            cmd(&[b"SCAN", b"0", b"TYPE", b"hash"]),
            Ok("ScanCursor { cursor: 0, pattern: None, count: 10 }".into())
        );
        assert_eq!(cmd(&[b"SCAN", b"x"]), Err("invalid cursor".into()));
        assert_eq!(cmd(&[b"SCAN", b"0", b"MATCH"]), Err("syntax error".into()));
        assert_eq!(
            cmd(&[b"HELLO", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"]),
            Ok(
                "Hello { protover: Some([51]), auth: Some(([117], [112])), name: Some([110]) }"
                    .into()
            )
        );
        assert_eq!(cmd(&[b"HELLO", b"3", b"AUTH"]), Err("syntax error".into()));
        assert_eq!(cmd(&[b"MULTI"]), Ok("Multi".into()));
        assert!(cmd(&[b"CONFIG", b"GET", b"save"])
            .expect("config")
            .contains("ConfigGet"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut r = Vec::new();
            if let Ok(Some(_)) = parse_request(&bytes, 64, &mut r) {
                let _ = to_command(&bytes, &r);
            }
        }
    }
}
