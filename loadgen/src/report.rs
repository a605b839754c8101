//! Benchmark summary: latency histogram percentiles, text and JSON output.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency the histograms track, in microseconds (one hour);
/// larger samples are clamped to it.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by the latency histograms.
pub const SIGFIG: u8 = 3;

/// Creates an empty latency histogram (microseconds, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGFIG)
        .expect("static histogram bounds are valid")
}

/// Records one latency sample, clamped to `[1 µs, MAX_LATENCY_US]`.
pub fn record_latency(hist: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
}

/// The summary of one benchmark run.
///
/// Serializes to the JSON object printed by `merklekv bench --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Workload, e.g. `set`, `get`, `mixed:90`.
    pub workload: String,
    /// Protocol, `text` or `resp`.
    pub protocol: String,
    /// Number of concurrent connections.
    pub clients: usize,
    /// Requests per batch on each connection.
    pub pipeline: usize,
    /// Requests completed (a reply was received), errors included.
    pub requests: u64,
    /// Requests answered with an error or an unexpected reply.
    pub errors: u64,
    /// Wall-clock time of the measured phase (after all clients connected).
    pub elapsed_secs: f64,
    /// `requests / elapsed_secs`.
    pub ops_per_sec: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile latency in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// 99.9th percentile latency in milliseconds.
    pub p999_ms: f64,
    /// Maximum latency in milliseconds.
    pub max_ms: f64,
    /// `host:port` of the server (text output only).
    #[serde(skip)]
    pub target: String,
    /// The first error reply seen, if any (text output only).
    #[serde(skip)]
    pub first_error: Option<String>,
}

/// Everything [`BenchReport::new`] needs besides the histogram.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Workload label.
    pub workload: String,
    /// Protocol label.
    pub protocol: String,
    /// `host:port` of the server.
    pub target: String,
    /// Number of connections.
    pub clients: usize,
    /// Pipeline depth.
    pub pipeline: usize,
    /// Requests completed.
    pub requests: u64,
    /// Error replies.
    pub errors: u64,
    /// Measured wall-clock time.
    pub elapsed: Duration,
    /// First error reply seen.
    pub first_error: Option<String>,
}

impl BenchReport {
    /// Builds the report from the run totals and the merged histogram (µs).
    ///
    /// The percentiles are non-decreasing and bounded by `max_ms`.
    pub fn new(run: RunSummary, hist: &Histogram<u64>) -> Self {
        let elapsed_secs = run.elapsed.as_secs_f64();
        let ops_per_sec = if elapsed_secs > 0.0 {
            run.requests as f64 / elapsed_secs
        } else {
            0.0
        };
        let (max_us, pct_us) = if hist.is_empty() {
            (0, [0; 4])
        } else {
            let max = hist.max();
            let mut floor = 0;
            let pct = [0.50, 0.90, 0.99, 0.999].map(|q| {
                floor = hist.value_at_quantile(q).clamp(floor, max);
                floor
            });
            (max, pct)
        };
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            workload: run.workload,
            protocol: run.protocol,
            clients: run.clients,
            pipeline: run.pipeline,
            requests: run.requests,
            errors: run.errors,
            elapsed_secs,
            ops_per_sec,
            p50_ms: ms(pct_us[0]),
            p90_ms: ms(pct_us[1]),
            p99_ms: ms(pct_us[2]),
            p999_ms: ms(pct_us[3]),
            max_ms: ms(max_us),
            target: run.target,
            first_error: run.first_error,
        }
    }

    /// The human-readable summary (several lines, newline-terminated).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let target = if self.target.is_empty() {
            String::new()
        } else {
            format!(" against {}", self.target)
        };
        let _ = writeln!(
            s,
            "====== merklekv bench: {} ({}){target} ======",
            self.workload, self.protocol
        );
        let _ = writeln!(s, "  clients:      {}", self.clients);
        let _ = writeln!(s, "  pipeline:     {}", self.pipeline);
        let _ = writeln!(s, "  requests:     {}", self.requests);
        let _ = writeln!(s, "  errors:       {}", self.errors);
        if let Some(err) = &self.first_error {
            let _ = writeln!(s, "  first error:  {err}");
        }
        let _ = writeln!(s, "  elapsed:      {:.3} s", self.elapsed_secs);
        let _ = writeln!(s, "  throughput:   {:.2} ops/s", self.ops_per_sec);
        let _ = writeln!(s, "  latency (ms):");
        for (name, v) in [
            ("p50", self.p50_ms),
            ("p90", self.p90_ms),
            ("p99", self.p99_ms),
            ("p99.9", self.p999_ms),
            ("max", self.max_ms),
        ] {
            let _ = writeln!(s, "    {name:<6} {v:>10.3}");
        }
        s
    }

    /// The one-line JSON object printed with `--json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report of plain numbers and strings serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn summary(requests: u64) -> RunSummary {
        RunSummary {
            workload: "mixed:90".into(),
            protocol: "resp".into(),
            target: "127.0.0.1:7379".into(),
            clients: 4,
            pipeline: 8,
            requests,
            errors: 1,
            elapsed: Duration::from_millis(500),
            first_error: Some("ERR boom".into()),
        }
    }

    fn assert_monotone(r: &BenchReport) {
        let v = [r.p50_ms, r.p90_ms, r.p99_ms, r.p999_ms, r.max_ms];
        assert!(v.windows(2).all(|w| w[0] <= w[1]), "not monotone: {v:?}");
        assert!(v.iter().all(|x| x.is_finite() && *x >= 0.0));
    }

    #[test]
    fn percentiles_are_monotone() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
        for round in 0..50 {
            let mut hist = new_histogram();
            let n = rng.random_range(1..5_000);
            for _ in 0..n {
                // Heavy-tailed samples from 1 µs up to ~10 s.
                let exp = rng.random_range(0..7u32);
                let us = rng.random_range(1..=10u64.pow(exp + 1));
                record_latency(&mut hist, Duration::from_micros(us));
            }
            let r = BenchReport::new(summary(n), &hist);
            assert_monotone(&r);
            assert!(r.max_ms > 0.0, "round {round}");
        }
    }

    #[test]
    fn single_sample_and_empty_histograms() {
        let mut hist = new_histogram();
        record_latency(&mut hist, Duration::from_micros(1234));
        let r = BenchReport::new(summary(1), &hist);
        assert_monotone(&r);
        assert!((r.max_ms - 1.234).abs() < 0.002, "{}", r.max_ms);
        assert!((r.p50_ms - 1.234).abs() < 0.002, "{}", r.p50_ms);

        let r = BenchReport::new(summary(0), &new_histogram());
        assert_monotone(&r);
        assert_eq!(r.max_ms, 0.0);
        assert_eq!(r.ops_per_sec, 0.0);
    }

    #[test]
    fn latencies_are_clamped() {
        let mut hist = new_histogram();
        record_latency(&mut hist, Duration::ZERO);
        record_latency(&mut hist, Duration::from_secs(100_000));
        assert_eq!(hist.len(), 2);
        assert_eq!(hist.min(), 1);
        assert!(hist.max() >= MAX_LATENCY_US);
    }

    #[test]
    fn throughput_and_outputs() {
        let mut hist = new_histogram();
        for us in 1..=1000 {
            record_latency(&mut hist, Duration::from_micros(us));
        }
        let r = BenchReport::new(summary(1000), &hist);
        assert!((r.ops_per_sec - 2000.0).abs() < 1e-9);

        let text = r.to_text();
        for needle in [
            "mixed:90",
            "resp",
            "127.0.0.1:7379",
            "requests:     1000",
            "errors:       1",
            "ERR boom",
            "p99.9",
            "2000.00 ops/s",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }

        let json = r.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let obj = value.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = vec![
            "workload",
            "protocol",
            "clients",
            "pipeline",
            "requests",
            "errors",
            "elapsed_secs",
            "ops_per_sec",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "p999_ms",
            "max_ms",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(obj["requests"], 1000);
        assert_eq!(obj["workload"], "mixed:90");
        assert!(!json.contains('\n'));

        let back: BenchReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.requests, r.requests);
        assert_eq!(back.p99_ms, r.p99_ms);
    }
}
