//! How each command family is written on the wire, in both protocols: per
//! family one file with a `text` parser (a [`TextRequest`]) and a `resp`
//! parser (a [`RespRequest`]). Each returns `None` for a command word
//! that is not its own, so [`text::parse_line`](super::text::parse_line)
//! and [`resp::to_command`](super::resp::to_command) ask the families in
//! turn. The families match the handlers' in `server/commands/`.
//!
//! [`TextRequest`]: super::request::TextRequest
//! [`RespRequest`]: super::request::RespRequest

pub mod admin;
pub mod breadth;
pub mod client;
pub mod expiry;
pub mod keyspace;
pub mod strings;
pub mod transaction;
