//! A read-modify-write's failure on its primary, carried back to the
//! coordinator so the client reads it in its own protocol's words.

use super::error::ClusterError;
use crate::proto::ExecuteError;
use crate::store::StoreError;

const NOT_A_NUMBER: &str = "NOTNUM";
const OVERFLOW: &str = "OVERFLOW";
const FULL: &str = "FULL";
const TOO_LARGE: &str = "TOOLARGE";
const NOT_LINE_SAFE: &str = "NOTLINESAFE";
const NOT_A_FLOAT: &str = "NOTFLOAT";
const NOT_FINITE: &str = "NOTFINITE";

/// Encodes a failure for the `Execute` reply.
pub fn to_wire(e: &ClusterError) -> ExecuteError {
    let (code, message) = match e {
        ClusterError::Store(StoreError::NotANumber { .. }) => (NOT_A_NUMBER, String::new()),
        ClusterError::Store(StoreError::Overflow) => (OVERFLOW, String::new()),
        ClusterError::Store(StoreError::StorageFull) => (FULL, String::new()),
        ClusterError::Store(StoreError::ValueTooLarge { limit }) => (TOO_LARGE, limit.to_string()),
        ClusterError::Store(StoreError::NotLineSafe) => (NOT_LINE_SAFE, String::new()),
        ClusterError::Store(StoreError::NotAFloat) => (NOT_A_FLOAT, String::new()),
        ClusterError::Store(StoreError::NotFinite) => (NOT_FINITE, String::new()),
        other => (other.code(), other.to_string()),
    };
    ExecuteError {
        code: code.to_owned(),
        message,
    }
}

/// Decodes an `Execute` failure for `key`.
pub fn from_wire(key: &[u8], e: ExecuteError) -> ClusterError {
    let store = match e.code.as_str() {
        NOT_A_NUMBER => StoreError::NotANumber {
            key: String::from_utf8_lossy(key).into_owned(),
        },
        OVERFLOW => StoreError::Overflow,
        FULL => StoreError::StorageFull,
        TOO_LARGE => StoreError::ValueTooLarge {
            limit: e.message.parse().unwrap_or(0),
        },
        NOT_LINE_SAFE => StoreError::NotLineSafe,
        NOT_A_FLOAT => StoreError::NotAFloat,
        NOT_FINITE => StoreError::NotFinite,
        _ => {
            return ClusterError::Remote {
                code: e.code,
                message: e.message,
            }
        }
    };
    ClusterError::Store(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_survive_the_trip() {
        for e in [
            StoreError::NotANumber { key: "k".into() },
            StoreError::Overflow,
            StoreError::StorageFull,
            StoreError::ValueTooLarge { limit: 1024 },
            StoreError::NotLineSafe,
            StoreError::NotAFloat,
            StoreError::NotFinite,
        ] {
            let expected = e.to_string();
            let back = from_wire(b"k", to_wire(&ClusterError::Store(e)));
            assert_eq!(back.to_string(), expected);
        }
        let back = from_wire(
            b"k",
            to_wire(&ClusterError::Unavailable {
                answered: 1,
                required: 2,
            }),
        );
        assert_eq!(back.code(), "UNAVAILABLE");
        assert_eq!(back.to_string(), "unavailable: 1 of 2 replicas answered");
    }
}
