//! What a command asks the connection to do after its reply.

/// What the connection must do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Keep reading.
    Continue,
    /// Flush replies, then close the connection.
    Close,
    /// Run an anti-entropy round, then encode its outcome.
    Sync {
        /// Peer host.
        host: &'a str,
        /// The peer's client or sync port.
        port: u16,
        /// How.
        flags: crate::protocol::SyncFlags,
    },
    /// Run the queued transaction (`EXEC`).
    Exec,
    /// Run a keyed command through the partitioned cluster's coordinator.
    Cluster(crate::protocol::Command<'a>),
}
