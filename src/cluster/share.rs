//! How many tenants one node runs, and which leases it takes or gives up in one round
//! (pure: the lease manager feeds it what the lease table says).
//!
//! Every node runs the same rule against the same numbers: the fair share is
//! `ceil(T/N) + slack` (T tenants, N live nodes that are not draining). A node below its
//! share takes free leases first (released cleanly: nothing to repair), then expired ones
//! (their owner stopped renewing: the tenant reconciles); it never takes more than its
//! share. A node above its share (a node joined, so N grew) releases the excess a batch
//! per round, so the newcomer fills up over a few rounds instead of every tenant moving at
//! once. The shares of all nodes add up to at least T, so no tenant stays unowned.

/// The numbers one round is planned from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Tenants in the cluster (T).
    pub tenants: usize,
    /// Live nodes that take tenants (N); this node counts unless it is draining. Zero is
    /// read as one (this node is alive to plan at all).
    pub live_nodes: usize,
    /// Leases a node may hold beyond `ceil(T/N)` (`cluster.share_slack`).
    pub slack: usize,
}

impl Sizes {
    /// `ceil(T/N)`: the even split.
    pub fn even(&self) -> usize {
        self.tenants.div_ceil(self.live_nodes.max(1))
    }

    /// The fair share: `ceil(T/N) + slack`, the most leases one node holds.
    pub fn share(&self) -> usize {
        self.even() + self.slack
    }

    /// Leases a node above its share releases per round: a quarter of the even split
    /// (at least one), so a joining node fills up in about four rounds.
    pub fn release_batch(&self) -> usize {
        self.even().div_ceil(4).max(1)
    }
}

/// What the lease table shows this node at the start of a round.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Leases this node holds (renewed, still valid).
    pub held: &'a [String],
    /// Tenants nobody holds (never leased, or released).
    pub free: &'a [String],
    /// Tenants whose owner let the lease expire (it stopped renewing).
    pub expired: &'a [String],
    /// Whether this node is draining: it takes nothing and releases everything, a batch
    /// per round.
    pub draining: bool,
}

/// The decision of one round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Tenants to try to lease (free ones first, then expired), at most the room left
    /// under the share.
    pub acquire: Vec<String>,
    /// Held tenants to give up (stop, flush, release).
    pub release: Vec<String>,
}

/// Plans one round: acquire up to the share, or release the excess over it (a batch
/// per round). Never both. Deterministic: candidates are taken, and excess released, in
/// tenant id order (acquire: lowest first; release: highest first), so two calls with the
/// same view agree.
pub fn plan(view: View<'_>, sizes: Sizes) -> Plan {
    let target = if view.draining { 0 } else { sizes.share() };
    let held = view.held.len();
    if held > target {
        let mut release: Vec<String> = view.held.to_vec();
        release.sort_unstable_by(|a, b| b.cmp(a));
        release.truncate((held - target).min(sizes.release_batch()));
        return Plan {
            acquire: Vec::new(),
            release,
        };
    }
    let room = target - held;
    let mut free: Vec<&String> = view.free.iter().collect();
    free.sort_unstable();
    let mut expired: Vec<&String> = view.expired.iter().collect();
    expired.sort_unstable();
    let acquire = free
        .into_iter()
        .chain(expired)
        .filter(|tenant| !view.held.contains(tenant))
        .take(room)
        .cloned()
        .collect();
    Plan {
        acquire,
        release: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    fn names(prefix: &str, count: usize) -> Vec<String> {
        (0..count).map(|i| format!("{prefix}{i:03}")).collect()
    }

    #[test]
    fn the_share_is_the_even_split_rounded_up_plus_the_slack() {
        let sizes = |tenants, live_nodes, slack| Sizes {
            tenants,
            live_nodes,
            slack,
        };
        assert_eq!(sizes(10, 3, 0).share(), 4);
        assert_eq!(sizes(10, 3, 2).share(), 6);
        assert_eq!(sizes(9, 3, 0).share(), 3);
        assert_eq!(sizes(0, 3, 2).share(), 2);
        // No live node counted (this one is draining): read as one.
        assert_eq!(sizes(10, 0, 1).share(), 11);
        assert_eq!(sizes(10_000, 3, 2).release_batch(), 834);
        assert_eq!(sizes(3, 3, 2).release_batch(), 1);
    }

    #[test]
    fn free_leases_are_taken_before_expired_ones_and_never_beyond_the_share() {
        let held = names("h", 2);
        let free = names("f", 2);
        let expired = names("e", 5);
        let view = View {
            held: &held,
            free: &free,
            expired: &expired,
            draining: false,
        };
        let sizes = Sizes {
            tenants: 20,
            live_nodes: 4,
            slack: 0,
        };
        let plan = plan(view, sizes);
        assert_eq!(plan.acquire, ["f000", "f001", "e000"]);
        assert!(plan.release.is_empty());
        // At the share: nothing more.
        let held = names("h", 5);
        let view = View {
            held: &held,
            ..view
        };
        assert_eq!(super::plan(view, sizes), Plan::default());
    }

    #[test]
    fn a_node_over_its_share_releases_a_batch_per_round_and_takes_nothing() {
        let held = names("t", 10);
        let free = names("f", 3);
        let view = View {
            held: &held,
            free: &free,
            expired: &[],
            draining: false,
        };
        // A second node joined: share 5 + 0, batch ceil(5/4) = 2.
        let plan = plan(
            view,
            Sizes {
                tenants: 10,
                live_nodes: 2,
                slack: 0,
            },
        );
        assert_eq!(plan.release, ["t009", "t008"]);
        assert!(plan.acquire.is_empty());
        // Within the slack: nothing moves.
        let plan = super::plan(
            view,
            Sizes {
                tenants: 16,
                live_nodes: 2,
                slack: 2,
            },
        );
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn a_draining_node_takes_nothing_and_releases_everything_in_batches() {
        let held = names("t", 3);
        let free = names("f", 3);
        let view = View {
            held: &held,
            free: &free,
            expired: &[],
            draining: true,
        };
        let sizes = Sizes {
            tenants: 6,
            live_nodes: 2,
            slack: 2,
        };
        assert_eq!(plan(view, sizes).release, ["t002"]);
        assert!(plan(view, sizes).acquire.is_empty());
    }

    /// A simulated lease table shared by simulated nodes: tenant -> owner.
    struct Cluster {
        owners: BTreeMap<String, Option<usize>>,
        /// Nodes whose leases expired (killed): their rows still name them.
        dead: BTreeSet<usize>,
        nodes: usize,
        slack: usize,
        /// Most leases any node released in one round.
        biggest_release: usize,
    }

    impl Cluster {
        fn new(tenants: usize, nodes: usize, slack: usize) -> Self {
            Self {
                owners: names("t", tenants).into_iter().map(|t| (t, None)).collect(),
                dead: BTreeSet::new(),
                nodes,
                slack,
                biggest_release: 0,
            }
        }

        fn live(&self) -> Vec<usize> {
            (0..self.nodes).filter(|n| !self.dead.contains(n)).collect()
        }

        fn sizes(&self) -> Sizes {
            Sizes {
                tenants: self.owners.len(),
                live_nodes: self.live().len(),
                slack: self.slack,
            }
        }

        fn held_by(&self, node: usize) -> Vec<String> {
            let owned = self
                .owners
                .iter()
                .filter(|(_, owner)| **owner == Some(node));
            owned.map(|(tenant, _)| tenant.clone()).collect()
        }

        /// One round of `node`; whether anything changed.
        fn round(&mut self, node: usize) -> bool {
            let held = self.held_by(node);
            let pick = |dead: bool| -> Vec<String> {
                let rows = self.owners.iter().filter(|(_, owner)| match owner {
                    None => !dead,
                    Some(owner) => dead && self.dead.contains(owner),
                });
                rows.map(|(tenant, _)| tenant.clone()).collect()
            };
            let (free, expired) = (pick(false), pick(true));
            let view = View {
                held: &held,
                free: &free,
                expired: &expired,
                draining: false,
            };
            let plan = plan(view, self.sizes());
            assert!(
                plan.acquire.is_empty() || held.len() + plan.acquire.len() <= self.sizes().share(),
                "node {node} would go beyond its share"
            );
            self.biggest_release = self.biggest_release.max(plan.release.len());
            for tenant in &plan.acquire {
                // The acquire statement: free or expired only.
                let owner = self.owners.get_mut(tenant).unwrap();
                assert!(owner.is_none_or(|owner| self.dead.contains(&owner)));
                *owner = Some(node);
            }
            for tenant in &plan.release {
                *self.owners.get_mut(tenant).unwrap() = None;
            }
            !plan.acquire.is_empty() || !plan.release.is_empty()
        }

        /// Runs rounds (live nodes in a rotating order) until one full round changes
        /// nothing; the number of rounds it took.
        fn settle(&mut self, order_seed: usize) -> usize {
            for rounds in 1..=500 {
                let live = self.live();
                let mut changed = false;
                for i in 0..live.len() {
                    let node = live[(i + order_seed + rounds) % live.len()];
                    changed |= self.round(node);
                }
                if !changed {
                    return rounds;
                }
            }
            panic!("the cluster never settled");
        }

        fn assert_settled(&self) {
            let share = self.sizes().share();
            for (tenant, owner) in &self.owners {
                let owner = owner.unwrap_or_else(|| panic!("{tenant} is unowned"));
                assert!(!self.dead.contains(&owner), "{tenant} still on a dead node");
            }
            for node in self.live() {
                let held = self.held_by(node).len();
                assert!(held <= share, "node {node} holds {held} > share {share}");
            }
        }
    }

    proptest! {
        #[test]
        fn nodes_planning_round_after_round_own_every_tenant_exactly_once_within_their_share(
            tenants in 0usize..80,
            nodes in 1usize..6,
            slack in 0usize..4,
            seed in 0usize..7,
        ) {
            let mut cluster = Cluster::new(tenants, nodes, slack);
            cluster.settle(seed);
            cluster.assert_settled();
            // One node is killed: its leases expire and the others pick them up.
            if nodes > 1 {
                cluster.dead.insert(seed % nodes);
                cluster.settle(seed);
                cluster.assert_settled();
            }
        }

        #[test]
        fn a_joining_node_fills_up_from_released_batches(
            tenants in 1usize..200,
            slack in 0usize..3,
            joining in 1usize..4,
        ) {
            // One node holds everything, then `joining` nodes join.
            let mut cluster = Cluster::new(tenants, 1, slack);
            cluster.settle(0);
            prop_assert_eq!(cluster.held_by(0).len(), tenants);
            cluster.nodes += joining;
            cluster.biggest_release = 0;
            cluster.settle(1);
            cluster.assert_settled();
            prop_assert!(cluster.biggest_release <= cluster.sizes().release_batch());
            // Every node has work unless the others' shares hold every tenant.
            if tenants > (cluster.nodes - 1) * cluster.sizes().share() {
                for node in 0..cluster.nodes {
                    prop_assert!(!cluster.held_by(node).is_empty());
                }
            }
        }
    }
}
