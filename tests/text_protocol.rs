//! The MerkleKV text protocol end to end: every row of the protocol table
//! byte for byte against the real binary, multi-line replies, framing
//! details, pipelining, large values, SHUTDOWN and HASH.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{metric, wait_until, Client, NodeProcess, NodeSpec};

/// Sends `cmd` + `\r\n` and checks the whole reply, byte for byte: as many
/// lines as `expected` holds are read and compared with it.
fn expect(c: &mut Client, cmd: &str, expected: &str) {
    c.send(format!("{cmd}\r\n").as_bytes());
    let lines = expected.matches("\r\n").count();
    assert!(lines > 0, "expected reply must end in \\r\\n: {expected:?}");
    let got: String = (0..lines).map(|_| c.line()).collect();
    assert_eq!(got, expected, "reply to {cmd:?}");
}

fn node() -> NodeProcess {
    NodeProcess::start(NodeSpec::new("t1"))
}

#[test]
fn every_row_of_the_protocol_table_byte_for_byte() {
    let node = node();
    let mut c = node.client();
    let rows: &[(&str, &str)] = &[
        // GET / SET / DEL / DELETE
        ("GET k", "NOT_FOUND\r\n"),
        ("SET k v", "OK\r\n"),
        ("GET k", "VALUE v\r\n"),
        ("SET k hello world", "OK\r\n"),
        ("GET k", "VALUE hello world\r\n"),
        ("SET", "ERROR SET command requires a key and value\r\n"),
        ("SET k", "ERROR SET command requires a key and value\r\n"),
        ("DEL k", "DELETED\r\n"),
        ("DEL k", "NOT_FOUND\r\n"),
        ("SET k2 v", "OK\r\n"),
        ("DELETE k2", "DELETED\r\n"),
        ("DELETE k2", "NOT_FOUND\r\n"),
        // INC / INCR / DEC / DECR, with and without an amount
        ("INC n", "VALUE 1\r\n"),
        ("INC n 10", "VALUE 11\r\n"),
        ("INCR n", "VALUE 12\r\n"),
        ("INCR n 3", "VALUE 15\r\n"),
        ("INC n -20", "VALUE -5\r\n"),
        ("DEC n", "VALUE -6\r\n"),
        ("DEC n 4", "VALUE -10\r\n"),
        ("DECR n", "VALUE -11\r\n"),
        ("DECR n 9", "VALUE -20\r\n"),
        ("DEC fresh", "VALUE -1\r\n"),
        ("SET big 9223372036854775807", "OK\r\n"),
        ("INC big", "ERROR increment or decrement would overflow\r\n"),
        ("SET small -9223372036854775808", "OK\r\n"),
        (
            "DEC small",
            "ERROR increment or decrement would overflow\r\n",
        ),
        ("GET big", "VALUE 9223372036854775807\r\n"),
        ("SET word abc", "OK\r\n"),
        (
            "INC word",
            "ERROR Value for key 'word' is not a valid number\r\n",
        ),
        (
            "DEC word 2",
            "ERROR Value for key 'word' is not a valid number\r\n",
        ),
        (
            "INC n x",
            "ERROR INC command amount must be a valid number\r\n",
        ),
        (
            "DEC n 1.5",
            "ERROR DEC command amount must be a valid number\r\n",
        ),
        ("GET n", "VALUE -20\r\n"),
        // APPEND / PREPEND
        ("APPEND word def", "VALUE abcdef\r\n"),
        ("APPEND word  g h", "VALUE abcdef g h\r\n"),
        ("APPEND newkey x", "VALUE x\r\n"),
        ("PREPEND word >", "VALUE >abcdef g h\r\n"),
        ("PREPEND newkey2 y", "VALUE y\r\n"),
        (
            "APPEND word",
            "ERROR APPEND command requires a key and value\r\n",
        ),
        (
            "PREPEND",
            "ERROR PREPEND command requires a key and value\r\n",
        ),
        // MGET / MSET
        ("MSET a 1 b 2", "OK\r\n"),
        (
            "MGET a missing b",
            "VALUES 2\r\na 1\r\nmissing NOT_FOUND\r\nb 2\r\n",
        ),
        ("MGET nope1 nope2", "NOT_FOUND\r\n"),
        (
            "MSET a 1 b",
            "ERROR MSET command requires an even number of arguments (key-value pairs)\r\n",
        ),
        // EXISTS, SCAN, DBSIZE
        ("EXISTS a b missing", "EXISTS 2\r\n"),
        ("EXISTS missing", "EXISTS 0\r\n"),
        ("EXISTS a a", "EXISTS 2\r\n"),
        ("SCAN new", "KEYS 2\r\nnewkey\r\nnewkey2\r\n"),
        ("SCAN zzz", "KEYS 0\r\n"),
        (
            "SCAN",
            "KEYS 9\r\na\r\nb\r\nbig\r\nfresh\r\nn\r\nnewkey\r\nnewkey2\r\nsmall\r\nword\r\n",
        ),
        ("DBSIZE", "DBSIZE 9\r\n"),
        // PING / ECHO / VERSION
        ("PING", "PONG\r\n"),
        ("PING hello there", "PONG hello there\r\n"),
        ("ECHO hi you", "ECHO hi you\r\n"),
        (
            "VERSION",
            &format!("VERSION {}\r\n", env!("CARGO_PKG_VERSION")),
        ),
        // FLUSH and its aliases
        ("FLUSH", "OK\r\n"),
        ("DBSIZE", "DBSIZE 0\r\n"),
        ("SET a 1", "OK\r\n"),
        ("FLUSHDB", "OK\r\n"),
        ("GET a", "NOT_FOUND\r\n"),
        ("SET a 1", "OK\r\n"),
        ("TRUNCATE", "OK\r\n"),
        ("SCAN", "KEYS 0\r\n"),
        // Errors
        ("", "ERROR Empty command\r\n"),
        ("   ", "ERROR Empty command\r\n"),
        ("FOO bar", "ERROR Unknown command: FOO\r\n"),
        ("INC", "ERROR INC command requires arguments\r\n"),
        ("DEC", "ERROR DEC command requires arguments\r\n"),
        (
            "APPEND",
            "ERROR APPEND command requires a key and value\r\n",
        ),
        ("MGET", "ERROR MGET command requires arguments\r\n"),
        ("GET", "ERROR GET command requires arguments\r\n"),
        ("GET a b", "ERROR GET command requires exactly one key\r\n"),
        ("DEL", "ERROR DEL command requires arguments\r\n"),
        ("EXISTS", "ERROR EXISTS command requires arguments\r\n"),
        // Case: command words are case-insensitive, keys and values are not.
        ("set Key Value", "OK\r\n"),
        ("get Key", "VALUE Value\r\n"),
        ("gEt key", "NOT_FOUND\r\n"),
        ("Mget Key", "VALUES 1\r\nKey Value\r\n"),
        ("dbsize", "DBSIZE 1\r\n"),
        // Values: leading spaces and tabs kept, quotes are literal.
        ("SET sp   three spaces", "OK\r\n"),
        ("GET sp", "VALUE   three spaces\r\n"),
        ("SET tab a\tb\tc", "OK\r\n"),
        ("GET tab", "VALUE a\tb\tc\r\n"),
        ("SET e \"\"", "OK\r\n"),
        ("GET e", "VALUE \"\"\r\n"),
        // UTF-8 keys and values.
        ("SET ключ значение", "OK\r\n"),
        ("GET ключ", "VALUE значение\r\n"),
        ("SET 🔑 ✓ ok", "OK\r\n"),
        ("GET 🔑", "VALUE ✓ ok\r\n"),
        ("DEL ключ", "DELETED\r\n"),
    ];
    for (cmd, reply) in rows {
        expect(&mut c, cmd, reply);
    }
    // A bare `\n` terminator and surrounding whitespace are accepted too.
    c.send(b"  GET Key  \n");
    assert_eq!(c.line(), "VALUE Value\r\n");
    assert!(node.output.try_iter().all(|l| !l.contains("panicked")));
}

#[test]
fn info_has_its_fixed_line_set() {
    let node = node();
    let mut c = node.client();
    expect(&mut c, "SET x 1", "OK\r\n");
    expect(&mut c, "SET y 2", "OK\r\n");
    let names = [
        "version",
        "node_id",
        "uptime_seconds",
        "uptime",
        "server_time_unix",
        "db_keys",
        "db_expires",
        "db_entries",
        "tombstones",
        "memory_used_bytes",
        "merkle_root",
        "tree_shape",
        "client_addr",
        "sync_addr",
        "data_dir",
        "connected_clients",
        "replication",
        "hlc",
        "clock_skew_rejections",
        "worker_threads",
        "idle_poll_us",
        "clock_restores_bounded",
        "refused_future_versions",
        "refused_oversized_entries",
        "writes_refused_clock_ahead",
        "client_memory_bytes",
        "clients_evicted_for_memory",
        "last_sync",
        "last_sync_peer",
        "last_sync_unix",
        "last_sync_result",
    ];
    c.send(b"INFO\r\n");
    assert_eq!(c.line(), "INFO\r\n");
    let mut fields = std::collections::HashMap::new();
    for name in names {
        let line = c.line();
        let body = line.strip_suffix("\r\n").expect("CRLF");
        let (k, v) = body.split_once(':').expect("name:value");
        assert_eq!(k, name, "INFO line order");
        fields.insert(k.to_string(), v.to_string());
    }
    // Nothing follows the fixed set: the next reply is PING's.
    expect(&mut c, "PING", "PONG\r\n");
    assert_eq!(fields["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(fields["node_id"], "t1");
    assert_eq!(fields["db_keys"], "2");
    assert_eq!(fields["last_sync"], "none");
    assert_eq!(fields["last_sync_unix"], "0");
    let up: u64 = fields["uptime_seconds"].parse().expect("uptime_seconds");
    assert!(up < 600);
    assert!(fields["uptime"].ends_with('s'), "{}", fields["uptime"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let server_now: u64 = fields["server_time_unix"].parse().expect("time");
    assert!(server_now.abs_diff(now) < 60, "{server_now} vs {now}");
    assert_eq!(fields["merkle_root"].len(), 64);
    assert_eq!(fields["client_addr"], format!("127.0.0.1:{}", node.port));
    assert_eq!(fields["connected_clients"], "1");
    // The default: one worker per CPU this process may use, minus one.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        fields["worker_threads"],
        merklekv::config::default_worker_threads(cpus).to_string()
    );
    assert_eq!(
        fields["idle_poll_us"],
        merklekv::config::DEFAULT_IDLE_POLL_US.to_string()
    );
}

/// Idle polling is on by default and its time shows in STATS; 0 turns it
/// off, and the node serves the same either way.
#[test]
fn network_idle_poll_us_sets_and_reports_idle_polling() {
    let stats_field = |c: &mut Client, name: &str| -> f64 {
        c.send(b"STATS\r\n");
        assert_eq!(c.line(), "STATS\r\n");
        let mut value = None;
        for _ in 0..14 {
            let line = c.line();
            if let Some(v) = line.trim_end().strip_prefix(&format!("{name}:")) {
                value = Some(v.parse().expect("seconds"));
            }
        }
        value.expect("STATS field")
    };
    let on = node();
    let mut c = on.client();
    for i in 0..50 {
        expect(&mut c, &format!("SET k{i} v"), "OK\r\n");
    }
    let polled = stats_field(&mut c, "idle_poll_seconds");
    assert!(polled > 0.0, "default node never polled: {polled}");
    // Idle, it stops: over half a second the one STATS read buys 20 µs
    // (the margin is for a preempted poller on a busy machine), where a
    // node that kept polling would add 0.5 s.
    std::thread::sleep(Duration::from_millis(100));
    let before = stats_field(&mut c, "idle_poll_seconds");
    std::thread::sleep(Duration::from_millis(500));
    let after = stats_field(&mut c, "idle_poll_seconds");
    assert!(
        after - before < 0.25,
        "polled {} s while idle",
        after - before
    );
    let exported = metric(on.metrics_port, "merklekv_idle_poll_seconds_total");
    assert!(exported >= after, "metric {exported} behind STATS {after}");

    let off = NodeProcess::start(NodeSpec::new("t1").env("MERKLE_KV_NETWORK_IDLE_POLL_US", 0));
    let mut c = off.client();
    assert_eq!(c.info_field("idle_poll_us"), "0");
    expect(&mut c, "SET k v", "OK\r\n");
    expect(&mut c, "GET k", "VALUE v\r\n");
    assert_eq!(stats_field(&mut c, "idle_poll_seconds"), 0.0);
}

#[test]
fn network_worker_threads_sets_the_runtime_size() {
    let node = NodeProcess::start(NodeSpec::new("t1").env("MERKLE_KV_NETWORK_WORKER_THREADS", 3));
    let mut c = node.client();
    assert_eq!(c.info_field("worker_threads"), "3");
    expect(&mut c, "SET k v", "OK\r\n");
    expect(&mut c, "GET k", "VALUE v\r\n");
}

#[test]
fn stats_has_the_required_fields_and_stays_small() {
    let node = node();
    let mut c = node.client();
    expect(&mut c, "SET a 1", "OK\r\n");
    expect(&mut c, "GET a", "VALUE 1\r\n");
    expect(&mut c, "INC n", "VALUE 1\r\n");
    expect(&mut c, "APPEND a x", "VALUE 1x\r\n");
    expect(&mut c, "MGET a", "VALUES 1\r\na 1x\r\n");
    expect(&mut c, "DEL a", "DELETED\r\n");
    expect(&mut c, "NOPE", "ERROR Unknown command: NOPE\r\n");
    let names = [
        "uptime_seconds",
        "uptime",
        "total_connections",
        "active_connections",
        "rejected_connections",
        "total_commands",
        "get_commands",
        "set_commands",
        "delete_commands",
        "numeric_commands",
        "string_commands",
        "bulk_commands",
        "error_replies",
        "idle_poll_seconds",
    ];
    c.send(b"STATS\r\n");
    let mut reply = c.line();
    assert_eq!(reply, "STATS\r\n");
    let mut fields = std::collections::HashMap::new();
    for name in names {
        let line = c.line();
        reply.push_str(&line);
        let (k, v) = line
            .strip_suffix("\r\n")
            .and_then(|l| l.split_once(':'))
            .expect("name:value");
        assert_eq!(k, name, "STATS line order");
        fields.insert(k.to_string(), v.to_string());
    }
    expect(&mut c, "PING", "PONG\r\n");
    assert!(reply.len() < 1024, "STATS is {} bytes", reply.len());
    // 7 commands before STATS (the unknown one counts too).
    assert_eq!(fields["total_commands"], "7");
    assert_eq!(fields["get_commands"], "1");
    assert_eq!(fields["set_commands"], "1");
    assert_eq!(fields["delete_commands"], "1");
    assert_eq!(fields["numeric_commands"], "1");
    assert_eq!(fields["string_commands"], "1");
    assert_eq!(fields["bulk_commands"], "1");
    assert_eq!(fields["error_replies"], "1");
    assert_eq!(fields["active_connections"], "1");
    assert_eq!(fields["total_connections"], "1");
}

#[test]
fn memory_reports_bytes() {
    let node = node();
    let mut c = node.client();
    let line = c.cmd("MEMORY");
    let n: u64 = line
        .strip_prefix("MEMORY ")
        .and_then(|l| l.strip_suffix("\r\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad MEMORY reply {line:?}"));
    assert!(n > 0);
}

/// Reads a `CLIENT LIST` reply: its client lines (without `\r\n`).
fn client_list(c: &mut Client) -> Vec<String> {
    c.send(b"CLIENT LIST\r\n");
    assert_eq!(c.line(), "CLIENT LIST\r\n");
    let mut clients = Vec::new();
    for _ in 0..1000 {
        let line = c.line();
        if line == "END\r\n" {
            return clients;
        }
        assert!(line.ends_with("\r\n"), "{line:?}");
        clients.push(line.trim_end().to_string());
    }
    panic!("CLIENT LIST without END");
}

#[test]
fn client_list_shows_connected_clients_only() {
    let node = node();
    let mut c = node.client();
    let mut other = node.client();
    expect(&mut other, "PING", "PONG\r\n");
    let me = c.writer.local_addr().expect("addr").to_string();
    let them = other.writer.local_addr().expect("addr").to_string();
    let list = client_list(&mut c);
    assert_eq!(list.len(), 2, "{list:?}");
    for line in &list {
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(fields[0].starts_with("id="), "{line}");
        assert!(fields[1].starts_with("addr="), "{line}");
        assert!(fields[2].starts_with("age="), "{line}");
        assert!(fields[3].starts_with("idle="), "{line}");
    }
    assert!(list.iter().any(|l| l.contains(&format!("addr={me} "))));
    assert!(list.iter().any(|l| l.contains(&format!("addr={them} "))));
    drop(other);
    assert!(
        wait_until(Duration::from_secs(5), || {
            let list = client_list(&mut c);
            list.len() == 1 && list[0].contains(&format!("addr={me} "))
        }),
        "a closed client must disappear from CLIENT LIST"
    );
}

#[test]
fn shutdown_answers_ok_then_the_process_exits_zero() {
    let mut node = node();
    let mut c = node.client();
    expect(&mut c, "SET a 1", "OK\r\n");
    expect(&mut c, "SHUTDOWN", "OK\r\n");
    assert!(c.is_closed());
    assert!(
        wait_until(Duration::from_secs(10), || !node.is_running()),
        "node still running after SHUTDOWN"
    );
    let status = node.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_bare_newline_inside_a_crlf_request_ends_it() {
    // The documented rule (docs/protocol.md, Framing): `\n` ends a request
    // whatever precedes it, so `SET k a\nb\r\n` is two requests, `SET k a`
    // and `b`, each with its reply; nothing is half-applied and the
    // connection stays in step.
    let node = node();
    let mut c = node.client();
    c.send(b"SET k a\nb\r\nGET k\r\n");
    assert_eq!(c.line(), "OK\r\n");
    assert_eq!(c.line(), "ERROR Unknown command: b\r\n");
    assert_eq!(c.line(), "VALUE a\r\n");
    assert_eq!(c.cmd("PING"), "PONG\r\n");
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let node = node();
    let mut c = node.client();
    let batch = "SET p1 a\r\nSET p2 b\r\nGET p1\r\nAPPEND p1 c\r\nINC cnt\r\nINC cnt 5\r\n\
                 MGET p1 p2 nope\r\nDEL p2\r\nEXISTS p1 p2\r\nPING\r\n";
    c.send(batch.as_bytes());
    let expected = [
        "OK\r\n",
        "OK\r\n",
        "VALUE a\r\n",
        "VALUE ac\r\n",
        "VALUE 1\r\n",
        "VALUE 6\r\n",
        "VALUES 2\r\n",
        "p1 ac\r\n",
        "p2 b\r\n",
        "nope NOT_FOUND\r\n",
        "DELETED\r\n",
        "EXISTS 1\r\n",
        "PONG\r\n",
    ];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(c.line(), *want, "reply line {i}");
    }
    // A request split across writes (partial reads) is answered once whole.
    c.send(b"GE");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"T p1\r");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"\nPI");
    c.send(b"NG\r\n");
    assert_eq!(c.line(), "VALUE ac\r\n");
    assert_eq!(c.line(), "PONG\r\n");
}

#[test]
fn one_request_per_write_gets_one_whole_reply_per_read() {
    // Clients that do a single recv() per command must never see two
    // replies merged, nor a reply cut in two.
    let node = node();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", node.port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for i in 0..200 {
        let (cmd, want) = match i % 3 {
            0 => (format!("SET k{i} v{i}\r\n"), "OK\r\n".to_string()),
            1 => (
                format!("GET k{}\r\n", i - 1),
                format!("VALUE v{}\r\n", i - 1),
            ),
            _ => ("PING\r\n".to_string(), "PONG\r\n".to_string()),
        };
        s.write_all(cmd.as_bytes()).expect("write");
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).expect("read");
        assert_eq!(std::str::from_utf8(&buf[..n]).expect("utf8"), want);
    }
}

#[test]
fn a_one_mib_value_round_trips() {
    let node = node();
    let mut c = node.client();
    let value: String = (0..1 << 20)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    c.send(format!("SET big {value}\r\n").as_bytes());
    assert_eq!(c.line(), "OK\r\n");
    c.send(b"GET big\r\n");
    let reply = c.line();
    assert_eq!(reply.len(), "VALUE ".len() + value.len() + 2);
    assert!(reply == format!("VALUE {value}\r\n"), "1 MiB value changed");
    // A value may not outgrow the largest value a client can send.
    expect(
        &mut c,
        "APPEND big !",
        "ERROR value would exceed the maximum size of 1048576 bytes\r\n",
    );
    c.send(b"GET big\r\n");
    assert!(
        c.line() == format!("VALUE {value}\r\n"),
        "refused APPEND changed the value"
    );
    expect(&mut c, "DBSIZE", "DBSIZE 1\r\n");
}

fn hash(c: &mut Client) -> String {
    let line = c.cmd("HASH");
    let hex = line
        .strip_prefix("HASH ")
        .and_then(|l| l.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("bad HASH reply {line:?}"));
    assert_eq!(hex.len(), 64, "{line:?}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    hex.to_string()
}

#[test]
fn hash_changes_with_writes_and_agrees_across_processes() {
    let a = NodeProcess::start(NodeSpec::new("ha"));
    let b = NodeProcess::start(NodeSpec::new("hb"));
    let (mut ca, mut cb) = (a.client(), b.client());
    // Same (empty) data ⇒ same root in two processes: the tree uses a
    // stable hash, never a per-process random seed.
    let empty = hash(&mut ca);
    assert_eq!(empty, hash(&mut cb));
    assert_eq!(hash(&mut ca), empty, "HASH is stable without writes");

    expect(&mut ca, "SET k1 v1", "OK\r\n");
    let one = hash(&mut ca);
    assert_ne!(one, empty, "HASH must change after a write");
    expect(&mut ca, "SET k2 v2", "OK\r\n");
    let two = hash(&mut ca);
    assert_ne!(two, one);
    // A prefix digest covers only its keys.
    let p1 = ca.cmd("HASH k1");
    assert!(
        p1.starts_with("HASH k1 ") && p1.len() == "HASH k1 ".len() + 66,
        "{p1:?}"
    );
    expect(&mut ca, "SET other x", "OK\r\n");
    assert_eq!(ca.cmd("HASH k1"), p1);

    // The same writes in a different order on the second process.
    expect(&mut cb, "SET other x", "OK\r\n");
    expect(&mut cb, "SET k2 v2", "OK\r\n");
    expect(&mut cb, "SET k1 v1", "OK\r\n");
    assert_ne!(hash(&mut cb), empty);

    // Versions are part of the root: the two nodes agree once they hold the
    // same versioned entries, i.e. after one anti-entropy round.
    let sync = ca.cmd(&format!("SYNC 127.0.0.1 {} --merge", b.sync_port));
    assert_eq!(sync, "OK\r\n", "SYNC failed");
    assert!(
        wait_until(Duration::from_secs(10), || hash(&mut ca) == hash(&mut cb)),
        "HASH differs after SYNC"
    );
}

#[test]
fn grpc_kv_api_on_a_full_replica_writes_like_set() {
    use merklekv::proto;
    use merklekv::proto::kv_store_client::KvStoreClient;
    let node = NodeProcess::start(NodeSpec::new("kv1"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sync = node.sync_port;
    let answer = rt.block_on(async move {
        let mut kv = KvStoreClient::connect(format!("http://127.0.0.1:{sync}"))
            .await
            .expect("connect");
        kv.put(proto::KvPutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            client_id: "c".into(),
            request_id: 1,
            consistency: String::new(),
        })
        .await
        .expect("put")
        .into_inner()
    });
    assert!(answer.version.is_some());
    assert_eq!(node.client().cmd("GET k"), "VALUE v\r\n");
}
