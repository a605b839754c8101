//! Tracing setup from `[logging]`: level, text or JSON, stderr or a file.

use std::fs::OpenOptions;
use std::sync::Mutex;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingConfig};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the level.
pub fn init(config: &LoggingConfig) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if config.file_path.is_empty() {
        match config.format {
            LogFormat::Json => builder.json().with_writer(std::io::stderr).try_init(),
            LogFormat::Text => builder.with_writer(std::io::stderr).try_init(),
        }
    } else {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.file_path)
            .with_context(|| {
                format!(
                    "cannot open log file {} (logging.file_path)",
                    config.file_path
                )
            })?;
        let writer = Mutex::new(file);
        match config.format {
            LogFormat::Json => builder
                .json()
                .with_ansi(false)
                .with_writer(writer)
                .try_init(),
            LogFormat::Text => builder.with_ansi(false).with_writer(writer).try_init(),
        }
    };
    result.map_err(|e| anyhow::anyhow!("cannot install logger: {e}"))
}
