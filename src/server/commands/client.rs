//! PING, ECHO, QUIT, SELECT, HELLO, AUTH, CLIENT … and CONSISTENCY: the
//! connection itself.

use std::sync::atomic::Ordering;

use super::super::action::Action;
use super::super::auth::DEFAULT_USER;
use super::super::clients::ClientInfo;
use super::super::context::ServerContext;
use super::super::replies::error;
use super::super::session::Session;
use crate::config::Consistency;
use crate::protocol::{PairValue, Protocol, ReplyBuf};

/// Redis' wording for a client name it refuses.
const BAD_CLIENT_NAME: &str = "Client names cannot contain spaces, newlines or special characters.";

/// Whether `name` may be a client name: printable ASCII without spaces, as
/// Redis requires (so `CLIENT LIST` stays one line per client).
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// `PING [msg]`
pub fn ping(out: &mut ReplyBuf, msg: Option<&[u8]>) {
    out.pong(msg)
}

/// `ECHO msg`
pub fn echo(out: &mut ReplyBuf, msg: &[u8]) {
    out.echo(msg)
}

/// `QUIT`: answers, then the connection closes.
pub fn quit(out: &mut ReplyBuf) -> Action<'static> {
    out.ok();
    Action::Close
}

/// `SELECT db`: only database 0 exists.
pub fn select(ctx: &ServerContext, out: &mut ReplyBuf, db: &[u8]) -> Action<'static> {
    if db != b"0" {
        return error(ctx, out, "DB index is out of range");
    }
    out.ok();
    Action::Continue
}

/// `AUTH …`: no passwords exist, answered with Redis' error.
pub fn auth(
    ctx: &ServerContext,
    client: &ClientInfo,
    session: &mut Session,
    out: &mut ReplyBuf,
    user: Option<&[u8]>,
    password: &[u8],
) -> Action<'static> {
    if !ctx.auth.required() {
        return error(
            ctx,
            out,
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        );
    }
    if log_in(ctx, client, session, out, user, password) {
        out.ok();
    }
    Action::Continue
}

/// Checks `user`/`password` and makes the connection that user; on a
/// wrong pair answers Redis' `-WRONGPASS`, counts and logs it (without
/// the password) and returns `false`.
fn log_in(
    ctx: &ServerContext,
    client: &ClientInfo,
    session: &mut Session,
    out: &mut ReplyBuf,
    user: Option<&[u8]>,
    password: &[u8],
) -> bool {
    match ctx.auth.verify(user, password) {
        Some(identity) => {
            session.set_identity(identity);
            true
        }
        None => {
            ctx.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
            ctx.stats.error_replies.incr();
            tracing::warn!(
                client = %client.addr,
                user = %String::from_utf8_lossy(user.unwrap_or(DEFAULT_USER.as_bytes())),
                "AUTH failed: wrong user name or password"
            );
            out.error_with_code(
                "WRONGPASS",
                "invalid username-password pair or user is disabled.",
            );
            false
        }
    }
}

/// `CLIENT LIST`
pub fn list(ctx: &ServerContext, out: &mut ReplyBuf) {
    let clients = ctx.clients.list();
    match out.protocol() {
        Protocol::Text => out.block("CLIENT LIST", &clients, Some("END")),
        // Redis ends each client's line with a bare `\n` (redis-py 8
        // splits on it).
        Protocol::Resp => {
            let body: String = clients.iter().map(|c| format!("{c}\n")).collect();
            out.bulk_or_line(body.as_bytes())
        }
    }
}

/// `CLIENT SETNAME name`
pub fn set_name(
    ctx: &ServerContext,
    client: &ClientInfo,
    out: &mut ReplyBuf,
    name: &[u8],
) -> Action<'static> {
    if !valid_client_name(name) {
        return error(ctx, out, BAD_CLIENT_NAME);
    }
    *client.name.lock() = String::from_utf8_lossy(name).into_owned();
    out.ok();
    Action::Continue
}

/// `CLIENT GETNAME`
pub fn get_name(client: &ClientInfo, out: &mut ReplyBuf) {
    let name = client.name.lock().clone();
    if name.is_empty() {
        out.nil()
    } else {
        out.bulk_or_line(name.as_bytes())
    }
}

/// `CLIENT ID`
pub fn id(client: &ClientInfo, out: &mut ReplyBuf) {
    out.integer(client.id as i64)
}

/// `HELLO [protover …]`: switches between RESP2 and RESP3 and describes the
/// server (a map in RESP3, a flat array in RESP2).
pub fn hello(
    ctx: &ServerContext,
    client: &ClientInfo,
    session: &mut Session,
    out: &mut ReplyBuf,
    protover: Option<&[u8]>,
    auth: Option<Box<(&[u8], &[u8])>>,
    name: Option<&[u8]>,
) -> Action<'static> {
    let resp3 = match protover {
        None => out.is_resp3(),
        Some(b"2") => false,
        Some(b"3") => true,
        Some(v) if std::str::from_utf8(v).is_ok_and(|v| v.parse::<i64>().is_ok()) => {
            ctx.stats.error_replies.incr();
            out.error_with_code("NOPROTO", "unsupported protocol version");
            return Action::Continue;
        }
        Some(_) => {
            return error(
                ctx,
                out,
                "Protocol version is not an integer or out of range",
            )
        }
    };
    if let Some((user, password)) = auth.map(|a| *a) {
        if ctx.auth.required() && !log_in(ctx, client, session, out, Some(user), password) {
            return Action::Continue;
        }
    }
    if session.identity().is_none() {
        ctx.stats.error_replies.incr();
        out.error_with_code(
            "NOAUTH",
            "HELLO must be called with the client already authenticated, otherwise the HELLO \
             AUTH <user> <pass> option can be used to authenticate the client and select the \
             RESP protocol version at the same time",
        );
        return Action::Continue;
    }
    if let Some(name) = name {
        if !valid_client_name(name) {
            return error(ctx, out, BAD_CLIENT_NAME);
        }
        *client.name.lock() = String::from_utf8_lossy(name).into_owned();
    }
    out.set_resp3(resp3);
    let id = i64::try_from(client.id).unwrap_or(i64::MAX);
    out.pairs(&[
        (b"server", PairValue::Bulk(b"merklekv")),
        (
            b"version",
            PairValue::Bulk(env!("CARGO_PKG_VERSION").as_bytes()),
        ),
        (b"proto", PairValue::Int(if resp3 { 3 } else { 2 })),
        (b"id", PairValue::Int(id)),
        (b"mode", PairValue::Bulk(b"standalone")),
        (b"role", PairValue::Bulk(b"master")),
        (b"modules", PairValue::EmptyArray),
    ]);
    Action::Continue
}

/// `CONSISTENCY [one|quorum|all]`: without an argument, this connection's
/// levels (`write=… read=…`); with one, sets both for this connection. A
/// full-replica node has no levels to choose (every node holds every key).
pub fn consistency(
    ctx: &ServerContext,
    session: &mut Session,
    out: &mut ReplyBuf,
    level: Option<&[u8]>,
) {
    let Some(cluster) = &ctx.cluster else {
        error(
            ctx,
            out,
            "consistency levels apply to a partitioned cluster (cluster.replication_factor > 0)",
        );
        return;
    };
    match level {
        None => {
            let defaults = cluster.coordinator.settings();
            let (write, read) = match session.consistency {
                Some(level) => (level, level),
                None => (defaults.write, defaults.read),
            };
            out.status(&format!("write={} read={}", write.as_str(), read.as_str()));
        }
        Some(level) => match std::str::from_utf8(level).ok().and_then(Consistency::parse) {
            Some(level) => {
                session.consistency = Some(level);
                out.ok();
            }
            None => {
                error(
                    ctx,
                    out,
                    "unknown consistency level; use one, quorum or all",
                );
            }
        },
    }
}
