//! Maps each parsed command to its handler in [`commands`](super::commands)
//! and counts it; one line per command.

use super::action::Action;
use super::auth;
use super::clients::ClientInfo;
use super::commands::{
    admin, breadth, client as conn, command_table, expiry, keyspace, routed, strings, transaction,
};
use super::context::ServerContext;
use super::session::Session;
use super::stats::CommandKind;
use crate::protocol::{Command, ReplyBuf};

fn kind(cmd: &Command<'_>) -> CommandKind {
    match cmd {
        Command::Get(_) => CommandKind::Get,
        Command::Set(..) | Command::SetWith(_) => CommandKind::Set,
        Command::Delete(_) => CommandKind::Delete,
        Command::Increment(..) | Command::IncrementFloat(..) => CommandKind::Numeric,
        Command::Append(..) | Command::Prepend(..) => CommandKind::String,
        Command::MGet(_) | Command::MSet(_) => CommandKind::Bulk,
        _ => CommandKind::Other,
    }
}

/// Counts `cmd` in the command statistics (done by [`execute`]; the
/// connection calls it for routed commands it batches instead).
#[inline]
pub fn count(ctx: &ServerContext, cmd: &Command<'_>) {
    ctx.stats.count(kind(cmd));
}

/// Executes `cmd`, appending its reply to `out`.
pub fn execute<'a>(
    cmd: Command<'a>,
    ctx: &ServerContext,
    client: &ClientInfo,
    session: &mut Session,
    out: &mut ReplyBuf,
) -> Action<'a> {
    ctx.stats.count(kind(&cmd));
    if !session.is_admin() && auth::refuse(&ctx.stats, session.identity(), &cmd, out) {
        return Action::Continue;
    }
    if ctx.cluster.is_some() && routed::is_routed(&cmd) {
        return Action::Cluster(cmd);
    }
    match cmd {
        Command::Get(key) => strings::get(ctx, out, key),
        Command::Set(key, value) => strings::set(ctx, session, out, key, value),
        Command::SetWith(args) => expiry::set_with(ctx, session, out, &args),
        Command::Expire { key, spec, when } => expiry::expire(ctx, session, out, key, spec, when),
        Command::Persist(key) => expiry::persist(ctx, session, out, key),
        Command::Strlen(key) => breadth::strlen(ctx, out, key),
        Command::GetDel(key) => breadth::getdel(ctx, session, out, key),
        Command::MSetNx(pairs) => breadth::msetnx(ctx, session, out, &pairs),
        Command::IncrementFloat(key, delta) => {
            breadth::increment_float(ctx, session, out, key, delta)
        }
        Command::Rename {
            from,
            to,
            only_if_absent,
        } => breadth::rename(ctx, session, out, from, to, only_if_absent),
        Command::LastSave => admin::last_save(ctx, out),
        Command::SetRange(key, offset, bytes) => {
            breadth::setrange(ctx, session, out, key, offset, bytes)
        }
        Command::GetRange(key, start, end) => breadth::getrange(ctx, out, key, start, end),
        Command::Type(key) => breadth::type_of(ctx, out, key),
        Command::Touch(keys) => breadth::touch(ctx, out, &keys),
        Command::RandomKey => breadth::random_key(ctx, out),
        Command::Time => breadth::time(out),
        Command::Ttl(key, report) => expiry::ttl(ctx, out, key, report),
        Command::GetEx { key, ttl } => expiry::getex(ctx, session, out, key, ttl),
        Command::Delete(keys) => strings::delete(ctx, session, out, &keys),
        Command::Increment(key, delta) => strings::increment(ctx, session, out, key, delta),
        Command::Append(key, suffix) => strings::append(ctx, session, out, key, suffix),
        Command::Prepend(key, prefix) => strings::prepend(ctx, session, out, key, prefix),
        Command::MGet(keys) => strings::mget(ctx, out, &keys),
        Command::MSet(pairs) => strings::mset(ctx, session, out, &pairs),
        Command::Exists(keys) => strings::exists(ctx, out, &keys),
        Command::Scan(prefix) => keyspace::scan_prefix(ctx, out, prefix),
        Command::Keys(pattern) => keyspace::keys(ctx, out, pattern),
        Command::ScanCursor {
            cursor,
            pattern,
            count,
        } => keyspace::scan_cursor(ctx, out, cursor, pattern, count),
        Command::DbSize => keyspace::dbsize(ctx, out),
        Command::Flush => keyspace::flush(ctx, session, out),
        Command::Hash(prefix) => keyspace::hash(ctx, out, prefix),
        Command::Ping(msg) => conn::ping(out, msg),
        Command::Echo(msg) => conn::echo(out, msg),
        Command::Quit => return conn::quit(out),
        Command::Select(db) => return conn::select(ctx, out, db),
        Command::Hello {
            protover,
            auth,
            name,
        } => return conn::hello(ctx, client, session, out, protover, auth, name),
        Command::Auth { user, password } => {
            return conn::auth(ctx, client, session, out, user, password)
        }
        Command::ClientList => conn::list(ctx, out),
        Command::ClientSetName(name) => return conn::set_name(ctx, client, out, name),
        Command::ClientGetName => conn::get_name(client, out),
        Command::ClientId => conn::id(client, out),
        Command::ClientNoop => out.ok(),
        Command::Consistency(level) => conn::consistency(ctx, session, out, level),
        Command::Version => admin::version(out),
        Command::Info => admin::info(ctx, out),
        Command::Stats => admin::stats(ctx, out),
        Command::Memory => admin::memory(ctx, out),
        Command::Shutdown => return admin::shutdown(ctx, out),
        Command::CommandInfo(query) => command_table::answer(out, query),
        Command::ConfigGet(pattern) => admin::config_get(out, pattern),
        Command::Sync { host, port, flags } => return admin::sync(host, port, flags),
        Command::Replicate(action) => admin::replicate(ctx, out, action),
        Command::Multi => return transaction::multi(ctx, session, out),
        Command::Discard => return transaction::discard(ctx, session, out),
        Command::Exec => return transaction::exec(ctx, session, out),
    }
    Action::Continue
}
