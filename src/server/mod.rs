//! The client server: listener, connections, command dispatch. The hooks
//! through which replication, anti-entropy and durability plug in live in
//! [`crate::hooks`].

pub mod action;
pub mod auth;
pub mod clients;
pub mod commands;
pub mod connection;
pub mod context;
pub mod dispatch;
pub mod grpc_kv;
pub mod idle_poll;
pub mod info;
pub mod listener;
pub mod replies;
pub mod request_ids;
pub mod routed_batch;
pub mod run;
pub mod session;
pub mod stats;
pub mod striped;
pub mod transaction;

pub use context::{Limits, ServerContext};
pub use listener::ClientListener;
