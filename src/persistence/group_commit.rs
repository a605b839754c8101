//! The group-commit thread: the only writer of the engine.
//!
//! It takes everything queued since its last round, writes it as one batch
//! (one journal append) and then, by policy:
//!
//! * `always`: the batch is `fdatasync`ed before it is marked written, so
//!   a reply never leaves before its write is on disk. Writes that arrive
//!   while one fsync runs are queued and share the next one.
//! * `everysec`: the batch is handed to the OS (survives a process crash);
//!   the journal is fsynced once a second when something was written.
//! * `never`: the batch is handed to the OS, which decides when it reaches
//!   the disk (the engine still fsyncs when it rotates its journal).
//!
//! Because only this thread touches the engine, no connection ever blocks
//! behind an fsync (the engine holds its journal lock while it syncs), and
//! an engine write stall delays replies without stalling the runtime.
//!
//! At shutdown it writes what is left plus the HLC high-water mark,
//! fsyncs, and writes the in-memory part of the engine out as a table.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fjall::PersistMode;

use super::engine::{describe, Engine};
use super::metrics::StorageMetrics;
use super::queue::{WriteQueue, STALL_LIMIT};
use crate::config::FsyncPolicy;
use crate::server::context::{BoxFuture, Durability};

/// How often `everysec` fsyncs.
pub const EVERYSEC_INTERVAL: Duration = Duration::from_secs(1);

/// How long shutdown waits for the memtable to be written as a table.
pub const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(30);

/// The running group-commit thread and its stall watchdog.
#[derive(Debug)]
pub struct GroupCommit {
    queue: Arc<WriteQueue>,
    thread: Option<JoinHandle<()>>,
    watchdog: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the thread.
    pub fn start(
        queue: Arc<WriteQueue>,
        engine: Arc<Engine>,
        policy: FsyncPolicy,
        metrics: StorageMetrics,
    ) -> std::io::Result<Self> {
        let worker = Worker {
            queue: queue.clone(),
            engine,
            policy,
            metrics,
        };
        let thread = std::thread::Builder::new()
            .name("merklekv-commit".into())
            .spawn(move || worker.run())?;
        let watched = queue.clone();
        let watchdog = std::thread::Builder::new()
            .name("merklekv-stall".into())
            .spawn(move || {
                // Once a second, answer waits older than STALL_LIMIT with an
                // error (a disk that stopped responding), until shutdown.
                while !watched.is_stopping() {
                    std::thread::park_timeout(Duration::from_secs(1));
                    watched.expire_stalled_waiters(STALL_LIMIT);
                }
            })?;
        Ok(Self {
            queue,
            thread: Some(thread),
            watchdog: Some(watchdog),
        })
    }

    /// The hook connections wait on before replying.
    pub fn durability(&self) -> QueueDurability {
        QueueDurability(self.queue.clone())
    }

    /// Writes everything still queued plus `final_high_water`, fsyncs, and
    /// waits for the thread to end. Blocking.
    pub fn stop(mut self, final_high_water: u64) -> Result<(), String> {
        self.queue.stop(final_high_water);
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.thread().unpark();
            let _ = watchdog.join();
        }
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| "the group-commit thread panicked".to_string())?;
        }
        match self.queue.failure() {
            Some(f) => Err(f.to_string()),
            None => Ok(()),
        }
    }
}

/// The connections' view: wait for the batch's writes before replying.
#[derive(Debug)]
pub struct QueueDurability(pub Arc<WriteQueue>);

impl Durability for QueueDurability {
    fn wait_durable(&self) -> BoxFuture<Result<(), String>> {
        self.0.wait_written()
    }
}

struct Worker {
    queue: Arc<WriteQueue>,
    engine: Arc<Engine>,
    policy: FsyncPolicy,
    metrics: StorageMetrics,
}

impl Worker {
    fn run(self) {
        let mut last_sync = Instant::now();
        let mut unsynced = false;
        loop {
            let timeout = match (self.policy, unsynced) {
                (FsyncPolicy::Everysec, true) => {
                    Some(EVERYSEC_INTERVAL.saturating_sub(last_sync.elapsed()))
                }
                _ => None,
            };
            let (taken, stopping) = self.queue.take(timeout);
            if !taken.ops.is_empty() {
                let high_water = taken.has_removals.then(|| self.queue.max_hlc());
                let n = taken.ops.len() as u64;
                let mode = match self.policy {
                    FsyncPolicy::Always => PersistMode::SyncData,
                    FsyncPolicy::Everysec | FsyncPolicy::Never => PersistMode::Buffer,
                };
                let started = Instant::now();
                if let Err(e) = self.engine.commit(taken.ops, high_water, mode) {
                    return self.fail("writing", &e);
                }
                if mode == PersistMode::SyncData {
                    self.count_fsync(started);
                } else {
                    unsynced = true;
                }
                self.metrics.persisted_writes.inc_by(n);
                self.metrics.batches.inc();
                self.metrics.batch_size.observe(n as f64);
                self.queue.mark_written(taken.last_seq);
            }
            if let Some(final_high_water) = stopping {
                return self.finish(final_high_water);
            }
            if unsynced
                && self.policy == FsyncPolicy::Everysec
                && last_sync.elapsed() >= EVERYSEC_INTERVAL
            {
                let started = Instant::now();
                if let Err(e) = self.engine.persist(PersistMode::SyncData) {
                    return self.fail("fsyncing", &e);
                }
                self.count_fsync(started);
                unsynced = false;
                last_sync = Instant::now();
            }
        }
    }

    /// The final round at shutdown (the queue is already written): the
    /// high-water mark, an fsync, and the memtable written out as a table.
    fn finish(&self, final_high_water: u64) {
        let high_water = final_high_water.max(self.queue.max_hlc());
        let started = Instant::now();
        if let Err(e) = self
            .engine
            .commit(Vec::new(), Some(high_water), PersistMode::SyncAll)
        {
            return self.fail("flushing at shutdown", &e);
        }
        self.count_fsync(started);
        match self.engine.flush_memtable(SHUTDOWN_FLUSH_LIMIT) {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "table flush still running after {} s; the next start replays the journal",
                SHUTDOWN_FLUSH_LIMIT.as_secs()
            ),
            Err(e) => tracing::warn!(
                "table flush at shutdown failed ({}); the next start replays the journal",
                describe(&e)
            ),
        }
    }

    fn count_fsync(&self, started: Instant) {
        self.metrics.fsyncs.inc();
        self.metrics
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    fn fail(&self, what: &str, e: &fjall::Error) {
        let message = format!(
            "storage error {what} {}: {}",
            self.engine.dir().display(),
            describe(e)
        );
        tracing::error!("{message}; writes are refused from now on, restart the node");
        self.queue.fail(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Entry, EntryLog, Version};

    fn entry(hlc: u64, value: Option<&[u8]>) -> Entry {
        Entry {
            version: Version::new(hlc, 3),
            value: value.map(Into::into),
        }
    }

    fn run_policy(policy: FsyncPolicy) {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Arc::new(Engine::open(dir.path()).expect("open"));
        let queue = Arc::new(WriteQueue::default());
        let metrics = StorageMetrics::default();
        let commit = GroupCommit::start(queue.clone(), engine.clone(), policy, metrics.clone())
            .expect("start");
        queue.record(b"a", &entry(10, Some(b"1"))).expect("record");
        queue.record(b"b", &entry(11, None)).expect("record");
        queue.record(b"c", &entry(12, Some(b"3"))).expect("record");
        queue.forget(b"c").expect("forget");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(queue.wait_written()).expect("written");
        assert_eq!(metrics.persisted_writes.get(), 4);
        if policy == FsyncPolicy::Always {
            assert!(metrics.fsyncs.get() >= 1);
        }
        commit.stop(500).expect("stop");
        assert!(queue.record(b"late", &entry(13, Some(b"x"))).is_err());
        drop(engine);

        let engine = Engine::open(dir.path()).expect("reopen");
        assert_eq!(engine.high_water().expect("high water"), Some(500));
        let mut seen = Vec::new();
        engine
            .scan(|k, e| seen.push((k.to_vec(), e)))
            .expect("scan");
        seen.sort_by(|x, y| x.0.cmp(&y.0)); // stored order is hash order
        assert_eq!(
            seen,
            vec![
                (b"a".to_vec(), entry(10, Some(b"1"))),
                (b"b".to_vec(), entry(11, None)),
            ]
        );
    }

    #[test]
    fn every_policy_writes_the_queue_and_flushes_at_stop() {
        run_policy(FsyncPolicy::Always);
        run_policy(FsyncPolicy::Everysec);
        run_policy(FsyncPolicy::Never);
    }
}
