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

use super::action::Action;
use super::clients::ClientInfo;
use super::context::ServerContext;
use super::dispatch;
use super::replies;
use super::run;
use super::session::Session;
use crate::protocol::{resp, text, CommandError, Protocol, ReplyBuf};

mod routed;

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
    stream: TcpStream,
    ctx: Arc<ServerContext>,
    client: Arc<ClientInfo>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    let _ = stream.set_nodelay(true);
    let sizes = Sizes::of(&ctx);
    let partitioned = ctx.cluster.is_some();
    let session = Session::new(ctx.auth.initial_identity());
    let mut conn = Conn {
        stream,
        ctx,
        client,
        session,
        partitioned,
        refused: false,
    };
    let mut input = Input {
        buf: Vec::with_capacity(16 * 1024),
        start: 0,
        scanned: 0,
        ranges: Vec::new(),
    };
    // One shutdown future for the whole connection, polled beside every
    // read: creating and dropping a watch notification per request costs
    // a lock and a waiter-list update each time.
    let shutdown_requested = shutdown.wait_for(|stop| *stop);
    tokio::pin!(shutdown_requested);
    // The protocol is known once the first bytes arrived.
    let mut out: Option<ReplyBuf> = None;
    // What this connection's buffers hold, as last reported to the
    // registry (network.max_client_memory_mb).
    let mut held = 0usize;

    // The request loop, the same for both protocols: read, execute every
    // complete request, write the replies.
    loop {
        // Make room: drop processed bytes, then reserve one chunk.
        if input.start > 0 {
            input.buf.drain(..input.start);
            input.start = 0;
        }
        let limit = match out.as_ref().map(ReplyBuf::protocol) {
            Some(Protocol::Resp) => sizes.max_request,
            _ => sizes.max_line,
        };
        reserve_read_room(&mut input.buf, limit);
        let (stream, buf) = (&mut conn.stream, &mut input.buf);
        let idle_timeout = conn.ctx.limits.idle_timeout;
        let read = async {
            match idle_timeout {
                Some(t) => tokio::time::timeout(t, stream.read_buf(buf)).await.ok(),
                None => Some(stream.read_buf(buf).await),
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
        conn.client.touch();
        if let Some(poller) = &conn.ctx.idle_poll {
            poller.on_read();
        }
        let out = out.get_or_insert_with(|| {
            ReplyBuf::new(if input.buf.first() == Some(&b'*') {
                Protocol::Resp
            } else {
                Protocol::Text
            })
        });
        let close = match out.protocol() {
            // A partitioned node gathers keyed commands for the
            // coordinator (`routed`); a full replica runs each at once.
            Protocol::Text if conn.partitioned => {
                routed::text_requests(&mut conn, &mut input, out, sizes.max_line).await?
            }
            Protocol::Text => text_requests(&mut conn, &mut input, out, sizes.max_line).await?,
            Protocol::Resp if conn.partitioned => {
                routed::resp_requests(&mut conn, &mut input, out, &sizes).await?
            }
            Protocol::Resp => resp_requests(&mut conn, &mut input, out, &sizes).await?,
        };
        if conn.flush(out).await? || close {
            break;
        }
        input.release_excess();
        let holds = input.held() + out.capacity();
        if holds != held {
            held = holds;
            let cap = conn.ctx.limits.max_client_memory_bytes;
            if conn.ctx.clients.account(&conn.client, held, cap) {
                // Disconnected for holding the most memory: no reply, as
                // Redis does for clients over maxmemory-clients.
                break;
            }
        }
    }
    let _ = conn.stream.shutdown().await;
    if conn.refused {
        linger(&mut conn.stream).await;
    }
    Ok(())
}

/// The size limits of one connection's requests.
struct Sizes {
    /// Longest RESP bulk string.
    max_bulk: usize,
    /// Longest text line.
    max_line: usize,
    /// Longest RESP request: it may carry several max-size bulk strings
    /// (MSET).
    max_request: usize,
}

impl Sizes {
    fn of(ctx: &ServerContext) -> Self {
        let max_bulk = ctx.limits.max_line_bytes;
        Self {
            max_bulk,
            max_line: max_bulk.saturating_add(LINE_HEADROOM),
            max_request: max_bulk.saturating_mul(8).saturating_add(READ_CHUNK),
        }
    }
}

/// A connection apart from its input: the socket and what commands update.
struct Conn {
    stream: TcpStream,
    ctx: Arc<ServerContext>,
    client: Arc<ClientInfo>,
    session: Session,
    /// Keyed commands go to the partitioned cluster's coordinator.
    partitioned: bool,
    /// Closing because of bad input: linger so the client can read why.
    refused: bool,
}

/// A buffer holding more than this is given back once it is mostly empty.
const RELEASE_ABOVE: usize = 1 << 20;

/// Bytes read and not yet processed.
struct Input {
    buf: Vec<u8>,
    /// First unprocessed byte.
    start: usize,
    /// Text: bytes after `start` already searched for `\n`.
    scanned: usize,
    /// RESP: where the arguments of the last parsed request are.
    ranges: Vec<Range<usize>>,
}

impl Input {
    /// Bytes this input holds allocated: the read buffer and the argument
    /// ranges of the request being parsed.
    #[inline]
    fn held(&self) -> usize {
        self.buf.capacity() + self.ranges.capacity() * std::mem::size_of::<Range<usize>>()
    }

    /// Gives back a read buffer grown for a large request once little of
    /// it is still in use, so a connection holds memory only while it is
    /// sending a large request.
    #[inline]
    fn release_excess(&mut self) {
        if self.buf.capacity() > RELEASE_ABOVE || self.ranges.capacity() > RANGES_KEPT {
            self.release_grown();
        }
    }

    #[cold]
    fn release_grown(&mut self) {
        let pending = self.buf.len() - self.start;
        if self.buf.capacity() > RELEASE_ABOVE && pending < RELEASE_ABOVE / 4 {
            self.buf.drain(..self.start);
            self.start = 0;
            self.buf.shrink_to(pending.max(READ_CHUNK));
        }
        if self.ranges.capacity() > RANGES_KEPT {
            self.ranges = Vec::new();
        }
    }
}

/// Argument ranges kept between requests (more are allocated per request).
const RANGES_KEPT: usize = 1024;

/// The text protocol: every complete line is a request. Executes every
/// complete line read; returns whether to close.
async fn text_requests(
    conn: &mut Conn,
    input: &mut Input,
    out: &mut ReplyBuf,
    max_line: usize,
) -> Result<bool, ConnectionError> {
    loop {
        let Some(pos) = memchr::memchr(b'\n', &input.buf[input.start + input.scanned..]) else {
            input.scanned = input.buf.len() - input.start;
            if input.scanned > max_line {
                conn.refuse(out, "line too long");
                return Ok(true);
            }
            return Ok(false);
        };
        let end = input.start + input.scanned + pos;
        let line = &input.buf[input.start..end];
        input.start = end + 1;
        input.scanned = 0;
        if line.len() > max_line {
            conn.refuse(out, "line too long");
            return Ok(true);
        }
        let action = match text::parse_line(line) {
            Ok(cmd) => dispatch::execute(cmd, &conn.ctx, &conn.client, &mut conn.session, out),
            Err(CommandError::InvalidUtf8) => {
                conn.refuse(out, "invalid UTF-8");
                Action::Close
            }
            Err(e) => replies::error(&conn.ctx, out, &e.to_string()),
        };
        if needs_step(&action, out) && conn.step(action, out).await? {
            return Ok(true);
        }
    }
}

/// RESP2/3: every complete array of bulk strings is a request; inside
/// `MULTI` requests are queued instead of executed. Executes every
/// complete request read; returns whether to close.
async fn resp_requests(
    conn: &mut Conn,
    input: &mut Input,
    out: &mut ReplyBuf,
    sizes: &Sizes,
) -> Result<bool, ConnectionError> {
    loop {
        let consumed =
            match resp::parse_request(&input.buf[input.start..], sizes.max_bulk, &mut input.ranges)
            {
                Ok(Some(consumed)) => consumed,
                Ok(None) => {
                    if input.buf.len() - input.start > sizes.max_request {
                        conn.refuse(out, "Protocol error: request too large");
                        return Ok(true);
                    }
                    return Ok(false);
                }
                Err(e) => {
                    conn.refuse(out, &e.to_string());
                    return Ok(true);
                }
            };
        let req = &input.buf[input.start..input.start + consumed];
        input.start += consumed;
        if input.ranges.is_empty() {
            continue;
        }
        let action = match (
            resp::to_command(req, &input.ranges),
            &mut conn.session.multi,
        ) {
            (Ok(cmd), Some(tx)) if !cmd.bypasses_transaction() => {
                tx.queue(&conn.ctx, req, out);
                Action::Continue
            }
            (Ok(cmd), _) => dispatch::execute(cmd, &conn.ctx, &conn.client, &mut conn.session, out),
            (Err(e), tx) => {
                if let Some(tx) = tx {
                    tx.abort();
                }
                replies::error(&conn.ctx, out, &e.to_string())
            }
        };
        if needs_step(&action, out) && conn.step(action, out).await? {
            return Ok(true);
        }
    }
}

/// Whether [`Conn::step`] has anything to do: most requests only want the
/// connection to keep reading, and skip the await.
fn needs_step(action: &Action<'_>, out: &ReplyBuf) -> bool {
    !matches!(action, Action::Continue) || out.len() >= OUT_FLUSH_BYTES
}

impl Conn {
    /// The step every request ends with, in both protocols: runs what the
    /// command asked for, then writes the replies early once they pile up.
    /// Returns whether to close.
    async fn step(
        &mut self,
        action: Action<'_>,
        out: &mut ReplyBuf,
    ) -> Result<bool, ConnectionError> {
        if run::run_action(action, &self.ctx, &self.client, &mut self.session, out).await {
            return Ok(true);
        }
        Ok(out.len() >= OUT_FLUSH_BYTES && self.flush(out).await?)
    }

    /// Answers bad input with `msg`; the connection closes and lingers.
    fn refuse(&mut self, out: &mut ReplyBuf, msg: &str) {
        replies::error(&self.ctx, out, msg);
        self.refused = true;
    }

    /// Writes the buffered replies in one write, after the writes they
    /// acknowledge are durable (`storage.fsync = "always"`). Returns
    /// whether the connection must close (the durable flush failed).
    async fn flush(&mut self, out: &mut ReplyBuf) -> Result<bool, ConnectionError> {
        let mut close = false;
        if self.session.wrote {
            self.session.wrote = false;
            if let Some(d) = &self.ctx.hooks.durability {
                if let Err(e) = d.wait_durable().await {
                    // The replies already encoded claim success; the write
                    // is in memory and the log, but not confirmed on disk:
                    // say so and close rather than acknowledge silently.
                    tracing::error!(error = %e, "durable flush failed");
                    out.clear();
                    replies::error(&self.ctx, out, &format!("storage error: {e}"));
                    close = true;
                }
            }
        }
        if !out.is_empty() {
            let stalled = self.send(out.as_bytes()).await?;
            out.clear();
            if stalled {
                return Ok(true);
            }
        }
        Ok(close)
    }

    /// Writes `bytes`; `true` when the client took none of them for
    /// `limits.reply_timeout` (it stopped reading): counted, logged, and the
    /// connection is to close. A timer is armed only once a write would
    /// block, so replies that fit the socket buffer cost none.
    async fn send(&mut self, bytes: &[u8]) -> Result<bool, ConnectionError> {
        let Some(limit) = self.ctx.limits.reply_timeout else {
            self.stream.write_all(bytes).await?;
            return Ok(false);
        };
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = match self.stream.try_write(rest) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    match tokio::time::timeout(limit, self.stream.write(rest)).await {
                        Ok(written) => written?,
                        Err(_) => {
                            self.ctx
                                .stats
                                .stalled_clients_closed
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::warn!(
                                client = %self.client.addr,
                                pending_bytes = rest.len(),
                                "closing a client that took none of its replies for {} s \
                                 (network.reply_timeout_seconds)",
                                limit.as_secs()
                            );
                            return Ok(true);
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            rest = &rest[n..];
        }
        Ok(false)
    }
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
