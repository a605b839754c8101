//! One replication session: an MQTT client and its three tasks
//! (connection, publisher, subscriber), started together and stopped
//! together. `REPLICATE disable` ends the session; `enable` starts a new
//! one only after the previous one has fully stopped, so two clients of
//! the same node never overlap.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::AsyncClient;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::connection::Connection;
use super::publisher::Publisher;
use super::settings::SettingsError;
use super::shared::Shared;
use super::subscriber::Subscriber;

/// Requests (batches) buffered inside the MQTT client. Small on purpose:
/// while it is full, changes accumulate in the queue and leave in bigger
/// batches.
const CLIENT_CHANNEL_CAPACITY: usize = 16;
/// Received batches waiting for the subscriber task.
const INBOUND_CAPACITY: usize = 64;
/// Longest graceful stop before the tasks are aborted.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running session.
#[derive(Debug)]
pub struct Session {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Session {
    /// Starts a session on `runtime`. Its connection task first waits for
    /// `previous` (the stop of the former session) to finish.
    pub fn start(
        shared: Arc<Shared>,
        runtime: &Handle,
        previous: Option<JoinHandle<()>>,
    ) -> Result<Self, SettingsError> {
        let options = shared.settings.mqtt_options()?;
        let (client, mut eventloop) = AsyncClient::new(options, CLIENT_CHANNEL_CAPACITY);
        eventloop.set_network_options(shared.settings.network_options());
        let (stop, stop_rx) = watch::channel(false);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);

        let connection = Connection::new(shared.clone(), eventloop, inbound_tx);
        let connection_stop = stop_rx.clone();
        let connection_task = runtime.spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            connection.run(connection_stop).await;
        });
        let publisher = Publisher::new(shared.clone(), client);
        let publisher_task = runtime.spawn(publisher.run(stop_rx));
        let subscriber = Subscriber::new(
            shared.store.clone(),
            shared.settings.node_id.clone(),
            shared.metrics.clone(),
        );
        let subscriber_task = runtime.spawn(subscriber.run(inbound_rx));
        Ok(Self {
            stop,
            tasks: vec![connection_task, publisher_task, subscriber_task],
        })
    }

    /// Stops the session gracefully (queued changes go out while the broker
    /// is reachable, presence is cleared, the client disconnects); tasks
    /// still running after [`STOP_TIMEOUT`] are aborted.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let aborts: Vec<_> = self.tasks.iter().map(JoinHandle::abort_handle).collect();
        let all = async {
            for task in self.tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(STOP_TIMEOUT, all).await.is_err() {
            tracing::warn!("replication tasks did not stop in time; aborted");
            for abort in aborts {
                abort.abort();
            }
        }
    }
}
