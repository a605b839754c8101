//! VERSION, INFO, STATS, MEMORY, SYNC, REPLICATE, SHUTDOWN, COMMAND,
//! CONFIG GET, LASTSAVE: the node.

use super::super::command::{
    Command, CommandError, CommandQuery, ListFilter, ReplicateAction, SyncFlags,
};
use super::super::request::{sync_port, RespRequest, TextRequest};

type Parsed<'a> = Option<Result<Command<'a>, CommandError>>;

/// The text forms.
pub fn text<'a>(r: &TextRequest<'a>) -> Parsed<'a> {
    Some(match r.upper.as_str() {
        "VERSION" => r.no_args("VERSION command takes no arguments", Command::Version),
        "INFO" => Ok(Command::Info),
        "STATS" => r.no_args("STATS command takes no arguments", Command::Stats),
        "MEMORY" => r.no_args("MEMORY command takes no arguments", Command::Memory),
        "SYNC" => text_sync(r),
        "REPLICATE" => match r.args().as_slice() {
            [] => Err(CommandError::MissingArguments("REPLICATE")),
            [a] => replicate_action(a.as_bytes()).ok_or(CommandError::Usage(
                "REPLICATE command usage: REPLICATE enable|disable|status",
            )),
            _ => Err(CommandError::Usage(
                "REPLICATE command usage: REPLICATE enable|disable|status",
            )),
        },
        "SHUTDOWN" => r.no_args("SHUTDOWN command takes no arguments", Command::Shutdown),
        _ => return None,
    })
}

const SYNC_USAGE: &str = "SYNC command usage: SYNC host port [--merge] [--full] [--verbose]";

/// `SYNC host port [--merge] [--full] [--verbose]`.
fn text_sync<'a>(r: &TextRequest<'a>) -> Result<Command<'a>, CommandError> {
    let a = r.args();
    let (host, port, rest) = match a.as_slice() {
        [] => return Err(CommandError::MissingArguments("SYNC")),
        [h, p, rest @ ..] => (*h, *p, rest),
        _ => return Err(CommandError::Usage(SYNC_USAGE)),
    };
    let flags = SyncFlags::parse(rest.iter().map(|w| w.as_bytes()))
        .ok_or(CommandError::Usage(SYNC_USAGE))?;
    let port = sync_port(port.as_bytes())?;
    Ok(Command::Sync { host, port, flags })
}

/// `enable` / `disable` / `status`, in any case.
fn replicate_action(word: &[u8]) -> Option<Command<'static>> {
    let action = if word.eq_ignore_ascii_case(b"enable") {
        ReplicateAction::Enable
    } else if word.eq_ignore_ascii_case(b"disable") {
        ReplicateAction::Disable
    } else if word.eq_ignore_ascii_case(b"status") {
        ReplicateAction::Status
    } else {
        return None;
    };
    Some(Command::Replicate(action))
}

/// The RESP forms (Redis' arities and errors).
pub fn resp<'a>(r: &mut RespRequest<'a>) -> Parsed<'a> {
    let n = r.len();
    let a = &r.args;
    Some(match r.upper() {
        b"VERSION" => Ok(Command::Version),
        b"INFO" => Ok(Command::Info),
        b"STATS" => Ok(Command::Stats),
        b"MEMORY" => Ok(Command::Memory),
        b"SYNC" => r.arity(n >= 2).and_then(|_| {
            let host = std::str::from_utf8(a[0]).map_err(|_| CommandError::InvalidUtf8)?;
            let port = sync_port(a[1])?;
            let flags = SyncFlags::parse(a[2..].iter().copied()).ok_or(CommandError::Syntax)?;
            Ok(Command::Sync { host, port, flags })
        }),
        b"REPLICATE" => r
            .arity(n == 1)
            .and_then(|_| replicate_action(a[0]).ok_or(CommandError::Syntax)),
        b"SHUTDOWN" => Ok(Command::Shutdown),
        b"COMMAND" => command_query(a).map(Command::CommandInfo),
        b"LASTSAVE" => r.arity(n == 0).map(|_| Command::LastSave),
        b"CONFIG" => r.arity(n >= 2).and_then(|_| {
            if !a[0].eq_ignore_ascii_case(b"GET") {
                return Err(CommandError::Syntax);
            }
            Ok(Command::ConfigGet(a[1]))
        }),
        _ => return None,
    })
}

/// `COMMAND [COUNT | LIST [FILTERBY …] | INFO [name…] | DOCS [name…] | HELP]`,
/// with Redis 7's errors.
fn command_query<'a>(args: &[&'a [u8]]) -> Result<CommandQuery<'a>, CommandError> {
    let Some((sub, rest)) = args.split_first() else {
        return Ok(CommandQuery::All);
    };
    let arity = |name: &str| CommandError::WrongArity(format!("command|{name}"));
    match sub.to_ascii_uppercase().as_slice() {
        b"COUNT" if rest.is_empty() => Ok(CommandQuery::Count),
        b"COUNT" => Err(arity("count")),
        b"HELP" if rest.is_empty() => Ok(CommandQuery::Help),
        b"HELP" => Err(arity("help")),
        b"INFO" if rest.is_empty() => Ok(CommandQuery::All),
        b"INFO" => Ok(CommandQuery::Info(rest.to_vec())),
        b"DOCS" => Ok(CommandQuery::Docs(rest.to_vec())),
        b"LIST" => match rest {
            [] => Ok(CommandQuery::List(ListFilter::All)),
            [filterby, kind, value] if filterby.eq_ignore_ascii_case(b"FILTERBY") => {
                let filter = match kind.to_ascii_uppercase().as_slice() {
                    b"MODULE" => ListFilter::Module,
                    b"ACLCAT" => ListFilter::AclCategory(value),
                    b"PATTERN" => ListFilter::Pattern(value),
                    _ => return Err(CommandError::Syntax),
                };
                Ok(CommandQuery::List(filter))
            }
            _ => Err(CommandError::Syntax),
        },
        _ => Err(CommandError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "COMMAND",
        }),
    }
}
