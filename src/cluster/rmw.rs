//! A read-modify-write: a client command that reads a key and writes it
//! back (INCR, INCRBYFLOAT, APPEND, conditional and time-to-live writes, GETDEL,
//! SETRANGE), run on the key's first live replica so concurrent ones
//! serialise on one store.

use std::num::NonZeroU64;

use crate::store::{ExpireWhen, SetWhen, Ttl, WriteOp};

/// A read-modify-write, run on the key's first live replica.
#[derive(Debug, Clone, Copy)]
pub enum Rmw<'a> {
    /// INCR / DECR / INCRBY …
    Increment(&'a [u8], i64),
    /// INCRBYFLOAT: the increment as the client sent it.
    IncrementFloat(&'a [u8], &'a [u8]),
    /// APPEND (`line_safe`: refuse a result holding CR or LF).
    Append(&'a [u8], &'a [u8], bool),
    /// PREPEND.
    Prepend(&'a [u8], &'a [u8], bool),
    /// SET with a condition and/or a deadline (resolved by the coordinator).
    SetWith {
        /// Key.
        key: &'a [u8],
        /// Value.
        value: &'a [u8],
        /// Deadline handling.
        ttl: Ttl,
        /// Condition.
        when: SetWhen,
    },
    /// GETDEL.
    GetDel(&'a [u8]),
    /// SETRANGE: `bytes` at `offset`.
    SetRange {
        /// Key.
        key: &'a [u8],
        /// Where.
        offset: usize,
        /// What.
        bytes: &'a [u8],
    },
    /// EXPIRE / PERSIST / GETEX with an option: a new deadline (`None`:
    /// none) for a live key.
    Expire {
        /// Key.
        key: &'a [u8],
        /// The new deadline.
        deadline: Option<NonZeroU64>,
        /// Condition.
        when: ExpireWhen,
    },
}

impl<'a> Rmw<'a> {
    /// The key it writes.
    pub fn key(&self) -> &'a [u8] {
        match *self {
            Rmw::Increment(k, _) | Rmw::Append(k, _, _) | Rmw::Prepend(k, _, _) => k,
            Rmw::SetWith { key, .. } | Rmw::Expire { key, .. } => key,
            Rmw::GetDel(key) | Rmw::SetRange { key, .. } | Rmw::IncrementFloat(key, _) => key,
        }
    }

    /// The store write it is on the primary.
    pub fn op(&self) -> WriteOp<'a> {
        match *self {
            Rmw::Increment(key, delta) => WriteOp::Increment { key, delta },
            Rmw::IncrementFloat(key, delta) => WriteOp::IncrementFloat { key, delta },
            Rmw::Append(key, suffix, line_safe) => WriteOp::Append {
                key,
                suffix,
                line_safe,
            },
            Rmw::Prepend(key, prefix, line_safe) => WriteOp::Prepend {
                key,
                prefix,
                line_safe,
            },
            Rmw::SetWith {
                key,
                value,
                ttl,
                when,
            } => WriteOp::SetWith {
                key,
                value,
                ttl,
                when,
            },
            Rmw::Expire {
                key,
                deadline,
                when,
            } => WriteOp::Expire {
                key,
                deadline,
                when,
            },
            Rmw::GetDel(key) => WriteOp::GetDel { key },
            Rmw::SetRange { key, offset, bytes } => WriteOp::SetRange { key, offset, bytes },
        }
    }
}
