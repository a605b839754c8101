//! `REPLICATE enable|disable|status`: really starts and stops the
//! replication session, and reports its state.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::session::Session;
use super::shared::Shared;
use crate::hooks::{ReplicationControl, ReplicationError};

#[derive(Debug, Default)]
struct State {
    running: Option<Session>,
    /// The stop of the previous session, awaited before a new one connects.
    stopping: Option<JoinHandle<()>>,
    /// Set at node shutdown: nothing starts again.
    shut_down: bool,
    /// Without a broker: the switch `REPLICATE enable|disable` set, so
    /// `REPLICATE status` reports it (nothing runs either way).
    wanted: bool,
}

/// The replication control surface of a node.
#[derive(Debug)]
pub struct Replication {
    shared: Option<Arc<Shared>>,
    runtime: Handle,
    state: Mutex<State>,
}

impl Replication {
    /// Control for a node without a broker: `enable` sets the switch
    /// `status` reports (with "no broker configured"); nothing runs.
    pub fn unconfigured(runtime: Handle) -> Self {
        Self {
            shared: None,
            runtime,
            state: Mutex::new(State::default()),
        }
    }

    /// Control for a node with a broker (not started yet).
    pub fn new(shared: Arc<Shared>, runtime: Handle) -> Self {
        Self {
            shared: Some(shared),
            runtime,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether a session is running.
    pub fn is_enabled(&self) -> bool {
        self.state.lock().running.is_some()
    }

    /// Starts a session unless one runs (no duplicate clients).
    pub fn start(&self) -> Result<(), ReplicationError> {
        let Some(shared) = &self.shared else {
            // Kept as the user's switch; `status` says why nothing runs.
            self.state.lock().wanted = true;
            return Ok(());
        };
        let mut state = self.state.lock();
        if state.shut_down {
            return Err(ReplicationError::ShuttingDown);
        }
        if state.running.is_some() {
            return Ok(());
        }
        let previous = state.stopping.take();
        let session = Session::start(shared.clone(), &self.runtime, previous)
            .map_err(|e| ReplicationError::Setup(e.to_string()))?;
        shared.queue.set_accepting(true);
        state.running = Some(session);
        tracing::info!("replication enabled");
        Ok(())
    }

    /// Stops the running session (in the background); changes queued or
    /// written meanwhile are not published (anti-entropy repairs them).
    pub fn stop(&self) {
        let Some(shared) = &self.shared else {
            self.state.lock().wanted = false;
            return;
        };
        let mut state = self.state.lock();
        let Some(session) = state.running.take() else {
            return;
        };
        shared.queue.set_accepting(false);
        shared.queue.clear();
        shared.peers.clear();
        let previous = state.stopping.take();
        state.stopping = Some(self.runtime.spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            session.stop().await;
        }));
        tracing::info!("replication disabled");
    }

    /// Node shutdown: stops accepting changes, publishes what is queued
    /// while the broker is reachable, clears presence, disconnects.
    pub async fn shutdown(&self) {
        let (session, stopping) = {
            let mut state = self.state.lock();
            state.shut_down = true;
            (state.running.take(), state.stopping.take())
        };
        if let Some(shared) = &self.shared {
            shared.queue.set_accepting(false);
        }
        if let Some(stopping) = stopping {
            let _ = stopping.await;
        }
        if let Some(session) = session {
            session.stop().await;
        }
    }
}

impl ReplicationControl for Replication {
    fn enable(&self) -> Result<(), ReplicationError> {
        self.start()
    }

    fn disable(&self) {
        self.stop();
    }

    fn status(&self) -> String {
        let Some(shared) = &self.shared else {
            return if self.state.lock().wanted {
                "REPLICATION enabled 1 nodes (no broker configured)".to_owned()
            } else {
                "REPLICATION disabled".to_owned()
            };
        };
        if !self.is_enabled() {
            return "REPLICATION disabled".to_owned();
        }
        let peers = shared.peers.peers();
        let names = if peers.is_empty() {
            "-".to_owned()
        } else {
            peers.keys().cloned().collect::<Vec<_>>().join(",")
        };
        let m = &shared.metrics;
        format!(
            "REPLICATION enabled {} nodes broker={} peers={} queued={} published={} received={} dropped={} undecodable={}",
            peers.len() + 1,
            if shared.is_connected() {
                "connected"
            } else {
                "disconnected"
            },
            names,
            shared.queue.len(),
            m.changes_published.get(),
            m.changes_applied.get() + m.changes_stale.get(),
            m.dropped_total(),
            m.messages_undecodable.get(),
        )
    }
}
