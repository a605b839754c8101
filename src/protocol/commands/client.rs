//! PING, ECHO, CLIENT …, SELECT, QUIT, HELLO, AUTH, CONSISTENCY: the
//! connection itself.

use super::super::command::{Command, CommandError};
use super::super::request::{RespRequest, TextRequest};

type Parsed<'a> = Option<Result<Command<'a>, CommandError>>;

/// The text forms.
pub fn text<'a>(r: &TextRequest<'a>) -> Parsed<'a> {
    let b = str::as_bytes;
    Some(match r.upper.as_str() {
        "PING" => Ok(Command::Ping(r.rest.map(b))),
        "ECHO" => r
            .rest
            .map(|m| Command::Echo(b(m)))
            .ok_or(CommandError::MissingArguments("ECHO")),
        "CLIENT" => match r.args().as_slice() {
            [sub] if sub.eq_ignore_ascii_case("LIST") => Ok(Command::ClientList),
            [] => Err(CommandError::MissingArguments("CLIENT")),
            _ => Err(CommandError::Usage("CLIENT supports: CLIENT LIST")),
        },
        "QUIT" => Ok(Command::Quit),
        "AUTH" => match r.args().as_slice() {
            [password] => Ok(Command::Auth {
                user: None,
                password: b(password),
            }),
            [user, password] => Ok(Command::Auth {
                user: Some(b(user)),
                password: b(password),
            }),
            [] => Err(CommandError::MissingArguments("AUTH")),
            _ => Err(CommandError::Usage(
                "AUTH command usage: AUTH [user] password",
            )),
        },
        "CONSISTENCY" => match r.args().as_slice() {
            [] => Ok(Command::Consistency(None)),
            [level] => Ok(Command::Consistency(Some(b(level)))),
            _ => Err(CommandError::Usage("CONSISTENCY [one|quorum|all]")),
        },
        _ => return None,
    })
}

/// The RESP forms (Redis' arities and errors).
pub fn resp<'a>(r: &mut RespRequest<'a>) -> Parsed<'a> {
    let n = r.len();
    let a = &r.args;
    Some(match r.upper() {
        b"PING" => match a.as_slice() {
            [] => Ok(Command::Ping(None)),
            [m] => Ok(Command::Ping(Some(m))),
            _ => r.arity(false).map(|_| Command::Ping(None)),
        },
        b"ECHO" => r.arity(n == 1).map(|_| Command::Echo(a[0])),
        b"CLIENT" => r.arity(n >= 1).and_then(|_| {
            let sub = a[0].to_ascii_uppercase();
            match (sub.as_slice(), n) {
                (b"LIST", _) => Ok(Command::ClientList),
                (b"SETNAME", 2) => Ok(Command::ClientSetName(a[1])),
                (b"GETNAME", 1) => Ok(Command::ClientGetName),
                (b"ID", 1) => Ok(Command::ClientId),
                (b"SETINFO", 3) => Ok(Command::ClientNoop),
                _ => Err(CommandError::Syntax),
            }
        }),
        b"SELECT" => r.arity(n == 1).map(|_| Command::Select(a[0])),
        b"QUIT" => Ok(Command::Quit),
        b"HELLO" => hello(a),
        b"AUTH" => match a.as_slice() {
            [] => Err(CommandError::WrongArity("auth".into())),
            [password] => Ok(Command::Auth {
                user: None,
                password,
            }),
            [user, password] => Ok(Command::Auth {
                user: Some(user),
                password,
            }),
            _ => Err(CommandError::Syntax),
        },
        b"CONSISTENCY" => r
            .arity(n <= 1)
            .map(|_| Command::Consistency(a.first().copied())),
        _ => return None,
    })
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
fn hello<'a>(args: &[&'a [u8]]) -> Result<Command<'a>, CommandError> {
    let Some((&protover, mut rest)) = args.split_first() else {
        return Ok(Command::Hello {
            protover: None,
            auth: None,
            name: None,
        });
    };
    let (mut name, mut auth) = (None, None);
    while let Some((opt, tail)) = rest.split_first() {
        if opt.eq_ignore_ascii_case(b"AUTH") && tail.len() >= 2 {
            auth = Some(Box::new((tail[0], tail[1])));
            rest = &tail[2..];
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && !tail.is_empty() {
            name = Some(tail[0]);
            rest = &tail[1..];
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(Command::Hello {
        protover: Some(protover),
        auth,
        name,
    })
}
