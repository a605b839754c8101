//! The duplicate-node-id probe run before a session takes its MQTT client id.
//!
//! Two processes with one node id also share the default MQTT client id:
//! the second one's connect makes the broker drop the first one, whose
//! last will then clears its presence before the second one could see it.
//! So before connecting for real, a session looks at the retained presence
//! under its node id with a throw-away client id; a presence from another
//! incarnation means another process with this node id is (or was very
//! recently) running, and [`super::presence::PeerTable`] logs a loud error.

use std::time::Duration;

use rumqttc::{Disconnect, Event, EventLoop, Incoming, Outgoing, PingReq, QoS, Request, Subscribe};

use super::shared::Shared;

/// Longest the probe may delay the first connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest the probe waits for its own disconnect to go out.
const DISCONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// Reads the retained presence under this node's id and reports another
/// incarnation. Returns whether the broker answered (the probe ran).
pub async fn check_for_duplicate_node_id(shared: &Shared) -> bool {
    let Ok(options) = shared.settings.probe_options() else {
        return false;
    };
    let mut eventloop = EventLoop::new(options, 4);
    eventloop.set_network_options(shared.settings.network_options());
    let topic = shared.settings.own_presence_topic();
    let node_id = shared.settings.node_id.as_str();
    let look = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    let subscribe = Subscribe::new(topic.clone(), QoS::AtMostOnce);
                    eventloop.pending.push_back(Request::Subscribe(subscribe));
                }
                // Retained messages come right after the SUBACK; the broker
                // answers a ping only after sending them.
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    eventloop.pending.push_back(Request::PingReq(PingReq));
                }
                Ok(Event::Incoming(Incoming::Publish(p))) if p.topic == topic => {
                    shared.peers.on_message(node_id, &p.payload);
                }
                Ok(Event::Incoming(Incoming::PingResp)) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    };
    let answered = tokio::time::timeout(PROBE_TIMEOUT, look)
        .await
        .unwrap_or(false);
    if answered {
        eventloop.pending.push_back(Request::Disconnect(Disconnect));
        let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
    answered
}
