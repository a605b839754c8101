//! What an anti-entropy round can fail with.

use crate::hooks::SyncRequestError;
use crate::store::{StoreError, TreeShape};

/// Why a round failed. Every variant leaves the local store consistent:
/// whatever was merged before the failure is a valid last-writer-wins state.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The peer address is not `host:port`.
    #[error("invalid peer address '{0}' (expected host:port)")]
    BadAddress(String),
    /// A call failed: connection refused, timeout, or an error status.
    #[error("{rpc} failed: {code:?}: {message}")]
    Rpc {
        /// The RPC that failed.
        rpc: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message and its cause.
        message: String,
    },
    /// The peer's tree has another shape: summaries would not line up.
    #[error(
        "peer tree shape (fanout {}, depth {}) differs from ours (fanout {}, depth {}); refusing to compare",
        theirs.fanout, theirs.depth, ours.fanout, ours.depth
    )]
    ShapeMismatch {
        /// Our shape.
        ours: TreeShape,
        /// The peer's shape.
        theirs: TreeShape,
    },
    /// The peer answered something that breaks the protocol (wrong sizes,
    /// keys outside what was asked, pages that do not advance, …).
    #[error("peer sent an invalid {rpc} response: {reason}")]
    Protocol {
        /// The RPC whose response was refused.
        rpc: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The local store refused a merge (memory limit, disk error).
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    /// A local worker task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SyncError {
    /// An RPC error from a tonic status, keeping its cause chain readable.
    pub fn rpc(rpc: &'static str, status: tonic::Status) -> Self {
        let mut message = status.message().to_owned();
        let mut source = std::error::Error::source(&status);
        let mut depth = 0;
        while let Some(cause) = source {
            if depth >= 4 {
                break;
            }
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
            depth += 1;
        }
        SyncError::Rpc {
            rpc,
            code: status.code(),
            message,
        }
    }

    /// A protocol violation by the peer.
    pub fn protocol(rpc: &'static str, reason: impl Into<String>) -> Self {
        SyncError::Protocol {
            rpc,
            reason: reason.into(),
        }
    }

    /// A short label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::BadAddress(_) => "bad_address",
            SyncError::Rpc { code, .. } => match code {
                tonic::Code::Unavailable => "unavailable",
                tonic::Code::Cancelled | tonic::Code::DeadlineExceeded => "timeout",
                _ => "rpc_error",
            },
            SyncError::ShapeMismatch { .. } => "shape_mismatch",
            SyncError::Protocol { .. } => "protocol",
            SyncError::Store(_) => "store",
            SyncError::Internal(_) => "internal",
        }
    }
}

impl From<SyncError> for SyncRequestError {
    fn from(e: SyncError) -> Self {
        let text = e.to_string();
        match e {
            SyncError::BadAddress(_) => SyncRequestError::BadAddress(text),
            SyncError::Rpc {
                code:
                    tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::DeadlineExceeded,
                ..
            } => SyncRequestError::Unreachable(text),
            SyncError::Rpc { .. }
            | SyncError::ShapeMismatch { .. }
            | SyncError::Protocol { .. } => SyncRequestError::Refused(text),
            SyncError::Store(_) | SyncError::Internal(_) => SyncRequestError::Local(text),
        }
    }
}

/// A proto message that cannot be turned into store types.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    /// A required field is absent.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A summary hash is not 16 bytes.
    #[error("summary hash must be 16 bytes, got {0}")]
    HashLength(usize),
    /// A tombstone that carries a value.
    #[error("tombstone with a value")]
    TombstoneWithValue,
}
