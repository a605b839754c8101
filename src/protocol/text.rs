//! The MerkleKV text protocol: one command per line (see docs/protocol.md).

use super::command::{Command, CommandError};
use super::commands::{admin, client, expiry, keyspace, strings};
use super::request::TextRequest;

/// Parses one line (without its `\n`; a trailing `\r` and surrounding
/// whitespace are trimmed here). Each command family parses its own words
/// ([`commands`](super::commands)).
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
    let request = TextRequest {
        upper: word.to_ascii_uppercase(),
        word,
        rest,
    };
    strings::text(&request)
        .or_else(|| expiry::text(&request))
        .or_else(|| keyspace::text(&request))
        .or_else(|| client::text(&request))
        .or_else(|| admin::text(&request))
        .unwrap_or_else(|| Err(CommandError::Unknown(request.word.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ReplicateAction, SyncFlags};
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
                flags: SyncFlags::default()
            }
        );
        assert_eq!(
            ok("SYNC h 1 --full"),
            Command::Sync {
                host: "h",
                port: 1,
                flags: SyncFlags {
                    full: true,
                    ..SyncFlags::default()
                }
            }
        );
        assert_eq!(
            ok("SYNC h 1 --verbose --MERGE"),
            Command::Sync {
                host: "h",
                port: 1,
                flags: SyncFlags {
                    merge: true,
                    verbose: true,
                    ..SyncFlags::default()
                }
            }
        );
        assert!(parse_line(b"SYNC h 1 --merge --merge").is_err());
        assert!(parse_line(b"SYNC h 1 --fast").is_err());
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
        assert_eq!(
            err("SYNC h"),
            "SYNC command usage: SYNC host port [--merge] [--full] [--verbose]"
        );
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
