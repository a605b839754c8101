//! Keys with a time to live: `SET` with options, `SETEX`, `PSETEX`,
//! `SETNX`, `EXPIRE`/`PEXPIRE`/`EXPIREAT`/`PEXPIREAT`, `TTL`/`PTTL`,
//! `EXPIRETIME`/`PEXPIRETIME`, `PERSIST`, `GETEX` (Redis 7's arities,
//! options and errors), and the text protocol's `SETEX`, `EXPIRE`, `TTL`.

use super::super::command::{Command, CommandError, ExpireSpec, SetArgs, SetReply, TtlReport};
use super::super::request::{int, RespRequest, TextRequest};
use crate::store::{ExpireWhen, SetWhen};

type Parsed<'a> = Option<Result<Command<'a>, CommandError>>;

/// The text forms.
pub fn text<'a>(r: &TextRequest<'a>) -> Parsed<'a> {
    Some(match r.upper.as_str() {
        "SETEX" => text_setex(r),
        "EXPIRE" => {
            let a = r.args();
            match a.as_slice() {
                [] => Err(CommandError::MissingArguments("EXPIRE")),
                [k, s] => s
                    .parse::<i64>()
                    .map_err(|_| CommandError::Usage("EXPIRE seconds must be an integer"))
                    .and_then(|s| seconds(s, "expire"))
                    .map(|ms| Command::Expire {
                        key: k.as_bytes(),
                        spec: ExpireSpec::In(ms),
                        when: ExpireWhen::Always,
                    }),
                _ => Err(CommandError::Usage(
                    "EXPIRE command requires a key and a number of seconds",
                )),
            }
        }
        "TTL" => r
            .one_key("TTL", "TTL command requires exactly one key")
            .map(|k| Command::Ttl(k.as_bytes(), TtlReport::Seconds)),
        "PERSIST" => r
            .one_key("PERSIST", "PERSIST command requires exactly one key")
            .map(|k| Command::Persist(k.as_bytes())),
        _ => return None,
    })
}

/// Text `SETEX k seconds v…`: the value is the rest of the line.
fn text_setex<'a>(r: &TextRequest<'a>) -> Result<Command<'a>, CommandError> {
    const USAGE: &str = "SETEX command requires a key, a number of seconds and a value";
    let rest = r.rest.ok_or(CommandError::MissingArguments("SETEX"))?;
    let rest = rest.trim_start_matches(' ');
    let (key, rest) = rest.split_once(' ').ok_or(CommandError::Usage(USAGE))?;
    let (secs, value) = rest
        .trim_start_matches(' ')
        .split_once(' ')
        .ok_or(CommandError::Usage(USAGE))?;
    let secs: i64 = secs
        .parse()
        .map_err(|_| CommandError::Usage("SETEX seconds must be an integer"))?;
    if secs <= 0 {
        return Err(CommandError::InvalidExpireTime("setex"));
    }
    Ok(Command::SetWith(Box::new(SetArgs {
        key: key.as_bytes(),
        value: value.as_bytes(),
        ttl: ExpireSpec::In(seconds(secs, "setex")?),
        when: SetWhen::Always,
        reply: SetReply::Ok,
    })))
}

/// The RESP forms.
pub fn resp<'a>(r: &mut RespRequest<'a>) -> Parsed<'a> {
    let n = r.len();
    let a = &r.args;
    Some(match r.upper() {
        b"SETEX" | b"PSETEX" => {
            let name = if r.upper() == b"SETEX" {
                "setex"
            } else {
                "psetex"
            };
            r.arity(n == 3).and_then(|_| {
                let unit: &[u8] = if name == "setex" { b"EX" } else { b"PX" };
                Ok(Command::SetWith(Box::new(SetArgs {
                    key: a[0],
                    value: a[2],
                    ttl: deadline_option(unit, int(a[1])?, name)?,
                    when: SetWhen::Always,
                    reply: SetReply::Ok,
                })))
            })
        }
        b"SETNX" => r.arity(n == 2).map(|_| {
            Command::SetWith(Box::new(SetArgs {
                key: a[0],
                value: a[1],
                ttl: ExpireSpec::Clear,
                when: SetWhen::Absent,
                reply: SetReply::Integer,
            }))
        }),
        b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT" => {
            let upper = r.upper().to_vec();
            r.arity(n >= 2).and_then(|_| resp_expire(&upper, a))
        }
        b"TTL" => r
            .arity(n == 1)
            .map(|_| Command::Ttl(a[0], TtlReport::Seconds)),
        b"PTTL" => r
            .arity(n == 1)
            .map(|_| Command::Ttl(a[0], TtlReport::Millis)),
        b"EXPIRETIME" => r
            .arity(n == 1)
            .map(|_| Command::Ttl(a[0], TtlReport::AtSeconds)),
        b"PEXPIRETIME" => r
            .arity(n == 1)
            .map(|_| Command::Ttl(a[0], TtlReport::AtMillis)),
        b"PERSIST" => r.arity(n == 1).map(|_| Command::Persist(a[0])),
        b"GETEX" => r.arity(n >= 1).and_then(|_| resp_getex(a)),
        _ => return None,
    })
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
pub fn resp_set<'a>(args: &[&'a [u8]]) -> Result<Command<'a>, CommandError> {
    let (key, value) = (args[0], args[1]);
    let mut when = SetWhen::Always;
    let mut get = false;
    let mut ttl = ExpireSpec::Clear;
    let mut ttl_given = false;
    let mut i = 2;
    while i < args.len() {
        let opt = args[i].to_ascii_uppercase();
        let next = args.get(i + 1);
        match opt.as_slice() {
            b"NX" if when != SetWhen::Present => when = SetWhen::Absent,
            b"XX" if when != SetWhen::Absent => when = SetWhen::Present,
            b"GET" => get = true,
            b"KEEPTTL" if !ttl_given => {
                ttl = ExpireSpec::Keep;
                ttl_given = true;
            }
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if !ttl_given && next.is_some() => {
                let amount = int(next.copied().unwrap_or_default())?;
                ttl = deadline_option(&opt, amount, "set")?;
                ttl_given = true;
                i += 1;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    Ok(Command::SetWith(Box::new(SetArgs {
        key,
        value,
        ttl,
        when,
        reply: if get { SetReply::Old } else { SetReply::Ok },
    })))
}

/// `EXPIRE key n [NX|XX|GT|LT]` and its three relatives.
fn resp_expire<'a>(upper: &[u8], a: &[&'a [u8]]) -> Result<Command<'a>, CommandError> {
    // Each command takes its amount as the SET option of the same unit.
    let (name, unit): (_, &[u8]) = match upper {
        b"EXPIRE" => ("expire", b"EX"),
        b"PEXPIRE" => ("pexpire", b"PX"),
        b"EXPIREAT" => ("expireat", b"EXAT"),
        _ => ("pexpireat", b"PXAT"),
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &a[2..] {
        match opt.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return Err(CommandError::UnknownResp(format!(
                    "Unsupported option {}",
                    String::from_utf8_lossy(opt)
                )))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CommandError::Usage(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(CommandError::Usage(
            "GT and LT options at the same time are not compatible",
        ));
    }
    // A key without a deadline counts as never expiring: GT never holds
    // for it and LT always does, unless XX asks for a deadline as well.
    let when = match (nx, xx, gt, lt) {
        (true, ..) => ExpireWhen::NoDeadline,
        (_, true, false, false) => ExpireWhen::HasDeadline,
        (_, true, false, true) => ExpireWhen::HasDeadlineEarlier,
        (_, _, true, _) => ExpireWhen::Later,
        (_, _, _, true) => ExpireWhen::Earlier,
        _ => ExpireWhen::Always,
    };
    // Zero or negative is allowed here: the key expires at once.
    let spec = spec_of(unit, int(a[1])?, name)?;
    Ok(Command::Expire {
        key: a[0],
        spec,
        when,
    })
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`.
fn resp_getex<'a>(a: &[&'a [u8]]) -> Result<Command<'a>, CommandError> {
    let mut ttl = None;
    let mut i = 1;
    while i < a.len() {
        let opt = a[i].to_ascii_uppercase();
        let next = a.get(i + 1);
        match opt.as_slice() {
            b"PERSIST" if ttl.is_none() => ttl = Some(ExpireSpec::Clear),
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if ttl.is_none() && next.is_some() => {
                let amount = int(next.copied().unwrap_or_default())?;
                ttl = Some(deadline_option(&opt, amount, "getex")?);
                i += 1;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    Ok(Command::GetEx { key: a[0], ttl })
}

/// An `EX|PX|EXAT|PXAT amount` option: positive, and in range once in
/// milliseconds (Redis' "invalid expire time in '<cmd>' command").
fn deadline_option(
    opt: &[u8],
    amount: i64,
    name: &'static str,
) -> Result<ExpireSpec, CommandError> {
    if amount <= 0 {
        return Err(CommandError::InvalidExpireTime(name));
    }
    spec_of(opt, amount, name)
}

/// `amount` in the unit of option `opt` (`EX` seconds from now, `PX`
/// milliseconds from now, `EXAT` unix seconds, `PXAT` unix milliseconds).
fn spec_of(opt: &[u8], amount: i64, name: &'static str) -> Result<ExpireSpec, CommandError> {
    Ok(match opt {
        b"EX" => ExpireSpec::In(seconds(amount, name)?),
        b"PX" => ExpireSpec::In(amount),
        b"EXAT" => ExpireSpec::At(seconds(amount, name)?),
        _ => ExpireSpec::At(amount),
    })
}

/// Seconds as milliseconds, refusing what does not fit.
fn seconds(amount: i64, name: &'static str) -> Result<i64, CommandError> {
    amount
        .checked_mul(1000)
        .ok_or(CommandError::InvalidExpireTime(name))
}
