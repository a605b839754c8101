//! What INFO, STATS, MEMORY and HASH report about the node.

use super::context::ServerContext;
use super::stats::Stats;

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
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

/// `1d 2h 3m 4s`.
fn human_uptime(secs: u64) -> String {
    format!(
        "{}d {}h {}m {}s",
        secs / 86_400,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// What `MEMORY` reports: the resident set size, or the bytes held by
/// entries where the process cannot tell.
pub fn memory_bytes(ctx: &ServerContext) -> u64 {
    crate::process::resident_set_bytes().unwrap_or_else(|| ctx.store.memory_used())
}

/// The lines of `INFO`.
pub fn info_lines(ctx: &ServerContext) -> Vec<String> {
    let up = ctx.started.elapsed().as_secs();
    let store = &ctx.store;
    let replication = ctx
        .hooks
        .replication
        .as_ref()
        .map_or_else(|| "REPLICATION disabled".to_string(), |r| r.status());
    let mut lines = vec![
        format!("version:{}", env!("CARGO_PKG_VERSION")),
        format!("node_id:{}", ctx.facts.node_id),
        format!("uptime_seconds:{up}"),
        format!("uptime:{}", human_uptime(up)),
        format!("server_time_unix:{}", crate::clock::wall_clock_ms() / 1000),
        format!("db_keys:{}", store.len()),
        format!("db_expires:{}", store.expiring_count()),
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
        format!(
            "clock_restores_bounded:{}",
            store.clock().restores_bounded()
        ),
        format!(
            "refused_future_versions:{}",
            store.refusals().future_versions()
        ),
        format!("refused_oversized_entries:{}", store.refusals().oversized()),
        format!(
            "writes_refused_clock_ahead:{}",
            store.refusals().clock_ahead_writes()
        ),
        format!("client_memory_bytes:{}", ctx.clients.held_total()),
        format!("clients_evicted_for_memory:{}", ctx.clients.evicted()),
    ];
    lines.extend(last_sync_lines(ctx));
    lines
}

/// INFO's account of the last on-demand `SYNC`, always four lines:
/// `last_sync` (`none`, `ok` or `failed`), its peer, when it ended (unix
/// seconds, 0 for none) and its figures or error.
fn last_sync_lines(ctx: &ServerContext) -> [String; 4] {
    let last = ctx.stats.last_sync.lock().clone();
    let (status, peer, ended, result) = match last {
        None => ("none", String::new(), 0, String::new()),
        Some(last) => {
            let (status, result) = match last.outcome {
                Ok(figures) => ("ok", figures),
                Err(error) => ("failed", error),
            };
            (status, last.peer, last.ended_unix_secs, result)
        }
    };
    [
        format!("last_sync:{status}"),
        format!("last_sync_peer:{peer}"),
        format!("last_sync_unix:{ended}"),
        format!("last_sync_result:{result}"),
    ]
}

/// The lines of `STATS`.
pub fn stats_lines(ctx: &ServerContext) -> Vec<String> {
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
