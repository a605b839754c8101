//! One benchmark client: a TCP connection issuing pipelined batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use bytes::{Buf as _, BytesMut};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::args::Protocol;
use super::client::{classify, decode_reply, encode_request, Outcome, Reply};
use super::report::{new_histogram, record_latency};
use super::workload::{KeyGen, Op, Workload};

/// Bytes reserved in the read buffer before each socket read.
const READ_CHUNK: usize = 64 * 1024;

/// When a client stops issuing batches.
#[derive(Debug, Clone, Copy)]
pub enum Quota {
    /// After this many requests.
    Requests(u64),
    /// When a new batch would start at or after this instant.
    Until(Instant),
}

/// Settings shared by all clients of a run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `host:port`, for error messages.
    pub target: Arc<str>,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Requests per batch.
    pub pipeline: usize,
    /// Operation mix.
    pub workload: Workload,
    /// Key generator.
    pub keys: KeyGen,
    /// Size of SET values.
    pub value_size: usize,
    /// Limit for one batch round trip (write + all replies).
    pub timeout: Duration,
}

/// What one client measured.
#[derive(Debug)]
pub struct WorkerResult {
    /// Per-request latencies in microseconds.
    pub hist: Histogram<u64>,
    /// Requests completed.
    pub requests: u64,
    /// Error or unexpected replies.
    pub errors: u64,
    /// First error reply seen.
    pub first_error: Option<String>,
}

/// Opens one connection with `TCP_NODELAY`, bounded by `timeout`.
pub async fn connect(host: &str, port: u16, target: &str, timeout: Duration) -> Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| {
            anyhow!(
                "timed out after {} ms connecting to {target}",
                timeout.as_millis()
            )
        })?
        .with_context(|| format!("failed to connect to {target}"))?;
    stream
        .set_nodelay(true)
        .with_context(|| format!("failed to set TCP_NODELAY on connection to {target}"))?;
    Ok(stream)
}

/// Runs one client on `stream` until `quota` is exhausted.
///
/// Each batch is written in one write while replies are read concurrently
/// (so a large pipeline cannot deadlock on full socket buffers); every
/// request's latency runs from the start of the batch write to the moment
/// its reply is decoded. `done` is incremented after each batch.
pub async fn run_worker(
    mut stream: TcpStream,
    cfg: &WorkerConfig,
    quota: Quota,
    mut rng: SmallRng,
    done: &AtomicU64,
) -> Result<WorkerResult> {
    let value = super::workload::make_value(cfg.value_size, &mut rng);
    let mut result = WorkerResult {
        hist: new_histogram(),
        requests: 0,
        errors: 0,
        first_error: None,
    };
    let per_request = cfg.keys.key_len() + cfg.value_size + 64;
    let mut out = Vec::with_capacity(per_request * cfg.pipeline);
    let mut ops = Vec::with_capacity(cfg.pipeline);
    let mut key = Vec::with_capacity(cfg.keys.key_len());
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);

    loop {
        let batch = match quota {
            Quota::Requests(total) => {
                let left = total.saturating_sub(result.requests);
                usize::try_from(left).map_or(cfg.pipeline, |l| l.min(cfg.pipeline))
            }
            Quota::Until(deadline) if Instant::now() < deadline => cfg.pipeline,
            Quota::Until(_) => 0,
        };
        if batch == 0 {
            break;
        }

        out.clear();
        ops.clear();
        for _ in 0..batch {
            let op = cfg.workload.next_op(&mut rng);
            cfg.keys.write_key(cfg.keys.pick(&mut rng), &mut key);
            encode_request(cfg.protocol, op, &key, &value, &mut out);
            ops.push(op);
        }

        let start = Instant::now();
        let (mut reader, mut writer) = stream.split();
        let write = async {
            writer
                .write_all(&out)
                .await
                .with_context(|| format!("failed to send requests to {}", cfg.target))
        };
        let read = async {
            for &op in &ops {
                let reply = read_reply(&mut reader, &mut rbuf, cfg).await?;
                record_latency(&mut result.hist, start.elapsed());
                result.requests += 1;
                record_outcome(&mut result, op, reply);
            }
            Ok::<(), anyhow::Error>(())
        };
        tokio::time::timeout(cfg.timeout, async { tokio::try_join!(write, read) })
            .await
            .map_err(|_| {
                anyhow!(
                    "timed out after {} ms waiting for replies from {}",
                    cfg.timeout.as_millis(),
                    cfg.target
                )
            })??;
        done.fetch_add(batch as u64, Ordering::Relaxed);
    }
    Ok(result)
}

fn record_outcome(result: &mut WorkerResult, op: Op, reply: Reply) {
    if let Outcome::Failure(msg) = classify(op, reply) {
        result.errors += 1;
        if result.first_error.is_none() {
            result.first_error = Some(msg);
        }
    }
}

/// Reads until one whole reply is buffered, then decodes and consumes it.
///
/// Bounded: every iteration either returns or appends at least one byte,
/// and the decoders reject replies beyond their size limits.
async fn read_reply<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    cfg: &WorkerConfig,
) -> Result<Reply> {
    loop {
        let decoded = decode_reply(cfg.protocol, buf)
            .with_context(|| format!("protocol error in reply from {}", cfg.target))?;
        if let Some((reply, used)) = decoded {
            buf.advance(used);
            return Ok(reply);
        }
        buf.reserve(READ_CHUNK);
        let n = reader
            .read_buf(buf)
            .await
            .with_context(|| format!("failed to read reply from {}", cfg.target))?;
        if n == 0 {
            bail!(
                "connection closed by {} while waiting for a reply",
                cfg.target
            );
        }
    }
}
