//! Prometheus metrics of durable storage.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::engine::Engine;
use super::queue::WriteQueue;

/// Counters updated by the group-commit thread and recovery.
#[derive(Debug, Clone)]
pub struct StorageMetrics {
    /// Changes written to the engine.
    pub persisted_writes: Counter,
    /// Batches written (one journal append each).
    pub batches: Counter,
    /// fsyncs (`fdatasync`) of the journal.
    pub fsyncs: Counter,
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
}

impl Default for StorageMetrics {
    fn default() -> Self {
        Self {
            persisted_writes: Counter::default(),
            batches: Counter::default(),
            fsyncs: Counter::default(),
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
        }
    }
}

impl StorageMetrics {
    /// Registers every metric (and the live queue/disk gauges) in `registry`.
    pub fn register(&self, registry: &mut Registry, queue: Arc<WriteQueue>, engine: Arc<Engine>) {
        registry.register(
            "storage_persisted_writes",
            "Changes written to the storage engine",
            self.persisted_writes.clone(),
        );
        registry.register(
            "storage_batches",
            "Group-commit batches written (one journal append each)",
            self.batches.clone(),
        );
        registry.register(
            "storage_fsyncs",
            "Journal fsyncs (fdatasync)",
            self.fsyncs.clone(),
        );
        registry.register(
            "storage_fsync_seconds",
            "Time per journal fsync",
            self.fsync_seconds.clone(),
        );
        registry.register(
            "storage_batch_changes",
            "Changes per group-commit batch",
            self.batch_size.clone(),
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
        registry.register_collector(Box::new(LiveGauges { queue, engine }));
    }
}

/// Figures read at scrape time.
#[derive(Debug)]
struct LiveGauges {
    queue: Arc<WriteQueue>,
    engine: Arc<Engine>,
}

impl Collector for LiveGauges {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, value) in [
            (
                "storage_queue_bytes",
                "Bytes of changes waiting for the group-commit thread",
                self.queue.queued_bytes() as i64,
            ),
            (
                "storage_disk_bytes",
                "Bytes the storage engine occupies on disk",
                self.engine.disk_bytes() as i64,
            ),
        ] {
            let g = ConstGauge::new(value);
            let m = enc.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(m)?;
        }
        Ok(())
    }
}
