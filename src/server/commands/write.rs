//! How a client write reaches the store, replication and the durable
//! flush: every write command goes through [`apply`].

use super::super::context::ServerContext;
use super::super::replies;
use super::super::session::Session;
use crate::protocol::ReplyBuf;
use crate::store::{StoreError, WriteOp, WriteResult};

/// Applies a client write and hands its changes to replication (when
/// attached); marks the session as having written, for durable replies.
/// A write that fails part-way (MSET, FLUSH) still replicates, and is
/// waited for, as far as it got.
pub fn apply(
    ctx: &ServerContext,
    session: &mut Session,
    op: WriteOp<'_>,
) -> Result<WriteResult, StoreError> {
    let (result, written) = match &ctx.hooks.changes {
        Some(sink) => {
            let mut changes = Vec::new();
            let (result, written) = ctx.store.apply_local_into(op, Some(&mut changes));
            if !changes.is_empty() {
                sink.submit(changes);
            }
            (result, written)
        }
        None => ctx.store.apply_local_into(op, None),
    };
    if written > 0 {
        session.wrote = true;
    }
    result
}

/// Applies `op` and encodes its result (or the error) as the reply.
pub fn write(ctx: &ServerContext, session: &mut Session, out: &mut ReplyBuf, op: WriteOp<'_>) {
    match apply(ctx, session, op) {
        Ok(result) => match result {
            WriteResult::Stored | WriteResult::Flushed(_) => out.ok(),
            WriteResult::Deleted(d) => out.deleted(u64::from(d)),
            WriteResult::Number(n) => out.number(n),
            WriteResult::Value(v) => out.appended(&v),
            WriteResult::Conditional { written, .. } => out.number(i64::from(written)),
        },
        Err(e) => {
            replies::store_error(ctx, out, &e);
        }
    }
}
