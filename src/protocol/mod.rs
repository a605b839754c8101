//! Client protocols on the client port: the MerkleKV text protocol and RESP2,
//! both parsed into one borrowed [`Command`], answered through [`ReplyBuf`].

pub mod command;
pub mod commands;
pub mod glob;
pub mod reply;
pub mod request;
pub mod resp;
pub mod text;

pub use command::{Command, CommandError, ReplicateAction};
pub use reply::{PairValue, Protocol, ReplyBuf};
