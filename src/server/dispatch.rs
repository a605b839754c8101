//! Executes one command against the store and encodes its reply.

use super::clients::ClientInfo;
use super::context::ServerContext;
use super::stats::{CommandKind, Stats};
use super::transaction::Transaction;
use crate::hooks::ReplicationError;
use crate::protocol::{glob, Command, PairValue, Protocol, ReplicateAction, ReplyBuf};
use crate::store::StoreError;
use crate::store::{WriteOp, WriteResult};

/// What the connection must do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Keep reading.
    Continue,
    /// Flush replies, then close the connection.
    Close,
    /// Run an anti-entropy round, then encode its outcome.
    Sync {
        /// Peer host.
        host: &'a str,
        /// Peer sync port.
        port: u16,
        /// Full exchange.
        full: bool,
    },
    /// Run the queued transaction (`EXEC`).
    Exec,
}

/// Per-connection state the dispatcher updates.
#[derive(Debug, Default)]
pub struct Session {
    /// A write was recorded since the last durable flush.
    pub wrote: bool,
    /// The open `MULTI` transaction (RESP).
    pub multi: Option<Transaction>,
}

fn kind(cmd: &Command<'_>) -> CommandKind {
    match cmd {
        Command::Get(_) => CommandKind::Get,
        Command::Set(..) => CommandKind::Set,
        Command::Delete(_) => CommandKind::Delete,
        Command::Increment(..) => CommandKind::Numeric,
        Command::Append(..) | Command::Prepend(..) => CommandKind::String,
        Command::MGet(_) | Command::MSet(_) => CommandKind::Bulk,
        _ => CommandKind::Other,
    }
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
    let store = &ctx.store;
    match cmd {
        Command::Get(key) => store.get_with(key, |v| out.value(v)),
        Command::Set(key, value) => write(ctx, session, out, WriteOp::Set { key, value }),
        Command::Delete(keys) => {
            let mut removed = 0;
            for key in keys {
                match apply(ctx, session, WriteOp::Delete { key }) {
                    Ok(WriteResult::Deleted(true)) => removed += 1,
                    Ok(_) => {}
                    Err(e) => return error(ctx, out, &e.to_string()),
                }
            }
            out.deleted(removed);
        }
        Command::Increment(key, delta) => {
            write(ctx, session, out, WriteOp::Increment { key, delta })
        }
        Command::Append(key, suffix) => {
            let line_safe = out.protocol() == Protocol::Text;
            let op = WriteOp::Append {
                key,
                suffix,
                line_safe,
            };
            write(ctx, session, out, op)
        }
        Command::Prepend(key, prefix) => {
            let line_safe = out.protocol() == Protocol::Text;
            let op = WriteOp::Prepend {
                key,
                prefix,
                line_safe,
            };
            write(ctx, session, out, op)
        }
        Command::MGet(keys) => {
            let items: Vec<(&[u8], Option<Vec<u8>>)> =
                keys.iter().map(|k| (*k, store.get(k))).collect();
            out.mget(&items);
        }
        Command::MSet(pairs) => write(ctx, session, out, WriteOp::MultiSet { pairs: &pairs }),
        Command::Exists(keys) => {
            out.exists(keys.iter().filter(|k| store.contains(k)).count() as u64)
        }
        Command::Scan(prefix) => out.keys(&store.scan(prefix)),
        Command::Keys(pattern) => out.keys(&matching_keys(ctx, pattern)),
        Command::ScanCursor(pattern) => {
            let keys = pattern.map_or_else(Vec::new, |p| matching_keys(ctx, p));
            out.scan_page(0, &keys);
        }
        Command::DbSize => out.dbsize(store.len()),
        Command::Ping(msg) => out.pong(msg),
        Command::Echo(msg) => out.echo(msg),
        Command::Version => match out.protocol() {
            crate::protocol::Protocol::Text => {
                out.status(&format!("VERSION {}", env!("CARGO_PKG_VERSION")))
            }
            crate::protocol::Protocol::Resp => {
                out.bulk_or_line(env!("CARGO_PKG_VERSION").as_bytes())
            }
        },
        Command::Info => out.block("INFO", &info_lines(ctx), None),
        Command::Stats => out.block("STATS", &stats_lines(ctx), None),
        Command::Memory => match out.protocol() {
            crate::protocol::Protocol::Text => out.status(&format!("MEMORY {}", memory_bytes(ctx))),
            crate::protocol::Protocol::Resp => out.integer(memory_bytes(ctx) as i64),
        },
        Command::ClientList => out.block("CLIENT LIST", &ctx.clients.list(), Some("END")),
        Command::ClientSetName(name) => {
            if !valid_client_name(name) {
                return error(ctx, out, BAD_CLIENT_NAME);
            }
            *client.name.lock() = String::from_utf8_lossy(name).into_owned();
            out.ok();
        }
        Command::ClientGetName => {
            let name = client.name.lock().clone();
            if name.is_empty() {
                out.nil()
            } else {
                out.bulk_or_line(name.as_bytes())
            }
        }
        Command::ClientId => out.integer(client.id as i64),
        Command::ClientNoop => out.ok(),
        Command::Flush => match apply(ctx, session, WriteOp::Flush) {
            Ok(_) => out.ok(),
            Err(e) => return error(ctx, out, &e.to_string()),
        },
        Command::Hash(None) => {
            let hex = root_hex(ctx);
            match out.protocol() {
                crate::protocol::Protocol::Text => out.status(&format!("HASH {hex}")),
                crate::protocol::Protocol::Resp => out.bulk_or_line(hex.as_bytes()),
            }
        }
        Command::Hash(Some(prefix)) => {
            let hex = to_hex(&store.prefix_digest(prefix));
            let p = String::from_utf8_lossy(prefix);
            match out.protocol() {
                crate::protocol::Protocol::Text => out.status(&format!("HASH {p} {hex}")),
                crate::protocol::Protocol::Resp => out.bulk_or_line(hex.as_bytes()),
            }
        }
        Command::Sync { host, port, full } => return Action::Sync { host, port, full },
        Command::Replicate(action) => replicate(ctx, out, action),
        Command::Shutdown => {
            out.ok();
            ctx.request_shutdown();
            return Action::Close;
        }
        Command::Select(db) => {
            if db == b"0" {
                out.ok()
            } else {
                return error(ctx, out, "DB index is out of range");
            }
        }
        Command::CommandInfo => out.string_array(&[]),
        Command::ConfigGet(pattern) => {
            let known: [(&[u8], &[u8]); 3] =
                [(b"save", b""), (b"appendonly", b"no"), (b"databases", b"1")];
            let hits: Vec<(&[u8], PairValue<'_>)> = known
                .iter()
                .filter(|(name, _)| glob::matches(&pattern.to_ascii_lowercase(), name))
                .map(|(name, value)| (*name, PairValue::Bulk(value)))
                .collect();
            out.pairs(&hits);
        }
        Command::Quit => {
            out.ok();
            return Action::Close;
        }
        Command::Hello { protover, name } => return hello(ctx, client, out, protover, name),
        Command::Auth => {
            return error(
                ctx,
                out,
                "AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            )
        }
        Command::Multi => {
            if session.multi.is_some() {
                return error(ctx, out, "MULTI calls can not be nested");
            }
            session.multi = Some(Transaction::default());
            out.ok();
        }
        Command::Discard => {
            if session.multi.take().is_none() {
                return error(ctx, out, "DISCARD without MULTI");
            }
            out.ok();
        }
        Command::Exec => {
            if session.multi.is_none() {
                return error(ctx, out, "EXEC without MULTI");
            }
            return Action::Exec;
        }
    }
    Action::Continue
}

fn write(ctx: &ServerContext, session: &mut Session, out: &mut ReplyBuf, op: WriteOp<'_>) {
    match apply(ctx, session, op) {
        Ok(result) => match result {
            WriteResult::Stored | WriteResult::Flushed(_) => out.ok(),
            WriteResult::Deleted(d) => out.deleted(u64::from(d)),
            WriteResult::Number(n) => out.number(n),
            WriteResult::Value(v) => out.appended(&v),
        },
        // Redis clients expect Redis' wording for a non-integer value.
        Err(StoreError::NotANumber { .. }) if out.protocol() == Protocol::Resp => {
            error(ctx, out, "value is not an integer or out of range");
        }
        Err(e) => {
            error(ctx, out, &e.to_string());
        }
    }
}

/// Every key matching a Redis glob pattern, sorted.
fn matching_keys(ctx: &ServerContext, pattern: &[u8]) -> Vec<Box<[u8]>> {
    let mut keys = ctx.store.scan(glob::literal_prefix(pattern));
    keys.retain(|k| glob::matches(pattern, k));
    keys
}

/// `HELLO [protover …]`: switches between RESP2 and RESP3 and describes the
/// server (a map in RESP3, a flat array in RESP2).
fn hello(
    ctx: &ServerContext,
    client: &ClientInfo,
    out: &mut ReplyBuf,
    protover: Option<&[u8]>,
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

/// Applies a client write and hands its changes to replication (when
/// attached); marks the session as having written, for durable replies.
/// A write that fails part-way (MSET, FLUSH) still replicates, and is
/// waited for, as far as it got.
fn apply(
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

/// Redis' wording for a client name it refuses.
const BAD_CLIENT_NAME: &str = "Client names cannot contain spaces, newlines or special characters.";

/// Whether `name` may be a client name: printable ASCII without spaces, as
/// Redis requires (so `CLIENT LIST` stays one line per client).
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// Encodes an error reply and counts it.
pub fn error(ctx: &ServerContext, out: &mut ReplyBuf, msg: &str) -> Action<'static> {
    ctx.stats.error_replies.incr();
    out.error(msg);
    Action::Continue
}

fn replicate(ctx: &ServerContext, out: &mut ReplyBuf, action: ReplicateAction) {
    let Some(control) = &ctx.hooks.replication else {
        match action {
            ReplicateAction::Status => out.status("REPLICATION disabled"),
            _ => {
                error(ctx, out, &ReplicationError::NoBroker.to_string());
            }
        }
        return;
    };
    match action {
        ReplicateAction::Enable => match control.enable() {
            Ok(()) => out.ok(),
            Err(e) => {
                error(ctx, out, &e.to_string());
            }
        },
        ReplicateAction::Disable => {
            control.disable();
            out.ok();
        }
        ReplicateAction::Status => out.status(&control.status()),
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 64-hex-digit form of the Merkle root shown by `HASH`: SHA-256 over
/// the tree shape, the root sum and the entry count, so equal roots give
/// equal strings on every node.
pub fn root_hex(ctx: &ServerContext) -> String {
    use sha2::{Digest, Sha256};
    let store = &ctx.store;
    let root = store.root();
    let shape = store.shape();
    let mut h = Sha256::new();
    h.update(shape.fanout.to_le_bytes());
    h.update(shape.depth.to_le_bytes());
    h.update(root.hash_bytes());
    h.update(root.count.to_le_bytes());
    to_hex(&h.finalize())
}

fn human_uptime(secs: u64) -> String {
    format!(
        "{}d {}h {}m {}s",
        secs / 86_400,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

fn memory_bytes(ctx: &ServerContext) -> u64 {
    crate::process::resident_set_bytes().unwrap_or_else(|| ctx.store.memory_used())
}

fn info_lines(ctx: &ServerContext) -> Vec<String> {
    let up = ctx.started.elapsed().as_secs();
    let store = &ctx.store;
    let replication = ctx
        .hooks
        .replication
        .as_ref()
        .map_or_else(|| "REPLICATION disabled".to_string(), |r| r.status());
    vec![
        format!("version:{}", env!("CARGO_PKG_VERSION")),
        format!("node_id:{}", ctx.facts.node_id),
        format!("uptime_seconds:{up}"),
        format!("uptime:{}", human_uptime(up)),
        format!("server_time_unix:{}", crate::clock::wall_clock_ms() / 1000),
        format!("db_keys:{}", store.len()),
        format!("db_entries:{}", store.entry_count()),
        format!(
            "tombstones:{}",
            store.entry_count().saturating_sub(store.len())
        ),
        format!("memory_used_bytes:{}", store.memory_used()),
        format!("merkle_root:{}", root_hex(ctx)),
        format!(
            "tree_shape:{}x{}",
            store.shape().fanout,
            store.shape().depth
        ),
        format!("client_addr:{}", ctx.facts.client_addr),
        format!("sync_addr:{}", ctx.facts.sync_addr),
        format!("data_dir:{}", ctx.facts.data_dir),
        format!(
            "connected_clients:{}",
            Stats::get(&ctx.stats.active_connections)
        ),
        format!("replication:{replication}"),
        format!("hlc:{}", store.clock().peek()),
        format!("clock_skew_rejections:{}", store.clock().skew_rejections()),
        format!("worker_threads:{}", ctx.facts.worker_threads),
        format!(
            "idle_poll_us:{}",
            ctx.idle_poll
                .as_ref()
                .map_or(0, |p| p.credit_per_read().as_micros())
        ),
    ]
}

fn stats_lines(ctx: &ServerContext) -> Vec<String> {
    let s = &ctx.stats;
    let up = ctx.started.elapsed().as_secs();
    vec![
        format!("uptime_seconds:{up}"),
        format!("uptime:{}", human_uptime(up)),
        format!("total_connections:{}", Stats::get(&s.total_connections)),
        format!("active_connections:{}", Stats::get(&s.active_connections)),
        format!(
            "rejected_connections:{}",
            Stats::get(&s.rejected_connections)
        ),
        format!("total_commands:{}", s.total_commands.get()),
        format!("get_commands:{}", s.get_commands.get()),
        format!("set_commands:{}", s.set_commands.get()),
        format!("delete_commands:{}", s.delete_commands.get()),
        format!("numeric_commands:{}", s.numeric_commands.get()),
        format!("string_commands:{}", s.string_commands.get()),
        format!("bulk_commands:{}", s.bulk_commands.get()),
        format!("error_replies:{}", s.error_replies.get()),
        format!(
            "idle_poll_seconds:{:.6}",
            ctx.idle_poll
                .as_ref()
                .map_or(0.0, |p| p.polled().as_secs_f64())
        ),
    ]
}
