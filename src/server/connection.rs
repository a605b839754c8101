//! One client connection: framing, limits, pipelining, one write per batch.
//!
//! The protocol is chosen from the first byte (`*` = RESP2, anything else =
//! text). Every complete request in the read buffer is executed in order and
//! its reply appended to one output buffer, written with a single write per
//! read cycle; a client that sends one request per write therefore gets one
//! reply per read. A text line is capped while it is being read: once more
//! than `max_line_bytes` arrive without a newline the connection answers
//! `ERROR line too long` and closes, so memory stays bounded.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::clients::ClientInfo;
use super::context::ServerContext;
use super::dispatch::{self, Action, Session};
use crate::protocol::{resp, text, CommandError, Protocol, ReplyBuf};

/// Bytes requested from the socket per read.
const READ_CHUNK: usize = 64 * 1024;

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
    let max_line = ctx.limits.max_line_bytes;
    // RESP requests may carry several max-size bulk strings (MSET).
    let max_request = max_line.saturating_mul(8).saturating_add(READ_CHUNK);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut start = 0usize; // first unprocessed byte
    let mut scanned = 0usize; // text: bytes after `start` already searched for '\n'
    let mut out: Option<ReplyBuf> = None;
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut session = Session::default();

    loop {
        // Make room: drop processed bytes, then reserve one chunk.
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
        buf.reserve(READ_CHUNK);
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
            _ = shutdown.changed() => break,
        };
        if n == 0 {
            break;
        }
        client.touch();
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
                    break;
                }
                let action = match text::parse_line(line) {
                    Ok(cmd) => dispatch::execute(cmd, &ctx, &client, &mut session, out),
                    Err(CommandError::InvalidUtf8) => {
                        dispatch::error(&ctx, out, "invalid UTF-8");
                        Action::Close
                    }
                    Err(e) => dispatch::error(&ctx, out, &e.to_string()),
                };
                if run_action(action, &ctx, out).await {
                    close = true;
                    break;
                }
            },
            Protocol::Resp => loop {
                match resp::parse_request(&buf[start..], max_line, &mut ranges) {
                    Ok(None) => {
                        if buf.len() - start > max_request {
                            dispatch::error(&ctx, out, "Protocol error: request too large");
                            close = true;
                        }
                        break;
                    }
                    Ok(Some(consumed)) => {
                        let req = &buf[start..start + consumed];
                        start += consumed;
                        if ranges.is_empty() {
                            continue;
                        }
                        let action = match resp::to_command(req, &ranges) {
                            Ok(cmd) => dispatch::execute(cmd, &ctx, &client, &mut session, out),
                            Err(e) => dispatch::error(&ctx, out, &e.to_string()),
                        };
                        if run_action(action, &ctx, out).await {
                            close = true;
                            break;
                        }
                    }
                    Err(e) => {
                        dispatch::error(&ctx, out, &e.to_string());
                        close = true;
                        break;
                    }
                }
            },
        }
        if session.wrote {
            session.wrote = false;
            if let Some(d) = &ctx.hooks.durability {
                if let Err(e) = d.wait_durable().await {
                    // The replies already encoded claim success; the write is in
                    // memory and the log, but not confirmed on disk: say so and
                    // close rather than acknowledge silently.
                    tracing::error!(error = %e, "durable flush failed");
                    out.clear();
                    dispatch::error(&ctx, out, &format!("storage error: {e}"));
                    close = true;
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(out.as_bytes()).await?;
            out.clear();
        }
        if close {
            break;
        }
    }
    let _ = stream.shutdown().await;
    Ok(())
}

/// Runs what a command asked for; returns whether to close.
async fn run_action(action: Action<'_>, ctx: &ServerContext, out: &mut ReplyBuf) -> bool {
    match action {
        Action::Continue => false,
        Action::Close => true,
        Action::Sync { host, port, full } => {
            match &ctx.hooks.sync {
                None => {
                    dispatch::error(ctx, out, "anti-entropy is not available on this node");
                }
                Some(runner) => match runner.sync_with(host.to_string(), port, full).await {
                    Ok(summary) => out.status(&format!("OK {summary}")),
                    Err(e) => {
                        ctx.stats.error_replies.fetch_add(0, Ordering::Relaxed);
                        dispatch::error(ctx, out, &format!("SYNC with {host}:{port} failed: {e}"));
                    }
                },
            }
            false
        }
    }
}
