//! `[cluster]`: placement and consistency of the partitioned cluster.
//!
//! `replication_factor = 0` (the default) keeps every node a full replica:
//! writes go over MQTT to every node, as before the partitioned cluster.
//! Any other value partitions the key space over a consistent-hash ring
//! (see docs/cluster.md).

use serde::{Deserialize, Serialize};

/// The largest replication factor a ring serves (lookups keep the
/// replicas found so far in a fixed array of this size).
pub const MAX_REPLICATION_FACTOR: usize = 16;

/// How many replicas must answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// One replica.
    One,
    /// A majority of the replicas: `replication_factor / 2 + 1`.
    #[default]
    Quorum,
    /// Every replica.
    All,
}

impl Consistency {
    /// How many of `replicas` replicas must answer.
    pub fn required(self, replicas: usize) -> usize {
        match self {
            Consistency::One => 1,
            Consistency::Quorum => replicas / 2 + 1,
            Consistency::All => replicas,
        }
        .min(replicas)
    }

    /// The name used in configuration and replies.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::One => "one",
            Consistency::Quorum => "quorum",
            Consistency::All => "all",
        }
    }

    /// Parses a configuration or request value (`one`, `quorum`, `all`,
    /// any case).
    pub fn parse(s: &str) -> Option<Self> {
        [Consistency::One, Consistency::Quorum, Consistency::All]
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s))
    }

    /// A request's level: `""` = the configured default (`None`), else a
    /// level name; the error is what the caller is told.
    pub fn parse_request(s: &str) -> Result<Option<Self>, String> {
        match s {
            "" => Ok(None),
            s => Self::parse(s)
                .map(Some)
                .ok_or_else(|| format!("unknown consistency {s:?}; use one, quorum or all")),
        }
    }
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Replicas per key; 0 (default) = every node (full replicas over MQTT).
    pub replication_factor: usize,
    /// Tokens each node places on the ring (default 256).
    pub vnodes: u32,
    /// Replicas that must acknowledge a write (default `quorum`).
    pub write_consistency: Consistency,
    /// Replicas that must answer a read (default `quorum`).
    pub read_consistency: Consistency,
    /// How long a coordinator waits for replicas before answering
    /// `unavailable` (default 2000 ms).
    pub request_timeout_ms: u64,
    /// A read whose replicas have not answered after this long also asks
    /// the next replica (Cassandra's speculative retry), so a replica that
    /// died but is not yet seen down costs this, not the request timeout
    /// (default 100 ms; 0 = never).
    pub speculative_retry_ms: u64,
    /// Share of reads (0.0..=1.0) that, after answering, also ask the
    /// replicas the read level did not, and repair the stale ones
    /// (Cassandra's read_repair_chance; default 0.0).
    pub read_repair_chance: f64,
    /// How often each node heartbeats every member (default 500 ms).
    pub heartbeat_interval_ms: u64,
    /// A member not heard from for this long is down (default 3000 ms).
    pub failure_timeout_ms: u64,
    /// Bytes of hints (writes for replicas that are down) this node keeps
    /// at most (default 64 MiB); 0 disables hinted handoff.
    pub max_hint_bytes: u64,
    /// Hints older than this are dropped instead of delivered (default
    /// 10800 s, three hours, as Cassandra's max_hint_window).
    pub max_hint_age_seconds: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            replication_factor: 0,
            vnodes: 256,
            write_consistency: Consistency::Quorum,
            read_consistency: Consistency::Quorum,
            request_timeout_ms: 2000,
            speculative_retry_ms: 100,
            read_repair_chance: 0.0,
            heartbeat_interval_ms: 500,
            failure_timeout_ms: 3000,
            max_hint_bytes: 64 << 20,
            max_hint_age_seconds: 10_800,
        }
    }
}

impl ClusterConfig {
    /// Whether the key space is partitioned (a replication factor is set).
    pub fn is_partitioned(&self) -> bool {
        self.replication_factor > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_replicas_per_level() {
        assert_eq!(Consistency::One.required(3), 1);
        assert_eq!(Consistency::Quorum.required(3), 2);
        assert_eq!(Consistency::Quorum.required(4), 3);
        assert_eq!(Consistency::Quorum.required(1), 1);
        assert_eq!(Consistency::All.required(3), 3);
        assert_eq!(Consistency::All.required(0), 0);
        assert_eq!(Consistency::parse("QUORUM"), Some(Consistency::Quorum));
        assert_eq!(Consistency::parse("two"), None);
    }
}
