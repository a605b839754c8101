//! `MULTI` / `EXEC` / `DISCARD` for RESP clients (redis-py's default
//! `pipeline()` wraps its commands in them).
//!
//! Between `MULTI` and `EXEC` every command is checked, kept as its raw
//! request bytes and answered `+QUEUED`; a command that fails to parse
//! aborts the transaction (`EXEC` then answers `-EXECABORT`, as Redis).
//! `EXEC` runs the queued commands back to back and answers one array of
//! their replies. There is no isolation: other connections' commands may
//! run between two queued commands (see docs/protocol.md).

use super::clients::ClientInfo;
use super::connection::run_sync;
use super::context::ServerContext;
use super::dispatch::{self, Action, Session};
use crate::protocol::{resp, ReplyBuf};

/// Most commands one transaction may queue.
pub const MAX_QUEUED_COMMANDS: usize = 100_000;
/// Most request bytes one transaction may queue.
pub const MAX_QUEUED_BYTES: usize = 64 << 20;

/// The commands queued since `MULTI`.
#[derive(Debug, Default)]
pub struct Transaction {
    /// The raw requests, back to back.
    requests: Vec<u8>,
    /// End offset of each request in `requests`.
    ends: Vec<usize>,
    /// A queued command was refused: `EXEC` must discard everything.
    aborted: bool,
}

impl Transaction {
    /// Queues one well-formed request and answers `+QUEUED`.
    pub fn queue(&mut self, ctx: &ServerContext, request: &[u8], out: &mut ReplyBuf) {
        if self.ends.len() >= MAX_QUEUED_COMMANDS
            || self.requests.len() + request.len() > MAX_QUEUED_BYTES
        {
            self.aborted = true;
            dispatch::error(
                ctx,
                out,
                &format!(
                    "transaction too large (at most {MAX_QUEUED_COMMANDS} commands and {MAX_QUEUED_BYTES} bytes)"
                ),
            );
            return;
        }
        self.requests.extend_from_slice(request);
        self.ends.push(self.requests.len());
        out.status("QUEUED");
    }

    /// Marks the transaction as failed (a queued command was refused).
    pub fn abort(&mut self) {
        self.aborted = true;
    }
}

/// Runs `EXEC`: every queued command in order, their replies in one array.
/// Returns whether the connection must close (a queued `SHUTDOWN`).
pub async fn exec(
    tx: Transaction,
    ctx: &ServerContext,
    client: &ClientInfo,
    session: &mut Session,
    out: &mut ReplyBuf,
) -> bool {
    if tx.aborted {
        ctx.stats.error_replies.incr();
        out.error_with_code(
            "EXECABORT",
            "Transaction discarded because of previous errors.",
        );
        return false;
    }
    out.array_start(tx.ends.len());
    let mut ranges = Vec::new();
    let mut start = 0;
    for &end in &tx.ends {
        let request = &tx.requests[start..end];
        start = end;
        let command = match resp::parse_request(request, usize::MAX, &mut ranges) {
            Ok(Some(_)) => resp::to_command(request, &ranges),
            // Checked when queued; kept as an error element just in case.
            _ => Err(crate::protocol::CommandError::Syntax),
        };
        let action = match command {
            Ok(cmd) => dispatch::execute(cmd, ctx, client, session, out),
            Err(e) => dispatch::error(ctx, out, &e.to_string()),
        };
        match action {
            Action::Continue | Action::Exec => {}
            Action::Close => return true,
            Action::Sync { host, port, full } => run_sync(ctx, out, host, port, full).await,
        }
    }
    false
}
