//! Per-connection state the commands update.

use super::auth::Identity;
use super::transaction::Transaction;
use crate::config::Role;

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
    identity: Option<Identity>,
    /// `identity` is an admin: every command runs (checked per command).
    admin: bool,
}

impl Session {
    /// A new connection's session, as `identity` (`None`: it must
    /// authenticate first).
    pub fn new(identity: Option<Identity>) -> Self {
        let mut session = Self::default();
        if let Some(identity) = identity {
            session.set_identity(identity);
        }
        session
    }

    /// Who the connection is (`None`: not authenticated yet).
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The connection is `identity` from now on (`AUTH`).
    pub fn set_identity(&mut self, identity: Identity) {
        self.admin = identity.role == Role::Admin;
        self.identity = Some(identity);
    }

    /// Whether every command may run without looking at it (an admin, or
    /// any connection when no password is configured).
    #[inline]
    pub fn is_admin(&self) -> bool {
        self.admin
    }
}
