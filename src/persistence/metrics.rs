//! Prometheus metrics of durable storage.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::engine::Engine;
use super::log_segments;
use super::queue::WriteQueue;

/// Counters updated by the log writers, the checkpointer and recovery.
#[derive(Debug, Clone)]
pub struct StorageMetrics {
    /// Changes appended to the change log.
    pub persisted_writes: Counter,
    /// Batches appended (one `write(2)` each).
    pub batches: Counter,
    /// fsyncs (`fdatasync`) of the change log.
    pub fsyncs: Counter,
    /// Change-log segments folded into the engine.
    pub checkpoints: Counter,
    /// Time per checkpoint, seconds.
    pub checkpoint_seconds: Histogram,
    /// Checkpoints that failed (the log is then kept until a restart).
    pub checkpoint_failures: Counter,
    /// Changes replayed from the change log at start-up.
    pub replayed_changes: Gauge,
    /// Time per fsync, seconds.
    pub fsync_seconds: Histogram,
    /// Changes per batch.
    pub batch_size: Histogram,
    /// How long the last start-up recovery took, seconds.
    pub recovery_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Entries (tombstones included) loaded at start-up.
    pub recovered_entries: Gauge,
    /// 1 when the previous run did not shut down cleanly.
    pub unclean_start: Gauge,
    /// Unix seconds of the last fsync of the change log or checkpoint
    /// (`LASTSAVE`; Redis' `rdb_last_save_time`).
    pub last_save_unix_seconds: Gauge,
}

impl StorageMetrics {
    /// Notes that everything written so far is on disk now.
    pub fn saved_now(&self) {
        let secs = crate::clock::wall_clock_ms() / 1000;
        self.last_save_unix_seconds
            .set(i64::try_from(secs).unwrap_or(i64::MAX));
    }
}

impl crate::hooks::SaveClock for StorageMetrics {
    fn last_save_unix_secs(&self) -> u64 {
        u64::try_from(self.last_save_unix_seconds.get()).unwrap_or(0)
    }
}

impl Default for StorageMetrics {
    fn default() -> Self {
        Self {
            persisted_writes: Counter::default(),
            batches: Counter::default(),
            fsyncs: Counter::default(),
            checkpoints: Counter::default(),
            // 10 ms .. ~80 s
            checkpoint_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.01, 2.0, 14),
            ),
            checkpoint_failures: Counter::default(),
            replayed_changes: Gauge::default(),
            // 50 µs .. ~1.6 s
            fsync_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 16),
            ),
            batch_size: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                1.0, 4.0, 10,
            )),
            recovery_seconds: Gauge::default(),
            recovered_entries: Gauge::default(),
            unclean_start: Gauge::default(),
            last_save_unix_seconds: Gauge::default(),
        }
    }
}

impl StorageMetrics {
    /// Registers every metric (and the live queue/disk gauges) in `registry`.
    pub fn register(
        &self,
        registry: &mut Registry,
        queue: Arc<WriteQueue>,
        engine: Arc<Engine>,
        log_dir: std::path::PathBuf,
    ) {
        registry.register(
            "storage_persisted_writes",
            "Changes appended to the change log",
            self.persisted_writes.clone(),
        );
        registry.register(
            "storage_batches",
            "Batches appended to the change log (one write each)",
            self.batches.clone(),
        );
        registry.register(
            "storage_fsyncs",
            "Change-log fsyncs (fdatasync)",
            self.fsyncs.clone(),
        );
        registry.register(
            "storage_fsync_seconds",
            "Time per change-log fsync",
            self.fsync_seconds.clone(),
        );
        registry.register(
            "storage_batch_changes",
            "Changes per batch appended to the change log",
            self.batch_size.clone(),
        );
        registry.register(
            "storage_checkpoints",
            "Change-log segments folded into the storage engine",
            self.checkpoints.clone(),
        );
        registry.register(
            "storage_checkpoint_seconds",
            "Time per checkpoint (one change-log segment folded into the engine)",
            self.checkpoint_seconds.clone(),
        );
        registry.register(
            "storage_checkpoint_failures",
            "Checkpoints that failed (the change log is kept until a restart replays it)",
            self.checkpoint_failures.clone(),
        );
        registry.register(
            "storage_replayed_changes",
            "Changes replayed from the change log at start-up",
            self.replayed_changes.clone(),
        );
        registry.register(
            "storage_recovery_seconds",
            "Duration of the start-up recovery",
            self.recovery_seconds.clone(),
        );
        registry.register(
            "storage_recovered_entries",
            "Entries (tombstones included) loaded at start-up",
            self.recovered_entries.clone(),
        );
        registry.register(
            "storage_unclean_start",
            "1 when the previous run of this data directory did not shut down cleanly",
            self.unclean_start.clone(),
        );
        registry.register(
            "storage_last_save_timestamp_seconds",
            "Unix time of the last change-log fsync or checkpoint (LASTSAVE)",
            self.last_save_unix_seconds.clone(),
        );
        registry.register_collector(Box::new(LiveGauges {
            queue,
            engine,
            log_dir,
        }));
    }
}

/// Figures read at scrape time.
#[derive(Debug)]
struct LiveGauges {
    queue: Arc<WriteQueue>,
    engine: Arc<Engine>,
    log_dir: std::path::PathBuf,
}

impl Collector for LiveGauges {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, value) in [
            (
                "storage_queue_bytes",
                "Bytes of changes waiting to be appended to the change log",
                self.queue.queued_bytes() as i64,
            ),
            (
                "storage_disk_bytes",
                "Bytes the storage engine occupies on disk",
                self.engine.disk_bytes() as i64,
            ),
            (
                "storage_log_bytes",
                "Bytes of change-log segments not yet folded into the engine",
                log_segments::disk_bytes(&self.log_dir) as i64,
            ),
        ] {
            let g = ConstGauge::new(value);
            let m = enc.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(m)?;
        }
        Ok(())
    }
}
