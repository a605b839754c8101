//! RESP on the client port, checked byte for byte and with real Redis
//! clients: redis-cli, redis-benchmark (Debian's redis-tools) and redis-py
//! (PyPI). When a tool is missing the test prints a note and passes, except
//! under CI (env `CI` set), where it fails: CI installs them all.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::{Client, NodeProcess, NodeSpec};

/// Whether a required external tool is present; see the module doc.
fn available(what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is required in CI but was not found"
    );
    eprintln!("note: {what} not found; skipping this check (CI installs it)");
    false
}

/// Finds an executable on PATH (or in /usr/bin).
fn redis_cli() -> Option<PathBuf> {
    let found = common::which("redis-cli");
    available("redis-cli (Debian package redis-tools)", found.is_some()).then_some(found?)
}

fn node() -> NodeProcess {
    NodeProcess::start(NodeSpec::new("resp"))
}

/// Encodes a RESP request.
fn request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends one RESP request and checks the reply bytes exactly.
fn expect(c: &mut Client, args: &[&[u8]], expected: &[u8]) {
    c.send(&request(args));
    let mut got = vec![0u8; expected.len()];
    c.reader.read_exact(&mut got).unwrap_or_else(|e| {
        panic!(
            "reading the reply to {:?}: {e}",
            String::from_utf8_lossy(&args.concat())
        )
    });
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply to {:?}",
        args.iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
    );
}

#[test]
fn resp_replies_byte_for_byte() {
    let node = node();
    let mut c = node.client();
    let version = env!("CARGO_PKG_VERSION");
    let version_reply = format!("${}\r\n{version}\r\n", version.len());
    let rows: &[(&[&[u8]], &[u8])] = &[
        (&[b"PING"], b"+PONG\r\n"),
        (&[b"ping", b"hi"], b"$2\r\nhi\r\n"),
        (&[b"ECHO", b"a b"], b"$3\r\na b\r\n"),
        (&[b"GET", b"k"], b"$-1\r\n"),
        (&[b"SET", b"k", b"v\r\n\0"], b"+OK\r\n"),
        (&[b"GET", b"k"], b"$4\r\nv\r\n\0\r\n"),
        (&[b"SET", b"k"], b"-ERR wrong number of arguments for 'set' command\r\n"),
        (&[b"SET", b"k", b"v", b"EX", b"10", b"NX", b"XX"], b"-ERR syntax error\r\n"),
        (&[b"APPEND", b"k", b"xy"], b":6\r\n"),
        (&[b"APPEND", b"new", b"abc"], b":3\r\n"),
        (&[b"EXISTS", b"k", b"new", b"nope"], b":2\r\n"),
        (&[b"DEL", b"k", b"nope"], b":1\r\n"),
        (&[b"UNLINK", b"new"], b":1\r\n"),
        (&[b"DEL", b"k"], b":0\r\n"),
        (&[b"INCR", b"n"], b":1\r\n"),
        (&[b"INCRBY", b"n", b"41"], b":42\r\n"),
        (&[b"DECR", b"n"], b":41\r\n"),
        (&[b"DECRBY", b"n", b"50"], b":-9\r\n"),
        (&[b"INCRBY", b"n", b"x"], b"-ERR value is not an integer or out of range\r\n"),
        (&[b"SET", b"w", b"abc"], b"+OK\r\n"),
        (&[b"INCR", b"w"], b"-ERR value is not an integer or out of range\r\n"),
        (&[b"SET", b"max", b"9223372036854775807"], b"+OK\r\n"),
        (&[b"INCR", b"max"], b"-ERR increment or decrement would overflow\r\n"),
        (&[b"MSET", b"a", b"1", b"b", b"2"], b"+OK\r\n"),
        (&[b"MSET", b"a"], b"-ERR wrong number of arguments for 'mset' command\r\n"),
        (
            &[b"MGET", b"a", b"zz", b"b"],
            b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n",
        ),
        (&[b"KEYS", b"*"], b"*5\r\n$1\r\na\r\n$1\r\nb\r\n$3\r\nmax\r\n$1\r\nn\r\n$1\r\nw\r\n"),
        (&[b"KEYS", b"[ab]"], b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
        (&[b"KEYS", b"m?x"], b"*1\r\n$3\r\nmax\r\n"),
        (
            &[b"SCAN", b"0", b"MATCH", b"*a*", b"COUNT", b"100"],
            // One page (cursor 0 after it), keys in key-hash order.
            b"*2\r\n$1\r\n0\r\n*2\r\n$3\r\nmax\r\n$1\r\na\r\n",
        ),
        (&[b"SCAN", b"0", b"TYPE", b"hash"], b"*2\r\n$1\r\n0\r\n*0\r\n"),
        (&[b"SCAN", b"abc"], b"-ERR invalid cursor\r\n"),
        (&[b"DBSIZE"], b":5\r\n"),
        (&[b"SELECT", b"0"], b"+OK\r\n"),
        (&[b"SELECT", b"1"], b"-ERR DB index is out of range\r\n"),
        (&[b"CONFIG", b"GET", b"save"], b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n"),
        (&[b"CONFIG", b"GET", b"maxmemory"], b"*0\r\n"),
        (&[b"COMMAND", b"DOCS", b"nosuch"], b"*0\r\n"),
        (&[b"CLIENT", b"SETNAME", b"me"], b"+OK\r\n"),
        (&[b"CLIENT", b"GETNAME"], b"$2\r\nme\r\n"),
        (
            &[b"CLIENT", b"SETNAME", b"a\r\nb"],
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
        ),
        (&[b"CLIENT", b"GETNAME"], b"$2\r\nme\r\n"),
        (&[b"CLIENT", b"SETINFO", b"LIB-NAME", b"x"], b"+OK\r\n"),
        (&[b"VERSION"], version_reply.as_bytes()),
        (
            &[b"NOPE", b"x", b"y"],
            b"-ERR unknown command 'NOPE', with args beginning with: 'x' 'y' \r\n",
        ),
        (&[b"AUTH", b"pw"], b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"),
        // Transactions.
        (&[b"MULTI"], b"+OK\r\n"),
        (&[b"SET", b"t", b"1"], b"+QUEUED\r\n"),
        (&[b"INCR", b"t"], b"+QUEUED\r\n"),
        (&[b"GET", b"t"], b"+QUEUED\r\n"),
        (&[b"MULTI"], b"-ERR MULTI calls can not be nested\r\n"),
        (&[b"EXEC"], b"*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n"),
        (&[b"EXEC"], b"-ERR EXEC without MULTI\r\n"),
        (&[b"DISCARD"], b"-ERR DISCARD without MULTI\r\n"),
        (&[b"MULTI"], b"+OK\r\n"),
        (&[b"SET", b"t", b"9"], b"+QUEUED\r\n"),
        (&[b"DISCARD"], b"+OK\r\n"),
        (&[b"MULTI"], b"+OK\r\n"),
        (&[b"GET"], b"-ERR wrong number of arguments for 'get' command\r\n"),
        (&[b"EXEC"], b"-EXECABORT Transaction discarded because of previous errors.\r\n"),
        (&[b"GET", b"t"], b"$1\r\n2\r\n"),
        // RESP3 via HELLO, and back.
        (&[b"HELLO", b"4"], b"-NOPROTO unsupported protocol version\r\n"),
        (&[b"GET", b"nope"], b"$-1\r\n"),
        (&[b"FLUSHALL"], b"+OK\r\n"),
        (&[b"DBSIZE"], b":0\r\n"),
    ];
    for (args, reply) in rows {
        expect(&mut c, args, reply);
    }

    // HELLO 3: a map, then RESP3 nulls; HELLO 2 switches back.
    c.send(&request(&[b"HELLO", b"3"]));
    assert_eq!(c.line(), "%7\r\n");
    let mut hello = Vec::new();
    for _ in 0..24 {
        hello.push(c.line());
    }
    assert_eq!(c.line(), "*0\r\n", "modules: empty array");
    let hello = hello.concat();
    assert!(
        hello.starts_with("$6\r\nserver\r\n$8\r\nmerklekv\r\n"),
        "{hello}"
    );
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{hello}");
    expect(&mut c, &[b"GET", b"nope"], b"_\r\n");
    expect(&mut c, &[b"MGET", b"nope"], b"*1\r\n_\r\n");
    c.send(&request(&[b"HELLO", b"2"]));
    assert_eq!(c.line(), "*14\r\n");
    for _ in 0..24 {
        c.line();
    }
    assert_eq!(c.line(), "*0\r\n");
    expect(&mut c, &[b"GET", b"nope"], b"$-1\r\n");

    // INFO is one bulk string of name:value lines.
    c.send(&request(&[b"INFO"]));
    let header = c.line();
    let len: usize = header
        .strip_prefix('$')
        .and_then(|h| h.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("INFO header {header:?}"));
    let mut body = vec![0u8; len + 2];
    c.reader.read_exact(&mut body).expect("INFO body");
    let body = String::from_utf8(body).expect("utf8");
    assert!(body.starts_with(&format!("version:{}\r\n", env!("CARGO_PKG_VERSION"))));
    assert!(body.contains("\r\ndb_keys:0\r\n"), "{body}");

    // Pipelined requests, one write: replies in order.
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend(request(&[b"SET", format!("p{i}").as_bytes(), b"v"]));
    }
    c.send(&batch);
    let mut replies = vec![0u8; 500];
    c.reader.read_exact(&mut replies).expect("100 replies");
    assert_eq!(replies, b"+OK\r\n".repeat(100));
    expect(&mut c, &[b"QUIT"], b"+OK\r\n");
    assert!(c.is_closed());
}

#[test]
fn keys_cross_between_resp_and_the_text_protocol() {
    let node = node();
    let mut resp = node.client();
    let mut text = node.client();
    expect(
        &mut resp,
        &[b"SET", b"from:resp", "héllo wörld".as_bytes()],
        b"+OK\r\n",
    );
    assert_eq!(text.cmd("GET from:resp"), "VALUE héllo wörld\r\n");
    assert_eq!(text.cmd("SET from:text  two  spaces"), "OK\r\n");
    expect(
        &mut resp,
        &[b"GET", b"from:text"],
        b"$12\r\n two  spaces\r\n",
    );
    assert_eq!(text.cmd("INC counter 5"), "VALUE 5\r\n");
    expect(&mut resp, &[b"INCR", b"counter"], b":6\r\n");
    assert_eq!(text.cmd("GET counter"), "VALUE 6\r\n");
    expect(&mut resp, &[b"DEL", b"from:text"], b":1\r\n");
    assert_eq!(text.cmd("GET from:text"), "NOT_FOUND\r\n");
}

#[test]
fn a_binary_value_never_breaks_text_protocol_framing() {
    let node = node();
    let mut resp = node.client();
    let mut text = node.client();
    expect(&mut resp, &[b"SET", b"bin", b"a\r\nOK\r\nb"], b"+OK\r\n");
    expect(&mut resp, &[b"SET", b"plain", b"p"], b"+OK\r\n");
    expect(&mut resp, &[b"SET", b"line\nkey", b"v"], b"+OK\r\n");
    let refused =
        "ERROR value contains CR or LF and cannot be sent as a text line: read it over RESP\r\n";
    assert_eq!(text.cmd("GET bin"), refused);
    assert_eq!(text.cmd("MGET plain bin"), refused);
    assert_eq!(text.cmd("APPEND bin x"), refused);
    assert_eq!(text.cmd("SCAN line"), refused);
    // The connection is still in step: the next reply is the next line.
    assert_eq!(text.cmd("GET plain"), "VALUE p\r\n");
    assert_eq!(text.cmd_lines("SCAN pl", 2), ["KEYS 1\r\n", "plain\r\n"]);
    // The refused APPEND changed nothing; RESP reads the value byte for byte
    // and may still append to it.
    expect(&mut resp, &[b"GET", b"bin"], b"$8\r\na\r\nOK\r\nb\r\n");
    expect(&mut resp, &[b"APPEND", b"bin", b"x"], b":9\r\n");
}

/// Runs redis-cli with `args` (and `stdin`), returning its output.
fn run_cli(cli: &PathBuf, port: u16, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(cli)
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("redis-cli output")
}

fn cli_out(cli: &PathBuf, port: u16, args: &[&str]) -> String {
    let out = run_cli(cli, port, args, None);
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_cli_commands_and_outputs() {
    let Some(cli) = redis_cli() else { return };
    let node = node();
    let port = node.port;
    // Raw output (stdout is not a terminal).
    assert_eq!(cli_out(&cli, port, &["set", "a", "b"]), "OK\n");
    assert_eq!(cli_out(&cli, port, &["get", "a"]), "b\n");
    assert_eq!(cli_out(&cli, port, &["incr", "n"]), "1\n");
    assert_eq!(
        cli_out(&cli, port, &["mget", "a", "n", "missing"]),
        "b\n1\n\n"
    );
    assert_eq!(cli_out(&cli, port, &["exists", "a", "n", "missing"]), "2\n");
    assert_eq!(cli_out(&cli, port, &["dbsize"]), "2\n");
    assert_eq!(cli_out(&cli, port, &["del", "a"]), "1\n");
    assert_eq!(cli_out(&cli, port, &["ping"]), "PONG\n");
    assert_eq!(
        cli_out(&cli, port, &["nope", "x"]),
        "ERR unknown command 'nope', with args beginning with: 'x' \n\n"
    );
    // The formatting a terminal user sees.
    let tty = |args: &[&str]| {
        let mut all = vec!["--no-raw"];
        all.extend_from_slice(args);
        cli_out(&cli, port, &all)
    };
    assert_eq!(tty(&["set", "a", "b c"]), "OK\n");
    assert_eq!(tty(&["get", "a"]), "\"b c\"\n");
    assert_eq!(tty(&["get", "missing"]), "(nil)\n");
    assert_eq!(tty(&["incr", "n"]), "(integer) 2\n");
    assert_eq!(
        tty(&["mget", "a", "n", "missing"]),
        "1) \"b c\"\n2) \"2\"\n3) (nil)\n"
    );
    assert_eq!(
        tty(&["incr", "a"]),
        "(error) ERR value is not an integer or out of range\n"
    );
    assert_eq!(tty(&["del", "missing"]), "(integer) 0\n");
    // RESP3 (redis-cli -3 sends HELLO 3).
    assert_eq!(cli_out(&cli, port, &["-3", "get", "a"]), "b c\n");
    assert_eq!(
        cli_out(&cli, port, &["-3", "--no-raw", "get", "missing"]),
        "(nil)\n"
    );
}

#[test]
fn redis_cli_session_fed_through_stdin() {
    let Some(cli) = redis_cli() else { return };
    let node = node();
    let script = "PING\nSET greeting hello\nGET greeting\nINCR visits\nINCR visits\n\
                  GET nothing\nAPPEND greeting !\nMGET greeting visits\nDEL greeting\nDBSIZE\n";
    let out = run_cli(&cli, node.port, &[], Some(script));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "PONG\nOK\nhello\n1\n2\n\n6\nhello!\n2\n1\n1\n"
    );
    // The written keys are visible to a text-protocol client.
    assert_eq!(node.client().cmd("GET visits"), "VALUE 2\r\n");
}

#[test]
fn redis_cli_pipe_mass_insert() {
    let Some(cli) = redis_cli() else { return };
    let node = node();
    let mut input = Vec::new();
    for i in 0..1000 {
        input.extend(request(&[
            b"SET",
            format!("mass:{i}").as_bytes(),
            b"v\r\n\0",
        ]));
    }
    let mut child = Command::new(&cli)
        .args(["-p", &node.port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli --pipe");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("feed redis-cli");
    let out = child.wait_with_output().expect("redis-cli --pipe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("errors: 0, replies: 1000"), "{stdout}");
    assert_eq!(node.client().cmd("DBSIZE"), "DBSIZE 1000\r\n");
}

#[test]
fn redis_cli_interactive_ping_on_a_terminal() {
    let Some(cli) = redis_cli() else { return };
    let Some(script) = common::which("script") else {
        available("script (util-linux) for a pseudo-terminal", false);
        return;
    };
    let node = node();
    // `script` runs redis-cli on a pseudo-terminal: the prompt and the
    // reply formatting are the interactive ones. A window size spares
    // linenoise its cursor-position query, which only a terminal answers;
    // `timeout` bounds the session whatever happens.
    let command = format!("stty cols 200 rows 50; {} -p {}", cli.display(), node.port);
    let mut child = Command::new("timeout")
        .arg("20")
        .arg(script)
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let reader = {
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                screen
                    .lock()
                    .expect("screen")
                    .extend_from_slice(&chunk[..n]);
            }
        })
    };
    // Type each line only once the screen shows what the previous one
    // should have produced (the line editor drops input typed early).
    let prompt = format!("127.0.0.1:{}> ", node.port);
    let wait_for = |text: &str| {
        let seen = common::wait_until(std::time::Duration::from_secs(10), || {
            String::from_utf8_lossy(&screen.lock().expect("screen")).contains(text)
        });
        assert!(
            seen,
            "{text:?} never appeared: {:?}",
            String::from_utf8_lossy(&screen.lock().expect("screen"))
        );
    };
    wait_for(&prompt);
    stdin.write_all(b"PING\r").expect("type PING");
    wait_for("PONG\r\n");
    stdin.write_all(b"GET nothing\r").expect("type GET");
    wait_for("(nil)\r\n");
    stdin.write_all(b"exit\r").expect("type exit");
    drop(stdin);
    let status = child.wait().expect("redis-cli on a pty");
    let _ = reader.join();
    assert!(status.success(), "redis-cli exited with {status}");
}

/// Whether `python3` with the `redis` package is available.
fn redis_py() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import redis"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    available("python3 with the redis package (pip install redis)", ok)
}

#[test]
fn redis_py_scripted_sessions() {
    if !redis_py() {
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/resp/redis_py_session.py"
    );
    // redis-py's default (RESP3 via HELLO 3 in redis-py 5+/8), then RESP2.
    for protocol in ["default", "2", "3"] {
        let node = node();
        let out = Command::new("python3")
            .arg(script)
            .arg(node.port.to_string())
            .arg(protocol)
            .output()
            .expect("run python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("redis-py session OK"),
            "redis-py session (protocol {protocol}) failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn redis_benchmark_quick_run() {
    let found = common::which("redis-benchmark");
    if !available(
        "redis-benchmark (Debian package redis-tools)",
        found.is_some(),
    ) {
        return;
    }
    let node = node();
    let out = Command::new(found.expect("path"))
        .args([
            "-p",
            &node.port.to_string(),
            "-t",
            "set,get",
            "-n",
            "2000",
            "-q",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run redis-benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for test in ["SET", "GET"] {
        let line = stdout
            .split(['\r', '\n'])
            .rfind(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second"))
            .unwrap_or_else(|| panic!("no {test} result in:\n{stdout}"));
        let rps: f64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(rps > 0.0, "{line}");
    }
    assert!(
        !stdout.contains("ERR") && !stderr.contains("ERR"),
        "{stdout}\n{stderr}"
    );
    // The keys redis-benchmark wrote are there.
    assert_eq!(node.client().cmd("EXISTS key:__rand_int__"), "EXISTS 1\r\n");
}

#[test]
fn merklekv_bench_against_our_node() {
    let node = node();
    for protocol in ["text", "resp"] {
        check_bench(node.port, protocol);
    }
}

#[test]
fn merklekv_bench_against_redis_server() {
    let Some(server) = common::which("redis-server") else {
        available("redis-server (Debian package redis-server)", false);
        return;
    };
    let port = common::free_port();
    let mut redis = Command::new(server)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let up = common::wait_until(std::time::Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let result = std::panic::catch_unwind(|| {
        assert!(up, "redis-server did not listen on {port}");
        check_bench(port, "resp");
    });
    let _ = redis.kill();
    let _ = redis.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `merklekv bench --json` against `port` and checks the report is
/// sane: every request answered without error, ops/s > 0, percentiles
/// monotone.
fn check_bench(port: u16, protocol: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_merklekv"))
        .args([
            "bench",
            "--port",
            &port.to_string(),
            "--protocol",
            protocol,
            "--requests",
            "2000",
            "--clients",
            "4",
            "--json",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run merklekv bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench --protocol {protocol}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout
        .lines()
        .rfind(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in {stdout}"));
    let report: serde_json::Value = serde_json::from_str(json).expect("bench JSON");
    let num = |k: &str| {
        report[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {json}"))
    };
    assert!(num("ops_per_sec") > 0.0, "{json}");
    assert_eq!(num("errors"), 0.0, "{json}");
    assert_eq!(num("requests"), 2000.0, "{json}");
    let percentiles = ["p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"].map(num);
    assert!(
        percentiles.windows(2).all(|w| w[0] <= w[1]) && percentiles[0] > 0.0,
        "percentiles not monotone: {json}"
    );
}
