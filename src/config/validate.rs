//! Rules a configuration must satisfy beyond its types.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::load::UNTRACED;
use super::{BrokerAddress, Config, ConfigError};

const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];
const ENGINES: &[&str] = &["fjall", "rwlock", "kv", "sled"];
/// The MQTT protocol's largest packet (remaining length is at most 2^28 - 1).
const MQTT_MAX_PACKET: usize = 268_435_455;
/// Merkle trees have at most this many leaves (2^24).
const MAX_LEAVES_LOG2: u32 = 24;
/// `network.worker_threads` above this is a typo, not a machine.
const MAX_WORKER_THREADS: usize = 1024;
/// `network.idle_poll_us` above this (0.1 s per read, credit up to 1 s) is
/// a typo: it is a worker spinning all the time.
const MAX_IDLE_POLL_US: u64 = 100_000;

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        reason: reason.into(),
        source_name: UNTRACED.to_owned(),
    }
}

fn check(ok: bool, key: &str, reason: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, reason()))
    }
}

pub(super) fn validate(c: &Config) -> Result<(), ConfigError> {
    validate_node(c)?;
    validate_network(c)?;
    validate_mqtt(c)?;
    validate_anti_entropy(c)?;
    validate_storage(c)?;
    validate_cluster(c)?;
    validate_security(c)?;
    validate_logging(c)
}

fn validate_security(c: &Config) -> Result<(), ConfigError> {
    let s = &c.security;
    let mut names = BTreeSet::new();
    for (i, user) in s.users.iter().enumerate() {
        let key = format!("security.users[{i}]");
        check(
            !user.name.is_empty() && user.name.bytes().all(|b| b.is_ascii_graphic()),
            &format!("{key}.name"),
            || {
                format!(
                    "{:?} is not a user name (printable ASCII, no spaces)",
                    user.name
                )
            },
        )?;
        check(
            names.insert(user.name.as_str()),
            &format!("{key}.name"),
            || format!("user {:?} is configured twice", user.name),
        )?;
        check(
            user.name != "default" || s.password.is_empty(),
            &format!("{key}.name"),
            || "security.password already sets the default user's password".to_owned(),
        )?;
        check(
            user.password_sha256.len() == 64
                && user.password_sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            &format!("{key}.password_sha256"),
            || {
                "must be the SHA-256 of the password as 64 hex digits (printf %s 'password' | sha256sum)".to_owned()
            },
        )?;
    }
    Ok(())
}

fn validate_cluster(c: &Config) -> Result<(), ConfigError> {
    let k = &c.cluster;
    let max_rf = super::MAX_REPLICATION_FACTOR;
    check(
        k.replication_factor <= max_rf,
        "cluster.replication_factor",
        || {
            format!(
                "{} is above the largest supported factor ({max_rf}); 0 means every node",
                k.replication_factor
            )
        },
    )?;
    check((1..=4096).contains(&k.vnodes), "cluster.vnodes", || {
        format!("{} is out of range (1..=4096)", k.vnodes)
    })?;
    check(
        (1..=600_000).contains(&k.request_timeout_ms),
        "cluster.request_timeout_ms",
        || format!("{} is out of range (1..=600000)", k.request_timeout_ms),
    )?;
    check(
        k.speculative_retry_ms <= 600_000,
        "cluster.speculative_retry_ms",
        || format!("{} is out of range (0..=600000)", k.speculative_retry_ms),
    )?;
    check(
        (0.0..=1.0).contains(&k.read_repair_chance),
        "cluster.read_repair_chance",
        || format!("{} is out of range (0.0..=1.0)", k.read_repair_chance),
    )?;
    check(
        (10..=60_000).contains(&k.heartbeat_interval_ms),
        "cluster.heartbeat_interval_ms",
        || format!("{} is out of range (10..=60000)", k.heartbeat_interval_ms),
    )?;
    check(
        k.failure_timeout_ms > k.heartbeat_interval_ms && k.failure_timeout_ms <= 600_000,
        "cluster.failure_timeout_ms",
        || {
            format!(
                "{} must be longer than cluster.heartbeat_interval_ms ({}) and at most 600000, \
                 or every member would be seen down between two heartbeats",
                k.failure_timeout_ms, k.heartbeat_interval_ms
            )
        },
    )
}

/// Whether `id` uses only the characters a node id may hold (ASCII
/// letters, digits, `-`, `_`, `.`; not `.` or `..`).
fn has_node_id_characters(id: &str) -> bool {
    id.chars()
        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        && id != "."
        && id != ".."
}

/// Whether `id` is a valid `node_id` (1 to 64 bytes of
/// [`has_node_id_characters`]): what `node_id` must be, and what a peer's
/// ring state may name.
pub fn is_node_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && has_node_id_characters(id)
}

fn validate_node(c: &Config) -> Result<(), ConfigError> {
    let id = &c.node_id;
    check(!id.is_empty(), "node_id", || "must not be empty".into())?;
    check(id.len() <= 64, "node_id", || {
        format!("is {} bytes long; at most 64 are allowed", id.len())
    })?;
    check(has_node_id_characters(id), "node_id", || {
        format!(
            "{id:?} may contain only ASCII letters, digits, '-', '_' and '.' \
                 (it names the data directory and the MQTT client)"
        )
    })
}

fn validate_network(c: &Config) -> Result<(), ConfigError> {
    let n = &c.network;
    check(is_host(&n.bind_address), "network.bind_address", || {
        format!(
            "{:?} is neither an IP address nor a hostname",
            n.bind_address
        )
    })?;
    if !n.advertise_address.is_empty() {
        check(
            is_host(&n.advertise_address),
            "network.advertise_address",
            || {
                format!(
                    "{:?} is neither an IP address nor a hostname",
                    n.advertise_address
                )
            },
        )?;
        check(
            !is_wildcard(&n.advertise_address),
            "network.advertise_address",
            || {
                format!(
                    "{} is a wildcard address that peers cannot dial",
                    n.advertise_address
                )
            },
        )?;
    }
    check(n.bind_port != 0, "network.bind_port", || {
        "port 0 is not allowed; use 1..=65535".into()
    })?;
    check(n.sync_port != 0, "network.sync_port", || {
        "port 0 is not allowed; use 1..=65535".into()
    })?;
    check(n.sync_port != n.bind_port, "network.sync_port", || {
        format!(
            "{} is also network.bind_port; the client and sync ports must differ",
            n.sync_port
        )
    })?;
    if n.metrics_port != 0 {
        check(
            n.metrics_port != n.bind_port && n.metrics_port != n.sync_port,
            "network.metrics_port",
            || {
                format!(
                    "{} is also the client or sync port; use another port, or 0 to disable metrics",
                    n.metrics_port
                )
            },
        )?;
    }
    check(n.max_connections >= 1, "network.max_connections", || {
        "must be at least 1".into()
    })?;
    check(n.max_line_bytes >= 1024, "network.max_line_bytes", || {
        format!("{} is below the minimum of 1024", n.max_line_bytes)
    })?;
    check(
        n.idle_timeout_seconds == 0 || n.idle_timeout_seconds >= 60,
        "network.idle_timeout_seconds",
        || {
            format!(
                "{} is too short; use 0 (never close idle connections) or at least 60",
                n.idle_timeout_seconds
            )
        },
    )?;
    check(
        n.worker_threads <= MAX_WORKER_THREADS,
        "network.worker_threads",
        || {
            format!(
                "{} is above the maximum of {MAX_WORKER_THREADS}; use 0 for one per CPU minus one",
                n.worker_threads
            )
        },
    )?;
    check(
        n.idle_poll_us <= MAX_IDLE_POLL_US,
        "network.idle_poll_us",
        || {
            format!(
                "{} is above the maximum of {MAX_IDLE_POLL_US}; use 0 to turn idle polling off",
                n.idle_poll_us
            )
        },
    )
}

fn validate_mqtt(c: &Config) -> Result<(), ConfigError> {
    let m = &c.mqtt;
    if !m.broker_address.is_empty() {
        parse_broker(&m.broker_address)
            .map_err(|reason| invalid("mqtt.broker_address", reason.to_string()))?;
    }
    check(
        !(m.enabled == Some(true) && m.broker_address.is_empty()),
        "mqtt.enabled",
        || "is true but mqtt.broker_address is empty".into(),
    )?;
    check(
        !m.topic_prefix.is_empty()
            && !m.topic_prefix.contains(['+', '#', '\0'])
            && !m.topic_prefix.ends_with('/'),
        "mqtt.topic_prefix",
        || {
            format!(
                "{:?} must be non-empty, without MQTT wildcards ('+', '#') or a trailing '/'",
                m.topic_prefix
            )
        },
    )?;
    check(
        m.client_id.chars().all(|ch| !ch.is_control()),
        "mqtt.client_id",
        || "must not contain control characters".into(),
    )?;
    check(
        m.password.is_none() || m.username.is_some(),
        "mqtt.password",
        || "is set but mqtt.username is not; MQTT requires a user name with a password".into(),
    )?;
    check(m.keep_alive <= 65_535, "mqtt.keep_alive", || {
        format!(
            "{} exceeds the MQTT maximum of 65535 seconds (0 disables keep-alive)",
            m.keep_alive
        )
    })?;
    check(m.queue_size >= 1, "mqtt.queue_size", || {
        "must be at least 1".into()
    })?;
    check(
        m.max_packet_bytes > c.network.max_line_bytes,
        "mqtt.max_packet_bytes",
        || {
            format!(
                "{} must exceed network.max_line_bytes ({}) so that any write fits in one packet",
                m.max_packet_bytes, c.network.max_line_bytes
            )
        },
    )?;
    check(
        m.max_packet_bytes <= MQTT_MAX_PACKET,
        "mqtt.max_packet_bytes",
        || {
            format!(
                "{} exceeds the MQTT protocol maximum of {MQTT_MAX_PACKET}",
                m.max_packet_bytes
            )
        },
    )?;
    check(
        m.max_batch_bytes >= 1 && m.max_batch_bytes <= m.max_packet_bytes,
        "mqtt.max_batch_bytes",
        || {
            format!(
                "{} must be between 1 and mqtt.max_packet_bytes ({})",
                m.max_batch_bytes, m.max_packet_bytes
            )
        },
    )
}

fn validate_anti_entropy(c: &Config) -> Result<(), ConfigError> {
    let a = &c.anti_entropy;
    for (key, value) in [
        ("anti_entropy.interval_seconds", a.interval_seconds),
        (
            "anti_entropy.peer_discovery_interval",
            a.peer_discovery_interval,
        ),
        (
            "anti_entropy.max_concurrent_syncs",
            a.max_concurrent_syncs as u64,
        ),
        ("anti_entropy.timeout_seconds", a.timeout_seconds),
    ] {
        check(value >= 1, key, || "must be at least 1".into())?;
    }
    check(
        a.tree_fanout.is_power_of_two() && (2..=256).contains(&a.tree_fanout),
        "anti_entropy.tree_fanout",
        || format!("{} must be a power of two from 2 to 256", a.tree_fanout),
    )?;
    check(
        (1..=8).contains(&a.tree_depth),
        "anti_entropy.tree_depth",
        || format!("{} must be from 1 to 8", a.tree_depth),
    )?;
    check(
        a.tree_depth * a.tree_fanout.trailing_zeros() <= MAX_LEAVES_LOG2,
        "anti_entropy.tree_depth",
        || {
            format!(
                "tree_fanout^tree_depth = {}^{} exceeds 2^{MAX_LEAVES_LOG2} leaves",
                a.tree_fanout, a.tree_depth
            )
        },
    )?;

    let own: BTreeSet<(String, u16)> = [c.network.bind_address.as_str(), c.advertised_host()]
        .into_iter()
        .map(|host| (host.to_ascii_lowercase(), c.network.sync_port))
        .collect();
    let mut seen = BTreeSet::new();
    for (i, peer) in a.peer_list.iter().enumerate() {
        let key = format!("anti_entropy.peer_list[{i}]");
        let (host, port) =
            parse_host_port(peer).map_err(|reason| invalid(&key, format!("{peer:?}: {reason}")))?;
        let addr = (host.to_ascii_lowercase(), port);
        check(!own.contains(&addr), &key, || {
            format!("{peer:?} is this node's own sync address")
        })?;
        check(seen.insert(addr), &key, || {
            format!("{peer:?} is listed more than once")
        })?;
    }
    Ok(())
}

fn validate_storage(c: &Config) -> Result<(), ConfigError> {
    let s = &c.storage;
    check(
        ENGINES.contains(&s.engine.as_str()),
        "storage.engine",
        || {
            format!(
                "{:?} is not supported; use \"fjall\" (the seed's \"rwlock\", \"kv\" and \"sled\" \
             are accepted and mean fjall)",
                s.engine
            )
        },
    )?;
    check(!s.data_dir.contains('\0'), "storage.data_dir", || {
        "must not contain NUL characters".into()
    })?;
    check(
        (1..=4096).contains(&s.log_segment_mb),
        "storage.log_segment_mb",
        || format!("{} is out of range (1..=4096)", s.log_segment_mb),
    )?;
    let interval = c.anti_entropy.interval_seconds;
    check(
        !c.anti_entropy.enabled || s.tombstone_grace_seconds >= interval,
        "storage.tombstone_grace_seconds",
        || {
            format!(
                "{} is shorter than anti_entropy.interval_seconds ({interval}); deletes could be \
                 undone by a peer that has not seen them yet",
                s.tombstone_grace_seconds
            )
        },
    )
}

fn validate_logging(c: &Config) -> Result<(), ConfigError> {
    let l = &c.logging;
    check(
        LOG_LEVELS.contains(&l.level.as_str()),
        "logging.level",
        || {
            format!(
                "{:?} is not one of trace, debug, info, warn, error",
                l.level
            )
        },
    )?;
    check(!l.file_path.contains('\0'), "logging.file_path", || {
        "must not contain NUL characters".into()
    })
}

/// An IP address or an RFC 1123 hostname.
pub(super) fn is_host(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok() || is_hostname(s)
}

fn is_wildcard(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        })
}

/// Why a `host:port` or broker address is refused; `Display` is the
/// reason shown after the configuration key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum AddressError {
    /// `[…` without `]:port`.
    #[error("expected [ipv6]:port")]
    ExpectedBracketedPort,
    /// The bracketed host is not an IPv6 address.
    #[error("{0:?} is not an IPv6 address")]
    NotIpv6(String),
    /// No `:port`.
    #[error("expected host:port")]
    ExpectedPort,
    /// An IPv6 address without brackets.
    #[error("write IPv6 addresses in brackets: [addr]:port")]
    UnbracketedIpv6,
    /// Neither an IP address nor a hostname.
    #[error("{0:?} is neither an IP address nor a hostname")]
    BadHost(String),
    /// The port is not a number in 1..=65535.
    #[error("port {0:?} is not in 1..=65535")]
    BadPort(String),
    /// A broker URL scheme other than `tcp://` and `mqtts://`.
    #[error(
        "{address:?}: scheme '{scheme}://' is not supported; use tcp://host:port, \
         mqtts://host:port or host:port"
    )]
    BrokerScheme {
        /// The configured address.
        address: String,
        /// Its scheme.
        scheme: String,
    },
    /// A broker address whose `host:port` part is refused.
    #[error("{address:?}: {reason} (use tcp://host:port, mqtts://host:port or host:port)")]
    Broker {
        /// The configured address.
        address: String,
        /// What is wrong with its `host:port`.
        reason: Box<AddressError>,
    },
}

/// Parses `host:port` or `[ipv6]:port` (port 1..=65535).
pub(super) fn parse_host_port(s: &str) -> Result<(String, u16), AddressError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or(AddressError::ExpectedBracketedPort)?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(AddressError::NotIpv6(host.to_owned()));
        }
        (host, port)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or(AddressError::ExpectedPort)?;
        if host.contains(':') {
            return Err(AddressError::UnbracketedIpv6);
        }
        if !is_host(host) {
            return Err(AddressError::BadHost(host.to_owned()));
        }
        (host, port)
    };
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok((host.to_owned(), p)),
        _ => Err(AddressError::BadPort(port.to_owned())),
    }
}

/// Parses `tcp://host:port`, `mqtts://host:port` or `host:port`.
pub(super) fn parse_broker(s: &str) -> Result<BrokerAddress, AddressError> {
    let (tls, rest) = if let Some(rest) = s.strip_prefix("tcp://") {
        (false, rest)
    } else if let Some(rest) = s.strip_prefix("mqtts://") {
        (true, rest)
    } else if let Some((scheme, _)) = s.split_once("://") {
        return Err(AddressError::BrokerScheme {
            address: s.to_owned(),
            scheme: scheme.to_owned(),
        });
    } else {
        (false, s)
    };
    let (host, port) = parse_host_port(rest).map_err(|reason| AddressError::Broker {
        address: s.to_owned(),
        reason: Box::new(reason),
    })?;
    Ok(BrokerAddress { host, port, tls })
}
