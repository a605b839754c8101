//! Keys with a time to live: conditional SET with a deadline, EXPIRE and
//! PERSIST, TTL and its relatives, GETEX. Deadlines are absolute unix
//! milliseconds, resolved here against the store's hybrid clock and stored
//! with the entry's version, so every replica agrees on them.

use std::num::NonZeroU64;

use super::super::context::ServerContext;
use super::super::replies;
use super::super::session::Session;
use super::write::apply;
use crate::protocol::{CommandError, ExpireSpec, ReplyBuf, SetArgs, SetReply, TtlReport};
use crate::store::{ExpireWhen, Ttl, WriteOp, WriteResult};

/// Resolves a command's time to live against the store's clock; `name`
/// words Redis' error for a deadline that does not fit. A deadline at or
/// before now stays in the past (the key expires at once).
pub fn resolve(now_ms: u64, spec: ExpireSpec, name: &'static str) -> Result<Ttl, CommandError> {
    let at = |ms: i64| NonZeroU64::new(u64::try_from(ms).unwrap_or(0).max(1)).map(Ttl::At);
    let ttl = match spec {
        ExpireSpec::Clear => Some(Ttl::Clear),
        ExpireSpec::Keep => Some(Ttl::Keep),
        ExpireSpec::In(ms) => i64::try_from(now_ms)
            .ok()
            .and_then(|now| now.checked_add(ms))
            .and_then(at),
        ExpireSpec::At(ms) => at(ms),
    };
    ttl.ok_or(CommandError::InvalidExpireTime(name))
}

fn command_error(ctx: &ServerContext, out: &mut ReplyBuf, e: &CommandError) {
    replies::error(ctx, out, &e.to_string());
}

/// `SET k v [NX|XX] [GET] [EX|PX|EXAT|PXAT n|KEEPTTL]`, `SETEX`, `PSETEX`,
/// `SETNX`.
pub fn set_with(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    args: &SetArgs<'_>,
) {
    let SetArgs {
        key,
        value,
        ttl,
        when,
        reply,
    } = *args;
    let ttl = match resolve(ctx.store.now_ms(), ttl, "set") {
        Ok(ttl) => ttl,
        Err(e) => return command_error(ctx, out, &e),
    };
    let op = WriteOp::SetWith {
        key,
        value,
        ttl,
        when,
    };
    match apply(ctx, session, op) {
        Ok(result) => set_reply(out, reply, result),
        Err(e) => {
            replies::store_error(ctx, out, &e);
        }
    }
}

/// Encodes a conditional SET's result as `reply` asks.
pub fn set_reply(out: &mut ReplyBuf, reply: SetReply, result: WriteResult) {
    let WriteResult::Conditional { written, old } = result else {
        return out.ok();
    };
    match reply {
        SetReply::Ok if written => out.ok(),
        SetReply::Ok => out.nil(),
        SetReply::Integer => out.integer(i64::from(written)),
        SetReply::Old => out.value(old.as_deref()),
    }
}

/// `EXPIRE` and its relatives (`spec` is `In` or `At`), and `PERSIST`
/// (`spec` is `Clear`): `:1` when the deadline changed.
pub fn expire(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    key: &[u8],
    spec: ExpireSpec,
    when: ExpireWhen,
) {
    match change_deadline(ctx, session, key, spec, when, "expire") {
        Ok((written, _)) => out.changed(written),
        Err(Failure::Command(e)) => command_error(ctx, out, &e),
        Err(Failure::Store(e)) => {
            replies::store_error(ctx, out, &e);
        }
    }
}

/// `PERSIST k`: `:1` when a deadline was removed. Text: `OK` while the key
/// exists (it has no deadline now), `NOT_FOUND` when it does not.
pub fn persist(ctx: &ServerContext, session: &mut Session, out: &mut ReplyBuf, key: &[u8]) {
    match change_deadline(
        ctx,
        session,
        key,
        ExpireSpec::Clear,
        ExpireWhen::Always,
        "persist",
    ) {
        Ok((written, old)) => {
            if out.protocol() == crate::protocol::Protocol::Text {
                out.changed(old.is_some());
            } else {
                out.changed(written);
            }
        }
        Err(Failure::Command(e)) => command_error(ctx, out, &e),
        Err(Failure::Store(e)) => {
            replies::store_error(ctx, out, &e);
        }
    }
}

/// `GETEX k [EX|PX|EXAT|PXAT n|PERSIST]`: the value, its deadline changed.
pub fn getex(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    key: &[u8],
    ttl: Option<ExpireSpec>,
) {
    let Some(spec) = ttl else {
        return ctx.store.get_with(key, |v| out.value(v));
    };
    match change_deadline(ctx, session, key, spec, ExpireWhen::Always, "getex") {
        Ok((_, old)) => out.value(old.as_deref()),
        Err(Failure::Command(e)) => command_error(ctx, out, &e),
        Err(Failure::Store(e)) => {
            replies::store_error(ctx, out, &e);
        }
    }
}

/// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`: `-2` without the key, `-1`
/// without a deadline.
pub fn ttl(ctx: &ServerContext, out: &mut ReplyBuf, key: &[u8], report: TtlReport) {
    out.ttl(report_ttl(
        ctx.store.deadline(key),
        ctx.store.now_ms(),
        report,
    ));
}

/// What TTL and its relatives answer for a key's deadline (`None`: no key;
/// `Some(None)`: no deadline), Redis' rounding included.
pub fn report_ttl(deadline: Option<Option<u64>>, now_ms: u64, report: TtlReport) -> i64 {
    let Some(deadline) = deadline else {
        return -2;
    };
    let Some(at) = deadline else {
        return -1;
    };
    let at = i64::try_from(at).unwrap_or(i64::MAX);
    let left = at
        .saturating_sub(i64::try_from(now_ms).unwrap_or(i64::MAX))
        .max(0);
    match report {
        TtlReport::Seconds => (left + 500) / 1000,
        TtlReport::Millis => left,
        TtlReport::AtSeconds => at / 1000,
        TtlReport::AtMillis => at,
    }
}

/// Whether a deadline changed, and the key's live value.
type Changed = (bool, Option<Box<[u8]>>);

enum Failure {
    Command(CommandError),
    Store(crate::store::StoreError),
}

/// Sets (`In`/`At`) or clears (`Clear`) a live key's deadline: whether it
/// changed, and the key's value.
fn change_deadline(
    ctx: &ServerContext,
    session: &mut Session,
    key: &[u8],
    spec: ExpireSpec,
    when: ExpireWhen,
    name: &'static str,
) -> Result<Changed, Failure> {
    let deadline = match resolve(ctx.store.now_ms(), spec, name).map_err(Failure::Command)? {
        Ttl::At(d) => Some(d),
        Ttl::Clear | Ttl::Keep => None,
    };
    let op = WriteOp::Expire {
        key,
        deadline,
        when,
    };
    match apply(ctx, session, op).map_err(Failure::Store)? {
        WriteResult::Conditional { written, old } => Ok((written, old)),
        _ => Ok((false, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_reports_round_like_redis() {
        let now = 1_000_000;
        assert_eq!(report_ttl(None, now, TtlReport::Seconds), -2);
        assert_eq!(report_ttl(Some(None), now, TtlReport::Millis), -1);
        assert_eq!(
            report_ttl(Some(Some(now + 1_499)), now, TtlReport::Seconds),
            1
        );
        assert_eq!(
            report_ttl(Some(Some(now + 1_500)), now, TtlReport::Seconds),
            2
        );
        assert_eq!(report_ttl(Some(Some(now + 7)), now, TtlReport::Millis), 7);
        assert_eq!(report_ttl(Some(Some(now - 5)), now, TtlReport::Millis), 0);
        assert_eq!(
            report_ttl(Some(Some(12_345)), now, TtlReport::AtSeconds),
            12
        );
        assert_eq!(
            report_ttl(Some(Some(12_345)), now, TtlReport::AtMillis),
            12_345
        );
    }

    #[test]
    fn deadlines_resolve_against_now_and_refuse_overflow() {
        let at = |ms: u64| Ok(Ttl::At(NonZeroU64::new(ms).expect("nonzero")));
        assert_eq!(resolve(1_000, ExpireSpec::In(500), "set"), at(1_500));
        assert_eq!(resolve(1_000, ExpireSpec::In(-5_000), "expire"), at(1));
        assert_eq!(resolve(1_000, ExpireSpec::At(7), "expire"), at(7));
        assert_eq!(resolve(1_000, ExpireSpec::At(-7), "expire"), at(1));
        assert_eq!(
            resolve(1_000, ExpireSpec::In(i64::MAX), "set"),
            Err(CommandError::InvalidExpireTime("set"))
        );
        assert_eq!(resolve(1_000, ExpireSpec::Keep, "set"), Ok(Ttl::Keep));
    }
}
