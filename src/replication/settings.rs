//! What a replication session needs from the configuration, and the
//! rumqttc client options built from it (TLS for `mqtts://`).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, NetworkOptions, QoS, TlsConfiguration, Transport};

use crate::config::{BrokerAddress, Config};
use crate::hooks::NodeFacts;
use crate::proto;

/// Seconds allowed for one TCP (+ TLS) connect and MQTT handshake.
const CONNECT_TIMEOUT_SECS: u64 = 5;

/// Why the MQTT client cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// `mqtt.broker_address` is empty or malformed.
    #[error("mqtt.broker_address {0:?} is not a usable broker address")]
    NoBroker(String),
    /// No CA certificate to verify an `mqtts://` broker with.
    #[error(
        "mqtts:// needs CA certificates, but none were found ({0}); \
         set SSL_CERT_FILE to the broker's CA bundle (PEM)"
    )]
    NoRootCertificates(String),
}

/// Broker credentials; `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything a replication session needs, fixed at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This node's id.
    pub node_id: String,
    /// Numeric node id carried in versions.
    pub node_num: u64,
    /// The broker.
    pub broker: BrokerAddress,
    /// MQTT client id.
    pub client_id: String,
    /// User name and password.
    pub credentials: Option<Credentials>,
    /// Keep-alive (zero disables).
    pub keep_alive: Duration,
    /// MQTT clean-session flag.
    pub clean_session: bool,
    /// Target encoded size of one batch.
    pub max_batch_bytes: usize,
    /// Largest MQTT packet sent or accepted.
    pub max_packet_bytes: usize,
    /// `{topic_prefix}/updates`.
    pub updates_topic: String,
    /// `{topic_prefix}/presence/` (a node id follows).
    pub presence_prefix: String,
    /// This process' presence message.
    pub presence: proto::Presence,
}

impl Settings {
    /// Settings for this node; `facts` supplies the bound addresses.
    pub fn new(
        config: &Config,
        facts: &NodeFacts,
        incarnation: u64,
    ) -> Result<Self, SettingsError> {
        let broker = config
            .mqtt_broker()
            .ok_or_else(|| SettingsError::NoBroker(config.mqtt.broker_address.clone()))?;
        let prefix = &config.mqtt.topic_prefix;
        let credentials = config.mqtt.username.clone().map(|user| Credentials {
            user,
            password: config.mqtt.password.clone().unwrap_or_default(),
        });
        Ok(Self {
            node_id: config.node_id.clone(),
            node_num: crate::store::node_number(&config.node_id),
            broker,
            client_id: config.mqtt_client_id().to_owned(),
            credentials,
            keep_alive: Duration::from_secs(config.mqtt.keep_alive),
            clean_session: config.mqtt.clean_session,
            max_batch_bytes: config.mqtt.max_batch_bytes,
            max_packet_bytes: config.mqtt.max_packet_bytes,
            updates_topic: format!("{prefix}/updates"),
            presence_prefix: format!("{prefix}/presence/"),
            presence: proto::Presence {
                node_id: config.node_id.clone(),
                client_addr: config.advertised_addr(&facts.client_addr),
                sync_addr: advertised_sync(config, &facts.sync_addr),
                incarnation,
                started_unix_ms: crate::clock::wall_clock_ms(),
            },
        })
    }

    /// `{topic_prefix}/presence/+`.
    pub fn presence_filter(&self) -> String {
        format!("{}+", self.presence_prefix)
    }

    /// `{topic_prefix}/presence/{node_id}` of this node.
    pub fn own_presence_topic(&self) -> String {
        format!("{}{}", self.presence_prefix, self.node_id)
    }

    /// The rumqttc options: client id, credentials, keep-alive, packet
    /// limits, a last will that clears this node's presence, and TLS for
    /// `mqtts://`.
    pub fn mqtt_options(&self) -> Result<MqttOptions, SettingsError> {
        let mut options = self.base_options(&self.client_id)?;
        options
            .set_clean_session(self.clean_session)
            .set_last_will(LastWill::new(
                self.own_presence_topic(),
                Vec::new(),
                QoS::AtLeastOnce,
                true,
            ));
        Ok(options)
    }

    /// Options for the short look at the broker before start-up: a client
    /// id of its own (so no session of this node is taken over), a clean
    /// session, no last will.
    pub fn probe_options(&self) -> Result<MqttOptions, SettingsError> {
        let id = format!(
            "{}-probe-{:016x}",
            self.client_id, self.presence.incarnation
        );
        let mut options = self.base_options(&id)?;
        options.set_clean_session(true);
        Ok(options)
    }

    fn base_options(&self, client_id: &str) -> Result<MqttOptions, SettingsError> {
        let mut options = MqttOptions::new(client_id, &self.broker.host, self.broker.port);
        options
            .set_keep_alive(self.keep_alive)
            .set_max_packet_size(self.max_packet_bytes, self.max_packet_bytes);
        if let Some(c) = &self.credentials {
            options.set_credentials(&c.user, &c.password);
        }
        if self.broker.tls {
            options.set_transport(Transport::tls_with_config(tls_configuration()?));
        }
        Ok(options)
    }

    /// Socket options: TCP_NODELAY (Nagle would stall back-to-back
    /// batches by tens of milliseconds) and the connect timeout.
    pub fn network_options(&self) -> NetworkOptions {
        let mut network = NetworkOptions::new();
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(CONNECT_TIMEOUT_SECS);
        network
    }
}

/// `host:port` as peers should dial it: the configured advertised host
/// with the bound port; `""` when the listener is disabled.
/// The sync address to advertise: the bound one when anti-entropy attached
/// first, else the configured `advertised_host:sync_port`.
fn advertised_sync(config: &Config, bound: &str) -> String {
    match config.advertised_addr(bound) {
        addr if addr.is_empty() && config.network.sync_port != 0 => config.advertised_sync_addr(),
        addr => addr,
    }
}

/// A rustls client configuration trusting the platform's CA certificates
/// (or the bundle named by `SSL_CERT_FILE` / `SSL_CERT_DIR`).
fn tls_configuration() -> Result<TlsConfiguration, SettingsError> {
    // Whichever subsystem gets here first installs ring as the process
    // default; a second install is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "no certificate store".to_owned(), ToString::to_string);
        return Err(SettingsError::NoRootCertificates(why));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(broker: &str) -> Config {
        let mut c = Config {
            node_id: "n7".into(),
            ..Config::default()
        };
        c.mqtt.broker_address = broker.into();
        c.mqtt.topic_prefix = "t/p".into();
        c
    }

    fn facts() -> NodeFacts {
        NodeFacts {
            node_id: "n7".into(),
            client_addr: "127.0.0.1:7001".into(),
            sync_addr: "disabled".into(),
            data_dir: "x".into(),
            worker_threads: 1,
        }
    }

    #[test]
    fn topics_and_presence_follow_the_configuration() {
        let s = Settings::new(&config("tcp://127.0.0.1:1883"), &facts(), 9).expect("settings");
        assert_eq!(s.updates_topic, "t/p/updates");
        assert_eq!(s.presence_filter(), "t/p/presence/+");
        assert_eq!(s.own_presence_topic(), "t/p/presence/n7");
        assert_eq!(s.client_id, "n7");
        assert_eq!(s.presence.client_addr, "127.0.0.1:7001");
        assert_eq!(s.presence.sync_addr, "127.0.0.1:7380");
        assert_eq!(s.presence.incarnation, 9);
        let options = s.mqtt_options().expect("options");
        assert_eq!(options.broker_address(), ("127.0.0.1".to_owned(), 1883));
        assert_eq!(options.max_packet_size(), 4 << 20);
        assert!(options
            .last_will()
            .is_some_and(|w| w.retain && w.message.is_empty()));
    }

    #[test]
    fn no_broker_is_an_error() {
        assert!(matches!(
            Settings::new(&config(""), &facts(), 1),
            Err(SettingsError::NoBroker(_))
        ));
    }
}
