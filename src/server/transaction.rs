//! `MULTI` / `EXEC` / `DISCARD` for RESP clients (redis-py's default
//! `pipeline()` wraps its commands in them).
//!
//! Between `MULTI` and `EXEC` every command is checked, kept as its raw
//! request bytes and answered `+QUEUED`; a command that fails to parse
//! aborts the transaction (`EXEC` then answers `-EXECABORT`, as Redis).
//! `EXEC` runs the queued commands back to back and answers one array of
//! their replies (see [`run`](super::run)). There is no isolation: other connections' commands may
//! run between two queued commands (see docs/protocol.md).

use super::context::ServerContext;
use super::replies;
use crate::protocol::ReplyBuf;

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
            replies::error(
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

    /// Whether a queued command was refused (`EXEC` answers `EXECABORT`).
    pub fn is_aborted(&self) -> bool {
        self.aborted
    }

    /// How many commands are queued.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The queued requests, in order.
    pub fn requests(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.requests[start..end])
    }
}
