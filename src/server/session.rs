//! Per-connection state the commands update.

use super::transaction::Transaction;

/// Per-connection state the dispatcher updates.
#[derive(Debug, Default)]
pub struct Session {
    /// A write was recorded since the last durable flush.
    pub wrote: bool,
    /// The open `MULTI` transaction (RESP).
    pub multi: Option<Transaction>,
    /// `CONSISTENCY` chosen on this connection (`None`: the configured
    /// `cluster.write_consistency` / `read_consistency`).
    pub consistency: Option<crate::config::Consistency>,
    /// Who the connection is (`None`: not authenticated yet).
    pub identity: Option<super::auth::Identity>,
}
