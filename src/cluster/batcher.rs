//! Coalesces calls to one peer: items queued while a batch is on the wire
//! go out together in the next one, so many clients' forwarded requests
//! share one RPC (and one HTTP/2 connection) per replica.

use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::error::PeerError;
use crate::hooks::BoxFuture;

/// Items one RPC carries at most.
const MAX_BATCH_ITEMS: usize = 1024;
/// Bytes one RPC carries at most (well below the gRPC message limit; a
/// single larger item still goes alone).
const MAX_BATCH_BYTES: usize = 1 << 20;
/// Batches on the wire at once per peer and kind.
const MAX_IN_FLIGHT: usize = 4;
/// Items waiting for a batch per peer and kind; beyond this a call fails
/// at once (the peer is too slow) rather than queueing without bound.
const QUEUE_ITEMS: usize = 65_536;

/// Sends one batch; answers one reply per item, in order.
pub type SendBatch<T, R> =
    Arc<dyn Fn(Vec<T>) -> BoxFuture<Result<Vec<R>, PeerError>> + Send + Sync>;

/// A reply to one item.
pub type Reply<R> = oneshot::Receiver<Result<R, PeerError>>;

struct Pending<T, R> {
    item: T,
    bytes: usize,
    reply: oneshot::Sender<Result<R, PeerError>>,
}

/// The queue into one peer's batches of one kind.
pub struct Batcher<T, R> {
    queue: mpsc::Sender<Pending<T, R>>,
    peer: String,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the task that batches for `peer` (it ends once the batcher
    /// is dropped and the last batch answered). `on_batch` sees each
    /// batch's item count.
    pub fn start(
        peer: &str,
        send: SendBatch<T, R>,
        on_batch: impl Fn(usize) + Send + 'static,
    ) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_ITEMS);
        tokio::spawn(run(rx, send, on_batch));
        Self {
            queue,
            peer: peer.to_owned(),
        }
    }

    /// Queues `item` (`bytes` on the wire) now; the reply comes once its
    /// batch is answered. Fails at once when the queue is full or closed.
    pub fn submit(&self, item: T, bytes: usize) -> Result<Reply<R>, PeerError> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .try_send(Pending { item, bytes, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => PeerError::Call {
                    rpc: "batch",
                    peer: self.peer.clone(),
                    reason: format!("{QUEUE_ITEMS} calls already wait for this peer"),
                },
                mpsc::error::TrySendError::Closed(_) => PeerError::Closed(self.peer.clone()),
            })?;
        Ok(rx)
    }
}

async fn run<T, R>(
    mut rx: mpsc::Receiver<Pending<T, R>>,
    send: SendBatch<T, R>,
    on_batch: impl Fn(usize),
) {
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            first = rx.recv(), if open && in_flight.len() < MAX_IN_FLIGHT => {
                let Some(first) = first else {
                    open = false;
                    continue;
                };
                let mut bytes = first.bytes;
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH_ITEMS && bytes < MAX_BATCH_BYTES {
                    match rx.try_recv() {
                        Ok(next) => {
                            bytes += next.bytes;
                            batch.push(next);
                        }
                        Err(_) => break,
                    }
                }
                on_batch(batch.len());
                let (items, replies): (Vec<T>, Vec<_>) =
                    batch.into_iter().map(|p| (p.item, p.reply)).unzip();
                let call = send(items);
                in_flight.push(async move {
                    answer(call.await, replies);
                });
            }
        }
    }
}

/// Hands each waiting caller its reply (every one the error when the batch
/// failed).
fn answer<R>(
    result: Result<Vec<R>, PeerError>,
    replies: Vec<oneshot::Sender<Result<R, PeerError>>>,
) {
    match result {
        Ok(answers) => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn items_queued_during_a_call_share_the_next_batch() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let send: SendBatch<u32, u32> = Arc::new(move |items: Vec<u32>| {
            seen.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok(items.into_iter().map(|i| i * 2).collect())
            })
        });
        let batcher = Batcher::start("p", send, |_| {});
        let replies: Vec<_> = (0..100u32)
            .map(|i| batcher.submit(i, 4).expect("queued"))
            .collect();
        for (i, reply) in replies.into_iter().enumerate() {
            assert_eq!(reply.await.expect("answered").expect("ok"), i as u32 * 2);
        }
        assert!(
            calls.load(Ordering::Relaxed) <= 2,
            "100 items took {calls:?} calls"
        );
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_caller() {
        let send: SendBatch<u32, u32> = Arc::new(|_items: Vec<u32>| {
            Box::pin(async {
                Err(PeerError::Call {
                    rpc: "Apply",
                    peer: "p".into(),
                    reason: "down".into(),
                })
            })
        });
        let batcher = Batcher::start("p", send, |_| {});
        let reply = batcher.submit(1, 4).expect("queued");
        assert!(reply.await.expect("answered").is_err());
    }
}
