//! GET, SET, DEL, INC/DEC (INCRBY/DECRBY), APPEND, PREPEND, MGET, MSET,
//! EXISTS.

use super::super::command::{Command, CommandError};
use super::super::request::{int, RespRequest, TextRequest};

type Parsed<'a> = Option<Result<Command<'a>, CommandError>>;

/// The text forms.
pub fn text<'a>(r: &TextRequest<'a>) -> Parsed<'a> {
    let b = str::as_bytes;
    Some(match r.upper.as_str() {
        "GET" => r
            .one_key("GET", "GET command requires exactly one key")
            .map(|k| Command::Get(b(k))),
        "DEL" | "DELETE" => r
            .one_key("DEL", "DEL command requires exactly one key")
            .map(|k| Command::Delete(vec![b(k)])),
        "SET" => r
            .key_value("SET command requires a key and value")
            .map(|(k, v)| Command::Set(b(k), b(v))),
        "APPEND" => r
            .key_value("APPEND command requires a key and value")
            .map(|(k, v)| Command::Append(b(k), b(v))),
        "PREPEND" => r
            .key_value("PREPEND command requires a key and value")
            .map(|(k, v)| Command::Prepend(b(k), b(v))),
        "INC" | "INCR" | "DEC" | "DECR" => text_increment(r),
        "MGET" => {
            let a = r.args();
            if a.is_empty() {
                return Some(Err(CommandError::MissingArguments("MGET")));
            }
            Ok(Command::MGet(a.into_iter().map(b).collect()))
        }
        "MSET" => {
            let a = r.args();
            if a.is_empty() {
                return Some(Err(CommandError::MissingArguments("MSET")));
            }
            if a.len() % 2 != 0 {
                return Some(Err(CommandError::Usage(
                    "MSET command requires an even number of arguments (key-value pairs)",
                )));
            }
            Ok(Command::MSet(
                a.chunks(2).map(|p| (b(p[0]), b(p[1]))).collect(),
            ))
        }
        "EXISTS" => {
            let a = r.args();
            if a.is_empty() {
                return Some(Err(CommandError::MissingArguments("EXISTS")));
            }
            Ok(Command::Exists(a.into_iter().map(b).collect()))
        }
        _ => return None,
    })
}

/// `INC`/`INCR`/`DEC`/`DECR key [amount]`.
fn text_increment<'a>(r: &TextRequest<'a>) -> Result<Command<'a>, CommandError> {
    let name = if r.upper.starts_with("INC") {
        "INC"
    } else {
        "DEC"
    };
    let a = r.args();
    let (key, amount) = match a.as_slice() {
        [] => return Err(CommandError::MissingArguments(name)),
        [k] => (*k, 1i64),
        [k, n] => (
            *k,
            n.parse::<i64>()
                .map_err(|_| CommandError::BadAmount(name))?,
        ),
        _ => {
            return Err(CommandError::Usage(if name == "INC" {
                "INC command takes a key and an optional amount"
            } else {
                "DEC command takes a key and an optional amount"
            }))
        }
    };
    let delta = if name == "INC" {
        amount
    } else {
        amount.checked_neg().ok_or(CommandError::Overflow)?
    };
    Ok(Command::Increment(key.as_bytes(), delta))
}

/// The RESP forms (Redis' arities and errors).
pub fn resp<'a>(r: &mut RespRequest<'a>) -> Parsed<'a> {
    let n = r.len();
    let a = &r.args;
    Some(match r.upper() {
        b"GET" => r.arity(n == 1).map(|_| Command::Get(a[0])),
        b"SET" => r.arity(n >= 2).and_then(|_| {
            if n > 2 {
                return super::expiry::resp_set(a);
            }
            Ok(Command::Set(a[0], a[1]))
        }),
        b"DEL" | b"DELETE" | b"UNLINK" => r
            .arity(n >= 1)
            .map(|_| Command::Delete(std::mem::take(&mut r.args))),
        b"INCR" | b"INC" => r.arity(n == 1).map(|_| Command::Increment(a[0], 1)),
        b"DECR" | b"DEC" => r.arity(n == 1).map(|_| Command::Increment(a[0], -1)),
        b"INCRBY" => r
            .arity(n == 2)
            .and_then(|_| Ok(Command::Increment(a[0], int(a[1])?))),
        b"DECRBY" => r.arity(n == 2).and_then(|_| {
            let d = int(a[1])?.checked_neg().ok_or(CommandError::Overflow)?;
            Ok(Command::Increment(a[0], d))
        }),
        b"APPEND" => r.arity(n == 2).map(|_| Command::Append(a[0], a[1])),
        b"PREPEND" => r.arity(n == 2).map(|_| Command::Prepend(a[0], a[1])),
        b"MGET" => r
            .arity(n >= 1)
            .map(|_| Command::MGet(std::mem::take(&mut r.args))),
        b"MSET" => r
            .arity(n >= 2 && n % 2 == 0)
            .map(|_| Command::MSet(a.chunks(2).map(|p| (p[0], p[1])).collect())),
        b"EXISTS" => r
            .arity(n >= 1)
            .map(|_| Command::Exists(std::mem::take(&mut r.args))),
        _ => return None,
    })
}
