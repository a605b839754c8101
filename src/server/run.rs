//! What runs after a command asked for more than a reply: an
//! anti-entropy round (`SYNC`) or the queued commands (`EXEC`). Both the
//! connection loops and `EXEC` come through here, so the command path
//! runs one way: connection → run → dispatch → commands.

use super::action::Action;
use super::clients::ClientInfo;
use super::commands::routed;
use super::context::ServerContext;
use super::dispatch;
use super::replies::error;
use super::session::Session;
use super::stats::LastSync;
use super::transaction::Transaction;
use crate::protocol::{resp, CommandError, ReplyBuf, SyncFlags};

/// Runs what a command asked for; returns whether to close.
pub async fn run_action(
    action: Action<'_>,
    ctx: &ServerContext,
    client: &ClientInfo,
    session: &mut Session,
    out: &mut ReplyBuf,
) -> bool {
    match action {
        Action::Continue => false,
        Action::Close => true,
        Action::Sync { host, port, flags } => {
            run_sync(ctx, session, out, host, port, flags).await;
            false
        }
        Action::Exec => match session.multi.take() {
            Some(tx) => exec(tx, ctx, client, session, out).await,
            None => false,
        },
        Action::Cluster(cmd) => {
            run_routed(ctx, session, out, cmd).await;
            false
        }
    }
}

/// A keyed command of a partitioned cluster.
async fn run_routed(
    ctx: &ServerContext,
    session: &Session,
    out: &mut ReplyBuf,
    cmd: crate::protocol::Command<'_>,
) {
    match &ctx.cluster {
        Some(cluster) => routed::run(ctx, cluster, session.consistency, out, cmd).await,
        None => {
            error(ctx, out, "this node is not part of a partitioned cluster");
        }
    }
}

/// `SYNC host port [--merge] [--full] [--verbose]`: one anti-entropy round,
/// answered `OK` (`OK <figures>` with `--verbose`; the figures are logged
/// and counted in the sync metrics either way). The local writes a mirror
/// round made replicate like any write.
async fn run_sync(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    host: &str,
    port: u16,
    flags: SyncFlags,
) {
    let Some(runner) = &ctx.hooks.sync else {
        error(ctx, out, "anti-entropy is not available on this node");
        return;
    };
    let outcome = runner.sync_with(host.to_string(), port, flags).await;
    *ctx.stats.last_sync.lock() = Some(LastSync {
        peer: format!("{host}:{port}"),
        ended_unix_secs: crate::clock::wall_clock_ms() / 1000,
        outcome: outcome
            .as_ref()
            .map(|o| o.summary.clone())
            .map_err(|e| e.to_string()),
    });
    match outcome {
        Ok(outcome) => {
            if !outcome.changes.is_empty() {
                session.wrote = true;
                if let Some(sink) = &ctx.hooks.changes {
                    sink.submit(outcome.changes);
                }
            }
            if flags.verbose {
                out.status(&format!("OK {}", outcome.summary));
            } else {
                out.ok();
            }
        }
        Err(e) => {
            error(ctx, out, &format!("SYNC with {host}:{port} failed: {e}"));
        }
    }
}

/// Runs `EXEC`: every queued command in order, their replies in one array.
/// Returns whether the connection must close (a queued `SHUTDOWN`).
async fn exec(
    tx: Transaction,
    ctx: &ServerContext,
    client: &ClientInfo,
    session: &mut Session,
    out: &mut ReplyBuf,
) -> bool {
    if tx.is_aborted() {
        ctx.stats.error_replies.incr();
        out.error_with_code(
            "EXECABORT",
            "Transaction discarded because of previous errors.",
        );
        return false;
    }
    out.array_start(tx.len());
    let mut ranges = Vec::new();
    for request in tx.requests() {
        let command = match resp::parse_request(request, usize::MAX, &mut ranges) {
            Ok(Some(_)) => resp::to_command(request, &ranges),
            // Checked when queued; kept as an error element just in case.
            _ => Err(CommandError::Syntax),
        };
        let action = match command {
            Ok(cmd) => dispatch::execute(cmd, ctx, client, session, out),
            Err(e) => error(ctx, out, &e.to_string()),
        };
        match action {
            Action::Continue | Action::Exec => {}
            Action::Close => return true,
            Action::Sync { host, port, flags } => {
                run_sync(ctx, session, out, host, port, flags).await
            }
            Action::Cluster(cmd) => run_routed(ctx, session, out, cmd).await,
        }
    }
    false
}
