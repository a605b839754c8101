//! Reply encoding for both protocols into one output buffer.
//!
//! Each method appends one complete reply; the connection writes the buffer
//! once per read cycle, so a reply is never split across writes.

use std::io::Write as _;

use crate::store::is_line_safe;

/// Which protocol a connection speaks (decided by its first byte; a RESP
/// connection switches to RESP3 reply types with `HELLO 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MerkleKV text protocol.
    Text,
    /// RESP2.
    Resp,
}

/// The text-protocol error for a stored value or key containing `\r` or
/// `\n` (written through RESP, which is binary-safe).
pub const UNFRAMEABLE: &[u8] =
    b"ERROR value contains CR or LF and cannot be sent as a text line: read it over RESP";

/// A value in [`ReplyBuf::pairs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairValue<'a> {
    /// A bulk string.
    Bulk(&'a [u8]),
    /// An integer.
    Int(i64),
    /// An empty array (`modules` in `HELLO`).
    EmptyArray,
}

/// An output buffer that encodes replies for one protocol.
#[derive(Debug)]
pub struct ReplyBuf {
    proto: Protocol,
    /// RESP3 reply types (`_` nulls, `%` maps) after `HELLO 3`.
    resp3: bool,
    buf: Vec<u8>,
}

impl ReplyBuf {
    /// An empty buffer for `proto`.
    pub fn new(proto: Protocol) -> Self {
        Self {
            proto,
            resp3: false,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Switches a RESP connection between RESP2 (`false`) and RESP3 reply
    /// types (`true`); no effect on the text protocol.
    pub fn set_resp3(&mut self, on: bool) {
        self.resp3 = on && self.proto == Protocol::Resp;
    }

    /// Whether RESP3 reply types are in use.
    pub fn is_resp3(&self) -> bool {
        self.resp3
    }

    /// The protocol in use.
    pub fn protocol(&self) -> Protocol {
        self.proto
    }

    /// The encoded bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes buffered.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes the buffer holds allocated (what a client's replies cost).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// An empty buffer encoding as this one does (protocol, RESP3), for
    /// replies produced apart and appended later in order.
    pub fn sibling(&self) -> Self {
        Self {
            proto: self.proto,
            resp3: self.resp3,
            buf: Vec::with_capacity(64),
        }
    }

    /// Appends the replies `other` holds.
    pub fn extend_from(&mut self, other: &ReplyBuf) {
        self.buf.extend_from_slice(other.as_bytes());
    }

    /// Drops the buffered bytes (keeps the allocation, shrinking huge ones).
    pub fn clear(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > 4 << 20 {
            self.buf.shrink_to(4096);
        }
    }

    fn line(&mut self, parts: &[&[u8]]) {
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The text reply for a value or key that holds `\r` or `\n` (only
    /// RESP can write those): sending it raw would split one reply into
    /// several lines and desynchronise the client.
    fn unframeable(&mut self) {
        self.line(&[UNFRAMEABLE]);
    }

    fn bulk(&mut self, v: &[u8]) {
        let _ = write!(self.buf, "${}\r\n", v.len());
        self.buf.extend_from_slice(v);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn int(&mut self, n: i64) {
        let _ = write!(self.buf, ":{n}\r\n");
    }

    fn array_header(&mut self, n: usize) {
        let _ = write!(self.buf, "*{n}\r\n");
    }

    /// The header of a RESP array of `n` replies that follow (`EXEC`); no
    /// bytes on the text protocol.
    pub fn array_start(&mut self, n: usize) {
        if self.proto == Protocol::Resp {
            self.array_header(n);
        }
    }

    /// Pre-encoded RESP (the command table's entries), as is; nothing on
    /// the text protocol, which has no such replies.
    pub fn raw_resp(&mut self, bytes: &[u8]) {
        if self.proto == Protocol::Resp {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// `OK` / `+OK`.
    pub fn ok(&mut self) {
        match self.proto {
            Protocol::Text => self.line(&[b"OK"]),
            Protocol::Resp => self.line(&[b"+OK"]),
        }
    }

    /// A GET result: `VALUE v` / `NOT_FOUND`; bulk / nil.
    pub fn value(&mut self, v: Option<&[u8]>) {
        match (self.proto, v) {
            (Protocol::Text, Some(v)) if !is_line_safe(v) => self.unframeable(),
            (Protocol::Text, Some(v)) => self.line(&[b"VALUE ", v]),
            (Protocol::Text, None) => self.line(&[b"NOT_FOUND"]),
            (Protocol::Resp, Some(v)) => self.bulk(v),
            (Protocol::Resp, None) if self.resp3 => self.line(&[b"_"]),
            (Protocol::Resp, None) => self.line(&[b"$-1"]),
        }
    }

    /// A DEL result: `DELETED` / `NOT_FOUND`; `:n`.
    pub fn deleted(&mut self, n: u64) {
        match self.proto {
            Protocol::Text if n > 0 => self.line(&[b"DELETED"]),
            Protocol::Text => self.line(&[b"NOT_FOUND"]),
            Protocol::Resp => self.int(n as i64),
        }
    }

    /// An INC/DEC result: `VALUE n`; `:n`.
    pub fn number(&mut self, n: i64) {
        match self.proto {
            Protocol::Text => {
                let _ = write!(self.buf, "VALUE {n}\r\n");
            }
            Protocol::Resp => self.int(n),
        }
    }

    /// A TTL result: `TTL n`; `:n` (`-1`: no deadline, `-2`: no key).
    pub fn ttl(&mut self, n: i64) {
        match self.proto {
            Protocol::Text => {
                let _ = write!(self.buf, "TTL {n}\r\n");
            }
            Protocol::Resp => self.int(n),
        }
    }

    /// Whether a keyed change (EXPIRE, PERSIST) happened: `OK` /
    /// `NOT_FOUND`; `:1` / `:0`.
    pub fn changed(&mut self, done: bool) {
        match self.proto {
            Protocol::Text if done => self.line(&[b"OK"]),
            Protocol::Text => self.line(&[b"NOT_FOUND"]),
            Protocol::Resp => self.int(i64::from(done)),
        }
    }

    /// An APPEND/PREPEND result: `VALUE <new value>`; `:<new length>`.
    pub fn appended(&mut self, v: &[u8]) {
        match self.proto {
            Protocol::Text if !is_line_safe(v) => self.unframeable(),
            Protocol::Text => self.line(&[b"VALUE ", v]),
            Protocol::Resp => self.int(v.len() as i64),
        }
    }

    /// An MGET result, one item per requested key.
    pub fn mget(&mut self, items: &[(&[u8], Option<Vec<u8>>)]) {
        match self.proto {
            Protocol::Text => {
                let found = items.iter().filter(|(_, v)| v.is_some()).count();
                if found == 0 {
                    return self.line(&[b"NOT_FOUND"]);
                }
                if items
                    .iter()
                    .any(|(_, v)| v.as_deref().is_some_and(|v| !is_line_safe(v)))
                {
                    return self.unframeable();
                }
                let _ = write!(self.buf, "VALUES {found}\r\n");
                for (k, v) in items {
                    match v {
                        Some(v) => self.line(&[k, b" ", v]),
                        None => self.line(&[k, b" NOT_FOUND"]),
                    }
                }
            }
            Protocol::Resp => {
                self.array_header(items.len());
                for (_, v) in items {
                    self.value(v.as_deref());
                }
            }
        }
    }

    /// An EXISTS result: `EXISTS n`; `:n`.
    pub fn exists(&mut self, n: u64) {
        match self.proto {
            Protocol::Text => {
                let _ = write!(self.buf, "EXISTS {n}\r\n");
            }
            Protocol::Resp => self.int(n as i64),
        }
    }

    /// A SCAN/KEYS result: `KEYS n` then one key per line; an array.
    pub fn keys(&mut self, keys: &[Box<[u8]>]) {
        match self.proto {
            Protocol::Text if keys.iter().any(|k| !is_line_safe(k)) => self.unframeable(),
            Protocol::Text => {
                let _ = write!(self.buf, "KEYS {}\r\n", keys.len());
                for k in keys {
                    self.line(&[k]);
                }
            }
            Protocol::Resp => {
                self.array_header(keys.len());
                for k in keys {
                    self.bulk(k);
                }
            }
        }
    }

    /// A DBSIZE result.
    pub fn dbsize(&mut self, n: u64) {
        match self.proto {
            Protocol::Text => {
                let _ = write!(self.buf, "DBSIZE {n}\r\n");
            }
            Protocol::Resp => self.int(n as i64),
        }
    }

    /// A PING reply.
    pub fn pong(&mut self, msg: Option<&[u8]>) {
        match (self.proto, msg) {
            (Protocol::Text, None) => self.line(&[b"PONG"]),
            (Protocol::Text, Some(m)) => self.line(&[b"PONG ", m]),
            (Protocol::Resp, None) => self.line(&[b"+PONG"]),
            (Protocol::Resp, Some(m)) => self.bulk(m),
        }
    }

    /// An ECHO reply.
    pub fn echo(&mut self, msg: &[u8]) {
        match self.proto {
            Protocol::Text => self.line(&[b"ECHO ", msg]),
            Protocol::Resp => self.bulk(msg),
        }
    }

    /// A one-line status reply: text `<word> <rest>`; RESP simple string of
    /// the same text (newlines replaced by spaces).
    pub fn status(&mut self, text: &str) {
        match self.proto {
            Protocol::Text => self.line(&[text.as_bytes()]),
            Protocol::Resp => {
                let clean = text.replace(['\r', '\n'], " ");
                self.line(&[b"+", clean.as_bytes()]);
            }
        }
    }

    /// A titled block of lines (INFO, STATS, CLIENT LIST): text = the title
    /// line, then each line (`end` appended when given); RESP = one bulk
    /// string of the lines.
    pub fn block(&mut self, title: &str, lines: &[String], end: Option<&str>) {
        match self.proto {
            Protocol::Text => {
                self.line(&[title.as_bytes()]);
                for l in lines {
                    self.line(&[l.as_bytes()]);
                }
                if let Some(e) = end {
                    self.line(&[e.as_bytes()]);
                }
            }
            Protocol::Resp => {
                let mut body = String::new();
                for l in lines {
                    body.push_str(l);
                    body.push_str("\r\n");
                }
                self.bulk(body.as_bytes());
            }
        }
    }

    /// A bulk string (RESP) or a `VALUE`-less line (text).
    pub fn bulk_or_line(&mut self, v: &[u8]) {
        match self.proto {
            Protocol::Text => self.line(&[v]),
            Protocol::Resp => self.bulk(v),
        }
    }

    /// A RESP integer (text: the bare number).
    pub fn integer(&mut self, n: i64) {
        match self.proto {
            Protocol::Text => {
                let _ = write!(self.buf, "{n}\r\n");
            }
            Protocol::Resp => self.int(n),
        }
    }

    /// A RESP array of bulk strings (text: one per line).
    pub fn string_array(&mut self, items: &[&[u8]]) {
        match self.proto {
            Protocol::Text => items.iter().for_each(|i| self.line(&[i])),
            Protocol::Resp => {
                self.array_header(items.len());
                items.iter().for_each(|i| self.bulk(i));
            }
        }
    }

    /// Name/value pairs: a RESP3 map, a flat RESP2 array (`CONFIG GET`,
    /// `HELLO`); text: `name:value` lines.
    pub fn pairs(&mut self, items: &[(&[u8], PairValue<'_>)]) {
        match self.proto {
            Protocol::Text => {
                for (k, v) in items {
                    match v {
                        PairValue::Bulk(v) => self.line(&[k, b":", v]),
                        PairValue::Int(n) => {
                            let _ = write!(self.buf, "{}:{n}\r\n", String::from_utf8_lossy(k));
                        }
                        PairValue::EmptyArray => self.line(&[k, b":"]),
                    }
                }
            }
            Protocol::Resp => {
                if self.resp3 {
                    let _ = write!(self.buf, "%{}\r\n", items.len());
                } else {
                    self.array_header(items.len() * 2);
                }
                for (k, v) in items {
                    self.bulk(k);
                    match v {
                        PairValue::Bulk(v) => self.bulk(v),
                        PairValue::Int(n) => self.int(*n),
                        PairValue::EmptyArray => self.array_header(0),
                    }
                }
            }
        }
    }

    /// A Redis `SCAN` page: `[cursor, [keys…]]` (text: the `SCAN` reply).
    pub fn scan_page(&mut self, cursor: u64, keys: &[Box<[u8]>]) {
        match self.proto {
            Protocol::Text => self.keys(keys),
            Protocol::Resp => {
                self.array_header(2);
                self.bulk(cursor.to_string().as_bytes());
                self.keys(keys);
            }
        }
    }

    /// A RESP nil bulk (text: `NOT_FOUND`).
    pub fn nil(&mut self) {
        self.value(None);
    }

    /// An error: `ERROR msg`; `-ERR msg`.
    pub fn error(&mut self, msg: &str) {
        self.error_with_code("ERR", msg);
    }

    /// An error with a Redis error code (`NOPROTO`, `EXECABORT`, …): text
    /// `ERROR msg`; RESP `-CODE msg`.
    pub fn error_with_code(&mut self, code: &str, msg: &str) {
        let clean = msg.replace(['\r', '\n'], " ");
        match self.proto {
            Protocol::Text => self.line(&[b"ERROR ", clean.as_bytes()]),
            Protocol::Resp => self.line(&[b"-", code.as_bytes(), b" ", clean.as_bytes()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut ReplyBuf)) -> String {
        let mut r = ReplyBuf::new(Protocol::Text);
        f(&mut r);
        String::from_utf8(r.as_bytes().to_vec()).expect("utf8")
    }

    fn resp(f: impl FnOnce(&mut ReplyBuf)) -> String {
        let mut r = ReplyBuf::new(Protocol::Resp);
        f(&mut r);
        String::from_utf8(r.as_bytes().to_vec()).expect("utf8")
    }

    #[test]
    fn text_shapes() {
        assert_eq!(text(|r| r.ok()), "OK\r\n");
        assert_eq!(text(|r| r.value(Some(b"v"))), "VALUE v\r\n");
        assert_eq!(text(|r| r.value(None)), "NOT_FOUND\r\n");
        assert_eq!(text(|r| r.deleted(1)), "DELETED\r\n");
        assert_eq!(text(|r| r.deleted(0)), "NOT_FOUND\r\n");
        assert_eq!(text(|r| r.number(-3)), "VALUE -3\r\n");
        assert_eq!(text(|r| r.pong(None)), "PONG\r\n");
        assert_eq!(text(|r| r.pong(Some(b"x y"))), "PONG x y\r\n");
        assert_eq!(
            text(|r| r.mget(&[(b"a", Some(b"1".to_vec())), (b"b", None)])),
            "VALUES 1\r\na 1\r\nb NOT_FOUND\r\n"
        );
        assert_eq!(text(|r| r.mget(&[(b"a", None)])), "NOT_FOUND\r\n");
        assert_eq!(
            text(|r| r.keys(&[b"a"[..].into(), b"b"[..].into()])),
            "KEYS 2\r\na\r\nb\r\n"
        );
        assert_eq!(text(|r| r.error("bad\r\nthing")), "ERROR bad  thing\r\n");
    }

    #[test]
    fn resp_shapes() {
        assert_eq!(resp(|r| r.ok()), "+OK\r\n");
        assert_eq!(resp(|r| r.value(Some(b"v"))), "$1\r\nv\r\n");
        assert_eq!(resp(|r| r.value(None)), "$-1\r\n");
        assert_eq!(resp(|r| r.deleted(2)), ":2\r\n");
        assert_eq!(resp(|r| r.appended(b"abc")), ":3\r\n");
        assert_eq!(
            resp(|r| r.mget(&[(b"a", Some(b"1".to_vec())), (b"b", None)])),
            "*2\r\n$1\r\n1\r\n$-1\r\n"
        );
        assert_eq!(resp(|r| r.pong(None)), "+PONG\r\n");
        assert_eq!(resp(|r| r.error("x")), "-ERR x\r\n");
        assert_eq!(
            resp(|r| r.error_with_code("NOPROTO", "x")),
            "-NOPROTO x\r\n"
        );
        assert_eq!(
            resp(|r| r.scan_page(0, &[b"a"[..].into()])),
            "*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n"
        );
        assert_eq!(
            resp(|r| r.pairs(&[(b"a", PairValue::Bulk(b"b")), (b"n", PairValue::Int(3))])),
            "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nn\r\n:3\r\n"
        );
    }

    #[test]
    fn resp3_shapes() {
        let resp3 = |f: &dyn Fn(&mut ReplyBuf)| {
            let mut r = ReplyBuf::new(Protocol::Resp);
            r.set_resp3(true);
            f(&mut r);
            String::from_utf8(r.as_bytes().to_vec()).expect("utf8")
        };
        assert_eq!(resp3(&|r| r.value(None)), "_\r\n");
        assert_eq!(resp3(&|r| r.value(Some(b"v"))), "$1\r\nv\r\n");
        assert_eq!(resp3(&|r| r.mget(&[(b"a", None)])), "*1\r\n_\r\n");
        assert_eq!(
            resp3(&|r| r.pairs(&[(b"a", PairValue::Bulk(b"b")), (b"m", PairValue::EmptyArray)])),
            "%2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nm\r\n*0\r\n"
        );
        let mut text = ReplyBuf::new(Protocol::Text);
        text.set_resp3(true);
        assert!(!text.is_resp3());
    }
}
