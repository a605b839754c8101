//! Keyed commands in a partitioned cluster: each goes through the
//! [coordinator](crate::cluster::Coordinator) to the key's replicas.
//! Multi-key commands (MGET, MSET, DEL and EXISTS of several keys) run
//! per key at once, at the connection's `CONSISTENCY` level or the
//! configured one, — the links batch what goes to each replica — and
//! answer in request order; any key's failure fails the command. FLUSH
//! asks every member.

use futures_util::future::join_all;

use super::super::context::ServerContext;
use super::super::replies;
use crate::cluster::{Cluster, ClusterError, Rmw};
use crate::config::Consistency;
use crate::protocol::{Command, Protocol, ReplyBuf};
use crate::store::WriteResult;

/// Whether `cmd` goes through the coordinator in a partitioned cluster.
pub fn is_routed(cmd: &Command<'_>) -> bool {
    matches!(
        cmd,
        Command::Get(_)
            | Command::Set(..)
            | Command::Delete(_)
            | Command::Increment(..)
            | Command::Append(..)
            | Command::Prepend(..)
            | Command::MGet(_)
            | Command::MSet(_)
            | Command::Exists(_)
            | Command::Flush
    )
}

/// Runs a routed command and encodes its reply.
pub async fn run(
    ctx: &ServerContext,
    cluster: &Cluster,
    level: Option<Consistency>,
    out: &mut ReplyBuf,
    cmd: Command<'_>,
) {
    let c = &cluster.coordinator;
    let line_safe = out.protocol() == Protocol::Text;
    let result = match cmd {
        Command::Get(key) => c.get(key, level).await.map(|entry| {
            out.value(entry.as_ref().and_then(|e| e.value.as_deref()));
        }),
        Command::Set(key, value) => c.set(key, value, level).await.map(|_| out.ok()),
        Command::Delete(keys) => join_all(keys.iter().map(|k| c.delete(k, level)))
            .await
            .into_iter()
            .try_fold(0u64, |n, r| r.map(|(live, _)| n + u64::from(live)))
            .map(|n| out.deleted(n)),
        Command::Increment(key, delta) => c
            .execute(Rmw::Increment(key, delta), level)
            .await
            .map(|r| write_result(out, r)),
        Command::Append(key, suffix) => c
            .execute(Rmw::Append(key, suffix, line_safe), level)
            .await
            .map(|r| write_result(out, r)),
        Command::Prepend(key, prefix) => c
            .execute(Rmw::Prepend(key, prefix, line_safe), level)
            .await
            .map(|r| write_result(out, r)),
        Command::MGet(keys) => join_all(keys.iter().map(|k| c.get(k, level)))
            .await
            .into_iter()
            .zip(keys.iter())
            .map(|(r, k)| r.map(|e| (*k, e.and_then(|e| e.value.map(|v| v.into_vec())))))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| out.mget(&items)),
        Command::MSet(pairs) => join_all(pairs.iter().map(|(k, v)| c.set(k, v, level)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map(|_| out.ok()),
        Command::Exists(keys) => join_all(keys.iter().map(|k| c.get(k, level)))
            .await
            .into_iter()
            .try_fold(0u64, |n, r| r.map(|e| n + u64::from(e.is_some())))
            .map(|n| out.exists(n)),
        Command::Flush => c.flush_everywhere().await.map(|()| out.ok()),
        other => {
            // Not routed (see is_routed): answered as a local command would be.
            replies::error(ctx, out, &format!("{other:?} is not a keyed command"));
            return;
        }
    };
    if let Err(e) = result {
        cluster_error(ctx, out, &e);
    }
}

fn write_result(out: &mut ReplyBuf, result: WriteResult) {
    match result {
        WriteResult::Stored | WriteResult::Flushed(_) => out.ok(),
        WriteResult::Deleted(d) => out.deleted(u64::from(d)),
        WriteResult::Number(n) => out.number(n),
        WriteResult::Value(v) => out.appended(&v),
        WriteResult::Conditional { written, .. } => out.number(i64::from(written)),
    }
}

/// Encodes a coordinated request's failure: text `ERROR unavailable: 1 of
/// 2 replicas answered`, RESP `-UNAVAILABLE 1 of 2 replicas answered`;
/// store errors read as they do unclustered.
pub fn cluster_error(ctx: &ServerContext, out: &mut ReplyBuf, e: &ClusterError) {
    match e {
        ClusterError::Store(store) => {
            replies::store_error(ctx, out, store);
        }
        ClusterError::Unavailable { answered, required } => {
            ctx.stats.error_replies.incr();
            match out.protocol() {
                Protocol::Text => out.error(&e.to_string()),
                Protocol::Resp => out.error_with_code(
                    "UNAVAILABLE",
                    &format!("{answered} of {required} replicas answered"),
                ),
            }
        }
        ClusterError::Remote { code, message } => {
            ctx.stats.error_replies.incr();
            out.error_with_code(code, message);
        }
    }
}
