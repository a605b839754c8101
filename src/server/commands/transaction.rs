//! MULTI, EXEC, DISCARD (the queue itself is
//! [`Transaction`](super::super::transaction::Transaction)).

use super::super::action::Action;
use super::super::context::ServerContext;
use super::super::replies::error;
use super::super::session::Session;
use super::super::transaction::Transaction;
use crate::protocol::ReplyBuf;

/// `MULTI`: start queuing commands.
pub fn multi(ctx: &ServerContext, session: &mut Session, out: &mut ReplyBuf) -> Action<'static> {
    if session.multi.is_some() {
        return error(ctx, out, "MULTI calls can not be nested");
    }
    session.multi = Some(Transaction::default());
    out.ok();
    Action::Continue
}

/// `DISCARD`: drop the queued commands.
pub fn discard(ctx: &ServerContext, session: &mut Session, out: &mut ReplyBuf) -> Action<'static> {
    if session.multi.take().is_none() {
        return error(ctx, out, "DISCARD without MULTI");
    }
    out.ok();
    Action::Continue
}

/// `EXEC`: the queued commands run after this one, in
/// [`run`](super::super::run).
pub fn exec(ctx: &ServerContext, session: &Session, out: &mut ReplyBuf) -> Action<'static> {
    if session.multi.is_none() {
        return error(ctx, out, "EXEC without MULTI");
    }
    Action::Exec
}
