//! Protocol codec of a benchmark connection: request encoders and
//! incremental reply decoders for the text protocol and RESP2.
//!
//! Decoders work on a byte buffer that may hold a partial reply, exactly one
//! reply or several replies: they return `Ok(None)` until a whole reply is
//! buffered, and otherwise the reply with the number of bytes it occupies.

use std::io::Write as _;

use super::args::Protocol;
use super::workload::Op;

/// Longest text-protocol reply line accepted (a `VALUE` line carries a value).
pub const MAX_TEXT_LINE: usize = 64 * 1024 * 1024;
/// Longest RESP header line (`+`, `-`, `:`, `$n`, `*n`) accepted.
pub const MAX_RESP_LINE: usize = 64 * 1024;
/// Largest RESP bulk string accepted (the Redis limit).
pub const MAX_RESP_BULK: usize = 512 * 1024 * 1024;
/// Deepest RESP array nesting accepted.
pub const MAX_RESP_DEPTH: usize = 16;
/// Longest error text kept from a reply.
const MAX_MESSAGE: usize = 200;

/// A decoded reply, reduced to what the benchmark needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK` / `+OK`.
    Ok,
    /// A value: `VALUE <v>` / `$<n>` bulk string.
    Value,
    /// A miss: `NOT_FOUND` / `$-1` (or another RESP null).
    NotFound,
    /// A server error: `ERROR ...` / `-ERR ...`.
    Error(String),
    /// Any other well-framed reply (unexpected for SET/GET).
    Other(String),
}

/// A reply stream that cannot be decoded; the connection is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A reply line exceeded the size limit without a line terminator.
    #[error("reply line longer than {0} bytes")]
    LineTooLong(usize),
    /// A RESP header line did not end in CRLF.
    #[error("RESP line not terminated by CRLF")]
    MissingCr,
    /// A RESP length field was not an integer.
    #[error("invalid RESP length `{0}`")]
    BadLength(String),
    /// A RESP bulk string exceeded the size limit.
    #[error("RESP bulk string of {0} bytes exceeds the limit")]
    BulkTooLarge(i64),
    /// A RESP bulk string was not followed by CRLF.
    #[error("RESP bulk string not terminated by CRLF")]
    BadBulkTerminator,
    /// RESP arrays nested too deeply.
    #[error("RESP arrays nested deeper than {MAX_RESP_DEPTH}")]
    TooDeep,
    /// The first byte of a reply is not a RESP type marker.
    #[error(
        "unexpected RESP reply starting with {0:?}; is the server speaking RESP? \
         (try --protocol text)"
    )]
    UnexpectedType(String),
}

/// Appends the encoding of one request to `out`.
///
/// `value` is ignored for [`Op::Get`]. Keys and values must not contain
/// whitespace for the text protocol (the generators guarantee that).
pub fn encode_request(protocol: Protocol, op: Op, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    match (protocol, op) {
        (Protocol::Text, Op::Set) => {
            out.extend_from_slice(b"SET ");
            out.extend_from_slice(key);
            out.push(b' ');
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Text, Op::Get) => {
            out.extend_from_slice(b"GET ");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Resp, Op::Set) => {
            out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
            push_bulk(key, out);
            push_bulk(value, out);
        }
        (Protocol::Resp, Op::Get) => {
            out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
            push_bulk(key, out);
        }
    }
}

fn push_bulk(data: &[u8], out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "${}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Decodes the first reply in `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a reply, and
/// `Ok(Some((reply, consumed)))` when the reply occupies `buf[..consumed]`.
pub fn decode_reply(
    protocol: Protocol,
    buf: &[u8],
) -> Result<Option<(Reply, usize)>, ProtocolError> {
    match protocol {
        Protocol::Text => decode_text(buf),
        Protocol::Resp => {
            let mut pos = 0;
            Ok(resp_value(buf, &mut pos, 0)?.map(|reply| (reply, pos)))
        }
    }
}

fn decode_text(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_TEXT_LINE {
            Err(ProtocolError::LineTooLong(MAX_TEXT_LINE))
        } else {
            Ok(None)
        };
    };
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let reply = if line == b"OK" {
        Reply::Ok
    } else if line == b"NOT_FOUND" {
        Reply::NotFound
    } else if line == b"VALUE" || line.starts_with(b"VALUE ") {
        Reply::Value
    } else if line.starts_with(b"ERROR") {
        Reply::Error(message(line))
    } else {
        Reply::Other(message(line))
    };
    Ok(Some((reply, nl + 1)))
}

/// Finds the CRLF-terminated line starting at `start`; returns the line
/// without its terminator and the position just after it.
fn resp_line(buf: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let rest = buf.get(start..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\n') {
        Some(nl) => match rest[..nl].strip_suffix(b"\r") {
            Some(line) => Ok(Some((line, start + nl + 1))),
            None => Err(ProtocolError::MissingCr),
        },
        None if rest.len() > MAX_RESP_LINE => Err(ProtocolError::LineTooLong(MAX_RESP_LINE)),
        None => Ok(None),
    }
}

fn resp_len(line: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| ProtocolError::BadLength(message(line)))
}

/// Parses one RESP value at `*pos`, advancing `*pos` past it when complete.
fn resp_value(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Reply>, ProtocolError> {
    let Some(&tag) = buf.get(*pos) else {
        return Ok(None);
    };
    if !matches!(tag, b'+' | b'-' | b':' | b'$' | b'*' | b'_') {
        let end = buf.len().min(*pos + 40);
        return Err(ProtocolError::UnexpectedType(message(&buf[*pos..end])));
    }
    let Some((line, next)) = resp_line(buf, *pos + 1)? else {
        return Ok(None);
    };
    let reply = match tag {
        b'+' if line == b"OK" => Reply::Ok,
        b'+' | b':' => Reply::Other(message(&buf[*pos..next - 2])),
        b'-' => Reply::Error(message(line)),
        b'_' => Reply::NotFound,
        b'$' => {
            let n = resp_len(line)?;
            if n < 0 {
                Reply::NotFound
            } else {
                let len = usize::try_from(n)
                    .ok()
                    .filter(|&len| len <= MAX_RESP_BULK)
                    .ok_or(ProtocolError::BulkTooLarge(n))?;
                let end = next + len + 2;
                if buf.len() < end {
                    return Ok(None);
                }
                if &buf[end - 2..end] != b"\r\n" {
                    return Err(ProtocolError::BadBulkTerminator);
                }
                *pos = end;
                return Ok(Some(Reply::Value));
            }
        }
        _ /* b'*' */ => {
            let n = resp_len(line)?;
            if n < 0 {
                Reply::NotFound
            } else {
                if depth >= MAX_RESP_DEPTH {
                    return Err(ProtocolError::TooDeep);
                }
                let mut at = next;
                for _ in 0..n {
                    if resp_value(buf, &mut at, depth + 1)?.is_none() {
                        return Ok(None);
                    }
                }
                *pos = at;
                return Ok(Some(Reply::Other(format!("array of {n} elements"))));
            }
        }
    };
    *pos = next;
    Ok(Some(reply))
}

fn message(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_MESSAGE)];
    String::from_utf8_lossy(cut).into_owned()
}

/// Result of checking a reply against the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The expected kind of reply (a GET miss counts as success).
    Success,
    /// A server error or an unexpected reply, with a description.
    Failure(String),
}

/// Classifies `reply` as the answer to a request of kind `op`.
pub fn classify(op: Op, reply: Reply) -> Outcome {
    match (op, reply) {
        (Op::Set, Reply::Ok) | (Op::Get, Reply::Value | Reply::NotFound) => Outcome::Success,
        (_, Reply::Error(msg)) => Outcome::Failure(msg),
        (op, other) => {
            let name = match op {
                Op::Set => "SET",
                Op::Get => "GET",
            };
            let got = match other {
                Reply::Ok => "OK".to_string(),
                Reply::Value => "a value".to_string(),
                Reply::NotFound => "a miss".to_string(),
                Reply::Error(text) | Reply::Other(text) => format!("`{text}`"),
            };
            Outcome::Failure(format!("unexpected reply to {name}: {got}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes every reply in `stream`, feeding it in chunks of `chunk` bytes
    /// the way a socket might deliver it.
    fn decode_chunked(protocol: Protocol, stream: &[u8], chunk: usize) -> Vec<Reply> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some((reply, used)) = decode_reply(protocol, &buf).unwrap() {
                assert!(used > 0 && used <= buf.len());
                buf.drain(..used);
                out.push(reply);
            }
        }
        assert!(buf.is_empty(), "leftover bytes: {buf:?}");
        out
    }

    fn all_chunkings(protocol: Protocol, stream: &[u8], expected: &[Reply]) {
        for chunk in 1..=stream.len() {
            assert_eq!(
                decode_chunked(protocol, stream, chunk),
                expected,
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn text_replies_split_across_reads() {
        let stream =
            b"OK\r\nVALUE abc def\r\nNOT_FOUND\r\nERROR unknown command\r\nVALUE \r\nOK\nHUH\r\n";
        all_chunkings(
            Protocol::Text,
            stream,
            &[
                Reply::Ok,
                Reply::Value,
                Reply::NotFound,
                Reply::Error("ERROR unknown command".into()),
                Reply::Value,
                Reply::Ok,
                Reply::Other("HUH".into()),
            ],
        );
    }

    #[test]
    fn text_partial_reply_waits() {
        assert_eq!(decode_reply(Protocol::Text, b"").unwrap(), None);
        assert_eq!(decode_reply(Protocol::Text, b"VALUE abc").unwrap(), None);
        assert_eq!(decode_reply(Protocol::Text, b"OK\r").unwrap(), None);
        assert_eq!(
            decode_reply(Protocol::Text, b"OK\r\nOK\r\n").unwrap(),
            Some((Reply::Ok, 4))
        );
    }

    #[test]
    fn resp_replies_split_across_reads() {
        let stream: &[u8] = b"+OK\r\n$5\r\nhe\r\no\r\n$-1\r\n-ERR wrong type\r\n:12\r\n\
            *2\r\n$1\r\na\r\n*1\r\n$0\r\n\r\n*-1\r\n_\r\n+PONG\r\n$0\r\n\r\n";
        all_chunkings(
            Protocol::Resp,
            stream,
            &[
                Reply::Ok,
                Reply::Value,
                Reply::NotFound,
                Reply::Error("ERR wrong type".into()),
                Reply::Other(":12".into()),
                Reply::Other("array of 2 elements".into()),
                Reply::NotFound,
                Reply::NotFound,
                Reply::Other("+PONG".into()),
                Reply::Value,
            ],
        );
    }

    #[test]
    fn resp_partial_reply_waits() {
        for partial in [
            &b""[..],
            b"+O",
            b"+OK\r",
            b"$5\r\nhel",
            b"$5\r\nhello\r",
            b"*2\r\n$1\r\na\r\n",
            b"$-1",
        ] {
            assert_eq!(
                decode_reply(Protocol::Resp, partial).unwrap(),
                None,
                "{partial:?}"
            );
        }
    }

    #[test]
    fn resp_malformed_replies_fail() {
        assert!(matches!(
            decode_reply(Protocol::Resp, b"OK\r\n"),
            Err(ProtocolError::UnexpectedType(_))
        ));
        assert!(matches!(
            decode_reply(Protocol::Resp, b"ERROR bad\r\n"),
            Err(ProtocolError::UnexpectedType(_))
        ));
        assert_eq!(
            decode_reply(Protocol::Resp, b"+OK\n"),
            Err(ProtocolError::MissingCr)
        );
        assert!(matches!(
            decode_reply(Protocol::Resp, b"$x\r\n"),
            Err(ProtocolError::BadLength(_))
        ));
        assert_eq!(
            decode_reply(Protocol::Resp, b"$2\r\nabcd"),
            Err(ProtocolError::BadBulkTerminator)
        );
        assert!(matches!(
            decode_reply(Protocol::Resp, b"$99999999999\r\n"),
            Err(ProtocolError::BulkTooLarge(_))
        ));
        let deep = b"*1\r\n".repeat(MAX_RESP_DEPTH + 1);
        assert_eq!(
            decode_reply(Protocol::Resp, &deep),
            Err(ProtocolError::TooDeep)
        );
        let long = vec![b'+'; MAX_RESP_LINE + 2];
        assert_eq!(
            decode_reply(Protocol::Resp, &long),
            Err(ProtocolError::LineTooLong(MAX_RESP_LINE))
        );
    }

    #[test]
    fn encodes_requests() {
        let mut out = Vec::new();
        encode_request(Protocol::Text, Op::Set, b"key:1", b"abc", &mut out);
        encode_request(Protocol::Text, Op::Get, b"key:1", b"ignored", &mut out);
        assert_eq!(out, b"SET key:1 abc\r\nGET key:1\r\n");

        out.clear();
        encode_request(Protocol::Resp, Op::Set, b"key:1", b"abc", &mut out);
        encode_request(Protocol::Resp, Op::Get, b"key:1", b"ignored", &mut out);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$3\r\nabc\r\n*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n"
        );
    }

    #[test]
    fn classifies_replies() {
        assert_eq!(classify(Op::Set, Reply::Ok), Outcome::Success);
        assert_eq!(classify(Op::Get, Reply::Value), Outcome::Success);
        assert_eq!(classify(Op::Get, Reply::NotFound), Outcome::Success);
        assert_eq!(
            classify(Op::Set, Reply::Error("ERR x".into())),
            Outcome::Failure("ERR x".into())
        );
        assert!(matches!(
            classify(Op::Set, Reply::Value),
            Outcome::Failure(_)
        ));
        assert!(matches!(classify(Op::Get, Reply::Ok), Outcome::Failure(_)));
    }
}
