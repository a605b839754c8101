//! Error replies: the one place where a failure becomes the text a client
//! reads (store errors included, so the store stays protocol-neutral).

use super::action::Action;
use super::context::ServerContext;
use crate::protocol::{Protocol, ReplyBuf};
use crate::store::StoreError;

/// Encodes an error reply and counts it.
pub fn error(ctx: &ServerContext, out: &mut ReplyBuf, msg: &str) -> Action<'static> {
    ctx.stats.error_replies.incr();
    out.error(msg);
    Action::Continue
}

/// Encodes the reply for a refused store operation and counts it.
pub fn store_error(ctx: &ServerContext, out: &mut ReplyBuf, e: &StoreError) -> Action<'static> {
    let text = store_error_text(e, out.protocol());
    error(ctx, out, &text)
}

/// What a client reads after `ERROR ` (text) or `-ERR ` (RESP) when the
/// store refuses an operation. These strings are part of the wire
/// contract (docs/protocol.md).
pub fn store_error_text(e: &StoreError, protocol: Protocol) -> String {
    match e {
        // Redis clients expect Redis' wording for a non-integer value.
        StoreError::NotANumber { .. } if protocol == Protocol::Resp => {
            "value is not an integer or out of range".into()
        }
        StoreError::NotANumber { key } => format!("Value for key '{key}' is not a valid number"),
        StoreError::Overflow => "increment or decrement would overflow".into(),
        StoreError::NotAFloat | StoreError::NotFinite | StoreError::NoSuchKey => e.to_string(),
        StoreError::StorageFull => "Storage full".into(),
        StoreError::ValueTooLarge { limit } => {
            format!("value would exceed the maximum size of {limit} bytes")
        }
        StoreError::NotLineSafe => {
            "value contains CR or LF and cannot be sent as a text line: read it over RESP".into()
        }
        StoreError::ClockAhead { key, ahead_ms } => format!(
            "the version of key '{key}' is {ahead_ms} ms ahead of this node's clock, more than \
             storage.max_clock_skew_ms allows; write refused"
        ),
        StoreError::InvalidShape { .. } => e.to_string(),
        StoreError::Log(log) => format!("storage error: {log}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LogError;

    #[test]
    fn store_errors_read_as_the_protocol_documents() {
        let text = |e: &StoreError| store_error_text(e, Protocol::Text);
        assert_eq!(
            text(&StoreError::NotANumber { key: "k".into() }),
            "Value for key 'k' is not a valid number"
        );
        assert_eq!(
            store_error_text(&StoreError::NotANumber { key: "k".into() }, Protocol::Resp),
            "value is not an integer or out of range"
        );
        assert_eq!(text(&StoreError::StorageFull), "Storage full");
        assert_eq!(
            text(&StoreError::ValueTooLarge { limit: 1024 }),
            "value would exceed the maximum size of 1024 bytes"
        );
        assert_eq!(
            text(&StoreError::Log(LogError::ShutDown)),
            "storage error: durable storage is shut down"
        );
    }
}
