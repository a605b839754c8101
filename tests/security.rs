//! Client authentication (`[security]`): passwords and users with roles on
//! both protocols, Redis' replies byte for byte against redis-server with
//! the same password, redis-cli and redis-py logging in, and protected mode
//! turning remote clients away.

mod common;

use std::net::{IpAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;

use common::redis::{check_script, reply, Redis};
use common::{Client, NodeProcess, NodeSpec};

/// SHA-256 of `password` as 64 hex digits (what `security.users` holds).
fn sha256_hex(password: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A node with password `secret` for the default user and three users.
fn secured(name: &str) -> NodeProcess {
    let mut spec = NodeSpec::new(name).env("MERKLE_KV_SECURITY_PASSWORD", "secret");
    spec.toml = format!(
        "[[security.users]]\nname = \"app\"\npassword_sha256 = \"{}\"\nrole = \"readwrite\"\n\
         [[security.users]]\nname = \"viewer\"\npassword_sha256 = \"{}\"\nrole = \"readonly\"\n\
         [[security.users]]\nname = \"ops\"\npassword_sha256 = \"{}\"\nrole = \"admin\"\n",
        sha256_hex("apppass"),
        sha256_hex("look"),
        sha256_hex("opspass"),
    );
    NodeProcess::start(spec)
}

/// What any server with `requirepass secret` answers, Redis' words.
fn default_user_script() -> Vec<(Vec<&'static str>, &'static str)> {
    vec![
        (vec!["GET", "k"], "-NOAUTH Authentication required.\r\n"),
        (
            vec!["SET", "k", "v"],
            "-NOAUTH Authentication required.\r\n",
        ),
        (vec!["MULTI"], "-NOAUTH Authentication required.\r\n"),
        (
            vec!["HELLO", "2"],
            "-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
             the RESP protocol version at the same time\r\n",
        ),
        (
            vec!["AUTH", "wrong"],
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        ),
        (
            vec!["AUTH", "nobody", "secret"],
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        ),
        (
            vec!["HELLO", "3", "AUTH", "default", "wrong"],
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
        ),
        (vec!["AUTH", "a", "b", "c"], "-ERR syntax error\r\n"),
        (
            vec!["AUTH"],
            "-ERR wrong number of arguments for 'auth' command\r\n",
        ),
        (vec!["GET", "k"], "-NOAUTH Authentication required.\r\n"),
        (vec!["AUTH", "secret"], "+OK\r\n"),
        (vec!["SET", "k", "v"], "+OK\r\n"),
        (vec!["GET", "k"], "$1\r\nv\r\n"),
        (vec!["AUTH", "default", "secret"], "+OK\r\n"),
        (vec!["DEL", "k"], ":1\r\n"),
    ]
}

#[test]
fn a_password_is_required_first_and_answered_as_redis_does() {
    let node = secured("auth-default");
    let redis = Redis::start_with(&["--requirepass", "secret"]);
    let mut ours = Client::connect(node.port);
    let mut theirs = redis.as_ref().map(|r| Client::connect(r.port));
    check_script(&mut ours, theirs.as_mut(), &default_user_script());
    // HELLO … AUTH logs in and switches the protocol in one step.
    let mut c = Client::connect(node.port);
    assert_eq!(
        reply(&mut c, &["HELLO", "3", "AUTH", "app", "apppass"], 1),
        "%"
    );
    let _ = c.line();
    // PING is allowed before AUTH (health checks); Redis refuses it.
    let mut c = Client::connect(node.port);
    assert_eq!(reply(&mut c, &["PING"], 7), "+PONG\r\n");
    // Every wrong attempt is counted, and logged without the password.
    let mut admin = Client::connect(node.port);
    assert_eq!(reply(&mut admin, &["AUTH", "ops", "opspass"], 5), "+OK\r\n");
    let metrics = common::http_get(node.metrics_port, "/metrics");
    assert!(
        metrics.contains("merklekv_auth_failures_total 3"),
        "{metrics}"
    );
    let logged: Vec<String> = node.output.try_iter().collect();
    assert!(
        logged.iter().any(|l| l.contains("AUTH failed")),
        "{logged:?}"
    );
    assert!(!logged
        .iter()
        .any(|l| l.contains("wrong\"") || l.contains("=wrong")));
}

#[test]
fn roles_decide_what_a_user_may_run() {
    let node = secured("auth-roles");
    let mut viewer = Client::connect(node.port);
    let mut app = Client::connect(node.port);
    let mut ops = Client::connect(node.port);
    assert_eq!(
        reply(&mut viewer, &["AUTH", "viewer", "look"], 5),
        "+OK\r\n"
    );
    assert_eq!(reply(&mut app, &["AUTH", "app", "apppass"], 5), "+OK\r\n");
    assert_eq!(reply(&mut ops, &["AUTH", "ops", "opspass"], 5), "+OK\r\n");
    let noperm =
        |cmd: &str| format!("-NOPERM this user has no permissions to run the '{cmd}' command\r\n");
    // readwrite: keys yes, admin commands no.
    assert_eq!(reply(&mut app, &["SET", "k", "1"], 5), "+OK\r\n");
    assert_eq!(reply(&mut app, &["INCRBY", "k", "2"], 4), ":3\r\n");
    let flush = noperm("flushdb");
    assert_eq!(reply(&mut app, &["FLUSHDB"], flush.len()), flush);
    let shutdown = noperm("shutdown");
    assert_eq!(reply(&mut app, &["SHUTDOWN"], shutdown.len()), shutdown);
    // readonly: reads only.
    assert_eq!(reply(&mut viewer, &["GET", "k"], 7), "$1\r\n3\r\n");
    let set = noperm("set");
    assert_eq!(reply(&mut viewer, &["SET", "k", "2"], set.len()), set);
    let del = noperm("del");
    assert_eq!(reply(&mut viewer, &["DEL", "k"], del.len()), del);
    // Refused inside a transaction too: EXEC answers the error element.
    assert_eq!(reply(&mut viewer, &["MULTI"], 5), "+OK\r\n");
    assert_eq!(reply(&mut viewer, &["SET", "k", "9"], 9), "+QUEUED\r\n");
    assert_eq!(reply(&mut viewer, &["EXEC"], 4), "*1\r\n");
    assert_eq!(viewer.line(), set);
    assert_eq!(reply(&mut viewer, &["GET", "k"], 7), "$1\r\n3\r\n");
    // admin: everything.
    assert_eq!(reply(&mut ops, &["FLUSHDB"], 5), "+OK\r\n");
    assert_eq!(reply(&mut ops, &["DBSIZE"], 4), ":0\r\n");
    // The text protocol: AUTH [user] password, and its own error lines.
    let mut text = node.client();
    assert_eq!(text.cmd("GET k"), "ERROR Authentication required.\r\n");
    assert_eq!(
        text.cmd("AUTH viewer wrong"),
        "ERROR invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(text.cmd("AUTH viewer look"), "OK\r\n");
    assert_eq!(text.cmd("GET k"), "NOT_FOUND\r\n");
    assert_eq!(
        text.cmd("SET k 1"),
        "ERROR this user has no permissions to run the 'set' command\r\n"
    );
    assert_eq!(text.cmd("AUTH secret"), "OK\r\n");
    assert_eq!(text.cmd("SET k 1"), "OK\r\n");
}

/// A tool the test needs: its path, or `None` (a failure under CI).
fn required(tool: &str) -> Option<PathBuf> {
    let found = common::which(tool);
    assert!(
        found.is_some() || std::env::var_os("CI").is_none(),
        "{tool} is required in CI but was not found"
    );
    found
}

#[test]
fn redis_cli_and_redis_py_log_in() {
    let node = secured("auth-clients");
    let port = node.port.to_string();
    if let Some(cli) = required("redis-cli") {
        let run = |args: &[&str]| {
            let out = Command::new(&cli)
                .args(["-p", &port])
                .args(args)
                .output()
                .expect("redis-cli");
            // redis-cli reports a failed AUTH on stderr.
            let text = [out.stdout, out.stderr].concat();
            String::from_utf8_lossy(&text).trim().to_owned()
        };
        assert_eq!(
            run(&["--no-auth-warning", "-a", "secret", "SET", "c", "1"]),
            "OK"
        );
        assert_eq!(
            run(&[
                "--no-auth-warning",
                "--user",
                "viewer",
                "-a",
                "look",
                "GET",
                "c"
            ]),
            "1"
        );
        assert!(run(&["GET", "c"]).contains("NOAUTH"));
        assert!(run(&["--no-auth-warning", "-a", "bad", "GET", "c"]).contains("WRONGPASS"));
    }
    let python = Command::new("python3")
        .args(["-c", "import redis"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        python || std::env::var_os("CI").is_none(),
        "python3 with redis is required in CI"
    );
    if python {
        let script = format!(
            "import redis\n\
             r = redis.Redis(port={port}, password='secret')\n\
             assert r.set('py', 'v')\n\
             u = redis.Redis(port={port}, username='app', password='apppass', protocol=3)\n\
             assert u.get('py') == b'v'\n\
             v = redis.Redis(port={port}, username='viewer', password='look')\n\
             try:\n    v.set('py', 'w')\n    raise SystemExit('a readonly user wrote')\n\
             except redis.exceptions.NoPermissionError:\n    pass\n\
             try:\n    redis.Redis(port={port}, password='bad').ping()\n    raise SystemExit('a wrong password got in')\n\
             except redis.exceptions.AuthenticationError:\n    pass\n\
             print('ok')\n"
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ok",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// This machine's address on its default route (no packet is sent: a UDP
/// socket is only connected), if it has one other than loopback.
fn own_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("10.255.255.255:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// What a RESP `PING` from `ip` to the node's port gets, first line.
fn ping_from(ip: IpAddr, port: u16) -> String {
    let stream = TcpStream::connect((ip, port)).expect("connect");
    let mut c = Client::from_stream(stream);
    c.send(b"*1\r\n$4\r\nPING\r\n");
    c.line()
}

#[test]
fn protected_mode_turns_remote_clients_away_without_a_password() {
    let Some(ip) = own_address() else {
        eprintln!("note: no address besides loopback; protected mode needs one to test");
        return;
    };
    let wide = || NodeSpec::new("protected").env("MERKLE_KV_NETWORK_BIND_ADDRESS", "0.0.0.0");
    let open = NodeProcess::start(wide());
    let denied = ping_from(ip, open.port);
    assert!(
        denied.starts_with("-DENIED MerkleKV is running in protected mode"),
        "{denied}"
    );
    assert_eq!(
        ping_from("127.0.0.1".parse().expect("ip"), open.port),
        "+PONG\r\n"
    );
    // Text clients read it as an error line.
    let mut text = Client::from_stream(TcpStream::connect((ip, open.port)).expect("connect"));
    text.send(b"PING\r\n");
    assert!(text
        .line()
        .starts_with("ERROR MerkleKV is running in protected mode"));
    // A password, or protected mode off, lets remote clients in.
    let with_password = NodeProcess::start(wide().env("MERKLE_KV_SECURITY_PASSWORD", "pw"));
    assert_eq!(ping_from(ip, with_password.port), "+PONG\r\n");
    let off = NodeProcess::start(wide().env("MERKLE_KV_SECURITY_PROTECTED_MODE", "false"));
    assert_eq!(ping_from(ip, off.port), "+PONG\r\n");
}

#[test]
fn one_address_may_hold_only_so_many_connections() {
    let node = NodeProcess::start(
        NodeSpec::new("per-ip").env("MERKLE_KV_NETWORK_MAX_CONNECTIONS_PER_IP", 2),
    );
    let mut first = Client::connect(node.port);
    let mut second = Client::connect(node.port);
    assert_eq!(reply(&mut first, &["PING"], 7), "+PONG\r\n");
    assert_eq!(reply(&mut second, &["PING"], 7), "+PONG\r\n");
    let mut third = Client::connect(node.port);
    let refused = "-ERR max number of clients from this address reached\r\n";
    assert_eq!(reply(&mut third, &["PING"], refused.len()), refused);
    // Once one leaves, another may come.
    drop(first);
    let admitted = common::wait_until(std::time::Duration::from_secs(5), || {
        let mut c = Client::connect(node.port);
        c.send(b"PING\r\n");
        c.line() == "PONG\r\n"
    });
    assert!(admitted, "a connection slot never came back");
}
