//! A read-modify-write on the wire: how the coordinator asks a key's
//! primary to run one (`Replica/Execute`) and reads the answer back, and how
//! the primary reads the request.

use std::num::NonZeroU64;

use super::rmw::Rmw;
use crate::config::Consistency;
use crate::proto;
use crate::proto::execute_request::Kind;
use crate::proto::execute_response::Outcome;
use crate::store::{ExpireWhen, SetWhen, Ttl, WriteResult};

/// The `Execute` request for `rmw` at `level`.
pub fn to_request(rmw: Rmw<'_>, level: Consistency) -> proto::ExecuteRequest {
    let mut request = proto::ExecuteRequest {
        key: rmw.key().to_vec(),
        consistency: level.as_str().to_owned(),
        ..Default::default()
    };
    match rmw {
        Rmw::Increment(_, delta) => {
            request.kind = Kind::Increment as i32;
            request.delta = delta;
        }
        Rmw::Append(_, v, safe) | Rmw::Prepend(_, v, safe) => {
            request.kind = if matches!(rmw, Rmw::Append(..)) {
                Kind::Append
            } else {
                Kind::Prepend
            } as i32;
            request.operand = v.to_vec();
            request.line_safe = safe;
        }
        Rmw::SetWith {
            value, ttl, when, ..
        } => {
            request.kind = Kind::SetWith as i32;
            request.operand = value.to_vec();
            match ttl {
                Ttl::Clear => {}
                Ttl::Keep => request.keep_ttl = true,
                Ttl::At(d) => request.deadline_unix_ms = d.get(),
            }
            request.condition = match when {
                SetWhen::Always => 0,
                SetWhen::Absent => 1,
                SetWhen::Present => 2,
            };
        }
        Rmw::GetDel(_) => request.kind = Kind::GetDel as i32,
        Rmw::IncrementFloat(_, delta) => {
            request.kind = Kind::IncrementFloat as i32;
            request.operand = delta.to_vec();
        }
        Rmw::SetRange { offset, bytes, .. } => {
            request.kind = Kind::SetRange as i32;
            request.delta = i64::try_from(offset).unwrap_or(i64::MAX);
            request.operand = bytes.to_vec();
        }
        Rmw::Expire { deadline, when, .. } => {
            request.kind = Kind::Expire as i32;
            request.deadline_unix_ms = deadline.map_or(0, NonZeroU64::get);
            request.condition = match when {
                ExpireWhen::Always => 0,
                ExpireWhen::NoDeadline => 1,
                ExpireWhen::HasDeadline => 2,
                ExpireWhen::Later => 3,
                ExpireWhen::Earlier => 4,
                ExpireWhen::HasDeadlineEarlier => 5,
            };
        }
    }
    request
}

/// The read-modify-write an `Execute` request asks for (`None` for
/// `FLUSH`, which is not one); a condition out of range is an error.
pub fn from_request(req: &proto::ExecuteRequest) -> Result<Option<Rmw<'_>>, String> {
    let kind = Kind::try_from(req.kind).map_err(|_| format!("unknown kind {}", req.kind))?;
    let deadline = NonZeroU64::new(req.deadline_unix_ms);
    Ok(Some(match kind {
        Kind::Increment => Rmw::Increment(&req.key, req.delta),
        Kind::Append => Rmw::Append(&req.key, &req.operand, req.line_safe),
        Kind::Prepend => Rmw::Prepend(&req.key, &req.operand, req.line_safe),
        Kind::Flush => return Ok(None),
        Kind::SetWith => Rmw::SetWith {
            key: &req.key,
            value: &req.operand,
            ttl: match (req.keep_ttl, deadline) {
                (true, _) => Ttl::Keep,
                (false, Some(d)) => Ttl::At(d),
                (false, None) => Ttl::Clear,
            },
            when: match req.condition {
                0 => SetWhen::Always,
                1 => SetWhen::Absent,
                2 => SetWhen::Present,
                n => return Err(format!("unknown SET condition {n}")),
            },
        },
        Kind::GetDel => Rmw::GetDel(&req.key),
        Kind::IncrementFloat => Rmw::IncrementFloat(&req.key, &req.operand),
        Kind::SetRange => Rmw::SetRange {
            key: &req.key,
            offset: usize::try_from(req.delta).map_err(|_| format!("bad offset {}", req.delta))?,
            bytes: &req.operand,
        },
        Kind::Expire => Rmw::Expire {
            key: &req.key,
            deadline,
            when: match req.condition {
                0 => ExpireWhen::Always,
                1 => ExpireWhen::NoDeadline,
                2 => ExpireWhen::HasDeadline,
                3 => ExpireWhen::Later,
                4 => ExpireWhen::Earlier,
                5 => ExpireWhen::HasDeadlineEarlier,
                n => return Err(format!("unknown EXPIRE condition {n}")),
            },
        },
    }))
}

/// The answer to a read-modify-write the primary ran (`None`: a result no
/// read-modify-write gives).
pub fn to_outcome(result: WriteResult) -> Option<Outcome> {
    match result {
        WriteResult::Number(n) => Some(Outcome::Number(n)),
        WriteResult::Value(v) => Some(Outcome::Value(v.into_vec())),
        WriteResult::Conditional { written, old } => {
            Some(Outcome::Conditional(proto::Conditional {
                written,
                old: old.map(<[u8]>::into_vec),
            }))
        }
        _ => None,
    }
}

/// Why an `Execute` answer is not a result.
pub enum Answer {
    /// The primary refused (the client's error).
    Refused(proto::ExecuteError),
    /// An outcome of another kind than the request's.
    WrongKind,
}

/// Reads the primary's answer to `rmw` back.
pub fn from_response(answer: proto::ExecuteResponse, rmw: Rmw<'_>) -> Result<WriteResult, Answer> {
    match (answer.outcome, rmw) {
        (Some(Outcome::Number(n)), Rmw::Increment(..) | Rmw::SetRange { .. }) => {
            Ok(WriteResult::Number(n))
        }
        (Some(Outcome::Value(v)), Rmw::Append(..) | Rmw::Prepend(..) | Rmw::IncrementFloat(..)) => {
            Ok(WriteResult::Value(v.into()))
        }
        (
            Some(Outcome::Conditional(c)),
            Rmw::SetWith { .. } | Rmw::Expire { .. } | Rmw::GetDel(_),
        ) => Ok(WriteResult::Conditional {
            written: c.written,
            old: c.old.map(Vec::into_boxed_slice),
        }),
        (Some(Outcome::Error(e)), _) => Err(Answer::Refused(e)),
        _ => Err(Answer::WrongKind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let d = NonZeroU64::new(1_900_000_000_000);
        let cases = [
            Rmw::Increment(b"k", -3),
            Rmw::Append(b"k", b"x", true),
            Rmw::Prepend(b"k", b"y", false),
            Rmw::SetWith {
                key: b"k",
                value: b"v",
                ttl: Ttl::Keep,
                when: SetWhen::Present,
            },
            Rmw::SetWith {
                key: b"k",
                value: b"v",
                ttl: Ttl::At(d.expect("nonzero")),
                when: SetWhen::Absent,
            },
            Rmw::Expire {
                key: b"k",
                deadline: d,
                when: ExpireWhen::HasDeadlineEarlier,
            },
            Rmw::Expire {
                key: b"k",
                deadline: None,
                when: ExpireWhen::Always,
            },
            Rmw::GetDel(b"k"),
            Rmw::IncrementFloat(b"k", b"-1.5e3"),
            Rmw::SetRange {
                key: b"k",
                offset: 7,
                bytes: b"xyz",
            },
        ];
        for rmw in cases {
            let request = to_request(rmw, Consistency::Quorum);
            let back = from_request(&request).expect("valid").expect("an rmw");
            assert_eq!(format!("{back:?}"), format!("{rmw:?}"));
        }
        let mut bad = to_request(cases[3], Consistency::One);
        bad.condition = 9;
        assert!(from_request(&bad).is_err());
    }
}
