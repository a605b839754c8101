//! The client server: listener, connections, command dispatch. The hooks
//! through which replication, anti-entropy and durability plug in live in
//! [`crate::hooks`].

pub mod clients;
pub mod connection;
pub mod context;
pub mod dispatch;
pub mod idle_poll;
pub mod listener;
pub mod stats;
pub mod striped;
pub mod transaction;

pub use context::{Limits, ServerContext};
pub use listener::ClientListener;
