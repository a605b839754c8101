//! Live progress line on a terminal's stderr.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// How often the progress line is refreshed.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// A background task redrawing one stderr line with the number of completed
/// requests and the current throughput. Stopped with [`Progress::finish`].
#[derive(Debug)]
pub struct Progress {
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the progress line when `enabled` and stderr is a terminal;
    /// otherwise returns an inert handle.
    ///
    /// `done` is the shared count of completed requests and `total` the
    /// target count, when known.
    pub fn start(enabled: bool, done: Arc<AtomicU64>, total: Option<u64>) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Self { task: None };
        }
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            let (mut last_ops, mut last_at) = (done.load(Ordering::Relaxed), Instant::now());
            loop {
                ticker.tick().await;
                let (ops, now) = (done.load(Ordering::Relaxed), Instant::now());
                let secs = now.duration_since(last_at).as_secs_f64();
                let rate = if secs > 0.0 {
                    ops.saturating_sub(last_ops) as f64 / secs
                } else {
                    0.0
                };
                (last_ops, last_at) = (ops, now);
                let line = render(ops, total, rate);
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{line}");
                let _ = err.flush();
            }
        });
        Self { task: Some(task) }
    }

    /// Stops the task and erases the progress line.
    pub async fn finish(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Reached on early returns (errors); the line is erased so that the
        // error message starts on a clean line.
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// Formats the progress text, e.g. `12000/100000 requests, 48211 ops/s`.
pub fn render(ops: u64, total: Option<u64>, rate: f64) -> String {
    match total {
        Some(total) => format!("{ops}/{total} requests, {rate:.0} ops/s"),
        None => format!("{ops} requests, {rate:.0} ops/s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_progress() {
        assert_eq!(
            render(1200, Some(10_000), 4800.4),
            "1200/10000 requests, 4800 ops/s"
        );
        assert_eq!(render(7, None, 0.0), "7 requests, 0 ops/s");
    }

    #[tokio::test]
    async fn disabled_progress_is_inert() {
        let p = Progress::start(false, Arc::new(AtomicU64::new(0)), None);
        assert!(p.task.is_none());
        p.finish().await;
    }
}
