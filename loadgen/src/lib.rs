//! `merklekv bench`: a redis-benchmark-like load generator for MerkleKV
//! (text protocol) and any RESP server such as Redis.
//!
//! Each client is one TCP connection issuing batches of `--pipeline`
//! requests; latencies go into per-client HDR histograms (microseconds,
//! 3 significant digits) that are merged into a [`BenchReport`].
//! See `docs/bench.md` for usage.
//!
//! Module layout:
//! * [`args`]: command-line flags ([`BenchArgs`]) and validation;
//! * [`workload`]: operation mix, key and value generation;
//! * [`client`]: request encoders and incremental reply decoders;
//! * [`worker`]: the per-connection batch loop;
//! * [`report`]: histogram summary, text and JSON output;
//! * [`progress`]: the live progress line.

#![warn(missing_docs)]

pub mod args;
pub mod client;
pub mod progress;
pub mod report;
pub mod worker;
pub mod workload;

use std::io::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context as _, Result};
use tokio::task::JoinSet;

pub use args::{BenchArgs, Protocol, RunLimit};
pub use report::BenchReport;
pub use workload::Workload;

use progress::Progress;
use report::{new_histogram, RunSummary};
use worker::{Quota, WorkerConfig, WorkerResult};

/// Runs the benchmark described by `args` and prints the summary to stdout
/// (text, or one JSON object with `--json`), with a live progress line on a
/// terminal's stderr unless `--quiet`.
pub async fn run(args: BenchArgs) -> Result<()> {
    let report = execute(&args, !args.quiet).await?;
    let out = if args.json {
        format!("{}\n", report.to_json())
    } else {
        report.to_text()
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("failed to write the benchmark summary")?;
    Ok(())
}

/// Runs the benchmark described by `args` and returns the summary without
/// printing anything.
pub async fn run_to_report(args: &BenchArgs) -> Result<BenchReport> {
    execute(args, false).await
}

async fn execute(args: &BenchArgs, show_progress: bool) -> Result<BenchReport> {
    args.validate()?;
    let target: Arc<str> = args.target().into();
    let timeout = args.timeout();

    // Connect every client first so that the measured phase excludes
    // connection setup and a refused connection fails fast.
    let mut connecting = JoinSet::new();
    for index in 0..args.clients {
        let host = args.connect_host().to_owned();
        let (port, target) = (args.port, Arc::clone(&target));
        connecting.spawn(async move {
            let stream = worker::connect(&host, port, &target, timeout).await?;
            Ok::<_, anyhow::Error>((index, stream))
        });
    }
    let mut streams: Vec<_> = (0..args.clients).map(|_| None).collect();
    while let Some(joined) = connecting.join_next().await {
        let (index, stream) = joined.context("connect task failed")??;
        streams[index] = Some(stream);
    }

    let cfg = Arc::new(WorkerConfig {
        target: Arc::clone(&target),
        protocol: args.protocol,
        pipeline: args.pipeline,
        workload: args.workload,
        keys: workload::KeyGen::new(&args.key_prefix, args.keyspace),
        value_size: args.value_size,
        timeout,
    });
    let seed = args.seed.unwrap_or_else(rand::random);
    let limit = args.limit();
    let done = Arc::new(AtomicU64::new(0));
    let total = match limit {
        RunLimit::Requests(n) => Some(n),
        RunLimit::Duration(_) => None,
    };
    let progress = Progress::start(show_progress, Arc::clone(&done), total);

    let start = Instant::now();
    let clients = args.clients as u64;
    let mut running = JoinSet::new();
    for (index, stream) in streams.into_iter().enumerate() {
        let stream = stream.ok_or_else(|| anyhow!("client {index} did not connect"))?;
        let quota = match limit {
            RunLimit::Requests(n) => {
                let i = index as u64;
                Quota::Requests(n / clients + u64::from(i < n % clients))
            }
            RunLimit::Duration(d) => Quota::Until(start + d),
        };
        let rng = workload::client_rng(seed, index);
        let (cfg, done) = (Arc::clone(&cfg), Arc::clone(&done));
        running.spawn(async move { worker::run_worker(stream, &cfg, quota, rng, &done).await });
    }

    let mut hist = new_histogram();
    let (mut requests, mut errors, mut first_error) = (0u64, 0u64, None);
    while let Some(joined) = running.join_next().await {
        // On the first failure the remaining clients are aborted when
        // `running` is dropped.
        let result: WorkerResult = joined.context("benchmark client task failed")??;
        hist.add(&result.hist)
            .map_err(|e| anyhow!("failed to merge latency histograms: {e:?}"))?;
        requests += result.requests;
        errors += result.errors;
        first_error = first_error.or(result.first_error);
    }
    let elapsed = start.elapsed();
    progress.finish().await;

    Ok(BenchReport::new(
        RunSummary {
            workload: args.workload.to_string(),
            protocol: args.protocol.to_string(),
            target: target.to_string(),
            clients: args.clients,
            pipeline: args.pipeline,
            requests,
            errors,
            elapsed,
            first_error,
        },
        &hist,
    ))
}
