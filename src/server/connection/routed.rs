//! The request loops of a partitioned node: like the full replica's in
//! the parent module, but keyed commands are gathered into a
//! [`RoutedBatch`] and run together through the coordinator (see
//! `server/routed_batch.rs`); anything else runs the batch first, so
//! replies keep request order. Kept apart so a full replica's loops carry
//! no batch at all (they are the hot path of every figure in
//! docs/benchmarks.md).

use super::super::commands::routed::is_routed;
use super::super::routed_batch::RoutedBatch;
use super::{dispatch, replies, Sizes};
use super::{needs_step, resp, text, Action, CommandError, Conn, ConnectionError, Input, ReplyBuf};

/// The text protocol, gathering keyed commands. Returns whether to close.
pub(super) async fn text_requests(
    conn: &mut Conn,
    input: &mut Input,
    out: &mut ReplyBuf,
    max_line: usize,
) -> Result<bool, ConnectionError> {
    let mut batch = RoutedBatch::default();
    loop {
        let Some(pos) = memchr::memchr(b'\n', &input.buf[input.start + input.scanned..]) else {
            input.scanned = input.buf.len() - input.start;
            batch.run(&conn.ctx, &conn.session, out).await;
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
            batch.run(&conn.ctx, &conn.session, out).await;
            conn.refuse(out, "line too long");
            return Ok(true);
        }
        let parsed = match text::parse_line(line) {
            Ok(cmd) if is_routed(&cmd) => {
                batch.gather(&conn.ctx, &conn.session, cmd, out).await;
                continue;
            }
            other => other,
        };
        batch.run(&conn.ctx, &conn.session, out).await;
        let action = match parsed {
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

/// RESP, gathering keyed commands outside `MULTI`. Returns whether to
/// close.
pub(super) async fn resp_requests(
    conn: &mut Conn,
    input: &mut Input,
    out: &mut ReplyBuf,
    sizes: &Sizes,
) -> Result<bool, ConnectionError> {
    let mut batch = RoutedBatch::default();
    loop {
        let consumed =
            match resp::parse_request(&input.buf[input.start..], sizes.max_bulk, &mut input.ranges)
            {
                Ok(Some(consumed)) => consumed,
                Ok(None) => {
                    batch.run(&conn.ctx, &conn.session, out).await;
                    if input.buf.len() - input.start > sizes.max_request {
                        conn.refuse(out, "Protocol error: request too large");
                        return Ok(true);
                    }
                    return Ok(false);
                }
                Err(e) => {
                    batch.run(&conn.ctx, &conn.session, out).await;
                    conn.refuse(out, &e.to_string());
                    return Ok(true);
                }
            };
        let req = &input.buf[input.start..input.start + consumed];
        input.start += consumed;
        if input.ranges.is_empty() {
            continue;
        }
        let parsed = match resp::to_command(req, &input.ranges) {
            Ok(cmd) if conn.session.multi.is_none() && is_routed(&cmd) => {
                batch.gather(&conn.ctx, &conn.session, cmd, out).await;
                continue;
            }
            other => other,
        };
        batch.run(&conn.ctx, &conn.session, out).await;
        let action = match (parsed, &mut conn.session.multi) {
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
