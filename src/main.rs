//! The `merklekv` binary: runs a node, or the `bench` load generator.

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

    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Load generator for MerkleKV (text or RESP) and any Redis server.
    Bench(merklekv::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("merklekv: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Cmd::Bench(args)) => match runtime.block_on(merklekv::bench::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("merklekv bench: {e:#}");
                ExitCode::FAILURE
            }
        },
        None => {
            let loaded = match Config::load(cli.config.as_deref()) {
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
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
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
