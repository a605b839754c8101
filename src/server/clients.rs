//! The registry of connected clients (CLIENT LIST), and the memory they
//! hold in unfinished requests and unsent replies
//! (`network.max_client_memory_mb`, Redis' `maxmemory-clients`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::task::AbortHandle;

/// One connected client.
#[derive(Debug)]
pub struct ClientInfo {
    /// Connection id (unique per process).
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    connected: Instant,
    /// Milliseconds after `connected` of the last command.
    last_active_ms: AtomicU64,
    /// Name set by `CLIENT SETNAME`.
    pub name: Mutex<String>,
    /// Bytes its buffers hold (input, request arguments, replies), as last
    /// reported by the connection.
    held: AtomicUsize,
    /// Ends the connection's task (a client over the memory cap).
    abort: OnceLock<AbortHandle>,
}

impl ClientInfo {
    /// Marks the client active now.
    pub fn touch(&self) {
        self.last_active_ms.store(
            self.connected.elapsed().as_millis() as u64,
            Ordering::Relaxed,
        );
    }

    /// The `CLIENT LIST` line.
    pub fn describe(&self) -> String {
        let age = self.connected.elapsed();
        let idle_ms =
            (age.as_millis() as u64).saturating_sub(self.last_active_ms.load(Ordering::Relaxed));
        let name = self.name.lock().clone();
        let mut line = format!(
            "id={} addr={} age={} idle={}",
            self.id,
            self.addr,
            age.as_secs(),
            idle_ms / 1000
        );
        if !name.is_empty() {
            line.push_str(" name=");
            line.push_str(&name);
        }
        line
    }

    /// Gives the registry the means to end this client's connection.
    pub fn set_abort(&self, handle: AbortHandle) {
        let _ = self.abort.set(handle);
    }

    /// Bytes its buffers hold, as last reported.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// Every currently connected client.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// Sum of every client's `held`.
    held_total: AtomicUsize,
    /// Clients disconnected for holding too much.
    evicted: AtomicU64,
    /// A release of freed memory to the OS is scheduled.
    release_scheduled: Arc<AtomicBool>,
    /// Open connections per client IP address.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A client that held more than this when it left makes the process give
/// freed memory back to the OS.
const RELEASE_AFTER_BYTES: usize = 1 << 20;

/// Releases are coalesced over this long (many large clients leaving at
/// once cost one release).
const RELEASE_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

impl ClientRegistry {
    /// Registers a new connection.
    pub fn register(&self, addr: SocketAddr) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            connected: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            name: Mutex::new(String::new()),
            held: AtomicUsize::new(0),
            abort: OnceLock::new(),
        });
        self.clients.lock().insert(id, info.clone());
        *self.per_ip.lock().entry(addr.ip()).or_default() += 1;
        info
    }

    /// Open connections from `ip`.
    pub fn connections_from(&self, ip: IpAddr) -> usize {
        self.per_ip.lock().get(&ip).copied().unwrap_or(0)
    }

    /// Removes a closed connection (and what it held).
    pub fn unregister(&self, id: u64) {
        if let Some(client) = self.clients.lock().remove(&id) {
            let mut per_ip = self.per_ip.lock();
            if let Some(count) = per_ip.get_mut(&client.addr.ip()) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&client.addr.ip());
                }
            }
            drop(per_ip);
            let held = client.held.swap(0, Ordering::Relaxed);
            self.held_total.fetch_sub(held, Ordering::Relaxed);
            if held > RELEASE_AFTER_BYTES {
                self.schedule_release();
            }
        }
    }

    /// Gives freed memory back to the OS shortly (once for many clients
    /// leaving together); needs a tokio runtime, does nothing without one.
    fn schedule_release(&self) {
        if self.release_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.release_scheduled.store(false, Ordering::Release);
            return;
        };
        let scheduled = self.release_scheduled.clone();
        runtime.spawn(async move {
            tokio::time::sleep(RELEASE_DELAY).await;
            scheduled.store(false, Ordering::Release);
            let _ = tokio::task::spawn_blocking(crate::process::release_free_memory).await;
        });
    }

    /// Records that `client` now holds `bytes`; when every client together
    /// holds more than `cap` (0 = no cap), disconnects the largest holders
    /// until they fit, with a log line each. Returns whether `client`
    /// itself was among them.
    pub fn account(&self, client: &ClientInfo, bytes: usize, cap: usize) -> bool {
        let before = client.held.swap(bytes, Ordering::Relaxed);
        if bytes >= before {
            self.held_total.fetch_add(bytes - before, Ordering::Relaxed);
        } else {
            self.held_total.fetch_sub(before - bytes, Ordering::Relaxed);
        }
        if cap == 0 || bytes <= before || self.held_total.load(Ordering::Relaxed) <= cap {
            return false;
        }
        self.evict_until(cap, client.id)
    }

    /// Disconnects the clients holding the most until the total fits
    /// `cap`; returns whether `own` was one of them.
    fn evict_until(&self, cap: usize, own: u64) -> bool {
        let mut by_size: Vec<Arc<ClientInfo>> = self.clients.lock().values().cloned().collect();
        by_size.sort_unstable_by_key(|c| std::cmp::Reverse(c.held()));
        let mut evicted_self = false;
        for client in by_size {
            let total = self.held_total.load(Ordering::Relaxed);
            if total <= cap || client.held() == 0 {
                break;
            }
            let held = client.held.swap(0, Ordering::Relaxed);
            self.held_total.fetch_sub(held, Ordering::Relaxed);
            self.evicted.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                client = client.id,
                addr = %client.addr,
                held_bytes = held,
                total_bytes = total,
                cap_bytes = cap,
                "disconnecting the client holding the most memory in unfinished requests and \
                 unsent replies (network.max_client_memory_mb)"
            );
            if client.id == own {
                evicted_self = true;
            } else if let Some(abort) = client.abort.get() {
                abort.abort();
            }
            self.schedule_release();
        }
        evicted_self
    }

    /// Bytes every client's buffers hold together.
    pub fn held_total(&self) -> usize {
        self.held_total.load(Ordering::Relaxed)
    }

    /// Clients disconnected for holding too much memory.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// `CLIENT LIST` lines, in connection order.
    pub fn list(&self) -> Vec<String> {
        let clients: Vec<Arc<ClientInfo>> = self.clients.lock().values().cloned().collect();
        clients.iter().map(|c| c.describe()).collect()
    }
}
