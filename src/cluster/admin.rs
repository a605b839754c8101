//! `merklekv cluster status|ring|repair --node HOST:PORT [--json]`: what one
//! node knows of the ring, and a repair run on it now, for operators (a
//! table) and scripts (JSON).

use std::fmt::Write as _;

use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use tonic::transport::Channel;

use super::ring::Ring;
use crate::proto;
use crate::proto::cluster_client::ClusterClient;

/// How long a repair or cleanup may take before the command gives up.
const LONG_CALL: Duration = Duration::from_secs(600);

/// A `Cluster` client for the node at `node` (its sync port, `host:port`)
/// whose calls may take `timeout`.
async fn connect(node: &str, timeout: Duration) -> anyhow::Result<ClusterClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{node}"))
        .with_context(|| format!("{node:?} is not host:port"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .connect()
        .await
        .with_context(|| format!("cannot reach {node} (the node's sync port)"))?;
    Ok(ClusterClient::new(channel))
}

/// What an operator is told when `rpc` on `node` failed.
fn failed(node: &str, rpc: &str, status: tonic::Status) -> anyhow::Error {
    match status.code() {
        tonic::Code::Unimplemented => anyhow::anyhow!(
            "{node} is not part of a partitioned cluster (cluster.replication_factor = 0)"
        ),
        _ => anyhow::anyhow!("{rpc} on {node} failed: {}", status.message()),
    }
}

/// Asks the node at `node` (its sync port, `host:port`) for its ring.
pub async fn fetch(node: &str) -> anyhow::Result<proto::GetRingStateResponse> {
    let answer = connect(node, Duration::from_secs(10))
        .await?
        .get_ring_state(proto::GetRingStateRequest {})
        .await
        .map_err(|s| failed(node, "GetRingState", s))?;
    Ok(answer.into_inner())
}

/// Asks the node at `node` to run a range-scoped repair round with every
/// member it sees up (waits for them: at most 10 minutes).
pub async fn repair(node: &str) -> anyhow::Result<proto::RepairResponse> {
    let answer = connect(node, LONG_CALL)
        .await?
        .repair(proto::RepairRequest {})
        .await
        .map_err(|s| failed(node, "Repair", s))?;
    Ok(answer.into_inner())
}

/// Asks the node at `node` to hand off and forget the keys it no longer
/// replicates (at most 10 minutes).
pub async fn cleanup(node: &str) -> anyhow::Result<proto::CleanupResponse> {
    let answer = connect(node, LONG_CALL)
        .await?
        .cleanup(proto::CleanupRequest {})
        .await
        .map_err(|s| failed(node, "Cleanup", s))?;
    Ok(answer.into_inner())
}

/// What a cleanup did, as a line or as JSON.
pub fn cleanup_report(r: &proto::CleanupResponse, as_json: bool) -> String {
    if as_json {
        return json!({
            "node_id": r.node_id, "scanned": r.scanned, "not_owned": r.not_owned,
            "dropped": r.dropped, "kept": r.kept,
        })
        .to_string();
    }
    format!(
        "cleanup on {}: {} entries scanned, {} not replicated here, {} handed off and dropped, {} kept\n",
        r.node_id, r.scanned, r.not_owned, r.dropped, r.kept
    )
}

/// One line per peer: ranges compared, keys moved each way, round trips
/// and bytes; or the error.
pub fn repair_report(report: &proto::RepairResponse, as_json: bool) -> String {
    if as_json {
        let peers: Vec<_> = report
            .peers
            .iter()
            .map(|p| {
                json!({
                    "node_id": p.node_id, "ranges": p.ranges, "in_sync": p.in_sync,
                    "keys_pulled": p.keys_pulled, "keys_pushed": p.keys_pushed,
                    "round_trips": p.round_trips, "bytes_sent": p.bytes_sent,
                    "bytes_received": p.bytes_received, "elapsed_ms": p.elapsed_ms,
                    "error": (!p.error.is_empty()).then_some(&p.error),
                })
            })
            .collect();
        return json!({ "node_id": report.node_id, "peers": peers }).to_string();
    }
    let mut out = format!("repair on {}\n", report.node_id);
    if report.peers.is_empty() {
        out.push_str("  no member is up\n");
    }
    for p in &report.peers {
        let _ = if !p.error.is_empty() {
            writeln!(
                out,
                "  {:<16} {} ranges  FAILED: {}",
                p.node_id, p.ranges, p.error
            )
        } else if p.in_sync {
            writeln!(
                out,
                "  {:<16} {} ranges  in sync  ({} round trip, {} B sent, {} ms)",
                p.node_id, p.ranges, p.round_trips, p.bytes_sent, p.elapsed_ms
            )
        } else {
            writeln!(
                out,
                "  {:<16} {} ranges  pulled {} keys, pushed {} keys  ({} round trips, {} B sent, {} B received, {} ms)",
                p.node_id,
                p.ranges,
                p.keys_pulled,
                p.keys_pushed,
                p.round_trips,
                p.bytes_sent,
                p.bytes_received,
                p.elapsed_ms
            )
        };
    }
    out
}

/// Members, up/down, ring version, keys and bytes per node, ownership.
pub fn status(state: &proto::GetRingStateResponse, as_json: bool) -> String {
    let ring = state.ring.clone().unwrap_or_default();
    let rows: Vec<_> = state
        .members
        .iter()
        .map(|m| {
            let member = m.member.clone().unwrap_or_default();
            (member, m)
        })
        .collect();
    if as_json {
        let members: Vec<_> = rows
            .iter()
            .map(|(member, m)| {
                json!({
                    "node_id": member.node_id,
                    "sync_addr": member.sync_addr,
                    "client_addr": member.client_addr,
                    "up": m.up,
                    "last_seen_ms": (m.last_seen_ms != u64::MAX).then_some(m.last_seen_ms),
                    "keys": m.key_count,
                    "bytes": m.memory_bytes,
                    "ownership": m.ownership,
                })
            })
            .collect();
        return json!({
            "asked": state.node_id,
            "ring_version": ring.version,
            "replication_factor": ring.replication_factor,
            "vnodes": ring.vnodes,
            "members": members,
        })
        .to_string();
    }
    let mut out = String::new();
    let up = rows.iter().filter(|(_, m)| m.up).count();
    let _ = writeln!(
        out,
        "ring version {} as seen by {}: {} members ({up} up), replication_factor {}, vnodes {}",
        ring.version,
        state.node_id,
        rows.len(),
        ring.replication_factor,
        ring.vnodes
    );
    let _ = writeln!(
        out,
        "{:<16} {:<5} {:<22} {:<22} {:>10} {:>12} {:>9}",
        "NODE", "STATE", "SYNC", "CLIENT", "KEYS", "BYTES", "OWNS"
    );
    for (member, m) in &rows {
        let _ = writeln!(
            out,
            "{:<16} {:<5} {:<22} {:<22} {:>10} {:>12} {:>8.1}%",
            member.node_id,
            if m.up { "up" } else { "down" },
            member.sync_addr,
            member.client_addr,
            m.key_count,
            m.memory_bytes,
            m.ownership * 100.0
        );
    }
    out
}

/// Token ranges and their replica sets.
pub fn ring(state: &proto::GetRingStateResponse, as_json: bool) -> String {
    let ring_state = state.ring.clone().unwrap_or_default();
    let ring = Ring::new(
        ring_state.members.iter().map(|m| m.node_id.clone()),
        ring_state.vnodes,
    );
    let rf = ring_state.replication_factor as usize;
    let ranges = ring.ranges(rf);
    if as_json {
        let ranges: Vec<_> = ranges
            .iter()
            .map(|r| json!({"after": r.after, "through": r.through, "replicas": r.replicas}))
            .collect();
        return json!({
            "ring_version": ring_state.version,
            "replication_factor": rf,
            "ranges": ranges,
        })
        .to_string();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ring version {}: {} token ranges (hash after START through END, inclusive)",
        ring_state.version,
        ranges.len()
    );
    let _ = writeln!(
        out,
        "{:>20} {:>20}  REPLICAS (primary first)",
        "START", "END"
    );
    for r in &ranges {
        let _ = writeln!(
            out,
            "{:>20} {:>20}  {}",
            r.after,
            r.through,
            r.replicas.join(",")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> proto::GetRingStateResponse {
        let member = |id: &str| proto::Member {
            node_id: id.into(),
            sync_addr: format!("{id}:7380"),
            client_addr: format!("{id}:7379"),
        };
        proto::GetRingStateResponse {
            ring: Some(proto::RingState {
                version: 3,
                members: vec![member("a"), member("b")],
                vnodes: 4,
                replication_factor: 1,
            }),
            members: vec![
                proto::MemberStatus {
                    member: Some(member("a")),
                    up: true,
                    key_count: 10,
                    ownership: 0.5,
                    ..Default::default()
                },
                proto::MemberStatus {
                    member: Some(member("b")),
                    up: false,
                    last_seen_ms: u64::MAX,
                    ownership: 0.5,
                    ..Default::default()
                },
            ],
            node_id: "a".into(),
        }
    }

    #[test]
    fn status_reads_as_a_table_and_as_json() {
        let table = status(&sample(), false);
        assert!(table.contains("2 members (1 up)"), "{table}");
        assert!(table.contains("down"), "{table}");
        let parsed: serde_json::Value =
            serde_json::from_str(&status(&sample(), true)).expect("json");
        assert_eq!(parsed["members"][1]["up"], false);
        assert_eq!(
            parsed["members"][1]["last_seen_ms"],
            serde_json::Value::Null
        );
        assert_eq!(parsed["ring_version"], 3);
    }

    #[test]
    fn ring_lists_every_token_range() {
        let parsed: serde_json::Value = serde_json::from_str(&ring(&sample(), true)).expect("json");
        let ranges = parsed["ranges"].as_array().expect("ranges");
        assert_eq!(ranges.len(), 8); // 2 members x 4 vnodes
        assert!(ranges
            .iter()
            .all(|r| r["replicas"].as_array().map(Vec::len) == Some(1)));
    }

    #[test]
    fn repair_and_cleanup_reports_read_as_lines_and_as_json() {
        let peer = |id: &str, in_sync: bool, error: &str| proto::PeerRepairReport {
            node_id: id.into(),
            ranges: 97,
            in_sync,
            keys_pulled: if in_sync { 0 } else { 475 },
            round_trips: if in_sync { 1 } else { 3 },
            bytes_sent: 11354,
            bytes_received: 35882,
            elapsed_ms: 37,
            error: error.into(),
            ..Default::default()
        };
        let report = proto::RepairResponse {
            node_id: "p3".into(),
            peers: vec![
                peer("p1", false, ""),
                peer("p5", true, ""),
                peer("p2", false, "CompareRanges failed"),
            ],
        };
        let text = repair_report(&report, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "repair on p3");
        assert_eq!(
            lines[1],
            "  p1               97 ranges  pulled 475 keys, pushed 0 keys  (3 round trips, 11354 B sent, 35882 B received, 37 ms)"
        );
        assert_eq!(
            lines[2],
            "  p5               97 ranges  in sync  (1 round trip, 11354 B sent, 37 ms)"
        );
        assert!(
            lines[3].contains("FAILED: CompareRanges failed"),
            "{}",
            lines[3]
        );
        let json: serde_json::Value =
            serde_json::from_str(&repair_report(&report, true)).expect("json");
        assert_eq!(json["peers"][0]["keys_pulled"], 475);
        assert!(json["peers"][0]["error"].is_null());
        assert_eq!(json["peers"][2]["error"], "CompareRanges failed");

        let cleanup = proto::CleanupResponse {
            node_id: "p1".into(),
            scanned: 777,
            not_owned: 172,
            dropped: 172,
            kept: 0,
        };
        assert_eq!(
            cleanup_report(&cleanup, false).trim_end(),
            "cleanup on p1: 777 entries scanned, 172 not replicated here, 172 handed off and dropped, 0 kept"
        );
        let json: serde_json::Value =
            serde_json::from_str(&cleanup_report(&cleanup, true)).expect("json");
        assert_eq!(json["dropped"], 172);
    }
}
