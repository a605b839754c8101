//! Who writes the queued changes to the change log, and when it is fsynced.
//!
//! * `always`: one group-commit thread takes everything queued, appends it
//!   with one `write(2)`, `fdatasync`s, and only then marks it written;
//!   connections wait for that before replying. Writes that arrive during
//!   an fsync share the next one.
//! * `everysec` / `never`: the connection that wrote appends the queue to
//!   the log itself right before it replies (one `write(2)` that carries
//!   whatever other connections queued meanwhile), so a reply never leaves
//!   before its write is in the OS (it survives a process crash) and no
//!   thread hand-off sits on the request path. A background thread appends
//!   what no connection waits for (replicated and repaired changes) within
//!   [`WRITE_BEHIND`], and under `everysec` fsyncs once a second without
//!   holding the writer, so appends never wait for the disk.
//!
//! At shutdown everything left is appended with the HLC high-water mark,
//! fsynced, and the checkpointer folds the whole log into the engine.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::checkpoint::Checkpointer;
use super::engine::{describe, Engine};
use super::log_frame;
use super::log_segments::{LogWriter, SyncPlan};
use super::metrics::StorageMetrics;
use super::queue::{Taken, WriteQueue, STALL_LIMIT};
use crate::config::FsyncPolicy;
use crate::hooks::{BoxFuture, Durability};
use crate::store::LogError;

/// How often `everysec` fsyncs.
pub const EVERYSEC_INTERVAL: Duration = Duration::from_secs(1);

/// Under `everysec`/`never`, how long a change no connection waits for
/// (a replicated or repaired one) may sit in the queue before the
/// background thread appends it.
pub const WRITE_BEHIND: Duration = Duration::from_millis(10);

/// How long shutdown waits for the engine's memtable to be written out.
pub const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(30);

/// A batch buffer larger than this is not kept for the next batch.
const REUSE_LIMIT_BYTES: usize = 4 * 1024 * 1024;

/// The queue's consumer side: appends to the change log.
#[derive(Debug)]
pub struct LogSink {
    queue: Arc<WriteQueue>,
    appender: Mutex<Appender>,
    metrics: StorageMetrics,
}

/// What one appender at a time holds: the log and a buffer to hand the
/// queue for the next batch.
#[derive(Debug)]
struct Appender {
    log: LogWriter,
    reuse: Vec<u8>,
}

impl LogSink {
    /// Appends everything queued unless the change `target` is already
    /// written. Succeeds only once `target` is written: after a failure
    /// (this append's or an earlier one that took `target` with it) every
    /// later write and wait is refused.
    pub fn write_pending(&self, target: u64) -> Result<(), LogError> {
        let mut appender = self.appender.lock();
        if self.queue.is_written(target) {
            return Ok(());
        }
        if self.queue.has_failed() {
            return Err(self.failure_message());
        }
        let (taken, _) = self.take(&mut appender);
        if taken.changes > 0 {
            self.append(&mut appender, &taken)?;
            self.complete(&mut appender, taken);
        }
        if target != u64::MAX && !self.queue.is_written(target) {
            return Err(self.failure_message());
        }
        Ok(())
    }

    fn failure_message(&self) -> LogError {
        self.queue.failure().unwrap_or(LogError::NotWritten)
    }

    /// Lets go of the files written since the last call without fsyncing
    /// them (`never`: the OS decides; sealed segments are fsynced by the
    /// checkpointer before they are folded).
    fn release_unsynced(&self) {
        drop(self.appender.lock().log.sync_plan());
    }

    /// Takes everything queued, handing the queue the kept buffer.
    fn take(&self, appender: &mut Appender) -> (Taken, Option<u64>) {
        self.queue.take_now(std::mem::take(&mut appender.reuse))
    }

    /// Appends a taken batch; a failure fails the queue.
    fn append(&self, appender: &mut Appender, taken: &Taken) -> Result<(), LogError> {
        appender
            .log
            .append(&taken.frames)
            .map_err(|e| self.fail("writing the change log", &e))?;
        self.metrics.persisted_writes.inc_by(taken.changes);
        self.metrics.batches.inc();
        self.metrics.batch_size.observe(taken.changes as f64);
        Ok(())
    }

    /// Publishes a batch as written and keeps its buffer for the next one.
    fn complete(&self, appender: &mut Appender, taken: Taken) {
        self.queue.mark_written(taken.last_seq);
        if taken.frames.capacity() <= REUSE_LIMIT_BYTES {
            appender.reuse = taken.frames;
        }
    }

    /// fsyncs what was appended, without holding the appender meanwhile.
    fn sync(&self) -> Result<(), LogError> {
        let plan = self.appender.lock().log.sync_plan();
        self.run_sync(plan)
    }

    fn run_sync(&self, plan: SyncPlan) -> Result<(), LogError> {
        if plan.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        plan.run()
            .map_err(|e| self.fail("fsyncing the change log", &e))?;
        self.metrics.fsyncs.inc();
        self.metrics.saved_now();
        self.metrics
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    fn fail(&self, during: &'static str, error: &std::io::Error) -> LogError {
        let error = LogError::WriteFailed {
            during,
            reason: error.to_string().into(),
        };
        tracing::error!("{error}; writes are refused from now on, restart the node");
        self.queue.fail(error.clone());
        error
    }
}

/// The running log writers, the stall watchdog and the checkpointer.
#[derive(Debug)]
pub struct GroupCommit {
    sink: Arc<LogSink>,
    policy: FsyncPolicy,
    engine: Arc<Engine>,
    checkpointer: Option<Checkpointer>,
    thread: Option<JoinHandle<()>>,
    watchdog: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the threads for `policy`.
    pub fn start(
        queue: Arc<WriteQueue>,
        writer: LogWriter,
        checkpointer: Checkpointer,
        engine: Arc<Engine>,
        policy: FsyncPolicy,
        metrics: StorageMetrics,
    ) -> std::io::Result<Self> {
        let sink = Arc::new(LogSink {
            queue: queue.clone(),
            appender: Mutex::new(Appender {
                log: writer,
                reuse: Vec::new(),
            }),
            metrics,
        });
        let worker = sink.clone();
        let thread = std::thread::Builder::new()
            .name("merklekv-commit".into())
            .spawn(move || match policy {
                FsyncPolicy::Always => commit_loop(&worker),
                FsyncPolicy::Everysec | FsyncPolicy::Never => write_behind_loop(&worker, policy),
            })?;
        // Only `always` has connections waiting on the queue.
        let watchdog = match policy {
            FsyncPolicy::Always => Some(
                std::thread::Builder::new()
                    .name("merklekv-stall".into())
                    .spawn(move || {
                        // Once a second, answer waits older than STALL_LIMIT
                        // with an error (a disk that stopped responding).
                        while !queue.is_stopping() {
                            std::thread::park_timeout(Duration::from_secs(1));
                            queue.expire_stalled_waiters(STALL_LIMIT);
                        }
                    })?,
            ),
            FsyncPolicy::Everysec | FsyncPolicy::Never => None,
        };
        Ok(Self {
            sink,
            policy,
            engine,
            checkpointer: Some(checkpointer),
            thread: Some(thread),
            watchdog,
        })
    }

    /// The hook connections go through before replying.
    pub fn durability(&self) -> Arc<dyn Durability> {
        match self.policy {
            FsyncPolicy::Always => Arc::new(QueueDurability(self.sink.queue.clone())),
            FsyncPolicy::Everysec | FsyncPolicy::Never => Arc::new(WriteThrough(self.sink.clone())),
        }
    }

    /// Appends everything still queued plus `final_high_water`, fsyncs,
    /// folds the log into the engine and stops every thread. Blocking.
    pub fn stop(mut self, final_high_water: u64) -> Result<(), LogError> {
        let queue = self.sink.queue.clone();
        queue.stop(final_high_water);
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.thread().unpark();
            let _ = watchdog.join();
        }
        if let Some(thread) = self.thread.take() {
            thread.join().map_err(|_| LogError::WriterPanicked)?;
        }
        let logged = self.finish_log(final_high_water);
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.finish();
        }
        logged?;
        match self.engine.flush_memtable(SHUTDOWN_FLUSH_LIMIT) {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "table flush still running after {} s; the next start replays the engine's journal",
                SHUTDOWN_FLUSH_LIMIT.as_secs()
            ),
            Err(e) => tracing::warn!(
                "table flush at shutdown failed ({}); the next start replays the engine's journal",
                describe(&e)
            ),
        }
        match queue.failure() {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// The last append: what is queued and the high-water mark; then the
    /// active segment is sealed and everything fsynced.
    fn finish_log(&self, final_high_water: u64) -> Result<(), LogError> {
        let sink = &self.sink;
        {
            let mut appender = sink.appender.lock();
            if !sink.queue.has_failed() {
                let (mut taken, _) = sink.take(&mut appender);
                log_frame::encode_high_water(
                    &mut taken.frames,
                    final_high_water.max(sink.queue.max_hlc()),
                );
                sink.append(&mut appender, &taken)?;
                sink.complete(&mut appender, taken);
            }
            appender.log.close();
        }
        sink.sync()
    }
}

/// `always`: take, append, fsync, mark written; repeat.
fn commit_loop(sink: &LogSink) {
    loop {
        sink.queue.wait_for_work(None);
        let mut appender = sink.appender.lock();
        let (taken, stopping) = sink.take(&mut appender);
        if taken.changes > 0 {
            if sink.append(&mut appender, &taken).is_err() {
                return;
            }
            let plan = appender.log.sync_plan();
            // Appends wait only for the append, not for the fsync.
            drop(appender);
            if sink.run_sync(plan).is_err() {
                return;
            }
            sink.complete(&mut sink.appender.lock(), taken);
        }
        if stopping.is_some() || sink.queue.has_failed() {
            return;
        }
    }
}

/// `everysec` / `never`: append what no connection did, fsync once a
/// second under `everysec`.
fn write_behind_loop(sink: &LogSink, policy: FsyncPolicy) {
    let mut last_sync = Instant::now();
    loop {
        let timeout = match policy {
            FsyncPolicy::Everysec => Some(EVERYSEC_INTERVAL.saturating_sub(last_sync.elapsed())),
            _ => None,
        };
        sink.queue.wait_for_work(timeout);
        if sink.queue.is_stopping() || sink.queue.has_failed() {
            return;
        }
        // Connections append their own writes before replying; give them
        // the chance, then take what is left.
        std::thread::sleep(WRITE_BEHIND);
        if sink.write_pending(u64::MAX).is_err() {
            return;
        }
        match policy {
            FsyncPolicy::Everysec if last_sync.elapsed() >= EVERYSEC_INTERVAL => {
                if sink.sync().is_err() {
                    return;
                }
                last_sync = Instant::now();
            }
            FsyncPolicy::Never => sink.release_unsynced(),
            _ => {}
        }
    }
}

/// `always`: connections wait until the group-commit thread marked their
/// writes written and fsynced.
#[derive(Debug)]
pub struct QueueDurability(pub Arc<WriteQueue>);

impl Durability for QueueDurability {
    fn wait_durable(&self) -> BoxFuture<Result<(), LogError>> {
        self.0.wait_written()
    }
}

/// `everysec` / `never`: the connection appends the queue itself.
#[derive(Debug)]
pub struct WriteThrough(Arc<LogSink>);

impl Durability for WriteThrough {
    fn wait_durable(&self) -> BoxFuture<Result<(), LogError>> {
        let target = self.0.queue.assigned();
        let result = self.0.write_pending(target);
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::log_segments::{self, LOG_DIR};
    use crate::persistence::test_entry;
    use crate::store::{Entry, EntryLog};

    fn entry(hlc: u64, value: Option<&[u8]>) -> Entry {
        test_entry(hlc, 3, value)
    }

    /// A running log with its checkpointer on a fresh directory.
    struct Running {
        dir: tempfile::TempDir,
        log_dir: std::path::PathBuf,
        engine: Arc<Engine>,
        queue: Arc<WriteQueue>,
        metrics: StorageMetrics,
        commit: GroupCommit,
    }

    fn start(policy: FsyncPolicy) -> Running {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Arc::new(Engine::open(dir.path()).expect("open"));
        let log_dir = dir.path().join(LOG_DIR);
        let queue = Arc::new(WriteQueue::default());
        let metrics = StorageMetrics::default();
        let checkpointer =
            Checkpointer::start(engine.clone(), log_dir.clone(), metrics.clone(), Vec::new())
                .expect("checkpointer");
        let writer = LogWriter::create(&log_dir, 1, 1 << 20, checkpointer.sink()).expect("log");
        let commit = GroupCommit::start(
            queue.clone(),
            writer,
            checkpointer,
            engine.clone(),
            policy,
            metrics.clone(),
        )
        .expect("start");
        Running {
            dir,
            log_dir,
            engine,
            queue,
            metrics,
            commit,
        }
    }

    fn run_policy(policy: FsyncPolicy) {
        let Running {
            dir,
            log_dir,
            engine,
            queue,
            metrics,
            commit,
        } = start(policy);
        let durability = commit.durability();
        queue.record(b"a", &entry(10, Some(b"1"))).expect("record");
        queue.record(b"b", &entry(11, None)).expect("record");
        queue.record(b"c", &entry(12, Some(b"3"))).expect("record");
        queue.forget(b"c").expect("forget");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(durability.wait_durable()).expect("written");
        assert_eq!(metrics.persisted_writes.get(), 4, "{policy:?}");
        if policy == FsyncPolicy::Always {
            assert!(metrics.fsyncs.get() >= 1);
        }
        commit.stop(500).expect("stop");
        assert!(queue.record(b"late", &entry(13, Some(b"x"))).is_err());
        assert!(
            log_segments::list(&log_dir).expect("list").is_empty(),
            "shutdown folds the whole log into the engine"
        );
        assert_eq!(metrics.checkpoints.get(), 1);
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
    fn every_policy_writes_the_queue_and_folds_the_log_at_stop() {
        run_policy(FsyncPolicy::Always);
        run_policy(FsyncPolicy::Everysec);
        run_policy(FsyncPolicy::Never);
    }

    #[test]
    fn after_a_failure_no_connection_is_told_its_write_is_in_the_log() {
        // `_dir` keeps the directory until the end of the test.
        let Running {
            dir: _dir,
            queue,
            commit,
            ..
        } = start(FsyncPolicy::Never);
        let durability = commit.durability();
        queue.record(b"a", &entry(1, Some(b"v"))).expect("record");
        // Another connection's append took this write with it and failed.
        queue.fail(LogError::WriteFailed {
            during: "writing the change log",
            reason: "disk full".into(),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let result = rt.block_on(durability.wait_durable());
        assert_eq!(
            result.map_err(|e| e.to_string()),
            Err("storage error writing the change log: disk full".into())
        );
        assert!(commit.stop(0).is_err(), "the failure is reported at stop");
    }

    #[test]
    fn changes_no_connection_waits_for_are_written_behind() {
        let Running {
            dir: _dir,
            log_dir,
            queue,
            metrics,
            commit,
            ..
        } = start(FsyncPolicy::Everysec);
        queue
            .record(b"merged", &entry(1, Some(b"v")))
            .expect("record");
        // The appender counts a batch before it publishes it as written, so
        // wait on the publication: once it shows, the count is there too.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !queue.is_written(1) {
            assert!(Instant::now() < deadline, "never written behind");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(metrics.persisted_writes.get(), 1);
        assert!(log_segments::disk_bytes(&log_dir) > 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while metrics.fsyncs.get() == 0 {
            assert!(Instant::now() < deadline, "everysec never fsynced");
            std::thread::sleep(Duration::from_millis(20));
        }
        commit.stop(0).expect("stop");
    }
}
