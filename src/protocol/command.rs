//! The command set shared by both protocols.

/// `REPLICATE` sub-commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicateAction {
    /// Start the replication tasks.
    Enable,
    /// Stop them.
    Disable,
    /// Report state.
    Status,
}

/// What `COMMAND` asks for (Redis 7's subcommands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandQuery<'a> {
    /// `COMMAND`, or `COMMAND INFO` without names: every command's entry.
    All,
    /// `COMMAND INFO name…`: the named commands' entries (nil for a name
    /// that is not a command).
    Info(Vec<&'a [u8]>),
    /// `COMMAND DOCS [name…]`: documentation, of every command when no
    /// name is given (unknown names are left out).
    Docs(Vec<&'a [u8]>),
    /// `COMMAND COUNT`
    Count,
    /// `COMMAND LIST [FILTERBY …]`: the names.
    List(ListFilter<'a>),
    /// `COMMAND HELP`
    Help,
}

/// `COMMAND LIST FILTERBY …`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter<'a> {
    /// Every command.
    All,
    /// `MODULE name`: none (MerkleKV has no modules).
    Module,
    /// `ACLCAT category`: commands in the category (`string`, `write`, …).
    AclCategory(&'a [u8]),
    /// `PATTERN glob`: names matching the glob.
    Pattern(&'a [u8]),
}

/// A time to live as a command gives it; resolved against the store's
/// clock when the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireSpec {
    /// No deadline (a plain SET, `PERSIST`).
    Clear,
    /// Keep the key's deadline (`KEEPTTL`).
    Keep,
    /// This many milliseconds from now (may be zero or negative for
    /// `EXPIRE`: the key expires at once).
    In(i64),
    /// At this unix millisecond.
    At(i64),
}

/// What `TTL`, `PTTL`, `EXPIRETIME` and `PEXPIRETIME` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlReport {
    /// Seconds left, rounded (`TTL`).
    Seconds,
    /// Milliseconds left (`PTTL`).
    Millis,
    /// The deadline in unix seconds (`EXPIRETIME`).
    AtSeconds,
    /// The deadline in unix milliseconds (`PEXPIRETIME`).
    AtMillis,
}

/// How a conditional SET answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetReply {
    /// `OK`, or nil when a condition stopped it (`SET … NX|XX`, `SETEX`).
    Ok,
    /// `1` when written, `0` when not (`SETNX`).
    Integer,
    /// The old value or nil (`SET … GET`).
    Old,
}

/// The arguments of a conditional SET ([`Command::SetWith`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetArgs<'a> {
    /// Key.
    pub key: &'a [u8],
    /// Value.
    pub value: &'a [u8],
    /// Time to live.
    pub ttl: ExpireSpec,
    /// Condition (`NX`/`XX`).
    pub when: crate::store::SetWhen,
    /// Reply shape (`GET`: the old value).
    pub reply: SetReply,
}

/// The options of `SYNC host port`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncFlags {
    /// `--full`: full state exchange instead of Merkle descent.
    pub full: bool,
    /// `--merge`: a two-way last-writer-wins round (what periodic
    /// anti-entropy runs) instead of making this node a mirror of the peer.
    pub merge: bool,
    /// `--verbose`: answer `OK <the round's figures>` instead of `OK`.
    pub verbose: bool,
}

impl SyncFlags {
    /// Reads `--merge`, `--full` and `--verbose` (any order, any case, each
    /// at most once); `None` for anything else.
    pub fn parse<'s>(words: impl IntoIterator<Item = &'s [u8]>) -> Option<Self> {
        let mut flags = Self::default();
        for word in words {
            let slot = match word.to_ascii_lowercase().as_slice() {
                b"--full" => &mut flags.full,
                b"--merge" => &mut flags.merge,
                b"--verbose" => &mut flags.verbose,
                _ => return None,
            };
            if std::mem::replace(slot, true) {
                return None;
            }
        }
        Some(flags)
    }
}

/// A parsed request; borrows keys and values from the connection buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `GET k`
    Get(&'a [u8]),
    /// `SET k v`
    Set(&'a [u8], &'a [u8]),
    /// `SET` with options, `SETEX`, `PSETEX`, `SETNX` (boxed: the
    /// arguments would make every command larger to move).
    SetWith(Box<SetArgs<'a>>),
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` (RESP), `EXPIRE k s`
    /// (text).
    Expire {
        /// Key.
        key: &'a [u8],
        /// The new deadline (`In` or `At`).
        spec: ExpireSpec,
        /// Condition (`NX|XX|GT|LT`).
        when: crate::store::ExpireWhen,
    },
    /// `PERSIST k`
    Persist(&'a [u8]),
    /// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`.
    Ttl(&'a [u8], TtlReport),
    /// `GETEX k [EX|PX|EXAT|PXAT n | PERSIST]`
    GetEx {
        /// Key.
        key: &'a [u8],
        /// A new time to live (`Clear` for `PERSIST`), or none.
        ttl: Option<ExpireSpec>,
    },
    /// `MSETNX k1 v1 k2 v2 …`
    MSetNx(Vec<(&'a [u8], &'a [u8])>),
    /// `STRLEN k`
    Strlen(&'a [u8]),
    /// `GETDEL k`
    GetDel(&'a [u8]),
    /// `SETRANGE k offset value`
    SetRange(&'a [u8], usize, &'a [u8]),
    /// `GETRANGE k start end` (and its old name `SUBSTR`).
    GetRange(&'a [u8], i64, i64),
    /// `TYPE k`: `string` or `none`.
    Type(&'a [u8]),
    /// `TOUCH k …`: how many of the keys exist.
    Touch(Vec<&'a [u8]>),
    /// `RANDOMKEY`
    RandomKey,
    /// `TIME`
    Time,
    /// `INCRBYFLOAT k delta`
    IncrementFloat(&'a [u8], &'a [u8]),
    /// `RENAME from to` / `RENAMENX from to` (`only_if_absent`).
    Rename {
        /// The key renamed.
        from: &'a [u8],
        /// Its new name.
        to: &'a [u8],
        /// `RENAMENX`: not over an existing key.
        only_if_absent: bool,
    },
    /// `LASTSAVE`
    LastSave,
    /// `DEL k` / `DELETE k` (text: one key; RESP: several).
    Delete(Vec<&'a [u8]>),
    /// `INC`/`DEC`/`INCR`/`DECR`/`INCRBY`/`DECRBY`: add `delta`.
    Increment(&'a [u8], i64),
    /// `APPEND k v`
    Append(&'a [u8], &'a [u8]),
    /// `PREPEND k v`
    Prepend(&'a [u8], &'a [u8]),
    /// `MGET k1 k2 …`
    MGet(Vec<&'a [u8]>),
    /// `MSET k1 v1 k2 v2 …`
    MSet(Vec<(&'a [u8], &'a [u8])>),
    /// `EXISTS k1 …`
    Exists(Vec<&'a [u8]>),
    /// Text `SCAN [prefix]`: every key with the prefix, sorted.
    Scan(&'a [u8]),
    /// RESP `KEYS pattern` (Redis glob).
    Keys(&'a [u8]),
    /// RESP `SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]`: a page of
    /// about `count` keys from `cursor` on (keys in key-hash order; the
    /// cursor is where the next page starts).
    ScanCursor {
        /// Where this page starts (`0`: the beginning).
        cursor: u64,
        /// Keys must match (`None`: a `TYPE` other than `string`, nothing
        /// matches).
        pattern: Option<&'a [u8]>,
        /// How many keys to look at (Redis' hint).
        count: usize,
    },
    /// `DBSIZE`
    DbSize,
    /// `PING [msg]`
    Ping(Option<&'a [u8]>),
    /// `ECHO msg`
    Echo(&'a [u8]),
    /// `VERSION`
    Version,
    /// `INFO [section]`
    Info,
    /// `STATS`
    Stats,
    /// `MEMORY`
    Memory,
    /// `CLIENT LIST`
    ClientList,
    /// `CLIENT SETNAME name` (RESP clients send it on connect).
    ClientSetName(&'a [u8]),
    /// `CLIENT GETNAME`
    ClientGetName,
    /// `CLIENT ID`
    ClientId,
    /// `CLIENT SETINFO …` and other client hints that only need `+OK`.
    ClientNoop,
    /// `CONSISTENCY [one|quorum|all]`: show or set this connection's
    /// consistency level in a partitioned cluster (as cqlsh does).
    Consistency(Option<&'a [u8]>),
    /// `FLUSH` / `FLUSHDB` / `FLUSHALL` / `TRUNCATE`
    Flush,
    /// `HASH [prefix]`
    Hash(Option<&'a [u8]>),
    /// `SYNC host port [--merge] [--full] [--verbose]`
    Sync {
        /// Peer host.
        host: &'a str,
        /// The peer's client port or sync port.
        port: u16,
        /// How.
        flags: SyncFlags,
    },
    /// `REPLICATE enable|disable|status`
    Replicate(ReplicateAction),
    /// `SHUTDOWN`
    Shutdown,
    /// `SELECT db` (only 0 exists).
    Select(&'a [u8]),
    /// `COMMAND …` (RESP clients and redis-cli read it on connect).
    CommandInfo(CommandQuery<'a>),
    /// `CONFIG GET pattern` (answers the few keys clients ask for).
    ConfigGet(&'a [u8]),
    /// `QUIT`
    Quit,
    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`: switches the
    /// connection between RESP2 and RESP3, authenticating first with `AUTH`.
    Hello {
        /// Requested protocol version (`None`: keep the current one).
        protover: Option<&'a [u8]>,
        /// `AUTH user pass` arguments (boxed: they would make every
        /// command larger, and a command is moved on every request).
        auth: Option<Box<(&'a [u8], &'a [u8])>>,
        /// `SETNAME` argument.
        name: Option<&'a [u8]>,
    },
    /// `AUTH [user] password`
    Auth {
        /// The user (`None`: the default user).
        user: Option<&'a [u8]>,
        /// The password.
        password: &'a [u8],
    },
    /// `MULTI`: start queuing commands.
    Multi,
    /// `EXEC`: run the queued commands.
    Exec,
    /// `DISCARD`: drop the queued commands.
    Discard,
}

impl Command<'_> {
    /// Whether the command runs at once inside `MULTI` instead of being
    /// queued (as in Redis: `MULTI`, `EXEC`, `DISCARD`, `QUIT`).
    pub fn bypasses_transaction(&self) -> bool {
        matches!(
            self,
            Command::Multi | Command::Exec | Command::Discard | Command::Quit
        )
    }
}

/// Why a request could not be parsed; `Display` is the message clients see
/// after `ERROR ` (text) or `-ERR ` (RESP).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Empty line.
    #[error("Empty command")]
    Empty,
    /// Unknown command word.
    #[error("Unknown command: {0}")]
    Unknown(String),
    /// A command given without its arguments.
    #[error("{0} command requires arguments")]
    MissingArguments(&'static str),
    /// Wrong argument count or shape; the message says the expected usage.
    #[error("{0}")]
    Usage(&'static str),
    /// A non-numeric INC/DEC amount.
    #[error("{0} command amount must be a valid number")]
    BadAmount(&'static str),
    /// Bad `SYNC` port.
    #[error("SYNC port must be a number between 1 and 65535")]
    BadPort,
    /// Invalid UTF-8 in a text-protocol line.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// The amount cannot be negated (DEC by i64::MIN).
    #[error("increment or decrement would overflow")]
    Overflow,
    /// RESP: wrong number of arguments (Redis wording).
    #[error("wrong number of arguments for '{0}' command")]
    WrongArity(String),
    /// RESP: a non-integer where an integer is required (Redis wording).
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// RESP: an option this server does not support (Redis wording).
    #[error("syntax error")]
    Syntax,
    /// RESP: unknown command; the text is Redis' full message
    /// (`unknown command 'x', with args beginning with: 'a' 'b' `).
    #[error("{0}")]
    UnknownResp(String),
    /// RESP: a subcommand the command does not have (Redis wording).
    #[error("unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand {
        /// The subcommand as sent (lossy UTF-8).
        sub: String,
        /// The command, upper case.
        command: &'static str,
    },
    /// RESP: only database 0 exists.
    #[error("DB index is out of range")]
    DbIndex,
    /// A time to live that is not positive or out of range (Redis wording).
    #[error("invalid expire time in '{0}' command")]
    InvalidExpireTime(&'static str),
    /// RESP: a negative `SETRANGE` offset (Redis wording).
    #[error("offset is out of range")]
    OffsetOutOfRange,
    /// RESP: a `SCAN` cursor that is not an unsigned integer (Redis wording).
    #[error("invalid cursor")]
    InvalidCursor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_stays_small() {
        // Moved by value on every request: larger arguments go in a box
        // (`SetWith`, `Hello`'s `AUTH`).
        assert!(
            std::mem::size_of::<Command<'_>>() <= 48,
            "{}",
            std::mem::size_of::<Command<'_>>()
        );
    }
}
