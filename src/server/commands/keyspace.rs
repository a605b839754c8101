//! SCAN, KEYS, DBSIZE, FLUSH, HASH: the key space as a whole.

use super::super::context::ServerContext;
use super::super::info::{root_hex, to_hex};
use super::super::replies;
use super::super::session::Session;
use super::write::apply;
use crate::protocol::{glob, Protocol, ReplyBuf};
use crate::store::WriteOp;

/// Text `SCAN [prefix]`: every key with the prefix, sorted.
pub fn scan_prefix(ctx: &ServerContext, out: &mut ReplyBuf, prefix: &[u8]) {
    out.keys(&ctx.store.scan(prefix))
}

/// RESP `KEYS pattern`.
pub fn keys(ctx: &ServerContext, out: &mut ReplyBuf, pattern: &[u8]) {
    out.keys(&matching_keys(ctx, pattern))
}

/// RESP `SCAN cursor [MATCH pattern] …`: every match in one page.
pub fn scan_cursor(
    ctx: &ServerContext,
    out: &mut ReplyBuf,
    cursor: u64,
    pattern: Option<&[u8]>,
    count: usize,
) {
    let (mut keys, next) = ctx.store.scan_page(cursor, count);
    match pattern {
        Some(p) => keys.retain(|k| glob::matches(p, k)),
        None => keys.clear(),
    }
    out.scan_page(next, &keys);
}

/// `DBSIZE`
pub fn dbsize(ctx: &ServerContext, out: &mut ReplyBuf) {
    out.dbsize(ctx.store.len())
}

/// `FLUSH` and its aliases: deletes every live key.
pub fn flush(ctx: &ServerContext, session: &mut Session, out: &mut ReplyBuf) {
    match apply(ctx, session, WriteOp::Flush) {
        Ok(_) => out.ok(),
        Err(e) => {
            replies::store_error(ctx, out, &e);
        }
    }
}

/// `HASH [prefix]`: the Merkle root, or the digest of one prefix.
pub fn hash(ctx: &ServerContext, out: &mut ReplyBuf, prefix: Option<&[u8]>) {
    match prefix {
        None => {
            let hex = root_hex(ctx);
            match out.protocol() {
                Protocol::Text => out.status(&format!("HASH {hex}")),
                Protocol::Resp => out.bulk_or_line(hex.as_bytes()),
            }
        }
        Some(prefix) => {
            let hex = to_hex(&ctx.store.prefix_digest(prefix));
            let p = String::from_utf8_lossy(prefix);
            match out.protocol() {
                Protocol::Text => out.status(&format!("HASH {p} {hex}")),
                Protocol::Resp => out.bulk_or_line(hex.as_bytes()),
            }
        }
    }
}

/// Every key matching a Redis glob pattern, sorted.
fn matching_keys(ctx: &ServerContext, pattern: &[u8]) -> Vec<Box<[u8]>> {
    let mut keys = ctx.store.scan(glob::literal_prefix(pattern));
    keys.retain(|k| glob::matches(pattern, k));
    keys
}
