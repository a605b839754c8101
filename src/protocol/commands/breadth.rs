//! More of Redis' string commands (RESP only), answered as Redis 7 does:
//! `GETSET`, `GETDEL`, `SETRANGE`, `MSETNX`, `STRLEN`, `GETRANGE`/`SUBSTR`, `TYPE`,
//! `TOUCH`, `RANDOMKEY`, `INCRBYFLOAT`, `RENAME`, `RENAMENX`,
//! `TIME`, and the data-type commands MerkleKV does not have, refused with
//! an error that names the command and says why.

use super::super::command::{Command, CommandError, ExpireSpec, SetArgs, SetReply};
use super::super::request::{int, RespRequest};
use crate::store::SetWhen;

type Parsed<'a> = Option<Result<Command<'a>, CommandError>>;

/// Commands of Redis' other data types (lists, hashes, sets, sorted sets,
/// streams, …): refused by name rather than as unknown.
const OTHER_TYPES: &[&[u8]] = &[
    b"LPUSH",
    b"RPUSH",
    b"LPOP",
    b"RPOP",
    b"LRANGE",
    b"LLEN",
    b"LINDEX",
    b"LSET",
    b"LREM",
    b"BLPOP",
    b"BRPOP",
    b"HSET",
    b"HGET",
    b"HMSET",
    b"HMGET",
    b"HGETALL",
    b"HDEL",
    b"HINCRBY",
    b"HKEYS",
    b"HVALS",
    b"HLEN",
    b"HEXISTS",
    b"SADD",
    b"SREM",
    b"SMEMBERS",
    b"SISMEMBER",
    b"SCARD",
    b"SPOP",
    b"ZADD",
    b"ZREM",
    b"ZRANGE",
    b"ZSCORE",
    b"ZCARD",
    b"ZINCRBY",
    b"ZRANGEBYSCORE",
    b"XADD",
    b"XRANGE",
    b"XREAD",
    b"XLEN",
    b"PFADD",
    b"PFCOUNT",
    b"GEOADD",
    b"SETBIT",
    b"GETBIT",
    b"BITCOUNT",
    b"PUBLISH",
    b"SUBSCRIBE",
    b"PSUBSCRIBE",
    b"EVAL",
    b"EVALSHA",
    b"SCRIPT",
    b"FUNCTION",
    b"FCALL",
];

/// The RESP forms.
pub fn resp<'a>(r: &mut RespRequest<'a>) -> Parsed<'a> {
    let n = r.len();
    let a = &r.args;
    Some(match r.upper() {
        b"GETSET" => r.arity(n == 2).map(|_| {
            Command::SetWith(Box::new(SetArgs {
                key: a[0],
                value: a[1],
                ttl: ExpireSpec::Clear,
                when: SetWhen::Always,
                reply: SetReply::Old,
            }))
        }),
        b"STRLEN" => r.arity(n == 1).map(|_| Command::Strlen(a[0])),
        b"INCRBYFLOAT" => r
            .arity(n == 2)
            .map(|_| Command::IncrementFloat(a[0], a[1])),
        b"RENAME" | b"RENAMENX" => r.arity(n == 2).map(|_| Command::Rename {
            from: a[0],
            to: a[1],
            only_if_absent: r.upper() == b"RENAMENX",
        }),
        b"MSETNX" => r
            .arity(n >= 2 && n % 2 == 0)
            .map(|_| Command::MSetNx(a.chunks(2).map(|p| (p[0], p[1])).collect())),
        b"GETDEL" => r.arity(n == 1).map(|_| Command::GetDel(a[0])),
        b"SETRANGE" => r.arity(n == 3).and_then(|_| {
            let offset = usize::try_from(int(a[1])?).map_err(|_| CommandError::OffsetOutOfRange)?;
            Ok(Command::SetRange(a[0], offset, a[2]))
        }),
        b"GETRANGE" | b"SUBSTR" => r
            .arity(n == 3)
            .and_then(|_| Ok(Command::GetRange(a[0], int(a[1])?, int(a[2])?))),
        b"TYPE" => r.arity(n == 1).map(|_| Command::Type(a[0])),
        b"TOUCH" => r
            .arity(n >= 1)
            .map(|_| Command::Touch(std::mem::take(&mut r.args))),
        b"RANDOMKEY" => r.arity(n == 0).map(|_| Command::RandomKey),
        b"TIME" => r.arity(n == 0).map(|_| Command::Time),
        upper if OTHER_TYPES.contains(&upper) => Err(CommandError::UnknownResp(format!(
            "'{}' is not supported: MerkleKV stores strings only (lists, hashes, sets, sorted sets, streams, pub/sub and scripting are out of scope)",
            String::from_utf8_lossy(r.name).to_ascii_lowercase()
        ))),
        _ => return None,
    })
}

/// `GETRANGE`'s bounds over a value of `len` bytes, as Redis computes them
/// (negative offsets count from the end; an empty range is `None`).
pub fn range_of(len: usize, start: i64, end: i64) -> Option<std::ops::Range<usize>> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    if len == 0 || (start < 0 && end < 0 && start > end) {
        return None;
    }
    let mut start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end {
        return None;
    }
    Some(usize::try_from(start).ok()?..usize::try_from(end).ok()? + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_bounds_follow_redis() {
        // "Hello World" in Redis' own examples.
        assert_eq!(range_of(11, 0, 3), Some(0..4));
        assert_eq!(range_of(11, -3, -1), Some(8..11));
        assert_eq!(range_of(11, 0, -1), Some(0..11));
        assert_eq!(range_of(11, 10, 100), Some(10..11));
        assert_eq!(range_of(11, 5, 3), None);
        assert_eq!(range_of(11, -1, -5), None);
        assert_eq!(range_of(0, 0, -1), None);
        assert_eq!(range_of(11, -100, 2), Some(0..3));
        assert_eq!(range_of(11, i64::MIN, i64::MAX), Some(0..11));
    }
}
