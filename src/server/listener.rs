//! Accepts client connections, enforcing `max_connections`, and drains them
//! on shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::connection;
use super::context::ServerContext;

/// The bound client listener.
pub struct ClientListener {
    listener: TcpListener,
    ctx: Arc<ServerContext>,
}

impl ClientListener {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener, ctx: Arc<ServerContext>) -> Self {
        Self { listener, ctx }
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
            let (mut stream, addr) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let stats = &ctx.stats;
            if stats.active_connections.load(Ordering::Relaxed) as usize
                >= ctx.limits.max_connections
            {
                stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
                tasks.spawn(async move {
                    let _ = stream
                        .write_all(b"ERROR max number of clients reached\r\n")
                        .await;
                    let _ = stream.shutdown().await;
                });
                continue;
            }
            stats.total_connections.fetch_add(1, Ordering::Relaxed);
            stats.active_connections.fetch_add(1, Ordering::Relaxed);
            let ctx = ctx.clone();
            let rx = ctx.shutdown.subscribe();
            tasks.spawn(async move {
                let client = ctx.clients.register(addr);
                if let Err(e) = connection::serve(stream, ctx.clone(), client.clone(), rx).await {
                    tracing::debug!(%addr, error = %e, "connection ended");
                }
                ctx.clients.unregister(client.id);
                ctx.stats.active_connections.fetch_sub(1, Ordering::Relaxed);
            });
        }
        drop(self.listener);
        let _ =
            tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
    }
}
