//! One client connection: framing, limits, pipelining, one write per batch.
//!
//! The protocol is chosen from the first byte (`*` = RESP2, anything else =
//! text). Every complete request in the read buffer is executed in order and
//! its reply appended to one output buffer, written with a single write per
//! read cycle; a client that sends one request per write therefore gets one
//! reply per read. A text line is capped while it is being read: once more
//! than `max_line_bytes` (+ 4 KiB for the command word and key) arrive
//! without a newline the connection answers `ERROR line too long` and
//! closes, so memory stays bounded.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::clients::ClientInfo;
use super::context::ServerContext;
use super::dispatch::{self, Action, Session};
use super::transaction;
use crate::protocol::{resp, text, CommandError, Protocol, ReplyBuf};

/// Bytes requested from the socket per read.
const READ_CHUNK: usize = 64 * 1024;
/// Room on a text line beyond `max_line_bytes` for the command word and
/// the key, so a value of exactly `max_line_bytes` (default 1 MiB) still
/// fits on one `SET` line, as it fits in one RESP bulk string.
const LINE_HEADROOM: usize = 4096;
/// Replies are written early, mid read cycle, once this many bytes are
/// buffered, so pipelined requests for large values (a 64 KiB read of
/// `GET big` lines) never pile up an unbounded output buffer.
const OUT_FLUSH_BYTES: usize = 1 << 20;

/// Why a connection ended (logged at debug level).
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Socket failure.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves one connection until EOF, QUIT, a fatal protocol error, the idle
/// timeout, or shutdown.
pub async fn serve(
    mut stream: TcpStream,
    ctx: Arc<ServerContext>,
    client: Arc<ClientInfo>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    let _ = stream.set_nodelay(true);
    let max_bulk = ctx.limits.max_line_bytes;
    let max_line = max_bulk.saturating_add(LINE_HEADROOM);
    // RESP requests may carry several max-size bulk strings (MSET).
    let max_request = max_bulk.saturating_mul(8).saturating_add(READ_CHUNK);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut start = 0usize; // first unprocessed byte
    let mut scanned = 0usize; // text: bytes after `start` already searched for '\n'
    let mut out: Option<ReplyBuf> = None;
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut session = Session::default();
    // Closing because of bad input: linger so the client can read why.
    let mut refused = false;
    // One shutdown future for the whole connection, polled beside every
    // read: creating and dropping a watch notification per request costs
    // a lock and a waiter-list update each time.
    let shutdown_requested = shutdown.wait_for(|stop| *stop);
    tokio::pin!(shutdown_requested);

    loop {
        // Make room: drop processed bytes, then reserve one chunk.
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
        let limit = match out.as_ref().map(ReplyBuf::protocol) {
            Some(Protocol::Resp) => max_request,
            _ => max_line,
        };
        reserve_read_room(&mut buf, limit);
        let read = async {
            match ctx.limits.idle_timeout {
                Some(t) => tokio::time::timeout(t, stream.read_buf(&mut buf))
                    .await
                    .ok(),
                None => Some(stream.read_buf(&mut buf).await),
            }
        };
        let n = tokio::select! {
            biased;
            r = read => match r {
                None => break, // idle timeout
                Some(r) => r?,
            },
            _ = &mut shutdown_requested => break,
        };
        if n == 0 {
            break;
        }
        client.touch();
        if let Some(poller) = &ctx.idle_poll {
            poller.on_read();
        }
        let out = out.get_or_insert_with(|| {
            ReplyBuf::new(if buf.first() == Some(&b'*') {
                Protocol::Resp
            } else {
                Protocol::Text
            })
        });
        let mut close = false;
        match out.protocol() {
            Protocol::Text => loop {
                let Some(pos) = memchr::memchr(b'\n', &buf[start + scanned..]) else {
                    scanned = buf.len() - start;
                    if scanned > max_line {
                        dispatch::error(&ctx, out, "line too long");
                        close = true;
                        refused = true;
                    }
                    break;
                };
                let end = start + scanned + pos;
                let line = &buf[start..end];
                start = end + 1;
                scanned = 0;
                if line.len() > max_line {
                    dispatch::error(&ctx, out, "line too long");
                    close = true;
                    refused = true;
                    break;
                }
                let action = match text::parse_line(line) {
                    Ok(cmd) => dispatch::execute(cmd, &ctx, &client, &mut session, out),
                    Err(CommandError::InvalidUtf8) => {
                        dispatch::error(&ctx, out, "invalid UTF-8");
                        refused = true;
                        Action::Close
                    }
                    Err(e) => dispatch::error(&ctx, out, &e.to_string()),
                };
                if run_action(action, &ctx, &client, &mut session, out).await
                    || (out.len() >= OUT_FLUSH_BYTES
                        && flush(&mut stream, &ctx, &mut session, out).await?)
                {
                    close = true;
                    break;
                }
            },
            Protocol::Resp => loop {
                match resp::parse_request(&buf[start..], max_bulk, &mut ranges) {
                    Ok(None) => {
                        if buf.len() - start > max_request {
                            dispatch::error(&ctx, out, "Protocol error: request too large");
                            close = true;
                            refused = true;
                        }
                        break;
                    }
                    Ok(Some(consumed)) => {
                        let req = &buf[start..start + consumed];
                        start += consumed;
                        if ranges.is_empty() {
                            continue;
                        }
                        let action = match (resp::to_command(req, &ranges), &mut session.multi) {
                            (Ok(cmd), Some(tx)) if !cmd.bypasses_transaction() => {
                                tx.queue(&ctx, req, out);
                                Action::Continue
                            }
                            (Ok(cmd), _) => {
                                dispatch::execute(cmd, &ctx, &client, &mut session, out)
                            }
                            (Err(e), tx) => {
                                if let Some(tx) = tx {
                                    tx.abort();
                                }
                                dispatch::error(&ctx, out, &e.to_string())
                            }
                        };
                        if run_action(action, &ctx, &client, &mut session, out).await
                            || (out.len() >= OUT_FLUSH_BYTES
                                && flush(&mut stream, &ctx, &mut session, out).await?)
                        {
                            close = true;
                            break;
                        }
                    }
                    Err(e) => {
                        dispatch::error(&ctx, out, &e.to_string());
                        close = true;
                        refused = true;
                        break;
                    }
                }
            },
        }
        if flush(&mut stream, &ctx, &mut session, out).await? || close {
            break;
        }
    }
    let _ = stream.shutdown().await;
    if refused {
        linger(&mut stream).await;
    }
    Ok(())
}

/// Makes room for one more read: doubles the buffer as `Vec` would, but
/// never past `limit` plus one read chunk, so a request that is cut off at
/// `limit` costs about `limit` bytes of memory rather than twice that.
fn reserve_read_room(buf: &mut Vec<u8>, limit: usize) {
    if buf.capacity() - buf.len() >= READ_CHUNK {
        return;
    }
    let target = buf
        .capacity()
        .saturating_mul(2)
        .min(limit.saturating_add(READ_CHUNK))
        .max(buf.len() + READ_CHUNK);
    buf.reserve_exact(target - buf.len());
}

/// After refusing bad input, reads and discards what the client is still
/// sending (bounded in bytes and time) before closing. Closing with unread
/// input would send a TCP reset, which can destroy the error reply before
/// the client reads it.
async fn linger(stream: &mut TcpStream) {
    const LINGER_BYTES: usize = 4 << 20;
    const LINGER_TIME: Duration = Duration::from_millis(250);
    let mut sink = vec![0u8; READ_CHUNK];
    let mut drained = 0usize;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while drained < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// Writes the buffered replies in one write, after the writes they
/// acknowledge are durable (`storage.fsync = "always"`). Returns whether
/// the connection must close (the durable flush failed).
async fn flush(
    stream: &mut TcpStream,
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
) -> Result<bool, ConnectionError> {
    let mut close = false;
    if session.wrote {
        session.wrote = false;
        if let Some(d) = &ctx.hooks.durability {
            if let Err(e) = d.wait_durable().await {
                // The replies already encoded claim success; the write is in
                // memory and the log, but not confirmed on disk: say so and
                // close rather than acknowledge silently.
                tracing::error!(error = %e, "durable flush failed");
                out.clear();
                dispatch::error(ctx, out, &format!("storage error: {e}"));
                close = true;
            }
        }
    }
    if !out.is_empty() {
        stream.write_all(out.as_bytes()).await?;
        out.clear();
    }
    Ok(close)
}

/// Runs what a command asked for; returns whether to close.
async fn run_action(
    action: Action<'_>,
    ctx: &ServerContext,
    client: &ClientInfo,
    session: &mut Session,
    out: &mut ReplyBuf,
) -> bool {
    match action {
        Action::Continue => false,
        Action::Close => true,
        Action::Sync { host, port, full } => {
            run_sync(ctx, out, host, port, full).await;
            false
        }
        Action::Exec => match session.multi.take() {
            Some(tx) => transaction::exec(tx, ctx, client, session, out).await,
            None => false,
        },
    }
}

/// `SYNC host port [--full]`: one anti-entropy round, its outcome encoded.
pub(super) async fn run_sync(
    ctx: &ServerContext,
    out: &mut ReplyBuf,
    host: &str,
    port: u16,
    full: bool,
) {
    match &ctx.hooks.sync {
        None => {
            dispatch::error(ctx, out, "anti-entropy is not available on this node");
        }
        Some(runner) => match runner.sync_with(host.to_string(), port, full).await {
            Ok(summary) => out.status(&format!("OK {summary}")),
            Err(e) => {
                dispatch::error(ctx, out, &format!("SYNC with {host}:{port} failed: {e}"));
            }
        },
    }
}
