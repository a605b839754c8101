//! GETDEL, SETRANGE, MSETNX, INCRBYFLOAT, RENAME, RENAMENX, STRLEN, GETRANGE, TYPE, TOUCH, RANDOMKEY, TIME: the
//! rest of Redis' everyday string-keyspace commands, on a full replica (a partitioned
//! cluster runs the keyed ones through the coordinator, see `routed`).

use super::super::context::ServerContext;
use super::super::replies;
use super::super::session::Session;
use super::write::apply;
use crate::protocol::commands::breadth::range_of;
use crate::protocol::ReplyBuf;
use crate::store::{WriteOp, WriteResult};

/// `GETDEL k`: the value, and the key deleted.
pub fn getdel(ctx: &ServerContext, session: &mut Session, out: &mut ReplyBuf, key: &[u8]) {
    match apply(ctx, session, WriteOp::GetDel { key }) {
        Ok(result) => getdel_reply(out, result),
        Err(e) => {
            replies::store_error(ctx, out, &e);
        }
    }
}

/// Encodes `GETDEL`'s reply.
pub fn getdel_reply(out: &mut ReplyBuf, result: WriteResult) {
    match result {
        WriteResult::Conditional { old, .. } => out.value(old.as_deref()),
        _ => out.value(None),
    }
}

/// `INCRBYFLOAT k delta`: the new value, as Redis writes it.
pub fn increment_float(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    key: &[u8],
    delta: &[u8],
) {
    match apply(ctx, session, WriteOp::IncrementFloat { key, delta }) {
        Ok(result) => float_reply(out, result),
        Err(e) => {
            replies::store_error(ctx, out, &e);
        }
    }
}

/// Encodes `INCRBYFLOAT`'s reply: the new value.
pub fn float_reply(out: &mut ReplyBuf, result: WriteResult) {
    match result {
        WriteResult::Value(v) => out.value(Some(&v)),
        _ => out.value(None),
    }
}

/// `RENAME from to` (`OK`) / `RENAMENX from to` (`1` renamed, `0` not).
pub fn rename(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    from: &[u8],
    to: &[u8],
    only_if_absent: bool,
) {
    let op = WriteOp::Rename {
        from,
        to,
        only_if_absent,
    };
    match apply(ctx, session, op) {
        Ok(WriteResult::Conditional { written, .. }) if only_if_absent => {
            out.integer(i64::from(written))
        }
        Ok(_) => out.ok(),
        Err(e) => {
            replies::store_error(ctx, out, &e);
        }
    }
}

/// `MSETNX k v …`: `1` when every key was set (none existed), else `0`.
pub fn msetnx(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    pairs: &[(&[u8], &[u8])],
) {
    match apply(ctx, session, WriteOp::MultiSetIfAbsent { pairs }) {
        Ok(WriteResult::Conditional { written, .. }) => out.integer(i64::from(written)),
        Ok(_) => out.integer(0),
        Err(e) => {
            replies::store_error(ctx, out, &e);
        }
    }
}

/// `SETRANGE k offset value`: the value's new length.
pub fn setrange(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    key: &[u8],
    offset: usize,
    bytes: &[u8],
) {
    match apply(ctx, session, WriteOp::SetRange { key, offset, bytes }) {
        Ok(WriteResult::Number(n)) => out.integer(n),
        Ok(_) => out.integer(0),
        Err(e) => {
            replies::store_error(ctx, out, &e);
        }
    }
}

/// `STRLEN k`: the value's length (0 without the key).
pub fn strlen(ctx: &ServerContext, out: &mut ReplyBuf, key: &[u8]) {
    let len = ctx.store.get_with(key, |v| v.map_or(0, <[u8]>::len));
    out.integer(i64::try_from(len).unwrap_or(i64::MAX));
}

/// `GETRANGE k start end`: the bytes in range (empty without the key).
pub fn getrange(ctx: &ServerContext, out: &mut ReplyBuf, key: &[u8], start: i64, end: i64) {
    ctx.store.get_with(key, |v| range_reply(out, v, start, end));
}

/// Encodes `GETRANGE`'s reply for `value`.
pub fn range_reply(out: &mut ReplyBuf, value: Option<&[u8]>, start: i64, end: i64) {
    let value = value.unwrap_or_default();
    let part = range_of(value.len(), start, end).map_or(&[][..], |r| &value[r]);
    out.value(Some(part));
}

/// `TYPE k`: `string`, or `none` without the key.
pub fn type_of(ctx: &ServerContext, out: &mut ReplyBuf, key: &[u8]) {
    type_reply(out, ctx.store.contains(key));
}

/// Encodes `TYPE`'s reply.
pub fn type_reply(out: &mut ReplyBuf, exists: bool) {
    out.status(if exists { "string" } else { "none" });
}

/// `TOUCH k …`: how many of the keys exist (nothing else to update: no
/// LRU clock is kept).
pub fn touch(ctx: &ServerContext, out: &mut ReplyBuf, keys: &[&[u8]]) {
    let n = keys.iter().filter(|k| ctx.store.contains(k)).count();
    out.integer(i64::try_from(n).unwrap_or(i64::MAX));
}

/// `RANDOMKEY`: a live key of this node, or nil.
pub fn random_key(ctx: &ServerContext, out: &mut ReplyBuf) {
    let key = ctx.store.random_key();
    out.value(key.as_deref());
}

/// `TIME`: the node's clock as `[unix seconds, microseconds]`.
pub fn time(out: &mut ReplyBuf) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs().to_string();
    let micros = now.subsec_micros().to_string();
    out.string_array(&[secs.as_bytes(), micros.as_bytes()]);
}
