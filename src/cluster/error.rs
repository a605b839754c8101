//! Why a coordinated request failed.

use crate::store::StoreError;

/// A coordinated request's failure, as the client will read it.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Too few replicas answered within `cluster.request_timeout_ms`.
    #[error("unavailable: {answered} of {required} replicas answered")]
    Unavailable {
        /// Replicas that answered.
        answered: usize,
        /// Replicas the consistency level asks for.
        required: usize,
    },
    /// The local store refused the write (it reads as it does unclustered).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The replica running a read-modify-write refused it; `message` is
    /// what the client reads.
    #[error("{message}")]
    Remote {
        /// RESP error code (`ERR`, `UNAVAILABLE`, …).
        code: String,
        /// The reply text.
        message: String,
    },
}

impl ClusterError {
    /// The RESP error code of this failure.
    pub fn code(&self) -> &str {
        match self {
            ClusterError::Unavailable { .. } => "UNAVAILABLE",
            ClusterError::Store(_) => "ERR",
            ClusterError::Remote { code, .. } => code,
        }
    }
}

/// Why one replica did not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// The call failed or timed out.
    #[error("{rpc} to {peer} failed: {reason}")]
    Call {
        /// The RPC.
        rpc: &'static str,
        /// The peer's node id.
        peer: String,
        /// What went wrong.
        reason: String,
    },
    /// The peer answered something that does not fit the request.
    #[error("{rpc} to {peer}: bad answer: {reason}")]
    BadAnswer {
        /// The RPC.
        rpc: &'static str,
        /// The peer's node id.
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// The peer refused this entry (its version is beyond the peer's
    /// clock bound, or it is too large).
    #[error("{peer} refused the entry")]
    Refused {
        /// The peer's node id.
        peer: String,
    },
    /// The link is shutting down.
    #[error("the link to {0} is closed")]
    Closed(String),
}
