//! The MerkleKV text protocol: one command per line (see docs/protocol.md).

use super::command::{Command, CommandError, ReplicateAction};

/// Whether `v` can be sent on one text-protocol line (holds no `\r` or
/// `\n`; values written through RESP may).
pub fn fits_one_line(v: &[u8]) -> bool {
    memchr::memchr2(b'\r', b'\n', v).is_none()
}

/// Parses one line (without its `\n`; a trailing `\r` and surrounding
/// whitespace are trimmed here).
pub fn parse_line(line: &[u8]) -> Result<Command<'_>, CommandError> {
    let line = std::str::from_utf8(line).map_err(|_| CommandError::InvalidUtf8)?;
    let line = line.trim();
    if line.is_empty() {
        return Err(CommandError::Empty);
    }
    let (word, rest) = match line.split_once(' ') {
        Some((w, r)) => (w, Some(r)),
        None => (line, None),
    };
    let upper = word.to_ascii_uppercase();
    let b = str::as_bytes;
    // `args` splits the remainder on runs of spaces.
    let args = || {
        rest.map(|r| r.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let no_args = |name: &'static str, cmd: Command<'static>| match rest {
        None => Ok(cmd),
        Some(_) => Err(CommandError::Usage(match name {
            "DBSIZE" => "DBSIZE command takes no arguments",
            "VERSION" => "VERSION command takes no arguments",
            "STATS" => "STATS command takes no arguments",
            "MEMORY" => "MEMORY command takes no arguments",
            "FLUSH" => "FLUSH command takes no arguments",
            _ => "SHUTDOWN command takes no arguments",
        })),
    };
    match upper.as_str() {
        "GET" => {
            one_key(rest, "GET", "GET command requires exactly one key").map(|k| Command::Get(b(k)))
        }
        "DEL" | "DELETE" => one_key(rest, "DEL", "DEL command requires exactly one key")
            .map(|k| Command::Delete(vec![b(k)])),
        "SET" => key_value(rest, "SET command requires a key and value")
            .map(|(k, v)| Command::Set(b(k), b(v))),
        "APPEND" => key_value(rest, "APPEND command requires a key and value")
            .map(|(k, v)| Command::Append(b(k), b(v))),
        "PREPEND" => key_value(rest, "PREPEND command requires a key and value")
            .map(|(k, v)| Command::Prepend(b(k), b(v))),
        "INC" | "INCR" | "DEC" | "DECR" => {
            let name = if upper.starts_with("INC") {
                "INC"
            } else {
                "DEC"
            };
            let a = args();
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
            Ok(Command::Increment(b(key), delta))
        }
        "MGET" => {
            let a = args();
            if a.is_empty() {
                return Err(CommandError::MissingArguments("MGET"));
            }
            Ok(Command::MGet(a.into_iter().map(b).collect()))
        }
        "MSET" => {
            let a = args();
            if a.is_empty() {
                return Err(CommandError::MissingArguments("MSET"));
            }
            if a.len() % 2 != 0 {
                return Err(CommandError::Usage(
                    "MSET command requires an even number of arguments (key-value pairs)",
                ));
            }
            Ok(Command::MSet(
                a.chunks(2).map(|p| (b(p[0]), b(p[1]))).collect(),
            ))
        }
        "EXISTS" => {
            let a = args();
            if a.is_empty() {
                return Err(CommandError::MissingArguments("EXISTS"));
            }
            Ok(Command::Exists(a.into_iter().map(b).collect()))
        }
        "SCAN" => match args().as_slice() {
            [] => Ok(Command::Scan(b"")),
            [p] => Ok(Command::Scan(b(p))),
            _ => Err(CommandError::Usage("SCAN command takes at most one prefix")),
        },
        "DBSIZE" => no_args("DBSIZE", Command::DbSize),
        "PING" => Ok(Command::Ping(rest.map(b))),
        "ECHO" => rest
            .map(|m| Command::Echo(b(m)))
            .ok_or(CommandError::MissingArguments("ECHO")),
        "VERSION" => no_args("VERSION", Command::Version),
        "INFO" => Ok(Command::Info),
        "STATS" => no_args("STATS", Command::Stats),
        "MEMORY" => no_args("MEMORY", Command::Memory),
        "CLIENT" => match args().as_slice() {
            [sub] if sub.eq_ignore_ascii_case("LIST") => Ok(Command::ClientList),
            [] => Err(CommandError::MissingArguments("CLIENT")),
            _ => Err(CommandError::Usage("CLIENT supports: CLIENT LIST")),
        },
        "FLUSH" | "FLUSHDB" | "FLUSHALL" | "TRUNCATE" => no_args("FLUSH", Command::Flush),
        "HASH" => match args().as_slice() {
            [] => Ok(Command::Hash(None)),
            [p] => Ok(Command::Hash(Some(b(p)))),
            _ => Err(CommandError::Usage("HASH command takes at most one prefix")),
        },
        "SYNC" => {
            let a = args();
            let (host, port, full) = match a.as_slice() {
                [] => return Err(CommandError::MissingArguments("SYNC")),
                [h, p] => (*h, *p, false),
                [h, p, f] if *f == "--full" => (*h, *p, true),
                _ => {
                    return Err(CommandError::Usage(
                        "SYNC command usage: SYNC host port [--full]",
                    ))
                }
            };
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or(CommandError::BadPort)?;
            Ok(Command::Sync { host, port, full })
        }
        "REPLICATE" => match args().as_slice() {
            [] => Err(CommandError::MissingArguments("REPLICATE")),
            [a] if a.eq_ignore_ascii_case("enable") => {
                Ok(Command::Replicate(ReplicateAction::Enable))
            }
            [a] if a.eq_ignore_ascii_case("disable") => {
                Ok(Command::Replicate(ReplicateAction::Disable))
            }
            [a] if a.eq_ignore_ascii_case("status") => {
                Ok(Command::Replicate(ReplicateAction::Status))
            }
            _ => Err(CommandError::Usage(
                "REPLICATE command usage: REPLICATE enable|disable|status",
            )),
        },
        "SHUTDOWN" => no_args("SHUTDOWN", Command::Shutdown),
        "QUIT" => Ok(Command::Quit),
        _ => Err(CommandError::Unknown(word.to_string())),
    }
}

/// Exactly one key (no spaces or tabs).
fn one_key<'a>(
    rest: Option<&'a str>,
    name: &'static str,
    usage: &'static str,
) -> Result<&'a str, CommandError> {
    let rest = rest
        .map(str::trim_start)
        .filter(|r| !r.is_empty())
        .ok_or(CommandError::MissingArguments(name))?;
    if rest.contains([' ', '\t']) {
        return Err(CommandError::Usage(usage));
    }
    Ok(rest)
}

/// A key, one space, then the value: everything after that space, leading
/// spaces included.
fn key_value<'a>(
    rest: Option<&'a str>,
    usage: &'static str,
) -> Result<(&'a str, &'a str), CommandError> {
    let rest = rest.ok_or(CommandError::Usage(usage))?;
    let rest = rest.trim_start_matches(' ');
    let (key, value) = rest.split_once(' ').ok_or(CommandError::Usage(usage))?;
    if key.is_empty() || key.contains('\t') {
        return Err(CommandError::Usage(usage));
    }
    Ok((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(line: &str) -> Command<'_> {
        parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn err(line: &str) -> String {
        match parse_line(line.as_bytes()) {
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn basic_commands_and_aliases() {
        assert_eq!(ok("GET k"), Command::Get(b"k"));
        assert_eq!(ok("get k\r"), Command::Get(b"k"));
        assert_eq!(ok("  SET k v  "), Command::Set(b"k", b"v"));
        assert_eq!(ok("SET k hello world"), Command::Set(b"k", b"hello world"));
        assert_eq!(ok("SET k  lead"), Command::Set(b"k", b" lead"));
        assert_eq!(ok("SET k a\tb"), Command::Set(b"k", b"a\tb"));
        assert_eq!(ok("SET k \"\""), Command::Set(b"k", b"\"\""));
        assert_eq!(ok("SET Key V"), Command::Set(b"Key", b"V"));
        assert_eq!(ok("DEL k"), Command::Delete(vec![b"k"]));
        assert_eq!(ok("DELETE k"), Command::Delete(vec![b"k"]));
        assert_eq!(ok("INC n"), Command::Increment(b"n", 1));
        assert_eq!(ok("INCR n 5"), Command::Increment(b"n", 5));
        assert_eq!(ok("DEC n"), Command::Increment(b"n", -1));
        assert_eq!(ok("DECR n 3"), Command::Increment(b"n", -3));
        assert_eq!(ok("INC n -2"), Command::Increment(b"n", -2));
        assert_eq!(ok("APPEND k v w"), Command::Append(b"k", b"v w"));
        assert_eq!(ok("PREPEND k v"), Command::Prepend(b"k", b"v"));
        assert_eq!(ok("MGET a b c"), Command::MGet(vec![b"a", b"b", b"c"]));
        assert_eq!(
            ok("MSET a 1 b 2"),
            Command::MSet(vec![(b"a", b"1"), (b"b", b"2")])
        );
        assert_eq!(ok("EXISTS a b"), Command::Exists(vec![b"a", b"b"]));
        assert_eq!(ok("SCAN"), Command::Scan(b""));
        assert_eq!(ok("SCAN user:"), Command::Scan(b"user:"));
        assert_eq!(ok("DBSIZE"), Command::DbSize);
        assert_eq!(ok("PING"), Command::Ping(None));
        assert_eq!(ok("PING hi there"), Command::Ping(Some(b"hi there")));
        assert_eq!(ok("ECHO a b"), Command::Echo(b"a b"));
        assert_eq!(ok("VERSION"), Command::Version);
        assert_eq!(ok("INFO"), Command::Info);
        assert_eq!(ok("STATS"), Command::Stats);
        assert_eq!(ok("MEMORY"), Command::Memory);
        assert_eq!(ok("CLIENT LIST"), Command::ClientList);
        assert_eq!(ok("client list"), Command::ClientList);
        for w in ["FLUSH", "FLUSHDB", "TRUNCATE", "flushall"] {
            assert_eq!(ok(w), Command::Flush);
        }
        assert_eq!(ok("HASH"), Command::Hash(None));
        assert_eq!(ok("HASH user:"), Command::Hash(Some(b"user:")));
        assert_eq!(
            ok("SYNC 127.0.0.1 7380"),
            Command::Sync {
                host: "127.0.0.1",
                port: 7380,
                full: false
            }
        );
        assert_eq!(
            ok("SYNC h 1 --full"),
            Command::Sync {
                host: "h",
                port: 1,
                full: true
            }
        );
        assert_eq!(
            ok("REPLICATE enable"),
            Command::Replicate(ReplicateAction::Enable)
        );
        assert_eq!(
            ok("REPLICATE DISABLE"),
            Command::Replicate(ReplicateAction::Disable)
        );
        assert_eq!(
            ok("REPLICATE status"),
            Command::Replicate(ReplicateAction::Status)
        );
        assert_eq!(ok("SHUTDOWN"), Command::Shutdown);
        assert_eq!(ok("QUIT"), Command::Quit);
        assert_eq!(
            ok("SET ключ значение"),
            Command::Set("ключ".as_bytes(), "значение".as_bytes())
        );
    }

    #[test]
    fn every_error_of_the_protocol() {
        assert_eq!(err(""), "Empty command");
        assert_eq!(err("   \r"), "Empty command");
        assert_eq!(err("FOO bar"), "Unknown command: FOO");
        assert_eq!(err("SET"), "SET command requires a key and value");
        assert_eq!(err("SET k"), "SET command requires a key and value");
        assert_eq!(err("INC"), "INC command requires arguments");
        assert_eq!(err("DECR"), "DEC command requires arguments");
        assert_eq!(err("INC n x"), "INC command amount must be a valid number");
        assert_eq!(
            err("DEC n 1.5"),
            "DEC command amount must be a valid number"
        );
        assert_eq!(
            err("DEC n -9223372036854775808"),
            "increment or decrement would overflow"
        );
        assert_eq!(err("APPEND"), "APPEND command requires a key and value");
        assert_eq!(err("PREPEND k"), "PREPEND command requires a key and value");
        assert_eq!(err("MGET"), "MGET command requires arguments");
        assert_eq!(
            err("MSET a"),
            "MSET command requires an even number of arguments (key-value pairs)"
        );
        assert_eq!(
            err("MSET a 1 b"),
            "MSET command requires an even number of arguments (key-value pairs)"
        );
        assert_eq!(err("GET"), "GET command requires arguments");
        assert_eq!(err("GET a b"), "GET command requires exactly one key");
        assert_eq!(err("DEL"), "DEL command requires arguments");
        assert_eq!(err("EXISTS"), "EXISTS command requires arguments");
        assert_eq!(err("ECHO"), "ECHO command requires arguments");
        assert_eq!(err("CLIENT"), "CLIENT command requires arguments");
        assert_eq!(err("SYNC"), "SYNC command requires arguments");
        assert_eq!(err("SYNC h"), "SYNC command usage: SYNC host port [--full]");
        assert_eq!(
            err("SYNC h 0"),
            "SYNC port must be a number between 1 and 65535"
        );
        assert_eq!(
            err("SYNC h 99999"),
            "SYNC port must be a number between 1 and 65535"
        );
        assert_eq!(
            err("REPLICATE maybe"),
            "REPLICATE command usage: REPLICATE enable|disable|status"
        );
        assert_eq!(err("DBSIZE x"), "DBSIZE command takes no arguments");
        assert_eq!(parse_line(b"GET \xff\xfe"), Err(CommandError::InvalidUtf8));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_line(&bytes);
        }

        #[test]
        fn arbitrary_words_never_panic(words in proptest::collection::vec("(?i)(get|set|inc|dec|mset|mget|sync|client|scan|hash|replicate|[a-z]{1,4}|-?[0-9]{1,20}| )", 0..6)) {
            let line = words.join(" ");
            let _ = parse_line(line.as_bytes());
        }
    }
}
