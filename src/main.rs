//! The `merklekv` binary: runs a node, the `bench` load generator, or the
//! `cluster` inspection commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use merklekv::config::Config;

/// MerkleKV: an eventually consistent, distributed key-value store.
#[derive(Parser, Debug)]
#[command(name = "merklekv", version, about, long_about = None)]
struct Cli {
    /// TOML configuration file (optional: every key has a default;
    /// MERKLE_KV_<SECTION>_<KEY> environment variables override it).
    #[arg(long, short, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Re-stamp entries recovered from disk whose version lies beyond the
    /// clock's bound (storage.max_clock_skew_ms past the wall clock) with
    /// a fresh version, instead of leaving them out; sets
    /// storage.restamp_future_versions for this run.
    #[arg(long)]
    restamp_future_versions: bool,

    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Load generator for MerkleKV (text or RESP) and any Redis server.
    Bench(merklekv_bench::BenchArgs),
    /// Inspect a partitioned cluster through one of its nodes.
    Cluster {
        #[command(subcommand)]
        what: ClusterCmd,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCmd {
    /// Members, up/down, ring version, keys and bytes per node, ownership.
    Status(ClusterArgs),
    /// Token ranges and their replica sets.
    Ring(ClusterArgs),
    /// Run a range-scoped anti-entropy round with every member up, now,
    /// and report what moved.
    Repair(ClusterArgs),
    /// Hand the keys this node no longer replicates (after a node joined)
    /// to all their replicas, then drop them here.
    Cleanup(ClusterArgs),
}

#[derive(clap::Args, Debug)]
struct ClusterArgs {
    /// A node's sync (gRPC) address.
    #[arg(long, default_value = "127.0.0.1:7380", value_name = "HOST:PORT")]
    node: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Bench(args)) => {
            // The load generator uses every CPU it may.
            let Some(runtime) = runtime(None) else {
                return ExitCode::FAILURE;
            };
            match runtime.block_on(merklekv_bench::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("merklekv bench: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Cmd::Cluster { what }) => {
            let Some(runtime) = runtime(Some(1)) else {
                return ExitCode::FAILURE;
            };
            use merklekv::cluster::admin;
            // The text to print, and whether every part succeeded.
            let outcome = runtime.block_on(async {
                match &what {
                    ClusterCmd::Status(a) => admin::fetch(&a.node)
                        .await
                        .map(|s| (admin::status(&s, a.json), true)),
                    ClusterCmd::Ring(a) => admin::fetch(&a.node)
                        .await
                        .map(|s| (admin::ring(&s, a.json), true)),
                    ClusterCmd::Repair(a) => admin::repair(&a.node).await.map(|r| {
                        let ok = r.peers.iter().all(|p| p.error.is_empty());
                        (admin::repair_report(&r, a.json), ok)
                    }),
                    ClusterCmd::Cleanup(a) => admin::cleanup(&a.node)
                        .await
                        .map(|r| (admin::cleanup_report(&r, a.json), true)),
                }
            });
            match outcome {
                Ok((text, ok)) => {
                    println!("{}", text.trim_end());
                    if ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("merklekv cluster: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            let mut loaded = match Config::load(cli.config.as_deref()) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("merklekv: configuration error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = merklekv::logging::init(&loaded.config.logging) {
                eprintln!("merklekv: {e:#}");
                return ExitCode::from(2);
            }
            if cli.restamp_future_versions {
                loaded.config.storage.restamp_future_versions = true;
            }
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            let Some(runtime) = runtime(Some(loaded.config.worker_threads())) else {
                return ExitCode::FAILURE;
            };
            match runtime.block_on(merklekv::node::run(loaded.config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("merklekv: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// A multi-thread runtime with `workers` worker threads (tokio's default,
/// one per CPU, when `None`); `None` after reporting why it cannot start.
fn runtime(workers: Option<usize>) -> Option<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    match builder.build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("merklekv: cannot start the runtime: {e}");
            None
        }
    }
}
