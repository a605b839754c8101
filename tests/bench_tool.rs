//! End-to-end tests of `merklekv bench` against tiny in-test fake servers
//! speaking the text protocol and RESP.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use merklekv_bench::{run_to_report, BenchArgs, BenchReport, Protocol, Workload};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

type Store = Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>;

/// Starts a fake server on 127.0.0.1:0; `serve` handles one connection.
async fn spawn_server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream, Store) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store = Store::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            // Without NODELAY the chunked replies below would stall on
            // Nagle's algorithm and delayed ACKs.
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, Arc::clone(&store)));
        }
    });
    addr
}

/// Text protocol subset: `SET k v` → `OK`, `GET k` → `VALUE v` / `NOT_FOUND`.
async fn serve_text(stream: TcpStream, store: Store) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    let mut out = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let mut parts = text.splitn(3, |&b| b == b' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(b"SET"), Some(k), Some(v)) => {
                store.lock().await.insert(k.to_vec(), v.to_vec());
                out.extend_from_slice(b"OK\r\n");
            }
            (Some(b"GET"), Some(k), None) => match store.lock().await.get(k) {
                Some(v) => {
                    out.extend_from_slice(b"VALUE ");
                    out.extend_from_slice(v);
                    out.extend_from_slice(b"\r\n");
                }
                None => out.extend_from_slice(b"NOT_FOUND\r\n"),
            },
            _ => out.extend_from_slice(b"ERROR unknown command\r\n"),
        }
        // Flush only when no further pipelined request is buffered, and in
        // small pieces so replies reach the client split across reads.
        if r.buffer().is_empty() {
            for piece in out.chunks(7) {
                w.write_all(piece).await?;
            }
            out.clear();
        }
    }
}

/// Reads one CRLF-terminated line (without the terminator).
async fn resp_line<R: AsyncBufReadExt + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    line.truncate(line.len().saturating_sub(2));
    Ok(Some(line))
}

fn resp_int(line: &[u8], tag: u8) -> std::io::Result<usize> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad RESP header");
    match line.split_first() {
        Some((&t, digits)) if t == tag => std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// RESP subset: arrays of bulk strings; `SET` → `+OK`, `GET` → bulk / `$-1`.
async fn serve_resp(stream: TcpStream, store: Store) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut out = Vec::new();
    loop {
        let Some(header) = resp_line(&mut r).await? else {
            return Ok(());
        };
        let argc = resp_int(&header, b'*')?;
        let mut argv = Vec::with_capacity(argc);
        for _ in 0..argc {
            let len_line = resp_line(&mut r).await?.unwrap_or_default();
            let len = resp_int(&len_line, b'$')?;
            let mut arg = vec![0; len + 2];
            r.read_exact(&mut arg).await?;
            arg.truncate(len);
            argv.push(arg);
        }
        match argv.as_slice() {
            [cmd, k, v] if cmd.eq_ignore_ascii_case(b"SET") => {
                store.lock().await.insert(k.clone(), v.clone());
                out.extend_from_slice(b"+OK\r\n");
            }
            [cmd, k] if cmd.eq_ignore_ascii_case(b"GET") => match store.lock().await.get(k) {
                Some(v) => {
                    out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
                    out.extend_from_slice(v);
                    out.extend_from_slice(b"\r\n");
                }
                None => out.extend_from_slice(b"$-1\r\n"),
            },
            _ => out.extend_from_slice(b"-ERR unknown command\r\n"),
        }
        if r.buffer().is_empty() {
            for piece in out.chunks(5) {
                w.write_all(piece).await?;
            }
            out.clear();
        }
    }
}

/// Accepts connections and never replies.
async fn serve_silent(stream: TcpStream, _store: Store) -> std::io::Result<()> {
    let mut stream = stream;
    let mut sink = [0u8; 1024];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}

/// Replies with an error to every request line.
async fn serve_errors(stream: TcpStream, _store: Store) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while lines.next_line().await?.is_some() {
        w.write_all(b"ERROR out of cheese\r\n").await?;
    }
    Ok(())
}

fn args(addr: SocketAddr, protocol: Protocol) -> BenchArgs {
    BenchArgs {
        host: addr.ip().to_string(),
        port: addr.port(),
        protocol,
        clients: 4,
        pipeline: 8,
        requests: Some(2000),
        duration: None,
        keyspace: 500,
        value_size: 32,
        workload: Workload::Mixed { read_pct: 50 },
        json: false,
        quiet: true,
        timeout_ms: 5000,
        seed: Some(42),
        ..BenchArgs::default()
    }
}

fn assert_sane(r: &BenchReport) {
    assert!(r.ops_per_sec > 0.0, "{r:?}");
    assert!(r.elapsed_secs > 0.0, "{r:?}");
    let lat = [r.p50_ms, r.p90_ms, r.p99_ms, r.p999_ms, r.max_ms];
    assert!(lat.windows(2).all(|w| w[0] <= w[1]), "{lat:?}");
    assert!(r.max_ms > 0.0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_protocol_run() {
    let addr = spawn_server(serve_text).await;
    let report = run_to_report(&args(addr, Protocol::Text)).await.unwrap();
    assert_eq!(report.requests, 2000, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.protocol, "text");
    assert_eq!(report.workload, "mixed:50");
    assert_eq!((report.clients, report.pipeline), (4, 8));
    assert_sane(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_protocol_run() {
    let addr = spawn_server(serve_resp).await;
    let report = run_to_report(&args(addr, Protocol::Resp)).await.unwrap();
    assert_eq!(report.requests, 2000, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.protocol, "resp");
    assert_sane(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_then_get_workloads() {
    let addr = spawn_server(serve_text).await;
    for workload in [Workload::Set, Workload::Get] {
        let mut a = args(addr, Protocol::Text);
        a.workload = workload;
        a.clients = 3;
        a.pipeline = 5;
        a.requests = Some(1001);
        let report = run_to_report(&a).await.unwrap();
        assert_eq!(report.requests, 1001, "{report:?}");
        assert_eq!(report.errors, 0, "{report:?}");
        assert_sane(&report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_mode_stops() {
    let addr = spawn_server(serve_resp).await;
    let mut a = args(addr, Protocol::Resp);
    a.requests = None;
    a.duration = Some(0.3);
    let started = std::time::Instant::now();
    let report = run_to_report(&a).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(report.requests > 0, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(report.elapsed_secs >= 0.3, "{report:?}");
    assert_sane(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_clients_than_requests() {
    let addr = spawn_server(serve_text).await;
    let mut a = args(addr, Protocol::Text);
    a.clients = 10;
    a.requests = Some(3);
    let report = run_to_report(&a).await.unwrap();
    assert_eq!(report.requests, 3);
    assert_eq!(report.errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_replies_are_counted() {
    let addr = spawn_server(serve_errors).await;
    let mut a = args(addr, Protocol::Text);
    a.requests = Some(100);
    let report = run_to_report(&a).await.unwrap();
    assert_eq!(report.requests, 100);
    assert_eq!(report.errors, 100);
    assert_eq!(report.first_error.as_deref(), Some("ERROR out of cheese"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_names_target() {
    // A port nothing listens on. Not one from bind(0) and dropped: the fake
    // servers of the tests running alongside bind(0) too, and one of them
    // may get that port back and answer.
    let addr = SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let err = run_to_report(&args(addr, Protocol::Text))
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains(&addr.to_string()), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out() {
    let addr = spawn_server(serve_silent).await;
    let mut a = args(addr, Protocol::Resp);
    a.timeout_ms = 200;
    let started = std::time::Instant::now();
    let err = run_to_report(&a).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let msg = format!("{err:#}");
    assert!(msg.contains("timed out"), "{msg}");
    assert!(msg.contains(&addr.to_string()), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_protocol_is_a_clear_error() {
    // RESP requests against a text server: the text replies are not RESP.
    let addr = spawn_server(serve_text).await;
    let err = run_to_report(&args(addr, Protocol::Resp))
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains(&addr.to_string()), "{msg}");
    assert!(msg.contains("--protocol text"), "{msg}");
}

/// Manual run against a real server, printing the summary like the CLI:
/// `BENCH_ADDR=127.0.0.1:6379 BENCH_PROTOCOL=resp cargo test --test bench_tool -- --ignored --nocapture`
/// (optional: `BENCH_JSON=1`, `BENCH_PIPELINE=n`, `BENCH_VALUE_SIZE=n`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a running server; set BENCH_ADDR (and BENCH_PROTOCOL)"]
async fn manual_run_against_real_server() {
    let Ok(addr) = std::env::var("BENCH_ADDR") else {
        eprintln!("BENCH_ADDR not set; skipping");
        return;
    };
    let addr: SocketAddr = addr.parse().expect("BENCH_ADDR is host:port");
    let protocol = match std::env::var("BENCH_PROTOCOL").as_deref() {
        Ok("resp") => Protocol::Resp,
        _ => Protocol::Text,
    };
    let mut a = args(addr, protocol);
    a.quiet = false;
    a.clients = 50;
    a.requests = Some(200_000);
    a.json = std::env::var_os("BENCH_JSON").is_some();
    let knob = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    a.pipeline = knob("BENCH_PIPELINE").unwrap_or(a.pipeline);
    a.value_size = knob("BENCH_VALUE_SIZE").unwrap_or(a.value_size);
    merklekv_bench::run(a).await.unwrap();
}
