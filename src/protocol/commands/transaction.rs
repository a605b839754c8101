//! MULTI, EXEC, DISCARD (RESP only).

use super::super::command::{Command, CommandError};
use super::super::request::RespRequest;

type Parsed<'a> = Option<Result<Command<'a>, CommandError>>;

/// The RESP forms.
pub fn resp<'a>(r: &mut RespRequest<'a>) -> Parsed<'a> {
    let n = r.len();
    Some(match r.upper() {
        b"MULTI" => r.arity(n == 0).map(|_| Command::Multi),
        b"EXEC" => r.arity(n == 0).map(|_| Command::Exec),
        b"DISCARD" => r.arity(n == 0).map(|_| Command::Discard),
        _ => return None,
    })
}
