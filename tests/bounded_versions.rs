//! A version from a peer can never freeze the clock (issue 19): the
//! `PushEntries` call that used to poison a key, against two real nodes.

mod common;

use std::time::Duration;

use common::{wait_until, Client, NodeProcess, NodeSpec};
use merklekv::proto::merkle_sync_client::MerkleSyncClient;
use merklekv::proto::{Entry, PushEntriesRequest, Version};

/// Pushes `entries` to the node's sync port with a real gRPC call; returns
/// how many it applied.
fn push(sync_port: u16, entries: Vec<Entry>) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut client = MerkleSyncClient::connect(format!("http://127.0.0.1:{sync_port}"))
            .await
            .expect("connect");
        client
            .push_entries(PushEntriesRequest {
                entries,
                origin_node: "liar".into(),
            })
            .await
            .expect("push")
            .into_inner()
            .applied
    })
}

fn entry(key: &[u8], value: &[u8], hlc: u64, node: u64) -> Entry {
    Entry {
        expires_at_unix_ms: 0,
        key: key.to_vec(),
        value: value.to_vec(),
        tombstone: false,
        version: Some(Version { hlc, node }),
    }
}

fn get(c: &mut Client, key: &str) -> String {
    c.cmd(&format!("GET {key}")).trim_end().to_owned()
}

#[test]
fn a_pushed_version_at_u64_max_does_not_freeze_the_key() {
    let n1 = NodeProcess::start(NodeSpec::new("n1"));
    let n2 = NodeProcess::start(NodeSpec::new("n2"));
    let (mut c1, mut c2) = (n1.client(), n2.client());

    // The call from the issue, plus an oversized value (max_line_bytes is
    // 1 MiB by default).
    let applied = push(
        n1.sync_port,
        vec![
            entry(b"z", b"poison", u64::MAX, u64::MAX),
            entry(b"big", &vec![b'x'; 2 << 20], 1, 1),
        ],
    );
    assert_eq!(applied, 0, "nothing of it is stored");
    assert_eq!(get(&mut c1, "z"), "NOT_FOUND");
    assert_eq!(get(&mut c1, "big"), "NOT_FOUND");
    assert_eq!(c1.info_field("refused_future_versions"), "1");
    assert_eq!(c1.info_field("clock_skew_rejections"), "1");
    assert_eq!(c1.info_field("refused_oversized_entries"), "1");

    // Writes, syncs and rewrites converge to the last write on both nodes.
    assert_eq!(c1.cmd("SET z one"), "OK\r\n");
    let sync = c2.cmd(&format!("SYNC 127.0.0.1 {}", n1.sync_port));
    assert_eq!(sync, "OK\r\n");
    assert_eq!(get(&mut c2, "z"), "VALUE one");
    assert_eq!(c2.cmd("SET z two"), "OK\r\n");
    let sync = c1.cmd(&format!("SYNC 127.0.0.1 {}", n2.sync_port));
    assert_eq!(sync, "OK\r\n");
    assert_eq!(get(&mut c1, "z"), "VALUE two");
    assert_eq!(get(&mut c2, "z"), "VALUE two");
    assert!(wait_until(Duration::from_secs(5), || {
        c1.cmd("HASH") == c2.cmd("HASH")
    }));
    let hlc: u64 = c1.info_field("hlc").parse().expect("hlc");
    assert!(
        hlc < u64::MAX / 2,
        "the clock stays near the wall clock: {hlc}"
    );
}
