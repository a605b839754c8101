//! `SYNC host port` accepts the peer's client port, which is what MerkleKV
//! users pass: this asks whatever listens there for `INFO` in the text
//! protocol and, when it is a MerkleKV node, takes the port of its
//! `sync_addr`. A sync port (gRPC) does not answer `INFO`, so the port is
//! used as given.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the probe waits to connect, and for the whole `INFO` reply.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1_000);
/// The most of the reply read (INFO is well under 2 KiB).
const MAX_REPLY: usize = 8 * 1024;

/// The sync port of the node whose client port is `host:port`, or `port`
/// itself when nothing there answers `INFO` like a MerkleKV node.
pub async fn sync_port_behind(host: &str, port: u16) -> u16 {
    match tokio::time::timeout(PROBE_TIMEOUT, ask_info(host, port)).await {
        Ok(Some(sync_port)) => sync_port,
        _ => port,
    }
}

async fn ask_info(host: &str, port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .ok()?;
    stream.write_all(b"INFO\r\n").await.ok()?;
    let mut reply = Vec::with_capacity(2048);
    let mut buf = [0u8; 2048];
    while reply.len() < MAX_REPLY {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if let Some(port) = sync_port_in(&reply) {
            return Some(port);
        }
        if !b"INFO\r\n".starts_with(&reply[..reply.len().min(6)]) {
            return None; // not a MerkleKV client port (a gRPC server's bytes)
        }
    }
    None
}

/// The port of the `sync_addr:host:port` line of an `INFO` reply.
fn sync_port_in(reply: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(reply).ok()?;
    // Only complete lines count: the reply may still be arriving.
    let mut lines = text
        .split_inclusive("\r\n")
        .filter_map(|l| l.strip_suffix("\r\n"));
    if lines.next()? != "INFO" {
        return None;
    }
    let addr = lines.find_map(|l| l.strip_prefix("sync_addr:"))?;
    addr.rsplit_once(':')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sync_port_of_a_complete_info_line() {
        let info = b"INFO\r\nversion:0.1.0\r\nsync_addr:0.0.0.0:7380\r\ndata_dir:x\r\n";
        assert_eq!(sync_port_in(info), Some(7380));
        assert_eq!(
            sync_port_in(b"INFO\r\nsync_addr:[::1]:17380\r\n"),
            Some(17380)
        );
        assert_eq!(sync_port_in(b"INFO\r\nsync_addr:0.0.0.0:73"), None, "cut");
        assert_eq!(sync_port_in(b"\x00\x00\x12\x04\x00"), None);
        assert_eq!(sync_port_in(b"ERROR nope\r\n"), None);
    }
}
