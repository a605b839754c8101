//! A request split into its command word and arguments, for the family
//! parsers in [`commands`](super::commands): [`TextRequest`] for a text
//! line, [`RespRequest`] for a RESP array.

use super::command::{Command, CommandError};

/// One text-protocol line: the command word and the rest of the line.
pub struct TextRequest<'a> {
    /// The command word in upper case.
    pub upper: String,
    /// The command word as sent.
    pub word: &'a str,
    /// Everything after the first space (`None`: no arguments).
    pub rest: Option<&'a str>,
}

impl<'a> TextRequest<'a> {
    /// The arguments, split on runs of spaces.
    pub fn args(&self) -> Vec<&'a str> {
        self.rest
            .map(|r| r.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// `cmd` when the line has no arguments, else `usage`.
    pub fn no_args(
        &self,
        usage: &'static str,
        cmd: Command<'a>,
    ) -> Result<Command<'a>, CommandError> {
        match self.rest {
            None => Ok(cmd),
            Some(_) => Err(CommandError::Usage(usage)),
        }
    }

    /// Exactly one key (no spaces or tabs).
    pub fn one_key(
        &self,
        name: &'static str,
        usage: &'static str,
    ) -> Result<&'a str, CommandError> {
        let rest = self
            .rest
            .map(str::trim_start)
            .filter(|r| !r.is_empty())
            .ok_or(CommandError::MissingArguments(name))?;
        if rest.contains([' ', '\t']) {
            return Err(CommandError::Usage(usage));
        }
        Ok(rest)
    }

    /// A key, one space, then the value: everything after that space,
    /// leading spaces included.
    pub fn key_value(&self, usage: &'static str) -> Result<(&'a str, &'a str), CommandError> {
        let rest = self.rest.ok_or(CommandError::Usage(usage))?;
        let rest = rest.trim_start_matches(' ');
        let (key, value) = rest.split_once(' ').ok_or(CommandError::Usage(usage))?;
        if key.is_empty() || key.contains('\t') {
            return Err(CommandError::Usage(usage));
        }
        Ok((key, value))
    }
}

/// One RESP request: the command name and its arguments.
pub struct RespRequest<'a> {
    /// The command name as sent.
    pub name: &'a [u8],
    /// Its first 16 bytes in upper case (no command is longer).
    upper: [u8; 16],
    upper_len: usize,
    /// The arguments; a family parser may take them (`std::mem::take`).
    pub args: Vec<&'a [u8]>,
}

impl<'a> RespRequest<'a> {
    /// A request for `name` with `args`.
    pub fn new(name: &'a [u8], args: Vec<&'a [u8]>) -> Self {
        let mut upper = [0u8; 16];
        for (d, s) in upper.iter_mut().zip(name) {
            *d = s.to_ascii_uppercase();
        }
        Self {
            name,
            upper,
            upper_len: name.len().min(16),
            args,
        }
    }

    /// The command name in upper case (cut at 16 bytes).
    pub fn upper(&self) -> &[u8] {
        &self.upper[..self.upper_len]
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// `Ok` when the argument count is right, else Redis' arity error.
    pub fn arity(&self, ok: bool) -> Result<(), CommandError> {
        if ok {
            Ok(())
        } else {
            Err(CommandError::WrongArity(
                String::from_utf8_lossy(self.name).to_ascii_lowercase(),
            ))
        }
    }
}

/// A RESP integer argument (Redis' error otherwise).
pub fn int(arg: &[u8]) -> Result<i64, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(CommandError::NotAnInteger)
}

/// A `SYNC` port: 1..=65535.
pub fn sync_port(port: &[u8]) -> Result<u16, CommandError> {
    std::str::from_utf8(port)
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0)
        .ok_or(CommandError::BadPort)
}
