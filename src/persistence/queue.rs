//! The write queue between the store and the change log.
//!
//! [`WriteQueue::record`] runs while the store holds the key's shard lock,
//! so it only encodes the change as a change-log frame into an in-memory
//! buffer (no i/o, no fsync): per key, queue order is version order.
//! Whoever writes the log (a connection before it replies, the background
//! writer, or the group-commit thread under `fsync = "always"`) takes the
//! whole buffer at once, appends it with one `write(2)` and publishes how
//! far it got ([`WriteQueue::mark_written`]). Connections that must wait
//! for a write (`fsync = "always"`) do so with
//! [`WriteQueue::wait_written`]; each waiter is woken exactly once, by the
//! batch that covers its last write (no herd of wake-ups per batch).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use super::entry_record::EncodeError;
use super::log_frame;
use crate::hooks::BoxFuture;
use crate::store::{Entry, EntryLog, LogError, StoreError};

/// Writers pause (backpressure) while this many bytes wait to be written.
pub const QUEUE_LIMIT_BYTES: usize = 64 * 1024 * 1024;
/// How long a writer waits for queue space, or a reply for its write to be
/// confirmed, before giving up with an error.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);
const SPACE_POLL: Duration = Duration::from_millis(100);

/// A batch taken off the queue.
#[derive(Debug, Default)]
pub struct Taken {
    /// The changes' change-log frames, in queue order.
    pub frames: Vec<u8>,
    /// How many changes the frames hold.
    pub changes: u64,
    /// Sequence number of the last change taken.
    pub last_seq: u64,
}

#[derive(Debug, Default)]
struct State {
    frames: Vec<u8>,
    changes: u64,
    /// `Some(final high-water mark)` once shutdown began.
    stopping: Option<u64>,
}

type Reply = oneshot::Sender<Result<(), LogError>>;

/// Connections waiting for their writes, by the sequence number they need.
#[derive(Debug, Default)]
struct Waiters {
    /// When the first waiter for a target arrived, and every waiter for it.
    by_target: BTreeMap<u64, (Instant, Vec<Reply>)>,
    /// Set once writing failed; later waits fail at once.
    failure: Option<LogError>,
}

/// The queue shared by the store (producer), the log writers (consumers)
/// and the connections (waiting for their writes).
#[derive(Debug, Default)]
pub struct WriteQueue {
    state: Mutex<State>,
    work: Condvar,
    space: Condvar,
    /// Sequence number of the last change queued (updated under `state`).
    assigned: AtomicU64,
    /// Every change up to this sequence number is written (and fsynced
    /// under `fsync = "always"`). Only a log writer moves it.
    written: AtomicU64,
    /// Largest HLC timestamp of any change queued.
    max_hlc: AtomicU64,
    /// Set once writing failed (the message is in `waiters`).
    failed: AtomicBool,
    waiters: Mutex<Waiters>,
}

impl WriteQueue {
    /// Encodes one change into the buffer with `encode` (which appends its
    /// frames and may refuse), after waiting for space.
    fn push(
        &self,
        hlc: u64,
        encode: impl FnOnce(&mut Vec<u8>, u64) -> Result<(), EncodeError>,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        let mut waited = Duration::ZERO;
        loop {
            if self.has_failed() {
                return Err(StoreError::Log(
                    self.failure().unwrap_or(LogError::NotWritten),
                ));
            }
            if state.stopping.is_some() {
                return Err(StoreError::Log(LogError::ShutDown));
            }
            if state.frames.len() < QUEUE_LIMIT_BYTES {
                break;
            }
            if waited >= STALL_LIMIT {
                return Err(StoreError::Log(LogError::Backlog {
                    queued_mib: QUEUE_LIMIT_BYTES >> 20,
                    waited_secs: STALL_LIMIT.as_secs(),
                }));
            }
            self.space.wait_for(&mut state, SPACE_POLL);
            waited += SPACE_POLL;
        }
        let was_empty = state.frames.is_empty();
        let max_hlc = self.max_hlc.fetch_max(hlc, Ordering::Relaxed).max(hlc);
        encode(&mut state.frames, max_hlc).map_err(|e| StoreError::Log(e.into()))?;
        state.changes += 1;
        self.assigned.fetch_add(1, Ordering::Release);
        drop(state);
        if was_empty {
            // Cheap when nobody waits (parking_lot checks without a syscall).
            self.work.notify_one();
        }
        Ok(())
    }

    /// Waits until there is work, shutdown was requested, or `timeout`
    /// passed (`None`: no timeout).
    pub fn wait_for_work(&self, timeout: Option<Duration>) {
        let mut state = self.state.lock();
        if state.frames.is_empty() && state.stopping.is_none() {
            match timeout {
                Some(t) => {
                    self.work.wait_for(&mut state, t);
                }
                None => self.work.wait(&mut state),
            }
        }
    }

    /// Takes everything queued, without waiting. `reuse` (an emptied
    /// buffer of an earlier batch, or a new one) becomes the queue's buffer.
    pub fn take_now(&self, mut reuse: Vec<u8>) -> (Taken, Option<u64>) {
        reuse.clear();
        let mut state = self.state.lock();
        let taken = Taken {
            frames: std::mem::replace(&mut state.frames, reuse),
            changes: std::mem::take(&mut state.changes),
            last_seq: self.assigned.load(Ordering::Acquire),
        };
        let stopping = state.stopping;
        drop(state);
        if !taken.frames.is_empty() {
            self.space.notify_all();
        }
        (taken, stopping)
    }

    /// Whether every change up to `seq` is written.
    pub fn is_written(&self, seq: u64) -> bool {
        self.written.load(Ordering::Acquire) >= seq
    }

    /// Sequence number of the last change queued.
    pub fn assigned(&self) -> u64 {
        self.assigned.load(Ordering::Acquire)
    }

    /// Raises the largest HLC timestamp known to the queue to `hlc`.
    pub fn observe_hlc(&self, hlc: u64) {
        self.max_hlc.fetch_max(hlc, Ordering::Relaxed);
    }

    /// Largest HLC timestamp queued so far.
    pub fn max_hlc(&self) -> u64 {
        self.max_hlc.load(Ordering::Relaxed)
    }

    /// Whether shutdown began.
    pub fn is_stopping(&self) -> bool {
        self.state.lock().stopping.is_some()
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().frames.len()
    }

    /// Whether writing failed (cheap: no lock).
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The failure that stopped writing, if any.
    pub fn failure(&self) -> Option<LogError> {
        self.waiters.lock().failure.clone()
    }

    /// Publishes that every change up to `seq` is written, and answers the
    /// connections waiting for those changes.
    pub fn mark_written(&self, seq: u64) {
        // Store first, then take the waiters' lock: a waiter that checks
        // `written` under that lock either sees `seq` or is answered here.
        self.written.fetch_max(seq, Ordering::Release);
        let ready = {
            let mut waiters = self.waiters.lock();
            let later = waiters.by_target.split_off(&(seq + 1));
            std::mem::replace(&mut waiters.by_target, later)
        };
        for reply in ready.into_values().flat_map(|(_, replies)| replies) {
            let _ = reply.send(Ok(()));
        }
    }

    /// Answers, with an error, every connection that has waited longer
    /// than `limit` for its write (a disk that stopped responding). Run
    /// about once a second by the stall watchdog, so no wait needs a timer
    /// of its own.
    pub fn expire_stalled_waiters(&self, limit: Duration) {
        let expired: Vec<Reply> = {
            let mut waiters = self.waiters.lock();
            let mut expired = Vec::new();
            while let Some(entry) = waiters.by_target.first_entry() {
                if entry.get().0.elapsed() < limit {
                    break;
                }
                expired.extend(entry.remove().1);
            }
            expired
        };
        if expired.is_empty() {
            return;
        }
        let error = LogError::Unconfirmed {
            waited_secs: limit.as_secs(),
        };
        tracing::warn!(waiters = expired.len(), "{error}");
        for reply in expired {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// Records a fatal write failure: later writes and waits get `error`,
    /// and every connection still waiting is answered with it.
    pub fn fail(&self, error: LogError) {
        let waiting = {
            let mut waiters = self.waiters.lock();
            waiters.failure = Some(error.clone());
            self.failed.store(true, Ordering::Release);
            std::mem::take(&mut waiters.by_target)
        };
        // Writers waiting for space see the failure when they wake.
        self.space.notify_all();
        for reply in waiting.into_values().flat_map(|(_, replies)| replies) {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// Begins shutdown: no change is accepted afterwards; the group-commit
    /// thread writes what is queued plus `final_high_water`, then exits.
    pub fn stop(&self, final_high_water: u64) {
        self.state.lock().stopping = Some(final_high_water);
        self.work.notify_all();
        self.space.notify_all();
    }

    /// Resolves once every change queued before the call is written (and
    /// fsynced under `fsync = "always"`), or with the failure that stopped
    /// writing.
    pub fn wait_written(&self) -> BoxFuture<Result<(), LogError>> {
        self.wait_written_up_to(self.assigned())
    }

    /// Resolves once every change up to `target` is written, or with the
    /// failure that stopped writing.
    pub fn wait_written_up_to(&self, target: u64) -> BoxFuture<Result<(), LogError>> {
        let rx = {
            let mut waiters = self.waiters.lock();
            if self.written.load(Ordering::Acquire) >= target {
                return Box::pin(std::future::ready(Ok(())));
            }
            if let Some(f) = &waiters.failure {
                return Box::pin(std::future::ready(Err(f.clone())));
            }
            let (tx, rx) = oneshot::channel();
            waiters
                .by_target
                .entry(target)
                .or_insert_with(|| (Instant::now(), Vec::new()))
                .1
                .push(tx);
            rx
        };
        // No timer per wait: the stall watchdog answers waits older than
        // STALL_LIMIT (see `expire_stalled_waiters`).
        Box::pin(async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(f)) => Err(f),
                Err(_) => Err(LogError::Stopped),
            }
        })
    }
}

impl EntryLog for WriteQueue {
    fn record(&self, key: &[u8], entry: &Entry) -> Result<(), StoreError> {
        self.push(entry.version.hlc, |out, _| {
            log_frame::encode_put(out, key, entry)
        })
    }

    fn forget(&self, key: &[u8]) -> Result<(), StoreError> {
        // The removed tombstone may have carried the newest version: the
        // high-water mark goes along so versions never go backwards.
        self.push(0, |out, max_hlc| {
            log_frame::encode_remove(out, key)?;
            log_frame::encode_high_water(out, max_hlc);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Version;
    use std::sync::Arc;

    fn entry(hlc: u64) -> Entry {
        Entry {
            expires_at: None,
            version: Version::new(hlc, 1),
            value: Some(b"v".to_vec().into()),
        }
    }

    #[tokio::test]
    async fn waits_resolve_once_their_writes_are_marked_written() {
        let q = Arc::new(WriteQueue::default());
        assert_eq!(q.wait_written().await, Ok(()), "nothing queued yet");
        q.record(b"a", &entry(5)).expect("record");
        q.record(b"b", &entry(9)).expect("record");
        let wait = q.wait_written();
        let (taken, stopping) = q.take_now(Vec::new());
        assert_eq!(taken.changes, 2);
        assert_eq!(log_frame::Frames::new(&taken.frames).count(), 2);
        assert_eq!(taken.last_seq, 2);
        assert_eq!(stopping, None);
        assert_eq!(q.max_hlc(), 9);
        let waiter = tokio::spawn(wait);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "must wait for the write");
        q.mark_written(taken.last_seq);
        assert_eq!(waiter.await.expect("join"), Ok(()));
    }

    #[tokio::test]
    async fn waits_older_than_the_stall_limit_are_answered_with_an_error() {
        let q = Arc::new(WriteQueue::default());
        q.record(b"a", &entry(1)).expect("record");
        let stalled = q.wait_written();
        std::thread::sleep(Duration::from_millis(30));
        q.record(b"b", &entry(2)).expect("record");
        let recent = q.wait_written();
        q.expire_stalled_waiters(Duration::from_millis(20));
        assert_eq!(
            stalled.await.map_err(|e| e.to_string()),
            Err("write not confirmed durable within 0 s".into())
        );
        let recent = tokio::spawn(recent);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!recent.is_finished(), "a recent wait is left alone");
        q.mark_written(2);
        assert_eq!(recent.await.expect("join"), Ok(()));
    }

    #[tokio::test]
    async fn a_failure_reaches_waiters_and_later_writers() {
        let q = Arc::new(WriteQueue::default());
        q.record(b"a", &entry(1)).expect("record");
        let wait = q.wait_written();
        let fire = LogError::WriteFailed {
            during: "writing the change log",
            reason: "disk on fire".into(),
        };
        q.fail(fire.clone());
        assert_eq!(wait.await, Err(fire.clone()));
        assert_eq!(q.record(b"b", &entry(2)), Err(StoreError::Log(fire)));
    }

    #[test]
    fn stopping_refuses_new_writes_and_wakes_the_writer() {
        let q = WriteQueue::default();
        q.forget(b"x").expect("forget");
        q.stop(42);
        let (taken, stopping) = q.take_now(Vec::new());
        assert_eq!(stopping, Some(42));
        let records: Vec<_> = log_frame::Frames::new(&taken.frames).collect();
        assert_eq!(
            records,
            vec![
                log_frame::LogRecord::Remove { key: b"x" },
                log_frame::LogRecord::HighWater(0)
            ]
        );
        assert!(q.record(b"y", &entry(3)).is_err());
    }
}
