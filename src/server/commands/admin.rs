//! VERSION, INFO, STATS, MEMORY, SHUTDOWN, CONFIG GET, LASTSAVE, SYNC and
//! REPLICATE: the node.

use super::super::action::Action;
use super::super::context::ServerContext;
use super::super::info::{info_lines, memory_bytes, stats_lines};
use super::super::replies::error;
use crate::hooks::ReplicationError;
use crate::protocol::{glob, PairValue, Protocol, ReplicateAction, ReplyBuf};

/// `VERSION`
pub fn version(out: &mut ReplyBuf) {
    match out.protocol() {
        Protocol::Text => out.status(&format!("VERSION {}", env!("CARGO_PKG_VERSION"))),
        Protocol::Resp => out.bulk_or_line(env!("CARGO_PKG_VERSION").as_bytes()),
    }
}

/// `INFO [section]`
pub fn info(ctx: &ServerContext, out: &mut ReplyBuf) {
    out.block("INFO", &info_lines(ctx), None)
}

/// `STATS`
pub fn stats(ctx: &ServerContext, out: &mut ReplyBuf) {
    out.block("STATS", &stats_lines(ctx), None)
}

/// `MEMORY`
pub fn memory(ctx: &ServerContext, out: &mut ReplyBuf) {
    match out.protocol() {
        Protocol::Text => out.status(&format!("MEMORY {}", memory_bytes(ctx))),
        Protocol::Resp => out.integer(memory_bytes(ctx) as i64),
    }
}

/// `SHUTDOWN`: answers, begins a graceful shutdown, closes.
pub fn shutdown(ctx: &ServerContext, out: &mut ReplyBuf) -> Action<'static> {
    out.ok();
    ctx.request_shutdown();
    Action::Close
}

/// `LASTSAVE`: unix seconds of the last save — the change log's last
/// fsync or checkpoint; without durable storage, the node's start (what
/// Redis answers before its first save).
pub fn last_save(ctx: &ServerContext, out: &mut ReplyBuf) {
    let secs = match &ctx.hooks.saves {
        Some(saves) => saves.last_save_unix_secs(),
        None => {
            (crate::clock::wall_clock_ms() / 1000).saturating_sub(ctx.started.elapsed().as_secs())
        }
    };
    out.integer(i64::try_from(secs).unwrap_or(i64::MAX));
}

/// `CONFIG GET pattern`: the few keys clients ask for.
pub fn config_get(out: &mut ReplyBuf, pattern: &[u8]) {
    let known: [(&[u8], &[u8]); 3] = [(b"save", b""), (b"appendonly", b"no"), (b"databases", b"1")];
    let hits: Vec<(&[u8], PairValue<'_>)> = known
        .iter()
        .filter(|(name, _)| glob::matches(&pattern.to_ascii_lowercase(), name))
        .map(|(name, value)| (*name, PairValue::Bulk(value)))
        .collect();
    out.pairs(&hits);
}

/// `SYNC host port [--merge] [--full] [--verbose]`: the round runs after
/// the command, in [`run`](super::super::run).
pub fn sync(host: &str, port: u16, flags: crate::protocol::SyncFlags) -> Action<'_> {
    Action::Sync { host, port, flags }
}

/// `REPLICATE enable|disable|status`
pub fn replicate(ctx: &ServerContext, out: &mut ReplyBuf, action: ReplicateAction) {
    let Some(control) = &ctx.hooks.replication else {
        match action {
            ReplicateAction::Status => out.status("REPLICATION disabled"),
            _ => {
                error(ctx, out, &ReplicationError::NoBroker.to_string());
            }
        }
        return;
    };
    match action {
        ReplicateAction::Enable => match control.enable() {
            Ok(()) => out.ok(),
            Err(e) => {
                error(ctx, out, &e.to_string());
            }
        },
        ReplicateAction::Disable => {
            control.disable();
            out.ok();
        }
        ReplicateAction::Status => out.status(&control.status()),
    }
}
