//! The commands, one file per family. Each handler encodes its reply into
//! the connection's [`ReplyBuf`](crate::protocol::ReplyBuf) and returns an
//! [`Action`](super::session::Action) when the connection must do more
//! than keep reading; [`dispatch`](super::dispatch) maps every parsed
//! [`Command`](crate::protocol::Command) to its handler.
//!
//! * [`strings`]: GET, SET, DEL, INC/DEC, APPEND/PREPEND, MGET, MSET,
//!   EXISTS — single-key and multi-key reads and writes.
//! * [`breadth`]: GETDEL, SETRANGE, MSETNX, INCRBYFLOAT, RENAME, RENAMENX,
//!   STRLEN, GETRANGE, TYPE, TOUCH, RANDOMKEY, TIME.
//! * [`expiry`]: SET with options, SETEX, SETNX, EXPIRE and relatives,
//!   PERSIST, TTL and relatives, GETEX — keys with a time to live.
//! * [`keyspace`]: SCAN, KEYS, DBSIZE, FLUSH, HASH — the key space as a
//!   whole.
//! * [`client`]: PING, ECHO, QUIT, SELECT, HELLO, AUTH, CLIENT … — the
//!   connection itself.
//! * [`admin`]: VERSION, INFO, STATS, MEMORY, SHUTDOWN, CONFIG, LASTSAVE,
//!   SYNC, REPLICATE — the node.
//! * [`command_table`]: COMMAND and its subcommands — the table clients
//!   read (Redis' own entries for the Redis commands, from
//!   `redis_command_table`).
//! * [`transaction`]: MULTI, EXEC, DISCARD.
//! * [`write`]: how every write reaches the store and replication.
//! * [`routed`]: the keyed commands of a partitioned cluster, through the
//!   coordinator.
//!
//! docs/design.md ("Adding a command") lists the steps for a new one.

pub mod admin;
pub mod breadth;
pub mod client;
pub mod command_table;
pub mod expiry;
pub mod keyspace;
mod redis_command_table;
pub mod routed;
pub mod strings;
pub mod transaction;
pub mod write;
