//! SCAN, KEYS, DBSIZE, FLUSH (FLUSHDB, FLUSHALL, TRUNCATE), HASH.

use super::super::command::{Command, CommandError};
use super::super::request::{int, RespRequest, TextRequest};

type Parsed<'a> = Option<Result<Command<'a>, CommandError>>;

/// The text forms.
pub fn text<'a>(r: &TextRequest<'a>) -> Parsed<'a> {
    let b = str::as_bytes;
    Some(match r.upper.as_str() {
        "SCAN" => match r.args().as_slice() {
            [] => Ok(Command::Scan(b"")),
            [p] => Ok(Command::Scan(b(p))),
            _ => Err(CommandError::Usage("SCAN command takes at most one prefix")),
        },
        "DBSIZE" => r.no_args("DBSIZE command takes no arguments", Command::DbSize),
        "FLUSH" | "FLUSHDB" | "FLUSHALL" | "TRUNCATE" => {
            r.no_args("FLUSH command takes no arguments", Command::Flush)
        }
        "HASH" => match r.args().as_slice() {
            [] => Ok(Command::Hash(None)),
            [p] => Ok(Command::Hash(Some(b(p)))),
            _ => Err(CommandError::Usage("HASH command takes at most one prefix")),
        },
        _ => return None,
    })
}

/// The RESP forms (Redis' arities and errors).
pub fn resp<'a>(r: &mut RespRequest<'a>) -> Parsed<'a> {
    let n = r.len();
    let a = &r.args;
    Some(match r.upper() {
        b"KEYS" => r.arity(n == 1).map(|_| Command::Keys(a[0])),
        b"SCAN" => r.arity(n >= 1).and_then(|_| scan(a)),
        b"DBSIZE" => r.arity(n == 0).map(|_| Command::DbSize),
        b"FLUSH" | b"FLUSHDB" | b"FLUSHALL" | b"TRUNCATE" => Ok(Command::Flush),
        b"HASH" => match a.as_slice() {
            [] => Ok(Command::Hash(None)),
            [p] => Ok(Command::Hash(Some(p))),
            _ => r.arity(false).map(|_| Command::Hash(None)),
        },
        _ => return None,
    })
}

/// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]`.
fn scan<'a>(args: &[&'a [u8]]) -> Result<Command<'a>, CommandError> {
    let cursor = std::str::from_utf8(args[0])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or(CommandError::InvalidCursor)?;
    let mut pattern: Option<&[u8]> = Some(b"*");
    let mut count = 10usize;
    for option in args[1..].chunks(2) {
        let [name, value] = option else {
            return Err(CommandError::Syntax);
        };
        if name.eq_ignore_ascii_case(b"MATCH") {
            if pattern.is_some() {
                pattern = Some(value);
            }
        } else if name.eq_ignore_ascii_case(b"COUNT") {
            let n = int(value)?;
            if n < 1 {
                return Err(CommandError::Syntax);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if name.eq_ignore_ascii_case(b"TYPE") {
            if !value.eq_ignore_ascii_case(b"string") {
                pattern = None;
            }
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(Command::ScanCursor {
        cursor,
        pattern,
        count,
    })
}
