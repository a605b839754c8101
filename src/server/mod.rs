//! The client server: listener, connections, command dispatch, and the
//! hooks through which replication, anti-entropy and durability plug in.

pub mod clients;
pub mod connection;
pub mod context;
pub mod dispatch;
pub mod idle_poll;
pub mod listener;
pub mod stats;
pub mod striped;
pub mod transaction;

pub use context::{
    ChangeSink, Durability, Hooks, Limits, ReplicationControl, ServerContext, SyncRunner,
};
pub use listener::ClientListener;
