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
use super::{breadth, expiry};
use crate::cluster::{Cluster, ClusterError, Rmw};
use crate::config::Consistency;
use crate::protocol::{Command, ExpireSpec, Protocol, ReplyBuf};
use crate::store::{ExpireWhen, Ttl, WriteResult};

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
            | Command::SetWith(_)
            | Command::Expire { .. }
            | Command::Persist(_)
            | Command::Ttl(..)
            | Command::GetEx { .. }
            | Command::Strlen(_)
            | Command::GetDel(_)
            | Command::MSetNx(_)
            | Command::SetRange(..)
            | Command::GetRange(..)
            | Command::Type(_)
            | Command::Touch(_)
            | Command::IncrementFloat(..)
            | Command::Rename { .. }
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
        Command::SetWith(args) => {
            let ttl = match expiry::resolve(ctx.store.now_ms(), args.ttl, "set") {
                Ok(ttl) => ttl,
                Err(e) => {
                    replies::error(ctx, out, &e.to_string());
                    return;
                }
            };
            let rmw = Rmw::SetWith {
                key: args.key,
                value: args.value,
                ttl,
                when: args.when,
            };
            c.execute(rmw, level)
                .await
                .map(|r| expiry::set_reply(out, args.reply, r))
        }
        Command::Expire { key, spec, when } => {
            deadline_change(
                ctx,
                c,
                level,
                out,
                key,
                spec,
                when,
                "expire",
                Reply::Changed,
            )
            .await
        }
        Command::Persist(key) => {
            let reply = if line_safe {
                Reply::Existed
            } else {
                Reply::Changed
            };
            let (spec, when) = (ExpireSpec::Clear, ExpireWhen::Always);
            deadline_change(ctx, c, level, out, key, spec, when, "persist", reply).await
        }
        Command::GetEx {
            key,
            ttl: Some(spec),
        } => {
            let when = ExpireWhen::Always;
            deadline_change(ctx, c, level, out, key, spec, when, "getex", Reply::Old).await
        }
        Command::GetEx { key, ttl: None } => c.get(key, level).await.map(|entry| {
            out.value(entry.as_ref().and_then(|e| e.value.as_deref()));
        }),
        Command::MSetNx(_) => {
            // Keys on different replica sets cannot be written all or
            // nothing (no coordination across partitions, as in Cassandra).
            replies::error(
                ctx,
                out,
                "MSETNX is not supported in a partitioned cluster: its keys live on different replicas and cannot be set all or nothing",
            );
            return;
        }
        Command::IncrementFloat(key, delta) => c
            .execute(Rmw::IncrementFloat(key, delta), level)
            .await
            .map(|r| breadth::float_reply(out, r)),
        Command::Rename { only_if_absent, .. } => {
            // Its two keys live on different replica sets: moving a value
            // between them cannot be atomic (Redis Cluster refuses it too).
            let name = if only_if_absent { "RENAMENX" } else { "RENAME" };
            replies::error(
                ctx,
                out,
                &format!("{name} is not supported in a partitioned cluster: its two keys live on different replicas and cannot be moved atomically"),
            );
            return;
        }
        Command::GetDel(key) => c
            .execute(Rmw::GetDel(key), level)
            .await
            .map(|r| breadth::getdel_reply(out, r)),
        Command::SetRange(key, offset, bytes) => c
            .execute(Rmw::SetRange { key, offset, bytes }, level)
            .await
            .map(|r| write_result(out, r)),
        Command::Strlen(key) => c.get(key, level).await.map(|entry| {
            let len = entry.and_then(|e| e.value).map_or(0, |v| v.len());
            out.integer(i64::try_from(len).unwrap_or(i64::MAX));
        }),
        Command::GetRange(key, start, end) => c.get(key, level).await.map(|entry| {
            let value = entry.and_then(|e| e.value);
            breadth::range_reply(out, value.as_deref(), start, end);
        }),
        Command::Type(key) => c
            .get(key, level)
            .await
            .map(|entry| breadth::type_reply(out, entry.is_some())),
        Command::Touch(keys) => join_all(keys.iter().map(|k| c.get(k, level)))
            .await
            .into_iter()
            .try_fold(0i64, |n, r| r.map(|e| n + i64::from(e.is_some())))
            .map(|n| out.integer(n)),
        Command::Ttl(key, report) => c.get(key, level).await.map(|entry| {
            let deadline = entry.map(|e| e.expires_at.map(|d| d.get()));
            out.ttl(expiry::report_ttl(deadline, ctx.store.now_ms(), report));
        }),
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

/// How a deadline change answers.
enum Reply {
    /// `:1` / `OK` when it changed.
    Changed,
    /// Text `PERSIST`: `OK` while the key exists.
    Existed,
    /// `GETEX`: the value.
    Old,
}

/// EXPIRE, PERSIST and GETEX with an option, run on the key's primary.
#[allow(clippy::too_many_arguments)]
async fn deadline_change(
    ctx: &ServerContext,
    c: &crate::cluster::Coordinator,
    level: Option<Consistency>,
    out: &mut ReplyBuf,
    key: &[u8],
    spec: ExpireSpec,
    when: ExpireWhen,
    name: &'static str,
    reply: Reply,
) -> Result<(), ClusterError> {
    let deadline = match expiry::resolve(ctx.store.now_ms(), spec, name) {
        Ok(Ttl::At(d)) => Some(d),
        Ok(_) => None,
        Err(e) => {
            replies::error(ctx, out, &e.to_string());
            return Ok(());
        }
    };
    let result = c
        .execute(
            Rmw::Expire {
                key,
                deadline,
                when,
            },
            level,
        )
        .await?;
    let WriteResult::Conditional { written, old } = result else {
        out.changed(false);
        return Ok(());
    };
    match reply {
        Reply::Changed => out.changed(written),
        Reply::Existed => out.changed(old.is_some()),
        Reply::Old => out.value(old.as_deref()),
    }
    Ok(())
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
