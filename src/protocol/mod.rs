//! Client protocols on the client port: the MerkleKV text protocol and RESP2,
//! both parsed into one borrowed [`Command`], answered through [`ReplyBuf`].

pub mod command;
pub(crate) mod commands;
pub(crate) mod glob;
pub mod reply;
pub(crate) mod request;
pub mod resp;
pub mod text;

pub use command::{
    Command, CommandError, CommandQuery, ExpireSpec, ListFilter, ReplicateAction, SetArgs,
    SetReply, SyncFlags, TtlReport,
};
pub use reply::{PairValue, Protocol, ReplyBuf};
