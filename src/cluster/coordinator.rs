//! The coordinator: any node takes any request and asks the key's replicas.
//!
//! * Writes (SET, DEL, MSET) are stamped here with one version and sent to
//!   every replica (this node's store directly, the others through their
//!   links' batched `Apply`); the reply waits for W acknowledgements.
//! * Reads ask R replicas (this node first when it is one), trying the next
//!   replica when one fails or is slower than `cluster.speculative_retry_ms`,
//!   and return the newest version.
//! * Read-modify-writes (INCR, APPEND, PREPEND) run on the key's first live
//!   replica, so concurrent ones serialise on one store; it refreshes its
//!   copy from a quorum read first, then replicates the result.
//!
//! A replica that is down (no heartbeat answer within
//! `cluster.failure_timeout_ms`) is not waited for; when fewer than the
//! level's replicas answer within `cluster.request_timeout_ms` the request
//! fails with [`ClusterError::Unavailable`], never hangs.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use smallvec::SmallVec;

use super::error::{ClusterError, PeerError};
use super::hints::Hints;
use super::link::{PeerLink, ReadAnswer};
use super::membership::{Membership, RingView, Slot};
use super::metrics::ClusterMetrics;
use super::rmw::Rmw;
use crate::config::Consistency;
use crate::hooks::{BoxFuture, Durability};
use crate::proto;
use crate::store::{Entry, MergeOutcome, Store, StoreError, Version, WriteOp, WriteResult};

/// How requests are coordinated.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Level of writes without one of their own.
    pub write: Consistency,
    /// Level of reads without one of their own.
    pub read: Consistency,
    /// How long a request waits for its replicas.
    pub timeout: Duration,
    /// How long a read waits before it also asks the next replica
    /// (`None`: it never does).
    pub speculative_retry: Option<Duration>,
    /// Share of reads that also check the replicas they did not ask.
    pub read_repair_chance: f64,
}

/// Where one replica of a key is.
enum Target {
    /// This node.
    Local,
    /// A peer seen up.
    Up(Arc<PeerLink>),
    /// A peer not seen up (or unreachable): not asked; writes for it
    /// become hints.
    Down(Arc<str>),
}

type Targets = SmallVec<[Target; 4]>;

/// The replicas a read asked and that answered: the remote ones, and
/// whether this node was one.
struct Asked {
    remote: SmallVec<[Arc<PeerLink>; 4]>,
    local: bool,
}

/// Writes the newest entry back to stale replicas.
struct Repairer {
    store: Arc<Store>,
    metrics: ClusterMetrics,
}

impl Repairer {
    /// Read repair: writes `entry` to a replica that answered an older
    /// version (`None` = this node's store). The remote write is queued on
    /// the replica's link and not waited for.
    fn repair(&self, key: &[u8], replica: Option<&PeerLink>, entry: &Entry) {
        self.metrics.read_repairs.inc();
        match replica {
            None => {
                if let Err(e) = self.store.merge(key, entry.clone()) {
                    tracing::warn!(error = %e, "read repair of this node's copy failed");
                }
            }
            Some(link) => {
                if let Err(e) = link.apply(key, entry) {
                    self.metrics.count_failure(&e);
                }
            }
        }
    }
}

/// Read answers and who gave them (`None`: this node).
type Answers = SmallVec<[(Option<Arc<PeerLink>>, ReadAnswer); 4]>;

/// Coordinates requests over the ring.
pub struct Coordinator {
    store: Arc<Store>,
    membership: Arc<Membership>,
    hints: Arc<Hints>,
    durability: Option<Arc<dyn Durability>>,
    settings: Settings,
    metrics: ClusterMetrics,
    /// Read repair, shared with the checks that outlive a request.
    repairer: Arc<Repairer>,
}

impl Coordinator {
    /// A coordinator over `membership`'s ring.
    pub fn new(
        store: Arc<Store>,
        membership: Arc<Membership>,
        hints: Arc<Hints>,
        durability: Option<Arc<dyn Durability>>,
        settings: Settings,
        metrics: ClusterMetrics,
    ) -> Self {
        let repairer = Arc::new(Repairer {
            store: store.clone(),
            metrics: metrics.clone(),
        });
        Self {
            store,
            membership,
            hints,
            durability,
            settings,
            metrics,
            repairer,
        }
    }

    /// The configured levels and timeout.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// The replicas of `key`, primary first.
    fn targets(&self, view: &RingView, key: &[u8]) -> Targets {
        let mut replicas = view
            .ring
            .replicas(key, self.membership.replication_factor());
        let mut out = Targets::new();
        while let Some(i) = replicas.next_index() {
            out.push(match view.links.get(i) {
                Some(Slot::Own) => Target::Local,
                Some(Slot::Peer(link)) if link.is_up() => Target::Up(link.clone()),
                Some(Slot::Peer(link)) => Target::Down(link.node_id.as_str().into()),
                Some(Slot::Unreachable(id)) => Target::Down(id.clone()),
                None => continue,
            });
        }
        out
    }

    /// Whether a read of `key` at `level` is answered by this node's store
    /// alone (one replica asked, and this node is one).
    pub fn reads_locally(&self, key: &[u8], level: Option<Consistency>) -> bool {
        if level.unwrap_or(self.settings.read) != Consistency::One
            || self.settings.read_repair_chance > 0.0
        {
            return false;
        }
        let view = self.membership.view();
        let mut replicas = view
            .ring
            .replicas(key, self.membership.replication_factor());
        while let Some(i) = replicas.next_index() {
            if matches!(view.links.get(i), Some(Slot::Own)) {
                return true;
            }
        }
        false
    }

    /// A fresh version stamped by this node.
    fn stamp(&self, key: &[u8]) -> Result<Version, ClusterError> {
        let hlc = self.store.clock().now().map_err(|e| {
            self.store.refusals().count_clock_ahead();
            StoreError::ClockAhead {
                key: String::from_utf8_lossy(key).into_owned(),
                ahead_ms: e.ahead_ms,
            }
        })?;
        Ok(Version::new(hlc, self.store.node_number()))
    }

    /// `SET`: stores `value` at the level (default: `write_consistency`).
    pub async fn set(
        &self,
        key: &[u8],
        value: &[u8],
        level: Option<Consistency>,
    ) -> Result<Version, ClusterError> {
        let entry = Entry {
            version: self.stamp(key)?,
            value: Some(value.into()),
            expires_at: None,
        };
        let version = entry.version;
        self.replicate(key, entry, level.unwrap_or(self.settings.write), true)
            .await?;
        Ok(version)
    }

    /// `DEL` of one key: whether it was live before (on any replica that
    /// acknowledged).
    pub async fn delete(
        &self,
        key: &[u8],
        level: Option<Consistency>,
    ) -> Result<(bool, Version), ClusterError> {
        let entry = Entry {
            version: self.stamp(key)?,
            value: None,
            expires_at: None,
        };
        let version = entry.version;
        let was_live = self
            .replicate(key, entry, level.unwrap_or(self.settings.write), true)
            .await?;
        Ok((was_live, version))
    }

    /// Sends `entry` to every replica of `key` and waits for the level's
    /// acknowledgements; `apply_here` = merge it into this node's store too
    /// (false when it already was written here). Returns whether any
    /// acknowledging replica held a live value before.
    async fn replicate(
        &self,
        key: &[u8],
        entry: Entry,
        level: Consistency,
        apply_here: bool,
    ) -> Result<bool, ClusterError> {
        let view = self.membership.view();
        let targets = self.targets(&view, key);
        let required = level.required(targets.len());
        let mut pending: FuturesUnordered<BoxFuture<Result<bool, PeerError>>> =
            FuturesUnordered::new();
        let mut remote = false;
        // Key and entry for the replicas whose call fails after it was
        // sent: they become hints then (one copy shared by them all).
        let mut for_hints: Option<Arc<(Box<[u8]>, Entry)>> = None;
        for target in &targets {
            match target {
                Target::Local => {
                    let was_live = if apply_here {
                        match self.store.merge_observed(key, entry.clone())? {
                            (MergeOutcome::Refused(refusal), _) => {
                                return Err(ClusterError::Remote {
                                    code: "ERR".into(),
                                    message: format!(
                                        "this node refused the entry ({})",
                                        refusal.as_str()
                                    ),
                                })
                            }
                            (_, was_live) => was_live,
                        }
                    } else {
                        false
                    };
                    pending.push(Box::pin(self.local_durable(was_live)));
                }
                Target::Up(link) => {
                    remote = true;
                    match link.apply(key, &entry) {
                        Ok(reply) => {
                            let peer = link.node_id.clone();
                            let hints = self.hints.clone();
                            let hint = for_hints
                                .get_or_insert_with(|| Arc::new((key.into(), entry.clone())))
                                .clone();
                            pending.push(Box::pin(async move {
                                let answer = match reply.await {
                                    Ok(Ok(Some(was_live))) => return Ok(was_live),
                                    // Refused: a hint would be refused too.
                                    Ok(Ok(None)) => return Err(PeerError::Refused { peer }),
                                    Ok(Err(e)) => Err(e),
                                    Err(_) => Err(PeerError::Closed(peer.clone())),
                                };
                                // Timed out, or the link failed: hand it over later.
                                hints.store(&peer, &hint.0, &hint.1);
                                answer
                            }));
                        }
                        Err(e) => {
                            self.metrics.count_failure(&e);
                            self.hints.store(&link.node_id, key, &entry);
                        }
                    }
                }
                Target::Down(id) => {
                    remote = true;
                    self.hints.store(id, key, &entry);
                }
            }
        }
        if remote {
            self.count("write");
        }
        let acks = self.quorum(&mut pending, required, "write").await;
        if !pending.is_empty() {
            // Replicas not waited for still answer (or fail into hints),
            // off the reply path; each call ends by the request timeout.
            tokio::spawn(async move { while pending.next().await.is_some() {} });
        }
        Ok(acks?.into_iter().any(|live| live))
    }

    /// This node's acknowledgement: once its write is as durable as
    /// `storage.fsync` asks.
    fn local_durable(
        &self,
        was_live: bool,
    ) -> impl std::future::Future<Output = Result<bool, PeerError>> + Send + 'static {
        let durability = self.durability.clone();
        let peer = self.store.node_id().to_owned();
        async move {
            if let Some(d) = durability {
                d.wait_durable().await.map_err(|e| PeerError::Call {
                    rpc: "local write",
                    peer,
                    reason: e.to_string(),
                })?;
            }
            Ok(was_live)
        }
    }

    /// Waits until `required` of `pending` succeed, all of them finished, or
    /// the timeout passed.
    async fn quorum<R>(
        &self,
        pending: &mut FuturesUnordered<BoxFuture<Result<R, PeerError>>>,
        required: usize,
        kind: &'static str,
    ) -> Result<Vec<R>, ClusterError> {
        let mut answers = Vec::with_capacity(required);
        if required > 0 {
            let wait = async {
                while let Some(answer) = pending.next().await {
                    match answer {
                        Ok(v) => {
                            answers.push(v);
                            if answers.len() >= required {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "replica did not answer");
                            self.metrics.count_failure(&e);
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(self.settings.timeout, wait).await;
        }
        if answers.len() >= required {
            Ok(answers)
        } else {
            Err(self.unavailable(kind, answers.len(), required))
        }
    }

    /// The `unavailable` failure of a request of `kind`, counted.
    fn unavailable(&self, kind: &'static str, answered: usize, required: usize) -> ClusterError {
        self.metrics
            .unavailable
            .get_or_create(&[("kind", kind)])
            .inc();
        ClusterError::Unavailable { answered, required }
    }

    fn count(&self, kind: &'static str) {
        self.metrics
            .coordinated
            .get_or_create(&[("kind", kind)])
            .inc();
    }

    /// The newest entry any of R replicas of `key` holds (tombstones
    /// included), at the level (default: `read_consistency`). When the
    /// replicas that answered disagree, the stale ones are repaired with
    /// the newest entry off the reply path ([`Coordinator::repair`]).
    pub async fn read(
        &self,
        key: &[u8],
        level: Option<Consistency>,
    ) -> Result<Option<Entry>, ClusterError> {
        let view = self.membership.view();
        let targets = self.targets(&view, key);
        let required = level.unwrap_or(self.settings.read).required(targets.len());
        // This node first: its answer costs nothing.
        let mut answers: Answers = SmallVec::new();
        let mut spares: SmallVec<[Arc<PeerLink>; 4]> = SmallVec::new();
        for target in targets {
            match target {
                Target::Local => answers.push((None, self.store.entry(key))),
                Target::Up(link) => spares.push(link),
                Target::Down(_) => {}
            }
        }
        spares.reverse(); // pop() takes them in ring order
        if answers.len() < required {
            self.count("read");
            let gathered = if required - answers.len() == 1 {
                self.read_one_more(key, &mut answers, &mut spares).await
            } else {
                self.gather_reads(key, required, &mut answers, &mut spares)
                    .await
            };
            if !gathered {
                return Err(self.unavailable("read", answers.len(), required));
            }
        }
        let check = (!spares.is_empty() && self.roll_read_repair()).then(|| Asked {
            remote: answers.iter().filter_map(|(l, _)| l.clone()).collect(),
            local: answers.iter().any(|(l, _)| l.is_none()),
        });
        let newest = self.newest(key, answers);
        if let Some(asked) = check {
            self.check_the_rest(key, newest.clone(), asked, spares);
        }
        Ok(newest)
    }

    /// Whether this read also checks the replicas it did not ask
    /// (`cluster.read_repair_chance`).
    fn roll_read_repair(&self) -> bool {
        let chance = self.settings.read_repair_chance;
        chance > 0.0 && rand::random::<f64>() < chance
    }

    /// Read repair beyond the level (`read_repair_chance`): asks `rest`,
    /// the replicas the read did not, off the reply path, and writes the
    /// newest entry back wherever it is missing: to the stale ones among
    /// `rest`, and to the replicas that answered (already agreeing on
    /// `answered`) when one of `rest` held something newer.
    fn check_the_rest(
        &self,
        key: &[u8],
        answered: Option<Entry>,
        asked: Asked,
        rest: SmallVec<[Arc<PeerLink>; 4]>,
    ) {
        self.metrics.read_repair_checks.inc();
        let mut pending = FuturesUnordered::new();
        for link in rest {
            match link.read(key) {
                Ok(reply) => pending.push(async move { (link, reply.await) }),
                Err(e) => self.metrics.count_failure(&e),
            }
        }
        let repairer = self.repairer.clone();
        let key: Box<[u8]> = key.into();
        let timeout = self.settings.timeout;
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let gather = async {
                while let Some((link, answer)) = pending.next().await {
                    match answer {
                        Ok(a) => answers.push((link, a)),
                        Err(e) => repairer.metrics.count_failure(&e),
                    }
                }
            };
            let _ = tokio::time::timeout(timeout, gather).await;
            let version = |e: &Option<Entry>| e.as_ref().map(|e| e.version);
            let Some(newest) = answers
                .iter()
                .map(|(_, a)| a)
                .chain(std::iter::once(&answered))
                .max_by_key(|a| version(a))
                .cloned()
                .flatten()
            else {
                return;
            };
            for (link, answer) in &answers {
                if version(answer) != Some(newest.version) {
                    repairer.repair(&key, Some(link), &newest);
                }
            }
            if version(&answered) != Some(newest.version) {
                // The replicas the read asked all hold `answered` now.
                for link in &asked.remote {
                    repairer.repair(&key, Some(link), &newest);
                }
                if asked.local {
                    repairer.repair(&key, None, &newest);
                }
            }
        });
    }

    /// One more answer wanted (the common case: a quorum read on a replica,
    /// or a read at `one` elsewhere): asks the spares in turn, each for at
    /// most `speculative_retry` while another is left, the last for what
    /// remains of the timeout. No set of futures, one timer per attempt: a
    /// slow replica's late answer is dropped rather than raced.
    async fn read_one_more(
        &self,
        key: &[u8],
        answers: &mut Answers,
        spares: &mut SmallVec<[Arc<PeerLink>; 4]>,
    ) -> bool {
        let mut now = tokio::time::Instant::now();
        let deadline = now + self.settings.timeout;
        while let Some(link) = spares.pop() {
            if now >= deadline {
                break;
            }
            let until = match (self.settings.speculative_retry, spares.is_empty()) {
                (Some(d), false) => (now + d).min(deadline),
                _ => deadline,
            };
            let answer = match link.read(key) {
                Ok(reply) => tokio::time::timeout_at(until, reply).await,
                Err(e) => Ok(Err(e)),
            };
            match answer {
                Ok(Ok(a)) => {
                    answers.push((Some(link), a));
                    return true;
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "replica did not answer a read");
                    self.metrics.count_failure(&e);
                }
                Err(_) if spares.is_empty() => break,
                Err(_) => {
                    self.metrics.speculative_reads.inc();
                }
            }
            now = tokio::time::Instant::now();
        }
        false
    }

    /// Asks replicas from `spares` until `required` answers are in or the
    /// timeout passed: as many at once as answers are wanted, the next
    /// spare for each one that fails, and one more spare each
    /// `speculative_retry` while answers are still missing (a replica that
    /// died but is not yet seen down would otherwise hold the read until the
    /// timeout). One timer serves both deadlines.
    async fn gather_reads(
        &self,
        key: &[u8],
        required: usize,
        answers: &mut Answers,
        spares: &mut SmallVec<[Arc<PeerLink>; 4]>,
    ) -> bool {
        type Pending = FuturesUnordered<BoxFuture<(Arc<PeerLink>, Result<ReadAnswer, PeerError>)>>;
        let mut pending: Pending = FuturesUnordered::new();
        let ask = |link: Arc<PeerLink>, pending: &mut Pending| match link.read(key) {
            Ok(reply) => pending.push(Box::pin(async move { (link, reply.await) })),
            Err(e) => self.metrics.count_failure(&e),
        };
        let start = tokio::time::Instant::now();
        let deadline = start + self.settings.timeout;
        let mut speculate_at = self.settings.speculative_retry.map(|d| start + d);
        let wake = |at: Option<tokio::time::Instant>| at.map_or(deadline, |at| at.min(deadline));
        let timer = tokio::time::sleep_until(wake(speculate_at));
        tokio::pin!(timer);
        loop {
            while answers.len() + pending.len() < required {
                let Some(link) = spares.pop() else { break };
                ask(link, &mut pending);
            }
            if answers.len() >= required {
                return true;
            }
            if pending.is_empty() {
                return false; // every replica failed
            }
            tokio::select! {
                biased;
                next = pending.next() => match next {
                    Some((link, Ok(answer))) => answers.push((Some(link), answer)),
                    Some((_, Err(e))) => {
                        tracing::debug!(error = %e, "replica did not answer a read");
                        self.metrics.count_failure(&e);
                    }
                    None => {}
                },
                () = &mut timer => {
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    if let Some(link) = spares.pop() {
                        self.metrics.speculative_reads.inc();
                        ask(link, &mut pending);
                    }
                    speculate_at = match (self.settings.speculative_retry, spares.is_empty()) {
                        (Some(d), false) => Some(now + d),
                        _ => None,
                    };
                    timer.as_mut().reset(wake(speculate_at));
                }
            }
        }
    }

    /// The newest of the replicas' answers; replicas that answered older
    /// (or nothing) get it written back.
    fn newest(&self, key: &[u8], answers: Answers) -> Option<Entry> {
        let newest = answers
            .iter()
            .filter_map(|(_, a)| a.as_ref())
            .max_by_key(|e| e.version)
            .cloned();
        if let (Some(entry), true) = (&newest, answers.len() > 1) {
            for (source, answer) in &answers {
                if answer.as_ref().map(|e| e.version) != Some(entry.version) {
                    self.repairer.repair(key, source.as_deref(), entry);
                }
            }
        }
        newest
    }

    /// The live value of `key` at the read level (a value whose deadline
    /// has passed is absent).
    pub async fn get(
        &self,
        key: &[u8],
        level: Option<Consistency>,
    ) -> Result<Option<Entry>, ClusterError> {
        let entry = self.read(key, level).await?;
        Ok(entry.filter(|e| {
            !e.is_tombstone() && (e.expires_at.is_none() || !e.is_expired_at(self.store.now_ms()))
        }))
    }

    /// Runs a read-modify-write on the key's first live replica.
    pub async fn execute(
        &self,
        rmw: Rmw<'_>,
        level: Option<Consistency>,
    ) -> Result<WriteResult, ClusterError> {
        let level = level.unwrap_or(self.settings.write);
        let view = self.membership.view();
        let targets = self.targets(&view, rmw.key());
        let primary = targets.into_iter().find(|t| !matches!(t, Target::Down(_)));
        match primary {
            Some(Target::Local) => self.execute_as_primary(rmw, level).await,
            Some(Target::Up(link)) => {
                self.count("execute");
                self.forward_execute(&link, rmw, level).await
            }
            // The primary is the one replica a read-modify-write needs.
            _ => Err(self.unavailable("execute", 0, 1)),
        }
    }

    /// Runs `rmw` here, as the key's primary: refreshes this node's copy
    /// from a read at `level`, applies, replicates the result.
    pub async fn execute_as_primary(
        &self,
        rmw: Rmw<'_>,
        level: Consistency,
    ) -> Result<WriteResult, ClusterError> {
        let key = rmw.key();
        if let Some(newest) = self.read(key, Some(level)).await? {
            // Stale or refused merges change nothing; a storage error does.
            self.store.merge(key, newest)?;
        }
        let mut changes = Vec::with_capacity(1);
        let (result, _) = self.store.apply_local_into(rmw.op(), Some(&mut changes));
        let result = result?;
        for change in changes {
            self.replicate(&change.key, change.entry, level, false)
                .await?;
        }
        Ok(result)
    }

    async fn forward_execute(
        &self,
        link: &PeerLink,
        rmw: Rmw<'_>,
        level: Consistency,
    ) -> Result<WriteResult, ClusterError> {
        let request = super::rmw_wire::to_request(rmw, level);
        let mut client = link.replica_client();
        let call = tokio::time::timeout(self.settings.timeout, client.execute(request));
        let answer = match call.await {
            Ok(Ok(answer)) => answer.into_inner(),
            Ok(Err(status)) => {
                tracing::debug!(peer = %link.node_id, %status, "Execute failed");
                return Err(self.unavailable("execute", 0, 1));
            }
            Err(_) => return Err(self.unavailable("execute", 0, 1)),
        };
        super::rmw_wire::from_response(answer, rmw).map_err(|e| match e {
            super::rmw_wire::Answer::Refused(e) => super::wire_error::from_wire(rmw.key(), e),
            super::rmw_wire::Answer::WrongKind => ClusterError::Remote {
                code: "ERR".into(),
                message: format!(
                    "replica {} answered Execute with the wrong kind",
                    link.node_id
                ),
            },
        })
    }

    /// `FLUSH` on every member: each tombstones the keys it holds. Fails
    /// when a member is down or does not answer.
    pub async fn flush_everywhere(&self) -> Result<(), ClusterError> {
        let view = self.membership.view();
        let required = view.links.len();
        let pending: FuturesUnordered<BoxFuture<Result<(), PeerError>>> = FuturesUnordered::new();
        for slot in &view.links {
            match slot {
                Slot::Own => {
                    let (result, _) = self.store.apply_local_into(WriteOp::Flush, None);
                    result?;
                    let durable = self.local_durable(false);
                    pending.push(Box::pin(async move { durable.await.map(|_| ()) }));
                }
                Slot::Peer(link) if link.is_up() => {
                    let mut client = link.replica_client();
                    let peer = link.node_id.clone();
                    pending.push(Box::pin(async move {
                        let request = proto::ExecuteRequest {
                            kind: proto::execute_request::Kind::Flush as i32,
                            ..proto::ExecuteRequest::default()
                        };
                        client
                            .execute(request)
                            .await
                            .map(|_| ())
                            .map_err(|s| PeerError::Call {
                                rpc: "Execute",
                                peer,
                                reason: s.message().to_owned(),
                            })
                    }));
                }
                Slot::Peer(_) | Slot::Unreachable(_) => {}
            }
        }
        let mut pending = pending;
        self.quorum(&mut pending, required, "flush")
            .await
            .map(|_| ())
    }
}
