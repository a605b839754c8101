//! `COMMAND`, `COMMAND COUNT | LIST | INFO | DOCS | HELP`: the command table
//! redis-cli (its hints) and client libraries read on connect. The Redis
//! commands MerkleKV answers carry Redis' own entries, byte for byte
//! (captured from redis-server into `redis_command_table.rs` by
//! `.ci/capture_command_table.py`); MerkleKV's own commands get entries of
//! the same shape. Entries are RESP2 (a RESP3 connection reads them too:
//! `COMMAND DOCS` then has flat arrays where Redis would send maps).

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::OnceLock;

use super::redis_command_table::REDIS_COMMANDS;
use crate::protocol::{glob, CommandQuery, ListFilter, ReplyBuf};

/// One command's row of the table.
struct Row {
    /// Lower case, as Redis names commands.
    name: &'static str,
    /// The `COMMAND INFO` entry (RESP).
    info: Cow<'static, [u8]>,
    /// The `COMMAND DOCS` entry, without the name (RESP).
    docs: Cow<'static, [u8]>,
}

/// A MerkleKV command that Redis does not have (or has otherwise:
/// `MEMORY`).
struct Own {
    name: &'static str,
    /// Redis' arity: the count with the name, negative for "at least".
    arity: i64,
    flags: &'static [&'static str],
    /// First key, last key, step (0, 0, 0: no keys).
    keys: (i64, i64, i64),
    categories: &'static [&'static str],
    summary: &'static str,
    group: &'static str,
}

const OWN_COMMANDS: &[Own] = &[
    Own {
        name: "consistency",
        arity: -1,
        flags: &["fast"],
        keys: (0, 0, 0),
        categories: &["@connection", "@fast"],
        summary: "Show or set this connection's consistency level (one, quorum, all) in a partitioned cluster",
        group: "connection",
    },
    Own {
        name: "dec",
        arity: 2,
        flags: &["write", "denyoom", "fast"],
        keys: (1, 1, 1),
        categories: &["@write", "@string", "@fast"],
        summary: "Decrement the integer value of a key by one (MerkleKV's DECR)",
        group: "string",
    },
    Own {
        name: "delete",
        arity: -2,
        flags: &["write"],
        keys: (1, -1, 1),
        categories: &["@keyspace", "@write", "@slow"],
        summary: "Delete keys (MerkleKV's DEL)",
        group: "generic",
    },
    Own {
        name: "flush",
        arity: -1,
        flags: &["write"],
        keys: (0, 0, 0),
        categories: &["@keyspace", "@write", "@slow", "@dangerous"],
        summary: "Delete every key, replicated as tombstones (MerkleKV's FLUSHDB)",
        group: "server",
    },
    Own {
        name: "hash",
        arity: -1,
        flags: &["readonly"],
        keys: (0, 0, 0),
        categories: &["@keyspace", "@read", "@slow"],
        summary: "The Merkle root of the key space, or of the keys with a prefix",
        group: "server",
    },
    Own {
        name: "inc",
        arity: 2,
        flags: &["write", "denyoom", "fast"],
        keys: (1, 1, 1),
        categories: &["@write", "@string", "@fast"],
        summary: "Increment the integer value of a key by one (MerkleKV's INCR)",
        group: "string",
    },
    Own {
        name: "memory",
        arity: 1,
        flags: &["readonly"],
        keys: (0, 0, 0),
        categories: &["@slow"],
        summary: "The node's resident memory in bytes",
        group: "server",
    },
    Own {
        name: "prepend",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        keys: (1, 1, 1),
        categories: &["@write", "@string", "@fast"],
        summary: "Prepend a value to a key",
        group: "string",
    },
    Own {
        name: "replicate",
        arity: 2,
        flags: &["admin"],
        keys: (0, 0, 0),
        categories: &["@admin", "@slow", "@dangerous"],
        summary: "Enable, disable or report MQTT replication",
        group: "server",
    },
    Own {
        name: "stats",
        arity: 1,
        flags: &["readonly"],
        keys: (0, 0, 0),
        categories: &["@slow"],
        summary: "Command and connection counters",
        group: "server",
    },
    Own {
        name: "sync",
        arity: -3,
        flags: &["admin", "write"],
        keys: (0, 0, 0),
        categories: &["@admin", "@slow", "@dangerous"],
        summary: "Make this node hold exactly a peer's data (--merge: a two-way last-writer-wins round)",
        group: "server",
    },
    Own {
        name: "truncate",
        arity: 1,
        flags: &["write"],
        keys: (0, 0, 0),
        categories: &["@keyspace", "@write", "@slow", "@dangerous"],
        summary: "Delete every key (MerkleKV's FLUSHDB)",
        group: "server",
    },
    Own {
        name: "version",
        arity: 1,
        flags: &["fast"],
        keys: (0, 0, 0),
        categories: &["@fast"],
        summary: "The server's version",
        group: "server",
    },
];

/// Appends a RESP bulk string.
fn bulk(out: &mut Vec<u8>, text: &str) {
    let _ = write!(out, "${}\r\n{text}\r\n", text.len());
}

/// Appends a RESP array of simple strings.
fn simple_array(out: &mut Vec<u8>, items: &[&str]) {
    let _ = write!(out, "*{}\r\n", items.len());
    for item in items {
        let _ = write!(out, "+{item}\r\n");
    }
}

impl Own {
    /// Redis 7's ten-element `COMMAND INFO` entry.
    fn info(&self) -> Vec<u8> {
        let mut out = b"*10\r\n".to_vec();
        bulk(&mut out, self.name);
        let (first, last, step) = self.keys;
        let _ = write!(out, ":{}\r\n", self.arity);
        simple_array(&mut out, self.flags);
        let _ = write!(out, ":{first}\r\n:{last}\r\n:{step}\r\n");
        simple_array(&mut out, self.categories);
        // No tips, key specifications or subcommands.
        out.extend_from_slice(b"*0\r\n*0\r\n*0\r\n");
        out
    }

    /// The `COMMAND DOCS` entry: summary, since and group.
    fn docs(&self) -> Vec<u8> {
        let mut out = b"*6\r\n".to_vec();
        for text in [
            "summary",
            self.summary,
            "since",
            "1.0.0",
            "group",
            self.group,
        ] {
            bulk(&mut out, text);
        }
        out
    }
}

/// Every row, by name.
fn table() -> &'static [Row] {
    static TABLE: OnceLock<Vec<Row>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let redis = REDIS_COMMANDS.iter().map(|&(name, info, docs)| Row {
            name,
            info: Cow::Borrowed(info),
            docs: Cow::Borrowed(docs),
        });
        let own = OWN_COMMANDS.iter().map(|c| Row {
            name: c.name,
            info: Cow::Owned(c.info()),
            docs: Cow::Owned(c.docs()),
        });
        let mut rows: Vec<Row> = redis.chain(own).collect();
        rows.sort_by_key(|r| r.name);
        rows
    })
}

/// The row of `name` (any case).
fn find(name: &[u8]) -> Option<&'static Row> {
    let lower = name.to_ascii_lowercase();
    let rows = table();
    rows.binary_search_by(|r| r.name.as_bytes().cmp(&lower))
        .ok()
        .map(|i| &rows[i])
}

/// The ACL categories of an entry: its seventh element.
fn categories(info: &[u8]) -> Vec<&[u8]> {
    let mut items = resp_elements(info);
    let Some(header) = items.next() else {
        return Vec::new();
    };
    debug_assert!(header.starts_with(b"*"));
    match items.nth(6) {
        Some(array) => array
            .split(|&b| b == b'\n')
            .skip(1)
            .filter_map(|line| line.strip_prefix(b"+@"))
            .map(|c| c.strip_suffix(b"\r").unwrap_or(c))
            .collect(),
        None => Vec::new(),
    }
}

/// The outer array's header, then each of its elements (raw RESP), of a
/// well-formed entry of the table.
fn resp_elements(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    let header_end = raw
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |i| i + 1);
    let (header, mut rest) = raw.split_at(header_end);
    std::iter::once(header).chain(std::iter::from_fn(move || {
        let len = resp_len(rest)?;
        let (element, tail) = rest.split_at(len);
        rest = tail;
        Some(element)
    }))
}

/// The length of the RESP value at the start of `raw`.
fn resp_len(raw: &[u8]) -> Option<usize> {
    let line_end = raw.windows(2).position(|w| w == b"\r\n")? + 2;
    let body = std::str::from_utf8(&raw[1..line_end - 2]).ok()?;
    match raw.first()? {
        b'+' | b'-' | b':' => Some(line_end),
        b'$' => {
            let n: i64 = body.parse().ok()?;
            Some(if n < 0 {
                line_end
            } else {
                line_end + usize::try_from(n).ok()? + 2
            })
        }
        b'*' => {
            let n: i64 = body.parse().ok()?;
            let mut at = line_end;
            for _ in 0..n.max(0) {
                at += resp_len(&raw[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}

const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all commands.",
    "COUNT",
    "    Return the total number of commands in this server.",
    "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
    "    Return a list of all commands in this server.",
    "INFO [<command-name> ...]",
    "    Return details about the named commands, or all commands when none is given.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about the named commands, or all commands when none is given.",
    "HELP",
    "    Print this help.",
];

/// Answers a `COMMAND` query.
pub fn answer(out: &mut ReplyBuf, query: CommandQuery<'_>) {
    let rows = table();
    match query {
        CommandQuery::All => {
            out.array_start(rows.len());
            rows.iter().for_each(|r| out.raw_resp(&r.info));
        }
        CommandQuery::Count => out.integer(i64::try_from(rows.len()).unwrap_or(i64::MAX)),
        CommandQuery::Info(names) => {
            out.array_start(names.len());
            for name in names {
                match find(name) {
                    Some(row) => out.raw_resp(&row.info),
                    None => out.nil(),
                }
            }
        }
        CommandQuery::Docs(names) => {
            let found: Vec<&Row> = if names.is_empty() {
                rows.iter().collect()
            } else {
                names.iter().filter_map(|n| find(n)).collect()
            };
            out.array_start(found.len() * 2);
            for row in found {
                out.bulk_or_line(row.name.as_bytes());
                out.raw_resp(&row.docs);
            }
        }
        CommandQuery::List(filter) => {
            let names: Vec<&[u8]> = rows
                .iter()
                .filter(|r| match filter {
                    ListFilter::All => true,
                    ListFilter::Module => false,
                    ListFilter::Pattern(p) => glob::matches(p, r.name.as_bytes()),
                    ListFilter::AclCategory(c) => categories(&r.info)
                        .iter()
                        .any(|have| have.eq_ignore_ascii_case(c)),
                })
                .map(|r| r.name.as_bytes())
                .collect();
            out.string_array(&names);
        }
        CommandQuery::Help => {
            out.array_start(HELP.len());
            HELP.iter().for_each(|line| out.status(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_one_well_formed_resp_value() {
        for row in table() {
            assert_eq!(resp_len(&row.info), Some(row.info.len()), "{}", row.name);
            assert_eq!(resp_len(&row.docs), Some(row.docs.len()), "{}", row.name);
            assert_eq!(resp_elements(&row.info).count(), 11, "{}", row.name);
        }
    }

    #[test]
    fn names_are_unique_and_found_in_any_case() {
        let rows = table();
        assert!(rows.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(find(b"GeT").map(|r| r.name), Some("get"));
        assert_eq!(find(b"SYNC").map(|r| r.name), Some("sync"));
        assert!(find(b"lpush").is_none());
    }

    #[test]
    fn categories_come_from_the_entry_itself() {
        let get = find(b"get").expect("get");
        assert_eq!(categories(&get.info), [&b"read"[..], b"string", b"fast"]);
        let sync = find(b"sync").expect("sync");
        assert!(categories(&sync.info).contains(&&b"admin"[..]));
    }
}
