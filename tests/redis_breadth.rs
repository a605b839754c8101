//! Redis' everyday string commands beyond GET/SET, byte for byte against
//! our node and, where installed (always under CI), the real redis-server
//! in the same test; the same keyed commands through a partitioned
//! cluster's coordinator.

mod common;

use common::redis::{check_script, reply, Redis};
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
}
