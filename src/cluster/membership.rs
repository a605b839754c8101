//! Who is in the ring, and the ring every request reads.
//!
//! Members come from heartbeats: a seed (`anti_entropy.peer_list`) or a
//! peer learned from MQTT presence answers with its node id and its ring
//! state. Ring states merge as the union of their members at the highest
//! version: whoever learns a member the other side did not list bumps the
//! version, so every node ends up with the same members at the same
//! version. Members are only ever added here; handing a departing node's
//! share on is the healing work (issue 15).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::link::{LinkSettings, PeerLink};
use super::metrics::ClusterMetrics;
use super::ring::Ring;
use crate::proto;

/// Members a ring state may list at most.
pub const MAX_MEMBERS: usize = 1024;

/// One ring member as requests see it.
#[derive(Clone)]
pub enum Slot {
    /// This node.
    Own,
    /// A peer, through its link.
    Peer(Arc<PeerLink>),
    /// A peer no link could be made for (its address does not parse as a
    /// URI): always down.
    Unreachable(Arc<str>),
}

/// The ring requests read: one membership, frozen.
pub struct RingView {
    /// The ring of the members.
    pub ring: Ring,
    /// Its version.
    pub version: u64,
    /// Per ring member, in [`Ring::members`] order.
    pub links: Vec<Slot>,
}

/// Why a peer's ring state was not merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingStateRefusal {
    /// The state breaks the rules (too many members, a bad id or address).
    #[error("invalid ring state: {0}")]
    Invalid(String),
    /// The peer places keys differently (another vnodes or replication
    /// factor): merging its members would give two rings.
    #[error(
        "ring state with vnodes {vnodes} and replication_factor {replication_factor} does not \
         match this node's ({own_vnodes}, {own_replication_factor})"
    )]
    Mismatch {
        /// The peer's vnodes.
        vnodes: u32,
        /// The peer's replication factor.
        replication_factor: u32,
        /// Ours.
        own_vnodes: u32,
        /// Ours.
        own_replication_factor: u32,
    },
}

impl RingStateRefusal {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            RingStateRefusal::Invalid(_) => "invalid",
            RingStateRefusal::Mismatch { .. } => "mismatch",
        }
    }
}

struct State {
    version: u64,
    /// Every member but this node, by id.
    members: BTreeMap<String, proto::Member>,
    links: HashMap<String, Arc<PeerLink>>,
}

/// The membership of this node's ring.
pub struct Membership {
    own: RwLock<proto::Member>,
    vnodes: u32,
    replication_factor: usize,
    links: LinkSettings,
    metrics: ClusterMetrics,
    state: Mutex<State>,
    view: RwLock<Arc<RingView>>,
}

impl Membership {
    /// A ring of this node alone, at version 1.
    pub fn new(
        own_id: &str,
        vnodes: u32,
        replication_factor: usize,
        links: LinkSettings,
        metrics: ClusterMetrics,
    ) -> Self {
        let own = proto::Member {
            node_id: own_id.to_owned(),
            ..proto::Member::default()
        };
        let view = RingView {
            ring: Ring::new([own_id], vnodes),
            version: 1,
            links: vec![Slot::Own],
        };
        metrics.members.set(1);
        metrics.ring_version.set(1);
        Self {
            own: RwLock::new(own),
            vnodes,
            replication_factor,
            links,
            metrics,
            state: Mutex::new(State {
                version: 1,
                members: BTreeMap::new(),
                links: HashMap::new(),
            }),
            view: RwLock::new(Arc::new(view)),
        }
    }

    /// Sets where this node is reached (known once its listeners bound).
    pub fn set_own_addrs(&self, sync_addr: &str, client_addr: &str) {
        let mut own = self.own.write();
        own.sync_addr = sync_addr.to_owned();
        own.client_addr = client_addr.to_owned();
    }

    /// This node as a member.
    pub fn own(&self) -> proto::Member {
        self.own.read().clone()
    }

    /// The replication factor (0 = every member).
    pub fn replication_factor(&self) -> usize {
        self.replication_factor
    }

    /// The ring requests read now.
    pub fn view(&self) -> Arc<RingView> {
        self.view.read().clone()
    }

    /// This node's ring state, as heartbeats carry it.
    pub fn ring_state(&self) -> proto::RingState {
        let state = self.state.lock();
        let mut members: Vec<proto::Member> = state.members.values().cloned().collect();
        members.push(self.own());
        members.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        proto::RingState {
            version: state.version,
            members,
            vnodes: self.vnodes,
            replication_factor: self.replication_factor as u32,
        }
    }

    /// The link to member `node_id`, if there is one.
    pub fn link(&self, node_id: &str) -> Option<Arc<PeerLink>> {
        self.state.lock().links.get(node_id).cloned()
    }

    /// The links of every member but this node.
    pub fn links(&self) -> Vec<Arc<PeerLink>> {
        self.state.lock().links.values().cloned().collect()
    }

    /// Merges a peer's ring state; `from` is the peer itself, whose own
    /// address it is the authority on. Returns whether this node's ring
    /// changed.
    pub fn learn(
        &self,
        remote: &proto::RingState,
        from: Option<&proto::Member>,
    ) -> Result<bool, RingStateRefusal> {
        self.check(remote, from)?;
        let own_id = self.own.read().node_id.clone();
        let mut theirs: Vec<&str> = remote.members.iter().map(|m| m.node_id.as_str()).collect();
        theirs.sort_unstable();
        theirs.dedup();
        let mut state = self.state.lock();
        // Whether the peer listed exactly this node and its members.
        let lists_ours = |state: &State| {
            theirs.len() == state.members.len() + 1
                && theirs
                    .iter()
                    .all(|id| *id == own_id || state.members.contains_key(*id))
        };
        if remote.version == state.version && !lists_ours(&state) {
            // Two member sets at one version: merged anyway (the union's
            // bump below settles it), but counted.
            self.metrics
                .ring_states_refused
                .get_or_create(&[("reason", "conflict")])
                .inc();
        }
        let mut changed = false;
        for member in &remote.members {
            if member.node_id == own_id || state.members.contains_key(&member.node_id) {
                continue;
            }
            state.members.insert(member.node_id.clone(), member.clone());
            changed = true;
        }
        if let Some(from) = from.filter(|f| f.node_id != own_id) {
            if state.members.get(&from.node_id) != Some(from) {
                state.members.insert(from.node_id.clone(), from.clone());
                changed = true;
            }
        }
        // Versions: the union at the highest version; when the union is
        // not what the peer listed, bump so the peer learns it from us.
        let union_is_remote = lists_ours(&state);
        let top = state.version.max(remote.version);
        let version = if union_is_remote {
            top
        } else {
            top.saturating_add(1)
        };
        let version_changed = version != state.version;
        state.version = version;
        if changed || version_changed {
            self.rebuild(&mut state, &own_id);
        }
        Ok(changed)
    }

    /// Refuses a state that breaks the rules or places keys differently.
    fn check(
        &self,
        remote: &proto::RingState,
        from: Option<&proto::Member>,
    ) -> Result<(), RingStateRefusal> {
        if remote.vnodes != self.vnodes
            || remote.replication_factor as usize != self.replication_factor
        {
            return Err(RingStateRefusal::Mismatch {
                vnodes: remote.vnodes,
                replication_factor: remote.replication_factor,
                own_vnodes: self.vnodes,
                own_replication_factor: self.replication_factor as u32,
            });
        }
        if remote.members.len() > MAX_MEMBERS {
            return Err(RingStateRefusal::Invalid(format!(
                "{} members; at most {MAX_MEMBERS}",
                remote.members.len()
            )));
        }
        for member in remote.members.iter().chain(from) {
            check_member(member).map_err(RingStateRefusal::Invalid)?;
        }
        Ok(())
    }

    /// Builds the view of the current members, keeping every link whose
    /// address did not change.
    fn rebuild(&self, state: &mut State, own_id: &str) {
        let mut ids: Vec<&str> = state.members.keys().map(String::as_str).collect();
        ids.push(own_id);
        let ring = Ring::new(ids, self.vnodes);
        let mut links = Vec::with_capacity(ring.members().len());
        for id in ring.members() {
            if id == own_id {
                links.push(Slot::Own);
                continue;
            }
            let Some(member) = state.members.get(id) else {
                links.push(Slot::Unreachable(id.as_str().into()));
                continue;
            };
            let kept = state
                .links
                .get(id)
                .filter(|l| l.sync_addr == member.sync_addr)
                .cloned();
            let slot = match kept {
                Some(link) => Slot::Peer(link),
                None => match PeerLink::new(id, &member.sync_addr, &self.links, &self.metrics) {
                    Ok(link) => {
                        state.links.insert(id.clone(), link.clone());
                        Slot::Peer(link)
                    }
                    Err(e) => {
                        tracing::warn!(peer = %id, error = %e, "cannot reach member");
                        state.links.remove(id);
                        Slot::Unreachable(id.as_str().into())
                    }
                },
            };
            links.push(slot);
        }
        tracing::info!(
            version = state.version,
            members = ring.members().len(),
            "ring changed"
        );
        self.metrics.members.set(ring.members().len() as i64);
        self.metrics.ring_version.set(state.version as i64);
        *self.view.write() = Arc::new(RingView {
            ring,
            version: state.version,
            links,
        });
    }

    /// How many members are up, this node included.
    pub fn members_up(&self) -> usize {
        1 + self.links().iter().filter(|l| l.is_up()).count()
    }
}

/// Whether a member's id and address may be used.
fn check_member(m: &proto::Member) -> Result<(), String> {
    if !crate::config::is_node_id(&m.node_id) {
        return Err(format!("member id {:?} is not a node id", m.node_id));
    }
    let addr_ok =
        m.sync_addr.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        }) && m.sync_addr.len() <= 256
            && !m.sync_addr.contains('/');
    if !addr_ok {
        return Err(format!(
            "member {} has sync address {:?}, not host:port",
            m.node_id, m.sync_addr
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn membership(id: &str) -> Membership {
        let links = LinkSettings {
            timeout: Duration::from_secs(1),
            max_message_bytes: 1 << 20,
            failure_timeout: Duration::from_secs(3),
        };
        Membership::new(id, 8, 2, links, ClusterMetrics::default())
    }

    fn member(id: &str) -> proto::Member {
        proto::Member {
            node_id: id.into(),
            sync_addr: format!("127.0.0.1:{}", 20000 + id.len()),
            client_addr: String::new(),
        }
    }

    fn ids(state: &proto::RingState) -> Vec<&str> {
        state.members.iter().map(|m| m.node_id.as_str()).collect()
    }

    #[tokio::test]
    async fn ring_states_merge_to_one_union_at_one_version() {
        let (a, b) = (membership("a"), membership("bb"));
        a.set_own_addrs(&member("a").sync_addr, "");
        b.set_own_addrs(&member("bb").sync_addr, "");
        let c = member("ccc");
        assert!(b.learn(&a.ring_state(), Some(&a.own())).expect("valid"));
        assert!(
            b.learn(&a.ring_state(), Some(&c)).expect("valid"),
            "c joins b"
        );
        // a learns b's union, which holds more than a listed.
        assert!(a.learn(&b.ring_state(), Some(&b.own())).expect("valid"));
        // Exchanging again changes nothing: one member set, one version.
        assert!(!b.learn(&a.ring_state(), Some(&a.own())).expect("valid"));
        assert!(!a.learn(&b.ring_state(), Some(&b.own())).expect("valid"));
        let (sa, sb) = (a.ring_state(), b.ring_state());
        assert_eq!(ids(&sa), ["a", "bb", "ccc"]);
        assert_eq!(ids(&sa), ids(&sb));
        assert_eq!(sa.version, sb.version);
        assert_eq!(a.view().ring.members(), b.view().ring.members());
        assert!(matches!(a.view().links[0], Slot::Own));
    }

    #[tokio::test]
    async fn states_that_place_keys_differently_or_name_garbage_are_refused() {
        let a = membership("a");
        let mut other = membership("bb").ring_state();
        other.vnodes = 9;
        assert!(matches!(
            a.learn(&other, None),
            Err(RingStateRefusal::Mismatch { .. })
        ));
        let bad = proto::Member {
            node_id: "no spaces".into(),
            ..member("x")
        };
        let mut garbage = membership("bb").ring_state();
        garbage.members.push(bad.clone());
        assert!(matches!(
            a.learn(&garbage, None),
            Err(RingStateRefusal::Invalid(_))
        ));
        let no_port = proto::Member {
            sync_addr: "host".into(),
            ..member("dd")
        };
        assert!(a.learn(&garbage, Some(&no_port)).is_err());
        assert_eq!(ids(&a.ring_state()), ["a"], "nothing was merged");
    }
}
