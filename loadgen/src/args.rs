//! Command-line arguments of `merklekv bench` and their validation.

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, CommandFactory, FromArgMatches, ValueEnum};
use serde::{Deserialize, Serialize};

use super::workload::Workload;

/// Default number of requests when neither `--requests` nor `--duration` is given.
pub const DEFAULT_REQUESTS: u64 = 100_000;

/// Wire protocol spoken by the benchmark clients.
#[derive(ValueEnum, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// MerkleKV line-based text protocol (`SET k v` / `GET k`).
    Text,
    /// Redis serialization protocol (RESP2), usable against any Redis.
    Resp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Text => "text",
            Protocol::Resp => "resp",
        })
    }
}

/// How long a benchmark runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunLimit {
    /// A fixed total number of requests, split across the clients.
    Requests(u64),
    /// A wall-clock duration; clients stop issuing batches when it elapses.
    Duration(Duration),
}

/// Arguments of `merklekv bench`, a redis-benchmark-like load generator.
///
/// Every flag is long-only so that the struct can be flattened under any
/// top-level CLI without clashing short options.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Server host name or IP address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Server client port.
    #[arg(long, default_value_t = 7379)]
    pub port: u16,

    /// Wire protocol: `text` (MerkleKV) or `resp` (Redis).
    #[arg(long, value_enum, default_value_t = Protocol::Text)]
    pub protocol: Protocol,

    /// Number of concurrent connections.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,

    /// Requests per batch on each connection (written in one write).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,

    /// Total number of requests, split across clients [default: 100000].
    #[arg(long, conflicts_with = "duration")]
    pub requests: Option<u64>,

    /// Run for this many seconds instead of a fixed request count.
    #[arg(long, value_parser = parse_duration_secs)]
    pub duration: Option<f64>,

    /// Number of distinct keys; key indices are uniform in [0, keyspace).
    #[arg(long, default_value_t = 100_000)]
    pub keyspace: u64,

    /// Size in bytes of each SET value (printable ASCII, no spaces).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,

    /// Workload: `set`, `get` or `mixed:R` (R percent GETs, rest SETs).
    #[arg(long, default_value = "set")]
    pub workload: Workload,

    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Suppress the live progress line.
    #[arg(long)]
    pub quiet: bool,

    /// Prefix of every generated key.
    #[arg(long, default_value = "key:")]
    pub key_prefix: String,

    /// Connect and per-batch reply timeout in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,

    /// Seed for key and value generation (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl Default for BenchArgs {
    /// The same values the command line yields when no flag is given.
    fn default() -> Self {
        Self::try_parse_from(["bench"]).expect("default bench arguments parse")
    }
}

impl BenchArgs {
    /// Parses arguments as if given on the command line after `bench`
    /// (the first item is the program name and is ignored).
    pub fn try_parse_from<I, T>(iter: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = ArgsCommand::command().try_get_matches_from(iter)?;
        Self::from_arg_matches(&matches)
    }

    /// The run limit selected by `--requests` / `--duration`.
    pub fn limit(&self) -> RunLimit {
        match (self.requests, self.duration) {
            (Some(n), _) => RunLimit::Requests(n),
            (None, Some(secs)) => RunLimit::Duration(Duration::from_secs_f64(secs)),
            (None, None) => RunLimit::Requests(DEFAULT_REQUESTS),
        }
    }

    /// The `host:port` string used in messages (IPv6 literals bracketed).
    pub fn target(&self) -> String {
        let host = self.connect_host();
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The host without surrounding IPv6 brackets, as passed to the resolver.
    pub(crate) fn connect_host(&self) -> &str {
        let h = self.host.as_str();
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
    }

    /// The connect / reply timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Checks the invariants the command line cannot express.
    ///
    /// Called by [`run_to_report`](super::run_to_report), so arguments
    /// built in code are validated as well.
    pub fn validate(&self) -> Result<()> {
        if self.host.trim().is_empty() {
            bail!("--host must not be empty");
        }
        if self.clients == 0 {
            bail!("--clients must be at least 1");
        }
        if self.pipeline == 0 {
            bail!("--pipeline must be at least 1");
        }
        if self.requests.is_some() && self.duration.is_some() {
            bail!("--requests and --duration are mutually exclusive");
        }
        if self.requests == Some(0) {
            bail!("--requests must be at least 1");
        }
        if let Some(d) = self.duration {
            check_duration(d).map_err(anyhow::Error::msg)?;
        }
        if self.keyspace == 0 {
            bail!("--keyspace must be at least 1");
        }
        if self.value_size == 0 {
            bail!("--value-size must be at least 1");
        }
        if self.timeout_ms == 0 {
            bail!("--timeout-ms must be at least 1");
        }
        if self
            .key_prefix
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            bail!("--key-prefix must not contain whitespace or control characters");
        }
        Ok(())
    }
}

/// A minimal command wrapping [`BenchArgs`], used to parse them standalone.
#[derive(clap::Parser)]
#[command(name = "bench")]
struct ArgsCommand {
    #[command(flatten)]
    _args: BenchArgs,
}

fn check_duration(secs: f64) -> Result<f64, String> {
    if secs.is_finite() && secs > 0.0 && secs <= 365.0 * 24.0 * 3600.0 {
        Ok(secs)
    } else {
        Err(format!(
            "--duration must be a positive number of seconds, got {secs}"
        ))
    }
}

fn parse_duration_secs(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration `{s}` (seconds, e.g. 10 or 2.5)"))?;
    check_duration(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_documentation() {
        let a = BenchArgs::default();
        assert_eq!(a.host, "127.0.0.1");
        assert_eq!(a.port, 7379);
        assert_eq!(a.protocol, Protocol::Text);
        assert_eq!(a.clients, 50);
        assert_eq!(a.pipeline, 1);
        assert_eq!(a.limit(), RunLimit::Requests(DEFAULT_REQUESTS));
        assert_eq!(a.keyspace, 100_000);
        assert_eq!(a.value_size, 100);
        assert_eq!(a.workload, Workload::Set);
        assert_eq!(a.key_prefix, "key:");
        assert_eq!(a.timeout_ms, 5000);
        assert!(!a.json && !a.quiet);
        a.validate().unwrap();
    }

    #[test]
    fn parses_flags() {
        let a = BenchArgs::try_parse_from([
            "bench",
            "--protocol",
            "resp",
            "--duration",
            "2.5",
            "--workload",
            "mixed:90",
            "--pipeline",
            "16",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(a.protocol, Protocol::Resp);
        assert_eq!(a.limit(), RunLimit::Duration(Duration::from_millis(2500)));
        assert_eq!(a.workload, Workload::Mixed { read_pct: 90 });
        assert_eq!(a.pipeline, 16);
        assert_eq!(a.seed, Some(7));
    }

    #[test]
    fn rejects_bad_flags() {
        assert!(
            BenchArgs::try_parse_from(["bench", "--requests", "5", "--duration", "1"]).is_err()
        );
        assert!(BenchArgs::try_parse_from(["bench", "--duration", "0"]).is_err());
        assert!(BenchArgs::try_parse_from(["bench", "--duration", "nan"]).is_err());
        assert!(BenchArgs::try_parse_from(["bench", "--workload", "mixed:101"]).is_err());
        let bad = [
            BenchArgs {
                clients: 0,
                ..BenchArgs::default()
            },
            BenchArgs {
                pipeline: 0,
                ..BenchArgs::default()
            },
            BenchArgs {
                requests: Some(0),
                ..BenchArgs::default()
            },
            BenchArgs {
                requests: Some(1),
                duration: Some(1.0),
                ..BenchArgs::default()
            },
            BenchArgs {
                key_prefix: "a b".into(),
                ..BenchArgs::default()
            },
            BenchArgs {
                value_size: 0,
                ..BenchArgs::default()
            },
        ];
        for a in bad {
            assert!(a.validate().is_err(), "{a:?}");
        }
    }

    #[test]
    fn target_brackets_ipv6() {
        let mut a = BenchArgs {
            host: "::1".into(),
            ..BenchArgs::default()
        };
        assert_eq!(a.target(), format!("[::1]:{}", a.port));
        a.host = "[::1]".into();
        assert_eq!(a.connect_host(), "::1");
        assert_eq!(a.target(), format!("[::1]:{}", a.port));
    }
}
