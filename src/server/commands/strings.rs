//! GET, SET, DEL, INC/DEC, APPEND/PREPEND, MGET, MSET, EXISTS.

use super::super::context::ServerContext;
use super::super::replies;
use super::super::session::Session;
use super::write::{apply, write};
use crate::protocol::{Protocol, ReplyBuf};
use crate::store::{WriteOp, WriteResult};

/// `GET k`
pub fn get(ctx: &ServerContext, out: &mut ReplyBuf, key: &[u8]) {
    ctx.store.get_with(key, |v| out.value(v))
}

/// `SET k v`
pub fn set(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    key: &[u8],
    value: &[u8],
) {
    write(ctx, session, out, WriteOp::Set { key, value })
}

/// `DEL k …`: how many live keys were removed.
pub fn delete(ctx: &ServerContext, session: &mut Session, out: &mut ReplyBuf, keys: &[&[u8]]) {
    let mut removed = 0;
    for key in keys {
        match apply(ctx, session, WriteOp::Delete { key }) {
            Ok(WriteResult::Deleted(true)) => removed += 1,
            Ok(_) => {}
            Err(e) => {
                replies::store_error(ctx, out, &e);
                return;
            }
        }
    }
    out.deleted(removed);
}

/// `INC`/`DEC` and their Redis forms: add `delta`.
pub fn increment(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    key: &[u8],
    delta: i64,
) {
    write(ctx, session, out, WriteOp::Increment { key, delta })
}

/// `APPEND k v`
pub fn append(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    key: &[u8],
    suffix: &[u8],
) {
    let line_safe = reply_is_a_line(out);
    write(
        ctx,
        session,
        out,
        WriteOp::Append {
            key,
            suffix,
            line_safe,
        },
    )
}

/// `PREPEND k v`
pub fn prepend(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    key: &[u8],
    prefix: &[u8],
) {
    let line_safe = reply_is_a_line(out);
    write(
        ctx,
        session,
        out,
        WriteOp::Prepend {
            key,
            prefix,
            line_safe,
        },
    )
}

/// Whether APPEND/PREPEND reply with the new value on one text line, so
/// the store must refuse a result holding a line break.
fn reply_is_a_line(out: &ReplyBuf) -> bool {
    out.protocol() == Protocol::Text
}

/// `MGET k1 k2 …`
pub fn mget(ctx: &ServerContext, out: &mut ReplyBuf, keys: &[&[u8]]) {
    let items: Vec<(&[u8], Option<Vec<u8>>)> =
        keys.iter().map(|k| (*k, ctx.store.get(k))).collect();
    out.mget(&items);
}

/// `MSET k1 v1 k2 v2 …`
pub fn mset(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    pairs: &[(&[u8], &[u8])],
) {
    write(ctx, session, out, WriteOp::MultiSet { pairs })
}

/// `EXISTS k1 …`: how many of the keys are live.
pub fn exists(ctx: &ServerContext, out: &mut ReplyBuf, keys: &[&[u8]]) {
    out.exists(keys.iter().filter(|k| ctx.store.contains(k)).count() as u64)
}
