//! Redis' everyday string commands beyond GET/SET, byte for byte against
//! our node and, where installed (always under CI), the real redis-server
//! in the same test; the same keyed commands through a partitioned
//! cluster's coordinator.

mod common;

use common::redis::{check_script, reply, whole_reply, Redis};
use common::{Client, NodeProcess, NodeSpec};

/// A script with only deterministic replies (RANDOMKEY and TIME are
/// checked by shape below).
fn script() -> Vec<(Vec<&'static str>, &'static str)> {
    vec![
        (vec!["SET", "s", "Hello World"], "+OK\r\n"),
        (vec!["STRLEN", "s"], ":11\r\n"),
        (vec!["STRLEN", "missing"], ":0\r\n"),
        (
            vec!["STRLEN"],
            "-ERR wrong number of arguments for 'strlen' command\r\n",
        ),
        (vec!["GETRANGE", "s", "0", "3"], "$4\r\nHell\r\n"),
        (vec!["GETRANGE", "s", "-3", "-1"], "$3\r\nrld\r\n"),
        (vec!["GETRANGE", "s", "0", "-1"], "$11\r\nHello World\r\n"),
        (vec!["GETRANGE", "s", "10", "100"], "$1\r\nd\r\n"),
        (vec!["GETRANGE", "s", "5", "3"], "$0\r\n\r\n"),
        (vec!["GETRANGE", "missing", "0", "-1"], "$0\r\n\r\n"),
        (
            vec!["GETRANGE", "s", "x", "1"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (vec!["SUBSTR", "s", "6", "-1"], "$5\r\nWorld\r\n"),
        (vec!["TYPE", "s"], "+string\r\n"),
        (vec!["TYPE", "missing"], "+none\r\n"),
        (vec!["TOUCH", "s", "missing", "s"], ":2\r\n"),
        (vec!["GETSET", "s", "new"], "$11\r\nHello World\r\n"),
        (vec!["GETSET", "fresh", "v"], "$-1\r\n"),
        (vec!["GET", "fresh"], "$1\r\nv\r\n"),
        (vec!["SET", "t", "v", "EX", "100"], "+OK\r\n"),
        (vec!["GETSET", "t", "w"], "$1\r\nv\r\n"),
        (vec!["TTL", "t"], ":-1\r\n"),
        (
            vec!["GETSET", "t"],
            "-ERR wrong number of arguments for 'getset' command\r\n",
        ),
        (vec!["SET", "g", "v"], "+OK\r\n"),
        (vec!["GETDEL", "g"], "$1\r\nv\r\n"),
        (vec!["GET", "g"], "$-1\r\n"),
        (vec!["GETDEL", "g"], "$-1\r\n"),
        (vec!["SET", "r", "Hello World"], "+OK\r\n"),
        (vec!["SETRANGE", "r", "6", "Redis"], ":11\r\n"),
        (vec!["GET", "r"], "$11\r\nHello Redis\r\n"),
        (vec!["SETRANGE", "r", "1", ""], ":11\r\n"),
        (vec!["SETRANGE", "pad", "3", "x"], ":4\r\n"),
        (vec!["GET", "pad"], "$4\r\n\0\0\0x\r\n"),
        (vec!["SETRANGE", "nothing", "0", ""], ":0\r\n"),
        (vec!["EXISTS", "nothing"], ":0\r\n"),
        (
            vec!["SETRANGE", "r", "-1", "x"],
            "-ERR offset is out of range\r\n",
        ),
        (
            vec!["SETRANGE", "r", "y", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (vec!["SET", "e", "v", "EX", "100"], "+OK\r\n"),
        (vec!["SETRANGE", "e", "0", "w"], ":1\r\n"),
        (vec!["TTL", "e"], ":100\r\n"),
    ]
}

#[test]
fn string_commands_answer_byte_for_byte_as_redis_does() {
    let node = NodeProcess::start(NodeSpec::new("breadth"));
    let redis = Redis::start();
    let mut ours = Client::connect(node.port);
    let mut theirs = redis.as_ref().map(|r| Client::connect(r.port));
    check_script(&mut ours, theirs.as_mut(), &script());
    // MSETNX: all or nothing (a full replica only; see the cluster test).
    let msetnx: Vec<(Vec<&str>, &str)> = vec![
        (vec!["MSETNX", "m1", "1", "m2", "2"], ":1\r\n"),
        (vec!["MSETNX", "m2", "3", "m3", "4"], ":0\r\n"),
        (vec!["GET", "m3"], "$-1\r\n"),
        (vec!["GET", "m2"], "$1\r\n2\r\n"),
        (vec!["MSETNX", "d", "1", "d", "2"], ":1\r\n"),
        (vec!["GET", "d"], "$1\r\n2\r\n"),
        (
            vec!["MSETNX", "m9"],
            "-ERR wrong number of arguments for 'msetnx' command\r\n",
        ),
        (
            vec!["MSETNX", "m9", "1", "m8"],
            "-ERR wrong number of arguments for 'msetnx' command\r\n",
        ),
    ];
    check_script(&mut ours, theirs.as_mut(), &msetnx);
    // RANDOMKEY and TIME vary: their shapes.
    let key = reply(&mut ours, &["RANDOMKEY"], 1);
    assert_eq!(key, "$");
    let len: usize = ours.line().trim().parse().expect("bulk length");
    let name = ours.line();
    assert!(
        ["s", "fresh", "t", "r", "pad", "e", "m1", "m2", "d"].contains(&name.trim()),
        "{name:?} ({len})"
    );
    assert_eq!(reply(&mut ours, &["TIME"], 4), "*2\r\n");
    let mut parts = Vec::new();
    for _ in 0..2 {
        let _len = ours.line();
        parts.push(ours.line().trim().parse::<u64>().expect("a number"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(
        parts[0].abs_diff(now) <= 5 && parts[1] < 1_000_000,
        "{parts:?}"
    );
    // SETRANGE far beyond the value size limit is refused before anything
    // is allocated, and the node goes on.
    let huge = reply(&mut ours, &["SETRANGE", "h", "100000000000", "x"], 5);
    assert_eq!(huge, "-ERR ");
    let _ = ours.line();
    assert_eq!(reply(&mut ours, &["EXISTS", "h"], 4), ":0\r\n");
    // An empty node has no random key.
    let empty = NodeProcess::start(NodeSpec::new("empty"));
    let mut e = Client::connect(empty.port);
    assert_eq!(reply(&mut e, &["RANDOMKEY"], 5), "$-1\r\n");
    // Other data types are refused by name, and the connection goes on.
    let lpush = reply(&mut ours, &["LPUSH", "l", "a"], 5);
    assert_eq!(lpush, "-ERR ");
    let rest = ours.line();
    assert!(
        rest.starts_with("'lpush' is not supported: MerkleKV stores strings only"),
        "{rest}"
    );
    assert_eq!(reply(&mut ours, &["PING"], 7), "+PONG\r\n");
}

/// Every key of a full SCAN, page by page with `COUNT count`.
fn scan_all(c: &mut Client, count: &str) -> (std::collections::BTreeSet<String>, usize) {
    let mut keys = std::collections::BTreeSet::new();
    let mut cursor = "0".to_owned();
    let mut pages = 0;
    loop {
        c.send(&common::redis::request(&["SCAN", &cursor, "COUNT", count]));
        assert_eq!(c.line(), "*2\r\n");
        let _ = c.line();
        cursor = c.line().trim().to_owned();
        let n: usize = c
            .line()
            .trim()
            .trim_start_matches('*')
            .parse()
            .expect("array");
        for _ in 0..n {
            let _ = c.line();
            keys.insert(c.line().trim().to_owned());
        }
        pages += 1;
        if cursor == "0" {
            return (keys, pages);
        }
        assert!(pages < 10_000, "SCAN never ended");
    }
}

#[test]
fn scan_pages_with_a_real_cursor_like_redis() {
    let node = NodeProcess::start(NodeSpec::new("scan"));
    let redis = Redis::start();
    let mut clients = vec![Client::connect(node.port)];
    if let Some(r) = &redis {
        clients.push(Client::connect(r.port));
    }
    for c in clients.iter_mut() {
        let load: String = (0..500)
            .map(|i| {
                let k = format!("key:{i}");
                String::from_utf8(common::redis::request(&["SET", &k, "v"])).expect("utf8")
            })
            .collect();
        c.send(load.as_bytes());
        for _ in 0..500 {
            assert_eq!(c.line(), "+OK\r\n");
        }
    }
    let (ours, pages) = scan_all(&mut clients[0], "20");
    assert_eq!(ours.len(), 500);
    assert!(
        (20..=60).contains(&pages),
        "{pages} pages of COUNT 20 for 500 keys"
    );
    if clients.len() > 1 {
        let (theirs, _) = scan_all(&mut clients[1], "20");
        assert_eq!(ours, theirs, "the same keys as redis-server's SCAN");
    }
}

/// INCRBYFLOAT, RENAME and RENAMENX, with Redis' results and errors.
fn float_and_rename_script() -> Vec<(Vec<&'static str>, &'static str)> {
    vec![
        (vec!["SET", "f", "10.50"], "+OK\r\n"),
        (vec!["INCRBYFLOAT", "f", "0.1"], "$4\r\n10.6\r\n"),
        (vec!["INCRBYFLOAT", "f", "-5"], "$3\r\n5.6\r\n"),
        // 5.6 + 200 in a long double is 205.600000000000000005…
        (
            vec!["INCRBYFLOAT", "f", "2.0e2"],
            "$21\r\n205.60000000000000001\r\n",
        ),
        (vec!["INCRBYFLOAT", "fresh-f", "0.2"], "$3\r\n0.2\r\n"),
        (vec!["INCRBYFLOAT", "fresh-f", "0.1"], "$3\r\n0.3\r\n"),
        (vec!["INCRBYFLOAT", "fresh-f", "-0.3"], "$1\r\n0\r\n"),
        (vec!["SET", "word", "abc"], "+OK\r\n"),
        (
            vec!["INCRBYFLOAT", "word", "1"],
            "-ERR value is not a valid float\r\n",
        ),
        (
            vec!["INCRBYFLOAT", "f", "x"],
            "-ERR value is not a valid float\r\n",
        ),
        (
            vec!["INCRBYFLOAT", "f", " 1"],
            "-ERR value is not a valid float\r\n",
        ),
        (
            vec!["INCRBYFLOAT", "f", "nan"],
            "-ERR value is not a valid float\r\n",
        ),
        (
            vec!["INCRBYFLOAT", "f", "inf"],
            "-ERR increment would produce NaN or Infinity\r\n",
        ),
        (
            vec!["INCRBYFLOAT", "f"],
            "-ERR wrong number of arguments for 'incrbyfloat' command\r\n",
        ),
        (vec!["GET", "f"], "$21\r\n205.60000000000000001\r\n"),
        (vec!["SET", "ttl-f", "1", "EX", "100"], "+OK\r\n"),
        (vec!["INCRBYFLOAT", "ttl-f", "1.5"], "$3\r\n2.5\r\n"),
        (vec!["TTL", "ttl-f"], ":100\r\n"),
        (vec!["SET", "a", "1", "EX", "100"], "+OK\r\n"),
        (vec!["SET", "b", "2"], "+OK\r\n"),
        (vec!["RENAME", "a", "b"], "+OK\r\n"),
        (vec!["GET", "b"], "$1\r\n1\r\n"),
        (vec!["TTL", "b"], ":100\r\n"),
        (vec!["EXISTS", "a"], ":0\r\n"),
        (vec!["RENAME", "a", "c"], "-ERR no such key\r\n"),
        (vec!["RENAMENX", "a", "c"], "-ERR no such key\r\n"),
        (vec!["RENAME", "b", "b"], "+OK\r\n"),
        (vec!["RENAMENX", "b", "b"], ":0\r\n"),
        (vec!["SET", "c", "3"], "+OK\r\n"),
        (vec!["RENAMENX", "b", "c"], ":0\r\n"),
        (vec!["RENAMENX", "b", "d"], ":1\r\n"),
        (
            vec!["MGET", "b", "c", "d"],
            "*3\r\n$-1\r\n$1\r\n3\r\n$1\r\n1\r\n",
        ),
        (vec!["PERSIST", "d"], ":1\r\n"),
        (vec!["RENAME", "d", "e"], "+OK\r\n"),
        (vec!["TTL", "e"], ":-1\r\n"),
        (
            vec!["RENAME", "e"],
            "-ERR wrong number of arguments for 'rename' command\r\n",
        ),
    ]
}

#[test]
fn float_increments_and_renames_answer_as_redis_does() {
    let node = NodeProcess::start(NodeSpec::new("float"));
    let redis = Redis::start();
    let mut ours = Client::connect(node.port);
    let mut theirs = redis.as_ref().map(|r| Client::connect(r.port));
    check_script(&mut ours, theirs.as_mut(), &float_and_rename_script());
    // Random sums, compared with redis-server's (long double) results.
    let Some(redis) = theirs.as_mut() else {
        return;
    };
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let number = |r: u64| {
        let digits = r % 1_000_000_007;
        let sign = if r & 1 == 0 { "" } else { "-" };
        let exp_sign = if r & 2 == 0 { "" } else { "-" };
        match (r >> 8) % 4 {
            0 => format!("{sign}{digits}"),
            1 => format!("{sign}0.{digits}"),
            2 => format!("{sign}{}.{}", digits % 1000, r % 97),
            _ => format!(
                "{sign}{}.{}e{exp_sign}{}",
                digits % 100,
                r % 1000,
                (r >> 20) % 30
            ),
        }
    };
    for i in 0..300 {
        let key = format!("rnd{}", i % 7);
        let by = number(next());
        let args = ["INCRBYFLOAT", key.as_str(), by.as_str()];
        let mine = whole_reply(&mut ours, &args);
        let real = whole_reply(redis, &args);
        assert_eq!(
            String::from_utf8_lossy(&mine),
            String::from_utf8_lossy(&real),
            "{args:?}"
        );
    }
}

/// `COMMAND` subcommands whose replies are the same on any server.
fn command_errors() -> Vec<(Vec<&'static str>, &'static str)> {
    vec![
        (
            vec!["COMMAND", "COUNT", "x"],
            "-ERR wrong number of arguments for 'command|count' command\r\n",
        ),
        (
            vec!["COMMAND", "FOO"],
            "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n",
        ),
        (vec!["COMMAND", "LIST", "x"], "-ERR syntax error\r\n"),
        (vec!["COMMAND", "LIST", "FILTERBY"], "-ERR syntax error\r\n"),
        (vec!["COMMAND", "LIST", "FILTERBY", "MODULE", "m"], "*0\r\n"),
        (vec!["COMMAND", "INFO", "nosuch"], "*1\r\n$-1\r\n"),
        (vec!["COMMAND", "DOCS", "nosuch"], "*0\r\n"),
    ]
}

/// Redis' entry for a command and ours are the same bytes; for a command
/// with subcommands (listed in hash order, which differs between Redis
/// runs) the same lines in another order.
fn assert_same_entry(name: &str, mine: &[u8], real: &[u8], what: &str) {
    if mine == real {
        return;
    }
    let lines = |raw: &[u8]| {
        let mut lines: Vec<String> = String::from_utf8_lossy(raw)
            .split("\r\n")
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    assert!(
        ["client", "command", "config"].contains(&name),
        "COMMAND {what} {name}: ours {:?}, redis-server {:?}",
        String::from_utf8_lossy(mine),
        String::from_utf8_lossy(real)
    );
    assert_eq!(lines(mine), lines(real), "COMMAND {what} {name}");
}

#[test]
fn the_command_table_is_redis_own_for_redis_commands() {
    let node = NodeProcess::start(NodeSpec::new("commands"));
    let redis = Redis::start();
    let mut ours = Client::connect(node.port);
    let mut theirs = redis.as_ref().map(|r| Client::connect(r.port));
    check_script(&mut ours, theirs.as_mut(), &command_errors());
    // COUNT agrees with LIST and with COMMAND's own array.
    let list = whole_reply(&mut ours, &["COMMAND", "LIST"]);
    let names: Vec<String> = String::from_utf8_lossy(&list)
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.starts_with('$') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(names.len() > 60, "{names:?}");
    let count = whole_reply(&mut ours, &["COMMAND", "COUNT"]);
    assert_eq!(
        String::from_utf8_lossy(&count),
        format!(":{}\r\n", names.len())
    );
    let all = whole_reply(&mut ours, &["COMMAND"]);
    assert!(all.starts_with(format!("*{}\r\n", names.len()).as_bytes()));
    // Every listed command is one this node runs (never "unknown").
    let unsafe_alone = [
        "shutdown",
        "quit",
        "multi",
        "exec",
        "discard",
        "flush",
        "flushall",
        "flushdb",
        "truncate",
        "sync",
        "replicate",
        "command",
    ];
    for name in names.iter().filter(|n| !unsafe_alone.contains(&n.as_str())) {
        let answer = whole_reply(&mut ours, &[name]);
        let answer = String::from_utf8_lossy(&answer);
        assert!(!answer.contains("unknown command"), "{name}: {answer}");
        assert!(!answer.contains("not supported"), "{name}: {answer}");
    }
    // Subcommand filters.
    let strings = whole_reply(
        &mut ours,
        &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "string"],
    );
    let strings = String::from_utf8_lossy(&strings);
    assert!(strings.contains("\r\nincrbyfloat\r\n"), "{strings}");
    assert!(!strings.contains("\r\nping\r\n"), "{strings}");
    let pattern = whole_reply(
        &mut ours,
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "getr*"],
    );
    assert_eq!(
        String::from_utf8_lossy(&pattern),
        "*1\r\n$8\r\ngetrange\r\n"
    );
    // Redis' commands: its own entries and docs, byte for byte.
    let Some(redis) = theirs.as_mut() else {
        return;
    };
    let mut compared = 0;
    for name in &names {
        let real = whole_reply(redis, &["COMMAND", "INFO", name]);
        // MerkleKV's own commands; MEMORY (the node's RSS) and SYNC (an
        // anti-entropy round) are too, not Redis' commands of that name.
        if real == b"*1\r\n$-1\r\n" || ["memory", "sync"].contains(&name.as_str()) {
            continue;
        }
        let mine = whole_reply(&mut ours, &["COMMAND", "INFO", name]);
        assert_same_entry(name, &mine, &real, "INFO");
        let mine = whole_reply(&mut ours, &["COMMAND", "DOCS", name]);
        let real = whole_reply(redis, &["COMMAND", "DOCS", name]);
        assert_same_entry(name, &mine, &real, "DOCS");
        compared += 1;
    }
    assert!(compared > 50, "{compared} commands compared");
}

#[test]
fn lastsave_is_the_last_time_the_log_reached_the_disk() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    };
    let read = |c: &mut Client| -> u64 {
        let raw = whole_reply(c, &["LASTSAVE"]);
        let text = String::from_utf8_lossy(&raw);
        text.trim()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("LASTSAVE answered {text:?}"))
    };
    // In memory: the node's start.
    let started = now();
    let memory = NodeProcess::start(NodeSpec::new("lastsave-mem"));
    let mut c = Client::connect(memory.port);
    let at = read(&mut c);
    assert!(at.abs_diff(started) <= 3, "{at} vs {started}");
    // Durable: the start, then the fsync after a write (everysec).
    let durable = NodeProcess::start(
        NodeSpec::new("lastsave-disk").env("MERKLE_KV_STORAGE_PERSISTENCE", "true"),
    );
    let mut c = Client::connect(durable.port);
    let first = read(&mut c);
    assert!(first.abs_diff(now()) <= 3, "{first}");
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    assert_eq!(reply(&mut c, &["SET", "k", "v"], 5), "+OK\r\n");
    let later = common::wait_until(std::time::Duration::from_secs(5), || read(&mut c) > first);
    assert!(later, "LASTSAVE stayed at {first} after a write");
}

#[test]
fn string_commands_through_a_partitioned_cluster() {
    let started = common::cluster::start_cluster(3, 2);
    let mut first = Client::connect(started.nodes[0].port);
    let mut other = Client::connect(started.nodes[2].port);
    check_script(&mut first, None, &script()[..1]);
    check_script(&mut other, None, &script()[1..]);
    // MSETNX is refused there, clearly, and nothing is written.
    assert_eq!(
        reply(&mut other, &["MSETNX", "x1", "1", "x2", "2"], 5),
        "-ERR "
    );
    let rest = other.line();
    assert!(
        rest.starts_with("MSETNX is not supported in a partitioned cluster"),
        "{rest}"
    );
    assert_eq!(reply(&mut first, &["EXISTS", "x1", "x2"], 4), ":0\r\n");
    // INCRBYFLOAT runs on the key's primary; RENAME is refused like MSETNX.
    let floats: Vec<(Vec<&str>, &str)> = float_and_rename_script()
        .into_iter()
        .take_while(|(args, _)| args[0] != "SET" || args[1] != "a")
        .collect();
    check_script(&mut other, None, &floats);
    assert_eq!(
        reply(&mut first, &["GET", "f"], 28),
        "$21\r\n205.60000000000000001\r\n"
    );
    assert_eq!(reply(&mut first, &["RENAME", "f", "g"], 5), "-ERR ");
    let rest = first.line();
    assert!(
        rest.starts_with("RENAME is not supported in a partitioned cluster"),
        "{rest}"
    );
    assert_eq!(reply(&mut first, &["EXISTS", "f", "g"], 4), ":1\r\n");
}
