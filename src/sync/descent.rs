//! The Merkle descent: from the root down, level by level, to the
//! subtrees that differ, with one `GetChildren` per level.

use super::convert::summary_from_proto;
use super::error::SyncError;
use super::limits::MAX_CHILDREN_PER_CALL;
use super::ranges::Node;
use super::round_state::Round;
use crate::proto;
use crate::store::Summary;

/// Where the descent sends each differing subtree.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Subtrees to list digests of (with our summary: only if it differs).
    pub(super) list: Vec<(Node, Option<Summary>)>,
    /// Subtrees we have nothing in: fetch whole.
    pub(super) fetch_whole: Vec<Node>,
    /// Subtrees the peer has nothing in: push whole.
    pub(super) push_whole: Vec<Node>,
}

impl Round {
    /// Walks down the tree from the root (see the `client` module docs) and
    /// decides where each differing subtree goes.
    pub(super) async fn descend(
        &mut self,
        ours: Summary,
        theirs: Summary,
        root_children: Vec<Summary>,
    ) -> Result<Plan, SyncError> {
        let shape = self.shape;
        let small = self.tuning.small_subtree;
        let fanout = shape.fanout as usize;
        let mut plan = Plan::default();
        let mut frontier = vec![(Node::ROOT, ours, theirs)];
        // The root's children came with GetRoot (when the peer sent them).
        let mut known = (root_children.len() == fanout).then_some(root_children);
        for _ in 0..=shape.depth {
            let mut descend = Vec::new();
            for (node, ours, theirs) in frontier.drain(..) {
                if ours == theirs {
                    continue;
                }
                if theirs.count == 0 {
                    plan.push_whole.push(node);
                } else if ours.count == 0 {
                    plan.fetch_whole.push(node);
                } else if node.level == shape.depth || ours.count.max(theirs.count) <= small {
                    plan.list.push((node, None));
                } else {
                    descend.push((node, theirs));
                }
            }
            if descend.is_empty() {
                break;
            }
            let index = self.store.index();
            let mut ask = Vec::new();
            for (node, theirs) in descend {
                let our_kids = index
                    .children(node.level, node.index)
                    .ok_or_else(|| SyncError::Internal(format!("no children for {node:?}")))?;
                let to_leaves = node.level + 1 == shape.depth;
                let kids_small = our_kids.iter().all(|k| k.count <= small)
                    && theirs.count <= small.saturating_mul(fanout as u64);
                let have_theirs = node == Node::ROOT && known.is_some();
                if !have_theirs && (to_leaves || kids_small) {
                    let pairs = node.children(shape).zip(our_kids);
                    plan.list.extend(pairs.map(|(child, s)| (child, Some(s))));
                } else {
                    ask.push((node, our_kids));
                }
            }
            let their_kids = match known.take() {
                Some(kids) if ask.len() == 1 && ask[0].0 == Node::ROOT => kids,
                _ => self.get_children(&ask).await?,
            };
            for ((node, our_kids), theirs) in ask.iter().zip(their_kids.chunks(fanout)) {
                for ((child, o), t) in node.children(shape).zip(our_kids).zip(theirs) {
                    if o != t {
                        frontier.push((child, *o, *t));
                    }
                }
            }
        }
        plan.list.sort_by_key(|(n, _)| *n.leaves(shape).start());
        plan.fetch_whole.sort_by_key(|n| *n.leaves(shape).start());
        plan.push_whole.sort_by_key(|n| *n.leaves(shape).start());
        Ok(plan)
    }

    /// The peer's children of `parents` (all on one level), `fanout` per
    /// parent in order, in as few calls as the size limit allows.
    async fn get_children(
        &mut self,
        parents: &[(Node, Vec<Summary>)],
    ) -> Result<Vec<Summary>, SyncError> {
        let fanout = self.shape.fanout as usize;
        let Some(level) = parents.first().map(|p| p.0.level) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(parents.len() * fanout);
        for chunk in parents.chunks((MAX_CHILDREN_PER_CALL / fanout).max(1)) {
            let resp = self
                .rpc
                .get_children(proto::GetChildrenRequest {
                    level,
                    indexes: chunk.iter().map(|p| p.0.index).collect(),
                })
                .await?;
            if resp.children.len() != chunk.len() * fanout {
                return Err(SyncError::protocol(
                    "GetChildren",
                    format!(
                        "{} summaries for {} parents of fanout {fanout}",
                        resp.children.len(),
                        chunk.len()
                    ),
                ));
            }
            for c in &resp.children {
                out.push(
                    summary_from_proto(c)
                        .map_err(|e| SyncError::protocol("GetChildren", e.to_string()))?,
                );
            }
        }
        Ok(out)
    }
}
