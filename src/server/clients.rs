//! The registry of connected clients (CLIENT LIST).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

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
}

/// Every currently connected client.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

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
        });
        self.clients.lock().insert(id, info.clone());
        info
    }

    /// Removes a closed connection.
    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// `CLIENT LIST` lines, in connection order.
    pub fn list(&self) -> Vec<String> {
        let clients: Vec<Arc<ClientInfo>> = self.clients.lock().values().cloned().collect();
        clients.iter().map(|c| c.describe()).collect()
    }
}
