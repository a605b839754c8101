//! MerkleKV: an eventually consistent, distributed key-value store.
//!
//! By default every node holds a full replica: clients speak the MerkleKV
//! text protocol or RESP2 on the client port, writes are replicated over
//! MQTT and replicas heal through Merkle-tree anti-entropy over gRPC. With a
//! replication factor the keys are partitioned over a consistent-hash ring
//! instead ([`cluster`]).

#![warn(missing_docs)]

pub mod config;

/// Code generated from `proto/merklekv.proto`.
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("merklekv.v1");

    /// Encoded file descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("merklekv_descriptor");
}
pub mod clock;
pub mod cluster;
pub(crate) mod hooks;
pub mod logging;
pub(crate) mod metrics;
pub mod node;
pub(crate) mod persistence;
pub(crate) mod process;
pub mod protocol;
pub(crate) mod replication;
pub(crate) mod server;
pub mod store;
pub(crate) mod subsystem;
pub mod sync;
