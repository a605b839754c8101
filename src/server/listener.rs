//! Accepts client connections, enforcing `max_connections` and protected
//! mode, and drains them on shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::connection;
use super::context::ServerContext;

/// The bound client listener.
pub struct ClientListener {
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    /// It listens on an address other than loopback (protected mode then
    /// applies to clients from other hosts).
    beyond_loopback: bool,
}

/// What a remote client reads when protected mode turns it away.
const PROTECTED_MODE: &str = "MerkleKV is running in protected mode because it listens beyond \
    loopback and no password is set, so only loopback clients are accepted. Set \
    security.password (or security.users), or bind to 127.0.0.1, or set \
    security.protected_mode = false if every host that can reach this port may read and write \
    every key";

impl ClientListener {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener, ctx: Arc<ServerContext>) -> Self {
        let beyond_loopback = listener
            .local_addr()
            .map_or(true, |a| !a.ip().is_loopback());
        Self {
            listener,
            ctx,
            beyond_loopback,
        }
    }

    /// Accepts until shutdown is requested, then waits up to `drain` for open
    /// connections to finish their in-flight commands.
    pub async fn run(self, drain: Duration) {
        let ctx = self.ctx;
        let mut shutdown = ctx.shutdown.subscribe();
        let mut tasks = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = shutdown.wait_for(|s| *s) => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            };
            let (stream, addr) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let stats = &ctx.stats;
            // `to_canonical`: on a dual-stack `::` listener a local IPv4
            // client arrives as ::ffff:127.0.0.1.
            if !addr.ip().to_canonical().is_loopback()
                && ctx.auth.refuses_remote(self.beyond_loopback)
            {
                stats
                    .protected_mode_refusals
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(client = %addr, "refused by protected mode: {PROTECTED_MODE}");
                tasks.spawn(refuse(stream, "DENIED", PROTECTED_MODE));
                continue;
            }
            if stats.active_connections.load(Ordering::Relaxed) as usize
                >= ctx.limits.max_connections
            {
                stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
                tasks.spawn(refuse(stream, "ERR", "max number of clients reached"));
                continue;
            }
            let per_ip = ctx.limits.max_connections_per_ip;
            if per_ip > 0 && ctx.clients.connections_from(addr.ip()) >= per_ip {
                stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(client = %addr, "refused: network.max_connections_per_ip reached");
                tasks.spawn(refuse(
                    stream,
                    "ERR",
                    "max number of clients from this address reached",
                ));
                continue;
            }
            stats.total_connections.fetch_add(1, Ordering::Relaxed);
            stats.active_connections.fetch_add(1, Ordering::Relaxed);
            let client = ctx.clients.register(addr);
            let registered = Registered {
                ctx: ctx.clone(),
                id: client.id,
            };
            let ctx = ctx.clone();
            let rx = ctx.shutdown.subscribe();
            let serving = client.clone();
            let task = tasks.spawn(async move {
                // Unregisters also when the task is aborted (memory cap).
                let _registered = registered;
                if let Err(e) = connection::serve(stream, ctx, serving, rx).await {
                    tracing::debug!(%addr, error = %e, "connection ended");
                }
            });
            client.set_abort(task);
        }
        drop(self.listener);
        let _ =
            tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
    }
}

/// A registered connection: unregistered (and no longer counted active)
/// when its task ends or is aborted.
struct Registered {
    ctx: Arc<ServerContext>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.ctx.clients.unregister(self.id);
        self.ctx
            .stats
            .active_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a refused connection is given to show its protocol before it
/// is answered in the text protocol.
const REFUSAL_PROTOCOL_WAIT: Duration = Duration::from_millis(500);

/// Answers a refused connection (over `max_connections`, or turned away by
/// protected mode) with `why` in its own protocol (a RESP client, whose
/// first byte is `*`, gets `-<code> why`, as Redis' `-ERR` / `-DENIED`),
/// then closes.
async fn refuse(mut stream: TcpStream, code: &'static str, why: &'static str) {
    let mut first = [0u8; 1];
    let resp = matches!(
        tokio::time::timeout(REFUSAL_PROTOCOL_WAIT, stream.peek(&mut first)).await,
        Ok(Ok(1)) if first[0] == b'*'
    );
    let reply = if resp {
        format!("-{code} {why}\r\n")
    } else {
        format!("ERROR {why}\r\n")
    };
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
    // Read what the client already sent, briefly, so closing does not reset
    // the connection before it read the reply.
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(REFUSAL_PROTOCOL_WAIT, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
