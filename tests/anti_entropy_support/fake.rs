//! A `MerkleSync` peer that misbehaves on purpose.

use std::net::SocketAddr;
use std::time::Duration;

use merklekv::proto::merkle_sync_server::{MerkleSync, MerkleSyncServer};
use merklekv::proto::*;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

/// How the fake peer lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// Claims another tree shape.
    WrongShape,
    /// Sends a root hash of the wrong length.
    GarbageHash,
    /// Answers GetChildren with the wrong number of summaries.
    WrongChildCount,
    /// ListDigests: an empty page that says more follow.
    StuckPages,
    /// ListDigests: keys from outside the requested subtrees.
    ForeignKeys,
    /// ListDigests: the same key twice.
    RepeatedKeys,
    /// FetchKeys: an entry for a key nobody asked for.
    UnaskedEntries,
    /// Every call errors.
    Errors,
    /// Every call takes longer than any sane timeout.
    Slow,
}

/// The fake's shape (the default) and a root nobody else has.
fn summary(byte: u8, count: u64) -> NodeSummary {
    NodeSummary {
        hash: vec![byte; 16],
        count,
    }
}

struct Liar(Lie);

impl Liar {
    async fn gate(&self) -> Result<(), Status> {
        match self.0 {
            Lie::Errors => Err(Status::internal("the fake peer is broken")),
            Lie::Slow => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Err(Status::unavailable("too late"))
            }
            _ => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl MerkleSync for Liar {
    async fn get_root(
        &self,
        _: Request<GetRootRequest>,
    ) -> Result<Response<GetRootResponse>, Status> {
        self.gate().await?;
        let shape = if self.0 == Lie::WrongShape {
            TreeShape {
                fanout: 8,
                depth: 5,
            }
        } else {
            TreeShape {
                fanout: 16,
                depth: 4,
            }
        };
        // A big root makes the client descend; a small one makes it list
        // the whole tree at once.
        let big = matches!(self.0, Lie::WrongChildCount | Lie::ForeignKeys);
        let root = if self.0 == Lie::GarbageHash {
            NodeSummary {
                hash: vec![1, 2, 3],
                count: 5,
            }
        } else {
            summary(7, if big { 1_000_000 } else { 5 })
        };
        Ok(Response::new(GetRootResponse {
            root: Some(root),
            key_count: 1_000_000,
            shape: Some(shape),
            node_id: "liar".into(),
            hlc_now: 0,
            // No children: the client must ask with GetChildren.
            children: Vec::new(),
        }))
    }

    async fn get_children(
        &self,
        req: Request<GetChildrenRequest>,
    ) -> Result<Response<GetChildrenResponse>, Status> {
        self.gate().await?;
        let parents = req.into_inner().indexes.len();
        let n = if self.0 == Lie::WrongChildCount {
            parents * 16 + 3
        } else {
            parents * 16
        };
        // The first child holds a few entries, the others none (so the
        // client pushes them whole and lists the first one's children).
        Ok(Response::new(GetChildrenResponse {
            children: (0..n)
                .map(|i| if i == 0 { summary(9, 5) } else { summary(0, 0) })
                .collect(),
        }))
    }

    async fn list_digests(
        &self,
        req: Request<ListDigestsRequest>,
    ) -> Result<Response<ListDigestsResponse>, Status> {
        self.gate().await?;
        let req = req.into_inner();
        let listed = if self.0 == Lie::ForeignKeys {
            vec![0]
        } else {
            (0..req.subtrees.len() as u32).collect()
        };
        let digest = |k: &str| EntryDigest {
            key: k.as_bytes().to_vec(),
            version: Some(Version { hlc: 1, node: 1 }),
            tombstone: false,
        };
        let (digests, more) = match self.0 {
            Lie::StuckPages => (Vec::new(), true),
            // A handful of keys: some surely outside the few listed leaves.
            Lie::ForeignKeys => ((0..64).map(|i| digest(&format!("x{i}"))).collect(), false),
            Lie::RepeatedKeys => (vec![digest("dup"), digest("dup")], false),
            Lie::UnaskedEntries => (
                vec![EntryDigest {
                    version: Some(Version {
                        hlc: u64::MAX / 2,
                        node: 1,
                    }),
                    ..digest("wanted")
                }],
                false,
            ),
            _ => (Vec::new(), false),
        };
        Ok(Response::new(ListDigestsResponse {
            digests,
            listed,
            more,
        }))
    }

    async fn fetch_keys(
        &self,
        req: Request<FetchKeysRequest>,
    ) -> Result<Response<FetchKeysResponse>, Status> {
        self.gate().await?;
        let req = req.into_inner();
        let entries = if self.0 == Lie::UnaskedEntries {
            vec![Entry {
                expires_at_unix_ms: 0,
                key: b"nobody-asked".to_vec(),
                value: b"x".to_vec(),
                tombstone: false,
                version: Some(Version {
                    hlc: u64::MAX / 2,
                    node: 1,
                }),
            }]
        } else {
            Vec::new()
        };
        Ok(Response::new(FetchKeysResponse {
            entries,
            more: false,
            keys_done: req.keys.len() as u32,
        }))
    }

    async fn compare_ranges(
        &self,
        req: Request<CompareRangesRequest>,
    ) -> Result<Response<CompareRangesResponse>, Status> {
        self.gate().await?;
        let n = req.into_inner().ranges.len() as u32;
        // Every range differs; WrongChildCount names one past the end.
        let differing: Vec<u32> = if self.0 == Lie::WrongChildCount {
            vec![n]
        } else {
            (0..n).collect()
        };
        let summaries = differing.iter().map(|_| summary(0xab, 1)).collect();
        Ok(Response::new(CompareRangesResponse {
            node_id: "liar".into(),
            differing,
            summaries,
        }))
    }

    async fn push_entries(
        &self,
        _: Request<PushEntriesRequest>,
    ) -> Result<Response<PushEntriesResponse>, Status> {
        self.gate().await?;
        Ok(Response::new(PushEntriesResponse { applied: u64::MAX }))
    }
}

/// Serves a liar on a free loopback port for the life of the runtime.
pub async fn serve_liar(lie: Lie) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MerkleSyncServer::new(Liar(lie)))
            .serve_with_incoming(incoming),
    );
    addr
}

/// Serves bytes that are not HTTP/2 at all.
pub async fn serve_garbage() -> SocketAddr {
    use tokio::io::AsyncWriteExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        for _ in 0..1000 {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\n\r\nthis is not grpc\xff\xfe")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    addr
}
