//! A real redis-server to compare replies with, and RESP request helpers.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{wait_until, Client};

/// Encodes a RESP request.
pub fn request(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends one RESP request and reads exactly `len` reply bytes.
pub fn reply(c: &mut Client, args: &[&str], len: usize) -> String {
    c.send(&request(args));
    let mut got = vec![0u8; len];
    c.reader
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("reading the reply to {args:?}: {e}"));
    String::from_utf8_lossy(&got).into_owned()
}

/// A real redis-server on a free port, when installed (required under CI).
pub struct Redis {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Redis {
    /// Starts one, or `None` (a note; a failure under CI) when redis-server
    /// is not installed.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// As [`Redis::start`], with extra command-line options (e.g.
    /// `--requirepass secret`).
    pub fn start_with(options: &[&str]) -> Option<Self> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let Some(binary) = std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin")])
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
        else {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is required in CI but was not found"
            );
            eprintln!("note: redis-server not found; checking our replies only");
            return None;
        };
        let port = super::free_port();
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(options)
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "redis-server did not listen on {port}");
        Some(Self { child, port })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each request of `script` to `ours` and, when given, to `theirs`
/// (a real redis-server), checking each reply byte for byte.
pub fn check_script(
    ours: &mut Client,
    mut theirs: Option<&mut Client>,
    script: &[(Vec<&str>, &str)],
) {
    for (args, expected) in script {
        assert_eq!(
            &reply(ours, args, expected.len()),
            expected,
            "ours, {args:?}"
        );
        if let Some(redis) = theirs.as_deref_mut() {
            assert_eq!(
                &reply(redis, args, expected.len()),
                expected,
                "redis-server, {args:?}"
            );
        }
    }
}

/// Reads one whole RESP reply, raw (nested arrays included).
pub fn read_reply(c: &mut Client) -> Vec<u8> {
    use std::io::BufRead;
    let mut header = Vec::new();
    c.reader
        .read_until(b'\n', &mut header)
        .expect("read a reply header");
    let n: i64 = std::str::from_utf8(&header[1..header.len().saturating_sub(2)])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut raw = header.clone();
    match header.first() {
        Some(b'$') if n >= 0 => {
            let mut body = vec![0u8; usize::try_from(n).expect("length") + 2];
            c.reader.read_exact(&mut body).expect("read a bulk body");
            raw.extend_from_slice(&body);
        }
        Some(b'*') => {
            for _ in 0..n.max(0) {
                raw.extend_from_slice(&read_reply(c));
            }
        }
        _ => {}
    }
    raw
}

/// Sends one RESP request and reads its whole reply.
pub fn whole_reply(c: &mut Client, args: &[&str]) -> Vec<u8> {
    c.send(&request(args));
    read_reply(c)
}
