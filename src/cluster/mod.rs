//! The partitioned cluster (issue 14), a layer between the client server
//! and the store. So far it holds the consistent-hash [`ring`]: who
//! replicates a key. Membership, the coordinator and quorums build on it
//! (see docs/cluster.md for what exists and what is still to come).

pub mod ring;

pub use ring::{Replicas, Ring, MAX_REPLICATION_FACTOR};
